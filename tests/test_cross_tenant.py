"""Anything of school A used at school B gets nothing, on every route (walked from app.url_map).

School A holds a real row of every kind a route argument names (a student, a course, an outcome,
a meeting, a signup …); each route is called at school B with A's ids in every argument.
"""
import hashlib
import uuid
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from lp_saas.academics.models import ClassMembership, Course, Enrollment, SchoolClass, StudentRecord, Term
from lp_saas.database import db, utcnow
from lp_saas.governance.models import Meeting, Training, WorkingGroupMember
from lp_saas.jobs.models import Job
from lp_saas.lifecycle.models import AccountExpiry, LegalHold
from lp_saas.notifications.models import Notification
from lp_saas.platform import services as platform
from lp_saas.platform.models import Office, OfficeSchool, PlatformMail, Signup
from lp_saas.portfolio.models import CourseOutcome, Performance, SelfStatement, StoredFile
from lp_saas.records.models import CadreRole, ClubRecord, CounselingRecord, DataConfirmation, ElectiveChoice
from lp_saas.storage import get_storage
from lp_saas.tenants.models import RuleSet
from tests.conftest import PASSWORD, as_tenant, csrf_token, school_client

SKIP_ENDPOINTS = {"static"}  # /static/<path:filename>: the product's own CSS and images, the same on every host

SESSION_ENDERS = {"accounts.logout", "api.revoke_token"}

#: Route arguments that name no object of a school: the same value means B's own thing at B
#: (``/selection/113`` is B's selection of year 113, ``/imports/students`` B's student import).
#: A route whose arguments are all of these is B's own page; only "no A data" is checked there.
SCHOOL_RELATIVE_ARGS = {"academic_year", "kind"}

#: Where one argument name stands for different kinds of row, the kind by endpoint
#: (the key into the fixture's ``ids``); every other argument is its own key.
ENDPOINT_ARGS = {
    "records.delete_cadre_role": {"row_id": "cadre_role_id"},
    "records.delete_club_record": {"row_id": "club_record_id"},
    "lifecycle.override": {"user_id": "expiring_staff_id"},  # a staff account with an expiry plan
    "academics.import_report": {"job_id": "import_job_id"},  # an import job (others are not reports)
    "lp_storage.download": {"token": "download_token"},  # the local backend's download link
    "platform.verify_signup": {"token": "verify_token"},  # apex only: a signup's e-mail link
    "platform_school.welcome": {"token": "welcome_token"},  # A's first admin's set-password link
}

ZERO_UUID = "00000000-0000-0000-0000-000000000000"


def _routes(app):
    # routes that end the caller's own session go last, so that the walk keeps its credentials
    rules = sorted(app.url_map.iter_rules(), key=lambda r: (r.endpoint in SESSION_ENDERS, r.rule))
    for rule in rules:
        if rule.endpoint in SKIP_ENDPOINTS:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def _key(rule, arg):
    return ENDPOINT_ARGS.get(rule.endpoint, {}).get(arg, arg)


def _unmapped(rule, ids):
    return {arg for arg in rule.arguments if arg not in SCHOOL_RELATIVE_ARGS and _key(rule, arg) not in ids}


def _names_a_object(rule, ids):
    """True when some argument of the route carries a real object of school A."""
    return any(arg not in SCHOOL_RELATIVE_ARGS and _key(rule, arg) in ids for arg in rule.arguments)


def _pdf(tag):
    return b"%PDF-1.4\n% " + tag.encode() + b"\n%%EOF\n"


def _stored_file(app, a, owner_kind, owner_id, student_id, filename, data, content_type="application/pdf"):
    """A verified file of A, with its bytes in A's bucket."""
    file_id = uuid.uuid4()
    key = f"{owner_kind}/{owner_id}/{file_id}"
    get_storage().put_bytes(a.bucket, key, data, content_type)
    digest = hashlib.sha256(data).hexdigest()
    now = utcnow()
    return StoredFile(tenant_id=a.id, id=file_id, owner_kind=owner_kind, owner_id=owner_id, student_id=student_id,
                      key=key, filename=filename, file_type=filename.rsplit(".", 1)[-1],
                      content_type=content_type, declared_size=len(data), declared_sha256=digest,
                      status="verified", size=len(data), sha256=digest, sniffed_type=filename.rsplit(".", 1)[-1],
                      upload_expires_at=now + timedelta(minutes=30), uploaded_at=now, verified_at=now)


