"""Diverse performance (多元表現) in the API: the ten categories, items, their files (API.md).

The bodies are checked by the services (``portfolio/performances.py``), whose allow-list is the one
the schemas below document.
"""
from __future__ import annotations

import uuid

from flask import abort, g, redirect, request
from flask_babel import gettext as _
from marshmallow import RAISE, Schema, fields, validate

from lp_saas.api import bp
from lp_saas.api.common import InputSchema, actor_required, api_permission, json_object
from lp_saas.database import db
from lp_saas.errors import ValidationFailed
from lp_saas.portfolio import files
from lp_saas.portfolio import performances as service
from lp_saas.portfolio.models import ITEM_STATUSES, SOURCES, Performance
from lp_saas.roles import permissions
from lp_saas.tenants.context import current_tenant
from lp_saas.tenants.resolver import get_scoped_or_404


class ProofFile(Schema):
    """The description of a file to upload (nested in the bodies that carry one)."""

    class Meta:
        unknown = RAISE

    filename = fields.String(required=True, metadata={"description": "the file's own name, e.g. 獎狀.pdf"})
    size = fields.Integer(required=True, metadata={"description": "bytes"})
    content_type = fields.String(required=True)
    sha256 = fields.String(required=True, metadata={"description": "64 hexadecimal characters"})


class PerformanceCreate(InputSchema):
    category = fields.String(required=True, validate=validate.OneOf(list(service.CATEGORIES)))
    title = fields.String(required=True, validate=validate.Length(max=service.TITLE_MAX))
    description = fields.String(metadata={"description": "short description, at most the school's limit (≤ 100)"})
    academic_year = fields.Integer(metadata={"description": "ROC academic year; default: the one whose window is open"})
    semester = fields.Integer(validate=validate.OneOf([1, 2]))
    details = fields.Dict(metadata={"description": "the category's own fields, see GET /performance-categories; "
                                                   "a required one may be left out (the item then lists it in "
                                                   "missing_details), a given one must be valid"})
    file = fields.Nested(ProofFile)
    link = fields.String(metadata={"description": "https:// or http:// address, instead of a file"})
    student_id = fields.UUID(metadata={"description": "staff only: the student the item is recorded for"})
    source = fields.String(validate=validate.OneOf(list(SOURCES)),
                           metadata={"description": "staff: school or organiser (default school); students: student"})
    organiser_name = fields.String(metadata={"description": "with source organiser"})


assert set(PerformanceCreate._declared_fields) == service.CREATE_FIELDS, "the documented body is the allow-list"

LIST_FILTERS = ("category", "status", "student_id", "academic_year", "source")


def json_body() -> dict:
    """The request's JSON object, unparsed (the service checks it). 413 / 415 / 400 otherwise."""
    return json_object()


def query_filters(allowed: dict) -> dict:
    """Query-string filters through an allow-list: name → parser(raw) returning a value or raising
    ValueError. An unknown parameter or a bad value is a 422 naming it."""
    errors, out = {}, {}
    for key in request.args:
        if key not in allowed:
            errors[key[:40]] = _("Unknown parameter.")
    for key, parse in allowed.items():
        raw = request.args.get(key)
        if raw in (None, ""):
            continue
        try:
            out[key] = parse(raw)
        except ValueError as exc:
            errors[key] = str(exc) or _("Not a valid value.")
    if errors:
        raise ValidationFailed(errors)
    return out


def one_of(choices):
    def parse(raw):
        if raw not in choices:
            raise ValueError(_("Choose one of: %(choices)s.", choices=", ".join(choices)))
        return raw
    return parse


def an_id(raw):
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ValueError(_("Not a valid id.")) from None


def a_year(raw):
    if not raw.isdigit() or not 100 <= int(raw) <= 200:
        raise ValueError(_("Enter the academic year (ROC), such as 113."))
    return int(raw)


def file_json(stored) -> dict | None:
    if stored is None:
        return None
    return {"id": str(stored.id), "filename": stored.filename, "type": stored.file_type,
            "size": stored.declared_size, "status": stored.status,
            "reason": files.reject_message(stored.reject_reason) if stored.reject_reason else None}


def performance_json(item: Performance, stored=None, student=None) -> dict:
    out = {
        "id": str(item.id), "student_id": str(item.student_id), "academic_year": item.academic_year,
        "semester": item.semester, "category": item.category,
        "category_label": service.category_label(item.category), "title": item.title,
        "description": item.description, "details": item.details or {},
        "missing_details": service.missing_details(item), "source": item.source,
        "organiser_name": item.organiser_name, "counts_toward_cap": item.source == "student",
        "status": item.status,
        "reason": files.reject_message(item.status_reason) if item.status == "file_rejected" else None,
        "link": item.link_url, "file": file_json(stored),
        "created_at": item.created_at.isoformat() if item.created_at else None,
        "submitted_at": item.submitted_at.isoformat() if item.submitted_at else None,
    }
    if student is not None:
        out["student"] = {"display_name": student.display_name, "student_no": student.student_no}
    return out


def _readable(performance_id) -> Performance:
    """The item if the caller may see it: 404 for another school's or out of scope, 403 without the permission."""
    item = get_scoped_or_404(Performance, performance_id)
    permissions.require(g.actor, "performance.view", student_id=item.student_id)
    return item


def _manageable(performance_id) -> Performance:
    item = get_scoped_or_404(Performance, performance_id)
    if not (permissions.has(g.actor, "performance.upload") or permissions.has(g.actor, "performance.import")):
        abort(403)
    if not permissions.can(g.actor, "performance.view", student_id=item.student_id) and \
            not permissions.can(g.actor, "performance.import", student_id=item.student_id):
        abort(404)
    return item


