"""Pages of the records school units keep and students check: registration records (註冊組), cadre
roles (訓育組), clubs (社團組), attendance (生輔組), the semester's confirmation, grades, course
counseling (課程諮詢教師) and elective choices (教學組).

Thin views: load the target through the scoped helpers, ask ``permissions`` (scope: own, child,
class, course, school), call ``records.services``, commit, render. Every page that shows a
student's personal data records a ``student.record.read`` audit event per student shown. Lists cost a
fixed number of queries whatever the number of students.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, HiddenField, SelectChoice, SelectField, StringField, SubmitField, TextAreaField

from lp_saas.academics.models import ClassMembership, Course, SchoolClass, StudentRecord
from lp_saas.accounts.auth import current_actor
from lp_saas.accounts.forms import ConfirmForm
from lp_saas.accounts.models import User
from lp_saas.database import db
from lp_saas.errors import AppError, ValidationFailed
from lp_saas.forms import Form
from lp_saas.records import services
from lp_saas.records.models import CadreRole, ClubRecord, CounselingRecord, DataConfirmation, ElectiveChoice
from lp_saas.roles import permissions
from lp_saas.roles.permissions import login_required, permission_required
from lp_saas.tenants.context import current_tenant
from lp_saas.tenants.resolver import get_scoped_or_404, require_school

bp = Blueprint("records", __name__, url_prefix="/records")
bp.before_request(require_school)


@bp.context_processor
def _labels():
    return {"area_labels": services.AREA_LABELS, "level_labels": services.CADRE_LEVEL_LABELS,
            "elective_labels": services.ELECTIVE_STATUS_LABELS}

#: What lets someone open a student's records page at all (each section asks for its own).
STUDENT_PAGE_PERMISSIONS = ("basic_data.view", "basic_data.edit", "cadre_roles.edit", "clubs.edit",
                            "attendance.edit", "grades.view", "counseling.view", "counseling.edit")
#: The areas of the class page: who sees them, who adds to them.
CLASS_AREAS = {
    "cadre_roles": (("basic_data.view", "cadre_roles.edit"), "cadre_roles.edit"),
    "clubs": (("basic_data.view", "clubs.edit"), "clubs.edit"),
    "attendance": (("basic_data.view", "attendance.edit"), "attendance.edit"),
    "grades": (("grades.view",), None),
}
SEMESTER_CHOICES = [SelectChoice("1"), SelectChoice("2")]


# --- forms (raw values; the services validate them, so pages and imports say the same) --------------

class TermFieldsMixin:
    academic_year = StringField(_l("Academic year (ROC)"))
    semester = SelectField(_l("Semester"), choices=SEMESTER_CHOICES)


class CadreForm(TermFieldsMixin, Form):
    student_id = SelectField(_l("Student"), choices=[], validate_choice=False)
    level = SelectField(_l("Level"), choices=[SelectChoice(k) for k in services.CADRE_LEVELS])
    unit = StringField(_l("Unit (class or club)"))
    title = StringField(_l("Title"))
    submit = SubmitField(_l("Add cadre role"))


class ClubForm(TermFieldsMixin, Form):
    student_id = SelectField(_l("Student"), choices=[], validate_choice=False)
    club = StringField(_l("Club"))
    role = StringField(_l("Role in the club"))
    submit = SubmitField(_l("Add club record"))


class AttendanceForm(TermFieldsMixin, Form):
    student_id = SelectField(_l("Student"), choices=[], validate_choice=False)
    school_days = StringField(_l("School days"))
    absences = StringField(_l("Unexcused absences (periods)"))
    sick_leave = StringField(_l("Sick leave (periods)"))
    personal_leave = StringField(_l("Personal leave (periods)"))
    submit = SubmitField(_l("Save attendance"))


class RegistrationForm(Form):
    national_id = StringField(_l("National ID or resident certificate number"))
    birth_date = StringField(_l("Birth date (2008-05-01 or 97/05/01)"))
    gender = SelectField(_l("Gender"), choices=[SelectChoice("", "—"), SelectChoice("M", _l("Male")),
                                                SelectChoice("F", _l("Female"))],
                         validate_choice=False)  # records.services allow-lists it, with the import's message
    admission_year = StringField(_l("Academic year of admission (ROC)"))
    department = StringField(_l("Department or programme"))
    guardian_name = StringField(_l("Guardian"))
    guardian_phone = StringField(_l("Guardian's phone"))
    address = StringField(_l("Mailing address"))
    guest_student = BooleanField(_l("Guest student (借讀)"))
    transferred_in = BooleanField(_l("Transferred in (轉學轉科)"))
    submit = SubmitField(_l("Save"))


class CounselingForm(Form):
    held_on = StringField(_l("Date"))
    held_at = StringField(_l("Time"))
    place = StringField(_l("Place"))
    content = TextAreaField(_l("Content of the counseling"))
    advice = TextAreaField(_l("Advice"))
    submit = SubmitField(_l("Save"))


class AnswerForm(Form):
    area = HiddenField()
    note = TextAreaField(_l("What should be corrected"))
    confirm = SubmitField(_l("Confirm: this is correct"))
    correct = SubmitField(_l("Ask for a correction"))


class ResolveForm(Form):
    resolution = TextAreaField(_l("Answer"))
    submit = SubmitField(_l("Mark as resolved"))


class ElectiveForm(Form):
    student_no = StringField(_l("Student number"))
    preference = StringField(_l("Preference"))
    status = SelectField(_l("Status"), choices=[SelectChoice(k) for k in services.ELECTIVE_STATUSES])
    submit = SubmitField(_l("Save elective choice"))


UNIT_FORMS = {"cadre_roles": CadreForm, "clubs": ClubForm, "attendance": AttendanceForm}
UNIT_SERVICES = {"cadre_roles": services.add_cadre_role, "clubs": services.add_club_record,
                 "attendance": services.save_attendance}


def _label_choices(form) -> None:
    """Translated labels for the choice lists (the values stay the allow-listed keys)."""
    if hasattr(form, "level"):
        form.level.choices = [SelectChoice(k, str(services.CADRE_LEVEL_LABELS[k])) for k in services.CADRE_LEVELS]
    if hasattr(form, "status") and isinstance(form, ElectiveForm):
        form.status.choices = [SelectChoice(k, str(services.ELECTIVE_STATUS_LABELS[k]))
                              for k in services.ELECTIVE_STATUSES]


def _unit_form(area: str, term: tuple[int, int], students=None):
    form_class = UNIT_FORMS[area]
    form = form_class(prefix=area, data={"academic_year": str(term[0]), "semester": str(term[1])}
                      if request.method == "GET" else None)
    _label_choices(form)
    if students is not None:
        form.student_id.choices = [SelectChoice(str(s.id), f"{s.student_no or ''} {s.display_name}") for s in students]
    return form


def _raw(form, *names) -> dict:
    return {name: getattr(form, name).data for name in names}


def _prefixed(errors: dict, prefix: str) -> dict:
    return {f"{prefix}-{key}": value for key, value in errors.items()}


def _term_args() -> tuple[int, int]:
    """The term chosen in the query string (?year=113&semester=1), else the current one. 422 if bad."""
    default = services.current_term_key(current_tenant())
    if "year" not in request.args and "semester" not in request.args:
        return default
    errors: dict[str, str] = {}
    year, semester = services.parse_term({"academic_year": request.args.get("year"),
                                          "semester": request.args.get("semester", str(default[1]))}, errors)
    if errors:
        raise ValidationFailed({("year" if k == "academic_year" else k): v for k, v in errors.items()})
    return year, semester


def _render_then_commit(template: str, **context) -> str:
    """Render a page, then commit its audit events. Committing first would expire every row the
    template shows, and reloading them would cost a query per row."""
    html = render_template(template, **context)
    db.session.commit()
    return html


# --- students -------------------------------------------------------------------------------------

def _held(actor, perms) -> tuple[str, ...]:
    held = tuple(p for p in perms if permissions.has(actor, p))
    if not held:
        abort(403)
    return held


@bp.route("/students")
@login_required
def students():
    tenant = current_tenant()
    actor = current_actor()
    held = _held(actor, STUDENT_PAGE_PERMISSIONS)
    q = (request.args.get("q") or "").strip()[:64]
    query = services.students_select(tenant).where(services.scope_filter(actor, held, User.id))
    if q:
        query = query.where(sa.or_(User.student_no.contains(q, autoescape=True),
                                   User.display_name.contains(q, autoescape=True),
                                   User.username.contains(q, autoescape=True)))
    people = list(db.session.scalars(query.order_by(User.student_no, User.username).limit(200)))
    if len(people) == 1 and people[0].id == actor.id and not q:
        return redirect(url_for("records.student", student_id=actor.id))
    year = services.current_term_key(tenant)[0]
    return render_template("records/students.html", people=people, q=q,
                           classes=services.classes_of(tenant, [p.id for p in people], year))


def _student_context(tenant, actor, student, term) -> dict:
    """Everything the student page shows, each section only with its permission (fixed queries)."""
    def may(*perms):
        return any(permissions.can(actor, p, student_id=student.id) for p in perms)

    sections = []
    context = {"student": student, "term": term}
    if may("basic_data.view", "basic_data.edit"):
        sections.append("registration")
        context["record"] = db.session.get(StudentRecord, (tenant.id, student.id))
        context["confirmations"] = services.confirmations_for(tenant, student.id, *term)
    for area in ("cadre_roles", "clubs", "attendance"):
        if may("basic_data.view", services.AREA_PERMISSIONS[area]):
            sections.append(area)
            context[area] = services.unit_records(tenant, area, [student.id])[student.id]
    if may("grades.view"):
        sections.append("grades")
        context["grades"] = services.grades_of(tenant, [student.id])
        context["electives"] = services.electives_of(tenant, [student.id])
    if may("counseling.view", "counseling.edit"):
        sections.append("counseling")
        context["counseling"] = services.counseling_of(tenant, student.id)
    context["sections"] = sections
    context["school_class"] = services.classes_of(tenant, [student.id], term[0]).get(student.id)
    return context


@bp.route("/students/<student_id>", methods=["GET", "POST"])
@login_required
def student(student_id):
    tenant = current_tenant()
    actor = current_actor()
    student = services.load_student(actor, student_id, *STUDENT_PAGE_PERMISSIONS)
    term = services.current_term_key(tenant)
    forms = {area: _unit_form(area, term) for area in UNIT_FORMS
             if permissions.can(actor, services.AREA_PERMISSIONS[area], student_id=student.id)}
    errors, status = {}, 200
    if request.method == "POST":
        area = next((a for a, f in forms.items() if f.submit.data), None)
        if area is None:
            for other in UNIT_FORMS:
                if request.form.get(f"{other}-submit"):  # an area this user may not change for this student
                    permissions.require(actor, services.AREA_PERMISSIONS[other], student_id=student.id)
            errors, status = {"form": _("The form was not complete or has expired; please try again.")}, 400
        elif not forms[area].validate():
            errors, status = {"form": _("The form was not complete or has expired; please try again.")}, 400
        else:
            form = forms[area]
            names = [n for n in form._fields if n not in ("csrf_token", "submit", "student_id")]
            try:
                outcome = UNIT_SERVICES[area](tenant, actor, student.id, _raw(form, *names))
            except ValidationFailed as failed:
                db.session.rollback()
                errors, status = _prefixed(failed.details, area), 422
            else:
                db.session.commit()
                created = outcome[1] if isinstance(outcome[1], bool) else outcome[1] != "unchanged"
                flash(_("Saved.") if created else _("This was already recorded."), "success" if created else "info")
                return redirect(url_for("records.student", student_id=student.id) + f"#{area}")
    context = _student_context(tenant, actor, student, term)
    services.audit_reads(tenant, actor, [student.id], context["sections"], via="student_page")
    return _render_then_commit("records/student.html", forms=forms, errors=errors, **context), status


@bp.route("/students/<student_id>/registration", methods=["GET", "POST"])
@login_required
def registration_edit(student_id):
    tenant = current_tenant()
    actor = current_actor()
    student = services.load_student(actor, student_id, "basic_data.edit")
    record = services.read_record(tenant, actor, student)
    form = RegistrationForm()
    if request.method == "GET" and record is not None:
        for name in services.RECORD_FIELDS:
            value = getattr(record, name)
            getattr(form, name).data = value.isoformat() if hasattr(value, "isoformat") else value
    errors, status = {}, 200
    if form.validate_on_submit():
        try:
            changed = services.update_record(tenant, actor, student, _raw(form, *services.RECORD_FIELDS))
        except ValidationFailed as failed:
            db.session.rollback()
            services.read_record(tenant, actor, student)  # the rolled-back read is still a read
            errors, status = failed.details, 422
        else:
            db.session.commit()
            flash(_("The registration record was saved.") if changed else _("Nothing was changed."), "success")
            return redirect(url_for("records.student", student_id=student.id))
    elif request.method == "POST":
        status = 400
    return _render_then_commit("records/registration_form.html", student=student, form=form, errors=errors), status


@bp.route("/students/<student_id>/cadre-roles/<row_id>/delete", methods=["POST"])
@login_required
def delete_cadre_role(student_id, row_id):
    return _delete_row(student_id, "cadre_roles", row_id)


@bp.route("/students/<student_id>/clubs/<row_id>/delete", methods=["POST"])
@login_required
def delete_club_record(student_id, row_id):
    return _delete_row(student_id, "clubs", row_id)


def _delete_row(student_id, area, row_id):
    tenant = current_tenant()
    actor = current_actor()
    student = services.load_student(actor, student_id, services.AREA_PERMISSIONS[area])
    row = get_scoped_or_404(CadreRole if area == "cadre_roles" else ClubRecord, row_id)
    if row.student_id != student.id:
        abort(404)
    permissions.require(actor, services.AREA_PERMISSIONS[area], student_id=student.id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    services.delete_unit_record(tenant, actor, row)
    db.session.commit()
    flash(_("Removed."), "success")
    return redirect(url_for("records.student", student_id=student.id) + f"#{area}")


# --- course counseling -----------------------------------------------------------------------------

def _counseling_form(record: CounselingRecord | None = None) -> CounselingForm:
    form = CounselingForm()
    if request.method == "GET" and record is not None:
        form.held_on.data = record.held_on.isoformat()
        form.held_at.data = record.held_at.strftime("%H:%M") if record.held_at else ""
        form.place.data, form.content.data, form.advice.data = record.place, record.content, record.advice
    return form


def _save_counseling(tenant, actor, student, form, record=None):
    """(redirect or None, errors, status) of a counseling form's POST."""
    if form.validate_on_submit():
        permissions.require(actor, "counseling.edit", student_id=student.id)
        try:
            services.save_counseling(tenant, actor, student.id,
                                     _raw(form, "held_on", "held_at", "place", "content", "advice"), record=record)
        except ValidationFailed as failed:
            db.session.rollback()
            return None, failed.details, 422
        db.session.commit()
        flash(_("The counseling record was saved."), "success")
        return redirect(url_for("records.counseling", student_id=student.id)), {}, 200
    if request.method == "POST":
        return None, {}, 400
    return None, {}, 200


