"""Regional education offices: ``offices create`` and ``users create --office`` (CLI and console),
the office dashboard and ``GET /api/v1/offices/{code}/schools``: each officer sees the figures of
their own office's schools only, and never a student's or staff member's personal data."""
from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa

from lp_saas import clock
from lp_saas.database import db
from tests.conftest import as_tenant, login, post_form, school_client

OFFICER_PASSWORD = "Officer-pass-42"
#: 114年3月10日 (Taiwan): semester 2 of academic year 113
AS_OF = datetime(2025, 3, 10, 4, 0, tzinfo=timezone.utc)


def _code(prefix="OFF"):
    return f"{prefix}-{uuid.uuid4().hex[:6].upper()}"


def cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def make_office(app, *schools, code=None, name="測試教育局"):
    code = code or _code()
    result = cli(app, "offices", "create", "--code", code, "--name", name,
                 *[arg for s in schools for arg in ("--school", s.slug)])
    assert result.exit_code == 0, result.output
    return code


def make_officer(app, code, username=None):
    username = username or f"officer{uuid.uuid4().hex[:6]}"
    result = cli(app, "users", "create", "--office", code, "--username", username, "--password", OFFICER_PASSWORD,
                 "--role", "office_officer", "--name", "督學")
    assert result.exit_code == 0, result.output
    return username


def platform_api_token(app, username, password=OFFICER_PASSWORD):
    response = school_client(app, "").post("/api/v1/platform/token", json={"username": username, "password": password})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["token"]


def office_get(app, code, token):
    return school_client(app, "").get(f"/api/v1/offices/{code}/schools", headers={"Authorization": f"Bearer {token}"})


# --- a school with known figures -------------------------------------------------------------------------

STUDENTS = (("王小明", "s113001"), ("李美玲", "s113002"), ("張志豪", "s113003"), ("陳怡君", "s113004"))


@pytest.fixture
def seeded_school(app, make_school, make_user):
    """A school with named students, a teacher, terms, outcomes in every state, a selection, and
    governance records; returns (school, markers of personal data that must never reach an office)."""
    from lp_saas.academics.models import Course, Enrollment, Term
    from lp_saas.governance.models import Meeting, MeetingRuleSet, Training, WorkingGroupMember
    from lp_saas.portfolio.models import CourseOutcome, SelectionItem
    from lp_saas.tenants.models import RuleSet

    school = make_school("moe", name=f"國立示範高級中學{uuid.uuid4().hex[:4]}")
    students = [make_user(school, "student", username=u, display_name=n, student_no=u[1:]) for n, u in STUDENTS]
    teacher = make_user(school, "teacher", username=f"t{uuid.uuid4().hex[:6]}", display_name="黃老師")
    admin = make_user(school, "school_admin", username=f"adm{uuid.uuid4().hex[:6]}", display_name="周主任")
    with as_tenant(app, school):
        db.session.add_all([
            Term(tenant_id=school.id, academic_year=113, semester=1, starts_on=date(2024, 8, 30),
                 ends_on=date(2025, 1, 31), ceremony_on=date(2025, 1, 20)),
            Term(tenant_id=school.id, academic_year=113, semester=2, starts_on=date(2025, 2, 11),
                 ends_on=date(2025, 7, 31), ceremony_on=date(2025, 6, 30)),
        ])
        first = Course(tenant_id=school.id, code="113-1-MATH", name="數學", credits=4, academic_year=113, semester=1,
                       grade=10, teacher_id=teacher.id)
        second = Course(tenant_id=school.id, code="113-2-MATH", name="數學", credits=4, academic_year=113,
                        semester=2, grade=10, teacher_id=teacher.id)
        db.session.add_all([first, second])
        db.session.flush()
        for s in students:
            db.session.add_all([Enrollment(tenant_id=school.id, course_id=c.id, student_id=s.id) for c in (first, second)])

        def outcome(student, course, status):
            return CourseOutcome(tenant_id=school.id, student_id=student.id, course_id=course.id,
                                 academic_year=113, semester=course.semester, title=f"{student.display_name}的報告",
                                 status=status, link_url="https://example.org/x")

        db.session.add_all([
            outcome(students[0], second, "certified"), outcome(students[1], second, "submitted"),
            outcome(students[2], second, "returned"), outcome(students[3], second, "awaiting_upload"),
            outcome(students[0], first, "submitted"),  # still not certified after 114/2/10: late
            outcome(students[1], first, "certified"),
        ])
        db.session.flush()
        chosen = db.session.scalar(sa.select(CourseOutcome.id).where(CourseOutcome.tenant_id == school.id,
                                                                     CourseOutcome.status == "certified").limit(1))
        db.session.add(SelectionItem(tenant_id=school.id, student_id=students[0].id, academic_year=113,
                                     item_kind="outcome", item_id=chosen))
        meeting = Meeting(tenant_id=school.id, held_on=date(2025, 2, 20), kind="working_group",
                          title="王小明家長出席之工作小組會議")
        db.session.add_all([
            meeting,
            WorkingGroupMember(tenant_id=school.id, name="周召集", title="校長", group_role="convener"),
            Training(tenant_id=school.id, audience="students", held_on=date(2024, 9, 10), unit="教務處",
                     title="李美玲分享會", attendees=120),
            Training(tenant_id=school.id, audience="parents", held_on=date(2023, 9, 10), unit="輔導處",
                     title="去年的家長說明會", attendees=50),
        ])
        db.session.flush()
        rule_set = db.session.scalar(sa.select(RuleSet).where(RuleSet.tenant_id == school.id))
        db.session.add(MeetingRuleSet(tenant_id=school.id, meeting_id=meeting.id, rule_set_id=rule_set.id))
        db.session.commit()
    markers = [n for n, _ in STUDENTS] + [u for _, u in STUDENTS] + [u[1:] for _, u in STUDENTS]
    markers += [str(s.id) for s in students] + [teacher.username, "黃老師", admin.username, "周主任", "周召集",
                                                 str(teacher.id), "李美玲分享會", "的報告"]
    return school, markers


