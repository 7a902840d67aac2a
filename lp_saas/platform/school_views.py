"""The platform's pages on a school's host: the first administrator's set-password link, and the
school's branding (page and logo). None of them exists on the apex (404 there)."""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from lp_saas.accounts import services as accounts
from lp_saas.accounts.auth import current_actor
from lp_saas.audit import services as audit
from lp_saas.database import db, utcnow
from lp_saas.errors import ValidationFailed
from lp_saas.platform import branding
from lp_saas.platform.forms import BrandingForm, SetPasswordForm
from lp_saas.platform.services import read_welcome_token
from lp_saas.roles.permissions import permission_required
from lp_saas.storage import ObjectMissing, get_storage
from lp_saas.tenants.context import current_tenant
from lp_saas.tenants.resolver import require_school

bp = Blueprint("platform_school", __name__)
bp.before_request(require_school)


@bp.route("/welcome/<token>", methods=["GET", "POST"])
def welcome(token):
    """The first school administrator chooses a password (the link mailed at approval; works once)."""
    tenant = current_tenant()
    user = read_welcome_token(token, tenant.id)
    if user is None:
        return render_template("platform/message.html", title=_("This link no longer works"), tone="error",
                               message=_("The link is not valid, has expired or was already used. If you have "
                                         "not chosen a password yet, ask the platform's operators for a new link.")
                               ), 404
    form = SetPasswordForm()
    errors, status = {}, 200
    if form.validate_on_submit():
        problem = accounts.password_problem(form.new_password.data, user.username)
        if problem:
            errors["new_password"] = problem
        elif form.new_password.data != form.confirm_password.data:
            errors["confirm_password"] = _("The two passwords are not the same.")
        if errors:
            status = 422
        else:
            user.password_hash = accounts.hash_password(form.new_password.data)
            user.password_changed_at = utcnow()
            user.must_change_password = False
            accounts.end_all_sessions(user, "password_set")
            audit.record(tenant.id, user, "user.password_set", target_type="user", target_id=user.id)
            db.session.commit()
            flash(_("Your password is set. Sign in with the username %(username)s.", username=user.username),
                  "success")
            return redirect(url_for("accounts.login"))
    elif request.method == "POST":
        status = 400
    return render_template("platform/welcome.html", form=form, errors=errors, person=user), status


@bp.route("/admin/branding", methods=["GET", "POST"])
@permission_required("branding.edit")
def edit_branding():
    tenant = current_tenant()
    form = BrandingForm()
    if request.method == "GET":
        form.primary_color.data, form.accent_color.data = tenant.primary_color, tenant.accent_color
    errors, status = {}, 200
    if form.validate_on_submit():
        upload = request.files.get(form.logo.name)
        logo = None
        if upload is not None and upload.filename:
            logo = upload.stream.read(branding.LOGO_MAX_BYTES + 1)
        try:
            replaced = branding.save_branding(tenant, current_actor(), primary_color=form.primary_color.data,
                                              accent_color=form.accent_color.data, logo=logo,
                                              remove_logo=bool(form.remove_logo.data))
        except ValidationFailed as failed:
            db.session.rollback()
            errors, status = failed.details, 422
        else:
            db.session.commit()
            if replaced:
                get_storage().delete_object(tenant.bucket, replaced)
            flash(_("The school's branding was saved."), "success")
            return redirect(url_for("platform_school.edit_branding"))
    elif request.method == "POST":
        status = 400
    return render_template("platform/branding.html", form=form, errors=errors), status


@bp.route("/branding/logo")
def logo():
    """The school's logo, streamed from its bucket (small: at most 1 MB), cached briefly."""
    tenant = current_tenant()
    if not tenant.logo_key:
        abort(404)
    try:
        data = get_storage().get_bytes(tenant.bucket, tenant.logo_key)
    except ObjectMissing:
        abort(404)
    response = Response(data, mimetype=branding.logo_content_type(tenant.logo_key))
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.set_etag(tenant.logo_key.rsplit("/", 1)[-1])
    return response.make_conditional(request)
