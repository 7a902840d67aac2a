"""Sign-in, lockout, sessions and tokens ending at once, password changes and resets."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from lp_saas.accounts.models import AuthSession, User
from lp_saas.database import db, utcnow
from tests.conftest import PASSWORD, as_tenant, csrf_token, login, post_form


def _update_user(app, school, user, **values):
    with as_tenant(app, school):
        row = db.session.get(User, (school.id, user.id))
        for key, value in values.items():
            setattr(row, key, value)
        db.session.commit()


def test_login_wrong_password_message_in_chinese_and_english(make_school, make_user, client_for):
    school = make_school()
    user = make_user(school, "teacher")
    client = client_for(school)
    page = login(client, user.username, "wrong-password")
    assert page.status_code == 401
    assert "帳號或密碼不正確" in page.get_data(as_text=True)
    token = csrf_token(client, "/login")
    page = client.post("/login", data={"csrf_token": token, "username": user.username, "password": "nope-nope"},
                       headers={"Accept-Language": "en"})
    assert "The username or password is not correct." in page.get_data(as_text=True)


@pytest.mark.parametrize("data", [
    {"username": "", "password": ""},
    {"username": "x" * 65, "password": "whatever1"},
    {"username": "someone"},
    {"password": "only-password"},
])
def test_login_bad_input_is_a_clear_4xx(make_school, client_for, data):
    client = client_for(make_school())
    response = post_form(client, "/login", data)
    assert 400 <= response.status_code < 500
    assert "請輸入帳號與密碼" in response.get_data(as_text=True) or "帳號或密碼不正確" in response.get_data(as_text=True)


def test_forged_csrf_is_refused_and_nothing_happens(make_school, make_user, client_for):
    school = make_school()
    user = make_user(school, "teacher")
    client = client_for(school)
    response = client.post("/login", data={"username": user.username, "password": PASSWORD, "csrf_token": "forged"})
    assert response.status_code == 400
    assert client.get("/dashboard").status_code == 302  # still not signed in


def test_account_lockout_after_repeated_failures(app, make_school, make_user, api_for):
    school = make_school()
    user = make_user(school, "teacher")
    api = api_for(school)
    for _ in range(app.config["LP_LOGIN_MAX_FAILURES"] - 1):
        assert api.post("/api/v1/auth/token", {"username": user.username, "password": "bad-pass-1"}).status_code == 401
    locked = api.post("/api/v1/auth/token", {"username": user.username, "password": "bad-pass-1"})
    assert locked.status_code == 423
    assert "鎖定" in locked.get_json()["error"]["message"]
    # even the right password is refused while locked, with the minutes to wait
    again = api.post("/api/v1/auth/token", {"username": user.username, "password": PASSWORD},
                     headers={"Accept-Language": "en"})
    assert again.status_code == 423
    assert "locked" in again.get_json()["error"]["message"] and "minutes" in again.get_json()["error"]["message"]
    # when the lock has passed, the right password works again
    _update_user(app, school, user, locked_until=utcnow() - timedelta(seconds=1))
    assert api.post("/api/v1/auth/token", {"username": user.username, "password": PASSWORD}).status_code == 201


def test_client_throttled_across_accounts(app, make_school, api_for):
    school = make_school()
    api = api_for(school)
    limit = int(app.config["LP_CLIENT_LOGIN_LIMIT"].split()[0])
    for i in range(limit):
        response = api.post("/api/v1/auth/token", {"username": f"ghost{i}", "password": "bad-pass-1"})
        assert response.status_code == 401
    throttled = api.post("/api/v1/auth/token", {"username": "ghost-last", "password": "bad-pass-1"})
    assert throttled.status_code == 429
    assert "嘗試次數過多" in throttled.get_json()["error"]["message"]
    # another school's users are not throttled by this client's failures there
    other = api_for(make_school())
    assert other.post("/api/v1/auth/token", {"username": "ghost", "password": "bad-pass-1"}).status_code == 401


def test_expiry_ends_a_live_session_and_token(app, make_school, make_user, signed_in, api_for):
    school = make_school()
    user = make_user(school, "teacher")
    client = signed_in(school, user)
    api = api_for(school, user)
    assert client.get("/dashboard").status_code == 200
    _update_user(app, school, user, expires_at=utcnow() - timedelta(minutes=1))
    assert client.get("/dashboard").status_code == 302
    assert api.get("/api/v1/me").status_code == 401
    refused = api.post("/api/v1/auth/token", {"username": user.username, "password": PASSWORD})
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "account_expired"


def test_disabling_ends_sessions_and_tokens_at_once(app, make_school, make_user, signed_in, api_for):
    school = make_school()
    admin = make_user(school, "school_admin")
    user = make_user(school, "teacher")
    session = signed_in(school, user)
    token = api_for(school, user)
    admin_api = api_for(school, admin)
    assert admin_api.patch(f"/api/v1/users/{user.id}", {"status": "disabled"}).status_code == 200
    assert session.get("/dashboard").status_code == 302
    assert token.get("/api/v1/me").status_code == 401
    with as_tenant(app, school):
        live = db.session.scalar(sa.select(sa.func.count()).select_from(AuthSession).where(
            AuthSession.tenant_id == school.id, AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None)))
    assert live == 0


def test_password_change_ends_other_sessions_keeps_this_one(make_school, make_user, signed_in, api_for):
    school = make_school()
    user = make_user(school, "teacher")
    here = signed_in(school, user)
    elsewhere = signed_in(school, user)
    token = api_for(school, user)
    bad = post_form(here, "/account/password", {"current_password": "wrong-one-1", "new_password": "12345678"})
    assert bad.status_code == 422
    assert "目前的密碼不正確" in bad.get_data(as_text=True)
    ok = post_form(here, "/account/password", {"current_password": PASSWORD, "new_password": "New-pass-2024"})
    assert ok.status_code == 302
    assert here.get("/dashboard").status_code == 200
    assert elsewhere.get("/dashboard").status_code == 302
    assert token.get("/api/v1/me").status_code == 401
    assert login(elsewhere, user.username, "New-pass-2024").status_code == 302


def test_logout_ends_the_session_server_side(make_school, make_user, signed_in):
    school = make_school()
    user = make_user(school, "teacher")
    client = signed_in(school, user)
    stolen = client.get_cookie("session", domain=f"{school.slug}.localhost").value
    assert post_form(client, "/logout", {}, form_path="/dashboard").status_code == 302
    client.set_cookie("session", stolen, domain=f"{school.slug}.localhost")
    assert client.get("/dashboard").status_code == 302


def test_idle_timeout(app, make_school, make_user, signed_in):
    school = make_school()
    user = make_user(school, "teacher")
    client = signed_in(school, user)
    with as_tenant(app, school):
        db.session.execute(sa.update(AuthSession).where(AuthSession.tenant_id == school.id,
                                                        AuthSession.user_id == user.id)
                           .values(last_seen_at=utcnow() - timedelta(minutes=app.config["LP_SESSION_IDLE_MINUTES"] + 1)))
        db.session.commit()
    assert client.get("/dashboard").status_code == 302


def test_admin_resets_password_user_must_change_it(app, make_school, make_user, signed_in):
    school = make_school()
    admin = make_user(school, "school_admin")
    user = make_user(school, "student")
    student_session = signed_in(school, user)
    admin_client = signed_in(school, admin)
    path = f"/admin/users/{user.id}"
    weak = post_form(admin_client, path, {"reset-password": "1234", "reset-submit": "1"})
    assert weak.status_code == 422
    done = post_form(admin_client, path, {"reset-password": "Temp-pass-99", "reset-submit": "1"})
    assert done.status_code == 302
    assert student_session.get("/dashboard").status_code == 302
    relogin = login(student_session, user.username, "Temp-pass-99")
    assert relogin.status_code == 302 and relogin.headers["Location"].endswith("/account/password")


def test_admin_expiry_form_and_disable_toggle(app, make_school, make_user, signed_in):
    school = make_school()
    admin = make_user(school, "school_admin")
    teacher = make_user(school, "teacher")
    teacher_client = signed_in(school, teacher)
    admin_client = signed_in(school, admin)
    path = f"/admin/users/{teacher.id}"
    bad = post_form(admin_client, path, {"expiry-expires_on": "2024-13-45", "expiry-submit": "1"})
    assert bad.status_code == 400
    past = (utcnow() - timedelta(days=2)).date().isoformat()
    assert post_form(admin_client, path, {"expiry-expires_on": past, "expiry-submit": "1"}).status_code == 302
    assert teacher_client.get("/dashboard").status_code == 302
    self_disable = post_form(admin_client, f"/admin/users/{admin.id}", {"toggle-submit": "1"})
    assert self_disable.status_code == 422


def test_admin_creates_account_with_bad_values_refused(app, make_school, make_user, signed_in):
    school = make_school()
    admin = make_user(school, "school_admin")
    client = signed_in(school, admin)
    taken = post_form(client, "/admin/users/new", {"username": admin.username, "display_name": "X",
                                                   "password": "Good-pass-1", "roles": "teacher"})
    assert taken.status_code == 422 and "已被使用" in taken.get_data(as_text=True)
    script = post_form(client, "/admin/users/new", {"username": "<script>", "display_name": "<b>x</b>",
                                                    "password": "Good-pass-1", "roles": "teacher"})
    assert script.status_code == 422
    assert "<script>" not in script.get_data(as_text=True)
    unknown_role = post_form(client, "/admin/users/new", {"username": "newbie", "display_name": "新人",
                                                          "password": "Good-pass-1", "roles": "wizard"})
    assert unknown_role.status_code == 400
    with as_tenant(app, school):
        assert db.session.scalar(sa.select(User).where(User.tenant_id == school.id,
                                                       User.username.in_(["newbie", "<script>"]))) is None
    created = post_form(client, "/admin/users/new", {"username": "newbie", "display_name": "新人",
                                                     "password": "Good-pass-1", "roles": "teacher"})
    assert created.status_code == 302


def test_users_page_needs_the_permission(make_school, make_user, signed_in):
    school = make_school()
    teacher = make_user(school, "teacher")
    client = signed_in(school, teacher)
    assert client.get("/admin/users").status_code == 403
    assert client.get("/admin/roles").status_code == 403
    assert client.get("/admin/audit").status_code == 403