@bp.route("/students/<student_id>/counseling", methods=["GET", "POST"])
@login_required
def counseling(student_id):
    tenant = current_tenant()
    actor = current_actor()
    student = services.load_student(actor, student_id, "counseling.view", "counseling.edit")
    may_edit = permissions.can(actor, "counseling.edit", student_id=student.id)
    if request.method == "POST" and not may_edit:
        abort(404)
    form = _counseling_form()
    response, errors, status = _save_counseling(tenant, actor, student, form)
    if response is not None:
        return response
    rows = services.counseling_of(tenant, student.id)
    services.audit_reads(tenant, actor, [student.id], ["counseling"], via="counseling_page")
    return _render_then_commit("records/counseling.html", student=student, rows=rows,
                               form=form if may_edit else None, errors=errors, record=None), status


@bp.route("/students/<student_id>/counseling/<record_id>", methods=["GET", "POST"])
@login_required
def counseling_edit(student_id, record_id):
    tenant = current_tenant()
    actor = current_actor()
    student = services.load_student(actor, student_id, "counseling.edit")
    record = get_scoped_or_404(CounselingRecord, record_id)
    if record.student_id != student.id:
        abort(404)
    form = _counseling_form(record)
    response, errors, status = _save_counseling(tenant, actor, student, form, record)
    if response is not None:
        return response
    services.audit_reads(tenant, actor, [student.id], ["counseling"], via="counseling_page")
    return _render_then_commit("records/counseling.html", student=student, rows=None, form=form, errors=errors,
                               record=record), status


