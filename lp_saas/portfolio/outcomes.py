"""課程學習成果 (course learning outcomes): the student's upload, its verification, the teacher's certification.

The state machine (every transition is audited with its actor and the student's id)::

    create with a file  → awaiting_upload ─uploaded→ verifying ─job→ submitted | file_rejected
    create with a link  → submitted
    submitted ─certify→ certified          submitted ─return (reason)→ returned
    awaiting_upload | file_rejected | returned ─revise→ awaiting_upload (file) | submitted (link), revision + 1
    awaiting_upload | file_rejected | returned ─withdraw→ withdrawn

The rules, all judged by :mod:`lp_saas.clock`:

- a student uploads for a course they are enrolled in, inside the course semester's window
  (:func:`lp_saas.academics.calendar.outcome_upload_window`: from the term's first day until the
  school's number of days after its semester-end ceremony; grade 12's early ceremony applies to
  courses of grade 12), and under the school's per-semester cap. Every outcome of that semester
  counts toward the cap except withdrawn ones: an item awaiting its upload or with a rejected file
  holds its place until the student withdraws it (or revises it);
- a title (≤ 100 characters), a short description (≤ the rules' ``description_max_chars``, counted in
  characters), and either a file or an ``http(s)://`` link (≤ 500, only if the school accepts links);
  text is stored as typed (``<`` included) and escaped wherever it is shown;
- the course's teacher or deputy certifies (comment optional: certification vouches for
  authenticity, not quality) or returns (reason required) a submitted outcome until the
  certification deadline;
- a revision never deletes a file: the previous file row and object stay (certified or returned
  work is never lost); the outcome points at its newest file.

Services take the tenant and the acting user, check permission through
:mod:`lp_saas.roles.permissions`, flush and never commit. They raise ``werkzeug`` 403/404 (through
``permissions.require``), :class:`ValidationFailed` (422, field → message), :class:`AppError` (422 with
a code naming the rule: ``calendar_not_set``, ``window_not_open``, ``window_closed``,
``upload_cap_reached``, ``certification_closed``, ``not_certifiable``) and :class:`Conflict` (409,
``wrong_status``).
"""
from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import abort
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from lp_saas import clock
from lp_saas.academics import calendar
from lp_saas.academics.calendar import Window
from lp_saas.academics.models import Course, Enrollment, Term
from lp_saas.accounts.models import User
from lp_saas.audit import services as audit
from lp_saas.database import db
from lp_saas.errors import AppError, Conflict, ValidationFailed
from lp_saas.i18n import format_roc_date, format_roc_datetime, format_term
from lp_saas.portfolio.files import (begin_verification, check_file_spec, create_upload, download_url, files_of,
                                     on_file_checked, reject_message)
from lp_saas.portfolio.models import CourseOutcome, StoredFile
from lp_saas.roles import permissions
from lp_saas.tenants.context import current_tenant_id
from lp_saas.tenants.resolver import get_scoped
from lp_saas.tenants.rulesets import current_rules

OWNER_KIND = "outcome"
TITLE_MAX = 100
LINK_MAX = 500
COMMENT_MAX = 500
REASON_MAX = 500
BULK_MAX = 200

#: what a student may still change (revise or withdraw)
REVISABLE = ("awaiting_upload", "file_rejected", "returned")
WITHDRAWABLE = REVISABLE
#: a withdrawn outcome no longer holds a place under the upload cap
OUTSIDE_CAP = ("withdrawn",)

