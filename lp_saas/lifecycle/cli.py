"""``flask --app wsgi lifecycle run|jobs``: the sweeps on demand, and stuck or failed work."""
from __future__ import annotations

import json
import sys
from contextlib import nullcontext

import click
from flask.cli import AppGroup

from lp_saas import clock
from lp_saas.academics.calendar import start_of_day
from lp_saas.database import db

lifecycle_cli = AppGroup("lifecycle", help="Sweeps: staff expiry, sealing, deletion after retention, "
                                           "reconciliation, reminders; stuck and failed jobs.")


def _fail(message: str, code: int = 2):
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _echo(obj: dict) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, sort_keys=False))


def _tenants(slug):
    from lp_saas.lifecycle.sweeps import RUNNABLE_STATUSES, runnable_tenants

    tenants = runnable_tenants(slug)
    if slug is not None and not tenants:
        _fail(f"no school {slug!r} (or it is not {' or '.join(RUNNABLE_STATUSES)})")
    return tenants


@lifecycle_cli.command("run")
@click.option("--as-of", "as_of", default=None, metavar="YYYY-MM-DD",
              help="Run as the nightly run at the start of this Taiwan day (default: now).")
@click.option("--tenant", "slug", default=None, help="Only this school (slug).")
@click.option("--dry-run", is_flag=True, help="Print what would happen; change nothing.")
def run(as_of, slug, dry_run):
    """Run every sweep and print one JSON object per action. Exit 1 if any action failed."""
    from lp_saas.lifecycle.sweeps import run_sweeps
    from lp_saas.tenants.context import tenant_scope
    from lp_saas.tenants.rulesets import parse_day

    day = None
    if as_of is not None:
        day = parse_day(as_of)
        if day is None:
            _fail(f"--as-of must be a date as YYYY-MM-DD, got {as_of!r}")
        if day > clock.today() and not dry_run:
            # API.md's contract: the run acts as of that date, deletions included. Said loudly, so that an
            # operator who meant --dry-run sees it; rehearse with --dry-run first.
            click.echo(f"warning: --as-of {day.isoformat()} is in the future: sweeps act as of that day "
                       "(accounts expire, graduates are sealed and deleted as then due)", err=True)
    tenants = _tenants(slug)
    errors = 0
    with clock.frozen(start_of_day(day)) if day else nullcontext():
        for tenant in tenants:
            with tenant_scope(tenant):
                for action in run_sweeps(tenant, day or clock.today(), dry_run=dry_run):
                    errors += action["action"] == "error"
                    _echo(action)
    db.session.remove()
    if errors:
        sys.exit(1)


@lifecycle_cli.command("jobs")
@click.option("--stuck", is_flag=True, help="Queued or running jobs that need sending again, and uploads "
                                            "or e-mails left waiting with no job.")
@click.option("--failed", is_flag=True, help="Jobs that gave up after their last retry.")
@click.option("--tenant", "slug", default=None, help="Only this school (slug).")
def jobs(stuck, failed, slug):
    """List stuck and failed background work, one JSON object per line (both without a flag)."""
    from lp_saas.lifecycle import reconcile
    from lp_saas.tenants.context import tenant_scope

    if not stuck and not failed:
        stuck = failed = True
    for tenant in _tenants(slug):
        with tenant_scope(tenant):
            if stuck:
                for job, reason in reconcile.stuck_jobs(tenant.id):
                    _echo({"tenant": tenant.slug, **reconcile.job_json(job, reason)})
                for stored in reconcile.unverified_files(tenant.id):
                    _echo({"tenant": tenant.slug, "file_id": str(stored.id), "status": stored.status,
                           "stuck": "verifying_without_job",
                           "uploaded_at": stored.uploaded_at.isoformat() if stored.uploaded_at else None})
                for notice in reconcile.unsent_emails(tenant.id):
                    _echo({"tenant": tenant.slug, "notification_id": str(notice.id), "stuck": "email_without_job",
                           "created_at": notice.created_at.isoformat()})
            if failed:
                for job in reconcile.failed_jobs(tenant.id):
                    _echo({"tenant": tenant.slug, **reconcile.job_json(job)})
            db.session.rollback()
