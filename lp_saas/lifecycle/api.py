"""Lifecycle API (API.md "Lifecycle"): graduations and legal holds, for the registrar or school admin."""
from __future__ import annotations

from flask import g
from marshmallow import fields, validate

from lp_saas.accounts.models import User
from lp_saas.api import bp
from lp_saas.api.common import InputSchema, api_permission, parse_json
from lp_saas.database import db
from lp_saas.lifecycle import services
from lp_saas.tenants.context import current_tenant
from lp_saas.tenants.resolver import get_scoped_or_404


class GraduationCreate(InputSchema):
    student_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1, max=2000))
    graduated_on = fields.Date(required=True)


class LegalHoldSet(InputSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=services.REASON_MAX))


def _student_or_404(student_id) -> User:
    """A student account of this school, or 404 (another school's id, or not a student)."""
    from flask import abort

    student = get_scoped_or_404(User, student_id)
    if not services.students_of_school(student.tenant_id, [student.id]):
        abort(404)
    return student


@bp.route("/graduations", methods=["POST"])
@api_permission("lifecycle.manage")
def create_graduations():
    """Record graduations.
    ---
    post:
      summary: Record that students graduate on a day; their data is sealed from that day
      description: >
        Sealed data is read-only and visible only to the roles the school's rules name
        (graduates.sealed_viewer_roles); it is deleted when the retention period ends, unless held.
        Sealing runs as a job (and, for a day still ahead, in the daily sweep of that day).
      tags: [lifecycle]
      requestBody:
        required: true
        content:
          application/json:
            schema: GraduationCreate
      responses:
        202: {description: "{job_id, graduated_on, recorded, already_sealed}"}
        422: {description: unknown students or a day more than a year from today}
    """
    data = parse_json(GraduationCreate())
    tenant = current_tenant()
    outcome = services.record_graduations(tenant, g.actor, data["student_ids"], data["graduated_on"])
    db.session.commit()
    job = outcome["job"]
    return {"job_id": str(job.id) if job else None, "status": job.status if job else "nothing_to_do",
            "graduated_on": data["graduated_on"].isoformat(),
            "recorded": [str(i) for i in outcome["recorded"]],
            "already_sealed": [str(i) for i in outcome["already_sealed"]]}, 202


@bp.route("/students/<student_id>/legal-hold", methods=["POST"])
@api_permission("lifecycle.manage")
def set_legal_hold(student_id):
    """Set a legal hold.
    ---
    post:
      summary: Hold a student's data; deletion after retention waits while the hold exists
      tags: [lifecycle]
      requestBody:
        required: true
        content:
          application/json:
            schema: LegalHoldSet
      responses:
        201: {description: the hold (200 when it replaced the reason of an existing one)}
        404: {description: no such student here}
        409: {description: the deletion has already begun}
        422: {description: no reason given}
    """
    student = _student_or_404(student_id)
    data = parse_json(LegalHoldSet())
    hold, created = services.set_legal_hold(current_tenant(), g.actor, student, data["reason"])
    db.session.commit()
    return {"student_id": str(student.id), "reason": hold.reason, "set_at": hold.set_at.isoformat()}, \
        201 if created else 200


@bp.route("/students/<student_id>/legal-hold", methods=["DELETE"])
@api_permission("lifecycle.manage")
def release_legal_hold(student_id):
    """Release a legal hold.
    ---
    delete:
      summary: Release a student's legal hold (deletion proceeds at the next run if retention has ended)
      tags: [lifecycle]
      responses:
        204: {description: released}
        404: {description: no such student here, or no hold}
    """
    from flask import abort

    student = _student_or_404(student_id)
    if not services.release_legal_hold(current_tenant(), g.actor, student):
        abort(404)
    db.session.commit()
    return "", 204
