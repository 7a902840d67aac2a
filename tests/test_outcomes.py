"""課程學習成果 end to end, as users drive it: through the API and the pages.

Files travel as in production: the test sends real bytes to the upload ticket (the app's own
``/_storage/upload`` on the embedded run, the S3 server in the services run), reports the upload,
and lets the verification job decide (``drain_jobs()`` works the queue in the services run).
Windows and deadlines are judged by ``lp_saas.clock``, frozen at their edges.
"""
from __future__ import annotations

import hashlib
import io
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import urlsplit

import pytest
import requests
import sqlalchemy as sa

from lp_saas import clock
from lp_saas.academics.models import Course, Enrollment, ParentLink, Term
from lp_saas.audit.models import AuditEvent
from lp_saas.database import db
from lp_saas.i18n import TAIPEI, academic_term
from lp_saas.portfolio.models import CourseOutcome, StoredFile
from lp_saas.storage import ObjectMissing, get_storage
from lp_saas.tenants import rulesets
from tests.conftest import as_tenant, csrf_token, school_client

MINIMAL_PDF = (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
               b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")


def pdf(tag: str = "") -> bytes:
    """A small valid PDF; ``tag`` makes its bytes (and hash) unique."""
    return MINIMAL_PDF + f"% {tag}\n".encode()


def spec_of(data: bytes, filename: str = "期末報告.pdf", content_type: str = "application/pdf", **override) -> dict:
    spec = {"filename": filename, "size": len(data), "content_type": content_type,
            "sha256": hashlib.sha256(data).hexdigest()}
    spec.update(override)
    return spec


def send_bytes(app, school, upload: dict, data: bytes, filename: str = "f.pdf",
               content_type: str = "application/pdf") -> int:
    """Send ``data`` to an upload ticket the way a browser does; the storage's HTTP status."""
    assert upload["method"] == "POST"
    url = upload["url"]
    if "/_storage/upload" in url:  # the local backend: the app's own route on the school's host
        client = school_client(app, school)
        response = client.post(urlsplit(url).path, content_type="multipart/form-data",
                               data={**upload["fields"], "file": (io.BytesIO(data), filename, content_type)})
        return response.status_code
    with requests.Session() as http:
        http.trust_env = False  # loopback only
        response = http.post(url, data=upload["fields"], files={"file": (filename, data, content_type)},
                             headers=upload["headers"])
        return response.status_code


# --- a school with a term, courses, and everyone who touches an outcome ----------------------------

@dataclass
class World:
    app: object
    school: object
    student: object
    classmate: object
    teacher: object
    deputy: object
    other_teacher: object
    parent: object
    other_parent: object
    admin: object
    course: object
    other_course: object
    year: int
    semester: int
    api_for: object
    drain: object

    def api(self, user):
        return self.api_for(self.school, user)

    def outcome(self, outcome_id) -> CourseOutcome:
        with as_tenant(self.app, self.school):
            row = db.session.get(CourseOutcome, (self.school.id, uuid.UUID(str(outcome_id))))
            db.session.expunge(row)
            return row

    def stored(self, file_id) -> StoredFile:
        with as_tenant(self.app, self.school):
            row = db.session.get(StoredFile, (self.school.id, uuid.UUID(str(file_id))))
            db.session.expunge(row)
            return row

    def in_storage(self, key: str) -> bool:
        with self.app.app_context():
            try:
                get_storage().stat(self.school.bucket, key)
                return True
            except ObjectMissing:
                return False

    def counts(self) -> tuple[int, int]:
        with as_tenant(self.app, self.school):
            return tuple(db.session.scalar(sa.select(sa.func.count()).select_from(m)
                                           .where(m.tenant_id == self.school.id)) for m in (CourseOutcome, StoredFile))

    def amend(self, change) -> None:
        """Adopt a new version of the school's rules today, changed by ``change(data)``."""
        with as_tenant(self.app, self.school):
            data = rulesets.current_rules(self.school.id)
            change(data)
            rulesets.amend(self.school, self.admin, data=data, adopted_on=clock.today(), adopted_by="校務會議")
            db.session.commit()

    def set_term(self, starts_on: date, ceremony_on: date, ends_on: date, year=None, semester=None) -> None:
        with as_tenant(self.app, self.school):
            term = db.session.scalar(sa.select(Term).where(
                Term.tenant_id == self.school.id, Term.academic_year == (year or self.year),
                Term.semester == (semester or self.semester)))
            term.starts_on, term.ceremony_on, term.ends_on = starts_on, ceremony_on, ends_on
            db.session.commit()

    # the flows -----------------------------------------------------------------------------------

    def create_file(self, user, data: bytes, *, course=None, title="期末報告", spec=None, expect=201):
        response = self.api(user).post("/api/v1/outcomes", {
            "course_id": str((course or self.course).id), "title": title, "description": "我的學習成果",
            "file": spec or spec_of(data)})
        assert response.status_code == expect, response.get_json()
        return response.get_json()

    def create_link(self, user, *, course=None, title="線上作品", link="https://example.org/work", expect=201):
        response = self.api(user).post("/api/v1/outcomes", {
            "course_id": str((course or self.course).id), "title": title, "description": "", "link": link})
        assert response.status_code == expect, response.get_json()
        return response.get_json()

    def upload(self, user, data: bytes, *, send=None, course=None, title="期末報告", spec=None,
               filename="期末報告.pdf", content_type="application/pdf"):
        """Create, send ``send`` (default ``data``; None sends nothing), report, and let the job decide."""
        created = self.create_file(user, data, course=course, title=title, spec=spec)
        body = data if send is None else send
        if send is not False:
            send_bytes(self.app, self.school, created["upload"], body, filename, content_type)
        reported = self.api(user).post(f"/api/v1/outcomes/{created['id']}/uploaded")
        assert reported.status_code == 202, reported.get_json()
        assert reported.get_json() == {"status": "verifying"}
        self.drain()
        return created["id"]

    def submitted_pdf(self, user=None, **kw) -> str:
        outcome_id = self.upload(user or self.student, pdf(uuid.uuid4().hex), **kw)
        assert self.outcome(outcome_id).status == "submitted"
        return outcome_id


def build_world(app, make_school, make_user, api_for, drain_jobs, *, template: str = "moe",
                slug: str | None = None, name: str | None = None) -> World:
    """A school (national template unless told) with the current term open for uploads, two courses of
    grade 11 (one with a deputy), two students enrolled in both, a parent of each, and an administrator.
    With ``slug`` of a school that exists already, that school is used and its calendar kept."""
    school = make_school(template, slug=slug, name=name)
    teacher = make_user(school, "teacher", display_name="林老師")
    deputy = make_user(school, "teacher", display_name="代理陳老師")
    other_teacher = make_user(school, "teacher", display_name="別科老師")
    student = make_user(school, "student", display_name="王小明", student_no=f"S{uuid.uuid4().hex[:6]}")
    classmate = make_user(school, "student", display_name="李同學", student_no=f"S{uuid.uuid4().hex[:6]}")
    parent = make_user(school, "parent", display_name="王爸爸")
    other_parent = make_user(school, "parent", display_name="李媽媽")
    admin = make_user(school, "school_admin")
    year, semester = academic_term(clock.today())
    today = clock.today()
    with as_tenant(app, school):
        known = db.session.scalar(sa.select(Term).where(Term.tenant_id == school.id, Term.academic_year == year,
                                                        Term.semester == semester))
        if known is None:
            db.session.add(Term(tenant_id=school.id, academic_year=year, semester=semester,
                                starts_on=today - timedelta(days=40), ceremony_on=today + timedelta(days=20),
                                ends_on=today + timedelta(days=30)))
        course = Course(tenant_id=school.id, code=f"C{uuid.uuid4().hex[:6]}", name="國語文", credits=4,
                        academic_year=year, semester=semester, grade=11, teacher_id=teacher.id, deputy_id=deputy.id)
        other = Course(tenant_id=school.id, code=f"D{uuid.uuid4().hex[:6]}", name="物理", credits=2,
                       academic_year=year, semester=semester, grade=11, teacher_id=other_teacher.id)
        db.session.add_all([course, other])
        db.session.flush()
        for c in (course, other):
            for s in (student, classmate):
                db.session.add(Enrollment(tenant_id=school.id, course_id=c.id, student_id=s.id))
        db.session.add_all([ParentLink(tenant_id=school.id, parent_id=parent.id, student_id=student.id),
                            ParentLink(tenant_id=school.id, parent_id=other_parent.id, student_id=classmate.id)])
        db.session.commit()
        for c in (course, other):
            db.session.refresh(c)
            db.session.expunge(c)
    return World(app, school, student, classmate, teacher, deputy, other_teacher, parent, other_parent, admin,
                 course, other, year, semester, api_for, drain_jobs)


@pytest.fixture
def world(app, make_school, make_user, api_for, drain_jobs) -> World:
    return build_world(app, make_school, make_user, api_for, drain_jobs)


def taipei(day: date, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), TAIPEI)


