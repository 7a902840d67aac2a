"""Pages of the student's own portfolio items: diverse performance (and staff recording it), the
self-statements, the performance summary and the selection (勾選).

Views are thin: they turn a form into the services' input and render the result. The endpoints that
create an item with a file answer JSON for ``static/js/upload.js`` (``{"upload", "uploaded_url",
"next_url"}``); everything else is an ordinary form with CSRF and a redirect.
"""
from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from lp_saas import clock
from lp_saas.academics.models import Course
from lp_saas.accounts.auth import current_actor
from lp_saas.accounts.models import User
from lp_saas.database import db
from lp_saas.errors import AppError, ValidationFailed
from lp_saas.i18n import academic_term, format_roc_date
from lp_saas.portfolio import files
from lp_saas.portfolio import performances as perf
from lp_saas.portfolio import selection as sel
from lp_saas.portfolio import statements as stm
from lp_saas.portfolio.models import Performance, SelfStatement
from lp_saas.roles import permissions
from lp_saas.roles.permissions import login_required, permission_required
from lp_saas.tenants.context import current_tenant
from lp_saas.tenants.resolver import get_scoped, get_scoped_or_404, require_school
from lp_saas.tenants.rulesets import current_rules

bp = Blueprint("portfolio_items", __name__)
bp.before_request(require_school)


@bp.context_processor
def _page_helpers():
    def roc_day(iso: str) -> str:
        try:
            return format_roc_date(date.fromisoformat(iso))
        except (TypeError, ValueError):
            return str(iso)

    return {"year_bounds": perf.academic_year_bounds, "today": clock.today(), "roc_day": roc_day,
            "reject_message": files.reject_message}

#: where the student finder sends staff and parents: view key → (permission, endpoint)
STUDENT_VIEWS = {
    "performances": ("performance.view", "portfolio_items.student_performances"),
    "summary": ("performance.view", "portfolio_items.student_summary"),
    "statements": ("self_statement.view", "portfolio_items.student_statements"),
    "selection": ("selection.view", "portfolio_items.student_selection_current"),
}


def _json_error(exc: AppError):
    db.session.rollback()
    body = {"error": {"code": exc.code, "message": str(exc.message)}}
    # upload.js shows each detail as text beside its field; structured details (a cap) stay in the API
    details = {k: str(v) for k, v in exc.details.items() if not isinstance(v, (dict, list))}
    if details:
        body["error"]["details"] = details
    return jsonify(body), exc.status


def _file_spec(form) -> dict | None:
    """upload.js's description of the chosen file, as the services expect it (or None: no file)."""
    if not form.get("file_name"):
        return None
    size = form.get("file_size", "")
    return {"filename": form.get("file_name", ""), "size": int(size) if size.isdigit() else size,
            "content_type": form.get("file_type", ""), "sha256": form.get("file_sha256", "")}


def _year_arg(default: int) -> int:
    raw = request.args.get("year", "")
    return int(raw) if raw.isdigit() and 100 <= int(raw) <= 200 else default


def _performance_input(form) -> dict:
    data = {"category": form.get("category", ""), "title": form.get("title", ""),
            "description": form.get("description", ""), "academic_year": form.get("academic_year", ""),
            "semester": form.get("semester", ""),
            "details": {key[len("details."):]: value for key, value in form.items() if key.startswith("details.")}}
    if form.get("link", "").strip():
        data["link"] = form.get("link")
    spec = _file_spec(form)
    if spec is not None:
        data["file"] = spec
    return data


def _created_reply(item: Performance, upload: dict | None, next_url: str):
    if upload is None:
        flash(_("Saved: %(title)s.", title=item.title), "success")
        return jsonify({"id": str(item.id), "status": item.status, "next_url": next_url}), 201
    return jsonify({"id": str(item.id), "status": item.status, "upload": upload,
                    "uploaded_url": url_for(".performance_uploaded", performance_id=item.id),
                    "next_url": next_url}), 201


def _group(rows):
    """category key → its items, in the categories' order."""
    grouped = {key: [] for key in perf.CATEGORIES}
    for item, _student in rows:
        grouped.setdefault(item.category, []).append(item)
    return grouped


