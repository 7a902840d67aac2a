"""Files of portfolio items: the upload ticket, the verification job, downloads.

Bytes never pass through the web process on this path: the browser (or integrator) sends them
straight to storage with a presigned POST that pins the key, the exact size and the type. A file
counts as received only after ``verify_file`` has checked the stored object: it exists, has the
declared size and SHA-256, and its type sniffed from the content is the declared one and is in the
school's allow-list. A rejected object is removed from storage at once.

Owners (course outcomes, performance items, summary images) register a callback with
:func:`on_file_checked` to move their own status when their file is verified or rejected.
"""
from __future__ import annotations

import re
import uuid
from datetime import timedelta

import filetype
import sqlalchemy as sa
from flask import has_request_context, request
from flask_babel import lazy_gettext as _l

from lp_saas import clock
from lp_saas.audit import services as audit
from lp_saas.database import db
from lp_saas.jobs.queue import job_kind, submit
from lp_saas.portfolio.models import StoredFile
from lp_saas.storage import ObjectMissing, StorageUnavailable, get_storage

#: file type → the content types a client may declare for it
CONTENT_TYPES = {
    "pdf": ("application/pdf",),
    "jpg": ("image/jpeg", "image/jpg", "image/pjpeg"),
    "png": ("image/png",),
    "mp3": ("audio/mpeg", "audio/mp3"),
    "mp4": ("video/mp4",),
}
CANONICAL_CONTENT_TYPE = {kind: types[0] for kind, types in CONTENT_TYPES.items()}
EXTENSION_ALIASES = {"jpeg": "jpg"}
#: what ``filetype`` calls the kinds we accept
SNIFFED = {"pdf": "pdf", "jpg": "jpg", "png": "png", "mp3": "mp3", "mp4": "mp4", "m4v": "mp4"}
#: an inner extension that makes a name a disguise (report.exe.pdf, photo.php.jpg)
RISKY_EXTENSIONS = frozenset("""exe com bat cmd msi scr pif cpl dll js jse vbs vbe wsf wsh ps1 psm1 sh bash
jar apk app html htm xhtml svg php phtml asp aspx jsp cgi pl py rb hta lnk reg iso dmg""".split())
UPLOAD_TICKET_LIFETIME = timedelta(minutes=30)
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")

REJECT_REASONS = {
    "missing": _l("The file never arrived in storage. Please upload it again."),
    "empty": _l("The file is empty."),
    "size_mismatch": _l("The stored file's size differs from the declared size."),
    "hash_mismatch": _l("The stored file's SHA-256 differs from the declared one: it was changed or damaged on the way."),
    "type_mismatch": _l("The file's content is not what its name and type say (for example a renamed file)."),
    "type_not_allowed": _l("This kind of file is not allowed by the school's rules."),
    "too_large": _l("The file is larger than the school's rules allow for its type."),
}


def reject_message(reason: str | None) -> str:
    return str(REJECT_REASONS.get(reason or "", reason or ""))


