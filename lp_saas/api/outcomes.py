"""Course learning outcomes (課程學習成果): upload, verification, certification (API.md)."""
from __future__ import annotations

import uuid

from flask import g, redirect, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import fields

from lp_saas.academics.models import Course
from lp_saas.api import bp
from lp_saas.api.common import InputSchema, api_permission, parse_json
from lp_saas.database import db
from lp_saas.errors import ValidationFailed
from lp_saas.portfolio import outcomes as service
from lp_saas.portfolio.models import OUTCOME_STATUSES, CourseOutcome
from lp_saas.tenants.context import current_tenant

_REQUIRED = {"required": _l("This field is required.")}
LIST_LIMIT = 200
LIST_MAX = 500


def _text(description: str, **kwargs):
    return fields.Raw(allow_none=True, metadata={"type": "string", "description": description}, **kwargs)


class OutcomeRevise(InputSchema):
    """Title, short description, and a file or a link (not both)."""

    title = _text("≤ 100 characters", required=True, error_messages=_REQUIRED)
    description = _text("short description (簡述), ≤ the school's uploads.description_max_chars (national: 100)")
    file = fields.Raw(allow_none=True, metadata={
        "type": "object", "description": "{filename, size (bytes), content_type, sha256 (hex)}: the file to upload"})
    link = _text("https:// or http:// link (≤ 500), instead of a file, if the school accepts links")


class OutcomeCreate(OutcomeRevise):
    course_id = fields.Raw(required=True, error_messages=_REQUIRED, metadata={
        "type": "string", "format": "uuid", "description": "a course the student is enrolled in"})


class OutcomeCertify(InputSchema):
    comment = _text("optional (≤ 500): certification vouches for authenticity, not quality")


class OutcomeReturn(InputSchema):
    reason = _text("why it is returned (required, ≤ 500)", required=True, error_messages=_REQUIRED)


class OutcomeBulkCertify(InputSchema):
    ids = fields.Raw(required=True, error_messages=_REQUIRED, metadata={
        "type": "array", "items": {"type": "string", "format": "uuid"}, "description": "1 to 200 outcome ids"})
    comment = _text("optional (≤ 500), the same for each")


def _iso(value):
    return value.isoformat() if value is not None else None


def file_json(stored, current_id=None) -> dict:
    out = {"id": str(stored.id), "filename": stored.filename,
           "size": stored.size if stored.size is not None else stored.declared_size,
           "content_type": stored.content_type, "status": stored.status}
    if current_id is not None:
        out["current"] = stored.id == current_id
        out["created_at"] = _iso(stored.created_at)
    return out


def outcome_json(outcome: CourseOutcome, stored, course, found: service.Deadlines) -> dict:
    """An outcome as the API shows it (never a storage key)."""
    return {
        "id": str(outcome.id),
        "student_id": str(outcome.student_id),
        "course_id": str(outcome.course_id),
        "course": {"code": course.code, "name": course.name} if course is not None else None,
        "academic_year": outcome.academic_year,
        "semester": outcome.semester,
        "title": outcome.title,
        "description": outcome.description,
        "status": outcome.status,
        "status_label": service.status_label(outcome.status),
        "reason": service.reason_message(outcome),
        "reason_code": outcome.status_reason if outcome.status == "file_rejected" else None,
        "link": outcome.link_url,
        "file": file_json(stored) if stored is not None else None,
        "teacher_comment": outcome.teacher_comment,
        "certified_at": _iso(outcome.certified_at),
        "returned_at": _iso(outcome.returned_at),
        "submitted_at": _iso(outcome.submitted_at),
        "withdrawn_at": _iso(outcome.withdrawn_at),
        "revision": outcome.revision,
        "created_at": _iso(outcome.created_at),
        "updated_at": _iso(outcome.updated_at),
        "upload_closes_at": _iso(found.window.closes_at) if found.window else None,
        "certification_deadline": _iso(found.certification_deadline),
    }


