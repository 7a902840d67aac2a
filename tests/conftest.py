"""Test fixtures. Two modes, chosen by the environment (scripts/test sets it):

- services: ``LP_TEST_PG`` (an admin URL of PostgreSQL), ``LP_TEST_REDIS`` and ``S3_ENDPOINT`` are
  set. Each run gets its own database (migrated as the owner, used by the app as the ``lp_app``
  role that neither owns the tables nor bypasses row-level security), its own Redis key prefix and
  its own bucket prefix.
- embedded: none of them; SQLite in a temporary folder, local-directory storage, jobs in-process.

Schools are made per test with unique slugs (``make_school``): tests pass the tenant explicitly,
never a hard-coded one.
"""
from __future__ import annotations

import os
import re
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

RUN_ID = uuid.uuid4().hex[:8]
PG_ADMIN_URL = os.environ.get("LP_TEST_PG")
REDIS_URL = os.environ.get("LP_TEST_REDIS")
S3_ENDPOINT = os.environ.get("S3_ENDPOINT")
APP_ROLE = "lp_app"
PASSWORD = "Secret-pass-42"


def pytest_collection_modifyitems(config, items):
    if PG_ADMIN_URL:
        return
    # PostgreSQL-only behaviour (row-level security) is proved in the services run; on the
    # embedded run these tests are deselected, not skipped-and-forgotten.
    selected = [i for i in items if "postgres" not in i.keywords]
    deselected = [i for i in items if "postgres" in i.keywords]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


def _pg_url(admin_url: str, database: str, user: str | None = None) -> str:
    url = sa.engine.make_url(admin_url).set(database=database)
    if user:
        url = url.set(username=user, password=None)
    return url.render_as_string(hide_password=False)


def ensure_app_role(admin_engine) -> None:
    with admin_engine.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": APP_ROLE}).scalar()
        if not exists:
            try:
                conn.execute(sa.text(f'CREATE ROLE "{APP_ROLE}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE'))
            except sa.exc.ProgrammingError:
                pass  # created by a parallel run in between


@contextmanager
def fresh_pg_database(prefix: str = "lp_test"):
    """A new, empty PostgreSQL database; dropped afterwards. Yields its name."""
    name = f"{prefix}_{RUN_ID}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    ensure_app_role(admin)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def migrate_to_head(database_url: str, instance: Path) -> None:
    """Run ``flask db upgrade`` as the owner, the way a deploy does."""
    from flask_migrate import upgrade

    from lp_saas import create_app

    owner_app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True})
    with owner_app.app_context():
        upgrade()
        from lp_saas.database import db

        db.engine.dispose()


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("instance")
    os.environ["LP_INSTANCE_PATH"] = str(path)
    return path


@pytest.fixture(scope="session")
def database(instance_dir):
    """(app URL, owner URL) of this run's migrated database."""
    if PG_ADMIN_URL:
        with fresh_pg_database() as name:
            owner_url = _pg_url(PG_ADMIN_URL, name)
            migrate_to_head(owner_url, instance_dir)
            yield _pg_url(PG_ADMIN_URL, name, APP_ROLE), owner_url
    else:
        url = f"sqlite:///{instance_dir / 'test.sqlite3'}"
        migrate_to_head(url, instance_dir)
        yield url, url


def base_test_config(database_url: str, instance_dir: Path) -> dict:
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-" + RUN_ID,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "LP_BASE_DOMAIN": "localhost",
        "TRUSTED_HOSTS": ["localhost", ".localhost"],
        "LOCAL_STORAGE_DIR": str(instance_dir / "storage"),
        "S3_BUCKET_PREFIX": f"t{RUN_ID}-",
        "RQ_QUEUE_PREFIX": f"lptest-{RUN_ID}",
        "RATELIMIT_KEY_PREFIX": f"lptest-{RUN_ID}-limits",
        "REDIS_URL": REDIS_URL,
        "RATELIMIT_STORAGE_URI": REDIS_URL or "memory://",
    }
    if S3_ENDPOINT:
        config.update({
            "S3_ENDPOINT": S3_ENDPOINT,
            "S3_ACCESS_KEY": os.environ.get("S3_ACCESS_KEY", "test"),
            "S3_SECRET_KEY": os.environ.get("S3_SECRET_KEY", "test"),
        })
    return config


@pytest.fixture(scope="session")
def app(database, instance_dir):
    from lp_saas import create_app

    app = create_app(base_test_config(database[0], instance_dir))
    yield app
    if REDIS_URL:
        from redis import Redis

        conn = Redis.from_url(REDIS_URL)
        for key in conn.scan_iter(f"*lptest-{RUN_ID}*"):
            conn.delete(key)


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield


@pytest.fixture
def make_school(app):
    """Provision a school from a template, with a unique slug. Returns the Tenant (detached)."""
    from lp_saas.database import db
    from lp_saas.tenants import services

    def make(template: str = "moe", slug: str | None = None, name: str | None = None, **extra):
        slug = slug or f"s{uuid.uuid4().hex[:10]}"
        with app.app_context():
            tenant, _created = services.create_tenant(slug=slug, name=name or f"測試高中 {slug}",
                                                      school_code="074308", template=template)
            for key, value in extra.items():
                setattr(tenant, key, value)
            db.session.commit()
            outcome = services.provision_now(tenant)
            assert outcome["status"] == "succeeded", outcome
            tenant = db.session.get(type(tenant), tenant.id)
            db.session.expunge(tenant)
            return tenant

    return make


