"""A school's site in a real browser: branding, sign-in, one school's session never reaching another
school's subdomain, the language switch, and the login page on a phone."""
from __future__ import annotations

import re

import pytest

from tests.browser.conftest import PHONE, has_horizontal_scroll, hex_to_rgb
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

YUANLIN = {"name": "國立員林高級中學", "primary_color": "#7a1f3d"}
OTHER = {"name": "臺北市立松山高級中學", "primary_color": "#0f6b5c"}
CJK = re.compile(r"[\u4e00-\u9fff]")


def top_bar_colour(page) -> str:
    return page.eval_on_selector("header.topbar", "el => getComputedStyle(el).backgroundColor")


def sign_in(page, username: str, password: str = PASSWORD) -> None:
    page.fill("#username", username)
    page.fill("#password", password)
    page.get_by_test_id("login-submit").click()


@pytest.fixture
def two_schools(make_school, make_user):
    school_a = make_school("yuanlin", **YUANLIN)
    school_b = make_school("moe", **OTHER)
    admin_a = make_user(school_a, "school_admin", display_name="林怡君")
    admin_b = make_user(school_b, "school_admin", display_name="陳建宏")
    return school_a, admin_a, school_b, admin_b


def test_sign_in_stays_on_its_own_school(live_server, two_schools, context, screenshot):
    school_a, admin_a, school_b, admin_b = two_schools
    page = context.new_page()

    # School A's home: its name, its colour on the top bar.
    page.goto(live_server.url(school_a, "/"))
    assert page.get_by_test_id("school-title").inner_text() == YUANLIN["name"]
    assert page.get_by_test_id("school-name").inner_text() == YUANLIN["name"]
    assert top_bar_colour(page) == hex_to_rgb(YUANLIN["primary_color"])
    assert page.evaluate("document.documentElement.lang") == "zh-Hant-TW"
    screenshot(page, "a-home")

    # To the login page and in.
    page.get_by_test_id("home-sign-in").click()
    page.wait_for_url(re.compile(r"/login"))
    assert YUANLIN["name"] in page.locator("h1").inner_text()
    screenshot(page, "a-login")
    sign_in(page, admin_a.username)
    page.wait_for_url(live_server.url(school_a, "/dashboard"))
    assert page.get_by_test_id("who").inner_text() == "林怡君"
    assert top_bar_colour(page) == hex_to_rgb(YUANLIN["primary_color"])
    screenshot(page, "a-dashboard")

    # School B in the same browser: its own name and colour, and nobody signed in.
    page.goto(live_server.url(school_b, "/"))
    assert page.get_by_test_id("school-title").inner_text() == OTHER["name"]
    assert top_bar_colour(page) == hex_to_rgb(OTHER["primary_color"])
    assert page.get_by_test_id("who").count() == 0
    assert "林怡君" not in page.content()
    assert page.get_by_test_id("nav-sign-in").is_visible()
    screenshot(page, "b-home-signed-out")
    page.goto(live_server.url(school_b, "/dashboard"))
    assert page.url.startswith(live_server.url(school_b, "/login"))
    assert page.locator("#username").is_visible()
    screenshot(page, "b-dashboard-redirects-to-login")

    # Each school keeps its own cookie: A is still signed in.
    # Cookies are host-only: none is set for ".localhost", which every school would share.
    assert {c["domain"] for c in context.cookies()} <= {f"{school_a.slug}.localhost", f"{school_b.slug}.localhost"}
    page.goto(live_server.url(school_a, "/dashboard"))
    assert page.get_by_test_id("who").inner_text() == "林怡君"

    # And B's admin signs in at B without touching A's session.
    page.goto(live_server.url(school_b, "/login"))
    sign_in(page, admin_b.username)
    page.wait_for_url(live_server.url(school_b, "/dashboard"))
    assert page.get_by_test_id("who").inner_text() == "陳建宏"
    page.goto(live_server.url(school_a, "/dashboard"))
    assert page.get_by_test_id("who").inner_text() == "林怡君"


def test_login_page_fits_a_phone(live_server, make_school, make_user, new_context, screenshot):
    school = make_school("yuanlin", **YUANLIN)
    admin = make_user(school, "school_admin", display_name="林怡君")
    phone = new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = phone.new_page()

    page.goto(live_server.url(school, "/"))
    assert not has_horizontal_scroll(page)
    screenshot(page, "phone-home")
    page.goto(live_server.url(school, "/login"))
    assert not has_horizontal_scroll(page)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # The form's controls are comfortably tappable (at least 44 px high).
    for selector in ("#username", "#password", "[data-testid=login-submit]"):
        assert page.locator(selector).bounding_box()["height"] >= 44, selector
    screenshot(page, "phone-login")
    sign_in(page, admin.username)
    page.wait_for_url(live_server.url(school, "/dashboard"))
    assert not has_horizontal_scroll(page)
    screenshot(page, "phone-dashboard")


