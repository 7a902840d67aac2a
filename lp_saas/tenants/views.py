"""The school's branded home and the staff dashboard shell; the platform's landing page on the apex."""
from __future__ import annotations

from flask import Blueprint, Response, abort, g, render_template
from flask_babel import lazy_gettext as _l

from lp_saas.accounts.auth import current_actor
from lp_saas.roles import permissions
from lp_saas.roles.permissions import login_required
from lp_saas.tenants.context import current_tenant

bp = Blueprint("school", __name__)

# The dashboard's tiles: (permission, endpoint, zh/en label key). Only those the user holds show.
DASHBOARD_LINKS = (
    ("users.manage", "accounts.users", _l("Accounts")),
    ("roles.view", "roles.matrix", _l("Role matrix")),
    ("rules.view", "rulesets.current", _l("Supplementary rules")),
    ("audit.view", "audit.search", _l("Audit log")),
)


@bp.route("/")
def home():
    if g.get("is_apex"):
        return render_template("platform/landing.html")
    tenant = current_tenant()
    return render_template("tenants/home.html", school=tenant, actor=current_actor())


@bp.route("/dashboard")
@login_required
def dashboard():
    current_tenant()
    actor = current_actor()
    links = [(endpoint, label) for perm, endpoint, label in DASHBOARD_LINKS if permissions.has(actor, perm)]
    roles = permissions.user_roles(actor)
    return render_template("tenants/dashboard.html", school=current_tenant(), actor=actor,
                           links=links, roles=roles)


@bp.route("/branding.css")
def branding_css():
    """The school's colours as CSS variables (validated hex colours only, see tenants.services)."""
    tenant = g.get("tenant")
    if tenant is None:
        abort(404)
    css = f":root{{--brand:{tenant.primary_color};--accent:{tenant.accent_color};}}\n"
    return Response(css, mimetype="text/css", headers={"Cache-Control": "public, max-age=300"})
