"""Reminders before deadlines, each sent once: a notice on the dashboard and an e-mail.

- **Upload window.** Students enrolled in a course of a semester who have no course outcome of that
  semester (withdrawn ones do not count) are reminded before the window closes
  (``academics.calendar.outcome_upload_window``; grade 12's second semester uses its own ceremony).
- **Certification deadline.** Each course's teacher with outcomes still ``submitted`` (waiting for
  certification) is reminded before ``certification_deadline``, with the count over their courses.

A reminder is due ``REMINDER_DAYS`` days before the last day (7 and 1); a run on any day inside
that range sends the nearest one not yet sent, so a missed night never loses a reminder and a late
first run does not send both. The notice's ``key`` (unique per school) is the record that makes
each reminder happen once: ``reminder:<kind>:<year>-<semester>:<days>d:<user id>``.
"""
from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from flask_babel import force_locale
from flask_babel import gettext as _

from lp_saas.academics.calendar import certification_deadline, outcome_upload_window
from lp_saas.academics.models import ClassMembership, Course, Enrollment, SchoolClass, Term
from lp_saas.accounts.models import User
from lp_saas.database import db
from lp_saas.i18n import TAIPEI, format_roc_date, format_term

REMINDER_DAYS = (7, 1)
#: terms whose ceremony is within this range of the day can have a window or deadline ahead
_TERM_LOOKBACK = timedelta(days=120)


def _offset(days_left: int) -> int | None:
    """The reminder (days before) due when ``days_left`` days remain, or None."""
    if days_left < 0:
        return None
    fitting = [r for r in REMINDER_DAYS if days_left <= r]
    return min(fitting) if fitting else None


def _terms(tenant_id, as_of: date) -> list[Term]:
    return list(db.session.scalars(sa.select(Term).where(
        Term.tenant_id == tenant_id, Term.ceremony_on >= as_of - _TERM_LOOKBACK,
        Term.starts_on <= as_of).order_by(Term.academic_year, Term.semester)))


def _grades(tenant_id, academic_year: int, student_ids) -> dict:
    """student id → grade of their homeroom class that year (None when unknown)."""
    if not student_ids:
        return {}
    return dict(db.session.execute(
        sa.select(ClassMembership.student_id, SchoolClass.grade)
        .join(SchoolClass, sa.and_(SchoolClass.tenant_id == ClassMembership.tenant_id,
                                   SchoolClass.id == ClassMembership.class_id))
        .where(ClassMembership.tenant_id == tenant_id, SchoolClass.academic_year == academic_year,
               ClassMembership.student_id.in_(list(student_ids)))).all())


def _active_users(tenant_id, ids, now) -> list[User]:
    if not ids:
        return []
    return list(db.session.scalars(sa.select(User).where(
        User.tenant_id == tenant_id, User.id.in_(list(ids)), User.status == "active",
        sa.or_(User.expires_at.is_(None), User.expires_at > now)).order_by(User.username)))


def upload_reminders(tenant, as_of: date, now) -> list[tuple[User, str, dict]]:
    """(student, key, message values) for students with nothing uploaded before a window closes."""
    from lp_saas.portfolio.models import CourseOutcome

    due = []
    for term in _terms(tenant.id, as_of):
        enrolled = set(db.session.scalars(
            sa.select(Enrollment.student_id).join(Course, sa.and_(Course.tenant_id == Enrollment.tenant_id,
                                                                  Course.id == Enrollment.course_id))
            .where(Enrollment.tenant_id == tenant.id, Course.academic_year == term.academic_year,
                   Course.semester == term.semester)))
        if not enrolled:
            continue
        uploaded = set(db.session.scalars(sa.select(CourseOutcome.student_id).where(
            CourseOutcome.tenant_id == tenant.id, CourseOutcome.academic_year == term.academic_year,
            CourseOutcome.semester == term.semester, CourseOutcome.status != "withdrawn")))
        waiting = enrolled - uploaded
        grades = _grades(tenant.id, term.academic_year, waiting)
        windows = {}
        for student in _active_users(tenant.id, waiting, now):
            grade = 12 if grades.get(student.id) == 12 else None
            window = windows.setdefault(grade, outcome_upload_window(term, grade))
            offset = _offset((window.last_day - as_of).days)
            if offset is None or as_of < window.opens_at.astimezone(TAIPEI).date():
                continue
            key = f"reminder:upload:{term.academic_year}-{term.semester}:{offset}d:{student.id}"
            due.append((student, key, {"term": (term.academic_year, term.semester), "last_day": window.last_day}))
    return due


