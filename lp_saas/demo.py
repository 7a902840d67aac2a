"""``flask demo``: a demo platform on whatever database is configured (idempotent).

Two schools, one per role-matrix template, with an account for every role, classes, courses and
enrolments, so every page has something to show. Portfolio items arrive with the portfolio issue.
"""
from __future__ import annotations

import os

import sqlalchemy as sa
from flask import current_app

from lp_saas.academics.models import Course, Enrollment, ParentLink
from lp_saas.academics.services import current_academic_year, get_or_create_class, place_in_class
from lp_saas.accounts import services as accounts
from lp_saas.database import db
from lp_saas.roles.templates import TEMPLATES
from lp_saas.tenants import services as tenants
from lp_saas.tenants.context import tenant_scope

DEMO_PASSWORD = "lp-demo-2024"

SCHOOLS = (
    {"slug": "ylsh", "name": "國立員林高級中學", "name_en": "National Yuanlin Senior High School",
     "school_code": "074308", "template": "yuanlin", "primary_color": "#7a1f3d", "accent_color": "#e0b04b",
     "motto": "誠 正 勤 樸"},
    {"slug": "demo", "name": "示範市立高級中學", "name_en": "Demo Municipal Senior High School",
     "school_code": "313301", "template": "moe", "primary_color": "#1d4e89", "accent_color": "#f2a900",
     "motto": "自主 互動 共好"},
)

# username → (display name, role keys)
PEOPLE = {
    "admin": ("系統管理者 林怡君", ["school_admin"]),
    "registrar": ("註冊組長 陳建宏", ["registrar"]),
    "teacher1": ("數學科 張雅婷老師", ["teacher"]),
    "teacher2": ("國文科 李明哲老師", ["teacher"]),
    "homeroom": ("301 導師 黃淑芬老師", ["teacher", "homeroom_teacher"]),
    "counselor": ("課程諮詢 吳佳蓉老師", ["teacher", "course_counselor"]),
    "student1": ("王小明", ["student"]),
    "student2": ("林小華", ["student"]),
    "student3": ("陳美玲", ["student"]),
    "parent1": ("王大同（王小明家長）", ["parent"]),
}
UNIT_PEOPLE = {
    "academic": ("教學組長 周志明", ["academic_affairs"]),
    "activities": ("訓育組長 鄭文雄", ["student_activities"]),
    "clubs": ("社團活動組長 許雅琪", ["clubs"]),
    "discipline": ("生輔組長 郭志豪", ["discipline"]),
    "guidance": ("輔導主任 蔡佩珊", ["guidance"]),
    "library": ("資訊媒體組長 楊宗翰", ["library_media"]),
}


def _ensure_user(tenant, username, display_name, roles, **extra):
    user = accounts.find_user(tenant.id, username)
    if user is None:
        user = accounts.create_user(tenant, "system:demo", username=username, display_name=display_name,
                                    password=DEMO_PASSWORD, roles=roles, **extra)
    return user


def _seed_school(spec) -> dict:
    tenant = tenants.find_by_slug(spec["slug"])
    if tenant is None:
        tenant, _ = tenants.create_tenant(slug=spec["slug"], name=spec["name"], name_en=spec["name_en"],
                                          school_code=spec["school_code"], template=spec["template"])
        tenant.primary_color, tenant.accent_color, tenant.motto = (
            spec["primary_color"], spec["accent_color"], spec["motto"])
        db.session.commit()
    if tenant.status != "active":
        outcome = tenants.provision_now(tenant)
        if outcome["status"] != "succeeded":
            raise RuntimeError(f"provisioning {spec['slug']} failed: {outcome['error']}")
        tenant = tenants.find_by_slug(spec["slug"])
    people = dict(PEOPLE)
    if "academic_affairs" in TEMPLATES[tenant.template]:
        people.update(UNIT_PEOPLE)
    with tenant_scope(tenant):
        users = {}
        for number, (username, (display_name, roles)) in enumerate(people.items(), start=1):
            extra = {"student_no": f"11{number:04d}"} if roles == ["student"] else {}
            users[username] = _ensure_user(tenant, username, display_name, roles, **extra)
        year = current_academic_year()
        homeroom_class = get_or_create_class(tenant, "301", year, 12)
        homeroom_class.homeroom_teacher_id = users["homeroom"].id
        for student in ("student1", "student2"):
            place_in_class(tenant, "system:demo", users[student], "301", year)
        place_in_class(tenant, "system:demo", users["student3"], "302", year)
        if db.session.get(ParentLink, (tenant.id, users["parent1"].id, users["student1"].id)) is None:
            db.session.add(ParentLink(tenant_id=tenant.id, parent_id=users["parent1"].id,
                                      student_id=users["student1"].id))
        for semester in (1, 2):
            for code, name, teacher, credits in (("MATH", "數學", "teacher1", 4), ("CHIN", "國語文", "teacher2", 4),
                                                  ("INQ", "自然科學探究與實作", "counselor", 2)):
                full_code = f"{year}-{spec['school_code']}-{code}-12-{semester}"
                course = db.session.scalar(sa.select(Course).where(Course.tenant_id == tenant.id,
                                                                   Course.code == full_code))
                if course is None:
                    course = Course(tenant_id=tenant.id, code=full_code, name=name, credits=credits,
                                    academic_year=year, semester=semester, grade=12, subject=name,
                                    teacher_id=users[teacher].id,
                                    deputy_id=users["teacher2" if teacher != "teacher2" else "teacher1"].id)
                    db.session.add(course)
                    db.session.flush()
                for student in ("student1", "student2", "student3"):
                    if db.session.get(Enrollment, (tenant.id, course.id, users[student].id)) is None:
                        db.session.add(Enrollment(tenant_id=tenant.id, course_id=course.id,
                                                  student_id=users[student].id))
        db.session.commit()
    return {"tenant": tenant, "people": people}


def seed_demo(echo=print) -> None:
    base = current_app.config["LP_BASE_DOMAIN"]
    port = f":{os.environ.get('PORT', '5000')}" if base == "localhost" else ""
    echo(f"Platform: http://{base}{port}/")
    for spec in SCHOOLS:
        seeded = _seed_school(spec)
        tenant = seeded["tenant"]
        echo(f"\n{tenant.name} ({tenant.template}): http://{tenant.slug}.{base}{port}/")
        for username, (display_name, roles) in seeded["people"].items():
            echo(f"  {username:<11} {','.join(roles):<32} {display_name}")
    echo(f"\nEvery demo account's password: {DEMO_PASSWORD}")
