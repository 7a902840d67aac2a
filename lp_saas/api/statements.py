"""Self-statements (自傳 / 學習計畫) and the performance summary (多元表現綜整心得) in the API."""
from __future__ import annotations

from flask import g, redirect
from flask_babel import gettext as _
from marshmallow import fields, validate

from lp_saas.api import bp
from lp_saas.api.common import InputSchema, api_permission
from lp_saas.api.performances import ProofFile, an_id, file_json, json_body, one_of, query_filters
from lp_saas.database import db
from lp_saas.errors import AppError, ValidationFailed
from lp_saas.portfolio import files
from lp_saas.portfolio import statements as service
from lp_saas.portfolio.models import SelfStatement
from lp_saas.portfolio.performances import audit_reads, require_student
from lp_saas.roles import permissions
from lp_saas.tenants.context import current_tenant
from lp_saas.tenants.resolver import get_scoped_or_404


class StatementCreate(InputSchema):
    kind = fields.String(required=True, validate=validate.OneOf(list(service.STATEMENT_KINDS)))
    target = fields.String(required=True, validate=validate.Length(max=service.TARGET_MAX),
                           metadata={"description": "target department, e.g. 國立臺灣大學 資訊工程學系"})
    title = fields.String(required=True, validate=validate.Length(max=service.TITLE_MAX))
    body = fields.String(required=True, validate=validate.Length(max=service.BODY_MAX))


class StatementUpdate(InputSchema):
    kind = fields.String(validate=validate.OneOf(list(service.STATEMENT_KINDS)))
    target = fields.String(validate=validate.Length(max=service.TARGET_MAX))
    title = fields.String(validate=validate.Length(max=service.TITLE_MAX))
    body = fields.String(validate=validate.Length(max=service.BODY_MAX))


class SummaryPut(InputSchema):
    body = fields.String(required=True, metadata={"description": "at most the school's limit (national 800 characters)"})


class SummaryImageCreate(InputSchema):
    file = fields.Nested(ProofFile, required=True, metadata={"description": "a jpg or png image"})


assert set(StatementCreate._declared_fields) == service.STATEMENT_FIELDS


def _iso(moment):
    return moment.isoformat() if moment else None


def statement_json(statement: SelfStatement, student=None) -> dict:
    out = {"id": str(statement.id), "student_id": str(statement.student_id), "kind": statement.kind,
           "target": statement.target, "title": statement.title, "body": statement.body,
           "chars": len(statement.body), "created_at": _iso(statement.created_at),
           "updated_at": _iso(statement.updated_at)}
    if student is not None:
        out["student"] = {"display_name": student.display_name, "student_no": student.student_no}
    return out


def summary_json(tenant_id, student_id, summary, images) -> dict:
    limits = service.summary_limits(tenant_id)
    body = summary.body if summary else ""
    return {"student_id": str(student_id), "body": body, "chars": len(body), **limits,
            "images": [file_json(f) for f in images],
            "updated_at": _iso(summary.updated_at) if summary else None}


def _student_named(permission: str):
    """The student the caller asks about: ``student_id`` in the query, else the caller themself."""
    filters = query_filters({"student_id": an_id})
    if "student_id" in filters:
        return require_student(current_tenant(), g.actor, permission, filters["student_id"]).id
    if not permissions.can(g.actor, permission, student_id=g.actor.id):
        raise ValidationFailed({"student_id": _("Name the student.")})
    return g.actor.id


@bp.route("/statements", methods=["GET"])
@api_permission("self_statement.view")
def list_statements():
    """Self-statements the caller may read.
    ---
    get:
      summary: Versions of self-statements in the caller's scope, newest first (filters student_id, kind); reads by others are audited
      tags: [statements]
      parameters:
        - {name: student_id, in: query, schema: {type: string}}
        - {name: kind, in: query, schema: {type: string, enum: [autobiography, study_plan]}}
      responses:
        200: {description: "{statements: [...]}"}
        422: {description: a bad filter}
    """
    tenant = current_tenant()
    filters = query_filters({"student_id": an_id, "kind": one_of(tuple(service.STATEMENT_KINDS))})
    rows = service.list_statements(tenant, g.actor, **filters)
    body = {"statements": [statement_json(s, student) for s, student in rows]}
    audit_reads(tenant, g.actor, "self_statement.list", {s.student_id for s, _student in rows}, target_type="student")
    db.session.commit()
    return body


@bp.route("/statements", methods=["POST"])
@api_permission("self_statement.edit")
def create_statement():
    """Write a new version.
    ---
    post:
      summary: A new version of the caller's self-statement (kind autobiography or study_plan, target department, title, body)
      tags: [statements]
      requestBody:
        required: true
        content:
          application/json:
            schema: StatementCreate
      responses:
        201: {description: the statement}
        422: {description: invalid fields, or statement_cap}
    """
    tenant = current_tenant()
    statement = service.create_statement(tenant, g.actor, json_body())
    body = statement_json(statement)
    db.session.commit()
    return body, 201


@bp.route("/statements/<statement_id>", methods=["GET"])
@api_permission("self_statement.view")
def get_statement(statement_id):
    """One version.
    ---
    get:
      summary: One self-statement (own, or a student's in scope; reads by others are audited)
      tags: [statements]
      responses:
        200: {description: the statement}
        404: {description: no such statement here, or out of scope}
    """
    tenant = current_tenant()
    statement = service.readable_statement(tenant, g.actor, statement_id)
    body = statement_json(statement)
    db.session.commit()
    return body


