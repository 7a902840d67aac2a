"""The platform's pages on the apex host: signup, sign-in of platform users, the operator console
and the regional offices' dashboards. None of them exists on a school's host (404 there)."""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from lp_saas.accounts.forms import ConfirmForm, LoginForm, PasswordChangeForm
from lp_saas.database import db
from lp_saas.errors import AppError, ValidationFailed
from lp_saas.extensions import limiter
from lp_saas.platform import auth, mail, oversight
from lp_saas.platform import services as platform
from lp_saas.platform.auth import current_platform_user, operator_required, platform_login_required
from lp_saas.platform.forms import OfficeForm, PlanForm, PlatformUserForm, ReasonForm, SignupForm
from lp_saas.platform.models import Office, PlatformMail, Signup, Subscription
from lp_saas.platform.plans import PLANS, format_bytes
from lp_saas.tenants.models import SCHOOL_TYPES, Tenant
from lp_saas.tenants.resolver import require_apex

bp = Blueprint("platform", __name__)
bp.before_request(require_apex)
bp.before_request(auth.load_web_user)
bp.add_app_template_filter(oversight.iso_roc_date, "iso_roc_date")

SIGNUP_FIELDS = ("school_name", "school_code", "school_type", "slug", "contact_name", "contact_email", "plan")


@bp.context_processor
def _platform_context():
    return {"platform_user": current_platform_user(), "format_bytes": format_bytes, "plans": PLANS,
            "school_type_label": platform.school_type_label}


def _client_limit():
    return current_app.config["LP_CLIENT_LOGIN_LIMIT"]


def _safe_next(target: str | None, default: str) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def _home_of(user) -> str:
    return url_for("platform.console") if user.is_operator else url_for("platform.office_home")


# --- signup ----------------------------------------------------------------------------------------

@bp.route("/signup", methods=["GET", "POST"])
def signup():
    form = SignupForm()
    form.school_type.choices = [(key, platform.school_type_label(key)) for key in SCHOOL_TYPES]
    form.plan.choices = [(plan.key, str(plan.name)) for plan in PLANS.values()]
    if request.method == "GET":
        form.school_type.data = form.school_type.data or "general"
        form.plan.data = form.plan.data or "standard"
    errors, status = {}, 200
    if form.validate_on_submit():
        data = {name: getattr(form, name).data for name in SIGNUP_FIELDS}
        try:
            created = platform.create_signup(data, locale=str(get_locale()))
        except ValidationFailed as failed:
            db.session.rollback()
            errors, status = failed.details, 422
        except AppError as refused:  # too many signups from this client
            db.session.rollback()
            errors, status = {"form": str(refused.message)}, refused.status
        else:
            db.session.commit()
            session["lp_signup"] = str(created.id)
            return redirect(url_for("platform.signup_sent"))
    elif request.method == "POST":
        errors, status = {"form": _("The form was not complete or has expired; please try again.")}, 400
    return render_template("platform/signup.html", form=form, errors=errors), status


@bp.route("/signup/sent")
def signup_sent():
    signup_id = session.get("lp_signup")
    found = None
    if signup_id:
        try:
            found = db.session.get(Signup, uuid.UUID(signup_id))
        except ValueError:
            found = None
    return render_template("platform/signup_sent.html", signup=found, hours=platform.VERIFY_HOURS)


@bp.route("/signup/verify/<token>")
def verify_signup(token):
    try:
        found = platform.verify_signup(token)
    except AppError as refused:
        db.session.rollback()
        return render_template("platform/message.html", title=_("Verification failed"),
                               message=str(refused.message), tone="error"), refused.status
    db.session.commit()
    return render_template("platform/signup_verified.html", signup=found)


# --- platform users' sign-in ------------------------------------------------------------------------

@bp.route("/platform/login", methods=["GET", "POST"])
@limiter.limit(_client_limit, methods=["POST"], deduct_when=lambda r: r.status_code in (400, 401, 403, 423))
def login():
    form = LoginForm()
    user = current_platform_user()
    if user is not None and request.method == "GET":
        return redirect(_home_of(user))
    error, status = None, 200
    if form.validate_on_submit():
        try:
            user = auth.authenticate(form.username.data, form.password.data)
        except auth.LoginRefused as refused:
            db.session.commit()  # keep the failure count and the lock
            error, status = str(refused.message), refused.status
        else:
            auth.sign_in_web(user)
            db.session.commit()
            if user.must_change_password:
                flash(_("Please choose a new password before you go on."), "warning")
                return redirect(url_for("platform.password"))
            return redirect(_safe_next(request.args.get("next"), _home_of(user)))
    elif request.method == "POST":
        error, status = _("Enter your username and password."), 400
    return render_template("platform/login.html", form=form, error=error), status


@bp.route("/platform/logout", methods=["POST"])
def logout():
    auth.sign_out_web()
    db.session.commit()
    flash(_("You have signed out."), "info")
    return redirect(url_for("platform.login"))