def check_file_spec(spec, rules: dict) -> tuple[dict | None, dict]:
    """Validate a client's description of a file against the school's upload rules.

    Returns (normalised spec with ``file_type``, errors field → message). Nothing is stored.
    """
    errors: dict[str, str] = {}
    if not isinstance(spec, dict):
        return None, {"file": str(_l("Describe the file as {filename, size, content_type, sha256}."))}
    unknown = set(spec) - {"filename", "size", "content_type", "sha256"}
    if unknown:
        errors["file"] = str(_l("Unknown fields: %(fields)s.", fields=", ".join(sorted(unknown))))
    allowed: dict = rules["uploads"]["file_types"]
    filename = spec.get("filename")
    file_type = None
    if not isinstance(filename, str) or not filename.strip() or len(filename) > 200:
        errors["file.filename"] = str(_l("Give the file's name (at most 200 characters)."))
    elif (any(c in filename for c in "/\\") or ".." in filename or filename.startswith(".")
          or any(ord(c) < 32 or ord(c) == 127 for c in filename)):
        errors["file.filename"] = str(_l("The file name must not contain paths, '..' or control characters."))
    else:
        parts = filename.strip().lower().split(".")
        ext = EXTENSION_ALIASES.get(parts[-1], parts[-1]) if len(parts) > 1 else ""
        inner = [EXTENSION_ALIASES.get(p, p) for p in parts[1:-1]]
        if any(p in RISKY_EXTENSIONS or p in CONTENT_TYPES for p in inner):
            errors["file.filename"] = str(_l("Double extensions such as .pdf.exe or .exe.pdf are not allowed."))
        elif ext not in allowed:
            errors["file.filename"] = str(_l("This file type is not allowed; allowed: %(types)s.",
                                            types=", ".join(sorted(allowed))))
        else:
            file_type = ext
    content_type = spec.get("content_type")
    if not isinstance(content_type, str) or not content_type:
        errors["file.content_type"] = str(_l("Give the file's content type, e.g. application/pdf."))
    elif file_type and content_type.lower().split(";")[0].strip() not in CONTENT_TYPES[file_type]:
        errors["file.content_type"] = str(_l("The content type %(content_type)s does not match a .%(ext)s file.",
                                             content_type=content_type[:60], ext=file_type))
    size = spec.get("size")
    if not isinstance(size, int) or isinstance(size, bool):
        errors["file.size"] = str(_l("Give the file's size in bytes as a whole number."))
    elif size <= 0:
        errors["file.size"] = str(_l("The file is empty."))
    elif file_type and size > allowed[file_type]:
        errors["file.size"] = str(_l("A .%(ext)s file may be at most %(limit)s MB at this school.",
                                     ext=file_type, limit=round(allowed[file_type] / 1048576, 1)))
    sha = spec.get("sha256")
    if not isinstance(sha, str) or not SHA256_RE.match(sha.lower()):
        errors["file.sha256"] = str(_l("Give the file's SHA-256 as 64 hexadecimal characters."))
    if errors:
        return None, errors
    return {"filename": filename.strip(), "size": size, "file_type": file_type,
            "content_type": CANONICAL_CONTENT_TYPE[file_type], "sha256": sha.lower()}, {}


def create_upload(tenant, *, owner_kind: str, owner_id: uuid.UUID, student_id: uuid.UUID | None,
                  spec: dict) -> tuple[StoredFile, dict]:
    """A pending file row and the presigned upload for it (``spec`` from :func:`check_file_spec`).

    The POST policy pins the generated key, the exact declared size and the content type.
    Returns (file, the API's ``upload`` object). Flush only. Raises QuotaExceeded (409) when the
    school's plan has no room for the file.
    """
    from lp_saas.platform.services import check_storage_quota

    check_storage_quota(tenant, spec["size"])
    file_id = uuid.uuid4()
    key = f"{owner_kind}s/{owner_id}/{file_id}"
    stored = StoredFile(
        tenant_id=tenant.id, id=file_id, owner_kind=owner_kind, owner_id=owner_id, student_id=student_id,
        key=key, filename=spec["filename"], file_type=spec["file_type"], content_type=spec["content_type"],
        declared_size=spec["size"], declared_sha256=spec["sha256"], status="pending",
        upload_expires_at=clock.now() + UPLOAD_TICKET_LIFETIME)
    db.session.add(stored)
    db.session.flush()
    ticket = get_storage().presign_upload(tenant.bucket, key, content_type=spec["content_type"],
                                          min_size=spec["size"], max_size=spec["size"],
                                          expires=UPLOAD_TICKET_LIFETIME)
    upload = ticket.to_dict()
    if upload["url"].startswith("/") and has_request_context():
        upload["url"] = request.host_url.rstrip("/") + upload["url"]
    return stored, upload


def begin_verification(tenant, stored: StoredFile, actor=None) -> None:
    """The client says the bytes are sent: verify them in a job (idempotent; flush only)."""
    if stored.status in ("verifying", "verified"):
        return
    stored.status = "verifying"
    stored.uploaded_at = clock.now()
    db.session.flush()
    submit(tenant.id, "verify_file", {"file_id": str(stored.id)}, created_by=actor)


