"""Migrations on both databases, and PostgreSQL's row-level security as the second line of defence."""
import uuid

import pytest
import sqlalchemy as sa

from tests.conftest import PG_ADMIN_URL, _pg_url, fresh_pg_database
from tests.test_cross_tenant import two_schools  # noqa: F401 - a school with a row of every kind


def _migrate_roundtrip(url, tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from flask_migrate import downgrade, upgrade

    from lp_saas import create_app
    from lp_saas.database import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True, "LOCAL_STORAGE_DIR": str(tmp_path)})
    with app.app_context():
        upgrade()
        tables = set(sa.inspect(db.engine).get_table_names())
        assert {"tenants", "users", "roles", "rule_sets", "audit_events", "jobs"} <= tables
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), db.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
        downgrade(revision="base")
        assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        assert "users" in sa.inspect(db.engine).get_table_names()
        db.engine.dispose()


def test_migrations_up_down_up_on_sqlite(tmp_path):
    _migrate_roundtrip(f"sqlite:///{tmp_path / 'm.sqlite3'}", tmp_path)


@pytest.mark.postgres
def test_migrations_up_down_up_on_postgresql(tmp_path):
    with fresh_pg_database("lp_migr") as name:
        _migrate_roundtrip(_pg_url(PG_ADMIN_URL, name), tmp_path)


@pytest.mark.postgres
def test_row_level_security_without_tenant_context_returns_nothing(app, make_school, make_user, database):
    school_a, school_b = make_school(), make_school()
    make_user(school_a, "student")
    make_user(school_b, "student")
    engine = sa.create_engine(database[0])  # the application's role, as the app connects
    try:
        with engine.connect() as conn:
            role = conn.execute(sa.text(
                "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")).one()
            assert role == (False, False), "the app must connect as a role that cannot bypass RLS"
            owner = conn.execute(sa.text("SELECT tableowner FROM pg_tables WHERE tablename = 'users'")).scalar()
            assert owner != conn.execute(sa.text("SELECT current_user")).scalar()
            # no tenant set: no rows, whatever the query
            assert conn.execute(sa.text("SELECT count(*) FROM users")).scalar() == 0
            assert conn.execute(sa.text("SELECT count(*) FROM roles")).scalar() == 0
            assert conn.execute(sa.text("SELECT count(*) FROM audit_events")).scalar() == 0
            # tenant A set: A's rows only, even without a WHERE clause
            conn.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(school_a.id)})
            tenants_seen = set(conn.execute(sa.text("SELECT DISTINCT tenant_id FROM users")).scalars())
            assert tenants_seen == {school_a.id}
            # writing a row for B while acting as A is refused by the policy
            with pytest.raises(sa.exc.ProgrammingError):
                conn.execute(sa.text(
                    "INSERT INTO roles (tenant_id, id, key, name_zh, name_en, builtin) "
                    "VALUES (:t, :i, 'x', 'x', 'x', false)"), {"t": str(school_b.id), "i": str(uuid.uuid4())})
            conn.rollback()
    finally:
        engine.dispose()


#: Tables with a ``tenant_id`` column and no row-level security, on purpose. They are the platform's
#: own records (migrations/versions/0005_platform.py, lp_saas/platform/models.py): their ``tenant_id``
#: says which school a platform record concerns, it is not tenancy, and they are read on the apex
#: host, where no school is active, across all schools. With RLS they would read as empty there.
PLATFORM_TABLES_WITH_TENANT_ID = {
    "signups": "a school's request to subscribe, decided by an operator on the apex; tenant_id is set "
               "only at approval (nullable, ON DELETE SET NULL)",
    "subscriptions": "a school's plan and quotas, set by an operator; the console lists every school's",
    "office_schools": "which schools a regional office oversees; an office officer reads all of them",
}


