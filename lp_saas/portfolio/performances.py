"""多元表現 (diverse performance): ten categories, each with its own fields, uploaded by the student
or recorded by a school unit or an outside organiser.

Who records an item, and what it costs:

- the student (``source: student``, permission ``performance.upload`` over their own items): inside
  the academic year's window (``academics.calendar.year_window``) and under the school's yearly
  upload cap (``performances.upload_cap_per_year``). Every own item of the year counts, whatever its
  status, until the student withdraws it (withdrawing frees the place while the window is open);
- a school unit (``source: school``) or an outside organiser (``source: organiser``, with
  ``organiser_name``), recorded by staff holding ``performance.import`` over the student (scope all
  or class): outside the cap and outside the window (results arrive after the fact), for the
  academic year the staff member names. Proof is optional for these.

Proof is a file (verified in storage by ``files.verify_file``) or a hyperlink. Statuses:
``awaiting_upload`` → ``verifying`` → ``submitted`` | ``file_rejected``; a link item, or an imported
item without proof, is ``submitted`` at once. There is no teacher certification of diverse
performance (unlike course outcomes): a submitted item is selectable as it is.

Each category's fields are declared once, in :data:`CATEGORIES`: the validator below, the
``GET /api/v1/performance-categories`` schema and the pages' forms all read that declaration.
Services flush and never commit; the request or job that calls them commits.
"""
from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from lp_saas import clock
from lp_saas.academics.calendar import Window, year_window
from lp_saas.accounts.models import User
from lp_saas.audit import services as audit
from lp_saas.database import db
from lp_saas.errors import AppError, Forbidden, ValidationFailed
from lp_saas.i18n import academic_term
from lp_saas.jobs.queue import job_kind, submit
from lp_saas.portfolio import files
from lp_saas.portfolio.models import PERFORMANCE_CATEGORIES, Performance, SelectionItem, StoredFile
from lp_saas.roles import permissions
from lp_saas.tenants.national import national_rules_on
from lp_saas.tenants.rulesets import current_rules