def _assert_no_personal_data(text, markers, where):
    for marker in markers:
        assert marker not in text, f"{where}: {marker!r} reached an office"


# --- CLI -------------------------------------------------------------------------------------------------

def test_offices_create_is_idempotent_and_refuses_bad_input(app, make_school):
    from lp_saas.platform.models import Office, OfficeSchool

    a, b = make_school(), make_school()
    code = _code("tpe")
    first = cli(app, "offices", "create", "--code", code, "--name", "臺北市政府教育局", "--school", a.slug)
    assert first.exit_code == 0, first.output
    again = cli(app, "offices", "create", "--code", code, "--name", "臺北市政府教育局", "--school", a.slug)
    assert again.exit_code == 0 and "nothing changed" in again.output
    more = cli(app, "offices", "create", "--code", code.lower(), "--name", "臺北市政府教育局", "--school", b.slug)
    assert more.exit_code == 0 and b.slug in more.output
    with app.app_context():
        office = db.session.scalar(sa.select(Office).where(Office.code == code.upper()))
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OfficeSchool)
                                 .where(OfficeSchool.office_id == office.id)) == 2
    before = None
    with app.app_context():
        before = db.session.scalar(sa.select(sa.func.count()).select_from(Office))
    for bad in (["--code", "x", "--name", "太短"], ["--code", "BAD CODE!", "--name", "空白"],
                ["--code", _code(), "--name", "無此學校", "--school", "nosuchschool"],
                ["--code", _code(), "--name", "<b>"]):
        result = cli(app, "offices", "create", *bad)
        assert result.exit_code != 0, bad
        assert result.output.startswith("Error:")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Office)) == before


def test_users_create_office_officer_and_operator(app, make_school):
    from lp_saas.platform.models import PlatformUser

    school = make_school()
    code = make_office(app, school)
    username = make_officer(app, code)
    with app.app_context():
        user = db.session.scalar(sa.select(PlatformUser).where(PlatformUser.username == username))
        assert user.kind == "office_officer" and user.office_id is not None
    operator = cli(app, "users", "create", "--username", f"op{uuid.uuid4().hex[:6]}", "--password", "Operator-pass-1",
                   "--role", "operator")
    assert operator.exit_code == 0, operator.output
    for bad in (["--office", "NOPE-OFFICE", "--username", "x1x", "--password", OFFICER_PASSWORD, "--role", "office_officer"],
                ["--office", code, "--username", username, "--password", OFFICER_PASSWORD, "--role", "office_officer"],
                ["--office", code, "--username", "x2x", "--password", "short", "--role", "office_officer"],
                ["--office", code, "--username", "x3x", "--password", OFFICER_PASSWORD, "--role", "teacher"],
                ["--office", code, "--tenant", school.slug, "--username", "x4x", "--password", OFFICER_PASSWORD,
                 "--role", "office_officer"],
                ["--username", "x5x", "--password", OFFICER_PASSWORD, "--role", "office_officer"]):
        result = cli(app, "users", "create", *bad)
        assert result.exit_code != 0, bad
    with app.app_context():
        assert not db.session.scalars(sa.select(PlatformUser.username).where(
            PlatformUser.username.in_(["x1x", "x2x", "x3x", "x4x", "x5x"]))).all()


