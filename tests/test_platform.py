"""The SaaS around the schools: signup on the apex, e-mail verification over SMTP (a loopback
aiosmtpd server), approval by an operator (CLI and console), the first administrator's account,
suspension, plans and quotas, and platform users' sessions kept apart from the schools'."""
from __future__ import annotations

import email
import re
import socket
import uuid
from email import policy

import pytest
import sqlalchemy as sa

from lp_saas.database import db
from tests.conftest import PASSWORD, as_tenant, csrf_token, login, post_form, school_client

OPERATOR_PASSWORD = "Operator-pass-42"


# --- fixtures ---------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MailCatcher:
    """What the loopback SMTP server received."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def to(self, address):
        return [m for m in self.messages if m["To"] == address]

    def link(self, address, pattern):
        """The last link matching ``pattern`` in the mails to ``address``."""
        for message in reversed(self.to(address)):
            found = re.search(r"https?://\S*" + pattern + r"\S*", message.get_content())
            if found:
                return found.group(0)
        raise AssertionError(f"no link {pattern} in the mail to {address}: {[m['Subject'] for m in self.messages]}")


@pytest.fixture
def smtp_server(app, monkeypatch):
    """An SMTP server on 127.0.0.1 (aiosmtpd), and the app configured to send through it."""
    from aiosmtpd.controller import Controller

    catcher = MailCatcher()
    port = _free_port()
    controller = Controller(catcher, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setitem(app.config, "MAIL_SMTP_HOST", "127.0.0.1")
    monkeypatch.setitem(app.config, "MAIL_SMTP_PORT", port)
    monkeypatch.setitem(app.config, "MAIL_FROM", "noreply@lp-saas.localhost")
    try:
        yield catcher
    finally:
        controller.stop()


@pytest.fixture
def apex(app):
    return school_client(app, "")


def make_operator(app, username=None, password=OPERATOR_PASSWORD):
    from lp_saas.platform import services as platform

    with app.app_context():
        user = platform.create_platform_user("test:fixture", username=username or f"op{uuid.uuid4().hex[:8]}",
                                             password=password, kind="operator", display_name="值班工程師")
        db.session.commit()
        return user.username


@pytest.fixture
def operator_client(app):
    username = make_operator(app)
    client = school_client(app, "")
    response = post_form(client, "/platform/login", {"username": username, "password": OPERATOR_PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)[:400]
    return client


def unique_slug(prefix="sch"):
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def signup_body(**overrides):
    body = {"school_name": "國立新竹高級中學", "school_code": f"8{uuid.uuid4().int % 10**5:05d}", "school_type": "general",
            "slug": unique_slug(), "contact_name": "王教務", "contact_email": f"dean{uuid.uuid4().hex[:6]}@hcsh.edu.tw",
            "plan": "standard"}
    body.update(overrides)
    return body


def _count(app, model, *where):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def post_json(client, path, body, **headers):
    return client.post(path, json=body, headers=headers)


# --- the whole flow -----------------------------------------------------------------------------------

def test_signup_verify_approve_and_the_first_admin_signs_in(app, apex, smtp_server):
    from lp_saas.platform.models import Signup, Subscription
    from lp_saas.tenants.models import Tenant

    body = signup_body()
    slug, address = body["slug"], body["contact_email"]
    response = post_json(apex, "/api/v1/signups", body)
    assert response.status_code == 202, response.get_json()
    created = response.get_json()
    assert created["status"] == "unverified" and uuid.UUID(created["id"])
    # no school yet: the subdomain is only held by the signup
    assert school_client(app, slug).get("/").status_code == 404
    assert post_json(apex, "/api/v1/signups", signup_body(slug=slug)).status_code == 422

    # the verification mail went through the SMTP server; an operator cannot approve before it is used
    assert smtp_server.to(address) and "國立新竹高級中學" in smtp_server.to(address)[0]["Subject"]
    refused = app.test_cli_runner().invoke(args=["tenants", "approve", slug])
    assert refused.exit_code != 0 and "電子郵件" in refused.output
    with app.app_context():
        assert db.session.scalar(sa.select(Tenant).where(Tenant.slug == slug)) is None

    link = smtp_server.link(address, "/signup/verify/")
    page = apex.get(link.split("localhost", 1)[1])
    assert page.status_code == 200 and "國立新竹高級中學" in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Signup, uuid.UUID(created["id"])).status == "verified"

    approved = app.test_cli_runner().invoke(args=["tenants", "approve", slug])
    assert approved.exit_code == 0, approved.output
    assert slug in approved.output and address in approved.output
    with app.app_context():
        tenant = db.session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
        assert tenant.status == "active" and tenant.school_code == body["school_code"]
        assert db.session.get(Subscription, tenant.id).plan == "standard"
    again = app.test_cli_runner().invoke(args=["tenants", "approve", slug])
    assert again.exit_code == 0 and "nothing changed" in again.output

    # the contact's set-password link, once
    welcome = smtp_server.link(address, "/welcome/")
    assert welcome.startswith(f"http://{slug}.localhost/")
    site = school_client(app, slug)
    path = welcome.split("localhost", 1)[1]
    assert site.get(path).status_code == 200
    weak = post_form(site, path, {"new_password": "12345678", "confirm_password": "12345678"})
    assert weak.status_code == 422
    done = post_form(site, path, {"new_password": "New-admin-pass-1", "confirm_password": "New-admin-pass-1"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")
    assert site.get(path).status_code == 404  # used

    response = login(site, "admin", "New-admin-pass-1")
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    dashboard = site.get("/dashboard").get_data(as_text=True)
    assert "王教務" in dashboard
    from lp_saas.roles import permissions

    with app.app_context():
        tenant = db.session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
    with as_tenant(app, tenant):
        from lp_saas.accounts.services import find_user

        admin = find_user(tenant.id, "admin")
        assert [r.key for r in permissions.user_roles(admin)] == ["school_admin"]
        assert admin.email == address


def test_console_approval_dispatches_the_job(app, apex, operator_client, smtp_server, drain_jobs):
    from lp_saas.platform import services as platform
    from lp_saas.platform.models import Signup
    from lp_saas.tenants.models import Tenant

    body = signup_body(school_name="臺中市立文華高級中等學校", plan="large")
    assert post_json(apex, "/api/v1/signups", body).status_code == 202
    console = operator_client.get("/console").get_data(as_text=True)
    assert body["slug"] in console and "臺中市立文華高級中等學校" in console
    with app.app_context():
        signup = db.session.scalar(sa.select(Signup).where(Signup.slug == body["slug"]))
        signup_id = signup.id
    # unverified: refused with a clear message, nothing created
    token = csrf_token(operator_client, "/console")
    refused = operator_client.post(f"/console/signups/{signup_id}/approve", data={"csrf_token": token},
                                   follow_redirects=True)
    assert "尚未確認" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(Tenant).where(Tenant.slug == body["slug"])) is None
        platform.verify_signup(platform.verification_token(db.session.get(Signup, signup_id)))
        db.session.commit()
    response = operator_client.post(f"/console/signups/{signup_id}/approve", data={"csrf_token": token})
    assert response.status_code == 302
    drain_jobs()
    with app.app_context():
        tenant = db.session.scalar(sa.select(Tenant).where(Tenant.slug == body["slug"]))
        assert tenant.status == "active"
    assert smtp_server.link(body["contact_email"], "/welcome/")
    page = operator_client.get("/console").get_data(as_text=True)
    assert f'data-testid="status-{body["slug"]}"' in page and "大型學校方案" in page


def test_without_smtp_mail_is_logged_and_shown_in_the_console(app, apex, operator_client, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_SMTP_HOST", None)
    body = signup_body()
    assert post_json(apex, "/api/v1/signups", body).status_code == 202
    page = operator_client.get("/console/mails").get_data(as_text=True)
    assert body["contact_email"] in page and "/signup/verify/" in page


def test_signup_page_creates_a_signup_and_shows_errors_in_chinese(app, apex, smtp_server):
    from lp_saas.platform.models import Signup

    page = apex.get("/signup").get_data(as_text=True)
    assert "申請" in page and 'data-check-url="/api/v1/signups/check-slug"' in page
    before = _count(app, Signup)
    bad = post_form(apex, "/signup", {"school_name": "測試高中", "school_code": "12a", "school_type": "general",
                                      "slug": "www", "contact_name": "林老師", "contact_email": "not-an-email",
                                      "plan": "gold"})
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    for message in ("6 位數字", "保留", "電子郵件", "方案"):
        assert message in text, message
    assert _count(app, Signup) == before
    body = signup_body()
    good = post_form(apex, "/signup", body)
    assert good.status_code == 302 and good.headers["Location"].endswith("/signup/sent")
    sent = apex.get("/signup/sent").get_data(as_text=True)
    assert body["contact_email"] in sent
    assert _count(app, Signup, Signup.slug == body["slug"]) == 1


# --- bad input ------------------------------------------------------------------------------------------

@pytest.fixture
def taken_slug(make_school):
    return make_school().slug


@pytest.mark.parametrize("field, value, zh, en", [
    ("slug", "TAKEN", "已被其他學校使用", "already taken"),
    ("slug", "www", "保留", "reserved"),
    ("slug", "admin", "保留", "reserved"),
    ("slug", "a_b", "小寫英文字母", "lowercase letters"),
    ("slug", "", "請輸入子網域", "Enter a subdomain"),
    ("school_code", "12345", "6 位數字", "6 digits"),
    ("school_code", "12345a", "6 位數字", "6 digits"),
    ("school_code", "074308", "已在使用", "already uses the platform"),  # make_school's code: a school has it
    ("contact_email", "dean@", "電子郵件", "e-mail address"),
    ("contact_email", "dean at school.tw", "電子郵件", "e-mail address"),
    ("plan", "platinum", "方案", "plan"),
    ("school_name", "", "學校名稱", "school's name"),
    ("contact_name", "<script>", "角括號", "angle brackets"),
    ("school_type", "university", "學校類型", "school type"),
])
def test_bad_signups_are_refused_with_a_clear_message_and_store_nothing(app, apex, taken_slug, smtp_server,
                                                                        field, value, zh, en):
    from lp_saas.platform.models import PlatformMail, Signup

    value = taken_slug if value == "TAKEN" else value
    before = (_count(app, Signup), _count(app, PlatformMail))
    for lang, expected in (("zh-TW", zh), ("en", en)):
        response = post_json(apex, "/api/v1/signups", signup_body(**{field: value}), **{"Accept-Language": lang})
        assert response.status_code == 422, response.get_json()
        error = response.get_json()["error"]
        assert error["code"] == "validation_failed"
        assert expected in error["details"][field], (lang, error)
    assert (_count(app, Signup), _count(app, PlatformMail)) == before
    assert not smtp_server.messages


def test_unknown_fields_and_non_json_are_refused(apex):
    assert post_json(apex, "/api/v1/signups", {**signup_body(), "status": "approved"}).status_code == 422
    assert apex.post("/api/v1/signups", data="x").status_code == 415


def test_check_slug_answers_as_it_is_typed(app, apex, taken_slug):
    def check(slug, lang="zh-TW"):
        return apex.get("/api/v1/signups/check-slug", query_string={"slug": slug},
                        headers={"Accept-Language": lang}).get_json()

    free = check(unique_slug())
    assert free["valid"] and free["available"] and free["code"] == "ok" and "可以使用" in free["reason"]
    assert check("www") == {"slug": "www", "valid": False, "available": False, "code": "reserved",
                            "reason": check("www")["reason"]}
    assert check("ab")["code"] == "invalid"
    taken = check(taken_slug, "en")
    assert taken["valid"] and not taken["available"] and taken["code"] == "taken"
    assert "already taken" in taken["reason"]
    held = unique_slug()
    assert post_json(apex, "/api/v1/signups", signup_body(slug=held)).status_code == 202
    assert check(held)["code"] == "requested"
    assert check("MixedCase")["slug"] == "mixedcase"


def test_a_stale_unverified_signup_stops_holding_its_subdomain(app, apex):
    from datetime import timedelta

    from lp_saas.platform.models import Signup

    slug = unique_slug()
    assert post_json(apex, "/api/v1/signups", signup_body(slug=slug)).status_code == 202
    with app.app_context():
        old = db.session.scalar(sa.select(Signup).where(Signup.slug == slug))
        old.created_at = old.created_at - timedelta(hours=49)
        db.session.commit()
    again = post_json(apex, "/api/v1/signups", signup_body(slug=slug))
    assert again.status_code == 202
    with app.app_context():
        statuses = sorted(db.session.scalars(sa.select(Signup.status).where(Signup.slug == slug)))
    assert statuses == ["expired", "unverified"]


def test_tenants_create_leaves_a_subdomain_held_by_an_open_signup_alone(app, apex):
    slug = unique_slug()
    assert post_json(apex, "/api/v1/signups", signup_body(slug=slug)).status_code == 202
    refused = app.test_cli_runner().invoke(args=["tenants", "create", "--slug", slug, "--name", "搶先高中",
                                                 "--code", "123456"])
    assert refused.exit_code != 0 and "signup" in refused.output
    with app.app_context():
        from lp_saas.tenants.services import find_by_slug

        assert find_by_slug(slug) is None


def test_verification_links_cannot_be_forged(app, apex):
    from itsdangerous import URLSafeTimedSerializer

    assert apex.get("/signup/verify/not-a-token").status_code == 404
    forged = URLSafeTimedSerializer("another-key", salt="lp-signup-verify").dumps(str(uuid.uuid4()))
    assert apex.get(f"/signup/verify/{forged}").status_code == 404


def test_rejecting_frees_the_subdomain(app, apex, operator_client):
    from lp_saas.platform.models import Signup

    body = signup_body()
    assert post_json(apex, "/api/v1/signups", body).status_code == 202
    with app.app_context():
        signup_id = db.session.scalar(sa.select(Signup.id).where(Signup.slug == body["slug"]))
    response = post_form(operator_client, f"/console/signups/{signup_id}/reject", {"reason": "非高級中等學校"},
                         form_path="/console")
    assert response.status_code == 302
    again = apex.get("/api/v1/signups/check-slug", query_string={"slug": body["slug"]}).get_json()
    assert again["available"]


# --- the platform is the apex's, the schools are theirs ----------------------------------------------------

def test_platform_routes_exist_on_the_apex_only(app, make_school):
    school = make_school()
    site = school_client(app, school)
    for path in ("/signup", "/console", "/platform/login", "/office", "/api/v1/signups/check-slug?slug=abc"):
        assert site.get(path).status_code == 404, path
    assert site.post("/api/v1/signups", json=signup_body()).status_code == 404
    assert site.post("/api/v1/platform/token", json={"username": "x", "password": "y"}).status_code == 404
    apex = school_client(app, "")
    for path in ("/login", "/admin/branding", "/governance", "/branding/logo", "/welcome/x"):
        assert apex.get(path).status_code == 404, path


def test_console_needs_an_operator(app, make_school, make_user, signed_in):
    apex = school_client(app, "")
    response = apex.get("/console")
    assert response.status_code == 302 and "/platform/login" in response.headers["Location"]
    # a school's signed-in administrator, with the same browser, is nobody on the apex
    school = make_school()
    admin = make_user(school, "school_admin")
    client = signed_in(school, admin)
    shared = school_client(app, "", client=client._client)
    assert shared.get("/console").status_code == 302


def test_sessions_and_tokens_do_not_cross_between_apex_and_schools(app, make_school, make_user, api_for):
    school = make_school()
    admin = make_user(school, "school_admin")
    operator = make_operator(app)
    apex = school_client(app, "")
    assert post_form(apex, "/platform/login", {"username": operator, "password": OPERATOR_PASSWORD}).status_code == 302
    assert apex.get("/console").status_code == 200
    # the apex's cookie, copied by hand to the school's host, signs nobody in there
    cookie = apex.get_cookie("session", domain="localhost")
    site = school_client(app, school)
    site.set_cookie("session", cookie.value, domain=f"{school.slug}.localhost")
    assert site.get("/dashboard").status_code == 302
    # and a school's cookie is nobody on the apex
    school_site = school_client(app, school)
    assert login(school_site, admin.username).status_code == 302
    school_cookie = school_site.get_cookie("session", domain=f"{school.slug}.localhost")
    other = school_client(app, "")
    other.set_cookie("session", school_cookie.value, domain="localhost")
    assert other.get("/console").status_code == 302
    # tokens: a platform token is nothing at a school, a school's token nothing on the apex
    platform_token = post_json(apex, "/api/v1/platform/token",
                               {"username": operator, "password": OPERATOR_PASSWORD}).get_json()["token"]
    assert api_for(school).get("/api/v1/me", headers={"Authorization": f"Bearer {platform_token}"}).status_code == 401
    school_token = api_for(school, admin).token
    assert apex.get("/api/v1/platform/me", headers={"Authorization": f"Bearer {school_token}"}).status_code == 401
    me = apex.get("/api/v1/platform/me", headers={"Authorization": f"Bearer {platform_token}"}).get_json()
    assert me == {"username": operator, "display_name": "值班工程師", "role": "operator", "office": None}
    # a platform user's credentials do not exist at a school
    assert api_for(school).post("/api/v1/auth/token",
                                {"username": operator, "password": OPERATOR_PASSWORD}).status_code == 401


def test_platform_login_lockout_and_logout(app):
    operator = make_operator(app)
    apex = school_client(app, "")
    for _ in range(app.config["LP_LOGIN_MAX_FAILURES"]):
        response = post_form(apex, "/platform/login", {"username": operator, "password": "wrong-password"})
    assert response.status_code == 423 and "鎖定" in response.get_data(as_text=True)
    locked = post_form(apex, "/platform/login", {"username": operator, "password": OPERATOR_PASSWORD})
    assert locked.status_code == 423
    from lp_saas.platform.models import PlatformUser

    with app.app_context():
        user = db.session.scalar(sa.select(PlatformUser).where(PlatformUser.username == operator))
        user.locked_until = None
        db.session.commit()
    assert post_form(apex, "/platform/login", {"username": operator, "password": OPERATOR_PASSWORD}).status_code == 302
    assert post_form(apex, "/platform/logout", {}, form_path="/console").status_code == 302
    assert apex.get("/console").status_code == 302


# --- suspension, plans and quotas ------------------------------------------------------------------------

def test_suspend_and_resume_by_cli_keep_the_data(app, make_school, make_user, api_for):
    school = make_school()
    admin = make_user(school, "school_admin")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["tenants", "suspend", school.slug, "--reason", "未續約"])
    assert result.exit_code == 0, result.output
    page = school_client(app, school).get("/")
    assert page.status_code == 404 and "暫停" in page.get_data(as_text=True)
    assert api_for(school).post("/api/v1/auth/token", {"username": admin.username, "password": PASSWORD}
                                ).get_json()["error"]["code"] == "school_suspended"
    assert "nothing changed" in runner.invoke(args=["tenants", "suspend", school.slug]).output
    assert runner.invoke(args=["tenants", "resume", school.slug]).exit_code == 0
    assert api_for(school, admin).get("/api/v1/me").get_json()["username"] == admin.username
    assert runner.invoke(args=["tenants", "suspend", "nosuchschool"]).exit_code != 0
    from lp_saas.audit.models import AuditEvent

    with as_tenant(app, school):
        actions = set(db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.tenant_id == school.id)))
    assert {"tenant.suspended", "tenant.resumed"} <= actions


def test_suspend_and_resume_in_the_console(app, make_school, operator_client):
    school = make_school()
    response = post_form(operator_client, f"/console/schools/{school.slug}/suspend", {"reason": "欠費"},
                         form_path="/console")
    assert response.status_code == 302
    assert school_client(app, school).get("/").status_code == 404
    page = operator_client.get("/console").get_data(as_text=True)
    assert "欠費" in page
    post_form(operator_client, f"/console/schools/{school.slug}/resume", {}, form_path="/console")
    assert school_client(app, school).get("/").status_code == 200


def _subscribe(app, school, plan="small", **quotas):
    from lp_saas.platform import services as platform
    from lp_saas.platform.models import Subscription
    from lp_saas.tenants.models import Tenant

    with app.app_context():
        platform.set_plan(db.session.get(Tenant, school.id), plan, "test:fixture")
        subscription = db.session.get(Subscription, school.id)
        for key, value in quotas.items():
            setattr(subscription, key, value)
        db.session.commit()


def test_student_quota_is_enforced_with_a_clear_message(app, make_school, make_user, api_for):
    from lp_saas.platform.services import QuotaExceeded, check_student_quota, student_count
    from lp_saas.tenants.models import Tenant

    school = make_school()
    registrar = make_user(school, "registrar")
    make_user(school, "student")
    make_user(school, "teacher")
    _subscribe(app, school, max_students=2)
    with as_tenant(app, school):
        tenant = db.session.get(Tenant, school.id)
        assert student_count(tenant) == 1
        check_student_quota(tenant)
        with pytest.raises(QuotaExceeded):
            check_student_quota(tenant, adding=2)
    api = api_for(school, registrar)
    ok = api.post("/api/v1/users", {"username": "stu2", "display_name": "學生乙", "roles": ["student"]})
    assert ok.status_code == 201, ok.get_json()
    full = api.post("/api/v1/users", {"username": "stu3", "display_name": "學生丙", "roles": ["student"]})
    assert full.status_code == 409
    assert full.get_json()["error"]["code"] == "student_quota_exceeded"
    assert "2" in full.get_json()["error"]["message"] and "方案" in full.get_json()["error"]["message"]
    staff = api.post("/api/v1/users", {"username": "teacher9", "display_name": "老師", "roles": ["teacher"]})
    assert staff.status_code == 201  # staff accounts do not count


def test_the_student_quota_cannot_be_bypassed_by_roles_or_re_enabling(app, make_school, make_user, api_for):
    school = make_school()
    admin = make_user(school, "school_admin")
    make_user(school, "student")
    teacher = make_user(school, "teacher")
    gone = make_user(school, "student")
    api = api_for(school, admin)
    assert api.patch(f"/api/v1/users/{gone.id}", {"status": "disabled"}).status_code == 200
    _subscribe(app, school, max_students=1)
    turned = api.patch(f"/api/v1/users/{teacher.id}", {"roles": ["student"]})
    assert turned.status_code == 409 and turned.get_json()["error"]["code"] == "student_quota_exceeded"
    back = api.patch(f"/api/v1/users/{gone.id}", {"status": "active"})
    assert back.status_code == 409 and back.get_json()["error"]["code"] == "student_quota_exceeded"
    assert api.get(f"/api/v1/users/{teacher.id}").get_json()["roles"] == ["teacher"]  # nothing half-done
    assert api.get(f"/api/v1/users/{gone.id}").get_json()["status"] == "disabled"


def test_uploads_stop_when_the_schools_storage_is_full(app, make_school, make_user, api_for, drain_jobs):
    from lp_saas.portfolio.models import CourseOutcome, StoredFile
    from tests.test_outcomes import build_world, pdf, spec_of

    world = build_world(app, make_school, make_user, api_for, drain_jobs)
    data = pdf("quota")
    _subscribe(app, world.school, max_storage_bytes=len(data) + 10)
    first = world.api(world.student).post("/api/v1/outcomes", {
        "course_id": str(world.course.id), "title": "第一份", "description": "", "file": spec_of(data)})
    assert first.status_code == 201, first.get_json()
    with as_tenant(app, world.school):
        before = (db.session.scalar(sa.select(sa.func.count()).select_from(CourseOutcome)),
                  db.session.scalar(sa.select(sa.func.count()).select_from(StoredFile)))
    full = world.api(world.student).post("/api/v1/outcomes", {
        "course_id": str(world.course.id), "title": "第二份", "description": "", "file": spec_of(data)})
    assert full.status_code == 409
    error = full.get_json()["error"]
    assert error["code"] == "storage_quota_exceeded" and "方案" in error["message"]
    with as_tenant(app, world.school):
        assert (db.session.scalar(sa.select(sa.func.count()).select_from(CourseOutcome)),
                db.session.scalar(sa.select(sa.func.count()).select_from(StoredFile))) == before
    # a link takes no storage
    assert world.api(world.student).post("/api/v1/outcomes", {
        "course_id": str(world.course.id), "title": "連結", "description": "",
        "link": "https://example.org/w"}).status_code == 201


def test_storage_quota_counts_files_and_refuses_more(app, make_school, make_user):
    from datetime import datetime, timedelta, timezone

    from lp_saas.platform.services import QuotaExceeded, check_storage_quota, storage_used
    from lp_saas.portfolio.models import StoredFile
    from lp_saas.tenants.models import Tenant

    school = make_school()
    student = make_user(school, "student")
    _subscribe(app, school, max_storage_bytes=10_000)
    with as_tenant(app, school):
        now = datetime.now(timezone.utc)
        for size, status in ((3000, "verified"), (2000, "pending"), (99999, "rejected")):
            db.session.add(StoredFile(tenant_id=school.id, owner_kind="outcome", owner_id=uuid.uuid4(),
                                      student_id=student.id, key=f"outcomes/{uuid.uuid4()}", filename="a.pdf",
                                      file_type="pdf", content_type="application/pdf", declared_size=size,
                                      declared_sha256="0" * 64, status=status,
                                      size=size if status == "verified" else None, upload_expires_at=now + timedelta(hours=1)))
        db.session.commit()
        tenant = db.session.get(Tenant, school.id)
        assert storage_used(tenant) == 5000
        check_storage_quota(tenant, 5000)
        with pytest.raises(QuotaExceeded) as refused:
            check_storage_quota(tenant, 5001)
        assert refused.value.code == "storage_quota_exceeded"


def test_console_shows_plan_students_and_storage(app, make_school, make_user, operator_client):
    school = make_school(name="國立臺南第一高級中學")
    make_user(school, "student")
    make_user(school, "student")
    _subscribe(app, school, "small")
    page = operator_client.get("/console").get_data(as_text=True)
    row = page[page.index(f'data-testid="school-{school.slug}"'):]
    row = row[:row.index("</tr>")]
    assert "國立臺南第一高級中學" in row and "小型學校方案" in row
    assert re.search(rf'data-testid="students-{school.slug}">2<', row)
    response = post_form(operator_client, f"/console/schools/{school.slug}/plan", {"plan": "large"},
                         form_path="/console")
    assert response.status_code == 302
    assert "大型學校方案" in operator_client.get("/console").get_data(as_text=True)
    bad = post_form(operator_client, f"/console/schools/{school.slug}/plan", {"plan": "gold"}, form_path="/console",
                    follow_redirects=True)
    assert "未知的方案" in bad.get_data(as_text=True)


def test_signups_per_client_are_limited(app, apex, monkeypatch):
    monkeypatch.setitem(app.config, "LP_SIGNUP_LIMIT", "2 per hour")
    # refused signups do not count, stored ones do: the third stored signup waits
    for _ in range(3):
        assert post_json(apex, "/api/v1/signups", signup_body(plan="gold")).status_code == 422
    for _ in range(2):
        assert post_json(apex, "/api/v1/signups", signup_body()).status_code == 202
    refused = post_json(apex, "/api/v1/signups", signup_body())
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "too_many_signups" and "申請" in refused.get_json()["error"]["message"]


def test_approve_finishes_a_pending_school_without_a_signup(app):
    from lp_saas.tenants import services
    from lp_saas.tenants.models import Tenant

    slug = unique_slug("pend")
    with app.app_context():
        services.create_tenant(slug=slug, name="待審高中", school_code="123456", status="pending")
        db.session.commit()
    assert school_client(app, slug).get("/").status_code == 404
    result = app.test_cli_runner().invoke(args=["tenants", "approve", slug])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalar(sa.select(Tenant.status).where(Tenant.slug == slug)) == "active"
    assert school_client(app, slug).get("/").status_code == 200
    assert app.test_cli_runner().invoke(args=["tenants", "approve", "nosuchschool"]).exit_code != 0


def test_platform_pages_speak_english_on_request(app, operator_client):
    apex = school_client(app, "")
    page = apex.get("/signup?lang=en").get_data(as_text=True)
    assert "Sign your school up" in page and "Up to 2,000 students" in page
    for path in ("/console?lang=en", "/console/offices?lang=en", "/console/mails?lang=en", "/office?lang=en"):
        response = operator_client.get(path)
        assert response.status_code == 200, path
        assert "Operator console" in response.get_data(as_text=True) or path != "/console?lang=en"