# --- classes ------------------------------------------------------------------------------------

@bp.route("/classes")
@login_required
def classes():
    tenant = current_tenant()
    actor = current_actor()
    perms = tuple(sorted({p for view, _edit in CLASS_AREAS.values() for p in view}
                         | {e for _view, e in CLASS_AREAS.values() if e}))
    held = _held(actor, perms)
    year, _semester = _term_args()
    members = (sa.select(sa.func.count()).select_from(ClassMembership)
               .where(ClassMembership.tenant_id == SchoolClass.tenant_id, ClassMembership.class_id == SchoolClass.id)
               .scalar_subquery())
    homeroom = aliased(User)
    query = (sa.select(SchoolClass, homeroom.display_name, members)
             .outerjoin(homeroom, sa.and_(homeroom.tenant_id == SchoolClass.tenant_id,
                                          homeroom.id == SchoolClass.homeroom_teacher_id))
             .where(SchoolClass.tenant_id == tenant.id, SchoolClass.academic_year == year))
    if not any(permissions.has_school_wide(actor, p) for p in held):
        query = query.where(SchoolClass.id.in_(
            sa.select(ClassMembership.class_id).where(ClassMembership.tenant_id == tenant.id,
                                                      services.scope_filter(actor, held, ClassMembership.student_id))))
    rows = list(db.session.execute(query.order_by(SchoolClass.grade, SchoolClass.name)))
    return render_template("records/classes.html", rows=rows, year=year)


