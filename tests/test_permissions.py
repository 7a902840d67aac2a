"""The one permission check: the school's role matrix plus scope (own, course, class, child, all)."""
import pytest
import sqlalchemy as sa

from lp_saas.academics.models import ClassMembership, Course, Enrollment, ParentLink, SchoolClass
from lp_saas.accounts.models import User
from lp_saas.database import db
from lp_saas.roles import permissions
from tests.conftest import as_tenant, post_form


@pytest.fixture
def school_world(app, make_school, make_user):
    school = make_school("moe")
    people = {
        "t1": make_user(school, "teacher"), "t2": make_user(school, "teacher"),
        "homeroom": make_user(school, "teacher", "homeroom_teacher"),
        "s1": make_user(school, "student"), "s2": make_user(school, "student"),
        "parent": make_user(school, "parent"), "registrar": make_user(school, "registrar"),
        "admin": make_user(school, "school_admin"),
    }
    with as_tenant(app, school):
        c1 = Course(tenant_id=school.id, code="MATH-1", name="數學", credits=4, academic_year=113, semester=1,
                    teacher_id=people["t1"].id)
        c2 = Course(tenant_id=school.id, code="ENG-1", name="英文", credits=4, academic_year=113, semester=1,
                    teacher_id=people["t2"].id)
        klass = SchoolClass(tenant_id=school.id, academic_year=113, name="301", grade=12,
                            homeroom_teacher_id=people["homeroom"].id)
        db.session.add_all([c1, c2, klass])
        db.session.flush()
        db.session.add_all([
            Enrollment(tenant_id=school.id, course_id=c1.id, student_id=people["s1"].id),
            Enrollment(tenant_id=school.id, course_id=c2.id, student_id=people["s2"].id),
            ClassMembership(tenant_id=school.id, class_id=klass.id, student_id=people["s1"].id),
            ParentLink(tenant_id=school.id, parent_id=people["parent"].id, student_id=people["s1"].id),
        ])
        db.session.commit()
        courses = {"c1": c1.id, "c2": c2.id}
    return school, people, courses


def _can(app, school, user, permission, **target):
    with as_tenant(app, school):
        fresh = db.session.get(User, (school.id, user.id))
        return permissions.can(fresh, permission, **target)


def test_scopes(app, school_world):
    school, p, c = school_world
    s1, s2 = p["s1"].id, p["s2"].id
    # a course teacher: certifies own course's outcomes only; sees students of own courses
    assert _can(app, school, p["t1"], "course_outcome.certify", course_id=c["c1"])
    assert not _can(app, school, p["t1"], "course_outcome.certify", course_id=c["c2"])
    assert _can(app, school, p["t1"], "course_outcome.view", student_id=s1)
    assert not _can(app, school, p["t1"], "course_outcome.view", student_id=s2)
    # a homeroom teacher: their class
    assert _can(app, school, p["homeroom"], "basic_data.view", student_id=s1)
    assert not _can(app, school, p["homeroom"], "basic_data.view", student_id=s2)
    # a parent: their own child, read-only
    assert _can(app, school, p["parent"], "course_outcome.view", student_id=s1)
    assert not _can(app, school, p["parent"], "course_outcome.view", student_id=s2)
    assert not _can(app, school, p["parent"], "course_outcome.upload", student_id=s1)
    assert not _can(app, school, p["parent"], "selection.edit", student_id=s1)
    # a student: their own items
    assert _can(app, school, p["s1"], "course_outcome.upload", student_id=s1)
    assert not _can(app, school, p["s1"], "course_outcome.view", student_id=s2)
    assert not _can(app, school, p["s1"], "course_outcome.certify", course_id=c["c1"])
    # registrar: the whole school
    assert _can(app, school, p["registrar"], "basic_data.view", student_id=s2)
    assert _can(app, school, p["registrar"], "roster.edit")
    assert not _can(app, school, p["t1"], "roster.edit")


def test_deputy_certifies_the_course(app, school_world):
    school, p, c = school_world
    assert not _can(app, school, p["t2"], "course_outcome.certify", course_id=c["c1"])
    with as_tenant(app, school):
        db.session.get(Course, (school.id, c["c1"])).deputy_id = p["t2"].id
        db.session.commit()
    assert _can(app, school, p["t2"], "course_outcome.certify", course_id=c["c1"])