# --- the happy paths -------------------------------------------------------------------------------

def test_a_pdf_goes_from_ticket_to_submitted_and_the_teacher_certifies_it(world):
    data = pdf("happy")
    created = world.create_file(world.student, data)
    assert created["status"] == "awaiting_upload"
    assert set(created["upload"]) == {"method", "url", "fields", "headers", "expires_at"}
    assert send_bytes(world.app, world.school, created["upload"], data) in (200, 201, 204)
    api = world.api(world.student)
    assert api.post(f"/api/v1/outcomes/{created['id']}/uploaded").status_code == 202
    world.drain()

    body = api.get(f"/api/v1/outcomes/{created['id']}").get_json()
    assert body["status"] == "submitted" and body["submitted_at"]
    assert body["file"] == {"id": body["file"]["id"], "filename": "期末報告.pdf", "size": len(data),
                            "content_type": "application/pdf", "status": "verified"}
    assert body["upload_closes_at"] and body["certification_deadline"] and body["revision"] == 1
    stored = world.stored(body["file"]["id"])
    assert stored.key not in str(body)  # the storage key never leaves the server
    assert world.in_storage(stored.key)

    teacher = world.api(world.teacher)
    certified = teacher.post(f"/api/v1/outcomes/{created['id']}/certify", {"comment": "確為本人作品"})
    assert certified.status_code == 200, certified.get_json()
    assert certified.get_json()["status"] == "certified" and certified.get_json()["teacher_comment"] == "確為本人作品"
    assert api.get(f"/api/v1/outcomes/{created['id']}").get_json()["certified_at"]

    download = teacher.get(f"/api/v1/outcomes/{created['id']}/file")
    assert download.status_code == 302 and download.headers["Location"]
    with as_tenant(world.app, world.school):
        actions = [e.action for e in db.session.scalars(sa.select(AuditEvent).where(
            AuditEvent.tenant_id == world.school.id, AuditEvent.target_id == created["id"]).order_by(AuditEvent.at))]
        downloads = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
            AuditEvent.tenant_id == world.school.id, AuditEvent.action == "file.download",
            AuditEvent.student_id == world.student.id))
    assert actions[:4] == ["outcome.created", "outcome.uploaded", "outcome.submitted", "outcome.certified"]
    assert downloads == 1


def test_a_link_is_submitted_at_once_and_certify_needs_no_comment(world):
    created = world.create_link(world.student)
    assert created["status"] == "submitted" and "upload" not in created
    response = world.api(world.deputy).post(f"/api/v1/outcomes/{created['id']}/certify")  # no body at all
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "certified" and response.get_json()["teacher_comment"] is None