def _files_by_item(tenant, items) -> dict:
    found = files.files_of(tenant.id, "performance", [i.id for i in items])
    return {i.id: next((f for f in found.get(i.id, []) if f.id == i.file_id), None) for i in items}


def _student_or_404(student_id, permission: str) -> User:
    student = get_scoped(User, student_id)
    if student is None:
        abort(404)
    return perf.require_student(current_tenant(), current_actor(), permission, student.id)


# --- diverse performance ------------------------------------------------------------------------------

@bp.route("/performances")
@login_required
def performances():
    """The student's own diverse performance of a year: items by category, the cap, the window, forms."""
    actor = current_actor()
    if not permissions.has(actor, "performance.upload"):
        if permissions.has(actor, "performance.import"):
            return redirect(url_for(".record"))
        if permissions.has(actor, "performance.view"):
            return redirect(url_for(".find_student", view="performances"))
        abort(403)
    tenant = current_tenant()
    year = _year_arg(perf.default_year(tenant.id))
    rows = perf.list_performances(tenant, actor, student_id=actor.id, academic_year=year)
    items = [item for item, _student in rows]
    return render_template("performances/index.html", own=True, student=actor, year=year,
                           status=perf.year_status(tenant.id, actor.id, year), grouped=_group(rows),
                           files=_files_by_item(tenant, items), categories=perf.CATEGORIES,
                           labels=perf.STATUS_LABELS, sources=perf.SOURCE_LABELS,
                           description_max=perf.description_limit(current_rules(tenant.id)),
                           links_allowed=current_rules(tenant.id)["uploads"]["hyperlinks_allowed"],
                           file_types=sorted(current_rules(tenant.id)["uploads"]["file_types"]))


@bp.route("/performances/new", methods=["POST"])
@permission_required("performance.upload")
def performance_new():
    """upload.js's endpoint: create the student's own item; JSON reply."""
    tenant = current_tenant()
    actor = current_actor()
    try:
        item, upload = perf.create_performance(tenant, actor, _performance_input(request.form), coerce=True)
        db.session.commit()
    except AppError as exc:
        return _json_error(exc)
    return _created_reply(item, upload, url_for(".performances", year=item.academic_year))


@bp.route("/performances/<performance_id>/uploaded", methods=["POST"])
@login_required
def performance_uploaded(performance_id):
    """upload.js: the bytes are in storage; start the check. JSON reply."""
    tenant = current_tenant()
    actor = current_actor()
    item = get_scoped_or_404(Performance, performance_id)
    if not perf.may_manage(actor, item):
        abort(404)
    try:
        perf.file_sent(tenant, actor, item)
        status = item.status
        db.session.commit()
    except AppError as exc:
        return _json_error(exc)
    flash(_("The file was received and is being checked: %(title)s.", title=item.title), "success")
    next_url = (url_for(".performances", year=item.academic_year) if item.source == "student"
                else url_for(".record"))
    return jsonify({"id": str(item.id), "status": status, "next_url": next_url}), 202


@bp.route("/performances/<performance_id>/withdraw", methods=["POST"])
@login_required
def performance_withdraw(performance_id):
    tenant = current_tenant()
    actor = current_actor()
    item = get_scoped_or_404(Performance, performance_id)
    if not permissions.can(actor, "performance.view", student_id=item.student_id) and not perf.may_manage(actor, item):
        abort(404)
    year, title, own = item.academic_year, item.title, item.student_id == actor.id
    try:
        perf.withdraw_performance(tenant, actor, item)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
    else:
        flash(_("Withdrawn: %(title)s.", title=title), "success")
    if own:
        return redirect(url_for(".performances", year=year))
    return redirect(url_for(".record"))


@bp.route("/performances/<performance_id>/file")
@permission_required("performance.view")
def performance_file(performance_id):
    tenant = current_tenant()
    actor = current_actor()
    item = get_scoped_or_404(Performance, performance_id)
    permissions.require(actor, "performance.view", student_id=item.student_id)
    stored = perf.verified_file_or_error(tenant, item)
    url = files.download_url(tenant, actor, stored)
    db.session.commit()
    return redirect(url)


