"""The academic structure the permission scopes rest on: classes, courses, enrolments, parents.

Issue 3 grows this area (terms, registration records, imports); the foundation needs just enough
for "my course", "my class" and "my child".
"""
from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from lp_saas.database import TenantLinkMixin, TenantMixin, UTCDateTime, db, tenant_fk


class SchoolClass(TenantMixin, db.Model):
    """A homeroom class (班級) in an academic year, with its homeroom teacher (導師)."""

    __tablename__ = "school_classes"

    academic_year: Mapped[int] = mapped_column(sa.Integer)  # ROC year, e.g. 113
    name: Mapped[str] = mapped_column(sa.String(40))  # e.g. 301
    grade: Mapped[int] = mapped_column(sa.Integer)  # 10, 11, 12
    homeroom_teacher_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)

    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "academic_year", "name"),
        tenant_fk("homeroom_teacher_id", "users"),
    )


class Course(TenantMixin, db.Model):
    """A course offered in one semester, taught by a teacher, with a deputy (職務代理人)."""

    __tablename__ = "courses"

    code: Mapped[str] = mapped_column(sa.String(40))  # 課程代碼 from the course-plan platform
    name: Mapped[str] = mapped_column(sa.String(100))
    credits: Mapped[int] = mapped_column(sa.Integer)
    academic_year: Mapped[int] = mapped_column(sa.Integer)
    semester: Mapped[int] = mapped_column(sa.Integer)
    grade: Mapped[int | None] = mapped_column(sa.Integer)
    subject: Mapped[str | None] = mapped_column(sa.String(60))
    teacher_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    deputy_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)

    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "academic_year", "semester", "code"),
        tenant_fk("teacher_id", "users"),
        tenant_fk("deputy_id", "users"),
        sa.CheckConstraint("semester IN (1, 2)", name="semester"),
        sa.CheckConstraint("credits BETWEEN 0 AND 30", name="credits"),
    )


class Enrollment(TenantLinkMixin, db.Model):
    __tablename__ = "enrollments"

    course_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    student_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)

    __table_args__ = (
        tenant_fk("course_id", "courses", ondelete="CASCADE"),
        tenant_fk("student_id", "users", ondelete="CASCADE"),
        sa.Index("ix_enrollments_student", "tenant_id", "student_id"),
    )


class ClassMembership(TenantLinkMixin, db.Model):
    """A student in a homeroom class (one class per academic year)."""

    __tablename__ = "class_memberships"

    class_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    student_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)

    __table_args__ = (
        tenant_fk("class_id", "school_classes", ondelete="CASCADE"),
        tenant_fk("student_id", "users", ondelete="CASCADE"),
        sa.Index("ix_class_memberships_student", "tenant_id", "student_id"),
    )


class ParentLink(TenantLinkMixin, db.Model):
    """A parent or guardian and their child, both accounts of the same school."""

    __tablename__ = "parent_links"

    parent_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    student_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)

    __table_args__ = (
        tenant_fk("parent_id", "users", ondelete="CASCADE"),
        tenant_fk("student_id", "users", ondelete="CASCADE"),
    )


class Term(TenantMixin, db.Model):
    """A semester of the school's calendar: its dates and its semester-end ceremony (休業式).

    Upload windows, certification deadlines and the selection's closing day are counted from the
    ceremony by the rule set in force (``tenants/rulesets.py``); see ``academics/calendar.py``.
    """

    __tablename__ = "terms"

    academic_year: Mapped[int] = mapped_column(sa.Integer)
    semester: Mapped[int] = mapped_column(sa.Integer)
    starts_on: Mapped[date] = mapped_column(sa.Date)
    ends_on: Mapped[date] = mapped_column(sa.Date)
    ceremony_on: Mapped[date] = mapped_column(sa.Date)  # 休業式
    #: grade 12's semester 2 ends early (university applications): its own ceremony, if any
    grade12_ceremony_on: Mapped[date | None] = mapped_column(sa.Date)
    #: True only on the national default dates used until the school sets its own (never stored)
    is_default = False

    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "academic_year", "semester"),
        sa.CheckConstraint("semester IN (1, 2)", name="semester"),
        sa.CheckConstraint("starts_on <= ceremony_on AND ceremony_on <= ends_on", name="dates"),
    )


class StudentRecord(TenantLinkMixin, db.Model):
    """A student's registration record (學籍資料): personal data, every read is audited."""

    __tablename__ = "student_records"

    student_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    national_id: Mapped[str | None] = mapped_column(sa.String(12))  # 身分證統一編號 or 居留證號
    birth_date: Mapped[date | None] = mapped_column(sa.Date)
    gender: Mapped[str | None] = mapped_column(sa.String(1))
    admission_year: Mapped[int | None] = mapped_column(sa.Integer)
    department: Mapped[str | None] = mapped_column(sa.String(60))  # 科別 / 學程
    guardian_name: Mapped[str | None] = mapped_column(sa.String(60))
    guardian_phone: Mapped[str | None] = mapped_column(sa.String(30))
    address: Mapped[str | None] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(16), default="enrolled")  # enrolled, graduated, left
    #: 學籍異動 flags the central-database format carries on course outcomes
    guest_student: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    transferred_in: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (tenant_fk("student_id", "users", ondelete="CASCADE"),)
