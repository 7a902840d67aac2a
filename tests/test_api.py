"""The API base: OpenAPI document, JSON errors in the caller's language, roster input checks."""
import re

import uuid

import pytest
import sqlalchemy as sa

from lp_saas.academics.models import Course, Enrollment
from lp_saas.accounts.models import User
from lp_saas.database import db
from tests.conftest import as_tenant


def test_openapi_describes_every_api_operation(app, make_school, api_for):
    school = make_school()
    doc = api_for(school).get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    described = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint == "api.openapi":
            continue
        path = re.sub(r"<(?:[^:<>]+:)?(\w+)>", r"{\1}", rule.rule[len("/api/v1"):])
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in described, f"{method} {path} missing from openapi.json"
    assert "UserCreate" in doc["components"]["schemas"]


def test_errors_are_json_in_the_callers_language(make_school, api_for):
    api = api_for(make_school())
    zh = api.get("/api/v1/me")
    assert zh.status_code == 401
    assert zh.get_json()["error"]["code"] == "unauthenticated"
    assert zh.get_json()["error"]["message"] == "請先登入。"
    en = api.get("/api/v1/me", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert en.get_json()["error"]["message"] == "Please sign in first."
    missing = api.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


@pytest.fixture
def roster(app, make_school, make_user, api_for):
    school = make_school()
    registrar = make_user(school, "registrar")
    teacher = make_user(school, "teacher")
    return school, api_for(school, registrar), teacher


def _count(app, school, model):
    with as_tenant(app, school):
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(model.tenant_id == school.id))


def test_roster_happy_path(app, roster):
    school, api, teacher = roster
    student = api.post("/api/v1/users", {"username": "s113001", "display_name": "王小明", "roles": ["student"],
                                         "student_no": "113001", "class_name": "101", "password": "Start-pass-1"})
    assert student.status_code == 201, student.get_json()
    course = api.post("/api/v1/courses", {"code": "113-MATH-10-1", "name": "數學", "credits": 4,
                                          "academic_year": 113, "semester": 1, "teacher_id": str(teacher.id)})
    assert course.status_code == 201, course.get_json()
    course_id = course.get_json()["id"]
    enrol = api.post(f"/api/v1/courses/{course_id}/enrollments", {"student_ids": [student.get_json()["id"]]})
    assert enrol.status_code == 200 and enrol.get_json()["added"] == 1
    again = api.post(f"/api/v1/courses/{course_id}/enrollments", {"student_ids": [student.get_json()["id"]]})
    assert again.get_json() == {"course_id": course_id, "enrolled": 1, "added": 0}
    duplicate = api.post("/api/v1/courses", {"code": "113-MATH-10-1", "name": "數學", "credits": 4,
                                             "academic_year": 113, "semester": 1, "teacher_id": str(teacher.id)})
    assert duplicate.status_code == 409


@pytest.mark.parametrize("body, field", [
    ({"display_name": "x", "roles": ["student"]}, "username"),
    ({"username": "ok1", "display_name": "x", "roles": []}, "roles"),
    ({"username": "ok1", "display_name": "x", "roles": ["wizard"]}, "roles"),
    ({"username": "ok1", "display_name": "", "roles": ["student"]}, "display_name"),
    ({"username": "ok1", "display_name": "x" * 101, "roles": ["student"]}, "display_name"),
    ({"username": "a b/../c", "display_name": "x", "roles": ["student"]}, "username"),
    ({"username": "ok1", "display_name": "x", "roles": ["student"], "password": "123"}, "password"),
    ({"username": "ok1", "display_name": "x", "roles": ["student"], "is_admin": True}, "is_admin"),
    ({"username": 12, "display_name": "x", "roles": ["student"]}, "username"),
    ({"username": "ok1", "display_name": "x", "roles": "student"}, "roles"),
    ({"username": "ok1", "display_name": "x", "roles": ["student"], "email": "not-an-email"}, "email"),
])
def test_bad_user_bodies_are_422_and_store_nothing(app, roster, body, field):
    school, api, _teacher = roster
    before = _count(app, school, User)
    response = api.post("/api/v1/users", body)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed" and field in error["details"]
    assert _count(app, school, User) == before


