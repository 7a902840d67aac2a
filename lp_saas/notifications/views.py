"""A user's notices: the full list, marking one read, and ``unread_notices()`` for the dashboard."""
from __future__ import annotations

from flask import Blueprint, abort, g, redirect, render_template, url_for

from lp_saas.accounts.auth import current_actor
from lp_saas.database import db
from lp_saas.notifications import services
from lp_saas.notifications.models import Notification
from lp_saas.roles.permissions import login_required
from lp_saas.tenants.context import current_tenant
from lp_saas.tenants.resolver import get_scoped_or_404, require_school

bp = Blueprint("notifications", __name__)
bp.before_request(require_school)


@bp.app_context_processor
def _notices():
    def unread_notices(limit: int = 5):
        actor = current_actor() if g.get("tenant") is not None else None
        return services.unread(actor.tenant_id, actor.id, limit) if actor is not None else []

    return {"unread_notices": unread_notices}


@bp.route("/notices")
@login_required
def notices():
    actor = current_actor()
    return render_template("lifecycle/notices.html", notices=services.recent(current_tenant().id, actor.id))


@bp.route("/notices/<notice_id>/read", methods=["POST"])
@login_required
def mark_read(notice_id):
    notice = get_scoped_or_404(Notification, notice_id)
    if notice.user_id != current_actor().id:
        abort(404)
    services.mark_read(notice)
    db.session.commit()
    return redirect(url_for("notifications.notices"))