@pytest.fixture
def make_user(app):
    """An account at ``school`` with role keys; password ``PASSWORD`` unless given."""
    from lp_saas.accounts import services
    from lp_saas.database import db
    from lp_saas.tenants.context import tenant_scope

    def make(school, *roles, username: str | None = None, password: str = PASSWORD, **fields):
        with app.app_context(), tenant_scope(school):
            user = services.create_user(school, "test:fixture", username=username or f"u{uuid.uuid4().hex[:8]}",
                                        display_name=fields.pop("display_name", "測試使用者"),
                                        password=password, roles=list(roles or ("student",)), **fields)
            db.session.commit()
            db.session.refresh(user)
            db.session.expunge(user)
            return user

    return make


class HostClient:
    """A Flask test client bound to one host (a school's subdomain, or the apex)."""

    def __init__(self, client, base_url: str):
        self._client = client
        self.base_url = base_url

    def open(self, *args, **kwargs):
        kwargs.setdefault("base_url", self.base_url)
        return self._client.open(*args, **kwargs)

    def __getattr__(self, name):
        if name in ("get", "post", "put", "patch", "delete", "head", "options"):
            def call(*args, **kwargs):
                kwargs.setdefault("base_url", self.base_url)
                return getattr(self._client, name)(*args, **kwargs)

            return call
        return getattr(self._client, name)


def school_client(app, school_or_slug, client=None):
    """A client of a school's host (``slug.localhost``); ``""`` is the apex; pass ``client`` to
    share one browser's cookie jar across hosts."""
    slug = school_or_slug if isinstance(school_or_slug, str) else school_or_slug.slug
    host = f"{slug}.localhost" if slug else "localhost"
    return HostClient(client or app.test_client(), f"http://{host}")


@pytest.fixture
def client_for(app):
    return lambda school: school_client(app, school)


CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str) -> str:
    page = client.get(path)
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path} ({page.status_code})"
    return match.group(1) or match.group(2)


def post_form(client, path: str, data: dict, *, form_path: str | None = None, **kwargs):
    """POST a page's form as a browser does: with the CSRF token the page gave."""
    data = {"csrf_token": csrf_token(client, form_path or path), **data}
    return client.post(path, data=data, **kwargs)


def login(client, username: str, password: str = PASSWORD):
    return post_form(client, "/login", {"username": username, "password": password})


@pytest.fixture
def signed_in(app, client_for):
    """A test client of ``school`` signed in as ``user`` through the login page."""
    def make(school, user, password: str = PASSWORD):
        client = client_for(school)
        response = login(client, user.username, password)
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return client

    return make


class Api:
    """A JSON client of one school's API, with a bearer token once ``login`` is called."""

    def __init__(self, client):
        self.client = client
        self.token = None
        self.lang = None

    def headers(self, extra=None):
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.lang:
            headers["Accept-Language"] = self.lang
        headers.update(extra or {})
        return headers

    def login(self, username, password=PASSWORD):
        response = self.post("/api/v1/auth/token", {"username": username, "password": password})
        assert response.status_code == 201, response.get_json()
        self.token = response.get_json()["token"]
        return self

    def get(self, path, **kw):
        return self.client.get(path, headers=self.headers(kw.pop("headers", None)), **kw)

    def post(self, path, json=None, **kw):
        return self.client.post(path, json=json, headers=self.headers(kw.pop("headers", None)), **kw)

    def patch(self, path, json=None, **kw):
        return self.client.patch(path, json=json, headers=self.headers(kw.pop("headers", None)), **kw)

    def put(self, path, json=None, **kw):
        return self.client.put(path, json=json, headers=self.headers(kw.pop("headers", None)), **kw)

    def delete(self, path, **kw):
        return self.client.delete(path, headers=self.headers(kw.pop("headers", None)), **kw)


@pytest.fixture
def api_for(app):
    def make(school, user=None, password: str = PASSWORD):
        api = Api(school_client(app, school))
        if user is not None:
            api.login(user.username, password)
        return api

    return make


@pytest.fixture
def drain_jobs(app):
    """Work every queued job: an RQ burst worker in the services run; nothing to do in-process."""
    def drain():
        if not app.config.get("REDIS_URL"):
            return 0
        from rq import SimpleWorker

        from lp_saas.jobs.queue import redis_connection, rq_queue
        from lp_saas.jobs.worker import QUEUES

        with app.app_context():
            worker = SimpleWorker([rq_queue(q) for q in QUEUES], connection=redis_connection())
            worker.work(burst=True)
        return 1

    return drain


@contextmanager
def as_tenant(app, school):
    from lp_saas.tenants.context import tenant_scope

    with app.app_context(), tenant_scope(school):
        yield
