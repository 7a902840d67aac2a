"""Overview pages: the student's portfolio, the parent's read-only view, the homeroom class, the school
dashboard; with scopes, and query counts that do not grow with the data."""
import uuid
from contextlib import contextmanager
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa

from lp_saas import clock
from lp_saas.academics.models import ClassMembership, Course, Enrollment, ParentLink, SchoolClass, Term
from lp_saas.database import db
from lp_saas.portfolio.models import CourseOutcome, Performance, SelectionItem
from tests.conftest import as_tenant

NOW = datetime(2025, 3, 10, 4, 0, tzinfo=timezone.utc)  # 113學年度第2學期


@contextmanager
def count_queries(app):
    counter = {"n": 0}

    def before(*_args, **_kwargs):
        counter["n"] += 1

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield counter
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


def build_school(app, make_school, make_user, students=3, outcomes_each=2):
    school = make_school()
    teacher = make_user(school, "teacher", display_name="數學老師")
    homeroom = make_user(school, "teacher", "homeroom_teacher")
    parent = make_user(school, "parent")
    admin = make_user(school, "school_admin")
    kids = [make_user(school, "student", display_name=f"學生{i}", student_no=f"N{i:04d}") for i in range(students)]
    with as_tenant(app, school):
        db.session.add_all([
            Term(tenant_id=school.id, academic_year=113, semester=1, starts_on=date(2024, 8, 1),
                 ends_on=date(2025, 1, 31), ceremony_on=date(2025, 1, 20)),
            Term(tenant_id=school.id, academic_year=113, semester=2, starts_on=date(2025, 2, 1),
                 ends_on=date(2025, 7, 31), ceremony_on=date(2025, 6, 30)),
        ])
        klass = SchoolClass(tenant_id=school.id, academic_year=113, name="201", grade=11,
                            homeroom_teacher_id=homeroom.id)
        course1 = Course(tenant_id=school.id, code="M-1", name="數學", credits=4, academic_year=113, semester=1,
                         teacher_id=teacher.id)
        course2 = Course(tenant_id=school.id, code="M-2", name="數學二", credits=4, academic_year=113,
                         semester=2, teacher_id=teacher.id)
        db.session.add_all([klass, course1, course2])
        db.session.flush()
        for kid in kids:
            db.session.add(ClassMembership(tenant_id=school.id, class_id=klass.id, student_id=kid.id))
            for course in (course1, course2):
                db.session.add(Enrollment(tenant_id=school.id, course_id=course.id, student_id=kid.id))
            for n in range(outcomes_each):
                status = ("submitted", "certified", "returned")[n % 3]
                outcome = CourseOutcome(tenant_id=school.id, student_id=kid.id, course_id=course1.id,
                                        academic_year=113, semester=1, title=f"作品{n}", description="",
                                        link_url="https://example.org/x", status=status)
                db.session.add(outcome)
                db.session.flush()
                if status == "certified":
                    db.session.add(SelectionItem(tenant_id=school.id, student_id=kid.id, academic_year=113,
                                                 item_kind="outcome", item_id=outcome.id))
        db.session.add(ParentLink(tenant_id=school.id, parent_id=parent.id, student_id=kids[0].id))
        db.session.commit()
        class_id = klass.id
    return school, {"teacher": teacher, "homeroom": homeroom, "parent": parent, "admin": admin, "kids": kids,
                    "class_id": class_id}


def test_student_sees_own_portfolio_with_counts(app, make_school, make_user, signed_in):
    school, p = build_school(app, make_school, make_user)
    with clock.frozen(NOW):
        page = signed_in(school, p["kids"][0]).get("/portfolio?year=113&semester=1")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "數學" in body and "M-1" in body
    # each outcome of the term by name, with its status, and the selected one marked
    assert body.count('data-testid="portfolio-outcome"') == 2 and "作品0" in body and "作品1" in body
    assert body.count('data-testid="selected-tag"') == 1  # 作品1, certified and selected