# --- the API -------------------------------------------------------------------------------------------

def test_officer_sees_own_schools_figures_only(app, make_school, seeded_school):
    school, markers = seeded_school
    neighbour = make_school(name="鄰校高中")
    elsewhere = make_school(name="他縣市高中")
    code = make_office(app, school, neighbour, name="示範縣教育處")
    other_code = make_office(app, elsewhere, name="他縣市教育處")
    token = platform_api_token(app, make_officer(app, code))

    with clock.frozen(AS_OF):
        response = office_get(app, code, token)
    assert response.status_code == 200, response.get_json()
    rows = response.get_json()
    assert isinstance(rows, list)
    assert sorted(r["slug"] for r in rows) == sorted([school.slug, neighbour.slug])
    mine = next(r for r in rows if r["slug"] == school.slug)
    assert mine["academic_year"] == 113 and mine["semester"] == 2 and mine["as_of"] == "2025-03-10"
    progress, compliance = mine["progress"], mine["compliance"]
    assert progress["students"] == 4
    assert progress["students_uploaded"] == 3 and progress["upload_rate"] == 0.75
    assert progress["outcomes_certified"] == 1 and progress["outcomes_awaiting_certification"] == 1
    assert progress["certification_rate"] == 0.333
    assert progress["selection_rate"] == 0.25
    assert progress["late_certifications"] == 1
    assert progress["certification_deadline"] == "2025-07-21"
    assert compliance["rule_set"] == {"version": 1, "adopted_on": "2022-08-26", "adopted_by": "期初校務會議",
                                      "meeting_on": "2025-02-20", "meeting_kind": "working_group"}
    assert compliance["working_group_meetings_this_semester"] == 1
    assert compliance["working_group_meetings_required"] == 1 and compliance["working_group_meetings_ok"]
    assert compliance["trainings_this_year"]["students"] == {"held": 1, "attendees": 120, "required": 1, "ok": True}
    assert compliance["trainings_this_year"]["parents"]["held"] == 0  # last year's does not count
    assert not compliance["trainings_this_year"]["teachers"]["ok"]
    _assert_no_personal_data(json.dumps(rows, ensure_ascii=False), markers, "JSON")

    # another office's code is a 404, and so is an unknown one
    assert office_get(app, other_code, token).status_code == 404
    assert office_get(app, "NO-SUCH", token).status_code == 404
    assert school_client(app, "").get(f"/api/v1/offices/{code}/schools").status_code == 401


def test_officer_cannot_use_a_schools_pages_or_api(app, make_school, api_for):
    school = make_school()
    code = make_office(app, school)
    username = make_officer(app, code)
    token = platform_api_token(app, username)
    site = school_client(app, school)
    # the account does not exist at the school
    assert login(site, username, OFFICER_PASSWORD).status_code == 401
    assert api_for(school).post("/api/v1/auth/token", {"username": username, "password": OFFICER_PASSWORD}
                                ).status_code == 401
    # the platform token is worthless at the school, the office's API does not exist there
    headers = {"Authorization": f"Bearer {token}"}
    assert site.get("/api/v1/me", headers=headers).status_code == 401
    assert site.get(f"/api/v1/offices/{code}/schools", headers=headers).status_code == 404
    # the apex session cookie signs nobody in at the school
    apex = school_client(app, "")
    assert post_form(apex, "/platform/login", {"username": username, "password": OFFICER_PASSWORD}).status_code == 302
    cookie = apex.get_cookie("session", domain="localhost")
    site.set_cookie("session", cookie.value, domain=f"{school.slug}.localhost")
    assert site.get("/dashboard").status_code == 302
    assert site.get("/governance").status_code in (302, 401)


def test_operators_see_every_office(app, make_school):
    from tests.test_platform import OPERATOR_PASSWORD, make_operator

    code = make_office(app, make_school())
    token = platform_api_token(app, make_operator(app), OPERATOR_PASSWORD)
    assert office_get(app, code, token).status_code == 200


