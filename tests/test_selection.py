"""勾選 (selection) through the API and the page: what may be selected, the caps (per semester and per
year, school and national), the closing of the window, all-or-nothing replacement, scopes."""
from __future__ import annotations

import uuid
from datetime import datetime

import pytest
import sqlalchemy as sa

from lp_saas import clock
from lp_saas.database import db
from lp_saas.i18n import TAIPEI
from lp_saas.portfolio.models import SelectionItem
from tests.conftest import as_tenant, csrf_token
from tests.test_performances import YEAR, World, app, counting_queries, in_year, world  # noqa: F401

# the selection stays open until semester 2's certification deadline (ceremony 2025-06-30 + 21 days),
# later than the performance window (+ 14 days)
LAST_MINUTE = datetime(2025, 7, 21, 23, 59, 0, tzinfo=TAIPEI)
NEXT_DAY = datetime(2025, 7, 22, 0, 0, 0, tzinfo=TAIPEI)

PATH = f"/api/v1/selections/{YEAR}"


def submitted_items(world: World, student, n: int) -> list[str]:
    categories = ["cadre", "competition", "service_learning", "group_activity", "other", "certificate",
                  "flexible_learning", "workplace_learning", "work_product", "advanced_course"]
    return [world.link_item(student, categories[i % 10], title=f"項目{i}")["id"] for i in range(n)]


def put(world: World, user, outcome_ids=(), performance_ids=()):
    return world.api(user).put(PATH, {"outcome_ids": list(outcome_ids), "performance_ids": list(performance_ids)})


def saved(world: World) -> set:
    with as_tenant(world.app, world.school):
        return {(row.item_kind, str(row.item_id)) for row in db.session.scalars(sa.select(SelectionItem).where(
            SelectionItem.tenant_id == world.school.id, SelectionItem.student_id == world.student.id))}


def test_exactly_the_caps_pass_one_more_is_refused_naming_the_cap(world):
    world.amend(lambda data: data["performances"].update(upload_cap_per_year=30))
    outcomes = [world.outcome(world.student, course=world.course1 if i % 2 else world.course2) for i in range(7)]
    items = submitted_items(world, world.student, 11)
    ok = put(world, world.student, outcomes[:6], items[:10])
    assert ok.status_code == 200, ok.get_json()
    body = ok.get_json()
    assert sorted(body["outcome_ids"]) == sorted(outcomes[:6]) and sorted(body["performance_ids"]) == sorted(items[:10])
    assert body["open"] is True and body["closes_at"].startswith("2025-07-21T23:59:59")
    assert len(saved(world)) == 16

    refused = put(world, world.student, outcomes, items[:10])
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert error["code"] == "selection_cap"
    assert error["details"]["cap"]["name"] == "course_outcomes.selection_cap"
    assert (error["details"]["cap"]["limit"], error["details"]["cap"]["sent"]) == (6, 7)
    assert "outcome_ids" in error["details"] and "6" in error["message"]

    refused = put(world, world.student, outcomes[:6], items)
    error = refused.get_json()["error"]
    assert refused.status_code == 422 and error["details"]["cap"]["name"] == "performances.selection_cap_per_year"
    assert (error["details"]["cap"]["limit"], error["details"]["cap"]["sent"]) == (10, 11)
    assert len(saved(world)) == 16  # unchanged


def test_a_stricter_school_cap_is_applied_beside_the_national_one(world):
    world.amend(lambda data: data["performances"].update(selection_cap_per_year=2))
    items = submitted_items(world, world.student, 3)
    assert put(world, world.student, (), items[:2]).status_code == 200
    error = put(world, world.student, (), items).get_json()["error"]
    assert error["details"]["cap"] == {"name": "performances.selection_cap_per_year", "limit": 2, "period": "year",
                                       "source": "school", "sent": 3, "semester": None, "academic_year": YEAR}


def test_period_semester_counts_each_semester_and_period_year_the_whole_year(world):
    first = [world.outcome(world.student, course=world.course1) for _ in range(4)]
    second = [world.outcome(world.student, course=world.course2) for _ in range(3)]
    # 3 per semester (the older rules' shape): 3 + 3 passes, a fourth in semester 1 does not
    world.amend(lambda data: data["course_outcomes"].update(selection_cap=3, selection_period="semester"))
    assert put(world, world.student, first[:3] + second).status_code == 200
    refused = put(world, world.student, first + second[:1])
    assert refused.status_code == 422
    cap = refused.get_json()["error"]["details"]["cap"]
    assert (cap["name"], cap["period"], cap["semester"], cap["limit"], cap["sent"]) == (
        "course_outcomes.selection_cap", "semester", 1, 3, 4)
    # 5 per year: four in one semester pass, six in the year do not
    world.amend(lambda data: data["course_outcomes"].update(selection_cap=5, selection_period="year"))
    assert put(world, world.student, first + second[:1]).status_code == 200
    refused = put(world, world.student, first[:3] + second)
    cap = refused.get_json()["error"]["details"]["cap"]
    assert (cap["period"], cap["limit"], cap["sent"]) == ("year", 5, 6)