STATUS_LABELS = {
    "awaiting_upload": _l("Awaiting upload"),
    "verifying": _l("Checking the file"),
    "submitted": _l("Submitted, awaiting certification"),
    "file_rejected": _l("File rejected"),
    "certified": _l("Certified"),
    "returned": _l("Returned"),
    "withdrawn": _l("Withdrawn"),
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_EXCEPT_NEWLINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


def reason_message(outcome: CourseOutcome) -> str | None:
    """Why the outcome needs the student again: the file check's reason, or the teacher's reason."""
    if outcome.status == "file_rejected":
        return reject_message(outcome.status_reason)
    if outcome.status == "returned":
        return outcome.status_reason
    return None


# --- windows and deadlines -----------------------------------------------------------------------

@dataclass(frozen=True)
class Deadlines:
    """The semester's term (None when the school has not set its calendar), upload window and
    certification deadline, as they apply to one course."""

    term: Term | None
    window: Window | None
    certification_deadline: datetime | None


class DeadlineBook:
    """Windows and deadlines of many outcomes at a fixed cost: the school's terms in one query, and
    the rules once per term (not once per item)."""

    def __init__(self, tenant_id):
        self.tenant_id = tenant_id
        self._terms: dict | None = None
        self._memo: dict = {}

    def of(self, academic_year: int, semester: int, grade: int | None) -> Deadlines:
        if self._terms is None:
            self._terms = {(t.academic_year, t.semester): t for t in db.session.scalars(
                sa.select(Term).where(Term.tenant_id == self.tenant_id))}
        term = self._terms.get((academic_year, semester))
        key = (academic_year, semester, grade == 12)
        if key not in self._memo:
            self._memo[key] = _deadlines(term, grade)
        return self._memo[key]

    def of_course(self, course: Course) -> Deadlines:
        return self.of(course.academic_year, course.semester, course.grade)


def _deadlines(term: Term | None, grade: int | None) -> Deadlines:
    if term is None:
        return Deadlines(None, None, None)
    return Deadlines(term, calendar.outcome_upload_window(term, grade), calendar.certification_deadline(term, grade))


def deadlines_for(course: Course) -> Deadlines:
    return _deadlines(calendar.term(course.tenant_id, course.academic_year, course.semester), course.grade)


def _require_calendar(course: Course, found: Deadlines) -> Deadlines:
    if found.term is None:
        raise AppError(_("The school has not set its calendar for %(term)s yet (the semester's dates and its "
                         "semester-end ceremony), so the upload window and the certification deadline are "
                         "unknown. Please ask the registrar's office.",
                         term=format_term(course.academic_year, course.semester)),
                       code="calendar_not_set", status=422)
    return found


def check_upload_window(course: Course, found: Deadlines | None = None) -> Deadlines:
    """Raise AppError (422) unless the course semester's upload window is open now."""
    found = _require_calendar(course, found or deadlines_for(course))
    window, now = found.window, clock.now()
    term_label = format_term(course.academic_year, course.semester)
    if now < window.opens_at:
        raise AppError(_("Uploads of course outcomes for %(term)s open on %(opens)s.",
                         term=term_label, opens=format_roc_datetime(window.opens_at)),
                       code="window_not_open", status=422)
    if now > window.closes_at:
        ceremony = found.term.ceremony_on
        if course.grade == 12 and found.term.semester == 2 and found.term.grade12_ceremony_on:
            ceremony = found.term.grade12_ceremony_on
        raise AppError(_("The upload window for %(term)s closed at %(closes)s (%(days)s days after the "
                         "semester-end ceremony on %(ceremony)s, as the school's rules set).",
                         term=term_label, closes=format_roc_datetime(window.closes_at),
                         days=(window.last_day - ceremony).days, ceremony=format_roc_date(ceremony)),
                       code="window_closed", status=422)
    return found


def check_certification_open(course: Course, found: Deadlines | None = None) -> Deadlines:
    """Raise AppError (422) when the course semester's certification deadline has passed."""
    found = _require_calendar(course, found or deadlines_for(course))
    if clock.now() > found.certification_deadline:
        raise AppError(_("The certification deadline for %(term)s was %(deadline)s; outcomes of this course can "
                         "no longer be certified or returned.",
                         term=format_term(course.academic_year, course.semester),
                         deadline=format_roc_datetime(found.certification_deadline)),
                       code="certification_closed", status=422)
    return found


# --- the upload cap --------------------------------------------------------------------------------

def cap_count(tenant_id, student_id, academic_year: int, semester: int) -> int:
    """How many places of the semester's upload cap the student's outcomes hold."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(CourseOutcome).where(
        CourseOutcome.tenant_id == tenant_id, CourseOutcome.student_id == student_id,
        CourseOutcome.academic_year == academic_year, CourseOutcome.semester == semester,
        CourseOutcome.status.not_in(OUTSIDE_CAP))) or 0


def upload_cap(tenant_id) -> int:
    return current_rules(tenant_id)["course_outcomes"]["upload_cap_per_semester"]


def _check_cap(tenant, student_id, course: Course) -> None:
    # Serialise one student's uploads (a row lock on PostgreSQL; SQLite writes one at a time anyway),
    # so that two tabs cannot both take the last place.
    db.session.execute(sa.select(User.id).where(User.tenant_id == tenant.id, User.id == student_id)
                       .with_for_update())
    cap = upload_cap(tenant.id)
    used = cap_count(tenant.id, student_id, course.academic_year, course.semester)
    if used >= cap:
        raise AppError(_("You have used all %(cap)s course-outcome uploads the school allows for %(term)s. "
                         "Withdraw an item that is awaiting upload, rejected or returned to free a place.",
                         cap=cap, term=format_term(course.academic_year, course.semester)),
                       code="upload_cap_reached", status=422)


# --- input --------------------------------------------------------------------------------------

def _text_errors(title, description, max_chars: int) -> tuple[dict, dict]:
    clean, errors = {}, {}
    if not isinstance(title, str) or not title.strip():
        errors["title"] = _("Give the outcome a title.")
    else:
        title = unicodedata.normalize("NFC", title.strip())
        if len(title) > TITLE_MAX:
            errors["title"] = _("The title may have at most %(max)s characters (it has %(n)s).", max=TITLE_MAX,
                                n=len(title))
        elif _CONTROL.search(title):
            errors["title"] = _("The title must be one line without control characters.")
        else:
            clean["title"] = title
    if description is None:
        description = ""
    if not isinstance(description, str):
        errors["description"] = _("The description must be text.")
    else:
        description = unicodedata.normalize("NFC", description.replace("\r\n", "\n").strip())
        if len(description) > max_chars:
            errors["description"] = _("The short description may have at most %(max)s characters under the "
                                      "school's rules (it has %(n)s).", max=max_chars, n=len(description))
        elif _CONTROL_EXCEPT_NEWLINE.search(description):
            errors["description"] = _("The description must not contain control characters.")
        else:
            clean["description"] = description
    return clean, errors


def clean_link(link) -> tuple[str | None, str | None]:
    """(the link, None) or (None, the message saying what is wrong with it)."""
    if not isinstance(link, str) or not link.strip():
        return None, _("Give the link as text starting with https://.")
    link = link.strip()
    if len(link) > LINK_MAX:
        return None, _("The link may have at most %(max)s characters.", max=LINK_MAX)
    if any(c.isspace() for c in link) or _CONTROL.search(link):
        return None, _("The link must not contain spaces or control characters.")
    try:
        parts = urlsplit(link)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme.lower() not in ("https", "http") or not host:
        return None, _("Only web links starting with https:// or http:// are accepted.")
    if parts.username is not None or parts.password is not None:
        return None, _("The link must not contain a user name or password.")
    return link, None


def _content(rules: dict, data: dict) -> tuple[dict, dict]:
    """Check title, description and file-or-link against the rules: (clean values, field → message)."""
    uploads = rules["uploads"]
    clean, errors = _text_errors(data.get("title"), data.get("description"), uploads["description_max_chars"])
    file_spec, link = data.get("file"), data.get("link")
    has_file, has_link = file_spec is not None, link not in (None, "")
    if has_file and has_link:
        errors["file"] = _("Send either a file or a link, not both.")
    elif not has_file and not has_link:
        errors["file"] = _("Attach a file or give a link.")
    elif has_link:
        if not uploads["hyperlinks_allowed"]:
            errors["link"] = _("This school's rules do not accept links as course outcomes; upload a file instead.")
        else:
            clean["link"], message = clean_link(link)
            if message:
                errors["link"] = message
    else:
        spec, file_errors = check_file_spec(file_spec, rules)
        errors.update(file_errors)
        clean["file"] = spec
    return clean, errors


def _enrolled_course(tenant, student_id, course_id) -> Course | None:
    try:
        course_id = course_id if isinstance(course_id, uuid.UUID) else uuid.UUID(str(course_id))
    except (TypeError, ValueError):
        return None
    return db.session.scalar(sa.select(Course).join(Enrollment, sa.and_(
        Enrollment.tenant_id == Course.tenant_id, Enrollment.course_id == Course.id)).where(
        Course.tenant_id == tenant.id, Course.id == course_id, Enrollment.student_id == student_id))


def _attach(tenant, actor, outcome: CourseOutcome, clean: dict) -> dict | None:
    """Give the outcome its file ticket (awaiting_upload) or its link (submitted). Returns the upload."""
    if clean.get("file"):
        stored, upload = create_upload(tenant, owner_kind=OWNER_KIND, owner_id=outcome.id,
                                       student_id=outcome.student_id, spec=clean["file"])
        outcome.file_id, outcome.link_url, outcome.status = stored.id, None, "awaiting_upload"
        outcome.submitted_at = None
        return upload
    outcome.file_id, outcome.link_url, outcome.status = None, clean["link"], "submitted"
    outcome.submitted_at = clock.now()
    return None


def _record(tenant_id, actor, action: str, outcome: CourseOutcome, **details) -> None:
    audit.record(tenant_id, actor, action, target_type="course_outcome", target_id=outcome.id,
                 student_id=outcome.student_id,
                 details={k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in details.items()} or None)


# --- the student's side ---------------------------------------------------------------------------

def create_outcome(tenant, actor, *, course_id, title, description="", file=None, link=None
                   ) -> tuple[CourseOutcome, dict | None]:
    """A student's new outcome for a course they take: with a file (an upload ticket, status
    ``awaiting_upload``) or a link (``submitted`` at once). Returns (outcome, upload or None).

    Needs ``course_outcome.upload`` (own). Raises ValidationFailed (title, description, file,
    file.*, link, course_id), AppError 422 (calendar_not_set, window_not_open, window_closed,
    upload_cap_reached). Audited as ``outcome.created``. Flushes only.
    """
    permissions.require(actor, "course_outcome.upload", student_id=actor.id)
    rules = current_rules(tenant.id)
    clean, errors = _content(rules, {"title": title, "description": description, "file": file, "link": link})
    course = _enrolled_course(tenant, actor.id, course_id)
    if course is None:
        errors["course_id"] = _("Choose one of the courses you are enrolled in.")
    if errors:
        raise ValidationFailed(errors)
    check_upload_window(course)
    _check_cap(tenant, actor.id, course)
    outcome = CourseOutcome(tenant_id=tenant.id, id=uuid.uuid4(), student_id=actor.id, course_id=course.id,
                            academic_year=course.academic_year, semester=course.semester, title=clean["title"],
                            description=clean["description"], created_by_id=actor.id, revision=1,
                            status="awaiting_upload")
    db.session.add(outcome)
    db.session.flush()
    upload = _attach(tenant, actor, outcome, clean)
    db.session.flush()
    _record(tenant.id, actor, "outcome.created", outcome, course_id=course.id, status=outcome.status,
            kind="file" if upload else "link", file_id=outcome.file_id)
    return outcome, upload


def mark_uploaded(tenant, actor, outcome: CourseOutcome) -> None:
    """The student says the bytes are in storage: verify them in a job (``verifying``).

    Needs ``course_outcome.upload`` over the outcome (its owner). Calling it again while verifying
    changes nothing. Raises Conflict (wrong_status) in any other state. Audited as ``outcome.uploaded``.
    """
    permissions.require(actor, "course_outcome.upload", student_id=outcome.student_id)
    if outcome.status == "verifying":
        return
    if outcome.status != "awaiting_upload" or outcome.file_id is None:
        raise Conflict(_("This outcome is not waiting for a file (it is %(status)s).",
                         status=status_label(outcome.status)), code="wrong_status")
    stored = db.session.get(StoredFile, (tenant.id, outcome.file_id))
    outcome.status = "verifying"
    begin_verification(tenant, stored, actor)
    _record(tenant.id, actor, "outcome.uploaded", outcome, file_id=stored.id, **{"from": "awaiting_upload"})
    db.session.flush()


@on_file_checked(OWNER_KIND)
def _file_checked(stored: StoredFile, verified: bool) -> None:
    """The verification job's verdict on an outcome's file: submitted, or file_rejected with its reason.

    A file of an older revision, or of an outcome that moved on, changes nothing.
    """
    outcome = db.session.get(CourseOutcome, (stored.tenant_id, stored.owner_id))
    if outcome is None or outcome.file_id != stored.id or outcome.status not in ("awaiting_upload", "verifying"):
        return
    before = outcome.status
    if verified:
        outcome.status, outcome.status_reason, outcome.submitted_at = "submitted", None, clock.now()
    else:
        outcome.status, outcome.status_reason = "file_rejected", stored.reject_reason
    _record(stored.tenant_id, "system:verification",
            "outcome.submitted" if verified else "outcome.file_rejected", outcome,
            file_id=stored.id, reason=stored.reject_reason, **{"from": before})


def revise(tenant, actor, outcome: CourseOutcome, *, title, description="", file=None, link=None
           ) -> dict | None:
    """A new version of an outcome that is awaiting upload, rejected or returned, while the window is open.

    The previous file row and object are kept; the outcome points at the new file (or link) and its
    revision goes up by one. Needs ``course_outcome.upload`` over the outcome. Raises
    ValidationFailed, Conflict (wrong_status), AppError 422 (window). Audited as ``outcome.revised``.
    Returns the new upload ticket, or None for a link.
    """
    permissions.require(actor, "course_outcome.upload", student_id=outcome.student_id)
    if outcome.status not in REVISABLE:
        raise Conflict(_("Only an outcome that is awaiting upload, whose file was rejected, or that was returned can "
                         "be revised; this one is %(status)s.", status=status_label(outcome.status)),
                       code="wrong_status")
    rules = current_rules(tenant.id)
    clean, errors = _content(rules, {"title": title, "description": description, "file": file, "link": link})
    if errors:
        raise ValidationFailed(errors)
    course = db.session.get(Course, (tenant.id, outcome.course_id))
    check_upload_window(course)
    before = {"status": outcome.status, "file_id": outcome.file_id, "link": outcome.link_url}
    outcome.title, outcome.description = clean["title"], clean["description"]
    outcome.status_reason = None
    outcome.revision = (outcome.revision or 1) + 1
    upload = _attach(tenant, actor, outcome, clean)
    db.session.flush()
    _record(tenant.id, actor, "outcome.revised", outcome, revision=outcome.revision, status=outcome.status,
            previous_file_id=before["file_id"], file_id=outcome.file_id, **{"from": before["status"]})
    return upload


def withdraw(tenant, actor, outcome: CourseOutcome) -> None:
    """The student takes back an outcome that is awaiting upload, rejected or returned.

    It is kept (with its files) as ``withdrawn`` and frees its place under the cap. Needs
    ``course_outcome.upload`` over the outcome. Raises Conflict (wrong_status). Audited as ``outcome.withdrawn``.
    """
    permissions.require(actor, "course_outcome.upload", student_id=outcome.student_id)
    if outcome.status not in WITHDRAWABLE:
        raise Conflict(_("Only an outcome that is awaiting upload, whose file was rejected, or that was returned can "
                         "be withdrawn; this one is %(status)s.", status=status_label(outcome.status)),
                       code="wrong_status")
    before = outcome.status
    outcome.status, outcome.withdrawn_at = "withdrawn", clock.now()
    db.session.flush()
    _record(tenant.id, actor, "outcome.withdrawn", outcome, **{"from": before})


# --- the teacher's side ---------------------------------------------------------------------------

def _clean_note(value, *, required: bool, field: str, max_chars: int) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationFailed({field: _("Say why the outcome is returned, so that the student can revise it.")})
        return None
    if not isinstance(value, str):
        raise ValidationFailed({field: _("Enter text.")})
    value = unicodedata.normalize("NFC", value.replace("\r\n", "\n").strip())
    if len(value) > max_chars:
        raise ValidationFailed({field: _("Use at most %(max)s characters (this has %(n)s).", max=max_chars,
                                         n=len(value))})
    if _CONTROL_EXCEPT_NEWLINE.search(value):
        raise ValidationFailed({field: _("The text must not contain control characters.")})
    return value


def _not_submitted(outcome: CourseOutcome) -> str:
    return _("Only a submitted outcome can be certified or returned; this one is %(status)s.",
             status=status_label(outcome.status))


def _certifiable_problem(outcome: CourseOutcome, book: DeadlineBook, course: Course) -> str | None:
    """Why the outcome cannot be certified or returned now, or None."""
    if outcome.status != "submitted":
        return _not_submitted(outcome)
    try:
        check_certification_open(course, book.of_course(course))
    except AppError as refused:
        return str(refused.message)
    return None


def _decide(actor, outcome: CourseOutcome, course: Course) -> None:
    permissions.require(actor, "course_outcome.certify", student_id=outcome.student_id, course_id=outcome.course_id)
    if outcome.status != "submitted":
        raise Conflict(_not_submitted(outcome), code="wrong_status")
    check_certification_open(course)


def certify(tenant, actor, outcome: CourseOutcome, comment=None) -> None:
    """認證: the course's teacher or deputy vouches that the submitted outcome is the student's own work.

    The comment is optional (≤ 500): certification checks authenticity, not quality. Needs
    ``course_outcome.certify`` over the course. Raises Conflict (wrong_status), AppError 422
    (certification_closed, calendar_not_set), ValidationFailed (comment). Audited as ``outcome.certified``.
    """
    course = db.session.get(Course, (tenant.id, outcome.course_id))
    _decide(actor, outcome, course)
    comment = _clean_note(comment, required=False, field="comment", max_chars=COMMENT_MAX)
    _apply_certification(tenant, actor, outcome, comment)


def _apply_certification(tenant, actor, outcome: CourseOutcome, comment: str | None) -> None:
    outcome.status, outcome.status_reason = "certified", None
    outcome.teacher_comment, outcome.certified_by_id, outcome.certified_at = comment, actor.id, clock.now()
    db.session.flush()
    _record(tenant.id, actor, "outcome.certified", outcome, course_id=outcome.course_id, **{"from": "submitted"})


def return_outcome(tenant, actor, outcome: CourseOutcome, reason) -> None:
    """退回: the teacher sends a submitted outcome back with a reason (required, ≤ 500).

    The student may revise it while the upload window is open. Needs ``course_outcome.certify`` over
    the course. Raises as :func:`certify`. Audited as ``outcome.returned``.
    """
    course = db.session.get(Course, (tenant.id, outcome.course_id))
    _decide(actor, outcome, course)
    reason = _clean_note(reason, required=True, field="reason", max_chars=REASON_MAX)
    outcome.status, outcome.status_reason = "returned", reason
    outcome.returned_by_id, outcome.returned_at = actor.id, clock.now()
    db.session.flush()
    _record(tenant.id, actor, "outcome.returned", outcome, course_id=outcome.course_id, **{"from": "submitted"})


def bulk_certify(tenant, actor, ids, comment=None) -> list[CourseOutcome]:
    """Certify several submitted outcomes at once, all or nothing.

    When any id is unknown, out of the actor's courses, not submitted or past its deadline, nothing
    changes and ValidationFailed lists each such id with the reason (an id the actor may not see is
    reported as not found). Needs ``course_outcome.certify`` (403 without it).
    """
    if not permissions.has(actor, "course_outcome.certify"):
        abort(403)
    if not isinstance(ids, list) or not ids:
        raise ValidationFailed({"ids": _("List the ids of the outcomes to certify.")})
    if len(ids) > BULK_MAX:
        raise ValidationFailed({"ids": _("Certify at most %(max)s outcomes at a time.", max=BULK_MAX)})
    comment = _clean_note(comment, required=False, field="comment", max_chars=COMMENT_MAX)
    wanted: list[uuid.UUID] = []
    problems: dict[str, str] = {}
    for raw in ids:
        try:
            wanted.append(uuid.UUID(str(raw)))
        except (TypeError, ValueError):
            problems[str(raw)[:60]] = _("This is not an outcome id.")
    wanted = list(dict.fromkeys(wanted))
    rows = {o.id: (o, c) for o, c in db.session.execute(
        sa.select(CourseOutcome, Course).join(Course, sa.and_(Course.tenant_id == CourseOutcome.tenant_id,
                                                              Course.id == CourseOutcome.course_id))
        .where(CourseOutcome.tenant_id == tenant.id, CourseOutcome.id.in_(wanted)))}
    book = DeadlineBook(tenant.id)
    for outcome_id in wanted:
        found = rows.get(outcome_id)
        if found is None or not permissions.can(actor, "course_outcome.certify", student_id=found[0].student_id,
                                                course_id=found[0].course_id):
            problems[str(outcome_id)] = _("No such outcome among the courses you certify.")
            continue
        problem = _certifiable_problem(found[0], book, found[1])
        if problem:
            problems[str(outcome_id)] = problem
    if problems:
        raise ValidationFailed({"ids": _("Nothing was certified: %(n)s of the outcomes cannot be certified now.",
                                         n=len(problems)), **problems},
                               message=_("Nothing was certified: fix or remove the outcomes listed."))
    outcomes = [rows[i][0] for i in wanted]
    for outcome in outcomes:
        _apply_certification(tenant, actor, outcome, comment)
    return outcomes


# --- reading ---------------------------------------------------------------------------------------

def load(actor, outcome_id, permission: str = "course_outcome.view") -> CourseOutcome:
    """The outcome with this id if ``actor`` holds ``permission`` over it: 404 for another school's,
    an unknown or an out-of-scope id, 403 without the permission at all."""
    if not permissions.has(actor, permission):
        abort(403)
    outcome = get_scoped(CourseOutcome, outcome_id)
    if outcome is None:
        abort(404)
    permissions.require(actor, permission, student_id=outcome.student_id, course_id=outcome.course_id)
    return outcome


def record_read(tenant, actor, outcome: CourseOutcome) -> None:
    """A non-owner opening an outcome reads a student's personal data: audited as ``outcome.read``."""
    if actor.id != outcome.student_id:
        _record(tenant.id, actor, "outcome.read", outcome)


