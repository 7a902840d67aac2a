"""Creating and provisioning schools.

Provisioning is a job (``provision_tenant``): the school's bucket, its role matrix and its rule
set from a template, then ``active``. Every step is idempotent, so a second run, or a run after a
crash halfway, finishes the work and changes nothing that is already there.
"""
from __future__ import annotations

import re

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from lp_saas.audit import services as audit
from lp_saas.database import db, utcnow
from lp_saas.errors import ValidationFailed
from lp_saas.jobs.queue import job_kind
from lp_saas.roles.templates import TEMPLATES
from lp_saas.tenants.models import SCHOOL_TYPES, Tenant

SLUG_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
RESERVED_SLUGS = frozenset("""
www api admin administrator static assets cdn media mail email smtp imap pop ftp ssh app apps lp
platform operator operators console support help status docs doc blog dev test testing staging demo-admin
s3 minio storage files upload uploads download auth login logout signup register account accounts
dashboard office offices root system null none localhost moe k12ea edu gov school schools tenant tenants
""".split())
SCHOOL_CODE_RE = re.compile(r"^[0-9]{6}$")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def slug_problem(slug) -> str | None:
    """Why ``slug`` cannot be a school's subdomain (a translated message), or None if it can."""
    if not isinstance(slug, str) or not slug:
        return str(_l("Enter a subdomain."))
    if len(slug) < 3 or len(slug) > 30:
        return str(_l("A subdomain has 3 to 30 characters."))
    if not SLUG_RE.match(slug):
        return str(_l("Use lowercase letters, digits and single hyphens, starting with a letter."))
    if slug in RESERVED_SLUGS:
        return str(_l("This subdomain is reserved."))
    return None


def validate_new_school(*, slug, name, school_code, template="moe", school_type="general") -> dict:
    """Field → message for everything wrong with a new school's data (empty dict when all is fine)."""
    errors = {}
    problem = slug_problem(slug)
    if problem:
        errors["slug"] = problem
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 120:
        errors["name"] = str(_l("Enter the school's name (at most 120 characters)."))
    if not isinstance(school_code, str) or not SCHOOL_CODE_RE.match(school_code):
        errors["school_code"] = str(_l("The MOE school code has exactly 6 digits."))
    if template not in TEMPLATES:
        errors["template"] = str(_l("Unknown template; choose one of: %(choices)s.",
                                    choices=", ".join(sorted(TEMPLATES))))
    if school_type not in SCHOOL_TYPES:
        errors["school_type"] = str(_l("Unknown school type; choose one of: %(choices)s.",
                                       choices=", ".join(SCHOOL_TYPES)))
    return errors


def bucket_for(slug: str) -> str:
    return f"{current_app.config['S3_BUCKET_PREFIX']}{slug}"


def find_by_slug(slug: str) -> Tenant | None:
    return db.session.scalar(sa.select(Tenant).where(Tenant.slug == slug))


def create_tenant(*, slug, name, school_code, template="moe", school_type="general",
                  status="provisioning", name_en=None) -> tuple[Tenant, bool]:
    """The school with this slug, created if new (flush only). Returns (tenant, created).

    Raises ValidationFailed for bad data. An existing slug is returned untouched.
    """
    errors = validate_new_school(slug=slug, name=name, school_code=school_code,
                                 template=template, school_type=school_type)
    if errors:
        raise ValidationFailed(errors)
    existing = find_by_slug(slug)
    if existing is not None:
        return existing, False
    tenant = Tenant(slug=slug, name=name.strip(), name_en=name_en, school_code=school_code,
                    template=template, school_type=school_type, status=status, bucket=bucket_for(slug))
    db.session.add(tenant)
    db.session.flush()
    from lp_saas.tenants.context import tenant_scope

    with tenant_scope(tenant):  # the audit row is the school's own: insert it under its tenant
        audit.record(tenant.id, "system:platform", "tenant.created", target_type="tenant",
                     target_id=tenant.id, details={"slug": slug, "template": template})
        db.session.flush()
    return tenant, True


@job_kind("provision_tenant", timeout=300)
def provision_job(job, progress):
    """Provision the job's school: bucket, roles, rules, active. Idempotent; returns what it did."""
    from lp_saas.roles.services import seed_roles_from_template
    from lp_saas.storage import get_storage
    from lp_saas.tenants.context import current_tenant
    from lp_saas.tenants.rulesets import seed_rule_sets_from_template

    tenant = current_tenant()
    done = {"bucket_created": get_storage().ensure_bucket(tenant.bucket)}
    progress(30)
    done["roles_created"] = seed_roles_from_template(tenant, tenant.template)
    progress(60)
    done["rule_sets_created"] = seed_rule_sets_from_template(tenant, tenant.template)
    if tenant.status == "provisioning":
        tenant.status = "active"
        tenant.provisioned_at = utcnow()
        audit.record(tenant.id, "system:provisioning", "tenant.provisioned", target_type="tenant",
                     target_id=tenant.id, details=done)
    db.session.flush()
    return done


def provision_now(tenant: Tenant, *, created_by=None) -> dict:
    """Provision synchronously (CLI): a recorded ``provision_tenant`` job run in this process."""
    from lp_saas.jobs.queue import submit
    from lp_saas.jobs.runner import run_in_process
    from lp_saas.jobs.models import Job
    from lp_saas.tenants.context import tenant_scope

    with tenant_scope(tenant):
        job = submit(tenant.id, "provision_tenant", {}, created_by=created_by, dispatch=False)
        db.session.commit()
        status = run_in_process(tenant.id, job.id)
        db.session.expire_all()
        job = db.session.get(Job, (tenant.id, job.id))
        return {"status": status, "result": job.result, "error": job.error}