@pytest.mark.parametrize("body", [
    {"code": "X", "name": "X", "credits": "4", "academic_year": 113, "semester": 1},
    {"code": "X", "name": "X", "credits": 4, "academic_year": 113, "semester": 3, "teacher_id": None},
    {"code": "", "name": "X", "credits": 4, "academic_year": 113, "semester": 1},
    {"code": "X", "name": "X", "credits": -1, "academic_year": 113, "semester": 1},
    {"code": "X", "name": "X", "credits": 4, "academic_year": 2024, "semester": 1},
    {"code": "X", "name": "<script>alert(1)</script>" * 10, "credits": 4, "academic_year": 113, "semester": 1},
])
def test_bad_course_bodies_are_422_and_store_nothing(app, roster, body):
    school, api, teacher = roster
    body = {"teacher_id": str(teacher.id), **body}
    before = _count(app, school, Course)
    response = api.post("/api/v1/courses", body)
    assert response.status_code == 422, response.get_json()
    assert _count(app, school, Course) == before


def test_roster_refuses_the_wrong_kind_of_account_and_blank_or_unsafe_text(app, roster, make_user):
    school, api, teacher = roster
    student = make_user(school, "student")
    parent = make_user(school, "parent")
    base = {"code": "X1", "name": "國文", "credits": 2, "academic_year": 113, "semester": 1, "teacher_id": str(teacher.id)}
    before = _count(app, school, Course)
    for change, field in (({"teacher_id": str(student.id)}, "teacher_id"), ({"teacher_id": str(parent.id)}, "teacher_id"),
                          ({"deputy_id": str(student.id)}, "deputy_id"), ({"deputy_id": str(teacher.id)}, "deputy_id"),
                          ({"code": "   "}, "code"), ({"name": " \t "}, "name"), ({"code": "A\u0000B"}, "code"),
                          ({"name": "國\u0000文"}, "name"), ({"subject": "<b>x</b>"}, "subject")):
        response = api.post("/api/v1/courses", {**base, **change})
        assert response.status_code == 422, (change, response.get_json())
        assert field in response.get_json()["error"]["details"], change
    assert _count(app, school, Course) == before
    course_id = api.post("/api/v1/courses", {**base, "code": "  X2 "}).get_json()["id"]
    # the stored code is trimmed
    with as_tenant(app, school):
        assert db.session.get(Course, (school.id, uuid.UUID(course_id))).code == "X2"
    refused = api.post(f"/api/v1/courses/{course_id}/enrollments", {"student_ids": [str(teacher.id), str(student.id)]})
    assert refused.status_code == 422 and str(teacher.id) in refused.get_json()["error"]["details"]["student_ids"]
    assert _count(app, school, Enrollment) == 0
    users_before = _count(app, school, User)
    for body, field in (({"display_name": "<script>alert(1)</script>"}, "display_name"),
                        ({"display_name": "王\u0000明"}, "display_name"), ({"display_name": "   "}, "display_name"),
                        ({"class_name": "\u0000"}, "class_name"), ({"class_name": "101", "roles": ["teacher"]}, "class_name"),
                        ({"roles": ["student", "teacher"]}, "roles")):
        response = api.post("/api/v1/users", {"username": "newkid", "display_name": "新生", "roles": ["student"], **body})
        assert response.status_code == 422, (body, response.get_json())
        assert field in response.get_json()["error"]["details"], body
    assert _count(app, school, User) == users_before
    assert api.patch(f"/api/v1/users/{student.id}", {"display_name": "<img src=x>"}).status_code == 422


def test_a_roster_clerk_cannot_mint_an_administrator(app, roster, make_user, api_for):
    school, api, teacher = roster  # api acts as the registrar (roster.edit, no roles.edit)
    minted = api.post("/api/v1/users", {"username": "boss", "display_name": "x", "roles": ["school_admin"]})
    assert minted.status_code == 422 and "roles" in minted.get_json()["error"]["details"]
    promoted = api.patch(f"/api/v1/users/{teacher.id}", {"roles": ["school_admin"]})
    assert promoted.status_code == 422
    assert api.get(f"/api/v1/users/{teacher.id}").get_json()["roles"] == ["teacher"]
    # the school's administrator may, and the registrar still makes teachers and students
    admin_api = api_for(school, make_user(school, "school_admin"))
    assert admin_api.post("/api/v1/users", {"username": "boss2", "display_name": "x",
                                            "roles": ["school_admin"]}).status_code == 201
    assert api.post("/api/v1/users", {"username": "t9", "display_name": "x", "roles": ["teacher"]}).status_code == 201