def test_script_in_text_is_kept_as_text_and_escaped_on_every_page(world, signed_in):
    created = world.create_link(world.student, title="<script>alert(1)</script>")
    body = world.api(world.student).get(f"/api/v1/outcomes/{created['id']}").get_json()
    assert body["title"] == "<script>alert(1)</script>"
    for user, path in ((world.student, "/outcomes"), (world.teacher, "/outcomes/queue"),
                       (world.teacher, f"/outcomes/{created['id']}")):
        page = signed_in(world.school, user).get(path).get_data(as_text=True)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path
        assert "<script>alert(1)" not in page, path


def test_description_counts_characters_not_bytes(world):
    assert world.api(world.student).post("/api/v1/outcomes", {
        "course_id": str(world.course.id), "title": "一百字", "description": "學" * 100,
        "link": "https://example.org/a"}).status_code == 201
    refused = world.api(world.student).post("/api/v1/outcomes", {
        "course_id": str(world.course.id), "title": "一百零一字", "description": "學" * 101,
        "link": "https://example.org/b"})
    assert refused.status_code == 422 and "100" in refused.get_json()["error"]["details"]["description"]


# --- bad input: a clear 4xx naming the field, and nothing stored -------------------------------------

def _good(world, **over):
    body = {"course_id": str(world.course.id), "title": "期末報告", "description": "簡述",
            "file": spec_of(pdf("x"))}
    body.update(over)
    return {k: v for k, v in body.items() if v is not ...}


BAD_BODIES = [
    ({"title": ...}, "title"),
    ({"title": "   "}, "title"),
    ({"title": None}, "title"),
    ({"title": "題" * 101}, "title"),
    ({"title": "line\nbreak"}, "title"),
    ({"title": 42}, "title"),
    ({"description": "述" * 101}, "description"),
    ({"description": "bell\x07"}, "description"),
    ({"description": ["a"]}, "description"),
    ({"file": ..., "link": ...}, "file"),
    ({"link": "https://example.org/also"}, "file"),
    ({"file": ..., "link": "ftp://example.org/x"}, "link"),
    ({"file": ..., "link": "javascript:alert(1)"}, "link"),
    ({"file": ..., "link": "https://exa mple.org"}, "link"),
    ({"file": ..., "link": "https://user:pw@example.org/"}, "link"),
    ({"file": ..., "link": "https://example.org/" + "a" * 500}, "link"),
    ({"file": ..., "link": "https://"}, "link"),
    ({"file": "report.pdf"}, "file"),
    ({"file": {"filename": "a.pdf"}}, "file.size"),
    ({"course_id": "not-an-id"}, "course_id"),
    ({"course_id": str(uuid.uuid4())}, "course_id"),
]


@pytest.mark.parametrize("change,field", BAD_BODIES, ids=[f"{f}-{i}" for i, (_c, f) in enumerate(BAD_BODIES)])
def test_bad_create_bodies_are_422_naming_the_field_and_store_nothing(world, change, field):
    before = world.counts()
    response = world.api(world.student).post("/api/v1/outcomes", _good(world, **change))
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed" and field in error["details"], error
    assert error["details"][field]
    assert world.counts() == before


def test_malformed_requests_are_refused(world):
    api = world.api(world.student)
    before = world.counts()
    assert api.post("/api/v1/outcomes", {**_good(world), "status": "certified"}).status_code == 422
    assert api.client.post("/api/v1/outcomes", data="title=x", headers=api.headers()).status_code == 415
    assert api.client.post("/api/v1/outcomes", data="[1]", content_type="application/json",
                           headers=api.headers()).status_code == 400
    assert world.counts() == before


def test_a_course_of_another_semester_or_not_taken_is_refused(world):
    with as_tenant(world.app, world.school):
        lone = Course(tenant_id=world.school.id, code=f"N{uuid.uuid4().hex[:6]}", name="選修", credits=2,
                      academic_year=world.year, semester=world.semester, teacher_id=world.teacher.id)
        db.session.add(lone)
        db.session.commit()
        lone_id = lone.id
    response = world.api(world.student).post("/api/v1/outcomes", _good(world, course_id=str(lone_id)))
    assert response.status_code == 422 and "course_id" in response.get_json()["error"]["details"]


def test_links_are_refused_where_the_school_does_not_accept_them(world):
    world.amend(lambda d: d["uploads"].update(hyperlinks_allowed=False))
    before = world.counts()
    response = world.api(world.student).post("/api/v1/outcomes", {
        "course_id": str(world.course.id), "title": "連結", "link": "https://example.org/x"})
    assert response.status_code == 422 and "link" in response.get_json()["error"]["details"]
    assert world.counts() == before


# --- the cap ----------------------------------------------------------------------------------------

def test_the_last_allowed_upload_and_one_more(world):
    world.amend(lambda d: d["course_outcomes"].update(upload_cap_per_semester=3))
    awaiting = world.create_file(world.student, pdf("a"))  # awaiting_upload holds a place
    rejected = world.upload(world.student, pdf("b"), send=False)  # never sent: file_rejected holds a place
    assert world.outcome(rejected).status == "file_rejected"
    world.create_link(world.student, course=world.other_course)  # the last allowed (another course, same semester)
    before = world.counts()
    refused = world.api(world.student).post("/api/v1/outcomes", _good(world))
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert error["code"] == "upload_cap_reached" and "3" in error["message"]
    assert world.counts() == before
    # a classmate has a cap of their own
    world.create_link(world.classmate)
    # withdrawing frees a place; the withdrawn item is kept
    assert world.api(world.student).delete(f"/api/v1/outcomes/{awaiting['id']}").get_json()["status"] == "withdrawn"
    world.create_link(world.student, title="補上")
    assert world.outcome(awaiting["id"]).status == "withdrawn"
    assert world.api(world.student).post("/api/v1/outcomes", _good(world)).get_json()["error"]["code"] == \
        "upload_cap_reached"
    assert world.api(world.student).delete(f"/api/v1/outcomes/{rejected}").status_code == 200
    world.create_link(world.student, title="再補上")


