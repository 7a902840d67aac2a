"""The academic structure's pages: the school calendar's terms, and imports of rosters and records.

Thin views: parse the form, call a service (``records.services`` for terms, ``academics.imports``
for files), commit, render. Terms are read by everyone signed in and changed with ``roster.edit``;
each kind of import needs its own permission for the whole school (``imports.KINDS``).
"""
from __future__ import annotations

import io

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import IntegerField, SelectChoice, SelectField, SubmitField
from wtforms.fields import DateField
from wtforms.validators import InputRequired, Optional

from lp_saas.academics import imports
from lp_saas.academics.models import Term
from lp_saas.accounts.auth import current_actor
from lp_saas.database import db
from lp_saas.errors import AppError
from lp_saas.extensions import csrf
from lp_saas.forms import Form
from lp_saas.i18n import format_term, is_english
from lp_saas.jobs.models import Job
from lp_saas.jobs.views import visible_to
from lp_saas.records import services as records
from lp_saas.roles import permissions
from lp_saas.roles.permissions import login_required, permission_required
from lp_saas.tenants.context import current_tenant
from lp_saas.tenants.resolver import get_scoped_or_404, require_school, scoped_select

bp = Blueprint("academics", __name__)
bp.before_request(require_school)


class TermForm(Form):
    academic_year = IntegerField(_l("Academic year (ROC)"), validators=[InputRequired()])
    semester = SelectField(_l("Semester"), choices=[SelectChoice("1"), SelectChoice("2")], coerce=int,
                           validators=[InputRequired()])
    starts_on = DateField(_l("First day"), validators=[InputRequired()])
    ends_on = DateField(_l("Last day"), validators=[InputRequired()])
    ceremony_on = DateField(_l("Semester-end ceremony (休業式)"), validators=[InputRequired()])
    grade12_ceremony_on = DateField(_l("Grade 12 semester-end ceremony (second semester, if different)"),
                                    validators=[Optional()])
    submit = SubmitField(_l("Save"))


class UploadForm(Form):
    file = FileField(_l("Spreadsheet file (.xlsx or .csv)"), validators=[FileRequired()])
    submit = SubmitField(_l("Upload and import"))


# --- terms -------------------------------------------------------------------------------------

@bp.route("/terms")
@login_required
def terms():
    tenant = current_tenant()
    return render_template("academics/terms.html", terms=records.terms_of(tenant),
                           current=records.current_term_key(tenant))


def _save_term(form: TermForm, term: Term | None):
    """POST handling shared by the new and edit pages: (response or None, errors, status)."""
    errors, status = {}, 200
    if form.validate_on_submit():
        values = {name: getattr(form, name).data for name in
                  ("academic_year", "semester", *records.TERM_DATE_FIELDS)}
        try:
            saved, warnings = records.save_term(current_tenant(), current_actor(), values, term=term)
        except AppError as failed:
            db.session.rollback()
            errors = failed.details or {"academic_year": str(failed.message)}
            status = failed.status
        else:
            db.session.commit()
            flash(_("%(term)s was saved.", term=format_term(saved.academic_year, saved.semester)), "success")
            for warning in warnings:
                flash(warning, "warning")
            return redirect(url_for("academics.terms")), errors, status
    elif request.method == "POST":
        status = 400
    return None, errors, status


@bp.route("/terms/new", methods=["GET", "POST"])
@permission_required("roster.edit")
def term_new():
    permissions.require(current_actor(), "roster.edit")
    year, semester = records.current_term_key(current_tenant())
    form = TermForm(data={"academic_year": year, "semester": semester} if request.method == "GET" else None)
    response, errors, status = _save_term(form, None)
    if response is not None:
        return response
    return render_template("academics/term_form.html", form=form, term=None, errors=errors), status


@bp.route("/terms/<term_id>", methods=["GET", "POST"])
@permission_required("roster.edit")
def term_edit(term_id):
    term = get_scoped_or_404(Term, term_id)
    permissions.require(current_actor(), "roster.edit")
    form = TermForm(obj=term)
    response, errors, status = _save_term(form, term)
    if response is not None:
        return response
    return render_template("academics/term_form.html", form=form, term=term, errors=errors), status


# --- imports -----------------------------------------------------------------------------------

def _kind_or_404(kind: str) -> imports.ImportKind:
    spec = imports.KINDS.get(kind)
    if spec is None:
        abort(404)
    permissions.require(current_actor(), spec.permission)
    return spec


def _recent_imports(actor, kind: str | None = None, limit: int = 20) -> list[Job]:
    jobs = db.session.scalars(scoped_select(Job).where(Job.created_by_id == actor.id, Job.kind == imports.JOB_KIND)
                              .order_by(Job.created_at.desc()).limit(100))
    return [j for j in jobs if kind is None or (j.args or {}).get("kind") == kind][:limit]


@bp.route("/imports")
@login_required
def imports_index():
    actor = current_actor()
    kinds = imports.kinds_for(actor)
    if not kinds:
        abort(403)
    return render_template("academics/imports.html", kinds=kinds, jobs=_recent_imports(actor),
                           policy=imports.policy_lines())


@bp.route("/imports/<kind>", methods=["GET", "POST"])
@csrf.exempt  # the form checks its own CSRF token, after the upload's size cap is set below
@login_required
def import_upload(kind):
    spec = _kind_or_404(kind)
    actor = current_actor()
    # An admin's roster file is small: refuse a larger body before it is read (413), not after.
    request.max_content_length = imports.MAX_BYTES + 256 * 1024
    errors, status = {}, 200
    try:
        form = UploadForm()
        submitted = form.validate_on_submit()
    except RequestEntityTooLarge:
        form, submitted = UploadForm(formdata=None), False
        errors, status = {"file": _("The file is larger than %(mb)s MB; split it into smaller files.",
                                    mb=imports.MAX_BYTES // 2**20)}, 413
    if submitted:
        upload = form.file.data
        data = upload.read(imports.MAX_BYTES + 1)
        try:
            job = imports.start_import(current_tenant(), actor, spec, data, upload.filename, str(get_locale()))
        except AppError as failed:
            db.session.rollback()
            errors, status = failed.details, failed.status
        else:
            db.session.commit()
            return redirect(url_for("academics.import_report", job_id=job.id))
    elif request.method == "POST" and not errors:
        status = 400
    return render_template("academics/import_upload.html", kind=spec, form=form, errors=errors,
                           jobs=_recent_imports(actor, spec.key), policy=imports.policy_lines(),
                           max_mb=imports.MAX_BYTES // 2**20, max_rows=imports.MAX_ROWS), status


@bp.route("/imports/<kind>/template.xlsx")
@login_required
def import_template(kind):
    spec = _kind_or_404(kind)
    data = imports.template_xlsx(spec, is_english())
    return send_file(io.BytesIO(data), as_attachment=True, download_name=f"lp-import-{spec.key}.xlsx",
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@bp.route("/imports/jobs/<job_id>")
@login_required
def import_report(job_id):
    job = get_scoped_or_404(Job, job_id)
    if job.kind != imports.JOB_KIND or not visible_to(current_actor(), job):
        abort(404)
    spec = imports.KINDS.get((job.args or {}).get("kind"))
    labels = {c.key: (c.key if is_english() else c.zh) for c in spec.columns} if spec else {}
    labels["row"] = _("Row")
    labels["file"] = _("File")
    return render_template("academics/import_report.html", job=job, kind=spec, report=job.result or {},
                           labels=labels)
