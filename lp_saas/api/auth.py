"""Tokens and the caller's own identity."""
from __future__ import annotations

from flask import g
from flask_babel import gettext as _
from marshmallow import fields, validate

from lp_saas.accounts import services
from lp_saas.api import bp
from lp_saas.api.common import InputSchema, actor_required, parse_json
from lp_saas.database import db
from lp_saas.extensions import limiter
from lp_saas.roles import permissions
from lp_saas.tenants.context import current_tenant


class TokenRequest(InputSchema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=128))


def _client_limit():
    from flask import current_app

    return current_app.config["LP_CLIENT_LOGIN_LIMIT"]


@bp.route("/auth/token", methods=["POST"])
@limiter.limit(_client_limit, deduct_when=lambda r: r.status_code in (400, 401, 403, 422, 423))
def issue_token():
    """Issue an API token for a user of this school.
    ---
    post:
      summary: Exchange a username and password for a bearer token (valid only at this school)
      tags: [auth]
      security: []
      requestBody:
        required: true
        content:
          application/json:
            schema: TokenRequest
      responses:
        201: {description: "{token, expires_at}"}
        401: {description: wrong credentials}
        423: {description: account locked after repeated failures}
        429: {description: too many failed attempts from this client}
    """
    data = parse_json(TokenRequest())
    tenant = current_tenant()
    try:
        user = services.authenticate(tenant, data["username"], data["password"])
    except services.LoginRefused:
        db.session.commit()  # keep the failure count and the lock
        raise
    token, row = services.start_session(user, "api")
    db.session.commit()
    return {"token": token, "expires_at": row.expires_at.isoformat()}, 201


@bp.route("/auth/token", methods=["DELETE"])
@actor_required
def revoke_token():
    """Revoke the token used for this request.
    ---
    delete:
      summary: Revoke the bearer token of this request
      tags: [auth]
      responses:
        204: {description: revoked}
    """
    services.end_session(g.auth_session, "logout")
    db.session.commit()
    return "", 204


@bp.route("/me")
@actor_required
def me():
    """The caller.
    ---
    get:
      summary: The caller's account, school, roles and permissions
      tags: [auth]
      responses:
        200: {description: "{username, display_name, tenant, roles, permissions}"}
    """
    user = g.actor
    roles = permissions.user_roles(user)
    grants = permissions.grants(user)
    return {
        "id": str(user.id),
        "username": user.username,
        "display_name": user.display_name,
        "tenant": current_tenant().slug,
        "roles": [r.key for r in roles],
        "permissions": sorted(grants),
        "scopes": {perm: sorted(scopes) for perm, scopes in sorted(grants.items())},
        "expires_at": user.expires_at.isoformat() if user.expires_at else None,
        "must_change_password": user.must_change_password,
    }
