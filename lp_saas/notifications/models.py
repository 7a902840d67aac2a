"""Notices shown on a user's dashboard, each optionally also sent by e-mail."""
from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from lp_saas.database import TenantMixin, UTCDateTime, db, tenant_fk, utcnow

EMAIL_STATUSES = ("none", "queued", "sent", "recorded")


class Notification(TenantMixin, db.Model):
    """One notice to one user. ``key`` (unique per school) makes a reminder happen once: a second
    notice with the same key is never created. ``email_status``: ``none`` (dashboard only),
    ``queued`` (a ``send_email`` job will send it), ``sent`` (handed to the SMTP server) or
    ``recorded`` (no SMTP server configured: the message is kept here instead)."""

    __tablename__ = "notifications"

    user_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    key: Mapped[str | None] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(40))
    subject: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    link: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    email_to: Mapped[str | None] = mapped_column(sa.String(254))
    email_status: Mapped[str] = mapped_column(sa.String(10), default="none")
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        tenant_fk("user_id", "users", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "key"),
        sa.Index("ix_notifications_user", "tenant_id", "user_id", "read_at"),
        sa.CheckConstraint("email_status IN ('none','queued','sent','recorded')", name="email_status"),
    )
