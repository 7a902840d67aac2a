"""Lifecycle sweeps: each one day before and one day after its date, the legal hold, the resume after
a crash, dry runs that change nothing, staff expiry with its policies, reconciliation, and the pages."""
from __future__ import annotations

import hashlib
import json
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

import lp_saas.lifecycle.api  # noqa: F401 - its routes join the API blueprint before an app registers it
import lp_saas.portfolio.outcomes  # noqa: F401 - the outcome's file callback (verified → submitted)
from lp_saas import clock
from lp_saas.academics.calendar import end_of_day, start_of_day
from lp_saas.academics.models import ClassMembership, Course, Enrollment, ParentLink, SchoolClass, StudentRecord
from lp_saas.accounts.models import AuthSession, User
from lp_saas.audit.models import AuditEvent
from lp_saas.database import db
from lp_saas.jobs.models import Job
from lp_saas.lifecycle.models import AccountExpiry, DeletionRecord, Graduation, LegalHold
from lp_saas.notifications.models import Notification
from lp_saas.portfolio.models import (CourseOutcome, Performance, PerformanceSummary, SelectionItem, SelfStatement,
                                      StoredFile)
from lp_saas.records.models import CadreRole
from lp_saas.storage import get_storage
from tests.conftest import PASSWORD, as_tenant, base_test_config, post_form

PDF = b"%PDF-1.4\n%lp-saas test\n" + b"0" * 300
TODAY = datetime.now(timezone.utc).date()


@pytest.fixture(scope="module")
def app(database, instance_dir):
    """The app with the lifecycle registered (``init_app`` is idempotent: a no-op once ``create_app``
    registers the lifecycle itself)."""
    from lp_saas import create_app
    from lp_saas.lifecycle import init_app

    app = create_app(base_test_config(database[0], instance_dir))
    init_app(app)
    return app


# --- helpers ---------------------------------------------------------------------------------------

def run_cli(app, *args):
    result = app.test_cli_runner().invoke(args=["lifecycle", *args])
    actions = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result, actions


def run_as_of(app, school, day: date, *extra):
    """``flask lifecycle run --tenant S --as-of DAY``: (exit code, actions)."""
    result, actions = run_cli(app, "run", "--tenant", school.slug, "--as-of", day.isoformat(), *extra)
    return result.exit_code, actions


def run_now(app, school, *extra):
    """``flask lifecycle run --tenant S`` on the real clock: (exit code, actions)."""
    result, actions = run_cli(app, "run", "--tenant", school.slug, *extra)
    return result.exit_code, actions


def of_kind(actions, action, **match):
    return [a for a in actions if a["action"] == action and all(a.get(k) == v for k, v in match.items())]


def add_file(school, owner_kind, owner_id, student_id, *, data=PDF, status="verified", versions=1,
             upload_expires_at=None) -> StoredFile:
    """A stored file row and its object (``versions`` uploads of the same key). Inside as_tenant."""
    file_id = uuid.uuid4()
    key = f"{owner_kind}s/{owner_id}/{file_id}"
    stored = StoredFile(tenant_id=school.id, id=file_id, owner_kind=owner_kind, owner_id=owner_id,
                        student_id=student_id, key=key, filename="學習成果.pdf", file_type="pdf",
                        content_type="application/pdf", declared_size=len(data),
                        declared_sha256=hashlib.sha256(data).hexdigest(), status=status,
                        upload_expires_at=upload_expires_at or clock.now() + timedelta(minutes=30))
    db.session.add(stored)
    db.session.flush()
    for version in range(versions):
        body = data if version == versions - 1 else data + b"older version %d" % version
        get_storage().put_bytes(school.bucket, key, body, "application/pdf")
    return stored


def add_course(school, teacher, *, code=None, subject="數學", deputy=None, year=113, semester=2, grade=None):
    course = Course(tenant_id=school.id, code=code or f"C{uuid.uuid4().hex[:8]}", name=f"{subject}課程",
                    credits=2, academic_year=year, semester=semester, grade=grade, subject=subject,
                    teacher_id=teacher.id, deputy_id=deputy.id if deputy else None)
    db.session.add(course)
    db.session.flush()
    return course


def add_outcome(school, student, course, status="submitted") -> CourseOutcome:
    if db.session.get(Enrollment, (school.id, course.id, student.id)) is None:
        db.session.add(Enrollment(tenant_id=school.id, course_id=course.id, student_id=student.id))
    outcome = CourseOutcome(tenant_id=school.id, id=uuid.uuid4(), student_id=student.id, course_id=course.id,
                            academic_year=course.academic_year, semester=course.semester, title="成果",
                            status=status, created_by_id=student.id)
    db.session.add(outcome)
    db.session.flush()
    return outcome


def versions_under(app, school, prefix: str) -> list:
    """Every stored version under ``prefix`` (S3: all versions and delete markers; local: keys)."""
    with app.app_context():
        storage = get_storage()
        client = getattr(storage, "_client", None)
        if client is not None:
            return [(o.object_name, o.version_id) for o in
                    client.list_objects(school.bucket, prefix=prefix, recursive=True, include_version=True)]
        return [(key, None) for key in storage.list_keys(school.bucket, prefix)]


def rows_of(app, school, student_id) -> dict:
    """Rows of any table that name the student (by student_id, user_id or as the user), audit aside."""
    out = {}
    with as_tenant(app, school):
        for table in db.metadata.sorted_tables:
            if "tenant_id" not in table.c or table.name in ("audit_events", "deletion_records"):
                continue
            conds = [table.c[c] == student_id for c in ("student_id", "user_id", "parent_id") if c in table.c]
            if table.name == "users":
                conds.append(table.c.id == student_id)
            if not conds:
                continue
            n = db.session.scalar(sa.select(sa.func.count()).select_from(table).where(
                table.c.tenant_id == school.id, sa.or_(*conds)))
            if n:
                out[table.name] = n
    return out


def snapshot(app, school) -> dict:
    """Every row of every table of the school, and every stored version in its bucket."""
    out = {}
    with as_tenant(app, school):
        for table in db.metadata.sorted_tables:
            if "tenant_id" not in table.c:
                continue
            rows = db.session.execute(sa.select(table).where(table.c.tenant_id == school.id)).all()
            out[table.name] = sorted(repr(tuple(r)) for r in rows)
    out["storage"] = sorted(versions_under(app, school, ""))
    return out


