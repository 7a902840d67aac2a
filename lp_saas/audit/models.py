"""The append-only audit log (on PostgreSQL the application role cannot UPDATE or DELETE it)."""
from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from lp_saas.database import TenantMixin, UTCDateTime, db, utcnow


class AuditEvent(TenantMixin, db.Model):
    """Who did what to which target, when, from where. No foreign keys: the log outlives its targets."""

    __tablename__ = "audit_events"

    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    actor_label: Mapped[str] = mapped_column(sa.String(120))  # username, "system:job", "operator:cli"
    action: Mapped[str] = mapped_column(sa.String(60))  # e.g. user.login, student.read, rules.amend
    target_type: Mapped[str | None] = mapped_column(sa.String(40))
    target_id: Mapped[str | None] = mapped_column(sa.String(64))
    student_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)  # whose personal data, if any
    client_addr: Mapped[str | None] = mapped_column(sa.String(64))
    details: Mapped[dict | None] = mapped_column(sa.JSON)

    __table_args__ = (
        sa.Index("ix_audit_events_at", "tenant_id", "at"),
        sa.Index("ix_audit_events_actor", "tenant_id", "actor_id"),
        sa.Index("ix_audit_events_student", "tenant_id", "student_id"),
    )
