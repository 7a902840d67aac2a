"""Schools (tenants) and their supplementary-rule versions."""
from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from lp_saas.database import TenantMixin, UTCDateTime, db, tenant_fk, utcnow

TENANT_STATUSES = ("pending", "provisioning", "active", "suspended")
SCHOOL_TYPES = ("general", "vocational", "comprehensive", "experimental", "other")  # 普高 技高 綜高 實驗 其他


class Tenant(db.Model):
    """A subscribing school: platform-level row (not under row-level security)."""

    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    slug: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    name_en: Mapped[str | None] = mapped_column(sa.String(160))
    school_code: Mapped[str] = mapped_column(sa.String(6))
    school_type: Mapped[str] = mapped_column(sa.String(20), default="general")
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")
    template: Mapped[str] = mapped_column(sa.String(20), default="moe")
    bucket: Mapped[str] = mapped_column(sa.String(63), unique=True)
    primary_color: Mapped[str] = mapped_column(sa.String(7), default="#1d4e89")
    accent_color: Mapped[str] = mapped_column(sa.String(7), default="#f2a900")
    logo_key: Mapped[str | None] = mapped_column(sa.String(512))
    motto: Mapped[str | None] = mapped_column(sa.String(200))
    suspended_reason: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    provisioned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint("status IN ('pending','provisioning','active','suspended')", name="status"),
    )

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<Tenant {self.slug} {self.status}>"


class RuleSet(TenantMixin, db.Model):
    """One version of a school's supplementary rules (補充規定), adopted by a named meeting on a date.

    Versions are never edited once stored: an amendment is a new version. The version in force on
    a day is the one with the latest ``adopted_on`` not after that day.
    """

    __tablename__ = "rule_sets"

    version: Mapped[int] = mapped_column(sa.Integer)
    adopted_on: Mapped[date] = mapped_column(sa.Date)
    adopted_by: Mapped[str] = mapped_column(sa.String(120))  # the meeting, e.g. 期末校務會議
    summary: Mapped[str] = mapped_column(sa.String(500), default="")
    data: Mapped[dict] = mapped_column(sa.JSON)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "version"),
        tenant_fk("created_by_id", "users"),
    )
