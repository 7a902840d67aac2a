"""What a regional office sees of each school it oversees: progress and compliance figures.

Only counts, rates, dates and the school's own names leave here — never a student's or a staff
member's name, username, id, student number or file (DESIGN.md §1). Each school's figures are
computed inside that school's tenant scope (row-level security on PostgreSQL), with aggregate
queries only, as of a day (today in Taiwan by default).

Definitions (of the current semester ``academic_term(day)``, unless said otherwise):

- ``students``: active accounts holding the ``student`` role;
- ``upload_rate``: students with at least one course outcome handed in this semester (verifying,
  submitted, certified or returned) ÷ students;
- ``certification_rate``: certified ÷ handed-in outcomes that reached a teacher (submitted +
  certified + returned) this semester;
- ``selection_rate``: students who selected at least one item for the central database this
  academic year ÷ students;
- ``late_certifications``: outcomes still ``submitted`` (not certified) after their semester's
  certification deadline (``academics.calendar.certification_deadline``; grade 12's second semester
  by its own ceremony), over every term of the school whose deadline has passed;
- ``rule_set``: the version in force, its adoption date and meeting, and — when the school linked it
  in its governance records — the date and kind of that meeting;
- ``working_group_meetings``: working-group meetings held this semester, against the minimum the
  school's rules set; ``trainings``: trainings held this academic year (up to the day) per audience,
  against the yearly minimum the rules set per audience.

A rate with nothing to divide by is ``null``.
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime

import sqlalchemy as sa

from lp_saas import clock
from lp_saas.database import db
from lp_saas.i18n import academic_term
from lp_saas.platform.services import as_school, student_count
from lp_saas.tenants.models import Tenant

HANDED_IN = ("verifying", "submitted", "certified", "returned")
REACHED_TEACHER = ("submitted", "certified", "returned")
AUDIENCES = ("students", "teachers", "parents")


def semester_bounds(tenant_id, academic_year: int, semester: int) -> tuple[date, date]:
    """The term's dates if the school entered them, else 1 Aug–31 Jan / 1 Feb–31 Jul."""
    from lp_saas.academics.calendar import term

    found = term(tenant_id, academic_year, semester)
    if found is not None:
        return found.starts_on, found.ends_on
    year = academic_year + 1911
    if semester == 1:
        return date(year, 8, 1), date(year + 1, 1, 31)
    return date(year + 1, 2, 1), date(year + 1, 7, 31)


def year_bounds(academic_year: int) -> tuple[date, date]:
    year = academic_year + 1911
    return date(year, 8, 1), date(year + 1, 7, 31)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _late_certifications(tenant_id, now: datetime) -> int:
    from lp_saas.academics.calendar import certification_deadline
    from lp_saas.academics.models import Course, Term
    from lp_saas.portfolio.models import CourseOutcome

    late = 0
    for t in db.session.scalars(sa.select(Term).where(Term.tenant_id == tenant_id, Term.ceremony_on <= now.date())):
        deadline = certification_deadline(t)
        grade12 = certification_deadline(t, 12) if t.semester == 2 and t.grade12_ceremony_on else deadline
        if deadline >= now and grade12 >= now:
            continue
        query = (sa.select(sa.func.count()).select_from(CourseOutcome)
                 .join(Course, sa.and_(Course.tenant_id == CourseOutcome.tenant_id, Course.id == CourseOutcome.course_id))
                 .where(CourseOutcome.tenant_id == tenant_id, CourseOutcome.status == "submitted",
                        CourseOutcome.academic_year == t.academic_year, CourseOutcome.semester == t.semester))
        if grade12 == deadline:
            late += db.session.scalar(query) or 0
            continue
        is_12 = sa.func.coalesce(Course.grade, 0) == 12
        if deadline < now:
            late += db.session.scalar(query.where(sa.not_(is_12))) or 0
        if grade12 < now:
            late += db.session.scalar(query.where(is_12)) or 0
    return late


