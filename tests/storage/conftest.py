"""Fixtures running one contract suite against both storage backends.

S3 runs against ``S3_ENDPOINT`` (with ``S3_ACCESS_KEY``/``S3_SECRET_KEY``) when it is set, else against
moto's S3 server started on a free loopback port for the session. The local backend runs behind a
minimal Flask app whose test client plays the browser.
"""
from __future__ import annotations

import io
import json
import os
import socket
import types
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import flask
import pytest
import requests
from requests.structures import CaseInsensitiveDict

from lp_saas import storage as storage_module
from lp_saas.storage import (
    LocalStorage,
    S3Storage,
    Storage,
    UploadTicket,
    storage_from_config,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Reply:
    """What a client saw: status, headers and body, the same shape for both backends."""

    status: int
    headers: CaseInsensitiveDict[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Harness:
    """A backend, a bucket of its own, and client-side helpers that talk to it as a browser would."""

    kind: str
    storage: Storage
    bucket: str
    upload: Callable[..., Reply]
    download: Callable[..., Reply]
    app: flask.Flask | None = None

    def set_tenant(self, tenant: object | None) -> None:
        """Make the local app's requests run as ``tenant`` (None: no school)."""
        assert self.app is not None
        self.app.config["TEST_TENANT"] = tenant


def new_bucket_name() -> str:
    return f"lp-test-{uuid.uuid4().hex[:24]}"


@pytest.fixture(scope="session")
def s3_config() -> Iterator[dict[str, str]]:
    endpoint = os.environ.get("S3_ENDPOINT")
    if endpoint:
        yield {
            "S3_ENDPOINT": endpoint,
            "S3_ACCESS_KEY": os.environ["S3_ACCESS_KEY"],
            "S3_SECRET_KEY": os.environ["S3_SECRET_KEY"],
            "S3_REGION": os.environ.get("S3_REGION", "us-east-1"),
        }
        return
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer("127.0.0.1", port, verbose=False)
    server.start()
    try:
        yield {
            "S3_ENDPOINT": f"http://127.0.0.1:{port}",
            "S3_ACCESS_KEY": "lp-test-access",
            "S3_SECRET_KEY": "lp-test-secret",
        }
    finally:
        server.stop()


@pytest.fixture()
def http() -> Iterator[requests.Session]:
    """A requests session that ignores proxy settings: test traffic stays on loopback."""
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


def make_local_app(
    root: str, bucket: str, *, before_storage: Callable[[flask.Flask], None] | None = None
) -> flask.Flask:
    """A bare app with the storage extension whose requests run as the school owning ``bucket``.

    ``before_storage`` runs before ``storage.init_app`` (to install CSRFProtect first, as the
    real app factory does).
    """
    app = flask.Flask(__name__)
    app.config.update(
        TESTING=True,
        SECRET_KEY="storage-test-secret",
        LOCAL_STORAGE_DIR=root,
        TEST_TENANT=types.SimpleNamespace(bucket=bucket),
    )
    if before_storage is not None:
        before_storage(app)
    storage_module.init_app(app)
    # messages come from the product's catalogue, in the request's language, as in the real app
    from pathlib import Path

    from flask_babel import Babel

    import lp_saas
    from lp_saas.i18n import select_locale

    Babel(app, locale_selector=select_locale, default_locale="zh_Hant_TW",
          default_translation_directories=str(Path(lp_saas.__file__).parent / "translations"))

    @app.before_request
    def resolve_tenant() -> None:  # stands in for the host resolver
        flask.g.tenant = app.config["TEST_TENANT"]

    return app


def _local_harness(tmp_path) -> Harness:
    bucket = new_bucket_name()
    app = make_local_app(str(tmp_path / "objects"), bucket)
    client = app.test_client()

    def upload(
        ticket: UploadTicket,
        data: bytes,
        filename: str = "file.bin",
        content_type: str = "application/octet-stream",
        headers: dict[str, str] | None = None,
    ) -> Reply:
        form = {**ticket.fields, "file": (io.BytesIO(data), filename, content_type)}
        response = client.open(
            ticket.url, method=ticket.method, data=form, headers=headers or {},
            content_type="multipart/form-data",
        )
        return Reply(response.status_code, CaseInsensitiveDict(response.headers), response.get_data())

    def download(url: str, headers: dict[str, str] | None = None) -> Reply:
        response = client.get(url, headers=headers or {})
        return Reply(response.status_code, CaseInsensitiveDict(response.headers), response.get_data())

    return Harness("local", app.extensions["lp_storage"], bucket, upload, download, app=app)


def _s3_harness(config: dict[str, str], http: requests.Session) -> Harness:
    backend = storage_from_config(config)
    assert isinstance(backend, S3Storage)

    def upload(
        ticket: UploadTicket,
        data: bytes,
        filename: str = "file.bin",
        content_type: str = "application/octet-stream",
        headers: dict[str, str] | None = None,
    ) -> Reply:
        response = http.post(
            ticket.url, data=ticket.fields, files={"file": (filename, data, content_type)},
            headers={**ticket.headers, **(headers or {})},
        )
        return Reply(response.status_code, CaseInsensitiveDict(response.headers), response.content)

    def download(url: str, headers: dict[str, str] | None = None) -> Reply:
        response = http.get(url, headers=headers or {})
        return Reply(response.status_code, CaseInsensitiveDict(response.headers), response.content)

    return Harness("s3", backend, new_bucket_name(), upload, download)


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path) -> Iterator[Harness]:
    """Each backend in turn, with a fresh bucket name (not yet created) deleted afterwards."""
    if request.param == "local":
        harness = _local_harness(tmp_path)
    else:
        harness = _s3_harness(request.getfixturevalue("s3_config"), request.getfixturevalue("http"))
    yield harness
    harness.storage.delete_bucket(harness.bucket)


@pytest.fixture()
def local(tmp_path) -> Iterator[Harness]:
    """The local backend alone, its bucket created, for the policy its routes enforce."""
    harness = _local_harness(tmp_path)
    harness.storage.ensure_bucket(harness.bucket)
    assert isinstance(harness.storage, LocalStorage)
    yield harness
    harness.storage.delete_bucket(harness.bucket)


@pytest.fixture()
def s3(s3_config, http) -> Iterator[Harness]:
    """The S3 backend alone, its bucket created."""
    harness = _s3_harness(s3_config, http)
    harness.storage.ensure_bucket(harness.bucket)
    yield harness
    harness.storage.delete_bucket(harness.bucket)