def visible_select(actor, permission: str = "course_outcome.view"):
    """``SELECT (CourseOutcome, StoredFile|None, Course)`` of what ``actor`` may see: one query."""
    tenant_id = current_tenant_id()
    return (sa.select(CourseOutcome, StoredFile, Course)
            .join(Course, sa.and_(Course.tenant_id == CourseOutcome.tenant_id, Course.id == CourseOutcome.course_id))
            .outerjoin(StoredFile, sa.and_(StoredFile.tenant_id == CourseOutcome.tenant_id,
                                           StoredFile.id == CourseOutcome.file_id))
            .where(CourseOutcome.tenant_id == tenant_id,
                   permissions.student_filter(actor, permission, CourseOutcome.student_id, CourseOutcome.course_id)))


def current_file(outcome: CourseOutcome) -> StoredFile | None:
    if outcome.file_id is None:
        return None
    return db.session.get(StoredFile, (outcome.tenant_id, outcome.file_id))


def file_history(outcome: CourseOutcome) -> list[StoredFile]:
    """Every file the outcome ever had, oldest first (revisions keep their files)."""
    return files_of(outcome.tenant_id, OWNER_KIND, [outcome.id]).get(outcome.id, [])


def file_url(tenant, actor, outcome: CourseOutcome, file_id=None) -> str:
    """A short-lived download URL of the outcome's current file (or of an earlier one by id).

    The caller has checked ``course_outcome.view``. 404 when there is no verified file. Audited
    (``file.download`` by :func:`download_url`).
    """
    stored = None
    if file_id is None:
        stored = current_file(outcome)
    else:
        try:
            wanted = uuid.UUID(str(file_id))
        except (TypeError, ValueError):
            abort(404)
        stored = next((f for f in file_history(outcome) if f.id == wanted), None)
    if stored is None or stored.status != "verified":
        abort(404)
    return download_url(tenant, actor, stored)


