"""Terms, registration records, unit records, the semester's confirmation, grades, course counseling
and elective choices: bad input changes nothing, and every role sees only its own scope."""
from __future__ import annotations

import re
import uuid
from contextlib import contextmanager
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from lp_saas import clock
from lp_saas.academics.models import Course, Enrollment, ParentLink, StudentRecord, Term
from lp_saas.academics.services import place_in_class
from lp_saas.accounts.models import User
from lp_saas.accounts.services import hash_password
from lp_saas.audit.models import AuditEvent
from lp_saas.database import db
from lp_saas.records import services as records
from lp_saas.records.models import (AttendanceSummary, CadreRole, ClubRecord, CounselingRecord, DataConfirmation,
                                    ElectiveChoice, Grade)
from tests.conftest import PASSWORD, as_tenant, csrf_token, post_form


def _count(app, school, model, *where):
    with as_tenant(app, school):
        return db.session.scalar(sa.select(sa.func.count()).select_from(model)
                                 .where(model.tenant_id == school.id, *where))


def _events(app, school, action, student_id=None):
    with as_tenant(app, school):
        query = sa.select(AuditEvent).where(AuditEvent.tenant_id == school.id, AuditEvent.action == action)
        if student_id is not None:
            query = query.where(AuditEvent.student_id == student_id)
        return list(db.session.scalars(query))


@pytest.fixture
def school(make_school):
    return make_school("yuanlin")


_HASH: dict[str, str] = {}


@pytest.fixture
def people(app, school, make_user):
    """A small school: two classes with their homeroom teachers, students, parents and unit staff.

    The accounts are made without a password and then share one precomputed hash of PASSWORD:
    fourteen Argon2 hashes per test would be most of this module's time.
    """
    def user(*roles, **fields):
        return make_user(school, *roles, password=None, **fields)

    p = {
        "registrar": user("registrar"),
        "s1": user("student", student_no="113001", display_name="王小明"),
        "s2": user("student", student_no="113002", display_name="李小華"),
        "s3": user("student", student_no="113003", display_name="陳小美"),
        "hr101": user("homeroom_teacher", "teacher"),
        "hr102": user("homeroom_teacher", "teacher"),
        "parent1": user("parent"),
        "parent3": user("parent"),
        "teacher": user("teacher"),
        "counselor": user("course_counselor"),
        "activities": user("student_activities"),
        "clubs": user("clubs"),
        "discipline": user("discipline"),
        "affairs": user("academic_affairs"),
    }
    if "hash" not in _HASH:
        _HASH["hash"] = hash_password(PASSWORD)
    with as_tenant(app, school):
        db.session.execute(sa.update(User).where(User.tenant_id == school.id).values(password_hash=_HASH["hash"]))
        year, semester = records.current_term_key(school)
        c101 = place_in_class(school, "test", p["s1"], "101", year)
        place_in_class(school, "test", p["s2"], "101", year)
        c102 = place_in_class(school, "test", p["s3"], "102", year)
        c101.homeroom_teacher_id, c102.homeroom_teacher_id = p["hr101"].id, p["hr102"].id
        db.session.add_all([ParentLink(tenant_id=school.id, parent_id=p["parent1"].id, student_id=p["s1"].id),
                            ParentLink(tenant_id=school.id, parent_id=p["parent3"].id, student_id=p["s3"].id)])
        course = Course(tenant_id=school.id, code="MATH1", name="數學", credits=4, academic_year=year,
                        semester=semester, teacher_id=p["teacher"].id)
        db.session.add(course)
        db.session.flush()
        db.session.add_all([Enrollment(tenant_id=school.id, course_id=course.id, student_id=p[s].id)
                            for s in ("s1", "s2", "s3")])
        db.session.add_all([Grade(tenant_id=school.id, course_id=course.id, student_id=p["s1"].id, score=88,
                                  passed=True, credits_earned=4),
                            Grade(tenant_id=school.id, course_id=course.id, student_id=p["s3"].id, score=59,
                                  passed=False, credits_earned=0)])
        db.session.add(StudentRecord(tenant_id=school.id, student_id=p["s1"].id, national_id="A123456789",
                                     guardian_name="王大明"))
        db.session.add(StudentRecord(tenant_id=school.id, student_id=p["s3"].id, national_id="F131104093"))
        db.session.commit()
        p.update(year=year, semester=semester, c101=c101.id, c102=c102.id, course=course.id)
    return p


# --- terms -------------------------------------------------------------------------------------

TERM = {"academic_year": 113, "semester": 1, "starts_on": "2024-08-01", "ends_on": "2025-01-31",
        "ceremony_on": "2025-01-20"}