def test_only_items_awaiting_upload_rejected_or_returned_can_be_withdrawn(world):
    submitted = world.create_link(world.student)["id"]
    api = world.api(world.student)
    response = api.delete(f"/api/v1/outcomes/{submitted}")
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "wrong_status"
    teacher = world.api(world.teacher)
    assert teacher.post(f"/api/v1/outcomes/{submitted}/return", {"reason": "請附上完整內容"}).status_code == 200
    assert api.delete(f"/api/v1/outcomes/{submitted}").status_code == 200
    assert api.delete(f"/api/v1/outcomes/{submitted}").status_code == 409
    assert world.outcome(submitted).withdrawn_at is not None


# --- the window and the deadline ---------------------------------------------------------------------

def test_the_window_s_last_minute_and_the_next(world):
    today = clock.today()
    world.set_term(today - timedelta(days=60), today - timedelta(days=20), today - timedelta(days=10))
    last_day = today - timedelta(days=20) + timedelta(days=14)  # national template: 14 days after the ceremony
    api = world.api(world.student)
    with clock.frozen(taipei(last_day, 23, 59, 59)):
        assert api.post("/api/v1/outcomes", _good(world, file=..., link="https://example.org/in")).status_code == 201
    before = world.counts()
    with clock.frozen(taipei(last_day + timedelta(days=1), 0, 0)):
        refused = api.post("/api/v1/outcomes", _good(world, file=..., link="https://example.org/late"))
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert error["code"] == "window_closed"
    assert f"{last_day.year - 1911}年{last_day.month}月{last_day.day}日 23:59" in error["message"]
    assert world.counts() == before


def test_before_the_term_starts_nothing_can_be_uploaded(world):
    today = clock.today()
    world.set_term(today + timedelta(days=10), today + timedelta(days=100), today + timedelta(days=120))
    api = world.api(world.student)
    before = world.counts()
    with clock.frozen(taipei(today + timedelta(days=9), 23, 59)):
        refused = api.post("/api/v1/outcomes", _good(world))
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "window_not_open"
    assert world.counts() == before
    with clock.frozen(taipei(today + timedelta(days=10), 0, 0)):
        assert api.post("/api/v1/outcomes", _good(world)).status_code == 201


def test_until_the_school_sets_its_calendar_the_national_dates_apply(app, make_school, make_user, api_for):
    """A new school works on its first day: semester 1 from 1 August with its ceremony on 20 January,
    semester 2 from 1 February with its ceremony on 30 June, until the registrar sets the real days."""
    school = make_school("moe")
    teacher, student = make_user(school, "teacher"), make_user(school, "student")
    with clock.frozen(datetime(2025, 1, 6, 10, 0, tzinfo=TAIPEI)):  # 113學年度第1學期
        with as_tenant(app, school):
            courses = {}
            for semester in (1, 2):
                course = Course(tenant_id=school.id, code=f"N{semester}{uuid.uuid4().hex[:5]}", name="地理", credits=2,
                                academic_year=113, semester=semester, teacher_id=teacher.id)
                db.session.add(course)
                db.session.flush()
                db.session.add(Enrollment(tenant_id=school.id, course_id=course.id, student_id=student.id))
                courses[semester] = str(course.id)
            db.session.commit()
        api = api_for(school, student)
        now = api.post("/api/v1/outcomes", {"course_id": courses[1], "title": "家鄉地圖", "description": "",
                                            "link": "https://example.org/map"})
        assert now.status_code == 201, now.get_json()
        # ceremony 2025-01-20 + 14 days (the rule set's window): the last minute of 2025-02-03
        shown = api.get(f"/api/v1/outcomes/{now.get_json()['id']}").get_json()
        assert shown["upload_closes_at"].startswith("2025-02-03T23:59:59"), shown
        later = api.post("/api/v1/outcomes", {"course_id": courses[2], "title": "下學期", "description": "",
                                              "link": "https://example.org/later"})
        assert later.status_code == 422 and later.get_json()["error"]["code"] == "window_not_open"


def test_certification_until_the_deadline_s_last_minute(world):
    first, second = world.create_link(world.student)["id"], world.create_link(world.student, title="第二件")["id"]
    deadline_day = clock.today() + timedelta(days=20 + 21)  # ceremony + 21 days (national template)
    teacher = world.api(world.teacher)
    with clock.frozen(taipei(deadline_day, 23, 59, 59)):
        assert teacher.post(f"/api/v1/outcomes/{first}/certify", {"comment": ""}).status_code == 200
    with clock.frozen(taipei(deadline_day + timedelta(days=1), 0, 0)):
        late = teacher.post(f"/api/v1/outcomes/{second}/certify", {})
        returned = teacher.post(f"/api/v1/outcomes/{second}/return", {"reason": "太晚了"})
    for response in (late, returned):
        assert response.status_code == 422
        error = response.get_json()["error"]
        assert error["code"] == "certification_closed"
        assert f"{deadline_day.year - 1911}年{deadline_day.month}月{deadline_day.day}日" in error["message"]
    assert world.outcome(second).status == "submitted"


# --- certification and return ---------------------------------------------------------------------------

