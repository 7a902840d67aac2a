"""Each school's supplementary rules (補充規定) as versioned, validated data.

A rule set is a complete snapshot of the school's rules (the shape is :class:`RulesSchema`),
adopted by a named meeting on a date. Versions are never edited: an amendment is a new version,
in force from its adoption date until the next one (:func:`in_force`). Every version is checked
against the national ceilings of its day (:mod:`lp_saas.tenants.national`): a school may be
stricter, never looser.

The shape, top-level key by key:

- ``course_outcomes``: ``upload_cap_per_semester``, ``upload_window_days`` and
  ``certification_deadline_days`` (both counted from the semester-end ceremony), ``selection_cap``
  and ``selection_period`` (``semester`` | ``year``);
- ``performances``: ``upload_cap_per_year``, ``upload_window_days`` (after the second semester's
  ceremony), ``selection_cap_per_year``;
- ``uploads``: ``file_types`` (type → max bytes; a subset of pdf, jpg, png, mp3, mp4),
  ``hyperlinks_allowed``, ``description_max_chars``;
- ``performance_summary``: ``max_chars``, ``max_images``;
- ``graduates``: ``retention_years`` (sealed after graduation, then deleted), ``sealed_viewer_roles``;
- ``staff_departure``: ``policy`` (``delay_expiry`` | ``hand_to_deputy`` | ``hand_to_same_subject``),
  ``grace_days``;
- ``receipt``: ``confirmation_days``, ``paper_letter_for_departed``;
- ``data_entry``: ``remote_allowed``, ``campus_networks`` (CIDR strings);
- ``working_group``: ``convener``, ``executive_secretary``, ``members`` ([{title, count}]),
  ``min_meetings_per_semester``;
- ``trainings``: [{``audience`` (students | teachers | parents), ``unit``, ``min_per_year``}].

Services flush and never commit; the request or job that calls them commits.
"""
from __future__ import annotations

import copy
import ipaddress
import re
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields

from lp_saas.audit import services as audit
from lp_saas.database import db
from lp_saas.errors import Conflict, ValidationFailed
from lp_saas.tenants.models import RuleSet
from lp_saas.tenants.national import (MB, SELECTION_PERIODS, SEMESTER, YEAR, NationalRules,
                                      national_rules_on, selection_per_year)

STAFF_POLICIES = ("delay_expiry", "hand_to_deputy", "hand_to_same_subject")
AUDIENCES = ("students", "teachers", "parents")
ROLE_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
#: angle brackets and control characters (newlines aside) have no place in a rule's text
UNSAFE_TEXT_RE = re.compile(r"[<>\x00-\x09\x0b-\x1f\x7f]")
MAX_RETENTION_YEARS = 10
ADOPTED_BY_MAX = 120
SUMMARY_MAX = 500

PERIOD_LABELS = {SEMESTER: _l("semester"), YEAR: _l("academic year")}
AUDIENCE_LABELS = {"students": _l("students"), "teachers": _l("teachers"), "parents": _l("parents")}
POLICY_LABELS = {
    "delay_expiry": _l("Delay the departed teacher's account expiry"),
    "hand_to_deputy": _l("Hand pending certifications to the course's deputy teacher"),
    "hand_to_same_subject": _l("Hand pending certifications to a teacher of the same subject"),
}


# --- the shape: allow-list schemas with messages that say what is wrong --------------------------

_REQUIRED = _l("This rule is required.")
_NULL = _l("This rule cannot be empty.")


def _invalid(message) -> ValidationError:
    """A one-message error. (A lazy string must be wrapped: marshmallow would iterate over it.)"""
    return ValidationError([message])


