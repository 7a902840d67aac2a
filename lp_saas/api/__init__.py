"""The JSON API under ``/api/v1`` (contract: API.md), one module per resource.

Authentication is by bearer token only (no cookies), so the API is CSRF-free by construction.
A token is looked up in the school of the request's host: another school's token is worth nothing.
"""
from __future__ import annotations

from flask import Blueprint, g, request

from lp_saas.accounts.auth import load_api_actor

bp = Blueprint("api", __name__, url_prefix="/api/v1")

#: endpoints that also answer on the platform's apex host (no school)
APEX_ENDPOINTS = {"api.openapi"}


@bp.before_request
def _tenant_and_actor():
    from flask import abort

    if g.get("tenant") is None and request.endpoint not in APEX_ENDPOINTS:
        abort(404)
    load_api_actor()


def register(app) -> None:
    # import the resource modules so that their routes attach to the blueprint
    from lp_saas.academics import api as _academics  # noqa: F401
    from lp_saas.api import (auth, jobs, openapi, outcomes, performances, roster, rules,  # noqa: F401
                             selections, statements)
    from lp_saas.lifecycle import api as _lifecycle  # noqa: F401
    from lp_saas.platform import api as _platform  # noqa: F401

    APEX_ENDPOINTS.update(_platform.APEX_ENDPOINTS)
    app.register_blueprint(bp)