@pytest.fixture
def graduate(app, make_school, make_user):
    """A 員林 school with a student whose portfolio touches every area, a classmate, a parent."""
    school = make_school("yuanlin")
    admin = make_user(school, "school_admin")
    registrar = make_user(school, "registrar")
    teacher = make_user(school, "teacher")
    homeroom = make_user(school, "teacher", "homeroom_teacher")
    parent = make_user(school, "parent")
    student = make_user(school, "student", student_no=f"G{uuid.uuid4().hex[:6]}", email="grad@example.test")
    classmate = make_user(school, "student", student_no=f"K{uuid.uuid4().hex[:6]}")
    with as_tenant(app, school):
        course = add_course(school, teacher)
        klass = SchoolClass(tenant_id=school.id, academic_year=113, name="301", grade=12,
                            homeroom_teacher_id=homeroom.id)
        db.session.add(klass)
        db.session.flush()
        db.session.add_all([
            ClassMembership(tenant_id=school.id, class_id=klass.id, student_id=student.id),
            ClassMembership(tenant_id=school.id, class_id=klass.id, student_id=classmate.id),
            ParentLink(tenant_id=school.id, parent_id=parent.id, student_id=student.id),
            StudentRecord(tenant_id=school.id, student_id=student.id, national_id="A123456789"),
        ])
        outcome = add_outcome(school, student, course, status="certified")
        outcome_file = add_file(school, "outcome", outcome.id, student.id, versions=2)
        outcome.file_id = outcome_file.id
        perf = Performance(tenant_id=school.id, id=uuid.uuid4(), student_id=student.id, academic_year=113,
                           semester=1, title="志工服務", status="submitted", category="service_learning",
                           details={"hours": 8})
        db.session.add(perf)
        db.session.flush()
        perf.file_id = add_file(school, "performance", perf.id, student.id).id
        db.session.add_all([
            SelfStatement(tenant_id=school.id, id=uuid.uuid4(), student_id=student.id, kind="autobiography",
                          target="國立臺灣大學", title="自傳", body="我的學習歷程"),
            PerformanceSummary(tenant_id=school.id, student_id=student.id, body="綜整心得"),
            SelectionItem(tenant_id=school.id, student_id=student.id, academic_year=113, item_kind="outcome",
                          item_id=outcome.id),
            CadreRole(tenant_id=school.id, id=uuid.uuid4(), student_id=student.id, academic_year=113, semester=1,
                      level="class", unit="301", title="班長"),
        ])
        kept = add_outcome(school, classmate, course, status="certified")
        kept.file_id = add_file(school, "outcome", kept.id, classmate.id).id
        from lp_saas.notifications.services import notify

        notify(school.id, db.session.get(User, (school.id, student.id)), kind="test", subject="s", body="b",
               email=False)
        db.session.commit()
        ids = {"course": course.id, "outcome": outcome.id, "kept": kept.id, "perf": perf.id}
    return {"school": school, "admin": admin, "registrar": registrar, "teacher": teacher, "homeroom": homeroom,
            "parent": parent, "student": student, "classmate": classmate, **ids}


def graduate_on(app, api_for, world, day: date, drain_jobs):
    """The registrar posts the graduation (the clock set just after ``day``), the job seals it, and
    the next nightly run expires the graduate's account."""
    with clock.frozen(start_of_day(day + timedelta(days=1))):
        response = api_for(world["school"], world["registrar"]).post(
            "/api/v1/graduations", {"student_ids": [str(world["student"].id)], "graduated_on": day.isoformat()})
        assert response.status_code == 202, response.get_json()
        drain_jobs()
    code, actions = run_as_of(app, world["school"], day + timedelta(days=1))
    assert code == 0 and of_kind(actions, "expire_account", user_id=str(world["student"].id)), actions
    with as_tenant(app, world["school"]):
        assert db.session.get(Graduation, (world["school"].id, world["student"].id)).sealed_at is not None
    return response.get_json()


# --- the command line ------------------------------------------------------------------------------

def test_bad_arguments_are_refused_with_a_clear_error(app, make_school):
    school = make_school()
    for args, message in ((["--as-of", "2028-13-01"], "--as-of"), (["--as-of", "tomorrow"], "--as-of"),
                          (["--tenant", "no-such-school"], "no school")):
        result, actions = run_cli(app, "run", *args)
        assert result.exit_code == 2 and message in result.output and actions == []
    result, _ = run_cli(app, "jobs", "--tenant", "no-such-school")
    assert result.exit_code == 2
    result, actions = run_cli(app, "run", "--tenant", school.slug)
    assert result.exit_code == 0, result.output
    assert all(a["tenant"] == school.slug for a in actions)


# --- graduation and sealing ------------------------------------------------------------------------

def test_graduation_api_checks_who_and_what(app, graduate, api_for, make_school, make_user):
    w = graduate
    registrar_api = api_for(w["school"], w["registrar"])
    other_school = make_school()
    stranger = make_user(other_school, "student")
    for body in ({"student_ids": [str(stranger.id)], "graduated_on": TODAY.isoformat()},
                 {"student_ids": [str(w["teacher"].id)], "graduated_on": TODAY.isoformat()},
                 {"student_ids": [str(w["student"].id)], "graduated_on": (TODAY - timedelta(days=3 * 366 + 1)).isoformat()},
                 {"student_ids": [str(w["student"].id)], "graduated_on": (TODAY + timedelta(days=367)).isoformat()},
                 {"student_ids": [], "graduated_on": TODAY.isoformat()},
                 {"student_ids": [str(w["student"].id)], "graduated_on": "2025-02-30"},
                 {"student_ids": [str(w["student"].id)], "graduated_on": TODAY.isoformat(), "seal": False}):
        response = registrar_api.post("/api/v1/graduations", body)
        assert response.status_code == 422, (body, response.get_json())
    assert api_for(w["school"], w["teacher"]).post(
        "/api/v1/graduations", {"student_ids": [str(w["student"].id)], "graduated_on": TODAY.isoformat()}
    ).status_code == 403
    with as_tenant(app, w["school"]):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Graduation).where(
            Graduation.tenant_id == w["school"].id)) == 0
    # a cohort of two years ago may still be recorded (its retention runs on), sealed at once
    past = registrar_api.post("/api/v1/graduations", {"student_ids": [str(w["student"].id)],
                                                      "graduated_on": (TODAY - timedelta(days=730)).isoformat()})
    assert past.status_code == 202, past.get_json()


def test_add_years_never_moves_a_day_earlier():
    from lp_saas.lifecycle.services import add_years, deletion_due_on

    assert add_years(date(2024, 2, 29), 3) == date(2027, 3, 1)
    assert add_years(date(2024, 2, 29), 4) == date(2028, 2, 29)
    assert deletion_due_on(date(2025, 6, 30), 3) == date(2028, 7, 1)


