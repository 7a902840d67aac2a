"""Records that staff enter and students check (DESIGN.md §2: 基本資料, 修課紀錄)."""
from __future__ import annotations

import uuid
from datetime import date, datetime, time

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from lp_saas.database import TenantLinkMixin, TenantMixin, UTCDateTime, db, tenant_fk, utcnow


class CadreRole(TenantMixin, db.Model):
    """幹部經歷 (訓育組): a school, class or club cadre role in a semester."""

    __tablename__ = "cadre_roles"

    student_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    academic_year: Mapped[int] = mapped_column(sa.Integer)
    semester: Mapped[int] = mapped_column(sa.Integer)
    level: Mapped[str] = mapped_column(sa.String(10))  # school, class, club
    unit: Mapped[str] = mapped_column(sa.String(60))
    title: Mapped[str] = mapped_column(sa.String(60))
    recorded_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (tenant_fk("student_id", "users", ondelete="CASCADE"),
                      sa.Index("ix_cadre_roles_student", "tenant_id", "student_id"))


class ClubRecord(TenantMixin, db.Model):
    """社團活動 (社團組)."""

    __tablename__ = "club_records"

    student_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    academic_year: Mapped[int] = mapped_column(sa.Integer)
    semester: Mapped[int] = mapped_column(sa.Integer)
    club: Mapped[str] = mapped_column(sa.String(60))
    role: Mapped[str | None] = mapped_column(sa.String(40))
    recorded_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (tenant_fk("student_id", "users", ondelete="CASCADE"),
                      sa.Index("ix_club_records_student", "tenant_id", "student_id"))


class AttendanceSummary(TenantLinkMixin, db.Model):
    """出缺勤 (生輔組): a semester's summary per student."""

    __tablename__ = "attendance_summaries"

    student_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    academic_year: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    semester: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    school_days: Mapped[int] = mapped_column(sa.Integer, default=0)
    absences: Mapped[int] = mapped_column(sa.Integer, default=0)
    sick_leave: Mapped[int] = mapped_column(sa.Integer, default=0)
    personal_leave: Mapped[int] = mapped_column(sa.Integer, default=0)
    recorded_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)

    __table_args__ = (tenant_fk("student_id", "users", ondelete="CASCADE"),)


class DataConfirmation(TenantMixin, db.Model):
    """Each semester the student checks their basic data and confirms it, or asks for a correction
    that the responsible unit resolves."""

    __tablename__ = "data_confirmations"

    student_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    academic_year: Mapped[int] = mapped_column(sa.Integer)
    semester: Mapped[int] = mapped_column(sa.Integer)
    area: Mapped[str] = mapped_column(sa.String(20))  # registration, cadre_roles, clubs, attendance, grades
    status: Mapped[str] = mapped_column(sa.String(20))  # confirmed, correction_requested, resolved
    note: Mapped[str | None] = mapped_column(sa.String(500))
    resolution: Mapped[str | None] = mapped_column(sa.String(500))
    resolved_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        tenant_fk("student_id", "users", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "student_id", "academic_year", "semester", "area"),
        sa.CheckConstraint("status IN ('confirmed','correction_requested','resolved')", name="status"),
    )


class Grade(TenantLinkMixin, db.Model):
    """學業成績 (註冊組): a student's result in a course."""

    __tablename__ = "grades"

    course_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    student_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    score: Mapped[float | None] = mapped_column(sa.Numeric(5, 2))
    passed: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    credits_earned: Mapped[int] = mapped_column(sa.Integer, default=0)
    retake: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    makeup: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    recorded_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (tenant_fk("course_id", "courses", ondelete="CASCADE"),
                      tenant_fk("student_id", "users", ondelete="CASCADE"),
                      sa.Index("ix_grades_student", "tenant_id", "student_id"))


class CounselingRecord(TenantMixin, db.Model):
    """課程諮詢紀錄: date, time, place, content and advice, by a course counselor."""

    __tablename__ = "counseling_records"

    student_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    counselor_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    held_on: Mapped[date] = mapped_column(sa.Date)
    held_at: Mapped[time | None] = mapped_column(sa.Time)
    place: Mapped[str] = mapped_column(sa.String(100))
    content: Mapped[str] = mapped_column(sa.Text)
    advice: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (tenant_fk("student_id", "users", ondelete="CASCADE"),
                      tenant_fk("counselor_id", "users"),
                      sa.Index("ix_counseling_records_student", "tenant_id", "student_id"))


class ElectiveChoice(TenantLinkMixin, db.Model):
    """選課: a student's elective choice for a course (教學組 enters it after course selection)."""

    __tablename__ = "elective_choices"

    student_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    course_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    preference: Mapped[int] = mapped_column(sa.Integer, default=1)
    status: Mapped[str] = mapped_column(sa.String(12), default="chosen")  # chosen, admitted, declined
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (tenant_fk("student_id", "users", ondelete="CASCADE"),
                      tenant_fk("course_id", "courses", ondelete="CASCADE"))
