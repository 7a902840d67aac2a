"""The one permission check. Views, templates, the API and jobs all ask here; none re-implements it.

A user's grants are the union of their roles' rows in the school's role matrix: permission →
scopes. A scope narrows a permission to the targets the user stands in relation to:

- ``all``: anything in the school;
- ``own``: the user's own items (``student_id`` is the user);
- ``course``: courses the user teaches or deputises, and students enrolled in them;
- ``class``: students of a class whose homeroom teacher is the user;
- ``child``: the user's own children (parent links).

Lacking a permission altogether is a 403; holding it but not over this target is a 404, so a
classmate's or another child's item is never confirmed to exist.

Sealed graduates (``lifecycle``): once a student's data is sealed it is read-only for everyone
(any permission but ``*.view`` is refused on them: a 403 with code ``sealed`` from :func:`require`),
and readable only by users holding one of the roles the school's rules name
(``graduates.sealed_viewer_roles``); to anyone else it is out of scope (404). The lifecycle's own
permissions (``lifecycle.manage``, ``sealed.view``) still apply to them. The sealed ids are one
query per request, cached with the grants.
"""
from __future__ import annotations

import uuid
from functools import wraps

import sqlalchemy as sa
from flask import abort, g, has_app_context

from lp_saas.academics.models import ClassMembership, Course, Enrollment, ParentLink, SchoolClass
from lp_saas.database import db
from lp_saas.lifecycle.models import Graduation
from lp_saas.roles import catalogue
from lp_saas.roles.catalogue import ALL, CHILD, CLASS, COURSE, OWN
from lp_saas.roles.models import Role, RolePermission, UserRole


def _cache(user) -> dict:
    """Per-request (per app context) memo, keyed by user, so a page asks the database once."""
    if not has_app_context():
        return {}
    store = g.setdefault("_perm_cache", {})
    return store.setdefault((user.tenant_id, user.id), {})


def user_roles(user) -> list[Role]:
    cache = _cache(user)
    if "roles" not in cache:
        cache["roles"] = list(
            db.session.scalars(
                sa.select(Role)
                .join(UserRole, sa.and_(UserRole.tenant_id == Role.tenant_id, UserRole.role_id == Role.id))
                .where(UserRole.tenant_id == user.tenant_id, UserRole.user_id == user.id)
                .order_by(Role.key)
            )
        )
    return cache["roles"]


def grants(user) -> dict[str, set[str]]:
    """permission key → the scopes the user holds it with (empty dict for no user)."""
    if user is None or not getattr(user, "is_authenticated", True):
        return {}
    cache = _cache(user)
    if "grants" not in cache:
        rows = db.session.execute(
            sa.select(RolePermission.permission, RolePermission.scope)
            .join(UserRole, sa.and_(UserRole.tenant_id == RolePermission.tenant_id,
                                    UserRole.role_id == RolePermission.role_id))
            .where(UserRole.tenant_id == user.tenant_id, UserRole.user_id == user.id)
        )
        result: dict[str, set[str]] = {}
        for perm, scope in rows:
            result.setdefault(perm, set()).add(scope)
        cache["grants"] = result
    return cache["grants"]


def has(user, permission: str) -> bool:
    """Whether the user holds ``permission`` with any scope (menus, 403 before any lookup)."""
    catalogue.get(permission)  # a typo in a permission name is a bug: KeyError, loudly
    return bool(grants(user).get(permission))


def has_school_wide(user, permission: str) -> bool:
    return ALL in grants(user).get(permission, ())


def _taught_course_ids(user) -> set[uuid.UUID]:
    cache = _cache(user)
    if "courses" not in cache:
        cache["courses"] = set(db.session.scalars(
            sa.select(Course.id).where(
                Course.tenant_id == user.tenant_id,
                sa.or_(Course.teacher_id == user.id, Course.deputy_id == user.id),
            )
        ))
    return cache["courses"]