def test_sealing_one_day_before_and_after_its_day(app, graduate, api_for, drain_jobs):
    w = graduate
    school, student = w["school"], w["student"]
    day = TODAY + timedelta(days=20)
    student_api = api_for(school, student)
    response = api_for(school, w["registrar"]).post(
        "/api/v1/graduations", {"student_ids": [str(student.id)], "graduated_on": day.isoformat()})
    assert response.status_code == 202 and response.get_json()["recorded"] == [str(student.id)]
    drain_jobs()  # the sealing job: nothing is due yet

    code, actions = run_as_of(app, school, day - timedelta(days=1))
    assert code == 0 and not of_kind(actions, "seal_student")
    assert student_api.get("/api/v1/me").status_code == 200

    code, actions = run_as_of(app, school, day + timedelta(days=1))
    sealed = of_kind(actions, "seal_student", student_id=str(student.id))
    assert code == 0 and len(sealed) == 1 and sealed[0]["graduated_on"] == day.isoformat()
    assert sealed[0]["sessions_ended"] >= 1
    assert student_api.get("/api/v1/me").status_code == 401  # the graduate's token ended at once
    with as_tenant(app, school):
        grad = db.session.get(Graduation, (school.id, student.id))
        assert grad.sealed_at is not None
        assert db.session.get(StudentRecord, (school.id, student.id)).status == "graduated"
    code, actions = run_as_of(app, school, day + timedelta(days=2))
    assert not of_kind(actions, "seal_student")  # once


def test_sealed_data_is_read_only_and_only_for_the_named_roles(app, graduate, api_for, drain_jobs):
    from lp_saas.errors import Forbidden
    from lp_saas.roles import permissions
    from werkzeug.exceptions import NotFound

    w = graduate
    school = w["school"]
    graduate_on(app, api_for, w, TODAY - timedelta(days=1), drain_jobs)
    student_id, outcome_target = w["student"].id, {"student_id": w["student"].id, "course_id": w["course"]}
    with as_tenant(app, school):
        users = {k: db.session.get(User, (school.id, w[k].id))
                 for k in ("admin", "registrar", "teacher", "homeroom", "parent", "classmate")}
        # reads: only the rule set's roles (registrar, school_admin)
        assert permissions.can(users["registrar"], "course_outcome.view", **outcome_target)
        assert permissions.can(users["admin"], "basic_data.view", student_id=student_id)
        for who in ("teacher", "homeroom", "parent"):
            assert not permissions.can(users[who], "course_outcome.view", **outcome_target), who
        # writes: nobody
        assert not permissions.can(users["teacher"], "course_outcome.certify", **outcome_target)
        assert not permissions.can(users["registrar"], "basic_data.edit", student_id=student_id)
        with pytest.raises(Forbidden) as refused:
            permissions.require(users["registrar"], "basic_data.edit", student_id=student_id)
        assert refused.value.code == "sealed"
        with pytest.raises(NotFound):
            permissions.require(users["teacher"], "course_outcome.view", **outcome_target)
        # the lifecycle's own permissions still reach the graduate
        assert permissions.can(users["registrar"], "lifecycle.manage", student_id=student_id)
        # lists: one condition, the graduate left out where the user may not read
        visible = lambda user, perm: set(db.session.scalars(sa.select(CourseOutcome.student_id).where(  # noqa: E731
            CourseOutcome.tenant_id == school.id,
            permissions.student_filter(user, perm, CourseOutcome.student_id, CourseOutcome.course_id))))
        assert visible(users["teacher"], "course_outcome.view") == {w["classmate"].id}
        assert visible(users["registrar"], "course_outcome.view") == {student_id, w["classmate"].id}
        assert visible(users["teacher"], "course_outcome.certify") == {w["classmate"].id}
        # the classmate is untouched
        assert permissions.can(users["teacher"], "course_outcome.certify", student_id=w["classmate"].id,
                               course_id=w["course"])


def test_the_sealed_check_costs_one_query_per_request(app, graduate, api_for, drain_jobs):
    from lp_saas.roles import permissions

    w = graduate
    graduate_on(app, api_for, w, TODAY - timedelta(days=1), drain_jobs)
    with as_tenant(app, w["school"]):
        teacher = db.session.get(User, (w["school"].id, w["teacher"].id))
        permissions.grants(teacher), permissions.user_roles(teacher), permissions._taught_course_ids(teacher)
        permissions._course_student_ids(teacher)
        statements = []
        listener = lambda *a, **k: statements.append(a[2])  # noqa: E731
        engine = db.engine
        sa.event.listen(engine, "before_cursor_execute", listener)
        try:
            for _ in range(50):
                permissions.can(teacher, "course_outcome.view", student_id=w["student"].id)
                permissions.can(teacher, "course_outcome.view", student_id=w["classmate"].id)
        finally:
            sa.event.remove(engine, "before_cursor_execute", listener)
        assert len([s for s in statements if "graduations" in s]) == 1, statements
        assert len(statements) <= 3, statements  # the sealed ids, and the rules once for the sealed one


def test_the_rule_sets_roles_decide_who_reads_sealed_data(app, graduate, api_for, drain_jobs):
    from lp_saas.roles import permissions
    from lp_saas.tenants import rulesets

    w = graduate
    school = w["school"]
    graduate_on(app, api_for, w, TODAY - timedelta(days=1), drain_jobs)
    registrar_api = api_for(school, w["registrar"])
    assert registrar_api.get(f"/api/v1/users/{w['student'].id}").status_code == 200
    with as_tenant(app, school):
        data = rulesets.current_rules(school.id)
        data["graduates"]["sealed_viewer_roles"] = ["school_admin"]
        admin = db.session.get(User, (school.id, w["admin"].id))
        rulesets.amend(school, admin, data=data, adopted_on=TODAY.isoformat(), adopted_by="校務會議")
        db.session.commit()
        permissions.invalidate()
        registrar = db.session.get(User, (school.id, w["registrar"].id))
        assert not permissions.can(registrar, "course_outcome.view", student_id=w["student"].id)
        assert permissions.can(admin, "course_outcome.view", student_id=w["student"].id)
    assert registrar_api.get(f"/api/v1/users/{w['student'].id}").status_code == 404


# --- deletion after retention ----------------------------------------------------------------------

GRADUATED = date(2025, 6, 15)
LAST_KEPT = date(2028, 6, 15)  # 員林: three years
DUE = date(2028, 6, 16)