@bp.route("/classes/<class_id>", methods=["GET", "POST"])
@login_required
def class_records(class_id):
    tenant = current_tenant()
    actor = current_actor()
    school_class = get_scoped_or_404(SchoolClass, class_id)
    area = request.args.get("area", "cadre_roles")
    if area not in CLASS_AREAS:
        abort(404)
    view_perms, edit_perm = CLASS_AREAS[area]
    held = _held(actor, view_perms + ((edit_perm,) if edit_perm else ()))
    term = _term_args()
    people = list(db.session.scalars(
        sa.select(User).join(ClassMembership, sa.and_(ClassMembership.tenant_id == User.tenant_id,
                                                      ClassMembership.student_id == User.id))
        .where(User.tenant_id == tenant.id, ClassMembership.class_id == school_class.id,
               services.scope_filter(actor, held, ClassMembership.student_id))
        .order_by(User.student_no, User.username)))
    if not people and not any(permissions.has_school_wide(actor, p) for p in held):
        abort(404)  # someone else's class: not even its existence is confirmed
    ids = [p.id for p in people]
    editable = [p for p in people if edit_perm and permissions.can(actor, edit_perm, student_id=p.id)]
    form = _unit_form(area, term, editable) if editable else None
    errors, status = {}, 200
    if request.method == "POST":
        if form is None:
            abort(403)
        if not form.validate():
            errors, status = {"form": _("The form was not complete or has expired; please try again.")}, 400
        else:
            target = next((p for p in editable if str(p.id) == form.student_id.data), None)
            if target is None:
                errors, status = {f"{area}-student_id": _("Choose a student of this class.")}, 422
            else:
                names = [n for n in form._fields if n not in ("csrf_token", "submit", "student_id")]
                try:
                    UNIT_SERVICES[area](tenant, actor, target.id, _raw(form, *names))
                except ValidationFailed as failed:
                    db.session.rollback()
                    errors, status = _prefixed(failed.details, area), 422
                else:
                    db.session.commit()
                    flash(_("Saved."), "success")
                    return redirect(url_for("records.class_records", class_id=school_class.id, area=area,
                                            year=term[0], semester=term[1]))
    if area == "grades":
        rows = {}
        for grade, course in services.grades_of(tenant, ids, *term):
            rows.setdefault(grade.student_id, []).append((grade, course))
    else:
        rows = services.unit_records(tenant, area, ids, *term)
    services.audit_reads(tenant, actor, ids, [area], via="class_page", term=f"{term[0]}-{term[1]}")
    return _render_then_commit("records/class.html", school_class=school_class, area=area, people=people,
                               rows=rows, term=term, form=form, errors=errors, areas=list(CLASS_AREAS)), status