@pytest.fixture
def two_schools(app, make_school, make_user):
    a = make_school("yuanlin", name="甲校高中")
    b = make_school("moe", name="乙校高中")
    a_admin = make_user(a, "school_admin", username=f"alpha{uuid.uuid4().hex[:6]}", display_name="甲校管理者")
    a_teacher = make_user(a, "teacher", display_name="甲校老師")
    a_student = make_user(a, "student", display_name="甲校學生", student_no="A0001")
    b_admin = make_user(b, "school_admin")
    year, today = 113, date.today()
    with as_tenant(app, b):
        b_versions = db.session.scalar(sa.select(sa.func.max(RuleSet.version)).where(RuleSet.tenant_id == b.id))
    with as_tenant(app, a):
        tid = a.id
        course = Course(tenant_id=tid, code="A-MATH-1", name="甲校數學", credits=4, academic_year=year,
                        semester=1, teacher_id=a_teacher.id)
        school_class = SchoolClass(tenant_id=tid, academic_year=year, name="甲301", grade=12,
                                   homeroom_teacher_id=a_teacher.id)
        term = Term(tenant_id=tid, academic_year=year, semester=1, starts_on=today - timedelta(days=60),
                    ceremony_on=today + timedelta(days=30), ends_on=today + timedelta(days=40))
        job = Job(tenant_id=tid, kind="provision_tenant", args={}, status="succeeded", created_by_id=a_admin.id)
        import_job = Job(tenant_id=tid, kind="import_file", args={"kind": "students"}, status="succeeded",
                         result={"rows": 1}, created_by_id=a_admin.id)
        db.session.add_all([course, school_class, term, job, import_job])
        db.session.flush()
        db.session.add_all([
            Enrollment(tenant_id=tid, course_id=course.id, student_id=a_student.id),
            ClassMembership(tenant_id=tid, class_id=school_class.id, student_id=a_student.id),
            ElectiveChoice(tenant_id=tid, student_id=a_student.id, course_id=course.id),
            StudentRecord(tenant_id=tid, student_id=a_student.id, guardian_name="甲校家長", address="甲校路 1 號"),
            LegalHold(tenant_id=tid, student_id=a_student.id, reason="甲校爭議", set_by_id=a_admin.id),
            AccountExpiry(tenant_id=tid, user_id=a_teacher.id, scheduled_expires_at=utcnow() + timedelta(days=10)),
        ])
        # portfolio items, each with a verified file in A's bucket
        outcome_id, performance_id = uuid.uuid4(), uuid.uuid4()
        outcome_file = _stored_file(app, a, "outcome", outcome_id, a_student.id, "甲校報告.pdf", _pdf("a-outcome"))
        performance_file = _stored_file(app, a, "performance", performance_id, a_student.id, "甲校獎狀.pdf",
                                        _pdf("a-performance"))
        image = _stored_file(app, a, "summary_image", a_student.id, a_student.id, "甲校照片.png",
                             b"\x89PNG\r\n\x1a\n" + b"\0" * 32, "image/png")
        db.session.add_all([outcome_file, performance_file, image])
        db.session.flush()
        outcome = CourseOutcome(tenant_id=tid, id=outcome_id, student_id=a_student.id, course_id=course.id,
                                academic_year=year, semester=1, title="甲校成果", status="submitted",
                                file_id=outcome_file.id, submitted_at=utcnow(), created_by_id=a_student.id)
        performance = Performance(tenant_id=tid, id=performance_id, student_id=a_student.id, academic_year=year,
                                  semester=1, title="甲校競賽", category="competition", details={},
                                  status="submitted", file_id=performance_file.id, submitted_at=utcnow(),
                                  created_by_id=a_student.id)
        statement = SelfStatement(tenant_id=tid, student_id=a_student.id, kind="autobiography",
                                  target="甲校目標學系", title="甲校自述", body="甲校自述內容")
        # records
        cadre = CadreRole(tenant_id=tid, student_id=a_student.id, academic_year=year, semester=1, level="class",
                          unit="甲301", title="甲校班長")
        club = ClubRecord(tenant_id=tid, student_id=a_student.id, academic_year=year, semester=1, club="甲校吉他社")
        counseling = CounselingRecord(tenant_id=tid, student_id=a_student.id, counselor_id=a_teacher.id,
                                      held_on=today, place="甲校輔導室", content="甲校諮詢", advice="甲校建議")
        confirmation = DataConfirmation(tenant_id=tid, student_id=a_student.id, academic_year=year, semester=1,
                                        area="registration", status="correction_requested", note="甲校更正")
        # governance, with minutes in A's bucket
        minutes_key = f"governance/{uuid.uuid4()}"
        get_storage().put_bytes(a.bucket, minutes_key, _pdf("a-minutes"), "application/pdf")
        meeting = Meeting(tenant_id=tid, held_on=today, kind="working_group", title="甲校會議",
                          minutes_key=minutes_key, minutes_filename="甲校紀錄.pdf", created_by_id=a_admin.id)
        member = WorkingGroupMember(tenant_id=tid, name="甲校委員", title="甲校教務主任", group_role="member")
        training = Training(tenant_id=tid, audience="teachers", held_on=today, unit="甲校教務處",
                            title="甲校研習", attendees=3, created_by_id=a_admin.id)
        notice = Notification(tenant_id=tid, user_id=a_admin.id, kind="reminder", subject="甲校通知",
                              body="甲校通知內容")
        # a rule-set version that A has and B has not
        a_versions = db.session.scalar(sa.select(sa.func.max(RuleSet.version)).where(RuleSet.tenant_id == tid))
        version = 1 + max(a_versions, b_versions)
        latest = db.session.scalar(sa.select(RuleSet).where(RuleSet.tenant_id == tid)
                                   .order_by(RuleSet.version.desc()).limit(1))
        rule_set = RuleSet(tenant_id=tid, version=version, adopted_on=today, adopted_by="甲校校務會議",
                           summary="甲校補充規定", data=dict(latest.data), created_by_id=a_admin.id)
        db.session.add_all([outcome, performance, statement, cadre, club, counseling, confirmation, meeting,
                            member, training, notice, rule_set])
        db.session.commit()
        storage = get_storage()
        storage.put_bytes(a.bucket, "outcomes/x/secret.pdf", b"%PDF-1.4 secret", "application/pdf")
        download_url = storage.presign_download(a.bucket, "outcomes/x/secret.pdf", filename="甲校秘密.pdf")
        welcome = platform.welcome_token(a.id, db.session.get(type(a_admin), (tid, a_admin.id)))
        ids = {
            "user_id": a_student.id, "student_id": a_student.id, "expiring_staff_id": a_teacher.id,
            "course_id": course.id, "class_id": school_class.id, "term_id": term.id,
            "job_id": job.id, "import_job_id": import_job.id,
            "outcome_id": outcome.id, "performance_id": performance.id, "statement_id": statement.id,
            "image_id": image.id,
            "cadre_role_id": cadre.id, "club_record_id": club.id, "record_id": counseling.id,
            "confirmation_id": confirmation.id,
            "meeting_id": meeting.id, "member_id": member.id, "training_id": training.id,
            "notice_id": notice.id, "version": version,
            # the local backend's token (with the S3 backend that route is off: 404 to any token)
            "download_token": download_url.rsplit("/", 1)[-1].split("?")[0], "welcome_token": welcome,
        }
    # Platform records about school A. Their routes (/console, /office, /signup/verify) exist on the
    # apex only, so none is excluded from the walk: at B they too must be a 404.
    with app.app_context():
        signup = Signup(school_name="甲校高中", school_code="074308", school_type="general", slug=a.slug,
                        contact_name="甲校聯絡人", contact_email="contact@a.example", plan="standard",
                        status="approved", tenant_id=a.id)
        office = Office(code=f"A-{uuid.uuid4().hex[:8].upper()}", name="甲校教育局")
        db.session.add_all([signup, office])
        db.session.flush()
        mail = PlatformMail(kind="school_welcome", recipient="contact@a.example", subject="甲校歡迎",
                            body="甲校", status="logged", signup_id=signup.id)
        db.session.add_all([mail, OfficeSchool(office_id=office.id, tenant_id=a.id)])
        db.session.commit()
        ids.update({"signup_id": signup.id, "mail_id": mail.id, "slug": a.slug, "code": office.code,
                    "verify_token": platform.verification_token(signup)})
    ids = {name: str(value) for name, value in ids.items()}
    return {"a": a, "b": b, "a_admin": a_admin, "a_student": a_student, "b_admin": b_admin, "ids": ids,
            "download_url": download_url,
            "markers": ["甲校", a_admin.username, a_student.username, "A0001", "a-outcome", "a-minutes"]}