@pytest.mark.parametrize("case", ["not_certified", "returned", "classmates", "unknown", "other_year", "malformed",
                                  "duplicate", "performance_not_submitted", "classmates_performance"])
def test_ids_that_cannot_be_selected_are_refused_by_name_and_change_nothing(world, case):
    mine = world.outcome(world.student)
    item = submitted_items(world, world.student, 1)[0]
    assert put(world, world.student, [mine], [item]).status_code == 200
    outcome_ids, performance_ids, field = [mine], [item], "outcome_ids.1"
    if case == "not_certified":
        bad = world.outcome(world.student, status="submitted")
    elif case == "returned":
        bad = world.outcome(world.student, status="returned")
    elif case == "classmates":
        bad = world.outcome(world.classmate)
    elif case == "unknown":
        bad = str(uuid.uuid4())
    elif case == "other_year":
        bad = world.outcome(world.student, year=YEAR - 1)
    elif case == "malformed":
        bad = "not-an-id"
    elif case == "duplicate":
        bad = mine
    if case.startswith("performance") or case == "classmates_performance":
        field = "performance_ids.1"
        if case == "performance_not_submitted":
            data = b"%PDF-1.4 pending"
            import hashlib

            created = world.api(world.student).post("/api/v1/performances", {
                "category": "work_product", "title": "未上傳", "details": {"name": "x", "date": "2025-01-05"},
                "file": {"filename": "x.pdf", "size": len(data), "content_type": "application/pdf",
                         "sha256": hashlib.sha256(data).hexdigest()}})
            bad = created.get_json()["id"]
        else:
            bad = submitted_items(world, world.classmate, 1)[0]
        performance_ids = [item, bad]
    else:
        outcome_ids = [mine, bad]
    before = saved(world)
    refused = put(world, world.student, outcome_ids, performance_ids)
    assert refused.status_code == 422, refused.get_json()
    details = refused.get_json()["error"]["details"]
    assert field in details, details
    if case not in ("malformed",):
        assert bad in details[field]
    assert saved(world) == before


def test_imported_items_are_selectable(world):
    imported = world.imported(world.student)
    organiser = world.imported(world.student, "competition", source="organiser", organiser_name="縣政府")
    response = put(world, world.student, (), [imported["id"], organiser["id"]])
    assert response.status_code == 200
    assert {p["source"] for p in response.get_json()["performances"]} == {"school", "organiser"}


def test_replacing_is_all_or_nothing(world):
    outcomes = [world.outcome(world.student) for _ in range(3)]
    items = submitted_items(world, world.student, 3)
    assert put(world, world.student, outcomes[:2], items[:2]).status_code == 200
    first = saved(world)
    # one bad id among good ones: nothing of the new selection is stored
    refused = put(world, world.student, outcomes[1:] + [str(uuid.uuid4())], items[1:])
    assert refused.status_code == 422 and saved(world) == first
    # a good replacement drops what is not listed and keeps the rest
    replaced = put(world, world.student, outcomes[2:], items[1:2])
    assert replaced.status_code == 200
    assert saved(world) == {("outcome", outcomes[2]), ("performance", items[1])}
    assert put(world, world.student).status_code == 200 and saved(world) == set()
    # both lists are required, and only they
    for body, field in (({"outcome_ids": []}, "performance_ids"), ({"outcome_ids": "x", "performance_ids": []}, "outcome_ids"),
                        ({"outcome_ids": [], "performance_ids": [], "extra": 1}, "extra")):
        response = world.api(world.student).put(PATH, body)
        assert response.status_code == 422 and field in response.get_json()["error"]["details"]
    assert world.audit("selection.saved", world.student)


def test_the_window_last_minute_saves_the_next_is_closed_and_read_only(world):
    outcome = world.outcome(world.student)
    items = submitted_items(world, world.student, 2)
    with clock.frozen(LAST_MINUTE):
        assert put(world, world.student, [outcome], items[:1]).status_code == 200
    first = saved(world)
    with clock.frozen(NEXT_DAY):
        refused = put(world, world.student, [outcome], items)
        assert refused.status_code == 422
        error = refused.get_json()["error"]
        assert error["code"] == "selection_closed"
        assert error["details"]["window"]["closes_at"].startswith("2025-07-21T23:59:59")
        assert saved(world) == first
        shown = world.api(world.student).get(PATH)
        assert shown.status_code == 200 and shown.get_json()["open"] is False
        assert shown.get_json()["performance_ids"] == items[:1]
        # the page is read-only, and posting to it changes nothing
        web = world.web(world.student)
        page = web.get(f"/selection/{YEAR}").get_data(as_text=True)
        assert 'data-testid="selection-closed"' in page and 'data-testid="selection-form"' not in page
        token = csrf_token(web, f"/selection/{YEAR}")
        posted = web.post(f"/selection/{YEAR}", data={"csrf_token": token, "performance_ids": items})
        assert posted.status_code == 422 and saved(world) == first
    # a year without a calendar is not open
    assert world.api(world.student).put("/api/v1/selections/120", {"outcome_ids": [], "performance_ids": []}) \
        .get_json()["error"]["code"] == "selection_not_open"