@bp.route("/platform/password", methods=["GET", "POST"])
@platform_login_required()
def password():
    form = PasswordChangeForm()
    errors, status = {}, 200
    if form.validate_on_submit():
        try:
            auth.change_password(current_platform_user(), form.current_password.data, form.new_password.data,
                                 current_session=g.platform_session)
        except ValidationFailed as failed:
            db.session.rollback()
            errors, status = failed.details, 422
        else:
            db.session.commit()
            flash(_("Your password was changed. Other devices have been signed out."), "success")
            return redirect(_home_of(current_platform_user()))
    elif request.method == "POST":
        status = 400
    return render_template("platform/password.html", form=form, errors=errors), status


# --- the operator console ------------------------------------------------------------------------------

def _school_rows() -> list[dict]:
    tenants = list(db.session.scalars(sa.select(Tenant).order_by(Tenant.created_at.desc())))
    subscriptions = {s.tenant_id: s for s in db.session.scalars(sa.select(Subscription))}
    rows = []
    for tenant in tenants:
        provisioned = tenant.status in ("active", "suspended")
        rows.append({
            "tenant": tenant, "subscription": subscriptions.get(tenant.id),
            "students": platform.student_count(tenant) if provisioned else None,
            "storage": platform.storage_used(tenant) if provisioned else None,
        })
    return rows


def _code_in_use(signups) -> set:
    codes = {s.school_code for s in signups}
    return set(db.session.scalars(sa.select(Tenant.school_code).where(Tenant.school_code.in_(codes or [""]))))


@bp.route("/console")
@operator_required
def console():
    signups = platform.open_signups()
    return render_template("platform/console.html", signups=signups, schools=_school_rows(),
                           codes_in_use=_code_in_use(signups), confirm=ConfirmForm(), reason_form=ReasonForm(),
                           plan_form=PlanForm(), verify_hours=platform.VERIFY_HOURS)


def _signup_or_404(signup_id) -> Signup:
    try:
        found = db.session.get(Signup, uuid.UUID(str(signup_id)))
    except ValueError:
        found = None
    if found is None:
        abort(404)
    return found


def _tenant_or_404(slug) -> Tenant:
    from lp_saas.tenants.services import find_by_slug

    tenant = find_by_slug(slug) if isinstance(slug, str) else None
    if tenant is None:
        abort(404)
    return tenant


