"""Reconciliation: the database says what should be happening; find what a lost job left behind.

- **Jobs.** A job row still ``queued`` or ``running`` whose message is gone (Redis emptied, never
  sent while Redis was down) or which has outlived :func:`jobs.queue.stale_after` (its worker was
  SIGKILLed, its machine reset) is sent again (:func:`jobs.queue.resend`). Handlers are
  idempotent, so a message that was only slow does its work once in effect.
- **Uploads.** A file ``verifying`` with no live ``verify_file`` job (it failed after its last retry
  while storage was down, or its row was never written) gets a new job, at most once per
  ``stale_after("verify_file")``.
- **E-mails.** A notice whose e-mail is still ``queued`` with no live ``send_email`` job (it gave
  up while the mail server was down) gets a new job, at most once per ``stale_after("send_email")``.
- **Unconfirmed uploads.** A file still ``pending`` a day after its upload ticket expired was never
  confirmed by its client. If its bytes are in storage it is verified like any other upload (the
  student closed the tab too soon: their work is not thrown away); if not, the row is marked
  ``rejected`` (reason ``missing``), and the item's owner is told through the same callback the
  verification job uses, so the student sees that the upload must be made again.

- **Import files.** A roster file uploaded for import (names, national ID numbers) is kept only while
  its job may still need it: once the job has succeeded or failed for good, the sweep removes the
  file (every version) if the job did not, whatever path the job ended on.
- **Clean-ups that gave up.** A ``delete_stored_object`` job that failed after its last retry
  (storage down for hours) is sent again once per ``stale_after``: its row is already gone, so
  nothing else would ever find the object.

"Stuck" for the operators' page and CLI is the same test: what this sweep would resend.
"""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from lp_saas import clock
from lp_saas.audit import services as audit
from lp_saas.database import db
from lp_saas.jobs.models import Job
from lp_saas.jobs.queue import resend, resend_reason, stale_after, submit
from lp_saas.lifecycle.services import SYSTEM
from lp_saas.portfolio.models import StoredFile

UNCONFIRMED_AFTER = timedelta(days=1)
LIVE = ("queued", "running")


def stuck_jobs(tenant_id) -> list[tuple[Job, str]]:
    """Queued or running jobs of the school that need sending again, with the reason."""
    now = clock.now()
    jobs = db.session.scalars(sa.select(Job).where(Job.tenant_id == tenant_id, Job.status.in_(LIVE))
                              .order_by(Job.created_at))
    found = []
    for job in jobs:
        reason = resend_reason(job, now)
        if reason:
            found.append((job, reason))
    return found


def failed_jobs(tenant_id, limit: int = 200) -> list[Job]:
    return list(db.session.scalars(sa.select(Job).where(Job.tenant_id == tenant_id, Job.status == "failed")
                                   .order_by(Job.finished_at.desc().nulls_last()).limit(limit)))


def _watched(tenant_id, kind: str, arg: str) -> set[str]:
    """Ids (``args[arg]``) that a ``kind`` job is working on or worked on within its stale period."""
    cool_down = clock.now() - stale_after(kind)
    target = sa.cast(Job.args[arg].as_string(), sa.String)
    return set(db.session.scalars(sa.select(target).where(
        Job.tenant_id == tenant_id, Job.kind == kind,
        sa.or_(Job.status.in_(LIVE), Job.created_at > cool_down, Job.finished_at > cool_down))))


def unverified_files(tenant_id) -> list[StoredFile]:
    """Files ``verifying`` with no queued or running job, and none started within its stale period."""
    watched = _watched(tenant_id, "verify_file", "file_id")
    files = db.session.scalars(sa.select(StoredFile).where(StoredFile.tenant_id == tenant_id,
                                                           StoredFile.status == "verifying")
                               .order_by(StoredFile.uploaded_at))
    return [f for f in files if str(f.id) not in watched]


def unsent_emails(tenant_id) -> list:
    """Notices whose e-mail is still queued with no live or recent ``send_email`` job."""
    from lp_saas.notifications.models import Notification

    watched = _watched(tenant_id, "send_email", "notification_id")
    notices = db.session.scalars(sa.select(Notification).where(Notification.tenant_id == tenant_id,
                                                               Notification.email_status == "queued")
                                 .order_by(Notification.created_at))
    return [n for n in notices if str(n.id) not in watched]


def unconfirmed_files(tenant_id) -> list[StoredFile]:
    cutoff = clock.now() - UNCONFIRMED_AFTER
    return list(db.session.scalars(sa.select(StoredFile).where(
        StoredFile.tenant_id == tenant_id, StoredFile.status == "pending",
        StoredFile.upload_expires_at < cutoff).order_by(StoredFile.created_at)))


#: job kinds whose failure leaves something behind that only they know of: retried after giving up
RETRIED_AFTER_FAILING = ("delete_stored_object",)


