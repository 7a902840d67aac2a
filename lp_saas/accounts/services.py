"""Accounts: passwords (Argon2id), sign-in with lockout, sessions and API tokens, and ending them.

Sessions and tokens are 256-bit random secrets; only their SHA-256 is stored. A session dies at
its idle or absolute timeout, and every session and token of an account ends at once when the
account is disabled, expires, or changes its password (except the session that changed it).
"""
from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, has_request_context, request
from flask_babel import lazy_gettext as _l

from lp_saas.accounts.models import AuthSession, User
from lp_saas.audit import services as audit
from lp_saas.database import db, utcnow
from lp_saas.errors import AppError, ValidationFailed
from lp_saas.text import unsafe_line

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("lp-saas timing equaliser")
USERNAME_MAX = 64


class LoginRefused(AppError):
    status = 401
    code = "invalid_credentials"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_problem(password, username: str | None = None) -> str | None:
    """Why a new password is not acceptable (translated), or None."""
    if not isinstance(password, str) or len(password) < 8:
        return str(_l("A password has at least 8 characters."))
    if len(password) > 128:
        return str(_l("A password has at most 128 characters."))
    if username and password.lower() == username.lower():
        return str(_l("The password must not be the username."))
    if password.isdigit():
        return str(_l("The password must not be only digits."))
    return None


def username_problem(username) -> str | None:
    if not isinstance(username, str) or not username.strip():
        return str(_l("Enter a username."))
    if len(username) > USERNAME_MAX:
        return str(_l("A username has at most 64 characters."))
    if not all(c.isalnum() or c in "._-@" for c in username) or not username.isascii():
        return str(_l("A username uses letters, digits and . _ - @ only."))
    return None


def verify_password(user: User | None, password: str) -> bool:
    if user is None or not user.password_hash:
        try:
            _hasher.verify(_DUMMY_HASH, password or "x")
        except VerificationError:
            pass
        return False
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return True


def find_user(tenant_id, username: str) -> User | None:
    if not isinstance(username, str):
        return None
    return db.session.scalar(sa.select(User).where(User.tenant_id == tenant_id,
                                                   User.username == username.strip()))


def authenticate(tenant, username, password) -> User:
    """The user, if the credentials are right and the account may sign in now.

    Raises LoginRefused (401 wrong credentials, 423 locked, 403 disabled or expired). Failed
    attempts are counted per account and lock it for ``LP_LOGIN_LOCK_MINUTES`` after
    ``LP_LOGIN_MAX_FAILURES``; the caller must commit even when this raises (it records the failure).
    """
    now = utcnow()
    cfg = current_app.config
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        raise LoginRefused(_l("Enter your username and password."), code="missing_credentials", status=400)
    user = find_user(tenant.id, username)
    if user is not None and user.locked_until is not None and user.locked_until > now:
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        raise LoginRefused(_l("This account is locked after too many failed sign-ins. "
                              "Try again in %(minutes)s minutes, or ask the school to reset your password.",
                              minutes=minutes), code="account_locked", status=423)
    if not verify_password(user, password):
        if user is not None:
            user.failed_logins += 1
            audit.record(tenant.id, user, "user.login_failed", target_type="user", target_id=user.id)
            if user.failed_logins >= cfg["LP_LOGIN_MAX_FAILURES"]:
                user.locked_until = now + timedelta(minutes=cfg["LP_LOGIN_LOCK_MINUTES"])
                user.failed_logins = 0
                audit.record(tenant.id, user, "user.locked", target_type="user", target_id=user.id)
                db.session.flush()
                raise LoginRefused(_l("Too many failed sign-ins: this account is locked for %(minutes)s minutes.",
                                      minutes=cfg["LP_LOGIN_LOCK_MINUTES"]), code="account_locked", status=423)
        db.session.flush()
        raise LoginRefused(_l("The username or password is not correct."))
    if user.status != "active":
        raise LoginRefused(_l("This account is disabled. Please contact the school."),
                           code="account_disabled", status=403)
    if user.is_expired(now):
        raise LoginRefused(_l("This account has expired. Please contact the school."),
                           code="account_expired", status=403)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _client() -> tuple[str | None, str | None]:
    if not has_request_context():
        return None, None
    return request.remote_addr, (request.user_agent.string or "")[:200]


def start_session(user: User, kind: str = "web") -> tuple[str, AuthSession]:
    """A new web session or API token for ``user``. Returns (secret, row); flush only."""
    cfg = current_app.config
    token = secrets.token_urlsafe(32)
    now = utcnow()
    lifetime = timedelta(hours=cfg["LP_SESSION_ABSOLUTE_HOURS"] if kind == "web" else cfg["LP_TOKEN_HOURS"])
    addr, agent = _client()
    row = AuthSession(tenant_id=user.tenant_id, user_id=user.id, kind=kind, token_hash=_token_hash(token),
                      created_at=now, last_seen_at=now, expires_at=now + lifetime,
                      client_addr=addr, user_agent=agent)
    db.session.add(row)
    db.session.flush()
    audit.record(user.tenant_id, user, "user.login" if kind == "web" else "token.issued",
                 target_type="user", target_id=user.id)
    return token, row


