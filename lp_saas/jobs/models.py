"""The outbox: every piece of background work is a row here first; Redis only carries the id."""
from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from lp_saas.database import TenantMixin, UTCDateTime, db, utcnow

JOB_STATUSES = ("queued", "running", "succeeded", "failed")


class Job(TenantMixin, db.Model):
    __tablename__ = "jobs"

    kind: Mapped[str] = mapped_column(sa.String(60))
    args: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    status: Mapped[str] = mapped_column(sa.String(12), default="queued")
    progress: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    result: Mapped[dict | None] = mapped_column(sa.JSON)
    error: Mapped[str | None] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.Index("ix_jobs_status", "status", "enqueued_at"),
        sa.CheckConstraint("status IN ('queued','running','succeeded','failed')", name="status"),
    )

    def to_dict(self) -> dict:
        out = {
            "id": str(self.id),
            "kind": self.kind,
            "status": self.status,
            "progress": self.progress,
            "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }
        if self.result is not None:
            out["result"] = self.result
        if self.error:
            out["error"] = self.error
        return out
