"""Keeping a school's governance records. Every service needs ``governance.edit`` (checked by the
caller), takes the acting user and the school, flushes and never commits, and is audited.

Meeting minutes are a PDF of at most 10 MB uploaded through the web process (an administrator's
occasional small upload, not the students' hot path), its type sniffed from the content; the file
goes to the school's bucket under a generated key before the row is flushed, and the caller deletes
it again if the transaction does not commit (:func:`discard_minutes`).
"""
from __future__ import annotations

import hashlib
import re
import uuid
from datetime import date, timedelta

import filetype
import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from lp_saas import clock
from lp_saas.audit import services as audit
from lp_saas.database import db
from lp_saas.errors import ValidationFailed
from lp_saas.governance.models import (AUDIENCES, GROUP_ROLES, MEETING_KINDS, Meeting, MeetingRuleSet, Training,
                                       WorkingGroupMember)
from lp_saas.tenants.models import RuleSet

MINUTES_MAX_BYTES = 10 * 1024 * 1024
from lp_saas.text import UNSAFE_TEXT_RE  # noqa: E402 - shared with the roster and accounts
EARLIEST = date(2000, 1, 1)

GROUP_ROLE_LABELS = {"convener": _l("Convener"), "executive_secretary": _l("Executive secretary"),
                     "member": _l("Member")}
MEETING_KIND_LABELS = {"working_group": _l("Working-group meeting"), "school_affairs": _l("School affairs meeting"),
                       "other": _l("Other meeting")}
AUDIENCE_LABELS = {"students": _l("Students"), "teachers": _l("Teachers"), "parents": _l("Parents")}


def _text(errors, field, value, max_length, empty_message):
    if not isinstance(value, str) or not value.strip():
        errors[field] = str(empty_message)
        return None
    value = value.strip()
    if len(value) > max_length:
        errors[field] = str(_l("Use at most %(max)s characters.", max=max_length))
    elif UNSAFE_TEXT_RE.search(value):
        errors[field] = str(_l("Text may not contain angle brackets or control characters."))
    return value


def _day(errors, field, value):
    if not isinstance(value, date):
        errors[field] = str(_l("Enter the date as YYYY-MM-DD."))
        return None
    if value < EARLIEST or value > clock.today() + timedelta(days=366):
        errors[field] = str(_l("Enter a date between 2000 and a year from now."))
    return value


def _choice(errors, field, value, choices, labels):
    if value not in choices:
        errors[field] = str(_l("Choose one of: %(choices)s.", choices="、".join(str(labels[c]) for c in choices)))
    return value


# --- working group -------------------------------------------------------------------------------

def add_member(tenant, actor, *, name, title, group_role) -> WorkingGroupMember:
    errors = {}
    name = _text(errors, "name", name, 60, _l("Enter the member's name."))
    title = _text(errors, "title", title, 60, _l("Enter the member's job title."))
    _choice(errors, "group_role", group_role, GROUP_ROLES, GROUP_ROLE_LABELS)
    if errors:
        raise ValidationFailed(errors)
    member = WorkingGroupMember(tenant_id=tenant.id, name=name, title=title, group_role=group_role)
    db.session.add(member)
    db.session.flush()
    audit.record(tenant.id, actor, "governance.member_added", target_type="working_group_member", target_id=member.id)
    return member


def remove_member(tenant, actor, member: WorkingGroupMember) -> None:
    db.session.delete(member)
    audit.record(tenant.id, actor, "governance.member_removed", target_type="working_group_member",
                 target_id=member.id)
    db.session.flush()


def members(tenant_id) -> list[WorkingGroupMember]:
    order = sa.case({"convener": 0, "executive_secretary": 1}, value=WorkingGroupMember.group_role, else_=2)
    return list(db.session.scalars(sa.select(WorkingGroupMember).where(WorkingGroupMember.tenant_id == tenant_id)
                                   .order_by(order, WorkingGroupMember.created_at)))


# --- meetings ---------------------------------------------------------------------------------------

def minutes_problem(data: bytes | None) -> str | None:
    if not data:
        return str(_l("The minutes file is empty."))
    if len(data) > MINUTES_MAX_BYTES:
        return str(_l("The minutes file is larger than 10 MB."))
    kind = filetype.guess(data[:8192])
    if kind is None or kind.mime != "application/pdf":
        return str(_l("The minutes must be a PDF file."))
    return None


def _clean_filename(filename) -> str:
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f<>]", "", name).strip()[:200]
    return name or "minutes.pdf"


def linkable_rule_sets(tenant_id) -> list[RuleSet]:
    """The school's rule-set versions no meeting has been linked to yet, newest first."""
    linked = sa.select(MeetingRuleSet.rule_set_id).where(MeetingRuleSet.tenant_id == tenant_id)
    return list(db.session.scalars(sa.select(RuleSet).where(RuleSet.tenant_id == tenant_id,
                                                            RuleSet.id.not_in(linked))
                                   .order_by(RuleSet.version.desc())))


