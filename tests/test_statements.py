"""Self-statements (自傳 / 學習計畫) and the performance summary (多元表現綜整心得): the API, the pages,
their limits and who may read them."""
from __future__ import annotations

import uuid

import pytest

from lp_saas.audit.models import AuditEvent
from lp_saas.portfolio.models import PerformanceSummary, SelfStatement, StoredFile
from tests.conftest import csrf_token
from tests.test_performances import (World, app, counting_queries, in_year, png, send_bytes,  # noqa: F401
                                     spec_of, world)

STATEMENT = {"kind": "autobiography", "target": "國立臺灣大學 資訊工程學系", "title": "我的自傳",
             "body": "我來自彰化員林，\n從小喜歡寫程式。"}


def create(world: World, user=None, **override):
    response = world.api(user or world.student).post("/api/v1/statements", {**STATEMENT, **override})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_versions_are_created_edited_listed_and_deleted(world):
    api = world.api(world.student)
    first = create(world)
    second = create(world, kind="study_plan", target="國立清華大學 電機工程學系", title="學習計畫")
    assert first["chars"] == len(STATEMENT["body"]) and second["kind"] == "study_plan"
    listed = api.get("/api/v1/statements").get_json()["statements"]
    assert {s["id"] for s in listed} == {first["id"], second["id"]}
    assert [s["id"] for s in api.get("/api/v1/statements?kind=study_plan").get_json()["statements"]] == [second["id"]]
    changed = api.put(f"/api/v1/statements/{first['id']}", {"title": "自傳（第二版）", "body": "新的內容\r\n第二行"})
    assert changed.status_code == 200
    assert changed.get_json()["title"] == "自傳（第二版）" and changed.get_json()["body"] == "新的內容\n第二行"
    assert changed.get_json()["kind"] == "autobiography"  # untouched
    assert api.delete(f"/api/v1/statements/{second['id']}").status_code == 204
    assert api.get(f"/api/v1/statements/{second['id']}").status_code == 404
    assert world.audit("self_statement.deleted", world.student)


@pytest.mark.parametrize("body,field", [
    ({"kind": "poem"}, "kind"),
    ({"kind": None}, "kind"),
    ({"target": "系" * 121}, "target"),
    ({"target": ""}, "target"),
    ({"title": "題" * 101}, "title"),
    ({"title": "<script>x</script>"}, "title"),
    ({"body": "字" * 5001}, "body"),
    ({"body": "   "}, "body"),
    ({"body": "我的<script>alert(1)</script>自傳"}, "body"),
    ({"body": 42}, "body"),
    ({"colour": "red"}, "colour"),
])
def test_bad_statements_are_refused_naming_the_field_and_store_nothing(world, body, field):
    api = world.api(world.student)
    before = world.count(SelfStatement, AuditEvent)
    payload = {k: v for k, v in {**STATEMENT, **body}.items() if v is not None}
    response = api.post("/api/v1/statements", payload)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["details"]
    assert world.count(SelfStatement, AuditEvent) == before


def test_a_long_body_up_to_the_maximum_passes_and_edits_are_checked_too(world):
    item = create(world, body="字" * 5000)
    assert item["chars"] == 5000
    api = world.api(world.student)
    refused = api.put(f"/api/v1/statements/{item['id']}", {"body": "字" * 5001})
    assert refused.status_code == 422 and "body" in refused.get_json()["error"]["details"]
    assert world.get(SelfStatement, item["id"]).body == "字" * 5000
    assert api.put(f"/api/v1/statements/{item['id']}", {}).status_code == 422
    assert api.put(f"/api/v1/statements/{item['id']}", {"kind": "essay"}).status_code == 422


def test_who_reads_and_who_writes_statements(world):
    item = create(world)
    path = f"/api/v1/statements/{item['id']}"
    for user in (world.parent, world.homeroom, world.counselor):
        response = world.api(user).get(path)
        assert response.status_code == 200 and response.get_json()["body"] == STATEMENT["body"], user.display_name
        assert world.audit("self_statement.read", user), user.display_name
    assert not world.audit("self_statement.read", world.student)
    world.api(world.student).get(path)
    assert not world.audit("self_statement.read", world.student)  # the student's own reads are not audited
    for user in (world.classmate, world.other_parent, world.other_homeroom):
        assert world.api(user).get(path).status_code == 404, user.display_name
        assert world.api(user).get(f"/api/v1/statements?student_id={world.student.id}").get_json()["statements"] == []
    assert world.api_for(world.other_school, world.foreign_admin).get(path).status_code == 404
    # readers cannot write; a classmate cannot touch it
    assert world.api(world.parent).put(path, {"title": "改"}).status_code == 403
    assert world.api(world.homeroom).delete(path).status_code == 403
    assert world.api(world.classmate).put(path, {"title": "改"}).status_code == 404
    assert world.api(world.classmate).delete(path).status_code == 404
    assert world.get(SelfStatement, item["id"]).title == STATEMENT["title"]
    listed = world.api(world.counselor).get(f"/api/v1/statements?student_id={world.student.id}").get_json()
    assert [s["id"] for s in listed["statements"]] == [item["id"]]
    assert listed["statements"][0]["student"]["display_name"] == "王小明"


