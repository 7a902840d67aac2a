"""Imports of rosters, grades and unit records from spreadsheets, run as jobs with a row-by-row report.

What a school uploads, and what happens to it (the import page says the same):

- **A bad row refuses only itself.** Every other row of the file is imported. The job's report
  (``Job.result``) lists each refused row by its spreadsheet row number (the header is row 1)
  with a reason per column, e.g. ``{"row": 7, "errors": {"national_id": "…"}}``. Nothing of a
  refused row is stored: each row is written inside its own savepoint, after all of its checks.
- **Imports are idempotent.** Rows are matched on natural keys and updated in place (upsert):
  accounts by username (students also by student number), classes by academic year and name,
  courses by code, academic year and semester, enrolments, grades and elective choices by course and
  student, attendance by student and semester, club records by student, semester and club. So a
  school fixes the refused rows and uploads the same file again: rows already in are "unchanged".
- **A blank optional cell leaves the stored value as it is** (clear a value on the record's page).
  Passwords are set only when an account is created, never by a later upload; a new account without
  a password cannot sign in until the school resets it. Roles are only ever added by an import.
- **Blank academic year and semester** mean the current term for rows that record something
  (courses, cadre roles, clubs, attendance, classes: the current academic year). Rows that refer to
  a course (enrolments, grades, electives) may leave them blank when only one course has that code.
- **A problem with the whole file refuses the file at upload**, before anything is stored: not an
  .xlsx or CSV by its content, not UTF-8 or Big5 text, over 5 MB or 20,000 rows, missing columns.

Files: .xlsx (the first worksheet; openpyxl in read-only, values-only mode) or .csv (UTF-8 with or
without a BOM, UTF-16 as Excel's "Unicode text", or Big5/CP950 as Taiwanese Excel saves it; comma,
semicolon or tab separated), recognised by their bytes, never by their name. The first row holds the
column names, in Chinese or English (``學號`` or ``student_no``); unknown columns are ignored and named
in the report. Blank rows are skipped, and 1,000 blank rows in a row end the data. The web process stores the upload in the school's bucket under
``imports/<job id>/<uuid>``; the job reads it back by key, so any worker can run it, and deletes it
once the rows are in (it holds personal data). Uploads and results are audited with counts only.
"""
from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import re
import unicodedata
import uuid
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Callable

import sqlalchemy as sa
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from lp_saas.academics.models import ClassMembership, Course, Enrollment, ParentLink, SchoolClass, StudentRecord
from lp_saas.accounts import services as accounts
from lp_saas.accounts.models import User
from lp_saas.audit import services as audit
from lp_saas.database import db
from lp_saas.errors import ValidationFailed
from lp_saas.jobs.models import Job
from lp_saas.jobs.queue import job_kind, submit
from lp_saas.records import services as records
from lp_saas.roles import permissions

JOB_KIND = "import_file"
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
MAX_COLUMNS = 60
MAX_UNPACKED = 100 * 1024 * 1024  # an .xlsx is a zip: refuse one that unpacks to more than this
BATCH = 500  # rows per commit
BLANK_STREAK_ENDS = 1000  # this many blank rows in a row end the data (sheets formatted to the bottom)
REFUSED_KEPT = 1000  # refused rows listed in the report (all are counted)
STAFF_ROLES_REFUSED = ("school_admin", "student", "parent")  # never granted by a teachers file


class FileRefused(ValidationFailed):
    """The whole file is refused (type, encoding, size, columns): 422 with ``{"file": reason}``."""

    def __init__(self, message):
        super().__init__({"file": str(message)}, message)


class FileTooLarge(FileRefused):
    status = 413
    code = "too_large"


def _sealed_message():  # the permission module's own wording, translated when called
    return _("This student has graduated: their data is sealed and can no longer be changed.")


class RowRefused(Exception):
    def __init__(self, errors: dict):
        super().__init__("row refused")
        self.errors = errors


# --- columns ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    description: object  # lazy string
    example: str = ""
    aliases: tuple[str, ...] = ()
    required: bool = False

    def names(self) -> set[str]:
        return {normalize_header(n) for n in (self.key, self.zh, *self.aliases)}


def normalize_header(text) -> str:
    text = unicodedata.normalize("NFKC", str(text or "")).lower()
    return re.sub(r"[\s_\-*＊:：()（）\ufeff]", "", text)