def test_terms_api_create_list_and_change(app, school, people, api_for):
    api = api_for(school, people["registrar"])
    created = api.post("/api/v1/terms", TERM)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["label"] == "113學年度第1學期" and body["warnings"] == []
    second = api.post("/api/v1/terms", {**TERM, "semester": 2, "starts_on": "2025-02-10", "ends_on": "2025-07-31",
                                        "ceremony_on": "2025-06-30", "grade12_ceremony_on": "2025-06-06"})
    assert second.status_code == 201, second.get_json()
    listed = api_for(school, people["s1"]).get("/api/v1/terms").get_json()
    assert [t["semester"] for t in listed["terms"]] == [2, 1]
    assert set(listed["current"]) == {"academic_year", "semester"}
    patched = api.patch(f"/api/v1/terms/{body['id']}", {"ceremony_on": "2025-01-21"})
    assert patched.status_code == 200 and patched.get_json()["ceremony_on"] == "2025-01-21"
    assert patched.get_json()["starts_on"] == "2024-08-01"
    assert _events(app, school, "term.updated")[0].details["fields"] == ["ceremony_on"]


def test_a_term_starting_outside_its_usual_month_is_saved_with_a_warning(school, people, api_for):
    api = api_for(school, people["registrar"])
    api.lang = "en"
    response = api.post("/api/v1/terms", {**TERM, "starts_on": "2024-09-02"})
    assert response.status_code == 201
    assert "usually starts in August" in response.get_json()["warnings"][0]


@pytest.mark.parametrize("change, field, status", [
    ({"academic_year": 99}, "academic_year", 422),
    ({"academic_year": 201}, "academic_year", 422),
    ({"academic_year": "113"}, "academic_year", 422),
    ({"semester": 3}, "semester", 422),
    ({"starts_on": "2024-13-01"}, "starts_on", 422),
    ({"starts_on": None}, "starts_on", 422),
    ({"ends_on": "2024-07-01"}, "ends_on", 422),
    ({"ceremony_on": "2025-02-10"}, "ceremony_on", 422),
    ({"ends_on": "2025-12-31", "ceremony_on": "2025-01-20"}, "ends_on", 422),
    ({"academic_year": 114}, "starts_on", 422),  # 2024-08-01 is not near academic year 114
    ({"grade12_ceremony_on": "2025-01-10"}, "grade12_ceremony_on", 422),  # semester 1 has none
    ({"is_current": True}, "is_current", 422),
])
def test_bad_terms_are_refused_and_nothing_is_stored(app, school, people, api_for, change, field, status):
    api = api_for(school, people["registrar"])
    api.lang = "en"
    response = api.post("/api/v1/terms", {**TERM, **change})
    assert response.status_code == status, response.get_json()
    assert field in response.get_json()["error"]["details"]
    assert _count(app, school, Term) == 0


def test_duplicate_and_overlapping_terms(app, school, people, api_for):
    api = api_for(school, people["registrar"])
    assert api.post("/api/v1/terms", TERM).status_code == 201
    duplicate = api.post("/api/v1/terms", TERM)
    assert duplicate.status_code == 409 and duplicate.get_json()["error"]["code"] == "term_exists"
    overlap = api.post("/api/v1/terms", {**TERM, "semester": 2, "starts_on": "2025-01-25", "ends_on": "2025-07-31",
                                         "ceremony_on": "2025-06-30"})
    assert overlap.status_code == 422 and "starts_on" in overlap.get_json()["error"]["details"]
    assert _count(app, school, Term) == 1


def test_terms_need_roster_edit_to_change_and_stay_in_their_school(app, school, people, api_for, make_school,
                                                                   make_user):
    created = api_for(school, people["registrar"]).post("/api/v1/terms", TERM).get_json()
    teacher = api_for(school, people["teacher"])
    assert teacher.get("/api/v1/terms").status_code == 200
    assert teacher.post("/api/v1/terms", {**TERM, "semester": 2}).status_code == 403
    assert teacher.patch(f"/api/v1/terms/{created['id']}", {"ceremony_on": "2025-01-22"}).status_code == 403
    assert api_for(school).get("/api/v1/terms").status_code == 401
    other = make_school()
    outsider = api_for(other, make_user(other, "registrar"))
    assert outsider.patch(f"/api/v1/terms/{created['id']}", {"ceremony_on": "2025-01-22"}).status_code == 404
    assert outsider.get("/api/v1/terms").get_json()["terms"] == []
    assert api_for(school, people["registrar"]).patch("/api/v1/terms/not-a-uuid", {}).status_code == 404
    assert api_for(school, people["registrar"]).post("/api/v1/terms", data="x").status_code == 415