def test_field_messages_follow_the_language(roster):
    _school, api, _teacher = roster
    zh = api.post("/api/v1/users", {"display_name": 5, "roles": "x"}).get_json()["error"]["details"]
    assert zh["username"] == "此欄位為必填。" or "必填" in zh["username"], zh
    assert all(not any(c.isascii() and c.isalpha() for c in message) for message in zh.values()), zh
    en = api.post("/api/v1/users", {"display_name": 5, "roles": "x"}, headers={"Accept-Language": "en"})
    assert "required" in en.get_json()["error"]["details"]["username"]


def test_oversized_and_deeply_nested_json_is_refused_cleanly(roster):
    _school, api, _teacher = roster
    deep = api.client.post("/api/v1/users", data="[" * 100000, headers={**api.headers(), "Content-Type": "application/json"})
    assert deep.status_code == 400 and deep.get_json()["error"]["code"] == "bad_json"
    big = api.client.post("/api/v1/users", data='{"x": "' + "a" * (300 * 1024) + '"}',
                          headers={**api.headers(), "Content-Type": "application/json"})
    assert big.status_code == 413 and big.get_json()["error"]["code"] == "too_large"


def test_course_with_another_schools_teacher_is_refused(app, roster, make_school, make_user):
    school, api, _teacher = roster
    stranger = make_user(make_school(), "teacher")
    response = api.post("/api/v1/courses", {"code": "X", "name": "X", "credits": 1, "academic_year": 113,
                                            "semester": 1, "teacher_id": str(stranger.id)})
    assert response.status_code == 422 and "teacher_id" in response.get_json()["error"]["details"]


def test_enrolling_unknown_or_foreign_students_changes_nothing(app, roster, make_school, make_user):
    school, api, teacher = roster
    course_id = api.post("/api/v1/courses", {"code": "C1", "name": "C", "credits": 1, "academic_year": 113,
                                             "semester": 1, "teacher_id": str(teacher.id)}).get_json()["id"]
    mine = api.post("/api/v1/users", {"username": "mine1", "display_name": "x", "roles": ["student"]}).get_json()["id"]
    foreign = make_user(make_school(), "student")
    for ids in ([mine, str(foreign.id)], ["not-a-uuid"], []):
        response = api.post(f"/api/v1/courses/{course_id}/enrollments", {"student_ids": ids})
        assert response.status_code == 422
    assert _count(app, school, Enrollment) == 0


def test_non_json_and_broken_json_bodies(roster):
    _school, api, _teacher = roster
    assert api.post("/api/v1/users", data="username=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
                    ).status_code == 415
    broken = api.client.post("/api/v1/users", data="{not json", headers={**api.headers(), "Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.get_json()["error"]["code"] == "bad_json"
    assert api.post("/api/v1/users", json=[1, 2]).status_code == 400


def test_patch_user_bad_values_and_self_protection(app, roster, make_user, api_for):
    school, api, teacher = roster
    for body in ({"expires_at": "tomorrow"}, {"expires_at": "2030-01-01T00:00:00"}, {"roles": ["nope"]},
                 {"status": "deleted"}, {"password": "x"}):
        response = api.patch(f"/api/v1/users/{teacher.id}", body)
        assert response.status_code == 422, body
    assert api.patch("/api/v1/users/not-a-uuid", {"display_name": "x"}).status_code == 404
    admin = make_user(school, "school_admin")
    admin_api = api_for(school, admin)
    assert admin_api.patch(f"/api/v1/users/{admin.id}", {"status": "disabled"}).status_code == 422
    ok = admin_api.patch(f"/api/v1/users/{teacher.id}", {"expires_at": "2031-07-31T23:59:00+08:00",
                                                         "roles": ["teacher", "homeroom_teacher"]})
    assert ok.status_code == 200
    assert ok.get_json()["expires_at"].startswith("2031-07-31T15:59")
    assert sorted(ok.get_json()["roles"]) == ["homeroom_teacher", "teacher"]


def test_reading_a_students_record_is_audited(app, roster, make_user):
    from lp_saas.audit.models import AuditEvent

    school, api, _teacher = roster
    student = make_user(school, "student", student_no="S9")
    assert api.get(f"/api/v1/users/{student.id}").status_code == 200
    with as_tenant(app, school):
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.tenant_id == school.id,
                                                              AuditEvent.action == "user.read"))
        assert event.student_id == student.id and event.client_addr == "127.0.0.1"