def certification_reminders(tenant, as_of: date, now) -> list[tuple[User, str, dict]]:
    """(teacher, key, message values) for teachers with items waiting before a certification deadline."""
    from lp_saas.portfolio.models import CourseOutcome

    due = []
    for term in _terms(tenant.id, as_of):
        rows = db.session.execute(
            sa.select(Course.teacher_id, Course.grade, sa.func.count(CourseOutcome.id))
            .join(CourseOutcome, sa.and_(CourseOutcome.tenant_id == Course.tenant_id,
                                         CourseOutcome.course_id == Course.id))
            .where(Course.tenant_id == tenant.id, Course.academic_year == term.academic_year,
                   Course.semester == term.semester, CourseOutcome.status == "submitted")
            .group_by(Course.teacher_id, Course.grade)).all()
        per_teacher: dict = {}
        for teacher_id, grade, count in rows:
            deadline = certification_deadline(term, 12 if grade == 12 else None).astimezone(TAIPEI).date()
            offset = _offset((deadline - as_of).days)
            if offset is None:
                continue
            entry = per_teacher.setdefault(teacher_id, {"count": 0, "deadline": deadline, "offset": offset})
            entry["count"] += count
            entry["deadline"], entry["offset"] = min(entry["deadline"], deadline), min(entry["offset"], offset)
        for teacher in _active_users(tenant.id, per_teacher, now):
            entry = per_teacher[teacher.id]
            key = f"reminder:certify:{term.academic_year}-{term.semester}:{entry['offset']}d:{teacher.id}"
            due.append((teacher, key, {"term": (term.academic_year, term.semester), "last_day": entry["deadline"],
                                       "count": entry["count"]}))
    return due


def _message(kind: str, user: User, values: dict) -> tuple[str, str]:
    with force_locale(user.locale or "zh_Hant_TW"):
        term = format_term(*values["term"])
        day = format_roc_date(values["last_day"])
        if kind == "upload":
            return (_("Reminder: upload your course learning outcomes for %(term)s by %(day)s", term=term, day=day),
                    _("You have not uploaded any course learning outcome for %(term)s yet. The upload window "
                      "closes at the end of %(day)s.", term=term, day=day))
        return (_("Reminder: %(count)s course outcomes wait for your certification", count=values["count"]),
                _("%(count)s course outcomes of %(term)s wait for your certification. The certification "
                  "deadline is the end of %(day)s.", count=values["count"], term=term, day=day))


def sweep(tenant, as_of: date, now, *, dry_run: bool = False) -> list[dict]:
    """Send every reminder due on ``as_of`` that was not sent before. Flush only."""
    from lp_saas.notifications.services import exists, notify

    actions = []
    for kind, found in (("upload", upload_reminders(tenant, as_of, now)),
                        ("certification", certification_reminders(tenant, as_of, now))):
        for user, key, values in found:
            if exists(tenant.id, key):
                continue
            action = {"action": "send_reminder", "kind": kind, "user_id": str(user.id),
                      "key": key.rsplit(":", 1)[0], "email": bool(user.email)}
            if not dry_run:
                subject, body = _message(kind, user, values)
                link = "/outcomes" if kind == "upload" else "/outcomes/queue"
                if notify(tenant.id, user, kind=f"reminder_{kind}", subject=subject, body=body, key=key,
                          link=link) is None:
                    continue
            actions.append(action)
    db.session.flush()
    return actions
