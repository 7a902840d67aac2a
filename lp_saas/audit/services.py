"""Writing and searching the audit log. Services call :func:`record`; it only adds and flushes."""
from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from flask import has_request_context, request

from lp_saas.audit.models import AuditEvent
from lp_saas.database import db


def client_addr() -> str | None:
    if not has_request_context():
        return None
    return request.remote_addr


def actor_label(actor) -> str:
    if actor is None:
        return "anonymous"
    if isinstance(actor, str):
        return actor
    return actor.username


def record(tenant_id: uuid.UUID, actor, action: str, *, target_type: str | None = None,
           target_id=None, student_id: uuid.UUID | None = None, details: dict | None = None) -> AuditEvent:
    """Append one event. ``actor`` is a User, a label such as ``"system:provisioning"``, or None."""
    event = AuditEvent(
        tenant_id=tenant_id,
        actor_id=getattr(actor, "id", None),
        actor_label=actor_label(actor),
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        student_id=student_id,
        client_addr=client_addr(),
        details=details or None,
    )
    db.session.add(event)
    return event


def search(tenant_id: uuid.UUID, *, actor: str | None = None, action: str | None = None,
           student_id: uuid.UUID | None = None, since: datetime | None = None,
           until: datetime | None = None, limit: int = 200) -> list[AuditEvent]:
    """The school's events, newest first, filtered. ``actor`` matches the actor's label prefix."""
    query = sa.select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
    if actor:
        query = query.where(AuditEvent.actor_label.startswith(actor, autoescape=True))
    if action:
        query = query.where(AuditEvent.action.startswith(action, autoescape=True))
    if student_id:
        query = query.where(AuditEvent.student_id == student_id)
    if since:
        query = query.where(AuditEvent.at >= since)
    if until:
        query = query.where(AuditEvent.at < until)
    return list(db.session.scalars(query.order_by(AuditEvent.at.desc()).limit(limit)))