_COLUMNS = {c.key: c for c in (
    Column("username", "帳號", _l("Sign-in username: letters, digits and . _ - @"), "s113001",
           ("登入帳號", "使用者帳號", "使用者名稱", "account", "login")),
    Column("display_name", "姓名", _l("Full name as shown on pages"), "王小明", ("name", "名稱")),
    Column("student_no", "學號", _l("Student number (letters and digits)"), "113001",
           ("student number", "studentno", "學生學號")),
    Column("class_name", "班級", _l("Homeroom class name"), "101", ("class", "班別", "班級名稱", "班級代號")),
    Column("academic_year", "學年度", _l("Academic year in the ROC calendar; blank: the current one"), "113",
           ("學年", "year", "school year")),
    Column("semester", "學期", _l("Semester 1 or 2; blank: the current one"), "1", ("term",)),
    Column("national_id", "身分證號", _l("National ID or resident certificate number (check digit verified)"),
           "A123456789", ("身分證字號", "身分證統一編號", "身分證", "統一證號", "居留證號", "id number", "nationalid")),
    Column("birth_date", "生日", _l("Birth date: 2008-05-01 or ROC 97/05/01"), "97/05/01",
           ("出生日期", "出生年月日", "birthday", "date of birth", "birthdate")),
    Column("gender", "性別", _l("M or F (男/女)"), "男", ("sex",)),
    Column("guardian_name", "監護人", _l("Guardian's name"), "王大明", ("監護人姓名", "guardian")),
    Column("guardian_phone", "監護人電話", _l("Guardian's phone number"), "0912345678",
           ("家長電話", "聯絡電話", "guardian phone")),
    Column("department", "科別", _l("Department or programme"), "普通科", ("學程", "科系")),
    Column("admission_year", "入學年度", _l("Academic year of admission (ROC)"), "113", ("入學學年度",)),
    Column("address", "地址", _l("Mailing address"), "", ("通訊地址", "住址")),
    Column("password", "密碼", _l("Initial password, used only when the account is created (blank: the school "
                                   "resets it later)"), "", ("初始密碼", "預設密碼")),
    Column("email", "電子郵件", _l("E-mail address"), "teacher@example.edu.tw", ("e-mail", "mail", "email address")),
    Column("roles", "角色", _l("Role keys separated by commas (default: teacher), such as teacher, "
                               "homeroom_teacher, course_counselor"), "teacher", ("role", "身分")),
    Column("grade", "年級", _l("Grade 10, 11 or 12 (1 to 3 and 高一 to 高三 are understood too)"), "10",
           ("grade level",)),
    Column("homeroom_username", "導師帳號", _l("Username of the homeroom teacher"), "t.chen",
           ("導師", "homeroom teacher", "homeroom")),
    Column("course_code", "課程代碼", _l("Course code from the course-plan platform"), "113074308H1110101",
           ("code", "course code", "科目代碼", "課程代號")),
    Column("course_name", "科目名稱", _l("Course (subject) name"), "數學", ("課程名稱", "name", "course name")),
    Column("credits", "學分", _l("Credits, 0 to 30"), "4", ("學分數",)),
    Column("subject", "學科", _l("Subject area"), "數學", ("領域", "subject area")),
    Column("teacher_username", "授課教師帳號", _l("Username of the course teacher"), "t.chen",
           ("教師帳號", "任課教師帳號", "任課教師", "teacher")),
    Column("deputy_username", "代理教師帳號", _l("Username of the deputy (職務代理人)"), "t.lin",
           ("職務代理人帳號", "代理人", "deputy")),
    Column("parent_username", "家長帳號", _l("Username of the parent's account"), "p113001", ("parent", "parent account")),
    Column("parent_name", "家長姓名", _l("Parent's full name"), "王大明", ("parent name",)),
    Column("score", "成績", _l("Score 0 to 100, two decimals at most"), "85.5", ("分數", "學期成績", "原始成績")),
    Column("passed", "及格", _l("Passed: 1/0, Y/N or 是/否; blank: score 60 or more"), "是",
           ("是否及格", "通過", "pass")),
    Column("credits_earned", "實得學分", _l("Credits earned; blank: the course's credits when passed"), "4",
           ("取得學分", "獲得學分", "earned credits")),
    Column("retake", "重修", _l("Retake (重修): yes or no"), "", ()),
    Column("makeup", "補修", _l("Make-up (補修): yes or no"), "", ("make-up",)),
    Column("level", "幹部層級", _l("School, class or club (校級/班級/社團)"), "班級", ("層級", "級別")),
    Column("unit", "單位", _l("Where the role was held, such as the class or club name"), "101", ("服務單位",)),
    Column("title", "職稱", _l("Cadre title"), "班長", ("幹部名稱", "職務")),
    Column("club", "社團", _l("Club name"), "熱音社", ("社團名稱",)),
    Column("role", "社團職務", _l("Role in the club (blank: member)"), "社長", ("club role",)),
    Column("school_days", "應出席日數", _l("School days in the semester (0 to 200)"), "100", ("上課日數", "days")),
    Column("absences", "曠課節數", _l("Unexcused absences, in class periods"), "0", ("曠課",)),
    Column("sick_leave", "病假節數", _l("Sick leave, in class periods"), "2", ("病假",)),
    Column("personal_leave", "事假節數", _l("Personal leave, in class periods"), "1", ("事假",)),
    Column("preference", "志願序", _l("Preference order, 1 to 99 (default 1)"), "1", ("志願",)),
    Column("status", "選課狀態", _l("chosen, admitted or declined (已選/錄取/未錄取)"), "錄取", ("狀態",)),
)}


def _cols(*keys: str) -> tuple[Column, ...]:
    """The named columns; a trailing ``*`` marks a required one."""
    return tuple(dataclasses.replace(_COLUMNS[k.rstrip("*")], required=k.endswith("*")) for k in keys)