def test_terms_pages(app, school, people, signed_in):
    web = signed_in(school, people["registrar"])
    page = web.get("/terms/new")
    assert page.status_code == 200
    bad = post_form(web, "/terms/new", {**TERM, "ceremony_on": "2025-03-01"}, headers={"Accept-Language": "en"})
    assert bad.status_code == 422 and "semester-end ceremony must fall" in bad.get_data(as_text=True)
    garbled = post_form(web, "/terms/new", {**TERM, "starts_on": "yesterday"})
    assert garbled.status_code == 400
    assert _count(app, school, Term) == 0
    good = post_form(web, "/terms/new", TERM)
    assert good.status_code == 302
    listing = web.get("/terms").get_data(as_text=True)
    assert "113學年度第1學期" in listing and "114年1月20日" in listing and "table-wrap" in listing
    with as_tenant(app, school):
        term_id = db.session.scalar(sa.select(Term.id).where(Term.tenant_id == school.id))
    assert post_form(web, f"/terms/{term_id}", {**TERM, "grade12_ceremony_on": "2025-01-10"}).status_code == 422
    student = signed_in(school, people["s1"])
    assert student.get("/terms").status_code == 200
    assert student.get("/terms/new").status_code == 403
    assert student.get(f"/terms/{term_id}").status_code == 403


# --- registration records ---------------------------------------------------------------------------

@pytest.mark.parametrize("who, status", [
    ("registrar", 200), ("s1", 200), ("parent1", 200), ("hr101", 200), ("counselor", 200),
    ("clubs", 200),  # clubs.edit is school-wide: the clubs section only
    ("s2", 404),  # a classmate
    ("parent3", 404),  # another child's parent
    ("hr102", 404),  # another class's homeroom teacher
    ("teacher", 403),  # teaches s1, but course teachers hold no record permission at all
])
def test_who_sees_a_students_record_page(app, school, people, signed_in, who, status):
    response = signed_in(school, people[who]).get(f"/records/students/{people['s1'].id}")
    assert response.status_code == status
    html = response.get_data(as_text=True)
    shows_registration = who in ("registrar", "s1", "parent1", "hr101", "counselor")
    assert ("A123456789" in html) is shows_registration
    if status != 200:
        assert "王小明" not in html
    if who == "clubs":
        assert 'data-testid="section-clubs"' in html and 'data-testid="section-cadre_roles"' not in html


def test_every_read_of_a_record_is_audited_with_the_student(app, school, people, signed_in):
    signed_in(school, people["hr101"]).get(f"/records/students/{people['s1'].id}")
    events = _events(app, school, "student.record.read", people["s1"].id)
    assert events and events[-1].actor_id == people["hr101"].id
    assert "registration" in events[-1].details["sections"]
    signed_in(school, people["registrar"]).get(f"/records/students/{people['s1'].id}/registration")
    assert len(_events(app, school, "student.record.read", people["s1"].id)) == 2


def test_registrar_edits_a_registration_record(app, school, people, signed_in):
    web = signed_in(school, people["registrar"])
    path = f"/records/students/{people['s2'].id}/registration"
    form = {"national_id": "b234567894", "birth_date": "97/06/02", "gender": "F", "admission_year": "113",
            "department": "普通科", "guardian_name": "李大華", "guardian_phone": "0912345678",
            "address": "<script>alert('x')</script>", "guest_student": "y"}
    assert post_form(web, path, form).status_code == 302
    with as_tenant(app, school):
        record = db.session.get(StudentRecord, (school.id, people["s2"].id))
        assert (record.national_id, record.birth_date, record.gender, record.guest_student) == (
            "B234567894", date(2008, 6, 2), "F", True)
    assert _events(app, school, "student.record.updated", people["s2"].id)[0].details["fields"]
    html = web.get(f"/records/students/{people['s2'].id}").get_data(as_text=True)
    assert "<script>alert" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize("field, value", [
    ("national_id", "A123456788"), ("national_id", "A123456789"),  # check digit; s1's number
    ("birth_date", "97/02/30"), ("birth_date", (date.today() + timedelta(days=2)).isoformat()),
    ("admission_year", "abc"), ("guardian_name", "x" * 61), ("address", "line\x00break"),
])
def test_bad_registration_values_change_nothing(app, school, people, signed_in, field, value):
    web = signed_in(school, people["registrar"])
    response = post_form(web, f"/records/students/{people['s2'].id}/registration",
                         {"national_id": "B234567894", field: value}, headers={"Accept-Language": "en"})
    assert response.status_code == 422
    assert f"<code>{field}</code>" in response.get_data(as_text=True)
    assert _count(app, school, StudentRecord, StudentRecord.student_id == people["s2"].id) == 0


def test_a_bad_gender_is_refused(app, school, people, signed_in):
    response = post_form(signed_in(school, people["registrar"]),
                         f"/records/students/{people['s2'].id}/registration", {"gender": "X"})
    assert response.status_code == 422 and "<code>gender</code>" in response.get_data(as_text=True)


@pytest.mark.parametrize("who", ["s1", "parent1", "hr101", "counselor", "teacher"])
def test_only_the_registrar_changes_registration(school, people, signed_in, who):
    web = signed_in(school, people[who])
    response = web.get(f"/records/students/{people['s1'].id}/registration")
    assert response.status_code in (403, 404)