def _path(rule, ids):
    values = {}
    for arg in rule.arguments:
        key = _key(rule, arg)
        if key in ids:
            values[arg] = ids[key]
        elif arg == "academic_year":
            values[arg] = 113  # the year of A's items; at B, B's own year
        elif arg == "kind":
            values[arg] = "students"  # an import kind; at B, B's own import
        else:
            values[arg] = ZERO_UUID  # unmapped: reported by the walk's last assertion
    from werkzeug.routing import Map

    adapter = Map([rule.empty()]).bind("localhost")
    return adapter.build(rule.endpoint, values)


def _no_markers(response, s, where):
    body = response.get_data()  # bytes: some answers are files (an import template)
    for marker in s["markers"]:
        assert marker.encode() not in body, f"{where}: school A's {marker!r} leaked"
    location = response.headers.get("Location", "")
    if location:  # a redirect never leads to A's host or to a file
        assert f"{s['a'].slug}." not in location, f"{where}: redirected to school A ({location})"
        assert "/_storage/" not in location and s["a"].bucket not in location, f"{where}: redirected to a file"


def _send(client, method, path, headers=None, csrf=None):
    kwargs = {"headers": headers or {}}
    if method in ("POST", "PUT", "PATCH"):
        if csrf:  # a page form: pass the CSRF check (with the client's own valid token) to reach the view
            kwargs["data"] = {"csrf_token": csrf}
        else:
            kwargs["json"] = {}
    return client.open(path, method=method, **kwargs)