TITLE_MAX = 100
ORGANISER_MAX = 120
LINK_MAX = 500
#: angle brackets and control characters have no place in a short line of text
UNSAFE_LINE_RE = re.compile(r"[<>\x00-\x1f\x7f]")
#: markup in a long text: a tag, a comment or a processing instruction, or a control character
#: (newlines and tabs are fine, and so is "a<b" in a sentence)
MARKUP_RE = re.compile(r"<\s*/?\s*[A-Za-z][^<>]*>|<!--|<\?|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
INT_RE = re.compile(r"^-?\d{1,9}$")
DECIMAL_RE = re.compile(r"^-?\d{1,7}(\.\d{1,6})?$")

REQUIRED = _l("This field is required.")
UNKNOWN_FIELD = _l("Unknown field.")
UNSAFE_TEXT = _l("Text may not contain angle brackets or control characters.")

STATUS_LABELS = {
    "awaiting_upload": _l("Awaiting upload"),
    "verifying": _l("Checking the file"),
    "submitted": _l("Submitted"),
    "file_rejected": _l("File rejected"),
    "certified": _l("Certified"),
    "returned": _l("Returned"),
}
SOURCE_LABELS = {
    "student": _l("Uploaded by the student"),
    "school": _l("Recorded by the school"),
    "organiser": _l("From an outside organiser"),
}


# --- declared fields: one engine for the categories, the statements and the summary ----------------

@dataclass(frozen=True)
class FieldSpec:
    """One input field: its kind (text, int, number, date, choice), label, limits and choices.

    ``choices`` are (value, lazy label) pairs; ``decimals`` is how many digits a number may have after
    the point; dates must fall inside the item's academic year and not after today.
    """

    name: str
    kind: str
    label: object
    required: bool = True
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    decimals: int = 0
    choices: tuple[tuple[str, object], ...] = ()

    def to_dict(self) -> dict:
        out = {"name": self.name, "type": {"text": "string", "int": "integer", "number": "number",
                                          "date": "date", "choice": "string"}[self.kind],
               "required": self.required, "label": str(self.label), "labels": both_languages(self.label)}
        if self.max_length is not None:
            out["max_length"] = self.max_length
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.kind == "number":
            out["decimals"] = self.decimals
        if self.kind == "date":
            out["format"] = "YYYY-MM-DD"
            out["within"] = "academic_year"
        if self.choices:
            out["enum"] = [value for value, _label in self.choices]
            out["choices"] = [{"value": value, "label": str(label), "labels": both_languages(label)}
                              for value, label in self.choices]
        return out


def both_languages(label) -> dict:
    """{"zh-TW": …, "en": …} of a lazy msgid (the English msgid and its catalogue translation)."""
    try:
        with force_locale("zh_Hant_TW"):
            zh = str(label)
        with force_locale("en"):
            en = str(label)
    except RuntimeError:  # outside an app context (import time): the msgid itself
        zh = en = str(label)
    return {"zh-TW": zh, "en": en}


def academic_year_bounds(academic_year: int) -> tuple[date, date]:
    """The first and last day of an ROC academic year (1 August to 31 July)."""
    return date(academic_year + 1911, 8, 1), date(academic_year + 1912, 7, 31)


def check_line(value, *, max_length: int, required: bool = True):
    """A trimmed line of text or None; returns (value, message or None)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, (REQUIRED if required else None)
    if not isinstance(value, str):
        return None, _l("Enter text.")
    value = value.strip()
    if len(value) > max_length:
        return None, _l("Use at most %(max)s characters.", max=max_length)
    if UNSAFE_LINE_RE.search(value):
        return None, UNSAFE_TEXT
    return value, None


def check_long_text(value, *, max_length: int, required: bool = True):
    """A body of text (newlines kept, ``\\r\\n`` made ``\\n``), counted in characters; (value, message)."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        return None, _l("Enter text.")
    value = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not value and required:
        return None, REQUIRED
    if len(value) > max_length:
        return None, _l("Use at most %(max)s characters; this text has %(count)s.", max=max_length, count=len(value))
    if MARKUP_RE.search(value):
        return None, _l("Text may not contain HTML tags or control characters.")
    return value, None


def _check_one(spec: FieldSpec, value, *, coerce: bool, academic_year: int | None, complete: bool = True):
    """(clean value, message or None) of one declared field; value None means absent.

    With ``complete`` false an absent field is let through (see :func:`missing_details`)."""
    if isinstance(value, str) and not value.strip():
        value = None
    if value is None:
        return None, (REQUIRED if spec.required and complete else None)
    if spec.kind == "text":
        return check_line(value, max_length=spec.max_length or 100, required=spec.required)
    if spec.kind == "choice":
        if not isinstance(value, str) or value not in {v for v, _label in spec.choices}:
            return None, _l("Choose one of: %(choices)s.", choices=", ".join(v for v, _label in spec.choices))
        return value, None
    if spec.kind == "int":
        if coerce and isinstance(value, str) and INT_RE.match(value.strip()):
            value = int(value.strip())
        message = _l("Enter a whole number from %(min)s to %(max)s.", min=_num(spec.minimum), max=_num(spec.maximum))
        if isinstance(value, bool) or not isinstance(value, int):
            return None, message
        if not spec.minimum <= value <= spec.maximum:
            return None, message
        return value, None
    if spec.kind == "number":
        if coerce and isinstance(value, str) and DECIMAL_RE.match(value.strip()):
            value = float(value.strip())
        message = _l("Enter a number from %(min)s to %(max)s with at most %(decimals)s decimal place(s).",
                     min=_num(spec.minimum), max=_num(spec.maximum), decimals=spec.decimals)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None, message
        scaled = value * 10 ** spec.decimals
        if abs(scaled - round(scaled)) > 1e-6 or not spec.minimum <= value <= spec.maximum:
            return None, message
        value = round(value, spec.decimals)
        return (int(value) if float(value).is_integer() else value), None
    if spec.kind == "date":
        day = None
        if isinstance(value, str) and DATE_RE.match(value.strip()):
            try:
                day = date.fromisoformat(value.strip())
            except ValueError:
                day = None
        if day is None:
            return None, _l("Enter a date as YYYY-MM-DD.")
        if academic_year is not None:
            first, last = academic_year_bounds(academic_year)
            if not first <= day <= last:
                return None, _l("The date must fall within academic year %(year)s (%(first)s to %(last)s).",
                                year=academic_year, first=first.isoformat(), last=last.isoformat())
        if day > clock.today():
            return None, _l("The date cannot be later than today.")
        return day.isoformat(), None
    raise ValueError(f"unknown field kind {spec.kind}")


def _num(value) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def check_fields(specs, raw, *, prefix: str = "", coerce: bool = False,
                 academic_year: int | None = None, complete: bool = True) -> tuple[dict, dict]:
    """Validate ``raw`` against declared fields: (clean values, field path → message).

    Unknown keys are refused (allow-list); absent optional fields are left out of the result;
    ``coerce`` accepts the strings a page form sends for numbers; ``complete`` false lets required
    fields be absent (never wrong).
    """
    clean: dict = {}
    errors: dict = {}
    if not isinstance(raw, dict):
        return clean, {prefix.rstrip(".") or "details": _l("Give the fields as an object.")}
    known = {spec.name for spec in specs}
    for key in raw:
        if key not in known:
            errors[f"{prefix}{key}"[:80]] = UNKNOWN_FIELD
    for spec in specs:
        value, message = _check_one(spec, raw.get(spec.name), coerce=coerce, academic_year=academic_year,
                                    complete=complete)
        if message is not None:
            errors[f"{prefix}{spec.name}"] = message
        elif value is not None:
            clean[spec.name] = value
    return clean, errors


# --- the ten categories -------------------------------------------------------------------------

def _text(name, label, max_length, required=True):
    return FieldSpec(name, "text", label, required=required, max_length=max_length)


def _choice(name, label, choices, required=True):
    return FieldSpec(name, "choice", label, required=required, choices=tuple(choices))


def _int(name, label, minimum, maximum, required=True):
    return FieldSpec(name, "int", label, required=required, minimum=minimum, maximum=maximum)


def _hours(name="hours", label=_l("Hours"), maximum=2000, required=True):
    return FieldSpec(name, "number", label, required=required, minimum=0.5, maximum=maximum, decimals=1)


def _date(name, label, required=True):
    return FieldSpec(name, "date", label, required=required)


@dataclass(frozen=True)
class Category:
    key: str
    label: object
    fields: tuple[FieldSpec, ...]
    #: (start, end) date fields whose order is checked
    date_range: tuple[str, str] | None = None

    @property
    def name_zh(self) -> str:
        return PERFORMANCE_CATEGORIES[self.key]

    def to_dict(self) -> dict:
        return {"key": self.key, "label": str(self.label), "labels": both_languages(self.label),
                "fields": [spec.to_dict() for spec in self.fields]}


_START = _date("start_date", _l("Start date"))
_END = _date("end_date", _l("End date"), required=False)

CATEGORIES: dict[str, Category] = {c.key: c for c in (
    Category("cadre", _l("Cadre roles and deeds"), (
        _text("unit", _l("Unit (class, club or organisation)"), 60),
        _text("position", _l("Position held"), 40),
        _choice("level", _l("Cadre level"), (
            ("school", _l("School level")), ("class", _l("Class level")), ("club", _l("Club level")),
            ("other", _l("Other")))),
        _START, _END,
    ), ("start_date", "end_date")),
    Category("competition", _l("Competitions"), (
        _choice("level", _l("Competition level"), (
            ("school", _l("Within the school")), ("county", _l("County or city")),
            ("regional", _l("Regional")), ("national", _l("National")),
            ("international", _l("International")), ("other", _l("Other")))),
        _text("award", _l("Award or placing"), 60),
        _date("result_date", _l("Date results were announced")),
        _text("group", _l("Event or division"), 60, required=False),
        _choice("participation", _l("Individual or team"), (
            ("individual", _l("Individual")), ("team", _l("Team")))),
    )),
    Category("service_learning", _l("Service learning"), (
        _text("organiser", _l("Where the service took place"), 60, required=False),
        _hours(maximum=500),
        _START, _END,
    ), ("start_date", "end_date")),
    Category("group_activity", _l("Group activity time"), (
        _choice("type", _l("Activity type"), (
            ("class_activity", _l("Class activity")), ("club", _l("Club activity")),
            ("student_council", _l("Student council activity")),
            ("service", _l("Student service-learning activity")),
            ("assembly", _l("Weekly assembly or lecture")))),
        _int("periods", _l("Class periods"), 1, 200),
    )),
    Category("other", _l("Other diverse performance"), (
        _text("organiser", _l("Organiser"), 60),
        _hours(),
        _date("start_date", _l("Start date"), required=False), _END,
    ), ("start_date", "end_date")),
    Category("certificate", _l("Tests and certificates"), (
        _text("code", _l("Certificate code"), 20),
        _choice("type", _l("Certificate type"), (
            ("skill", _l("Technician skill certificate")), ("language", _l("Language proficiency test")),
            ("information", _l("Information technology certificate")), ("other", _l("Other")))),
        _text("score", _l("Score or level"), 20, required=False),
        _text("certificate_no", _l("Certificate number"), 40, required=False),
        _text("group", _l("Group or field"), 60, required=False),
        _date("obtained_on", _l("Date obtained")),
    )),
    Category("flexible_learning", _l("Flexible learning time"), (
        _choice("type", _l("Flexible learning type"), (
            ("self_directed", _l("Self-directed learning")), ("athlete_training", _l("Athlete training")),
            ("enrichment", _l("Enrichment teaching")), ("remedial", _l("Remedial teaching")),
            ("school_feature", _l("School feature activity")))),
        _int("periods_per_week", _l("Periods per week"), 1, 18),
        _int("weeks", _l("Weeks"), 1, 22),
    )),
    Category("workplace_learning", _l("Workplace learning"), (
        _choice("type", _l("Workplace learning type"), (
            ("visit", _l("Workplace visit")), ("shadowing", _l("Job shadowing")),
            ("internship", _l("Internship")), ("other", _l("Other")))),
        _text("employer", _l("Employer or organisation"), 60),
        _text("job_title", _l("Job title"), 40),
        _hours(),
        _date("start_date", _l("Start date"), required=False), _END,
    ), ("start_date", "end_date")),
    Category("work_product", _l("Works and results"), (
        _text("name", _l("Name of the work"), 100),
        _date("date", _l("Date of the work")),
    )),
    Category("advanced_course", _l("University and college advanced placement courses"), (
        _text("institution", _l("University or college offering it"), 60),
        _int("credits", _l("Credits"), 0, 10),
        _hours("total_hours", _l("Total hours"), maximum=500),
    )),
)}
assert set(CATEGORIES) == set(PERFORMANCE_CATEGORIES), "every central-database category has its fields"


def check_details(category: Category, raw, *, academic_year: int | None, coerce: bool = False,
                  complete: bool = True) -> tuple[dict, dict]:
    """A category's own fields: (clean details, ``details.<field>`` → message)."""
    clean, errors = check_fields(category.fields, raw, prefix="details.", coerce=coerce, academic_year=academic_year,
                                 complete=complete)
    if category.date_range and not errors:
        start, end = (clean.get(name) for name in category.date_range)
        if start and end and end < start:
            errors[f"details.{category.date_range[1]}"] = _l("The end date cannot be before the start date.")
    return clean, errors


def missing_details(item: Performance) -> list[str]:
    """The fields the central database needs that ``item`` still lacks (``details.<field>``, and
    ``organiser_name`` for an outside organiser's item), in the category's order."""
    category = CATEGORIES.get(item.category)
    details = item.details or {}
    missing = [f"details.{spec.name}" for spec in (category.fields if category else ())
               if spec.required and details.get(spec.name) in (None, "")]
    if item.source == "organiser" and not item.organiser_name:
        missing.append("organiser_name")
    return missing


def categories_schema() -> list[dict]:
    """The ten categories with labels (request language, and both) and field schemas (for the API)."""
    return [category.to_dict() for category in CATEGORIES.values()]


def category_label(key: str) -> str:
    category = CATEGORIES.get(key)
    return str(category.label) if category else key


# --- rules, windows and caps ---------------------------------------------------------------------

@dataclass(frozen=True)
class YearStatus:
    """Where a student stands in an academic year: the window, the cap and how much of it is used."""

    academic_year: int
    window: Window | None
    upload_cap: int
    used: int

    @property
    def left(self) -> int:
        return max(0, self.upload_cap - self.used)

    @property
    def is_open(self) -> bool:
        return self.window is not None and self.window.is_open()


def description_limit(rules: dict) -> int:
    """The short description's limit: the school's, never above the national ceiling."""
    national = national_rules_on(clock.today())
    return min(rules["uploads"]["description_max_chars"], national.description_max_chars)


def open_year(tenant_id) -> int | None:
    """The academic year whose diverse-performance window is open now (None when none is)."""
    year = academic_term(clock.today())[0]
    for candidate in (year, year - 1):
        window = year_window(tenant_id, candidate)
        if window is not None and window.is_open():
            return candidate
    return None


def default_year(tenant_id) -> int:
    """The year a new item belongs to unless one is named: the open one, else the calendar's."""
    return open_year(tenant_id) or academic_term(clock.today())[0]


def _own_uploads_count(tenant_id, student_id, academic_year: int) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Performance).where(
        Performance.tenant_id == tenant_id, Performance.student_id == student_id,
        Performance.academic_year == academic_year, Performance.source == "student")) or 0