def test_deletion_never_early_then_every_row_and_every_version(app, graduate, api_for, drain_jobs):
    w = graduate
    school, student = w["school"], w["student"]
    graduate_on(app, api_for, w, GRADUATED, drain_jobs)
    before = rows_of(app, school, student.id)
    assert {"users", "course_outcomes", "stored_files", "performances", "self_statements", "selection_items",
            "enrollments", "class_memberships", "parent_links", "student_records", "cadre_roles",
            "graduations", "notifications", "user_roles"} <= set(before)
    student_prefixes = [f"outcomes/{w['outcome']}/", f"performances/{w['perf']}/"]
    assert len(versions_under(app, school, student_prefixes[0])) >= (2 if app.config.get("S3_ENDPOINT") else 1)
    classmate_before = rows_of(app, school, w["classmate"].id)

    code, actions = run_as_of(app, school, LAST_KEPT)
    assert code == 0 and not of_kind(actions, "delete_student_data")
    assert rows_of(app, school, student.id) == before

    code, actions = run_as_of(app, school, DUE)
    deleted = of_kind(actions, "delete_student_data", student_id=str(student.id))
    assert code == 0 and len(deleted) == 1, actions
    assert deleted[0]["objects"] == 2 and deleted[0]["rows"] == sum(before.values())
    assert deleted[0]["tenant"] == school.slug
    assert rows_of(app, school, student.id) == {}
    for prefix in student_prefixes:
        assert versions_under(app, school, prefix) == []
    assert rows_of(app, school, w["classmate"].id) == classmate_before
    assert versions_under(app, school, f"outcomes/{w['kept']}/") != []
    with as_tenant(app, school):  # the parent had no other child here: the account is closed
        assert db.session.get(User, (school.id, w["parent"].id)).status == "disabled"
    assert api_for(school).post("/api/v1/auth/token", {"username": w["parent"].username,
                                                       "password": PASSWORD}).status_code in (401, 403)
    with as_tenant(app, school):
        record = db.session.scalar(sa.select(DeletionRecord).where(DeletionRecord.tenant_id == school.id))
        assert record.status == "done" and record.student_id is None and record.planned_keys is None
        assert record.category == "graduate_portfolio" and record.objects == 2 and record.rows == sum(before.values())
        assert record.rule["retention_years"] == 3 and record.rule["rule"] == "graduates.retention_years"
        assert record.due_on == DUE and record.keep_until == date(2033, 6, 16)
        assert sum(record.counts.values()) == record.rows and record.counts["course_outcomes"] == 1
        assert str(student.id) not in json.dumps([record.counts, record.rule])
        # the audit log is append-only and keeps who was deleted, when and by which rule
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
            AuditEvent.tenant_id == school.id, AuditEvent.action == "student.data_deleted",
            AuditEvent.student_id == student.id)) == 1
    code, actions = run_as_of(app, school, DUE + timedelta(days=1))
    assert not of_kind(actions, "delete_student_data")  # once


def test_a_legal_hold_stops_deletion_until_released(app, graduate, api_for, drain_jobs, make_school, make_user):
    w = graduate
    school, student = w["school"], w["student"]
    graduate_on(app, api_for, w, GRADUATED, drain_jobs)
    registrar_api = api_for(school, w["registrar"])
    path = f"/api/v1/students/{student.id}/legal-hold"
    assert registrar_api.post(path, {}).status_code == 422
    assert registrar_api.post(path, {"reason": "  "}).status_code == 422
    assert api_for(school, w["teacher"]).post(path, {"reason": "x"}).status_code == 403
    stranger = make_user(make_school(), "student")
    assert registrar_api.post(f"/api/v1/students/{stranger.id}/legal-hold", {"reason": "x"}).status_code == 404
    response = registrar_api.post(path, {"reason": "個資申訴調查中"})
    assert response.status_code == 201 and response.get_json()["reason"] == "個資申訴調查中"
    assert registrar_api.post(path, {"reason": "申訴調查延長"}).status_code == 200
    before = rows_of(app, school, student.id)

    code, actions = run_as_of(app, school, DUE + timedelta(days=30))
    assert code == 0 and of_kind(actions, "deletion_held", student_id=str(student.id))
    assert not of_kind(actions, "delete_student_data")
    assert rows_of(app, school, student.id) == before

    assert registrar_api.delete(path).status_code == 204
    assert registrar_api.delete(path).status_code == 404
    code, actions = run_as_of(app, school, DUE + timedelta(days=31))
    assert of_kind(actions, "delete_student_data", student_id=str(student.id))
    assert rows_of(app, school, student.id) == {}
    with as_tenant(app, school):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LegalHold).where(
            LegalHold.tenant_id == school.id)) == 0


def test_a_deletion_that_crashes_half_way_is_finished_by_the_next_run(app, graduate, api_for, drain_jobs,
                                                                     monkeypatch):
    w = graduate
    school, student = w["school"], w["student"]
    graduate_on(app, api_for, w, GRADUATED, drain_jobs)
    before = rows_of(app, school, student.id)
    with app.app_context():
        storage = get_storage()
    original = storage.delete_object
    calls = {"n": 0}

    def crash_after_first(bucket, key):
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("power cut in the middle of the deletion")
        return original(bucket, key)

    monkeypatch.setattr(storage, "delete_object", crash_after_first)
    code, actions = run_as_of(app, school, DUE)
    assert code == 1 and of_kind(actions, "error", step="delete_student_data", student_id=str(student.id))
    assert not of_kind(actions, "delete_student_data")
    with as_tenant(app, school):
        record = db.session.scalar(sa.select(DeletionRecord).where(DeletionRecord.tenant_id == school.id))
        assert record.status == "started" and record.student_id == student.id and record.objects == 2
    remaining = versions_under(app, school, f"outcomes/{w['outcome']}/") + \
        versions_under(app, school, f"performances/{w['perf']}/")
    assert len({key for key, _v in remaining}) == 1  # one object gone, one left
    assert rows_of(app, school, student.id) == before  # no row is gone before every object is

    monkeypatch.setattr(storage, "delete_object", original)
    code, actions = run_as_of(app, school, DUE + timedelta(days=1))
    done = of_kind(actions, "delete_student_data", student_id=str(student.id))
    assert code == 0 and len(done) == 1 and done[0]["objects"] == 2 and done[0]["rows"] == sum(before.values())
    assert rows_of(app, school, student.id) == {}
    assert versions_under(app, school, f"outcomes/{w['outcome']}/") == []
    assert versions_under(app, school, f"performances/{w['perf']}/") == []
    with as_tenant(app, school):
        record = db.session.scalar(sa.select(DeletionRecord).where(DeletionRecord.tenant_id == school.id))
        assert record.status == "done" and record.attempts == 2 and record.due_on == DUE


