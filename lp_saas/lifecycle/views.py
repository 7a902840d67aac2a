"""The school admin's lifecycle pages: upcoming expiries (with overrides), graduates and legal holds,
the deletion dry-run report, and stuck or failed background work. All need ``lifecycle.manage``."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from lp_saas import clock
from lp_saas.accounts.auth import current_actor
from lp_saas.accounts.models import User
from lp_saas.database import db
from lp_saas.errors import AppError
from lp_saas.lifecycle import expiry, reconcile
from lp_saas.lifecycle import services as graduates
from lp_saas.lifecycle.models import EXPIRY_OVERRIDES, Graduation, LegalHold
from lp_saas.roles.permissions import permission_required
from lp_saas.tenants.context import current_tenant
from lp_saas.tenants.resolver import get_scoped_or_404, require_school

bp = Blueprint("lifecycle", __name__, url_prefix="/lifecycle")
bp.before_request(require_school)

REPORT_DAYS = 90
PAGE_LIMIT = 200


@bp.route("")
@permission_required("lifecycle.manage")
def overview():
    tenant = current_tenant()
    plans = expiry.upcoming(tenant)
    due, _rule = graduates.deletion_plan(tenant.id, clock.today(), until=clock.today() + timedelta(days=REPORT_DAYS))
    sealed = db.session.scalar(sa.select(sa.func.count()).select_from(Graduation).where(
        Graduation.tenant_id == tenant.id, Graduation.sealed_at.is_not(None))) or 0
    return render_template("lifecycle/overview.html", expiries=len(plans), due=len(due), sealed=sealed,
                           stuck=len(reconcile.stuck_jobs(tenant.id)) + len(reconcile.unverified_files(tenant.id))
                           + len(reconcile.unsent_emails(tenant.id)),
                           failed=len(reconcile.failed_jobs(tenant.id)), report_days=REPORT_DAYS)


@bp.route("/expiries")
@permission_required("lifecycle.manage")
def expiries():
    from lp_saas.tenants.rulesets import current_rules

    tenant = current_tenant()
    return render_template("lifecycle/expiries.html", plans=expiry.upcoming(tenant),
                           left=expiry.courses_left_with_departed(tenant.id),
                           rules=current_rules(tenant.id)["staff_departure"], overrides=EXPIRY_OVERRIDES,
                           labels=expiry.ACTION_LABELS)


@bp.route("/expiries/<user_id>", methods=["POST"])
@permission_required("lifecycle.manage")
def override(user_id):
    tenant = current_tenant()
    user = get_scoped_or_404(User, user_id)
    action = request.form.get("action") or None
    if action == "rules":
        action = None
    try:
        expiry.set_override(tenant, current_actor(), user, action)
    except AppError as refused:
        db.session.rollback()
        flash(" ".join(str(v) for v in refused.details.values()) or str(refused.message), "error")
        return redirect(url_for("lifecycle.expiries"))
    db.session.commit()
    flash(_("The plan for %(name)s was saved.", name=user.display_name), "success")
    return redirect(url_for("lifecycle.expiries"))


@bp.route("/graduates")
@permission_required("lifecycle.manage")
def graduates_page():
    tenant = current_tenant()
    rows = db.session.execute(
        sa.select(Graduation, User, LegalHold)
        .join(User, sa.and_(User.tenant_id == Graduation.tenant_id, User.id == Graduation.student_id))
        .outerjoin(LegalHold, sa.and_(LegalHold.tenant_id == Graduation.tenant_id,
                                      LegalHold.student_id == Graduation.student_id))
        .where(Graduation.tenant_id == tenant.id)
        .order_by(Graduation.graduated_on.desc(), User.student_no, User.username).limit(PAGE_LIMIT)).all()
    years, _rule = graduates.retention(tenant.id, clock.today())
    return render_template("lifecycle/graduates.html", rows=rows, years=years,
                           due_on=lambda g: graduates.deletion_due_on(g.graduated_on, years))


def _student(student_id) -> User:
    student = get_scoped_or_404(User, student_id)
    if not graduates.students_of_school(student.tenant_id, [student.id]):
        abort(404)
    return student


@bp.route("/students/<student_id>/hold", methods=["POST"])
@permission_required("lifecycle.manage")
def hold(student_id):
    student = _student(student_id)
    try:
        graduates.set_legal_hold(current_tenant(), current_actor(), student, request.form.get("reason"))
    except AppError as refused:
        db.session.rollback()
        flash(" ".join(str(v) for v in refused.details.values()) or str(refused.message), "error")
        return redirect(url_for("lifecycle.graduates_page"))
    db.session.commit()
    flash(_("The data of %(name)s is on legal hold: it will not be deleted.", name=student.display_name), "success")
    return redirect(url_for("lifecycle.graduates_page"))


@bp.route("/students/<student_id>/release", methods=["POST"])
@permission_required("lifecycle.manage")
def release(student_id):
    student = _student(student_id)
    if graduates.release_legal_hold(current_tenant(), current_actor(), student):
        db.session.commit()
        flash(_("The legal hold on %(name)s was released.", name=student.display_name), "success")
    return redirect(url_for("lifecycle.graduates_page"))


@bp.route("/deletions")
@permission_required("lifecycle.manage")
def deletions():
    """The dry-run report: whose data would be deleted by a day, and how much; past deletions."""
    from lp_saas.tenants.rulesets import parse_day

    tenant = current_tenant()
    today = clock.today()
    until = parse_day(request.args.get("until")) or today + timedelta(days=30)
    until = max(until, today)
    plans, rule = graduates.deletion_plan(tenant.id, today, until=until)
    people = {u.id: u for u in db.session.scalars(sa.select(User).where(
        User.tenant_id == tenant.id, User.id.in_([p.student_id for p in plans[:PAGE_LIMIT]])))} if plans else {}
    report = []
    for plan in plans[:PAGE_LIMIT]:
        found = graduates.student_data(tenant.id, plan.student_id)
        report.append({"plan": plan, "user": people.get(plan.student_id), "objects": len(found.keys),
                       "rows": found.rows})
    return render_template("lifecycle/deletions.html", report=report, total=len(plans), until=until, rule=rule,
                           records=graduates.deletion_records(tenant.id), limit=PAGE_LIMIT)


@bp.route("/jobs")
@permission_required("lifecycle.manage")
def jobs():
    tenant = current_tenant()
    return render_template("lifecycle/jobs.html", stuck=reconcile.stuck_jobs(tenant.id),
                           unverified=reconcile.unverified_files(tenant.id),
                           unsent=reconcile.unsent_emails(tenant.id),
                           failed=reconcile.failed_jobs(tenant.id))


@bp.route("/jobs/reconcile", methods=["POST"])
@permission_required("lifecycle.manage")
def reconcile_now():
    """Run the reconciling sweep for this school now (what the schedule does every 5 minutes)."""
    actions = reconcile.sweep(current_tenant())
    db.session.commit()
    flash(_("Reconciliation done: %(count)s items sent again or cleaned up.", count=len(actions)), "success")
    return redirect(url_for("lifecycle.jobs"))
