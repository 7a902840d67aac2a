"""The platform's services: signups and their approval, suspension, plans and quotas, regional
offices and platform users. Services flush and never commit; the request, the CLI command or the
job that calls them commits (mail goes out after that commit, see :mod:`lp_saas.platform.mail`).

``actor`` is a :class:`~lp_saas.platform.models.PlatformUser` (the console) or a label such as
``"operator:cli"``. What is done to a school is also written to that school's own audit log.
"""
from __future__ import annotations

import hashlib
import re
import uuid
from contextlib import contextmanager
from datetime import timedelta

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask import current_app, has_request_context, request
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from lp_saas.audit import services as audit
from lp_saas.database import db, utcnow
from lp_saas.errors import AppError, Conflict, ValidationFailed
from lp_saas.jobs.queue import job_kind, submit
from lp_saas.platform import mail
from lp_saas.platform.models import (OPEN_SIGNUP_STATUSES, Office, OfficeSchool, PlatformEvent, PlatformMail,
                                     PlatformUser, Signup, Subscription)
from lp_saas.platform.plans import PLANS, format_bytes, get_plan
from lp_saas.tenants import services as tenants
from lp_saas.tenants.context import current_tenant_id, tenant_scope
from lp_saas.tenants.models import Tenant

#: how long a verification link works; an unverified signup stops holding its subdomain after it
VERIFY_HOURS = 48
#: how long the first administrator's set-password link works
WELCOME_DAYS = 14
FIRST_ADMIN_USERNAME = "admin"
OFFICE_CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,19}$")
from lp_saas.text import UNSAFE_TEXT_RE  # noqa: E402 - shared with the roster and accounts

SCHOOL_TYPE_LABELS = {
    "general": _l("General senior high school"),
    "vocational": _l("Vocational senior high school"),
    "comprehensive": _l("Comprehensive senior high school"),
    "experimental": _l("Experimental education school"),
    "other": _l("Other"),
}


class QuotaExceeded(AppError):
    """A plan's quota would be exceeded (409, nothing stored). ``code`` names which quota."""

    status = 409
    code = "quota_exceeded"


# --- the platform's event log ----------------------------------------------------------------

def actor_label(actor) -> str:
    if actor is None:
        return "anonymous"
    if isinstance(actor, str):
        return actor
    return f"platform:{actor.username}"


def record_event(actor, action: str, *, target_type=None, target_id=None, details=None) -> PlatformEvent:
    event = PlatformEvent(actor_label=actor_label(actor), action=action, target_type=target_type,
                          target_id=str(target_id) if target_id is not None else None,
                          client_addr=request.remote_addr if has_request_context() else None,
                          details=details or None)
    db.session.add(event)
    return event


@contextmanager
def as_school(tenant: Tenant):
    """Run a block as ``tenant`` (row-level security), unless it is already the active school."""
    if current_tenant_id() == tenant.id:
        yield tenant
    else:
        with tenant_scope(tenant):
            yield tenant


def _school_audit(tenant: Tenant, actor, action: str, **details) -> None:
    with as_school(tenant):
        audit.record(tenant.id, actor_label(actor), action, target_type="tenant", target_id=tenant.id,
                     details=details or None)
        db.session.flush()


def _signup_throttle():
    """(limit, identifiers) of the signups one client may store (``LP_SIGNUP_LIMIT``, default 20 per
    hour; refused signups do not count), kept in the rate limiter's storage (Redis when configured)."""
    from limits import parse

    item = parse(current_app.config.get("LP_SIGNUP_LIMIT", "20 per hour"))
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX", "lp-limits")
    client = request.remote_addr if has_request_context() else "local"
    return item, (prefix, "signups", client or "unknown")


def check_signup_throttle() -> None:
    """Raise AppError 429 ``too_many_signups`` when this client has stored too many signups lately."""
    from lp_saas.extensions import limiter

    item, identifiers = _signup_throttle()
    if not limiter.limiter.test(item, *identifiers):
        raise AppError(_l("Too many signups from this device. Please wait an hour and try again."),
                       code="too_many_signups", status=429)


