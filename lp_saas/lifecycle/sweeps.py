"""The lifecycle sweeps, how they run, and when.

One school at a time, in this order, each in its own transaction: ``reconcile`` (lost jobs,
orphaned and unconfirmed uploads), ``staff_expiry``, ``sealing``, ``deletion`` (after retention),
``deletion_records`` (purged after 5 years), ``reminders``. Every sweep is idempotent (it acts on
what the database says is due and records what it did) and resumable (a deletion half done is
finished first). Each returns one dict per action; ``flask lifecycle run`` prints them as JSON lines.

**As of a day.** A sweep judges by a Taiwan calendar day (``as_of``) and by ``clock.now()``.
The scheduled runs use today and the real clock. ``lifecycle run --as-of D`` freezes the clock at
the *start* of D (00:00 Asia/Taipei): the run is the one the nightly schedule makes when D begins,
so "due on or before D" is handled (an expiry during D is planned for, a deletion due on D happens)
and nothing is judged later than a real run on D could be: a job is not taken for stale, nor a
session ended, before its time.

**Dry run.** Every sweep can only report (``dry_run=True``): storage is not touched, no job is
submitted, and each sweep's transaction is rolled back whatever it flushed.

**Schedule** (``jobs/scheduler.py``; one leader among the workers fires each slot once):

- ``lifecycle.daily`` at 00:30 Asia/Taipei: one ``lifecycle_sweep`` job per school (all sweeps),
  recorded once per slot in the outbox, so it is retried and reconciled like any job;
- ``lifecycle.reconcile`` every 5 minutes: reconciliation and staff expiry for every school, run
  directly by the slot's job (it is cheap, and the next slot replaces a lost one).
"""
from __future__ import annotations

import logging
import uuid
from datetime import date, datetime

import sqlalchemy as sa

from lp_saas import clock
from lp_saas.database import db
from lp_saas.i18n import TAIPEI
from lp_saas.jobs.models import Job
from lp_saas.jobs.queue import job_kind, submit
from lp_saas.jobs.scheduler import periodic, slot_stamp
from lp_saas.lifecycle import expiry, reconcile, reminders
from lp_saas.lifecycle import services as graduates

log = logging.getLogger(__name__)

SWEEPS = ("reconcile", "staff_expiry", "sealing", "deletion", "deletion_records", "reminders")
RUNNABLE_STATUSES = ("active", "suspended")  # a suspended school's retention rules still apply


def _error(step: str, exc: Exception, **ids) -> dict:
    return {"action": "error", "step": step, **ids, "error": f"{type(exc).__name__}: {exc}"[:500]}


def _sealing(tenant, as_of: date, dry_run: bool) -> list[dict]:
    actions = []
    for grad in graduates.due_for_sealing(tenant.id, as_of):
        action = {"action": "seal_student", "student_id": str(grad.student_id),
                  "graduated_on": grad.graduated_on.isoformat()}
        if not dry_run:
            action["sessions_ended"] = graduates.seal(tenant, grad)
        actions.append(action)
    return actions


def _deletion(tenant, as_of: date, dry_run: bool) -> list[dict]:
    plans, rule = graduates.deletion_plan(tenant.id, as_of)
    actions = []
    for plan in plans:
        ids = {"student_id": str(plan.student_id), "due_on": plan.due_on.isoformat()}
        if plan.held:
            actions.append({"action": "deletion_held", **ids})
            continue
        if dry_run:
            if plan.record is not None:
                objects, rows = plan.record.objects, plan.record.rows
            else:
                found = graduates.student_data(tenant.id, plan.student_id)
                objects, rows = len(found.keys), found.rows
            actions.append({"action": "delete_student_data", **ids, "objects": objects, "rows": rows,
                            "resume": plan.record is not None})
            continue
        try:
            record = graduates.delete_student_data(tenant, plan.student_id, due_on=plan.due_on,
                                                   rule=plan.record.rule if plan.record else rule)
        except Exception as exc:  # noqa: BLE001 - recorded; the state machine resumes next run
            db.session.rollback()
            log.exception("deletion of a graduate's data failed; it resumes at the next run")
            actions.append(_error("delete_student_data", exc, **ids))
            continue
        actions.append({"action": "delete_student_data", **ids, "objects": record.objects, "rows": record.rows,
                        "versions": record.object_versions, "deletion_id": str(record.id)})
    return actions


def _deletion_records(tenant, as_of: date, dry_run: bool) -> list[dict]:
    actions = []
    for record in graduates.expired_deletion_records(tenant.id, as_of):
        actions.append({"action": "purge_deletion_record", "deletion_id": str(record.id),
                        "keep_until": record.keep_until.isoformat()})
        if not dry_run:
            db.session.delete(record)
    return actions


