"""Each school's role matrix: roles, the permissions (with scope) each role holds, who has which role."""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from lp_saas.database import TenantLinkMixin, TenantMixin, db, tenant_fk


class Role(TenantMixin, db.Model):
    __tablename__ = "roles"

    key: Mapped[str] = mapped_column(sa.String(40))
    name_zh: Mapped[str] = mapped_column(sa.String(60))
    name_en: Mapped[str] = mapped_column(sa.String(80))
    builtin: Mapped[bool] = mapped_column(sa.Boolean, default=True, server_default=sa.true())

    __table_args__ = (sa.UniqueConstraint("tenant_id", "key"),)


class RolePermission(TenantLinkMixin, db.Model):
    __tablename__ = "role_permissions"

    role_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    permission: Mapped[str] = mapped_column(sa.String(60), primary_key=True)
    scope: Mapped[str] = mapped_column(sa.String(10))

    __table_args__ = (
        tenant_fk("role_id", "roles", ondelete="CASCADE"),
        sa.CheckConstraint("scope IN ('all','course','class','child','own')", name="scope"),
    )


class UserRole(TenantLinkMixin, db.Model):
    __tablename__ = "user_roles"

    user_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    role_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)

    __table_args__ = (
        tenant_fk("user_id", "users", ondelete="CASCADE"),
        tenant_fk("role_id", "roles", ondelete="CASCADE"),
    )