def _find_student(tenant, actor, query: str, permission: str) -> User | None:
    """A student by student number or username, if ``actor`` holds ``permission`` over them."""
    query = (query or "").strip()
    if not query or len(query) > 64:
        return None
    student = db.session.scalar(sa.select(User).where(
        User.tenant_id == tenant.id, sa.or_(User.student_no == query, User.username == query)).limit(1))
    if student is None or not perf.is_student(student) or not permissions.can(actor, permission, student_id=student.id):
        return None
    return student


@bp.route("/performances/record")
@permission_required("performance.import")
def record():
    """Staff: record an item for a student (a school unit's or an outside organiser's)."""
    tenant = current_tenant()
    actor = current_actor()
    recent = db.session.execute(
        sa.select(Performance, User)
        .join(User, sa.and_(User.tenant_id == Performance.tenant_id, User.id == Performance.student_id))
        .where(Performance.tenant_id == tenant.id, Performance.created_by_id == actor.id,
               Performance.source != "student")
        .order_by(Performance.created_at.desc()).limit(30)).all()
    return render_template("performances/record.html", year=_year_arg(perf.default_year(tenant.id)),
                           categories=perf.CATEGORIES,
                           recent=recent, labels=perf.STATUS_LABELS, sources=perf.SOURCE_LABELS,
                           description_max=perf.description_limit(current_rules(tenant.id)),
                           links_allowed=current_rules(tenant.id)["uploads"]["hyperlinks_allowed"],
                           file_types=sorted(current_rules(tenant.id)["uploads"]["file_types"]))


@bp.route("/performances/record", methods=["POST"])
@permission_required("performance.import")
def record_post():
    """upload.js's endpoint for staff: the student by number or username; JSON reply."""
    tenant = current_tenant()
    actor = current_actor()
    form = request.form
    data = _performance_input(form)
    data["source"] = form.get("source", "school")
    if form.get("organiser_name", "").strip() or data["source"] == "organiser":
        data["organiser_name"] = form.get("organiser_name", "")
    student = _find_student(tenant, actor, form.get("student", ""), "performance.import")
    try:
        if student is None:
            raise ValidationFailed({"student": _("No such student among those you may record for.")})
        data["student_id"] = student.id
        item, upload = perf.create_performance(tenant, actor, data, coerce=True)
        db.session.commit()
    except ValidationFailed as exc:
        if "student_id" in exc.details:
            exc.details["student"] = exc.details.pop("student_id")
        return _json_error(exc)
    except AppError as exc:
        return _json_error(exc)
    return _created_reply(item, upload, url_for(".record"))


@bp.route("/students/find")
@login_required
def find_student():
    """Staff and parents: open a student's portfolio pages by student number or username."""
    tenant = current_tenant()
    actor = current_actor()
    view = request.args.get("view", "performances")
    if view not in STUDENT_VIEWS:
        view = "performances"
    permission, endpoint = STUDENT_VIEWS[view]
    if not permissions.has(actor, permission):
        abort(403)
    query = request.args.get("q", "")
    error = None
    if query:
        student = _find_student(tenant, actor, query, permission)
        if student is not None:
            return redirect(url_for(endpoint, student_id=student.id))
        error = _("No such student among those you may see.")
    return render_template("performances/find.html", view=view, q=query, error=error, views=STUDENT_VIEWS), \
        (404 if error else 200)


@bp.route("/students/<student_id>/performances")
@permission_required("performance.view")
def student_performances(student_id):
    """A student's diverse performance, read-only, for staff and parents in scope (audited)."""
    tenant = current_tenant()
    actor = current_actor()
    student = _student_or_404(student_id, "performance.view")
    year = _year_arg(perf.default_year(tenant.id))
    rows = perf.list_performances(tenant, actor, student_id=student.id, academic_year=year)
    items = [item for item, _student in rows]
    page = render_template("performances/index.html", own=False, student=student, year=year,
                           status=perf.year_status(tenant.id, student.id, year), grouped=_group(rows),
                           files=_files_by_item(tenant, items), categories=perf.CATEGORIES,
                           labels=perf.STATUS_LABELS, sources=perf.SOURCE_LABELS)
    perf.audit_reads(tenant, actor, "performance.list", {student.id}, target_type="student",
                     details={"academic_year": year})
    db.session.commit()
    return page