def test_students_list_is_scoped_and_a_student_goes_to_their_own_page(school, people, signed_in):
    hr = signed_in(school, people["hr101"]).get("/records/students").get_data(as_text=True)
    assert "113001" in hr and "113002" in hr and "113003" not in hr
    parent = signed_in(school, people["parent3"]).get("/records/students").get_data(as_text=True)
    assert "113003" in parent and "113001" not in parent
    own = signed_in(school, people["s2"]).get("/records/students")
    assert own.status_code == 302 and str(people["s2"].id) in own.headers["Location"]
    assert signed_in(school, people["teacher"]).get("/records/students").status_code == 403


# --- cadre roles, clubs, attendance ------------------------------------------------------------------

def test_units_add_and_remove_records_on_the_student_page(app, school, people, signed_in):
    path = f"/records/students/{people['s1'].id}"
    year, semester = str(people["year"]), str(people["semester"])
    activities = signed_in(school, people["activities"])
    response = post_form(activities, path, {"cadre_roles-academic_year": year, "cadre_roles-semester": semester,
                                            "cadre_roles-level": "class", "cadre_roles-unit": "101",
                                            "cadre_roles-title": "班長", "cadre_roles-submit": "1"})
    assert response.status_code == 302
    again = post_form(activities, path, {"cadre_roles-academic_year": year, "cadre_roles-semester": semester,
                                         "cadre_roles-level": "class", "cadre_roles-unit": "101",
                                         "cadre_roles-title": "班長", "cadre_roles-submit": "1"})
    assert again.status_code == 302
    assert _count(app, school, CadreRole) == 1
    # the activities section may not touch clubs or attendance
    refused = post_form(activities, path, {"clubs-academic_year": year, "clubs-semester": semester,
                                           "clubs-club": "熱音社", "clubs-submit": "1"})
    assert refused.status_code == 403 and _count(app, school, ClubRecord) == 0

    clubs = signed_in(school, people["clubs"])
    assert post_form(clubs, path, {"clubs-academic_year": year, "clubs-semester": semester, "clubs-club": "熱音社",
                                   "clubs-role": "社長", "clubs-submit": "1"}).status_code == 302
    discipline = signed_in(school, people["discipline"])
    assert post_form(discipline, path, {"attendance-academic_year": year, "attendance-semester": semester,
                                        "attendance-school_days": "100", "attendance-absences": "0",
                                        "attendance-sick_leave": "3", "attendance-submit": "1"}).status_code == 302
    with as_tenant(app, school):
        summary = db.session.get(AttendanceSummary, (school.id, people["s1"].id, int(year), int(semester)))
        assert (summary.school_days, summary.sick_leave, summary.personal_leave) == (100, 3, 0)
        cadre_id = db.session.scalar(sa.select(CadreRole.id).where(CadreRole.tenant_id == school.id))
    page = signed_in(school, people["s1"]).get(path).get_data(as_text=True)
    assert "班長" in page and "熱音社" in page
    # a row is removed through its own student only
    wrong = post_form(activities, f"/records/students/{people['s2'].id}/cadre-roles/{cadre_id}/delete", {},
                      form_path=path)
    assert wrong.status_code == 404
    assert post_form(clubs, f"{path}/cadre-roles/{cadre_id}/delete", {}, form_path=path).status_code == 403
    assert post_form(activities, f"{path}/cadre-roles/{cadre_id}/delete", {}, form_path=path).status_code == 302
    assert _count(app, school, CadreRole) == 0
    assert _events(app, school, "cadre_role.deleted", people["s1"].id)


@pytest.mark.parametrize("form", [
    {"cadre_roles-academic_year": "abc", "cadre_roles-level": "class", "cadre_roles-unit": "101", "cadre_roles-title": "x"},
    {"cadre_roles-academic_year": "99", "cadre_roles-level": "class", "cadre_roles-unit": "101", "cadre_roles-title": "x"},
    {"cadre_roles-level": "class", "cadre_roles-unit": "", "cadre_roles-title": "x"},
    {"cadre_roles-level": "class", "cadre_roles-unit": "101", "cadre_roles-title": "x" * 61},
])
def test_bad_cadre_roles_change_nothing(app, school, people, signed_in, form):
    web = signed_in(school, people["activities"])
    data = {"cadre_roles-academic_year": str(people["year"]), "cadre_roles-semester": "1",
            "cadre_roles-submit": "1", **form}
    response = post_form(web, f"/records/students/{people['s1'].id}", data)
    assert response.status_code == 422 and 'class="error"' in response.get_data(as_text=True)
    assert _count(app, school, CadreRole) == 0
    bad_level = post_form(web, f"/records/students/{people['s1'].id}", {**data, "cadre_roles-level": "galaxy"})
    assert bad_level.status_code == 400


@pytest.mark.parametrize("field, value", [("school_days", "-1"), ("school_days", ""), ("absences", "1.5"),
                                          ("sick_leave", "2001"), ("personal_leave", "many")])
