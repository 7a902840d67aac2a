"""自傳 / 學習計畫 (self-statements) and the 多元表現綜整心得 (performance summary).

Self-statements: a student keeps several versions, each of a kind (``autobiography`` 自傳 or
``study_plan`` 學習計畫) and aimed at a department, and writes them with ``self_statement.edit``
(own). Parents, homeroom teachers and counselors read them by the scope of
``self_statement.view``; every read by someone other than the student is audited.

The performance summary: one per student, written with ``performance.upload`` (own) and read
with ``performance.view`` by scope. Its body is at most the school's
``performance_summary.max_chars`` (never above the national 800), counted in characters
(``\\r\\n`` counts as one); its images (jpg/png only) go through the verified file path with owner
kind ``summary_image``, at most ``performance_summary.max_images`` (never above the national 3).

Services flush and never commit; the request that calls them commits.
"""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import abort
from flask_babel import lazy_gettext as _l

from lp_saas import clock
from lp_saas.accounts.models import User
from lp_saas.audit import services as audit
from lp_saas.database import db
from lp_saas.errors import AppError, Forbidden, ValidationFailed
from lp_saas.portfolio import files
from lp_saas.portfolio.models import PerformanceSummary, SelfStatement, StoredFile
from lp_saas.portfolio.performances import (REQUIRED, UNKNOWN_FIELD, check_line, check_long_text, lock_student,
                                            remove_stored_file)
from lp_saas.roles import permissions
from lp_saas.tenants.national import national_rules_on
from lp_saas.tenants.rulesets import current_rules

STATEMENT_KINDS = {"autobiography": _l("Autobiography"), "study_plan": _l("Study plan")}
TARGET_MAX = 120
TITLE_MAX = 100
#: long enough for any admission portal's autobiography or study plan, short enough to stay a text
BODY_MAX = 5000
#: versions a student may keep (one per target department is the usual use)
MAX_VERSIONS = 50
STATEMENT_FIELDS = frozenset({"kind", "target", "title", "body"})
SUMMARY_IMAGE_TYPES = ("jpg", "png")


# --- self-statements ---------------------------------------------------------------------------------

def check_statement(data, *, partial: bool = False) -> dict:
    """Validated values of a statement (all fields, or those present when ``partial``).

    Raises ValidationFailed (field → message).
    """
    if not isinstance(data, dict):
        raise ValidationFailed({"body": str(_l("Give the fields as an object."))})
    errors: dict = {}
    clean: dict = {}
    for key in data:
        if key not in STATEMENT_FIELDS:
            errors[str(key)[:80]] = UNKNOWN_FIELD
    if not partial or "kind" in data:
        if data.get("kind") in (None, ""):
            errors["kind"] = REQUIRED
        elif data.get("kind") not in STATEMENT_KINDS:
            errors["kind"] = _l("Choose one of: %(choices)s.", choices=", ".join(STATEMENT_KINDS))
        else:
            clean["kind"] = data["kind"]
    for name, limit in (("target", TARGET_MAX), ("title", TITLE_MAX)):
        if not partial or name in data:
            value, message = check_line(data.get(name), max_length=limit)
            if message:
                errors[name] = message
            else:
                clean[name] = value
    if not partial or "body" in data:
        value, message = check_long_text(data.get("body"), max_length=BODY_MAX)
        if message:
            errors["body"] = message
        else:
            clean["body"] = value
    if partial and not data and not errors:
        errors["body"] = _l("Nothing to change: send kind, target, title or body.")
    if errors:
        raise ValidationFailed({key: str(value) for key, value in errors.items()})
    return clean


def create_statement(tenant, actor, data) -> SelfStatement:
    """A new version of the actor's own statement. Needs ``self_statement.edit`` (own).

    Raises Forbidden (403); ValidationFailed (422); AppError 422 ``statement_cap`` beyond
    :data:`MAX_VERSIONS`. Audited as ``self_statement.created``. Flush only.
    """
    if not permissions.can(actor, "self_statement.edit", student_id=actor.id):
        raise Forbidden(_l("You may not write self-statements."))
    clean = check_statement(data)
    lock_student(tenant.id, actor.id)
    count = db.session.scalar(sa.select(sa.func.count()).select_from(SelfStatement).where(
        SelfStatement.tenant_id == tenant.id, SelfStatement.student_id == actor.id)) or 0
    if count >= MAX_VERSIONS:
        raise AppError(_l("You already keep %(count)s versions; delete one before writing another.", count=count),
                       code="statement_cap", status=422,
                       details={"cap": {"name": "self_statements.max_versions", "limit": MAX_VERSIONS, "used": count}})
    statement = SelfStatement(tenant_id=tenant.id, id=uuid.uuid4(), student_id=actor.id, **clean)
    db.session.add(statement)
    db.session.flush()
    audit.record(tenant.id, actor, "self_statement.created", target_type="self_statement", target_id=statement.id,
                 student_id=actor.id, details={"kind": statement.kind})
    return statement