# --- what the pages show ---------------------------------------------------------------------------

@dataclass
class CourseOutcomes:
    """One course of a student's term on the student's page, or of a teacher's queue."""

    course: Course
    deadlines: Deadlines
    items: list  # [(CourseOutcome, StoredFile | None)] or [(CourseOutcome, StoredFile | None, User)]
    teacher_name: str | None = None
    deputising: bool = False
    counts: dict | None = None  # status → n over every page (the queue); None: count ``items``

    @property
    def window_open(self) -> bool:
        return self.deadlines.window is not None and self.deadlines.window.is_open()

    @property
    def certification_open(self) -> bool:
        deadline = self.deadlines.certification_deadline
        return deadline is not None and clock.now() <= deadline

    @property
    def waiting(self) -> int:
        if self.counts is not None:
            return self.counts.get("submitted", 0)
        return sum(1 for row in self.items if row[0].status == "submitted")


def student_terms(tenant_id, student_id) -> list[tuple[int, int]]:
    """(academic year, semester) of every term the student has courses in, newest first."""
    return [tuple(row) for row in db.session.execute(
        sa.select(Course.academic_year, Course.semester).distinct()
        .join(Enrollment, sa.and_(Enrollment.tenant_id == Course.tenant_id, Enrollment.course_id == Course.id))
        .where(Course.tenant_id == tenant_id, Enrollment.student_id == student_id)
        .order_by(Course.academic_year.desc(), Course.semester.desc()))]


