"""Platform users (operators, regional-office officers): passwords, sign-in with lockout, web
sessions and API tokens — the schools' approach (:mod:`lp_saas.accounts.services`), on the
platform's own tables.

- Passwords: Argon2id through the accounts module's hasher (``hash_password``/``verify_password``,
  which only need a ``password_hash`` attribute), and its password and username rules.
- Sessions and tokens: 256-bit random secrets, only their SHA-256 stored in ``platform_sessions``,
  with the same idle and absolute timeouts (``LP_SESSION_IDLE_MINUTES``, ``LP_SESSION_ABSOLUTE_HOURS``,
  ``LP_TOKEN_HOURS``). Disabling an account or changing its password ends its sessions at once.
- The web session's secret travels in Flask's signed, host-only session cookie under its own key
  (``lp_platform``), not through Flask-Login, whose single user loader belongs to the schools. So a
  school's cookie carries nothing the apex reads and the apex's cookie nothing a school reads;
  and since the two kinds of secret live in different tables, neither is worth anything on the
  other's host even when copied there by hand.
- API tokens are issued on the apex by ``POST /api/v1/platform/token`` and read only by the
  platform's API routes (the schools' token loader never looks at this table).
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from functools import wraps

import sqlalchemy as sa
from flask import abort, current_app, g, has_request_context, redirect, request, session, url_for
from flask_babel import lazy_gettext as _l

from lp_saas.accounts.services import (LoginRefused, hash_password, password_problem, username_problem,
                                       verify_password)
from lp_saas.database import db, utcnow
from lp_saas.errors import ValidationFailed
from lp_saas.platform.models import PlatformSession, PlatformUser

SESSION_KEY = "lp_platform"

__all__ = ["LoginRefused", "authenticate", "start_session", "load_session", "end_session", "end_all_sessions",
           "change_password", "hash_password", "password_problem", "username_problem"]


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def find_user(username) -> PlatformUser | None:
    if not isinstance(username, str) or not username.strip():
        return None
    return db.session.scalar(sa.select(PlatformUser).where(PlatformUser.username == username.strip()))


def authenticate(username, password) -> PlatformUser:
    """The platform user, if the credentials are right and the account may sign in.

    Raises LoginRefused (400 missing, 401 wrong, 423 locked, 403 disabled). The caller commits even
    when this raises, so that the failure count and the lock are kept.
    """
    from lp_saas.platform.services import record_event

    now = utcnow()
    cfg = current_app.config
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        raise LoginRefused(_l("Enter your username and password."), code="missing_credentials", status=400)
    user = find_user(username)
    if user is not None and user.locked_until is not None and user.locked_until > now:
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        raise LoginRefused(_l("This account is locked after too many failed sign-ins. "
                              "Try again in %(minutes)s minutes.", minutes=minutes),
                           code="account_locked", status=423)
    if not verify_password(user, password):
        if user is not None:
            user.failed_logins += 1
            record_event(user, "platform_user.login_failed", target_type="platform_user", target_id=user.id)
            if user.failed_logins >= cfg["LP_LOGIN_MAX_FAILURES"]:
                user.locked_until = now + timedelta(minutes=cfg["LP_LOGIN_LOCK_MINUTES"])
                user.failed_logins = 0
                record_event(user, "platform_user.locked", target_type="platform_user", target_id=user.id)
                db.session.flush()
                raise LoginRefused(_l("Too many failed sign-ins: this account is locked for %(minutes)s minutes.",
                                      minutes=cfg["LP_LOGIN_LOCK_MINUTES"]), code="account_locked", status=423)
        db.session.flush()
        raise LoginRefused(_l("The username or password is not correct."))
    if not user.can_sign_in():
        raise LoginRefused(_l("This account is disabled. Please contact the platform's operators."),
                           code="account_disabled", status=403)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    return user


def start_session(user: PlatformUser, kind: str = "web") -> tuple[str, PlatformSession]:
    """A new web session or API token. Returns (secret, row); flush only."""
    from lp_saas.platform.services import record_event

    cfg = current_app.config
    token = secrets.token_urlsafe(32)
    now = utcnow()
    lifetime = timedelta(hours=cfg["LP_SESSION_ABSOLUTE_HOURS"] if kind == "web" else cfg["LP_TOKEN_HOURS"])
    addr, agent = (request.remote_addr, (request.user_agent.string or "")[:200]) if has_request_context() \
        else (None, None)
    row = PlatformSession(user_id=user.id, kind=kind, token_hash=_token_hash(token), created_at=now,
                          last_seen_at=now, expires_at=now + lifetime, client_addr=addr, user_agent=agent)
    db.session.add(row)
    db.session.flush()
    record_event(user, "platform_user.login" if kind == "web" else "platform_user.token_issued",
                 target_type="platform_user", target_id=user.id)
    return token, row


def load_session(token, kind: str) -> tuple[PlatformUser, PlatformSession] | None:
    """The live platform session for ``token`` with its user; None when dead or unknown."""
    if not token or not isinstance(token, str) or len(token) > 200:
        return None
    row = db.session.scalar(sa.select(PlatformSession).where(
        PlatformSession.token_hash == _token_hash(token), PlatformSession.kind == kind))
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    idle = timedelta(minutes=current_app.config["LP_SESSION_IDLE_MINUTES"])
    if row.expires_at <= now or (kind == "web" and row.last_seen_at + idle <= now):
        return None
    user = db.session.get(PlatformUser, row.user_id)
    if user is None or not user.can_sign_in():
        row.revoked_at, row.revoked_reason = now, "account_ended"
        return None
    if (now - row.last_seen_at) > timedelta(seconds=60):
        row.last_seen_at = now
    return user, row


def end_session(row: PlatformSession, reason: str = "logout") -> None:
    if row.revoked_at is None:
        row.revoked_at, row.revoked_reason = utcnow(), reason


def end_all_sessions(user: PlatformUser, reason: str, *, keep=None) -> int:
    query = sa.update(PlatformSession).where(PlatformSession.user_id == user.id,
                                             PlatformSession.revoked_at.is_(None))
    if keep is not None:
        query = query.where(PlatformSession.id != keep)
    result = db.session.execute(query.values(revoked_at=utcnow(), revoked_reason=reason),
                                execution_options={"synchronize_session": False})
    return result.rowcount or 0


def change_password(user: PlatformUser, current: str, new: str, *, current_session=None) -> None:
    """The user's own password change. Raises ValidationFailed; ends every other session."""
    from lp_saas.platform.services import record_event

    errors = {}
    if not verify_password(user, current or ""):
        errors["current_password"] = str(_l("The current password is not correct."))
    problem = password_problem(new, user.username)
    if problem:
        errors["new_password"] = problem
    elif current and new == current:
        errors["new_password"] = str(_l("Choose a password different from the current one."))
    if errors:
        raise ValidationFailed(errors)
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    user.must_change_password = False
    end_all_sessions(user, "password_changed", keep=current_session.id if current_session else None)
    record_event(user, "platform_user.password_changed", target_type="platform_user", target_id=user.id)
    db.session.flush()