def _single_json(outcome: CourseOutcome) -> dict:
    course = db.session.get(Course, (outcome.tenant_id, outcome.course_id))
    return outcome_json(outcome, service.current_file(outcome), course, service.deadlines_for(course))


def _optional_body(schema) -> dict:
    """A JSON body through ``schema``; no body at all counts as ``{}`` (for schemas without required fields)."""
    return parse_json(schema) if request.get_data(cache=True) else {}


def _created(outcome: CourseOutcome, upload) -> dict:
    body = {"id": str(outcome.id), "status": outcome.status, "revision": outcome.revision}
    if upload is not None:
        body["upload"] = upload
    return body


@bp.route("/outcomes", methods=["POST"])
@api_permission("course_outcome.upload")
def create_outcome():
    """Upload a course outcome.
    ---
    post:
      summary: A student's new course outcome, with a file (then send the bytes to `upload`) or a link
      description: >
        Inside the course semester's upload window and under the school's per-semester cap (every outcome
        of the semester counts except withdrawn ones). With `file`, the answer carries an `upload` ticket:
        for `"method": "POST"` send a multipart form with `fields` followed by the part named `file`; then
        call `POST /outcomes/{id}/uploaded`. With `link`, the outcome is `submitted` at once.
      tags: [outcomes]
      requestBody:
        required: true
        content:
          application/json:
            schema: OutcomeCreate
      responses:
        201: {description: "{id, status, revision, upload?: {method, url, fields, headers, expires_at}}"}
        403: {description: "lacks course_outcome.upload"}
        422: {description: "details name the field (title, description, file, file.size, link, course_id …), or the
          code names the rule: calendar_not_set, window_not_open, window_closed, upload_cap_reached"}
    """
    data = parse_json(OutcomeCreate())
    tenant = current_tenant()
    outcome, upload = service.create_outcome(tenant, g.actor, course_id=data.get("course_id"),
                                             title=data.get("title"), description=data.get("description"),
                                             file=data.get("file"), link=data.get("link"))
    db.session.commit()
    return _created(outcome, upload), 201, {"Location": f"{bp.url_prefix}/outcomes/{outcome.id}"}


@bp.route("/outcomes/<outcome_id>/uploaded", methods=["POST"])
@api_permission("course_outcome.upload")
def outcome_uploaded(outcome_id):
    """The file's bytes are sent.
    ---
    post:
      summary: The student says the file is in storage; a job verifies it (size, SHA-256, type from content)
      tags: [outcomes]
      responses:
        202: {description: "{status: verifying}; the job moves it to submitted or file_rejected (with reason)"}
        404: {description: no such outcome of the caller's}
        409: {description: "the outcome is not awaiting an upload (code wrong_status)"}
    """
    outcome = service.load(g.actor, outcome_id, "course_outcome.upload")
    service.mark_uploaded(current_tenant(), g.actor, outcome)
    db.session.commit()
    return {"status": "verifying"}, 202


@bp.route("/outcomes/<outcome_id>", methods=["GET"])
@api_permission("course_outcome.view")
def get_outcome(outcome_id):
    """One course outcome.
    ---
    get:
      summary: One course outcome the caller may see, with its files (every revision's); the read is audited
      tags: [outcomes]
      responses:
        200: {description: "the outcome, with upload_closes_at, certification_deadline and files[]"}
        404: {description: no such outcome within the caller's scope}
    """
    outcome = service.load(g.actor, outcome_id)
    body = _single_json(outcome)
    body["files"] = [file_json(f, outcome.file_id) for f in service.file_history(outcome)]
    service.record_read(current_tenant(), g.actor, outcome)
    db.session.commit()
    return body


