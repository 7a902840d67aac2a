"""Schools on their own subdomains: resolution, reserved slugs, suspension, provisioning."""
import pytest
from click.testing import CliRunner

from lp_saas.tenants.resolver import slug_from_host
from lp_saas.tenants.services import slug_problem
from tests.conftest import as_tenant, school_client


@pytest.mark.parametrize("host, slug", [
    ("ylsh.localhost", "ylsh"), ("ylsh.localhost:5000", "ylsh"), ("YLSH.localhost", "ylsh"),
    ("localhost", ""), ("localhost:5000", ""), ("a.b.localhost", None), ("evil.com", None),
    ("ylsh.localhost.evil.com", None), (".localhost", None),
])
def test_slug_from_host(host, slug):
    assert slug_from_host(host, "localhost") == slug


@pytest.mark.parametrize("slug", ["www", "api", "admin", "static", "mail", "ab", "-abc", "abc-", "a--b",
                                  "Abc", "1abc", "ab_c", "a" * 31, "", "ylsh.x", "中文校"])
def test_bad_and_reserved_slugs_are_refused(app, slug):
    with app.test_request_context():
        assert slug_problem(slug) is not None


def test_good_slug_accepted(app):
    with app.test_request_context():
        assert slug_problem("ylsh") is None
        assert slug_problem("tp-jhs-2") is None


def test_school_home_shows_its_name_and_colours(make_school, client_for):
    school = make_school("yuanlin", name="國立員林高級中學", primary_color="#7a1f3d")
    client = client_for(school)
    page = client.get("/")
    assert page.status_code == 200
    assert "國立員林高級中學" in page.get_data(as_text=True)
    css = client.get("/branding.css").get_data(as_text=True)
    assert "#7a1f3d" in css


def test_apex_is_the_platform_site(app):
    page = school_client(app, "").get("/")
    assert page.status_code == 200
    assert "學習歷程" in page.get_data(as_text=True)


def test_unknown_school_is_404_everywhere(app):
    client = school_client(app, "nosuchschool")
    for path in ("/", "/login", "/dashboard", "/api/v1/me", "/api/v1/openapi.json"):
        assert client.get(path).status_code == 404, path


def test_untrusted_host_is_refused(app):
    response = app.test_client().get("/", base_url="http://evil.example.com")
    assert response.status_code in (400, 404)
    api = app.test_client().post("/api/v1/auth/token", json={"username": "a", "password": "b"},
                                 base_url="http://evil.example.com")
    assert api.status_code == 400 and api.get_json()["error"]["code"] == "unknown_host"


def test_pending_school_is_404(app):
    from lp_saas.database import db
    from lp_saas.tenants import services

    with app.app_context():
        services.create_tenant(slug="pendingschool", name="待審學校", school_code="123456", status="pending")
        db.session.commit()
    assert school_client(app, "pendingschool").get("/").status_code == 404


def test_suspended_school_shows_a_notice_and_keeps_its_data(app, make_school, make_user, api_for):
    from lp_saas.database import db
    from lp_saas.tenants.models import Tenant

    school = make_school()
    admin = make_user(school, "school_admin")
    with app.app_context():
        db.session.get(Tenant, school.id).status = "suspended"
        db.session.commit()
    page = school_client(app, school).get("/")
    assert page.status_code == 404
    assert "暫停" in page.get_data(as_text=True)
    api = api_for(school)
    response = api.post("/api/v1/auth/token", {"username": admin.username, "password": "Secret-pass-42"})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "school_suspended"
    with app.app_context():
        db.session.get(Tenant, school.id).status = "active"
        db.session.commit()
    api.login(admin.username)
    assert api.get("/api/v1/me").get_json()["username"] == admin.username