# --- the semester's confirmation -------------------------------------------------------------------

@bp.route("/confirm", methods=["GET", "POST"])
@permission_required("basic_data.confirm")
def confirm():
    tenant = current_tenant()
    actor = current_actor()
    permissions.require(actor, "basic_data.confirm", student_id=actor.id)
    term = services.current_term_key(tenant)
    form = AnswerForm()
    errors, status, error_area = {}, 200, None
    if form.validate_on_submit():
        error_area = form.area.data
        try:
            services.answer_area(tenant, actor, form.area.data, *term, correction=bool(form.correct.data),
                                 note=form.note.data)
        except AppError as failed:
            db.session.rollback()
            errors = failed.details or {"note": str(failed.message)}
            status = failed.status
        else:
            db.session.commit()
            flash(_("Your request was sent to the school.") if form.correct.data else _("Thank you for confirming."),
                  "success")
            return redirect(url_for("records.confirm"))
    elif request.method == "POST":
        status = 400
    data = {
        "record": db.session.get(StudentRecord, (tenant.id, actor.id)),
        "grades": services.grades_of(tenant, [actor.id], *term),
        **{area: services.unit_records(tenant, area, [actor.id], *term)[actor.id]
           for area in ("cadre_roles", "clubs", "attendance")},
    }
    services.audit_reads(tenant, actor, [actor.id], list(services.AREAS), via="confirmation_page")
    return _render_then_commit("records/confirm.html", term=term, data=data, errors=errors, error_area=error_area,
                               answers=services.confirmations_for(tenant, actor.id, *term),
                               form=form), status