def load_session(tenant_id, token: str, kind: str) -> tuple[User, AuthSession] | None:
    """The live session of this school for ``token``, with its user; None if dead or foreign.

    Ends (revokes) a session whose user may no longer sign in. Touches ``last_seen_at`` at most
    once a minute so that a busy page does not write on every request.
    """
    if not token or not isinstance(token, str) or len(token) > 200:
        return None
    row = db.session.scalar(sa.select(AuthSession).where(
        AuthSession.tenant_id == tenant_id, AuthSession.token_hash == _token_hash(token),
        AuthSession.kind == kind))
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    idle = timedelta(minutes=current_app.config["LP_SESSION_IDLE_MINUTES"])
    if row.expires_at <= now or (kind == "web" and row.last_seen_at + idle <= now):
        return None
    user = db.session.get(User, (tenant_id, row.user_id))
    if user is None or not user.can_sign_in(now):
        row.revoked_at = now
        row.revoked_reason = "account_ended"
        return None
    if (now - row.last_seen_at) > timedelta(seconds=60):
        row.last_seen_at = now
    return user, row


def end_session(row: AuthSession, reason: str = "logout") -> None:
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        row.revoked_reason = reason


def end_all_sessions(user: User, reason: str, *, keep: uuid.UUID | None = None) -> int:
    """Revoke every live session and token of ``user`` (but ``keep``). Returns how many."""
    now = utcnow()
    query = sa.update(AuthSession).where(
        AuthSession.tenant_id == user.tenant_id, AuthSession.user_id == user.id,
        AuthSession.revoked_at.is_(None))
    if keep is not None:
        query = query.where(AuthSession.id != keep)
    result = db.session.execute(query.values(revoked_at=now, revoked_reason=reason),
                                execution_options={"synchronize_session": False})
    return result.rowcount or 0


def change_password(user: User, current: str, new: str, *, current_session: AuthSession | None) -> None:
    """The user's own password change. Raises ValidationFailed; ends every other session."""
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
    audit.record(user.tenant_id, user, "user.password_changed", target_type="user", target_id=user.id)
    db.session.flush()


def reset_password(actor: User, user: User, new: str) -> None:
    """A school admin sets a temporary password: the user must change it; all sessions end."""
    problem = password_problem(new, user.username)
    if problem:
        raise ValidationFailed({"password": problem})
    user.password_hash = hash_password(new)
    user.must_change_password = True
    user.failed_logins = 0
    user.locked_until = None
    end_all_sessions(user, "password_reset")
    audit.record(user.tenant_id, actor, "user.password_reset", target_type="user", target_id=user.id)
    db.session.flush()


def set_status(actor, user: User, status: str) -> None:
    """Enable or disable an account. Disabling ends its sessions and tokens at once."""
    if status not in ("active", "disabled"):
        raise ValidationFailed({"status": str(_l("Status is active or disabled."))})
    if user.status == status:
        return
    if status == "active":
        from lp_saas.platform.services import check_student_quota
        from lp_saas.roles import permissions
        from lp_saas.tenants.models import Tenant

        if "student" in {role.key for role in permissions.user_roles(user)}:
            # an enabled student counts toward the school's plan again
            check_student_quota(db.session.get(Tenant, user.tenant_id))
    user.status = status
    if status == "disabled":
        end_all_sessions(user, "disabled")
    audit.record(user.tenant_id, actor, f"user.{'disabled' if status == 'disabled' else 'enabled'}",
                 target_type="user", target_id=user.id)
    db.session.flush()


def set_expiry(actor, user: User, expires_at: datetime | None) -> None:
    """Set when the account stops working. An expiry now or in the past ends its sessions at once."""
    user.expires_at = expires_at
    if expires_at is not None and expires_at <= utcnow():
        end_all_sessions(user, "expired")
    audit.record(user.tenant_id, actor, "user.expiry", target_type="user", target_id=user.id,
                 details={"expires_at": expires_at.isoformat() if expires_at else None})
    db.session.flush()


def create_user(tenant, actor, *, username, display_name, password=None, roles=(), email=None,
                student_no=None) -> User:
    """A new account of ``tenant`` with ``roles`` (keys). Needs ``users.manage`` or ``roster.edit``.

    Raises ValidationFailed (bad or taken username, bad password, unknown roles). Flush only.
    """
    from lp_saas.roles.services import set_user_roles

    errors = {}
    problem = username_problem(username)
    if problem:
        errors["username"] = problem
    elif find_user(tenant.id, username) is not None:
        errors["username"] = str(_l("This username is already taken at this school."))
    if not isinstance(display_name, str) or not display_name.strip() or len(display_name) > 100:
        errors["display_name"] = str(_l("Enter a display name (at most 100 characters)."))
    elif unsafe_line(display_name):
        errors["display_name"] = str(_l("Text may not contain HTML tags or control characters."))
    if password is not None:
        problem = password_problem(password, username if isinstance(username, str) else None)
        if problem:
            errors["password"] = problem
    if student_no is not None and (not isinstance(student_no, str) or not student_no.strip()
                                   or len(student_no) > 20 or not student_no.isalnum()):
        errors["student_no"] = str(_l("A student number has 1 to 20 letters or digits."))
    elif student_no is not None and db.session.scalar(sa.select(User.id).where(
            User.tenant_id == tenant.id, User.student_no == student_no)) is not None:
        errors["student_no"] = str(_l("This student number is already in use."))
    if errors:
        raise ValidationFailed(errors)
    user = User(tenant_id=tenant.id, username=username.strip(), display_name=display_name.strip(),
                email=email, student_no=student_no,
                password_hash=hash_password(password) if password else None,
                must_change_password=False)
    db.session.add(user)
    db.session.flush()
    set_user_roles(tenant, actor, user, list(roles))
    audit.record(tenant.id, actor, "user.created", target_type="user", target_id=user.id,
                 details={"roles": sorted(roles)})
    return user
