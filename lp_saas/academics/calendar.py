"""Windows and deadlines, counted from a term's semester-end ceremony (休業式) by the rule set in
force on that day. A deadline day ends at 23:59:59 Taiwan time: an upload at 23:59 of the last day
is in, one at 00:00 of the next is out.

- course outcomes of a semester: open from the term's first day until ``ceremony +
  course_outcomes.upload_window_days``; teachers certify until ``ceremony +
  course_outcomes.certification_deadline_days``. Grade 12's semester 2 counts from its own ceremony
  (``grade12_ceremony_on``) when the term has one.
- diverse performance and the selection of an academic year: open from semester 1's first day until
  ``semester 2's ceremony + performances.upload_window_days`` (員林: 第二學期休業式結束後兩週).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from lp_saas import clock
from lp_saas.academics.models import Term
from lp_saas.database import db
from lp_saas.i18n import TAIPEI


@dataclass(frozen=True)
class Window:
    opens_at: datetime
    closes_at: datetime  # the last instant still inside

    def is_open(self, at: datetime | None = None) -> bool:
        at = at or clock.now()
        return self.opens_at <= at <= self.closes_at

    @property
    def last_day(self) -> date:
        return self.closes_at.astimezone(TAIPEI).date()


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), TAIPEI)


def end_of_day(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), TAIPEI)


def term(tenant_id, academic_year: int, semester: int) -> Term | None:
    """The school's term, or the national default dates until the school sets its own (so that a new
    school works on its first day; the registrar moves the ceremony to the real day)."""
    found = db.session.scalar(sa.select(Term).where(Term.tenant_id == tenant_id, Term.academic_year == academic_year,
                                                    Term.semester == semester))
    return found if found is not None else default_term(tenant_id, academic_year, semester)


#: the national calendar's shape (DESIGN.md §2): semester 1 from August, semester 2 from February; the
#: semester-end ceremonies fall around 20 January and 30 June
DEFAULT_DATES = {1: ((0, 8, 1), (1, 1, 20), (1, 1, 31)), 2: ((1, 2, 1), (1, 6, 30), (1, 7, 31))}


def default_term(tenant_id, academic_year: int, semester: int) -> Term | None:
    """A term with the national default dates, never stored (``is_default``); None for a bad semester."""
    if semester not in DEFAULT_DATES or not isinstance(academic_year, int):
        return None
    ad = academic_year + 1911
    starts, ceremony, ends = (date(ad + dy, month, day) for dy, month, day in DEFAULT_DATES[semester])
    found = Term(tenant_id=tenant_id, academic_year=academic_year, semester=semester, starts_on=starts,
                 ceremony_on=ceremony, ends_on=ends, grade12_ceremony_on=None)
    found.is_default = True
    return found


def current_term(tenant_id, on: date | None = None) -> Term | None:
    """The term whose dates contain ``on`` (today), else the latest one that has started."""
    on = on or clock.today()
    found = db.session.scalar(sa.select(Term).where(Term.tenant_id == tenant_id, Term.starts_on <= on,
                                                    Term.ends_on >= on))
    if found is None:
        found = db.session.scalar(sa.select(Term).where(Term.tenant_id == tenant_id, Term.starts_on <= on)
                                  .order_by(Term.starts_on.desc()).limit(1))
    return found


def _rules_on(tenant_id, day: date) -> dict:
    from lp_saas.tenants.rulesets import current_rules

    return current_rules(tenant_id, day)


def _ceremony(t: Term, grade: int | None) -> date:
    if grade == 12 and t.semester == 2 and t.grade12_ceremony_on:
        return t.grade12_ceremony_on
    return t.ceremony_on


def outcome_upload_window(t: Term, grade: int | None = None) -> Window:
    ceremony = _ceremony(t, grade)
    days = _rules_on(t.tenant_id, ceremony)["course_outcomes"]["upload_window_days"]
    return Window(start_of_day(t.starts_on), end_of_day(ceremony + timedelta(days=days)))


def certification_deadline(t: Term, grade: int | None = None) -> datetime:
    ceremony = _ceremony(t, grade)
    days = _rules_on(t.tenant_id, ceremony)["course_outcomes"]["certification_deadline_days"]
    return end_of_day(ceremony + timedelta(days=days))


def year_window(tenant_id, academic_year: int) -> Window | None:
    """Diverse performance uploads of ``academic_year`` (the school's terms, or the national default dates)."""
    first, second = term(tenant_id, academic_year, 1), term(tenant_id, academic_year, 2)
    if first is None or second is None:
        return None
    days = _rules_on(tenant_id, second.ceremony_on)["performances"]["upload_window_days"]
    return Window(start_of_day(first.starts_on), end_of_day(second.ceremony_on + timedelta(days=days)))


def selection_window(tenant_id, academic_year: int) -> Window | None:
    """The selection of ``academic_year``: the year's window, kept open at least until semester 2's
    certification deadline, so that an outcome certified on the deadline day can still be selected
    (員林: performance window ceremony + 14 days, certification ceremony + 21)."""
    window = year_window(tenant_id, academic_year)
    if window is None:
        return None
    deadline = certification_deadline(term(tenant_id, academic_year, 2))
    return Window(window.opens_at, max(window.closes_at, deadline))