def _count_signup() -> None:
    from lp_saas.extensions import limiter

    item, identifiers = _signup_throttle()
    limiter.limiter.hit(item, *identifiers)


# --- input checks shared by the signup page and the API ---------------------------------------

def email_problem(value) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return str(_l("Enter the contact's e-mail address."))
    if len(value) > 254:
        return str(_l("An e-mail address has at most 254 characters."))
    try:
        validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        return str(_l("This is not a valid e-mail address, such as name@school.edu.tw."))
    return None


def normalise_email(value: str) -> str:
    return validate_email(value.strip(), check_deliverability=False).normalized


def text_problem(value, *, max_length: int, empty_message) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return str(empty_message)
    if len(value.strip()) > max_length:
        return str(_l("Use at most %(max)s characters.", max=max_length))
    if UNSAFE_TEXT_RE.search(value):
        return str(_l("Text may not contain angle brackets or control characters."))
    return None


def _live_signup_clause(now):
    """Signups that hold their subdomain now: verified, or unverified and still verifiable."""
    return sa.or_(Signup.status == "verified",
                  sa.and_(Signup.status == "unverified", Signup.created_at > now - timedelta(hours=VERIFY_HOURS)))


def slug_status(slug) -> dict:
    """``{"slug", "valid", "available", "code", "reason"}`` for a wanted subdomain (reason translated).

    ``code``: ``ok``, ``invalid``, ``reserved``, ``taken`` (a school has it) or ``requested`` (an open
    signup holds it).
    """
    slug_text = slug.strip().lower() if isinstance(slug, str) else slug
    problem = tenants.slug_problem(slug_text)
    result = {"slug": slug_text if isinstance(slug_text, str) else None, "valid": problem is None,
              "available": False, "code": "ok", "reason": None}
    if problem:
        result.update(code="reserved" if slug_text in tenants.RESERVED_SLUGS else "invalid", reason=problem)
        return result
    if tenants.find_by_slug(slug_text) is not None:
        result.update(code="taken", reason=str(_l("This subdomain is already taken by another school.")))
        return result
    held = db.session.scalar(sa.select(Signup.id).where(Signup.slug == slug_text, _live_signup_clause(utcnow())))
    if held is not None:
        result.update(code="requested", reason=str(_l("Another school's signup has requested this subdomain.")))
        return result
    result.update(available=True, reason=str(_l("This subdomain is available.")))
    return result


def validate_signup(data: dict) -> tuple[dict, dict]:
    """(clean values, field → message). Nothing is stored."""
    errors: dict[str, str] = {}
    clean: dict = {}
    school = tenants.validate_new_school(slug="placeholder", name=data.get("school_name"),
                                         school_code=data.get("school_code"),
                                         school_type=data.get("school_type") or "general")
    if "name" in school:
        errors["school_name"] = school["name"]
    elif UNSAFE_TEXT_RE.search(data["school_name"]):
        errors["school_name"] = str(_l("Text may not contain angle brackets or control characters."))
    else:
        clean["school_name"] = data["school_name"].strip()
    if "school_code" in school:
        errors["school_code"] = school["school_code"]
    elif db.session.scalar(sa.select(Tenant.id).where(Tenant.school_code == data["school_code"],
                                                      Tenant.status.in_(("active", "suspended", "provisioning")))
                           .limit(1)) is not None:
        # one subscription per school: a second signup for the same school is a mistake or a stranger
        errors["school_code"] = str(_l("A school with this MOE school code already uses the platform. If that is "
                                       "your school, ask its administrator or the platform's operators."))
    else:
        clean["school_code"] = data["school_code"]
    if "school_type" in school:
        errors["school_type"] = school["school_type"]
    else:
        clean["school_type"] = data.get("school_type") or "general"
    status = slug_status(data.get("slug"))
    if not status["available"]:
        errors["slug"] = status["reason"]
    else:
        clean["slug"] = status["slug"]
    problem = text_problem(data.get("contact_name"), max_length=60,
                           empty_message=_l("Enter the contact person's name."))
    if problem:
        errors["contact_name"] = problem
    else:
        clean["contact_name"] = data["contact_name"].strip()
    problem = email_problem(data.get("contact_email"))
    if problem:
        errors["contact_email"] = problem
    else:
        clean["contact_email"] = normalise_email(data["contact_email"])
    if get_plan(data.get("plan")) is None:
        errors["plan"] = str(_l("Unknown plan; choose one of: %(choices)s.", choices=", ".join(PLANS)))
    else:
        clean["plan"] = data["plan"]
    return clean, errors