@bp.route("/statements/<statement_id>", methods=["PUT"])
@api_permission("self_statement.edit")
def update_statement(statement_id):
    """Change a version.
    ---
    put:
      summary: Change the caller's own statement (the fields given)
      tags: [statements]
      requestBody:
        required: true
        content:
          application/json:
            schema: StatementUpdate
      responses:
        200: {description: the statement}
        404: {description: no such statement of the caller's}
        422: {description: invalid fields}
    """
    tenant = current_tenant()
    statement = get_scoped_or_404(SelfStatement, statement_id)
    service.update_statement(tenant, g.actor, statement, json_body())
    body = statement_json(statement)
    db.session.commit()
    return body


@bp.route("/statements/<statement_id>", methods=["DELETE"])
@api_permission("self_statement.edit")
def delete_statement(statement_id):
    """Delete a version.
    ---
    delete:
      summary: Delete the caller's own statement
      tags: [statements]
      responses:
        204: {description: deleted}
        404: {description: no such statement of the caller's}
    """
    tenant = current_tenant()
    statement = get_scoped_or_404(SelfStatement, statement_id)
    service.delete_statement(tenant, g.actor, statement)
    db.session.commit()
    return "", 204


@bp.route("/summary", methods=["GET"])
@api_permission("performance.view")
def get_summary():
    """The performance summary.
    ---
    get:
      summary: The performance summary (the caller's own, or a student's in scope with student_id; reads by others are audited)
      tags: [statements]
      parameters:
        - {name: student_id, in: query, schema: {type: string}}
      responses:
        200: {description: "{student_id, body, chars, max_chars, max_images, images, updated_at}"}
        404: {description: the student is not in the caller's scope}
    """
    tenant = current_tenant()
    student_id = _student_named("performance.view")
    summary = service.get_summary(tenant.id, student_id)
    images = service.summary_images(tenant.id, [student_id]).get(student_id, [])
    body = summary_json(tenant.id, student_id, summary, images)
    audit_reads(tenant, g.actor, "summary.read", {student_id}, target_type="performance_summary")
    db.session.commit()
    return body


@bp.route("/summary", methods=["PUT"])
@api_permission("performance.upload")
def put_summary():
    """Write the performance summary.
    ---
    put:
      summary: Write the caller's performance summary (at most the school's limit, national 800 characters)
      tags: [statements]
      requestBody:
        required: true
        content:
          application/json:
            schema: SummaryPut
      responses:
        200: {description: the summary}
        422: {description: too long, or markup in the text}
    """
    tenant = current_tenant()
    data = json_body()
    unknown = sorted(set(data) - {"body"})
    if unknown or "body" not in data:
        raise ValidationFailed({unknown[0][:80]: _("Unknown field.")} if unknown else {"body": _("This field is required.")})
    summary = service.save_summary(tenant, g.actor, data["body"])
    images = service.summary_images(tenant.id, [g.actor.id]).get(g.actor.id, [])
    body = summary_json(tenant.id, g.actor.id, summary, images)
    db.session.commit()
    return body


@bp.route("/summary/images", methods=["POST"])
@api_permission("performance.upload")
def add_summary_image():
    """Add an image to the summary.
    ---
    post:
      summary: A jpg or png image for the caller's summary (at most the school's limit, national 3); returns its upload ticket
      tags: [statements]
      requestBody:
        required: true
        content:
          application/json:
            schema: SummaryImageCreate
      responses:
        201: {description: "{id, filename, status, upload}"}
        422: {description: a bad file description, or summary_images_cap}
    """
    tenant = current_tenant()
    data = json_body()
    unknown = sorted(set(data) - {"file"})
    if unknown:
        raise ValidationFailed({unknown[0][:80]: _("Unknown field.")})
    stored, upload = service.add_summary_image(tenant, g.actor, data.get("file"))
    body = {**file_json(stored), "upload": upload}
    db.session.commit()
    return body, 201


@bp.route("/summary/images/<image_id>/uploaded", methods=["POST"])
@api_permission("performance.upload")
def summary_image_uploaded(image_id):
    """The image is sent.
    ---
    post:
      summary: The client has sent the image's bytes; a job verifies them (status verifying, then verified or rejected)
      tags: [statements]
      responses:
        202: {description: "{id, status}"}
        404: {description: no such image of the caller's}
        409: {description: the image was rejected}
    """
    tenant = current_tenant()
    stored = service.own_summary_image(tenant, g.actor, image_id)
    service.summary_image_sent(tenant, g.actor, stored)
    status = stored.status
    db.session.commit()
    return {"id": str(stored.id), "status": status}, 202


@bp.route("/summary/images/<image_id>/file", methods=["GET"])
@api_permission("performance.view")
def summary_image_file(image_id):
    """Download an image.
    ---
    get:
      summary: 302 to a short-lived URL of a verified summary image; the access is audited
      tags: [statements]
      responses:
        302: {description: redirect to the image}
        404: {description: no such image here, or out of scope}
        409: {description: not verified yet}
    """
    tenant = current_tenant()
    stored = service.readable_summary_image(tenant, g.actor, image_id)
    if stored.status != "verified":
        raise AppError(_("The file has not been checked and accepted yet."), code="file_not_ready", status=409)
    url = files.download_url(tenant, g.actor, stored)
    db.session.commit()
    return redirect(url, code=302)


@bp.route("/summary/images/<image_id>", methods=["DELETE"])
@api_permission("performance.upload")
def delete_summary_image(image_id):
    """Remove an image.
    ---
    delete:
      summary: Remove one of the caller's summary images
      tags: [statements]
      responses:
        204: {description: removed}
        404: {description: no such image of the caller's}
    """
    tenant = current_tenant()
    stored = service.own_summary_image(tenant, g.actor, image_id)
    service.remove_summary_image(tenant, g.actor, stored)
    db.session.commit()
    return "", 204

