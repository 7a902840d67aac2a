"""The role matrix page: roles × permissions, each cell a scope, editable by the school admin."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from lp_saas.accounts.auth import current_actor
from lp_saas.database import db
from lp_saas.errors import ValidationFailed
from lp_saas.roles import catalogue, permissions
from lp_saas.roles.permissions import permission_required
from lp_saas.roles import services as role_services
from lp_saas.tenants.context import current_tenant
from lp_saas.tenants.resolver import require_school

bp = Blueprint("roles", __name__)
bp.before_request(require_school)


@bp.route("/admin/roles", methods=["GET", "POST"])
@permission_required("roles.view")
def matrix():
    tenant = current_tenant()
    actor = current_actor()
    roles = role_services.roles_of_school(tenant.id)
    errors, status = {}, 200
    if request.method == "POST":
        permissions.require(actor, "roles.edit")
        wanted = {}
        for role in roles:
            cells = {}
            for perm in catalogue.PERMISSIONS:
                scope = request.form.get(f"cell-{role.key}-{perm.key}", "")
                if scope:
                    cells[perm.key] = scope
            wanted[role.key] = cells
        try:
            changed = role_services.update_matrix(tenant, actor, wanted)
        except ValidationFailed as failed:
            db.session.rollback()
            errors, status = failed.details, 422
        else:
            db.session.commit()
            flash(_("The role matrix was saved (%(count)s changes).", count=changed), "success")
            return redirect(url_for("roles.matrix"))
    current = role_services.matrix(tenant.id)
    return render_template(
        "roles/matrix.html", roles=roles, current=current, catalogue=catalogue,
        can_edit=permissions.has(actor, "roles.edit"), errors=errors,
    ), status


