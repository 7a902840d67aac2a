"""A school's governance records: its working group (工作小組), meetings with their minutes,
trainings (研習、說明會) and which rule-set versions a meeting adopted.

Tenant-owned like every school table: ``tenant_id`` first in every key. A meeting's link to the
rule-set versions it passed lives here (:class:`MeetingRuleSet`), so ``rule_sets`` stays as it is.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from lp_saas.database import TenantLinkMixin, TenantMixin, UTCDateTime, db, tenant_fk, utcnow

GROUP_ROLES = ("convener", "executive_secretary", "member")
MEETING_KINDS = ("working_group", "school_affairs", "other")
AUDIENCES = ("students", "teachers", "parents")


class WorkingGroupMember(TenantMixin, db.Model):
    """A member of the school's learning-portfolio working group (staff data: never leaves the school)."""

    __tablename__ = "working_group_members"

    name: Mapped[str] = mapped_column(sa.String(60))
    title: Mapped[str] = mapped_column(sa.String(60))  # 職稱, e.g. 教務主任
    group_role: Mapped[str] = mapped_column(sa.String(24))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("group_role IN ('convener','executive_secretary','member')", name="group_role"),
    )


class Meeting(TenantMixin, db.Model):
    """A working-group meeting, a school affairs meeting (校務會議) or another meeting, with its minutes."""

    __tablename__ = "governance_meetings"

    held_on: Mapped[date] = mapped_column(sa.Date)
    kind: Mapped[str] = mapped_column(sa.String(20))
    title: Mapped[str] = mapped_column(sa.String(120))
    minutes_key: Mapped[str | None] = mapped_column(sa.String(300))
    minutes_filename: Mapped[str | None] = mapped_column(sa.String(200))
    minutes_size: Mapped[int | None] = mapped_column(sa.BigInteger)
    minutes_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        tenant_fk("created_by_id", "users"),
        sa.Index("ix_governance_meetings_held", "tenant_id", "kind", "held_on"),
        sa.CheckConstraint("kind IN ('working_group','school_affairs','other')", name="kind"),
    )


class MeetingRuleSet(TenantLinkMixin, db.Model):
    """The rule-set version a meeting adopted. A version is adopted by at most one meeting."""

    __tablename__ = "meeting_rule_sets"

    meeting_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    rule_set_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)

    __table_args__ = (
        tenant_fk("meeting_id", "governance_meetings", ondelete="CASCADE"),
        tenant_fk("rule_set_id", "rule_sets", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "rule_set_id"),
    )


class Training(TenantMixin, db.Model):
    """A training or briefing held for students, teachers or parents (only the head count is kept)."""

    __tablename__ = "trainings"

    audience: Mapped[str] = mapped_column(sa.String(10))
    held_on: Mapped[date] = mapped_column(sa.Date)
    unit: Mapped[str] = mapped_column(sa.String(60))  # 主辦單位, e.g. 圖書館資訊媒體組
    title: Mapped[str] = mapped_column(sa.String(120))
    attendees: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        tenant_fk("created_by_id", "users"),
        sa.Index("ix_trainings_held", "tenant_id", "audience", "held_on"),
        sa.CheckConstraint("audience IN ('students','teachers','parents')", name="audience"),
        sa.CheckConstraint("attendees >= 0", name="attendees"),
    )
