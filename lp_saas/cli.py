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
users_cli = AppGroup("users", help="Accounts of a school.")


@tenants_cli.command("create")
@click.option("--slug", required=True, help="Subdomain, e.g. ylsh")
@click.option("--name", required=True, help="School name, e.g. 國立員林高級中學")
@click.option("--code", "school_code", default=None, help="MOE school code (6 digits)")
@click.option("--template", default="moe", show_default=True, help="moe | yuanlin")
@click.option("--school-type", default="general", show_default=True)
def tenants_create(slug, name, school_code, template, school_type):
    """Provision a school and return when it is ready (idempotent)."""
    from lp_saas.errors import ValidationFailed
    from lp_saas.tenants import services

    existing = services.find_by_slug(slug)
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


@users_cli.command("create")
@click.option("--tenant", "slug", required=True)
@click.option("--username", required=True)
@click.option("--password", required=True)
@click.option("--role", "roles", multiple=True, required=True, help="role key; repeat for more")
@click.option("--name", "display_name", default=None)
@click.option("--student-no", default=None)
def users_create(slug, username, password, roles, display_name, student_no):
    """Create an account at a school."""
    from lp_saas.accounts import services as accounts
    from lp_saas.errors import ValidationFailed
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
    app.cli.add_command(worker)
    app.cli.add_command(demo)