# --- signup → verify → approve ------------------------------------------------------------------

def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=salt)


def _origin() -> str | None:
    """``http://localhost:5000`` of the apex request (its Host passed TRUSTED_HOSTS)."""
    if not has_request_context():
        return None
    # behind a TLS-terminating proxy the request looks like http; LP_SECURE_COOKIES says it is not
    scheme = "https" if current_app.config.get("SESSION_COOKIE_SECURE") else request.scheme
    return f"{scheme}://{request.host}"


def _apex_url(origin: str | None) -> str:
    if origin:
        return origin
    scheme = "https" if current_app.config.get("SESSION_COOKIE_SECURE") else "http"
    return f"{scheme}://{current_app.config['LP_BASE_DOMAIN']}"


def school_url(slug: str, origin: str | None) -> str:
    """The school's site: the apex origin with the school's subdomain in front of its host."""
    scheme, host = _apex_url(origin).split("://", 1)
    return f"{scheme}://{slug}.{host}"


def create_signup(data: dict, *, locale: str | None = None) -> Signup:
    """Store a school's signup request and queue its verification mail. Raises ValidationFailed with
    a message per field (taken or reserved subdomain, bad school code or e-mail, unknown plan …);
    then nothing is stored; AppError 429 ``too_many_signups`` when this client stored too many lately.
    Stale unverified signups for the same subdomain are expired first."""
    check_signup_throttle()
    clean, errors = validate_signup(data)
    if errors:
        raise ValidationFailed(errors)
    now = utcnow()
    db.session.execute(sa.update(Signup).where(
        Signup.slug == clean["slug"], Signup.status == "unverified",
        Signup.created_at <= now - timedelta(hours=VERIFY_HOURS)).values(status="expired"),
        execution_options={"synchronize_session": False})
    signup = Signup(**clean, status="unverified", locale=locale, created_at=now, origin=_origin())
    try:
        with db.session.begin_nested():
            db.session.add(signup)
            db.session.flush()
    except sa.exc.IntegrityError:  # another signup took the subdomain a moment ago
        raise ValidationFailed({"slug": str(_l("Another school's signup has requested this subdomain."))}) from None
    record_event(f"signup:{signup.contact_email}", "signup.created", target_type="signup", target_id=signup.id,
                 details={"slug": signup.slug, "plan": signup.plan})
    _queue_verification(signup)
    db.session.flush()
    _count_signup()
    return signup


def verification_token(signup: Signup) -> str:
    return _serializer("lp-signup-verify").dumps(str(signup.id))


def _verification_link(signup: Signup) -> str:
    return f"{_apex_url(signup.origin)}/signup/verify/{verification_token(signup)}"


def _queue_verification(signup: Signup) -> PlatformMail:
    with force_locale(signup.locale or "zh_Hant_TW"):
        subject = _("Confirm the signup of %(school)s", school=signup.school_name)
        body = _(
            "Hello %(name)s,\n\n"
            "%(school)s asked to join the Learning Portfolio Platform at the subdomain %(slug)s.\n"
            "Please confirm your e-mail address by opening this link within %(hours)s hours:\n\n"
            "%(link)s\n\n"
            "After that, the platform's operators review the signup; you will receive the first school "
            "administrator account by e-mail once it is approved.\n"
            "If you did not ask for this, ignore this message.",
            name=signup.contact_name, school=signup.school_name, slug=signup.slug, hours=VERIFY_HOURS,
            link=_verification_link(signup))
    return mail.queue_mail(kind="signup_verify", to=signup.contact_email, subject=subject, body=body,
                           signup_id=signup.id)