@pytest.mark.postgres
def test_every_table_with_tenant_id_has_forced_row_level_security(app, two_schools, database):
    """Every table with a tenant_id column (from the catalogue, not from a list that can go stale) has
    RLS enabled and forced with a policy on app.tenant_id, and shows no row to the application's
    role while no school is set, though school A has rows in most of them (``two_schools``)."""
    from lp_saas.database import TENANT_TABLES

    owner = sa.create_engine(database[1])
    engine = sa.create_engine(database[0])  # the application's role, as the app connects
    try:
        with owner.connect() as conn:
            rows = conn.execute(sa.text("""
                SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                       (SELECT array_agg(pg_get_expr(p.polqual, p.polrelid) || ' / '
                                         || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), ''))
                          FROM pg_policy p WHERE p.polrelid = c.oid)
                  FROM pg_class c
                  JOIN pg_namespace n ON n.oid = c.relnamespace
                  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
                 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
                 ORDER BY c.relname""")).all()
            tables = {name: (rls, force, policies or []) for name, rls, force, policies in rows}
            populated = {name for name in tables
                         if conn.execute(sa.text(f'SELECT EXISTS (SELECT 1 FROM "{name}")')).scalar()}
        # the exemptions are real: each exists, has tenant_id, and is not a tenant model
        assert set(PLATFORM_TABLES_WITH_TENANT_ID) <= set(tables)
        assert not set(PLATFORM_TABLES_WITH_TENANT_ID) & TENANT_TABLES
        rls_tables = sorted(set(tables) - set(PLATFORM_TABLES_WITH_TENANT_ID))
        assert TENANT_TABLES <= set(rls_tables), "a tenant model's table without tenant_id?"
        problems = []
        for name in rls_tables:
            rls, force, policies = tables[name]
            if not rls:
                problems.append(f"{name}: row level security not enabled")
            if not force:
                problems.append(f"{name}: row level security not forced (the owner would bypass it)")
            if not any(p.count("app.tenant_id") == 2 for p in policies):
                problems.append(f"{name}: no policy on app.tenant_id for reading and writing ({policies})")
        assert problems == [], "\n".join(problems)
        # a school with data exists; the counts below are not zero for want of rows
        assert {"users", "roles", "rule_sets", "audit_events", "jobs", "course_outcomes", "stored_files",
                "student_records", "counseling_records", "governance_meetings", "notifications"} <= populated
        with engine.connect() as conn:
            for setting in (None, ""):  # never set, and what a transaction-local setting leaves behind
                if setting is not None:
                    conn.execute(sa.text("SELECT set_config('app.tenant_id', :t, false)"), {"t": setting})
                seen = {name: conn.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar() for name in rls_tables}
                assert {name: n for name, n in seen.items() if n} == {}, f"rows visible with app.tenant_id={setting!r}"
            conn.rollback()
    finally:
        engine.dispose()
        owner.dispose()


@pytest.mark.postgres
def test_audit_log_is_append_only_for_the_application(app, make_school, database):
    school = make_school()
    engine = sa.create_engine(database[0])
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(school.id)})
            assert conn.execute(sa.text("SELECT count(*) FROM audit_events")).scalar() > 0
            for statement in ("UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"):
                with pytest.raises(sa.exc.ProgrammingError):
                    conn.execute(sa.text(statement))
                conn.rollback()
                conn.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(school.id)})
    finally:
        engine.dispose()


def test_a_row_cannot_point_at_another_schools_row(app, make_school, make_user):
    """Composite foreign keys with tenant_id: a course of school A taught by a teacher of B is refused."""
    from lp_saas.academics.models import Course
    from lp_saas.database import db
    from tests.conftest import as_tenant

    school_a, school_b = make_school(), make_school()
    teacher_b = make_user(school_b, "teacher")
    with as_tenant(app, school_a):
        db.session.add(Course(tenant_id=school_a.id, code="X", name="X", credits=1, academic_year=113,
                              semester=1, teacher_id=teacher_b.id))
        with pytest.raises(sa.exc.IntegrityError):
            db.session.commit()
        db.session.rollback()
