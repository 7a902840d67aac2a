"""Governance pages on the school's host (permission ``governance.edit``): the working group, its
meetings with their minutes and the rule-set versions they adopted, and trainings — with the same
compliance figures a regional office sees."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from lp_saas import clock
from lp_saas.accounts.auth import current_actor
from lp_saas.accounts.forms import ConfirmForm
from lp_saas.database import db
from lp_saas.errors import ValidationFailed
from lp_saas.governance import services
from lp_saas.governance.forms import MeetingForm, MemberForm, TrainingForm
from lp_saas.governance.models import AUDIENCES, GROUP_ROLES, MEETING_KINDS, Meeting, Training, WorkingGroupMember
from lp_saas.i18n import academic_term
from lp_saas.platform.oversight import iso_roc_date, school_figures, year_bounds
from lp_saas.roles.permissions import permission_required
from lp_saas.storage import get_storage
from lp_saas.tenants.context import current_tenant
from lp_saas.tenants.resolver import get_scoped_or_404, require_school
from lp_saas.tenants.rulesets import parse_day

bp = Blueprint("governance", __name__, url_prefix="/governance")
bp.before_request(require_school)
bp.add_app_template_filter(iso_roc_date, "iso_roc_date")


@bp.context_processor
def _labels():
    return {"group_role_labels": services.GROUP_ROLE_LABELS, "meeting_kind_labels": services.MEETING_KIND_LABELS,
            "audience_labels": services.AUDIENCE_LABELS}


def _member_form():
    form = MemberForm(prefix="member")
    form.group_role.choices = [(k, str(services.GROUP_ROLE_LABELS[k])) for k in GROUP_ROLES]
    return form


def _training_form():
    form = TrainingForm(prefix="training")
    form.audience.choices = [(k, str(services.AUDIENCE_LABELS[k])) for k in AUDIENCES]
    return form


def _overview(member_form=None, training_form=None, errors=None, status=200):
    tenant = current_tenant()
    academic_year, _semester = academic_term(clock.today())
    figures = school_figures(tenant)
    return render_template(
        "governance/overview.html", figures=figures, members=services.members(tenant.id),
        meetings=services.meetings(tenant.id),
        trainings=services.trainings(tenant.id, since=year_bounds(academic_year - 1)[0]),
        member_form=member_form or _member_form(), training_form=training_form or _training_form(),
        confirm=ConfirmForm(), errors=errors or {}), status


@bp.route("")
@permission_required("governance.edit")
def overview():
    return _overview()


@bp.route("/members", methods=["POST"])
@permission_required("governance.edit")
def add_member():
    form = _member_form()
    if not form.validate_on_submit():
        return _overview(member_form=form, errors={"form": _("The form was not complete or has expired; please try again.")},
                         status=400)
    try:
        services.add_member(current_tenant(), current_actor(), name=form.name.data, title=form.title.data,
                            group_role=form.group_role.data)
    except ValidationFailed as failed:
        db.session.rollback()
        return _overview(member_form=form, errors={f"member-{k}": v for k, v in failed.details.items()}, status=422)
    db.session.commit()
    flash(_("The member was added to the working group."), "success")
    return redirect(url_for("governance.overview") + "#members")


@bp.route("/members/<member_id>/delete", methods=["POST"])
@permission_required("governance.edit")
def delete_member(member_id):
    member = get_scoped_or_404(WorkingGroupMember, member_id)
    if ConfirmForm().validate_on_submit():
        services.remove_member(current_tenant(), current_actor(), member)
        db.session.commit()
        flash(_("The member was removed from the working group."), "success")
    return redirect(url_for("governance.overview") + "#members")


@bp.route("/meetings/new", methods=["GET", "POST"])
@permission_required("governance.edit")
def new_meeting():
    tenant = current_tenant()
    form = MeetingForm()
    form.kind.choices = [(k, str(services.MEETING_KIND_LABELS[k])) for k in MEETING_KINDS]
    versions = services.linkable_rule_sets(tenant.id)
    form.rule_sets.choices = [(str(r.id), r.version) for r in versions]
    errors, status = {}, 200
    if form.validate_on_submit():
        upload = request.files.get(form.minutes.name)
        minutes = None
        if upload is not None and upload.filename:
            minutes = (upload.filename, upload.stream.read(services.MINUTES_MAX_BYTES + 1))
        meeting = None
        try:
            meeting = services.add_meeting(tenant, current_actor(), held_on=parse_day(form.held_on.data),
                                           kind=form.kind.data, title=form.title.data,
                                           rule_set_ids=form.rule_sets.data or (), minutes=minutes)
            db.session.commit()
        except ValidationFailed as failed:
            db.session.rollback()
            errors, status = failed.details, 422
        except Exception:
            db.session.rollback()
            services.discard_minutes(tenant, meeting)
            raise
        else:
            flash(_("The meeting was recorded."), "success")
            return redirect(url_for("governance.overview") + "#meetings")
    elif request.method == "POST":
        status = 400
    if request.method == "GET" and not form.held_on.data:
        form.held_on.data = clock.today().isoformat()
    return render_template("governance/meeting_new.html", form=form, errors=errors, versions=versions), status


@bp.route("/meetings/<meeting_id>/minutes")
@permission_required("governance.edit")
def minutes(meeting_id):
    meeting = get_scoped_or_404(Meeting, meeting_id)
    if not meeting.minutes_key:
        abort(404)
    url = get_storage().presign_download(current_tenant().bucket, meeting.minutes_key,
                                         filename=meeting.minutes_filename or "minutes.pdf",
                                         content_type="application/pdf")
    return redirect(url)


@bp.route("/meetings/<meeting_id>/delete", methods=["POST"])
@permission_required("governance.edit")
def delete_meeting(meeting_id):
    tenant = current_tenant()
    meeting = get_scoped_or_404(Meeting, meeting_id)
    if ConfirmForm().validate_on_submit():
        key = services.delete_meeting(tenant, current_actor(), meeting)
        db.session.commit()
        if key:
            get_storage().delete_object(tenant.bucket, key)
        flash(_("The meeting record was deleted."), "success")
    return redirect(url_for("governance.overview") + "#meetings")


def _int_or_none(value) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() and len(value) <= 6 else None


@bp.route("/trainings", methods=["POST"])
@permission_required("governance.edit")
def add_training():
    form = _training_form()
    if not form.validate_on_submit():
        return _overview(training_form=form, errors={"form": _("The form was not complete or has expired; please try again.")},
                         status=400)
    try:
        services.add_training(current_tenant(), current_actor(), audience=form.audience.data,
                              held_on=parse_day(form.held_on.data), unit=form.unit.data, title=form.title.data,
                              attendees=_int_or_none(form.attendees.data))
    except ValidationFailed as failed:
        db.session.rollback()
        return _overview(training_form=form, errors={f"training-{k}": v for k, v in failed.details.items()},
                         status=422)
    db.session.commit()
    flash(_("The training was recorded."), "success")
    return redirect(url_for("governance.overview") + "#trainings")


@bp.route("/trainings/<training_id>/delete", methods=["POST"])
@permission_required("governance.edit")
def delete_training(training_id):
    training = get_scoped_or_404(Training, training_id)
    if ConfirmForm().validate_on_submit():
        services.delete_training(current_tenant(), current_actor(), training)
        db.session.commit()
        flash(_("The training record was deleted."), "success")
    return redirect(url_for("governance.overview") + "#trainings")