@bp.route("/corrections")
@login_required
def corrections():
    return _corrections_page({}, 200, None)


def _corrections_page(errors, status, error_id):
    tenant = current_tenant()
    actor = current_actor()
    _held(actor, tuple(services.AREA_PERMISSIONS.values()))
    open_rows = services.corrections_for(tenant, actor)
    resolved = services.corrections_for(tenant, actor, status="resolved", limit=20)
    ids = [c.student_id for c, _student in open_rows + resolved]
    year = services.current_term_key(tenant)[0]
    services.audit_reads(tenant, actor, ids, ["corrections"], via="corrections_page")
    return _render_then_commit("records/corrections.html", open_rows=open_rows, resolved=resolved, errors=errors,
                               error_id=error_id, form=ResolveForm(formdata=None),
                               classes=services.classes_of(tenant, ids, year)), status


@bp.route("/corrections/<confirmation_id>", methods=["POST"])
@login_required
def resolve(confirmation_id):
    tenant = current_tenant()
    actor = current_actor()
    row = get_scoped_or_404(DataConfirmation, confirmation_id)
    permissions.require(actor, services.AREA_PERMISSIONS[row.area], student_id=row.student_id)
    form = ResolveForm()
    if not form.validate_on_submit():
        return _corrections_page({"form": _("The form was not complete or has expired; please try again.")}, 400,
                                 row.id)
    try:
        services.resolve_correction(tenant, actor, row, form.resolution.data)
    except AppError as failed:
        db.session.rollback()
        return _corrections_page(failed.details or {"resolution": str(failed.message)}, failed.status, row.id)
    db.session.commit()
    flash(_("The request was marked as resolved."), "success")
    return redirect(url_for("records.corrections"))