def year_status(tenant_id, student_id, academic_year: int) -> YearStatus:
    rules = current_rules(tenant_id)
    return YearStatus(academic_year, year_window(tenant_id, academic_year),
                      rules["performances"]["upload_cap_per_year"],
                      _own_uploads_count(tenant_id, student_id, academic_year))


def require_window_open(tenant_id, academic_year: int) -> Window:
    """The year's window, open now. Raises AppError 422 ``window_not_set`` or ``window_closed``."""
    window = year_window(tenant_id, academic_year)
    if window is None:
        raise AppError(_l("The school has not set the calendar of academic year %(year)s yet, so its diverse "
                          "performance cannot be changed.", year=academic_year),
                       code="window_not_set", status=422, details={"academic_year": academic_year})
    if not window.is_open():
        raise AppError(_l("The diverse-performance window of academic year %(year)s is open from %(opens)s to "
                          "%(closes)s; it is not open now.", year=academic_year,
                          opens=_taipei(window.opens_at), closes=_taipei(window.closes_at)),
                       code="window_closed", status=422,
                       details={"window": {"academic_year": academic_year, "opens_at": window.opens_at.isoformat(),
                                           "closes_at": window.closes_at.isoformat()}})
    return window


def _taipei(moment) -> str:
    from lp_saas.i18n import format_roc_datetime

    return format_roc_datetime(moment)