# --- self-statements ---------------------------------------------------------------------------------

def _statement_form(form) -> dict:
    return {key: form.get(key, "") for key in ("kind", "target", "title", "body")}


@bp.route("/statements", methods=["GET", "POST"])
@login_required
def statements():
    """The student's versions, and a form for a new one."""
    tenant = current_tenant()
    actor = current_actor()
    if not permissions.has(actor, "self_statement.edit"):
        if permissions.has(actor, "self_statement.view"):
            return redirect(url_for(".find_student", view="statements"))
        abort(403)
    errors, values, status = {}, {"kind": "autobiography"}, 200
    if request.method == "POST":
        values = _statement_form(request.form)
        try:
            statement = stm.create_statement(tenant, actor, values)
            db.session.commit()
        except ValidationFailed as exc:
            db.session.rollback()
            errors, status = exc.details, 422
        except AppError as exc:
            db.session.rollback()
            errors, status = {"form": str(exc.message)}, exc.status
        else:
            flash(_("Saved: %(title)s.", title=statement.title), "success")
            return redirect(url_for(".statement_edit", statement_id=statement.id))
    rows = stm.list_statements(tenant, actor, student_id=actor.id)
    return render_template("statements/index.html", own=True, student=actor, rows=rows, errors=errors,
                           values=values, kinds=stm.STATEMENT_KINDS, body_max=stm.BODY_MAX), status


@bp.route("/statements/<statement_id>")
@login_required
def statement_view(statement_id):
    tenant = current_tenant()
    actor = current_actor()
    statement = stm.readable_statement(tenant, actor, statement_id)
    student = db.session.get(User, (tenant.id, statement.student_id))
    page = render_template("statements/view.html", statement=statement, student=student,
                           own=statement.student_id == actor.id, kinds=stm.STATEMENT_KINDS)
    db.session.commit()
    return page


@bp.route("/statements/<statement_id>/edit", methods=["GET", "POST"])
@permission_required("self_statement.edit")
def statement_edit(statement_id):
    tenant = current_tenant()
    actor = current_actor()
    statement = get_scoped_or_404(SelfStatement, statement_id)
    if statement.student_id != actor.id:
        abort(404)
    errors, status = {}, 200
    values = {"kind": statement.kind, "target": statement.target, "title": statement.title, "body": statement.body}
    if request.method == "POST":
        values = _statement_form(request.form)
        try:
            stm.update_statement(tenant, actor, statement, values)
            db.session.commit()
        except ValidationFailed as exc:
            db.session.rollback()
            errors, status = exc.details, 422
        else:
            flash(_("Saved: %(title)s.", title=statement.title), "success")
            return redirect(url_for(".statement_edit", statement_id=statement.id))
    rows = stm.list_statements(tenant, actor, student_id=actor.id)
    return render_template("statements/edit.html", statement=statement, rows=rows, errors=errors, values=values,
                           kinds=stm.STATEMENT_KINDS, body_max=stm.BODY_MAX), status


@bp.route("/statements/<statement_id>/delete", methods=["POST"])
@permission_required("self_statement.edit")
def statement_delete(statement_id):
    tenant = current_tenant()
    actor = current_actor()
    statement = get_scoped_or_404(SelfStatement, statement_id)
    title = statement.title
    stm.delete_statement(tenant, actor, statement)
    db.session.commit()
    flash(_("Deleted: %(title)s.", title=title), "success")
    return redirect(url_for(".statements"))


