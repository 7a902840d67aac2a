"""Sign-in, sign-out, password change, and the school admin's account pages."""
from __future__ import annotations

from datetime import datetime, time

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_user, logout_user

from lp_saas.accounts import services
from lp_saas.accounts.auth import WebUser, current_actor, current_auth_session
from lp_saas.accounts.forms import (ConfirmForm, ExpiryForm, LoginForm, PasswordChangeForm,
                                    PasswordResetForm, UserCreateForm)
from lp_saas.accounts.models import User
from lp_saas.database import db
from lp_saas.errors import ValidationFailed
from lp_saas.extensions import limiter
from lp_saas.i18n import TAIPEI
from lp_saas.roles.models import Role, UserRole
from lp_saas.roles.permissions import login_required, permission_required
from lp_saas.roles.services import roles_of_school
from lp_saas.tenants.context import current_tenant
from lp_saas.tenants.resolver import get_scoped_or_404, require_school, scoped_select

bp = Blueprint("accounts", __name__)
bp.before_request(require_school)


def _failed_login(response) -> bool:
    return response.status_code in (400, 401, 403, 423)


def _client_limit():
    from flask import current_app

    return current_app.config["LP_CLIENT_LOGIN_LIMIT"]


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("school.dashboard")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_client_limit, methods=["POST"], deduct_when=_failed_login)
def login():
    form = LoginForm()
    tenant = current_tenant()
    if current_actor() is not None and request.method == "GET":
        return redirect(url_for("school.dashboard"))
    error = None
    status = 200
    if form.validate_on_submit():
        try:
            user = services.authenticate(tenant, form.username.data, form.password.data)
        except services.LoginRefused as refused:
            db.session.commit()  # keep the failure count and lock
            error, status = str(refused.message), refused.status
        else:
            token, row = services.start_session(user, "web")
            db.session.commit()
            login_user(WebUser(user, row, token))
            if user.must_change_password:
                flash(_("Please choose a new password before you go on."), "warning")
                return redirect(url_for("accounts.password"))
            return redirect(_safe_next(request.args.get("next")))
    elif request.method == "POST":
        error, status = _("Enter your username and password."), 400
    return render_template("accounts/login.html", form=form, error=error), status


@bp.route("/logout", methods=["POST"])
def logout():
    row = current_auth_session()
    if row is not None:
        services.end_session(row, "logout")
        db.session.commit()
    logout_user()
    flash(_("You have signed out."), "info")
    return redirect(url_for("school.home"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password():
    form = PasswordChangeForm()
    errors = {}
    status = 200
    if form.validate_on_submit():
        try:
            services.change_password(current_actor(), form.current_password.data, form.new_password.data,
                                     current_session=current_auth_session())
        except ValidationFailed as failed:
            db.session.rollback()
            errors, status = failed.details, 422
        else:
            db.session.commit()
            flash(_("Your password was changed. Other devices have been signed out."), "success")
            return redirect(url_for("school.dashboard"))
    elif request.method == "POST":
        status = 400
    return render_template("accounts/password.html", form=form, errors=errors), status


# --- the school admin's account pages -------------------------------------------------------

@bp.route("/admin/users")
@permission_required("users.manage")
def users():
    tenant = current_tenant()
    q = (request.args.get("q") or "").strip()[:64]
    query = scoped_select(User).order_by(User.username).limit(200)
    if q:
        query = query.where(sa.or_(User.username.contains(q, autoescape=True),
                                   User.display_name.contains(q, autoescape=True)))
    people = list(db.session.scalars(query))
    roles_by_user: dict = {}
    rows = db.session.execute(
        sa.select(UserRole.user_id, Role.name_zh, Role.name_en)
        .join(Role, sa.and_(Role.tenant_id == UserRole.tenant_id, Role.id == UserRole.role_id))
        .where(UserRole.tenant_id == tenant.id, UserRole.user_id.in_([p.id for p in people] or [None])))
    for user_id, zh, en in rows:
        roles_by_user.setdefault(user_id, []).append((zh, en))
    return render_template("accounts/users.html", people=people, roles_by_user=roles_by_user, q=q)


@bp.route("/admin/users/new", methods=["GET", "POST"])
@permission_required("users.manage")
def user_new():
    tenant = current_tenant()
    form = UserCreateForm()
    form.roles.choices = [(r.key, f"{r.name_zh} {r.name_en}") for r in roles_of_school(tenant.id)]
    errors, status = {}, 200
    if form.validate_on_submit():
        try:
            user = services.create_user(tenant, current_actor(), username=form.username.data,
                                        display_name=form.display_name.data, password=form.password.data,
                                        roles=form.roles.data, student_no=form.student_no.data or None)
            user.must_change_password = True
        except ValidationFailed as failed:
            db.session.rollback()
            errors, status = failed.details, 422
        else:
            db.session.commit()
            flash(_("Account %(username)s was created.", username=user.username), "success")
            return redirect(url_for("accounts.user_detail", user_id=user.id))
    elif request.method == "POST":
        status = 400
    return render_template("accounts/user_new.html", form=form, errors=errors), status


@bp.route("/admin/users/<user_id>", methods=["GET", "POST"])
@permission_required("users.manage")
def user_detail(user_id):
    user = get_scoped_or_404(User, user_id)
    reset_form = PasswordResetForm(prefix="reset")
    expiry_form = ExpiryForm(prefix="expiry")
    toggle_form = ConfirmForm(prefix="toggle")
    actor = current_actor()
    errors, status = {}, 200
    if request.method == "POST":
        try:
            if reset_form.submit.data and reset_form.validate():
                services.reset_password(actor, user, reset_form.password.data)
                flash(_("The password was reset; the user must choose a new one at next sign-in."), "success")
            elif expiry_form.submit.data and expiry_form.validate():
                day = expiry_form.expires_on.data
                when = datetime.combine(day, time(0, 0), TAIPEI) if day else None
                services.set_expiry(actor, user, when)
                flash(_("The account's expiry was saved."), "success")
            elif toggle_form.submit.data and toggle_form.validate():
                if user.id == actor.id:
                    raise ValidationFailed({"status": _("You cannot disable your own account.")})
                services.set_status(actor, user, "disabled" if user.status == "active" else "active")
                flash(_("The account's status was changed."), "success")
            else:
                status = 400
                errors = {"form": _("The form was not complete or has expired; please try again.")}
        except ValidationFailed as failed:
            db.session.rollback()
            errors, status = failed.details, 422
        else:
            if status == 200:
                db.session.commit()
                return redirect(url_for("accounts.user_detail", user_id=user.id))
    held = [r for r in roles_of_school(user.tenant_id)
            if db.session.get(UserRole, (user.tenant_id, user.id, r.id)) is not None]
    return render_template("accounts/user_detail.html", person=user, roles=held, reset_form=reset_form,
                           expiry_form=expiry_form, toggle_form=toggle_form, errors=errors), status
