"""Role-matrix templates a school is provisioned from (DESIGN.md §4).

``moe``: the national briefing's table (行政 ● / 教師 Δ / 學生 ●), split into the role keys every
template must define. ``yuanlin``: 國立員林高中's division of labour (annex 1 of its supplementary
rules), which adds its units. A template maps role key → (zh name, en name, {permission: scope}).
"""
from __future__ import annotations

from lp_saas.roles.catalogue import ALL, BY_KEY, CHILD, CLASS, COURSE, OWN, PERMISSIONS

REQUIRED_ROLE_KEYS = (
    "school_admin", "registrar", "teacher", "homeroom_teacher", "course_counselor", "student", "parent",
)

_ALL_PERMISSIONS = {p.key: ALL for p in PERMISSIONS if ALL in p.scopes}

_STUDENT = {
    "basic_data.view": OWN, "basic_data.confirm": OWN, "grades.view": OWN, "counseling.view": OWN,
    "course_outcome.view": OWN, "course_outcome.upload": OWN,
    "performance.view": OWN, "performance.upload": OWN,
    "self_statement.view": OWN, "self_statement.edit": OWN,
    "selection.view": OWN, "selection.edit": OWN, "receipt.confirm": OWN,
}
_PARENT = {
    "basic_data.view": CHILD, "grades.view": CHILD, "course_outcome.view": CHILD,
    "performance.view": CHILD, "self_statement.view": CHILD, "selection.view": CHILD,
}
_TEACHER = {
    "course_outcome.view": COURSE, "course_outcome.certify": COURSE, "roster.view": COURSE,
    "dashboard.view": COURSE, "performance.view": COURSE, "rules.view": ALL,
}
_HOMEROOM = {
    "basic_data.view": CLASS, "grades.view": CLASS, "course_outcome.view": CLASS,
    "performance.view": CLASS, "performance.import": CLASS, "self_statement.view": CLASS,
    "selection.view": CLASS, "portfolio.check": CLASS, "roster.view": CLASS, "dashboard.view": CLASS,
    "cadre_roles.edit": CLASS, "counseling.view": CLASS, "rules.view": ALL,
}
_COUNSELOR = {
    "counseling.view": ALL, "counseling.edit": ALL, "grades.view": ALL, "basic_data.view": ALL,
    "course_outcome.view": ALL, "performance.view": ALL, "self_statement.view": ALL,
    "roster.view": ALL, "rules.view": ALL,
}
_REGISTRAR = {
    "basic_data.view": ALL, "basic_data.edit": ALL, "grades.view": ALL, "grades.import": ALL,
    "course_outcome.view": ALL, "performance.view": ALL, "performance.import": ALL,
    "selection.view": ALL, "portfolio.check": ALL, "submission.export": ALL, "receipt.import": ALL,
    "roster.view": ALL, "roster.edit": ALL, "users.manage": ALL, "lifecycle.manage": ALL,
    "sealed.view": ALL, "dashboard.view": ALL, "rules.view": ALL, "roles.view": ALL, "audit.view": ALL,
}

MOE = {
    "school_admin": ("學校管理者", "School administrator", dict(_ALL_PERMISSIONS)),
    "registrar": ("註冊組", "Registrar", _REGISTRAR),
    "teacher": ("任課教師", "Course teacher", _TEACHER),
    "homeroom_teacher": ("導師", "Homeroom teacher", _HOMEROOM),
    "course_counselor": ("課程諮詢教師", "Course counselor", _COUNSELOR),
    "student": ("學生", "Student", _STUDENT),
    "parent": ("家長", "Parent", _PARENT),
    "administration": ("行政人員", "Administrative staff", {
        "basic_data.view": ALL, "roster.view": ALL, "dashboard.view": ALL, "rules.view": ALL,
        "governance.edit": ALL, "evaluation.edit": ALL, "guidance.edit": ALL, "portfolio.check": ALL,
    }),
}

YUANLIN = {
    **{k: v for k, v in MOE.items() if k != "administration"},
    # 教務處教學組: 選修課程名稱, 教師研習
    "academic_affairs": ("教學組", "Academic affairs section", {
        "course_selection.edit": ALL, "roster.view": ALL, "grades.view": ALL, "dashboard.view": ALL,
        "governance.edit": ALL, "rules.view": ALL,
    }),
    # 學務處訓育組: 幹部經歷, 彈性學習, 團體活動
    "student_activities": ("訓育組", "Student activities section", {
        "cadre_roles.edit": ALL, "performance.import": ALL, "performance.view": ALL,
        "basic_data.view": ALL, "roster.view": ALL, "rules.view": ALL,
    }),
    # 學務處社團組: 社團活動
    "clubs": ("社團組", "Clubs section", {
        "clubs.edit": ALL, "performance.import": ALL, "roster.view": ALL, "rules.view": ALL,
    }),
    # 學務處生輔組: 出缺勤紀錄
    "discipline": ("生輔組", "Student discipline section", {
        "attendance.edit": ALL, "roster.view": ALL, "rules.view": ALL,
    }),
    # 輔導處: 學群探索, 自述與綜整心得, 親師說明
    "guidance": ("輔導處", "Guidance office", {
        "guidance.edit": ALL, "self_statement.view": ALL, "counseling.view": ALL,
        "basic_data.view": ALL, "roster.view": ALL, "governance.edit": ALL, "rules.view": ALL,
    }),
    # 圖書館資訊媒體組: 系統問題排解, 學生訓練
    "library_media": ("圖書館資訊媒體組", "Library information and media section", {
        "roster.view": ALL, "dashboard.view": ALL, "governance.edit": ALL, "rules.view": ALL,
        "audit.view": ALL,
    }),
}

TEMPLATES = {"moe": MOE, "yuanlin": YUANLIN}
TEMPLATE_LABELS = {"moe": "國教署學習歷程作業要點（行政／教師／學生）", "yuanlin": "國立員林高中補充規定附件一分工"}


def _check_templates() -> None:
    for name, roles in TEMPLATES.items():
        missing = set(REQUIRED_ROLE_KEYS) - set(roles)
        assert not missing, f"template {name} lacks roles {missing}"
        for key, (_zh, _en, perms) in roles.items():
            for perm, scope in perms.items():
                assert scope in BY_KEY[perm].scopes, f"{name}.{key}: {perm} cannot have scope {scope}"


_check_templates()
