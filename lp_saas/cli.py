"""Operators' commands: ``flask --app wsgi tenants|users|demo|worker …`` (API.md)."""
from __future__ import annotations

import json
import sys

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from lp_saas.database import db


def _fail(message: str, code: int = 2):
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


tenants_cli = AppGroup("tenants", help="Schools: create, list, approve, suspend.")
users_cli = AppGroup("users", help="Accounts of a school, of a regional office, or of the platform.")
offices_cli = AppGroup("offices", help="Regional education offices and the schools they oversee.")


@tenants_cli.command("create")
@click.option("--slug", required=True, help="Subdomain, e.g. ylsh")
@click.option("--name", required=True, help="School name, e.g. 國立員林高級中學")
@click.option("--code", "school_code", default=None, help="MOE school code (6 digits)")
@click.option("--template", default="moe", show_default=True, help="moe | yuanlin")
@click.option("--school-type", default="general", show_default=True)
def tenants_create(slug, name, school_code, template, school_type):
    """Provision a school and return when it is ready (idempotent)."""
    from lp_saas.errors import ValidationFailed
    from lp_saas.platform.services import slug_status
    from lp_saas.tenants import services

    # bad input is refused whether or not the school exists (a typo must not read as "nothing changed")
    errors = services.validate_new_school(slug=slug, name=name, school_code=school_code or "000000",
                                          template=template, school_type=school_type)
    if errors:
        _fail("; ".join(f"{k}: {v}" for k, v in errors.items()))
    existing = services.find_by_slug(slug)
    if existing is None and slug_status(slug)["code"] == "requested":
        _fail(f"slug: {slug} is held by an open signup; approve or reject it in the console "
              f"(flask --app wsgi tenants approve {slug})")
    if existing is not None and existing.status in ("active", "suspended"):
        click.echo(f"School {slug} already exists ({existing.status}); nothing changed.")
        return
    try:
        tenant, created = services.create_tenant(slug=slug, name=name, school_code=school_code or "000000",
                                                 template=template, school_type=school_type)
    except ValidationFailed as failed:
        db.session.rollback()
        _fail("; ".join(f"{k}: {v}" for k, v in failed.details.items()))
    if not created and tenant.status == "pending":
        tenant.status = "provisioning"
    db.session.commit()
    outcome = services.provision_now(tenant)
    if outcome["status"] != "succeeded":
        _fail(f"provisioning of {slug} failed: {outcome['error']}", 1)
    base = current_app.config["LP_BASE_DOMAIN"]
    verb = "Created" if created else "Finished provisioning"
    click.echo(f"{verb} school {slug}: http://{slug}.{base}/ ({json.dumps(outcome['result'], ensure_ascii=False)})")


@tenants_cli.command("list")
def tenants_list():
    """List schools with their status."""
    import sqlalchemy as sa

    from lp_saas.tenants.models import Tenant

    for tenant in db.session.scalars(sa.select(Tenant).order_by(Tenant.slug)):
        click.echo(f"{tenant.slug}\t{tenant.status}\t{tenant.school_code}\t{tenant.name}")


def _platform_refusal(exc) -> str:
    from lp_saas.errors import ValidationFailed

    if isinstance(exc, ValidationFailed) and exc.details:
        return "; ".join(f"{k}: {v}" for k, v in exc.details.items())
    return str(exc.message)


@tenants_cli.command("approve")
@click.argument("slug")
def tenants_approve(slug):
    """Approve the signup for SLUG (or finish a pending school): provision it and return when it is
    ready; the signup's contact gets the first school-admin account by e-mail."""
    from lp_saas.errors import AppError
    from lp_saas.platform import services as platform
    from lp_saas.tenants import services

    signup = platform.find_open_signup(slug)
    if signup is not None:
        try:
            tenant, job = platform.approve_signup(signup, "operator:cli", dispatch=False)
        except AppError as refused:
            db.session.rollback()
            _fail(_platform_refusal(refused))
        outcome = platform.run_job_now(tenant, job.id)
        if outcome["status"] != "succeeded":
            _fail(f"provisioning of {slug} failed: {outcome['error']}", 1)
        click.echo(f"Approved {slug}: {platform.school_url(slug, signup.origin)}/ is ready; the administrator "
                   f"account {platform.FIRST_ADMIN_USERNAME} was mailed to {signup.contact_email}.")
        return
    tenant = services.find_by_slug(slug)
    if tenant is None:
        _fail(f"no signup and no school {slug}")
    if tenant.status in ("active", "suspended"):
        click.echo(f"School {slug} is already approved ({tenant.status}); nothing changed.")
        return
    job = platform.resume_activation(tenant, dispatch=False)  # an approved signup whose setting-up failed
    if job is not None:
        outcome = platform.run_job_now(tenant, job.id)
        if outcome["status"] != "succeeded":
            _fail(f"provisioning of {slug} failed: {outcome['error']}", 1)
        click.echo(f"Finished setting up {slug} ({json.dumps(outcome['result'], ensure_ascii=False)}).")
        return
    tenant.status = "provisioning"
    db.session.commit()
    outcome = services.provision_now(tenant)
    if outcome["status"] != "succeeded":
        _fail(f"provisioning of {slug} failed: {outcome['error']}", 1)
    click.echo(f"Approved {slug}: provisioned ({json.dumps(outcome['result'], ensure_ascii=False)}).")


def _set_school_status(slug, change, done_message):
    from lp_saas.errors import AppError
    from lp_saas.tenants import services

    tenant = services.find_by_slug(slug)
    if tenant is None:
        _fail(f"no school {slug}")
    try:
        changed = change(tenant)
    except AppError as refused:
        db.session.rollback()
        _fail(_platform_refusal(refused))
    db.session.commit()
    click.echo(done_message if changed else f"School {slug} is already {tenant.status}; nothing changed.")


