"""The platform's own tables: signups, subscriptions, regional offices, platform users and their
sessions, the mail outbox and the platform's event log.

All of them are plain tables (no ``tenant_id`` in the primary key, no row-level security): they are
read on the apex host, where no school is active. A column named ``tenant_id`` here is a reference
to a school, not tenancy. Nothing here holds a student's personal data.
"""
from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from lp_saas.database import UTCDateTime, db, utcnow

SIGNUP_STATUSES = ("unverified", "verified", "approved", "rejected", "expired")
OPEN_SIGNUP_STATUSES = ("unverified", "verified")
PLATFORM_USER_KINDS = ("operator", "office_officer")

_OPEN_SIGNUP = sa.text("status IN ('unverified','verified')")


class Signup(db.Model):
    """A school's request to subscribe. It becomes a tenant only when an operator approves it.

    While it is open (``unverified`` within the verification link's lifetime, or ``verified``) it
    holds its subdomain: a partial unique index allows one open signup per slug.
    """

    __tablename__ = "signups"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    school_name: Mapped[str] = mapped_column(sa.String(120))
    school_code: Mapped[str] = mapped_column(sa.String(6))
    school_type: Mapped[str] = mapped_column(sa.String(20))
    slug: Mapped[str] = mapped_column(sa.String(40))
    contact_name: Mapped[str] = mapped_column(sa.String(60))
    contact_email: Mapped[str] = mapped_column(sa.String(254))
    plan: Mapped[str] = mapped_column(sa.String(20))
    template: Mapped[str] = mapped_column(sa.String(20), default="moe")
    status: Mapped[str] = mapped_column(sa.String(12), default="unverified")
    locale: Mapped[str | None] = mapped_column(sa.String(16))
    #: ``scheme://host[:port]`` of the apex the signup came through: the links in its mails use it
    origin: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(sa.String(120))
    reject_reason: Mapped[str | None] = mapped_column(sa.String(500))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("tenants.id", ondelete="SET NULL"))
    admin_username: Mapped[str | None] = mapped_column(sa.String(64))

    __table_args__ = (
        sa.Index("uq_signups_open_slug", "slug", unique=True,
                 sqlite_where=_OPEN_SIGNUP, postgresql_where=_OPEN_SIGNUP),
        sa.Index("ix_signups_status", "status", "created_at"),
        sa.CheckConstraint("status IN ('unverified','verified','approved','rejected','expired')", name="status"),
    )


class Subscription(db.Model):
    """A school's plan and the quotas copied from it when it was chosen (a later change of the
    catalogue does not move an existing school's limits). A school without a row has no quota."""

    __tablename__ = "subscriptions"

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("tenants.id", ondelete="CASCADE"),
                                                 primary_key=True)
    plan: Mapped[str] = mapped_column(sa.String(20))
    max_students: Mapped[int] = mapped_column(sa.Integer)
    max_storage_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    signup_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("signups.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Office(db.Model):
    """A regional education office (教育局/處, a national agency's regional unit)."""

    __tablename__ = "offices"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(sa.String(20), unique=True)  # stored upper-case
    name: Mapped[str] = mapped_column(sa.String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OfficeSchool(db.Model):
    """A school an office oversees (a school may be overseen by more than one office)."""

    __tablename__ = "office_schools"

    office_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("offices.id", ondelete="CASCADE"),
                                                 primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("tenants.id", ondelete="CASCADE"),
                                                 primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (sa.Index("ix_office_schools_tenant", "tenant_id"),)


class PlatformUser(db.Model):
    """An operator of the service or an officer of one regional office. Never a school account:
    it signs in on the apex only, and no school knows it."""

    __tablename__ = "platform_users"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(100))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    kind: Mapped[str] = mapped_column(sa.String(16))
    office_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("offices.id", ondelete="CASCADE"))
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    must_change_password: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    failed_logins: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint("kind IN ('operator','office_officer')", name="kind"),
        sa.CheckConstraint("status IN ('active','disabled')", name="status"),
        sa.CheckConstraint("(kind = 'office_officer') = (office_id IS NOT NULL)", name="officer_office"),
    )

    @property
    def is_operator(self) -> bool:
        return self.kind == "operator"

    def can_sign_in(self) -> bool:
        return self.status == "active"


class PlatformSession(db.Model):
    """A platform user's web session or API token; only the SHA-256 of the secret is stored."""

    __tablename__ = "platform_sessions"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("platform_users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(8))  # web | api
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(sa.String(40))
    client_addr: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(200))

    __table_args__ = (
        sa.Index("ix_platform_sessions_user", "user_id"),
        sa.CheckConstraint("kind IN ('web','api')", name="kind"),
    )


class PlatformMail(db.Model):
    """The mail outbox. A row is written in the transaction that causes the mail and delivered
    after it commits. Without an SMTP server (the embedded default) the mail is only logged, and
    then its body is kept so that the operator console can show it; otherwise the body is dropped
    once sent (it may carry a one-time link)."""

    __tablename__ = "platform_mails"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(sa.String(30))  # signup_verify, school_welcome, signup_rejected
    recipient: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(10), default="queued")  # queued sent logged failed
    error: Mapped[str | None] = mapped_column(sa.String(500))
    signup_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("signups.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.Index("ix_platform_mails_created", "created_at"),
        sa.CheckConstraint("status IN ('queued','sent','logged','failed')", name="status"),
    )


class PlatformEvent(db.Model):
    """What operators and the platform did outside any school (signups, offices, platform users).
    What is done to a school is recorded in that school's own audit log as well."""

    __tablename__ = "platform_events"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_label: Mapped[str] = mapped_column(sa.String(120))
    action: Mapped[str] = mapped_column(sa.String(60))
    target_type: Mapped[str | None] = mapped_column(sa.String(40))
    target_id: Mapped[str | None] = mapped_column(sa.String(64))
    client_addr: Mapped[str | None] = mapped_column(sa.String(64))
    details: Mapped[dict | None] = mapped_column(sa.JSON)

    __table_args__ = (sa.Index("ix_platform_events_at", "at"),)
