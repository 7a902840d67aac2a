"""Governance records inside a school (working group, meetings with minutes, rule-set adoption,
trainings) and the school's branding (logo in its bucket, colours): permission-checked pages on the
school's host whose records feed the regional office's compliance figures."""
from __future__ import annotations

import io
import struct
import zlib
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa

from lp_saas import clock
from lp_saas.database import db
from tests.conftest import as_tenant, csrf_token, post_form, school_client

AS_OF = datetime(2025, 3, 10, 4, 0, tzinfo=timezone.utc)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def png_bytes(width=4, height=4, rgb=(29, 78, 137)) -> bytes:
    """A real (tiny) PNG image."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture
def school_and_admin(make_school, make_user, signed_in):
    school = make_school("yuanlin")
    admin = make_user(school, "school_admin")
    return school, admin, signed_in(school, admin)


def _rows(app, school, model):
    with as_tenant(app, school):
        return list(db.session.scalars(sa.select(model).where(model.tenant_id == school.id)))


# --- governance ---------------------------------------------------------------------------------------

def test_governance_pages_need_the_permission(app, make_school, make_user, signed_in):
    school = make_school("yuanlin")
    student = signed_in(school, make_user(school, "student"))
    assert student.get("/governance").status_code == 403
    assert student.get("/governance/meetings/new").status_code == 403
    token = csrf_token(student, "/dashboard")
    assert student.post("/governance/members", data={"csrf_token": token, "member-name": "x"}).status_code == 403
    anonymous = school_client(app, school)
    assert anonymous.get("/governance").status_code == 302
    # the 員林 template's units that keep these records hold the permission
    library = signed_in(school, make_user(school, "library_media"))
    assert library.get("/governance").status_code == 200


def test_members_and_trainings_are_recorded_and_validated(app, school_and_admin):
    from lp_saas.governance.models import Training, WorkingGroupMember

    school, _admin, web = school_and_admin
    ok = post_form(web, "/governance/members", {"member-name": "陳校長", "member-title": "校長",
                                                "member-group_role": "convener"}, form_path="/governance")
    assert ok.status_code == 302
    bad = post_form(web, "/governance/members", {"member-name": "", "member-title": "<b>",
                                                 "member-group_role": "king"}, form_path="/governance")
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    assert "請輸入成員姓名" in text and "角括號" in text
    assert [m.name for m in _rows(app, school, WorkingGroupMember)] == ["陳校長"]
    with clock.frozen(AS_OF):
        good = post_form(web, "/governance/trainings", {
            "training-audience": "teachers", "training-held_on": "2024-10-02", "training-unit": "教務處",
            "training-title": "學習歷程檔案認證研習", "training-attendees": "85"}, form_path="/governance")
        assert good.status_code == 302
        for field, value in (("training-audience", "aliens"), ("training-held_on", "2024-13-40"),
                             ("training-attendees", "-3"), ("training-title", "")):
            data = {"training-audience": "students", "training-held_on": "2024-10-02", "training-unit": "圖書館",
                    "training-title": "圖書館利用教育", "training-attendees": "30", field: value}
            assert post_form(web, "/governance/trainings", data, form_path="/governance").status_code == 422, field
        page = web.get("/governance").get_data(as_text=True)
    assert [t.title for t in _rows(app, school, Training)] == ["學習歷程檔案認證研習"]
    assert "學習歷程檔案認證研習" in page and 'data-testid="trainings-teachers">1 / 1' in page
    member = _rows(app, school, WorkingGroupMember)[0]
    assert post_form(web, f"/governance/members/{member.id}/delete", {}, form_path="/governance").status_code == 302
    assert _rows(app, school, WorkingGroupMember) == []


def test_meeting_with_pdf_minutes_adopting_a_rule_set_version(app, school_and_admin):
    from lp_saas.governance.models import Meeting, MeetingRuleSet
    from lp_saas.storage import get_storage
    from lp_saas.tenants.models import RuleSet

    school, _admin, web = school_and_admin
    versions = sorted(_rows(app, school, RuleSet), key=lambda r: r.version)
    latest = versions[-1]
    data = {"held_on": "2025-02-20", "kind": "working_group", "title": "113學年度第2學期工作小組會議",
            "rule_sets": [str(latest.id)], "minutes": (io.BytesIO(PDF), "會議紀錄.pdf")}
    token = csrf_token(web, "/governance/meetings/new")
    with clock.frozen(AS_OF):
        response = web.post("/governance/meetings/new", data={"csrf_token": token, **data},
                            content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:600]
    [meeting] = _rows(app, school, Meeting)
    assert meeting.minutes_filename == "會議紀錄.pdf" and meeting.minutes_size == len(PDF)
    assert meeting.minutes_key.startswith(f"governance/meetings/{meeting.id}/")
    with app.app_context():
        assert get_storage().get_bytes(school.bucket, meeting.minutes_key) == PDF
    assert [link.rule_set_id for link in _rows(app, school, MeetingRuleSet)] == [latest.id]
    download = web.get(f"/governance/meetings/{meeting.id}/minutes")
    assert download.status_code == 302
    # the office sees the adoption meeting of the rules in force
    from lp_saas.platform.oversight import school_figures
    from lp_saas.tenants.models import Tenant

    with clock.frozen(AS_OF), app.app_context():
        figures = school_figures(db.session.get(Tenant, school.id))
    assert figures["compliance"]["rule_set"]["version"] == latest.version
    assert figures["compliance"]["rule_set"]["meeting_on"] == "2025-02-20"
    assert figures["compliance"]["working_group_meetings_this_semester"] == 1

    # refusals: the same version twice, not a PDF, too large; nothing stored
    def post(**changes):
        body = {"held_on": "2025-02-21", "kind": "school_affairs", "title": "校務會議", **changes}
        with clock.frozen(AS_OF):
            return web.post("/governance/meetings/new", data={"csrf_token": token, **body},
                            content_type="multipart/form-data")

    assert post(rule_sets=[str(latest.id)]).status_code == 422
    fake = post(minutes=(io.BytesIO(b"MZ\x90\x00 not a pdf at all"), "minutes.pdf"))
    assert fake.status_code == 422 and "PDF" in fake.get_data(as_text=True)
    big = post(minutes=(io.BytesIO(PDF + b"0" * (10 * 1024 * 1024)), "big.pdf"))
    assert big.status_code == 422 and "10 MB" in big.get_data(as_text=True)
    assert post(kind="party").status_code == 422
    assert post(held_on="yesterday").status_code == 422
    assert len(_rows(app, school, Meeting)) == 1
    with app.app_context():
        keys = get_storage().list_keys(school.bucket, "governance/")
    assert keys == [meeting.minutes_key]
    # deleting the meeting removes its minutes and frees the version
    assert post_form(web, f"/governance/meetings/{meeting.id}/delete", {}, form_path="/governance").status_code == 302
    assert _rows(app, school, Meeting) == [] and _rows(app, school, MeetingRuleSet) == []
    with app.app_context():
        assert get_storage().list_keys(school.bucket, "governance/") == []


def test_governance_records_of_another_school_are_404(app, make_school, make_user, signed_in):
    from lp_saas.governance.models import Meeting, Training

    a = make_school()
    with as_tenant(app, a):
        meeting = Meeting(tenant_id=a.id, held_on=date(2025, 2, 20), kind="working_group", title="甲校會議",
                          minutes_key="governance/meetings/x/y", minutes_filename="x.pdf")
        training = Training(tenant_id=a.id, audience="students", held_on=date(2025, 2, 1), unit="教務處",
                            title="甲校研習", attendees=1)
        db.session.add_all([meeting, training])
        db.session.commit()
        ids = (meeting.id, training.id)
    b = make_school()
    web = signed_in(b, make_user(b, "school_admin"))
    assert web.get(f"/governance/meetings/{ids[0]}/minutes").status_code == 404
    for path in (f"/governance/meetings/{ids[0]}/delete", f"/governance/trainings/{ids[1]}/delete"):
        assert post_form(web, path, {}, form_path="/governance").status_code == 404
    assert "甲校" not in web.get("/governance").get_data(as_text=True)
    with as_tenant(app, a):
        assert db.session.get(Meeting, (a.id, ids[0])) is not None


# --- branding ------------------------------------------------------------------------------------------

def test_logo_and_colours(app, school_and_admin, make_school):
    from lp_saas.storage import get_storage
    from lp_saas.tenants.models import Tenant

    school, _admin, web = school_and_admin
    token = csrf_token(web, "/admin/branding")
    logo = png_bytes()
    response = web.post("/admin/branding", data={"csrf_token": token, "primary_color": "#7A1F3D",
                                                 "accent_color": "#f2a900", "logo": (io.BytesIO(logo), "校徽.png")},
                        content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    with app.app_context():
        tenant = db.session.get(Tenant, school.id)
        assert tenant.primary_color == "#7a1f3d" and tenant.logo_key.endswith(".png")
        first_key = tenant.logo_key
        assert get_storage().get_bytes(school.bucket, first_key) == logo
    site = school_client(app, school)
    served = site.get("/branding/logo")
    assert served.status_code == 200 and served.mimetype == "image/png" and served.data == logo
    home = site.get("/").get_data(as_text=True)
    assert 'data-testid="school-logo"' in home and "/branding/logo" in home
    assert "#7a1f3d" in site.get("/branding.css").get_data(as_text=True)
    # another school shows its own initial, and has no logo to serve
    other = make_school()
    assert 'data-testid="school-logo"' not in school_client(app, other).get("/").get_data(as_text=True)
    assert school_client(app, other).get("/branding/logo").status_code == 404

    # refusals: bad colour, a text file named .png, too large; nothing changes
    def post(**fields):
        body = {"csrf_token": token, "primary_color": "#123456", "accent_color": "#abcdef", **fields}
        return web.post("/admin/branding", data=body, content_type="multipart/form-data")

    assert post(primary_color="red").status_code == 422
    assert post(accent_color="#12345g").status_code == 422
    fake = post(logo=(io.BytesIO(b"<svg onload=alert(1)>"), "logo.png"))
    assert fake.status_code == 422 and "PNG" in fake.get_data(as_text=True)
    big = post(logo=(io.BytesIO(png_bytes() + b"\0" * (1024 * 1024)), "big.png"))
    assert big.status_code == 422 and "1 MB" in big.get_data(as_text=True)
    with app.app_context():
        tenant = db.session.get(Tenant, school.id)
        assert tenant.primary_color == "#7a1f3d" and tenant.logo_key == first_key

    # a new logo replaces the old object; removing it falls back to the initial
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 + b"\xff\xd9"
    assert post(logo=(io.BytesIO(jpeg), "new.jpg")).status_code == 302
    with app.app_context():
        tenant = db.session.get(Tenant, school.id)
        assert tenant.logo_key.endswith(".jpg")
        assert get_storage().list_keys(school.bucket, "branding/") == [tenant.logo_key]
    assert site.get("/branding/logo").mimetype == "image/jpeg"
    assert post(remove_logo="y").status_code == 302
    assert site.get("/branding/logo").status_code == 404


def test_branding_needs_the_permission(app, make_school, make_user, signed_in):
    school = make_school()
    teacher = signed_in(school, make_user(school, "teacher"))
    assert teacher.get("/admin/branding").status_code == 403
    token = csrf_token(teacher, "/dashboard")
    assert teacher.post("/admin/branding", data={"csrf_token": token, "primary_color": "#000000",
                                                 "accent_color": "#000000"}).status_code == 403


def test_storage_quota_applies_to_minutes(app, school_and_admin):
    from lp_saas.platform import services as platform
    from lp_saas.platform.models import Subscription
    from lp_saas.tenants.models import Tenant

    school, _admin, web = school_and_admin
    with app.app_context():
        platform.set_plan(db.session.get(Tenant, school.id), "small", "test:fixture")
        db.session.get(Subscription, school.id).max_storage_bytes = 10
        db.session.commit()
    token = csrf_token(web, "/governance/meetings/new")
    response = web.post("/governance/meetings/new", data={
        "csrf_token": token, "held_on": "2025-02-20", "kind": "working_group", "title": "會議",
        "minutes": (io.BytesIO(PDF), "m.pdf")}, content_type="multipart/form-data")
    assert response.status_code == 422 and "儲存空間已滿" in response.get_data(as_text=True)