def _course_student_ids(user) -> set[uuid.UUID]:
    cache = _cache(user)
    if "course_students" not in cache:
        cache["course_students"] = set(db.session.scalars(
            sa.select(Enrollment.student_id).where(Enrollment.tenant_id == user.tenant_id,
                                                   _course_taught_clause(user, Enrollment.course_id))
        ))
    return cache["course_students"]


def _class_student_ids(user) -> set[uuid.UUID]:
    cache = _cache(user)
    if "class_students" not in cache:
        cache["class_students"] = set(db.session.scalars(_class_students_select(user)))
    return cache["class_students"]


def _child_ids(user) -> set[uuid.UUID]:
    cache = _cache(user)
    if "children" not in cache:
        cache["children"] = set(db.session.scalars(
            sa.select(ParentLink.student_id).where(ParentLink.tenant_id == user.tenant_id,
                                                   ParentLink.parent_id == user.id)
        ))
    return cache["children"]


def _course_taught_clause(user, course_id_column):
    return course_id_column.in_(
        sa.select(Course.id).where(
            Course.tenant_id == user.tenant_id,
            sa.or_(Course.teacher_id == user.id, Course.deputy_id == user.id),
        )
    )


def _class_students_select(user):
    return (
        sa.select(ClassMembership.student_id)
        .join(SchoolClass, sa.and_(SchoolClass.tenant_id == ClassMembership.tenant_id,
                                   SchoolClass.id == ClassMembership.class_id))
        .where(ClassMembership.tenant_id == user.tenant_id, SchoolClass.homeroom_teacher_id == user.id)
    )


# --- sealed graduates ------------------------------------------------------------------------

#: the lifecycle's own permissions act on sealed students (legal holds, their listing)
SEALING_EXEMPT = frozenset({"lifecycle.manage", "sealed.view"})


def _is_read(permission: str) -> bool:
    return permission.endswith(".view")


def _sealed_select(tenant_id):
    return sa.select(Graduation.student_id).where(Graduation.tenant_id == tenant_id,
                                                  Graduation.sealed_at.is_not(None))


def sealed_student_ids(tenant_id) -> set[uuid.UUID]:
    """The school's sealed graduates (one query, remembered for the request)."""
    if not has_app_context():
        return set(db.session.scalars(_sealed_select(tenant_id)))
    store = g.setdefault("_perm_cache", {})
    key = ("sealed", tenant_id)
    if key not in store:
        store[key] = set(db.session.scalars(_sealed_select(tenant_id)))
    return store[key]


def may_read_sealed(user) -> bool:
    """Whether one of the user's roles is among the rule set's ``graduates.sealed_viewer_roles``."""
    cache = _cache(user)
    if "sealed_reader" not in cache:
        from lp_saas.tenants.rulesets import current_rules

        allowed = set(current_rules(user.tenant_id)["graduates"]["sealed_viewer_roles"])
        cache["sealed_reader"] = any(role.key in allowed for role in user_roles(user))
    return cache["sealed_reader"]


def sealing_refuses(user, permission: str, student_id) -> bool:
    """Whether sealing takes ``permission`` on this student away from ``user`` (scope aside)."""
    if student_id is None or permission in SEALING_EXEMPT or student_id not in sealed_student_ids(user.tenant_id):
        return False
    return not _is_read(permission) or not may_read_sealed(user)


def can(user, permission: str, *, student_id: uuid.UUID | None = None,
        course_id: uuid.UUID | None = None) -> bool:
    """Whether ``user`` may use ``permission`` on the target named by student and/or course.

    With no target, the question is "school-wide?" (only the ``all`` scope answers yes).
    An item that belongs to a student in a course (a course outcome) passes ``course`` scope
    through its course, and the other scopes through its student. A sealed graduate's data is
    read-only, and readable only by the roles the school's rules name.
    """
    return _in_scope(user, permission, student_id=student_id, course_id=course_id) and \
        not sealing_refuses(user, permission, student_id)