def _progress(tenant: Tenant, academic_year: int, semester: int, now: datetime) -> dict:
    from lp_saas.academics.calendar import certification_deadline, term
    from lp_saas.portfolio.models import CourseOutcome, SelectionItem

    students = student_count(tenant)
    this_semester = (CourseOutcome.tenant_id == tenant.id, CourseOutcome.academic_year == academic_year,
                     CourseOutcome.semester == semester)
    by_status = dict(db.session.execute(
        sa.select(CourseOutcome.status, sa.func.count()).where(*this_semester).group_by(CourseOutcome.status)).all())
    uploaders = db.session.scalar(sa.select(sa.func.count(sa.distinct(CourseOutcome.student_id)))
                                  .where(*this_semester, CourseOutcome.status.in_(HANDED_IN))) or 0
    selectors = db.session.scalar(sa.select(sa.func.count(sa.distinct(SelectionItem.student_id)))
                                  .where(SelectionItem.tenant_id == tenant.id,
                                         SelectionItem.academic_year == academic_year)) or 0
    reached = sum(by_status.get(s, 0) for s in REACHED_TEACHER)
    current = term(tenant.id, academic_year, semester)
    deadline = certification_deadline(current) if current is not None else None
    return {
        "students": students,
        "outcomes_handed_in": sum(by_status.get(s, 0) for s in HANDED_IN),
        "outcomes_awaiting_certification": by_status.get("submitted", 0),
        "outcomes_certified": by_status.get("certified", 0),
        "outcomes_returned": by_status.get("returned", 0),
        "students_uploaded": uploaders,
        "upload_rate": _rate(uploaders, students),
        "certification_rate": _rate(by_status.get("certified", 0), reached),
        "students_selected": selectors,
        "selection_rate": _rate(selectors, students),
        "certification_deadline": deadline.date().isoformat() if deadline else None,
        "late_certifications": _late_certifications(tenant.id, now),
    }


def _compliance(tenant: Tenant, academic_year: int, semester: int, on: date) -> dict:
    from lp_saas.governance.models import Meeting, MeetingRuleSet, Training
    from lp_saas.tenants.rulesets import current_rules, in_force

    rules = current_rules(tenant.id, on)
    version = in_force(tenant.id, on)
    rule_set = None
    if version is not None:
        meeting = db.session.scalar(
            sa.select(Meeting).join(MeetingRuleSet, sa.and_(MeetingRuleSet.tenant_id == Meeting.tenant_id,
                                                            MeetingRuleSet.meeting_id == Meeting.id))
            .where(MeetingRuleSet.tenant_id == tenant.id, MeetingRuleSet.rule_set_id == version.id))
        rule_set = {"version": version.version, "adopted_on": version.adopted_on.isoformat(),
                    "adopted_by": version.adopted_by,
                    "meeting_on": meeting.held_on.isoformat() if meeting else None,
                    "meeting_kind": meeting.kind if meeting else None}
    starts, ends = semester_bounds(tenant.id, academic_year, semester)
    meetings = db.session.scalar(sa.select(sa.func.count()).select_from(Meeting).where(
        Meeting.tenant_id == tenant.id, Meeting.kind == "working_group",
        Meeting.held_on >= starts, Meeting.held_on <= min(ends, on))) or 0
    required_meetings = int(rules.get("working_group", {}).get("min_meetings_per_semester", 0) or 0)
    year_starts, year_ends = year_bounds(academic_year)
    held = {audience: (count, attendees or 0) for audience, count, attendees in db.session.execute(
        sa.select(Training.audience, sa.func.count(), sa.func.sum(Training.attendees))
        .where(Training.tenant_id == tenant.id, Training.held_on >= year_starts,
               Training.held_on <= min(year_ends, on))
        .group_by(Training.audience))}
    required: dict[str, int] = {}
    for duty in rules.get("trainings", []):
        required[duty.get("audience")] = required.get(duty.get("audience"), 0) + int(duty.get("min_per_year", 0) or 0)
    trainings = {}
    for audience in AUDIENCES:
        count, attendees = held.get(audience, (0, 0))
        trainings[audience] = {"held": count, "attendees": int(attendees), "required": required.get(audience, 0),
                               "ok": count >= required.get(audience, 0)}
    return {
        "rule_set": rule_set,
        "working_group_meetings_this_semester": meetings,
        "working_group_meetings_required": required_meetings,
        "working_group_meetings_ok": meetings >= required_meetings,
        "trainings_this_year": trainings,
    }