# --- who may record for whom ------------------------------------------------------------------------

def is_student(user) -> bool:
    """A student is an account that uploads its own diverse performance (asked of the role matrix)."""
    return user is not None and user.status == "active" and permissions.has(user, "performance.upload")


def _student_in_scope(tenant, actor, raw_student_id) -> User | None:
    """The student named by ``raw_student_id`` if ``actor`` may record for them (import scope)."""
    try:
        student_id = raw_student_id if isinstance(raw_student_id, uuid.UUID) else uuid.UUID(str(raw_student_id))
    except (TypeError, ValueError, AttributeError):
        return None
    student = db.session.get(User, (tenant.id, student_id))
    if student is None or not is_student(student):
        return None
    if not permissions.can(actor, "performance.import", student_id=student.id):
        return None
    return student


def require_student(tenant, actor, permission: str, student_id) -> User:
    """The student of this school named by ``student_id``, if ``actor`` holds ``permission`` over them.

    Raises 403 without the permission, 404 for an unknown student, another school's, or one out of scope.
    """
    from flask import abort

    if not permissions.has(actor, permission):
        abort(403)
    student = db.session.get(User, (tenant.id, student_id)) if isinstance(student_id, uuid.UUID) else None
    if student is None:
        abort(404)
    permissions.require(actor, permission, student_id=student.id)
    return student