def _require_owner(actor, statement: SelfStatement) -> None:
    """Only the student edits their statements; others who can read it get 403, the rest 404."""
    if statement.student_id == actor.id and permissions.can(actor, "self_statement.edit", student_id=actor.id):
        return
    if permissions.can(actor, "self_statement.view", student_id=statement.student_id):
        raise Forbidden(_l("Only the student may change their self-statements."))
    abort(404)


def update_statement(tenant, actor, statement: SelfStatement, data) -> SelfStatement:
    """Change fields of the actor's own statement (those given). Raises as :func:`create_statement`."""
    _require_owner(actor, statement)
    clean = check_statement(data, partial=True)
    changed = sorted(key for key, value in clean.items() if getattr(statement, key) != value)
    for key in changed:
        setattr(statement, key, clean[key])
    if changed:
        statement.updated_at = clock.now()
    db.session.flush()
    audit.record(tenant.id, actor, "self_statement.updated", target_type="self_statement", target_id=statement.id,
                 student_id=statement.student_id, details={"changed": changed})
    return statement


def delete_statement(tenant, actor, statement: SelfStatement) -> None:
    _require_owner(actor, statement)
    audit.record(tenant.id, actor, "self_statement.deleted", target_type="self_statement", target_id=statement.id,
                 student_id=statement.student_id, details={"kind": statement.kind})
    db.session.delete(statement)
    db.session.flush()


def readable_statement(tenant, actor, statement_id) -> SelfStatement:
    """The statement if ``actor`` may read it (``self_statement.view`` by scope), else 403/404.

    A read by anyone but the student is audited (``self_statement.read``).
    """
    from lp_saas.tenants.resolver import get_scoped_or_404

    statement = get_scoped_or_404(SelfStatement, statement_id)
    permissions.require(actor, "self_statement.view", student_id=statement.student_id)
    if statement.student_id != actor.id:
        audit.record(tenant.id, actor, "self_statement.read", target_type="self_statement", target_id=statement.id,
                     student_id=statement.student_id)
    return statement


def list_statements(tenant, actor, *, student_id=None, kind=None) -> list[tuple[SelfStatement, User]]:
    """The versions ``actor`` may read, newest first, with their students; one query."""
    query = (sa.select(SelfStatement, User)
             .join(User, sa.and_(User.tenant_id == SelfStatement.tenant_id, User.id == SelfStatement.student_id))
             .where(SelfStatement.tenant_id == tenant.id,
                    permissions.student_filter(actor, "self_statement.view", SelfStatement.student_id)))
    if student_id is not None:
        query = query.where(SelfStatement.student_id == student_id)
    if kind is not None:
        query = query.where(SelfStatement.kind == kind)
    query = query.order_by(SelfStatement.updated_at.desc(), SelfStatement.id)
    return [(statement, student) for statement, student in db.session.execute(query)]


# --- the performance summary ---------------------------------------------------------------------------

def summary_limits(tenant_id) -> dict:
    """{"max_chars", "max_images"}: the school's rules, never above the national ceilings."""
    rules = current_rules(tenant_id)["performance_summary"]
    national = national_rules_on(clock.today())
    return {"max_chars": min(rules["max_chars"], national.performance_summary_max_chars),
            "max_images": min(rules["max_images"], national.performance_summary_max_images)}


def get_summary(tenant_id, student_id) -> PerformanceSummary | None:
    return db.session.get(PerformanceSummary, (tenant_id, student_id))


def save_summary(tenant, actor, body) -> PerformanceSummary:
    """Write the actor's own summary. Needs ``performance.upload`` (own).

    Raises Forbidden (403); ValidationFailed (422, ``body``) above the character limit. Audited as
    ``summary.saved`` with the length. Flush only.
    """
    if not permissions.can(actor, "performance.upload", student_id=actor.id):
        raise Forbidden(_l("You may not write a performance summary."))
    limits = summary_limits(tenant.id)
    value, message = check_long_text(body, max_length=limits["max_chars"], required=False)
    if message:
        raise ValidationFailed({"body": str(message)})
    summary = get_summary(tenant.id, actor.id)
    if summary is None:
        summary = PerformanceSummary(tenant_id=tenant.id, student_id=actor.id, body=value)
        db.session.add(summary)
    elif summary.body != value:
        summary.body = value
        summary.updated_at = clock.now()
    db.session.flush()
    audit.record(tenant.id, actor, "summary.saved", target_type="performance_summary", target_id=actor.id,
                 student_id=actor.id, details={"chars": len(value)})
    return summary