def test_rows_are_never_half_deleted(app, graduate, api_for, drain_jobs, monkeypatch):
    """The database fails at the very end of the row step: every row is still there, then all go."""
    from lp_saas.lifecycle import services

    w = graduate
    school, student = w["school"], w["student"]
    graduate_on(app, api_for, w, GRADUATED, drain_jobs)
    before = rows_of(app, school, student.id)
    original = services.audit.record

    def fail_at_the_end(tenant_id, actor, action, **kw):
        if action == "student.data_deleted":
            raise sa.exc.OperationalError("COMMIT", {}, Exception("the database went away"))
        return original(tenant_id, actor, action, **kw)

    monkeypatch.setattr(services.audit, "record", fail_at_the_end)
    code, actions = run_as_of(app, school, DUE)
    assert code == 1 and of_kind(actions, "error", step="delete_student_data")
    assert rows_of(app, school, student.id) == before
    with as_tenant(app, school):
        record = db.session.scalar(sa.select(DeletionRecord).where(DeletionRecord.tenant_id == school.id))
        assert record.status == "objects_deleted"
    monkeypatch.setattr(services.audit, "record", original)
    code, actions = run_as_of(app, school, DUE)
    assert code == 0 and of_kind(actions, "delete_student_data", rows=sum(before.values()))
    assert rows_of(app, school, student.id) == {}


def test_deletion_records_are_kept_five_years_then_purged(app, graduate, api_for, drain_jobs):
    w = graduate
    school = w["school"]
    graduate_on(app, api_for, w, GRADUATED, drain_jobs)
    run_as_of(app, school, DUE)
    keep_until = date(2033, 6, 16)
    code, actions = run_as_of(app, school, keep_until)
    assert not of_kind(actions, "purge_deletion_record")
    code, actions = run_as_of(app, school, keep_until + timedelta(days=1))
    assert len(of_kind(actions, "purge_deletion_record")) == 1
    with as_tenant(app, school):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(DeletionRecord).where(
            DeletionRecord.tenant_id == school.id)) == 0


def test_the_deletion_report_is_a_dry_run_for_the_school(app, graduate, api_for, drain_jobs, signed_in):
    w = graduate
    school = w["school"]
    graduate_on(app, api_for, w, GRADUATED, drain_jobs)
    admin = signed_in(school, w["admin"])
    page = admin.get(f"/lifecycle/deletions?until={DUE.isoformat()}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert f'data-testid="due-{w["student"].id}"' in body and w["student"].display_name in body
    assert admin.get(f"/lifecycle/deletions?until={LAST_KEPT.isoformat()}").get_data(as_text=True).count(
        'data-testid="due-') == 0
    assert rows_of(app, school, w["student"].id)  # the report deleted nothing
    assert signed_in(school, w["teacher"]).get("/lifecycle/deletions").status_code == 403
    for path in ("/lifecycle", "/lifecycle/graduates", "/lifecycle/expiries", "/lifecycle/jobs"):
        assert admin.get(path).status_code == 200, path


def test_legal_hold_from_the_graduates_page(app, graduate, api_for, drain_jobs, signed_in):
    w = graduate
    school = w["school"]
    graduate_on(app, api_for, w, GRADUATED, drain_jobs)
    admin = signed_in(school, w["admin"])
    path = f"/lifecycle/students/{w['student'].id}/hold"
    response = post_form(admin, path, {"reason": "訴訟保全"}, form_path="/lifecycle/graduates")
    assert response.status_code == 302
    assert "訴訟保全" in admin.get("/lifecycle/graduates").get_data(as_text=True)
    code, actions = run_as_of(app, school, DUE)
    assert of_kind(actions, "deletion_held")
    post_form(admin, f"/lifecycle/students/{w['student'].id}/release", {}, form_path="/lifecycle/graduates")
    code, actions = run_as_of(app, school, DUE)
    assert of_kind(actions, "delete_student_data")


# --- dry run ---------------------------------------------------------------------------------------

def test_a_dry_run_prints_what_would_happen_and_changes_nothing(app, graduate, api_for, drain_jobs, make_user):
    w = graduate
    school = w["school"]
    graduate_on(app, api_for, w, GRADUATED, drain_jobs)
    leaving = make_user(school, "teacher")
    newcomer = make_user(school, "student")
    with as_tenant(app, school):
        course = add_course(school, leaving, year=116, semester=2)
        add_outcome(school, newcomer, course, status="submitted")
        db.session.get(User, (school.id, leaving.id)).expires_at = end_of_day(DUE)
        db.session.add(Graduation(tenant_id=school.id, student_id=newcomer.id, graduated_on=DUE))
        abandoned = add_outcome(school, newcomer, course, status="awaiting_upload")
        add_file(school, "outcome", abandoned.id, newcomer.id, status="pending",
                 upload_expires_at=start_of_day(DUE - timedelta(days=3)))
        db.session.commit()
    before = snapshot(app, school)
    code, actions = run_as_of(app, school, DUE, "--dry-run")
    assert code == 0
    kinds = {a["action"] for a in actions}
    assert {"delete_student_data", "seal_student", "delay_expiry", "verify_unconfirmed_upload"} <= kinds, actions
    assert all(a["dry_run"] is True for a in actions)
    deleted = of_kind(actions, "delete_student_data")[0]
    assert deleted["objects"] == 2 and deleted["rows"] == sum(rows_of(app, school, w["student"].id).values())
    assert snapshot(app, school) == before
    code, real = run_as_of(app, school, DUE)
    assert {a["action"] for a in real} >= {"delete_student_data", "seal_student", "delay_expiry"}
    assert snapshot(app, school) != before


# --- staff account expiry --------------------------------------------------------------------------

@pytest.fixture
def staff(app, make_school, make_user):
    def build(template):
        school = make_school(template)
        admin = make_user(school, "school_admin")
        teacher = make_user(school, "teacher", display_name="離職老師")
        deputy = make_user(school, "teacher", display_name="代理老師")
        colleague = make_user(school, "teacher", display_name="同科老師")
        students = [make_user(school, "student") for _ in range(2)]
        with as_tenant(app, school):
            course = add_course(school, teacher, subject="物理", deputy=deputy)
            add_course(school, colleague, subject="物理")
            outcomes = [add_outcome(school, s, course).id for s in students]
            db.session.commit()
            course_id = course.id
        return {"school": school, "admin": admin, "teacher": teacher, "deputy": deputy, "colleague": colleague,
                "course": course_id, "outcomes": outcomes}

    return build


def set_expiry_via_api(api_for, world, user, when: datetime):
    response = api_for(world["school"], world["admin"]).patch(f"/api/v1/users/{user.id}",
                                                             {"expires_at": when.isoformat()})
    assert response.status_code == 200, response.get_json()


def test_an_expiry_with_nothing_pending_ends_sessions_and_tokens(app, make_school, make_user, api_for):
    school = make_school()
    admin = make_user(school, "school_admin")
    clerk = make_user(school, "registrar")
    clerk_api = api_for(school, clerk)
    day = TODAY + timedelta(days=10)
    set_expiry_via_api(api_for, {"school": school, "admin": admin}, clerk, end_of_day(day))
    code, actions = run_as_of(app, school, day - timedelta(days=1))
    assert not of_kind(actions, "expire_account", user_id=str(clerk.id))
    code, actions = run_as_of(app, school, day)  # expires at the end of the day: not yet
    assert not of_kind(actions, "expire_account", user_id=str(clerk.id))
    assert clerk_api.get("/api/v1/me").status_code == 200
    code, actions = run_as_of(app, school, day + timedelta(days=1))
    expired = of_kind(actions, "expire_account", user_id=str(clerk.id))
    assert len(expired) == 1 and expired[0]["sessions_ended"] >= 1 and expired[0]["reason"] == "expired"
    assert clerk_api.get("/api/v1/me").status_code == 401
    with as_tenant(app, school):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuthSession).where(
            AuthSession.tenant_id == school.id, AuthSession.user_id == clerk.id,
            AuthSession.revoked_at.is_(None))) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
            AuditEvent.tenant_id == school.id, AuditEvent.action == "user.expired",
            AuditEvent.target_id == str(clerk.id))) == 1
    code, actions = run_as_of(app, school, day + timedelta(days=2))
    assert not of_kind(actions, "expire_account", user_id=str(clerk.id))