@bp.route("/performance-categories", methods=["GET"])
@actor_required
def performance_categories():
    """The ten categories.
    ---
    get:
      summary: The ten diverse-performance categories with labels (zh-TW, en) and their field schemas
      tags: [performances]
      responses:
        200: {description: "{categories: [{key, label, labels, fields: [{name, type, required, label, labels, max_length?, minimum?, maximum?, decimals?, enum?, choices?}]}]}"}
    """
    return {"categories": service.categories_schema()}


@bp.route("/performances", methods=["POST"])
@actor_required
def create_performance():
    """Record a diverse-performance item.
    ---
    post:
      summary: A student uploads their own item (inside the window, under the yearly cap), or staff record one for a student (source school or organiser; outside the cap)
      tags: [performances]
      requestBody:
        required: true
        content:
          application/json:
            schema: PerformanceCreate
      responses:
        201: {description: "the item, with `upload` (method, url, fields, headers, expires_at) when it has a file"}
        403: {description: no permission for this source}
        422: {description: "invalid fields (details name them), or window_closed / window_not_set / upload_cap"}
    """
    tenant = current_tenant()
    item, upload = service.create_performance(tenant, g.actor, json_body())
    body = performance_json(item, service.item_file(tenant, item))
    db.session.commit()
    if upload is not None:
        body["upload"] = upload
    return body, 201


@bp.route("/performances", methods=["GET"])
@api_permission("performance.view")
def list_performances():
    """Diverse-performance items the caller may see.
    ---
    get:
      summary: Items in the caller's scope, newest first; filters category, status, student_id, academic_year, source
      tags: [performances]
      parameters:
        - {name: category, in: query, schema: {type: string}}
        - {name: status, in: query, schema: {type: string}}
        - {name: student_id, in: query, schema: {type: string}}
        - {name: academic_year, in: query, schema: {type: integer}}
        - {name: source, in: query, schema: {type: string}}
      responses:
        200: {description: "{items: [...]}"}
        422: {description: an unknown parameter or a bad value}
    """
    filters = query_filters({"category": one_of(tuple(service.CATEGORIES)), "status": one_of(ITEM_STATUSES),
                             "student_id": an_id, "academic_year": a_year, "source": one_of(SOURCES)})
    tenant = current_tenant()
    rows = service.list_performances(tenant, g.actor, **filters)
    stored = files.files_of(tenant.id, "performance", [item.id for item, _student in rows])
    body = {"items": [performance_json(item, next((f for f in stored.get(item.id, []) if f.id == item.file_id), None),
                                       student) for item, student in rows]}
    service.audit_reads(tenant, g.actor, "performance.list", {item.student_id for item, _student in rows},
                        target_type="student")
    db.session.commit()
    return body


@bp.route("/performances/<performance_id>", methods=["GET"])
@api_permission("performance.view")
def get_performance(performance_id):
    """One item.
    ---
    get:
      summary: One diverse-performance item (the caller's own, or a student's in scope; reads by others are audited)
      tags: [performances]
      responses:
        200: {description: the item}
        404: {description: no such item here, or out of scope}
    """
    tenant = current_tenant()
    item = _readable(performance_id)
    service.audit_reads(tenant, g.actor, "performance.read", {item.student_id}, target_type="performance",
                        target_id=item.id)
    body = performance_json(item, service.item_file(tenant, item))
    db.session.commit()
    return body


@bp.route("/performances/<performance_id>/uploaded", methods=["POST"])
@actor_required
def performance_uploaded(performance_id):
    """The file is sent.
    ---
    post:
      summary: The client has sent the file's bytes to storage; a job verifies them (status verifying, then submitted or file_rejected)
      tags: [performances]
      responses:
        202: {description: "{status}"}
        404: {description: no such item of the caller's}
        409: {description: no_file (a link item) or file_rejected}
    """
    tenant = current_tenant()
    item = _manageable(performance_id)
    if not service.may_manage(g.actor, item):
        abort(404)
    service.file_sent(tenant, g.actor, item)
    status = item.status  # as committed: on the embedded run the check may finish during the commit
    db.session.commit()
    return {"id": str(item.id), "status": status}, 202


@bp.route("/performances/<performance_id>/file", methods=["GET"])
@api_permission("performance.view")
def performance_file(performance_id):
    """Download the item's file.
    ---
    get:
      summary: 302 to a short-lived download URL of the verified file; the access is audited
      tags: [performances]
      responses:
        302: {description: redirect to the file}
        404: {description: no such item here, or out of scope}
        409: {description: no_file or file_not_ready}
    """
    tenant = current_tenant()
    item = _readable(performance_id)
    stored = service.verified_file_or_error(tenant, item)
    url = files.download_url(tenant, g.actor, stored)
    db.session.commit()
    return redirect(url, code=302)


@bp.route("/performances/<performance_id>", methods=["DELETE"])
@actor_required
def delete_performance(performance_id):
    """Withdraw an item.
    ---
    delete:
      summary: The student withdraws their own upload while the window is open; staff with performance.import remove an item they may record
      tags: [performances]
      responses:
        204: {description: withdrawn}
        403: {description: "imported_item: the student cannot withdraw items the school recorded"}
        404: {description: no such item here, or out of scope}
        422: {description: window_closed}
    """
    tenant = current_tenant()
    item = _manageable(performance_id)
    service.withdraw_performance(tenant, g.actor, item)
    db.session.commit()
    return "", 204
