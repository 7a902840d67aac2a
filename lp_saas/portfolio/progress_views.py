"""Overview pages: a student's portfolio (also their parents' read-only view), a homeroom class,
and the school's progress dashboard per class and per teacher."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, redirect, render_template, request, url_for

from lp_saas import clock
from lp_saas.academics import calendar
from lp_saas.academics.models import ParentLink, SchoolClass
from lp_saas.accounts.auth import current_actor
from lp_saas.accounts.models import User
from lp_saas.audit import services as audit
from lp_saas.database import db
from lp_saas.i18n import academic_term
from lp_saas.portfolio import outcomes as outcome_service
from lp_saas.portfolio import performances as performance_service
from lp_saas.portfolio import progress
from lp_saas.roles import permissions
from lp_saas.roles.permissions import login_required, permission_required
from lp_saas.tenants.context import current_tenant
from lp_saas.tenants.resolver import get_scoped_or_404, require_school, scoped_select

bp = Blueprint("progress", __name__)
bp.before_request(require_school)


def _term_args() -> tuple[int, int]:
    """(academic year, semester) from ?year=&semester=, else the current term. Bad values → 400."""
    tenant = current_tenant()
    current = calendar.current_term(tenant.id)
    year, semester = (current.academic_year, current.semester) if current else academic_term(clock.today())
    try:
        if request.args.get("year"):
            year = int(request.args["year"])
        if request.args.get("semester"):
            semester = int(request.args["semester"])
    except ValueError:
        abort(400)
    if not 100 <= year <= 200 or semester not in (1, 2):
        abort(400)
    return year, semester


@bp.route("/portfolio")
@login_required
def mine():
    actor = current_actor()
    if permissions.has(actor, "course_outcome.upload"):
        return _overview(actor)
    children = list(db.session.scalars(
        scoped_select(User).join(ParentLink, sa.and_(ParentLink.tenant_id == User.tenant_id,
                                                     ParentLink.student_id == User.id))
        .where(ParentLink.parent_id == actor.id).order_by(User.display_name)))
    if children:
        if len(children) == 1:
            return redirect(url_for("progress.student", student_id=children[0].id))
        return render_template("progress/children.html", children=children)
    return redirect(url_for("school.dashboard"))


@bp.route("/portfolio/students/<student_id>")
@login_required
def student(student_id):
    actor = current_actor()
    person = get_scoped_or_404(User, student_id)
    permissions.require(actor, "course_outcome.view", student_id=person.id)
    if person.id != actor.id:
        audit.record(person.tenant_id, actor, "portfolio.read", target_type="user", target_id=person.id,
                     student_id=person.id)
        db.session.commit()
    return _overview(person, read_only=person.id != actor.id)


def _overview(person, read_only: bool = False):
    year, semester = _term_args()
    data = progress.student_overview(person.tenant_id, person.id, year, semester)
    return render_template("progress/student.html", person=person, year=year, semester=semester,
                           read_only=read_only, status_label=outcome_service.status_label,
                           performance_labels=performance_service.STATUS_LABELS,
                           category_label=performance_service.category_label,
                           source_labels=performance_service.SOURCE_LABELS, **data)


@bp.route("/class")
@login_required
def homeroom():
    actor = current_actor()
    tenant = current_tenant()
    year, semester = _term_args()
    classes = list(db.session.scalars(scoped_select(SchoolClass).where(
        SchoolClass.academic_year == year, SchoolClass.homeroom_teacher_id == actor.id).order_by(SchoolClass.name)))
    if permissions.has_school_wide(actor, "dashboard.view"):
        classes = list(db.session.scalars(scoped_select(SchoolClass).where(
            SchoolClass.academic_year == year).order_by(SchoolClass.name)))
    if not classes:
        abort(403)
    chosen = classes[0]
    if request.args.get("class_id"):
        chosen = next((c for c in classes if str(c.id) == request.args["class_id"]), None)
        if chosen is None:
            abort(404)
    # record the read first: a commit after loading would expire every row the page then shows
    audit.record(tenant.id, actor, "class.progress.read", target_type="class", target_id=chosen.id)
    db.session.commit()
    rows = progress.class_progress(tenant.id, chosen.id, year, semester)
    return render_template("progress/class.html", classes=classes, chosen=chosen, rows=rows,
                           year=year, semester=semester)


@bp.route("/admin/progress")
@permission_required("dashboard.view")
def school():
    actor = current_actor()
    permissions.require(actor, "dashboard.view")
    year, semester = _term_args()
    data = progress.school_progress(current_tenant().id, year, semester)
    return render_template("progress/school.html", year=year, semester=semester, **data)