@bp.route("/students/<student_id>/statements")
@permission_required("self_statement.view")
def student_statements(student_id):
    tenant = current_tenant()
    actor = current_actor()
    student = _student_or_404(student_id, "self_statement.view")
    rows = stm.list_statements(tenant, actor, student_id=student.id)
    page = render_template("statements/index.html", own=False, student=student, rows=rows, errors={}, values={},
                           kinds=stm.STATEMENT_KINDS, body_max=stm.BODY_MAX)
    perf.audit_reads(tenant, actor, "self_statement.list", {student.id}, target_type="student")
    db.session.commit()
    return page


# --- the performance summary ---------------------------------------------------------------------------

def _summary_page(tenant, student, *, own: bool, errors=None, body=None, status=200):
    summary = stm.get_summary(tenant.id, student.id)
    images = stm.summary_images(tenant.id, [student.id]).get(student.id, [])
    return render_template("statements/summary.html", own=own, student=student, summary=summary,
                           body=summary.body if body is None and summary else (body or ""),
                           images=images, limits=stm.summary_limits(tenant.id), errors=errors or {}), status


@bp.route("/summary", methods=["GET", "POST"])
@login_required
def summary():
    tenant = current_tenant()
    actor = current_actor()
    if not permissions.has(actor, "performance.upload"):
        if permissions.has(actor, "performance.view"):
            return redirect(url_for(".find_student", view="summary"))
        abort(403)
    if request.method == "POST":
        body = request.form.get("body", "")
        try:
            stm.save_summary(tenant, actor, body)
            db.session.commit()
        except ValidationFailed as exc:
            db.session.rollback()
            return _summary_page(tenant, actor, own=True, errors=exc.details, body=body, status=422)
        flash(_("The performance summary is saved."), "success")
        return redirect(url_for(".summary"))
    return _summary_page(tenant, actor, own=True)


@bp.route("/summary/images/new", methods=["POST"])
@permission_required("performance.upload")
def summary_image_new():
    """upload.js's endpoint for a summary image; JSON reply."""
    tenant = current_tenant()
    actor = current_actor()
    try:
        spec = _file_spec(request.form)
        if spec is None:
            raise ValidationFailed({"file": _("Choose an image (jpg or png).")})
        stored, upload = stm.add_summary_image(tenant, actor, spec)
        db.session.commit()
    except AppError as exc:
        return _json_error(exc)
    return jsonify({"id": str(stored.id), "status": stored.status, "upload": upload,
                    "uploaded_url": url_for(".summary_image_uploaded", image_id=stored.id),
                    "next_url": url_for(".summary")}), 201


@bp.route("/summary/images/<image_id>/uploaded", methods=["POST"])
@permission_required("performance.upload")
def summary_image_uploaded(image_id):
    tenant = current_tenant()
    actor = current_actor()
    stored = stm.own_summary_image(tenant, actor, image_id)
    try:
        stm.summary_image_sent(tenant, actor, stored)
        status = stored.status
        db.session.commit()
    except AppError as exc:
        return _json_error(exc)
    flash(_("The image was received and is being checked."), "success")
    return jsonify({"id": str(stored.id), "status": status, "next_url": url_for(".summary")}), 202


@bp.route("/summary/images/<image_id>/delete", methods=["POST"])
@permission_required("performance.upload")
def summary_image_delete(image_id):
    tenant = current_tenant()
    actor = current_actor()
    stored = stm.own_summary_image(tenant, actor, image_id)
    stm.remove_summary_image(tenant, actor, stored)
    db.session.commit()
    flash(_("The image was removed."), "success")
    return redirect(url_for(".summary"))


@bp.route("/summary/images/<image_id>")
@permission_required("performance.view")
def summary_image(image_id):
    tenant = current_tenant()
    actor = current_actor()
    stored = stm.readable_summary_image(tenant, actor, image_id)
    if stored.status != "verified":
        abort(404)
    url = files.download_url(tenant, actor, stored)
    db.session.commit()
    return redirect(url)


@bp.route("/students/<student_id>/summary")
@permission_required("performance.view")
def student_summary(student_id):
    tenant = current_tenant()
    actor = current_actor()
    student = _student_or_404(student_id, "performance.view")
    page = _summary_page(tenant, student, own=False)
    perf.audit_reads(tenant, actor, "summary.read", {student.id}, target_type="performance_summary")
    db.session.commit()
    return page