# --- the dashboard and the CSV ---------------------------------------------------------------------------

def test_office_dashboard_and_csv_carry_figures_not_personal_data(app, make_school, seeded_school):
    school, markers = seeded_school
    other = make_school(name="別的縣市高中")
    code = make_office(app, school, name="示範縣教育處")
    other_code = make_office(app, other)
    username = make_officer(app, code)
    apex = school_client(app, "")
    response = post_form(apex, "/platform/login", {"username": username, "password": OFFICER_PASSWORD})
    assert response.status_code == 302 and response.headers["Location"].endswith("/office")
    with clock.frozen(AS_OF):
        assert apex.get("/office").headers["Location"].endswith(f"/office/{code}")
        page = apex.get(f"/office/{code}")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert school.name in html and "示範縣教育處" in html and "<svg" in html and "75%" in html
        assert "別的縣市高中" not in html
        _assert_no_personal_data(html, markers, "page")
        exported = apex.get(f"/office/{code}/schools.csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    text = exported.get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == 1 and rows[0]["school"] == school.name
    assert rows[0]["upload_rate"] == "0.75" and rows[0]["late_certifications"] == "1"
    assert rows[0]["rule_set_adopted_on"] == "2022-08-26" and rows[0]["trainings_students"] == "1"
    _assert_no_personal_data(text, markers, "CSV")
    # another office's dashboard and export are 404; the console is not an officer's
    assert apex.get(f"/office/{other_code}").status_code == 404
    assert apex.get(f"/office/{other_code}/schools.csv").status_code == 404
    assert apex.get("/console").status_code == 403


def test_csv_cells_cannot_become_formulas(app, make_school):
    from lp_saas.platform.oversight import figures_csv

    text = figures_csv([{"school_code": "123456", "school": "=HYPERLINK(\"x\")", "status": "active",
                         "academic_year": 113, "semester": 2, "progress": None, "compliance": None}])
    assert "'=HYPERLINK" in text


# --- the console ---------------------------------------------------------------------------------------

def test_console_creates_offices_and_officers(app, make_school):
    from tests.test_platform import OPERATOR_PASSWORD, make_operator

    a, b = make_school(name="甲縣高中"), make_school(name="乙縣高中")
    apex = school_client(app, "")
    assert post_form(apex, "/platform/login", {"username": make_operator(app), "password": OPERATOR_PASSWORD}
                     ).status_code == 302
    code = _code("KHH")
    response = post_form(apex, "/console/offices", {"office-code": code, "office-name": "高雄市政府教育局",
                                                    "office-schools": [a.slug, b.slug], "office-submit": "1"})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    page = apex.get("/console/offices").get_data(as_text=True)
    assert code in page and "甲縣高中" in page
    bad = post_form(apex, "/console/offices", {"office-code": "?", "office-name": "", "office-submit": "1"},
                    form_path="/console/offices")
    assert bad.status_code == 422 and "機關代碼" in bad.get_data(as_text=True)
    username = f"khh{uuid.uuid4().hex[:6]}"
    created = post_form(apex, "/console/offices", {"account-username": username, "account-display_name": "林督學",
                                                   "account-role": "office_officer", "account-office": code,
                                                   "account-password": OFFICER_PASSWORD, "account-submit": "1"},
                        form_path="/console/offices")
    assert created.status_code == 302, created.get_data(as_text=True)[:500]
    refused = post_form(apex, "/console/offices", {"account-username": f"x{uuid.uuid4().hex[:6]}",
                                                   "account-display_name": "無機關", "account-role": "office_officer",
                                                   "account-office": "", "account-password": OFFICER_PASSWORD,
                                                   "account-submit": "1"}, form_path="/console/offices")
    assert refused.status_code == 422 and "查無機關" in refused.get_data(as_text=True)
    # the new officer must change the password first, then sees the office
    officer = school_client(app, "")
    response = post_form(officer, "/platform/login", {"username": username, "password": OFFICER_PASSWORD})
    assert response.headers["Location"].endswith("/platform/password")
    changed = post_form(officer, "/platform/password", {"current_password": OFFICER_PASSWORD,
                                                        "new_password": "Officer-new-pass-9"})
    assert changed.status_code == 302
    assert "高雄市政府教育局" in officer.get(f"/office/{code}").get_data(as_text=True)