class StrictInteger(fields.Integer):
    """A JSON whole number: not a string of digits, not a float, not true/false."""

    def __init__(self, **kwargs):
        messages = {"required": _REQUIRED, "null": _NULL, "invalid": _l("Enter a whole number.")}
        super().__init__(strict=True, error_messages=messages, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """A JSON true or false, nothing else ("yes", 1 and "true" are refused)."""

    def __init__(self, **kwargs):
        super().__init__(error_messages={"required": _REQUIRED, "null": _NULL,
                                         "invalid": _l("Enter true or false.")}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class Text(fields.String):
    """A short line of text, trimmed; no angle brackets or control characters."""

    def __init__(self, max_length: int, **kwargs):
        self.max_length = max_length
        super().__init__(error_messages={"required": _REQUIRED, "null": _NULL,
                                         "invalid": _l("Enter text.")}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs).strip()
        if not value:
            raise _invalid(_NULL)
        if len(value) > self.max_length:
            raise _invalid(_l("Use at most %(max)s characters.", max=self.max_length))
        if UNSAFE_TEXT_RE.search(value):
            raise _invalid(_l("Text may not contain angle brackets or control characters."))
        return value


class Choice(fields.String):
    def __init__(self, choices, **kwargs):
        self.choices = tuple(choices)
        kwargs.setdefault("metadata", {"enum": list(self.choices)})
        super().__init__(error_messages={"required": _REQUIRED, "null": _NULL,
                                         "invalid": _l("Enter text.")}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if value not in self.choices:
            raise _invalid(_l("Choose one of: %(choices)s.", choices=", ".join(self.choices)))
        return value


class RuleList(fields.List):
    def __init__(self, inner, *, min_items: int = 0, max_items: int = 50, **kwargs):
        self.min_items, self.max_items = min_items, max_items
        super().__init__(inner, error_messages={"required": _REQUIRED, "null": _NULL,
                                                "invalid": _l("Enter a list.")}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        result = super()._deserialize(value, attr, data, **kwargs)
        if len(result) < self.min_items:
            raise _invalid(_l("List at least %(min)s item(s).", min=self.min_items))
        if len(result) > self.max_items:
            raise _invalid(_l("List at most %(max)s items.", max=self.max_items))
        return result


class CampusNetwork(fields.String):
    """An IPv4 or IPv6 network in CIDR notation, normalised (``163.23.200.0/24``)."""

    def __init__(self, **kwargs):
        super().__init__(error_messages={"required": _REQUIRED, "null": _NULL,
                                         "invalid": _l("Enter text.")}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs).strip()[:60]
        try:
            loose = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise _invalid(_l("%(value)s is not a network in CIDR notation, such as 163.23.200.0/24.",
                                     value=value)) from None
        if "/" not in value:
            raise _invalid(_l("Give %(value)s with its prefix length, such as %(network)s.",
                                     value=value, network=f"{loose.network_address}/{loose.max_prefixlen}"))
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError:
            raise _invalid(_l("%(value)s has host bits set; did you mean %(network)s?",
                                     value=value, network=str(loose))) from None
        return str(network)


class RoleKey(fields.String):
    def __init__(self, **kwargs):
        super().__init__(error_messages={"required": _REQUIRED, "null": _NULL,
                                         "invalid": _l("Use a role key such as registrar or school_admin.")},
                         **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if not ROLE_KEY_RE.match(value):
            raise self.make_error("invalid")
        return value


class FileTypes(fields.Dict):
    """file type → maximum size in bytes. Which types exist is judged against the national rules."""

    def __init__(self, **kwargs):
        super().__init__(error_messages={"required": _REQUIRED, "null": _NULL,
                                         "invalid": _l("Enter each allowed file type with its maximum size in bytes.")},
                         **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        errors, result = {}, {}
        for key, size in value.items():
            if not isinstance(key, str) or not key:
                errors[str(key)] = [_l("Name the file type, such as pdf.")]
            elif isinstance(size, bool) or not isinstance(size, int):
                errors[key] = [_l("Enter the maximum size in bytes as a whole number.")]
            elif size < 1:
                errors[key] = [_l("The maximum size must be at least 1 byte.")]
            else:
                result[key] = size
        if errors:
            raise ValidationError(errors, valid_data=result)
        if not result:
            raise _invalid(_l("Allow at least one file type."))
        return result


def _between(low: int, high: int, message=None):
    def check(value):
        if not low <= value <= high:
            raise _invalid(message or _l("Enter a whole number from %(min)s to %(max)s.", min=low, max=high))
    return check


def _int(low: int, high: int, message=None, **kwargs):
    return StrictInteger(required=True, validate=_between(low, high, message), **kwargs)


class _Rules(Schema):
    """Base of the rule schemas: every key is required and unknown keys are refused."""

    error_messages = {
        "unknown": _l("Unknown rule: remove it or check its spelling."),
        "type": _l("Enter this group of rules as an object."),
    }


class CourseOutcomeRules(_Rules):
    upload_cap_per_semester = _int(1, 1000, metadata={"description": "uploads per student per semester"})
    upload_window_days = _int(1, 366, metadata={"description": "days after the semester-end ceremony"})
    certification_deadline_days = _int(1, 366, metadata={"description": "days after the semester-end ceremony"})
    selection_cap = _int(1, 100, metadata={"description": "selected for the central database per period"})
    selection_period = Choice(SELECTION_PERIODS, required=True)


class PerformanceRules(_Rules):
    upload_cap_per_year = _int(1, 1000, metadata={"description": "uploads by the student per academic year"})
    upload_window_days = _int(1, 366, metadata={"description": "days after the second semester's ceremony"})
    selection_cap_per_year = _int(1, 100)


class UploadRules(_Rules):
    file_types = FileTypes(required=True, metadata={"description": "file type → max bytes"})
    hyperlinks_allowed = StrictBoolean(required=True)
    description_max_chars = _int(1, 1000)


class PerformanceSummaryRules(_Rules):
    max_chars = _int(1, 10000)
    max_images = _int(0, 20)


class GraduateRules(_Rules):
    retention_years = _int(1, MAX_RETENTION_YEARS, _l(
        "Graduates' data is sealed for 1 to %(max)s years after graduation, then deleted.",
        max=MAX_RETENTION_YEARS))
    sealed_viewer_roles = RuleList(RoleKey(), required=True, min_items=1, max_items=20)


class StaffDepartureRules(_Rules):
    policy = Choice(STAFF_POLICIES, required=True)
    grace_days = _int(0, 365)


class ReceiptRules(_Rules):
    confirmation_days = _int(1, 60)
    paper_letter_for_departed = StrictBoolean(required=True)


class DataEntryRules(_Rules):
    remote_allowed = StrictBoolean(required=True)
    campus_networks = RuleList(CampusNetwork(), required=True, max_items=50)


class WorkingGroupMember(_Rules):
    title = Text(60, required=True)
    count = _int(1, 99)


class WorkingGroupRules(_Rules):
    convener = Text(60, required=True)
    executive_secretary = Text(60, required=True)
    members = RuleList(fields.Nested(WorkingGroupMember), required=True, min_items=1, max_items=40)
    min_meetings_per_semester = _int(1, 20, _l("The working group meets at least once per semester (at most %(max)s).",
                                               max=20))


class Training(_Rules):
    audience = Choice(AUDIENCES, required=True)
    unit = Text(60, required=True)
    min_per_year = _int(1, 52, _l("Each training is held 1 to %(max)s times per academic year.", max=52))


def _nested(schema):
    return fields.Nested(schema, required=True, error_messages={"required": _REQUIRED, "null": _NULL})


class RulesSchema(_Rules):
    """A complete version of a school's supplementary rules (see the module docstring)."""

    course_outcomes = _nested(CourseOutcomeRules)
    performances = _nested(PerformanceRules)
    uploads = _nested(UploadRules)
    performance_summary = _nested(PerformanceSummaryRules)
    graduates = _nested(GraduateRules)
    staff_departure = _nested(StaffDepartureRules)
    receipt = _nested(ReceiptRules)
    data_entry = _nested(DataEntryRules)
    working_group = _nested(WorkingGroupRules)
    trainings = RuleList(fields.Nested(Training), required=True, min_items=1, max_items=20)


# --- validation -----------------------------------------------------------------------------

def _flatten(messages, prefix: str = "") -> dict[str, str]:
    """marshmallow's nested messages → {"a.b.0.c": "message"}."""
    out: dict[str, str] = {}

    def put(path, text):
        out[path] = f"{out[path]} {text}" if path in out else text

    if isinstance(messages, dict):
        for key, value in messages.items():
            key = str(key)
            path = prefix if key == "_schema" else (f"{prefix}.{key}" if prefix else key)
            for sub_path, text in _flatten(value, path).items():
                put(sub_path, text)
    elif isinstance(messages, (list, tuple)):
        for item in messages:
            for sub_path, text in _flatten(item, prefix).items():
                put(sub_path, text)
    else:
        put(prefix, str(messages))
    return out


class _Checker:
    """The national and cross-field checks, run on the parts that passed the shape check."""

    def __init__(self, data: dict, errors: dict[str, str], national: NationalRules):
        self.data, self.errors, self.national = data, errors, national

    def blocked(self, path: str) -> bool:
        return any(path == p or path.startswith(p + ".") or p == "" for p in self.errors)

    def get(self, path: str, kind=int):
        """The value at ``path`` if it passed the shape check and is of ``kind``, else None."""
        if self.blocked(path):
            return None
        value = self.data
        for part in path.split("."):
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            return None
        if kind is not int and not isinstance(value, kind):
            return None
        return value

    def fail(self, path: str, message) -> None:
        self.errors.setdefault(path, str(message))

    def run(self) -> None:
        self.course_outcomes()
        self.performances()
        self.uploads()
        self.summary()
        self.staff_and_receipt()
        self.data_entry()
        self.working_group()
        self.trainings()

    def course_outcomes(self):
        n = self.national
        cap = self.get("course_outcomes.selection_cap")
        period = self.get("course_outcomes.selection_period", str)
        if cap is not None and period in SELECTION_PERIODS:
            too_many_in_a_semester = cap > n.course_outcomes_per_semester
            too_many_in_a_year = selection_per_year(cap, period) > n.course_outcomes_per_year
            if too_many_in_a_semester or too_many_in_a_year:
                self.fail("course_outcomes.selection_cap", _l(
                    "The course-outcome selection cap of %(value)s per %(period)s exceeds the national "
                    "ceiling of %(ceiling)s per %(national_period)s.",
                    value=cap, period=PERIOD_LABELS[period], ceiling=n.course_outcome_selection_cap,
                    national_period=PERIOD_LABELS[n.course_outcome_selection_period]))
        window = self.get("course_outcomes.upload_window_days")
        if window is not None and window < n.min_upload_window_days:
            self.fail("course_outcomes.upload_window_days", _l(
                "The course-outcome upload window of %(value)s days after the semester-end ceremony is "
                "shorter than the national minimum of %(minimum)s days.",
                value=window, minimum=n.min_upload_window_days))
        deadline = self.get("course_outcomes.certification_deadline_days")
        if deadline is not None and window is not None and deadline < window:
            self.fail("course_outcomes.certification_deadline_days", _l(
                "The teacher certification deadline of %(value)s days after the semester-end ceremony comes "
                "before the upload window closes (%(window)s days after it); teachers could not certify "
                "the last uploads.", value=deadline, window=window))

    def performances(self):
        n = self.national
        cap = self.get("performances.selection_cap_per_year")
        if cap is not None and cap > n.performance_selection_cap_per_year:
            self.fail("performances.selection_cap_per_year", _l(
                "The diverse-performance selection cap of %(value)s per academic year exceeds the national "
                "ceiling of %(ceiling)s per academic year.",
                value=cap, ceiling=n.performance_selection_cap_per_year))
        window = self.get("performances.upload_window_days")
        if window is not None and window < n.min_upload_window_days:
            self.fail("performances.upload_window_days", _l(
                "The diverse-performance upload window of %(value)s days after the semester-end ceremony is "
                "shorter than the national minimum of %(minimum)s days.",
                value=window, minimum=n.min_upload_window_days))

    def uploads(self):
        n = self.national
        types = self.get("uploads.file_types", dict)
        ceilings = n.file_types
        for file_type, size in (types or {}).items():
            path = f"uploads.file_types.{file_type}"
            if self.blocked(path):
                continue
            if file_type not in ceilings:
                self.fail(path, _l(
                    "%(type)s is not a file type the central database accepts; use one of: %(choices)s.",
                    type=str(file_type)[:20], choices=", ".join(ceilings)))
            elif isinstance(size, int) and size > ceilings[file_type]:
                self.fail(path, _l(
                    "The maximum size of %(type)s files, %(value)s, exceeds the national ceiling of %(ceiling)s.",
                    type=file_type, value=format_size(size), ceiling=format_size(ceilings[file_type])))
        limit = self.get("uploads.description_max_chars")
        if limit is not None and limit > n.description_max_chars:
            self.fail("uploads.description_max_chars", _l(
                "The short description limit of %(value)s characters exceeds the national ceiling of "
                "%(ceiling)s characters.", value=limit, ceiling=n.description_max_chars))

    def summary(self):
        n = self.national
        chars = self.get("performance_summary.max_chars")
        if chars is not None and chars > n.performance_summary_max_chars:
            self.fail("performance_summary.max_chars", _l(
                "The performance summary limit of %(value)s characters exceeds the national ceiling of "
                "%(ceiling)s characters.", value=chars, ceiling=n.performance_summary_max_chars))
        images = self.get("performance_summary.max_images")
        if images is not None and images > n.performance_summary_max_images:
            self.fail("performance_summary.max_images", _l(
                "The performance summary limit of %(value)s images exceeds the national ceiling of "
                "%(ceiling)s images.", value=images, ceiling=n.performance_summary_max_images))

    def staff_and_receipt(self):
        policy = self.get("staff_departure.policy", str)
        grace = self.get("staff_departure.grace_days")
        if policy == "delay_expiry" and grace is not None and grace < 1:
            self.fail("staff_departure.grace_days", _l(
                "Delaying a departed teacher's account expiry needs a grace period of at least 1 day."))
        days = self.get("receipt.confirmation_days")
        minimum = self.national.min_receipt_confirmation_days
        if days is not None and days < minimum:
            self.fail("receipt.confirmation_days", _l(
                "Students get at least %(minimum)s days to confirm receipt under the national rules; "
                "%(value)s days is too short.", minimum=minimum, value=days))

    def data_entry(self):
        remote = self.get("data_entry.remote_allowed", bool)
        networks = self.get("data_entry.campus_networks", list)
        if remote is False and networks is not None and not networks:
            self.fail("data_entry.campus_networks", _l(
                "List at least one campus network, or allow remote data entry: otherwise no staff member "
                "could enter data."))

    def working_group(self):
        members = self.get("working_group.members", list)
        if not members or self.blocked("working_group.members"):
            return
        titles = {m.get("title", "").strip() for m in members if isinstance(m, dict) and isinstance(m.get("title"), str)}
        for key, label in (("convener", _l("convener")), ("executive_secretary", _l("executive secretary"))):
            title = self.get(f"working_group.{key}", str)
            if title is not None and title.strip() not in titles:
                self.fail(f"working_group.{key}", _l(
                    "The %(role)s (%(title)s) must be one of the working group's members.",
                    role=label, title=title.strip()))

    def trainings(self):
        trainings = self.get("trainings", list)
        if trainings is None:
            return
        seen: set[str] = set()
        for index, item in enumerate(trainings):
            audience = item.get("audience") if isinstance(item, dict) else None
            if audience not in AUDIENCES or self.blocked(f"trainings.{index}.audience"):
                continue
            if audience in seen:
                self.fail(f"trainings.{index}.audience", _l(
                    "Training for %(audience)s is listed more than once; keep one entry per audience.",
                    audience=AUDIENCE_LABELS[audience]))
            seen.add(audience)
        missing = [a for a in AUDIENCES if a not in seen]
        if missing and not any(p.startswith("trainings.") for p in self.errors):
            self.fail("trainings", _l(
                "Plan a yearly training for %(audiences)s: the rules call for one each for students, "
                "teachers and parents.", audiences=", ".join(str(AUDIENCE_LABELS[a]) for a in missing)))


def _check(data, on: date) -> tuple[dict | None, dict[str, str]]:
    """(the normalised rules or None, field path → message)."""
    if not isinstance(data, dict):
        return None, {"": str(_l("Enter the rules as an object."))}
    try:
        clean = RulesSchema().load(data)
        errors: dict[str, str] = {}
    except ValidationError as exc:
        clean, errors = None, _flatten(exc.messages)
    _Checker(data, errors, national_rules_on(on)).run()
    return (clean if not errors else None), errors


def validate_rules(data: dict, on: date) -> dict[str, str]:
    """Field path (``course_outcomes.selection_cap``) → translated message, for everything wrong.

    Judged against the national rules in force on ``on``. Empty when the rules are acceptable.
    The path ``""`` stands for the whole object (when ``data`` is not an object at all).
    """
    return _check(data, on)[1]


def format_size(size: int) -> str:
    """4 MB, 2.5 MB, 300 KB or 512 bytes (1 MB = 1,048,576 bytes)."""
    if size >= MB:
        value = size / MB
        return f"{value:g} MB" if value == round(value, 2) else f"{value:.2f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} bytes"


def flatten_rules(data: dict, prefix: str = "") -> dict:
    """{"course_outcomes.selection_cap": 6, …}: leaf paths of the rules (lists are leaves)."""
    out = {}
    for key, value in (data or {}).items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and key != "file_types":
            out.update(flatten_rules(value, path))
        else:
            out[path] = value
    return out


def changed_paths(before: dict | None, after: dict) -> list[str]:
    """The rule paths whose values differ between two versions (all of them when there is no before)."""
    old, new = flatten_rules(before or {}), flatten_rules(after)
    return sorted(p for p in set(old) | set(new) if old.get(p) != new.get(p))


# --- templates ------------------------------------------------------------------------------

@dataclass(frozen=True)
class TemplateVersion:
    adopted_on: date
    adopted_by: str
    summary: str
    course_outcome_selection: tuple[int, str]  # (cap, period): what changed between the versions


def template_rules(template: str, selection: tuple[int, str]) -> dict:
    """A complete rule set of a template, with the course-outcome selection cap of its day."""
    cap, period = selection
    yuanlin = template == "yuanlin"
    return {
        "course_outcomes": {
            # 員林 四(三)1: the number is set by the working group; 10 is the platform's starting value
            "upload_cap_per_semester": 10,
            "upload_window_days": 14,  # 員林 附件一: 休業式結束後兩週
            "certification_deadline_days": 21,
            "selection_cap": cap,
            "selection_period": period,
        },
        "performances": {"upload_cap_per_year": 30, "upload_window_days": 14, "selection_cap_per_year": 10},
        "uploads": {
            "file_types": {"pdf": 4 * MB, "jpg": 4 * MB, "png": 4 * MB, "mp3": 10 * MB, "mp4": 10 * MB},
            "hyperlinks_allowed": True,
            "description_max_chars": 100,
        },
        "performance_summary": {"max_chars": 800, "max_images": 3},
        "graduates": {"retention_years": 3, "sealed_viewer_roles": ["registrar", "school_admin"]},
        # 員林 八(二): the account's expiry is delayed; the course's deputy can already certify
        "staff_departure": ({"policy": "delay_expiry", "grace_days": 30} if yuanlin
                            else {"policy": "hand_to_deputy", "grace_days": 7}),
        "receipt": {"confirmation_days": 3, "paper_letter_for_departed": True},
        # 員林 七(一)1: remote entry after weighing information security; networks are the school's to add
        "data_entry": {"remote_allowed": True, "campus_networks": []},
        "working_group": {
            "convener": "校長",
            "executive_secretary": "教務主任",
            "members": list(YUANLIN_MEMBERS if yuanlin else MOE_MEMBERS),
            "min_meetings_per_semester": 1,
        },
        "trainings": [
            {"audience": "students", "unit": "圖書館" if yuanlin else "教務處", "min_per_year": 1},
            {"audience": "teachers", "unit": "教務處", "min_per_year": 1},
            {"audience": "parents", "unit": "輔導處", "min_per_year": 1},
        ],
    }


YUANLIN_MEMBERS = tuple({"title": t, "count": c} for t, c in (
    ("校長", 1), ("教務主任", 1), ("學務主任", 1), ("輔導主任", 1), ("圖書館主任", 1), ("教學組長", 1),
    ("註冊組長", 1), ("訓育組長", 1), ("輔導組長", 1), ("生輔組長", 1), ("資訊媒體組長", 1),
    ("課程諮詢教師代表", 1), ("各年級導師代表", 3), ("教師代表", 1), ("家長代表", 1), ("學生代表", 1),
))
MOE_MEMBERS = tuple({"title": t, "count": c} for t, c in (
    ("校長", 1), ("教務主任", 1), ("學務主任", 1), ("輔導主任", 1), ("圖書館主任", 1),
    ("教師代表", 2), ("家長代表", 1), ("學生代表", 1),
))

_REBUILT = "（舊版條文未存於平臺，其餘條文依 112 年 1 月 19 日版重建）"

TEMPLATES: dict[str, tuple[TemplateVersion, ...]] = {
    "moe": (
        TemplateVersion(date(2022, 8, 26), "期初校務會議",
                        "依高級中等學校學生學習歷程檔案作業要點（111學年度起）訂定：課程學習成果每學年勾選至多 6 件，"
                        "多元表現每學年勾選至多 10 件；上傳期限為休業式後兩週。",
                        (6, YEAR)),
    ),
    "yuanlin": (
        TemplateVersion(date(2019, 8, 15), "學生學習歷程工作小組會議修正",
                        "依作業要點第五點第二項訂定補充規定：課程學習成果每學期勾選至多 3 件，多元表現每學年勾選至多 10 件。"
                        + _REBUILT, (3, SEMESTER)),
        TemplateVersion(date(2019, 8, 29), "期初校務會議修正",
                        "期初校務會議修正：課程學習成果每學期勾選至多 3 件。" + _REBUILT, (3, SEMESTER)),
        TemplateVersion(date(2021, 8, 19), "學生學習歷程工作小組會議修正",
                        "學生學習歷程工作小組會議修正：課程學習成果每學期勾選至多 3 件。" + _REBUILT, (3, SEMESTER)),
        TemplateVersion(date(2022, 4, 22), "學生學習歷程工作小組會議修正",
                        "學生學習歷程工作小組會議修正：課程學習成果每學期勾選至多 3 件（作業要點 111學年度起之修正尚未生效）。"
                        + _REBUILT, (3, SEMESTER)),
        TemplateVersion(date(2023, 1, 19), "期末校務會議通過",
                        "期末校務會議通過：配合作業要點，課程學習成果每學年勾選至多 6 件、多元表現每學年勾選至多 10 件；"
                        "工作小組 18 人，校長為召集人、教務主任為執行秘書；已畢業學生資料封存三年後刪除；"
                        "離校學生以紙本郵寄通知收訖明細確認。", (6, YEAR)),
    ),
}


# --- services -------------------------------------------------------------------------------

def today_in_taipei() -> date:
    from lp_saas import clock

    return clock.today()


def _versions(tenant_id):
    return sa.select(RuleSet).where(RuleSet.tenant_id == tenant_id)


def in_force(tenant_id, on: date) -> RuleSet | None:
    """The version in force on ``on``: the latest ``adopted_on`` not after it (then the highest version)."""
    return db.session.scalar(
        _versions(tenant_id).where(RuleSet.adopted_on <= on)
        .order_by(RuleSet.adopted_on.desc(), RuleSet.version.desc()).limit(1))


def latest(tenant_id) -> RuleSet | None:
    """The newest version (which may not be in force yet when adopted for a later day)."""
    return db.session.scalar(_versions(tenant_id).order_by(RuleSet.version.desc()).limit(1))


def get_version(tenant_id, version: int) -> RuleSet | None:
    return db.session.scalar(_versions(tenant_id).where(RuleSet.version == version))


def history(tenant_id) -> list[RuleSet]:
    """Every version of the school's rules, newest first."""
    return list(db.session.scalars(_versions(tenant_id).order_by(RuleSet.version.desc())))


def default_rules(on: date) -> dict:
    """The platform's defaults within the national rules of ``on`` (for a school without a rule set)."""
    national = national_rules_on(on)
    return template_rules("moe", (national.course_outcome_selection_cap, national.course_outcome_selection_period))


def current_rules(tenant_id, on: date | None = None) -> dict:
    """The rules in force on ``on`` (today in Asia/Taipei by default), as a fresh dict.

    A school with no version in force on that day (before its first adoption) gets the platform
    defaults within the national rules of the day.
    """
    on = on or today_in_taipei()
    version = in_force(tenant_id, on)
    return copy.deepcopy(version.data) if version is not None else default_rules(on)


def parse_day(value) -> date | None:
    """``YYYY-MM-DD`` (or a date) → date; None for anything else."""
    if isinstance(value, date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def amend(tenant, actor, *, data, adopted_on, adopted_by, summary="") -> RuleSet:
    """Store a new version of ``tenant``'s rules, in force from ``adopted_on``. Flushes; no commit.

    The caller must hold ``rules.edit``. ``data`` is a complete rule set. Raises ValidationFailed
    (field path → message; rule paths are prefixed ``rules.``) for invalid rules, a missing or
    too long ``adopted_by``, a bad date, or a date before the latest version's; Conflict when
    another amendment took the same version number meanwhile. Audited as ``rules.amend``.
    """
    from lp_saas.roles.services import roles_of_school

    errors: dict[str, str] = {}
    day = parse_day(adopted_on)
    previous = latest(tenant.id)
    if day is None:
        errors["adopted_on"] = str(_l("Enter the adoption date as YYYY-MM-DD."))
    elif previous is not None and day < previous.adopted_on:
        errors["adopted_on"] = str(_l(
            "The adoption date %(date)s is before %(latest)s, when version %(version)s was adopted; a new "
            "version cannot come into force before the latest one.",
            date=day.isoformat(), latest=previous.adopted_on.isoformat(), version=previous.version))
    if not isinstance(adopted_by, str) or not adopted_by.strip():
        errors["adopted_by"] = str(_l("Name the meeting that adopted the rules, such as a school affairs meeting."))
    elif len(adopted_by.strip()) > ADOPTED_BY_MAX:
        errors["adopted_by"] = str(_l("The meeting's name has at most %(max)s characters.", max=ADOPTED_BY_MAX))
    elif UNSAFE_TEXT_RE.search(adopted_by):
        errors["adopted_by"] = str(_l("Text may not contain angle brackets or control characters."))
    summary = "" if summary is None else summary
    if not isinstance(summary, str):
        errors["summary"] = str(_l("Enter text."))
    elif len(summary.strip()) > SUMMARY_MAX:
        errors["summary"] = str(_l("The summary has at most %(max)s characters.", max=SUMMARY_MAX))
    elif re.search(r"[<>\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", summary):
        errors["summary"] = str(_l("Text may not contain angle brackets or control characters."))

    clean, rule_errors = _check(data, day or today_in_taipei())
    for path, message in rule_errors.items():
        errors[f"rules.{path}" if path else "rules"] = message
    if clean is not None:
        known = {r.key for r in roles_of_school(tenant.id)}
        for index, key in enumerate(clean["graduates"]["sealed_viewer_roles"]):
            if key not in known:
                errors[f"rules.graduates.sealed_viewer_roles.{index}"] = str(
                    _l("This school has no role %(role)s.", role=key))
    if errors:
        raise ValidationFailed(errors)

    rule_set = RuleSet(
        tenant_id=tenant.id, version=(previous.version + 1) if previous else 1, adopted_on=day,
        adopted_by=adopted_by.strip(), summary=summary.strip(), data=clean,
        created_by_id=getattr(actor, "id", None),
    )
    try:
        with db.session.begin_nested():
            db.session.add(rule_set)
            db.session.flush()
    except sa.exc.IntegrityError:
        raise Conflict(_l("Another amendment was saved at the same time; reload the rules and try again."),
                       code="rules_conflict") from None
    audit.record(tenant.id, actor, "rules.amend", target_type="rule_set", target_id=rule_set.id, details={
        "version": rule_set.version, "adopted_on": day.isoformat(), "adopted_by": rule_set.adopted_by,
        "changed": changed_paths(previous.data if previous else None, clean)[:60],
    })
    db.session.flush()
    return rule_set


def seed_rule_sets_from_template(tenant, template) -> int:
    """Give a school without rules the template's versions. Returns how many it created (0 if it had some).

    Each template version is validated against the national rules of its day: a template that
    fails is a bug in this module, raised as ValueError. Flushes; no commit.
    """
    if template not in TEMPLATES:
        raise ValueError(f"unknown rule-set template {template!r}")
    if latest(tenant.id) is not None:
        return 0
    for number, version in enumerate(TEMPLATES[template], start=1):
        data = template_rules(template, version.course_outcome_selection)
        clean, errors = _check(data, version.adopted_on)
        if errors:
            raise ValueError(f"template {template} version {number} is invalid: {errors}")
        db.session.add(RuleSet(tenant_id=tenant.id, version=number, adopted_on=version.adopted_on,
                               adopted_by=version.adopted_by, summary=version.summary, data=clean))
    db.session.flush()
    return len(TEMPLATES[template])
