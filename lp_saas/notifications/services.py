"""Telling a user something: a notice on their dashboard, and an e-mail when they have an address.

The e-mail is work like any other: ``notify`` records the notice in the caller's transaction and
submits a ``send_email`` job that runs after the commit (jobs outbox), so a rolled-back sweep sends
nothing and a lost job is found again by the reconciling sweep. SMTP goes to ``LP_SMTP_HOST`` /
``LP_SMTP_PORT`` from ``LP_MAIL_FROM``; without ``LP_SMTP_HOST`` (the embedded default) the message
is recorded on its row (``email_status = recorded``) instead of sent.

Delivery is at least once: a worker killed between the SMTP server's acceptance and the commit
sends it again. The Message-ID is the notice's id, so a mail client can recognise the duplicate.
"""
from __future__ import annotations

import smtplib
import uuid
from email.message import EmailMessage
from email.utils import formatdate

import sqlalchemy as sa
from flask import current_app

from lp_saas.database import db, utcnow
from lp_saas.jobs.queue import job_kind, submit
from lp_saas.notifications.models import Notification


def exists(tenant_id, key: str) -> bool:
    return db.session.scalar(sa.select(Notification.id).where(Notification.tenant_id == tenant_id,
                                                             Notification.key == key)) is not None


def notify(tenant_id, user, *, kind: str, subject: str, body: str, key: str | None = None,
           link: str | None = None, email: bool = True) -> Notification | None:
    """A notice to ``user`` (and an e-mail after the commit when ``email`` and the user has an
    address). With ``key``, at most one notice per key ever: returns None when it exists already
    (also when a concurrent sweep created it a moment ago). Flush only."""
    if key is not None and exists(tenant_id, key):
        return None
    row = Notification(tenant_id=tenant_id, id=uuid.uuid4(), user_id=user.id, key=key, kind=kind,
                       subject=subject[:200], body=body, link=link)
    if email and user.email:
        row.email_to, row.email_status = user.email, "queued"
    try:
        with db.session.begin_nested():
            db.session.add(row)
            db.session.flush()
    except sa.exc.IntegrityError:  # the same key, created by a concurrent sweep
        return None
    if row.email_status == "queued":
        submit(tenant_id, "send_email", {"notification_id": str(row.id)})
    return row


def unread(tenant_id, user_id, limit: int = 20) -> list[Notification]:
    return list(db.session.scalars(
        sa.select(Notification).where(Notification.tenant_id == tenant_id, Notification.user_id == user_id,
                                      Notification.read_at.is_(None))
        .order_by(Notification.created_at.desc()).limit(limit)))


def recent(tenant_id, user_id, limit: int = 50) -> list[Notification]:
    return list(db.session.scalars(
        sa.select(Notification).where(Notification.tenant_id == tenant_id, Notification.user_id == user_id)
        .order_by(Notification.created_at.desc()).limit(limit)))


def mark_read(notice: Notification) -> None:
    if notice.read_at is None:
        notice.read_at = utcnow()
        db.session.flush()


def _absolute(tenant, link: str | None) -> str | None:
    """The notice's page on the school's host (https when the cookies are secure, i.e. behind TLS)."""
    if not link:
        return None
    config = current_app.config
    scheme = "https" if config.get("SESSION_COOKIE_SECURE") else "http"
    return f"{scheme}://{tenant.slug}.{config['LP_BASE_DOMAIN']}{link}"


def _message(notice: Notification, sender: str, url: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = notice.email_to
    message["Subject"] = notice.subject
    message["Date"] = formatdate(localtime=False)
    domain = sender.rsplit("@", 1)[-1] or "localhost"
    message["Message-ID"] = f"<{notice.id}@{domain}>"
    message.set_content(notice.body + (f"\n\n{url}\n" if url else "\n"))
    return message


@job_kind("send_email", queue="low", timeout=60, max_attempts=5, backoff=(30, 120, 600, 1800))
def send_email_job(job, progress):
    """Send one notice's e-mail. Idempotent: a sent or recorded notice is left alone.

    Raises OSError / SMTPException when the server cannot take it (the job retries with backoff).
    """
    from lp_saas.tenants.context import current_tenant

    tenant = current_tenant()
    notice = db.session.get(Notification, (tenant.id, uuid.UUID(job.args["notification_id"])))
    if notice is None or notice.email_status != "queued":
        return {"status": notice.email_status if notice else "gone"}
    config = current_app.config
    host = config.get("MAIL_SMTP_HOST")
    if not host:
        notice.email_status = "recorded"
        return {"status": "recorded"}
    with smtplib.SMTP(host, int(config.get("MAIL_SMTP_PORT") or 25), timeout=15) as smtp:
        smtp.send_message(_message(notice, config.get("MAIL_FROM") or "lp-saas@localhost",
                                   _absolute(tenant, notice.link)))
    notice.email_status, notice.emailed_at = "sent", utcnow()
    return {"status": "sent"}
