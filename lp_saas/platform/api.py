"""The platform's API routes, on the apex host only (a school's host answers 404).

They attach to the one ``/api/v1`` blueprint (so they are in the OpenAPI document); their endpoints
are listed in :data:`APEX_ENDPOINTS`, which ``lp_saas.api.APEX_ENDPOINTS`` must include so that the
blueprint lets them through on the apex.

Platform users authenticate with their own bearer tokens, issued here by
``POST /api/v1/platform/token``; the schools' ``/api/v1/auth/token`` stays a school's. A school's
token means nothing here, and a platform token nothing at a school.
"""
from __future__ import annotations

from functools import wraps

from flask import abort, g, request
from flask_babel import get_locale
from marshmallow import fields, validate

from lp_saas.api import bp
from lp_saas.api.common import InputSchema, parse_json
from lp_saas.database import db
from lp_saas.extensions import limiter
from lp_saas.platform import auth, oversight
from lp_saas.platform import services as platform
from lp_saas.platform.models import Office

#: the endpoints below; add them to ``lp_saas.api.APEX_ENDPOINTS``
APEX_ENDPOINTS = frozenset({
    "api.create_signup", "api.check_slug", "api.issue_platform_token", "api.revoke_platform_token",
    "api.platform_me", "api.office_schools",
})

_TEXT = validate.Length(max=300)


def apex_only(view):
    """404 on a school's host; on the apex, load the platform user of the bearer token (if any)."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        if not g.get("is_apex"):
            abort(404)
        auth.load_api_user()
        return view(*args, **kwargs)

    return wrapped


def platform_token_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if auth.current_platform_user() is None:
            abort(401)
        return view(*args, **kwargs)

    wrapped.login_required = True
    return wrapped


class SignupRequest(InputSchema):
    school_name = fields.String(validate=_TEXT, allow_none=True)
    school_code = fields.String(validate=_TEXT, allow_none=True)
    school_type = fields.String(validate=_TEXT, allow_none=True)
    slug = fields.String(validate=_TEXT, allow_none=True)
    contact_name = fields.String(validate=_TEXT, allow_none=True)
    contact_email = fields.String(validate=_TEXT, allow_none=True)
    plan = fields.String(validate=_TEXT, allow_none=True)


class PlatformTokenRequest(InputSchema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=128))


def _client_limit():
    from flask import current_app

    return current_app.config["LP_CLIENT_LOGIN_LIMIT"]


@bp.route("/signups", methods=["POST"])
@apex_only
def create_signup():
    """Sign a school up (on the platform's apex host).
    ---
    post:
      summary: Ask for a school's site; the contact confirms by e-mail, then an operator approves it
      tags: [platform]
      security: []
      requestBody:
        required: true
        content:
          application/json:
            schema: SignupRequest
      responses:
        202: {description: "{id, status}: stored as unverified; a verification mail is on its way"}
        422: {description: "a field is wrong (taken or reserved subdomain, bad school code or e-mail, unknown plan); nothing stored"}
        429: {description: "too many signups from this client (LP_SIGNUP_LIMIT, default 20 per hour)"}
    """
    data = parse_json(SignupRequest())
    signup = platform.create_signup(data, locale=str(get_locale()))
    db.session.commit()
    return {"id": str(signup.id), "status": signup.status}, 202


@bp.route("/signups/check-slug")
@apex_only
def check_slug():
    """Whether a subdomain can be requested.
    ---
    get:
      summary: Check a wanted subdomain as it is typed (valid, available, and why not)
      tags: [platform]
      security: []
      parameters:
        - {name: slug, in: query, required: true, schema: {type: string}}
      responses:
        200: {description: "{slug, valid, available, code (ok|invalid|reserved|taken|requested), reason}"}
    """
    return platform.slug_status((request.args.get("slug") or "")[:64])


@bp.route("/platform/token", methods=["POST"])
@limiter.limit(_client_limit, deduct_when=lambda r: r.status_code in (400, 401, 403, 422, 423))
@apex_only
def issue_platform_token():
    """Issue a platform user's API token (operators, regional-office officers).
    ---
    post:
      summary: Exchange a platform user's username and password for a bearer token (valid on the apex only)
      tags: [platform]
      security: []
      requestBody:
        required: true
        content:
          application/json:
            schema: PlatformTokenRequest
      responses:
        201: {description: "{token, expires_at}"}
        401: {description: wrong credentials}
        423: {description: account locked after repeated failures}
    """
    data = parse_json(PlatformTokenRequest())
    try:
        user = auth.authenticate(data["username"], data["password"])
    except auth.LoginRefused:
        db.session.commit()  # keep the failure count and the lock
        raise
    token, row = auth.start_session(user, "api")
    db.session.commit()
    return {"token": token, "expires_at": row.expires_at.isoformat()}, 201


@bp.route("/platform/token", methods=["DELETE"])
@apex_only
@platform_token_required
def revoke_platform_token():
    """Revoke the platform token of this request.
    ---
    delete:
      summary: Revoke the platform bearer token used for this request
      tags: [platform]
      responses:
        204: {description: revoked}
    """
    auth.end_session(g.platform_session, "logout")
    db.session.commit()
    return "", 204


@bp.route("/platform/me")
@apex_only
@platform_token_required
def platform_me():
    """The platform user.
    ---
    get:
      summary: The caller's platform account (operator or officer, and the office)
      tags: [platform]
      responses:
        200: {description: "{username, display_name, role, office}"}
    """
    user = auth.current_platform_user()
    office = db.session.get(Office, user.office_id) if user.office_id else None
    return {"username": user.username, "display_name": user.display_name, "role": user.kind,
            "office": office.code if office else None}


@bp.route("/offices/<code>/schools")
@apex_only
@platform_token_required
def office_schools(code):
    """Progress and compliance of an office's schools.
    ---
    get:
      summary: One object per school the office oversees, with progress and compliance figures (no personal data)
      description: >-
        For an officer of that office (or an operator). Progress: students, upload, certification and
        selection rates, late certifications; compliance: the rule set in force with its adoption
        date and meeting, working-group meetings this semester, trainings this year per audience.
        Another office's code is a 404.
      tags: [platform]
      responses:
        200: {description: "[{school, slug, school_code, status, academic_year, semester, progress, compliance}]"}
        404: {description: no such office for this caller}
    """
    user = auth.current_platform_user()
    office = platform.find_office(code)
    if office is None or (not user.is_operator and user.office_id != office.id):
        abort(404)
    return oversight.office_figures(office)