def test_scopes_parent_reads_staff_by_scope_others_nothing(world):
    item = submitted_items(world, world.student, 1)[0]
    assert put(world, world.student, (), [item]).status_code == 200
    query = f"{PATH}?student_id={world.student.id}"
    for user in (world.parent, world.homeroom, world.registrar):
        response = world.api(user).get(query)
        assert response.status_code == 200 and response.get_json()["performance_ids"] == [item], user.display_name
    assert world.audit("selection.read", world.parent)
    for user in (world.classmate, world.other_parent, world.other_homeroom):
        assert world.api(user).get(query).status_code == 404, user.display_name
    assert world.api_for(world.other_school, world.foreign_admin).get(query).status_code == 404
    # a parent is read-only; a parent without student_id is asked to name the child
    assert world.api(world.parent).put(PATH, {"outcome_ids": [], "performance_ids": [item]}).status_code == 403
    assert world.api(world.parent).get(PATH).status_code == 422
    assert world.api(world.classmate).get(PATH).get_json()["performance_ids"] == []  # their own, empty
    assert world.api(world.student).get(f"{PATH}?student_id=nope").status_code == 422


def test_selection_page_saves_and_reports_the_cap(world):
    world.amend(lambda data: data["performances"].update(selection_cap_per_year=2))
    outcome = world.outcome(world.student, title="數學小論文")
    items = submitted_items(world, world.student, 3)
    web = world.web(world.student)
    assert web.get("/selection").status_code == 302
    page = web.get(f"/selection/{YEAR}").get_data(as_text=True)
    assert "數學小論文" in page and 'name="performance_ids"' in page and "0 / 2" in page
    assert "114年7月21日 23:59" in page
    token = csrf_token(web, f"/selection/{YEAR}")
    ok = web.post(f"/selection/{YEAR}", data={"csrf_token": token, "outcome_ids": [outcome],
                                              "performance_ids": items[:2]})
    assert ok.status_code == 302
    assert saved(world) == {("outcome", outcome), ("performance", items[0]), ("performance", items[1])}
    over = web.post(f"/selection/{YEAR}", data={"csrf_token": token, "performance_ids": items})
    assert over.status_code == 422 and "performances.selection_cap_per_year" in over.get_data(as_text=True)
    assert web.post(f"/selection/{YEAR}", data={"performance_ids": items}).status_code == 400  # no CSRF
    # the parent's read-only view
    view = world.web(world.parent).get(f"/students/{world.student.id}/selection/{YEAR}")
    assert view.status_code == 200 and "數學小論文" in view.get_data(as_text=True)
    assert 'name="performance_ids"' not in view.get_data(as_text=True)
    assert world.web(world.other_parent).get(f"/students/{world.student.id}/selection/{YEAR}").status_code == 404


def test_get_query_count_does_not_grow_with_items(world):
    api = world.api(world.parent)
    items = submitted_items(world, world.student, 1)
    put(world, world.student, (), items)
    api.get(f"{PATH}?student_id={world.student.id}")

    def queries():
        with counting_queries(world.app) as seen:
            assert api.get(f"{PATH}?student_id={world.student.id}").status_code == 200
        return len(seen)

    few = queries()
    items += submitted_items(world, world.student, 5)
    outcomes = [world.outcome(world.student) for _ in range(4)]
    assert put(world, world.student, outcomes, items).status_code == 200
    assert queries() == few


def test_an_outcome_certified_on_the_deadline_day_can_still_be_selected(world):
    """The performance window closes 14 days after semester 2's ceremony, certification 21 days after:
    the selection waits for the certification deadline, so late-certified work is never unselectable."""
    performance_closed = datetime(2025, 7, 16, 10, 0, tzinfo=TAIPEI)
    with clock.frozen(performance_closed):
        outcome = world.outcome(world.student, title="期末專題")  # certified after the performance window
        refused = world.link_item(world.student, "work_product", expect=422)
        assert refused["error"]["code"] == "window_closed"  # diverse performance has closed …
        assert put(world, world.student, [outcome]).status_code == 200  # … the selection has not
    assert saved(world) == {("outcome", outcome)}
