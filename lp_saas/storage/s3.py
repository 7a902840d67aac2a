"""S3-protocol backend on the ``minio`` SDK (MinIO, Ceph RGW, Garage, AWS S3).

Only plain S3 calls are used: no MinIO admin API. Two clients: one for the app's own calls
(``S3_ENDPOINT``, often an internal address) and one that only signs URLs handed to browsers
(``S3_PUBLIC_ENDPOINT``); both have the region set, so signing never needs a network call.
"""
from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from urllib.parse import urlsplit

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import ENABLED
from minio.datatypes import PostPolicy
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from minio.versioningconfig import VersioningConfig

from .base import (
    ObjectInfo,
    ObjectMissing,
    Storage,
    StorageError,
    StorageUnavailable,
    UploadTicket,
    content_disposition,
    validate_bucket,
    validate_expiry,
    validate_key,
    validate_upload_policy,
)

_CHUNK = 1024 * 1024
_MISSING_CODES = {"NoSuchKey", "NoSuchBucket", "NoSuchVersion", "ResourceNotFound"}
# A name nothing creates: HEAD on it tells whether the server answers at all.
_PING_BUCKET = "lp-saas-ping"

T = TypeVar("T")


def _split_endpoint(endpoint: str) -> tuple[str, bool]:
    """``"http://host:port"`` → ``("host:port", secure)``. Raises ValueError for anything else."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError(f"S3 endpoint must look like http(s)://host[:port], got {endpoint!r}")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"S3 endpoint must look like http(s)://host[:port], got {endpoint!r}")
    return parts.netloc, parts.scheme == "https"


def _http_client() -> urllib3.PoolManager:
    # minio's default retries five times with backoff (about 6 s when the server is down) and waits
    # five minutes to connect; a web request should learn "unavailable" faster than that.
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5.0, read=120.0),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )


@contextmanager
def _translate_errors(*, missing: bool = False) -> Iterator[None]:
    """Map SDK and transport errors onto the storage exceptions.

    With ``missing=True`` a missing object or bucket becomes ObjectMissing.
    """
    try:
        yield
    except S3Error as exc:
        if missing and exc.code in _MISSING_CODES:
            raise ObjectMissing(f"{exc.bucket_name}/{exc.object_name}: {exc.code}") from exc
        raise StorageError(f"{exc.code}: {exc.message}") from exc
    except (ServerError, urllib3.exceptions.HTTPError) as exc:
        raise StorageUnavailable(str(exc)) from exc
    except InvalidResponseError as exc:
        # A non-XML answer: usually a proxy's error page in front of a server that is down.
        # The SDK exposes the status only as a private attribute.
        if int(getattr(exc, "_code", 0) or 0) >= 500:
            raise StorageUnavailable(str(exc)) from exc
        raise StorageError(str(exc)) from exc
    except MinioException as exc:
        raise StorageError(str(exc)) from exc


class S3Storage(Storage):
    """Buckets and objects on an S3-protocol server.

    Raises ValueError from the constructor when an endpoint is not ``http(s)://host[:port]``.
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        *,
        region: str = "us-east-1",
        public_endpoint: str | None = None,
    ) -> None:
        host, secure = _split_endpoint(endpoint)
        self.public_endpoint = (public_endpoint or endpoint).rstrip("/")
        public_host, public_secure = _split_endpoint(self.public_endpoint)
        self.region = region
        self._client = Minio(
            host,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=_http_client(),
        )
        self._signer = Minio(
            public_host,
            access_key=access_key,
            secret_key=secret_key,
            secure=public_secure,
            region=region,
        )

    # Buckets ---------------------------------------------------------------------------------

    def ensure_bucket(self, bucket: str) -> bool:
        validate_bucket(bucket)
        created = False
        with _translate_errors():
            if not self._client.bucket_exists(bucket):
                try:
                    self._client.make_bucket(bucket)
                    created = True
                except S3Error as exc:
                    # Another process may have created it between our check and our call;
                    # BucketAlreadyExists (someone else's bucket) stays an error.
                    if exc.code != "BucketAlreadyOwnedByYou":
                        raise
            # Versioning keeps an overwritten or deleted file recoverable; enabling it is idempotent.
            self._client.set_bucket_versioning(bucket, VersioningConfig(ENABLED))
        return created

    def bucket_exists(self, bucket: str) -> bool:
        validate_bucket(bucket)
        with _translate_errors():
            return self._client.bucket_exists(bucket)

    def delete_bucket(self, bucket: str) -> None:
        validate_bucket(bucket)
        with _translate_errors():
            if not self._client.bucket_exists(bucket):
                return
            self._remove_versions(bucket, prefix=None, exact_key=None)
            try:
                self._client.remove_bucket(bucket)
            except S3Error as exc:
                if exc.code != "NoSuchBucket":
                    raise

    # Presigning (no network) -------------------------------------------------------------------

    def presign_upload(
        self,
        bucket: str,
        key: str,
        *,
        content_type: str,
        max_size: int,
        min_size: int = 1,
        expires: timedelta = timedelta(minutes=15),
    ) -> UploadTicket:
        validate_bucket(bucket)
        validate_key(key)
        validate_expiry(expires)
        validate_upload_policy(content_type, min_size, max_size)
        expires_at = datetime.now(UTC) + expires
        policy = PostPolicy(bucket, expires_at)
        policy.add_equals_condition("key", key)
        policy.add_equals_condition("Content-Type", content_type)
        policy.add_content_length_range_condition(min_size, max_size)
        with _translate_errors():
            signed = self._signer.presigned_post_policy(policy)
        # S3 wants the file as the last part, after every field the policy names.
        fields = {"key": key, "Content-Type": content_type, **signed}
        return UploadTicket(
            method="POST",
            url=f"{self.public_endpoint}/{bucket}",
            fields=fields,
            headers={},
            expires_at=expires_at,
        )

    def presign_download(
        self,
        bucket: str,
        key: str,
        *,
        filename: str,
        content_type: str | None = None,
        expires: timedelta = timedelta(minutes=5),
    ) -> str:
        """Raises ValueError also when ``expires`` is under one second (an S3 limit)."""
        validate_bucket(bucket)
        validate_key(key)
        validate_expiry(expires)
        response_headers: dict[str, str | list[str] | tuple[str]] = {
            "response-content-disposition": content_disposition(filename)
        }
        if content_type:
            response_headers["response-content-type"] = content_type
        with _translate_errors():
            return self._signer.presigned_get_object(
                bucket, key, expires=expires, response_headers=response_headers
            )

    # Objects -----------------------------------------------------------------------------------

    def stat(self, bucket: str, key: str) -> ObjectInfo:
        validate_bucket(bucket)
        validate_key(key)
        with _translate_errors(missing=True):
            obj = self._client.stat_object(bucket, key)
        return ObjectInfo(
            key=key,
            size=int(obj.size or 0),
            content_type=obj.content_type,
            etag=obj.etag,
        )

    def read_head(self, bucket: str, key: str, n: int = 8192) -> bytes:
        validate_bucket(bucket)
        validate_key(key)
        if n <= 0:
            return b""
        try:
            return self._read(bucket, key, lambda r: r.read(), offset=0, length=n)
        except StorageError as exc:
            # A ranged GET of an empty object answers 416; the first bytes of nothing are b"".
            if isinstance(exc.__cause__, S3Error) and exc.__cause__.code == "InvalidRange":
                return b""
            raise

    def fingerprint(self, bucket: str, key: str, head: int = 8192) -> tuple[str, int, bytes]:
        validate_bucket(bucket)
        validate_key(key)

        def digest(response: urllib3.BaseHTTPResponse) -> tuple[str, int, bytes]:
            hasher = hashlib.sha256()
            size = 0
            first = b""
            for chunk in response.stream(_CHUNK):
                if len(first) < head:
                    first += chunk[:head - len(first)]
                hasher.update(chunk)
                size += len(chunk)
            return hasher.hexdigest(), size, first

        return self._read(bucket, key, digest)

    def get_bytes(self, bucket: str, key: str) -> bytes:
        validate_bucket(bucket)
        validate_key(key)
        return self._read(bucket, key, lambda r: r.read())

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        validate_bucket(bucket)
        validate_key(key)
        with _translate_errors():
            self._client.put_object(
                bucket, key, io.BytesIO(data), length=len(data), content_type=content_type
            )

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        validate_bucket(bucket)
        if prefix:
            validate_key(prefix, prefix=True)
        with _translate_errors():
            return sorted(
                obj.object_name
                for obj in self._client.list_objects(bucket, prefix=prefix or None, recursive=True)
                if obj.object_name is not None
            )

    def delete_object(self, bucket: str, key: str) -> int:
        validate_bucket(bucket)
        validate_key(key)
        with _translate_errors():
            return self._remove_versions(bucket, prefix=key, exact_key=key)

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        validate_bucket(bucket)
        validate_key(prefix, prefix=True)
        with _translate_errors():
            return self._remove_versions(bucket, prefix=prefix, exact_key=None)

    def ping(self) -> bool:
        """True when the server answers any S3 request (even with an error); never raises."""
        try:
            with _translate_errors(), suppress(S3Error):  # any S3 answer means it is up
                self._client.bucket_exists(_PING_BUCKET)
        except StorageError:
            return False
        return True

    # Helpers -----------------------------------------------------------------------------------

    def _read(
        self,
        bucket: str,
        key: str,
        consume: Callable[[urllib3.BaseHTTPResponse], T],
        *,
        offset: int = 0,
        length: int | None = None,
    ) -> T:
        response = None
        with _translate_errors(missing=True):
            try:
                if length is None:
                    response = self._client.get_object(bucket, key, offset=offset)
                else:
                    response = self._client.get_object(bucket, key, offset=offset, length=length)
                return consume(response)
            finally:
                if response is not None:
                    response.close()
                    response.release_conn()

    def _remove_versions(self, bucket: str, *, prefix: str | None, exact_key: str | None) -> int:
        """Delete every version and delete marker under ``prefix`` (or of ``exact_key`` only).

        Returns the number of data versions removed. Raises S3Error/transport errors (callers
        translate them) and StorageError when the server refuses some deletions.
        """
        removed = 0
        targets: list[DeleteObject] = []
        try:
            for obj in self._client.list_objects(
                bucket, prefix=prefix, recursive=True, include_version=True
            ):
                if obj.object_name is None:
                    continue
                if exact_key is not None and obj.object_name != exact_key:
                    continue
                targets.append(DeleteObject(obj.object_name, obj.version_id))
                if not obj.is_delete_marker:
                    removed += 1
        except S3Error as exc:
            if exc.code == "NoSuchBucket":  # nothing to delete is not an error
                return 0
            raise
        if not targets:
            return 0
        errors = list(self._client.remove_objects(bucket, targets))
        if errors:
            first = errors[0]
            raise StorageError(
                f"{len(errors)} object versions not deleted, first {first.name}: {first.code}"
            )
        return removed