def _b_clients(app, s, user, signed_in, api_for):
    """``call(method, rule, ids)``: the route with ``ids`` in its arguments, at B as ``user``."""
    web = signed_in(s["b"], user)
    api = api_for(s["b"], user)
    token = csrf_token(web, "/dashboard")

    def call(method, rule, ids):
        path = _path(rule, ids)
        if rule.rule.startswith("/api/"):
            return path, _send(api.client, method, path, api.headers())
        return path, _send(web, method, path, csrf=token)

    return call


def _walk_at_b(app, s, user, signed_in, api_for):
    """Every route, every method, at school B as ``user``, with school A's objects in the arguments.

    A route naming an object of A must answer 404. A 403 passes only where the same route with an
    unknown id gets the same 403: a role gate before any lookup (a staff member on a student's own
    route), which tells nothing about A's row. Returns the (method, rule) that answered 404."""
    call = _b_clients(app, s, user, signed_in, api_for)
    unknown = {name: ZERO_UUID for name in s["ids"]} | {"slug": "zz-none", "code": "ZZ-NONE", "version": "99999"}
    found_404, unmapped, wrong = set(), {}, []
    for rule, method in _routes(app):
        missing = _unmapped(rule, s["ids"])
        if missing:
            unmapped[rule.rule] = missing
        path, response = call(method, rule, s["ids"])
        where = f"{method} {path}"
        _no_markers(response, s, where)
        assert response.status_code != 500, where
        if not _names_a_object(rule, s["ids"]):
            continue
        status = response.status_code
        if status == 404:
            found_404.add((method, rule.rule))
        elif not (status == 403 and call(method, rule, unknown)[1].status_code == 403):
            wrong.append(f"{method} {rule.rule} ({rule.endpoint}): {status}")
    assert wrong == [], f"school A's ids at school B ({user.username}) must be a 404:\n" + "\n".join(wrong)
    # every kind of object the routes name was tried with a real row of A
    assert unmapped == {}, f"route arguments with no school-A object in the fixture: {unmapped}"
    return found_404


