"""Migrations on both databases, and PostgreSQL's row-level security as the second line of defence."""
import uuid

import pytest
import sqlalchemy as sa

from tests.conftest import PG_ADMIN_URL, _pg_url, fresh_pg_database


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
