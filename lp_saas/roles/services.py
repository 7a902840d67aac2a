"""Changing a school's role matrix and who holds which role. Services flush; callers commit."""
from __future__ import annotations

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from lp_saas.audit import services as audit
from lp_saas.database import db
from lp_saas.errors import ValidationFailed
from lp_saas.roles import catalogue, permissions
from lp_saas.roles.models import Role, RolePermission, UserRole
from lp_saas.roles.templates import TEMPLATES


def roles_of_school(tenant_id) -> list[Role]:
    return list(db.session.scalars(sa.select(Role).where(Role.tenant_id == tenant_id).order_by(Role.key)))


def seed_roles_from_template(tenant, template: str) -> int:
    """Create the template's roles the school does not have yet. Returns how many were created."""
    existing = {r.key for r in roles_of_school(tenant.id)}
    created = 0
    for key, (name_zh, name_en, perms) in TEMPLATES[template].items():
        if key in existing:
            continue
        role = Role(tenant_id=tenant.id, key=key, name_zh=name_zh, name_en=name_en, builtin=True)
        db.session.add(role)
        db.session.flush()
        for perm, scope in perms.items():
            db.session.add(RolePermission(tenant_id=tenant.id, role_id=role.id, permission=perm, scope=scope))
        created += 1
    db.session.flush()
    return created


def matrix(tenant_id) -> dict:
    """{role_id: {permission: scope}} for the school."""
    out: dict = {}
    for row in db.session.scalars(sa.select(RolePermission).where(RolePermission.tenant_id == tenant_id)):
        out.setdefault(row.role_id, {})[row.permission] = row.scope
    return out


def update_matrix(tenant, actor, new_matrix: dict) -> int:
    """Replace the school's matrix with ``new_matrix`` ({role_key: {permission: scope}}).

    Needs ``roles.edit``. Raises ValidationFailed naming each unknown role, unknown permission or
    scope the permission cannot have, and refuses to take the administrator's own keys away.
    Returns the number of cells changed; each change is audited.
    """
    roles = {r.key: r for r in roles_of_school(tenant.id)}
    errors = {}
    for role_key, perms in new_matrix.items():
        if role_key not in roles:
            errors[role_key] = str(_l("Unknown role."))
            continue
        for perm, scope in perms.items():
            spec = catalogue.BY_KEY.get(perm)
            if spec is None:
                errors[f"{role_key}.{perm}"] = str(_l("Unknown permission."))
            elif scope not in spec.scopes:
                errors[f"{role_key}.{perm}"] = str(_l(
                    "The permission \u201c%(permission)s\u201d cannot have the scope \u201c%(scope)s\u201d.",
                    permission=spec.label, scope=catalogue.SCOPE_LABELS.get(scope, scope)))
    admin_perms = new_matrix.get("school_admin", {})
    for locked in catalogue.ADMIN_LOCKED:
        if "school_admin" in new_matrix and admin_perms.get(locked) != catalogue.ALL:
            errors[f"school_admin.{locked}"] = str(_l(
                "The school administrator always keeps \u201c%(permission)s\u201d for the whole school, "
                "so that the school cannot lock itself out.", permission=catalogue.BY_KEY[locked].label))
    if errors:
        raise ValidationFailed(errors)

    current = matrix(tenant.id)
    changes = 0
    for role_key, perms in new_matrix.items():
        role = roles[role_key]
        before = current.get(role.id, {})
        for perm in set(before) | set(perms):
            old, new = before.get(perm), perms.get(perm)
            if old == new:
                continue
            changes += 1
            existing = db.session.get(RolePermission, (tenant.id, role.id, perm))
            if new is None:
                db.session.delete(existing)
            elif existing is None:
                db.session.add(RolePermission(tenant_id=tenant.id, role_id=role.id, permission=perm, scope=new))
            else:
                existing.scope = new
            audit.record(tenant.id, actor, "roles.change", target_type="role", target_id=role.key,
                         details={"permission": perm, "from": old, "to": new})
    db.session.flush()
    permissions.invalidate()
    return changes


def _role_permissions(tenant_id, role_id) -> list[str]:
    return list(db.session.scalars(sa.select(RolePermission.permission).where(
        RolePermission.tenant_id == tenant_id, RolePermission.role_id == role_id)))


def set_user_roles(tenant, actor, user, role_keys: list[str]) -> list[str]:
    """Give ``user`` exactly these roles.

    Raises ValidationFailed for unknown role keys, for a role the actor may not hand out (one with one
    of the school's keys, ``catalogue.GRANT_GUARDED``, that the actor lacks, unless the actor edits the
    role matrix: ``roles.edit``), and for a student who would also hold staff roles; QuotaExceeded
    (409) when the student role would take the school past its plan.
    """
    roles = {r.key: r for r in roles_of_school(tenant.id)}
    unknown = [k for k in role_keys if k not in roles]
    if unknown or not role_keys:
        raise ValidationFailed({"roles": str(_l("Unknown roles: %(roles)s.", roles=", ".join(unknown)))
                                if unknown else str(_l("Give at least one role."))})
    wanted = {roles[k].id for k in role_keys}
    held = set(db.session.scalars(sa.select(UserRole.role_id).where(
        UserRole.tenant_id == tenant.id, UserRole.user_id == user.id)))
    added = [key for key in role_keys if roles[key].id not in held]
    if added and not isinstance(actor, str) and not permissions.has_school_wide(actor, "roles.edit"):
        own = set(permissions.grants(actor))
        beyond = [key for key in added
                  if (set(_role_permissions(tenant.id, roles[key].id)) & catalogue.GRANT_GUARDED) - own]
        if beyond:
            raise ValidationFailed({"roles": str(_l(
                "You may not give roles with more rights than your own: %(roles)s. Ask the school's administrator.",
                roles=", ".join(beyond)))})
    if "student" in role_keys and set(role_keys) - {"student"}:
        raise ValidationFailed({"roles": str(_l("A student account holds only the student role."))})
    if "student" in added:
        from lp_saas.platform.services import check_student_quota

        check_student_quota(tenant)
    for role_id in held - wanted:
        db.session.delete(db.session.get(UserRole, (tenant.id, user.id, role_id)))
    for role_id in wanted - held:
        db.session.add(UserRole(tenant_id=tenant.id, user_id=user.id, role_id=role_id))
    if held != wanted:
        audit.record(tenant.id, actor, "user.roles", target_type="user", target_id=user.id,
                     details={"roles": sorted(role_keys)})
    db.session.flush()
    permissions.invalidate()
    return sorted(role_keys)