def summary_images(tenant_id, student_ids) -> dict:
    """student id → their summary images (one query), pending uploads included, rejected ones not."""
    out = files.files_of(tenant_id, "summary_image", student_ids)
    return {owner: [f for f in found if f.status != "rejected"] for owner, found in out.items()}


def _counted_images(tenant_id, student_id) -> int:
    """Images that hold a place: verified or being checked, or a ticket that has not expired yet."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(StoredFile).where(
        StoredFile.tenant_id == tenant_id, StoredFile.owner_kind == "summary_image",
        StoredFile.owner_id == student_id,
        sa.or_(StoredFile.status.in_(("verifying", "verified")),
               sa.and_(StoredFile.status == "pending", StoredFile.upload_expires_at > clock.now()))
    )) or 0


def add_summary_image(tenant, actor, spec) -> tuple[StoredFile, dict]:
    """A new image of the actor's summary: the pending file and its upload ticket. Flush only.

    jpg and png only (and only those the school allows). Raises Forbidden (403); ValidationFailed
    (422, ``file.*``); AppError 422 ``summary_images_cap`` when the images are at the limit.
    """
    if not permissions.can(actor, "performance.upload", student_id=actor.id):
        raise Forbidden(_l("You may not write a performance summary."))
    rules = current_rules(tenant.id)
    allowed = {kind: size for kind, size in rules["uploads"]["file_types"].items() if kind in SUMMARY_IMAGE_TYPES}
    if not allowed:
        raise ValidationFailed({"file": str(_l("This school accepts no image type for the summary."))})
    clean, errors = files.check_file_spec(spec, {**rules, "uploads": {**rules["uploads"], "file_types": allowed}})
    if errors:
        raise ValidationFailed({key: str(value) for key, value in errors.items()})
    limit = summary_limits(tenant.id)["max_images"]
    lock_student(tenant.id, actor.id)
    used = _counted_images(tenant.id, actor.id)
    if used >= limit:
        raise AppError(_l("The summary already has %(used)s images; at most %(limit)s are allowed.",
                          used=used, limit=limit), code="summary_images_cap", status=422,
                       details={"cap": {"name": "performance_summary.max_images", "limit": limit, "used": used}})
    stored, upload = files.create_upload(tenant, owner_kind="summary_image", owner_id=actor.id,
                                         student_id=actor.id, spec=clean)
    audit.record(tenant.id, actor, "summary.image_added", target_type="file", target_id=stored.id,
                 student_id=actor.id)
    return stored, upload


def own_summary_image(tenant, actor, file_id) -> StoredFile:
    """The actor's own summary image, else 404."""
    stored = _summary_image(tenant, file_id)
    if stored is None or stored.owner_id != actor.id or not permissions.can(actor, "performance.upload",
                                                                            student_id=actor.id):
        abort(404)
    return stored


def readable_summary_image(tenant, actor, file_id) -> StoredFile:
    """A summary image the actor may see (``performance.view`` by scope), else 403/404."""
    stored = _summary_image(tenant, file_id)
    if stored is None:
        abort(404)
    permissions.require(actor, "performance.view", student_id=stored.owner_id)
    return stored


def _summary_image(tenant, file_id) -> StoredFile | None:
    from lp_saas.tenants.resolver import get_scoped

    stored = get_scoped(StoredFile, file_id)
    return stored if stored is not None and stored.owner_kind == "summary_image" else None


def summary_image_sent(tenant, actor, stored: StoredFile) -> StoredFile:
    """The image's bytes are in storage: verify them (a job). Idempotent. Flush only."""
    if stored.status == "rejected":
        raise AppError(_l("This image was rejected: %(reason)s", reason=files.reject_message(stored.reject_reason)),
                       code="file_rejected", status=409)
    files.begin_verification(tenant, stored, actor)
    return stored


def remove_summary_image(tenant, actor, stored: StoredFile) -> None:
    audit.record(tenant.id, actor, "summary.image_removed", target_type="file", target_id=stored.id,
                 student_id=stored.owner_id)
    remove_stored_file(tenant, stored)


@files.on_file_checked("summary_image")
def _summary_image_checked(stored: StoredFile, verified: bool) -> None:
    """A checked image changes the summary: its time moves on (the file's status is the image's)."""
    summary = db.session.get(PerformanceSummary, (stored.tenant_id, stored.owner_id))
    if summary is not None and verified:
        summary.updated_at = clock.now()
