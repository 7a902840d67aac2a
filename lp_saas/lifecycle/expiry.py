"""Staff account expiry: what happens to a teacher's pending certifications when the account ends.

The school sets ``expires_at`` per account (``PATCH /api/v1/users/{id}``). The sweep takes every
account whose expiry falls on or before the day it runs for; an account that still has pending
items (course outcomes ``submitted`` or ``verifying`` in courses it teaches) gets the school's
``staff_departure`` rule, or the school admin's override for that account:

- ``delay_expiry``: the account stays until its pending items are done or until the grace date
  (the expiry day + ``grace_days``, end of that Taiwan day), whichever comes first;
- ``hand_to_deputy`` / ``hand_to_same_subject``: the account stays through the same grace period
  (none when ``grace_days`` is 0), then each course with pending items passes to the course's
  deputy, or to a teacher of the same subject (``Course.subject``: the one teaching most courses of
  that subject that year, then by username). If that person cannot take it (none, disabled, or
  leaving too), the other choice is tried; a course nobody can take stays with its deputy's
  certification right and is shown to the school admin;
- ``expire`` (override only): the account ends on its day; pending items stay with the course.

Handing over makes the new teacher the course's ``teacher_id`` (the permission check's ``course``
scope follows at once); they get a notice. When the account's time has come it expires: its
sessions and API tokens end at once (``accounts.services``), audited as ``user.expired``.
Everything is judged against ``clock.now()``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from lp_saas import clock
from lp_saas.academics.calendar import end_of_day, start_of_day
from lp_saas.academics.models import Course
from lp_saas.accounts.models import User
from lp_saas.audit import services as audit
from lp_saas.database import db
from lp_saas.errors import ValidationFailed
from lp_saas.i18n import TAIPEI
from lp_saas.lifecycle.models import EXPIRY_OVERRIDES, AccountExpiry
from lp_saas.lifecycle.services import SYSTEM

PENDING_STATUSES = ("submitted", "verifying")
HAND_OVER = ("hand_to_deputy", "hand_to_same_subject")
ACTION_LABELS = {
    "delay_expiry": _l("Delay the expiry until the pending items are done or the grace date"),
    "hand_to_deputy": _l("Hand pending items to the course's deputy"),
    "hand_to_same_subject": _l("Hand pending items to a teacher of the same subject"),
    "expire": _l("Let the account expire on its date"),
}


@dataclass
class HandOver:
    course: Course
    pending: int
    target: User | None


@dataclass
class ExpiryPlan:
    """What will happen to one account (the page shows it; the sweep carries it out)."""

    user: User
    row: AccountExpiry | None
    scheduled: datetime  # the expiry the school set
    pending: int
    action: str  # delay_expiry | hand_to_deputy | hand_to_same_subject | expire
    source: str  # rules | override | nothing_pending
    deadline: datetime  # the end of the grace period (the expiry itself without one)
    hand_overs: list[HandOver] = field(default_factory=list)

    @property
    def state(self) -> str:
        return self.row.state if self.row else "open"

    @property
    def unassigned(self) -> int:
        return sum(h.pending for h in self.hand_overs if h.target is None)


def _synced_row(user: User, row: AccountExpiry | None) -> AccountExpiry | None:
    """The row, started over when the school has set another expiry since it was written."""
    if row is None:
        return None
    if user.expires_at not in (row.scheduled_expires_at, row.delayed_until):
        row.scheduled_expires_at, row.state, row.delayed_until, row.handed_over = user.expires_at, "open", None, 0
    return row


def pending_courses(tenant_id, teacher_id) -> list[tuple[Course, int]]:
    """Courses the user teaches with items waiting for certification, and how many (one query)."""
    from lp_saas.portfolio.models import CourseOutcome

    counts = dict(db.session.execute(
        sa.select(Course.id, sa.func.count(CourseOutcome.id))
        .join(CourseOutcome, sa.and_(CourseOutcome.tenant_id == Course.tenant_id, CourseOutcome.course_id == Course.id))
        .where(Course.tenant_id == tenant_id, Course.teacher_id == teacher_id,
               CourseOutcome.status.in_(PENDING_STATUSES))
        .group_by(Course.id)).all())
    if not counts:
        return []
    courses = db.session.scalars(sa.select(Course).where(Course.tenant_id == tenant_id, Course.id.in_(list(counts)))
                                 .order_by(Course.academic_year, Course.semester, Course.code))
    return [(course, counts[course.id]) for course in courses]


def _usable(user: User | None, leaving_id, until: datetime) -> bool:
    return (user is not None and user.id != leaving_id and user.status == "active"
            and (user.expires_at is None or user.expires_at > until))


def same_subject_teacher(tenant_id, course: Course, leaving_id, until: datetime) -> User | None:
    """The teacher of the same subject who teaches most courses of it that year (then by username)."""
    if not course.subject:
        return None
    taught = (sa.select(Course.teacher_id, sa.func.count().label("n"))
              .where(Course.tenant_id == tenant_id, Course.subject == course.subject,
                     Course.academic_year == course.academic_year, Course.teacher_id != leaving_id)
              .group_by(Course.teacher_id).subquery())
    candidates = db.session.execute(
        sa.select(User).join(taught, taught.c.teacher_id == User.id)
        .where(User.tenant_id == tenant_id, User.status == "active",
               sa.or_(User.expires_at.is_(None), User.expires_at > until))
        .order_by(taught.c.n.desc(), User.username).limit(1)).scalars().all()
    return candidates[0] if candidates else None


def _target(tenant_id, course: Course, action: str, leaving_id, until: datetime) -> User | None:
    deputy = db.session.get(User, (tenant_id, course.deputy_id)) if course.deputy_id else None
    deputy = deputy if _usable(deputy, leaving_id, until) else None
    if action == "hand_to_deputy":
        return deputy or same_subject_teacher(tenant_id, course, leaving_id, until)
    return same_subject_teacher(tenant_id, course, leaving_id, until) or deputy


def plan_for(tenant, user: User, row: AccountExpiry | None, rules: dict) -> ExpiryPlan:
    """What the rules (or the override) make of this account's expiry. Reads only."""
    departure = rules["staff_departure"]
    row = _synced_row(user, row)
    scheduled = row.scheduled_expires_at if row and row.scheduled_expires_at else user.expires_at
    courses = pending_courses(tenant.id, user.id)
    pending = sum(n for _c, n in courses)
    grace = departure["grace_days"]
    deadline = end_of_day(scheduled.astimezone(TAIPEI).date() + timedelta(days=grace)) if grace else scheduled
    if row is not None and row.override:
        action, source = row.override, "override"
    else:
        action, source = departure["policy"], "rules"
    if not pending:
        action, source, deadline = "expire", "nothing_pending", scheduled
    elif action == "expire":
        deadline = scheduled
    plan = ExpiryPlan(user, row, scheduled, pending, action, source, deadline)
    if action in HAND_OVER:
        plan.hand_overs = [HandOver(course, n, _target(tenant.id, course, action, user.id, deadline))
                           for course, n in courses]
    return plan


