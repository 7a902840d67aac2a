"""課程學習成果 in a real browser: a student uploads a PDF from the page (the bytes go straight to storage:
the app's ``/_storage/upload`` on the embedded run, the S3 server in the services run), the file is
checked, the teacher certifies it from the queue, and the student sees 已認證. A disguised file is
rejected with its reason. Screenshots: ``test-artifacts/outcome-*.png``."""
from __future__ import annotations

import re

import pytest

from tests.browser.conftest import ARTIFACTS, DESKTOP, PHONE, has_horizontal_scroll
from tests.conftest import PASSWORD
from tests.test_outcomes import build_world, pdf

pytestmark = pytest.mark.browser


@pytest.fixture
def world(app, make_school, make_user, api_for, drain_jobs):
    return build_world(app, make_school, make_user, api_for, drain_jobs)


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"outcome-{name}.png"), full_page=True)


def sign_in(page, live_server, school, user) -> None:
    page.goto(live_server.url(school, "/login"))
    page.fill("#username", user.username)
    page.fill("#password", PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(re.compile(r"/dashboard|/$"))


def upload_from_page(page, course_code: str, title: str, path) -> None:
    course = page.get_by_test_id(f"course-{course_code}")
    form = course.get_by_test_id("upload-form")
    if not form.is_visible():
        course.get_by_test_id("new-outcome").click()
    form.locator("input[name=title]").fill(title)
    form.locator("textarea[name=description]").fill("閱讀《老人與海》後的心得與反思，共三頁。")
    form.get_by_test_id("file-input").set_input_files(str(path))
    with page.expect_navigation():
        form.get_by_test_id("upload-submit").click()


def outcome_row(page, title: str):
    return page.get_by_test_id("outcome").filter(has_text=title)


def test_a_student_uploads_and_the_teacher_certifies(live_server, world, new_context, tmp_path, drain_jobs):
    report = tmp_path / "閱讀心得.pdf"
    report.write_bytes(pdf("browser"))
    student_page = new_context(viewport=PHONE).new_page()
    sign_in(student_page, live_server, world.school, world.student)
    student_page.goto(live_server.url(world.school, "/outcomes"))
    assert student_page.get_by_test_id("term").is_visible()
    assert "0 / 10" in student_page.get_by_test_id("cap").inner_text().replace("\n", " ")
    assert not has_horizontal_scroll(student_page)
    shot(student_page, "01-student-before")

    upload_from_page(student_page, world.course.code, "老人與海閱讀心得", report)
    status = outcome_row(student_page, "老人與海閱讀心得").get_by_test_id("outcome-status")
    if world.app.config.get("REDIS_URL"):  # services run: the check waits for a worker
        assert status.get_attribute("data-status") == "verifying"
        assert "檢查中" in status.inner_text()
        shot(student_page, "02-student-verifying")
        drain_jobs()
        student_page.reload()
    assert status.get_attribute("data-status") == "submitted"
    assert "已送出" in status.inner_text()
    assert not has_horizontal_scroll(student_page)
    shot(student_page, "03-student-submitted")

    teacher_page = new_context(viewport=DESKTOP).new_page()
    sign_in(teacher_page, live_server, world.school, world.teacher)
    teacher_page.goto(live_server.url(world.school, "/outcomes/queue"))
    row = teacher_page.get_by_test_id("queue-item").filter(has_text="老人與海閱讀心得")
    assert "王小明" in row.inner_text()
    assert teacher_page.get_by_test_id("certification-deadline").first.is_visible()
    shot(teacher_page, "04-teacher-queue")
    row.locator("a.outcome-title").click()  # the outcome's own page: everything about it, audited as a read
    teacher_page.wait_for_url(re.compile(r"/outcomes/[0-9a-f-]{36}$"))
    assert "老人與海閱讀心得" in teacher_page.locator("h1").inner_text()
    shot(teacher_page, "04b-teacher-detail")
    teacher_page.go_back()
    with teacher_page.expect_popup() as popup:  # open the file the student sent
        row.get_by_test_id("open-file").click()
    popup.value.close()
    row.locator("input[name=comment]").fill("確為本人作品")
    with teacher_page.expect_navigation():
        row.get_by_test_id("certify").click()
    assert "已認證" in teacher_page.locator(".flash-success").inner_text()
    shot(teacher_page, "05-teacher-certified")

    student_page.reload()
    status = outcome_row(student_page, "老人與海閱讀心得").get_by_test_id("outcome-status")
    assert status.get_attribute("data-status") == "certified"
    assert "已認證" in status.inner_text()
    assert "確為本人作品" in outcome_row(student_page, "老人與海閱讀心得").inner_text()
    shot(student_page, "06-student-certified")


def test_a_disguised_file_is_rejected_with_its_reason(live_server, world, new_context, tmp_path, drain_jobs):
    fake = tmp_path / "作業.pdf"
    fake.write_bytes(b"this is plain text pretending to be a PDF\n")
    page = new_context(viewport=DESKTOP).new_page()
    sign_in(page, live_server, world.school, world.student)
    page.goto(live_server.url(world.school, "/outcomes"))
    upload_from_page(page, world.course.code, "偽裝的檔案", fake)
    drain_jobs()
    page.reload()
    row = outcome_row(page, "偽裝的檔案")
    assert row.get_by_test_id("outcome-status").get_attribute("data-status") == "file_rejected"
    assert "檔案未通過檢查" in row.get_by_test_id("outcome-reason").inner_text()
    assert row.get_by_test_id("withdraw").is_visible()
    shot(page, "07-student-rejected")

    # a refused description comes back beside the form, and nothing is stored
    before = world.counts()
    form = page.get_by_test_id(f"course-{world.course.code}").get_by_test_id("upload-form")
    if not form.is_visible():
        page.get_by_test_id(f"course-{world.course.code}").get_by_test_id("new-outcome").click()
    form.locator("input[name=title]").fill("太長的簡述")
    form.locator("textarea[name=description]").evaluate("(el, v) => { el.removeAttribute('maxlength'); el.value = v; }",
                                                        "字" * 101)
    form.locator("input[name=link]").fill("https://example.org/work")
    form.get_by_test_id("upload-submit").click()
    error = form.locator("[data-field-error=description]")
    error.wait_for(state="visible")
    assert "100" in error.inner_text()
    assert world.counts() == before
    shot(page, "08-student-refused")