def test_bad_attendance_changes_nothing(app, school, people, signed_in, field, value):
    data = {"attendance-academic_year": str(people["year"]), "attendance-semester": "1",
            "attendance-school_days": "100", "attendance-submit": "1", f"attendance-{field}": value}
    response = post_form(signed_in(school, people["discipline"]), f"/records/students/{people['s1'].id}", data)
    assert response.status_code == 422
    assert _count(app, school, AttendanceSummary) == 0


def test_homeroom_teacher_enters_cadre_roles_for_their_class_only(app, school, people, signed_in):
    web = signed_in(school, people["hr101"])
    page = web.get(f"/records/classes/{people['c101']}")
    assert page.status_code == 200 and "113002" in page.get_data(as_text=True)
    form = {"cadre_roles-student_id": str(people["s2"].id), "cadre_roles-academic_year": str(people["year"]),
            "cadre_roles-semester": str(people["semester"]), "cadre_roles-level": "class",
            "cadre_roles-unit": "101", "cadre_roles-title": "副班長", "cadre_roles-submit": "1"}
    assert post_form(web, f"/records/classes/{people['c101']}", form).status_code == 302
    # a student of another class, smuggled into this class's form
    smuggled = post_form(web, f"/records/classes/{people['c101']}", {**form, "cadre_roles-student_id": str(people["s3"].id)})
    assert smuggled.status_code == 422
    assert web.get(f"/records/classes/{people['c102']}").status_code == 404
    assert post_form(web, f"/records/classes/{people['c102']}", form,
                     form_path=f"/records/classes/{people['c101']}").status_code == 404
    assert post_form(web, f"/records/students/{people['s3'].id}", {**form, "cadre_roles-student_id": ""},
                     form_path=f"/records/classes/{people['c101']}").status_code == 404
    # attendance is 生輔組's: the homeroom teacher sees it for the class but adds nothing
    attendance = web.get(f"/records/classes/{people['c101']}?area=attendance")
    assert attendance.status_code == 200 and 'data-testid="form-attendance"' not in attendance.get_data(as_text=True)
    assert _count(app, school, CadreRole) == 1
    classes = web.get("/records/classes").get_data(as_text=True)
    assert ">101<" in classes and ">102<" not in classes


def test_class_page_bad_filters(school, people, signed_in):
    web = signed_in(school, people["registrar"])
    assert web.get(f"/records/classes/{people['c101']}?area=wizards").status_code == 404
    assert web.get(f"/records/classes/{people['c101']}?year=abc").status_code == 422
    assert web.get(f"/records/classes/{people['c101']}?year=113&semester=5").status_code == 422
    assert web.get(f"/records/classes/{uuid.uuid4()}").status_code == 404
    assert web.get("/records/classes/not-an-id").status_code == 404


@contextmanager
def count_queries(app):
    counter = {"n": 0}

    def before(*_args, **_kwargs):
        counter["n"] += 1

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", before)


def test_class_pages_cost_the_same_queries_for_any_number_of_students(app, school, people, signed_in, make_user):
    web = signed_in(school, people["registrar"])
    for area in ("cadre_roles", "grades"):
        web.get(f"/records/classes/{people['c101']}?area={area}")  # warm up
        with count_queries(app) as small:
            assert web.get(f"/records/classes/{people['c101']}?area={area}").status_code == 200
        added = [make_user(school, "student", student_no=f"2{area[:1]}{index}{uuid.uuid4().hex[:4]}")
                 for index in range(6)]
        with as_tenant(app, school):
            for student in added:
                place_in_class(school, "test", student, "101", people["year"])
                db.session.add(CadreRole(tenant_id=school.id, student_id=student.id, academic_year=people["year"],
                                         semester=people["semester"], level="class", unit="101", title="幹部"))
            db.session.commit()
        with count_queries(app) as large:
            assert web.get(f"/records/classes/{people['c101']}?area={area}").status_code == 200
        assert large["n"] == small["n"], area
    with count_queries(app) as listing:
        web.get("/records/students")
    added = [make_user(school, "student", student_no=f"9{index}{uuid.uuid4().hex[:4]}") for index in range(5)]
    with as_tenant(app, school):
        for student in added:
            place_in_class(school, "test", student, "102", people["year"])
        db.session.commit()
    with count_queries(app) as longer:
        web.get("/records/students")
    assert listing["n"] == longer["n"]


# --- the semester's confirmation ------------------------------------------------------------------