_OWNER_CALLBACKS: dict = {}


def on_file_checked(owner_kind: str):
    """Register ``callback(stored_file, verified: bool)`` for files of ``owner_kind``."""
    def decorator(fn):
        _OWNER_CALLBACKS[owner_kind] = fn
        return fn

    return decorator


def sniff(head: bytes) -> str | None:
    kind = filetype.guess(head)
    return SNIFFED.get(kind.extension) if kind is not None else None


def verify_stored_file(tenant, stored: StoredFile, rules: dict) -> str | None:
    """Check the object in storage. Returns None when it is good, else the reject reason.

    Raises StorageUnavailable (the job retries later).
    """
    storage = get_storage()
    try:
        info = storage.stat(tenant.bucket, stored.key)
    except ObjectMissing:
        return "missing"
    if info.size == 0:
        return "empty"
    if info.size != stored.declared_size:
        return "size_mismatch"
    allowed = rules["uploads"]["file_types"]
    if stored.file_type not in allowed:
        return "type_not_allowed"
    if info.size > allowed[stored.file_type]:
        return "too_large"
    digest, size, head = storage.fingerprint(tenant.bucket, stored.key, head=8192)  # one download
    stored.size, stored.sha256 = size, digest
    if digest != stored.declared_sha256:
        return "hash_mismatch"
    stored.sniffed_type = sniff(head)
    if stored.sniffed_type != stored.file_type:
        return "type_mismatch"
    return None


@job_kind("verify_file", queue="high", timeout=300, max_attempts=6, backoff=(5, 30, 120, 300, 600))
def verify_file_job(job, progress):
    """Verify one uploaded file and move its owner on. Idempotent: a verified or rejected file is left."""
    from lp_saas.tenants.context import current_tenant
    from lp_saas.tenants.rulesets import current_rules

    tenant = current_tenant()
    stored = db.session.get(StoredFile, (tenant.id, uuid.UUID(job.args["file_id"])))
    if stored is None or stored.status in ("verified", "rejected"):
        return {"status": stored.status if stored else "gone"}
    rules = current_rules(tenant.id)
    reason = verify_stored_file(tenant, stored, rules)
    if reason is None:
        stored.status, stored.verified_at, stored.reject_reason = "verified", clock.now(), None
    else:
        stored.status, stored.reject_reason = "rejected", reason
        try:
            get_storage().delete_object(tenant.bucket, stored.key)
        except StorageUnavailable:
            raise
    callback = _OWNER_CALLBACKS.get(stored.owner_kind)
    if callback is not None:
        callback(stored, reason is None)
    audit.record(tenant.id, "system:verification", "file.verified" if reason is None else "file.rejected",
                 target_type="file", target_id=stored.id, student_id=stored.student_id,
                 details={"reason": reason} if reason else None)
    db.session.flush()
    return {"status": stored.status, "reason": reason}


def download_url(tenant, actor, stored: StoredFile) -> str:
    """A short-lived URL to the file, sent back with its original name. The read is audited."""
    url = get_storage().presign_download(tenant.bucket, stored.key, filename=stored.filename,
                                         content_type=stored.content_type)
    audit.record(tenant.id, actor, "file.download", target_type="file", target_id=stored.id,
                 student_id=stored.student_id, details={"owner": stored.owner_kind})
    if url.startswith("/") and has_request_context():
        url = request.host_url.rstrip("/") + url
    return url


def files_of(tenant_id, owner_kind: str, owner_ids) -> dict:
    """owner id → list of its files (one query)."""
    out: dict = {}
    ids = list(owner_ids)
    if not ids:
        return out
    for stored in db.session.scalars(sa.select(StoredFile).where(
            StoredFile.tenant_id == tenant_id, StoredFile.owner_kind == owner_kind,
            StoredFile.owner_id.in_(ids)).order_by(StoredFile.created_at)):
        out.setdefault(stored.owner_id, []).append(stored)
    return out
