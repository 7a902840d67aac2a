"""The local backend's stand-in for a storage server: upload and download routes on the app itself.

Both routes are authorised by a signed token (not by a session cookie, hence CSRF-exempt) and only
for the school of the current host: another school's token is a 404. With the S3 backend active
they answer 404. Nothing before these views may read ``request.form``/``request.files``: the upload
body is parsed here as a stream so a file never sits whole in memory or in a temporary spool.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from flask import Blueprint, Response, jsonify, request, send_file
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import (
    Data,
    Epilogue,
    Event,
    Field,
    File,
    MultipartDecoder,
    NeedData,
    Preamble,
)
from werkzeug.wsgi import get_input_stream

from lp_saas.tenants.context import current_tenant_or_none

from .base import ObjectMissing, content_disposition
from .local import DOWNLOAD_PATH, UPLOAD_PATH, LocalStorage, UploadRejected

storage_bp = Blueprint("lp_storage", __name__)

_READ_CHUNK = 64 * 1024
_MAX_FIELD_BYTES = 8 * 1024  # the token is a few hundred bytes
_MAX_PARTS = 16
_MAX_DECODER_BUFFER = 4 * _READ_CHUNK
# Room for the form fields and part headers around the file when comparing Content-Length.
_FORM_OVERHEAD = 64 * 1024

# Messages in the gettext catalogue (zh-TW by default, English by the request's language).
_MESSAGES: dict[str, object] = {
    "not_found": _l("File not found."),
    "token_invalid": _l("This upload or download link is invalid."),
    "token_expired": _l("This link has expired; please request a new one."),
    "bad_form": _l("The upload form is malformed."),
    "wrong_content_type": _l("The file type does not match the upload request."),
    "too_large": _l("The file is larger than allowed."),
    "too_small": _l("The file is empty or smaller than allowed."),
    "already_uploaded": _l("This upload link has already been used; please request a new one."),
}


class _BadForm(Exception):
    """The multipart body cannot be parsed or breaks the limits on fields."""


def _error(code: str, status: int) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "message": str(_MESSAGES[code])}}), status


def _local_storage() -> LocalStorage | None:
    from . import get_storage

    storage = get_storage()
    return storage if isinstance(storage, LocalStorage) else None


def _tenant_bucket() -> str | None:
    tenant = current_tenant_or_none()
    return getattr(tenant, "bucket", None) if tenant is not None else None


class _MultipartReader:
    """Pulls a multipart/form-data body apart as it arrives, never buffering a file part."""

    def __init__(self, stream: IO[bytes], boundary: bytes) -> None:
        self._stream = stream
        self._decoder = MultipartDecoder(
            boundary, max_form_memory_size=_MAX_DECODER_BUFFER, max_parts=_MAX_PARTS
        )

    def _next(self) -> Event:
        try:
            while isinstance(event := self._decoder.next_event(), NeedData):
                chunk = self._stream.read(_READ_CHUNK)
                self._decoder.receive_data(chunk or None)
        except (ValueError, RequestEntityTooLarge) as exc:
            raise _BadForm(str(exc)) from exc
        return event

    def fields_before_file(self) -> tuple[dict[str, str], bool]:
        """The fields sent before the part named ``file``, and whether that part was reached."""
        fields: dict[str, str] = {}
        while True:
            event = self._next()
            if isinstance(event, Preamble):
                continue
            if isinstance(event, Epilogue):
                return fields, False
            if not isinstance(event, (Field, File)):
                raise _BadForm("unexpected part data")
            if event.name == "file":
                return fields, True
            value = bytearray()
            while True:
                data = self._next()
                if not isinstance(data, Data):
                    raise _BadForm("field without data")
                value += data.data
                if len(value) > _MAX_FIELD_BYTES:
                    raise _BadForm(f"field {event.name!r} too long")
                if not data.more_data:
                    break
            fields[event.name] = value.decode("utf-8", "replace")

    def file_chunks(self) -> Iterator[bytes]:
        """The bytes of the ``file`` part, chunk by chunk (call after :meth:`fields_before_file`)."""
        while True:
            event = self._next()
            if not isinstance(event, Data):
                raise _BadForm("file part without data")
            if event.data:
                yield event.data
            if not event.more_data:
                return


@storage_bp.post(UPLOAD_PATH)
def upload() -> Response | tuple[Response, int]:
    """Receive one file for an upload ticket: 204, or a JSON error (400/403/404/409)."""
    storage = _local_storage()
    tenant_bucket = _tenant_bucket()
    if storage is None or tenant_bucket is None:
        return _error("not_found", 404)

    boundary = request.mimetype_params.get("boundary")
    if request.mimetype != "multipart/form-data" or not boundary:
        return _error("bad_form", 400)
    # Read the raw body: the app-wide MAX_CONTENT_LENGTH is for forms, the ticket sets this limit.
    reader = _MultipartReader(
        get_input_stream(request.environ, max_content_length=None), boundary.encode("latin-1")
    )
    try:
        fields, file_reached = reader.fields_before_file()
    except _BadForm:
        return _error("bad_form", 400)

    try:
        grant = storage.read_upload_token(fields.get("token", ""))
    except UploadRejected as exc:
        return _error(exc.code, exc.status)
    if grant.bucket != tenant_bucket:
        return _error("not_found", 404)
    if grant.expired:
        return _error("token_expired", 403)
    if not file_reached:
        return _error("bad_form", 400)
    if (request.content_length or 0) > grant.max_size + _FORM_OVERHEAD:
        return _error("too_large", 400)

    try:
        storage.receive_upload(grant, fields.get("Content-Type"), reader.file_chunks())
    except UploadRejected as exc:
        return _error(exc.code, exc.status)
    except _BadForm:
        return _error("bad_form", 400)
    # S3 answers a POST upload with 204 too, so browser code treats both backends alike.
    return Response(status=204)


@storage_bp.get(DOWNLOAD_PATH + "<token>")
def download(token: str) -> Response | tuple[Response, int]:
    """Stream one object as an attachment named as the user named it, or a JSON error (403/404)."""
    storage = _local_storage()
    tenant_bucket = _tenant_bucket()
    if storage is None or tenant_bucket is None:
        return _error("not_found", 404)
    try:
        grant = storage.read_download_token(token)
    except UploadRejected as exc:
        return _error(exc.code, exc.status)
    if grant.bucket != tenant_bucket:
        return _error("not_found", 404)
    if grant.expired:
        return _error("token_expired", 403)
    try:
        path, stored_type = storage.object_path(grant.bucket, grant.key)
    except ObjectMissing:
        return _error("not_found", 404)

    response = send_file(
        path,
        mimetype=grant.content_type or stored_type or "application/octet-stream",
        as_attachment=True,
        download_name=grant.filename or "download",
        conditional=True,
        max_age=0,
    )
    # One header builder for both backends, so S3 and local downloads name files identically.
    response.headers["Content-Disposition"] = content_disposition(grant.filename)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
