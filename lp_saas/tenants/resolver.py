"""Host → school, once per request (DESIGN.md §5); and the one tenant-scoped fetch helper.

``ylsh.<LP_BASE_DOMAIN>`` is the school ``ylsh``; the base domain itself is the platform's site.
An unknown, pending or provisioning school is a 404 ("better than corrupting or revealing data");
a suspended school is a 404 with a notice page.
"""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import abort, current_app, g, render_template, request

from lp_saas.database import db
from lp_saas.tenants.context import activate, current_tenant
from lp_saas.tenants.models import Tenant


def slug_from_host(host: str, base_domain: str) -> str | None:
    """``ylsh`` for ``ylsh.localhost:5000``; ``""`` for the apex; None for a host that is neither."""
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    hostname = hostname.lower().rstrip(".")
    if hostname == base_domain:
        return ""
    suffix = "." + base_domain
    if hostname.endswith(suffix):
        slug = hostname[: -len(suffix)]
        if slug and "." not in slug:
            return slug
    return None


def resolve_tenant():
    """``before_request``: find the school of this host and make it the active tenant."""
    g.tenant = None
    g.tenant_id = None
    g.is_apex = False
    slug = slug_from_host(request.host, current_app.config["LP_BASE_DOMAIN"])
    if slug is None:
        abort(404)
    if request.path.startswith("/static/"):
        return None  # the product's own CSS and images, the same for every host (a 404 page needs them too)
    if slug == "":
        g.is_apex = True
        return None
    tenant = db.session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
    if tenant is None or tenant.status in ("pending", "provisioning"):
        abort(404)
    if tenant.status == "suspended":
        if request.path == "/branding.css":  # the notice page keeps the school's colours
            activate(tenant)
            return None
        if request.path.startswith("/api/"):
            from lp_saas.errors import error_response
            from flask_babel import gettext as _

            return error_response(404, "school_suspended", _("This school's service is suspended."))
        return render_template("tenants/suspended.html", school=tenant), 404
    activate(tenant)
    return None


def require_school():
    """``before_request`` of blueprints that exist only on a school's host."""
    if g.get("tenant") is None:
        abort(404)


def require_apex():
    """``before_request`` of blueprints that exist only on the platform's own host."""
    if not g.get("is_apex"):
        abort(404)


def _active_tenant_id():
    from lp_saas.tenants.context import current_tenant_id

    tenant_id = current_tenant_id()
    if tenant_id is None:
        abort(404)
    return tenant_id


def scoped_select(model):
    """``SELECT model`` restricted to the active school. Every tenant-owned query starts here."""
    return sa.select(model).where(model.tenant_id == _active_tenant_id())


def get_scoped(model, object_id):
    """The active school's ``model`` row with this id, or None (also for malformed ids)."""
    if not isinstance(object_id, uuid.UUID):
        try:
            object_id = uuid.UUID(str(object_id))
        except (TypeError, ValueError):
            return None
    return db.session.get(model, (_active_tenant_id(), object_id))


def get_scoped_or_404(model, object_id):
    """The active school's row, or 404 (another school's id is a 404, never a 403).

    Raises werkzeug NotFound. Permission and scope are checked by the caller afterwards.
    """
    row = get_scoped(model, object_id)
    if row is None:
        abort(404)
    return row