def test_delay_expiry_until_the_pending_items_are_done(app, staff, api_for):
    w = staff("yuanlin")  # 員林: delay_expiry, 30 days
    school, teacher = w["school"], w["teacher"]
    day = TODAY + timedelta(days=10)
    set_expiry_via_api(api_for, w, teacher, end_of_day(day))
    teacher_api = api_for(school, teacher)
    code, actions = run_as_of(app, school, day - timedelta(days=1))
    assert not [a for a in actions if a.get("user_id") == str(teacher.id)]
    code, actions = run_as_of(app, school, day)
    delayed = of_kind(actions, "delay_expiry", user_id=str(teacher.id))
    assert len(delayed) == 1 and delayed[0]["pending"] == 2 and delayed[0]["policy"] == "delay_expiry"
    assert delayed[0]["until"] == end_of_day(day + timedelta(days=30)).isoformat()
    with as_tenant(app, school):
        assert db.session.get(User, (school.id, teacher.id)).expires_at == end_of_day(day + timedelta(days=30))
        assert db.session.get(AccountExpiry, (school.id, teacher.id)).state == "delayed"
    code, actions = run_as_of(app, school, day + timedelta(days=1))
    assert not [a for a in actions if a.get("user_id") == str(teacher.id)]
    assert teacher_api.get("/api/v1/me").status_code == 200  # still certifying
    with as_tenant(app, school):
        for outcome_id in w["outcomes"]:
            db.session.get(CourseOutcome, (school.id, outcome_id)).status = "certified"
        db.session.commit()
    code, actions = run_as_of(app, school, day + timedelta(days=2))
    expired = of_kind(actions, "expire_account", user_id=str(teacher.id))
    assert len(expired) == 1 and expired[0]["reason"] == "certifications_done"
    assert teacher_api.get("/api/v1/me").status_code == 401


def test_delay_expiry_ends_at_the_grace_date(app, staff, api_for):
    w = staff("yuanlin")
    school, teacher = w["school"], w["teacher"]
    day = TODAY + timedelta(days=5)
    set_expiry_via_api(api_for, w, teacher, end_of_day(day))
    run_as_of(app, school, day)
    code, actions = run_as_of(app, school, day + timedelta(days=30))
    assert not of_kind(actions, "expire_account", user_id=str(teacher.id))
    code, actions = run_as_of(app, school, day + timedelta(days=31))
    assert of_kind(actions, "expire_account", user_id=str(teacher.id), reason="expired")
    with as_tenant(app, school):
        # the items stay with the course (its deputy can certify them) and the school admin sees them
        assert db.session.get(Course, (school.id, w["course"])).teacher_id == teacher.id
        assert db.session.get(CourseOutcome, (school.id, w["outcomes"][0])).status == "submitted"
    with clock.frozen(start_of_day(day + timedelta(days=31))):
        from lp_saas.lifecycle.expiry import courses_left_with_departed

        with as_tenant(app, school):
            assert [(c.id, n) for c, _u, n in courses_left_with_departed(school.id)] == [(w["course"], 2)]


def test_hand_to_deputy_after_the_grace_period(app, staff, api_for):
    from lp_saas.roles import permissions

    w = staff("moe")  # national template: hand_to_deputy, 7 days
    school, teacher, deputy = w["school"], w["teacher"], w["deputy"]
    day = TODAY + timedelta(days=10)
    set_expiry_via_api(api_for, w, teacher, end_of_day(day))
    code, actions = run_as_of(app, school, day)
    assert of_kind(actions, "delay_expiry", user_id=str(teacher.id), policy="hand_to_deputy")
    code, actions = run_as_of(app, school, day + timedelta(days=7))
    assert not of_kind(actions, "hand_over")
    code, actions = run_as_of(app, school, day + timedelta(days=8))
    handed = of_kind(actions, "hand_over", user_id=str(teacher.id))
    assert len(handed) == 1 and handed[0]["to_user_id"] == str(deputy.id) and handed[0]["items"] == 2
    assert handed[0]["deputy_cleared"] is True
    assert of_kind(actions, "expire_account", user_id=str(teacher.id))
    with as_tenant(app, school):
        course = db.session.get(Course, (school.id, w["course"]))
        assert course.teacher_id == deputy.id and course.deputy_id is None
        the_deputy = db.session.get(User, (school.id, deputy.id))
        assert permissions.can(the_deputy, "course_outcome.certify", course_id=course.id,
                               student_id=db.session.get(CourseOutcome, (school.id, w["outcomes"][0])).student_id)
        notices = list(db.session.scalars(sa.select(Notification).where(
            Notification.tenant_id == school.id, Notification.user_id == deputy.id)))
        assert len(notices) == 1 and notices[0].kind == "hand_over" and "2" in notices[0].body
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
            AuditEvent.tenant_id == school.id, AuditEvent.action == "course.handed_over")) == 1


