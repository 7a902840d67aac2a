"""勾選 (selection): which of a year's items a student sends to the central database.

A student (``selection.edit``, own) selects, for one academic year,

- course outcomes of their own that are ``certified`` and of that year: at most the school's
  ``course_outcomes.selection_cap`` per ``selection_period`` (per semester of the year, or in the
  year) and at most the national ceiling of the day (its own cap and period), both applied;
- diverse-performance items of their own of that year in status ``submitted`` (items recorded by
  the school or an organiser count as selectable): at most the school's
  ``performances.selection_cap_per_year`` and the national ceiling (10).

The selection is open while the year's selection window is (``academics.calendar.selection_window``:
the year's window, and at least until semester 2's certification deadline); after it closes it is
read-only. Saving replaces the whole selection at once: everything is checked first,
and a refusal changes nothing. Staff with ``selection.view`` read it by scope, a parent read-only;
reads by others than the student and every save are audited.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from lp_saas import clock
from lp_saas.academics.calendar import Window, selection_window
from lp_saas.audit import services as audit
from lp_saas.database import db
from lp_saas.errors import AppError, Forbidden, ValidationFailed
from lp_saas.i18n import format_roc_datetime
from lp_saas.portfolio.models import CourseOutcome, Performance, SelectionItem
from lp_saas.portfolio.performances import lock_student, require_student
from lp_saas.roles import permissions
from lp_saas.tenants.national import SEMESTER, YEAR, national_rules_on
from lp_saas.tenants.rulesets import current_rules

#: the most ids one list may carry (far above any cap; bounds the work of a hostile request)
MAX_IDS = 200


@dataclass(frozen=True)
class Cap:
    """One limit a selection is judged by: ``name`` is its rule path, ``period`` semester or year."""

    name: str
    limit: int
    period: str
    source: str  # school | national

    def to_dict(self) -> dict:
        return {"name": self.name, "limit": self.limit, "period": self.period, "source": self.source}


def caps(tenant_id) -> dict[str, list[Cap]]:
    """{"outcomes": [...], "performances": [...]}: the school's caps and the national ones of today."""
    rules = current_rules(tenant_id)
    national = national_rules_on(clock.today())
    return {
        "outcomes": [
            Cap("course_outcomes.selection_cap", rules["course_outcomes"]["selection_cap"],
                rules["course_outcomes"]["selection_period"], "school"),
            Cap("national.course_outcomes.selection_cap", national.course_outcome_selection_cap,
                national.course_outcome_selection_period, "national"),
        ],
        "performances": [
            Cap("performances.selection_cap_per_year", rules["performances"]["selection_cap_per_year"], YEAR, "school"),
            Cap("national.performances.selection_cap_per_year", national.performance_selection_cap_per_year,
                YEAR, "national"),
        ],
    }


def effective_caps(tenant_id) -> dict:
    """What the page shows: the tightest limit per semester and per year for each kind."""
    found = caps(tenant_id)
    per_semester = [c.limit for c in found["outcomes"] if c.period == SEMESTER]
    per_year = [c.limit for c in found["outcomes"] if c.period == YEAR]
    return {
        "outcomes_per_semester": min(per_semester) if per_semester else None,
        "outcomes_per_year": min(per_year) if per_year else None,
        "performances_per_year": min(c.limit for c in found["performances"]),
    }


@dataclass
class Selection:
    """A student's selection of one academic year, with the items it names and the year's window."""

    student_id: uuid.UUID
    academic_year: int
    window: Window | None
    outcomes: list[CourseOutcome]
    performances: list[Performance]
    selected_at: datetime | None

    @property
    def is_open(self) -> bool:
        return self.window is not None and self.window.is_open()


def selection_of(tenant_id, student_id, academic_year: int) -> Selection:
    """The stored selection (two queries: the rows with their outcomes, and with their items)."""
    base = sa.and_(SelectionItem.tenant_id == tenant_id, SelectionItem.student_id == student_id,
                   SelectionItem.academic_year == academic_year)
    outcome_rows = db.session.execute(
        sa.select(CourseOutcome, SelectionItem.selected_at)
        .join(SelectionItem, sa.and_(SelectionItem.tenant_id == CourseOutcome.tenant_id,
                                     SelectionItem.item_id == CourseOutcome.id, SelectionItem.item_kind == "outcome"))
        .where(base).order_by(CourseOutcome.semester, CourseOutcome.created_at, CourseOutcome.id)).all()
    performance_rows = db.session.execute(
        sa.select(Performance, SelectionItem.selected_at)
        .join(SelectionItem, sa.and_(SelectionItem.tenant_id == Performance.tenant_id,
                                     SelectionItem.item_id == Performance.id, SelectionItem.item_kind == "performance"))
        .where(base).order_by(Performance.category, Performance.created_at, Performance.id)).all()
    moments = [at for _item, at in outcome_rows + performance_rows]
    return Selection(student_id, academic_year, selection_window(tenant_id, academic_year),
                     [o for o, _at in outcome_rows], [p for p, _at in performance_rows],
                     max(moments) if moments else None)


