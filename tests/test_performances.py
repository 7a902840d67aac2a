"""多元表現 end to end, driven through the API and the pages.

Files travel as in production: real bytes go to the upload ticket (the app's own ``/_storage/upload``
on the embedded run, the S3 server in the services run), the client reports the upload, and the
verification job decides (``drain_jobs()`` works the RQ queue in the services run). Windows are
judged by ``lp_saas.clock``, frozen inside academic year 113 and at the window's last minute.

The helpers and the ``world`` fixture here are shared by ``test_statements.py`` and ``test_selection.py``.
"""
from __future__ import annotations

import hashlib
import io
import uuid
from contextlib import contextmanager
from functools import cached_property
from datetime import date, datetime, time
from urllib.parse import urlsplit

import pytest
import requests
import sqlalchemy as sa

# The API resources attach their routes to the API blueprint when imported; importing them before
# any app is built keeps the tests independent of the order the lead wires them in.
import lp_saas.api.performances  # noqa: F401
import lp_saas.api.selections  # noqa: F401
import lp_saas.api.statements  # noqa: F401
from lp_saas import clock
from lp_saas.academics.models import Course, ParentLink, Term
from lp_saas.academics.services import get_or_create_class, place_in_class
from lp_saas.audit.models import AuditEvent
from lp_saas.database import db
from lp_saas.i18n import TAIPEI
from lp_saas.portfolio.models import CourseOutcome, Performance, StoredFile
from lp_saas.tenants import rulesets
from tests.conftest import REDIS_URL, RUN_ID, as_tenant, base_test_config, csrf_token, school_client

YEAR = 113
#: inside academic year 113 (Aug 2024 – Jul 2025), its window open
IN_YEAR = datetime(2025, 3, 1, 10, 0, tzinfo=TAIPEI)
#: semester 2 of 113 ends with its ceremony on 2025-06-30; the window stays open 14 days after it
LAST_MINUTE = datetime(2025, 7, 14, 23, 59, 0, tzinfo=TAIPEI)
NEXT_DAY = datetime(2025, 7, 15, 0, 0, 0, tzinfo=TAIPEI)

