"""Records that school units keep and students check (DESIGN.md §2: 基本資料, 修課紀錄), and the
school calendar's terms (學年度/學期 with the 休業式).

One validation path: the pages, the API and the importer all hand *raw* values (text as typed or
read from a spreadsheet cell, or already-typed values) to the functions here, which parse them
through allow-lists and raise :class:`~lp_saas.errors.ValidationFailed` (422, field → message) or
:class:`~lp_saas.errors.Conflict` (409) before anything is written. Field names are the import
columns' keys, so a refused import row names the same fields as a refused form.

Services take the acting user and the school, flush, never commit, and audit every change and every
read of a student's personal data with the student's id. The permission each one needs is named in
its docstring; the caller checks it (``permissions.require``) once the target is loaded, because a
job has no request to abort.
"""
from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from lp_saas import clock
from lp_saas.academics.models import ClassMembership, Course, Enrollment, SchoolClass, StudentRecord, Term
from lp_saas.accounts.models import User
from lp_saas.audit import services as audit
from lp_saas.database import db, utcnow
from lp_saas.errors import Conflict, ValidationFailed
from lp_saas.i18n import academic_term, format_term
from lp_saas.records.models import (AttendanceSummary, CadreRole, ClubRecord, CounselingRecord, DataConfirmation,
                                    ElectiveChoice, Grade)
from lp_saas.roles import permissions
from lp_saas.roles.models import Role, UserRole

# --- vocabularies ------------------------------------------------------------------------------

CADRE_LEVELS = ("school", "class", "club")
CADRE_LEVEL_LABELS = {"school": _l("School-level"), "class": _l("Class-level"), "club": _l("Club-level")}
GENDERS = ("M", "F")
GENDER_LABELS = {"M": _l("Male"), "F": _l("Female")}
ELECTIVE_STATUSES = ("chosen", "admitted", "declined")
ELECTIVE_STATUS_LABELS = {"chosen": _l("Chosen"), "admitted": _l("Admitted"), "declined": _l("Not admitted")}

#: The areas a student confirms each semester, and the permission of the unit that answers for each.
AREA_PERMISSIONS = {
    "registration": "basic_data.edit",  # 註冊組
    "cadre_roles": "cadre_roles.edit",  # 訓育組
    "clubs": "clubs.edit",  # 社團組
    "attendance": "attendance.edit",  # 生輔組
    "grades": "grades.import",  # 註冊組
}
AREAS = tuple(AREA_PERMISSIONS)
AREA_LABELS = {
    "registration": _l("Registration record"),
    "cadre_roles": _l("Cadre roles"),
    "clubs": _l("Clubs"),
    "attendance": _l("Attendance"),
    "grades": _l("Grades"),
}
NOTE_MAX = 500

# Import/forms text limits follow the columns of records/models.py.
RECORD_TEXT_LIMITS = {"department": 60, "guardian_name": 60, "guardian_phone": 30, "address": 200}
RECORD_FIELDS = ("national_id", "birth_date", "gender", "admission_year", "department", "guardian_name",
                 "guardian_phone", "address", "guest_student", "transferred_in")

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# --- parsing raw values ------------------------------------------------------------------------

def is_blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _folded(value) -> str:
    """A keyword as typed (full-width letters, any case) folded for lookup in an alias table."""
    return unicodedata.normalize("NFKC", str(value)).strip().lower()


def clean_text(value, field: str, errors: dict, *, max_len: int, required: bool = False,
               multiline: bool = False) -> str | None:
    """Trimmed text or None for a blank; records a message in ``errors[field]`` when not acceptable."""
    if is_blank(value):
        if required:
            errors[field] = _("This field is required.")
        return None
    text = unicodedata.normalize("NFC", str(value)).strip()
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        bad = _CONTROL.search(text)
    else:
        bad = _CONTROL.search(text) or "\n" in text or "\r" in text
    if bad:
        errors[field] = _("Remove the control characters or line breaks from this field.")
        return None
    if len(text) > max_len:
        errors[field] = _("At most %(max)s characters.", max=max_len)
        return None
    return text


def parse_int(value, field: str, errors: dict, *, lo: int, hi: int, required: bool = False) -> int | None:
    """A whole number between ``lo`` and ``hi`` from an int or its text ("4", "4.0" from a spreadsheet)."""
    if is_blank(value):
        if required:
            errors[field] = _("This field is required.")
        return None
    number = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
        if re.fullmatch(r"[+-]?\d{1,9}(\.0+)?", text):
            number = int(text.split(".")[0])
    if number is None:
        errors[field] = _("Enter a whole number.")
        return None
    if not lo <= number <= hi:
        errors[field] = _("Enter a number from %(lo)s to %(hi)s.", lo=lo, hi=hi)
        return None
    return number


_TRUE = {"1", "y", "yes", "true", "t", "v", "是", "有", "通過", "及格", "o", "✓", "✔"}
_FALSE = {"0", "n", "no", "false", "f", "x", "否", "無", "不通過", "不及格", "未通過"}


def parse_bool(value, field: str, errors: dict, *, default: bool | None = None) -> bool | None:
    if isinstance(value, bool):
        return value
    if is_blank(value):
        return default
    text = _folded(value)
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    errors[field] = _("Enter yes or no (1/0, Y/N, 是/否).")
    return None