# --- who is acting on the apex -------------------------------------------------------------------

def load_web_user() -> None:
    """``before_request`` of the platform's pages: the signed-in platform user, or nobody."""
    g.platform_user = None
    g.platform_session = None
    found = load_session(session.get(SESSION_KEY), "web")
    if found is not None:
        g.platform_user, g.platform_session = found


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


def load_api_user() -> None:
    """The platform user of this API request's bearer token, or nobody."""
    g.platform_user = None
    g.platform_session = None
    found = load_session(_bearer_token(), "api")
    if found is not None:
        g.platform_user, g.platform_session = found


def current_platform_user() -> PlatformUser | None:
    return g.get("platform_user")


def sign_in_web(user: PlatformUser) -> None:
    token, row = start_session(user, "web")
    session.clear()  # a fresh cookie (and CSRF token) for the new identity
    session[SESSION_KEY] = token
    g.platform_user, g.platform_session = user, row


def sign_out_web() -> None:
    row = g.get("platform_session")
    if row is not None:
        end_session(row, "logout")
    session.pop(SESSION_KEY, None)


def platform_login_required(*kinds: str):
    """Page decorator: a signed-in platform user (of one of ``kinds``, if given), else the sign-in page
    (not signed in) or 403 (another kind of platform user)."""
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            user = current_platform_user()
            if user is None:
                return redirect(url_for("platform.login", next=request.full_path.rstrip("?")))
            if kinds and user.kind not in kinds:
                abort(403)
            return view(*args, **kwargs)

        wrapped.login_required = True
        return wrapped

    return decorator


operator_required = platform_login_required("operator")