def lock_student(tenant_id, student_id) -> None:
    """Serialise writes that are judged against a per-student count (caps): one at a time per student.

    On PostgreSQL a row lock on the student's account; SQLite takes one writer at a time anyway.
    """
    db.session.execute(sa.select(User.id).where(User.tenant_id == tenant_id, User.id == student_id)
                       .with_for_update())


# --- links ------------------------------------------------------------------------------------------

def check_link(value, rules: dict):
    """(normalised URL, message or None) for a proof hyperlink."""
    if not rules["uploads"].get("hyperlinks_allowed", True):
        return None, _l("This school does not accept links as proof; upload a file.")
    if not isinstance(value, str) or not value.strip():
        return None, _l("Enter a web address starting with https:// or http://.")
    value = value.strip()
    if len(value) > LINK_MAX:
        return None, _l("The web address has at most %(max)s characters.", max=LINK_MAX)
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if (parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname
            or re.search(r"[\s<>\"'\x00-\x1f\x7f]", value)):
        return None, _l("Enter a web address starting with https:// or http://.")
    return value, None


# --- creating, uploading, withdrawing ----------------------------------------------------------------

CREATE_FIELDS = frozenset({"category", "title", "description", "academic_year", "semester", "details", "file",
                           "link", "student_id", "source", "organiser_name"})