def _console_action(action, success):
    """Run a console action: commit and flash on success, roll back and flash the refusal."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash(_("The form was not complete or has expired; please try again."), "error")
        return redirect(url_for("platform.console"), 303)
    try:
        result = action()
    except AppError as refused:
        db.session.rollback()
        message = refused.message
        if isinstance(refused, ValidationFailed) and refused.details:
            message = "; ".join(str(v) for v in refused.details.values())
        flash(str(message), "error")
        return redirect(url_for("platform.console"), 303)
    db.session.commit()
    flash(success(result) if callable(success) else success, "success")
    return redirect(url_for("platform.console"))


@bp.route("/console/signups/<signup_id>/approve", methods=["POST"])
@operator_required
def approve(signup_id):
    found = _signup_or_404(signup_id)
    return _console_action(lambda: platform.approve_signup(found, current_platform_user()),
                           _("%(school)s was approved; its site is being set up and the contact will get the "
                             "administrator account by e-mail.", school=found.school_name))


@bp.route("/console/signups/<signup_id>/reject", methods=["POST"])
@operator_required
def reject(signup_id):
    found = _signup_or_404(signup_id)
    reason = (request.form.get("reason") or "")[:500]
    return _console_action(lambda: platform.reject_signup(found, current_platform_user(), reason),
                           _("The signup of %(school)s was rejected.", school=found.school_name))


@bp.route("/console/signups/<signup_id>/welcome", methods=["POST"])
@operator_required
def resend_welcome(signup_id):
    found = _signup_or_404(signup_id)
    return _console_action(lambda: platform.resend_welcome(found, current_platform_user()),
                           _("A new set-password link was sent to %(email)s.", email=found.contact_email))


@bp.route("/console/schools/<slug>/suspend", methods=["POST"])
@operator_required
def suspend(slug):
    tenant = _tenant_or_404(slug)
    reason = (request.form.get("reason") or "")[:500]
    return _console_action(lambda: platform.suspend_tenant(tenant, current_platform_user(), reason),
                           _("%(school)s is suspended; its site shows the suspension notice.", school=tenant.name))


@bp.route("/console/schools/<slug>/resume", methods=["POST"])
@operator_required
def resume(slug):
    tenant = _tenant_or_404(slug)
    return _console_action(lambda: platform.resume_tenant(tenant, current_platform_user()),
                           _("%(school)s is active again.", school=tenant.name))


@bp.route("/console/schools/<slug>/plan", methods=["POST"])
@operator_required
def change_plan(slug):
    tenant = _tenant_or_404(slug)
    plan = request.form.get("plan")
    return _console_action(lambda: platform.set_plan(tenant, plan, current_platform_user()),
                           lambda sub: _("%(school)s is now on the plan %(plan)s.", school=tenant.name,
                                         plan=PLANS[sub.plan].name))


# --- offices and platform accounts (console) --------------------------------------------------------------

def _office_forms():
    office_form = OfficeForm(prefix="office")
    office_form.schools.choices = [(t.slug, f"{t.name} ({t.slug})") for t in db.session.scalars(
        sa.select(Tenant).where(Tenant.status.in_(("active", "suspended"))).order_by(Tenant.name))]
    user_form = PlatformUserForm(prefix="account")
    user_form.role.choices = [("office_officer", _("Regional office officer")), ("operator", _("Platform operator"))]
    user_form.office.choices = [("", "—")] + [(o.code, f"{o.code} {o.name}") for o in platform.offices()]
    return office_form, user_form


def _render_offices(office_form, user_form, errors=None, status=200):
    listing = [(office, platform.office_schools(office)) for office in platform.offices()]
    offices_by_id = {office.id: office for office, _schools in listing}
    return render_template("platform/offices.html", offices=listing, office_form=office_form, user_form=user_form,
                           accounts=platform.platform_users(), offices_by_id=offices_by_id,
                           errors=errors or {}), status


@bp.route("/console/offices", methods=["GET", "POST"])
@operator_required
def offices():
    office_form, user_form = _office_forms()
    if request.method == "GET":
        return _render_offices(office_form, user_form)
    prefix = "office" if office_form.submit.data else "account"
    try:
        if office_form.submit.data and office_form.validate():
            office, changes = platform.save_office(current_platform_user(), code=office_form.code.data,
                                                   name=office_form.name.data, slugs=office_form.schools.data,
                                                   replace_schools=True)
            message = _("Office %(code)s was saved.", code=office.code) if changes else \
                _("Office %(code)s already had these details; nothing changed.", code=office.code)
        elif user_form.submit.data and user_form.validate():
            created = platform.create_platform_user(
                current_platform_user(), username=user_form.username.data, password=user_form.password.data,
                kind=user_form.role.data, office_code=user_form.office.data or None,
                display_name=user_form.display_name.data, email=user_form.email.data or None,
                must_change_password=True)
            message = _("Account %(username)s was created; it must choose a new password at first sign-in.",
                        username=created.username)
        else:
            return _render_offices(office_form, user_form,
                                   {"form": _("The form was not complete or has expired; please try again.")}, 400)
    except ValidationFailed as failed:
        db.session.rollback()
        return _render_offices(office_form, user_form, {f"{prefix}-{k}": v for k, v in failed.details.items()}, 422)
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("platform.offices"))


@bp.route("/console/mails")
@operator_required
def mails():
    rows = list(db.session.scalars(sa.select(PlatformMail).order_by(PlatformMail.created_at.desc()).limit(100)))
    return render_template("platform/mails.html", mails=rows, confirm=ConfirmForm(),
                           smtp=bool(current_app.config.get("MAIL_SMTP_HOST")))


@bp.route("/console/mails/<mail_id>/retry", methods=["POST"])
@operator_required
def retry_mail(mail_id):
    form = ConfirmForm()
    try:
        found = db.session.get(PlatformMail, uuid.UUID(str(mail_id)))
    except ValueError:
        found = None
    if found is None:
        abort(404)
    if form.validate_on_submit() and found.status == "failed":
        status = mail.deliver(found.id)
        flash(_("The mail was sent again.") if status in ("sent", "logged") else _("The mail could not be sent."),
              "success" if status in ("sent", "logged") else "error")
    return redirect(url_for("platform.mails"))


# --- regional offices' dashboards ---------------------------------------------------------------------------

def _office_for_viewer(code) -> Office:
    """The office ``code`` if the viewer may see it: its own officer, or an operator. Else 404."""
    user = current_platform_user()
    office = platform.find_office(code)
    if office is None or (not user.is_operator and user.office_id != office.id):
        abort(404)
    return office


@bp.route("/office")
@platform_login_required()
def office_home():
    user = current_platform_user()
    if not user.is_operator:
        office = db.session.get(Office, user.office_id)
        return redirect(url_for("platform.office_dashboard", code=office.code))
    return render_template("platform/office_list.html", offices=[(o, platform.office_schools(o))
                                                                  for o in platform.offices()])


@bp.route("/office/<code>")
@platform_login_required()
def office_dashboard(code):
    office = _office_for_viewer(code)
    figures = oversight.office_figures(office)
    return render_template("platform/office.html", office=office, figures=figures)


@bp.route("/office/<code>/schools.csv")
@platform_login_required()
def office_csv(code):
    office = _office_for_viewer(code)
    figures = oversight.office_figures(office)
    from lp_saas import clock

    filename = f"office-{office.code}-{clock.today().isoformat()}.csv"
    return Response(oversight.figures_csv(figures), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "no-store"})