def test_another_schools_ids_are_404_for_a_full_admin(app, two_schools, signed_in, api_for):
    s = two_schools
    found_404 = _walk_at_b(app, s, s["b_admin"], signed_in, api_for)
    assert len(found_404) >= 70


def test_another_schools_ids_are_404_for_b_s_teacher_and_student(app, two_schools, signed_in, api_for, make_user):
    """The routes a full admin may not use (a student's own items) are tried by B's own users, so
    that every route naming an object of A reaches its lookup, and its 404, for some role of B."""
    s = two_schools
    found_404 = set()
    for role, fields in (("teacher", {}), ("student", {"student_no": "B0001"})):
        found_404 |= _walk_at_b(app, s, make_user(s["b"], role, **fields), signed_in, api_for)
    admin = _b_clients(app, s, s["b_admin"], signed_in, api_for)
    never_looked_up = []
    for rule, method in _routes(app):
        if _names_a_object(rule, s["ids"]) and (method, rule.rule) not in found_404:
            if admin(method, rule, s["ids"])[1].status_code != 404:
                never_looked_up.append(f"{method} {rule.rule}")
    assert never_looked_up == [], "no role of B reached these routes' lookup of A's id"


def test_a_session_cookie_of_school_a_is_worthless_at_b(app, two_schools, signed_in):
    s = two_schools
    a_client = signed_in(s["a"], s["a_admin"])
    cookie = a_client.get_cookie("session", domain=f"{s['a'].slug}.localhost")
    assert cookie is not None
    # the browser would never send it to B (host-only cookie); copy it there by hand anyway
    b_client = school_client(app, s["b"])
    b_client.set_cookie("session", cookie.value, domain=f"{s['b'].slug}.localhost")
    for rule, method in _routes(app):
        if rule.rule.startswith("/api/"):
            continue
        path = _path(rule, s["ids"])
        response = _send(b_client, method, path)
        where = f"{method} {path}"
        _no_markers(response, s, where)
        assert response.status_code not in (500,), where
        if response.status_code == 200:
            assert s["a_admin"].username not in response.get_data(as_text=True)
        if _names_a_object(rule, s["ids"]):
            assert not 200 <= response.status_code < 300, where
    assert b_client.get("/dashboard").status_code == 302


def test_a_token_of_school_a_is_worthless_at_b(app, two_schools, api_for):
    s = two_schools
    token = api_for(s["a"], s["a_admin"]).token
    b_api = api_for(s["b"])
    b_api.token = token
    for rule, method in _routes(app):
        if not rule.rule.startswith("/api/"):
            continue
        path = _path(rule, s["ids"])
        response = _send(b_api.client, method, path, b_api.headers())
        where = f"{method} {path}"
        _no_markers(response, s, where)
        if rule.endpoint not in ("api.openapi", "api.issue_token"):
            assert response.status_code in (401, 404), where


def test_a_file_url_of_school_a_is_404_at_b(app, two_schools):
    s = two_schools
    url = s["download_url"]
    if url.startswith("/"):  # local backend: the app serves it, and checks the school
        assert school_client(app, s["a"]).get(url).status_code == 200
        response = school_client(app, s["b"]).get(url)
        assert response.status_code == 404
        assert b"secret" not in response.get_data()
    else:  # S3: the bucket is A's own; B's bucket does not hold the key
        with app.app_context():
            from lp_saas.storage import ObjectMissing

            with pytest.raises(ObjectMissing):
                get_storage().stat(s["b"].bucket, "outcomes/x/secret.pdf")


def test_user_of_a_cannot_sign_in_at_b(two_schools, api_for):
    s = two_schools
    response = api_for(s["b"]).post("/api/v1/auth/token", {"username": s["a_admin"].username, "password": PASSWORD})
    assert response.status_code == 401
