"""The academic structure in the API: terms (學年度/學期 with the 休業式) and file imports as jobs.

Registered on the one API blueprint by ``lp_saas.api.register`` (``from lp_saas.academics import api``).
"""
from __future__ import annotations

from flask import abort, g, request
from flask_babel import get_locale
from flask_babel import gettext as _
from marshmallow import fields, validate
from werkzeug.exceptions import RequestEntityTooLarge

from lp_saas.academics import imports
from lp_saas.academics.models import Term
from lp_saas.api import bp
from lp_saas.api.common import InputSchema, actor_required, api_permission, parse_json
from lp_saas.database import db
from lp_saas.errors import AppError, ValidationFailed
from lp_saas.i18n import format_term
from lp_saas.jobs.models import Job
from lp_saas.records import services as records
from lp_saas.roles import permissions
from lp_saas.tenants.context import current_tenant
from lp_saas.tenants.resolver import get_scoped_or_404


class TermInput(InputSchema):
    academic_year = fields.Integer(required=True, strict=True, validate=validate.Range(min=100, max=200))
    semester = fields.Integer(required=True, strict=True, validate=validate.OneOf([1, 2]))
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)
    ceremony_on = fields.Date(required=True)
    grade12_ceremony_on = fields.Date(allow_none=True)


def term_json(term: Term) -> dict:
    return {
        "id": str(term.id), "academic_year": term.academic_year, "semester": term.semester,
        "label": format_term(term.academic_year, term.semester),
        "starts_on": term.starts_on.isoformat(), "ends_on": term.ends_on.isoformat(),
        "ceremony_on": term.ceremony_on.isoformat(),
        "grade12_ceremony_on": term.grade12_ceremony_on.isoformat() if term.grade12_ceremony_on else None,
    }


@bp.route("/terms", methods=["GET"])
@actor_required
def list_terms():
    """The school's terms.
    ---
    get:
      summary: The school's terms, newest first, and the academic year and semester of today
      tags: [academics]
      responses:
        200: {description: "{terms: [...], current: {academic_year, semester}}"}
    """
    tenant = current_tenant()
    year, semester = records.current_term_key(tenant)
    return {"terms": [term_json(t) for t in records.terms_of(tenant)],
            "current": {"academic_year": year, "semester": semester}}


@bp.route("/terms", methods=["POST"])
@api_permission("roster.edit")
def create_term():
    """Create a term.
    ---
    post:
      summary: Create a term (ROC academic year, semester, first and last day, semester-end ceremony)
      description: >
        Dates are ordered (first day ≤ ceremony ≤ last day), the first day lies near August
        (semester 1) or February (semester 2) of the academic year, and terms do not overlap.
        A first day outside the usual month is saved with a warning in `warnings`.
      tags: [academics]
      requestBody:
        required: true
        content:
          application/json:
            schema: TermInput
      responses:
        201: {description: "the term, with warnings: [...]"}
        409: {description: the school already has this academic year and semester}
        422: {description: invalid or unordered dates, overlapping terms}
    """
    data = parse_json(TermInput())
    term, warnings = records.save_term(current_tenant(), g.actor, data)
    db.session.commit()
    return {**term_json(term), "warnings": [str(w) for w in warnings]}, 201


@bp.route("/terms/<term_id>", methods=["PATCH"])
@api_permission("roster.edit")
def patch_term(term_id):
    """Change a term.
    ---
    patch:
      summary: Change a term's academic year, semester or dates (fields not sent stay as they are)
      tags: [academics]
      requestBody:
        required: true
        content:
          application/json:
            schema: TermInput
      responses:
        200: {description: "the term, with warnings: [...]"}
        404: {description: no such term here}
        409: {description: the school already has that academic year and semester}
        422: {description: invalid or unordered dates, overlapping terms}
    """
    term = get_scoped_or_404(Term, term_id)
    data = parse_json(TermInput(), partial=True)
    term, warnings = records.save_term(current_tenant(), g.actor, data, term=term)
    db.session.commit()
    return {**term_json(term), "warnings": [str(w) for w in warnings]}


@bp.route("/imports", methods=["GET"])
@actor_required
def list_import_kinds():
    """The kinds of import and their columns.
    ---
    get:
      summary: Every kind of import, its columns (Chinese and English names) and whether the caller may use it
      tags: [imports]
      responses:
        200: {description: "{kinds: [{kind, title, permission, allowed, columns: [{key, zh, required, description}]}], policy: [...]}"}
    """
    allowed = {k.key for k in imports.kinds_for(g.actor)}
    return {
        "kinds": [{
            "kind": k.key, "title": str(k.title), "permission": k.permission, "allowed": k.key in allowed,
            "columns": [{"key": c.key, "zh": c.zh, "required": c.required, "description": str(c.description)}
                        for c in k.columns],
        } for k in imports.KINDS.values()],
        "policy": [str(line) for line in imports.policy_lines()],
        "max_bytes": imports.MAX_BYTES, "max_rows": imports.MAX_ROWS,
    }


@bp.route("/imports/<kind>", methods=["POST"])
@actor_required
def start_import(kind):
    """Import a spreadsheet.
    ---
    post:
      summary: Upload an .xlsx or CSV file of one kind (students, teachers, classes, courses, enrollments, parents, grades, cadre_roles, clubs, attendance, electives) to import it as a job
      description: >
        The file is checked at once (type by content, UTF-8 or Big5, at most 5 MB and 20,000
        rows, the required columns); then a job imports it row by row. A bad row refuses only
        itself; `GET /jobs/{id}` gives the report in `result`: `{created, updated, unchanged,
        refused_count, refused: [{row, errors: {column: reason}}]}`. Imports are idempotent:
        upload the same file again after fixing the refused rows.
      tags: [imports]
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema:
              type: object
              properties:
                file: {type: string, format: binary}
              required: [file]
      responses:
        202: {description: "{job_id, status, status_url}"}
        403: {description: the caller may not import this kind for the whole school}
        404: {description: no such kind of import}
        413: {description: the file is larger than 5 MB}
        415: {description: not a multipart/form-data request}
        422: {description: "{error: {details: {file: reason}}}: not a spreadsheet, wrong encoding, missing columns, too many rows"}
    """
    spec = imports.KINDS.get(kind)
    if spec is None:
        abort(404)
    permissions.require(g.actor, spec.permission)
    request.max_content_length = imports.MAX_BYTES + 256 * 1024
    if request.mimetype != "multipart/form-data":
        raise AppError(_("Send the file as multipart/form-data, in a part named file."),
                       code="unsupported_media_type", status=415)
    try:
        upload = request.files.get("file")
    except RequestEntityTooLarge:
        raise AppError(_("The file is larger than %(mb)s MB; split it into smaller files.",
                         mb=imports.MAX_BYTES // 2**20), code="too_large", status=413) from None
    if upload is None:
        raise ValidationFailed({"file": _("Choose a file to upload.")})
    data = upload.read(imports.MAX_BYTES + 1)
    job = imports.start_import(current_tenant(), g.actor, spec, data, upload.filename, str(get_locale()))
    job_id = job.id
    db.session.commit()  # dispatches the job (in-process on the embedded defaults: it has run by now)
    job = get_scoped_or_404(Job, job_id)
    return {"job_id": str(job_id), "status": job.status, "status_url": f"/api/v1/jobs/{job_id}"}, 202