def create_performance(tenant, actor, data: dict, *, coerce: bool = False) -> tuple[Performance, dict | None]:
    """Validate and store a new item; returns (item, the upload ticket for its file or None). Flush only.

    A student records their own (``performance.upload``, own scope; inside the window, under the
    cap); staff record for a student with ``student_id`` and ``source`` school|organiser
    (``performance.import`` over that student; no window, no cap). ``coerce`` is the page form: it
    sends strings for numbers, and a person filling it is asked for every field the central
    database needs. Through the API (an integrator, an outside organiser's system) such a field may
    be absent: the item is kept and :func:`missing_details` names what it still lacks; a value that
    is given is checked as strictly either way.

    Raises Forbidden (403) without the permission the source needs; ValidationFailed (422, field
    path → message) for any bad field; AppError 422 ``window_not_set`` / ``window_closed`` /
    ``upload_cap``. Nothing is stored when it raises. Audited as ``performance.created``.
    """
    errors: dict = {}
    for key in data:
        if key not in CREATE_FIELDS:
            errors[str(key)[:80]] = UNKNOWN_FIELD
    names_student = data.get("student_id") not in (None, "")
    source = data.get("source") or ("school" if names_student and permissions.has(actor, "performance.import")
                                    else "student")
    if source not in ("student", "school", "organiser"):
        errors["source"] = _l("Choose one of: %(choices)s.", choices="student, school, organiser")
        source = "student"
    rules = current_rules(tenant.id)

    if source == "student":
        if not permissions.can(actor, "performance.upload", student_id=actor.id):
            raise Forbidden(_l("You may not upload diverse performance."))
        if data.get("student_id") not in (None, "", str(actor.id), actor.id):
            errors["student_id"] = _l("Students record only their own items; leave the student out.")
        student = actor
    else:
        if not permissions.has(actor, "performance.import"):
            raise Forbidden(_l("Only staff who record diverse performance for students may set the source."))
        student = None
        if data.get("student_id") in (None, ""):
            errors["student_id"] = REQUIRED
        else:
            student = _student_in_scope(tenant, actor, data.get("student_id"))
            if student is None:
                errors["student_id"] = _l("No such student among those you may record for.")

    organiser_name = None
    if source == "organiser":
        organiser_name, message = check_line(data.get("organiser_name"), max_length=ORGANISER_MAX, required=coerce)
        if message:
            errors["organiser_name"] = message
    elif data.get("organiser_name") not in (None, ""):
        errors["organiser_name"] = _l("Only an item from an outside organiser carries an organiser name.")

    academic_year = data.get("academic_year")
    if academic_year in (None, ""):
        academic_year = default_year(tenant.id)
    elif coerce and isinstance(academic_year, str) and INT_RE.match(academic_year.strip()):
        academic_year = int(academic_year.strip())
    if isinstance(academic_year, bool) or not isinstance(academic_year, int) or not 100 <= academic_year <= 200:
        errors["academic_year"] = _l("Enter the academic year (ROC), such as 113.")
        academic_year = None

    semester = data.get("semester")
    if semester in (None, ""):
        semester = None
    else:
        if coerce and isinstance(semester, str) and semester.strip() in ("1", "2"):
            semester = int(semester.strip())
        if isinstance(semester, bool) or semester not in (1, 2):
            errors["semester"] = _l("Choose semester 1 or 2.")
            semester = None

    category = CATEGORIES.get(data.get("category")) if isinstance(data.get("category"), str) else None
    if category is None:
        errors["category"] = (REQUIRED if data.get("category") in (None, "") else
                              _l("Choose one of: %(choices)s.", choices=", ".join(CATEGORIES)))
        details = {}
    else:
        details, detail_errors = check_details(category, data.get("details") or {}, academic_year=academic_year,
                                               coerce=coerce, complete=coerce)
        errors.update(detail_errors)

    title, message = check_line(data.get("title"), max_length=TITLE_MAX)
    if message:
        errors["title"] = message
    description, message = check_line(data.get("description"), max_length=description_limit(rules), required=False)
    if message:
        errors["description"] = message

    spec, link = None, None
    has_file = data.get("file") not in (None, "", {})
    has_link = data.get("link") not in (None, "")
    if has_file and has_link:
        errors["file"] = _l("Give either a file or a link, not both.")
    elif has_file:
        spec, file_errors = files.check_file_spec(data.get("file"), rules)
        errors.update(file_errors)
    elif has_link:
        link, message = check_link(data.get("link"), rules)
        if message:
            errors["link"] = message
    elif source == "student":
        errors["file"] = _l("Attach a file or give a link as proof.")

    if errors:
        raise ValidationFailed({key: str(value) for key, value in errors.items()})

    if source == "student":
        require_window_open(tenant.id, academic_year)
        lock_student(tenant.id, student.id)
        cap = rules["performances"]["upload_cap_per_year"]
        used = _own_uploads_count(tenant.id, student.id, academic_year)
        if used >= cap:
            raise AppError(_l("You have uploaded %(used)s diverse-performance items in academic year %(year)s; "
                              "the school allows %(cap)s a year.", used=used, year=academic_year, cap=cap),
                           code="upload_cap", status=422,
                           details={"cap": {"name": "performances.upload_cap_per_year", "limit": cap,
                                            "used": used, "academic_year": academic_year}})

    item = Performance(tenant_id=tenant.id, id=uuid.uuid4(), student_id=student.id, academic_year=academic_year,
                       semester=semester, title=title, description=description or "", category=category.key,
                       details=details, source=source, organiser_name=organiser_name, link_url=link,
                       created_by_id=actor.id)
    upload = None
    if spec is not None:
        stored, upload = files.create_upload(tenant, owner_kind="performance", owner_id=item.id,
                                             student_id=student.id, spec=spec)
        item.file_id = stored.id
        item.status = "awaiting_upload"
    else:
        item.status = "submitted"
        item.submitted_at = clock.now()
    db.session.add(item)
    db.session.flush()
    audit.record(tenant.id, actor, "performance.created", target_type="performance", target_id=item.id,
                 student_id=student.id, details={"category": item.category, "source": source,
                                                 "academic_year": academic_year, "status": item.status})
    return item, upload


