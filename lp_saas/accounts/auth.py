"""Who is acting: a signed-in web user (Flask-Login, over our server-side session rows) or an API
token holder. Both are tied to the school that issued them; anywhere else they are worth nothing."""
from __future__ import annotations

from flask import g, request
from flask_login import AnonymousUserMixin, current_user

from lp_saas.accounts import services
from lp_saas.extensions import login_manager
from lp_saas.tenants.context import current_tenant_or_none


class WebUser:
    """Flask-Login's user object: the account plus the session it is signed in with."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, user, session_row, token: str):
        self.user = user
        self.session_row = session_row
        self._token = token

    @property
    def is_active(self) -> bool:
        return self.user.can_sign_in()

    def get_id(self) -> str:
        # Flask-Login keeps this in the signed cookie: the session secret, not the user id, so
        # that ending the server-side row ends the cookie (Flask-Login's "alternative tokens").
        return self._token


@login_manager.user_loader
def _load_web_user(token: str):
    tenant = current_tenant_or_none()
    if tenant is None:
        return None
    found = services.load_session(tenant.id, token, "web")
    if found is None:
        return None
    user, row = found
    return WebUser(user, row, token)


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def load_api_actor() -> None:
    """``before_request`` of the API: a bearer token of this school, or nobody."""
    g.actor = None
    g.auth_session = None
    tenant = current_tenant_or_none()
    token = _bearer_token()
    if tenant is None or not token:
        return
    found = services.load_session(tenant.id, token, "api")
    if found is not None:
        g.actor, g.auth_session = found


def current_actor():
    """The acting User of this request (web session or API token), or None."""
    if "actor" in g and g.actor is not None:
        return g.actor
    if request.path.startswith("/api/"):
        return None
    if current_user and getattr(current_user, "is_authenticated", False) and not isinstance(current_user, AnonymousUserMixin):
        g.actor = current_user.user
        g.auth_session = current_user.session_row
        return g.actor
    return None


def current_auth_session():
    current_actor()
    return g.get("auth_session")
