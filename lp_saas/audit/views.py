"""The school admin's audit-log search."""
from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta

from flask import Blueprint, render_template, request

from lp_saas.audit import services
from lp_saas.i18n import TAIPEI
from lp_saas.roles.permissions import permission_required
from lp_saas.tenants.context import current_tenant
from lp_saas.tenants.resolver import require_school

bp = Blueprint("audit", __name__)
bp.before_request(require_school)


def _day(value: str | None):
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None


@bp.route("/admin/audit")
@permission_required("audit.view")
def search():
    args = request.args
    errors = {}
    since_day, until_day = _day(args.get("since")), _day(args.get("until"))
    if args.get("since") and since_day is None:
        errors["since"] = True
    if args.get("until") and until_day is None:
        errors["until"] = True
    student_id = None
    if args.get("student_id"):
        try:
            student_id = uuid.UUID(args["student_id"])
        except ValueError:
            errors["student_id"] = True
    events = services.search(
        current_tenant().id,
        actor=(args.get("actor") or "").strip()[:120] or None,
        action=(args.get("action") or "").strip()[:60] or None,
        student_id=student_id,
        since=datetime.combine(since_day, time(0), TAIPEI) if since_day else None,
        until=datetime.combine(until_day, time(0), TAIPEI) + timedelta(days=1) if until_day else None,
    ) if not errors else []
    return render_template("audit/search.html", events=events, args=args, errors=errors), (400 if errors else 200)
