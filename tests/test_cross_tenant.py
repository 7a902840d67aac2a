"""Anything of school A used at school B gets nothing, on every route (walked from app.url_map)."""
import uuid

import pytest

from lp_saas.academics.models import Course
from lp_saas.database import db
from lp_saas.jobs.models import Job
from lp_saas.storage import get_storage
from tests.conftest import PASSWORD, as_tenant, csrf_token, school_client

SKIP_ENDPOINTS = {"static"}


SESSION_ENDERS = {"accounts.logout", "api.revoke_token"}


def _routes(app):
    # routes that end the caller's own session go last, so that the walk keeps its credentials
    rules = sorted(app.url_map.iter_rules(), key=lambda r: (r.endpoint in SESSION_ENDERS, r.rule))
    for rule in rules:
        if rule.endpoint in SKIP_ENDPOINTS:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


@pytest.fixture
def two_schools(app, make_school, make_user):
    a = make_school("yuanlin", name="甲校高中")
    b = make_school("moe", name="乙校高中")
    a_admin = make_user(a, "school_admin", username=f"alpha{uuid.uuid4().hex[:6]}", display_name="甲校管理者")
    a_teacher = make_user(a, "teacher", display_name="甲校老師")
    a_student = make_user(a, "student", display_name="甲校學生", student_no="A0001")
    b_admin = make_user(b, "school_admin")
    with as_tenant(app, a):
        course = Course(tenant_id=a.id, code="A-MATH-1", name="甲校數學", credits=4, academic_year=113,
                        semester=1, teacher_id=a_teacher.id)
        job = Job(tenant_id=a.id, kind="provision_tenant", args={}, status="succeeded", created_by_id=a_admin.id)
        db.session.add_all([course, job])
        db.session.commit()
        ids = {"user_id": str(a_student.id), "course_id": str(course.id), "job_id": str(job.id)}
        storage = get_storage()
        storage.put_bytes(a.bucket, "outcomes/x/secret.pdf", b"%PDF-1.4 secret", "application/pdf")
        download_url = storage.presign_download(a.bucket, "outcomes/x/secret.pdf", filename="甲校秘密.pdf")
    return {"a": a, "b": b, "a_admin": a_admin, "a_student": a_student, "b_admin": b_admin, "ids": ids,
            "download_url": download_url, "markers": ["甲校", a_admin.username, a_student.username, "A0001"]}


def _path(rule, ids, default="00000000-0000-0000-0000-000000000000"):
    values = {}
    for arg in rule.arguments:
        if arg in ids:
            values[arg] = ids[arg]
        elif "int" in repr(rule._converters.get(arg)).lower():
            values[arg] = 1
        else:
            values[arg] = default
    from werkzeug.routing import Map

    adapter = Map([rule.empty()]).bind("localhost")
    return adapter.build(rule.endpoint, values)


def _no_markers(response, markers, where):
    body = response.get_data(as_text=True)
    for marker in markers:
        assert marker not in body, f"{where}: school A's {marker!r} leaked"


def _send(client, method, path, headers=None, csrf=None):
    kwargs = {"headers": headers or {}}
    if method in ("POST", "PUT", "PATCH"):
        if csrf:  # a page form: pass the CSRF check (with the client's own valid token) to reach the view
            kwargs["data"] = {"csrf_token": csrf}
        else:
            kwargs["json"] = {}
    return client.open(path, method=method, **kwargs)


def test_another_schools_ids_are_404_for_a_full_admin(app, two_schools, signed_in, api_for):
    s = two_schools
    web = signed_in(s["b"], s["b_admin"])
    api = api_for(s["b"], s["b_admin"])
    token = csrf_token(web, "/dashboard")
    checked = 0
    for rule, method in _routes(app):
        path = _path(rule, s["ids"])
        if rule.rule.startswith("/api/"):
            response = _send(api.client, method, path, api.headers())
        else:
            response = _send(web, method, path, csrf=token)
        where = f"{method} {path}"
        _no_markers(response, s["markers"], where)
        if set(rule.arguments) & set(s["ids"]):
            assert response.status_code == 404, where
            checked += 1
    assert checked >= 4


def test_a_session_cookie_of_school_a_is_worthless_at_b(app, two_schools, signed_in):
    s = two_schools
    a_client = signed_in(s["a"], s["a_admin"])
    cookie = a_client.get_cookie("session", domain=f"{s['a'].slug}.localhost")
    assert cookie is not None
    # the browser would never send it to B (host-only cookie); copy it there by hand anyway
    b_client = school_client(app, s["b"])
    b_client.set_cookie("session", cookie.value, domain=f"{s['b'].slug}.localhost")
    for rule, method in _routes(app):
        if rule.rule.startswith("/api/"):
            continue
        path = _path(rule, s["ids"])
        response = _send(b_client, method, path)
        where = f"{method} {path}"
        _no_markers(response, s["markers"], where)
        assert response.status_code not in (500,), where
        if response.status_code == 200:
            assert s["a_admin"].username not in response.get_data(as_text=True)
    assert b_client.get("/dashboard").status_code == 302


def test_a_token_of_school_a_is_worthless_at_b(app, two_schools, api_for):
    s = two_schools
    token = api_for(s["a"], s["a_admin"]).token
    b_api = api_for(s["b"])
    b_api.token = token
    for rule, method in _routes(app):
        if not rule.rule.startswith("/api/"):
            continue
        path = _path(rule, s["ids"])
        response = _send(b_api.client, method, path, b_api.headers())
        where = f"{method} {path}"
        _no_markers(response, s["markers"], where)
        if rule.endpoint not in ("api.openapi", "api.issue_token"):
            assert response.status_code in (401, 404), where


def test_a_file_url_of_school_a_is_404_at_b(app, two_schools):
    s = two_schools
    url = s["download_url"]
    if url.startswith("/"):  # local backend: the app serves it, and checks the school
        assert school_client(app, s["a"]).get(url).status_code == 200
        response = school_client(app, s["b"]).get(url)
        assert response.status_code == 404
        assert b"secret" not in response.get_data()
    else:  # S3: the bucket is A's own; B's bucket does not hold the key
        with app.app_context():
            from lp_saas.storage import ObjectMissing

            with pytest.raises(ObjectMissing):
                get_storage().stat(s["b"].bucket, "outcomes/x/secret.pdf")


def test_user_of_a_cannot_sign_in_at_b(two_schools, api_for):
    s = two_schools
    response = api_for(s["b"]).post("/api/v1/auth/token", {"username": s["a_admin"].username, "password": PASSWORD})
    assert response.status_code == 401
