"""The SaaS in a real browser (Debian's chromium): a school signs up on the apex with the subdomain
checked as it is typed, the contact follows the link mailed through a loopback SMTP server, an
operator approves the signup in the console, and the new administrator sets a password and signs in
on ``http://<slug>.localhost:<port>/``; an officer sees the figures of their own office's schools.
Screenshots go to ``test-artifacts/signup-*.png``."""
from __future__ import annotations

import re
import uuid

import pytest

from lp_saas import clock
from tests.browser.conftest import ARTIFACTS, PHONE, has_horizontal_scroll
from tests.test_offices import AS_OF, OFFICER_PASSWORD, make_office, make_officer, seeded_school  # noqa: F401
from tests.test_platform import OPERATOR_PASSWORD, make_operator, smtp_server  # noqa: F401

pytestmark = pytest.mark.browser


TAGS = {"test_school_signs_up_is_approved_and_its_admin_signs_in": "flow", "test_signup_page_on_a_phone": "phone",
        "test_officer_sees_the_charts_of_their_own_schools": "office"}


@pytest.fixture
def shot(request):
    """``shot(page, "step")`` saves test-artifacts/signup-<test>-<nn>-<step>.png (full page)."""
    ARTIFACTS.mkdir(exist_ok=True)
    tag = TAGS.get(request.node.name, request.node.name)
    for old in ARTIFACTS.glob(f"signup-{tag}-*.png"):
        old.unlink()
    counter = iter(range(1, 100))

    def take(page, step: str):
        page.screenshot(path=str(ARTIFACTS / f"signup-{tag}-{next(counter):02d}-{step}.png"), full_page=True)

    return take


def test_school_signs_up_is_approved_and_its_admin_signs_in(app, live_server, new_context, smtp_server,
                                                            drain_jobs, shot):
    slug = f"zb{uuid.uuid4().hex[:6]}"
    address = f"dean-{slug}@zbsh.edu.tw"
    operator = make_operator(app)

    page = new_context().new_page()
    page.goto(live_server.url("", "/"))
    shot(page, "landing")
    page.get_by_test_id("signup-cta").click()
    page.wait_for_url(re.compile(r"/signup$"))

    # the subdomain is checked as it is typed
    page.fill("#slug", "www")
    status = page.get_by_test_id("slug-status")
    page.wait_for_function("document.querySelector('[data-testid=slug-status]').textContent.includes('保留')")
    assert "bad" in status.get_attribute("class")
    page.fill("#slug", slug.upper())
    page.wait_for_function("document.querySelector('[data-testid=slug-status]').textContent.includes('可以使用')")
    assert page.input_value("#slug") == slug
    page.fill("#school_name", "國立竹北高級中學")
    page.fill("#school_code", "12345")  # one digit short: refused by the server, nothing stored
    page.select_option("#school_type", "general")
    page.fill("#contact_name", "張教務主任")
    page.fill("#contact_email", address)
    page.get_by_test_id("plan-standard").click()
    page.get_by_test_id("signup-submit").click()
    page.wait_for_selector("[data-testid=signup-errors]")
    assert "6 位數字" in page.content()
    shot(page, "form-error")
    page.fill("#school_code", "040302")
    shot(page, "form")
    page.get_by_test_id("signup-submit").click()
    page.wait_for_url(re.compile(r"/signup/sent$"))
    assert address in page.get_by_test_id("signup-sent").locator("xpath=..").inner_text()
    shot(page, "sent")

    # the contact opens the link from the mail the loopback SMTP server received
    link = smtp_server.link(address, "/signup/verify/")
    assert link.startswith(live_server.url("", "/signup/verify/"))
    page.goto(link)
    assert page.get_by_test_id("signup-verified").is_visible()
    shot(page, "verified")

    # an operator approves it in the console
    console = new_context().new_page()
    console.goto(live_server.url("", "/platform/login"))
    console.fill("#username", operator)
    console.fill("#password", OPERATOR_PASSWORD)
    console.get_by_test_id("login-submit").click()
    console.wait_for_url(re.compile(r"/console$"))
    row = console.get_by_test_id(f"signup-{slug}")
    assert "國立竹北高級中學" in row.inner_text() and "已確認電子郵件" in row.inner_text()
    shot(console, "console-pending")
    console.get_by_test_id(f"approve-{slug}").click()
    console.wait_for_selector(".flash-success")
    drain_jobs()
    console.reload()
    assert console.get_by_test_id(f"status-{slug}").inner_text() == "啟用"
    shot(console, "console-approved")

    # the new administrator chooses a password and signs in on the school's own subdomain
    welcome = smtp_server.link(address, "/welcome/")
    assert welcome.startswith(live_server.url(slug, "/welcome/"))
    page.goto(welcome)
    shot(page, "set-password")
    page.fill("#new_password", "Zhubei-admin-2024")
    page.fill("#confirm_password", "Zhubei-admin-2024")
    page.get_by_test_id("set-password").click()
    page.wait_for_url(live_server.url(slug, "/login"))
    page.fill("#username", "admin")
    page.fill("#password", "Zhubei-admin-2024")
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(live_server.url(slug, "/dashboard"))
    assert page.get_by_test_id("who").inner_text() == "張教務主任"
    assert page.get_by_test_id("school-name").inner_text() == "國立竹北高級中學"
    shot(page, "admin-dashboard")


def test_signup_page_on_a_phone(live_server, new_context, shot):
    page = new_context(viewport=PHONE).new_page()
    page.goto(live_server.url("", "/signup"))
    assert not has_horizontal_scroll(page)
    shot(page, "phone")


def test_officer_sees_the_charts_of_their_own_schools(app, live_server, new_context, make_school, seeded_school,
                                                       shot):
    school, markers = seeded_school
    neighbour = make_school(name="縣立鄰里高級中學")
    stranger = make_school(name="他縣市立高級中學")
    code = make_office(app, school, neighbour, name="示範縣政府教育處")
    make_office(app, stranger)
    officer = make_officer(app, code)
    page = new_context().new_page()
    with clock.frozen(AS_OF):
        page.goto(live_server.url("", "/platform/login"))
        page.fill("#username", officer)
        page.fill("#password", OFFICER_PASSWORD)
        page.get_by_test_id("login-submit").click()
        page.wait_for_url(live_server.url("", f"/office/{code}"))
        text = page.content()
        assert school.name in text and "縣立鄰里高級中學" in text and "他縣市立高級中學" not in text
        assert page.get_by_test_id("progress-chart").is_visible()
        for marker in markers:
            assert marker not in text
        shot(page, "office-dashboard")
        with page.expect_download() as download:
            page.get_by_test_id("csv-export").click()
        assert download.value.suggested_filename.startswith(f"office-{code}")