MINIMAL_PDF = (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
               b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 64 + b"This program cannot be run"


def pdf(tag: str = "") -> bytes:
    return MINIMAL_PDF + f"% {tag}\n".encode()


def png(tag: str = "") -> bytes:
    return PNG + tag.encode()


def spec_of(data: bytes, filename: str = "獎狀.pdf", content_type: str = "application/pdf") -> dict:
    return {"filename": filename, "size": len(data), "content_type": content_type,
            "sha256": hashlib.sha256(data).hexdigest()}


def send_bytes(app, school, upload: dict, data: bytes, filename: str = "f.pdf",
               content_type: str = "application/pdf") -> int:
    """Send ``data`` to an upload ticket as a browser does; the storage's HTTP status."""
    assert upload["method"] == "POST"
    if "/_storage/upload" in upload["url"]:  # the local backend: the app's own route on the school's host
        parts = urlsplit(upload["url"])
        response = school_client(app, school).post(
            parts.path + (f"?{parts.query}" if parts.query else ""), content_type="multipart/form-data",
            data={**upload["fields"], "file": (io.BytesIO(data), filename, content_type)})
        return response.status_code
    with requests.Session() as http:
        http.trust_env = False  # loopback only
        response = http.post(upload["url"], data=upload["fields"], files={"file": (filename, data, content_type)},
                             headers=upload.get("headers") or {})
        return response.status_code


# --- the app with the portfolio pages -------------------------------------------------------------

@pytest.fixture(scope="module")
def app(database, instance_dir):
    """The app, with the ``portfolio_items`` pages registered even before the app factory does it."""
    from lp_saas import create_app
    from lp_saas.portfolio.performance_views import bp

    app = create_app(base_test_config(database[0], instance_dir))
    if "portfolio_items" not in app.blueprints:
        app.register_blueprint(bp)
    yield app
    if REDIS_URL:
        from redis import Redis

        conn = Redis.from_url(REDIS_URL)
        for key in conn.scan_iter(f"*lptest-{RUN_ID}*"):
            conn.delete(key)


@pytest.fixture(autouse=True)
def in_year():
    """Every test runs on a day inside academic year 113 unless it freezes another moment."""
    with clock.frozen(IN_YEAR):
        yield


# --- a school with year 113, a class, parents, staff --------------------------------------------------

class World:
    """A school in academic year 113 with its calendar; the people are made when a test first uses
    them (hashing passwords is what makes fixtures slow), each wired into classes and families."""

    def __init__(self, app, make_school, make_user, api_for, drain, signed_in):
        self.app, self._make_school, self._make_user = app, make_school, make_user
        self.api_for, self.drain, self.signed_in = api_for, drain, signed_in
        self.tag = uuid.uuid4().hex[:6]
        self.school = make_school("moe")
        self.student = self._person("student", display_name="王小明", student_no=f"A{self.tag}")
        with as_tenant(app, self.school):
            db.session.add_all([
                Term(tenant_id=self.school.id, academic_year=YEAR, semester=1, starts_on=date(2024, 8, 1),
                     ceremony_on=date(2025, 1, 20), ends_on=date(2025, 1, 31)),
                Term(tenant_id=self.school.id, academic_year=YEAR, semester=2, starts_on=date(2025, 2, 1),
                     ceremony_on=date(2025, 6, 30), ends_on=date(2025, 7, 31)),
                Term(tenant_id=self.school.id, academic_year=YEAR - 1, semester=1, starts_on=date(2023, 8, 1),
                     ceremony_on=date(2024, 1, 19), ends_on=date(2024, 1, 31)),
                Term(tenant_id=self.school.id, academic_year=YEAR - 1, semester=2, starts_on=date(2024, 2, 1),
                     ceremony_on=date(2024, 6, 28), ends_on=date(2024, 7, 31)),
            ])
            db.session.commit()
        self._place(self.student, "301")

    # people, made on first use ---------------------------------------------------------------------

    def _person(self, role, **fields):
        return self._make_user(self.school, role, **fields)

    def _place(self, student, class_name, homeroom=None):
        with as_tenant(self.app, self.school):
            school_class = get_or_create_class(self.school, class_name, YEAR, 12)
            if homeroom is not None:
                school_class.homeroom_teacher_id = homeroom.id
            if student is not None:
                place_in_class(self.school, "test:fixture", student, class_name, YEAR)
            db.session.commit()

    def _link(self, parent, child):
        with as_tenant(self.app, self.school):
            db.session.add(ParentLink(tenant_id=self.school.id, parent_id=parent.id, student_id=child.id))
            db.session.commit()

    @cached_property
    def classmate(self):
        user = self._person("student", display_name="李同學", student_no=f"B{self.tag}")
        self._place(user, "301")
        return user

    @cached_property
    def other_child(self):
        user = self._person("student", display_name="陳同學", student_no=f"C{self.tag}")
        self._place(user, "302")
        return user

    @cached_property
    def parent(self):
        user = self._person("parent", display_name="王爸爸")
        self._link(user, self.student)
        return user

    @cached_property
    def other_parent(self):
        user = self._person("parent", display_name="陳媽媽")
        self._link(user, self.other_child)
        return user

    @cached_property
    def homeroom(self):
        user = self._person("homeroom_teacher", display_name="301導師")
        self._place(None, "301", homeroom=user)
        return user

    @cached_property
    def other_homeroom(self):
        user = self._person("homeroom_teacher", display_name="302導師")
        self.other_child  # noqa: B018  (the class has a student)
        self._place(None, "302", homeroom=user)
        return user

    @cached_property
    def registrar(self):
        return self._person("registrar", display_name="註冊組")

    @cached_property
    def counselor(self):
        return self._person("course_counselor", display_name="輔導老師")

    @cached_property
    def teacher(self):
        return self._person("teacher", display_name="林老師")

    @cached_property
    def admin(self):
        return self._person("school_admin")

    @cached_property
    def other_school(self):
        return self._make_school("moe")

    @cached_property
    def foreign_admin(self):
        return self._make_user(self.other_school, "school_admin")

    @cached_property
    def _courses(self):
        with as_tenant(self.app, self.school):
            courses = [Course(tenant_id=self.school.id, code=f"{code}{self.tag}", name=name, credits=credits,
                              academic_year=YEAR, semester=semester, grade=12, teacher_id=self.teacher.id)
                       for code, name, credits, semester in (("M", "數學", 4, 1), ("P", "物理", 2, 2))]
            db.session.add_all(courses)
            db.session.commit()
            for course in courses:
                db.session.refresh(course)
                db.session.expunge(course)
            return courses

    @property
    def course1(self):
        return self._courses[0]

    @property
    def course2(self):
        return self._courses[1]

    # helpers ---------------------------------------------------------------------------------------

    def api(self, user):
        return self.api_for(self.school, user)

    def web(self, user):
        return self.signed_in(self.school, user)

    def count(self, *models) -> tuple:
        with as_tenant(self.app, self.school):
            return tuple(db.session.scalar(sa.select(sa.func.count()).select_from(m).where(m.tenant_id == self.school.id))
                         for m in models)

    def get(self, model, key):
        with as_tenant(self.app, self.school):
            row = db.session.get(model, (self.school.id, uuid.UUID(str(key))))
            if row is not None:
                db.session.expunge(row)
            return row

    def audit(self, action: str, actor=None) -> list:
        with as_tenant(self.app, self.school):
            query = sa.select(AuditEvent).where(AuditEvent.tenant_id == self.school.id, AuditEvent.action == action)
            if actor is not None:
                query = query.where(AuditEvent.actor_id == actor.id)
            rows = list(db.session.scalars(query))
            for row in rows:
                db.session.expunge(row)
            return rows

    def amend(self, change) -> None:
        """Adopt a new version of the school's rules, in force from the start of year 113."""
        admin = self.admin
        with as_tenant(self.app, self.school):
            data = rulesets.current_rules(self.school.id)
            change(data)
            latest = rulesets.latest(self.school.id)
            rulesets.amend(self.school, admin, data=data, adopted_on=max(date(2024, 8, 1), latest.adopted_on),
                           adopted_by="校務會議")
            db.session.commit()

    def outcome(self, student, *, course=None, status="certified", year=YEAR, title="期末報告") -> str:
        """A course outcome row as the outcomes area leaves it (this area only reads them)."""
        course = course or self.course1
        with as_tenant(self.app, self.school):
            row = CourseOutcome(tenant_id=self.school.id, student_id=student.id, academic_year=year,
                                semester=course.semester, title=title, course_id=course.id, status=status,
                                link_url="https://example.org/work")
            db.session.add(row)
            db.session.commit()
            return str(row.id)

    def link_item(self, user, category="work_product", *, expect=201, **extra) -> dict:
        body = {"category": category, "title": extra.pop("title", "作品集"), "details": good(category),
                "link": "https://example.org/portfolio", **extra}
        response = self.api(user).post("/api/v1/performances", body)
        assert response.status_code == expect, response.get_json()
        return response.get_json()

    def imported(self, student, category="cadre", *, by=None, **extra) -> dict:
        body = {"category": category, "title": "班級幹部", "details": good(category), "student_id": str(student.id),
                "source": "school", **extra}
        response = self.api(by or self.registrar).post("/api/v1/performances", body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()


@pytest.fixture
def world(app, make_school, make_user, api_for, drain_jobs, signed_in) -> World:
    return World(app, make_school, make_user, api_for, drain_jobs, signed_in)


@contextmanager
def counting_queries(app):
    """Count the SQL statements the app sends (a ``before_cursor_execute`` listener)."""
    seen = []
    with app.app_context():
        engine = db.engine

    def listener(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)


# --- the categories' fields ---------------------------------------------------------------------------

GOOD = {
    "cadre": {"unit": "301班", "position": "班長", "level": "class", "start_date": "2024-09-01",
              "end_date": "2025-01-20"},
    "competition": {"level": "national", "award": "第一名", "result_date": "2024-12-10", "group": "高中組",
                    "participation": "team"},
    "service_learning": {"organiser": "員林基督教醫院", "hours": 12.5, "start_date": "2024-10-01"},
    "group_activity": {"type": "club", "periods": 36},
    "other": {"organiser": "彰化縣政府", "hours": 8},
    "certificate": {"code": "TOEIC", "type": "language", "score": "785", "certificate_no": "A-123",
                    "group": "英語", "obtained_on": "2024-11-30"},
    "flexible_learning": {"type": "self_directed", "periods_per_week": 2, "weeks": 18},
    "workplace_learning": {"type": "internship", "employer": "員林農會", "job_title": "實習生", "hours": 40},
    "work_product": {"name": "小論文：員林的水圳", "date": "2025-01-05"},
    "advanced_course": {"institution": "國立彰化師範大學", "credits": 2, "total_hours": 36},
}
#: (category, field, bad value): each must be refused naming ``details.<field>``
BAD = [
    ("cadre", "level", "president"), ("cadre", "start_date", "2023-09-01"), ("cadre", "end_date", "2024-08-15"),
    ("cadre", "salary", 100),
    ("competition", "participation", "duo"), ("competition", "result_date", "2024/12/10"),
    ("competition", "award", "<script>alert(1)</script>"),
    ("competition", "result_date", "2025-04-01"),  # after today (inside the year)
    ("service_learning", "hours", 0), ("service_learning", "hours", 12.25), ("service_learning", "hours", "12"),
    ("service_learning", "hours", 501),
    ("group_activity", "periods", 0), ("group_activity", "periods", 3.5), ("group_activity", "type", "lunch"),
    ("other", "hours", -1), ("other", "organiser", "x" * 61),
    ("certificate", "type", "driving"), ("certificate", "obtained_on", "2026-01-01"),
    ("flexible_learning", "weeks", 23), ("flexible_learning", "periods_per_week", True),
    ("workplace_learning", "hours", 2001),
    ("workplace_learning", "employer", "a\x00b"),
    ("work_product", "date", "2025-02-30"), ("work_product", "name", "a" * 101), ("work_product", "date", 20250105),
    ("advanced_course", "credits", 11), ("advanced_course", "total_hours", "many"), ("advanced_course", "credits", 1.5),
]


def good(category: str) -> dict:
    return dict(GOOD[category])


@pytest.mark.parametrize("category", sorted(GOOD))
def test_each_category_accepts_its_fields(world, category):
    item = world.link_item(world.student, category)
    assert item["category"] == category and item["status"] == "submitted"
    assert item["details"] == GOOD[category]
    assert item["source"] == "student" and item["counts_toward_cap"] is True
    assert item["file"] is None and item["link"] == "https://example.org/portfolio"
    stored = world.get(Performance, item["id"])
    assert stored.details == GOOD[category] and stored.academic_year == YEAR


@pytest.mark.parametrize("category,field,value", BAD, ids=[f"{c}-{f}-{i}" for i, (c, f, _v) in enumerate(BAD)])
def test_each_category_refuses_bad_values_naming_the_field(world, category, field, value):
    details = good(category)
    details[field] = value
    before = world.count(Performance, StoredFile)
    response = world.api(world.student).post("/api/v1/performances", {
        "category": category, "title": "測試", "details": details, "link": "https://example.org/x"})
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed"
    assert f"details.{field}" in error["details"], error
    assert world.count(Performance, StoredFile) == before


#: (category, field) pairs the central database needs; each may be absent through the API
NEEDED = [("cadre", "position"), ("competition", "award"), ("other", "organiser"), ("certificate", "code"),
          ("flexible_learning", "type"), ("workplace_learning", "job_title")]


@pytest.mark.parametrize("category,field", NEEDED)
def test_the_api_keeps_an_item_lacking_a_needed_field_and_names_it(world, category, field):
    for absent in ("drop", ""):  # left out, or sent empty
        details = good(category)
        if absent == "drop":
            details.pop(field)
        else:
            details[field] = ""
        response = world.api(world.student).post("/api/v1/performances", {
            "category": category, "title": "待補", "details": details, "link": "https://example.org/x"})
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        assert body["missing_details"] == [f"details.{field}"] and field not in body["details"]
        assert world.api(world.student).get(f"/api/v1/performances/{body['id']}").get_json()["missing_details"] \
            == [f"details.{field}"]


def test_the_api_takes_a_category_without_any_details(world):
    """API.md names only ``category``: an integrator's item without ``details`` is kept and counts
    toward the cap like any other; the page then asks the student for what is missing."""
    response = world.api(world.student).post("/api/v1/performances", {
        "category": "competition", "title": "全國科展", "description": "第一名", "link": "https://example.org/fair"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "submitted" and body["details"] == {} and body["counts_toward_cap"] is True
    assert body["missing_details"] == ["details.level", "details.award", "details.result_date",
                                       "details.participation"]
    html = world.web(world.student).get("/performances").get_data(as_text=True)
    assert 'data-testid="missing-details"' in html and "中央資料庫" in html
    complete = world.link_item(world.student, "competition")
    assert complete["missing_details"] == []


def test_the_page_form_asks_for_every_needed_field(world):
    web = world.web(world.student)
    token = csrf_token(web, "/performances")
    before = world.count(Performance)
    refused = web.post("/performances/new", data={
        "category": "competition", "title": "全國科展", "academic_year": str(YEAR), "semester": "",
        "details.level": "national", "details.award": "", "details.result_date": "2024-12-10",
        "details.participation": "individual", "link": "https://example.org/fair"}, headers={"X-CSRFToken": token})
    assert refused.status_code == 422
    assert set(refused.get_json()["error"]["details"]) == {"details.award"}
    assert world.count(Performance) == before


def test_categories_endpoint_lists_the_ten_with_labels_and_schemas(world):
    body = world.api(world.student).get("/api/v1/performance-categories").get_json()
    keys = [c["key"] for c in body["categories"]]
    assert keys == list(GOOD) and len(keys) == 10
    by_key = {c["key"]: c for c in body["categories"]}
    assert by_key["competition"]["labels"] == {"zh-TW": "競賽參與", "en": "Competitions"}
    assert by_key["competition"]["label"] == "競賽參與"
    level = next(f for f in by_key["competition"]["fields"] if f["name"] == "level")
    assert level["enum"] == ["school", "county", "regional", "national", "international", "other"]
    assert {"value": "national", "label": "全國", "labels": {"zh-TW": "全國", "en": "National"}} in level["choices"]
    hours = next(f for f in by_key["service_learning"]["fields"] if f["name"] == "hours")
    assert hours["type"] == "number" and hours["maximum"] == 500 and hours["decimals"] == 1
    english = world.api(world.student).get("/api/v1/performance-categories",
                                           headers={"Accept-Language": "en"}).get_json()
    assert english["categories"][0]["label"] == "Cadre roles and deeds"
    from lp_saas.portfolio.models import PERFORMANCE_CATEGORIES

    assert {c["key"]: c["labels"]["zh-TW"] for c in body["categories"]} == PERFORMANCE_CATEGORIES
    assert world.api_for(world.school).get("/api/v1/performance-categories").status_code == 401


@pytest.mark.parametrize("body,field", [
    ({"category": "sports"}, "category"),
    ({"title": ""}, "title"),
    ({"title": "x" * 101}, "title"),
    ({"title": "<b>我</b>"}, "title"),
    ({"description": "很" * 101}, "description"),
    ({"details": "not an object"}, "details"),
    ({"link": "javascript:alert(1)"}, "link"),
    ({"link": "ftp://example.org/x"}, "link"),
    ({"link": None, "file": None}, "file"),
    ({"file": {"filename": "a.pdf", "size": 10, "content_type": "application/pdf", "sha256": "0" * 64}}, "file"),
    ({"semester": 3}, "semester"),
    ({"academic_year": "113"}, "academic_year"),
    ({"unexpected": 1}, "unexpected"),
    ({"source": "school"}, None),  # a student may not claim the school as the source: 403
    ({"student_id": "00000000-0000-0000-0000-000000000001"}, "student_id"),
    ({"organiser_name": "某基金會"}, "organiser_name"),
])
def test_bad_item_bodies_are_refused_and_store_nothing(world, body, field):
    full = {"category": "work_product", "title": "作品", "details": good("work_product"),
            "link": "https://example.org/x", **body}
    full = {k: v for k, v in full.items() if v is not None}
    api = world.api(world.student)
    before = world.count(Performance, StoredFile, AuditEvent)
    response = api.post("/api/v1/performances", full)
    if field is None:
        assert response.status_code == 403
    else:
        assert response.status_code == 422, response.get_json()
        assert field in response.get_json()["error"]["details"], response.get_json()
    assert world.count(Performance, StoredFile, AuditEvent) == before


def test_non_json_bodies_are_refused(world):
    api = world.api(world.student)
    assert api.post("/api/v1/performances", data="x", headers={"Content-Type": "text/plain"}).status_code == 415
    assert api.client.post("/api/v1/performances", data="[1]", content_type="application/json",
                           headers=api.headers()).status_code == 400


# --- the upload cap and the window ----------------------------------------------------------------------

def test_upload_cap_last_item_passes_one_more_is_refused_and_imports_do_not_count(world):
    world.amend(lambda data: data["performances"].update(upload_cap_per_year=3))
    for _ in range(2):
        world.link_item(world.student)
    world.imported(world.student)  # a school unit's record
    world.imported(world.student, "competition", source="organiser", organiser_name="教育部國民及學前教育署")
    last = world.link_item(world.student, "service_learning")  # the third own: the last the cap allows
    assert last["counts_toward_cap"] is True
    before = world.count(Performance)
    refused = world.api(world.student).post("/api/v1/performances", {
        "category": "work_product", "title": "第四件", "details": good("work_product"), "link": "https://example.org/4"})
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert error["code"] == "upload_cap"
    assert error["details"]["cap"] == {"name": "performances.upload_cap_per_year", "limit": 3, "used": 3,
                                       "academic_year": YEAR}
    assert "3" in error["message"]
    assert world.count(Performance) == before
    # staff can still record for the student: imports are outside the cap
    world.imported(world.student, "group_activity")
    # withdrawing an own item frees its place
    assert world.api(world.student).delete(f"/api/v1/performances/{last['id']}").status_code == 204
    world.link_item(world.student)
    # the page shows the cap used and left
    page = world.web(world.student).get("/performances").get_data(as_text=True)
    assert "<strong>3</strong> / 3" in page


def test_the_window_last_minute_passes_and_the_next_is_refused(world):
    with clock.frozen(LAST_MINUTE):
        item = world.link_item(world.student)
        assert item["academic_year"] == YEAR
    with clock.frozen(NEXT_DAY):
        before = world.count(Performance)
        refused = world.api(world.student).post("/api/v1/performances", {
            "category": "work_product", "title": "遲交", "details": good("work_product"),
            "link": "https://example.org/late", "academic_year": YEAR})
        assert refused.status_code == 422
        error = refused.get_json()["error"]
        assert error["code"] == "window_closed"
        assert error["details"]["window"]["closes_at"] == datetime.combine(
            date(2025, 7, 14), time(23, 59, 59), TAIPEI).isoformat()
        assert world.count(Performance) == before
        # and the student cannot withdraw either once it has closed
        assert world.api(world.student).delete(f"/api/v1/performances/{item['id']}").status_code == 422
        # staff still record late results (outside the window)
        world.imported(world.student, academic_year=YEAR)
        page = world.web(world.student).get(f"/performances?year={YEAR}").get_data(as_text=True)
        assert 'data-testid="window-closed"' in page and "data-direct-upload" not in page


def test_a_year_not_yet_open_is_refused(world):
    """Year 120 has no calendar of the school's: the national default dates apply, and its window
    (from 1 August 2031) is not open."""
    refused = world.api(world.student).post("/api/v1/performances", {
        "category": "work_product", "title": "未來", "details": {"name": "x", "date": "2025-01-05"},
        "link": "https://example.org/x", "academic_year": 120})
    assert refused.status_code == 422
    assert refused.get_json()["error"]["details"]["details.date"]  # the date is not inside year 120
    refused = world.api(world.student).post("/api/v1/performances", {
        "category": "group_activity", "title": "未來", "details": good("group_activity"),
        "link": "https://example.org/x", "academic_year": 120})
    error = refused.get_json()["error"]
    assert error["code"] == "window_closed" and error["details"]["window"]["opens_at"].startswith("2031-08-01")


# --- files ------------------------------------------------------------------------------------------------

def test_proof_file_flow_good_pdf_and_bad_file(world):
    api = world.api(world.student)
    data = pdf(uuid.uuid4().hex)
    created = api.post("/api/v1/performances", {"category": "competition", "title": "全國科展",
                                                "details": good("competition"), "file": spec_of(data)})
    assert created.status_code == 201, created.get_json()
    item = created.get_json()
    assert item["status"] == "awaiting_upload" and item["upload"]["method"] == "POST"
    assert item["file"]["status"] == "pending" and item["file"]["filename"] == "獎狀.pdf"
    assert send_bytes(world.app, world.school, item["upload"], data) in (200, 201, 204)
    reported = api.post(f"/api/v1/performances/{item['id']}/uploaded")
    assert reported.status_code == 202 and reported.get_json()["status"] == "verifying"
    world.drain()
    shown = api.get(f"/api/v1/performances/{item['id']}").get_json()
    assert shown["status"] == "submitted" and shown["file"]["status"] == "verified"
    assert shown["submitted_at"]
    # reporting again changes nothing
    assert api.post(f"/api/v1/performances/{item['id']}/uploaded").get_json()["status"] == "submitted"
    download = api.get(f"/api/v1/performances/{item['id']}/file")
    assert download.status_code == 302 and download.headers["Location"]
    assert world.audit("file.download", world.student)

    # a program renamed to .pdf: the bytes arrive, the job refuses them
    bad = EXE + uuid.uuid4().hex.encode()
    created = api.post("/api/v1/performances", {"category": "certificate", "title": "證照",
                                                "details": good("certificate"), "file": spec_of(bad, "證照.pdf")})
    bad_item = created.get_json()
    send_bytes(world.app, world.school, bad_item["upload"], bad)
    assert api.post(f"/api/v1/performances/{bad_item['id']}/uploaded").status_code == 202
    world.drain()
    shown = api.get(f"/api/v1/performances/{bad_item['id']}").get_json()
    assert shown["status"] == "file_rejected" and shown["file"]["status"] == "rejected"
    assert shown["reason"]
    assert api.get(f"/api/v1/performances/{bad_item['id']}/file").status_code == 409
    assert api.post(f"/api/v1/performances/{bad_item['id']}/uploaded").status_code == 409
    # withdrawing the rejected item removes its row and its file row
    files_before = world.count(StoredFile)[0]
    assert api.delete(f"/api/v1/performances/{bad_item['id']}").status_code == 204
    world.drain()
    assert world.get(Performance, bad_item["id"]) is None
    assert world.count(StoredFile)[0] == files_before - 1


def test_a_file_never_sent_is_rejected_as_missing(world):
    api = world.api(world.student)
    data = pdf("never")
    item = api.post("/api/v1/performances", {"category": "work_product", "title": "未上傳",
                                             "details": good("work_product"), "file": spec_of(data)}).get_json()
    assert api.post(f"/api/v1/performances/{item['id']}/uploaded").status_code == 202
    world.drain()
    shown = api.get(f"/api/v1/performances/{item['id']}").get_json()
    assert shown["status"] == "file_rejected" and shown["file"]["reason"]


@pytest.mark.parametrize("case", ["hash_mismatch", "longer", "empty_body", "disguised_png"])
def test_a_proof_file_that_is_not_what_was_declared_is_rejected(world, case):
    """The storage server may take anything (moto enforces no POST policy): the verification job is
    what stands between a wrong file and a student's portfolio."""
    api = world.api(world.student)
    declared = pdf(uuid.uuid4().hex)
    sent = {"hash_mismatch": pdf(uuid.uuid4().hex), "longer": declared + b"%% trailing bytes",
            "empty_body": b"", "disguised_png": png(uuid.uuid4().hex)}[case]
    if case == "hash_mismatch":
        assert len(sent) == len(declared) and sent != declared
    item = api.post("/api/v1/performances", {"category": "work_product", "title": "不符的檔案",
                                             "details": good("work_product"), "file": spec_of(declared)}).get_json()
    send_bytes(world.app, world.school, item["upload"], sent)  # refused or stored, depending on the backend
    assert api.post(f"/api/v1/performances/{item['id']}/uploaded").status_code == 202
    world.drain()
    shown = api.get(f"/api/v1/performances/{item['id']}").get_json()
    assert shown["status"] == "file_rejected" and shown["file"]["status"] == "rejected" and shown["reason"]
    assert api.get(f"/api/v1/performances/{item['id']}/file").status_code == 409


@pytest.mark.parametrize("spec_change, field", [
    ({"size": 0}, "file.size"), ({"size": 4 * 1024 * 1024 + 1}, "file.size"), ({"filename": "獎狀.pdf.exe"}, "file"),
    ({"filename": "../../etc/passwd.pdf"}, "file"), ({"sha256": "xyz"}, "file.sha256"),
])
def test_a_proof_file_declared_wrong_is_refused_before_any_upload(world, spec_change, field):
    before = world.count(Performance, StoredFile)
    response = world.api(world.student).post("/api/v1/performances", {
        "category": "work_product", "title": "宣告錯誤", "details": good("work_product"),
        "file": {**spec_of(pdf("x")), **spec_change}})
    assert response.status_code == 422, response.get_json()
    assert any(key.startswith(field) for key in response.get_json()["error"]["details"]), response.get_json()
    assert world.count(Performance, StoredFile) == before


def test_a_link_item_has_no_file_to_report(world):
    item = world.link_item(world.student)
    api = world.api(world.student)
    assert api.post(f"/api/v1/performances/{item['id']}/uploaded").status_code == 409
    assert api.get(f"/api/v1/performances/{item['id']}/file").status_code == 409


# --- staff recording, withdrawing, scopes -----------------------------------------------------------------

def test_staff_record_for_students_in_their_scope(world):
    homeroom_api = world.api(world.homeroom)
    item = world.imported(world.student, by=world.homeroom)
    assert item["source"] == "school" and item["counts_toward_cap"] is False and item["status"] == "submitted"
    # an outside organiser's item without the organiser's name is kept, and says what it lacks
    unnamed = homeroom_api.post("/api/v1/performances", {
        "category": "competition", "title": "全國賽", "details": good("competition"),
        "student_id": str(world.student.id), "source": "organiser"})
    assert unnamed.status_code == 201, unnamed.get_json()
    assert unnamed.get_json()["missing_details"] == ["organiser_name"]
    assert unnamed.get_json()["counts_toward_cap"] is False
    # a homeroom teacher records only for their class; another class's student is refused by name
    before = world.count(Performance)
    other = homeroom_api.post("/api/v1/performances", {
        "category": "cadre", "title": "幹部", "details": good("cadre"), "student_id": str(world.other_child.id)})
    assert other.status_code == 422 and "student_id" in other.get_json()["error"]["details"]
    # staff are not students: no staff member can be the owner of an item
    teacher = homeroom_api.post("/api/v1/performances", {
        "category": "cadre", "title": "幹部", "details": good("cadre"), "student_id": str(world.homeroom.id)})
    assert teacher.status_code == 422
    assert world.count(Performance) == before
    # a teacher without performance.import may not record
    assert world.api(world.teacher).post("/api/v1/performances", {
        "category": "cadre", "title": "幹部", "details": good("cadre"), "student_id": str(world.student.id),
        "source": "school"}).status_code == 403
    # the student sees it, cannot withdraw it; the staff member can
    assert world.api(world.student).get(f"/api/v1/performances/{item['id']}").status_code == 200
    refused = world.api(world.student).delete(f"/api/v1/performances/{item['id']}")
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "imported_item"
    assert homeroom_api.delete(f"/api/v1/performances/{item['id']}").status_code == 204


def test_scopes_of_reading_and_withdrawing(world):
    item = world.link_item(world.student)
    path = f"/api/v1/performances/{item['id']}"
    for user in (world.classmate, world.other_parent, world.other_homeroom):
        assert world.api(user).get(path).status_code == 404, user.display_name
        listed = world.api(user).get("/api/v1/performances").get_json()["items"]
        assert item["id"] not in [i["id"] for i in listed]
    assert world.api_for(world.other_school, world.foreign_admin).get(path).status_code == 404
    assert world.api_for(world.other_school, world.foreign_admin).delete(path).status_code == 404
    for user in (world.parent, world.homeroom, world.registrar, world.counselor):
        assert world.api(user).get(path).status_code == 200, user.display_name
    assert len(world.audit("performance.read", world.parent)) == 1
    assert not world.audit("performance.read", world.student)
    # a parent reads, never changes
    assert world.api(world.parent).delete(path).status_code == 403
    assert world.api(world.parent).post("/api/v1/performances", {
        "category": "cadre", "title": "x", "details": good("cadre"), "link": "https://example.org"}).status_code == 403
    # a classmate cannot withdraw it
    assert world.api(world.classmate).delete(path).status_code == 404
    assert world.get(Performance, item["id"]) is not None


def test_list_filters_and_their_errors(world):
    world.link_item(world.student, "cadre")
    world.link_item(world.student, "work_product")
    world.imported(world.classmate)
    api = world.api(world.registrar)
    assert len(api.get(f"/api/v1/performances?student_id={world.student.id}").get_json()["items"]) == 2
    only = api.get(f"/api/v1/performances?student_id={world.student.id}&category=cadre").get_json()["items"]
    assert [i["category"] for i in only] == ["cadre"] and only[0]["student"]["display_name"] == "王小明"
    assert len(api.get("/api/v1/performances?source=school").get_json()["items"]) == 1
    assert len(api.get("/api/v1/performances?status=awaiting_upload").get_json()["items"]) == 0
    for query, field in (("category=sports", "category"), ("status=done", "status"), ("student_id=42", "student_id"),
                         ("academic_year=abc", "academic_year"), ("colour=red", "colour")):
        response = api.get(f"/api/v1/performances?{query}")
        assert response.status_code == 422 and field in response.get_json()["error"]["details"], query
    # the student's own list holds only their items
    mine = world.api(world.student).get("/api/v1/performances").get_json()["items"]
    assert {i["student_id"] for i in mine} == {str(world.student.id)}
    assert world.audit("performance.list", world.registrar)


def test_list_query_count_does_not_grow_with_items(world):
    api = world.api(world.homeroom)
    world.link_item(world.student)
    api.get("/api/v1/performances")  # warm up

    def queries():
        with counting_queries(world.app) as seen:
            response = api.get("/api/v1/performances")
        assert response.status_code == 200
        return len(seen), len(response.get_json()["items"])

    few, n_few = queries()
    for category in ("cadre", "competition", "group_activity", "other", "advanced_course"):
        world.link_item(world.student, category)
        world.imported(world.classmate, category)
    many, n_many = queries()
    assert (n_few, n_many) == (1, 11)
    assert many == few, (few, many)


# --- pages --------------------------------------------------------------------------------------------------

def test_student_page_lists_by_category_and_creates_through_upload_js(world):
    web = world.web(world.student)
    world.imported(world.student)
    page = web.get("/performances")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for category in GOOD:
        assert f'data-testid="category-{category}"' in html
    assert "幹部經歷暨事蹟" in html and "班級幹部" in html and "由學校登錄" in html or "Recorded by the school" in html
    assert 'data-testid="window-open"' in html and "data-direct-upload" in html
    assert "114年7月14日 23:59" in html  # the window's end in the ROC calendar
    token = csrf_token(web, "/performances")
    data = pdf(uuid.uuid4().hex)
    form = {"category": "competition", "title": "全國科展", "academic_year": str(YEAR), "semester": "1",
            "details.level": "national", "details.award": "第一名", "details.result_date": "2024-12-10",
            "details.group": "", "details.participation": "individual", "description": "",
            "file_name": "獎狀.pdf", "file_size": str(len(data)), "file_type": "application/pdf",
            "file_sha256": hashlib.sha256(data).hexdigest()}
    created = web.post("/performances/new", data=form, headers={"X-CSRFToken": token, "Accept": "application/json"})
    assert created.status_code == 201, created.get_data(as_text=True)
    body = created.get_json()
    assert set(body) >= {"upload", "uploaded_url", "next_url"}
    send_bytes(world.app, world.school, body["upload"], data)
    reported = web.post(body["uploaded_url"], headers={"X-CSRFToken": token})
    assert reported.status_code == 202
    world.drain()
    assert world.get(Performance, body["id"]).status == "submitted"
    assert world.get(Performance, body["id"]).details == {"level": "national", "award": "第一名",
                                                          "result_date": "2024-12-10", "participation": "individual"}
    # bad fields come back as JSON naming them, nothing stored
    before = world.count(Performance)
    bad = web.post("/performances/new", data={**form, "details.periods": "x", "details.level": "galactic"},
                   headers={"X-CSRFToken": token})
    assert bad.status_code == 422
    assert {"details.level", "details.periods"} <= set(bad.get_json()["error"]["details"])
    # a link item from the page form
    link = web.post("/performances/new", data={"category": "group_activity", "title": "社團成果", "semester": "",
                                               "details.type": "club", "details.periods": "18",
                                               "link": "https://example.org/club", "academic_year": str(YEAR)},
                    headers={"X-CSRFToken": token})
    assert link.status_code == 201 and "upload" not in link.get_json()
    assert world.count(Performance)[0] == before[0] + 1
    # forged CSRF is refused
    assert web.post("/performances/new", data=form).status_code == 400
    # withdraw from the page
    withdrawn = web.post(f"/performances/{link.get_json()['id']}/withdraw", data={"csrf_token": token})
    assert withdrawn.status_code == 302
    assert world.get(Performance, link.get_json()["id"]) is None


def test_staff_record_page_and_student_view(world):
    web = world.web(world.registrar)
    assert web.get("/performances").status_code == 302  # staff go to the recording page
    page = web.get("/performances/record")
    assert page.status_code == 200 and 'name="student"' in page.get_data(as_text=True)
    token = csrf_token(web, "/performances/record")
    form = {"student": world.student.student_no, "source": "organiser", "organiser_name": "國立自然科學博物館",
            "category": "competition", "title": "科學競賽", "academic_year": str(YEAR), "semester": "",
            "details.level": "national", "details.award": "佳作", "details.result_date": "2024-11-02",
            "details.participation": "team"}
    created = web.post("/performances/record", data=form, headers={"X-CSRFToken": token})
    assert created.status_code == 201, created.get_data(as_text=True)
    item = world.get(Performance, created.get_json()["id"])
    assert (item.source, item.organiser_name, item.created_by_id) == ("organiser", "國立自然科學博物館", world.registrar.id)
    unknown = web.post("/performances/record", data={**form, "student": "nobody"}, headers={"X-CSRFToken": token})
    assert unknown.status_code == 422 and "student" in unknown.get_json()["error"]["details"]
    view = web.get(f"/students/{world.student.id}/performances?year={YEAR}")
    assert view.status_code == 200 and "科學競賽" in view.get_data(as_text=True)
    found = web.get(f"/students/find?q={world.student.student_no}&view=performances")
    assert found.status_code == 302 and str(world.student.id) in found.headers["Location"]
    # a parent sees their child's page, not another's; a student not at all
    assert world.web(world.parent).get(f"/students/{world.student.id}/performances").status_code == 200
    assert world.web(world.other_parent).get(f"/students/{world.student.id}/performances").status_code == 404
    assert world.web(world.classmate).get(f"/students/{world.student.id}/performances").status_code == 404
    assert world.web(world.parent).get("/performances/record").status_code == 403