def may_manage(actor, item: Performance) -> bool:
    """Whether ``actor`` may send the file of, or withdraw, ``item``: its student for their own
    uploads, or staff with ``performance.import`` over the student for recorded items."""
    if item.source == "student":
        return item.student_id == actor.id and permissions.can(actor, "performance.upload", student_id=actor.id)
    return permissions.can(actor, "performance.import", student_id=item.student_id)


def file_sent(tenant, actor, item: Performance) -> Performance:
    """The client says the file's bytes are in storage: verify them (a job). Flush only.

    Idempotent for an item already verifying or submitted. Raises AppError 409 ``no_file`` for a
    link item and ``file_rejected`` for a rejected one (withdraw it and upload again).
    """
    if item.file_id is None:
        raise AppError(_l("This item has no file to check."), code="no_file", status=409)
    if item.status == "file_rejected":
        raise AppError(_l("This item's file was rejected: %(reason)s Withdraw it and upload the file again.",
                          reason=files.reject_message(item.status_reason)), code="file_rejected", status=409)
    if item.status != "awaiting_upload":
        return item
    stored = db.session.get(StoredFile, (tenant.id, item.file_id))
    files.begin_verification(tenant, stored, actor)
    item.status = "verifying"
    db.session.flush()
    audit.record(tenant.id, actor, "performance.file_sent", target_type="performance", target_id=item.id,
                 student_id=item.student_id)
    return item


@files.on_file_checked("performance")
def _performance_file_checked(stored: StoredFile, verified: bool) -> None:
    """The verification job's verdict moves the item: submitted, or file_rejected with the reason."""
    item = db.session.get(Performance, (stored.tenant_id, stored.owner_id))
    if item is None or item.file_id != stored.id or item.status not in ("awaiting_upload", "verifying"):
        return
    if verified:
        item.status, item.submitted_at, item.status_reason = "submitted", clock.now(), None
    else:
        item.status, item.status_reason = "file_rejected", stored.reject_reason
    audit.record(stored.tenant_id, "system:verification", f"performance.{item.status}", target_type="performance",
                 target_id=item.id, student_id=item.student_id,
                 details={"reason": stored.reject_reason} if not verified else None)


