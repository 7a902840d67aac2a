"""The one place that holds the school (tenant) of the current request or job.

The tenant is resolved once per request from the host (see ``resolver.py``) or set explicitly
by a job with :func:`tenant_scope`; everything else asks :func:`current_tenant`.
"""
from __future__ import annotations

from contextlib import contextmanager

from flask import abort, g, has_app_context


def current_tenant_or_none():
    """The active school, or None on the platform's apex host / outside a tenant scope."""
    if not has_app_context():
        return None
    return g.get("tenant")


def current_tenant():
    """The active school. Raises 404 (never 403) when there is none: an unknown school is a 404."""
    tenant = current_tenant_or_none()
    if tenant is None:
        abort(404)
    return tenant


def current_tenant_id():
    """The active school's id, or None; safe inside database events (never loads anything)."""
    if not has_app_context():
        return None
    return g.get("tenant_id")


def activate(tenant) -> None:
    """Make ``tenant`` the active school for this app context and the open DB transaction."""
    g.tenant = tenant
    g.tenant_id = tenant.id if tenant is not None else None
    from lp_saas.database import apply_tenant_to_transaction

    apply_tenant_to_transaction()


@contextmanager
def tenant_scope(tenant):
    """Run a block (a job, a CLI command) as ``tenant``; restores the previous tenant after."""
    previous, previous_id = g.get("tenant"), g.get("tenant_id")
    activate(tenant)
    try:
        yield tenant
    finally:
        g.tenant, g.tenant_id = previous, previous_id
        from lp_saas.database import apply_tenant_to_transaction

        apply_tenant_to_transaction()