def test_return_needs_a_reason_and_only_submitted_items_are_decided(world):
    outcome_id = world.create_link(world.student)["id"]
    teacher = world.api(world.teacher)
    for body, field in (({}, "reason"), ({"reason": "  "}, "reason"), ({"reason": "因" * 501}, "reason"),
                        ({"reason": 5}, "reason")):
        response = teacher.post(f"/api/v1/outcomes/{outcome_id}/return", body)
        assert response.status_code == 422 and field in response.get_json()["error"]["details"], body
    assert teacher.post(f"/api/v1/outcomes/{outcome_id}/certify", {"comment": "評" * 501}).status_code == 422
    assert teacher.post(f"/api/v1/outcomes/{outcome_id}/certify", {"grade": "A"}).status_code == 422
    assert world.outcome(outcome_id).status == "submitted"
    returned = teacher.post(f"/api/v1/outcomes/{outcome_id}/return", {"reason": "請補上作者姓名"})
    assert returned.status_code == 200
    assert returned.get_json()["status"] == "returned" and returned.get_json()["reason"] == "請補上作者姓名"
    again = teacher.post(f"/api/v1/outcomes/{outcome_id}/certify")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "wrong_status"


def test_revision_keeps_the_earlier_file_and_goes_through_the_flow_again(world):
    first = world.submitted_pdf()
    first_file = world.outcome(first).file_id
    assert world.api(world.teacher).post(f"/api/v1/outcomes/{first}/return", {"reason": "缺少封面"}).status_code == 200

    student = world.api(world.student)
    data = pdf("second version")
    revised = student.post(f"/api/v1/outcomes/{first}/revise", {"title": "期末報告（修正版）", "description": "補上封面",
                                                               "file": spec_of(data)})
    assert revised.status_code == 200, revised.get_json()
    body = revised.get_json()
    assert body["status"] == "awaiting_upload" and body["revision"] == 2 and "upload" in body
    send_bytes(world.app, world.school, body["upload"], data)
    assert student.post(f"/api/v1/outcomes/{first}/uploaded").status_code == 202
    world.drain()

    now = student.get(f"/api/v1/outcomes/{first}").get_json()
    assert now["status"] == "submitted" and now["revision"] == 2 and now["reason"] is None
    assert [f["current"] for f in now["files"]] == [False, True]
    old = world.stored(first_file)
    assert old.status == "verified" and world.in_storage(old.key)  # never deleted
    older = world.api(world.teacher).get(f"/api/v1/outcomes/{first}/file?file_id={first_file}")
    assert older.status_code == 302
    assert world.api(world.teacher).post(f"/api/v1/outcomes/{first}/certify").get_json()["status"] == "certified"
    refused = student.post(f"/api/v1/outcomes/{first}/revise", {"title": "再改", "link": "https://example.org/x"})
    assert refused.status_code == 409


def test_bad_revisions_are_422_naming_the_field_and_change_nothing(world):
    outcome_id = world.upload(world.student, pdf("to revise"), send=False)  # file_rejected
    before = (world.counts(), world.outcome(outcome_id).revision, world.outcome(outcome_id).file_id)
    spec = spec_of(pdf("v2"))
    for body, field in (({"title": ""}, "title"), ({"title": "x"}, "file"),
                        ({"title": "x", "file": spec, "link": "https://example.org/"}, "file"),
                        ({"title": "x", "link": "javascript:alert(1)"}, "link"),
                        ({"title": "x", "file": {**spec, "filename": "a.exe.pdf"}}, "file.filename"),
                        ({"title": "x", "file": {**spec, "size": 0}}, "file.size"),
                        ({"title": "x", "description": "述" * 101, "link": "https://example.org/"}, "description"),
                        ({"title": "x", "link": "https://example.org/", "course_id": str(world.other_course.id)},
                         "course_id")):
        response = world.api(world.student).post(f"/api/v1/outcomes/{outcome_id}/revise", body)
        assert response.status_code == 422, body
        assert field in response.get_json()["error"]["details"], (body, response.get_json())
    after = world.outcome(outcome_id)
    assert (world.counts(), after.revision, after.file_id) == before and after.status == "file_rejected"


def test_the_homeroom_teacher_sees_the_class_s_outcomes_read_only(world, make_user):
    from lp_saas.academics.models import ClassMembership, SchoolClass

    homeroom = make_user(world.school, "homeroom_teacher")
    with as_tenant(world.app, world.school):
        school_class = SchoolClass(tenant_id=world.school.id, academic_year=world.year, name="201", grade=11,
                                   homeroom_teacher_id=homeroom.id)
        db.session.add(school_class)
        db.session.flush()
        db.session.add(ClassMembership(tenant_id=world.school.id, class_id=school_class.id,
                                       student_id=world.student.id))
        db.session.commit()
    mine, classmate_s = world.create_link(world.student)["id"], world.create_link(world.classmate)["id"]
    api = world.api(homeroom)
    assert [o["id"] for o in api.get("/api/v1/outcomes").get_json()["outcomes"]] == [mine]
    assert api.get(f"/api/v1/outcomes/{mine}").status_code == 200
    assert api.get(f"/api/v1/outcomes/{classmate_s}").status_code == 404
    assert api.post(f"/api/v1/outcomes/{mine}/certify").status_code == 403


def test_a_rejected_file_can_be_revised_as_a_link(world):
    rejected = world.upload(world.student, pdf("never"), send=False)
    outcome = world.api(world.student).get(f"/api/v1/outcomes/{rejected}").get_json()
    assert outcome["status"] == "file_rejected" and outcome["reason_code"] == "missing" and outcome["reason"]
    revised = world.api(world.student).post(f"/api/v1/outcomes/{rejected}/revise", {
        "title": "改用連結", "link": "https://example.org/video"})
    assert revised.status_code == 200 and revised.get_json()["status"] == "submitted"
    assert world.outcome(rejected).revision == 2


def test_revision_after_the_window_is_refused(world):
    outcome_id = world.create_link(world.student)["id"]
    world.api(world.teacher).post(f"/api/v1/outcomes/{outcome_id}/return", {"reason": "再補充"})
    after = clock.today() + timedelta(days=20 + 15)
    with clock.frozen(taipei(after, 9, 0)):
        response = world.api(world.student).post(f"/api/v1/outcomes/{outcome_id}/revise", {
            "title": "補充", "link": "https://example.org/more"})
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "window_closed"
    assert world.outcome(outcome_id).revision == 1