def withdraw_performance(tenant, actor, item: Performance) -> None:
    """Withdraw (delete) an item, its file row and its place in the year's selection. Flush only.

    The student withdraws their own uploads while the year's window is open; imported items are
    withdrawn only by staff with ``performance.import`` over the student, and not from a selection
    that has closed. The stored object is removed by a job after the commit. Raises Forbidden
    (403, ``imported_item``) for a student and an imported item; AppError 422 ``window_closed`` /
    ``window_not_set`` / 409 ``selection_closed``. Audited as ``performance.withdrawn``.
    """
    if item.source != "student" and item.student_id == actor.id:
        raise Forbidden(_l("Items recorded by the school or an outside organiser cannot be withdrawn by the student."),
                        code="imported_item")
    if not may_manage(actor, item):
        from flask import abort

        abort(404)
    selected = db.session.scalar(sa.select(sa.func.count()).select_from(SelectionItem).where(
        SelectionItem.tenant_id == tenant.id, SelectionItem.student_id == item.student_id,
        SelectionItem.item_kind == "performance", SelectionItem.item_id == item.id)) or 0
    if item.source == "student":
        require_window_open(tenant.id, item.academic_year)
    elif selected:
        window = year_window(tenant.id, item.academic_year)
        if window is None or not window.is_open():
            raise AppError(_l("This item is in the closed selection of academic year %(year)s and cannot be removed.",
                              year=item.academic_year), code="selection_closed", status=409)
    if selected:
        db.session.execute(sa.delete(SelectionItem).where(
            SelectionItem.tenant_id == tenant.id, SelectionItem.student_id == item.student_id,
            SelectionItem.item_kind == "performance", SelectionItem.item_id == item.id))
    stored = db.session.get(StoredFile, (tenant.id, item.file_id)) if item.file_id else None
    audit.record(tenant.id, actor, "performance.withdrawn", target_type="performance", target_id=item.id,
                 student_id=item.student_id, details={"category": item.category, "source": item.source,
                                                      "academic_year": item.academic_year,
                                                      "was_selected": bool(selected)})
    db.session.delete(item)
    db.session.flush()
    if stored is not None:
        remove_stored_file(tenant, stored)


def remove_stored_file(tenant, stored: StoredFile) -> None:
    """Delete a file's row now and its object after the commit (a job, so a crash cannot lose the
    deletion and a rollback cannot lose the file). Flush only."""
    key = stored.key
    db.session.delete(stored)
    db.session.flush()
    submit(tenant.id, "delete_stored_object", {"key": key})


@job_kind("delete_stored_object", queue="default", timeout=120, max_attempts=6, backoff=(10, 60, 300, 900, 3600))
def delete_stored_object_job(job, progress):
    """Remove a withdrawn item's object from the school's bucket (every version). Idempotent."""
    from lp_saas.storage import get_storage
    from lp_saas.tenants.context import current_tenant

    tenant = current_tenant()
    key = job.args["key"]
    if db.session.scalar(sa.select(StoredFile.id).where(StoredFile.tenant_id == tenant.id, StoredFile.key == key)):
        return {"status": "kept", "reason": "the key is in use again"}
    removed = get_storage().delete_object(tenant.bucket, key)
    return {"status": "deleted", "versions": removed}


# --- reading ---------------------------------------------------------------------------------------

def list_performances(tenant, actor, *, student_id=None, category=None, status=None, academic_year=None,
                      source=None) -> list[tuple[Performance, User]]:
    """The items ``actor`` may see (``performance.view`` by scope), newest first, with their students.

    One query whatever the number of items. Filters are validated by the caller.
    """
    query = (sa.select(Performance, User)
             .join(User, sa.and_(User.tenant_id == Performance.tenant_id, User.id == Performance.student_id))
             .where(Performance.tenant_id == tenant.id,
                    permissions.student_filter(actor, "performance.view", Performance.student_id)))
    if student_id is not None:
        query = query.where(Performance.student_id == student_id)
    if category is not None:
        query = query.where(Performance.category == category)
    if status is not None:
        query = query.where(Performance.status == status)
    if academic_year is not None:
        query = query.where(Performance.academic_year == academic_year)
    if source is not None:
        query = query.where(Performance.source == source)
    query = query.order_by(Performance.academic_year.desc(), Performance.created_at.desc(), Performance.id)
    return [(item, student) for item, student in db.session.execute(query)]


def audit_reads(tenant, actor, action: str, student_ids, *, target_type: str, target_id=None,
                details: dict | None = None) -> None:
    """Record one read per student whose data a non-owner saw (PDPA: whose data did this account touch)."""
    for student_id in sorted(set(student_ids) - {actor.id}, key=str):
        audit.record(tenant.id, actor, action, target_type=target_type,
                     target_id=target_id if target_id is not None else student_id,
                     student_id=student_id, details=details)


def item_file(tenant, item: Performance) -> StoredFile | None:
    return db.session.get(StoredFile, (tenant.id, item.file_id)) if item.file_id else None


def verified_file_or_error(tenant, item: Performance) -> StoredFile:
    """The item's verified file. Raises AppError 409 ``no_file`` / ``file_not_ready``."""
    stored = item_file(tenant, item)
    if stored is None:
        raise AppError(_l("This item has no file."), code="no_file", status=409)
    if stored.status != "verified":
        raise AppError(_l("The file has not been checked and accepted yet."), code="file_not_ready", status=409)
    return stored