def test_parent_sees_own_child_read_only_and_not_another(app, make_school, make_user, signed_in):
    school, p = build_school(app, make_school, make_user)
    with as_tenant(app, school):
        db.session.add(Performance(tenant_id=school.id, student_id=p["kids"][0].id, academic_year=113, semester=1,
                                   title="校慶園遊會志工", description="", category="service_learning",
                                   details={"hours": 6, "start_date": "2024-11-02"}, source="school",
                                   status="submitted", link_url=None))
        db.session.commit()
    parent = signed_in(school, p["parent"])
    own = parent.get("/portfolio?year=113&semester=1", follow_redirects=True)
    assert own.status_code == 200 and p["kids"][0].display_name in own.get_data(as_text=True)
    listed = own.get_data(as_text=True)
    assert 'data-testid="portfolio-performance"' in listed and "校慶園遊會志工" in listed and "服務學習" in listed
    assert parent.get(f"/portfolio/students/{p['kids'][1].id}").status_code == 404
    classmate = signed_in(school, p["kids"][1])
    assert classmate.get(f"/portfolio/students/{p['kids'][0].id}").status_code == 404


def test_homeroom_class_view(app, make_school, make_user, signed_in):
    school, p = build_school(app, make_school, make_user)
    page = signed_in(school, p["homeroom"]).get("/class?year=113&semester=1")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert all(kid.display_name in body for kid in p["kids"])
    assert signed_in(school, p["teacher"]).get("/class?year=113").status_code == 403
    other_school, q = build_school(app, make_school, make_user)
    assert signed_in(school, p["homeroom"]).get(f"/class?year=113&class_id={q['class_id']}").status_code == 404


def test_school_dashboard_counts_and_late(app, make_school, make_user, signed_in):
    school, p = build_school(app, make_school, make_user, students=3, outcomes_each=3)
    admin = signed_in(school, p["admin"])
    with clock.frozen(NOW):  # semester 1's certification deadline (ceremony + 21 days) has passed
        page = admin.get("/admin/progress?year=113&semester=1")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-testid="total-uploaded">9<' in body
    assert 'data-testid="total-certified">3<' in body
    assert 'data-testid="total-late">3<' in body
    assert "數學老師" in body
    assert 'data-testid="teacher-selected">3<' in body  # each student selected their certified outcome
    assert signed_in(school, p["teacher"]).get("/admin/progress").status_code == 403
    for bad in ("year=abc", "year=2025", "semester=3"):
        assert admin.get(f"/admin/progress?{bad}").status_code == 400


def test_page_query_counts_do_not_grow_with_data(app, make_school, make_user, signed_in):
    small, ps = build_school(app, make_school, make_user, students=2, outcomes_each=1)
    large, pl = build_school(app, make_school, make_user, students=12, outcomes_each=3)
    counts = {}
    for name, school, p in (("small", small, ps), ("large", large, pl)):
        admin = signed_in(school, p["admin"])
        homeroom = signed_in(school, p["homeroom"])
        with count_queries(app) as dashboard:
            assert admin.get("/admin/progress?year=113&semester=1").status_code == 200
        with count_queries(app) as klass:
            assert homeroom.get("/class?year=113&semester=1").status_code == 200
        counts[name] = (dashboard["n"], klass["n"])
    assert counts["small"] == counts["large"], counts


def test_school_dashboard_before_any_deadline(app, make_school, make_user, signed_in):
    """Before the certification deadline nothing is late (and the page still works)."""
    school, p = build_school(app, make_school, make_user)
    with clock.frozen(datetime(2024, 10, 1, 4, 0, tzinfo=timezone.utc)):
        page = signed_in(school, p["admin"]).get("/admin/progress?year=113&semester=1")
    assert page.status_code == 200
    assert 'data-testid="total-late">0<' in page.get_data(as_text=True)