def add_meeting(tenant, actor, *, held_on, kind, title, rule_set_ids=(), minutes: tuple[str, bytes] | None = None
                ) -> Meeting:
    """Record a meeting, with its minutes (``(filename, bytes)``) and the rule-set versions it adopted.

    Raises ValidationFailed (bad date, kind or title; minutes not a PDF of at most 10 MB; a version that
    is not this school's or is already linked to another meeting). Stores the minutes in the school's
    bucket before flushing the row.
    """
    from lp_saas.platform.services import QuotaExceeded, check_storage_quota
    from lp_saas.storage import get_storage

    errors = {}
    _day(errors, "held_on", held_on)
    _choice(errors, "kind", kind, MEETING_KINDS, MEETING_KIND_LABELS)
    title = _text(errors, "title", title, 120, _l("Enter the meeting's name."))
    open_versions = {str(r.id): r for r in linkable_rule_sets(tenant.id)}
    chosen = []
    for value in dict.fromkeys(str(v) for v in rule_set_ids or ()):
        if value not in open_versions:
            errors["rule_sets"] = str(_l("Choose rule-set versions of this school that no other meeting adopted."))
            break
        chosen.append(open_versions[value])
    if minutes is not None:
        problem = minutes_problem(minutes[1])
        if problem:
            errors["minutes"] = problem
        else:
            try:
                check_storage_quota(tenant, len(minutes[1]))
            except QuotaExceeded as full:
                errors["minutes"] = str(full.message)
    if errors:
        raise ValidationFailed(errors)
    meeting = Meeting(tenant_id=tenant.id, id=uuid.uuid4(), held_on=held_on, kind=kind, title=title,
                      created_by_id=getattr(actor, "id", None))
    if minutes is not None:
        filename, data = minutes
        meeting.minutes_key = f"governance/meetings/{meeting.id}/{uuid.uuid4().hex}"
        meeting.minutes_filename = _clean_filename(filename)
        meeting.minutes_size = len(data)
        meeting.minutes_sha256 = hashlib.sha256(data).hexdigest()
        get_storage().put_bytes(tenant.bucket, meeting.minutes_key, data, "application/pdf")
    db.session.add(meeting)
    db.session.flush()
    for rule_set in chosen:
        db.session.add(MeetingRuleSet(tenant_id=tenant.id, meeting_id=meeting.id, rule_set_id=rule_set.id))
    audit.record(tenant.id, actor, "governance.meeting_added", target_type="meeting", target_id=meeting.id,
                 details={"kind": kind, "held_on": held_on.isoformat(), "minutes": minutes is not None,
                          "rule_set_versions": [r.version for r in chosen]})
    db.session.flush()
    return meeting


def discard_minutes(tenant, meeting: Meeting | None) -> None:
    """Remove a meeting's stored minutes (after a rollback, or when the meeting is deleted)."""
    from lp_saas.storage import get_storage

    if meeting is not None and meeting.minutes_key:
        get_storage().delete_object(tenant.bucket, meeting.minutes_key)


def delete_meeting(tenant, actor, meeting: Meeting) -> str | None:
    """Delete a meeting record (and its links). Returns the minutes key to delete after the commit."""
    key = meeting.minutes_key
    db.session.execute(sa.delete(MeetingRuleSet).where(MeetingRuleSet.tenant_id == tenant.id,
                                                       MeetingRuleSet.meeting_id == meeting.id))
    db.session.delete(meeting)
    audit.record(tenant.id, actor, "governance.meeting_deleted", target_type="meeting", target_id=meeting.id)
    db.session.flush()
    return key


def meetings(tenant_id) -> list[tuple[Meeting, list[RuleSet]]]:
    """The school's meetings, newest first, each with the rule-set versions it adopted."""
    rows = list(db.session.scalars(sa.select(Meeting).where(Meeting.tenant_id == tenant_id)
                                   .order_by(Meeting.held_on.desc(), Meeting.created_at.desc())))
    adopted: dict = {}
    for meeting_id, rule_set in db.session.execute(
            sa.select(MeetingRuleSet.meeting_id, RuleSet)
            .join(RuleSet, sa.and_(RuleSet.tenant_id == MeetingRuleSet.tenant_id, RuleSet.id == MeetingRuleSet.rule_set_id))
            .where(MeetingRuleSet.tenant_id == tenant_id).order_by(RuleSet.version)):
        adopted.setdefault(meeting_id, []).append(rule_set)
    return [(m, adopted.get(m.id, [])) for m in rows]


# --- trainings -----------------------------------------------------------------------------------------

def add_training(tenant, actor, *, audience, held_on, unit, title, attendees) -> Training:
    errors = {}
    _choice(errors, "audience", audience, AUDIENCES, AUDIENCE_LABELS)
    _day(errors, "held_on", held_on)
    unit = _text(errors, "unit", unit, 60, _l("Enter the unit that held it."))
    title = _text(errors, "title", title, 120, _l("Enter the training's title."))
    if not isinstance(attendees, int) or isinstance(attendees, bool) or not 0 <= attendees <= 100000:
        errors["attendees"] = str(_l("Enter the number of attendees (0 to 100000)."))
    if errors:
        raise ValidationFailed(errors)
    training = Training(tenant_id=tenant.id, audience=audience, held_on=held_on, unit=unit, title=title,
                        attendees=attendees, created_by_id=getattr(actor, "id", None))
    db.session.add(training)
    db.session.flush()
    audit.record(tenant.id, actor, "governance.training_added", target_type="training", target_id=training.id,
                 details={"audience": audience, "held_on": held_on.isoformat()})
    return training


def delete_training(tenant, actor, training: Training) -> None:
    db.session.delete(training)
    audit.record(tenant.id, actor, "governance.training_deleted", target_type="training", target_id=training.id)
    db.session.flush()


def trainings(tenant_id, since: date | None = None) -> list[Training]:
    query = sa.select(Training).where(Training.tenant_id == tenant_id)
    if since is not None:
        query = query.where(Training.held_on >= since)
    return list(db.session.scalars(query.order_by(Training.held_on.desc(), Training.created_at.desc())))
