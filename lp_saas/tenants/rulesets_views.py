"""The school's supplementary rules (補充規定): the version in force, its history, and amending it."""
from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from lp_saas.accounts.auth import current_actor
from lp_saas.database import db
from lp_saas.errors import ValidationFailed
from lp_saas.roles.permissions import permission_required
from lp_saas.roles.services import roles_of_school
from lp_saas.tenants import rulesets
from lp_saas.tenants.context import current_tenant
from lp_saas.tenants.national import FILE_TYPES, MB, SELECTION_PERIODS, national_rules_on
from lp_saas.tenants.resolver import require_school

bp = Blueprint("rulesets", __name__)
bp.before_request(require_school)

#: Readable names of the rule paths (the amend form's labels, and the changes between versions).
RULE_LABELS = {
    "course_outcomes.upload_cap_per_semester": _l("Course outcomes a student may upload per semester"),
    "course_outcomes.upload_window_days": _l("Course-outcome upload window (days after the semester-end ceremony)"),
    "course_outcomes.certification_deadline_days": _l("Teacher certification deadline (days after the semester-end ceremony)"),
    "course_outcomes.selection_cap": _l("Course outcomes a student may select for the central database"),
    "course_outcomes.selection_period": _l("Selection period for course outcomes"),
    "performances.upload_cap_per_year": _l("Diverse-performance items a student may upload per academic year"),
    "performances.upload_window_days": _l("Diverse-performance upload window (days after the second semester's ceremony)"),
    "performances.selection_cap_per_year": _l("Diverse-performance items a student may select per academic year"),
    "uploads.file_types": _l("Allowed file types and their maximum sizes"),
    "uploads.hyperlinks_allowed": _l("Hyperlinks are accepted as outcomes"),
    "uploads.description_max_chars": _l("Short description: maximum characters"),
    "performance_summary.max_chars": _l("Performance summary: maximum characters"),
    "performance_summary.max_images": _l("Performance summary: maximum images"),
    "graduates.retention_years": _l("Years graduates' data stays sealed before it is deleted"),
    "graduates.sealed_viewer_roles": _l("Roles that may see sealed graduates' data"),
    "staff_departure.policy": _l("When a teacher leaves with certifications pending"),
    "staff_departure.grace_days": _l("Grace period in days"),
    "receipt.confirmation_days": _l("Days students have to confirm receipt"),
    "receipt.paper_letter_for_departed": _l("Students who have left are notified by paper letter"),
    "data_entry.remote_allowed": _l("Staff may enter data from outside the campus network"),
    "data_entry.campus_networks": _l("Campus networks (CIDR, one per line)"),
    "working_group.convener": _l("Convener"),
    "working_group.executive_secretary": _l("Executive secretary"),
    "working_group.members": _l("Members"),
    "working_group.min_meetings_per_semester": _l("Meetings per semester, at least"),
    "trainings": _l("Trainings"),
}

_INT_RE = re.compile(r"^-?\d{1,9}$")


# --- the amend form: request ⇄ form values ⇄ rules --------------------------------------------

def form_from_rules(data: dict) -> dict:
    """The amend form's values (all strings) from a stored rule set."""
    values = {f"rules.{path}": ("" if value is None else str(value))
              for path, value in rulesets.flatten_rules(data).items()
              if not isinstance(value, (list, dict, bool))}
    for path, value in rulesets.flatten_rules(data).items():
        if isinstance(value, bool):
            values[f"rules.{path}"] = "1" if value else ""
    sizes = data.get("uploads", {}).get("file_types", {})
    return {
        "values": values,
        "file_types": {t: (format((Decimal(sizes[t]) / MB).normalize(), "f") if t in sizes else "")
                       for t in FILE_TYPES},
        "sealed_roles": set(data.get("graduates", {}).get("sealed_viewer_roles", [])),
        "networks": "\n".join(data.get("data_entry", {}).get("campus_networks", [])),
        "members": [(m.get("title", ""), str(m.get("count", ""))) for m in
                    data.get("working_group", {}).get("members", [])],
        "trainings": {t.get("audience"): (t.get("unit", ""), str(t.get("min_per_year", "")))
                      for t in data.get("trainings", [])},
        "adopted_on": "", "adopted_by": "", "summary": "",
    }


def form_from_request(form) -> dict:
    """The amend form's values as submitted, to show them again beside their messages."""
    values = {key: form.get(key, "") for key in form if key.startswith("rules.")}
    members = []
    index = 0
    while f"rules.working_group.members.{index}.title" in form:
        members.append((form.get(f"rules.working_group.members.{index}.title", ""),
                        form.get(f"rules.working_group.members.{index}.count", "")))
        index += 1
    return {
        "values": values,
        "file_types": {t: form.get(f"rules.uploads.file_types.{t}", "").strip() for t in FILE_TYPES},
        "sealed_roles": set(form.getlist("rules.graduates.sealed_viewer_roles")),
        "networks": form.get("rules.data_entry.campus_networks", ""),
        "members": members,
        "trainings": {a: (form.get(f"rules.trainings.{a}.unit", ""), form.get(f"rules.trainings.{a}.min_per_year", ""))
                      for a in rulesets.AUDIENCES},
        "adopted_on": form.get("adopted_on", ""),
        "adopted_by": form.get("adopted_by", ""),
        "summary": form.get("summary", ""),
    }