def selectable(tenant_id, student_id, academic_year: int) -> tuple[list[CourseOutcome], list[Performance]]:
    """What the student may select in the year: certified outcomes and submitted items (two queries)."""
    outcomes = list(db.session.scalars(sa.select(CourseOutcome).where(
        CourseOutcome.tenant_id == tenant_id, CourseOutcome.student_id == student_id,
        CourseOutcome.academic_year == academic_year, CourseOutcome.status == "certified")
        .order_by(CourseOutcome.semester, CourseOutcome.created_at, CourseOutcome.id)))
    items = list(db.session.scalars(sa.select(Performance).where(
        Performance.tenant_id == tenant_id, Performance.student_id == student_id,
        Performance.academic_year == academic_year, Performance.status == "submitted")
        .order_by(Performance.category, Performance.created_at, Performance.id)))
    return outcomes, items


def read_selection(tenant, actor, student_id, academic_year: int) -> Selection:
    """The selection if ``actor`` may see it (``selection.view`` by scope; 403/404 otherwise).

    A read by anyone but the student is audited (``selection.read``).
    """
    require_student(tenant, actor, "selection.view", student_id)
    found = selection_of(tenant.id, student_id, academic_year)
    if student_id != actor.id:
        audit.record(tenant.id, actor, "selection.read", target_type="selection", target_id=student_id,
                     student_id=student_id, details={"academic_year": academic_year})
    return found


def _parse_ids(name: str, raw, errors: dict) -> list[uuid.UUID]:
    if raw is None:
        errors[name] = _l("This field is required.")
        return []
    if not isinstance(raw, list):
        errors[name] = _l("Give a list of ids.")
        return []
    if len(raw) > MAX_IDS:
        errors[name] = _l("List at most %(max)s ids.", max=MAX_IDS)
        return []
    ids: list[uuid.UUID] = []
    for index, value in enumerate(raw):
        try:
            parsed = uuid.UUID(value) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if parsed is None:
            errors[f"{name}.{index}"] = _l("%(value)s is not an id.", value=str(value)[:60])
        elif parsed in ids:
            errors[f"{name}.{index}"] = _l("%(id)s is listed twice.", id=str(parsed))
        else:
            ids.append(parsed)
    return ids


def require_open(tenant_id, academic_year: int) -> Window:
    """The year's selection window, open now. Raises AppError 422 ``selection_closed`` (after it),
    ``selection_not_open`` (before it, or without the year's calendar)."""
    window = selection_window(tenant_id, academic_year)
    if window is None:
        raise AppError(_l("The school has not set the calendar of academic year %(year)s, so its selection is not "
                          "open.", year=academic_year), code="selection_not_open", status=422,
                       details={"window": {"academic_year": academic_year}})
    details = {"window": {"academic_year": academic_year, "opens_at": window.opens_at.isoformat(),
                          "closes_at": window.closes_at.isoformat()}}
    now = clock.now()
    if now > window.closes_at:
        raise AppError(_l("The selection of academic year %(year)s closed at %(closes)s; it can no longer be changed.",
                          year=academic_year, closes=format_roc_datetime(window.closes_at)),
                       code="selection_closed", status=422, details=details)
    if now < window.opens_at:
        raise AppError(_l("The selection of academic year %(year)s opens at %(opens)s.",
                          year=academic_year, opens=format_roc_datetime(window.opens_at)),
                       code="selection_not_open", status=422, details=details)
    return window


def _cap_error(field: str, cap: Cap, sent: int, academic_year: int, semester: int | None):
    if field == "outcome_ids":
        if cap.period == SEMESTER:
            message = _l("At most %(limit)s course outcomes may be selected per semester (%(rule)s); %(sent)s of "
                         "semester %(semester)s were sent.", limit=cap.limit, rule=cap.name, sent=sent,
                         semester=semester)
        else:
            message = _l("At most %(limit)s course outcomes may be selected in academic year %(year)s (%(rule)s); "
                         "%(sent)s were sent.", limit=cap.limit, rule=cap.name, sent=sent, year=academic_year)
    else:
        message = _l("At most %(limit)s diverse-performance items may be selected in academic year %(year)s "
                     "(%(rule)s); %(sent)s were sent.", limit=cap.limit, rule=cap.name, sent=sent, year=academic_year)
    return AppError(message, code="selection_cap", status=422,
                    details={field: str(message), "cap": {**cap.to_dict(), "sent": sent, "semester": semester,
                                                          "academic_year": academic_year}})