def test_the_school_admin_sees_the_plan_and_overrides_it(app, staff, api_for, signed_in):
    w = staff("yuanlin")  # the rule says delay; the admin hands the items to a teacher of the same subject
    school, teacher, colleague = w["school"], w["teacher"], w["colleague"]
    day = TODAY + timedelta(days=10)
    set_expiry_via_api(api_for, w, teacher, end_of_day(day))
    admin = signed_in(school, w["admin"])
    page = admin.get("/lifecycle/expiries").get_data(as_text=True)
    assert f'data-testid="expiry-{teacher.id}"' in page and "離職老師" in page
    assert signed_in(school, teacher).get("/lifecycle/expiries").status_code == 403
    response = post_form(admin, f"/lifecycle/expiries/{teacher.id}", {"action": "bogus"},
                         form_path="/lifecycle/expiries")
    assert response.status_code == 302
    with as_tenant(app, school):
        assert db.session.get(AccountExpiry, (school.id, teacher.id)) is None
    post_form(admin, f"/lifecycle/expiries/{teacher.id}", {"action": "hand_to_same_subject"},
              form_path="/lifecycle/expiries")
    with as_tenant(app, school):
        assert db.session.get(AccountExpiry, (school.id, teacher.id)).override == "hand_to_same_subject"
    page = admin.get("/lifecycle/expiries").get_data(as_text=True)
    assert "同科老師" in page  # the planned receiver is shown
    code, actions = run_as_of(app, school, day + timedelta(days=31))
    handed = of_kind(actions, "hand_over", user_id=str(teacher.id))
    assert handed and handed[0]["to_user_id"] == str(colleague.id) and handed[0]["policy"] == "hand_to_same_subject"
    with as_tenant(app, school):
        assert db.session.get(Course, (school.id, w["course"])).teacher_id == colleague.id


# --- reconciliation --------------------------------------------------------------------------------

def test_unconfirmed_uploads_are_removed_a_day_after_their_ticket(app, make_school, make_user, drain_jobs):
    school = make_school()
    teacher, student = make_user(school, "teacher"), make_user(school, "student")
    ticket_end = start_of_day(TODAY + timedelta(days=3)) + timedelta(hours=1)
    with as_tenant(app, school):
        course = add_course(school, teacher)
        outcome = add_outcome(school, student, course, status="awaiting_upload")
        stored = add_file(school, "outcome", outcome.id, student.id, status="pending",
                          upload_expires_at=ticket_end)
        get_storage().delete_object(school.bucket, stored.key)  # the bytes never arrived
        outcome.file_id = stored.id
        db.session.commit()
        file_id, outcome_id = stored.id, outcome.id
    code, actions = run_as_of(app, school, TODAY + timedelta(days=4))  # 23 hours after: kept
    assert not of_kind(actions, "remove_unconfirmed_upload")
    code, actions = run_as_of(app, school, TODAY + timedelta(days=5))
    removed = of_kind(actions, "remove_unconfirmed_upload", file_id=str(file_id))
    assert code == 0 and len(removed) == 1
    drain_jobs()
    with as_tenant(app, school):
        stored = db.session.get(StoredFile, (school.id, file_id))
        assert stored.status == "rejected" and stored.reject_reason == "missing"
        assert db.session.get(CourseOutcome, (school.id, outcome_id)).status == "file_rejected"
    code, actions = run_as_of(app, school, TODAY + timedelta(days=6))
    assert not of_kind(actions, "remove_unconfirmed_upload")


def test_an_unconfirmed_upload_whose_bytes_arrived_is_verified_not_removed(app, make_school, make_user,
                                                                          drain_jobs):
    """The student's browser sent the file but never said so (tab closed): the work is kept and checked."""
    school = make_school()
    teacher, student = make_user(school, "teacher"), make_user(school, "student")
    ticket_end = start_of_day(TODAY + timedelta(days=3)) + timedelta(hours=1)
    with as_tenant(app, school):
        course = add_course(school, teacher)
        outcome = add_outcome(school, student, course, status="awaiting_upload")
        stored = add_file(school, "outcome", outcome.id, student.id, status="pending", versions=2,
                          upload_expires_at=ticket_end)
        outcome.file_id = stored.id
        db.session.commit()
        file_id, key, outcome_id = stored.id, stored.key, outcome.id
    code, actions = run_as_of(app, school, TODAY + timedelta(days=5), "--dry-run")
    assert of_kind(actions, "verify_unconfirmed_upload", file_id=str(file_id))
    code, actions = run_as_of(app, school, TODAY + timedelta(days=5))
    assert code == 0 and of_kind(actions, "verify_unconfirmed_upload", file_id=str(file_id))
    assert not of_kind(actions, "remove_unconfirmed_upload")
    drain_jobs()
    assert versions_under(app, school, key)  # still stored
    with as_tenant(app, school):
        assert db.session.get(StoredFile, (school.id, file_id)).status == "verified"
        assert db.session.get(CourseOutcome, (school.id, outcome_id)).status == "submitted"
    code, actions = run_as_of(app, school, TODAY + timedelta(days=6))
    assert not of_kind(actions, "verify_unconfirmed_upload")


def _verifying_upload(app, school, student, course_id, *, job_status="running", age=timedelta(hours=2)):
    """An outcome whose file was uploaded and whose verification job was lost long ago."""
    with as_tenant(app, school):
        outcome = add_outcome(school, student, db.session.get(Course, (school.id, course_id)), status="verifying")
        stored = add_file(school, "outcome", outcome.id, student.id, status="verifying")
        outcome.file_id = stored.id
        long_ago = datetime.now(timezone.utc) - age
        job = Job(tenant_id=school.id, kind="verify_file", args={"file_id": str(stored.id)}, status=job_status,
                  created_at=long_ago, enqueued_at=long_ago, started_at=long_ago if job_status == "running" else None,
                  attempts=1 if job_status == "running" else 0)
        db.session.add(job)
        db.session.commit()
        return outcome.id, stored.id, job.id


