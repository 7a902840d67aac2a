"""Portfolio items and their files. Every state change carries its time and actor and is audited.

Statuses of an item with a file (API.md): ``awaiting_upload`` → ``verifying`` → ``submitted`` (or
``file_rejected``) → ``certified`` / ``returned`` (course outcomes only; a returned item can be
revised and resubmitted while the window is open). A hyperlink item is ``submitted`` at once.
A course outcome the student takes back is ``withdrawn``: kept, with its files, but out of the cap.
"""
from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from lp_saas.database import TenantLinkMixin, TenantMixin, UTCDateTime, db, tenant_fk, utcnow

ITEM_STATUSES = ("awaiting_upload", "verifying", "submitted", "file_rejected", "certified", "returned")
#: a course outcome the student took back (never deleted: it no longer counts toward the upload cap)
OUTCOME_STATUSES = ITEM_STATUSES + ("withdrawn",)
FILE_STATUSES = ("pending", "verifying", "verified", "rejected")
SOURCES = ("student", "school", "organiser")

#: the ten diverse-performance categories of the central database (key → zh name)
PERFORMANCE_CATEGORIES = {
    "cadre": "幹部經歷暨事蹟",
    "competition": "競賽參與",
    "service_learning": "服務學習",
    "group_activity": "團體活動時間",
    "other": "其他多元表現",
    "certificate": "檢定證照",
    "flexible_learning": "彈性學習時間",
    "workplace_learning": "職場學習",
    "work_product": "作品成果",
    "advanced_course": "大學及技專校院先修課程",
}


class StoredFile(TenantMixin, db.Model):
    """A file in the school's bucket. The key is generated; the user's filename is kept here only.

    A file counts as received only once the verification job has checked it in storage
    (size, SHA-256, type sniffed from content against the school's allow-list).
    """

    __tablename__ = "stored_files"

    owner_kind: Mapped[str] = mapped_column(sa.String(20))  # outcome, performance, summary_image
    owner_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    student_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    key: Mapped[str] = mapped_column(sa.String(300))
    filename: Mapped[str] = mapped_column(sa.String(200))
    file_type: Mapped[str] = mapped_column(sa.String(8))  # pdf jpg png mp3 mp4, from the declared name/type
    content_type: Mapped[str] = mapped_column(sa.String(100))
    declared_size: Mapped[int] = mapped_column(sa.BigInteger)
    declared_sha256: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(12), default="pending")
    size: Mapped[int | None] = mapped_column(sa.BigInteger)
    sha256: Mapped[str | None] = mapped_column(sa.String(64))
    sniffed_type: Mapped[str | None] = mapped_column(sa.String(8))
    reject_reason: Mapped[str | None] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    upload_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    uploaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "key"),
        sa.Index("ix_stored_files_owner", "tenant_id", "owner_kind", "owner_id"),
        sa.Index("ix_stored_files_status", "status", "created_at"),
        tenant_fk("student_id", "users", ondelete="CASCADE"),
        sa.CheckConstraint("status IN ('pending','verifying','verified','rejected')", name="status"),
    )


class _ItemColumns:
    """What course outcomes and performance items share: owner, text, file or link, status."""

    student_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    academic_year: Mapped[int] = mapped_column(sa.Integer)
    semester: Mapped[int | None] = mapped_column(sa.Integer)
    title: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    link_url: Mapped[str | None] = mapped_column(sa.String(500))
    file_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    status: Mapped[str] = mapped_column(sa.String(16))
    status_reason: Mapped[str | None] = mapped_column(sa.String(500))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revision: Mapped[int] = mapped_column(sa.Integer, default=1, server_default="1")


class CourseOutcome(_ItemColumns, TenantMixin, db.Model):
    """課程學習成果: a student's work for a course they take, certified by its teacher."""

    __tablename__ = "course_outcomes"

    course_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    teacher_comment: Mapped[str | None] = mapped_column(sa.String(500))
    certified_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    certified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    returned_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # central-database flags (學籍異動 and course situation)
    retake: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())  # 重修
    makeup: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())  # 補修
    repeat: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())  # 重讀
    before_transfer: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())

    __table_args__ = (
        tenant_fk("student_id", "users", ondelete="CASCADE"),
        tenant_fk("course_id", "courses"),
        tenant_fk("file_id", "stored_files"),
        sa.Index("ix_course_outcomes_student", "tenant_id", "student_id", "academic_year", "semester"),
        sa.Index("ix_course_outcomes_course", "tenant_id", "course_id", "status"),
        sa.CheckConstraint("status IN ('awaiting_upload','verifying','submitted','file_rejected','certified',"
                           "'returned','withdrawn')", name="status"),
    )


class Performance(_ItemColumns, TenantMixin, db.Model):
    """多元表現: one of ten categories, with the category's own fields in ``details``."""

    __tablename__ = "performances"

    category: Mapped[str] = mapped_column(sa.String(30))
    details: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    source: Mapped[str] = mapped_column(sa.String(12), default="student")
    organiser_name: Mapped[str | None] = mapped_column(sa.String(120))

    __table_args__ = (
        tenant_fk("student_id", "users", ondelete="CASCADE"),
        tenant_fk("file_id", "stored_files"),
        sa.Index("ix_performances_student", "tenant_id", "student_id", "academic_year"),
        sa.CheckConstraint("source IN ('student','school','organiser')", name="source"),
        sa.CheckConstraint("status IN ('awaiting_upload','verifying','submitted','file_rejected','certified',"
                           "'returned')", name="status"),
    )


class SelfStatement(TenantMixin, db.Model):
    """自傳 / 學習歷程自述: several versions, each aimed at a department."""

    __tablename__ = "self_statements"

    student_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    kind: Mapped[str] = mapped_column(sa.String(20))  # autobiography, study_plan
    target: Mapped[str] = mapped_column(sa.String(120))  # e.g. 國立臺灣大學 資訊工程學系
    title: Mapped[str] = mapped_column(sa.String(100))
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        tenant_fk("student_id", "users", ondelete="CASCADE"),
        sa.Index("ix_self_statements_student", "tenant_id", "student_id"),
    )


class PerformanceSummary(TenantLinkMixin, db.Model):
    """多元表現綜整心得: at most 800 characters and 3 images (StoredFile owner_kind summary_image)."""

    __tablename__ = "performance_summaries"

    student_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    body: Mapped[str] = mapped_column(sa.Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (tenant_fk("student_id", "users", ondelete="CASCADE"),)


class SelectionItem(TenantLinkMixin, db.Model):
    """勾選: one item a student chose for the central database in an academic year."""

    __tablename__ = "selection_items"

    student_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    academic_year: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    item_kind: Mapped[str] = mapped_column(sa.String(12), primary_key=True)  # outcome, performance
    item_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    selected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        tenant_fk("student_id", "users", ondelete="CASCADE"),
        sa.CheckConstraint("item_kind IN ('outcome','performance')", name="item_kind"),
    )
