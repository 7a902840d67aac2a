"""Progress figures: a student's own overview, a homeroom class, the whole school.

Every function here costs a fixed number of queries whatever the number of students or items
(aggregates with GROUP BY), so pages stay fast at 3,000 students (see bench/).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa

from lp_saas import clock
from lp_saas.academics import calendar
from lp_saas.academics.models import ClassMembership, Course, Enrollment, SchoolClass
from lp_saas.accounts.models import User
from lp_saas.database import db
from lp_saas.portfolio.models import CourseOutcome, Performance, SelectionItem

UPLOADED = ("verifying", "submitted", "certified", "returned")


@dataclass
class Counts:
    """Course outcomes by state, plus selections, for one row of a table."""

    uploaded: int = 0
    submitted: int = 0
    certified: int = 0
    returned: int = 0
    rejected: int = 0
    selected: int = 0
    late: int = 0
    students: int = 0

    @property
    def certified_rate(self) -> float:
        return self.certified / self.uploaded if self.uploaded else 0.0

    def add_status(self, status: str, n: int) -> None:
        if status in UPLOADED:
            self.uploaded += n
        if status == "submitted":
            self.submitted += n
        elif status == "certified":
            self.certified += n
        elif status == "returned":
            self.returned += n
        elif status == "file_rejected":
            self.rejected += n


@dataclass
class CourseLine:
    course: Course
    counts: dict = field(default_factory=dict)  # status → n (the student's own outcomes)


@dataclass
class OutcomeLine:
    outcome: CourseOutcome
    selected: bool = False


def _term_filter(academic_year: int, semester: int | None):
    clauses = [CourseOutcome.academic_year == academic_year]
    if semester:
        clauses.append(CourseOutcome.semester == semester)
    return sa.and_(*clauses)


def student_overview(tenant_id, student_id: uuid.UUID, academic_year: int, semester: int) -> dict:
    """The student's courses of the term with their outcomes by status, performance and selection counts,
    the windows, and what still needs doing (returned or rejected items, courses with nothing yet)."""
    courses = list(db.session.scalars(
        sa.select(Course).join(Enrollment, sa.and_(Enrollment.tenant_id == Course.tenant_id,
                                                   Enrollment.course_id == Course.id))
        .where(Course.tenant_id == tenant_id, Enrollment.student_id == student_id,
               Course.academic_year == academic_year, Course.semester == semester).order_by(Course.code)))
    # the year's diverse performance by name; the counts by status come from the same rows
    performance_items = list(db.session.scalars(
        sa.select(Performance).where(Performance.tenant_id == tenant_id, Performance.student_id == student_id,
                                     Performance.academic_year == academic_year)
        .order_by(Performance.created_at)))
    performance: dict = {}
    for item in performance_items:
        performance[item.status] = performance.get(item.status, 0) + 1
    selected = dict(db.session.execute(
        sa.select(SelectionItem.item_kind, sa.func.count())
        .where(SelectionItem.tenant_id == tenant_id, SelectionItem.student_id == student_id,
               SelectionItem.academic_year == academic_year).group_by(SelectionItem.item_kind)).all())
    # every outcome of the term, each with whether it is selected: what a student, and a parent
    # reading along, want to see by name; the per-course counts come from the same rows (one query,
    # whatever the number of items)
    selected_outcome = sa.exists().where(
        SelectionItem.tenant_id == CourseOutcome.tenant_id, SelectionItem.student_id == CourseOutcome.student_id,
        SelectionItem.item_kind == "outcome", SelectionItem.item_id == CourseOutcome.id)
    per_course: dict = {}
    outcomes = []
    for outcome, is_selected in db.session.execute(
            sa.select(CourseOutcome, selected_outcome.label("selected"))
            .where(CourseOutcome.tenant_id == tenant_id, CourseOutcome.student_id == student_id,
                   _term_filter(academic_year, semester))
            .order_by(CourseOutcome.created_at)):
        counts = per_course.setdefault(outcome.course_id, {})
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
        if outcome.status != "withdrawn":
            outcomes.append(OutcomeLine(outcome, is_selected))
    term = calendar.term(tenant_id, academic_year, semester)
    window = calendar.outcome_upload_window(term) if term else None
    year_window = calendar.selection_window(tenant_id, academic_year)  # the card shows when selection closes
    lines = [CourseLine(course, per_course.get(course.id, {})) for course in courses]
    todo = []
    for line in lines:
        if line.counts.get("returned"):
            todo.append(("returned", line.course))
        if line.counts.get("file_rejected"):
            todo.append(("file_rejected", line.course))
        if not line.counts and window is not None and window.is_open():
            todo.append(("nothing_yet", line.course))
    return {
        "lines": lines, "outcomes": outcomes, "course_names": {c.id: c.name for c in courses},
        "performance": performance, "performance_items": performance_items, "selected": selected, "term": term,
        "window": window, "certification_deadline": calendar.certification_deadline(term) if term else None,
        "year_window": year_window, "todo": todo, "now": clock.now(),
    }


def class_progress(tenant_id, class_id: uuid.UUID, academic_year: int, semester: int | None) -> list[tuple]:
    """(student, Counts) for each student of the class, by name."""
    students = list(db.session.scalars(
        sa.select(User).join(ClassMembership, sa.and_(ClassMembership.tenant_id == User.tenant_id,
                                                      ClassMembership.student_id == User.id))
        .where(User.tenant_id == tenant_id, ClassMembership.class_id == class_id)
        .order_by(User.student_no, User.display_name)))
    ids = [s.id for s in students]
    counts = {sid: Counts(students=1) for sid in ids}
    if ids:
        for student_id, status, n in db.session.execute(
                sa.select(CourseOutcome.student_id, CourseOutcome.status, sa.func.count())
                .where(CourseOutcome.tenant_id == tenant_id, CourseOutcome.student_id.in_(ids),
                       _term_filter(academic_year, semester))
                .group_by(CourseOutcome.student_id, CourseOutcome.status)):
            counts[student_id].add_status(status, n)
        for student_id, n in db.session.execute(
                sa.select(SelectionItem.student_id, sa.func.count())
                .where(SelectionItem.tenant_id == tenant_id, SelectionItem.student_id.in_(ids),
                       SelectionItem.academic_year == academic_year)
                .group_by(SelectionItem.student_id)):
            counts[student_id].selected = n
    return [(s, counts[s.id]) for s in students]


def _late_clause(tenant_id, academic_year: int, semester: int | None):
    """Submitted outcomes still waiting after their semester's certification deadline, as a 0/1 column
    (a CASE, so that GROUP BY never groups by a bare constant, which SQLite refuses)."""
    clauses = []
    for sem in ((semester,) if semester else (1, 2)):
        term = calendar.term(tenant_id, academic_year, sem)
        if term is not None and calendar.certification_deadline(term) < clock.now():
            clauses.append(CourseOutcome.semester == sem)
    condition = sa.and_(CourseOutcome.status == "submitted", sa.or_(*clauses)) if clauses else sa.false()
    return sa.case((condition, 1), else_=0)


def school_progress(tenant_id, academic_year: int, semester: int | None) -> dict:
    """Per class and per teacher: uploaded, certified, returned, selected, late; and school totals."""
    late = _late_clause(tenant_id, academic_year, semester)
    classes = list(db.session.scalars(sa.select(SchoolClass).where(
        SchoolClass.tenant_id == tenant_id, SchoolClass.academic_year == academic_year).order_by(SchoolClass.name)))
    by_class = {c.id: Counts() for c in classes}
    membership = sa.and_(ClassMembership.tenant_id == CourseOutcome.tenant_id,
                         ClassMembership.student_id == CourseOutcome.student_id)
    class_ids = list(by_class)
    if class_ids:
        for class_id, n in db.session.execute(
                sa.select(ClassMembership.class_id, sa.func.count())
                .where(ClassMembership.tenant_id == tenant_id, ClassMembership.class_id.in_(class_ids))
                .group_by(ClassMembership.class_id)):
            by_class[class_id].students = n
        for class_id, status, is_late, n in db.session.execute(
                sa.select(ClassMembership.class_id, CourseOutcome.status, late, sa.func.count())
                .select_from(CourseOutcome).join(ClassMembership, membership)
                .where(CourseOutcome.tenant_id == tenant_id, ClassMembership.class_id.in_(class_ids),
                       _term_filter(academic_year, semester))
                .group_by(ClassMembership.class_id, CourseOutcome.status, late)):
            by_class[class_id].add_status(status, n)
            if is_late:
                by_class[class_id].late += n
        for class_id, n in db.session.execute(
                sa.select(ClassMembership.class_id, sa.func.count())
                .select_from(SelectionItem)
                .join(ClassMembership, sa.and_(ClassMembership.tenant_id == SelectionItem.tenant_id,
                                               ClassMembership.student_id == SelectionItem.student_id))
                .where(SelectionItem.tenant_id == tenant_id, SelectionItem.academic_year == academic_year,
                       ClassMembership.class_id.in_(class_ids))
                .group_by(ClassMembership.class_id)):
            by_class[class_id].selected = n
    by_teacher: dict = {}
    teacher_names = {}
    for teacher_id, name, status, is_late, n in db.session.execute(
            sa.select(Course.teacher_id, User.display_name, CourseOutcome.status, late, sa.func.count())
            .select_from(CourseOutcome).join(Course, sa.and_(Course.tenant_id == CourseOutcome.tenant_id, Course.id == CourseOutcome.course_id))
            .join(User, sa.and_(User.tenant_id == Course.tenant_id, User.id == Course.teacher_id))
            .where(CourseOutcome.tenant_id == tenant_id, _term_filter(academic_year, semester))
            .group_by(Course.teacher_id, User.display_name, CourseOutcome.status, late)):
        counts = by_teacher.setdefault(teacher_id, Counts())
        teacher_names[teacher_id] = name
        counts.add_status(status, n)
        if is_late:
            counts.late += n
    # the teachers' certified outcomes that students selected for the central database (one query)
    for teacher_id, n in db.session.execute(
            sa.select(Course.teacher_id, sa.func.count())
            .select_from(SelectionItem)
            .join(CourseOutcome, sa.and_(CourseOutcome.tenant_id == SelectionItem.tenant_id,
                                         CourseOutcome.id == SelectionItem.item_id))
            .join(Course, sa.and_(Course.tenant_id == CourseOutcome.tenant_id, Course.id == CourseOutcome.course_id))
            .where(SelectionItem.tenant_id == tenant_id, SelectionItem.item_kind == "outcome",
                   _term_filter(academic_year, semester))
            .group_by(Course.teacher_id)):
        if teacher_id in by_teacher:
            by_teacher[teacher_id].selected = n
    total = Counts()
    for counts in by_class.values():
        for attr in ("uploaded", "submitted", "certified", "returned", "rejected", "selected", "late", "students"):
            setattr(total, attr, getattr(total, attr) + getattr(counts, attr))
    return {
        "classes": [(c, by_class[c.id]) for c in classes],
        "teachers": sorted(((teacher_names[t], c) for t, c in by_teacher.items()), key=lambda x: x[0]),
        "total": total,
    }