_AD_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_AD_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_ROC_DATE = re.compile(r"^(?:民國)?\s*(\d{2,3})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_ROC_COMPACT = re.compile(r"^(\d{2,3})(\d{2})(\d{2})$")


def parse_date_value(value) -> date:
    """A date from a date/datetime, ``2008-05-01`` (also / and .), ``20080501``, or the ROC calendar:
    ``97/05/01``, ``097-05-01``, ``0970501``, ``民國97年5月1日``. Raises ValueError."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = unicodedata.normalize("NFKC", str(value)).strip()
    for pattern, roc in ((_AD_DATE, False), (_AD_COMPACT, False), (_ROC_DATE, True), (_ROC_COMPACT, True)):
        match = pattern.match(text)
        if match:
            year, month, day = (int(g) for g in match.groups())
            return date(year + 1911 if roc else year, month, day)
    raise ValueError(text)


def parse_date(value, field: str, errors: dict, *, required: bool = False) -> date | None:
    if is_blank(value):
        if required:
            errors[field] = _("This field is required.")
        return None
    try:
        return parse_date_value(value)
    except (ValueError, OverflowError):
        errors[field] = _("Enter a date such as 2008-05-01, or 97/05/01 in the ROC calendar.")
        return None


_ID_LETTERS = {letter: code for letter, code in zip(
    "ABCDEFGHJKLMNPQRSTUVXYWZIO", range(10, 36))}
_CITIZEN_ID = re.compile(r"^[A-Z][12]\d{8}$")
_RESIDENT_NEW = re.compile(r"^[A-Z][89]\d{8}$")  # 新式統一證號 (2021): the same check digit as an ID card
_RESIDENT_OLD = re.compile(r"^[A-Z][A-D]\d{8}$")  # 舊式統一證號: the second letter counts by its last digit


def normalize_national_id(value) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(value))).upper()


def _id_checksum_ok(number: str) -> bool:
    code = _ID_LETTERS[number[0]]
    second = _ID_LETTERS[number[1]] % 10 if number[1].isalpha() else int(number[1])
    digits = [code // 10, code % 10, second] + [int(c) for c in number[2:]]
    weights = (1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1)
    return sum(d * w for d, w in zip(digits, weights)) % 10 == 0


def national_id_problem(number: str) -> str | None:
    """Why ``number`` (normalised) is not a Taiwan national ID or resident certificate number, or None."""
    if not (_CITIZEN_ID.match(number) or _RESIDENT_NEW.match(number) or _RESIDENT_OLD.match(number)):
        return _("Enter a national ID (a letter and 9 digits, such as A123456789) or a resident "
                 "certificate number (a letter, then 8 or 9 or a letter A–D, then 8 digits).")
    if not _id_checksum_ok(number):
        return _("The check digit of this number is wrong; please look for a typo.")
    return None


def parse_gender(value, field: str, errors: dict) -> str | None:
    if is_blank(value):
        return None
    text = _folded(value)
    mapping = {"m": "M", "male": "M", "男": "M", "1": "M", "f": "F", "female": "F", "女": "F", "2": "F"}
    if text not in mapping:
        errors[field] = _("Enter M or F (男/女).")
        return None
    return mapping[text]


def parse_term(values: dict, errors: dict, default: tuple[int, int] | None = None) -> tuple[int | None, int | None]:
    """(academic year, semester) from ``values``; both blank → ``default`` (the current term)."""
    year_raw, semester_raw = values.get("academic_year"), values.get("semester")
    if is_blank(year_raw) and is_blank(semester_raw) and default is not None:
        return default
    year = parse_int(year_raw, "academic_year", errors, lo=100, hi=200, required=True)
    semester = parse_int(semester_raw, "semester", errors, lo=1, hi=2, required=True)
    return year, semester


# --- terms ---------------------------------------------------------------------------------

TERM_DATE_FIELDS = ("starts_on", "ends_on", "ceremony_on", "grade12_ceremony_on")


def terms_of(tenant) -> list[Term]:
    return list(db.session.scalars(sa.select(Term).where(Term.tenant_id == tenant.id)
                                   .order_by(Term.academic_year.desc(), Term.semester.desc())))


def current_term_key(tenant) -> tuple[int, int]:
    """(academic year, semester) of today: the school's term that contains today, else the calendar's."""
    from lp_saas.academics.calendar import current_term

    today = clock.today()
    found = current_term(tenant.id, today)
    if found is not None and found.starts_on <= today <= found.ends_on:
        return found.academic_year, found.semester
    return academic_term(today)


def _expected_start(academic_year: int, semester: int) -> date:
    return date(academic_year + 1911, 8, 1) if semester == 1 else date(academic_year + 1912, 2, 1)


def check_term(tenant, values: dict, *, term: Term | None = None) -> list[str]:
    """Validate a term's values (all typed). Returns warnings; raises ValidationFailed or Conflict."""
    errors: dict[str, str] = {}
    year, semester = values.get("academic_year"), values.get("semester")
    if not isinstance(year, int) or isinstance(year, bool) or not 100 <= year <= 200:
        errors["academic_year"] = _("Enter the academic year in the ROC calendar, from 100 to 200.")
    if semester not in (1, 2):
        errors["semester"] = _("The semester is 1 or 2.")
    for field in ("starts_on", "ends_on", "ceremony_on"):
        if not isinstance(values.get(field), date):
            errors[field] = _("Enter a date.")
    g12 = values.get("grade12_ceremony_on")
    if g12 is not None and not isinstance(g12, date):
        errors["grade12_ceremony_on"] = _("Enter a date.")
    if errors:
        raise ValidationFailed(errors)
    starts, ends, ceremony = values["starts_on"], values["ends_on"], values["ceremony_on"]
    warnings: list[str] = []
    if ends <= starts:
        errors["ends_on"] = _("The last day must come after the first day.")
    elif (ends - starts).days > 250:
        errors["ends_on"] = _("A semester lasts at most 250 days.")
    if not errors and not starts <= ceremony <= ends:
        errors["ceremony_on"] = _("The semester-end ceremony must fall between the first and the last day.")
    expected = _expected_start(year, semester)
    if abs((starts - expected).days) > 62:
        errors["starts_on"] = _("%(term)s starts around %(date)s; check the academic year and the first day.",
                                term=format_term(year, semester), date=expected.isoformat())
    elif starts.month != expected.month:
        warnings.append(_("Semester %(semester)s usually starts in %(month)s; this one starts on %(date)s.",
                          semester=semester, month=_("August") if semester == 1 else _("February"),
                          date=starts.isoformat()))
    if g12 is not None:
        if semester != 2:
            errors["grade12_ceremony_on"] = _("Only the second semester has a separate grade 12 ceremony.")
        elif not starts <= g12 <= ceremony:
            errors["grade12_ceremony_on"] = _("The grade 12 ceremony must fall between the first day and the "
                                              "semester-end ceremony.")
    if errors:
        raise ValidationFailed(errors)
    others = sa.select(Term).where(Term.tenant_id == tenant.id)
    if term is not None:
        others = others.where(Term.id != term.id)
    for other in db.session.scalars(others):
        if (other.academic_year, other.semester) == (year, semester):
            raise Conflict(_("%(term)s already exists; edit it instead.", term=format_term(year, semester)),
                           code="term_exists")
        if other.starts_on <= ends and starts <= other.ends_on:
            errors["starts_on"] = _("These dates overlap %(term)s.",
                                    term=format_term(other.academic_year, other.semester))
    if errors:
        raise ValidationFailed(errors)
    return warnings


def save_term(tenant, actor, values: dict, *, term: Term | None = None) -> tuple[Term, list[str]]:
    """Create a term (``term`` None) or change it. Needs ``roster.edit``.

    ``values`` holds typed values (ints, dates); for a change, missing keys keep the stored values.
    Returns (term, warnings). Raises ValidationFailed (bad or unordered dates, overlap) or Conflict
    (the school already has that academic year and semester). Flush only.
    """
    allowed = ("academic_year", "semester", *TERM_DATE_FIELDS)
    merged = {k: getattr(term, k) for k in allowed} if term is not None else {k: None for k in allowed}
    merged.update({k: v for k, v in values.items() if k in allowed})
    warnings = check_term(tenant, merged, term=term)
    changed = [k for k in allowed if term is None or getattr(term, k) != merged[k]]
    if term is None:
        term = Term(tenant_id=tenant.id, **merged)
        db.session.add(term)
        action = "term.created"
    else:
        for key in allowed:
            setattr(term, key, merged[key])
        action = "term.updated"
    db.session.flush()
    if changed:
        audit.record(tenant.id, actor, action, target_type="term", target_id=term.id,
                     details={"term": f"{term.academic_year}-{term.semester}", "fields": changed})
    return term, warnings


# --- students ------------------------------------------------------------------------------

def is_student(user: User) -> bool:
    return any(role.key == "student" for role in permissions.user_roles(user))


def load_student(actor, student_id, *perms: str) -> User:
    """The school's student ``student_id`` over whom ``actor`` holds at least one of ``perms``.

    Raises 403 when the actor holds none of them at all, 404 for another school's id, an account
    that is not a student, or a student outside every scope (so nothing is confirmed to exist), and
    403 (code ``sealed``) when the only permissions in scope would change a sealed graduate.
    """
    from flask import abort

    from lp_saas.tenants.resolver import get_scoped

    if not any(permissions.has(actor, p) for p in perms):
        abort(403)
    student = get_scoped(User, student_id)
    if student is None or not is_student(student):
        abort(404)
    if not any(permissions.can(actor, p, student_id=student.id) for p in perms):
        for permission in perms:  # the one check says why: out of scope (404) or sealed (403)
            if permissions.has(actor, permission):
                permissions.require(actor, permission, student_id=student.id)
        abort(404)
    return student


def students_select(tenant):
    """SELECT the school's accounts holding the student role (one query, to be filtered by scope)."""
    return (sa.select(User)
            .join(UserRole, sa.and_(UserRole.tenant_id == User.tenant_id, UserRole.user_id == User.id))
            .join(Role, sa.and_(Role.tenant_id == UserRole.tenant_id, Role.id == UserRole.role_id))
            .where(User.tenant_id == tenant.id, Role.key == "student"))


def scope_filter(actor, perms: tuple[str, ...], student_column):
    """Rows whose student is in the actor's scope of any of ``perms`` (one SQL condition)."""
    return sa.or_(*(permissions.student_filter(actor, p, student_column) for p in perms))


def classes_of(tenant, student_ids, academic_year: int) -> dict[uuid.UUID, SchoolClass]:
    """student id → their class of ``academic_year`` (one query)."""
    if not student_ids:
        return {}
    rows = db.session.execute(
        sa.select(ClassMembership.student_id, SchoolClass)
        .join(SchoolClass, sa.and_(SchoolClass.tenant_id == ClassMembership.tenant_id,
                                   SchoolClass.id == ClassMembership.class_id))
        .where(ClassMembership.tenant_id == tenant.id, ClassMembership.student_id.in_(list(student_ids)),
               SchoolClass.academic_year == academic_year))
    return {student_id: school_class for student_id, school_class in rows}


def audit_reads(tenant, actor, student_ids, sections, **details) -> None:
    """One ``student.record.read`` event per student whose personal data a page or call showed."""
    for student_id in dict.fromkeys(student_ids):
        audit.record(tenant.id, actor, "student.record.read", target_type="student", target_id=student_id,
                     student_id=student_id, details={"sections": sorted(sections), **details})


# --- registration record (學籍資料, 註冊組) ---------------------------------------------------------

def read_record(tenant, actor, student: User) -> StudentRecord | None:
    """The student's registration record. Needs ``basic_data.view`` over the student. Audited."""
    audit_reads(tenant, actor, [student.id], ["registration"])
    return db.session.get(StudentRecord, (tenant.id, student.id))


def clean_record(raw: dict) -> tuple[dict, dict]:
    """(values, errors) for the registration fields present in ``raw``; a blank clears the field."""
    errors: dict[str, str] = {}
    values: dict = {}
    for field in RECORD_FIELDS:
        if field not in raw:
            continue
        value = raw[field]
        if field == "national_id":
            if is_blank(value):
                values[field] = None
            else:
                number = normalize_national_id(value)
                problem = national_id_problem(number)
                if problem:
                    errors[field] = problem
                else:
                    values[field] = number
        elif field == "birth_date":
            day = parse_date(value, field, errors)
            if day is not None and not date(1900, 1, 1) <= day <= clock.today():
                errors[field] = _("The birth date must be a past day.")
            elif field not in errors:
                values[field] = day
        elif field == "gender":
            gender = parse_gender(value, field, errors)
            if field not in errors:
                values[field] = gender
        elif field == "admission_year":
            year = parse_int(value, field, errors, lo=80, hi=200)
            if field not in errors:
                values[field] = year
        elif field in ("guest_student", "transferred_in"):
            flag = parse_bool(value, field, errors, default=False)
            if field not in errors:
                values[field] = flag
        else:
            text = clean_text(value, field, errors, max_len=RECORD_TEXT_LIMITS[field])
            if field not in errors:
                values[field] = text
    return values, errors


def update_record(tenant, actor, student: User, raw: dict, *, via: str = "page", job_id=None,
                  keep_blanks: bool = False) -> list[str]:
    """Change a student's registration record. Needs ``basic_data.edit`` over the student.

    ``raw`` maps registration fields to raw values; fields not in it are left alone, and with
    ``keep_blanks`` (imports) a blank leaves the stored value too. Returns the names of the fields
    that changed (audited as ``student.record.updated``, names only). Raises ValidationFailed.
    """
    if keep_blanks:
        raw = {k: v for k, v in raw.items() if not is_blank(v)}
    values, errors = clean_record(raw)
    if values.get("national_id") and "national_id" not in errors:
        taken = db.session.scalar(sa.select(StudentRecord.student_id).where(
            StudentRecord.tenant_id == tenant.id, StudentRecord.national_id == values["national_id"],
            StudentRecord.student_id != student.id))
        if taken is not None:
            errors["national_id"] = _("Another student of this school has this number.")
    if errors:
        raise ValidationFailed(errors)
    record = db.session.get(StudentRecord, (tenant.id, student.id))
    if record is None:
        if not any(v not in (None, False) for v in values.values()):
            return []
        record = StudentRecord(tenant_id=tenant.id, student_id=student.id, status="enrolled",
                               guest_student=False, transferred_in=False)
        db.session.add(record)
    changed = [field for field, value in values.items() if getattr(record, field) != value]
    for field in changed:
        setattr(record, field, values[field])
    if changed:
        record.updated_at = utcnow()
        db.session.flush()
        audit.record(tenant.id, actor, "student.record.updated", target_type="student", target_id=student.id,
                     student_id=student.id, details=_via({"fields": changed}, via, job_id))
    return changed


def _via(details: dict, via: str, job_id) -> dict:
    details["via"] = via
    if job_id is not None:
        details["job_id"] = str(job_id)
    return details


# --- cadre roles, clubs, attendance (訓育組, 社團組, 生輔組) ----------------------------------------

def add_cadre_role(tenant, actor, student_id, raw: dict, *, via: str = "page", job_id=None) -> tuple[CadreRole, bool]:
    """Record a cadre role (幹部經歷). Needs ``cadre_roles.edit`` over the student.

    Recording the same role twice changes nothing: returns (row, created). Raises ValidationFailed.
    """
    errors: dict[str, str] = {}
    year, semester = parse_term(raw, errors)
    level = raw.get("level")
    level = None if is_blank(level) else LEVEL_ALIASES.get(_folded(level))
    if level is None:
        errors["level"] = _("The level is school, class or club (校級、班級、社團).")
    unit = clean_text(raw.get("unit"), "unit", errors, max_len=60, required=True)
    title = clean_text(raw.get("title"), "title", errors, max_len=60, required=True)
    if errors:
        raise ValidationFailed(errors)
    existing = db.session.scalar(sa.select(CadreRole).where(
        CadreRole.tenant_id == tenant.id, CadreRole.student_id == student_id, CadreRole.academic_year == year,
        CadreRole.semester == semester, CadreRole.level == level, CadreRole.unit == unit, CadreRole.title == title))
    if existing is not None:
        return existing, False
    row = CadreRole(tenant_id=tenant.id, student_id=student_id, academic_year=year, semester=semester,
                    level=level, unit=unit, title=title, recorded_by_id=actor.id)
    db.session.add(row)
    db.session.flush()
    audit.record(tenant.id, actor, "cadre_role.added", target_type="cadre_role", target_id=row.id,
                 student_id=student_id, details=_via({}, via, job_id))
    return row, True


LEVEL_ALIASES = {"school": "school", "校級": "school", "校": "school", "全校": "school",
                 "class": "class", "班級": "class", "班": "class",
                 "club": "club", "社團": "club", "社": "club"}


def add_club_record(tenant, actor, student_id, raw: dict, *, via: str = "page", job_id=None) -> tuple[ClubRecord, str]:
    """Record a club membership (社團活動) of a semester; one row per club and semester, its role
    updated when recorded again. Needs ``clubs.edit``. Returns (row, created|updated|unchanged)."""
    errors: dict[str, str] = {}
    year, semester = parse_term(raw, errors)
    club = clean_text(raw.get("club"), "club", errors, max_len=60, required=True)
    role = clean_text(raw.get("role"), "role", errors, max_len=40)
    if errors:
        raise ValidationFailed(errors)
    row = db.session.scalar(sa.select(ClubRecord).where(
        ClubRecord.tenant_id == tenant.id, ClubRecord.student_id == student_id, ClubRecord.academic_year == year,
        ClubRecord.semester == semester, ClubRecord.club == club))
    if row is not None:
        if row.role == role:
            return row, "unchanged"
        row.role = role
        row.recorded_by_id = actor.id
        outcome = "updated"
    else:
        row = ClubRecord(tenant_id=tenant.id, student_id=student_id, academic_year=year, semester=semester,
                         club=club, role=role, recorded_by_id=actor.id)
        db.session.add(row)
        outcome = "created"
    db.session.flush()
    audit.record(tenant.id, actor, f"club_record.{'added' if outcome == 'created' else 'updated'}",
                 target_type="club_record", target_id=row.id, student_id=student_id, details=_via({}, via, job_id))
    return row, outcome


ATTENDANCE_FIELDS = ("school_days", "absences", "sick_leave", "personal_leave")


def save_attendance(tenant, actor, student_id, raw: dict, *, via: str = "page",
                    job_id=None) -> tuple[AttendanceSummary, str]:
    """Set a student's attendance summary (出缺勤) of a semester. Needs ``attendance.edit``.

    ``school_days`` is in days (0–200); absences and leave are in class periods (節, 0–2000).
    Returns (row, created|updated|unchanged). Raises ValidationFailed.
    """
    errors: dict[str, str] = {}
    year, semester = parse_term(raw, errors)
    values = {"school_days": parse_int(raw.get("school_days"), "school_days", errors, lo=0, hi=200, required=True)}
    for field in ATTENDANCE_FIELDS[1:]:
        values[field] = parse_int(raw.get(field), field, errors, lo=0, hi=2000)
    if errors:
        raise ValidationFailed(errors)
    values = {k: (v or 0) for k, v in values.items()}
    row = db.session.get(AttendanceSummary, (tenant.id, student_id, year, semester))
    if row is None:
        row = AttendanceSummary(tenant_id=tenant.id, student_id=student_id, academic_year=year, semester=semester,
                                recorded_by_id=actor.id, **values)
        db.session.add(row)
        outcome = "created"
    elif all(getattr(row, k) == v for k, v in values.items()):
        return row, "unchanged"
    else:
        for key, value in values.items():
            setattr(row, key, value)
        row.recorded_by_id = actor.id
        outcome = "updated"
    db.session.flush()
    audit.record(tenant.id, actor, "attendance.saved", target_type="attendance",
                 target_id=f"{year}-{semester}", student_id=student_id, details=_via({}, via, job_id))
    return row, outcome


def delete_unit_record(tenant, actor, row) -> None:
    """Remove a cadre role or club record. Needs that area's edit permission over the student."""
    kind = "cadre_role" if isinstance(row, CadreRole) else "club_record"
    audit.record(tenant.id, actor, f"{kind}.deleted", target_type=kind, target_id=row.id, student_id=row.student_id)
    db.session.delete(row)
    db.session.flush()


UNIT_MODELS = {"cadre_roles": CadreRole, "clubs": ClubRecord, "attendance": AttendanceSummary}


def unit_records(tenant, area: str, student_ids, academic_year: int | None = None,
                 semester: int | None = None) -> dict[uuid.UUID, list]:
    """student id → that area's rows, newest term first (one query for any number of students)."""
    model = UNIT_MODELS[area]
    out: dict[uuid.UUID, list] = {sid: [] for sid in student_ids}
    if not student_ids:
        return out
    query = sa.select(model).where(model.tenant_id == tenant.id, model.student_id.in_(list(student_ids)))
    if academic_year is not None:
        query = query.where(model.academic_year == academic_year)
    if semester is not None:
        query = query.where(model.semester == semester)
    query = query.order_by(model.academic_year.desc(), model.semester.desc())
    for row in db.session.scalars(query):
        out.setdefault(row.student_id, []).append(row)
    return out


# --- grades (學業成績, 註冊組) ---------------------------------------------------------------------

def save_grade(tenant, actor, course: Course, student_id, raw: dict, *, via: str = "page", job_id=None) -> str:
    """Record a student's result in a course they are enrolled in. Needs ``grades.import``.

    ``score`` 0–100 (two decimals at most, blank for a course without a score), ``passed``
    (default: score ≥ 60), ``credits_earned`` (default: the course's credits when passed, else 0),
    ``retake`` (重修) and ``makeup`` (補修). Returns created|updated|unchanged. Raises ValidationFailed.
    """
    errors: dict[str, str] = {}
    score = None
    if not is_blank(raw.get("score")):
        try:
            score = Decimal(unicodedata.normalize("NFKC", str(raw["score"])).strip())
            if not score.is_finite() or score.as_tuple().exponent < -2 or not 0 <= score <= 100:
                raise InvalidOperation
            score = score.quantize(Decimal("0.01"))
        except (InvalidOperation, ValueError):
            errors["score"] = _("Enter a score from 0 to 100 with at most two decimals.")
            score = None
    passed = parse_bool(raw.get("passed"), "passed", errors)
    if passed is None and "passed" not in errors:
        if score is None:
            if "score" not in errors:
                errors["passed"] = _("Give a score or say whether the course was passed.")
        else:
            passed = score >= 60
    credits = parse_int(raw.get("credits_earned"), "credits_earned", errors, lo=0, hi=course.credits)
    if "credits_earned" in errors:
        errors["credits_earned"] = _("Credits earned are a whole number from 0 to the course's %(credits)s credits.",
                                     credits=course.credits)
    retake = parse_bool(raw.get("retake"), "retake", errors, default=False)
    makeup = parse_bool(raw.get("makeup"), "makeup", errors, default=False)
    if passed is not None and credits is None:
        credits = course.credits if passed else 0
    if passed is False and credits:
        errors["credits_earned"] = _("A course that was not passed earns no credits.")
    enrolled = db.session.get(Enrollment, (tenant.id, course.id, student_id)) is not None
    if not enrolled:
        errors["student_no"] = _("This student is not enrolled in this course; import the enrolment first.")
    if errors:
        raise ValidationFailed(errors)
    values = {"score": score, "passed": passed, "credits_earned": credits, "retake": retake, "makeup": makeup}
    grade = db.session.get(Grade, (tenant.id, course.id, student_id))
    if grade is None:
        grade = Grade(tenant_id=tenant.id, course_id=course.id, student_id=student_id, recorded_by_id=actor.id,
                      **values)
        db.session.add(grade)
        outcome = "created"
    else:
        current = {"score": None if grade.score is None else Decimal(grade.score).quantize(Decimal("0.01")),
                   "passed": grade.passed, "credits_earned": grade.credits_earned, "retake": grade.retake,
                   "makeup": grade.makeup}
        if current == values:
            return "unchanged"
        for key, value in values.items():
            setattr(grade, key, value)
        grade.recorded_by_id = actor.id
        outcome = "updated"
    db.session.flush()
    audit.record(tenant.id, actor, "grade.saved", target_type="course", target_id=course.id, student_id=student_id,
                 details=_via({}, via, job_id))
    return outcome


def grades_of(tenant, student_ids, academic_year: int | None = None, semester: int | None = None) -> list:
    """[(Grade, Course)] of these students, by term then course code (one query)."""
    if not student_ids:
        return []
    query = (sa.select(Grade, Course)
             .join(Course, sa.and_(Course.tenant_id == Grade.tenant_id, Course.id == Grade.course_id))
             .where(Grade.tenant_id == tenant.id, Grade.student_id.in_(list(student_ids))))
    if academic_year is not None:
        query = query.where(Course.academic_year == academic_year)
    if semester is not None:
        query = query.where(Course.semester == semester)
    return list(db.session.execute(query.order_by(Course.academic_year.desc(), Course.semester.desc(), Course.code)))


# --- elective choices (選修課程, 教學組) ------------------------------------------------------------

def save_elective(tenant, actor, course: Course, student_id, raw: dict, *, via: str = "page", job_id=None) -> str:
    """Record a student's elective choice for a course. Needs ``course_selection.edit``.

    ``preference`` 1–99 (default 1), ``status`` chosen|admitted|declined (已選/錄取/未錄取, default
    chosen). Returns created|updated|unchanged. Raises ValidationFailed.
    """
    errors: dict[str, str] = {}
    preference = parse_int(raw.get("preference"), "preference", errors, lo=1, hi=99) or 1
    status = raw.get("status")
    status = "chosen" if is_blank(status) else ELECTIVE_ALIASES.get(_folded(status))
    if status is None:
        errors["status"] = _("The status is chosen, admitted or declined (已選、錄取、未錄取).")
    if errors:
        raise ValidationFailed(errors)
    choice = db.session.get(ElectiveChoice, (tenant.id, student_id, course.id))
    if choice is None:
        choice = ElectiveChoice(tenant_id=tenant.id, student_id=student_id, course_id=course.id,
                                preference=preference, status=status)
        db.session.add(choice)
        outcome = "created"
    elif (choice.preference, choice.status) == (preference, status):
        return "unchanged"
    else:
        choice.preference, choice.status = preference, status
        outcome = "updated"
    db.session.flush()
    audit.record(tenant.id, actor, "elective.saved", target_type="course", target_id=course.id,
                 student_id=student_id, details=_via({"status": status}, via, job_id))
    return outcome


ELECTIVE_ALIASES = {"chosen": "chosen", "已選": "chosen", "選填": "chosen", "admitted": "admitted", "錄取": "admitted",
                    "declined": "declined", "未錄取": "declined", "不錄取": "declined"}


def delete_elective(tenant, actor, choice: ElectiveChoice) -> None:
    """Remove an elective choice. Needs ``course_selection.edit``."""
    audit.record(tenant.id, actor, "elective.deleted", target_type="course", target_id=choice.course_id,
                 student_id=choice.student_id)
    db.session.delete(choice)
    db.session.flush()


def electives_of(tenant, student_ids) -> list:
    """[(ElectiveChoice, Course)] of these students (one query)."""
    if not student_ids:
        return []
    return list(db.session.execute(
        sa.select(ElectiveChoice, Course)
        .join(Course, sa.and_(Course.tenant_id == ElectiveChoice.tenant_id, Course.id == ElectiveChoice.course_id))
        .where(ElectiveChoice.tenant_id == tenant.id, ElectiveChoice.student_id.in_(list(student_ids)))
        .order_by(Course.academic_year.desc(), Course.semester.desc(), ElectiveChoice.preference)))


def electives_of_course(tenant, course: Course) -> list:
    """[(ElectiveChoice, User)] of a course, by preference then student number (one query)."""
    return list(db.session.execute(
        sa.select(ElectiveChoice, User)
        .join(User, sa.and_(User.tenant_id == ElectiveChoice.tenant_id, User.id == ElectiveChoice.student_id))
        .where(ElectiveChoice.tenant_id == tenant.id, ElectiveChoice.course_id == course.id)
        .order_by(ElectiveChoice.preference, User.student_no)))


def student_by_number(tenant, student_no) -> User | None:
    if is_blank(student_no):
        return None
    number = unicodedata.normalize("NFKC", str(student_no)).strip()
    return db.session.scalar(sa.select(User).where(User.tenant_id == tenant.id, User.student_no == number))


# --- course-counseling records (課程諮詢紀錄, 課程諮詢教師) -------------------------------------------

COUNSELING_TEXT_MAX = 2000


def save_counseling(tenant, actor, student_id, raw: dict, *,
                    record: CounselingRecord | None = None) -> CounselingRecord:
    """Write a course-counseling record (date, time, place, content and advice), or change one.

    Needs ``counseling.edit`` over the student. Raises ValidationFailed.
    """
    errors: dict[str, str] = {}
    held_on = parse_date(raw.get("held_on"), "held_on", errors, required=True)
    if held_on is not None and held_on > clock.today():
        errors["held_on"] = _("The counseling date cannot be in the future.")
    elif held_on is not None and held_on < clock.today() - timedelta(days=366 * 4):
        errors["held_on"] = _("The counseling date is too long ago.")
    held_at = raw.get("held_at")
    if is_blank(held_at):
        held_at = None
    elif not isinstance(held_at, time):
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", unicodedata.normalize("NFKC", str(held_at)).strip())
        if match and int(match.group(1)) < 24 and int(match.group(2)) < 60:
            held_at = time(int(match.group(1)), int(match.group(2)))
        else:
            errors["held_at"] = _("Enter a time such as 13:30.")
            held_at = None
    place = clean_text(raw.get("place"), "place", errors, max_len=100, required=True)
    content = clean_text(raw.get("content"), "content", errors, max_len=COUNSELING_TEXT_MAX, required=True,
                         multiline=True)
    advice = clean_text(raw.get("advice"), "advice", errors, max_len=COUNSELING_TEXT_MAX, required=True,
                        multiline=True)
    if errors:
        raise ValidationFailed(errors)
    values = {"held_on": held_on, "held_at": held_at, "place": place, "content": content, "advice": advice}
    if record is None:
        record = CounselingRecord(tenant_id=tenant.id, student_id=student_id, counselor_id=actor.id, **values)
        db.session.add(record)
        action = "counseling.added"
    else:
        for key, value in values.items():
            setattr(record, key, value)
        action = "counseling.updated"
    db.session.flush()
    audit.record(tenant.id, actor, action, target_type="counseling_record", target_id=record.id,
                 student_id=student_id)
    return record


def counseling_of(tenant, student_id) -> list:
    """[(CounselingRecord, counselor User)] of a student, newest first (one query)."""
    return list(db.session.execute(
        sa.select(CounselingRecord, User)
        .join(User, sa.and_(User.tenant_id == CounselingRecord.tenant_id, User.id == CounselingRecord.counselor_id))
        .where(CounselingRecord.tenant_id == tenant.id, CounselingRecord.student_id == student_id)
        .order_by(CounselingRecord.held_on.desc(), CounselingRecord.created_at.desc())))


# --- the semester's confirmation (每學期檢核確認) ------------------------------------------------

def confirmations_for(tenant, student_id, academic_year: int, semester: int) -> dict[str, DataConfirmation]:
    rows = db.session.scalars(sa.select(DataConfirmation).where(
        DataConfirmation.tenant_id == tenant.id, DataConfirmation.student_id == student_id,
        DataConfirmation.academic_year == academic_year, DataConfirmation.semester == semester))
    return {row.area: row for row in rows}


def _area_or_error(area) -> str:
    if area not in AREA_PERMISSIONS:
        raise ValidationFailed({"area": _("Choose one of the areas of your basic data.")})
    return area


def answer_area(tenant, actor, area: str, academic_year: int, semester: int, *, correction: bool,
                note=None) -> DataConfirmation:
    """The student confirms an area of their basic data for the term, or asks for a correction with
    a note (≤ 500 characters). Needs ``basic_data.confirm`` (own). Raises ValidationFailed, and
    Conflict while an earlier correction request of that area is still open and this confirms it."""
    area = _area_or_error(area)
    errors: dict[str, str] = {}
    text = clean_text(note, "note", errors, max_len=NOTE_MAX, required=correction, multiline=True)
    if correction and "note" in errors and is_blank(note):
        errors["note"] = _("Say what should be corrected.")
    if errors:
        raise ValidationFailed(errors)
    row = confirmations_for(tenant, actor.id, academic_year, semester).get(area)
    if row is not None and row.status == "correction_requested" and not correction:
        raise Conflict(_("Your correction request for this area is still open; the school will answer it first."),
                       code="correction_open")
    if row is None:
        row = DataConfirmation(tenant_id=tenant.id, student_id=actor.id, academic_year=academic_year,
                               semester=semester, area=area)
        db.session.add(row)
    row.status = "correction_requested" if correction else "confirmed"
    row.note = text if correction else row.note
    row.created_at = utcnow()
    if correction:
        row.resolution, row.resolved_by_id, row.resolved_at = None, None, None
    db.session.flush()
    audit.record(tenant.id, actor, "basic_data.correction_requested" if correction else "basic_data.confirmed",
                 target_type="data_confirmation", target_id=row.id, student_id=actor.id,
                 details={"area": area, "term": f"{academic_year}-{semester}"})
    return row


def correction_scope(actor):
    """SQL condition: confirmation rows of the areas and students the actor answers for."""
    clauses = []
    for area, permission in AREA_PERMISSIONS.items():
        if permissions.has(actor, permission):
            clauses.append(sa.and_(DataConfirmation.area == area,
                                   permissions.student_filter(actor, permission, DataConfirmation.student_id)))
    return sa.or_(*clauses) if clauses else sa.false()


def corrections_for(tenant, actor, *, status: str = "correction_requested", limit: int = 200) -> list:
    """[(DataConfirmation, student User)] the actor's units answer for (one query)."""
    return list(db.session.execute(
        sa.select(DataConfirmation, User)
        .join(User, sa.and_(User.tenant_id == DataConfirmation.tenant_id, User.id == DataConfirmation.student_id))
        .where(DataConfirmation.tenant_id == tenant.id, DataConfirmation.status == status, correction_scope(actor))
        .order_by(DataConfirmation.created_at.desc() if status != "correction_requested"
                  else DataConfirmation.created_at)
        .limit(limit)))


def resolve_correction(tenant, actor, row: DataConfirmation, resolution) -> DataConfirmation:
    """The responsible unit answers a correction request. Needs the area's edit permission over the
    student (see AREA_PERMISSIONS). Raises ValidationFailed, or Conflict when it is not open."""
    errors: dict[str, str] = {}
    text = clean_text(resolution, "resolution", errors, max_len=NOTE_MAX, required=True, multiline=True)
    if errors:
        raise ValidationFailed(errors)
    if row.status != "correction_requested":
        raise Conflict(_("This request has already been answered."), code="already_resolved")
    row.status = "resolved"
    row.resolution = text
    row.resolved_by_id = actor.id
    row.resolved_at = utcnow()
    db.session.flush()
    audit.record(tenant.id, actor, "basic_data.correction_resolved", target_type="data_confirmation",
                 target_id=row.id, student_id=row.student_id, details={"area": row.area})
    return row
