"""Running one job: the same code under an RQ worker and in-process (the embedded default).

Each run opens its own app context (its own database session and tenant), records the attempt,
calls the handler, and records the outcome. Handlers are idempotent, so a job that is re-sent
after a lost worker, or retried after an error, does its work exactly once in effect.
"""
from __future__ import annotations

import logging
import os
import uuid
from contextlib import contextmanager

from flask import current_app, has_app_context

from lp_saas.database import db, utcnow
from lp_saas.jobs.models import Job
from lp_saas.jobs.queue import KINDS

log = logging.getLogger(__name__)

_APP = None
_PID = os.getpid()


def _app():
    """The Flask app: the current one (worker CLI, in-process) or one made for this process."""
    global _APP
    if has_app_context():
        return current_app._get_current_object()
    if _APP is None:
        from lp_saas import create_app

        _APP = create_app()
    return _APP


def _after_fork_dispose(app) -> None:
    """A forked RQ work-horse must not reuse the parent's pooled database connections."""
    global _PID
    if os.getpid() != _PID:
        _PID = os.getpid()
        with app.app_context():
            db.engine.dispose(close=False)


@contextmanager
def job_session(tenant_id: uuid.UUID):
    """A fresh app context with ``tenant_id`` active; commits on success, rolls back on error."""
    from lp_saas.tenants.context import activate
    from lp_saas.tenants.models import Tenant

    app = _app()
    with app.app_context():
        tenant = db.session.get(Tenant, uuid.UUID(str(tenant_id)))
        if tenant is None:
            raise LookupError(f"no tenant {tenant_id}")
        activate(tenant)
        try:
            yield db.session
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        finally:
            db.session.remove()


def _progress_callback(job):
    """Progress is written on the handler's own session: it becomes visible when the handler
    commits (long handlers commit per batch), and never contends with the handler for a lock."""
    def progress(percent: int) -> None:
        job.progress = max(0, min(99, int(percent)))
        db.session.flush()

    return progress


def _start(tenant_id, job_id):
    """Mark the job running; None when there is nothing (left) to do."""
    with job_session(tenant_id) as session:
        job = session.get(Job, (tenant_id, job_id))
        if job is None or job.status in ("succeeded", "failed"):
            return None
        job.status = "running"
        job.attempts += 1
        job.started_at = utcnow()
        job.error = None
        return job.kind, job.attempts


def run_once(tenant_id: uuid.UUID, job_id: uuid.UUID) -> str:
    """One attempt. Returns the job's status after it: succeeded, failed, queued (retry) or skipped."""
    started = _start(tenant_id, job_id)
    if started is None:
        return "skipped"
    kind, attempts = started
    spec = KINDS[kind]
    try:
        with job_session(tenant_id) as session:
            job = session.get(Job, (tenant_id, job_id))
            result = spec.handler(job, _progress_callback(job))
            job = session.get(Job, (tenant_id, job_id))
            job.status = "succeeded"
            job.progress = 100
            job.result = result
            job.finished_at = utcnow()
        return "succeeded"
    except Exception as exc:  # noqa: BLE001 - recorded on the row, retried or failed
        log.exception("job %s (%s) attempt %s failed", job_id, kind, attempts)
        final = attempts >= spec.max_attempts
        with job_session(tenant_id) as session:
            job = session.get(Job, (tenant_id, job_id))
            job.status = "failed" if final else "queued"
            job.error = f"{type(exc).__name__}: {exc}"[:2000]
            if final:
                job.finished_at = utcnow()
        return "failed" if final else "queued"


def run_job(tenant_id: str, job_id: str) -> str:
    """The RQ entry point. Raises on a retryable failure so that RQ's Retry schedules the next try."""
    app = _app()
    _after_fork_dispose(app)
    status = run_once(uuid.UUID(tenant_id), uuid.UUID(job_id))
    if status == "queued":
        raise RuntimeError(f"job {job_id} failed; will be retried")
    return status


def run_in_process(tenant_id: uuid.UUID, job_id: uuid.UUID) -> str:
    """The embedded default: run now, retrying immediately up to the kind's attempt limit."""
    status = run_once(tenant_id, job_id)
    while status == "queued":
        status = run_once(tenant_id, job_id)
    return status
