"""Imports of rosters, grades and unit records: files told apart by content, row-by-row reports,
idempotent re-uploads, whole-file refusals that store nothing, and who may import what."""
from __future__ import annotations

import csv
import io
import uuid

import openpyxl
import pytest
import sqlalchemy as sa

from lp_saas.academics import imports
from lp_saas.academics.models import ClassMembership, Course, Enrollment, ParentLink, SchoolClass, StudentRecord
from lp_saas.accounts.models import User
from lp_saas.audit.models import AuditEvent
from lp_saas.database import db
from lp_saas.jobs.models import Job
from lp_saas.records import services as records
from lp_saas.records.models import AttendanceSummary, CadreRole, ClubRecord, ElectiveChoice, Grade
from lp_saas.roles import permissions
from lp_saas.storage import get_storage
from tests.conftest import as_tenant, csrf_token

# --- files made at test time (tests/fixtures/ holds none: nothing binary is committed) -------------


def xlsx(rows: list[list]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def csv_bytes(rows: list[list], encoding: str = "utf-8", delimiter: str = ",") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows(rows)
    return out.getvalue().encode(encoding)


STUDENT_HEADER_ZH = ["帳號", "姓名", "學號", "班級", "身分證號", "生日", "監護人", "密碼"]


def upload(api, kind: str, data: bytes, filename: str = "roster.xlsx"):
    return api.client.post(f"/api/v1/imports/{kind}", data={"file": (io.BytesIO(data), filename)},
                           headers=api.headers(), content_type="multipart/form-data")


@pytest.fixture
def school(make_school):
    return make_school("yuanlin")


@pytest.fixture
def registrar(school, make_user):
    return make_user(school, "registrar", display_name="註冊組長")


@pytest.fixture
def api(school, registrar, api_for):
    return api_for(school, registrar)


@pytest.fixture
def run_import(api, drain_jobs):
    """Upload a file through the API and return the finished job's report."""
    def run(kind, data, filename="roster.xlsx", client=None):
        response = upload(client or api, kind, data, filename)
        assert response.status_code == 202, response.get_json()
        drain_jobs()
        job = (client or api).get(response.get_json()["status_url"])
        assert job.status_code == 200
        body = job.get_json()
        assert body["status"] == "succeeded", body
        return body["result"]

    return run


def _count(app, school, model, *where):
    with as_tenant(app, school):
        return db.session.scalar(sa.select(sa.func.count()).select_from(model)
                                 .where(model.tenant_id == school.id, *where))


def _users(app, school):
    with as_tenant(app, school):
        return {u.username: u for u in db.session.scalars(sa.select(User).where(User.tenant_id == school.id))}


# --- values: the Taiwan ID check digit and ROC dates -------------------------------------------------

@pytest.mark.parametrize("number, ok", [
    ("A123456789", True),  # national ID
    ("a123456789", True),  # normalised to upper case
    ("Ａ１２３４５６７８９", True),  # full-width, as typed on a Chinese keyboard
    ("A123456788", False),  # check digit
    ("A323456789", False),  # gender digit is 1 or 2
    ("A800000014", True),  # new-format resident certificate (2021)
    ("A800000015", False),
    ("AC01234567", True),  # old-format resident certificate
    ("AC01234568", False),
    ("AE01234567", False),
    ("123456789", False),
    ("A12345678", False),
    ("", False),
])
def test_national_id_check_digit(app, number, ok):
    with app.test_request_context():
        assert (records.national_id_problem(records.normalize_national_id(number)) is None) is ok


@pytest.mark.parametrize("text, expected", [
    ("2008-05-01", "2008-05-01"), ("2008/5/1", "2008-05-01"), ("20080501", "2008-05-01"),
    ("97/05/01", "2008-05-01"), ("097-05-01", "2008-05-01"), ("0970501", "2008-05-01"), ("970501", "2008-05-01"),
    ("民國97年5月1日", "2008-05-01"), ("97年5月1日", "2008-05-01"), ("１０１/０２/２９", "2012-02-29"),
])
def test_dates_in_both_calendars(text, expected):
    assert records.parse_date_value(text).isoformat() == expected


@pytest.mark.parametrize("text", ["97/13/01", "2008-02-30", "100/02/29", "yesterday", "5/1", "97/05/01/01"])
def test_bad_dates_are_refused(text):
    with pytest.raises(ValueError):
        records.parse_date_value(text)


# --- students ---------------------------------------------------------------------------------

def test_students_import_reports_each_refused_row_and_is_idempotent(app, school, api, run_import):
    rows = [
        STUDENT_HEADER_ZH,
        ["s1", "王小明", "113001", "101", "A123456789", "97/05/01", "王大明", ""],
        ["s2", "李小華", "113002", "101", "B234567894", "2008-06-02", "", "Start-pass-42"],
        ["s3", "陳小美", "113003", "102", "A123456788", "2008-07-03", "", ""],  # check digit
        [None, None, None, None, None, None, None, None],  # blank row: skipped, not refused
        ["s4", "林小強", "113004", "102", "", "97/13/40", "", ""],  # no such date
        ["s5", "張小芬", "113001", "102", "", "", "", ""],  # student number of row 2
        ["s6", "", "113006", "", "", "", "", "123"],  # missing name and class, weak password
        ["s 7", "吳小志", "113007", "103", "", "", "", ""],  # bad username
        ["s8", "黃小玲", "113008", "103", "AC01234567", "2008-08-08", "", ""],  # old resident certificate
    ]
    report = run_import("students", xlsx(rows))
    assert report["created"] == 3 and report["updated"] == 0 and report["unchanged"] == 0, report["refused"]
    refused = {r["row"]: set(r["errors"]) for r in report["refused"]}
    assert refused == {4: {"national_id"}, 6: {"birth_date"}, 7: {"student_no"},
                       8: {"display_name", "class_name", "password"}, 9: {"username"}}
    assert report["refused_count"] == 5 and report["rows"] == 8
    # the report speaks the uploader's language (zh-TW by default)
    assert report["refused"][0]["errors"]["national_id"] == "此號碼的檢查碼不正確，請檢查是否打錯。"

    users = _users(app, school)
    assert {"s1", "s2", "s8"} <= set(users) and not {"s3", "s4", "s5", "s6", "s 7"} & set(users)
    with as_tenant(app, school):
        record = db.session.get(StudentRecord, (school.id, users["s1"].id))
        assert record.national_id == "A123456789" and record.birth_date.isoformat() == "2008-05-01"
        assert record.guardian_name == "王大明"
        assert db.session.get(StudentRecord, (school.id, users["s8"].id)).national_id == "AC01234567"
        assert users["s1"].password_hash is None  # the school resets it later
        assert users["s2"].password_hash and users["s2"].must_change_password
        assert records.is_student(users["s1"])
        classes = {c.name: c for c in db.session.scalars(sa.select(SchoolClass).where(SchoolClass.tenant_id == school.id))}
        assert set(classes) == {"101", "103"}  # nothing of the refused rows, not even their class
        assert _count(app, school, ClassMembership, ClassMembership.class_id == classes["101"].id) == 2

    again = run_import("students", xlsx(rows))
    assert (again["created"], again["updated"], again["unchanged"], again["refused_count"]) == (0, 0, 3, 5)

    fixed = [STUDENT_HEADER_ZH, ["s3", "陳小美", "113003", "102", "A123456789", "2008-07-03", "", ""]]
    # fixing the ID of row 4 to one another student has is still refused, and says why
    assert set(run_import("students", xlsx(fixed))["refused"][0]["errors"]) == {"national_id"}
    fixed[1][4] = "F131104093"
    assert run_import("students", xlsx(fixed))["created"] == 1


def test_students_import_updates_names_classes_and_keeps_blank_cells(app, school, api, run_import):
    run_import("students", xlsx([STUDENT_HEADER_ZH, ["s1", "王小明", "113001", "101", "A123456789", "97/05/01", "王大明", ""]]))
    header = ["username", "display_name", "student_no", "class_name", "national_id", "birth_date"]
    report = run_import("students", xlsx([header, ["s1", "王曉明", "113001", "102", "", ""]]))
    assert report["updated"] == 1
    users = _users(app, school)
    with as_tenant(app, school):
        record = db.session.get(StudentRecord, (school.id, users["s1"].id))
        assert users["s1"].display_name == "王曉明"
        assert record.national_id == "A123456789" and record.guardian_name == "王大明"  # blank cells keep values
        names = list(db.session.scalars(
            sa.select(SchoolClass.name).join(ClassMembership, sa.and_(
                ClassMembership.tenant_id == SchoolClass.tenant_id, ClassMembership.class_id == SchoolClass.id))
            .where(ClassMembership.tenant_id == school.id, ClassMembership.student_id == users["s1"].id)))
        assert names == ["102"]  # moved, not in two classes of one year


def test_a_username_of_staff_is_refused_as_a_student(school, registrar, api, run_import):
    report = run_import("students", xlsx([STUDENT_HEADER_ZH, [registrar.username, "x", "113001", "101", "", "", "", ""]]))
    assert report["refused"][0]["errors"].keys() == {"username"}


def test_csv_in_big5_utf8_bom_and_utf16_with_chinese_or_english_headers(app, school, api, run_import):
    big5 = csv_bytes([["學號", "姓名", "帳號", "班級"], ["113001", "王小明", "s1", "101"],
                      ["113002", "許功蓋", "s2", "101"]], "cp950")
    report = run_import("students", big5, "名單.csv")
    assert report["created"] == 2 and report["encoding"] == "cp950" and report["format"] == "csv"
    assert _users(app, school)["s2"].display_name == "許功蓋"  # 許功蓋: Big5's backslash-byte characters

    bom = "\ufeff".encode() + csv_bytes([["Student No", "Display Name", "Username", "Class", "Remarks"],
                                          ["113003", "陳小美", "s3", "102", "x"]])
    report = run_import("students", bom, "list.csv")
    assert report["created"] == 1 and report["encoding"] == "utf-8-sig" and report["ignored_columns"] == ["Remarks"]

    utf16 = csv_bytes([["學號", "姓名", "帳號", "班級"], ["113004", "林小強", "s4", "102"]], "utf-16", "\t")
    assert run_import("students", utf16, "export.txt")["created"] == 1


def test_the_type_comes_from_the_content_not_the_name(app, school, api, run_import):
    data = xlsx([["帳號", "姓名", "學號", "班級"], ["s1", "王小明", "113001", "101"]])
    assert run_import("students", data, "roster.csv")["format"] == "xlsx"
    data = csv_bytes([["帳號", "姓名", "學號", "班級"], ["s2", "李小華", "113002", "101"]])
    assert run_import("students", data, "roster.xlsx")["format"] == "csv"


def _zip_not_xlsx() -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return out.getvalue()


@pytest.mark.parametrize("data, name, status", [
    (b"", "empty.csv", 422),
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n\x00\x00", "students.csv", 422),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "students.xlsx", 422),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512, "students.xls", 422),
    (None, "archive.xlsx", 422),  # a zip that is not a workbook
    (b"PK\x03\x04broken", "broken.xlsx", 422),
    (b"\xff\xfe\xfa\xfb\x80\x81 not text", "weird.csv", 422),
    ("帳號,姓名,班級\ns1,王小明,101\n".encode(), "missing-column.csv", 422),  # no 學號
    ("帳號,姓名,學號,班級,學號\ns1,王小明,1,101,1\n".encode(), "twice.csv", 422),
    ("帳號,姓名,學號,班級\n".encode(), "header-only.csv", 422),
    (b"\n\n\n", "blank.csv", 422),
    (b"x" * (imports.MAX_BYTES + 10), "big.csv", 413),
])
def test_a_file_that_cannot_be_imported_is_refused_whole_and_nothing_is_stored(app, school, api, data, name, status):
    data = _zip_not_xlsx() if data is None else data
    users_before = len(_users(app, school))
    response = upload(api, "students", data, name)
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    if status == 422:
        assert set(error["details"]) == {"file"} and error["details"]["file"]
    assert _count(app, school, Job, Job.kind == imports.JOB_KIND) == 0
    assert len(_users(app, school)) == users_before
    with app.app_context():
        assert get_storage().list_keys(school.bucket, "imports/") == []


def test_refusals_follow_accept_language(school, api, run_import):
    api.lang = "en"
    response = upload(api, "students", "帳號,姓名,班級\ns1,王小明,101\n".encode(), "x.csv")
    assert "columns are missing" in response.get_json()["error"]["details"]["file"]
    assert "學號 (student_no)" in response.get_json()["error"]["details"]["file"]
    api.lang = None
    response = upload(api, "students", b"", "x.csv")
    assert response.get_json()["error"]["details"]["file"] == "檔案是空的。"
    api.lang = "en"
    report = run_import("students", csv_bytes([["帳號", "姓名", "學號", "班級", "身分證號"],
                                               ["s1", "王小明", "113001", "101", "A123456788"]]))
    assert report["refused"][0]["errors"]["national_id"].startswith("The check digit")


def test_more_than_20000_rows_is_refused(school, api):
    rows = [["帳號", "姓名", "學號", "班級"]] + [[f"s{i}", "x", str(i), "101"] for i in range(imports.MAX_ROWS + 1)]
    response = upload(api, "students", csv_bytes(rows), "big.csv")
    assert response.status_code == 422 and "20000" in response.get_json()["error"]["details"]["file"]


def test_upload_needs_multipart_and_a_file(school, api):
    assert api.post("/api/v1/imports/students", {"file": "x"}).status_code == 415
    response = api.client.post("/api/v1/imports/students", data={"other": (io.BytesIO(b"x"), "a.csv")},
                               headers=api.headers(), content_type="multipart/form-data")
    assert response.status_code == 422 and "file" in response.get_json()["error"]["details"]
    assert api.post("/api/v1/imports/wizards").status_code == 404


def test_the_stored_upload_is_removed_and_the_audit_holds_counts_only(app, school, api, run_import):
    data = xlsx([STUDENT_HEADER_ZH, ["s1", "王小明", "113001", "101", "A123456789", "97/05/01", "王大明", ""]])
    run_import("students", data)
    with app.app_context():
        assert get_storage().list_keys(school.bucket, "imports/") == []
    with as_tenant(app, school):
        events = {e.action: e for e in db.session.scalars(sa.select(AuditEvent).where(
            AuditEvent.tenant_id == school.id, AuditEvent.action.like("import.%")))}
    assert events["import.submitted"].details["rows"] == 1
    assert events["import.finished"].details["created"] == 1
    for event in events.values():
        assert "A123456789" not in str(event.details) and "王小明" not in str(event.details)


# --- the rest of the roster, grades and unit records ------------------------------------------------

@pytest.fixture
def roster(app, school, api, run_import):
    """Teachers, classes, students, courses and enrolments imported in the order a school would."""
    report = run_import("teachers", xlsx([
        ["帳號", "姓名", "電子郵件", "角色"],
        ["t.chen", "陳老師", "chen@example.edu.tw", "teacher, homeroom_teacher"],
        ["t.lin", "林老師", "", ""],
        ["t.wang", "王老師", "not-an-email", ""],
        ["t.boss", "校長", "", "school_admin"],
        ["t.x", "某老師", "", "wizard"],
    ]))
    assert report["created"] == 2
    assert {r["row"]: set(r["errors"]) for r in report["refused"]} == {4: {"email"}, 5: {"roles"}, 6: {"roles"}}
    report = run_import("classes", xlsx([["班級", "年級", "導師帳號"], ["101", "高一", "t.chen"], ["102", "1", "t.lin"],
                                          ["103", "13", ""], ["104", "", "nobody"]]))
    assert report["created"] == 2 and {r["row"] for r in report["refused"]} == {4, 5}
    run_import("students", xlsx([["帳號", "姓名", "學號", "班級"], ["s1", "王小明", "113001", "101"],
                                 ["s2", "李小華", "113002", "101"], ["s3", "陳小美", "113003", "102"]]))
    with as_tenant(app, school):
        year, semester = records.current_term_key(school)
    report = run_import("courses", xlsx([
        ["課程代碼", "科目名稱", "學分", "學年度", "學期", "年級", "授課教師帳號", "代理教師帳號"],
        ["MATH1", "數學", 4, year, semester, 10, "t.chen", "t.lin"],
        ["ENG1", "英文", 4, year, semester, 10, "t.lin", ""],
        ["BAD1", "壞課", 31, year, semester, 10, "t.chen", ""],
        ["BAD2", "壞課", 2, year, 3, 10, "t.chen", ""],
        ["BAD3", "壞課", 2, year, semester, 10, "s1", ""],
        ["BAD4", "壞課", 2, year, semester, 10, "t.chen", "t.chen"],
        ["BAD 5", "壞課", 2, year, semester, 10, "t.chen", ""],
    ]))
    assert report["created"] == 2
    assert {r["row"]: set(r["errors"]) for r in report["refused"]} == {
        4: {"credits"}, 5: {"semester"}, 6: {"teacher_username"}, 7: {"deputy_username"}, 8: {"course_code"}}
    report = run_import("enrollments", csv_bytes([["課程代碼", "學號"], ["MATH1", "113001"], ["MATH1", "113002"],
                                                  ["ENG1", "113001"], ["MATH1", "999999"], ["NOPE", "113001"],
                                                  ["MATH1", "113001"], ["ENG1", "113002"]]))
    assert report["created"] == 4
    assert {r["row"]: set(r["errors"]) for r in report["refused"]} == {5: {"student_no"}, 6: {"course_code"}, 7: {"row"}}
    return {"year": year, "semester": semester, "users": _users(app, school)}


def test_teachers_classes_courses_and_enrolments(app, school, roster):
    users = roster["users"]
    with as_tenant(app, school):
        chen = users["t.chen"]
        assert chen.email == "chen@example.edu.tw"
        assert {r.key for r in permissions.user_roles(chen)} == {"teacher", "homeroom_teacher"}
        lin = db.session.get(User, (school.id, users["t.lin"].id))
        # the homeroom teacher of 102 got the role the class scope rests on
        assert "homeroom_teacher" in {r.key for r in permissions.user_roles(lin)}
        math = db.session.scalar(sa.select(Course).where(Course.tenant_id == school.id, Course.code == "MATH1"))
        assert (math.teacher_id, math.deputy_id, math.credits, math.grade) == (chen.id, lin.id, 4, 10)
        assert _count(app, school, Enrollment, Enrollment.course_id == math.id) == 2
        klass = db.session.scalar(sa.select(SchoolClass).where(SchoolClass.tenant_id == school.id, SchoolClass.name == "101"))
        assert (klass.grade, klass.homeroom_teacher_id) == (10, chen.id)


def test_parents_link_to_children_by_student_number(app, school, roster, run_import):
    report = run_import("parents", xlsx([["家長帳號", "家長姓名", "學號", "密碼"],
                                         ["p1", "王爸爸", "113001", "Parent-pass-1"], ["p1", "王爸爸", "113002", ""],
                                         ["p2", "陳媽媽", "999999", ""], ["s1", "冒充", "113002", ""]]))
    assert report["created"] == 2
    assert {r["row"]: set(r["errors"]) for r in report["refused"]} == {4: {"student_no"}, 5: {"parent_username"}}
    users = _users(app, school)
    assert "p2" not in users
    assert _count(app, school, ParentLink, ParentLink.parent_id == users["p1"].id) == 2
    assert run_import("parents", xlsx([["家長帳號", "家長姓名", "學號"], ["p1", "王爸爸", "113001"]]))["unchanged"] == 1


def test_grades_import_validates_each_value(app, school, roster, run_import):
    header = ["課程代碼", "學號", "成績", "及格", "實得學分", "重修"]
    report = run_import("grades", xlsx([
        header,
        ["MATH1", "113001", 85.5, "", "", ""],
        ["MATH1", "113002", 45, "", "", "是"],
        ["ENG1", "113001", "", "通過", 3, ""],
        ["MATH1", "113003", 90, "", "", ""],  # not enrolled
        ["ENG1", "113002", 101, "", "", ""],
        ["ENG1", "113002", "abc", "", "", ""],
        ["ENG1", "113002", "85.555", "", "", ""],
        ["ENG1", "113002", 70, "maybe", "", ""],
        ["ENG1", "113002", 70, "", 5, ""],
        ["ENG1", "113002", 50, "否", 2, ""],
        ["ENG1", "113002", "", "", "", ""],
    ]))
    assert report["created"] == 3
    assert {r["row"]: set(r["errors"]) for r in report["refused"]} == {
        5: {"student_no"}, 6: {"score"}, 7: {"score"}, 8: {"score"}, 9: {"passed"}, 10: {"credits_earned"},
        11: {"credits_earned"}, 12: {"passed"}}
    users = roster["users"]
    with as_tenant(app, school):
        grades = {(g.student_id, g.credits_earned, g.passed, float(g.score) if g.score is not None else None, g.retake)
                  for g in db.session.scalars(sa.select(Grade).where(Grade.tenant_id == school.id))}
    assert grades == {(users["s1"].id, 4, True, 85.5, False), (users["s2"].id, 0, False, 45.0, True),
                      (users["s1"].id, 3, True, None, False)}
    assert run_import("grades", xlsx([header, ["MATH1", "113001", 85.5, "", "", ""]]))["unchanged"] == 1
    assert run_import("grades", xlsx([header, ["MATH1", "113001", 88, "", "", ""]]))["updated"] == 1


def test_a_course_code_in_two_semesters_needs_the_term(app, school, roster, run_import):
    year, semester = roster["year"], roster["semester"]
    other = (year, 2) if semester == 1 else (year + 1, 1)
    run_import("courses", xlsx([["課程代碼", "科目名稱", "學分", "學年度", "學期", "授課教師帳號"],
                                ["MATH1", "數學", 4, other[0], other[1], "t.chen"]]))
    report = run_import("enrollments", xlsx([["課程代碼", "學號"], ["MATH1", "113003"]]))
    assert report["refused"][0]["errors"].keys() == {"academic_year"}
    report = run_import("enrollments", xlsx([["課程代碼", "學年度", "學期", "學號"],
                                             ["MATH1", other[0], other[1], "113003"]]))
    assert report["created"] == 1


def test_unit_records_imports(app, school, roster, run_import, make_user, api_for):
    activities = api_for(school, make_user(school, "student_activities"))
    report = run_import("cadre_roles", xlsx([["學號", "幹部層級", "單位", "職稱"], ["113001", "班級", "101", "班長"],
                                             ["113001", "校級", "學生會", "會長"], ["113002", "宇宙級", "101", "x"],
                                             ["113002", "class", "101", ""]]), client=activities)
    assert report["created"] == 2 and {r["row"]: set(r["errors"]) for r in report["refused"]} == {4: {"level"}, 5: {"title"}}
    clubs = api_for(school, make_user(school, "clubs"))
    report = run_import("clubs", csv_bytes([["學號", "社團", "社團職務"], ["113001", "熱音社", "社長"],
                                            ["113002", "熱音社", ""], ["113003", "", ""]]), client=clubs)
    assert report["created"] == 2 and report["refused"][0]["errors"].keys() == {"club"}
    report = run_import("clubs", csv_bytes([["學號", "社團", "社團職務"], ["113002", "熱音社", "副社長"]]), client=clubs)
    assert report["updated"] == 1
    discipline = api_for(school, make_user(school, "discipline"))
    report = run_import("attendance", xlsx([["學號", "應出席日數", "曠課節數", "病假節數", "事假節數"],
                                            ["113001", 100, 0, 2, 1], ["113002", 100, -1, 0, 0],
                                            ["113003", "", 0, 0, 0], ["113003", 100, 0, "two", 0]]), client=discipline)
    assert report["created"] == 1
    assert {r["row"]: set(r["errors"]) for r in report["refused"]} == {
        3: {"absences"}, 4: {"school_days"}, 5: {"sick_leave"}}
    affairs = api_for(school, make_user(school, "academic_affairs"))
    report = run_import("electives", xlsx([["課程代碼", "學號", "志願序", "選課狀態"], ["ENG1", "113003", 1, "錄取"],
                                           ["ENG1", "113002", 100, ""], ["ENG1", "113001", 2, "maybe"]]), client=affairs)
    assert report["created"] == 1
    assert {r["row"]: set(r["errors"]) for r in report["refused"]} == {3: {"preference"}, 4: {"status"}}
    year, semester = roster["year"], roster["semester"]
    users = roster["users"]
    with as_tenant(app, school):
        cadre = db.session.scalars(sa.select(CadreRole).where(CadreRole.tenant_id == school.id)).all()
        assert {(c.level, c.unit, c.title, c.academic_year, c.semester) for c in cadre} == {
            ("class", "101", "班長", year, semester), ("school", "學生會", "會長", year, semester)}
        club = db.session.scalar(sa.select(ClubRecord).where(ClubRecord.tenant_id == school.id,
                                                             ClubRecord.student_id == users["s2"].id))
        assert club.role == "副社長"
        summary = db.session.get(AttendanceSummary, (school.id, users["s1"].id, year, semester))
        assert (summary.school_days, summary.sick_leave, summary.personal_leave) == (100, 2, 1)
        assert db.session.scalar(sa.select(ElectiveChoice.status).where(ElectiveChoice.tenant_id == school.id)) == "admitted"


# --- who may import --------------------------------------------------------------------------------

def test_each_kind_needs_its_permission_for_the_whole_school(app, school, make_user, make_school, api_for):
    data = xlsx([["學號", "幹部層級", "單位", "職稱"], ["113001", "班級", "101", "班長"]])
    teacher = api_for(school, make_user(school, "teacher"))
    assert upload(teacher, "students", xlsx([STUDENT_HEADER_ZH]), "x.xlsx").status_code == 403
    student = api_for(school, make_user(school, "student", student_no="113999"))
    assert upload(student, "grades", data).status_code == 403
    # a homeroom teacher enters cadre roles for their class on its page, but an import is school-wide
    homeroom = api_for(school, make_user(school, "homeroom_teacher"))
    assert upload(homeroom, "cadre_roles", data).status_code == 403
    clubs = api_for(school, make_user(school, "clubs"))
    assert upload(clubs, "cadre_roles", data).status_code == 403
    assert upload(api_for(school), "students", data).status_code == 401
    other = make_school()
    outsider = api_for(other, make_user(other, "registrar"))
    stranger = api_for(school)
    stranger.token = outsider.token
    assert upload(stranger, "students", data).status_code == 401
    assert _count(app, school, Job, Job.kind == imports.JOB_KIND) == 0


def test_import_kinds_are_listed_with_their_columns(school, api, make_user, api_for):
    kinds = {k["kind"]: k for k in api.get("/api/v1/imports").get_json()["kinds"]}
    assert kinds["students"]["allowed"] and kinds["grades"]["allowed"] and not kinds["clubs"]["allowed"]
    assert {"key": "student_no", "zh": "學號", "required": True}.items() <= kinds["students"]["columns"][2].items()
    teacher = api_for(school, make_user(school, "teacher"))
    assert not any(k["allowed"] for k in teacher.get("/api/v1/imports").get_json()["kinds"])


def test_a_job_report_is_visible_only_to_its_uploader_and_account_managers(app, school, api, make_user, api_for,
                                                                          run_import, signed_in):
    response = upload(api, "students", xlsx([STUDENT_HEADER_ZH, ["s1", "王小明", "113001", "101", "", "", "", ""]]))
    job_id = response.get_json()["job_id"]
    other_registrar = make_user(school, "teacher")
    assert api_for(school, other_registrar).get(f"/api/v1/jobs/{job_id}").status_code == 404
    assert signed_in(school, other_registrar).get(f"/imports/jobs/{job_id}").status_code == 404


# --- the pages ---------------------------------------------------------------------------------

def test_upload_page_template_and_report(app, school, registrar, signed_in, drain_jobs):
    web = signed_in(school, registrar)
    index = web.get("/imports")
    assert index.status_code == 200 and "/imports/students" in index.get_data(as_text=True)
    page = web.get("/imports/students")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "身分證號" in html and "national_id" in html and "table-wrap" in html

    template = web.get("/imports/students/template.xlsx")
    assert template.status_code == 200 and template.data.startswith(b"PK")
    workbook = openpyxl.load_workbook(io.BytesIO(template.data), read_only=True)
    header = next(workbook.worksheets[0].iter_rows(values_only=True))
    assert list(header[:4]) == ["帳號", "姓名", "學號", "班級"]
    english = web.get("/imports/students/template.xlsx", headers={"Accept-Language": "en"})
    header = next(openpyxl.load_workbook(io.BytesIO(english.data), read_only=True).worksheets[0].iter_rows(values_only=True))
    assert list(header[:4]) == ["username", "display_name", "student_no", "class_name"]

    # the template itself, filled in, imports
    filled = openpyxl.load_workbook(io.BytesIO(template.data))
    filled.worksheets[0].append(["s1", "王小明", "113001", "101", None, "A123456789", "97/05/01"])
    filled.worksheets[0].append(["s2", "<script>alert(1)</script>", "113002", "101", None, "A12345678X"])
    out = io.BytesIO()
    filled.save(out)
    token = csrf_token(web, "/imports/students")
    response = web.post("/imports/students", data={"csrf_token": token, "file": (io.BytesIO(out.getvalue()), "名單.xlsx")},
                        content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    drain_jobs()
    report = web.get(response.headers["Location"])
    html = report.get_data(as_text=True)
    assert report.status_code == 200 and 'data-testid="refused-rows"' in html
    assert "名單.xlsx" in html and "身分證號" in html  # the refused row's column by its Chinese name
    assert "<script>alert(1)</script>" not in html


def test_upload_page_refuses_forged_csrf_bad_files_and_other_people(app, school, registrar, signed_in, make_user):
    web = signed_in(school, registrar)
    data = csv_bytes([["帳號", "姓名", "學號", "班級"], ["s1", "王小明", "113001", "101"]])
    forged = web.post("/imports/students", data={"csrf_token": "forged", "file": (io.BytesIO(data), "a.csv")},
                      content_type="multipart/form-data")
    assert forged.status_code == 400
    token = csrf_token(web, "/imports/students")
    bad = web.post("/imports/students", data={"csrf_token": token, "file": (io.BytesIO(b"%PDF-1.4\x00"), "a.csv")},
                   content_type="multipart/form-data")
    assert bad.status_code == 422 and "xlsx" in bad.get_data(as_text=True)
    big = web.post("/imports/students", data={"csrf_token": token,
                                              "file": (io.BytesIO(b"x" * (imports.MAX_BYTES + 300 * 1024)), "a.csv")},
                   content_type="multipart/form-data")
    assert big.status_code == 413
    assert _count(app, school, Job, Job.kind == imports.JOB_KIND) == 0
    teacher = signed_in(school, make_user(school, "teacher"))
    assert teacher.get("/imports").status_code == 403
    assert teacher.get("/imports/students").status_code == 403
    assert teacher.get("/imports/students/template.xlsx").status_code == 403
    assert web.get("/imports/nothing").status_code == 404


def test_pages_ask_anonymous_visitors_to_sign_in(school, client_for):
    client = client_for(school)
    for path in ("/imports", "/imports/students", "/imports/students/template.xlsx",
                 f"/imports/jobs/{uuid.uuid4()}"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