@dataclass(frozen=True)
class ImportKind:
    key: str
    title: object
    description: object
    permission: str
    columns: tuple[Column, ...]
    apply: Callable  # (ImportRun, values) -> "created" | "updated" | "unchanged"; raises RowRefused
    row_keys: Callable  # values -> [key tuples] that must not repeat within one file

    @property
    def lookup(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for column in self.columns:
            for name in column.names():
                assert out.get(name, column.key) == column.key, f"{self.key}: header {name} is ambiguous"
                out[name] = column.key
        return out

    @property
    def required(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.required)


# --- reading a file ----------------------------------------------------------------------------

@dataclass
class Table:
    format: str  # xlsx | csv
    encoding: str | None
    header: list
    rows: list  # [(row number, [cells])], blank rows left out
    blank_rows: int = 0


_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def read_table(data: bytes) -> Table:
    """The header and rows of an .xlsx or CSV file, told apart by content. Raises FileRefused."""
    if not data:
        raise FileRefused(_l("The file is empty."))
    if len(data) > MAX_BYTES:
        raise FileTooLarge(_l("The file is larger than %(mb)s MB; split it into smaller files.", mb=MAX_BYTES // 2**20))
    if data.startswith(b"PK\x03\x04"):
        return _read_xlsx(data)
    if data.startswith(_OLE):
        raise FileRefused(_l("This is an old Excel (.xls) or password-protected workbook. Save it as .xlsx or "
                             "CSV without a password, then upload it again."))
    return _read_csv(data)


def _cell(value):
    """A cell as text, or a date; numbers as typed in Excel (4 → "4", 85.5 → "85.5")."""
    if value is None:
        return None
    if isinstance(value, (datetime, date, bool)):
        return value
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else format(value, ".10g")
    text = str(value).replace("\ufeff", "").strip()
    return text or None


def _is_blank_row(cells) -> bool:
    return all(records.is_blank(c) for c in cells)


def _rows(iterator, table: Table) -> Table:
    streak = 0
    for number, cells in enumerate(iterator, start=2):
        cells = [_cell(c) for c in cells]
        if _is_blank_row(cells):
            table.blank_rows += 1
            streak += 1
            if streak >= BLANK_STREAK_ENDS:
                break  # formatted but empty rows to the bottom of the sheet: the data has ended
            continue
        streak = 0
        if len(cells) > MAX_COLUMNS:
            cells = cells[:MAX_COLUMNS]
        table.rows.append((number, cells))
        if len(table.rows) > MAX_ROWS:
            raise FileRefused(_l("The file has more than %(rows)s rows; split it into smaller files.", rows=MAX_ROWS))
    return table


def _header(cells) -> list:
    header = [_cell(c) for c in (cells or [])]
    if not header or _is_blank_row(header):
        raise FileRefused(_l("The first row must hold the column names."))
    if len([h for h in header if not records.is_blank(h)]) > MAX_COLUMNS:
        raise FileRefused(_l("The file has more than %(columns)s columns.", columns=MAX_COLUMNS))
    return header


def _read_xlsx(data: bytes) -> Table:
    import openpyxl

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError):
        raise FileRefused(_l("The file is damaged: it starts like an Excel workbook but cannot be opened.")) from None
    if "xl/workbook.xml" not in names or "[Content_Types].xml" not in names:
        raise FileRefused(_l("This is a ZIP file, not an Excel workbook (.xlsx)."))
    if unpacked > MAX_UNPACKED:
        raise FileRefused(_l("The workbook is too large when unpacked; remove pictures and other sheets, "
                             "or save it as CSV."))
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - openpyxl raises many kinds on a damaged file
        raise FileRefused(_l("The Excel workbook cannot be read; open it in Excel and save it again.")) from None
    try:
        if not workbook.worksheets:
            raise FileRefused(_l("The workbook has no worksheet."))
        rows = workbook.worksheets[0].iter_rows(values_only=True)
        header = _header(next(rows, None))
        return _rows(rows, Table("xlsx", None, header, []))
    except FileRefused:
        raise
    except Exception:  # noqa: BLE001
        raise FileRefused(_l("The Excel workbook cannot be read; open it in Excel and save it again.")) from None
    finally:
        workbook.close()


def decode_text(data: bytes) -> tuple[str, str]:
    """(text, encoding) of a text file: UTF-8 (BOM or not), UTF-16 with a BOM, else Big5 (CP950)."""
    if data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    elif b"\x00" not in data:
        if data.startswith(codecs.BOM_UTF8):
            candidates = ("utf-8-sig",)
        else:
            candidates = ("utf-8", "cp950", "big5hkscs")
        for encoding in candidates:
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError:
                continue
    raise FileRefused(_l("This is neither an Excel workbook (.xlsx) nor a CSV text file in UTF-8 or Big5. "
                         "Save the sheet as .xlsx or as CSV, then upload it again."))


def _read_csv(data: bytes) -> Table:
    text, encoding = decode_text(data)
    text = text.lstrip("\ufeff")
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", "\t", ";"), key=first_line.count)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        header = _header(next(reader, None))
        return _rows(reader, Table("csv", encoding, header, []))
    except csv.Error:
        raise FileRefused(_l("The CSV file cannot be read: check its quotes and separators.")) from None


@dataclass
class ColumnMap:
    positions: dict[str, int]
    ignored: list[str]

    def values(self, cells) -> dict:
        return {key: (cells[i] if i < len(cells) else None) for key, i in self.positions.items()}


def map_columns(kind: ImportKind, header) -> ColumnMap:
    """Which column of the file holds which field. Raises FileRefused naming the missing or repeated ones."""
    lookup = kind.lookup
    positions: dict[str, int] = {}
    ignored: list[str] = []
    for index, name in enumerate(header):
        if records.is_blank(name):
            continue
        key = lookup.get(normalize_header(name))
        if key is None:
            ignored.append(str(name)[:60])
        elif key in positions:
            raise FileRefused(_l("The column %(column)s appears twice in the first row.", column=str(name)[:60]))
        else:
            positions[key] = index
    missing = [c for c in kind.required if c.key not in positions]
    if missing:
        raise FileRefused(_l("These columns are missing from the first row: %(columns)s.",
                             columns="、".join(f"{c.zh} ({c.key})" for c in missing)))
    return ColumnMap(positions, ignored)


# --- one run --------------------------------------------------------------------------------

class ImportRun:
    """What the rows of one import share: the school, the acting user, the current term, lookups."""

    def __init__(self, tenant, actor, job_id, kind: ImportKind):
        self.tenant = tenant
        self.actor = actor
        self.job_id = job_id
        self.kind = kind
        self.default_term = records.current_term_key(tenant)
        self._courses: dict = {}
        self._roles = None

    def school_roles(self):
        if self._roles is None:
            from lp_saas.roles.services import roles_of_school

            self._roles = roles_of_school(self.tenant.id)
        return self._roles

    # lookups --------------------------------------------------------------------------------

    def user(self, username) -> User | None:
        return accounts.find_user(self.tenant.id, username)

    def key_text(self, values: dict, field: str, errors: dict, *, max_len: int, required: bool = True,
                 pattern: str | None = None) -> str | None:
        raw = values.get(field)
        if records.is_blank(raw):
            if required:
                errors[field] = _("This field is required.")
            return None
        text = unicodedata.normalize("NFKC", str(raw)).strip()
        if len(text) > max_len:
            errors[field] = _("At most %(max)s characters.", max=max_len)
            return None
        if pattern and not re.fullmatch(pattern, text):
            errors[field] = _("Use letters, digits and - _ . only.")
            return None
        return text

    def student(self, values: dict, errors: dict) -> User | None:
        number = self.key_text(values, "student_no", errors, max_len=20)
        if number is None:
            return None
        found = records.student_by_number(self.tenant, number)
        if found is None or not records.is_student(found):
            errors["student_no"] = _("No student of this school has this student number.")
            return None
        if not self.may_change(found):
            errors["student_no"] = _sealed_message()
            return None
        return found

    def may_change(self, student: User) -> bool:
        """The kind's permission is school-wide; only a sealed graduate is out of its reach."""
        return permissions.can(self.actor, self.kind.permission, student_id=student.id)

    def staff(self, values: dict, field: str, errors: dict, *, required: bool) -> User | None:
        """A teacher or other staff account by username (not a student or parent)."""
        username = self.key_text(values, field, errors, max_len=64, required=required)
        if username is None:
            return None
        found = self.user(username)
        if found is None:
            errors[field] = _("No account of this school has this username.")
            return None
        keys = {r.key for r in permissions.user_roles(found)}
        if not keys or keys <= {"student", "parent"}:
            errors[field] = _("This account is not a member of staff.")
            return None
        return found

    def course(self, values: dict, errors: dict) -> Course | None:
        code = self.key_text(values, "course_code", errors, max_len=40)
        year_raw, semester_raw = values.get("academic_year"), values.get("semester")
        if records.is_blank(year_raw) and records.is_blank(semester_raw):
            if code is None:
                return None
            found = list(db.session.scalars(sa.select(Course).where(
                Course.tenant_id == self.tenant.id, Course.code == code).limit(2)))
            if len(found) > 1:
                errors["academic_year"] = _("Several semesters have a course with this code: give the academic "
                                            "year and semester.")
                return None
            if not found:
                errors["course_code"] = _("No course of this school has this code.")
                return None
            return found[0]
        year, semester = records.parse_term(values, errors)
        if code is None or year is None or semester is None:
            return None
        cache_key = (code, year, semester)
        if cache_key not in self._courses:
            self._courses[cache_key] = db.session.scalar(sa.select(Course).where(
                Course.tenant_id == self.tenant.id, Course.code == code, Course.academic_year == year,
                Course.semester == semester))
        course = self._courses[cache_key]
        if course is None:
            errors["course_code"] = _("No course with this code in that semester.")
        return course

    def with_term(self, values: dict) -> dict:
        """The row's values with a blank academic year and semester filled with the current term."""
        if records.is_blank(values.get("academic_year")) and records.is_blank(values.get("semester")):
            return {**values, "academic_year": self.default_term[0], "semester": self.default_term[1]}
        return values

    def audit(self, action: str, **kwargs) -> None:
        details = kwargs.pop("details", {}) or {}
        audit.record(self.tenant.id, self.actor, action, details={**details, "via": "import",
                                                                   "job_id": str(self.job_id)}, **kwargs)


def _password(run: ImportRun, values: dict, username, errors: dict) -> str | None:
    raw = values.get("password")
    if records.is_blank(raw):
        return None
    problem = accounts.password_problem(str(raw), username)
    if problem:
        errors["password"] = problem
        return None
    return str(raw)


def _username(run: ImportRun, values: dict, field: str, errors: dict) -> str | None:
    raw = values.get(field)
    if records.is_blank(raw):
        errors[field] = _("This field is required.")
        return None
    username = unicodedata.normalize("NFKC", str(raw)).strip()
    problem = accounts.username_problem(username)
    if problem:
        errors[field] = problem
        return None
    return username


def _new_account(run: ImportRun, *, username, display_name, password, roles, student_no=None, email=None) -> User:
    user = accounts.create_user(run.tenant, run.actor, username=username, display_name=display_name,
                                password=password, roles=roles, student_no=student_no, email=email)
    user.must_change_password = password is not None
    return user


def _add_roles(run: ImportRun, user: User, wanted: list[str]) -> bool:
    from lp_saas.roles.services import set_user_roles

    held = [r.key for r in permissions.user_roles(user)]
    missing = [k for k in wanted if k not in held]
    if missing:
        set_user_roles(run.tenant, run.actor, user, held + missing)
    return bool(missing)


# --- the kinds -----------------------------------------------------------------------------

_STUDENT_NO = r"[A-Za-z0-9]{1,20}"
_CODE = r"[A-Za-z0-9._-]{1,40}"


def _apply_students(run: ImportRun, values: dict) -> str:
    errors: dict[str, str] = {}
    username = _username(run, values, "username", errors)
    display_name = records.clean_text(values.get("display_name"), "display_name", errors, max_len=100, required=True)
    student_no = run.key_text(values, "student_no", errors, max_len=20, pattern=_STUDENT_NO)
    class_name = records.clean_text(values.get("class_name"), "class_name", errors, max_len=40, required=True)
    year = records.parse_int(values.get("academic_year"), "academic_year", errors, lo=100, hi=200) \
        or run.default_term[0]
    password = _password(run, values, username, errors)
    record_raw = {f: values[f] for f in records.RECORD_FIELDS if not records.is_blank(values.get(f))}
    record_values, record_errors = records.clean_record(record_raw)
    errors.update(record_errors)
    existing = run.user(username) if username else None
    if existing is not None and not records.is_student(existing):
        errors["username"] = _("This username belongs to an account that is not a student.")
    elif existing is not None and not run.may_change(existing):
        errors["username"] = _sealed_message()
    if student_no:
        holder = records.student_by_number(run.tenant, student_no)
        if holder is not None and (existing is None or holder.id != existing.id):
            errors["student_no"] = _("Another account already has this student number.")
    if record_values.get("national_id"):
        taken = db.session.scalar(sa.select(StudentRecord.student_id).where(
            StudentRecord.tenant_id == run.tenant.id, StudentRecord.national_id == record_values["national_id"]))
        if taken is not None and (existing is None or taken != existing.id):
            errors["national_id"] = _("Another student of this school has this number.")
    if errors:
        raise RowRefused(errors)
    outcome = "unchanged"
    if existing is None:
        student = _new_account(run, username=username, display_name=display_name, password=password,
                               roles=["student"], student_no=student_no)
        outcome = "created"
    else:
        student = existing
        changed = [f for f, v in (("display_name", display_name), ("student_no", student_no))
                   if getattr(student, f) != v]
        if changed:
            student.display_name, student.student_no = display_name, student_no
            run.audit("user.updated", target_type="user", target_id=student.id, student_id=student.id,
                      details={"fields": changed})
            outcome = "updated"
    if _place_in_class(run, student, class_name, year) and outcome == "unchanged":
        outcome = "updated"
    if records.update_record(run.tenant, run.actor, student, record_raw, via="import", job_id=run.job_id,
                             keep_blanks=True) and outcome == "unchanged":
        outcome = "updated"
    return outcome


def _place_in_class(run: ImportRun, student: User, class_name: str, year: int) -> bool:
    """Put the student in the class of that year, out of any other class of the same year."""
    from lp_saas.academics.services import get_or_create_class

    school_class = get_or_create_class(run.tenant, class_name, year)
    current = list(db.session.execute(
        sa.select(ClassMembership, SchoolClass.name)
        .join(SchoolClass, sa.and_(SchoolClass.tenant_id == ClassMembership.tenant_id,
                                   SchoolClass.id == ClassMembership.class_id))
        .where(ClassMembership.tenant_id == run.tenant.id, ClassMembership.student_id == student.id,
               SchoolClass.academic_year == year)))
    if [m.class_id for m, _name in current] == [school_class.id]:
        return False
    for membership, _name in current:
        if membership.class_id != school_class.id:
            db.session.delete(membership)
    if all(m.class_id != school_class.id for m, _name in current):
        db.session.add(ClassMembership(tenant_id=run.tenant.id, class_id=school_class.id, student_id=student.id))
    db.session.flush()
    run.audit("student.class_placed", target_type="class", target_id=school_class.id, student_id=student.id,
              details={"academic_year": year})
    return True


def _apply_teachers(run: ImportRun, values: dict) -> str:
    errors: dict[str, str] = {}
    username = _username(run, values, "username", errors)
    display_name = records.clean_text(values.get("display_name"), "display_name", errors, max_len=100, required=True)
    email = records.clean_text(values.get("email"), "email", errors, max_len=254)
    if email:
        from email_validator import EmailNotValidError, validate_email

        try:
            email = validate_email(email, check_deliverability=False).normalized
        except EmailNotValidError:
            errors["email"] = _("Enter a valid e-mail address.")
    role_keys = ["teacher"]
    if not records.is_blank(values.get("roles")):
        role_keys = [k for k in re.split(r"[\s,;、，；]+", str(values["roles"]).strip()) if k]
        school_roles = {r.key for r in run.school_roles()}
        unknown = [k for k in role_keys if k not in school_roles]
        refused = [k for k in role_keys if k in STAFF_ROLES_REFUSED]
        if unknown:
            errors["roles"] = _("Unknown roles: %(roles)s.", roles=", ".join(unknown)[:200])
        elif refused:
            errors["roles"] = _("A staff import cannot give these roles: %(roles)s.", roles=", ".join(refused))
    password = _password(run, values, username, errors)
    existing = run.user(username) if username else None
    if existing is not None and ({r.key for r in permissions.user_roles(existing)} & {"student", "parent"}):
        errors["username"] = _("This username belongs to a student or parent account.")
    if errors:
        raise RowRefused(errors)
    if existing is None:
        _new_account(run, username=username, display_name=display_name, password=password, roles=role_keys,
                     email=email)
        return "created"
    wanted = {"display_name": display_name, **({"email": email} if email else {})}
    changed = [field for field, value in wanted.items() if getattr(existing, field) != value]
    for field in changed:
        setattr(existing, field, wanted[field])
    if changed:
        run.audit("user.updated", target_type="user", target_id=existing.id, details={"fields": changed})
    roles_added = _add_roles(run, existing, role_keys)
    return "updated" if changed or roles_added else "unchanged"


_GRADE_WORDS = {"高一": 10, "高二": 11, "高三": 12, "一年級": 10, "二年級": 11, "三年級": 12}


def _parse_grade(values: dict, errors: dict) -> int | None:
    raw = values.get("grade")
    if records.is_blank(raw):
        return None
    text = unicodedata.normalize("NFKC", str(raw)).strip()
    if text in _GRADE_WORDS:
        return _GRADE_WORDS[text]
    grade = records.parse_int(text, "grade", errors, lo=1, hi=12)
    if grade is not None and 1 <= grade <= 3:
        grade += 9
    if grade is not None and grade not in (10, 11, 12):
        errors["grade"] = _("The grade is 10, 11 or 12.")
        return None
    return grade


def _apply_classes(run: ImportRun, values: dict) -> str:
    from lp_saas.academics.services import get_or_create_class

    errors: dict[str, str] = {}
    name = records.clean_text(values.get("class_name"), "class_name", errors, max_len=40, required=True)
    grade = _parse_grade(values, errors)
    year = records.parse_int(values.get("academic_year"), "academic_year", errors, lo=100, hi=200) \
        or run.default_term[0]
    teacher = run.staff(values, "homeroom_username", errors, required=False)
    if errors:
        raise RowRefused(errors)
    existed = db.session.scalar(sa.select(SchoolClass.id).where(
        SchoolClass.tenant_id == run.tenant.id, SchoolClass.academic_year == year, SchoolClass.name == name))
    school_class = get_or_create_class(run.tenant, name, year, grade)
    changed = []
    if grade is not None and school_class.grade != grade:
        school_class.grade = grade
        changed.append("grade")
    if teacher is not None and school_class.homeroom_teacher_id != teacher.id:
        school_class.homeroom_teacher_id = teacher.id
        changed.append("homeroom_teacher")
        if any(r.key == "homeroom_teacher" for r in run.school_roles()):
            _add_roles(run, teacher, ["homeroom_teacher"])  # the class scope rests on this role
    db.session.flush()
    if existed is None or changed:
        run.audit("class.saved", target_type="class", target_id=school_class.id,
                  details={"fields": changed, "created": existed is None})
    return "created" if existed is None else ("updated" if changed else "unchanged")


def _apply_courses(run: ImportRun, values: dict) -> str:
    errors: dict[str, str] = {}
    code = run.key_text(values, "course_code", errors, max_len=40, pattern=_CODE)
    name = records.clean_text(values.get("course_name"), "course_name", errors, max_len=100, required=True)
    credits = records.parse_int(values.get("credits"), "credits", errors, lo=0, hi=30, required=True)
    year, semester = records.parse_term(values, errors, run.default_term)
    grade = _parse_grade(values, errors)
    subject = records.clean_text(values.get("subject"), "subject", errors, max_len=60)
    teacher = run.staff(values, "teacher_username", errors, required=True)
    deputy = run.staff(values, "deputy_username", errors, required=False)
    if teacher is not None and deputy is not None and teacher.id == deputy.id:
        errors["deputy_username"] = _("The deputy must be someone other than the teacher.")
    if errors:
        raise RowRefused(errors)
    wanted = {"name": name, "credits": credits, "teacher_id": teacher.id}
    if grade is not None:
        wanted["grade"] = grade
    if subject is not None:
        wanted["subject"] = subject
    if deputy is not None:
        wanted["deputy_id"] = deputy.id
    course = db.session.scalar(sa.select(Course).where(
        Course.tenant_id == run.tenant.id, Course.code == code, Course.academic_year == year,
        Course.semester == semester))
    if course is None:
        course = Course(tenant_id=run.tenant.id, code=code, academic_year=year, semester=semester, **wanted)
        db.session.add(course)
        db.session.flush()
        run.audit("course.created", target_type="course", target_id=course.id)
        return "created"
    changed = [k for k, v in wanted.items() if getattr(course, k) != v]
    if not changed:
        return "unchanged"
    for key in changed:
        setattr(course, key, wanted[key])
    db.session.flush()
    run.audit("course.updated", target_type="course", target_id=course.id, details={"fields": changed})
    return "updated"


def _apply_enrollments(run: ImportRun, values: dict) -> str:
    errors: dict[str, str] = {}
    course = run.course(values, errors)
    student = run.student(values, errors)
    if errors:
        raise RowRefused(errors)
    if db.session.get(Enrollment, (run.tenant.id, course.id, student.id)) is not None:
        return "unchanged"
    db.session.add(Enrollment(tenant_id=run.tenant.id, course_id=course.id, student_id=student.id))
    db.session.flush()
    run.audit("course.enrolled", target_type="course", target_id=course.id, student_id=student.id)
    return "created"


def _apply_parents(run: ImportRun, values: dict) -> str:
    errors: dict[str, str] = {}
    username = _username(run, values, "parent_username", errors)
    name = records.clean_text(values.get("parent_name"), "parent_name", errors, max_len=100, required=True)
    student = run.student(values, errors)
    password = _password(run, values, username, errors)
    existing = run.user(username) if username else None
    if existing is not None and records.is_student(existing):
        errors["parent_username"] = _("This username belongs to a student.")
    if errors:
        raise RowRefused(errors)
    outcome = "unchanged"
    if existing is None:
        parent = _new_account(run, username=username, display_name=name, password=password, roles=["parent"])
    else:
        parent = existing
        if parent.display_name != name:
            parent.display_name = name
            run.audit("user.updated", target_type="user", target_id=parent.id, details={"fields": ["display_name"]})
            outcome = "updated"
        if _add_roles(run, parent, ["parent"]):
            outcome = "updated"
    if db.session.get(ParentLink, (run.tenant.id, parent.id, student.id)) is None:
        db.session.add(ParentLink(tenant_id=run.tenant.id, parent_id=parent.id, student_id=student.id))
        db.session.flush()
        run.audit("parent.linked", target_type="user", target_id=parent.id, student_id=student.id)
        outcome = "created"  # the row's record is the link between this parent and this child
    return outcome


def _service_row(call) -> str:
    """Run a records service for a row; its ValidationFailed refuses the row (nothing was written)."""
    try:
        result = call()
    except ValidationFailed as failed:
        raise RowRefused(failed.details) from None
    return result


def _apply_grades(run: ImportRun, values: dict) -> str:
    errors: dict[str, str] = {}
    course = run.course(values, errors)
    student = run.student(values, errors)
    if errors:
        raise RowRefused(errors)
    return _service_row(lambda: records.save_grade(run.tenant, run.actor, course, student.id, values,
                                                   via="import", job_id=run.job_id))


def _apply_electives(run: ImportRun, values: dict) -> str:
    errors: dict[str, str] = {}
    course = run.course(values, errors)
    student = run.student(values, errors)
    if errors:
        raise RowRefused(errors)
    return _service_row(lambda: records.save_elective(run.tenant, run.actor, course, student.id, values,
                                                      via="import", job_id=run.job_id))


def _apply_cadre_roles(run: ImportRun, values: dict) -> str:
    errors: dict[str, str] = {}
    student = run.student(values, errors)
    if errors:
        raise RowRefused(errors)
    _row, created = _service_row(lambda: records.add_cadre_role(run.tenant, run.actor, student.id,
                                                                run.with_term(values), via="import",
                                                                job_id=run.job_id))
    return "created" if created else "unchanged"


def _apply_clubs(run: ImportRun, values: dict) -> str:
    errors: dict[str, str] = {}
    student = run.student(values, errors)
    if errors:
        raise RowRefused(errors)
    return _service_row(lambda: records.add_club_record(run.tenant, run.actor, student.id, run.with_term(values),
                                                        via="import", job_id=run.job_id))[1]


def _apply_attendance(run: ImportRun, values: dict) -> str:
    errors: dict[str, str] = {}
    student = run.student(values, errors)
    if errors:
        raise RowRefused(errors)
    return _service_row(lambda: records.save_attendance(run.tenant, run.actor, student.id, run.with_term(values),
                                                        via="import", job_id=run.job_id))[1]


def _k(values: dict, *fields: str) -> tuple:
    """A row's key for "the same record twice in one file": the fields' names, then their values."""
    return (",".join(fields),) + tuple(unicodedata.normalize("NFKC", str(values.get(f) or "")).strip().lower()
                                       for f in fields)


def _course_student_key(values):
    return [_k(values, "course_code", "academic_year", "semester", "student_no")]


KINDS: dict[str, ImportKind] = {k.key: k for k in (
    ImportKind("students", _l("Students"), _l("Student accounts, their class and their registration data."),
               "roster.edit",
               _cols("username*", "display_name*", "student_no*", "class_name*", "academic_year", "national_id",
                     "birth_date", "gender", "guardian_name", "guardian_phone", "department", "admission_year",
                     "address", "password"),
               _apply_students, lambda v: [_k(v, "username"), _k(v, "student_no")]),
    ImportKind("teachers", _l("Teachers and staff"), _l("Staff accounts and their roles (roles are only added)."),
               "roster.edit", _cols("username*", "display_name*", "email", "roles", "password"),
               _apply_teachers, lambda v: [_k(v, "username")]),
    ImportKind("classes", _l("Classes"), _l("Homeroom classes of an academic year and their homeroom teachers."),
               "roster.edit", _cols("class_name*", "grade", "academic_year", "homeroom_username"),
               _apply_classes, lambda v: [_k(v, "academic_year", "class_name")]),
    ImportKind("courses", _l("Courses"), _l("Courses of a semester with their teacher and deputy."),
               "roster.edit",
               _cols("course_code*", "course_name*", "credits*", "academic_year", "semester", "grade", "subject",
                     "teacher_username*", "deputy_username"),
               _apply_courses, lambda v: [_k(v, "course_code", "academic_year", "semester")]),
    ImportKind("enrollments", _l("Enrolments"), _l("Which students take which course."), "roster.edit",
               _cols("course_code*", "academic_year", "semester", "student_no*"),
               _apply_enrollments, _course_student_key),
    ImportKind("parents", _l("Parents"), _l("Parent accounts and their children (by student number)."),
               "roster.edit", _cols("parent_username*", "parent_name*", "student_no*", "password"),
               _apply_parents, lambda v: [_k(v, "parent_username", "student_no")]),
    ImportKind("grades", _l("Grades"), _l("Students' results in the courses they are enrolled in (註冊組)."),
               "grades.import",
               _cols("course_code*", "academic_year", "semester", "student_no*", "score", "passed", "credits_earned",
                     "retake", "makeup"),
               _apply_grades, _course_student_key),
    ImportKind("cadre_roles", _l("Cadre roles"), _l("School, class and club cadre roles of a semester (訓育組)."),
               "cadre_roles.edit",
               _cols("student_no*", "academic_year", "semester", "level*", "unit*", "title*"),
               _apply_cadre_roles,
               lambda v: [_k(v, "student_no", "academic_year", "semester", "level", "unit", "title")]),
    ImportKind("clubs", _l("Clubs"), _l("Club memberships of a semester (社團組)."), "clubs.edit",
               _cols("student_no*", "academic_year", "semester", "club*", "role"),
               _apply_clubs, lambda v: [_k(v, "student_no", "academic_year", "semester", "club")]),
    ImportKind("attendance", _l("Attendance"), _l("Each student's attendance summary of a semester (生輔組)."),
               "attendance.edit",
               _cols("student_no*", "academic_year", "semester", "school_days*", "absences", "sick_leave",
                     "personal_leave"),
               _apply_attendance, lambda v: [_k(v, "student_no", "academic_year", "semester")]),
    ImportKind("electives", _l("Elective choices"),
               _l("Students' elective course choices after course selection (教學組)."),
               "course_selection.edit",
               _cols("course_code*", "academic_year", "semester", "student_no*", "preference", "status"),
               _apply_electives, _course_student_key),
)}

for _kind in KINDS.values():
    _kind.lookup  # noqa: B018 - fail at import time if two columns of a kind share a header name


def kinds_for(actor) -> list[ImportKind]:
    """The kinds ``actor`` may import: each needs its permission for the whole school."""
    return [k for k in KINDS.values() if permissions.has_school_wide(actor, k.permission)]


# --- submitting and running ------------------------------------------------------------------

def _safe_filename(name) -> str:
    name = re.split(r"[\\/]", str(name or ""))[-1]
    name = "".join(c for c in name if c.isprintable())[:200].strip()
    return name or "upload"


def start_import(tenant, actor, kind: ImportKind, data: bytes, filename: str | None, locale: str) -> Job:
    """Check a file, store it in the school's bucket and record the job that imports it.

    Needs ``kind.permission`` for the whole school (the caller checks). Raises FileRefused (422)
    for a file that cannot be imported at all; nothing is stored then. Flush only: the job is
    dispatched after the caller commits.
    """
    from lp_saas.storage import get_storage

    table = read_table(data)
    map_columns(kind, table.header)
    if not table.rows:
        raise FileRefused(_l("The file has column names but no rows."))
    job = submit(tenant.id, JOB_KIND, {"kind": kind.key, "filename": _safe_filename(filename), "locale": locale,
                                       "format": table.format, "rows": len(table.rows)}, created_by=actor)
    key = f"imports/{job.id}/{uuid.uuid4()}"
    content_type = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                    if table.format == "xlsx" else "text/csv")
    get_storage().put_bytes(tenant.bucket, key, data, content_type)
    job.args = {**job.args, "key": key}
    audit.record(tenant.id, actor, "import.submitted", target_type="job", target_id=job.id,
                 details={"kind": kind.key, "format": table.format, "encoding": table.encoding,
                          "rows": len(table.rows), "bytes": len(data)})
    db.session.flush()
    return job


def _empty_report(kind_key: str) -> dict:
    return {"kind": kind_key, "rows": 0, "created": 0, "updated": 0, "unchanged": 0, "refused_count": 0,
            "refused": [], "refused_truncated": False, "ignored_columns": []}


@job_kind(JOB_KIND, timeout=1800, max_attempts=3, backoff=(10, 60))
def run_import(job, progress) -> dict:
    """Import one stored file row by row (idempotent: a re-run upserts the same rows again)."""
    from lp_saas.storage import ObjectMissing, get_storage
    from lp_saas.tenants.context import current_tenant

    tenant = current_tenant()
    args = dict(job.args)
    kind = KINDS[args["kind"]]
    job_id = job.id
    report = _empty_report(kind.key)
    with force_locale(args.get("locale") or "zh_Hant_TW"):
        actor = db.session.get(User, (tenant.id, job.created_by_id)) if job.created_by_id else None
        if actor is None or not actor.can_sign_in() or not permissions.has_school_wide(actor, kind.permission):
            report["file_errors"] = {"file": _("The account that uploaded this file may no longer import it.")}
            return report
        storage = get_storage()
        try:
            if not args.get("key"):
                raise ObjectMissing("no key")
            data = storage.get_bytes(tenant.bucket, args["key"])
        except ObjectMissing:
            report["file_errors"] = {"file": _("The uploaded file is no longer stored; upload it again.")}
            return report
        try:
            table = read_table(data)
            columns = map_columns(kind, table.header)
        except FileRefused as refused:
            report["file_errors"] = {k: str(v) for k, v in refused.details.items()}
            return report
        report.update({"format": table.format, "encoding": table.encoding, "rows": len(table.rows),
                       "ignored_columns": columns.ignored})
        run = ImportRun(tenant, actor, job_id, kind)
        seen: dict[tuple, int] = {}
        total = len(table.rows) or 1
        for index, (number, cells) in enumerate(table.rows, start=1):
            values = columns.values(cells)
            outcome, errors = _import_row(run, values, number, seen)
            if errors:
                report["refused_count"] += 1
                if len(report["refused"]) < REFUSED_KEPT:
                    report["refused"].append({"row": number, "errors": errors})
                else:
                    report["refused_truncated"] = True
            else:
                report[outcome] += 1
            if index % BATCH == 0:
                progress(index * 100 // total)
                db.session.commit()
        audit.record(tenant.id, actor, "import.finished", target_type="job", target_id=job_id,
                     details={k: report[k] for k in ("kind", "rows", "created", "updated", "unchanged",
                                                     "refused_count")})
        db.session.commit()
        try:
            storage.delete_object(tenant.bucket, args["key"])
            job.args = {**job.args, "file_removed": True}
        except Exception:  # noqa: BLE001 - the rows are in; the reconciling sweep removes the leftover file
            pass
    return report


def _import_row(run: ImportRun, values: dict, number: int, seen: dict) -> tuple[str | None, dict | None]:
    keys = [key for key in run.kind.row_keys(values) if any(key[1:])]
    for key in keys:
        if key in seen:
            if len(key) == 2:  # one column that must not repeat: name it
                return None, {key[0]: _("Row %(row)s of this file already has this value.", row=seen[key])}
            return None, {"row": _("The same record is already in row %(row)s of this file.", row=seen[key])}
    try:
        with db.session.begin_nested():
            outcome = run.kind.apply(run, values)
        for key in keys:
            seen[key] = number
        return outcome, None
    except RowRefused as refused:
        return None, {k: str(v) for k, v in refused.errors.items()}
    except ValidationFailed as failed:
        return None, {k: str(v) for k, v in failed.details.items()}
    except IntegrityError:
        return None, {"row": _("This row conflicts with data changed at the same time; upload the file again.")}


# --- the template ------------------------------------------------------------------------------

def template_xlsx(kind: ImportKind, english: bool) -> bytes:
    """An empty workbook with the kind's column names (sheet 1) and what each column means (sheet 2)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "data" if english else "資料"
    sheet.append([c.key if english else c.zh for c in kind.columns])
    for index, column in enumerate(kind.columns, start=1):
        cell = sheet.cell(row=1, column=index)
        cell.font = Font(bold=True)
        if column.required:
            cell.fill = PatternFill("solid", fgColor="FFF2CC")
        letter = cell.column_letter
        sheet.column_dimensions[letter].width = max(12, len(column.zh) * 2 + 4, len(column.key) + 4)
        sheet.column_dimensions[letter].number_format = "@"  # keeps leading zeros of numbers typed as text
    sheet.freeze_panes = "A2"
    notes = workbook.create_sheet("columns" if english else "欄位說明")
    notes.append([_("Column (Chinese)"), _("Column (English)"), _("Required"), _("Description"), _("Example")])
    for cell in notes[1]:
        cell.font = Font(bold=True)
    for column in kind.columns:
        notes.append([column.zh, column.key, _("Yes") if column.required else "", str(column.description),
                      column.example])
    notes.append([])
    for line in policy_lines():
        notes.append([str(line)])
    for letter, width in zip("ABCDE", (16, 20, 8, 70, 20)):
        notes.column_dimensions[letter].width = width
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def policy_lines() -> list:
    return [
        _l("The first row holds the column names, in Chinese or English; columns may be in any order."),
        _l("A row with a problem is refused on its own: the other rows are imported, and the report lists each "
           "refused row with its reasons. Correct those rows and upload the same file again."),
        _l("Uploading a file again changes only what differs: rows already imported are left unchanged."),
        _l("A blank optional cell keeps the value already stored."),
        _l("Accepted: .xlsx (first sheet) or CSV in UTF-8 or Big5, up to %(mb)s MB and %(rows)s rows.",
           mb=MAX_BYTES // 2**20, rows=MAX_ROWS),
    ]