def test_wrong_password_is_refused_in_chinese(live_server, make_school, make_user, context, screenshot):
    school = make_school("yuanlin", **YUANLIN)
    admin = make_user(school, "school_admin")
    page = context.new_page()
    page.goto(live_server.url(school, "/login"))
    sign_in(page, admin.username, "not-the-password")
    error = page.get_by_test_id("login-error")
    assert error.inner_text() == "帳號或密碼不正確。"
    assert page.get_by_test_id("who").count() == 0
    assert page.locator("#username").input_value() == admin.username
    assert page.locator("#password").input_value() == ""
    screenshot(page, "wrong-password")


def test_chinese_without_any_language_preference(live_server, make_school, new_context):
    """A browser that states no language preference gets Traditional Chinese, the default locale.

    (Chromium re-adds its own Accept-Language to a request whose header is removed; an empty one
    states no preference and reaches the server.)
    """
    school = make_school("yuanlin", **YUANLIN)
    context = new_context(locale=None, extra_http_headers={"Accept-Language": ""})
    page = context.new_page()
    response = page.goto(live_server.url(school, "/login"))
    assert response.request.all_headers().get("accept-language", "") == ""
    assert page.evaluate("document.documentElement.lang") == "zh-Hant-TW"
    assert page.get_by_test_id("login-submit").inner_text() == "登入"
    assert page.locator("label[for=username]").inner_text() == "帳號"


def test_english_switch_is_remembered(live_server, make_school, context, screenshot):
    school = make_school("yuanlin", **YUANLIN)
    page = context.new_page()

    page.goto(live_server.url(school, "/login"))
    assert page.get_by_test_id("login-submit").inner_text() == "登入"
    page.get_by_test_id("lang-switch").click()
    page.wait_for_url(re.compile(r"lang=en"))
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.locator("h1").inner_text() == f"Sign in to {YUANLIN['name']}"
    assert page.get_by_test_id("login-submit").inner_text() == "Sign in"
    screenshot(page, "login-english")

    # The choice is kept in a cookie: plain URLs stay English, including after a failed sign-in.
    assert any(c["name"] == "lang" and c["value"] == "en" for c in context.cookies())
    page.goto(live_server.url(school, "/"))
    assert page.get_by_test_id("home-sign-in").inner_text() == "Sign in"
    page.goto(live_server.url(school, "/login"))
    sign_in(page, "nobody", "wrong-password")
    assert page.get_by_test_id("login-error").inner_text() == "The username or password is not correct."
    assert not CJK.search(page.get_by_test_id("login-submit").inner_text())

    # And back to Chinese.
    page.get_by_test_id("lang-switch").click()
    page.wait_for_url(re.compile(r"lang=zh-TW"))
    assert page.get_by_test_id("login-submit").inner_text() == "登入"
    page.goto(live_server.url(school, "/"))
    assert page.get_by_test_id("home-sign-in").inner_text() == "登入"


ADMIN_PAGES = [("dashboard", "/dashboard"), ("accounts", "/admin/users"), ("new-account", "/admin/users/new"),
               ("role-matrix", "/admin/roles"), ("audit-log", "/admin/audit"), ("password", "/account/password"),
               ("not-found", "/no-such-page")]


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_signed_in_pages_fit_the_screen(live_server, make_school, make_user, new_context, screenshot, viewport):
    """The school admin's pages: nothing wider than the screen (wide tables scroll inside their frame)."""
    school = make_school("yuanlin", **YUANLIN)
    admin = make_user(school, "school_admin", display_name="林怡君")
    make_user(school, "teacher", display_name="王大明")
    options = {"viewport": PHONE, "is_mobile": True, "has_touch": True} if viewport == "phone" else {}
    page = new_context(**options).new_page()
    page.goto(live_server.url(school, "/login"))
    sign_in(page, admin.username)
    page.wait_for_url(live_server.url(school, "/dashboard"))

    for name, path in ADMIN_PAGES:
        page.goto(live_server.url(school, path))
        assert page.get_by_test_id("who").inner_text() == "林怡君", path
        assert not has_horizontal_scroll(page), path
        screenshot(page, f"{viewport}-{name}")
    page.goto(live_server.url(school, "/admin/users"))
    page.get_by_role("link", name=admin.username).click()
    assert page.get_by_test_id("status").inner_text() == "啟用"
    assert not has_horizontal_scroll(page)
    screenshot(page, f"{viewport}-account-detail")
