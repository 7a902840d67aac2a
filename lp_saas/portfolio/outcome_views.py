"""Course-outcome pages: the student's courses of a term with their outcomes, the teacher's certification
queue, one outcome, and the JSON endpoints ``static/js/upload.js`` calls (session + CSRF header).

Views parse, call :mod:`lp_saas.portfolio.outcomes`, and render or redirect; refusals of the form
posts come back as a flashed message on the page the user came from, and as JSON
(``{"error": {"code", "message", "details"}}``) to the upload script.
"""
from __future__ import annotations

import uuid

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from lp_saas import clock
from lp_saas.academics import calendar
from lp_saas.academics.models import Course
from lp_saas.accounts.auth import current_actor
from lp_saas.accounts.models import User
from lp_saas.accounts.views import _safe_next
from lp_saas.database import db
from lp_saas.errors import AppError, error_response
from lp_saas.i18n import academic_term
from lp_saas.portfolio import outcomes as service
from lp_saas.roles import permissions
from lp_saas.roles.permissions import permission_required
from lp_saas.tenants.context import current_tenant
from lp_saas.tenants.resolver import require_school
from lp_saas.tenants.rulesets import current_rules, format_size

bp = Blueprint("outcomes", __name__)
bp.before_request(require_school)


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


@bp.errorhandler(AppError)
def _refused(exc: AppError):
    """JSON for the upload script; for a form post, the message on the page the user came from."""
    db.session.rollback()
    details = {key: str(value) for key, value in exc.details.items()}
    if _wants_json():
        merged: dict[str, str] = {}
        for key, value in details.items():  # file.size, file.filename … → the form's one file slot
            slot = "file" if key.startswith("file.") else key
            merged[slot] = f"{merged[slot]} {value}" if slot in merged else value
        body = {"error": {"code": exc.code, "message": str(exc.message)}}
        if merged:
            body["error"]["details"] = merged
        return jsonify(body), exc.status
    if request.method == "POST":
        flash(" ".join([str(exc.message), *details.values()]) if details else str(exc.message), "error")
        return redirect(_safe_next(request.form.get("next")))
    return error_response(exc.status, exc.code, exc.message, details)


def _term_arg() -> tuple[int, int]:
    """``?term=113-1``, else the school's current term, else the calendar's term of today."""
    raw = request.args.get("term", "")
    year, _sep, semester = raw.partition("-")
    if year.isdigit() and semester in ("1", "2") and 100 <= int(year) <= 200:
        return int(year), int(semester)
    found = calendar.current_term(current_tenant().id)
    if found is not None:
        return found.academic_year, found.semester
    return academic_term(clock.today())


def _content_from_form(form) -> dict:
    """The item's fields as the service takes them; upload.js adds file_name/size/type/sha256."""
    data = {"title": form.get("title"), "description": form.get("description", "")}
    link = (form.get("link") or "").strip()
    if link:
        data["link"] = link
    if form.get("file_name"):
        size = form.get("file_size", "")
        data["file"] = {"filename": form.get("file_name"), "size": int(size) if size.isdigit() else size,
                        "content_type": form.get("file_type") or "", "sha256": form.get("file_sha256", "")}
    return data


def _created(outcome, upload, next_url: str):
    if upload is None:
        flash(_("“%(title)s” was submitted; your teacher can now certify it.", title=outcome.title), "success")
        if not _wants_json():
            return redirect(next_url)
        return jsonify({"next_url": next_url})
    if not _wants_json():  # without the upload script the bytes cannot be sent
        flash(_("Please use a browser with JavaScript turned on to upload files."), "warning")
        return redirect(next_url)
    return jsonify({"upload": upload, "next_url": next_url,
                    "uploaded_url": url_for("outcomes.uploaded", outcome_id=outcome.id)})


def _page_helpers(rules: dict) -> dict:
    """What the outcome templates use: the rules, the upload form's allowed types, labels."""
    types = rules["uploads"]["file_types"]
    return {
        "rules": rules, "now_utc": clock.now(), "format_size": format_size,
        "accept": ",".join([f".{t}" for t in sorted(types)] + ([".jpeg"] if "jpg" in types else [])),
        "sizes": ", ".join(f"{t.upper()} ≤ {format_size(n)}" for t, n in sorted(types.items())),
        "revisable": service.REVISABLE, "withdrawable": service.WITHDRAWABLE,
        "status_label": service.status_label, "reason_message": service.reason_message,
    }


def _term_url(outcome) -> str:
    return url_for("outcomes.mine", term=f"{outcome.academic_year}-{outcome.semester}")


# --- the student ---------------------------------------------------------------------------------

@bp.route("/outcomes")
@permission_required("course_outcome.upload")
def mine():
    tenant, actor = current_tenant(), current_actor()
    year, semester = _term_arg()
    courses, cap, used = service.student_term(tenant, actor, year, semester)
    terms = service.student_terms(tenant.id, actor.id)
    if (year, semester) not in terms:
        terms = sorted([*terms, (year, semester)], reverse=True)
    rules = current_rules(tenant.id)
    return render_template("outcomes/student.html", courses=courses, cap=cap, used=used, year=year,
                           semester=semester, terms=terms, **_page_helpers(rules))