def _rows(tenant_id) -> dict:
    return {r.user_id: r for r in db.session.scalars(sa.select(AccountExpiry).where(AccountExpiry.tenant_id == tenant_id))}


def upcoming(tenant, *, within_days: int = 60) -> list[ExpiryPlan]:
    """Accounts whose expiry comes within ``within_days`` (or is being delayed), with their plans."""
    from lp_saas.tenants.rulesets import current_rules

    now = clock.now()
    rows = _rows(tenant.id)
    delayed = [uid for uid, r in rows.items() if r.state == "delayed"]
    users = db.session.scalars(sa.select(User).where(
        User.tenant_id == tenant.id, User.status == "active", User.expires_at.is_not(None),
        sa.or_(sa.and_(User.expires_at > now - timedelta(days=1),
                       User.expires_at <= now + timedelta(days=within_days)),
               User.id.in_(delayed) if delayed else sa.false())).order_by(User.expires_at, User.username))
    rules = current_rules(tenant.id, clock.today())
    plans = []
    for user in users:
        row = rows.get(user.id)
        if row is not None and row.state == "expired" and user.expires_at in (row.scheduled_expires_at, row.delayed_until):
            continue
        plans.append(plan_for(tenant, user, row, rules))
    return plans


def set_override(tenant, actor, user: User, action: str | None) -> AccountExpiry:
    """The school admin's choice for one account (None: follow the rules). Needs ``lifecycle.manage``.

    Raises ValidationFailed for an unknown action. Audited as ``user.expiry_override``. Flush only.
    """
    if action is not None and action not in EXPIRY_OVERRIDES:
        raise ValidationFailed({"action": str(_l("Choose one of the listed actions."))})
    row = db.session.get(AccountExpiry, (tenant.id, user.id))
    if row is None:
        row = AccountExpiry(tenant_id=tenant.id, user_id=user.id, scheduled_expires_at=user.expires_at, state="open")
        db.session.add(row)
    row.override, row.override_by_id, row.override_at = action, actor.id, clock.now()
    audit.record(tenant.id, actor, "user.expiry_override", target_type="user", target_id=user.id,
                 details={"action": action})
    db.session.flush()
    return row


def _notify_hand_over(tenant, target: User, leaving: User, course: Course, count: int) -> None:
    from lp_saas.notifications.services import notify

    with force_locale(target.locale or "zh_Hant_TW"):
        subject = _("Certifications handed over to you: %(course)s", course=course.name)
        body = _("%(count)s course outcomes of %(course)s (%(code)s) wait for certification. They were handed "
                 "over to you because %(teacher)s has left the school.",
                 count=count, course=course.name, code=course.code, teacher=leaving.display_name)
    notify(tenant.id, target, kind="hand_over", subject=subject, body=body,
           key=f"hand_over:{course.id}:{leaving.id}:{target.id}", link="/outcomes/queue")