def _number(raw: str):
    """A whole number from a form box; what is not one is passed on as text for the validator to name."""
    raw = (raw or "").strip()
    if raw == "":
        return None
    return int(raw) if _INT_RE.match(raw) else raw


def rules_from_form(model: dict) -> tuple[dict, dict[str, str], dict[int, int]]:
    """(rules data, form-only errors, data member index → form row) from the form's values."""
    v = model["values"]
    errors: dict[str, str] = {}

    def num(path):
        return _number(v.get(f"rules.{path}", ""))

    def flag(path):
        return bool(v.get(f"rules.{path}"))

    file_types = {}
    for file_type in FILE_TYPES:
        raw = model["file_types"][file_type]
        if not raw:
            continue
        try:
            size = (Decimal(raw) * MB).to_integral_value(ROUND_HALF_UP)
            if not size.is_finite():
                raise InvalidOperation
            file_types[file_type] = int(size)
        except (InvalidOperation, ValueError):
            file_types[file_type] = raw  # refused by the validator; the message below replaces its own
            errors[f"rules.uploads.file_types.{file_type}"] = _("Enter the size in MB, such as 4 or 2.5.")
    members, member_rows = [], {}
    for row, (title, count) in enumerate(model["members"]):
        if not title.strip() and not count.strip():
            continue
        member_rows[len(members)] = row
        members.append({"title": title, "count": _number(count)})
    trainings = [{"audience": a, "unit": model["trainings"][a][0], "min_per_year": _number(model["trainings"][a][1])}
                 for a in rulesets.AUDIENCES]
    data = {
        "course_outcomes": {
            "upload_cap_per_semester": num("course_outcomes.upload_cap_per_semester"),
            "upload_window_days": num("course_outcomes.upload_window_days"),
            "certification_deadline_days": num("course_outcomes.certification_deadline_days"),
            "selection_cap": num("course_outcomes.selection_cap"),
            "selection_period": v.get("rules.course_outcomes.selection_period", ""),
        },
        "performances": {
            "upload_cap_per_year": num("performances.upload_cap_per_year"),
            "upload_window_days": num("performances.upload_window_days"),
            "selection_cap_per_year": num("performances.selection_cap_per_year"),
        },
        "uploads": {
            "file_types": file_types,
            "hyperlinks_allowed": flag("uploads.hyperlinks_allowed"),
            "description_max_chars": num("uploads.description_max_chars"),
        },
        "performance_summary": {
            "max_chars": num("performance_summary.max_chars"),
            "max_images": num("performance_summary.max_images"),
        },
        "graduates": {
            "retention_years": num("graduates.retention_years"),
            "sealed_viewer_roles": sorted(model["sealed_roles"]),
        },
        "staff_departure": {
            "policy": v.get("rules.staff_departure.policy", ""),
            "grace_days": num("staff_departure.grace_days"),
        },
        "receipt": {
            "confirmation_days": num("receipt.confirmation_days"),
            "paper_letter_for_departed": flag("receipt.paper_letter_for_departed"),
        },
        "data_entry": {
            "remote_allowed": flag("data_entry.remote_allowed"),
            "campus_networks": [line.strip() for line in model["networks"].splitlines() if line.strip()],
        },
        "working_group": {
            "convener": v.get("rules.working_group.convener", ""),
            "executive_secretary": v.get("rules.working_group.executive_secretary", ""),
            "members": members,
            "min_meetings_per_semester": num("working_group.min_meetings_per_semester"),
        },
        "trainings": trainings,
    }
    return data, errors, member_rows


_MEMBER_PATH = re.compile(r"^rules\.working_group\.members\.(\d+)(\..*)?$")
_TRAINING_PATH = re.compile(r"^rules\.trainings\.(\d+)(\..*)?$")
_NETWORK_PATH = re.compile(r"^rules\.data_entry\.campus_networks\.\d+$")


def errors_for_form(details: dict, member_rows: dict[int, int]) -> dict[str, str]:
    """The service's field paths → the form's field names (rows the user left blank are skipped)."""
    out: dict[str, str] = {}
    for path, message in details.items():
        message = str(message)
        match = _MEMBER_PATH.match(path)
        if match:
            path = f"rules.working_group.members.{member_rows.get(int(match.group(1)), match.group(1))}{match.group(2) or ''}"
        match = _TRAINING_PATH.match(path)
        if match:
            audience = rulesets.AUDIENCES[int(match.group(1))] if int(match.group(1)) < 3 else match.group(1)
            path = f"rules.trainings.{audience}{match.group(2) or ''}"
        if _NETWORK_PATH.match(path):
            path = "rules.data_entry.campus_networks"
        out[path] = f"{out[path]} {message}" if path in out else message
    return out


