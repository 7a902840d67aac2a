"""The audit log: written by services for changes and personal-data reads; searchable by school admins."""
from tests.conftest import login, post_form


def test_logins_and_changes_are_audited_and_searchable(make_school, make_user, signed_in, client_for):
    school = make_school()
    admin = make_user(school, "school_admin")
    teacher = make_user(school, "teacher")
    login(client_for(school), teacher.username, "wrong-pass-1")
    client = signed_in(school, admin)
    post_form(client, f"/admin/users/{teacher.id}", {"toggle-submit": "1"})
    page = client.get("/admin/audit?action=user.")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    for action in ("user.login", "user.login_failed", "user.disabled", "user.created"):
        assert action in body, action
    only_failed = client.get(f"/admin/audit?action=user.login_failed&actor={teacher.username}").get_data(as_text=True)
    assert "user.login_failed" in only_failed and "user.disabled" not in only_failed


def test_audit_search_bad_values_are_a_clear_400(make_school, make_user, signed_in):
    school = make_school()
    client = signed_in(school, make_user(school, "school_admin"))
    for query in ("since=2024-99-01", "until=yesterday", "student_id=not-a-uuid"):
        response = client.get(f"/admin/audit?{query}")
        assert response.status_code == 400, query


def test_audit_shows_only_this_schools_events(make_school, make_user, signed_in):
    school_a, school_b = make_school(), make_school()
    a_admin = make_user(school_a, "school_admin", username="auditalpha")
    signed_in(school_a, a_admin)
    b_client = signed_in(school_b, make_user(school_b, "school_admin"))
    assert "auditalpha" not in b_client.get("/admin/audit").get_data(as_text=True)