@bp.route("/outcomes/new", methods=["POST"])
@permission_required("course_outcome.upload")
def create():
    tenant, actor = current_tenant(), current_actor()
    outcome, upload = service.create_outcome(tenant, actor, course_id=request.form.get("course_id"),
                                             **_content_from_form(request.form))
    db.session.commit()
    return _created(outcome, upload, _term_url(outcome))


@bp.route("/outcomes/<outcome_id>/uploaded", methods=["POST"])
@permission_required("course_outcome.upload")
def uploaded(outcome_id):
    actor = current_actor()
    outcome = service.load(actor, outcome_id, "course_outcome.upload")
    service.mark_uploaded(current_tenant(), actor, outcome)
    next_url = _term_url(outcome)
    db.session.commit()
    flash(_("The file was uploaded and is being checked. This page shows the result when you reload it."), "info")
    if not _wants_json():
        return redirect(next_url)
    return jsonify({"status": "verifying", "next_url": next_url}), 202


@bp.route("/outcomes/<outcome_id>/revise", methods=["POST"])
@permission_required("course_outcome.upload")
def revise(outcome_id):
    tenant, actor = current_tenant(), current_actor()
    outcome = service.load(actor, outcome_id, "course_outcome.upload")
    upload = service.revise(tenant, actor, outcome, **_content_from_form(request.form))
    next_url = _term_url(outcome)
    db.session.commit()
    return _created(outcome, upload, next_url)


@bp.route("/outcomes/<outcome_id>/withdraw", methods=["POST"])
@permission_required("course_outcome.upload")
def withdraw(outcome_id):
    actor = current_actor()
    outcome = service.load(actor, outcome_id, "course_outcome.upload")
    service.withdraw(current_tenant(), actor, outcome)
    title, next_url = outcome.title, _term_url(outcome)
    db.session.commit()
    flash(_("“%(title)s” was withdrawn; it no longer counts toward the semester's limit.", title=title), "success")
    return redirect(next_url)


# --- anyone who may see it ----------------------------------------------------------------------

@bp.route("/outcomes/<outcome_id>")
@permission_required("course_outcome.view")
def detail(outcome_id):
    tenant, actor = current_tenant(), current_actor()
    outcome = service.load(actor, outcome_id)
    course = db.session.get(Course, (tenant.id, outcome.course_id))
    student = db.session.get(User, (tenant.id, outcome.student_id))
    files = service.file_history(outcome)
    service.record_read(tenant, actor, outcome)
    db.session.commit()
    is_owner = actor.id == outcome.student_id
    return render_template(
        "outcomes/detail.html", outcome=outcome, course=course, student=student, files=files,
        current=next((f for f in files if f.id == outcome.file_id), None),
        deadlines=service.deadlines_for(course), is_owner=is_owner,
        can_certify=permissions.can(actor, "course_outcome.certify", student_id=outcome.student_id,
                                    course_id=outcome.course_id),
        can_change=is_owner and permissions.can(actor, "course_outcome.upload", student_id=outcome.student_id),
        **_page_helpers(current_rules(tenant.id)))


@bp.route("/outcomes/<outcome_id>/file")
@permission_required("course_outcome.view")
def file(outcome_id):
    actor = current_actor()
    outcome = service.load(actor, outcome_id)
    url = service.file_url(current_tenant(), actor, outcome, request.args.get("file_id"))
    db.session.commit()
    return redirect(url, 302)


# --- the teacher -----------------------------------------------------------------------------------

@bp.route("/outcomes/queue")
@permission_required("course_outcome.certify")
def queue():
    tenant, actor = current_tenant(), current_actor()
    course_id = None
    if request.args.get("course_id"):
        try:
            course_id = uuid.UUID(request.args["course_id"])
        except ValueError:
            course_id = None
    show = request.args.get("show", "waiting")
    if show not in service.QUEUE_VIEWS:
        show = "waiting"
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and 0 < len(page) < 6 else 1
    queue = service.certification_queue(tenant, actor, course_id, show=show, page=page)
    return render_template("outcomes/queue.html", queue=queue, groups=queue.courses, course_id=course_id,
                           comment_max=service.COMMENT_MAX, reason_max=service.REASON_MAX,
                           **_page_helpers(current_rules(tenant.id)))


@bp.route("/outcomes/<outcome_id>/certify", methods=["POST"])
@permission_required("course_outcome.certify")
def certify(outcome_id):
    actor = current_actor()
    outcome = service.load(actor, outcome_id, "course_outcome.certify")
    service.certify(current_tenant(), actor, outcome, request.form.get("comment"))
    title = outcome.title
    db.session.commit()
    flash(_("“%(title)s” is certified.", title=title), "success")
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/outcomes/<outcome_id>/return", methods=["POST"])
@permission_required("course_outcome.certify")
def return_(outcome_id):
    actor = current_actor()
    outcome = service.load(actor, outcome_id, "course_outcome.certify")
    service.return_outcome(current_tenant(), actor, outcome, request.form.get("reason"))
    title = outcome.title
    db.session.commit()
    flash(_("“%(title)s” was returned to the student with your reason.", title=title), "success")
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/outcomes/certify", methods=["POST"])
@permission_required("course_outcome.certify")
def bulk_certify():
    certified = service.bulk_certify(current_tenant(), current_actor(), request.form.getlist("ids"),
                                     request.form.get("comment"))
    db.session.commit()
    flash(_("%(n)s outcomes are certified.", n=len(certified)), "success")
    return redirect(_safe_next(request.form.get("next")))
