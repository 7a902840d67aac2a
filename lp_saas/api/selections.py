"""Selection (勾選) in the API: ``GET|PUT /api/v1/selections/{academic_year}`` (API.md)."""
from __future__ import annotations

from flask import g, request
from flask_babel import gettext as _
from marshmallow import fields

from lp_saas.api import bp
from lp_saas.api.common import InputSchema, api_permission
from lp_saas.api.performances import an_id, json_body, query_filters
from lp_saas.database import db
from lp_saas.errors import ValidationFailed
from lp_saas.portfolio import selection as service
from lp_saas.portfolio.performances import category_label
from lp_saas.roles import permissions
from lp_saas.tenants.context import current_tenant


class SelectionPut(InputSchema):
    outcome_ids = fields.List(fields.UUID(), required=True,
                              metadata={"description": "the student's own certified course outcomes of the year"})
    performance_ids = fields.List(fields.UUID(), required=True,
                                  metadata={"description": "the student's own submitted diverse-performance items of the year"})


def _iso(moment):
    return moment.isoformat() if moment else None


def selection_json(tenant_id, found: service.Selection) -> dict:
    window = found.window
    return {
        "student_id": str(found.student_id),
        "academic_year": found.academic_year,
        "open": found.is_open,
        "opens_at": _iso(window.opens_at) if window else None,
        "closes_at": _iso(window.closes_at) if window else None,
        "outcome_ids": [str(o.id) for o in found.outcomes],
        "performance_ids": [str(p.id) for p in found.performances],
        "outcomes": [{"id": str(o.id), "title": o.title, "course_id": str(o.course_id), "semester": o.semester,
                      "status": o.status} for o in found.outcomes],
        "performances": [{"id": str(p.id), "title": p.title, "category": p.category,
                          "category_label": category_label(p.category), "source": p.source, "status": p.status}
                         for p in found.performances],
        "caps": {kind: [cap.to_dict() for cap in caps] for kind, caps in service.caps(tenant_id).items()},
        "selected_at": _iso(found.selected_at),
    }


def _year(academic_year: int) -> int:
    if not 100 <= academic_year <= 200:
        raise ValidationFailed({"academic_year": _("Enter the academic year (ROC), such as 113.")})
    return academic_year


@bp.route("/selections/<int:academic_year>", methods=["GET"])
@api_permission("selection.view")
def get_selection(academic_year):
    """A student's selection of a year.
    ---
    get:
      summary: The selection (the caller's own; staff and parents name the student with student_id, by scope; reads by others are audited)
      tags: [selection]
      parameters:
        - {name: student_id, in: query, schema: {type: string}}
      responses:
        200: {description: "{student_id, academic_year, open, opens_at, closes_at, outcome_ids, performance_ids, outcomes, performances, caps, selected_at}"}
        404: {description: the student is not in the caller's scope}
        422: {description: a bad academic year or student_id}
    """
    tenant = current_tenant()
    _year(academic_year)
    filters = query_filters({"student_id": an_id})
    student_id = filters.get("student_id", g.actor.id)
    if "student_id" not in filters and not permissions.can(g.actor, "selection.view", student_id=g.actor.id):
        raise ValidationFailed({"student_id": _("Name the student whose selection you want to see.")})
    found = service.read_selection(tenant, g.actor, student_id, academic_year)
    body = selection_json(tenant.id, found)
    db.session.commit()
    return body


@bp.route("/selections/<int:academic_year>", methods=["PUT"])
@api_permission("selection.edit")
def put_selection(academic_year):
    """Replace the caller's selection of a year.
    ---
    put:
      summary: Replace the whole selection at once (all or nothing) while the year's window is open
      tags: [selection]
      requestBody:
        required: true
        content:
          application/json:
            schema: SelectionPut
      responses:
        200: {description: the saved selection}
        422: {description: "selection_closed / selection_not_open (details.window), selection_cap (details.cap: name, limit, period, sent), or validation_failed naming an id that cannot be selected"}
    """
    tenant = current_tenant()
    _year(academic_year)
    if request.args:
        query_filters({})
    found = service.replace_selection(tenant, g.actor, academic_year, json_body())
    body = selection_json(tenant.id, found)
    db.session.commit()
    return body