def _list_filters() -> list:
    args, errors, clauses = request.args, {}, []
    for name, column in (("course_id", CourseOutcome.course_id), ("student_id", CourseOutcome.student_id)):
        if args.get(name):
            try:
                clauses.append(column == uuid.UUID(args[name]))
            except ValueError:
                errors[name] = _("Give an id such as 3f2a…, as returned by the API.")
    if args.get("status"):
        if args["status"] not in OUTCOME_STATUSES:
            errors["status"] = _("Choose one of: %(choices)s.", choices=", ".join(OUTCOME_STATUSES))
        else:
            clauses.append(CourseOutcome.status == args["status"])
    for name, column, low, high in (("academic_year", CourseOutcome.academic_year, 100, 200),
                                    ("semester", CourseOutcome.semester, 1, 2)):
        if args.get(name):
            value = args[name]
            if not value.isdigit() or not low <= int(value) <= high:
                errors[name] = _("Enter a whole number from %(min)s to %(max)s.", min=low, max=high)
            else:
                clauses.append(column == int(value))
    if errors:
        raise ValidationFailed(errors)
    return clauses


def _paging() -> tuple[int, int]:
    errors = {}
    limit, offset = request.args.get("limit", str(LIST_LIMIT)), request.args.get("offset", "0")
    if not limit.isdigit() or not 1 <= int(limit) <= LIST_MAX:
        errors["limit"] = _("Enter a whole number from %(min)s to %(max)s.", min=1, max=LIST_MAX)
    if not offset.isdigit():
        errors["offset"] = _("Enter a whole number, 0 or more.")
    if errors:
        raise ValidationFailed(errors)
    return int(limit), int(offset)


@bp.route("/outcomes", methods=["GET"])
@api_permission("course_outcome.view")
def list_outcomes():
    """Course outcomes the caller may see.
    ---
    get:
      summary: Course outcomes within the caller's scope (own, child, class, courses taught or deputised, school)
      tags: [outcomes]
      parameters:
        - {name: course_id, in: query, required: false, schema: {type: string, format: uuid}}
        - {name: status, in: query, required: false, schema: {type: string, enum: [awaiting_upload, verifying,
           submitted, file_rejected, certified, returned, withdrawn]}}
        - {name: student_id, in: query, required: false, schema: {type: string, format: uuid}}
        - {name: academic_year, in: query, required: false, schema: {type: integer}}
        - {name: semester, in: query, required: false, schema: {type: integer, enum: [1, 2]}}
        - {name: limit, in: query, required: false, schema: {type: integer, default: 200, maximum: 500}}
        - {name: offset, in: query, required: false, schema: {type: integer, default: 0}}
      responses:
        200: {description: "{outcomes: [...]}, newest first"}
        422: {description: "a malformed filter (details name it)"}
    """
    clauses = _list_filters()
    limit, offset = _paging()
    query = (service.visible_select(g.actor).where(*clauses)
             .order_by(CourseOutcome.created_at.desc(), CourseOutcome.id).limit(limit).offset(offset))
    book = service.DeadlineBook(current_tenant().id)
    return {"outcomes": [outcome_json(outcome, stored, course, book.of_course(course))
                         for outcome, stored, course in db.session.execute(query)]}


@bp.route("/outcomes/<outcome_id>/file", methods=["GET"])
@api_permission("course_outcome.view")
def outcome_file(outcome_id):
    """Download the outcome's file.
    ---
    get:
      summary: A redirect to a short-lived download URL of the outcome's verified file; the access is audited
      tags: [outcomes]
      parameters:
        - {name: file_id, in: query, required: false, schema: {type: string, format: uuid},
           description: "an earlier revision's file (see files[] of GET /outcomes/{id})"}
      responses:
        302: {description: "Location: the download URL (valid a few minutes)"}
        404: {description: no such outcome within the caller's scope, or no verified file}
    """
    outcome = service.load(g.actor, outcome_id)
    url = service.file_url(current_tenant(), g.actor, outcome, request.args.get("file_id"))
    db.session.commit()
    return redirect(url, 302)