# --- selection -----------------------------------------------------------------------------------------

def _course_names(tenant, outcomes) -> dict:
    ids = {o.course_id for o in outcomes}
    if not ids:
        return {}
    return dict(db.session.execute(sa.select(Course.id, Course.name).where(Course.tenant_id == tenant.id,
                                                                          Course.id.in_(ids))).all())


def _selection_page(tenant, student, year: int, *, own: bool, errors=None, chosen=None, status=200):
    found = sel.selection_of(tenant.id, student.id, year)
    if own:
        outcomes, items = sel.selectable(tenant.id, student.id, year)
    else:
        outcomes, items = [], []
    known_outcomes = {o.id for o in outcomes}
    known_items = {p.id for p in items}
    # what is selected but no longer selectable (a returned outcome) stays visible, flagged
    stale_outcomes = [o for o in found.outcomes if o.id not in known_outcomes]
    stale_items = [p for p in found.performances if p.id not in known_items]
    if chosen is None:
        chosen = {str(o.id) for o in found.outcomes} | {str(p.id) for p in found.performances}
    all_outcomes = outcomes + stale_outcomes
    return render_template("selection/index.html", own=own, student=student, year=year, found=found,
                           outcomes=outcomes, items=items, stale_outcomes=stale_outcomes, stale_items=stale_items,
                           courses=_course_names(tenant, all_outcomes), chosen=chosen,
                           caps=sel.effective_caps(tenant.id), errors=errors or {},
                           labels=perf.STATUS_LABELS, category_label=perf.category_label), status


@bp.route("/selection")
@login_required
def selection_current():
    tenant = current_tenant()
    return redirect(url_for(".selection", academic_year=perf.open_year(tenant.id) or academic_term(clock.today())[0]))


@bp.route("/selection/<int:academic_year>", methods=["GET", "POST"])
@login_required
def selection(academic_year):
    tenant = current_tenant()
    actor = current_actor()
    if not permissions.can(actor, "selection.edit", student_id=actor.id):
        # a reader (parent, staff) is shown whose selection to read; a change is refused outright
        if request.method == "GET" and permissions.has(actor, "selection.view"):
            return redirect(url_for(".find_student", view="selection"))
        abort(403)
    if not 100 <= academic_year <= 200:
        abort(404)
    if request.method == "POST":
        data = {"outcome_ids": request.form.getlist("outcome_ids"),
                "performance_ids": request.form.getlist("performance_ids")}
        try:
            sel.replace_selection(tenant, actor, academic_year, data)
            db.session.commit()
        except AppError as exc:
            db.session.rollback()
            errors = {"form": str(exc.message), **{k: str(v) for k, v in exc.details.items()
                                                    if not isinstance(v, dict)}}
            chosen = set(data["outcome_ids"]) | set(data["performance_ids"])
            return _selection_page(tenant, actor, academic_year, own=True, errors=errors, chosen=chosen,
                                   status=exc.status)
        flash(_("The selection of academic year %(year)s is saved.", year=academic_year), "success")
        return redirect(url_for(".selection", academic_year=academic_year))
    return _selection_page(tenant, actor, academic_year, own=True)


@bp.route("/students/<student_id>/selection")
@permission_required("selection.view")
def student_selection_current(student_id):
    tenant = current_tenant()
    student = _student_or_404(student_id, "selection.view")
    year = perf.open_year(tenant.id) or academic_term(clock.today())[0]
    return redirect(url_for(".student_selection", student_id=student.id, academic_year=year))


@bp.route("/students/<student_id>/selection/<int:academic_year>")
@permission_required("selection.view")
def student_selection(student_id, academic_year):
    tenant = current_tenant()
    actor = current_actor()
    student = _student_or_404(student_id, "selection.view")
    if not 100 <= academic_year <= 200:
        abort(404)
    year = academic_year
    sel.read_selection(tenant, actor, student.id, year)
    page = _selection_page(tenant, student, year, own=False)
    db.session.commit()
    return page