def school_figures(tenant: Tenant, on: date | None = None) -> dict:
    """One school's figures (see the module docstring). Schools not yet active carry no figures."""
    on = on or clock.today()
    now = clock.now()
    academic_year, semester = academic_term(on)
    figures = {"school": tenant.name, "slug": tenant.slug, "school_code": tenant.school_code,
               "status": tenant.status, "as_of": on.isoformat(), "academic_year": academic_year,
               "semester": semester, "progress": None, "compliance": None}
    if tenant.status not in ("active", "suspended"):
        return figures
    with as_school(tenant):
        figures["progress"] = _progress(tenant, academic_year, semester, now)
        figures["compliance"] = _compliance(tenant, academic_year, semester, on)
    return figures


def office_figures(office, on: date | None = None) -> list[dict]:
    from lp_saas.platform.services import office_schools

    return [school_figures(tenant, on) for tenant in office_schools(office)]


CSV_COLUMNS = (
    ("school_code", lambda f: f["school_code"]),
    ("school", lambda f: f["school"]),
    ("status", lambda f: f["status"]),
    ("academic_year", lambda f: f["academic_year"]),
    ("semester", lambda f: f["semester"]),
    ("students", lambda f: (f["progress"] or {}).get("students")),
    ("upload_rate", lambda f: (f["progress"] or {}).get("upload_rate")),
    ("certification_rate", lambda f: (f["progress"] or {}).get("certification_rate")),
    ("selection_rate", lambda f: (f["progress"] or {}).get("selection_rate")),
    ("outcomes_awaiting_certification", lambda f: (f["progress"] or {}).get("outcomes_awaiting_certification")),
    ("late_certifications", lambda f: (f["progress"] or {}).get("late_certifications")),
    ("certification_deadline", lambda f: (f["progress"] or {}).get("certification_deadline")),
    ("rule_set_version", lambda f: ((f["compliance"] or {}).get("rule_set") or {}).get("version")),
    ("rule_set_adopted_on", lambda f: ((f["compliance"] or {}).get("rule_set") or {}).get("adopted_on")),
    ("rule_set_adopted_by", lambda f: ((f["compliance"] or {}).get("rule_set") or {}).get("adopted_by")),
    ("working_group_meetings_this_semester",
     lambda f: (f["compliance"] or {}).get("working_group_meetings_this_semester")),
    ("working_group_meetings_required", lambda f: (f["compliance"] or {}).get("working_group_meetings_required")),
    *[(f"trainings_{a}", (lambda a: lambda f: ((f["compliance"] or {}).get("trainings_this_year") or {})
                          .get(a, {}).get("held"))(a)) for a in AUDIENCES],
    *[(f"trainings_{a}_required", (lambda a: lambda f: ((f["compliance"] or {}).get("trainings_this_year") or {})
                                   .get(a, {}).get("required"))(a)) for a in AUDIENCES],
)


def iso_roc_date(value) -> str:
    """A template filter: an ISO date string of the figures (``2025-03-10``) in the page's calendar
    (114年3月10日 in Chinese); anything else unchanged ("" for None)."""
    from lp_saas.i18n import format_roc_date

    if not value:
        return ""
    try:
        return format_roc_date(date.fromisoformat(str(value)))
    except ValueError:
        return str(value)


def _cell(value) -> str:
    if value is None:
        return ""
    text = str(value)
    # a spreadsheet must not run a school's name as a formula
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def figures_csv(figures: list[dict]) -> str:
    """The figures as CSV (UTF-8 with a BOM so that spreadsheet programs read the Chinese names)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([name for name, _ in CSV_COLUMNS])
    for row in figures:
        writer.writerow([_cell(get(row)) for _, get in CSV_COLUMNS])
    return "\ufeff" + out.getvalue()
