"""The whole year of one course outcome in a real browser, as the people who use it: the student uploads a
PDF from the page (the bytes go straight to storage), the teacher certifies it from the queue, the student
selects it for the central database, and the parent sees all of it read-only. Screenshots are kept in
``test-artifacts/portfolio-*.png``."""
from __future__ import annotations

import re
from datetime import date

import pytest
import sqlalchemy as sa

from lp_saas.academics.models import Term
from lp_saas.database import db
from lp_saas.portfolio.models import SelectionItem
from tests.browser.conftest import ARTIFACTS, DESKTOP, PHONE, has_horizontal_scroll
from tests.browser.test_outcome_flow import outcome_row, sign_in, upload_from_page
from tests.conftest import as_tenant
from tests.test_outcomes import build_world, pdf

pytestmark = pytest.mark.browser


@pytest.fixture
def world(app, make_school, make_user, api_for, drain_jobs):
    """國立員林高中 on ``ylsh.localhost`` with its own rules (the 員林 template), build_world's people and
    courses, and the other semester of the year, so that the year's selection window (semester 1's
    start to semester 2's certification deadline) is open today."""
    world = build_world(app, make_school, make_user, api_for, drain_jobs, template="yuanlin", slug="ylsh",
                        name="國立員林高級中學")
    ad = world.year + 1911
    with as_tenant(app, world.school):
        other_semester = 2 if world.semester == 1 else 1
        if db.session.scalar(sa.select(Term.id).where(Term.tenant_id == world.school.id,
                                                      Term.academic_year == world.year,
                                                      Term.semester == other_semester)) is not None:
            return world
        if world.semester == 1:
            other = Term(tenant_id=world.school.id, academic_year=world.year, semester=2,
                         starts_on=date(ad + 1, 2, 1), ceremony_on=date(ad + 1, 7, 1), ends_on=date(ad + 1, 7, 31))
        else:
            other = Term(tenant_id=world.school.id, academic_year=world.year, semester=1,
                         starts_on=date(ad, 8, 1), ceremony_on=date(ad + 1, 1, 20), ends_on=date(ad + 1, 1, 31))
        db.session.add(other)
        db.session.commit()
    return world


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"portfolio-{name}.png"), full_page=True)


def test_upload_certify_select_and_the_parent_reads_along(live_server, world, new_context, tmp_path, drain_jobs):
    report = tmp_path / "專題報告.pdf"
    report.write_bytes(pdf("portfolio-flow"))
    title = "自然科學專題報告"
    assert world.school.slug == "ylsh"

    # the student, on a phone, at http://ylsh.localhost:PORT/, uploads the PDF from the page
    student = new_context(viewport=PHONE).new_page()
    sign_in(student, live_server, world.school, world.student)
    assert "國立員林高級中學" in student.locator("header").first.inner_text()
    student.goto(live_server.url(world.school, "/outcomes"))
    upload_from_page(student, world.course.code, title, report)
    drain_jobs()  # the verification job (a worker in the services run, in-process on the embedded one)
    student.reload()
    status = outcome_row(student, title).get_by_test_id("outcome-status")
    assert status.get_attribute("data-status") == "submitted"
    shot(student, "01-student-submitted")

    # the course teacher certifies it from the queue
    teacher = new_context(viewport=DESKTOP).new_page()
    sign_in(teacher, live_server, world.school, world.teacher)
    teacher.goto(live_server.url(world.school, "/outcomes/queue"))
    row = teacher.get_by_test_id("queue-item").filter(has_text=title)
    row.locator("input[name=comment]").fill("內容屬實，為本人完成")
    with teacher.expect_navigation():
        row.get_by_test_id("certify").click()
    assert "已認證" in teacher.locator(".flash-success").inner_text()
    shot(teacher, "02-teacher-certified")

    # the student selects it for the central database
    student.goto(live_server.url(world.school, "/selection"))
    student.wait_for_url(re.compile(rf"/selection/{world.year}$"))
    form = student.get_by_test_id("selection-form")
    choice = form.locator("label.choice").filter(has_text=title).locator("input[name=outcome_ids]")
    choice.check()
    assert form.locator('[data-counter="outcomes"]').inner_text().startswith("1")
    with student.expect_navigation():
        student.get_by_test_id("save-selection").click()
    assert form.locator("label.choice").filter(has_text=title).locator("input").is_checked()
    assert not has_horizontal_scroll(student)
    shot(student, "03-student-selected")

    # the parent signs in and lands on the child's portfolio: the outcome by name, certified, selected
    parent = new_context(viewport=PHONE).new_page()
    sign_in(parent, live_server, world.school, world.parent)
    parent.goto(live_server.url(world.school, "/portfolio"))
    parent.wait_for_url(re.compile(rf"/portfolio/students/{world.student.id}$"))
    assert "王小明" in parent.locator("h1").inner_text()
    item = parent.get_by_test_id("portfolio-outcome").filter(has_text=title)
    assert item.locator("[data-status]").get_attribute("data-status") == "certified"
    assert item.get_by_test_id("selected-tag").is_visible()
    assert "內容屬實，為本人完成" in item.inner_text()
    assert not has_horizontal_scroll(parent)
    shot(parent, "04-parent-portfolio")

    # the child's selection, read-only: no form, no checkbox, nothing to save
    parent.get_by_test_id("child-selection").click()
    parent.wait_for_url(re.compile(rf"/students/{world.student.id}/selection/{world.year}$"))
    assert title in parent.locator("main").inner_text()
    assert parent.get_by_test_id("selection-form").count() == 0
    assert parent.locator("input[type=checkbox]").count() == 0
    shot(parent, "05-parent-selection")

    # and the outcome itself, with no certify, return, revise or withdraw control
    parent.go_back()
    parent.get_by_test_id("portfolio-outcome").filter(has_text=title).locator("a").first.click()
    parent.wait_for_url(re.compile(r"/outcomes/[0-9a-f-]{36}$"))
    assert title in parent.locator("h1").inner_text()
    assert parent.locator("form[action*='/certify'], form[action*='/return'], form[action*='/revise'], "
                          "form[action*='/withdraw']").count() == 0
    shot(parent, "06-parent-outcome")

    # the parent cannot change the selection behind the page's back either: a form post from the
    # parent's own session, with a valid CSRF token taken from the page, is refused
    status = parent.evaluate("""async (url) => {
        const token = document.querySelector('input[name=csrf_token]').value;
        const body = new URLSearchParams({csrf_token: token});
        const response = await fetch(url, {method: 'POST', body, redirect: 'manual'});
        return response.status;
    }""", f"/selection/{world.year}")
    assert status == 403
    with as_tenant(world.app, world.school):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(SelectionItem).where(
            SelectionItem.tenant_id == world.school.id, SelectionItem.student_id == world.student.id)) == 1