def verify_signup(token) -> Signup:
    """Mark the signup of a verification link as verified. Idempotent for a verified signup.

    Raises AppError ``link_invalid`` (404) or ``link_expired`` (410).
    """
    try:
        signup_id = _serializer("lp-signup-verify").loads(token, max_age=VERIFY_HOURS * 3600)
    except SignatureExpired:
        raise AppError(_l("This verification link has expired. Please sign up again."),
                       code="link_expired", status=410) from None
    except BadSignature:
        raise AppError(_l("This verification link is not valid."), code="link_invalid", status=404) from None
    signup = db.session.get(Signup, uuid.UUID(signup_id))
    if signup is None or signup.status in ("rejected", "expired"):
        raise AppError(_l("This verification link is not valid."), code="link_invalid", status=404)
    if signup.status == "unverified":
        signup.status = "verified"
        signup.verified_at = utcnow()
        record_event(f"signup:{signup.contact_email}", "signup.verified", target_type="signup", target_id=signup.id)
        db.session.flush()
    return signup


def open_signups() -> list[Signup]:
    """Signups waiting for the contact or an operator, oldest first."""
    return list(db.session.scalars(sa.select(Signup).where(Signup.status.in_(OPEN_SIGNUP_STATUSES))
                                   .order_by(Signup.created_at)))


def find_open_signup(slug: str) -> Signup | None:
    return db.session.scalar(sa.select(Signup).where(Signup.slug == slug, Signup.status.in_(OPEN_SIGNUP_STATUSES))
                             .order_by(Signup.created_at.desc()).limit(1))


def approve_signup(signup: Signup, actor, *, dispatch: bool = True):
    """Approve a verified signup: the school (tenant) is created and its ``activate_school`` job
    submitted, which provisions it (the ``provision_tenant`` work), creates the first school
    administrator and mails the contact a set-password link. Returns (tenant, job).

    ``dispatch=False`` only records the job (the CLI runs it itself and waits). Raises Conflict when
    the signup is not verified (``signup_unverified``), already decided, or its subdomain was taken.
    """
    if signup.status == "unverified":
        raise Conflict(_l("The contact has not confirmed the e-mail address yet: a signup can be approved "
                          "only after that."), code="signup_unverified")
    if signup.status != "verified":
        raise Conflict(_l("This signup was already decided (%(status)s).", status=signup.status),
                       code="signup_decided")
    if tenants.find_by_slug(signup.slug) is not None:
        raise Conflict(_l("The subdomain %(slug)s has been taken by another school meanwhile.", slug=signup.slug),
                       code="slug_taken")
    plan = get_plan(signup.plan) or PLANS["standard"]
    tenant, _created = tenants.create_tenant(slug=signup.slug, name=signup.school_name,
                                             school_code=signup.school_code, template=signup.template or "moe",
                                             school_type=signup.school_type, status="provisioning")
    db.session.add(Subscription(tenant_id=tenant.id, plan=plan.key, max_students=plan.max_students,
                                max_storage_bytes=plan.max_storage_bytes, signup_id=signup.id))
    signup.status = "approved"
    signup.decided_at = utcnow()
    signup.decided_by = actor_label(actor)
    signup.tenant_id = tenant.id
    record_event(actor, "signup.approved", target_type="signup", target_id=signup.id, details={"slug": signup.slug})
    _school_audit(tenant, actor, "tenant.approved", plan=plan.key)
    with as_school(tenant):
        job = submit(tenant.id, "activate_school", {"signup_id": str(signup.id)}, dispatch=dispatch)
    db.session.flush()
    return tenant, job


def resume_activation(tenant: Tenant, *, dispatch: bool = True):
    """Submit the ``activate_school`` job again for an approved school whose setting-up did not finish
    (a failed provisioning). Returns the job, or None when the school came from no signup."""
    signup = db.session.scalar(sa.select(Signup).where(Signup.tenant_id == tenant.id, Signup.status == "approved"))
    if signup is None:
        return None
    if tenant.status == "pending":
        tenant.status = "provisioning"
    with as_school(tenant):
        job = submit(tenant.id, "activate_school", {"signup_id": str(signup.id)}, dispatch=dispatch)
    db.session.flush()
    return job


