"""The school's supplementary rules (補充規定): the version in force, its history, amendments."""
from __future__ import annotations

from flask import g, request
from flask_babel import gettext as _
from marshmallow import Schema, fields

from lp_saas.api import bp
from lp_saas.api.common import InputSchema, actor_required, api_permission, parse_json
from lp_saas.database import db
from lp_saas.errors import NotFound, ValidationFailed
from lp_saas.tenants import rulesets
from lp_saas.tenants.context import current_tenant
from lp_saas.tenants.national import national_rules_on


class AmendRequest(InputSchema):
    adopted_on = fields.String(required=True, metadata={
        "format": "date", "description": "YYYY-MM-DD; in force from this day; not before the latest version's"})
    adopted_by = fields.String(required=True, metadata={"description": "the meeting, e.g. 期末校務會議 (≤ 120)"})
    summary = fields.String(allow_none=True, metadata={"description": "what changed (≤ 500)"})
    rules = fields.Dict(required=True, metadata={
        "description": "a complete rule set (see RulesSchema); unknown keys are refused"})


class RuleSetOut(Schema):
    """What the rule endpoints return (documentation only)."""

    version = fields.Integer()
    adopted_on = fields.Date()
    adopted_by = fields.String()
    summary = fields.String()
    created_at = fields.DateTime()
    rules = fields.Nested(rulesets.RulesSchema)
    national = fields.Dict(metadata={"description": "the national ceilings of the day"})


def version_json(rule_set) -> dict:
    return {
        "version": rule_set.version,
        "adopted_on": rule_set.adopted_on.isoformat(),
        "adopted_by": rule_set.adopted_by,
        "summary": rule_set.summary,
        "created_at": rule_set.created_at.isoformat() if rule_set.created_at else None,
        "rules": rule_set.data,
    }


def _day_param():
    raw = request.args.get("on")
    if raw is None or raw == "":
        return rulesets.today_in_taipei()
    day = rulesets.parse_day(raw)
    if day is None:
        raise ValidationFailed({"on": _("Enter the date as YYYY-MM-DD.")})
    return day


@bp.route("/rules")
@actor_required
def rules_in_force():
    """The supplementary rules in force.
    ---
    get:
      summary: The school's supplementary rules in force today (Asia/Taipei) or on a given day
      tags: [rules]
      parameters:
        - {name: "on", in: query, required: false, schema: {type: string, format: date},
           description: "YYYY-MM-DD; default today in Asia/Taipei"}
      responses:
        200:
          description: "{version, adopted_on, adopted_by, summary, rules, national}: the version in force and
            the national ceilings of that day"
          content:
            application/json:
              schema: RuleSetOut
        404: {description: no version was in force on that day}
        422: {description: "a malformed date (details.on)"}
    """
    day = _day_param()
    rule_set = rulesets.in_force(current_tenant().id, day)
    if rule_set is None:
        raise NotFound(_("No supplementary rules were in force on %(date)s.", date=day.isoformat()),
                       code="no_rules_in_force")
    return {**version_json(rule_set), "on": day.isoformat(), "national": national_rules_on(day).to_dict()}


@bp.route("/rules/history")
@api_permission("rules.view")
def rules_history():
    """Every version of the rules.
    ---
    get:
      summary: Every version of the school's supplementary rules, newest first
      tags: [rules]
      responses:
        200: {description: "{versions: [{version, adopted_on, adopted_by, summary, superseded_on, rules}]}"}
        403: {description: "lacks rules.view"}
    """
    versions = rulesets.history(current_tenant().id)
    out, next_adopted = [], None
    for rule_set in versions:  # newest first: each is superseded by the one listed before it
        item = version_json(rule_set)
        item["superseded_on"] = next_adopted.isoformat() if next_adopted else None
        out.append(item)
        next_adopted = rule_set.adopted_on
    return {"versions": out}


@bp.route("/rules/<int:version>")
@api_permission("rules.view")
def rules_version(version: int):
    """One version of the rules.
    ---
    get:
      summary: One version of the school's supplementary rules, with the national ceilings of its adoption day
      tags: [rules]
      responses:
        200: {description: "{version, adopted_on, adopted_by, summary, rules, national}"}
        403: {description: "lacks rules.view"}
        404: {description: no such version}
    """
    rule_set = rulesets.get_version(current_tenant().id, version)
    if rule_set is None:
        raise NotFound(_("This version of the rules does not exist."))
    return {**version_json(rule_set), "national": national_rules_on(rule_set.adopted_on).to_dict()}


@bp.route("/rules", methods=["POST"])
@api_permission("rules.edit")
def rules_amend():
    """Amend the rules: a new version.
    ---
    post:
      summary: Adopt a new version of the supplementary rules (versions are never edited)
      tags: [rules]
      requestBody:
        required: true
        content:
          application/json:
            schema: AmendRequest
      responses:
        201:
          description: "the new version: {version, adopted_on, adopted_by, summary, rules, national}"
          content:
            application/json:
              schema: RuleSetOut
        403: {description: "lacks rules.edit"}
        409: {description: another amendment took the version number at the same time}
        422: {description: "details: field path (e.g. rules.course_outcomes.selection_cap) → message naming the rule"}
    """
    data = parse_json(AmendRequest())
    rule_set = rulesets.amend(current_tenant(), g.actor, data=data["rules"], adopted_on=data["adopted_on"],
                              adopted_by=data["adopted_by"], summary=data.get("summary"))
    db.session.commit()
    return {**version_json(rule_set), "national": national_rules_on(rule_set.adopted_on).to_dict()}, 201