def test_reporting_an_upload_for_a_link_is_a_conflict(world):
    link = world.create_link(world.student)["id"]
    response = world.api(world.student).post(f"/api/v1/outcomes/{link}/uploaded")
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "wrong_status"


def test_bulk_certification_is_all_or_nothing(world, app, make_school, make_user, api_for, drain_jobs):
    ids = [world.create_link(world.student, title=f"作品{i}")["id"] for i in range(3)]
    elsewhere_school = build_world(app, make_school, make_user, api_for, drain_jobs)
    other_school_s = elsewhere_school.create_link(elsewhere_school.student)["id"]
    certified = world.create_link(world.classmate)["id"]
    world.api(world.teacher).post(f"/api/v1/outcomes/{certified}/certify")
    elsewhere = world.create_link(world.student, course=world.other_course)["id"]
    unknown = str(uuid.uuid4())
    teacher = world.api(world.teacher)
    refused = teacher.post("/api/v1/outcomes/certify",
                           {"ids": [*ids, certified, elsewhere, unknown, other_school_s, "nonsense"]})
    assert refused.status_code == 422
    details = refused.get_json()["error"]["details"]
    assert {certified, elsewhere, unknown, other_school_s, "nonsense"} <= set(details)
    assert not set(ids) & set(details)
    assert details[other_school_s] == details[unknown]  # another school's id is simply not found
    assert all(world.outcome(i).status == "submitted" for i in ids)
    for bad in ({"ids": []}, {"ids": "x"}, {"ids": [str(uuid.uuid4())] * 201}, {}):
        assert teacher.post("/api/v1/outcomes/certify", bad).status_code == 422
    done = teacher.post("/api/v1/outcomes/certify", {"ids": ids, "comment": "皆為本人作品"})
    assert done.status_code == 200 and sorted(done.get_json()["certified"]) == sorted(ids)
    assert all(world.outcome(i).status == "certified" for i in ids)
    assert world.api(world.student).post("/api/v1/outcomes/certify", {"ids": ids}).status_code == 403


# --- who sees and changes what --------------------------------------------------------------------------

def _try_everything(api, outcome_id) -> dict:
    return {
        "get": api.get(f"/api/v1/outcomes/{outcome_id}").status_code,
        "file": api.get(f"/api/v1/outcomes/{outcome_id}/file").status_code,
        "certify": api.post(f"/api/v1/outcomes/{outcome_id}/certify", {}).status_code,
        "return": api.post(f"/api/v1/outcomes/{outcome_id}/return", {"reason": "x"}).status_code,
        "revise": api.post(f"/api/v1/outcomes/{outcome_id}/revise",
                           {"title": "x", "link": "https://e.org/"}).status_code,
        "uploaded": api.post(f"/api/v1/outcomes/{outcome_id}/uploaded").status_code,
        "withdraw": api.delete(f"/api/v1/outcomes/{outcome_id}").status_code,
        "listed": outcome_id in [o["id"] for o in api.get("/api/v1/outcomes").get_json().get("outcomes", [])],
    }


def test_every_role_s_scope(world, make_school, make_user, api_for):
    outcome_id = world.submitted_pdf()
    before = world.outcome(outcome_id)
    nothing = {"get": 404, "file": 404, "listed": False}
    cases = {
        "other course's teacher": (world.other_teacher, {**nothing, "certify": 404, "return": 404,
                                                        "revise": 403, "uploaded": 403, "withdraw": 403}),
        "classmate": (world.classmate, {**nothing, "certify": 403, "return": 403, "revise": 404, "uploaded": 404,
                                        "withdraw": 404}),
        "another child's parent": (world.other_parent, {**nothing, "certify": 403, "return": 403, "revise": 403,
                                                        "uploaded": 403, "withdraw": 403}),
        "the parent": (world.parent, {"get": 200, "file": 302, "listed": True, "certify": 403, "return": 403,
                                      "revise": 403, "uploaded": 403, "withdraw": 403}),
    }
    for name, (user, expected) in cases.items():
        seen = _try_everything(world.api(user), outcome_id)
        assert seen == expected, name
    after = world.outcome(outcome_id)
    assert (after.status, after.revision, after.updated_at) == (before.status, before.revision, before.updated_at)

    other_school = make_school("yuanlin")
    other_admin = make_user(other_school, "school_admin")
    stranger = api_for(other_school, other_admin)
    seen = _try_everything(stranger, outcome_id)
    assert seen["get"] == seen["file"] == seen["certify"] == seen["return"] == 404 and not seen["listed"]
    assert world.outcome(outcome_id).status == "submitted"

    # the deputy may certify (職務代理人)
    assert world.api(world.deputy).get(f"/api/v1/outcomes/{outcome_id}").status_code == 200
    assert world.api(world.deputy).post(f"/api/v1/outcomes/{outcome_id}/certify").status_code == 200


def test_a_non_owner_opening_an_outcome_is_audited(world):
    outcome_id = world.create_link(world.student)["id"]
    world.api(world.student).get(f"/api/v1/outcomes/{outcome_id}")
    world.api(world.parent).get(f"/api/v1/outcomes/{outcome_id}")
    world.api(world.teacher).get(f"/api/v1/outcomes/{outcome_id}")
    with as_tenant(world.app, world.school):
        readers = list(db.session.scalars(sa.select(AuditEvent.actor_id).where(
            AuditEvent.tenant_id == world.school.id, AuditEvent.action == "outcome.read",
            AuditEvent.student_id == world.student.id)))
    assert sorted(map(str, readers)) == sorted([str(world.parent.id), str(world.teacher.id)])