def reject_signup(signup: Signup, actor, reason: str = "") -> Signup:
    """Refuse an open signup (its subdomain is free again) and tell the contact."""
    if signup.status not in OPEN_SIGNUP_STATUSES:
        raise Conflict(_l("This signup was already decided (%(status)s).", status=signup.status),
                       code="signup_decided")
    reason = (reason or "").strip()[:500]
    signup.status = "rejected"
    signup.decided_at = utcnow()
    signup.decided_by = actor_label(actor)
    signup.reject_reason = reason or None
    record_event(actor, "signup.rejected", target_type="signup", target_id=signup.id, details={"slug": signup.slug})
    if signup.verified_at is not None:  # never mail an address nobody confirmed
        with force_locale(signup.locale or "zh_Hant_TW"):
            mail.queue_mail(kind="signup_rejected", to=signup.contact_email, signup_id=signup.id,
                            subject=_("The signup of %(school)s was not approved", school=signup.school_name),
                            body=_("Hello %(name)s,\n\nThe platform's operators did not approve the signup of "
                                   "%(school)s.\n%(reason)s", name=signup.contact_name, school=signup.school_name,
                                   reason=reason))
    db.session.flush()
    return signup


def welcome_token(tenant_id, user) -> str:
    """A set-password link's token: bound to the school, the account and its current password, so it
    works once (setting the password changes the hash it was made from)."""
    return _serializer("lp-school-welcome").dumps({"t": str(tenant_id), "u": str(user.id),
                                                   "h": _password_fingerprint(user)})


def _password_fingerprint(user) -> str:
    return hashlib.sha256((user.password_hash or "unset").encode()).hexdigest()[:16]


def read_welcome_token(token, tenant_id):
    """The school account a set-password link is for; None if the link is invalid, used or expired."""
    from lp_saas.accounts.models import User

    try:
        data = _serializer("lp-school-welcome").loads(token, max_age=WELCOME_DAYS * 86400)
        user_id = uuid.UUID(data["u"])
        if uuid.UUID(data["t"]) != tenant_id:
            return None
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    user = db.session.get(User, (tenant_id, user_id))
    if user is None or not user.can_sign_in() or data.get("h") != _password_fingerprint(user):
        return None
    return user


def queue_welcome(signup: Signup, tenant: Tenant, user) -> PlatformMail:
    link = f"{school_url(tenant.slug, signup.origin)}/welcome/{welcome_token(tenant.id, user)}"
    with force_locale(signup.locale or "zh_Hant_TW"):
        subject = _("%(school)s is ready on the Learning Portfolio Platform", school=tenant.name)
        body = _(
            "Hello %(name)s,\n\n"
            "The signup of %(school)s was approved and its site is ready:\n%(site)s\n\n"
            "Your school administrator account's username is: %(username)s\n"
            "Choose its password with this link (it works once, within %(days)s days):\n\n%(link)s\n\n"
            "Then sign in on the school's site to add your colleagues and students.",
            name=signup.contact_name, school=tenant.name, site=school_url(tenant.slug, signup.origin),
            username=user.username, days=WELCOME_DAYS, link=link)
    return mail.queue_mail(kind="school_welcome", to=signup.contact_email, subject=subject, body=body,
                           signup_id=signup.id)


@job_kind("activate_school", timeout=300)
def activate_school_job(job, progress):
    """Provision an approved signup's school, create its first administrator, mail the contact.

    Idempotent: provisioning reuses the ``provision_tenant`` work (each step skips what exists), the
    administrator is created once, and the welcome mail is queued once (in this job's transaction,
    so a failed attempt leaves none behind).
    """
    from lp_saas.accounts import services as accounts
    from lp_saas.tenants.context import current_tenant

    tenant = current_tenant()
    done = tenants.provision_job(job, progress)
    signup = db.session.get(Signup, uuid.UUID(job.args["signup_id"]))
    user = accounts.find_user(tenant.id, FIRST_ADMIN_USERNAME)
    if user is None:
        user = accounts.create_user(tenant, "system:signup", username=FIRST_ADMIN_USERNAME,
                                    display_name=signup.contact_name, roles=["school_admin"],
                                    email=signup.contact_email, password=None)
        done["admin_created"] = True
    signup.admin_username = user.username
    welcomed = db.session.scalar(sa.select(PlatformMail.id).where(PlatformMail.signup_id == signup.id,
                                                                  PlatformMail.kind == "school_welcome").limit(1))
    if welcomed is None and user.password_hash is None:
        queue_welcome(signup, tenant, user)
        done["welcome_mail"] = True
    progress(95)
    db.session.flush()
    return done