def test_cli_create_is_idempotent_and_refuses_bad_input(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["tenants", "create", "--slug", "clitest", "--name", "CLI 高中",
                                "--code", "654321", "--template", "yuanlin"])
    assert first.exit_code == 0, first.output
    assert "clitest" in first.output
    second = runner.invoke(args=["tenants", "create", "--slug", "clitest", "--name", "CLI 高中",
                                 "--code", "654321", "--template", "yuanlin"])
    assert second.exit_code == 0
    assert "nothing changed" in second.output
    for bad in (["--slug", "www", "--name", "x", "--code", "123456"],
                ["--slug", "okslug", "--name", "x", "--code", "12"],
                ["--slug", "okslug2", "--name", "x", "--code", "123456", "--template", "nosuch"]):
        result = runner.invoke(args=["tenants", "create", *bad])
        assert result.exit_code != 0, bad
    with app.app_context():
        from lp_saas.tenants.services import find_by_slug

        assert find_by_slug("okslug") is None and find_by_slug("okslug2") is None
    # an existing school with a bad template is refused too, not "nothing changed"
    typo = runner.invoke(args=["tenants", "create", "--slug", "clitest", "--name", "CLI 高中", "--template", "nope"])
    assert typo.exit_code != 0 and "template" in typo.output


def test_provisioning_builds_roles_rules_and_bucket_once(app, make_school):
    import sqlalchemy as sa

    from lp_saas.database import db
    from lp_saas.roles.models import Role, RolePermission
    from lp_saas.roles.templates import REQUIRED_ROLE_KEYS, YUANLIN
    from lp_saas.storage import get_storage
    from lp_saas.tenants.models import RuleSet
    from lp_saas.tenants.services import provision_now

    school = make_school("yuanlin")
    with as_tenant(app, school):
        keys = set(db.session.scalars(sa.select(Role.key).where(Role.tenant_id == school.id)))
        assert set(REQUIRED_ROLE_KEYS) <= keys and keys == set(YUANLIN)
        cells = db.session.scalar(sa.select(sa.func.count()).select_from(RolePermission)
                                  .where(RolePermission.tenant_id == school.id))
        versions = db.session.scalar(sa.select(sa.func.count()).select_from(RuleSet)
                                     .where(RuleSet.tenant_id == school.id))
        assert get_storage().bucket_exists(school.bucket)
    with app.app_context():
        from lp_saas.tenants.models import Tenant

        again = provision_now(db.session.get(Tenant, school.id))
    assert again["status"] == "succeeded"
    assert again["result"] == {"bucket_created": False, "roles_created": 0, "rule_sets_created": 0}
    with as_tenant(app, school):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(RolePermission)
                                 .where(RolePermission.tenant_id == school.id)) == cells
        assert db.session.scalar(sa.select(sa.func.count()).select_from(RuleSet)
                                 .where(RuleSet.tenant_id == school.id)) == versions


def test_provisioning_recorded_as_a_job_and_audited(app, make_school):
    import sqlalchemy as sa

    from lp_saas.audit.models import AuditEvent
    from lp_saas.database import db
    from lp_saas.jobs.models import Job

    school = make_school()
    with as_tenant(app, school):
        job = db.session.scalar(sa.select(Job).where(Job.tenant_id == school.id, Job.kind == "provision_tenant"))
        assert job.status == "succeeded" and job.progress == 100 and job.attempts == 1
        actions = set(db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.tenant_id == school.id)))
        assert {"tenant.created", "tenant.provisioned"} <= actions


def test_cli_users_create_refuses_bad_values(app, make_school):
    school = make_school()
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["users", "create", "--tenant", school.slug, "--username", "clerk1",
                             "--password", "Clerk-pass-1", "--role", "registrar"])
    assert ok.exit_code == 0, ok.output
    for bad in (["--tenant", "nosuchschool", "--username", "x1", "--password", "Clerk-pass-1", "--role", "teacher"],
                ["--tenant", school.slug, "--username", "clerk1", "--password", "Clerk-pass-1", "--role", "teacher"],
                ["--tenant", school.slug, "--username", "x2", "--password", "short", "--role", "teacher"],
                ["--tenant", school.slug, "--username", "x3", "--password", "Clerk-pass-1", "--role", "wizard"]):
        result = runner.invoke(args=["users", "create", *bad])
        assert result.exit_code != 0, bad
    from lp_saas.accounts.services import find_user

    with as_tenant(app, school):
        assert find_user(school.id, "x2") is None and find_user(school.id, "x3") is None
