"""Reminders before the upload window closes and before the certification deadline: e-mail over SMTP
(an aiosmtpd server on loopback) and dashboard notices, each reminder once, one day before and after."""
from __future__ import annotations

import socket
from datetime import date, datetime, timedelta, timezone
from email import message_from_bytes
from email.header import decode_header, make_header

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from lp_saas.academics.models import ClassMembership, SchoolClass, Term
from lp_saas.database import db
from lp_saas.jobs.models import Job
from lp_saas.notifications.models import Notification
from tests.conftest import as_tenant, post_form
from tests.test_lifecycle import add_course, add_outcome, app, of_kind, run_as_of, run_cli  # noqa: F401 - app

CEREMONY = date(2025, 6, 30)  # 113學年度第2學期休業式
UPLOAD_LAST_DAY = date(2025, 7, 14)  # + 14 days
CERTIFY_LAST_DAY = date(2025, 7, 21)  # + 21 days
GRADE12_CEREMONY = date(2025, 6, 6)  # grade 12's own semester-end: window closes 2025-06-20


class Inbox:
    """What an SMTP server on loopback received; ``stop()`` and ``start()`` it like a real outage."""

    def __init__(self, port: int):
        self.messages = []
        self.port = port
        self.controller = None

    def start(self):
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(app, monkeypatch):
    """An SMTP server on loopback, and the app pointed at it."""
    inbox = Inbox(_free_port())
    inbox.start()
    monkeypatch.setitem(app.config, "MAIL_SMTP_HOST", "127.0.0.1")
    monkeypatch.setitem(app.config, "MAIL_SMTP_PORT", inbox.port)
    monkeypatch.setitem(app.config, "MAIL_FROM", "lp-saas@school.example.test")
    yield inbox
    inbox.stop()


def subject(message) -> str:
    return str(make_header(decode_header(message["Subject"])))


@pytest.fixture
def term_world(app, make_school, make_user):
    school = make_school("yuanlin")
    teacher = make_user(school, "teacher", email="teacher@example.test")
    idle = make_user(school, "teacher", email="idle@example.test")
    lazy = make_user(school, "student", email="lazy@example.test")  # nothing uploaded
    offline = make_user(school, "student")  # nothing uploaded, no e-mail address: dashboard only
    busy = make_user(school, "student", email="busy@example.test")  # uploaded
    senior = make_user(school, "student", email="senior@example.test")  # grade 12: earlier window
    with as_tenant(app, school):
        db.session.add(Term(tenant_id=school.id, academic_year=113, semester=2, starts_on=date(2025, 2, 1),
                            ends_on=date(2025, 7, 31), ceremony_on=CEREMONY, grade12_ceremony_on=GRADE12_CEREMONY))
        klass = SchoolClass(tenant_id=school.id, academic_year=113, name="301", grade=12)
        db.session.add(klass)
        db.session.flush()
        db.session.add(ClassMembership(tenant_id=school.id, class_id=klass.id, student_id=senior.id))
        course = add_course(school, teacher, year=113, semester=2)
        other = add_course(school, idle, year=113, semester=2)
        for student in (lazy, offline, senior):
            add_outcome(school, student, other, status="withdrawn")  # withdrawn work does not count
        add_outcome(school, busy, course, status="submitted")
        add_outcome(school, busy, course, status="submitted")
        db.session.commit()
    return {"school": school, "teacher": teacher, "idle": idle, "lazy": lazy, "offline": offline, "busy": busy,
            "senior": senior}


def notices(app, school, user=None, kind=None):
    with as_tenant(app, school):
        query = sa.select(Notification).where(Notification.tenant_id == school.id)
        if user is not None:
            query = query.where(Notification.user_id == user.id)
        if kind is not None:
            query = query.where(Notification.kind == kind)
        return list(db.session.scalars(query.order_by(Notification.created_at)))


def test_upload_reminders_a_week_and_a_day_before_the_window_closes(app, term_world, smtp, drain_jobs):
    w = term_world
    school = w["school"]
    code, actions = run_as_of(app, school, UPLOAD_LAST_DAY - timedelta(days=8))
    assert code == 0 and not of_kind(actions, "send_reminder", kind="upload")

    code, actions = run_as_of(app, school, UPLOAD_LAST_DAY - timedelta(days=7))
    drain_jobs()
    sent = of_kind(actions, "send_reminder", kind="upload")
    assert {a["user_id"] for a in sent} == {str(w["lazy"].id), str(w["offline"].id)}
    assert {m["To"] for m in smtp.messages} == {"lazy@example.test"}
    message = smtp.messages[0]
    body = message.get_payload(decode=True).decode()
    assert "114年7月14日" in body and "113學年度第2學期" in subject(message)
    assert f"http://{school.slug}.localhost/outcomes" in body
    lazy_notice = notices(app, school, w["lazy"])
    assert len(lazy_notice) == 1 and lazy_notice[0].email_status == "sent" and lazy_notice[0].link == "/outcomes"
    assert notices(app, school, w["offline"])[0].email_status == "none"  # no address: the dashboard only
    assert notices(app, school, w["busy"]) == []

    for day in (UPLOAD_LAST_DAY - timedelta(days=7), UPLOAD_LAST_DAY - timedelta(days=2)):
        code, actions = run_as_of(app, school, day)  # once: the week's reminder is not sent again
        assert not of_kind(actions, "send_reminder", kind="upload")
    drain_jobs()
    assert len(smtp.messages) == 1

    code, actions = run_as_of(app, school, UPLOAD_LAST_DAY - timedelta(days=1))
    drain_jobs()
    assert {a["user_id"] for a in of_kind(actions, "send_reminder", kind="upload")} == \
        {str(w["lazy"].id), str(w["offline"].id)}
    assert len(smtp.messages) == 2 and len({m["Message-ID"] for m in smtp.messages}) == 2

    code, actions = run_as_of(app, school, UPLOAD_LAST_DAY + timedelta(days=1))  # closed: too late
    assert not of_kind(actions, "send_reminder", kind="upload")
    drain_jobs()  # (the certification reminder of that day goes to the teacher)
    assert [m["To"] for m in smtp.messages[2:]] == ["teacher@example.test"]