def display_value(value) -> str:
    """A rule's value as a line of text (for the changes between versions)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, dict):  # file types
        return ", ".join(f"{key} ≤ {rulesets.format_size(size)}" for key, size in value.items())
    if isinstance(value, list):
        if not value:
            return "—"
        parts = []
        for item in value:
            if isinstance(item, dict) and "title" in item:
                parts.append(f"{item['title']} × {item['count']}")
            elif isinstance(item, dict):
                parts.append(" / ".join(str(v) for v in item.values()))
            else:
                parts.append(str(item))
        return ", ".join(parts)
    return str(value)


# --- pages ----------------------------------------------------------------------------------

def _roles_by_key(tenant_id) -> dict:
    return {r.key: r for r in roles_of_school(tenant_id)}


@bp.route("/admin/rules")
@permission_required("rules.view")
def current():
    tenant = current_tenant()
    today = rulesets.today_in_taipei()
    versions = rulesets.history(tenant.id)
    in_force = rulesets.in_force(tenant.id, today)
    scheduled = [v for v in versions if v.adopted_on > today]
    return render_template(
        "rulesets/current.html", rule_set=in_force, versions=versions, scheduled=scheduled, today=today,
        national=national_rules_on(today), roles_by_key=_roles_by_key(tenant.id), in_force_id=in_force.id if in_force else None,
    )


@bp.route("/admin/rules/<int:version>")
@permission_required("rules.view")
def version(version: int):
    tenant = current_tenant()
    rule_set = rulesets.get_version(tenant.id, version)
    if rule_set is None:
        abort(404)
    previous = rulesets.get_version(tenant.id, version - 1)
    following = rulesets.get_version(tenant.id, version + 1)
    today = rulesets.today_in_taipei()
    in_force = rulesets.in_force(tenant.id, today)
    before = rulesets.flatten_rules(previous.data) if previous else {}
    after = rulesets.flatten_rules(rule_set.data)
    changes = [(path, display_value(before.get(path)), display_value(after.get(path)))
               for path in rulesets.changed_paths(previous.data, rule_set.data)] if previous else []
    return render_template(
        "rulesets/version.html", rule_set=rule_set, previous=previous, following=following, today=today,
        is_in_force=in_force is not None and in_force.id == rule_set.id, changes=changes,
        national=national_rules_on(rule_set.adopted_on), roles_by_key=_roles_by_key(tenant.id),
        labels=RULE_LABELS,
    )


@bp.route("/admin/rules/amend", methods=["GET", "POST"])
@permission_required("rules.edit")
def amend():
    tenant = current_tenant()
    today = rulesets.today_in_taipei()
    # An amendment builds on the newest version (the one in force, unless one is scheduled).
    base = rulesets.latest(tenant.id)
    errors, status = {}, 200
    if request.method == "POST":
        model = form_from_request(request.form)
        data, form_errors, member_rows = rules_from_form(model)
        try:
            rule_set = rulesets.amend(tenant, current_actor(), data=data, adopted_on=model["adopted_on"].strip(),
                                      adopted_by=model["adopted_by"], summary=model["summary"])
        except ValidationFailed as failed:
            db.session.rollback()
            errors = errors_for_form(failed.details, member_rows)
            errors.update(form_errors)
            status = 422
        else:
            db.session.commit()
            flash(_("Version %(version)s of the rules was saved; it is in force from %(date)s.",
                    version=rule_set.version, date=rule_set.adopted_on.isoformat()), "success")
            return redirect(url_for("rulesets.version", version=rule_set.version))
    else:
        model = form_from_rules(base.data if base else rulesets.default_rules(today))
        model["adopted_on"] = max(today, base.adopted_on).isoformat() if base else today.isoformat()
    rows = max(len(model["members"]) + 2, 4)  # a couple of blank rows to add members
    model["members"] += [("", "")] * (rows - len(model["members"]))
    return render_template(
        "rulesets/amend.html", model=model, errors=errors, base=base, labels=RULE_LABELS,
        roles=roles_of_school(tenant.id), file_types=FILE_TYPES, periods=SELECTION_PERIODS,
        period_labels=rulesets.PERIOD_LABELS, policies=rulesets.STAFF_POLICIES,
        policy_labels=rulesets.POLICY_LABELS, audiences=rulesets.AUDIENCES,
        audience_labels=rulesets.AUDIENCE_LABELS, national=national_rules_on(today), MB=MB,
    ), status