_RUNNERS = {
    "reconcile": lambda tenant, as_of, dry_run: reconcile.sweep(tenant, dry_run=dry_run),
    "staff_expiry": lambda tenant, as_of, dry_run: expiry.sweep(tenant, as_of, dry_run=dry_run),
    "sealing": _sealing,
    "deletion": _deletion,
    "deletion_records": _deletion_records,
    "reminders": lambda tenant, as_of, dry_run: reminders.sweep(tenant, as_of, clock.now(), dry_run=dry_run),
}


def run_sweeps(tenant, as_of: date | None = None, *, dry_run: bool = False, only=None) -> list[dict]:
    """Run the sweeps (all, or ``only``) for one school, inside its tenant scope. Commits each sweep
    (rolls back in a dry run). Never raises for a sweep's failure: it becomes an ``error`` action."""
    as_of = as_of or clock.today()
    actions: list[dict] = []
    for name in SWEEPS:
        if only is not None and name not in only:
            continue
        try:
            found = _RUNNERS[name](tenant, as_of, dry_run)
            if dry_run:
                db.session.rollback()
            else:
                db.session.commit()
        except Exception as exc:  # noqa: BLE001 - one sweep's failure must not stop the others
            db.session.rollback()
            log.exception("lifecycle sweep %s failed for %s", name, tenant.slug)
            found = [_error(name, exc)]
        for action in found:
            actions.append({"action": action.pop("action"), "tenant": tenant.slug, **action,
                            **({"dry_run": True} if dry_run else {})})
    return actions


def runnable_tenants(slug: str | None = None):
    from lp_saas.tenants.models import Tenant

    query = sa.select(Tenant).where(Tenant.status.in_(RUNNABLE_STATUSES)).order_by(Tenant.slug)
    if slug is not None:
        query = query.where(Tenant.slug == slug)
    return list(db.session.scalars(query))


# --- jobs ------------------------------------------------------------------------------------------

@job_kind("lifecycle_sweep", queue="low", timeout=3600, max_attempts=3, backoff=(300, 1800))
def lifecycle_sweep_job(job, progress):
    """All sweeps for the job's school as of ``args.as_of``. Raises when a sweep reported an error,
    so the job is retried (the sweeps are idempotent); the result counts actions by kind."""
    from lp_saas.tenants.context import current_tenant

    as_of = date.fromisoformat(job.args["as_of"]) if job.args.get("as_of") else clock.today()
    actions = run_sweeps(current_tenant(), as_of, only=job.args.get("sweeps"))
    counts: dict[str, int] = {}
    for action in actions:
        counts[action["action"]] = counts.get(action["action"], 0) + 1
    if counts.get("error"):
        errors = [a for a in actions if a["action"] == "error"]
        raise RuntimeError(f"{len(errors)} sweep errors, first: {errors[0]['error']}")
    return {"as_of": as_of.isoformat(), "actions": counts}


@job_kind("seal_graduates", queue="default", timeout=600, max_attempts=4)
def seal_graduates_job(job, progress):
    """Seal the listed graduates whose graduation day has come (the rest: the daily sweep, on their day)."""
    from lp_saas.tenants.context import current_tenant

    tenant = current_tenant()
    ids = [uuid.UUID(str(value)) for value in job.args.get("student_ids", [])]
    due = graduates.due_for_sealing(tenant.id, clock.today(), student_ids=ids)
    for grad in due:
        graduates.seal(tenant, grad)
    return {"sealed": len(due)}


# --- periodic work ---------------------------------------------------------------------------------

@periodic("lifecycle.daily", cron="30 0 * * *")
def schedule_daily_sweeps(slot: datetime) -> dict:
    """One ``lifecycle_sweep`` job per school for this slot, recorded once however often it fires."""
    from lp_saas.tenants.context import tenant_scope

    as_of = slot.astimezone(TAIPEI).date()
    stamp = slot_stamp(slot)
    submitted = 0
    for tenant in runnable_tenants():
        with tenant_scope(tenant):
            exists = db.session.scalar(sa.select(Job.id).where(
                Job.tenant_id == tenant.id, Job.kind == "lifecycle_sweep",
                sa.cast(Job.args["slot"].as_string(), sa.String) == stamp).limit(1))
            if exists is None:
                submit(tenant.id, "lifecycle_sweep", {"as_of": as_of.isoformat(), "slot": stamp})
                submitted += 1
            db.session.commit()
    return {"slot": stamp, "submitted": submitted}


@periodic("lifecycle.reconcile", every=300)
def reconcile_all(slot: datetime) -> dict:
    """Reconciliation and staff expiry for every school (cheap; a lost slot is replaced by the next)."""
    from lp_saas.tenants.context import tenant_scope

    counts: dict[str, int] = {}
    for tenant in runnable_tenants():
        with tenant_scope(tenant):
            for action in run_sweeps(tenant, clock.today(), only=("reconcile", "staff_expiry")):
                counts[action["action"]] = counts.get(action["action"], 0) + 1
    return counts