def _hand_over(tenant, plan: ExpiryPlan, dry_run: bool) -> list[dict]:
    from lp_saas.roles import permissions

    actions = []
    for item in plan.hand_overs:
        course = item.course
        action = {"action": "hand_over", "user_id": str(plan.user.id), "course_id": str(course.id),
                  "items": item.pending, "policy": plan.action,
                  "to_user_id": str(item.target.id) if item.target else None}
        actions.append(action)
        if dry_run or item.target is None:
            continue
        course.teacher_id = item.target.id
        if course.deputy_id == item.target.id:
            course.deputy_id = None
            action["deputy_cleared"] = True
        audit.record(tenant.id, SYSTEM, "course.handed_over", target_type="course", target_id=course.id,
                     details={"from": str(plan.user.id), "to": str(item.target.id), "items": item.pending,
                              "policy": plan.action})
        _notify_hand_over(tenant, item.target, plan.user, course, item.pending)
        if plan.row is not None:
            plan.row.handed_over += item.pending
    db.session.flush()
    permissions.invalidate()
    return actions


def sweep(tenant, as_of, *, dry_run: bool = False) -> list[dict]:
    """Carry out every expiry due by the end of ``as_of`` (delays, hand-overs, expiries). Flush only."""
    from lp_saas.accounts.services import end_all_sessions, set_expiry
    from lp_saas.tenants.rulesets import current_rules

    now = clock.now()
    day_end = start_of_day(as_of + timedelta(days=1))
    rules = current_rules(tenant.id, as_of)
    rows = _rows(tenant.id)
    delayed = [uid for uid, r in rows.items() if r.state == "delayed"]
    users = list(db.session.scalars(sa.select(User).where(
        User.tenant_id == tenant.id, User.status == "active", User.expires_at.is_not(None),
        sa.or_(User.expires_at < day_end, User.id.in_(delayed) if delayed else sa.false()))
        .order_by(User.expires_at, User.username)))
    actions: list[dict] = []
    for user in users:
        row = _synced_row(user, rows.get(user.id))
        if row is not None and row.state == "expired":
            continue
        plan = plan_for(tenant, user, row, rules)
        if plan.scheduled >= day_end:
            continue
        if row is None and not dry_run:
            row = AccountExpiry(tenant_id=tenant.id, user_id=user.id, scheduled_expires_at=plan.scheduled, state="open")
            db.session.add(row)
            plan.row = row
        if plan.pending and plan.action != "expire":
            if now < plan.deadline:
                if user.expires_at != plan.deadline:
                    actions.append({"action": "delay_expiry", "user_id": str(user.id), "pending": plan.pending,
                                    "policy": plan.action, "until": plan.deadline.isoformat()})
                    if not dry_run:
                        set_expiry(SYSTEM, user, plan.deadline)
                        row.state, row.delayed_until = "delayed", plan.deadline
                continue
            if plan.action in HAND_OVER:
                actions.extend(_hand_over(tenant, plan, dry_run))
        done_early = row is not None and row.state == "delayed" and not plan.pending and user.expires_at > now
        if user.expires_at <= now or done_early:
            action = {"action": "expire_account", "user_id": str(user.id),
                      "reason": "certifications_done" if done_early else "expired"}
            if not dry_run:
                if done_early:
                    set_expiry(SYSTEM, user, now)
                action["sessions_ended"] = end_all_sessions(user, "expired")
                row.state = "expired"
                audit.record(tenant.id, SYSTEM, "user.expired", target_type="user", target_id=user.id,
                             details={"reason": action["reason"], "sessions_ended": action["sessions_ended"]})
            actions.append(action)
    db.session.flush()
    return actions


def courses_left_with_departed(tenant_id) -> list[tuple[Course, User, int]]:
    """Pending items in courses whose teacher can no longer sign in (for the school admin)."""
    from lp_saas.portfolio.models import CourseOutcome

    now = clock.now()
    counts = dict(db.session.execute(
        sa.select(Course.id, sa.func.count(CourseOutcome.id))
        .join(User, sa.and_(User.tenant_id == Course.tenant_id, User.id == Course.teacher_id))
        .join(CourseOutcome, sa.and_(CourseOutcome.tenant_id == Course.tenant_id, CourseOutcome.course_id == Course.id))
        .where(Course.tenant_id == tenant_id, CourseOutcome.status.in_(PENDING_STATUSES),
               sa.or_(User.status != "active", sa.and_(User.expires_at.is_not(None), User.expires_at <= now)))
        .group_by(Course.id)).all())
    if not counts:
        return []
    rows = db.session.execute(
        sa.select(Course, User).join(User, sa.and_(User.tenant_id == Course.tenant_id, User.id == Course.teacher_id))
        .where(Course.tenant_id == tenant_id, Course.id.in_(list(counts))).order_by(Course.code)).all()
    return [(c, u, counts[c.id]) for c, u in rows]
