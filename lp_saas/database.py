"""Database: the SQLAlchemy object, the tenant mixin, and the PostgreSQL second line of defence.

Every tenant-owned table carries ``tenant_id`` in its primary key, unique constraints and foreign
keys (DESIGN.md §5), so a row of school A can never point at a row of school B, and the schema can
be distributed by ``tenant_id``. Ids are application-generated UUIDs: the same on SQLite and
PostgreSQL, and unguessable across schools.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=sa.MetaData(naming_convention=NAMING_CONVENTION))

#: tables that carry tenant_id and get row-level security on PostgreSQL (filled by TenantMixin)
TENANT_TABLES: set[str] = set()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(sa.types.TypeDecorator):
    """Timezone-aware UTC datetimes on both databases (SQLite drops the offset otherwise)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use an aware UTC datetime")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class TenantMixin:
    """Tenant-owned rows: primary key ``(tenant_id, id)``, ``tenant_id`` first everywhere."""

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True, sort_order=-10
    )
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4, sort_order=-9)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("__tablename__")
        if name:
            TENANT_TABLES.add(name)


class TenantLinkMixin:
    """Tenant-owned join rows whose primary key is made of their foreign keys (no own id)."""

    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:
        return mapped_column(sa.Uuid, sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True,
                             sort_order=-10)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("__tablename__")
        if name:
            TENANT_TABLES.add(name)


def tenant_fk(column: str, target: str, ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    """A foreign key to another tenant-owned table that includes ``tenant_id`` on both sides."""
    return sa.ForeignKeyConstraint(
        ["tenant_id", column], [f"{target}.tenant_id", f"{target}.id"], ondelete=ondelete
    )


# --- the tenant of the open transaction (PostgreSQL row-level security) -----------------------

def _current_tenant_id_text() -> str:
    from lp_saas.tenants.context import current_tenant_id

    tenant_id = current_tenant_id()
    return str(tenant_id) if tenant_id is not None else ""


def _set_tenant_setting(connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": _current_tenant_id_text()}
        )


@event.listens_for(Session, "after_begin")
def _tenant_on_begin(session, transaction, connection):
    _set_tenant_setting(connection)


def apply_tenant_to_transaction() -> None:
    """Re-apply the active tenant to a transaction that is already open (after a tenant switch)."""
    session = db.session()
    if session.in_transaction():
        _set_tenant_setting(session.connection())


def sqlite_pragmas(engine) -> None:
    """SQLite enforces foreign keys only when asked, on every connection."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: no corruption, fewer fsyncs
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


# --- used by Alembic migrations -------------------------------------------------------------

def enable_tenant_rls(op, table: str) -> None:
    """Row-level security on a tenant-owned table (PostgreSQL only; a no-op on SQLite)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
    op.execute(
        f'CREATE POLICY tenant_isolation ON "{table}" '
        "USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid) "
        "WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
    )


def grant_app_role(op, role: str = "lp_app") -> None:
    """Give the application's login role what it needs, and nothing more (PostgreSQL only).

    The role must exist beforehand (README: production setup); if it does not, nothing is granted
    and the migration still succeeds, so a developer's database works without it.
    """
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    exists = bind.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar()
    if not exists:
        return
    op.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"')
    op.execute(f'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{role}"')
    # the audit log is append-only for the application
    op.execute(f'REVOKE UPDATE, DELETE ON audit_events FROM "{role}"')
    op.execute(f'REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM "{role}"')