def failed_cleanups(tenant_id) -> list[Job]:
    """Failed clean-up jobs whose last attempt is older than their stale period."""
    now = clock.now()
    return [job for job in db.session.scalars(sa.select(Job).where(
        Job.tenant_id == tenant_id, Job.kind.in_(RETRIED_AFTER_FAILING), Job.status == "failed")
        .order_by(Job.finished_at)) if job.finished_at is None or now - job.finished_at > stale_after(job.kind)]


def leftover_import_files(tenant_id) -> list[Job]:
    """Finished import jobs whose uploaded file is still in storage."""
    from lp_saas.academics.imports import JOB_KIND

    return [job for job in db.session.scalars(sa.select(Job).where(
        Job.tenant_id == tenant_id, Job.kind == JOB_KIND, Job.status.in_(("succeeded", "failed")))
        .order_by(Job.created_at)) if (job.args or {}).get("key") and not job.args.get("file_removed")]


def sweep(tenant, *, dry_run: bool = False) -> list[dict]:
    """Resend stuck jobs, re-verify orphaned uploads, remove unconfirmed ones. Flush only.

    Storage errors while removing an unconfirmed object leave that file for the next run.
    """
    from lp_saas.portfolio.files import _OWNER_CALLBACKS, begin_verification
    from lp_saas.storage import ObjectMissing, StorageError, get_storage

    actions: list[dict] = []
    for job, reason in stuck_jobs(tenant.id):
        actions.append({"action": "resend_job", "job_id": str(job.id), "kind": job.kind, "status": job.status,
                        "reason": reason, "attempts": job.attempts})
        if not dry_run:
            resend(job)
    for stored in unverified_files(tenant.id):
        action = {"action": "reverify_file", "file_id": str(stored.id)}
        if not dry_run:
            job = submit(tenant.id, "verify_file", {"file_id": str(stored.id)})
            action["job_id"] = str(job.id)
            audit.record(tenant.id, SYSTEM, "file.reverify", target_type="file", target_id=stored.id,
                         student_id=stored.student_id)
        actions.append(action)
    for notice in unsent_emails(tenant.id):
        action = {"action": "resend_email", "notification_id": str(notice.id)}
        if not dry_run:
            action["job_id"] = str(submit(tenant.id, "send_email", {"notification_id": str(notice.id)}).id)
        actions.append(action)
    storage = get_storage()
    for stored in unconfirmed_files(tenant.id):
        try:
            arrived = storage.stat(tenant.bucket, stored.key) is not None
        except ObjectMissing:
            arrived = False
        except StorageError as exc:
            actions.append({"action": "error", "step": "check_unconfirmed_upload", "file_id": str(stored.id),
                            "error": str(exc)[:300]})
            continue
        if arrived:
            # the bytes are there, only the client's "sent" never came (a closed tab, a lost
            # connection): a student's work is checked, never thrown away
            action = {"action": "verify_unconfirmed_upload", "file_id": str(stored.id)}
            if not dry_run:
                begin_verification(tenant, stored)
                audit.record(tenant.id, SYSTEM, "file.unconfirmed_verified", target_type="file",
                             target_id=stored.id, student_id=stored.student_id, details={"owner": stored.owner_kind})
            actions.append(action)
            continue
        action = {"action": "remove_unconfirmed_upload", "file_id": str(stored.id)}
        if not dry_run:
            try:
                action["objects"] = storage.delete_object(tenant.bucket, stored.key)
            except StorageError as exc:
                action.update(action="error", step="remove_unconfirmed_upload", error=str(exc)[:300])
                actions.append(action)
                continue
            stored.status, stored.reject_reason = "rejected", "missing"
            callback = _OWNER_CALLBACKS.get(stored.owner_kind)
            if callback is not None:
                callback(stored, False)
            audit.record(tenant.id, SYSTEM, "file.unconfirmed_removed", target_type="file", target_id=stored.id,
                         student_id=stored.student_id, details={"owner": stored.owner_kind})
        actions.append(action)
    for job in failed_cleanups(tenant.id):
        actions.append({"action": "retry_cleanup", "job_id": str(job.id), "kind": job.kind})
        if not dry_run:
            resend(job)
    for job in leftover_import_files(tenant.id):
        action = {"action": "remove_import_file", "job_id": str(job.id)}
        if not dry_run:
            try:
                action["objects"] = storage.delete_object(tenant.bucket, job.args["key"])
            except StorageError as exc:
                action.update(action="error", step="remove_import_file", error=str(exc)[:300])
                actions.append(action)
                continue
            job.args = {**job.args, "file_removed": True}
            audit.record(tenant.id, SYSTEM, "import.file_removed", target_type="job", target_id=job.id)
        actions.append(action)
    db.session.flush()
    return actions


def job_json(job: Job, reason: str | None = None) -> dict:
    out = {"job_id": str(job.id), "kind": job.kind, "status": job.status, "attempts": job.attempts,
           "created_at": job.created_at.isoformat(),
           "started_at": job.started_at.isoformat() if job.started_at else None,
           "finished_at": job.finished_at.isoformat() if job.finished_at else None}
    if reason:
        out["stuck"] = reason
    if job.error:
        out["error"] = job.error[:500]
    return out

