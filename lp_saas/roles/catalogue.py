"""The permission catalogue: every item × action the product checks, with the scopes it allows.

Permissions live in code (they are what the code checks); which role holds which permission, and
with which scope, is each school's role matrix in the database (``roles/models.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

# Scopes: how far a permission reaches.
ALL = "all"  # the whole school
OWN = "own"  # the user's own items (a student)
COURSE = "course"  # courses the user teaches or deputises
CLASS = "class"  # the homeroom class of the user
CHILD = "child"  # the user's own children (a parent)

SCOPES = (ALL, COURSE, CLASS, CHILD, OWN)
SCOPE_LABELS = {
    ALL: _l("Whole school"),
    COURSE: _l("Own courses"),
    CLASS: _l("Homeroom class"),
    CHILD: _l("Own child"),
    OWN: _l("Own items"),
}
STUDENT_SCOPES = (ALL, COURSE, CLASS, CHILD, OWN)
SCHOOL_ONLY = (ALL,)


@dataclass(frozen=True)
class Permission:
    key: str
    group: str
    label: object  # lazy string
    scopes: tuple[str, ...]

    @property
    def item(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def action(self) -> str:
        return self.key.split(".", 1)[1]


def _p(key, group, label, scopes=STUDENT_SCOPES):
    return Permission(key, group, label, tuple(scopes))


# Groups follow the national briefing's table (DESIGN.md §4): 建置, 輔導, 選課諮詢, 登錄, 維護, 訓練, 評核.
PERMISSIONS: tuple[Permission, ...] = (
    # 登錄 basic data
    _p("basic_data.view", "records", _l("View basic and registration data")),
    _p("basic_data.edit", "records", _l("Enter basic and registration data")),
    _p("basic_data.confirm", "records", _l("Check and confirm own basic data"), (OWN,)),
    _p("cadre_roles.edit", "records", _l("Enter cadre roles"), (ALL, CLASS)),
    _p("clubs.edit", "records", _l("Enter club records"), (ALL,)),
    _p("attendance.edit", "records", _l("Enter attendance summaries"), (ALL, CLASS)),
    # 登錄 course records
    _p("grades.view", "courses", _l("View course records and grades")),
    _p("grades.import", "courses", _l("Import course records and grades"), SCHOOL_ONLY),
    _p("course_selection.edit", "courses", _l("Enter elective course choices"), SCHOOL_ONLY),
    _p("counseling.view", "courses", _l("View course-counseling records")),
    _p("counseling.edit", "courses", _l("Enter course-counseling records"), (ALL, CLASS)),
    _p("guidance.edit", "courses", _l("Aptitude, interest and career guidance"), (ALL, CLASS)),
    # 登錄 portfolio items
    _p("course_outcome.view", "portfolio", _l("View course learning outcomes")),
    _p("course_outcome.upload", "portfolio", _l("Upload course learning outcomes"), (OWN,)),
    _p("course_outcome.certify", "portfolio", _l("Certify course learning outcomes"), (ALL, COURSE)),
    _p("performance.view", "portfolio", _l("View diverse performance")),
    _p("performance.upload", "portfolio", _l("Upload diverse performance"), (OWN,)),
    _p("performance.import", "portfolio", _l("Record diverse performance for students"), (ALL, CLASS)),
    _p("self_statement.view", "portfolio", _l("View self-statements")),
    _p("self_statement.edit", "portfolio", _l("Write self-statements"), (OWN,)),
    _p("selection.view", "portfolio", _l("View selections for the central database")),
    _p("selection.edit", "portfolio", _l("Select items for the central database"), (OWN,)),
    # 維護 check, manage, consolidate and upload
    _p("portfolio.check", "maintenance", _l("Check portfolios (檢核)"), (ALL, CLASS)),
    _p("submission.export", "maintenance", _l("Consolidate and submit to the central database"), SCHOOL_ONLY),
    _p("receipt.import", "maintenance", _l("Import receipt files from the central database"), SCHOOL_ONLY),
    _p("receipt.confirm", "maintenance", _l("Confirm receipt details"), (OWN,)),
    _p("roster.view", "maintenance", _l("View rosters: students, courses, classes"), (ALL, COURSE, CLASS)),
    _p("roster.edit", "maintenance", _l("Maintain rosters: accounts, courses, enrolments"), SCHOOL_ONLY),
    _p("users.manage", "maintenance", _l("Manage accounts and reset passwords"), SCHOOL_ONLY),
    _p("lifecycle.manage", "maintenance", _l("Graduation, sealing, legal holds and account expiry"), SCHOOL_ONLY),
    _p("sealed.view", "maintenance", _l("View sealed graduates' data"), SCHOOL_ONLY),
    _p("dashboard.view", "maintenance", _l("View progress dashboards"), (ALL, COURSE, CLASS)),
    # 建置 platform, rules, roles, audit
    _p("rules.view", "platform", _l("View supplementary rules"), SCHOOL_ONLY),
    _p("rules.edit", "platform", _l("Amend supplementary rules"), SCHOOL_ONLY),
    _p("roles.view", "platform", _l("View the role matrix"), SCHOOL_ONLY),
    _p("roles.edit", "platform", _l("Edit the role matrix"), SCHOOL_ONLY),
    _p("audit.view", "platform", _l("Search the audit log"), SCHOOL_ONLY),
    _p("branding.edit", "platform", _l("Edit the school's branding"), SCHOOL_ONLY),
    # 訓練、評核
    _p("governance.edit", "governance", _l("Working group, meetings and trainings"), SCHOOL_ONLY),
    _p("evaluation.edit", "governance", _l("Evaluation and rewards"), SCHOOL_ONLY),
)

BY_KEY: dict[str, Permission] = {p.key: p for p in PERMISSIONS}

#: the school's keys: a role holding one of these is handed out only by someone who holds it too (or
#: edits the role matrix), so that a roster clerk cannot mint an administrator
GRANT_GUARDED = frozenset({"roles.edit", "users.manage", "rules.edit", "audit.view", "branding.edit",
                           "lifecycle.manage", "sealed.view"})

GROUP_LABELS = {
    "records": _l("Basic data"),
    "courses": _l("Course records"),
    "portfolio": _l("Portfolio items"),
    "maintenance": _l("Maintenance"),
    "platform": _l("Platform and rules"),
    "governance": _l("Training and evaluation"),
}

#: Permissions the school_admin role always keeps, so a school can never lock itself out.
ADMIN_LOCKED = ("roles.view", "roles.edit", "users.manage")


def get(key: str) -> Permission:
    """The catalogue entry for ``key``. Raises KeyError for a permission that does not exist."""
    return BY_KEY[key]