def student_term(tenant, student, academic_year: int, semester: int) -> tuple[list[CourseOutcomes], int, int]:
    """The student's courses of a term with their outcomes (withdrawn ones last), and (cap, used)."""
    Teacher = sa.orm.aliased(User)
    courses = db.session.execute(
        sa.select(Course, Teacher.display_name)
        .join(Enrollment, sa.and_(Enrollment.tenant_id == Course.tenant_id, Enrollment.course_id == Course.id))
        .outerjoin(Teacher, sa.and_(Teacher.tenant_id == Course.tenant_id, Teacher.id == Course.teacher_id))
        .where(Course.tenant_id == tenant.id, Enrollment.student_id == student.id,
               Course.academic_year == academic_year, Course.semester == semester).order_by(Course.code)).all()
    rows = db.session.execute(
        sa.select(CourseOutcome, StoredFile)
        .outerjoin(StoredFile, sa.and_(StoredFile.tenant_id == CourseOutcome.tenant_id,
                                       StoredFile.id == CourseOutcome.file_id))
        .where(CourseOutcome.tenant_id == tenant.id, CourseOutcome.student_id == student.id,
               CourseOutcome.academic_year == academic_year, CourseOutcome.semester == semester)
        .order_by((CourseOutcome.status == "withdrawn"), CourseOutcome.created_at)).all()
    by_course: dict = {}
    for outcome, stored in rows:
        by_course.setdefault(outcome.course_id, []).append((outcome, stored))
    book = DeadlineBook(tenant.id)
    out = [CourseOutcomes(course, book.of_course(course), by_course.get(course.id, []), teacher_name=name)
           for course, name in courses]
    used = sum(1 for outcome, _stored in rows if outcome.status not in OUTSIDE_CAP)
    return out, upload_cap(tenant.id), used