def test_student_confirms_or_asks_and_the_responsible_unit_answers(app, school, people, signed_in):
    student = signed_in(school, people["s1"])
    page = student.get("/records/confirm")
    assert page.status_code == 200 and "A123456789" in page.get_data(as_text=True)
    assert post_form(student, "/records/confirm", {"area": "registration", "confirm": "1"}).status_code == 302
    assert post_form(student, "/records/confirm", {"area": "clubs", "correct": "1",
                                                   "note": "我是熱音社社長，不是社員。"}).status_code == 302
    with as_tenant(app, school):
        rows = {r.area: r for r in db.session.scalars(sa.select(DataConfirmation).where(
            DataConfirmation.tenant_id == school.id))}
    assert rows["registration"].status == "confirmed" and rows["clubs"].status == "correction_requested"
    assert (rows["clubs"].academic_year, rows["clubs"].semester) == (people["year"], people["semester"])

    # 生輔組 answers for attendance only: the clubs request is not theirs
    discipline = signed_in(school, people["discipline"])
    assert "熱音社社長" not in discipline.get("/records/corrections").get_data(as_text=True)
    assert post_form(discipline, f"/records/corrections/{rows['clubs'].id}", {"resolution": "x"},
                     form_path="/records/corrections").status_code == 403
    clubs = signed_in(school, people["clubs"])
    assert "熱音社社長" in clubs.get("/records/corrections").get_data(as_text=True)
    empty = post_form(clubs, f"/records/corrections/{rows['clubs'].id}", {"resolution": "  "},
                      form_path="/records/corrections")
    assert empty.status_code == 422
    too_long = post_form(clubs, f"/records/corrections/{rows['clubs'].id}", {"resolution": "x" * 501},
                         form_path="/records/corrections")
    assert too_long.status_code == 422
    assert post_form(clubs, f"/records/corrections/{rows['clubs'].id}", {"resolution": "已更正為社長。"},
                     form_path="/records/corrections").status_code == 302
    again = post_form(clubs, f"/records/corrections/{rows['clubs'].id}", {"resolution": "again"},
                      form_path="/records/corrections")
    assert again.status_code == 409
    answered = student.get("/records/confirm").get_data(as_text=True)
    assert "已更正為社長。" in answered
    assert _events(app, school, "basic_data.correction_resolved", people["s1"].id)


@pytest.mark.parametrize("form", [
    {"area": "clubs", "correct": "1", "note": ""},
    {"area": "clubs", "correct": "1", "note": "x" * 501},
    {"area": "wizards", "confirm": "1"},
    {"area": "", "confirm": "1"},
])
def test_bad_confirmations_change_nothing(app, school, people, signed_in, form):
    response = post_form(signed_in(school, people["s1"]), "/records/confirm", form)
    assert response.status_code == 422
    assert _count(app, school, DataConfirmation) == 0


def test_an_open_request_is_not_confirmed_over(app, school, people, signed_in):
    student = signed_in(school, people["s1"])
    post_form(student, "/records/confirm", {"area": "grades", "correct": "1", "note": "數學成績有誤"})
    assert post_form(student, "/records/confirm", {"area": "grades", "confirm": "1"}).status_code == 409


def test_only_students_confirm_and_homeroom_sees_only_its_class_requests(app, school, people, signed_in):
    assert signed_in(school, people["parent1"]).get("/records/confirm").status_code == 403
    assert signed_in(school, people["registrar"]).get("/records/confirm").status_code == 403
    post_form(signed_in(school, people["s3"]), "/records/confirm", {"area": "cadre_roles", "correct": "1",
                                                                     "note": "漏了副班長"})
    assert "漏了副班長" not in signed_in(school, people["hr101"]).get("/records/corrections").get_data(as_text=True)
    assert "漏了副班長" in signed_in(school, people["hr102"]).get("/records/corrections").get_data(as_text=True)
    assert "漏了副班長" in signed_in(school, people["activities"]).get("/records/corrections").get_data(as_text=True)
    assert signed_in(school, people["s3"]).get("/records/corrections").status_code == 403


# --- grades, counseling, electives ------------------------------------------------------------------

@pytest.mark.parametrize("who, sees", [("s1", True), ("parent1", True), ("hr101", True), ("registrar", True),
                                       ("s2", False), ("parent3", False), ("hr102", False)])
def test_grades_are_seen_by_scope(school, people, signed_in, who, sees):
    web = signed_in(school, people[who])
    response = web.get(f"/records/students/{people['s1'].id}")
    html = response.get_data(as_text=True)
    assert ('data-testid="grades"' in html and "88" in html) is sees
    if not sees:
        assert response.status_code == 404


def test_homeroom_sees_class_grades_and_not_another_class(school, people, signed_in):
    web = signed_in(school, people["hr101"])
    html = web.get(f"/records/classes/{people['c101']}?area=grades").get_data(as_text=True)
    assert "數學 88.00" in html and "113003" not in html and "59.00" not in html


COUNSELING = {"held_on": "", "held_at": "13:30", "place": "輔導室", "content": "討論選修方向",
              "advice": "建議修習物理"}


