"""What the lifecycle sweeps record: graduations (sealing), legal holds, deletions, account expiries.

Every row here is a state in the database first, so a sweep that dies half-way is finished by the
next one (DESIGN.md §5, §6).
"""
from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from lp_saas.database import TenantLinkMixin, TenantMixin, UTCDateTime, db, tenant_fk, utcnow

DELETION_STATUSES = ("started", "objects_deleted", "done")
EXPIRY_STATES = ("open", "delayed", "expired")
#: what the school admin may choose instead of the rule set's policy for one account
EXPIRY_OVERRIDES = ("delay_expiry", "hand_to_deputy", "hand_to_same_subject", "expire")


class Graduation(TenantLinkMixin, db.Model):
    """A student's graduation. From ``graduated_on`` the student's data is sealed (``sealed_at``):
    read-only, visible only to the roles the school's rules name; deleted when retention ends."""

    __tablename__ = "graduations"

    student_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    graduated_on: Mapped[date] = mapped_column(sa.Date)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    sealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        tenant_fk("student_id", "users", ondelete="CASCADE"),
        sa.Index("ix_graduations_sealed", "tenant_id", "sealed_at"),
    )


class LegalHold(TenantLinkMixin, db.Model):
    """A hold on a student's data (a dispute, an investigation): deletion waits while it exists."""

    __tablename__ = "legal_holds"

    student_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    reason: Mapped[str] = mapped_column(sa.String(500))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    set_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)

    __table_args__ = (tenant_fk("student_id", "users", ondelete="CASCADE"),)


class DeletionRecord(TenantMixin, db.Model):
    """One student's deletion after retention, as a state machine; then its record, kept 5 years.

    ``started`` (objects and rows counted, object keys planned) → ``objects_deleted`` (every
    version of every planned object removed from storage) → ``done`` (every row deleted in one
    transaction). ``student_id`` is held only while the deletion runs; a finished record keeps no
    personal data: category, counts, the rule applied, when. No foreign key: it outlives the student.
    """

    __tablename__ = "deletion_records"

    category: Mapped[str] = mapped_column(sa.String(40))  # graduate_portfolio
    status: Mapped[str] = mapped_column(sa.String(16), default="started")
    student_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    due_on: Mapped[date] = mapped_column(sa.Date)  # the first day deletion was allowed
    rule: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # rule key, years, rule-set version
    planned_keys: Mapped[list | None] = mapped_column(sa.JSON)  # object keys; cleared when done
    objects: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    object_versions: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    rows: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    counts: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # table → rows
    actor_label: Mapped[str] = mapped_column(sa.String(120))
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    keep_until: Mapped[date | None] = mapped_column(sa.Date)

    __table_args__ = (
        # one deletion in progress per student (a finished record's student_id is NULL: never equal)
        sa.UniqueConstraint("tenant_id", "student_id"),
        sa.Index("ix_deletion_records_status", "tenant_id", "status"),
        sa.CheckConstraint("status IN ('started','objects_deleted','done')", name="status"),
    )


class AccountExpiry(TenantLinkMixin, db.Model):
    """What the staff-expiry sweep decided for one account, and the school admin's override.

    ``scheduled_expires_at`` is the expiry the school set; a delay moves the account's own
    ``expires_at`` to ``delayed_until``. When the school sets another expiry, the plan starts over.
    """

    __tablename__ = "account_expiries"

    user_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    scheduled_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(sa.String(12), default="open")
    delayed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handed_over: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    override: Mapped[str | None] = mapped_column(sa.String(24))
    override_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    override_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        tenant_fk("user_id", "users", ondelete="CASCADE"),
        sa.CheckConstraint("state IN ('open','delayed','expired')", name="state"),
        sa.CheckConstraint("override IS NULL OR override IN ('delay_expiry','hand_to_deputy',"
                           "'hand_to_same_subject','expire')", name="override"),
    )
