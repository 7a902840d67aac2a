"""Local-directory backend: the embedded default, with no storage server.

Objects live in ``<root>/<bucket>/<key>``; their content type in ``<root>/.meta/<bucket>/<key>``;
files being written in ``<root>/.tmp/`` (bucket names cannot contain '.', so neither directory can
be a bucket). Every write goes to a temporary file that is fsynced and then renamed over the key, so
a crash never leaves half a file under a real key (the content type is written just after the
data; a crash in between leaves the previous or no content type, never a torn file). No versions are
kept. Single-use upload tickets rely on ``os.link`` refusing to overwrite, so the directory must be on
a filesystem with hard links (any local Linux filesystem).

Its "presigned" URLs point at the app's own routes (``views.py``) and carry a signed token. Unlike
an S3 server, this backend enforces the whole upload policy itself: signature, expiry, content type,
size range and single use.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

from itsdangerous import BadSignature, URLSafeTimedSerializer

from .base import (
    MAX_PRESIGN_EXPIRY,
    ObjectInfo,
    ObjectMissing,
    Storage,
    StorageError,
    UploadTicket,
    validate_bucket,
    validate_expiry,
    validate_key,
    validate_upload_policy,
)

UPLOAD_PATH = "/_storage/upload"
DOWNLOAD_PATH = "/_storage/download/"

_CHUNK = 1024 * 1024
_UPLOAD_SALT = "lp-saas.storage.upload"
_DOWNLOAD_SALT = "lp-saas.storage.download"
# The signature's own age check is a backstop; each token carries its exact expiry.
_TOKEN_MAX_AGE = int((MAX_PRESIGN_EXPIRY + timedelta(minutes=1)).total_seconds())


class UploadRejected(StorageError):
    """An upload or download through the app's storage routes broke its signed policy.

    ``code`` is the API error code and ``status`` the HTTP status the route answers with.
    """

    def __init__(self, code: str, status: int) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class UploadGrant:
    """The policy an upload token was signed with."""

    bucket: str
    key: str
    content_type: str
    min_size: int
    max_size: int
    expires_at: float  # Unix time

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at


@dataclass(frozen=True)
class DownloadGrant:
    """What a download token lets its bearer fetch, and under which name."""

    bucket: str
    key: str
    filename: str
    content_type: str | None
    expires_at: float  # Unix time

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at


class LocalStorage(Storage):
    """Buckets as directories under ``root_dir``; tokens signed with ``secret_key``.

    ``secret_key`` may be a list of keys, oldest first (Flask's ``SECRET_KEY_FALLBACKS`` plus
    ``SECRET_KEY``): tokens are signed with the last and accepted with any.
    """

    def __init__(
        self,
        root_dir: str | os.PathLike[str],
        secret_key: str | bytes | Sequence[str] | Sequence[bytes],
    ) -> None:
        self.root = os.path.abspath(os.fspath(root_dir))
        self._upload_signer = URLSafeTimedSerializer(secret_key, salt=_UPLOAD_SALT)
        self._download_signer = URLSafeTimedSerializer(secret_key, salt=_DOWNLOAD_SALT)

    # Buckets ---------------------------------------------------------------------------------

    def ensure_bucket(self, bucket: str) -> bool:
        path = self._bucket_dir(bucket)
        try:
            os.makedirs(self.root, exist_ok=True)
            os.mkdir(path)
        except FileExistsError:
            return False
        except OSError as exc:
            raise StorageError(f"cannot create bucket {bucket}: {exc}") from exc
        return True

    def bucket_exists(self, bucket: str) -> bool:
        return os.path.isdir(self._bucket_dir(bucket))

    def delete_bucket(self, bucket: str) -> None:
        for path in (self._bucket_dir(bucket), os.path.join(self.root, ".meta", bucket)):
            try:
                shutil.rmtree(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StorageError(f"cannot delete bucket {bucket}: {exc}") from exc

    # Presigning (no I/O) -----------------------------------------------------------------------

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
        token = self._upload_signer.dumps(
            {
                "b": bucket,
                "k": key,
                "t": content_type,
                "min": min_size,
                "max": max_size,
                "exp": expires_at.timestamp(),
            }
        )
        return UploadTicket(
            method="POST",
            url=UPLOAD_PATH,
            fields={"token": token, "Content-Type": content_type},
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
        """A path on the app's own host (``/_storage/download/<token>``), not an absolute URL."""
        validate_bucket(bucket)
        validate_key(key)
        validate_expiry(expires)
        expires_at = datetime.now(UTC) + expires
        token = self._download_signer.dumps(
            {"b": bucket, "k": key, "f": filename, "t": content_type, "exp": expires_at.timestamp()}
        )
        return DOWNLOAD_PATH + token

    # Tokens (used by views.py) -----------------------------------------------------------------

    def read_upload_token(self, token: str) -> UploadGrant:
        """The policy inside ``token`` (expiry not yet checked: see ``UploadGrant.expired``).

        Raises UploadRejected("token_invalid", 403) when the token is tampered with or malformed.
        """
        data = self._load(self._upload_signer, token)
        try:
            return UploadGrant(
                bucket=validate_bucket(data["b"]),
                key=validate_key(data["k"]),
                content_type=str(data["t"]),
                min_size=int(data["min"]),
                max_size=int(data["max"]),
                expires_at=float(data["exp"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UploadRejected("token_invalid", 403) from exc

    def read_download_token(self, token: str) -> DownloadGrant:
        """The object and filename inside ``token`` (expiry not yet checked).

        Raises UploadRejected("token_invalid", 403) when the token is tampered with or malformed.
        """
        data = self._load(self._download_signer, token)
        try:
            return DownloadGrant(
                bucket=validate_bucket(data["b"]),
                key=validate_key(data["k"]),
                filename=str(data["f"]),
                content_type=str(data["t"]) if data["t"] else None,
                expires_at=float(data["exp"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UploadRejected("token_invalid", 403) from exc

    @staticmethod
    def _load(signer: URLSafeTimedSerializer, token: str) -> dict[str, Any]:
        try:
            data = signer.loads(token, max_age=_TOKEN_MAX_AGE)
        except BadSignature as exc:  # includes SignatureExpired and malformed payloads
            raise UploadRejected("token_invalid", 403) from exc
        if not isinstance(data, dict):
            raise UploadRejected("token_invalid", 403)
        return data

    def receive_upload(
        self, grant: UploadGrant, content_type: str | None, chunks: Iterable[bytes]
    ) -> ObjectInfo:
        """Store the file of one upload if it keeps to ``grant``'s policy; the ticket is single-use.

        Consumes ``chunks`` as they arrive and stops as soon as the size limit is passed. Raises
        UploadRejected with code ``wrong_content_type`` (400), ``not_found`` (404, no bucket),
        ``already_uploaded`` (409), ``too_large`` or ``too_small`` (400); nothing is stored then.
        Exceptions raised by ``chunks`` (a broken form, a client that went away) pass through, also
        leaving nothing behind.
        """
        if content_type != grant.content_type:
            raise UploadRejected("wrong_content_type", 400)
        if not self.bucket_exists(grant.bucket):
            raise UploadRejected("not_found", 404)
        path = self._object_path(grant.bucket, grant.key)
        if os.path.lexists(path):
            raise UploadRejected("already_uploaded", 409)

        def write(out: BinaryIO) -> int:
            size = 0
            for chunk in chunks:
                size += len(chunk)
                if size > grant.max_size:
                    raise UploadRejected("too_large", 400)
                out.write(chunk)
            if size < grant.min_size:
                raise UploadRejected("too_small", 400)
            return size

        try:
            self._write_atomically(path, write, overwrite=False)
        except FileExistsError as exc:  # another upload with the same ticket won the race
            raise UploadRejected("already_uploaded", 409) from exc
        self._write_meta(grant.bucket, grant.key, grant.content_type)
        return self.stat(grant.bucket, grant.key)

    def object_path(self, bucket: str, key: str) -> tuple[str, str | None]:
        """Filesystem path and stored content type of an object, for streaming it out.

        Raises ObjectMissing.
        """
        path = self._object_path(bucket, key)
        if not os.path.isfile(path):
            raise ObjectMissing(f"{bucket}/{key}")
        return path, self._read_meta(bucket, key)

    # Objects -----------------------------------------------------------------------------------

    def stat(self, bucket: str, key: str) -> ObjectInfo:
        path = self._object_path(bucket, key)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectMissing(f"{bucket}/{key}") from exc
        if not os.path.isfile(path):
            raise ObjectMissing(f"{bucket}/{key}")
        return ObjectInfo(
            key=key,
            size=st.st_size,
            content_type=self._read_meta(bucket, key),
            etag=f"{st.st_mtime_ns:x}-{st.st_size:x}",
        )

    def read_head(self, bucket: str, key: str, n: int = 8192) -> bytes:
        with self._open(bucket, key) as f:
            return f.read(max(n, 0))

    def fingerprint(self, bucket: str, key: str, head: int = 8192) -> tuple[str, int, bytes]:
        hasher = hashlib.sha256()
        size = 0
        first = b""
        with self._open(bucket, key) as f:
            while chunk := f.read(_CHUNK):
                if len(first) < head:
                    first += chunk[:head - len(first)]
                hasher.update(chunk)
                size += len(chunk)
        return hasher.hexdigest(), size, first

    def get_bytes(self, bucket: str, key: str) -> bytes:
        with self._open(bucket, key) as f:
            return f.read()

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        path = self._object_path(bucket, key)
        if not self.bucket_exists(bucket):
            raise StorageError(f"bucket {bucket} does not exist")

        def write(out: BinaryIO) -> int:
            out.write(data)
            return len(data)

        self._write_atomically(path, write, overwrite=True)
        self._write_meta(bucket, key, content_type)

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        bucket_dir = self._bucket_dir(bucket)
        if prefix:
            validate_key(prefix, prefix=True)
        if not os.path.isdir(bucket_dir):
            raise StorageError(f"bucket {bucket} does not exist")
        # Walk only the deepest directory the prefix names, then filter as S3 does (string prefix).
        start_dir = os.path.join(bucket_dir, *prefix.split("/")[:-1])
        keys: list[str] = []
        for dirpath, _dirnames, filenames in os.walk(start_dir):
            for name in filenames:
                rel = os.path.relpath(os.path.join(dirpath, name), bucket_dir)
                key = rel.replace(os.sep, "/")
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def delete_object(self, bucket: str, key: str) -> int:
        path = self._object_path(bucket, key)
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return 0
        except OSError as exc:
            raise StorageError(f"cannot delete {bucket}/{key}: {exc}") from exc
        meta = self._meta_path(bucket, key)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(meta)
        self._prune_dirs(os.path.dirname(path), self._bucket_dir(bucket))
        self._prune_dirs(os.path.dirname(meta), os.path.join(self.root, ".meta", bucket))
        return 1

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        validate_key(prefix, prefix=True)
        if not self.bucket_exists(bucket):
            return 0
        return sum(self.delete_object(bucket, key) for key in self.list_keys(bucket, prefix))

    def ping(self) -> bool:
        """True when the root directory exists (or can be created) and is writable."""
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError:
            return False
        return os.access(self.root, os.W_OK | os.X_OK)

    # Helpers -----------------------------------------------------------------------------------

    def _bucket_dir(self, bucket: str) -> str:
        return os.path.join(self.root, validate_bucket(bucket))

    def _object_path(self, bucket: str, key: str) -> str:
        # validate_key rules out '..', '.', empty segments and a leading '/', so this stays inside.
        return os.path.join(self._bucket_dir(bucket), *validate_key(key).split("/"))

    def _meta_path(self, bucket: str, key: str) -> str:
        return os.path.join(self.root, ".meta", bucket, *key.split("/"))

    def _open(self, bucket: str, key: str) -> BinaryIO:
        path = self._object_path(bucket, key)
        try:
            return open(path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectMissing(f"{bucket}/{key}") from exc

    def _write_atomically(
        self, path: str, write: Callable[[BinaryIO], int], *, overwrite: bool
    ) -> int:
        """Run ``write(file)`` on a temp file, fsync it and move it to ``path``.

        With ``overwrite=False`` the move fails with FileExistsError if ``path`` appeared meanwhile.
        The temp file is removed whatever happens. Returns what ``write`` returned.
        """
        tmp_dir = os.path.join(self.root, ".tmp")
        try:
            os.makedirs(tmp_dir, exist_ok=True)
            fd, tmp_path = tempfile.mkstemp(dir=tmp_dir)
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as out:
                result = write(out)
                out.flush()
                os.fsync(out.fileno())
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if overwrite:
                os.replace(tmp_path, path)
            else:
                # link() refuses to replace an existing file, which rename() would do silently.
                os.link(tmp_path, path)
            return result
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno in (errno.EISDIR, errno.ENOTDIR, errno.EEXIST):
                raise StorageError(f"key conflicts with another key's directory: {path}") from exc
            raise StorageError(f"cannot write {path}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_path)  # already gone after os.replace

    def _write_meta(self, bucket: str, key: str, content_type: str | None) -> None:
        meta = self._meta_path(bucket, key)
        body = json.dumps({"content_type": content_type}).encode()
        self._write_atomically(meta, lambda out: out.write(body), overwrite=True)

    def _read_meta(self, bucket: str, key: str) -> str | None:
        try:
            with open(self._meta_path(bucket, key), "rb") as f:
                value = json.load(f).get("content_type")
        except (OSError, ValueError, AttributeError):
            return None
        return value if isinstance(value, str) else None

    @staticmethod
    def _prune_dirs(directory: str, stop: str) -> None:
        """Remove empty directories from ``directory`` up to (not including) ``stop``."""
        while directory.startswith(stop + os.sep):
            try:
                os.rmdir(directory)
            except OSError:
                return
            directory = os.path.dirname(directory)