def test_counseling_records_by_counselors_seen_by_scope(app, school, people, signed_in):
    web = signed_in(school, people["counselor"])
    path = f"/records/students/{people['s1'].id}/counseling"
    today = clock.today().isoformat()
    assert post_form(web, path, {**COUNSELING, "held_on": today}).status_code == 302
    with as_tenant(app, school):
        record = db.session.scalar(sa.select(CounselingRecord).where(CounselingRecord.tenant_id == school.id))
        assert (record.place, record.held_at.strftime("%H:%M"), record.counselor_id) == ("輔導室", "13:30",
                                                                                          people["counselor"].id)
    edit = post_form(web, f"{path}/{record.id}", {**COUNSELING, "held_on": today, "advice": "建議修習化學"})
    assert edit.status_code == 302
    for who in ("s1", "hr101", "counselor"):
        assert "建議修習化學" in signed_in(school, people[who]).get(path).get_data(as_text=True), who
    for who, status in (("s2", 404), ("hr102", 404), ("parent1", 403), ("teacher", 403)):
        response = signed_in(school, people[who]).get(path)
        assert response.status_code == status, who
        assert "建議修習化學" not in response.get_data(as_text=True)
    # a student sees their counseling but cannot write it
    student = signed_in(school, people["s1"])
    assert post_form(student, path, {**COUNSELING, "held_on": today}).status_code == 404
    assert student.get(f"{path}/{record.id}").status_code == 403
    # another student's record id under this student is not found
    assert web.get(f"/records/students/{people['s2'].id}/counseling/{record.id}").status_code == 404
    assert _count(app, school, CounselingRecord) == 1


@pytest.mark.parametrize("change, field", [
    ({"held_on": ""}, "held_on"), ({"held_on": "2099-01-01"}, "held_on"), ({"held_on": "soon"}, "held_on"),
    ({"held_at": "25:00"}, "held_at"), ({"held_at": "noon"}, "held_at"), ({"place": ""}, "place"),
    ({"place": "x" * 101}, "place"), ({"content": ""}, "content"), ({"advice": "x" * 2001}, "advice"),
])
def test_bad_counseling_records_change_nothing(app, school, people, signed_in, change, field):
    web = signed_in(school, people["counselor"])
    data = {**COUNSELING, "held_on": clock.today().isoformat(), **change}
    response = post_form(web, f"/records/students/{people['s1'].id}/counseling", data)
    assert response.status_code == 422
    assert f'id="{field}-error"' in response.get_data(as_text=True)
    assert _count(app, school, CounselingRecord) == 0


def test_elective_choices_by_academic_affairs(app, school, people, signed_in):
    web = signed_in(school, people["affairs"])
    assert "MATH1" in web.get("/records/courses").get_data(as_text=True)
    path = f"/records/courses/{people['course']}/electives"
    assert post_form(web, path, {"student_no": "113002", "preference": "1", "status": "admitted"}).status_code == 302
    assert post_form(web, path, {"student_no": "999999", "preference": "1", "status": "chosen"}).status_code == 422
    assert post_form(web, path, {"student_no": str(people["teacher"].username), "preference": "1",
                                 "status": "chosen"}).status_code == 422
    assert post_form(web, path, {"student_no": "113003", "preference": "0", "status": "chosen"}).status_code == 422
    assert post_form(web, path, {"student_no": "113003", "preference": "1", "status": "bribed"}).status_code == 400
    assert _count(app, school, ElectiveChoice) == 1
    own = signed_in(school, people["s2"]).get(f"/records/students/{people['s2'].id}").get_data(as_text=True)
    assert 'data-testid="section-grades"' in own and "數學" in own
    assert signed_in(school, people["teacher"]).get(path).status_code == 403
    assert signed_in(school, people["s2"]).get("/records/courses").status_code == 403
    delete = post_form(web, f"{path}/{people['s2'].id}/delete", {}, form_path=path)
    assert delete.status_code == 302 and _count(app, school, ElectiveChoice) == 0
    assert post_form(web, f"{path}/{people['s2'].id}/delete", {}, form_path=path).status_code == 404


# --- another school ---------------------------------------------------------------------------------