def test_a_lost_verification_job_is_found_and_verified(app, make_school, make_user, drain_jobs):
    school = make_school()
    teacher, student = make_user(school, "teacher"), make_user(school, "student")
    with as_tenant(app, school):
        course_id = add_course(school, teacher).id
        db.session.commit()
    outcome_id, file_id, job_id = _verifying_upload(app, school, student, course_id)
    result, listed = run_cli(app, "jobs", "--stuck", "--tenant", school.slug)
    assert result.exit_code == 0 and [j["job_id"] for j in listed] == [str(job_id)]
    assert listed[0]["stuck"] == "stale"
    code, actions = run_now(app, school)
    assert of_kind(actions, "resend_job", job_id=str(job_id), reason="stale")
    drain_jobs()
    with as_tenant(app, school):
        assert db.session.get(StoredFile, (school.id, file_id)).status == "verified"
        assert db.session.get(CourseOutcome, (school.id, outcome_id)).status == "submitted"
        job = db.session.get(Job, (school.id, job_id))
        assert job.status == "succeeded" and job.attempts == 2
    result, listed = run_cli(app, "jobs", "--stuck", "--tenant", school.slug)
    assert listed == []


def test_an_upload_left_verifying_without_a_job_gets_one(app, make_school, make_user, drain_jobs):
    school = make_school()
    teacher, student = make_user(school, "teacher"), make_user(school, "student")
    with as_tenant(app, school):
        course_id = add_course(school, teacher).id
        db.session.commit()
    outcome_id, file_id, job_id = _verifying_upload(app, school, student, course_id, job_status="queued")
    with as_tenant(app, school):  # its job gave up (storage was down for its whole retry budget)
        job = db.session.get(Job, (school.id, job_id))
        job.status, job.error, job.finished_at = "failed", "StorageUnavailable: down", datetime.now(timezone.utc) - timedelta(hours=1)
        db.session.commit()
    result, listed = run_cli(app, "jobs", "--tenant", school.slug)
    assert {j.get("stuck") for j in listed} == {"verifying_without_job", None}
    result, failed = run_cli(app, "jobs", "--failed", "--tenant", school.slug)
    assert [j["job_id"] for j in failed] == [str(job_id)] and "StorageUnavailable" in failed[0]["error"]
    code, actions = run_now(app, school)
    assert of_kind(actions, "reverify_file", file_id=str(file_id))
    drain_jobs()
    with as_tenant(app, school):
        assert db.session.get(StoredFile, (school.id, file_id)).status == "verified"
    code, actions = run_now(app, school)
    assert not of_kind(actions, "reverify_file")


def test_the_jobs_page_shows_stuck_work_and_reconciles_on_demand(app, make_school, make_user, signed_in,
                                                                  drain_jobs):
    school = make_school()
    admin, teacher, student = make_user(school, "school_admin"), make_user(school, "teacher"), make_user(school, "student")
    with as_tenant(app, school):
        course_id = add_course(school, teacher).id
        db.session.commit()
    _outcome_id, file_id, job_id = _verifying_upload(app, school, student, course_id)
    web = signed_in(school, admin)
    assert "verify_file" in web.get("/lifecycle/jobs").get_data(as_text=True)
    assert signed_in(school, teacher).get("/lifecycle/jobs").status_code == 403
    response = post_form(web, "/lifecycle/jobs/reconcile", {}, form_path="/lifecycle/jobs")
    assert response.status_code == 302
    drain_jobs()
    with as_tenant(app, school):
        assert db.session.get(StoredFile, (school.id, file_id)).status == "verified"


def test_an_import_file_left_in_storage_is_removed_once_its_job_is_over(app, make_school, make_user):
    """A roster file holds names and national ID numbers: whatever path its import job ended on, the
    sweep removes it (every version) once the job is over, and leaves it while the job may still run."""
    school = make_school()
    admin = make_user(school, "school_admin")
    keys = {}
    with as_tenant(app, school):
        storage = get_storage()
        for status in ("queued", "succeeded", "failed"):
            job = Job(tenant_id=school.id, kind="import_file", status=status, created_by_id=admin.id,
                      args={"kind": "students", "filename": "名冊.csv", "key": f"imports/{uuid.uuid4()}/f"})
            db.session.add(job)
            db.session.flush()
            for version in (b"old", "學號,姓名,身分證字號\n".encode()):
                storage.put_bytes(school.bucket, job.args["key"], version, "text/csv")
            keys[status] = (job.id, job.args["key"])
        db.session.commit()
    code, actions = run_now(app, school, "--dry-run")
    assert code == 0 and {a["job_id"] for a in of_kind(actions, "remove_import_file")} == \
        {str(keys["succeeded"][0]), str(keys["failed"][0])}
    assert all(versions_under(app, school, key) for _id, key in keys.values())  # a dry run changes nothing
    code, actions = run_now(app, school)
    assert len(of_kind(actions, "remove_import_file")) == 2
    assert versions_under(app, school, keys["succeeded"][1]) == []
    assert versions_under(app, school, keys["failed"][1]) == []
    assert versions_under(app, school, keys["queued"][1])  # its job may still need it
    code, actions = run_now(app, school)
    assert not of_kind(actions, "remove_import_file")  # once


def test_a_cleanup_that_gave_up_is_sent_again(app, make_school, drain_jobs):
    """A withdrawn item's object whose delete job failed after its last retry is only known to that job."""
    school = make_school()
    key = f"performances/{uuid.uuid4()}/{uuid.uuid4()}"
    with as_tenant(app, school):
        get_storage().put_bytes(school.bucket, key, PDF, "application/pdf")
        long_ago = datetime.now(timezone.utc) - timedelta(hours=3)
        job = Job(tenant_id=school.id, kind="delete_stored_object", args={"key": key}, status="failed", attempts=6,
                  error="StorageUnavailable: down", created_at=long_ago, finished_at=long_ago)
        recent = Job(tenant_id=school.id, kind="delete_stored_object", args={"key": key + "x"}, status="failed",
                     attempts=6, error="StorageUnavailable: down", finished_at=datetime.now(timezone.utc))
        db.session.add_all([job, recent])
        db.session.commit()
        job_id, recent_id = job.id, recent.id
    code, actions = run_now(app, school)
    assert [a["job_id"] for a in of_kind(actions, "retry_cleanup")] == [str(job_id)]  # not the one just failed
    drain_jobs()
    assert versions_under(app, school, key) == []
    with as_tenant(app, school):
        assert db.session.get(Job, (school.id, job_id)).status == "succeeded"
        assert db.session.get(Job, (school.id, recent_id)).status == "failed"