def resend_welcome(signup: Signup, actor) -> PlatformMail:
    """A new set-password link for an approved school whose administrator has not set a password yet."""
    from lp_saas.accounts import services as accounts

    tenant = db.session.get(Tenant, signup.tenant_id) if signup.tenant_id else None
    if signup.status != "approved" or tenant is None or tenant.status != "active":
        raise Conflict(_l("This school is not active yet."), code="not_active")
    with as_school(tenant):
        user = accounts.find_user(tenant.id, signup.admin_username or FIRST_ADMIN_USERNAME)
        if user is None or user.password_hash is not None:
            raise Conflict(_l("The school's administrator has already chosen a password."), code="welcome_used")
        sent = queue_welcome(signup, tenant, user)
    record_event(actor, "signup.welcome_resent", target_type="signup", target_id=signup.id)
    return sent


def run_job_now(tenant: Tenant, job_id) -> dict:
    """Run a recorded job of ``tenant`` in this process and wait (the CLI's way; commits first)."""
    from lp_saas.jobs.models import Job
    from lp_saas.jobs.runner import run_in_process

    db.session.commit()
    status = run_in_process(tenant.id, job_id)
    db.session.expire_all()
    with as_school(tenant):
        job = db.session.get(Job, (tenant.id, job_id))
        return {"status": status, "result": job.result, "error": job.error}


# --- suspension, plans and quotas ---------------------------------------------------------------

def suspend_tenant(tenant: Tenant, actor, reason: str = "") -> bool:
    """Suspend an active school: its subdomain shows the suspension notice; no data is touched.
    Returns False when it was suspended already. Raises Conflict for a school that is not active."""
    if tenant.status == "suspended":
        return False
    if tenant.status != "active":
        raise Conflict(_l("Only an active school can be suspended."), code="not_active")
    tenant.status = "suspended"
    tenant.suspended_reason = (reason or "").strip()[:500] or None
    record_event(actor, "tenant.suspended", target_type="tenant", target_id=tenant.id, details={"slug": tenant.slug})
    _school_audit(tenant, actor, "tenant.suspended", reason=tenant.suspended_reason)
    return True


def resume_tenant(tenant: Tenant, actor) -> bool:
    """Resume a suspended school. Returns False when it was active already."""
    if tenant.status == "active":
        return False
    if tenant.status != "suspended":
        raise Conflict(_l("Only a suspended school can be resumed."), code="not_suspended")
    tenant.status = "active"
    tenant.suspended_reason = None
    record_event(actor, "tenant.resumed", target_type="tenant", target_id=tenant.id, details={"slug": tenant.slug})
    _school_audit(tenant, actor, "tenant.resumed")
    return True


def set_plan(tenant: Tenant, plan_key, actor) -> Subscription:
    """Put a school on a plan (its quotas copied from the catalogue). Raises ValidationFailed."""
    plan = get_plan(plan_key)
    if plan is None:
        raise ValidationFailed({"plan": str(_l("Unknown plan; choose one of: %(choices)s.",
                                               choices=", ".join(PLANS)))})
    subscription = db.session.get(Subscription, tenant.id)
    if subscription is None:
        subscription = Subscription(tenant_id=tenant.id, plan=plan.key, max_students=0, max_storage_bytes=0)
        db.session.add(subscription)
    subscription.plan = plan.key
    subscription.max_students = plan.max_students
    subscription.max_storage_bytes = plan.max_storage_bytes
    record_event(actor, "tenant.plan", target_type="tenant", target_id=tenant.id, details={"plan": plan.key})
    _school_audit(tenant, actor, "tenant.plan", plan=plan.key)
    db.session.flush()
    return subscription