def test_another_schools_records_are_not_found_on_any_records_route(app, school, people, make_school, make_user,
                                                                    signed_in):
    with as_tenant(app, school):
        cadre = CadreRole(tenant_id=school.id, student_id=people["s1"].id, academic_year=people["year"],
                          semester=people["semester"], level="class", unit="101", title="班長")
        club = ClubRecord(tenant_id=school.id, student_id=people["s1"].id, academic_year=people["year"],
                          semester=people["semester"], club="熱音社")
        counseling = CounselingRecord(tenant_id=school.id, student_id=people["s1"].id,
                                      counselor_id=people["counselor"].id, held_on=clock.today(), place="輔導室",
                                      content="甲校秘密", advice="甲校秘密")
        confirmation = DataConfirmation(tenant_id=school.id, student_id=people["s1"].id, academic_year=people["year"],
                                        semester=people["semester"], area="clubs", status="correction_requested",
                                        note="甲校秘密")
        db.session.add_all([cadre, club, counseling, confirmation])
        db.session.commit()
        term = Term(tenant_id=school.id, academic_year=113, semester=1, starts_on=date(2024, 8, 1),
                    ends_on=date(2025, 1, 31), ceremony_on=date(2025, 1, 20))
        db.session.add(term)
        db.session.commit()
        ids = {"student_id": people["s1"].id, "row_id": cadre.id, "record_id": counseling.id,
               "class_id": people["c101"], "course_id": people["course"], "confirmation_id": confirmation.id,
               "term_id": term.id, "club_id": club.id}
    other = make_school("yuanlin")
    admin = make_user(other, "school_admin", "registrar", "course_counselor")
    web = signed_in(other, admin)
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] not in ("records", "academics") or not set(rule.arguments) & set(ids):
            continue
        values = {arg: ids.get(arg, uuid.uuid4()) for arg in rule.arguments}
        if rule.endpoint == "records.delete_club_record":
            values["row_id"] = ids["club_id"]
        path = re.sub(r"<(?:[^:<>]+:)?(\w+)>", lambda m: str(values[m.group(1)]), rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            kwargs = {"data": {"csrf_token": csrf_token(web, "/records/classes")}} if method == "POST" else {}
            response = web.open(path, method=method, **kwargs)
            assert response.status_code == 404, f"{method} {path}"
            assert "甲校秘密" not in response.get_data(as_text=True) and "王小明" not in response.get_data(as_text=True)
            checked += 1
    assert checked >= 12
    assert _count(app, school, CadreRole) == 1 and _count(app, school, DataConfirmation) == 1


def test_pages_fit_a_phone(school, people, signed_in):
    web = signed_in(school, people["registrar"])
    for path in (f"/records/students/{people['s1'].id}", f"/records/classes/{people['c101']}", "/records/classes",
                 "/records/students", "/records/corrections", "/terms", "/imports/students"):
        html = web.get(path).get_data(as_text=True)
        assert 'name="viewport"' in html and "<table" in html and "table-wrap" in html, path
        assert html.count("<table") == html.count('class="table-wrap"'), path


def test_a_sealed_graduates_records_are_read_only(app, school, people, signed_in, api_for, drain_jobs):
    lifecycle = pytest.importorskip("lp_saas.lifecycle.models")
    from datetime import datetime, timezone

    with as_tenant(app, school):
        db.session.add(lifecycle.Graduation(tenant_id=school.id, student_id=people["s3"].id,
                                            graduated_on=clock.today(), sealed_at=datetime.now(timezone.utc)))
        db.session.commit()
    registrar = signed_in(school, people["registrar"])
    edit = registrar.get(f"/records/students/{people['s3'].id}/registration")
    assert edit.status_code == 403
    assert post_form(registrar, f"/records/students/{people['s3'].id}/registration", {"national_id": ""},
                     form_path=f"/records/students/{people['s1'].id}/registration").status_code == 403
    api = api_for(school, people["registrar"])
    import io

    response = api.client.post("/api/v1/imports/grades", headers=api.headers(), content_type="multipart/form-data",
                               data={"file": (io.BytesIO("課程代碼,學號,成績\nMATH1,113003,60\nMATH1,113001,90\n".encode()),
                                              "a.csv")})
    assert response.status_code == 202, response.get_json()
    drain_jobs()
    report = api.get(response.get_json()["status_url"]).get_json()["result"]
    assert report["updated"] == 1 and [(r["row"], set(r["errors"])) for r in report["refused"]] == [(2, {"student_no"})]
    assert _count(app, school, Grade, Grade.student_id == people["s3"].id, Grade.score == 59) == 1
    assert _count(app, school, StudentRecord, StudentRecord.national_id == "F131104093") == 1


@pytest.mark.parametrize("form", [{"clubs-club": ""}, {"clubs-club": "熱音社", "clubs-role": "x" * 41},
                                  {"clubs-club": "熱\x07音社"}, {"clubs-club": "熱音社", "clubs-semester": "3"}])
def test_bad_club_records_change_nothing(app, school, people, signed_in, form):
    data = {"clubs-academic_year": str(people["year"]), "clubs-semester": "1", "clubs-submit": "1", **form}
    response = post_form(signed_in(school, people["clubs"]), f"/records/students/{people['s1'].id}", data)
    assert response.status_code in (400, 422)
    assert _count(app, school, ClubRecord) == 0


def test_records_entry_and_search_input(school, people, signed_in):
    student = signed_in(school, people["s1"])
    assert student.get("/records/").headers["Location"].endswith(f"/records/students/{people['s1'].id}")
    registrar = signed_in(school, people["registrar"])
    assert registrar.get("/records/").headers["Location"].endswith("/records/students")
    for q in ("%", "_", "<script>alert(1)</script>", "x" * 500, "王"):
        response = registrar.get("/records/students", query_string={"q": q})
        assert response.status_code == 200
        assert "<script>alert(1)</script>" not in response.get_data(as_text=True)
    assert "113001" in registrar.get("/records/students", query_string={"q": "王"}).get_data(as_text=True)
    assert "113001" not in registrar.get("/records/students", query_string={"q": "%"}).get_data(as_text=True)
