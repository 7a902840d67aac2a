"""Roster: what school administrative systems push (accounts, courses, enrolments)."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from flask import g
from flask_babel import gettext as _
from marshmallow import fields, validate

from lp_saas.academics.models import Course, Enrollment
from lp_saas.accounts import services as accounts
from lp_saas.accounts.models import User
from lp_saas.api import bp
from lp_saas.api.common import InputSchema, Line, api_permission, parse_json
from lp_saas.database import db
from lp_saas.errors import ValidationFailed
from lp_saas.roles import permissions
from lp_saas.tenants.context import current_tenant
from lp_saas.tenants.resolver import get_scoped, get_scoped_or_404

TEXT = validate.Length(min=1, max=100)


class UserCreate(InputSchema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    display_name = Line(required=True, validate=TEXT)
    roles = fields.List(fields.String(validate=validate.Length(min=1, max=40)), required=True,
                        validate=validate.Length(min=1, max=10))
    password = fields.String(validate=validate.Length(min=1, max=128))
    email = fields.Email()
    student_no = fields.String(validate=validate.Length(min=1, max=20))
    class_name = Line(validate=validate.Length(min=1, max=40))


class UserPatch(InputSchema):
    expires_at = fields.AwareDateTime(allow_none=True)
    roles = fields.List(fields.String(validate=validate.Length(min=1, max=40)), validate=validate.Length(min=1, max=10))
    display_name = Line(validate=TEXT)
    status = fields.String(validate=validate.OneOf(["active", "disabled"]))


class CourseCreate(InputSchema):
    code = Line(required=True, validate=validate.Length(min=1, max=40))
    name = Line(required=True, validate=TEXT)
    credits = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=30))
    academic_year = fields.Integer(required=True, strict=True, validate=validate.Range(min=100, max=200))
    semester = fields.Integer(required=True, strict=True, validate=validate.OneOf([1, 2]))
    teacher_id = fields.UUID(required=True)
    deputy_id = fields.UUID(allow_none=True)
    grade = fields.Integer(strict=True, validate=validate.OneOf([10, 11, 12]))
    subject = Line(validate=validate.Length(min=1, max=60))


class EnrollmentAdd(InputSchema):
    student_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1, max=500))


def user_json(user: User) -> dict:
    return {
        "id": str(user.id),
        "username": user.username,
        "display_name": user.display_name,
        "roles": [r.key for r in permissions.user_roles(user)],
        "status": user.status,
        "student_no": user.student_no,
        "expires_at": user.expires_at.isoformat() if user.expires_at else None,
    }


def course_json(course: Course) -> dict:
    return {
        "id": str(course.id), "code": course.code, "name": course.name, "credits": course.credits,
        "academic_year": course.academic_year, "semester": course.semester, "grade": course.grade,
        "subject": course.subject, "teacher_id": str(course.teacher_id),
        "deputy_id": str(course.deputy_id) if course.deputy_id else None,
    }


@bp.route("/users", methods=["POST"])
@api_permission("roster.edit")
def create_user():
    """Create an account.
    ---
    post:
      summary: Create an account of this school with roles (by key)
      tags: [roster]
      requestBody:
        required: true
        content:
          application/json:
            schema: UserCreate
      responses:
        201: {description: the account}
        409: {description: the school's plan has no room for another student account}
        422: {description: "invalid fields; a username or student number already taken; a role the caller may not give"}
    """
    data = parse_json(UserCreate())
    tenant = current_tenant()
    if data.get("class_name") and "student" not in data["roles"]:
        raise ValidationFailed({"class_name": _("Only a student is placed in a class.")})
    if data.get("class_name"):
        from lp_saas.academics.services import place_in_class

        class_name = data["class_name"]
    else:
        class_name = None
    user = accounts.create_user(tenant, g.actor, username=data["username"], display_name=data["display_name"],
                                password=data.get("password"), roles=data["roles"], email=data.get("email"),
                                student_no=data.get("student_no"))
    if class_name:
        place_in_class(tenant, g.actor, user, class_name)
    db.session.commit()
    return user_json(user), 201


@bp.route("/users/<user_id>", methods=["GET"])
@api_permission("roster.view")
def get_user(user_id):
    """An account.
    ---
    get:
      summary: One account of this school (within the caller's roster scope)
      tags: [roster]
      responses:
        200: {description: the account}
        404: {description: no such account here}
    """
    user = get_scoped_or_404(User, user_id)
    if not (permissions.can(g.actor, "roster.view", student_id=user.id) or user.id == g.actor.id):
        from flask import abort

        abort(404)
    if user.id != g.actor.id:
        from lp_saas.audit import services as audit

        # personal data read: who looked at whom (PDPA; answers "whose data did this account touch")
        audit.record(user.tenant_id, g.actor, "user.read", target_type="user", target_id=user.id,
                     student_id=user.id if user.student_no or "student" in user_json(user)["roles"] else None)
        db.session.commit()
    return user_json(user)


@bp.route("/users/<user_id>", methods=["PATCH"])
@api_permission("users.manage")
def patch_user(user_id):
    """Change an account's expiry, roles, name or status.
    ---
    patch:
      summary: Change an account (expires_at, roles, display_name, status)
      tags: [roster]
      requestBody:
        required: true
        content:
          application/json:
            schema: UserPatch
      responses:
        200: {description: the account}
        404: {description: no such account here}
        422: {description: invalid fields}
    """
    from lp_saas.roles.services import set_user_roles

    user = get_scoped_or_404(User, user_id)
    data = parse_json(UserPatch(), partial=True)
    tenant = current_tenant()
    if user.id == g.actor.id and (data.get("status") == "disabled" or "roles" in data
                                  or (data.get("expires_at") and data["expires_at"] <= datetime.now(timezone.utc))):
        raise ValidationFailed({"user": _("You cannot disable, expire or change the roles of your own account.")})
    if "display_name" in data:
        user.display_name = data["display_name"].strip()
    if "roles" in data:
        set_user_roles(tenant, g.actor, user, data["roles"])
    if "expires_at" in data:
        accounts.set_expiry(g.actor, user, data["expires_at"])
    if "status" in data:
        accounts.set_status(g.actor, user, data["status"])
    db.session.commit()
    return user_json(user)


@bp.route("/courses", methods=["POST"])
@api_permission("roster.edit")
def create_course():
    """Create a course.
    ---
    post:
      summary: Create a course of a semester, taught by a teacher of this school
      tags: [roster]
      requestBody:
        required: true
        content:
          application/json:
            schema: CourseCreate
      responses:
        201: {description: the course}
        409: {description: the course code exists in that semester}
        422: {description: invalid fields}
    """
    data = parse_json(CourseCreate())
    tenant = current_tenant()
    errors = {}
    for field in ("teacher_id", "deputy_id"):
        person = get_scoped(User, data[field]) if data.get(field) else None
        # a course's teacher and deputy certify its outcomes: an account that cannot is no teacher
        if data.get(field) and (person is None or not permissions.has(person, "course_outcome.certify")):
            errors[field] = _("No such teacher at this school.")
    if data.get("deputy_id") and data["deputy_id"] == data["teacher_id"]:
        errors["deputy_id"] = _("The deputy must be another teacher.")
    if errors:
        raise ValidationFailed(errors)
    exists = db.session.scalar(sa.select(Course.id).where(
        Course.tenant_id == tenant.id, Course.academic_year == data["academic_year"],
        Course.semester == data["semester"], Course.code == data["code"]))
    if exists:
        from lp_saas.errors import Conflict

        raise Conflict(_("A course with this code already exists in that semester."), code="course_exists")
    course = Course(tenant_id=tenant.id, **data)
    db.session.add(course)
    db.session.flush()
    from lp_saas.audit import services as audit

    audit.record(tenant.id, g.actor, "course.created", target_type="course", target_id=course.id)
    db.session.commit()
    return course_json(course), 201


@bp.route("/courses/<course_id>/enrollments", methods=["POST"])
@api_permission("roster.edit")
def add_enrollments(course_id):
    """Enrol students.
    ---
    post:
      summary: Enrol students (ids of this school) in a course; enrolling twice changes nothing
      tags: [roster]
      requestBody:
        required: true
        content:
          application/json:
            schema: EnrollmentAdd
      responses:
        200: {description: "{course_id, enrolled, added}"}
        404: {description: no such course here}
        422: {description: unknown student ids}
    """
    course = get_scoped_or_404(Course, course_id)
    data = parse_json(EnrollmentAdd())
    tenant = current_tenant()
    wanted = list(dict.fromkeys(data["student_ids"]))
    from lp_saas.roles.models import RolePermission, UserRole

    # students: the accounts whose roles upload course outcomes (one query for the whole list)
    found = set(db.session.scalars(
        sa.select(UserRole.user_id).join(RolePermission, sa.and_(RolePermission.tenant_id == UserRole.tenant_id,
                                                                 RolePermission.role_id == UserRole.role_id))
        .where(UserRole.tenant_id == tenant.id, UserRole.user_id.in_(wanted),
               RolePermission.permission == "course_outcome.upload")))
    missing = [str(s) for s in wanted if s not in found]
    if missing:
        raise ValidationFailed({"student_ids": _("No such students at this school: %(ids)s", ids=", ".join(missing))})
    have = set(db.session.scalars(sa.select(Enrollment.student_id).where(
        Enrollment.tenant_id == tenant.id, Enrollment.course_id == course.id)))
    added = 0
    for student_id in wanted:
        if student_id not in have:
            db.session.add(Enrollment(tenant_id=tenant.id, course_id=course.id, student_id=student_id))
            added += 1
    from lp_saas.audit import services as audit

    if added:
        audit.record(tenant.id, g.actor, "course.enrolled", target_type="course", target_id=course.id,
                     details={"added": added})
    db.session.commit()
    return {"course_id": str(course.id), "enrolled": len(have) + added, "added": added}, 200