def student_count(tenant: Tenant) -> int:
    """Active accounts holding the school's ``student`` role (one query)."""
    from lp_saas.accounts.models import User
    from lp_saas.roles.models import Role, UserRole

    with as_school(tenant):
        return db.session.scalar(
            sa.select(sa.func.count(sa.distinct(UserRole.user_id)))
            .join(Role, sa.and_(Role.tenant_id == UserRole.tenant_id, Role.id == UserRole.role_id))
            .join(User, sa.and_(User.tenant_id == UserRole.tenant_id, User.id == UserRole.user_id))
            .where(UserRole.tenant_id == tenant.id, Role.key == "student", User.status == "active")) or 0


def storage_used(tenant: Tenant) -> int:
    """Bytes the school's files take (one aggregate query): portfolio files that are stored or on their
    way (declared size until verified; rejected ones excluded) and governance minutes."""
    from lp_saas.governance.models import Meeting
    from lp_saas.portfolio.models import StoredFile

    files = (sa.select(sa.func.coalesce(sa.func.sum(sa.func.coalesce(StoredFile.size, StoredFile.declared_size)), 0))
             .where(StoredFile.tenant_id == tenant.id, StoredFile.status != "rejected").scalar_subquery())
    minutes = (sa.select(sa.func.coalesce(sa.func.sum(Meeting.minutes_size), 0))
               .where(Meeting.tenant_id == tenant.id).scalar_subquery())
    with as_school(tenant):
        return int(db.session.scalar(sa.select(files + minutes)) or 0)


def check_student_quota(tenant: Tenant, adding: int = 1) -> None:
    """Raise QuotaExceeded (409 ``student_quota_exceeded``) if ``adding`` more student accounts would
    exceed the school's plan. Call before creating a student account (or giving the student role).
    A school without a subscription (made by ``tenants create``) has no quota."""
    subscription = db.session.get(Subscription, tenant.id)
    if subscription is None:
        return
    count = student_count(tenant)
    if count + adding > subscription.max_students:
        raise QuotaExceeded(
            _l("The school's plan allows %(max)s student accounts and %(count)s are in use: no more can be "
               "added. Ask the platform's operators for a larger plan.", max=subscription.max_students, count=count),
            code="student_quota_exceeded", details={"quota": "students"})


def check_storage_quota(tenant: Tenant, extra_bytes: int) -> None:
    """Raise QuotaExceeded (409 ``storage_quota_exceeded``) if storing ``extra_bytes`` more would exceed
    the school's plan. Call before handing out an upload (or storing a file)."""
    subscription = db.session.get(Subscription, tenant.id)
    if subscription is None:
        return
    used = storage_used(tenant)
    if used + max(0, int(extra_bytes or 0)) > subscription.max_storage_bytes:
        raise QuotaExceeded(
            _l("The school's storage is full: %(used)s of %(max)s is in use. Ask the platform's operators for a "
               "larger plan.", used=format_bytes(used), max=format_bytes(subscription.max_storage_bytes)),
            code="storage_quota_exceeded", details={"quota": "storage"})


# --- regional offices ------------------------------------------------------------------------------

def normalise_office_code(code) -> str | None:
    return code.strip().upper() if isinstance(code, str) else None


def find_office(code) -> Office | None:
    code = normalise_office_code(code)
    if not code:
        return None
    return db.session.scalar(sa.select(Office).where(Office.code == code))


def office_schools(office: Office) -> list[Tenant]:
    return list(db.session.scalars(
        sa.select(Tenant).join(OfficeSchool, OfficeSchool.tenant_id == Tenant.id)
        .where(OfficeSchool.office_id == office.id).order_by(Tenant.school_code, Tenant.name)))


def _schools_by_slug(slugs) -> tuple[list[Tenant], list[str]]:
    wanted = list(dict.fromkeys(s.strip().lower() for s in slugs if isinstance(s, str) and s.strip()))
    found = {t.slug: t for t in db.session.scalars(sa.select(Tenant).where(Tenant.slug.in_(wanted or [""])))}
    return [found[s] for s in wanted if s in found], [s for s in wanted if s not in found]


