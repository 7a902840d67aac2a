"""Mail from the platform: an outbox row in the transaction that causes the mail, delivered once
that transaction commits (never before: a rolled-back signup sends nothing).

Delivery is SMTP to ``LP_SMTP_HOST:LP_SMTP_PORT`` from ``LP_MAIL_FROM``. Without ``LP_SMTP_HOST``
(the embedded default) the mail is written to the log instead and kept in the outbox with its body,
so the operator console shows it and the demo works without a mail server. A failed delivery stays
in the outbox as ``failed`` with the error; the console can send it again.
"""
from __future__ import annotations

import logging
import smtplib
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from lp_saas.database import db, utcnow
from lp_saas.platform.models import PlatformMail

log = logging.getLogger(__name__)
_PENDING = "lp_pending_mails"


def queue_mail(*, kind: str, to: str, subject: str, body: str, signup_id=None) -> PlatformMail:
    """Add a mail to the outbox (flush only); it is delivered after the surrounding commit."""
    mail = PlatformMail(kind=kind, recipient=to, subject=subject[:200], body=body, status="queued",
                        signup_id=signup_id)
    db.session.add(mail)
    db.session.flush()
    db.session.info.setdefault(_PENDING, []).append(mail.id)
    return mail


@event.listens_for(Session, "after_commit")
def _deliver_after_commit(session):
    pending = session.info.pop(_PENDING, None)
    if pending:
        for mail_id in pending:
            deliver(mail_id)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session):
    session.info.pop(_PENDING, None)


def _message(mail: PlatformMail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.recipient
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1] or "localhost")
    message.set_content(mail.body or "")
    return message


def deliver(mail_id: uuid.UUID) -> str:
    """Send one queued (or failed) mail now, in a session of its own. Returns its new status.

    Never raises for a mail server problem: the row records it as ``failed``.
    """
    config = current_app.config
    with Session(db.engine) as session:
        mail = session.get(PlatformMail, mail_id)
        if mail is None or mail.status in ("sent", "logged"):
            return mail.status if mail else "missing"
        host = config.get("MAIL_SMTP_HOST")
        if not host:
            log.info("mail (no LP_SMTP_HOST; logged, not sent) to %s: %s\n%s", mail.recipient, mail.subject, mail.body)
            mail.status, mail.sent_at, mail.error = "logged", utcnow(), None
        else:
            try:
                with smtplib.SMTP(host, int(config.get("MAIL_SMTP_PORT") or 25), timeout=15) as smtp:
                    smtp.send_message(_message(mail, config.get("MAIL_FROM") or "lp-saas@localhost"))
            except (OSError, smtplib.SMTPException) as exc:
                log.warning("mail %s to %s failed: %s", mail.id, mail.recipient, exc)
                mail.status, mail.error = "failed", f"{type(exc).__name__}: {exc}"[:500]
            else:
                # the body may hold a one-time link: once it is with the recipient, we keep no copy
                mail.status, mail.sent_at, mail.error, mail.body = "sent", utcnow(), None, None
        session.commit()
        return mail.status