def test_statement_list_query_count_does_not_grow(world):
    api = world.api(world.homeroom)
    create(world)
    api.get("/api/v1/statements")

    def queries():
        with counting_queries(world.app) as seen:
            assert api.get("/api/v1/statements").status_code == 200
        return len(seen)

    few = queries()
    for n in range(4):
        create(world, title=f"版本{n}")
        create(world, world.classmate, title=f"同學{n}")
    assert queries() == few


# --- the performance summary -------------------------------------------------------------------------

def test_summary_at_800_characters_passes_and_801_fails(world):
    api = world.api(world.student)
    text = "綜" * 799 + "\n"  # a trailing line break is trimmed
    ok = api.put("/api/v1/summary", {"body": "綜" * 400 + "\r\n" + "整" * 399})  # \r\n counts as one
    assert ok.status_code == 200 and ok.get_json()["chars"] == 800, ok.get_json()
    assert api.put("/api/v1/summary", {"body": text}).get_json()["chars"] == 799
    exact = api.put("/api/v1/summary", {"body": "心" * 800})
    assert exact.status_code == 200 and exact.get_json()["max_chars"] == 800
    before = world.count(PerformanceSummary, AuditEvent)
    over = api.put("/api/v1/summary", {"body": "心" * 801})
    assert over.status_code == 422 and "body" in over.get_json()["error"]["details"]
    assert "801" in over.get_json()["error"]["details"]["body"]
    assert world.count(PerformanceSummary, AuditEvent) == before
    assert api.get("/api/v1/summary").get_json()["body"] == "心" * 800
    for bad in ({"body": "<img src=x onerror=alert(1)>"}, {"body": 1}, {}, {"body": "x", "title": "y"}):
        assert api.put("/api/v1/summary", bad).status_code == 422, bad


def test_a_stricter_school_limit_applies(world):
    world.amend(lambda data: data["performance_summary"].update(max_chars=500, max_images=1))
    api = world.api(world.student)
    assert api.put("/api/v1/summary", {"body": "心" * 500}).status_code == 200
    assert api.put("/api/v1/summary", {"body": "心" * 501}).status_code == 422
    assert api.get("/api/v1/summary").get_json()["max_images"] == 1


def upload_image(world: World, api, data: bytes, filename="照片.png", content_type="image/png"):
    created = api.post("/api/v1/summary/images", {"file": spec_of(data, filename, content_type)})
    if created.status_code != 201:
        return created
    body = created.get_json()
    send_bytes(world.app, world.school, body["upload"], data, filename, content_type)
    reported = api.post(f"/api/v1/summary/images/{body['id']}/uploaded")
    assert reported.status_code == 202, reported.get_json()
    world.drain()
    return created


def test_three_images_pass_and_a_fourth_is_refused(world):
    api = world.api(world.student)
    ids = []
    for n in range(3):
        created = upload_image(world, api, png(uuid.uuid4().hex))
        assert created.status_code == 201, created.get_json()
        ids.append(created.get_json()["id"])
    summary = api.get("/api/v1/summary").get_json()
    assert [i["status"] for i in summary["images"]] == ["verified"] * 3 and summary["max_images"] == 3
    before = world.count(StoredFile)
    fourth = api.post("/api/v1/summary/images", {"file": spec_of(png("4"), "第四張.png", "image/png")})
    assert fourth.status_code == 422
    error = fourth.get_json()["error"]
    assert error["code"] == "summary_images_cap" and error["details"]["cap"]["limit"] == 3
    assert world.count(StoredFile) == before
    # images only: a PDF or a gif is refused by name
    for name, ctype in (("文件.pdf", "application/pdf"), ("動畫.gif", "image/gif")):
        refused = api.post("/api/v1/summary/images", {"file": spec_of(b"x" * 10, name, ctype)})
        assert refused.status_code == 422 and "file.filename" in refused.get_json()["error"]["details"]
    # readers in scope download it (audited); others do not
    image_path = f"/api/v1/summary/images/{ids[0]}/file"
    assert world.api(world.parent).get(image_path).status_code == 302
    assert world.api(world.other_parent).get(image_path).status_code == 404
    assert world.api(world.parent).delete(f"/api/v1/summary/images/{ids[0]}").status_code == 403
    assert world.api(world.classmate).delete(f"/api/v1/summary/images/{ids[0]}").status_code == 404
    # removing one frees its place
    assert api.delete(f"/api/v1/summary/images/{ids[0]}").status_code == 204
    world.drain()
    assert upload_image(world, api, png("again")).status_code == 201