def test_list_filters_and_bad_filters(world):
    first = world.create_link(world.student)["id"]
    world.create_link(world.student, course=world.other_course)
    teacher = world.api(world.teacher)
    listed = teacher.get(f"/api/v1/outcomes?course_id={world.course.id}&status=submitted").get_json()["outcomes"]
    assert [o["id"] for o in listed] == [first]
    assert listed[0]["certification_deadline"] and listed[0]["course"]["name"] == "國語文"
    assert teacher.get("/api/v1/outcomes?status=certified").get_json()["outcomes"] == []
    for query, field in (("status=done", "status"), ("course_id=zzz", "course_id"), ("semester=3", "semester"),
                         ("limit=0", "limit"), ("offset=-1", "offset")):
        response = teacher.get(f"/api/v1/outcomes?{query}")
        assert response.status_code == 422 and field in response.get_json()["error"]["details"], query


@contextmanager
def counted_queries(app):
    with app.app_context():
        engine = db.engine
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def _add_outcomes(world, n: int) -> None:
    """``n`` more outcomes of both students in both courses, half with files (rows, as the flow leaves them)."""
    with as_tenant(world.app, world.school):
        for i in range(n):
            student = (world.student, world.classmate)[i % 2]
            course = (world.course, world.other_course)[(i // 2) % 2]
            outcome = CourseOutcome(tenant_id=world.school.id, id=uuid.uuid4(), student_id=student.id,
                                    course_id=course.id, academic_year=world.year, semester=world.semester,
                                    title=f"作品 {i}", description="", status="submitted", revision=1,
                                    link_url=None if i % 2 else "https://example.org/w")
            db.session.add(outcome)
            db.session.flush()
            if i % 2:
                stored = StoredFile(tenant_id=world.school.id, owner_kind="outcome", owner_id=outcome.id,
                                    student_id=student.id, key=f"outcomes/{outcome.id}/{uuid.uuid4()}",
                                    filename=f"w{i}.pdf", file_type="pdf", content_type="application/pdf",
                                    declared_size=100, declared_sha256="0" * 64, status="verified",
                                    upload_expires_at=clock.now())
                db.session.add(stored)
                db.session.flush()
                outcome.file_id = stored.id
        db.session.commit()


def test_the_list_costs_the_same_queries_for_3_or_30_items(world):
    _add_outcomes(world, 3)
    callers = {"teacher": world.api(world.teacher), "student": world.api(world.student),
               "parent": world.api(world.parent), "admin": world.api(world.admin)}
    small = {}
    for name, api in callers.items():
        api.get("/api/v1/outcomes")  # warm-up (the first call compiles)
        with counted_queries(world.app) as statements:
            assert api.get("/api/v1/outcomes").status_code == 200
        small[name] = len(statements)
    _add_outcomes(world, 27)
    for name, api in callers.items():
        with counted_queries(world.app) as statements:
            body = api.get("/api/v1/outcomes").get_json()
        assert len(statements) == small[name], (name, statements)
    assert len(body["outcomes"]) == 30  # the admin's: the whole school
    with as_tenant(world.app, world.school):
        in_course = db.session.scalar(sa.select(sa.func.count()).select_from(CourseOutcome).where(
            CourseOutcome.tenant_id == world.school.id, CourseOutcome.course_id == world.course.id))
    assert len(callers["teacher"].get("/api/v1/outcomes").get_json()["outcomes"]) == in_course < 30


# --- the pages ------------------------------------------------------------------------------------------

def _json_post(client, path, data, token):
    return client.post(path, data=data, headers={"X-CSRFToken": token, "Accept": "application/json"})


def test_the_pages_upload_certify_and_show_the_result(world, signed_in):
    student = signed_in(world.school, world.student)
    page = student.get("/outcomes")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "國語文" in html and "data-direct-upload" in html and "js/upload.js" in html
    assert "0</strong> / 10" in html
    token = csrf_token(student, "/outcomes")

    data = pdf("from the page")
    created = _json_post(student, "/outcomes/new", {
        "course_id": str(world.course.id), "title": "小論文", "description": "", "link": "",
        "file_name": "小論文.pdf", "file_size": str(len(data)), "file_type": "application/pdf",
        "file_sha256": hashlib.sha256(data).hexdigest()}, token)
    assert created.status_code == 200, created.get_data(as_text=True)
    body = created.get_json()
    assert set(body) == {"upload", "uploaded_url", "next_url"}
    send_bytes(world.app, world.school, body["upload"], data)
    reported = _json_post(student, body["uploaded_url"], {}, token)
    assert reported.status_code == 202
    world.drain()
    assert "已送出" in student.get(body["next_url"]).get_data(as_text=True)

    teacher = signed_in(world.school, world.teacher)
    queue = teacher.get("/outcomes/queue").get_data(as_text=True)
    assert "小論文" in queue and "王小明" in queue and "認證截止" in queue
    outcome_id = next(o["id"] for o in world.api(world.student).get("/api/v1/outcomes").get_json()["outcomes"])
    done = teacher.post(f"/outcomes/{outcome_id}/certify", data={
        "csrf_token": csrf_token(teacher, "/outcomes/queue"), "comment": "", "next": "/outcomes/queue"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/outcomes/queue")
    assert "已認證" in student.get("/outcomes").get_data(as_text=True)


def test_page_errors_come_back_as_json_for_the_upload_script(world, signed_in):
    student = signed_in(world.school, world.student)
    token = csrf_token(student, "/outcomes")
    before = world.counts()
    refused = _json_post(student, "/outcomes/new", {
        "course_id": str(world.course.id), "title": "", "description": "", "link": "",
        "file_name": "../../etc/passwd.pdf", "file_size": "12", "file_type": "application/pdf",
        "file_sha256": "0" * 64}, token)
    assert refused.status_code == 422
    details = refused.get_json()["error"]["details"]
    assert details["title"] and details["file"]  # file.filename is shown in the form's file slot
    no_token = student.post("/outcomes/new", data={"course_id": str(world.course.id), "title": "x",
                                                   "link": "https://example.org"},
                            headers={"Accept": "application/json"})
    assert no_token.status_code == 400
    assert world.counts() == before


def test_page_forms_for_return_withdraw_and_bulk(world, signed_in):
    ids = [world.create_link(world.student, title=f"作品{i}")["id"] for i in range(3)]
    teacher = signed_in(world.school, world.teacher)
    token = csrf_token(teacher, "/outcomes/queue")
    missing_reason = teacher.post(f"/outcomes/{ids[0]}/return", data={"csrf_token": token, "reason": "",
                                                                     "next": "/outcomes/queue"})
    assert missing_reason.status_code == 302
    assert "flash-error" in teacher.get("/outcomes/queue").get_data(as_text=True)
    assert world.outcome(ids[0]).status == "submitted"
    assert teacher.post(f"/outcomes/{ids[0]}/return", data={"csrf_token": token, "reason": "請補資料",
                                                            "next": "/outcomes/queue"}).status_code == 302
    assert world.outcome(ids[0]).status == "returned"
    bulk = teacher.post("/outcomes/certify", data={"csrf_token": token, "ids": ids[1:], "next": "/outcomes/queue"})
    assert bulk.status_code == 302
    assert [world.outcome(i).status for i in ids] == ["returned", "certified", "certified"]

    student = signed_in(world.school, world.student)
    page = student.get("/outcomes").get_data(as_text=True)
    assert "請補資料" in page and "已退回" in page
    withdrawn = student.post(f"/outcomes/{ids[0]}/withdraw", data={"csrf_token": csrf_token(student, "/outcomes")})
    assert withdrawn.status_code == 302 and world.outcome(ids[0]).status == "withdrawn"


def test_pages_keep_to_each_role_s_scope(world, signed_in):
    outcome_id = world.create_link(world.student)["id"]
    assert signed_in(world.school, world.parent).get(f"/outcomes/{outcome_id}").status_code == 200
    assert signed_in(world.school, world.other_parent).get(f"/outcomes/{outcome_id}").status_code == 404
    assert signed_in(world.school, world.classmate).get(f"/outcomes/{outcome_id}").status_code == 404
    other = signed_in(world.school, world.other_teacher)
    assert other.get(f"/outcomes/{outcome_id}").status_code == 404
    assert "線上作品" not in other.get("/outcomes/queue").get_data(as_text=True)
    refused = other.post(f"/outcomes/{outcome_id}/certify", data={"csrf_token": csrf_token(other, "/outcomes/queue")})
    assert refused.status_code == 404 and world.outcome(outcome_id).status == "submitted"
    assert signed_in(world.school, world.parent).get("/outcomes/queue").status_code == 403
    assert signed_in(world.school, world.teacher).get("/outcomes").status_code == 403


def _bulk_outcomes(world, n: int, status: str, title: str) -> None:
    """``n`` outcomes of the world's student in its course, straight into the table (the queue's reading
    side is what is tested here, not the upload)."""
    now = clock.now()
    with as_tenant(world.app, world.school):
        db.session.execute(sa.insert(CourseOutcome), [
            {"tenant_id": world.school.id, "id": uuid.uuid4(), "student_id": world.student.id,
             "course_id": world.course.id, "academic_year": world.year, "semester": world.semester,
             "title": f"{title} {i:03d}", "description": "", "status": status, "link_url": "https://example.org/w",
             "submitted_at": now, "created_at": now, "updated_at": now, "revision": 1} for i in range(n)])
        db.session.commit()


def test_the_queue_shows_what_waits_a_page_at_a_time_and_the_rest_on_request(world, signed_in):
    from tests.test_progress import count_queries

    _bulk_outcomes(world, 101, "submitted", "甲作品")
    _bulk_outcomes(world, 2, "certified", "乙作品")
    teacher = signed_in(world.school, world.teacher)
    with count_queries(world.app) as first:
        page1 = teacher.get("/outcomes/queue").get_data(as_text=True)
    assert page1.count('data-testid="queue-item"') == 100 and "乙作品" not in page1
    assert "101" in page1 and 'data-testid="queue-next"' in page1  # waiting over every page, and a next page
    page2 = teacher.get("/outcomes/queue?page=2").get_data(as_text=True)
    assert page2.count('data-testid="queue-item"') == 1 and 'data-testid="queue-next"' not in page2
    decided = teacher.get("/outcomes/queue?show=decided").get_data(as_text=True)
    assert decided.count('data-testid="queue-item"') == 2 and "甲作品" not in decided
    assert teacher.get("/outcomes/queue?show=all&page=2").get_data(as_text=True).count('data-testid="queue-item"') == 3
    # bad values fall back to the first page of what waits, never a 500
    for query in ("?page=abc", "?page=-1", "?page=0", "?page=99999999999", "?show=%3Cscript%3E", "?course_id=nope"):
        response = teacher.get("/outcomes/queue" + query)
        assert response.status_code == 200, query
        assert response.get_data(as_text=True).count('data-testid="queue-item"') == 100, query
    # a page past the last shows the last one
    assert teacher.get("/outcomes/queue?page=9").get_data(as_text=True).count('data-testid="queue-item"') == 1
    # the number of queries does not grow with the items
    _bulk_outcomes(world, 150, "submitted", "又一批")
    with count_queries(world.app) as later:
        assert teacher.get("/outcomes/queue").status_code == 200
    assert later["n"] == first["n"]
    # the other course's teacher sees none of them
    other = signed_in(world.school, world.other_teacher).get("/outcomes/queue?show=all").get_data(as_text=True)
    assert "甲作品" not in other and "乙作品" not in other