@tenants_cli.command("suspend")
@click.argument("slug")
@click.option("--reason", default="", help="shown to operators, kept in the school's audit log")
def tenants_suspend(slug, reason):
    """Suspend a school: its site shows a suspension notice; its data stays untouched."""
    from lp_saas.platform import services as platform

    _set_school_status(slug, lambda t: platform.suspend_tenant(t, "operator:cli", reason),
                       f"Suspended {slug}; its site shows the suspension notice.")


@tenants_cli.command("resume")
@click.argument("slug")
def tenants_resume(slug):
    """Resume a suspended school."""
    from lp_saas.platform import services as platform

    _set_school_status(slug, lambda t: platform.resume_tenant(t, "operator:cli"), f"Resumed {slug}.")


@offices_cli.command("create")
@click.option("--code", required=True, help="office code, e.g. TPE-EDU (letters, digits, hyphens)")
@click.option("--name", required=True, help="e.g. 臺北市政府教育局")
@click.option("--school", "schools", multiple=True, help="subdomain of a school it oversees; repeat for more")
def offices_create(code, name, schools):
    """Create a regional education office, or add schools to it (idempotent)."""
    from lp_saas.errors import ValidationFailed
    from lp_saas.platform import services as platform

    try:
        office, changes = platform.save_office("operator:cli", code=code, name=name, slugs=schools)
    except ValidationFailed as failed:
        db.session.rollback()
        _fail("; ".join(f"{k}: {v}" for k, v in failed.details.items()))
    db.session.commit()
    overseen = ", ".join(t.slug for t in platform.office_schools(office)) or "none"
    if changes:
        click.echo(f"Saved office {office.code} ({', '.join(changes)}); schools: {overseen}")
    else:
        click.echo(f"Office {office.code} already exists with these schools ({overseen}); nothing changed.")


@users_cli.command("create")
@click.option("--tenant", "slug", default=None, help="the school's subdomain (school accounts)")
@click.option("--office", "office_code", default=None, help="the office's code (regional office officers)")
@click.option("--username", required=True)
@click.option("--password", required=True)
@click.option("--role", "roles", multiple=True, required=True,
              help="role key; repeat for more. Platform accounts: office_officer (with --office) or operator")
@click.option("--name", "display_name", default=None)
@click.option("--student-no", default=None)
def users_create(slug, office_code, username, password, roles, display_name, student_no):
    """Create an account at a school (--tenant), an office officer (--office), or a platform operator."""
    from lp_saas.errors import ValidationFailed

    if slug is None and (office_code is not None or set(roles) & {"office_officer", "operator"}):
        _create_platform_user(office_code, username, password, roles, display_name)
        return
    if slug is None:
        _fail("give --tenant SLUG for a school account, --office CODE for an office officer, "
              "or --role operator for a platform operator")
    if office_code is not None:
        _fail("--tenant and --office exclude each other: an office officer has no account at a school")
    from lp_saas.accounts import services as accounts
    from lp_saas.tenants.context import tenant_scope
    from lp_saas.tenants.services import find_by_slug

    tenant = find_by_slug(slug)
    if tenant is None or tenant.status not in ("active", "suspended"):
        _fail(f"no active school {slug}")
    with tenant_scope(tenant):
        try:
            user = accounts.create_user(tenant, "operator:cli", username=username,
                                        display_name=display_name or username, password=password,
                                        roles=list(roles), student_no=student_no)
        except ValidationFailed as failed:
            db.session.rollback()
            _fail("; ".join(f"{k}: {v}" for k, v in failed.details.items()))
        db.session.commit()
        click.echo(f"Created {user.username} at {slug} with roles {', '.join(roles)}")


def _create_platform_user(office_code, username, password, roles, display_name):
    from lp_saas.errors import ValidationFailed
    from lp_saas.platform import services as platform

    if len(roles) != 1 or roles[0] not in ("office_officer", "operator"):
        _fail("a platform account has exactly one role: office_officer (with --office CODE) or operator")
    kind = roles[0]
    if kind == "office_officer" and not office_code:
        _fail("an office officer needs --office CODE")
    try:
        user = platform.create_platform_user("operator:cli", username=username, password=password, kind=kind,
                                             office_code=office_code, display_name=display_name)
    except ValidationFailed as failed:
        db.session.rollback()
        _fail("; ".join(f"{k}: {v}" for k, v in failed.details.items()))
    db.session.commit()
    where = f"office {platform.normalise_office_code(office_code)}" if office_code else "the platform"
    base = current_app.config["LP_BASE_DOMAIN"]
    click.echo(f"Created {kind} {user.username} of {where}; sign in at http://{base}/platform/login")


@click.command("worker")
@with_appcontext
@click.option("--burst", is_flag=True, help="Work until the queues are empty, then exit.")
@click.option("--queue", "queues", multiple=True, help="Queue names (default: all)")
def worker(burst, queues):
    """An RQ worker (with its scheduler) inside the app context."""
    from lp_saas.jobs.worker import run_worker

    if not current_app.config.get("REDIS_URL"):
        _fail("REDIS_URL is not set: on the embedded defaults jobs run in-process and no worker is needed.")
    run_worker(burst=burst, queues=queues or None)


@click.command("demo")
@with_appcontext
def demo():
    """Seed a demo platform and print its URLs and logins."""
    from lp_saas.demo import seed_demo

    seed_demo(echo=click.echo)


def register(app) -> None:
    app.cli.add_command(tenants_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(offices_cli)
    app.cli.add_command(worker)
    app.cli.add_command(demo)
