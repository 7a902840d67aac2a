"""Creating jobs and dispatching them after the commit that makes them visible.

``submit()`` adds a :class:`Job` row and remembers it on the session; when that session commits,
the job id goes to RQ (``REDIS_URL`` set) or runs in-process (the embedded default). A rollback
forgets it. So a job is never sent before its input exists, and a job lost with Redis is still a
``queued`` row that the reconciling sweep finds again.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from lp_saas.database import db, utcnow
from lp_saas.jobs.models import Job

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobKind:
    name: str
    handler: object  # callable(job, progress) -> dict | None
    queue: str = "default"
    timeout: int = 600  # seconds
    max_attempts: int = 4
    backoff: tuple[int, ...] = (10, 60, 300)


KINDS: dict[str, JobKind] = {}


def job_kind(name: str, *, queue: str = "default", timeout: int = 600, max_attempts: int = 4,
             backoff: tuple[int, ...] = (10, 60, 300)):
    """Register a handler for a kind of job. The handler must be idempotent."""
    def decorator(fn):
        KINDS[name] = JobKind(name, fn, queue, timeout, max_attempts, backoff)
        return fn

    return decorator


def submit(tenant_id: uuid.UUID, kind: str, args: dict | None = None, *, created_by=None,
           dispatch: bool = True) -> Job:
    """Record a job (flush only) and dispatch it once the surrounding transaction commits.

    ``dispatch=False`` only records it: the caller runs it itself (a CLI that waits for the result).
    """
    if kind not in KINDS:
        raise KeyError(f"unknown job kind {kind}")
    job = Job(tenant_id=tenant_id, kind=kind, args=args or {},
              created_by_id=getattr(created_by, "id", created_by), status="queued")
    db.session.add(job)
    db.session.flush()
    if not dispatch:
        return job
    db.session.info.setdefault("lp_pending_jobs", []).append((job.tenant_id, job.id, kind))
    return job


@event.listens_for(Session, "after_commit")
def _dispatch_after_commit(session):
    # SQLAlchemy fires after_commit/after_rollback for a SAVEPOINT (begin_nested) too: only the
    # outermost transaction decides, or a job would run before its row is visible (or be forgotten).
    if session.in_nested_transaction():
        return
    pending = session.info.pop("lp_pending_jobs", None)
    if pending:
        for tenant_id, job_id, kind in pending:
            dispatch_job(tenant_id, job_id, kind)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session):
    if session.in_nested_transaction():
        return
    session.info.pop("lp_pending_jobs", None)


def redis_connection():
    from redis import Redis

    ext = current_app.extensions
    if "lp_redis" not in ext:
        ext["lp_redis"] = Redis.from_url(current_app.config["REDIS_URL"])
    return ext["lp_redis"]


def queue_name(name: str) -> str:
    return f"{current_app.config['RQ_QUEUE_PREFIX']}-{name}"


def rq_queue(name: str = "default"):
    from rq import Queue

    return Queue(queue_name(name), connection=redis_connection())


def dispatch_job(tenant_id: uuid.UUID, job_id: uuid.UUID, kind: str) -> None:
    """Send one committed job to its runner. Failure to reach Redis is logged, never raised:
    the row stays ``queued`` and the reconciling sweep sends it again."""
    spec = KINDS[kind]
    if not current_app.config.get("REDIS_URL"):
        from lp_saas.jobs.runner import run_in_process

        run_in_process(tenant_id, job_id)
        return
    from rq import Retry

    try:
        rq_queue(spec.queue).enqueue(
            "lp_saas.jobs.runner.run_job", str(tenant_id), str(job_id),
            job_id=f"{job_id}", job_timeout=spec.timeout,
            retry=Retry(max=spec.max_attempts - 1, interval=list(spec.backoff)),
            result_ttl=86400, failure_ttl=7 * 86400,
        )
    except Exception:  # noqa: BLE001 - Redis down: the outbox row is the source of truth
        log.exception("could not enqueue job %s; the reconciling sweep will resend it", job_id)
        return
    _mark_enqueued(tenant_id, job_id)


def _mark_enqueued(tenant_id, job_id) -> None:
    from lp_saas.jobs.runner import job_session

    with job_session(tenant_id) as session:
        job = session.get(Job, (tenant_id, job_id))
        if job is not None and job.enqueued_at is None:
            job.enqueued_at = utcnow()


def stale_after(kind: str) -> timedelta:
    """How long a queued or running job may sit before the sweep resends it."""
    return timedelta(seconds=KINDS[kind].timeout * 2 + 60)


#: a queued row younger than this may still be on its way to Redis (committed, not yet enqueued)
DISPATCH_GRACE = timedelta(seconds=60)
#: RQ statuses after which RQ will not run the job again by itself
_RQ_DONE = ("finished", "failed", "stopped", "canceled")


def rq_state(job_id) -> str | None:
    """RQ's status of a job's message: ``queued``, ``scheduled``, ``started``, ``failed`` …; None when
    Redis holds no such job (lost with an emptied Redis); ``unknown`` when Redis cannot be asked."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job as RQJob

    try:
        return RQJob.fetch(str(job_id), connection=redis_connection()).get_status(refresh=False)
    except NoSuchJobError:
        return None
    except Exception:  # noqa: BLE001 - Redis down: nothing can be said about the message
        return "unknown"


def resend_reason(job: Job, now) -> str | None:
    """Why a queued or running job needs sending again, or None while it is alive or finished.

    - ``stale``: queued or running for longer than :func:`stale_after` (a running one has outlived
      its timeout twice: its worker is gone, SIGKILLed or its machine reset);
    - ``not_sent``: committed but never reached Redis (Redis was down at dispatch);
    - ``lost``: the message is gone from Redis (emptied) or RQ has given it up while the row still
      waits. A running row whose message is gone is left until it is stale: it may still be running.
    """
    if job.kind not in KINDS or job.status not in ("queued", "running"):
        return None
    since = job.started_at if job.status == "running" else (job.enqueued_at or job.created_at)
    if since is not None and now - since > stale_after(job.kind):
        return "stale"
    if not current_app.config.get("REDIS_URL"):
        return None
    if job.status == "queued" and job.enqueued_at is None:
        return "not_sent" if now - job.created_at > DISPATCH_GRACE else None
    state = rq_state(job.id)
    if state == "unknown":
        return None
    if job.status == "queued" and (state is None or state in _RQ_DONE):
        return "lost"
    if job.status == "running" and state in _RQ_DONE:
        return "lost"  # RQ saw the run end (a killed work-horse) and will not retry it
    return None


def resend(job: Job) -> None:
    """Send a job again once the surrounding transaction commits (the row is queued anew, flush only).

    Whatever RQ still holds of the old message is dropped first, so a dead worker's registry entry
    cannot run it a second time. The runner's idempotence covers a message that runs anyway.
    """
    if current_app.config.get("REDIS_URL"):
        from rq.exceptions import NoSuchJobError
        from rq.job import Job as RQJob

        try:
            RQJob.fetch(str(job.id), connection=redis_connection()).delete()
        except NoSuchJobError:
            pass
        except Exception:  # noqa: BLE001 - Redis down: dispatch will log it and the sweep retries
            log.warning("could not drop the old message of job %s", job.id)
    job.status = "queued"
    job.enqueued_at = None
    db.session.flush()
    db.session.info.setdefault("lp_pending_jobs", []).append((job.tenant_id, job.id, job.kind))