def save_office(actor, *, code, name, slugs=(), replace_schools: bool = False) -> tuple[Office, list[str]]:
    """Create the office ``code`` or update it: name, and its schools (added to, or replaced with
    ``replace_schools``). Returns (office, what changed). Idempotent: the same call twice changes
    nothing the second time. Raises ValidationFailed (bad code or name, unknown schools)."""
    errors = {}
    normal = normalise_office_code(code)
    if not normal or not OFFICE_CODE_RE.match(normal):
        errors["code"] = str(_l("An office code has 2 to 20 letters, digits or hyphens, such as TPE-EDU."))
    problem = text_problem(name, max_length=120, empty_message=_l("Enter the office's name."))
    if problem:
        errors["name"] = problem
    schools, missing = _schools_by_slug(slugs)
    if missing:
        errors["schools"] = str(_l("No such school: %(slugs)s.", slugs=", ".join(missing)))
    if errors:
        raise ValidationFailed(errors)
    changes = []
    office = find_office(normal)
    if office is None:
        office = Office(code=normal, name=name.strip())
        db.session.add(office)
        db.session.flush()
        changes.append("created")
    elif office.name != name.strip():
        office.name = name.strip()
        changes.append("renamed")
    held = set(db.session.scalars(sa.select(OfficeSchool.tenant_id).where(OfficeSchool.office_id == office.id)))
    for tenant in schools:
        if tenant.id not in held:
            db.session.add(OfficeSchool(office_id=office.id, tenant_id=tenant.id))
            changes.append(f"+{tenant.slug}")
    if replace_schools:
        keep = {t.id for t in schools}
        for tenant_id in held - keep:
            db.session.delete(db.session.get(OfficeSchool, (office.id, tenant_id)))
            changes.append(f"-{tenant_id}")
    if changes:
        record_event(actor, "office.saved", target_type="office", target_id=office.id,
                     details={"code": office.code, "changes": changes[:50]})
    db.session.flush()
    return office, changes


def offices() -> list[Office]:
    return list(db.session.scalars(sa.select(Office).order_by(Office.code)))


# --- platform users -----------------------------------------------------------------------------------

def create_platform_user(actor, *, username, password, kind, office_code=None, display_name=None,
                         email=None, must_change_password: bool = False) -> PlatformUser:
    """An operator or an officer of one office. Raises ValidationFailed (bad or taken username, bad
    password, unknown kind or office, an officer without an office or an operator with one)."""
    from lp_saas.platform.auth import find_user, hash_password, password_problem, username_problem

    errors = {}
    problem = username_problem(username)
    if problem:
        errors["username"] = problem
    elif find_user(username) is not None:
        errors["username"] = str(_l("This username is already taken on the platform."))
    problem = password_problem(password, username if isinstance(username, str) else None)
    if problem:
        errors["password"] = problem
    office = None
    if kind == "office_officer":
        office = find_office(office_code)
        if office is None:
            errors["office"] = str(_l("No such office: %(code)s.", code=office_code or "—"))
    elif kind == "operator":
        if office_code:
            errors["office"] = str(_l("An operator belongs to no office."))
    else:
        errors["role"] = str(_l("A platform account's role is operator or office_officer."))
    display_name = (display_name or (username if isinstance(username, str) else "") or "").strip()
    problem = text_problem(display_name, max_length=100, empty_message=_l("Enter a display name."))
    if problem and "username" not in errors:
        errors["display_name"] = problem
    if email:
        problem = email_problem(email)
        if problem:
            errors["email"] = problem
    if errors:
        raise ValidationFailed(errors)
    user = PlatformUser(username=username.strip(), display_name=display_name, kind=kind,
                        office_id=office.id if office else None, email=email or None,
                        password_hash=hash_password(password), must_change_password=must_change_password)
    db.session.add(user)
    db.session.flush()
    record_event(actor, "platform_user.created", target_type="platform_user", target_id=user.id,
                 details={"kind": kind, "office": office.code if office else None})
    return user


def platform_users() -> list[PlatformUser]:
    return list(db.session.scalars(sa.select(PlatformUser).order_by(PlatformUser.kind, PlatformUser.username)))


def school_type_label(key: str) -> str:
    return str(SCHOOL_TYPE_LABELS.get(key, key))

