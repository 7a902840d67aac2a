"""``flask demo`` seeds two schools with every role, a year of courses and a portfolio in every state,
governance records, a regional office with its officer and an operator; idempotently, and the logins
it prints work."""
import re
from datetime import datetime

import sqlalchemy as sa

from lp_saas import clock
from lp_saas.academics import calendar
from lp_saas.database import db
from lp_saas.i18n import TAIPEI, academic_term
from lp_saas.roles.templates import REQUIRED_ROLE_KEYS
from tests.conftest import post_form, school_client

SLUGS = ("ylsh", "demo")


def _tenant(slug):
    from lp_saas.tenants.services import find_by_slug

    return find_by_slug(slug)


def snapshot(app) -> dict:
    """Every row the demo schools can see (their tenant-owned rows, and the platform's tables)."""
    from lp_saas.tenants.context import tenant_scope

    rows = {}
    with app.app_context():
        for slug in SLUGS:
            tenant = _tenant(slug)
            with tenant_scope(tenant):
                for table in db.metadata.sorted_tables:
                    if "tenant_id" in table.c:
                        query = sa.select(table).where(table.c.tenant_id == tenant.id)
                    elif slug == SLUGS[0]:
                        query = sa.select(table)
                    else:
                        continue
                    rows[(slug, table.name)] = sorted(repr(tuple(row)) for row in db.session.execute(query))
                db.session.rollback()
    return rows


def portfolio_of(app, slug, year) -> dict:
    """What the school holds of the year: statuses, performance categories and sources, and more."""
    from lp_saas.academics.models import Term
    from lp_saas.governance.models import Meeting, Training, WorkingGroupMember
    from lp_saas.portfolio.models import CourseOutcome, Performance, SelectionItem, SelfStatement, StoredFile
    from lp_saas.portfolio.performances import open_year
    from lp_saas.storage import ObjectMissing, get_storage
    from lp_saas.tenants.context import tenant_scope

    with app.app_context():
        tenant = _tenant(slug)
        with tenant_scope(tenant):
            def count(model, *where):
                return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(
                    model.tenant_id == tenant.id, *where))

            outcomes = db.session.execute(sa.select(CourseOutcome.semester, CourseOutcome.status).where(
                CourseOutcome.tenant_id == tenant.id, CourseOutcome.academic_year == year)).all()
            items = db.session.execute(sa.select(Performance.category, Performance.source, Performance.status).where(
                Performance.tenant_id == tenant.id, Performance.academic_year == year)).all()
            selected = db.session.execute(sa.select(SelectionItem.item_kind).where(
                SelectionItem.tenant_id == tenant.id, SelectionItem.academic_year == year)).scalars().all()
            missing = []
            for stored in db.session.scalars(sa.select(StoredFile).where(StoredFile.tenant_id == tenant.id,
                                                                         StoredFile.status == "verified")):
                try:
                    get_storage().stat(tenant.bucket, stored.key)
                except ObjectMissing:
                    missing.append(stored.key)
            terms = {t.semester: t for t in db.session.scalars(sa.select(Term).where(
                Term.tenant_id == tenant.id, Term.academic_year == year))}
            current = calendar.current_term(tenant.id)
            return {
                "outcomes": outcomes,
                "items": items,
                "selected": selected,
                "statements": count(SelfStatement),
                "verified_files": count(StoredFile, StoredFile.status == "verified"),
                "files_missing_in_storage": missing,
                "terms": sorted(terms),
                "upload_window_open": current is not None and calendar.outcome_upload_window(current, 12).is_open(),
                "open_year": open_year(tenant.id),
                "governance": (count(WorkingGroupMember), count(Meeting), count(Training)),
            }


def test_demo_seeds_and_logins_work(app, api_for):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    before = snapshot(app)
    assert before[("ylsh", "course_outcomes")] and before[("demo", "performances")] and before[("ylsh", "offices")]
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0 and second.output == first.output
    assert snapshot(app) == before  # the second run changed nothing

    urls = re.findall(r"http://(\w+)\.localhost:5000/", first.output)
    assert urls == list(SLUGS)
    password = re.search(r"password: (\S+)", first.output).group(1)
    for slug in urls:
        assert "學" in school_client(app, slug).get("/").get_data(as_text=True)
        roles_seen = set()
        for username in ("admin", "registrar", "teacher1", "homeroom", "counselor", "student1", "parent1"):
            api = api_for(slug)
            api.login(username, password)
            roles_seen |= set(api.get("/api/v1/me").get_json()["roles"])
        assert set(REQUIRED_ROLE_KEYS) <= roles_seen

    year, semester = academic_term(clock.today())
    assert f"academic year {year}, semester {semester}" in first.output
    for slug in SLUGS:
        seeded = portfolio_of(app, slug, year)
        statuses = {status for _semester, status in seeded["outcomes"]}
        assert statuses >= {"awaiting_upload", "verifying", "submitted", "file_rejected", "certified", "returned",
                             "withdrawn"}, (slug, statuses)
        assert len({category for category, _source, _status in seeded["items"]}) >= 5
        assert {source for _category, source, _status in seeded["items"]} == {"student", "school", "organiser"}
        assert "outcome" in seeded["selected"] and "performance" in seeded["selected"]
        assert seeded["statements"] >= 1
        assert seeded["verified_files"] >= 2 and seeded["files_missing_in_storage"] == []
        assert seeded["terms"] == [1, 2] and seeded["upload_window_open"] and seeded["open_year"] == year
        members, meetings, trainings = seeded["governance"]
        assert members >= 3 and meetings >= 1 and trainings >= 3

        # the student reads their own selection through the API
        student = api_for(slug).login("student1", password)
        chosen = student.get(f"/api/v1/selections/{year}")
        assert chosen.status_code == 200 and chosen.get_json()["outcome_ids"], chosen.get_json()

    # the operator signs in on the apex; the officer reads the office's schools through the API
    apex = school_client(app, "")
    assert "operator" in first.output and "officer" in first.output
    signed_in = post_form(apex, "/platform/login", {"username": "operator", "password": password})
    assert signed_in.status_code == 302, signed_in.get_data(as_text=True)[:500]
    assert apex.get("/console").status_code == 200
    office = re.search(r"Regional office (\S+)", first.output).group(1)
    token = school_client(app, "").post("/api/v1/platform/token", json={"username": "officer", "password": password})
    assert token.status_code == 201, token.get_json()
    schools = school_client(app, "").get(f"/api/v1/offices/{office}/schools",
                                         headers={"Authorization": f"Bearer {token.get_json()['token']}"})
    assert schools.status_code == 200, schools.get_json()
    assert sorted(s["slug"] for s in schools.get_json()) == sorted(SLUGS)


def test_demo_in_a_second_semester_adds_the_first_semesters_certified_work(app):
    """Whatever day it runs: in semester 2 (here of academic year 113) the windows are open too."""
    with clock.frozen(datetime(2025, 3, 10, 12, 0, tzinfo=TAIPEI)):
        result = app.test_cli_runner().invoke(args=["demo"])
        assert result.exit_code == 0, result.output
        assert "academic year 113, semester 2" in result.output
        for slug in SLUGS:
            seeded = portfolio_of(app, slug, 113)
            assert (1, "certified") in seeded["outcomes"]
            assert {status for semester, status in seeded["outcomes"] if semester == 2} >= {
                "awaiting_upload", "verifying", "submitted", "file_rejected", "certified", "returned", "withdrawn"}
            assert seeded["terms"] == [1, 2] and seeded["upload_window_open"] and seeded["open_year"] == 113