def test_student_filter_matches_can(app, school_world):
    school, p, _c = school_world
    with as_tenant(app, school):
        for key in ("t1", "homeroom", "parent", "s1", "registrar"):
            user = db.session.get(User, (school.id, p[key].id))
            condition = permissions.student_filter(user, "basic_data.view" if key != "t1" else "course_outcome.view",
                                                   User.id)
            visible = set(db.session.scalars(sa.select(User.id).where(User.tenant_id == school.id, condition,
                                                                      User.id.in_([p["s1"].id, p["s2"].id]))))
            perm = "basic_data.view" if key != "t1" else "course_outcome.view"
            expected = {s for s in (p["s1"].id, p["s2"].id) if permissions.can(user, perm, student_id=s)}
            assert visible == expected, key


def test_roster_api_scope(school_world, api_for):
    school, p, _c = school_world
    teacher = api_for(school, p["t1"])
    assert teacher.get(f"/api/v1/users/{p['s1'].id}").status_code == 200
    assert teacher.get(f"/api/v1/users/{p['s2'].id}").status_code == 404
    parent = api_for(school, p["parent"])
    assert parent.get(f"/api/v1/users/{p['s1'].id}").status_code == 403
    student = api_for(school, p["s1"])
    assert student.post("/api/v1/users", {"username": "x", "display_name": "x", "roles": ["student"]}).status_code == 403


def test_me_lists_roles_and_permissions(school_world, api_for):
    school, p, _c = school_world
    me = api_for(school, p["homeroom"]).get("/api/v1/me").get_json()
    assert set(me["roles"]) == {"teacher", "homeroom_teacher"}
    assert me["tenant"] == school.slug
    assert "course_outcome.certify" in me["permissions"]
    assert me["scopes"]["basic_data.view"] == ["class"]


def test_matrix_page_changes_what_a_role_may_do(app, school_world, signed_in):
    school, p, c = school_world
    admin = signed_in(school, p["admin"])
    page = admin.get("/admin/roles")
    assert page.status_code == 200 and "course_outcome.certify" in page.get_data(as_text=True)
    from lp_saas.roles.services import matrix, roles_of_school

    with as_tenant(app, school):
        roles = {r.id: r.key for r in roles_of_school(school.id)}
        form = {f"cell-{roles[rid]}-{perm}": scope for rid, cells in matrix(school.id).items()
                for perm, scope in cells.items()}
    del form["cell-teacher-course_outcome.certify"]
    assert post_form(admin, "/admin/roles", form).status_code == 302
    assert not _can(app, school, p["t1"], "course_outcome.certify", course_id=c["c1"])
    with as_tenant(app, school):
        from lp_saas.audit.models import AuditEvent

        assert db.session.scalar(sa.select(AuditEvent).where(AuditEvent.tenant_id == school.id,
                                                             AuditEvent.action == "roles.change"))


@pytest.mark.parametrize("change, field", [
    ({"cell-parent-selection.edit": "child"}, "parent.selection.edit"),
    ({"cell-teacher-roles.edit": "course"}, "teacher.roles.edit"),
    ({"cell-school_admin-roles.edit": ""}, "school_admin.roles.edit"),
    ({"cell-student-nonexistent.perm": "all"}, None),
])
def test_matrix_bad_values_are_refused_and_nothing_changes(app, school_world, signed_in, change, field):
    school, p, _c = school_world
    admin = signed_in(school, p["admin"])
    from lp_saas.roles.services import matrix, roles_of_school

    with as_tenant(app, school):
        before = matrix(school.id)
        roles = {r.id: r.key for r in roles_of_school(school.id)}
    form = {f"cell-{roles[rid]}-{perm}": scope for rid, cells in before.items() for perm, scope in cells.items()}
    form.update(change)
    form = {k: v for k, v in form.items() if v}
    response = post_form(admin, "/admin/roles", form)
    if field is None:  # an unknown permission name is not a cell of the form: ignored, nothing changes
        assert response.status_code == 302
    else:
        assert response.status_code == 422
        assert field in response.get_data(as_text=True)
    with as_tenant(app, school):
        assert matrix(school.id) == before


def test_teacher_cannot_edit_the_matrix(school_world, signed_in):
    school, p, _c = school_world
    teacher = signed_in(school, p["t1"])
    assert post_form(teacher, "/admin/roles", {}, form_path="/dashboard").status_code == 403