def replace_selection(tenant, actor, academic_year: int, data) -> Selection:
    """Replace the actor's selection of ``academic_year`` with ``data`` (``outcome_ids``,
    ``performance_ids``), all or nothing. Needs ``selection.edit`` (own). Flush only.

    Raises Forbidden (403); AppError 422 ``selection_closed`` / ``selection_not_open``;
    ValidationFailed (422) naming a malformed, unknown, another student's, another year's or not
    selectable id; AppError 422 ``selection_cap`` naming the cap, its limit and how many were sent.
    Audited as ``selection.saved``.
    """
    if not permissions.can(actor, "selection.edit", student_id=actor.id):
        raise Forbidden(_l("You may not select items for the central database."))
    if not isinstance(data, dict):
        raise ValidationFailed({"outcome_ids": str(_l("Give a list of ids."))})
    errors: dict = {}
    for key in data:
        if key not in ("outcome_ids", "performance_ids"):
            errors[str(key)[:80]] = _l("Unknown field.")
    outcome_ids = _parse_ids("outcome_ids", data.get("outcome_ids"), errors)
    performance_ids = _parse_ids("performance_ids", data.get("performance_ids"), errors)
    require_open(tenant.id, academic_year)
    if errors:
        raise ValidationFailed({key: str(value) for key, value in errors.items()})

    lock_student(tenant.id, actor.id)
    outcomes = {o.id: o for o in db.session.scalars(sa.select(CourseOutcome).where(
        CourseOutcome.tenant_id == tenant.id, CourseOutcome.id.in_(outcome_ids)))} if outcome_ids else {}
    items = {p.id: p for p in db.session.scalars(sa.select(Performance).where(
        Performance.tenant_id == tenant.id, Performance.id.in_(performance_ids)))} if performance_ids else {}
    for index, outcome_id in enumerate(outcome_ids):
        outcome = outcomes.get(outcome_id)
        if outcome is None or outcome.student_id != actor.id:
            errors[f"outcome_ids.{index}"] = _l("%(id)s is not one of your course outcomes.", id=str(outcome_id))
        elif outcome.academic_year != academic_year:
            errors[f"outcome_ids.{index}"] = _l("%(id)s belongs to academic year %(other)s, not %(year)s.",
                                                id=str(outcome_id), other=outcome.academic_year, year=academic_year)
        elif outcome.status != "certified":
            errors[f"outcome_ids.{index}"] = _l("%(id)s is not certified by its teacher, so it cannot be selected.",
                                                id=str(outcome_id))
    for index, item_id in enumerate(performance_ids):
        item = items.get(item_id)
        if item is None or item.student_id != actor.id:
            errors[f"performance_ids.{index}"] = _l("%(id)s is not one of your diverse-performance items.",
                                                    id=str(item_id))
        elif item.academic_year != academic_year:
            errors[f"performance_ids.{index}"] = _l("%(id)s belongs to academic year %(other)s, not %(year)s.",
                                                    id=str(item_id), other=item.academic_year, year=academic_year)
        elif item.status != "submitted":
            errors[f"performance_ids.{index}"] = _l("%(id)s is not submitted (its file is not accepted yet), so it "
                                                    "cannot be selected.", id=str(item_id))
    if errors:
        raise ValidationFailed({key: str(value) for key, value in errors.items()})

    found = caps(tenant.id)
    for cap in found["outcomes"]:
        if cap.period == SEMESTER:
            for semester in (1, 2):
                sent = sum(1 for o in outcomes.values() if o.semester == semester)
                if sent > cap.limit:
                    raise _cap_error("outcome_ids", cap, sent, academic_year, semester)
        elif len(outcome_ids) > cap.limit:
            raise _cap_error("outcome_ids", cap, len(outcome_ids), academic_year, None)
    for cap in found["performances"]:
        if len(performance_ids) > cap.limit:
            raise _cap_error("performance_ids", cap, len(performance_ids), academic_year, None)

    wanted = {("outcome", i) for i in outcome_ids} | {("performance", i) for i in performance_ids}
    current = {(row.item_kind, row.item_id) for row in db.session.scalars(sa.select(SelectionItem).where(
        SelectionItem.tenant_id == tenant.id, SelectionItem.student_id == actor.id,
        SelectionItem.academic_year == academic_year))}
    removed = current - wanted
    added = wanted - current
    for kind, item_id in removed:
        db.session.execute(sa.delete(SelectionItem).where(
            SelectionItem.tenant_id == tenant.id, SelectionItem.student_id == actor.id,
            SelectionItem.academic_year == academic_year, SelectionItem.item_kind == kind,
            SelectionItem.item_id == item_id))
    now = clock.now()
    for kind, item_id in sorted(added, key=lambda pair: (pair[0], str(pair[1]))):
        db.session.add(SelectionItem(tenant_id=tenant.id, student_id=actor.id, academic_year=academic_year,
                                     item_kind=kind, item_id=item_id, selected_at=now))
    db.session.flush()
    audit.record(tenant.id, actor, "selection.saved", target_type="selection", target_id=actor.id,
                 student_id=actor.id, details={
                     "academic_year": academic_year, "outcomes": len(outcome_ids),
                     "performances": len(performance_ids),
                     "added": sorted(f"{k}:{i}" for k, i in added)[:40],
                     "removed": sorted(f"{k}:{i}" for k, i in removed)[:40]})
    return selection_of(tenant.id, actor.id, academic_year)