#: what the certification queue lists: the items waiting for a decision, the ones decided, or both
QUEUE_VIEWS = {
    "waiting": ("submitted",),
    "decided": ("certified", "returned"),
    "all": ("submitted", "certified", "returned", "verifying", "file_rejected"),
}
QUEUE_PAGE_SIZE = 100


@dataclass
class Queue:
    """A page of a teacher's certification queue: the courses with their items on this page."""

    courses: list  # [CourseOutcomes]
    show: str
    page: int
    pages: int
    total: int  # items in this view, all pages


def certification_queue(tenant, actor, course_id=None, *, show: str = "waiting", page: int = 1,
                        per_page: int = QUEUE_PAGE_SIZE) -> Queue:
    """The courses ``actor`` certifies (taught, deputised, or any for a school-wide certifier) with the
    outcomes of one view (``QUEUE_VIEWS``), oldest submission first, a page at a time; each course
    carries its counts by status over every page. Three queries whatever the number of items."""
    Student = sa.orm.aliased(User)
    statuses = QUEUE_VIEWS.get(show, QUEUE_VIEWS["waiting"])
    base = (visible_select(actor, "course_outcome.certify")
            .add_columns(Student)
            .join(Student, sa.and_(Student.tenant_id == CourseOutcome.tenant_id,
                                   Student.id == CourseOutcome.student_id)))
    mine = sa.select(Course).where(Course.tenant_id == tenant.id,
                                   sa.or_(Course.teacher_id == actor.id, Course.deputy_id == actor.id))
    if course_id is not None:
        base = base.where(CourseOutcome.course_id == course_id)
        mine = mine.where(Course.id == course_id)
    query = (base.where(CourseOutcome.status.in_(statuses))
             .order_by(Course.academic_year.desc(), Course.semester.desc(), Course.code,
                       (CourseOutcome.status != "submitted"), CourseOutcome.submitted_at, Student.student_no,
                       CourseOutcome.id))
    counts: dict = {}
    for course_key, status, n in db.session.execute(
            base.where(CourseOutcome.status.in_(QUEUE_VIEWS["all"]))
            .with_only_columns(CourseOutcome.course_id, CourseOutcome.status, sa.func.count())
            .group_by(CourseOutcome.course_id, CourseOutcome.status)):
        counts.setdefault(course_key, {})[status] = n
    total = sum(n for by_status in counts.values() for status, n in by_status.items() if status in statuses)
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    groups: dict = {}
    for outcome, stored, course, student in db.session.execute(query.limit(per_page).offset((page - 1) * per_page)):
        groups.setdefault(course.id, (course, []))[1].append((outcome, stored, student))
    # the actor's own courses of the current term show even before anything arrives
    now_term = calendar.current_term(tenant.id)
    if now_term is not None and page == 1:
        for course in db.session.scalars(mine.where(Course.academic_year == now_term.academic_year,
                                                    Course.semester == now_term.semester)):
            groups.setdefault(course.id, (course, []))
    book = DeadlineBook(tenant.id)
    result = [CourseOutcomes(course, book.of_course(course), items,
                             deputising=course.deputy_id == actor.id and course.teacher_id != actor.id,
                             counts=counts.get(course.id, {}))
              for course, items in groups.values()]
    result.sort(key=lambda c: (-c.course.academic_year, -c.course.semester, c.waiting == 0, c.course.code))
    return Queue(result, show if show in QUEUE_VIEWS else "waiting", page, pages, total)