def test_grade_12_is_reminded_before_its_own_earlier_window_closes(app, term_world, smtp, drain_jobs):
    w = term_world
    grade12_last_day = GRADE12_CEREMONY + timedelta(days=14)
    code, actions = run_as_of(app, w["school"], grade12_last_day - timedelta(days=1))
    drain_jobs()
    assert {a["user_id"] for a in of_kind(actions, "send_reminder", kind="upload")} == {str(w["senior"].id)}
    assert [m["To"] for m in smtp.messages] == ["senior@example.test"]


def test_certification_reminders_go_to_teachers_with_pending_items(app, term_world, smtp, drain_jobs):
    w = term_world
    school = w["school"]
    code, actions = run_as_of(app, school, CERTIFY_LAST_DAY - timedelta(days=8))
    assert not of_kind(actions, "send_reminder", kind="certification")
    code, actions = run_as_of(app, school, CERTIFY_LAST_DAY - timedelta(days=7))
    drain_jobs()
    sent = of_kind(actions, "send_reminder", kind="certification")
    assert [a["user_id"] for a in sent] == [str(w["teacher"].id)]  # not the teacher with nothing waiting
    to_teachers = [m for m in smtp.messages if m["To"] != "lazy@example.test"]  # (the students' came the day before)
    assert [m["To"] for m in to_teachers] == ["teacher@example.test"] and "2" in subject(to_teachers[0])
    notice = notices(app, school, w["teacher"], kind="reminder_certification")
    assert len(notice) == 1 and notice[0].link == "/outcomes/queue"
    code, actions = run_as_of(app, school, CERTIFY_LAST_DAY - timedelta(days=7))
    assert not of_kind(actions, "send_reminder")
    code, actions = run_as_of(app, school, CERTIFY_LAST_DAY + timedelta(days=1))
    assert not of_kind(actions, "send_reminder", kind="certification")


def test_without_an_smtp_server_the_message_is_recorded(app, term_world, drain_jobs, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_SMTP_HOST", None)
    w = term_world
    run_as_of(app, w["school"], UPLOAD_LAST_DAY - timedelta(days=1))
    drain_jobs()
    notice = notices(app, w["school"], w["lazy"])
    assert len(notice) == 1 and notice[0].email_status == "recorded" and notice[0].email_to == "lazy@example.test"
    assert notice[0].body  # the message kept instead of sent


def test_an_smtp_outage_loses_no_reminder_and_sends_none_twice(app, term_world, smtp, drain_jobs):
    w = term_world
    school = w["school"]
    smtp.stop()  # the mail server is down while the reminders go out
    run_as_of(app, school, UPLOAD_LAST_DAY - timedelta(days=1))
    for _ in range(3):
        drain_jobs()
    with as_tenant(app, school):
        jobs = list(db.session.scalars(sa.select(Job).where(Job.tenant_id == school.id, Job.kind == "send_email")))
        assert jobs and all(j.status in ("queued", "failed") for j in jobs)
        an_hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
        for job in jobs:  # their retries ran out an hour ago
            job.status, job.created_at, job.finished_at = "failed", an_hour_ago, an_hour_ago
        db.session.commit()
    result, listed = run_cli(app, "jobs", "--stuck", "--tenant", school.slug)
    assert {j.get("stuck") for j in listed} == {"email_without_job"}
    smtp.start()
    result, actions = run_cli(app, "run", "--tenant", school.slug)
    assert result.exit_code == 0 and of_kind(actions, "resend_email")
    drain_jobs()
    assert [m["To"] for m in smtp.messages] == ["lazy@example.test"]
    assert notices(app, school, w["lazy"])[0].email_status == "sent"
    run_cli(app, "run", "--tenant", school.slug)
    drain_jobs()
    assert len(smtp.messages) == 1


def test_notices_page_and_marking_read(app, term_world, signed_in, drain_jobs, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_SMTP_HOST", None)
    w = term_world
    run_as_of(app, w["school"], UPLOAD_LAST_DAY - timedelta(days=1))
    web = signed_in(w["school"], w["lazy"])
    page = web.get("/notices").get_data(as_text=True)
    assert "113學年度第2學期" in page
    notice = notices(app, w["school"], w["lazy"])[0]
    # the reminder is on the dashboard too, for this student only
    dashboard = web.get("/dashboard").get_data(as_text=True)
    assert 'data-testid="dashboard-notices"' in dashboard and notice.subject in dashboard
    assert 'data-testid="dashboard-notices"' not in signed_in(w["school"], w["busy"]).get("/dashboard").get_data(as_text=True)
    other = signed_in(w["school"], w["busy"])
    assert post_form(other, f"/notices/{notice.id}/read", {}, form_path="/notices").status_code == 404
    response = post_form(web, f"/notices/{notice.id}/read", {}, form_path="/notices")
    assert response.status_code == 302
    assert notices(app, w["school"], w["lazy"])[0].read_at is not None
    assert 'data-testid="dashboard-notices"' not in web.get("/dashboard").get_data(as_text=True)  # read: gone