# --- elective choices (教學組) ----------------------------------------------------------------------

@bp.route("/courses")
@permission_required("course_selection.edit")
def courses():
    tenant = current_tenant()
    permissions.require(current_actor(), "course_selection.edit")
    term = _term_args()
    chosen = (sa.select(sa.func.count()).select_from(ElectiveChoice)
              .where(ElectiveChoice.tenant_id == Course.tenant_id, ElectiveChoice.course_id == Course.id)
              .scalar_subquery())
    rows = list(db.session.execute(
        sa.select(Course, chosen).where(Course.tenant_id == tenant.id, Course.academic_year == term[0],
                                        Course.semester == term[1]).order_by(Course.code)))
    return render_template("records/courses.html", rows=rows, term=term)


@bp.route("/courses/<course_id>/electives", methods=["GET", "POST"])
@permission_required("course_selection.edit")
def electives(course_id):
    tenant = current_tenant()
    actor = current_actor()
    course = get_scoped_or_404(Course, course_id)
    permissions.require(actor, "course_selection.edit")
    form = ElectiveForm()
    _label_choices(form)
    errors, status = {}, 200
    if form.validate_on_submit():
        student = services.student_by_number(tenant, form.student_no.data)
        if student is None or not services.is_student(student):
            errors, status = {"student_no": _("No student of this school has this student number.")}, 422
        else:
            permissions.require(actor, "course_selection.edit", student_id=student.id)  # sealed graduates
            try:
                services.save_elective(tenant, actor, course, student.id, _raw(form, "preference", "status"))
            except ValidationFailed as failed:
                db.session.rollback()
                errors, status = failed.details, 422
            else:
                db.session.commit()
                flash(_("Saved."), "success")
                return redirect(url_for("records.electives", course_id=course.id))
    elif request.method == "POST":
        status = 400
    rows = services.electives_of_course(tenant, course)
    services.audit_reads(tenant, actor, [c.student_id for c, _s in rows], ["electives"], via="course_page")
    return _render_then_commit("records/electives.html", course=course, rows=rows, form=form,
                               errors=errors), status


@bp.route("/courses/<course_id>/electives/<student_id>/delete", methods=["POST"])
@permission_required("course_selection.edit")
def elective_delete(course_id, student_id):
    tenant = current_tenant()
    actor = current_actor()
    course = get_scoped_or_404(Course, course_id)
    permissions.require(actor, "course_selection.edit")
    student = get_scoped_or_404(User, student_id)
    choice = db.session.get(ElectiveChoice, (tenant.id, student.id, course.id))
    if choice is None:
        abort(404)
    permissions.require(actor, "course_selection.edit", student_id=student.id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    services.delete_elective(tenant, actor, choice)
    db.session.commit()
    flash(_("Removed."), "success")
    return redirect(url_for("records.electives", course_id=course.id))


@bp.route("/")
@login_required
def index():
    """The records entry: a student's own page, or the list of students the user may see."""
    actor = current_actor()
    if permissions.can(actor, "basic_data.confirm", student_id=actor.id) and services.is_student(actor):
        return redirect(url_for("records.student", student_id=actor.id))
    return redirect(url_for("records.students"))

