"""One contract for both storage backends, plus what only one of them can show.

The local backend enforces upload policies itself and is tested for each rule. The moto S3 server
used here does not enforce POST policies (wrong key, oversize and bad signatures all get 204, see
STACK-NOTES.md), so for S3 we check that the policy we sign pins the right conditions; the upload
verification job, not the storage server, is what guarantees a stored file's size, hash and type.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
import types
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from lp_saas.storage import (
    LocalStorage,
    ObjectMissing,
    S3Storage,
    StorageError,
    StorageUnavailable,
    UploadRejected,
    content_disposition,
    storage_from_config,
    validate_bucket,
)

from .conftest import Harness, free_port, make_local_app

CHINESE_NAME = "期末報告.pdf"
CHINESE_NAME_ENCODED = "filename*=UTF-8''%E6%9C%9F%E6%9C%AB%E5%A0%B1%E5%91%8A.pdf"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8


def new_key(area: str = "outcomes") -> str:
    return f"{area}/{uuid.uuid4()}/{uuid.uuid4()}"


def all_versions(harness: Harness, prefix: str) -> list[tuple[str, bool]]:
    """(key, is_delete_marker) of every version under ``prefix`` on S3."""
    assert isinstance(harness.storage, S3Storage)
    client = harness.storage._client
    return [
        (obj.object_name, obj.is_delete_marker)
        for obj in client.list_objects(harness.bucket, prefix=prefix, recursive=True, include_version=True)
    ]


# Contract: both backends ---------------------------------------------------------------------


def test_ensure_bucket_creates_once(backend: Harness) -> None:
    assert backend.storage.bucket_exists(backend.bucket) is False
    assert backend.storage.ensure_bucket(backend.bucket) is True
    assert backend.storage.ensure_bucket(backend.bucket) is False
    assert backend.storage.bucket_exists(backend.bucket) is True


def test_upload_through_ticket_then_stat_and_hash(backend: Harness) -> None:
    backend.storage.ensure_bucket(backend.bucket)
    key = new_key()
    ticket = backend.storage.presign_upload(
        backend.bucket, key, content_type="application/pdf", max_size=len(PDF) * 2
    )
    assert ticket.method == "POST"

    reply = backend.upload(ticket, PDF, CHINESE_NAME, "application/pdf")

    assert reply.status in (200, 201, 204), reply.body
    info = backend.storage.stat(backend.bucket, key)
    assert (info.key, info.size, info.content_type) == (key, len(PDF), "application/pdf")
    assert info.etag
    assert backend.storage.sha256(backend.bucket, key) == (hashlib.sha256(PDF).hexdigest(), len(PDF))
    assert backend.storage.read_head(backend.bucket, key, 8) == PDF[:8]
    assert backend.storage.read_head(backend.bucket, key) == PDF[:8192]
    assert backend.storage.get_bytes(backend.bucket, key) == PDF
    assert backend.storage.list_keys(backend.bucket) == [key]


def test_ticket_serialises_for_the_api(backend: Harness) -> None:
    before = datetime.now(UTC)
    ticket = backend.storage.presign_upload(
        backend.bucket, new_key(), content_type="image/png", max_size=1000
    )
    data = ticket.to_dict()
    assert set(data) == {"method", "url", "fields", "headers", "expires_at"}
    expires_at = datetime.fromisoformat(data["expires_at"])
    assert expires_at.utcoffset() == timedelta(0)
    assert before + timedelta(minutes=14) < expires_at <= before + timedelta(minutes=16)
    assert data["fields"]["Content-Type"] == "image/png"
    json.dumps(data)


def test_presigned_download_names_the_file(backend: Harness) -> None:
    backend.storage.ensure_bucket(backend.bucket)
    key = new_key()
    backend.storage.put_bytes(backend.bucket, key, PDF, "application/pdf")

    url = backend.storage.presign_download(
        backend.bucket, key, filename=CHINESE_NAME, content_type="application/pdf"
    )
    reply = backend.download(url)

    assert reply.status == 200
    assert reply.body == PDF
    disposition = reply.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert CHINESE_NAME_ENCODED in disposition
    assert 'filename="download.pdf"' in disposition
    assert reply.headers["Content-Type"].startswith("application/pdf")


@pytest.mark.parametrize("method", ["stat", "read_head", "sha256", "fingerprint", "get_bytes"])
def test_missing_object(backend: Harness, method: str) -> None:
    with pytest.raises(ObjectMissing):  # no bucket either
        getattr(backend.storage, method)(backend.bucket, "outcomes/nothing/here")
    backend.storage.ensure_bucket(backend.bucket)
    with pytest.raises(ObjectMissing):
        getattr(backend.storage, method)(backend.bucket, "outcomes/nothing/here")


def test_writing_or_listing_a_missing_bucket_fails(backend: Harness) -> None:
    with pytest.raises(StorageError):
        backend.storage.put_bytes(backend.bucket, "a/b", b"x", "text/plain")
    with pytest.raises(StorageError):
        backend.storage.list_keys(backend.bucket)
    assert backend.storage.delete_object(backend.bucket, "a/b") == 0


def test_delete_prefix_removes_every_version_and_nothing_else(backend: Harness) -> None:
    storage, bucket = backend.storage, backend.bucket
    storage.ensure_bucket(bucket)
    storage.put_bytes(bucket, "outcomes/1/a", b"first", "text/plain")
    storage.put_bytes(bucket, "outcomes/1/a", b"second", "text/plain")
    storage.put_bytes(bucket, "outcomes/1/sub/b", b"b", "text/plain")
    storage.put_bytes(bucket, "outcomes/10/c", b"lookalike prefix", "text/plain")
    storage.put_bytes(bucket, "portfolio/1/d", b"other area", "text/plain")
    if backend.kind == "s3":
        # A deleted object on a versioned bucket leaves a version and a delete marker behind.
        storage.put_bytes(bucket, "outcomes/1/gone", b"g", "text/plain")
        storage._client.remove_object(bucket, "outcomes/1/gone")
        assert ("outcomes/1/gone", True) in all_versions(backend, "outcomes/1/")
        expected = 4  # two versions of a, one of b, one of gone (delete markers not counted)
    else:
        expected = 2  # no versions kept: one file each for a and b

    assert storage.delete_prefix(bucket, "outcomes/1/") == expected

    assert storage.list_keys(bucket, "outcomes/1/") == []
    assert storage.list_keys(bucket) == ["outcomes/10/c", "portfolio/1/d"]
    assert storage.get_bytes(bucket, "outcomes/10/c") == b"lookalike prefix"
    if backend.kind == "s3":
        assert all_versions(backend, "outcomes/1/") == []  # no versions, no delete markers
    assert storage.delete_prefix(bucket, "outcomes/1/") == 0


def test_delete_object_removes_all_versions(backend: Harness) -> None:
    storage, bucket = backend.storage, backend.bucket
    storage.ensure_bucket(bucket)
    key = new_key()
    storage.put_bytes(bucket, key, b"one", "text/plain")
    storage.put_bytes(bucket, key, b"two", "text/plain")
    storage.put_bytes(bucket, key + "-sibling", b"keep", "text/plain")

    assert storage.delete_object(bucket, key) == (2 if backend.kind == "s3" else 1)

    with pytest.raises(ObjectMissing):
        storage.stat(bucket, key)
    assert storage.list_keys(bucket) == [key + "-sibling"]
    assert storage.delete_object(bucket, key) == 0
    if backend.kind == "s3":
        assert [k for k, _ in all_versions(backend, key)] == [key + "-sibling"]


def test_delete_prefix_with_nothing_under_it(backend: Harness) -> None:
    assert backend.storage.delete_prefix(backend.bucket, "outcomes/none/") == 0  # no bucket yet
    backend.storage.ensure_bucket(backend.bucket)
    assert backend.storage.delete_prefix(backend.bucket, "outcomes/none/") == 0


def test_list_keys_by_prefix(backend: Harness) -> None:
    storage, bucket = backend.storage, backend.bucket
    storage.ensure_bucket(bucket)
    for key in ["b/2", "a/1", "a/x/3", "ab/4"]:
        storage.put_bytes(bucket, key, b"x", "text/plain")
    assert storage.list_keys(bucket) == ["a/1", "a/x/3", "ab/4", "b/2"]
    assert storage.list_keys(bucket, "a/") == ["a/1", "a/x/3"]
    assert storage.list_keys(bucket, "a") == ["a/1", "a/x/3", "ab/4"]
    assert storage.list_keys(bucket, "c/") == []


def test_put_replaces_and_empty_object_reads_empty(backend: Harness) -> None:
    storage, bucket = backend.storage, backend.bucket
    storage.ensure_bucket(bucket)
    storage.put_bytes(bucket, "k", b"old", "text/plain")
    storage.put_bytes(bucket, "k", b"", "application/json")
    info = storage.stat(bucket, "k")
    assert (info.size, info.content_type) == (0, "application/json")
    assert storage.read_head(bucket, "k") == b""
    assert storage.sha256(bucket, "k") == (hashlib.sha256(b"").hexdigest(), 0)
    assert storage.fingerprint(bucket, "k") == (hashlib.sha256(b"").hexdigest(), 0, b"")


def test_sha256_of_a_large_object(backend: Harness) -> None:
    storage, bucket = backend.storage, backend.bucket
    storage.ensure_bucket(bucket)
    data = os.urandom(6 * 1024 * 1024)
    key = new_key()
    storage.put_bytes(bucket, key, data, "application/octet-stream")
    assert storage.sha256(bucket, key) == (hashlib.sha256(data).hexdigest(), len(data))
    assert storage.read_head(bucket, key) == data[:8192]
    # one streamed read: the hash, the size and the first bytes for sniffing, across chunk boundaries
    assert storage.fingerprint(bucket, key) == (hashlib.sha256(data).hexdigest(), len(data), data[:8192])
    assert storage.fingerprint(bucket, key, head=1024 * 1024 + 5)[2] == data[:1024 * 1024 + 5]
    assert storage.fingerprint(bucket, key, head=0)[2] == b""


def test_delete_bucket_empties_it_and_is_idempotent(backend: Harness) -> None:
    storage, bucket = backend.storage, backend.bucket
    storage.ensure_bucket(bucket)
    storage.put_bytes(bucket, "a/1", b"1", "text/plain")
    storage.put_bytes(bucket, "a/1", b"2", "text/plain")
    storage.delete_bucket(bucket)
    assert storage.bucket_exists(bucket) is False
    storage.delete_bucket(bucket)


def test_ping(backend: Harness) -> None:
    assert backend.storage.ping() is True


BAD_KEYS = [
    "",
    "/outcomes/1/a",
    "outcomes/../secrets",
    "..",
    "outcomes\\1",
    "outcomes/1/a\nb",
    "outcomes/1/\x00",
    "outcomes/1/\x7f",
    "a" * 513,
    "outcomes//1",
    "outcomes/./1",
    "outcomes/1/",
]
KEY_CALLS = {
    "stat": lambda s, b, k: s.stat(b, k),
    "read_head": lambda s, b, k: s.read_head(b, k),
    "sha256": lambda s, b, k: s.sha256(b, k),
    "fingerprint": lambda s, b, k: s.fingerprint(b, k),
    "get_bytes": lambda s, b, k: s.get_bytes(b, k),
    "put_bytes": lambda s, b, k: s.put_bytes(b, k, b"x", "text/plain"),
    "delete_object": lambda s, b, k: s.delete_object(b, k),
    "presign_upload": lambda s, b, k: s.presign_upload(b, k, content_type="text/plain", max_size=9),
    "presign_download": lambda s, b, k: s.presign_download(b, k, filename="a.txt"),
}


@pytest.mark.parametrize("call", KEY_CALLS)
def test_bad_keys_are_refused(backend: Harness, call: str) -> None:
    for key in BAD_KEYS:
        with pytest.raises(ValueError):
            KEY_CALLS[call](backend.storage, backend.bucket, key)
    KEY_CALLS["presign_upload"](backend.storage, backend.bucket, "a" * 512)  # the limit itself is fine


def test_bad_prefixes_are_refused(backend: Harness) -> None:
    for prefix in ["", "/a/", "a/../", "a//", "a\\"]:
        with pytest.raises(ValueError):
            backend.storage.delete_prefix(backend.bucket, prefix)
    with pytest.raises(ValueError):
        backend.storage.list_keys(backend.bucket, "../")


BAD_BUCKETS = ["", "ab", "a" * 64, "School", "-ylsh", "ylsh-", "yl_sh", "yl.sh", "yl sh", "ylsh\n"]
BUCKET_CALLS = {
    "ensure_bucket": lambda s, b: s.ensure_bucket(b),
    "bucket_exists": lambda s, b: s.bucket_exists(b),
    "delete_bucket": lambda s, b: s.delete_bucket(b),
    "list_keys": lambda s, b: s.list_keys(b),
    "delete_prefix": lambda s, b: s.delete_prefix(b, "a/"),
    "stat": lambda s, b: s.stat(b, "a"),
    "put_bytes": lambda s, b: s.put_bytes(b, "a", b"x", "text/plain"),
    "presign_upload": lambda s, b: s.presign_upload(b, "a", content_type="text/plain", max_size=9),
    "presign_download": lambda s, b: s.presign_download(b, "a", filename="a.txt"),
}


@pytest.mark.parametrize("call", BUCKET_CALLS)
def test_bad_bucket_names_are_refused(backend: Harness, call: str) -> None:
    for bucket in BAD_BUCKETS:
        with pytest.raises(ValueError):
            BUCKET_CALLS[call](backend.storage, bucket)


def test_bucket_name_limits() -> None:
    assert validate_bucket("abc") == "abc"
    assert validate_bucket("a" * 63) == "a" * 63
    assert validate_bucket("lp-ylsh-2026") == "lp-ylsh-2026"


def test_bad_upload_policies_are_refused(backend: Harness) -> None:
    storage, bucket, key = backend.storage, backend.bucket, new_key()
    with pytest.raises(ValueError):
        storage.presign_upload(bucket, key, content_type="application/pdf", max_size=0)
    with pytest.raises(ValueError):
        storage.presign_upload(bucket, key, content_type="application/pdf", max_size=5, min_size=6)
    with pytest.raises(ValueError):
        storage.presign_upload(bucket, key, content_type="text/html\r\nX-Evil: 1", max_size=5)
    with pytest.raises(ValueError):
        storage.presign_upload(
            bucket, key, content_type="application/pdf", max_size=5, expires=timedelta(days=8)
        )
    with pytest.raises(ValueError):
        storage.presign_download(bucket, key, filename="a.pdf", expires=timedelta(days=8))


# Content-Disposition ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("report.pdf", "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"),
        (CHINESE_NAME, f'attachment; filename="download.pdf"; {CHINESE_NAME_ENCODED}'),
        ("C:\\Users\\me\\a\"b.txt", "attachment; filename=\"a_b.txt\"; filename*=UTF-8''a%22b.txt"),
        (
            "x\r\nSet-Cookie: a=b",
            "attachment; filename=\"xSet-Cookie_ a=b\"; filename*=UTF-8''xSet-Cookie%3A%20a%3Db",
        ),
        ("", "attachment; filename=\"download\"; filename*=UTF-8''download"),
    ],
)
def test_content_disposition(filename: str, expected: str) -> None:
    assert content_disposition(filename) == expected


# Local backend: the policy its routes enforce --------------------------------------------------


def _ticket(local: Harness, **overrides):
    args = {"content_type": "application/pdf", "max_size": 1000, "min_size": 1, **overrides}
    key = args.pop("key", None) or new_key()
    return key, local.storage.presign_upload(local.bucket, key, **args)


def _tmp_files(local: Harness) -> list[str]:
    tmp = os.path.join(local.storage.root, ".tmp")
    return os.listdir(tmp) if os.path.isdir(tmp) else []


def test_local_refuses_oversize_and_stores_nothing(local: Harness) -> None:
    _key, ticket = _ticket(local, max_size=1000)
    reply = local.upload(ticket, b"x" * 1001, "big.pdf", "application/pdf")
    assert reply.status == 400
    assert reply.json()["error"]["code"] == "too_large"
    assert local.storage.list_keys(local.bucket) == []
    assert _tmp_files(local) == []
    # The same ticket still takes a file that fits: a refused upload does not use it up.
    assert local.upload(ticket, b"x" * 1000, "ok.pdf", "application/pdf").status == 204


def test_local_refuses_empty_file(local: Harness) -> None:
    _key, ticket = _ticket(local)
    reply = local.upload(ticket, b"", "empty.pdf", "application/pdf")
    assert reply.status == 400
    assert reply.json()["error"]["code"] == "too_small"
    assert local.storage.list_keys(local.bucket) == []


def test_local_refuses_wrong_content_type(local: Harness) -> None:
    _key, ticket = _ticket(local)
    forged = dataclasses.replace(ticket, fields={**ticket.fields, "Content-Type": "text/html"})
    reply = local.upload(forged, b"<script>", "evil.html", "text/html")
    assert reply.status == 400
    assert reply.json()["error"]["code"] == "wrong_content_type"
    missing = dataclasses.replace(ticket, fields={"token": ticket.fields["token"]})
    assert local.upload(missing, PDF, "a.pdf", "application/pdf").status == 400
    assert local.storage.list_keys(local.bucket) == []


def test_local_refuses_expired_ticket(local: Harness) -> None:
    _key, ticket = _ticket(local, expires=timedelta(seconds=-1))
    reply = local.upload(ticket, PDF[:500], "a.pdf", "application/pdf")
    assert reply.status == 403
    assert reply.json()["error"]["code"] == "token_expired"
    assert local.storage.list_keys(local.bucket) == []


def test_local_refuses_tampered_ticket(local: Harness) -> None:
    key, ticket = _ticket(local)
    body, signature = ticket.fields["token"].rsplit(".", 1)
    other = local.storage.presign_upload(
        local.bucket, "outcomes/someone/else", content_type="application/pdf", max_size=10**9
    ).fields["token"]
    flipped = signature[:5] + ("A" if signature[5] != "A" else "B") + signature[6:]
    for forged in [
        f"{body}.{flipped}",  # signature altered
        f"{other.rsplit('.', 1)[0]}.{signature}",  # a bigger policy under this ticket's signature
        "",
        "garbage",
    ]:
        fields = {**ticket.fields, "token": forged}
        forged_ticket = dataclasses.replace(ticket, fields=fields)
        reply = local.upload(forged_ticket, PDF[:500], "a.pdf", "application/pdf")
        assert reply.status == 403, forged
        assert reply.json()["error"]["code"] == "token_invalid"
    # A token signed with another key (another deployment) is refused too.
    stranger = LocalStorage(local.storage.root, "another-secret")
    foreign = stranger.presign_upload(local.bucket, key, content_type="application/pdf", max_size=1000)
    assert local.upload(foreign, PDF[:500], "a.pdf", "application/pdf").status == 403
    assert local.storage.list_keys(local.bucket) == []


def test_local_ticket_is_single_use(local: Harness) -> None:
    key, ticket = _ticket(local)
    assert local.upload(ticket, b"%PDF first", "a.pdf", "application/pdf").status == 204
    reply = local.upload(ticket, b"%PDF second", "a.pdf", "application/pdf")
    assert reply.status == 409
    assert reply.json()["error"]["code"] == "already_uploaded"
    assert local.storage.get_bytes(local.bucket, key) == b"%PDF first"
    assert _tmp_files(local) == []


def test_local_routes_refuse_another_schools_bucket(local: Harness) -> None:
    _key, ticket = _ticket(local)
    local.storage.put_bytes(local.bucket, "outcomes/1/a", PDF, "application/pdf")
    url = local.storage.presign_download(local.bucket, "outcomes/1/a", filename="a.pdf")
    local.set_tenant(types.SimpleNamespace(bucket="lp-another-school"))

    reply = local.upload(ticket, PDF[:500], "a.pdf", "application/pdf")
    assert reply.status == 404
    assert reply.json()["error"]["code"] == "not_found"
    assert local.download(url).status == 404
    assert local.storage.list_keys(local.bucket) == ["outcomes/1/a"]


def test_local_routes_need_a_school(local: Harness) -> None:
    local.storage.put_bytes(local.bucket, "outcomes/1/a", PDF, "application/pdf")
    url = local.storage.presign_download(local.bucket, "outcomes/1/a", filename="a.pdf")
    _key, ticket = _ticket(local)
    local.set_tenant(None)  # the platform's apex host
    assert local.download(url).status == 404
    assert local.upload(ticket, PDF[:500], "a.pdf", "application/pdf").status == 404


def test_local_error_messages_follow_accept_language(local: Harness) -> None:
    _key, ticket = _ticket(local, expires=timedelta(seconds=-1))
    default = local.upload(ticket, PDF[:10], "a.pdf", "application/pdf").json()["error"]
    english = local.upload(
        ticket, PDF[:10], "a.pdf", "application/pdf", headers={"Accept-Language": "en-US,en;q=0.9"}
    ).json()["error"]
    chinese = local.upload(
        ticket, PDF[:10], "a.pdf", "application/pdf", headers={"Accept-Language": "zh-TW,en;q=0.5"}
    ).json()["error"]
    assert default == chinese == {"code": "token_expired", "message": "連結已過期，請重新取得。"}
    assert english == {"code": "token_expired", "message": "This link has expired; please request a new one."}


def test_local_download_refusals(local: Harness) -> None:
    local.storage.put_bytes(local.bucket, "outcomes/1/a", PDF, "application/pdf")
    expired = local.storage.presign_download(
        local.bucket, "outcomes/1/a", filename="a.pdf", expires=timedelta(seconds=-1)
    )
    assert local.download(expired).status == 403
    assert local.download("/_storage/download/not-a-token").status == 403
    missing = local.storage.presign_download(local.bucket, "outcomes/1/none", filename="a.pdf")
    reply = local.download(missing, headers={"Accept-Language": "en"})
    assert reply.status == 404
    assert reply.json()["error"]["message"] == "File not found."
    # An upload token is not a download token (a salt per purpose).
    _key, ticket = _ticket(local, key="outcomes/1/a")
    assert local.download("/_storage/download/" + ticket.fields["token"]).status == 403


def test_local_upload_streams_and_stops_at_the_limit(local: Harness) -> None:
    consumed = []

    def endless():
        while True:
            consumed.append(1)
            yield b"x" * (1024 * 1024)

    grant = local.storage.read_upload_token(_ticket(local, max_size=3 * 1024 * 1024)[1].fields["token"])
    with pytest.raises(UploadRejected) as refused:
        local.storage.receive_upload(grant, "application/pdf", endless())
    assert (refused.value.code, refused.value.status) == ("too_large", 400)
    assert len(consumed) == 4
    assert local.storage.list_keys(local.bucket) == []
    assert _tmp_files(local) == []


def test_local_upload_ignores_app_wide_body_limit(local: Harness) -> None:
    assert local.app is not None
    local.app.config["MAX_CONTENT_LENGTH"] = 1024  # for ordinary forms; a ticket sets its own
    key, ticket = _ticket(local, max_size=100_000)
    data = b"%PDF" + b"x" * 50_000
    assert local.upload(ticket, data, "a.pdf", "application/pdf").status == 204
    assert local.storage.get_bytes(local.bucket, key) == data


def test_local_upload_refuses_malformed_bodies(local: Harness) -> None:
    assert local.app is not None
    client = local.app.test_client()
    assert client.post("/_storage/upload", data=b"plain", content_type="text/plain").status_code == 400
    assert client.post(
        "/_storage/upload", data=b"--xx\r\nbroken", content_type="multipart/form-data; boundary=xx"
    ).status_code == 400
    # A form without the file part, but with a valid token.
    _key, ticket = _ticket(local)
    reply = client.post("/_storage/upload", data=dict(ticket.fields), content_type="multipart/form-data")
    assert reply.status_code == 400
    assert reply.get_json()["error"]["code"] == "bad_form"


def test_local_routes_are_csrf_exempt(tmp_path) -> None:
    from flask_wtf import CSRFProtect

    app = make_local_app(str(tmp_path), "lp-csrf-test", before_storage=CSRFProtect().init_app)
    app.config["WTF_CSRF_ENABLED"] = True
    storage = app.extensions["lp_storage"]
    storage.ensure_bucket("lp-csrf-test")
    ticket = storage.presign_upload("lp-csrf-test", "a/b", content_type="text/plain", max_size=10)
    form = {**ticket.fields, "file": (io.BytesIO(b"hi"), "a.txt", "text/plain")}

    assert app.test_client().post(ticket.url, data=form).status_code == 204


# S3 backend ------------------------------------------------------------------------------------


def test_s3_ticket_pins_key_size_and_type(s3: Harness) -> None:
    key = new_key()
    ticket = s3.storage.presign_upload(
        s3.bucket, key, content_type="application/pdf", max_size=5_000_000, min_size=1
    )
    assert ticket.url == f"{s3.storage.public_endpoint}/{s3.bucket}"
    assert ticket.headers == {}
    assert ticket.fields["key"] == key
    assert ticket.fields["Content-Type"] == "application/pdf"
    policy = json.loads(base64.b64decode(ticket.fields["policy"]))
    conditions = policy["conditions"]
    assert ["eq", "$bucket", s3.bucket] in conditions
    assert ["eq", "$key", key] in conditions
    assert ["eq", "$Content-Type", "application/pdf"] in conditions
    assert ["content-length-range", 1, 5_000_000] in conditions
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert abs(expiration - ticket.expires_at) < timedelta(seconds=1)
    # The file part must come last: every policy field is sent before it.
    assert list(ticket.fields)[:2] == ["key", "Content-Type"]


def test_s3_unreachable_server_is_unavailable() -> None:
    dead = S3Storage(f"http://127.0.0.1:{free_port()}", "k", "secret")  # nothing listens there
    with pytest.raises(StorageUnavailable):
        dead.bucket_exists("lp-anything")
    with pytest.raises(StorageUnavailable):
        dead.stat("lp-anything", "a/b")
    assert dead.ping() is False
    # Signing needs no server.
    assert dead.presign_upload("lp-anything", "a/b", content_type="text/plain", max_size=9).fields
    assert dead.presign_download("lp-anything", "a/b", filename="a.txt").startswith("http://127.0.0.1:")


def test_s3_urls_use_the_public_endpoint(s3_config) -> None:
    backend = storage_from_config({**s3_config, "S3_PUBLIC_ENDPOINT": "https://files.example.test"})
    ticket = backend.presign_upload("lp-anything", "a/b", content_type="text/plain", max_size=9)
    assert ticket.url == "https://files.example.test/lp-anything"
    url = backend.presign_download("lp-anything", "a/b", filename="a.txt")
    assert url.startswith("https://files.example.test/lp-anything/a/b?")


def test_local_routes_answer_404_under_s3(s3_config, tmp_path) -> None:
    app = make_local_app(str(tmp_path), "lp-x", before_storage=lambda a: a.config.update(s3_config))
    assert isinstance(app.extensions["lp_storage"], S3Storage)
    client = app.test_client()
    assert client.post("/_storage/upload", data={"token": "x"}).status_code == 404
    assert client.get("/_storage/download/x").status_code == 404


# Configuration ---------------------------------------------------------------------------------


def test_storage_from_config(tmp_path) -> None:
    local = storage_from_config({"LOCAL_STORAGE_DIR": str(tmp_path), "SECRET_KEY": "s", "S3_ENDPOINT": ""})
    assert isinstance(local, LocalStorage)
    s3 = storage_from_config(
        {"S3_ENDPOINT": "http://127.0.0.1:9", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b"}
    )
    assert isinstance(s3, S3Storage) and s3.region == "us-east-1"
    for bad in [
        {"S3_ENDPOINT": "http://127.0.0.1:9"},
        {"S3_ENDPOINT": "127.0.0.1:9", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b"},
        {"S3_ENDPOINT": "http://h:9/path", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b"},
        {"SECRET_KEY": "s"},
        {"LOCAL_STORAGE_DIR": str(tmp_path)},
    ]:
        with pytest.raises(ValueError):
            storage_from_config(bad)