def _in_scope(user, permission: str, *, student_id: uuid.UUID | None = None,
              course_id: uuid.UUID | None = None) -> bool:
    scopes = grants(user).get(permission, set()) if user is not None else set()
    catalogue.get(permission)
    if not scopes:
        return False
    if ALL in scopes:
        return True
    if OWN in scopes and student_id is not None and student_id == user.id:
        return True
    if CHILD in scopes and student_id is not None and student_id in _child_ids(user):
        return True
    if CLASS in scopes and student_id is not None and student_id in _class_student_ids(user):
        return True
    if COURSE in scopes:
        if course_id is not None:
            return course_id in _taught_course_ids(user)
        if student_id is not None:
            return student_id in _course_student_ids(user)
    return False


def require(user, permission: str, **target) -> None:
    """Abort 403 when the user lacks ``permission`` entirely, 404 when the target is out of scope.

    Raises Forbidden (403, code ``sealed``) for a write on a sealed graduate the user has in scope.
    """
    if not has(user, permission):
        abort(403)
    if target and not can(user, permission, **target):
        if not _is_read(permission) and _in_scope(user, permission, **target):
            from flask_babel import lazy_gettext as _l

            from lp_saas.errors import Forbidden

            raise Forbidden(_l("This student has graduated: their data is sealed and can no longer be changed."),
                            code="sealed")
        abort(404)
    if not target and not has_school_wide(user, permission):
        abort(403)


def student_filter(user, permission: str, student_id_column, course_id_column=None):
    """A SQL condition selecting the rows (by their student / course column) in the user's scope.

    Used by lists so that they cost one query whatever the number of items. False when none.
    Sealed graduates are left out unless the permission reads and the user may read sealed data.
    """
    clause = _scope_filter(user, permission, student_id_column, course_id_column)
    if user is None or permission in SEALING_EXEMPT or not sealed_student_ids(user.tenant_id):
        return clause
    if _is_read(permission) and may_read_sealed(user):
        return clause
    return sa.and_(clause, student_id_column.not_in(_sealed_select(user.tenant_id)))


def _scope_filter(user, permission: str, student_id_column, course_id_column=None):
    scopes = grants(user).get(permission, set())
    if ALL in scopes:
        return sa.true()
    clauses = []
    if OWN in scopes:
        clauses.append(student_id_column == user.id)
    if CHILD in scopes:
        clauses.append(student_id_column.in_(
            sa.select(ParentLink.student_id).where(ParentLink.tenant_id == user.tenant_id,
                                                   ParentLink.parent_id == user.id)))
    if CLASS in scopes:
        clauses.append(student_id_column.in_(_class_students_select(user)))
    if COURSE in scopes:
        if course_id_column is not None:
            clauses.append(_course_taught_clause(user, course_id_column))
        else:
            clauses.append(student_id_column.in_(
                sa.select(Enrollment.student_id).where(
                    Enrollment.tenant_id == user.tenant_id, _course_taught_clause(user, Enrollment.course_id))))
    return sa.or_(*clauses) if clauses else sa.false()


def permission_required(permission: str):
    """View decorator: login required, and the permission held school-wide-or-scoped (403 if not).

    Scope over a particular target is checked by the view with :func:`require` once it has loaded it.
    """
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            from lp_saas.accounts.auth import current_actor

            user = current_actor()
            if user is None:
                abort(401)
            if not has(user, permission):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_permission = permission
        return wrapped

    return decorator


def login_required(view):
    """View decorator: any signed-in user of this school."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        from lp_saas.accounts.auth import current_actor

        if current_actor() is None:
            abort(401)
        return view(*args, **kwargs)

    wrapped.login_required = True
    return wrapped


def invalidate(user=None) -> None:
    """Forget memoised grants (after the matrix or a user's roles change within a request)."""
    if has_app_context():
        g.pop("_perm_cache", None)