@bp.route("/outcomes/<outcome_id>/certify", methods=["POST"])
@api_permission("course_outcome.certify")
def certify_outcome(outcome_id):
    """Certify an outcome.
    ---
    post:
      summary: 認證 a submitted outcome (the course's teacher or deputy), until the certification deadline
      tags: [outcomes]
      requestBody:
        required: false
        content:
          application/json:
            schema: OutcomeCertify
      responses:
        200: {description: the outcome, certified}
        404: {description: no such outcome in the caller's courses}
        409: {description: "not submitted (code wrong_status)"}
        422: {description: "certification_closed (names the deadline), calendar_not_set, or details.comment"}
    """
    outcome = service.load(g.actor, outcome_id, "course_outcome.certify")
    data = _optional_body(OutcomeCertify())
    service.certify(current_tenant(), g.actor, outcome, data.get("comment"))
    db.session.commit()
    return _single_json(outcome)


@bp.route("/outcomes/<outcome_id>/return", methods=["POST"])
@api_permission("course_outcome.certify")
def return_outcome(outcome_id):
    """Return an outcome to the student.
    ---
    post:
      summary: 退回 a submitted outcome with a reason (the course's teacher or deputy), until the certification deadline
      tags: [outcomes]
      requestBody:
        required: true
        content:
          application/json:
            schema: OutcomeReturn
      responses:
        200: {description: the outcome, returned}
        404: {description: no such outcome in the caller's courses}
        409: {description: "not submitted (code wrong_status)"}
        422: {description: "details.reason, certification_closed or calendar_not_set"}
    """
    outcome = service.load(g.actor, outcome_id, "course_outcome.certify")
    data = parse_json(OutcomeReturn())
    service.return_outcome(current_tenant(), g.actor, outcome, data.get("reason"))
    db.session.commit()
    return _single_json(outcome)


@bp.route("/outcomes/certify", methods=["POST"])
@api_permission("course_outcome.certify")
def bulk_certify_outcomes():
    """Certify several outcomes at once.
    ---
    post:
      summary: Certify submitted outcomes of the caller's courses, all or nothing
      tags: [outcomes]
      requestBody:
        required: true
        content:
          application/json:
            schema: OutcomeBulkCertify
      responses:
        200: {description: "{certified: [ids]}"}
        422: {description: "nothing changed; details map each refused id to the reason"}
    """
    data = parse_json(OutcomeBulkCertify())
    certified = service.bulk_certify(current_tenant(), g.actor, data.get("ids"), data.get("comment"))
    db.session.commit()
    return {"certified": [str(o.id) for o in certified]}


@bp.route("/outcomes/<outcome_id>/revise", methods=["POST"])
@api_permission("course_outcome.upload")
def revise_outcome(outcome_id):
    """Revise an outcome.
    ---
    post:
      summary: A new version of an outcome awaiting upload, rejected or returned, while the upload window is open
      description: The previous file is kept; with a file the answer carries a new `upload` ticket.
      tags: [outcomes]
      requestBody:
        required: true
        content:
          application/json:
            schema: OutcomeRevise
      responses:
        200: {description: "{id, status, revision, upload?}"}
        404: {description: no such outcome of the caller's}
        409: {description: "not revisable in its state (code wrong_status)"}
        422: {description: "details name the field, or window_closed"}
    """
    outcome = service.load(g.actor, outcome_id, "course_outcome.upload")
    data = parse_json(OutcomeRevise())
    upload = service.revise(current_tenant(), g.actor, outcome, title=data.get("title"),
                            description=data.get("description"), file=data.get("file"), link=data.get("link"))
    db.session.commit()
    return _created(outcome, upload)


@bp.route("/outcomes/<outcome_id>", methods=["DELETE"])
@api_permission("course_outcome.upload")
def withdraw_outcome(outcome_id):
    """Withdraw an outcome.
    ---
    delete:
      summary: The student withdraws an outcome awaiting upload, rejected or returned; it is kept as withdrawn
      description: A withdrawn outcome no longer counts toward the semester's upload cap; nothing is deleted.
      tags: [outcomes]
      responses:
        200: {description: the outcome, withdrawn}
        404: {description: no such outcome of the caller's}
        409: {description: "not withdrawable in its state (code wrong_status)"}
    """
    outcome = service.load(g.actor, outcome_id, "course_outcome.upload")
    service.withdraw(current_tenant(), g.actor, outcome)
    db.session.commit()
    return _single_json(outcome)
