"""The school's branded home and the staff dashboard shell; the platform's landing page on the apex."""
from __future__ import annotations

from flask import Blueprint, Response, abort, g, render_template
from flask_babel import lazy_gettext as _l

from lp_saas.accounts.auth import current_actor
from lp_saas.roles import permissions
from lp_saas.roles.permissions import login_required
from lp_saas.tenants.context import current_tenant

bp = Blueprint("school", __name__)

# The dashboard's tiles: (permission, needs it school-wide?, endpoint, label). Only those the user holds show.
DASHBOARD_LINKS = (
    ("course_outcome.upload", False, "progress.mine", _l("My learning portfolio")),
    ("course_outcome.upload", False, "outcomes.mine", _l("My course learning outcomes")),
    ("course_outcome.certify", False, "outcomes.queue", _l("Certify course learning outcomes")),
    ("course_outcome.view", False, "progress.mine", _l("My children's portfolios")),
    ("dashboard.view", True, "progress.school", _l("Progress")),
    ("portfolio.check", False, "progress.homeroom", _l("My class")),
    ("users.manage", True, "accounts.users", _l("Accounts")),
    ("roles.view", True, "roles.matrix", _l("Role matrix")),
    ("rules.view", True, "rulesets.current", _l("Supplementary rules")),
    ("audit.view", True, "audit.search", _l("Audit log")),
    ("branding.edit", True, "platform_school.edit_branding", _l("Branding")),
    ("governance.edit", True, "governance.overview", _l("Working group, meetings and trainings")),
)


def dashboard_links(actor) -> list[tuple[str, object]]:
    """The tiles this user may follow (each endpoint once)."""
    from lp_saas.roles.catalogue import CHILD, CLASS

    grants = permissions.grants(actor)
    seen, links = set(), []
    for perm, school_wide, endpoint, label in DASHBOARD_LINKS:
        scopes = grants.get(perm, set())
        if not scopes or (school_wide and "all" not in scopes) or endpoint in seen:
            continue
        if endpoint == "progress.mine" and perm == "course_outcome.view" and CHILD not in scopes:
            continue
        if endpoint == "progress.homeroom" and not scopes & {CLASS, "all"}:
            continue
        seen.add(endpoint)
        links.append((endpoint, label))
    return links


@bp.route("/")
def home():
    if g.get("is_apex"):
        return render_template("platform/landing.html")
    tenant = current_tenant()
    return render_template("tenants/home.html", school=tenant, actor=current_actor())


@bp.route("/dashboard")
def dashboard():
    current_tenant()  # the dashboard exists only on a school's host (404 on the apex)
    return _dashboard()


@login_required
def _dashboard():
    current_tenant()
    actor = current_actor()
    links = dashboard_links(actor)
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