def test_a_renamed_file_is_rejected_and_holds_no_place(world):
    api = world.api(world.student)
    fake = b"%PDF-1.4 not an image" + uuid.uuid4().hex.encode()
    created = upload_image(world, api, fake, "假圖.png", "image/png")
    assert created.status_code == 201
    images = api.get("/api/v1/summary").get_json()["images"]
    assert images == []  # rejected images are not listed
    assert world.get(StoredFile, created.get_json()["id"]).reject_reason == "type_mismatch"


def test_summary_scopes(world):
    world.api(world.student).put("/api/v1/summary", {"body": "我的綜整心得"})
    for user in (world.parent, world.homeroom, world.registrar):
        response = world.api(user).get(f"/api/v1/summary?student_id={world.student.id}")
        assert response.status_code == 200 and response.get_json()["body"] == "我的綜整心得", user.display_name
    assert world.audit("summary.read", world.parent)
    for user in (world.classmate, world.other_parent):
        assert world.api(user).get(f"/api/v1/summary?student_id={world.student.id}").status_code == 404
    assert world.api(world.parent).put("/api/v1/summary", {"body": "家長改寫"}).status_code == 403
    assert world.api(world.parent).get("/api/v1/summary").status_code == 422


# --- pages --------------------------------------------------------------------------------------------

def test_statement_pages_with_live_count(world):
    web = world.web(world.student)
    page = web.get("/statements")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "data-count-max=\"5000\"" in html and "data-used" in html
    token = csrf_token(web, "/statements")
    created = web.post("/statements", data={"csrf_token": token, **STATEMENT})
    assert created.status_code == 302
    edit_url = created.headers["Location"]
    edit = web.get(edit_url).get_data(as_text=True)
    assert "我的自傳" in edit and "國立臺灣大學" in edit
    before = world.count(SelfStatement)
    bad = web.post("/statements", data={"csrf_token": token, **STATEMENT, "target": "系" * 121})
    assert bad.status_code == 422 and "120" in bad.get_data(as_text=True)
    assert world.count(SelfStatement) == before
    saved = web.post(edit_url, data={"csrf_token": token, **STATEMENT, "body": "改過的內容"})
    assert saved.status_code == 302
    statement_id = edit_url.rstrip("/").split("/")[-2]
    assert world.get(SelfStatement, statement_id).body == "改過的內容"
    # the homeroom teacher reads it (audited) and cannot edit it
    teacher = world.web(world.homeroom)
    assert teacher.get(f"/students/{world.student.id}/statements").status_code == 200
    assert teacher.get(f"/statements/{statement_id}").status_code == 200
    assert world.audit("self_statement.read", world.homeroom)
    assert teacher.get(f"/statements/{statement_id}/edit").status_code == 403
    assert world.web(world.classmate).get(f"/statements/{statement_id}").status_code == 404
    deleted = web.post(f"/statements/{statement_id}/delete", data={"csrf_token": token})
    assert deleted.status_code == 302 and world.get(SelfStatement, statement_id) is None


def test_summary_page_counts_characters_and_refuses_801(world):
    web = world.web(world.student)
    page = web.get("/summary").get_data(as_text=True)
    assert 'data-count-max="800"' in page and "summary-image-form" in page
    token = csrf_token(web, "/summary")
    assert web.post("/summary", data={"csrf_token": token, "body": "心" * 800}).status_code == 302
    refused = web.post("/summary", data={"csrf_token": token, "body": "心" * 801})
    assert refused.status_code == 422 and "data-left>-1<" in refused.get_data(as_text=True).replace("</strong>", "<")
    data = png(uuid.uuid4().hex)
    created = web.post("/summary/images/new", data={"file_name": "照片.png", "file_size": str(len(data)),
                                                    "file_type": "image/png",
                                                    "file_sha256": spec_of(data)["sha256"]},
                       headers={"X-CSRFToken": token})
    assert created.status_code == 201, created.get_data(as_text=True)
    body = created.get_json()
    send_bytes(world.app, world.school, body["upload"], data, "照片.png", "image/png")
    assert web.post(body["uploaded_url"], headers={"X-CSRFToken": token}).status_code == 202
    world.drain()
    page = web.get("/summary").get_data(as_text=True)
    assert "照片.png" in page and "1 / 3" in page
    view = world.web(world.parent).get(f"/students/{world.student.id}/summary")
    assert view.status_code == 200 and "心" * 800 in view.get_data(as_text=True)
