"""Bad files for course outcomes: refused when the ticket is asked for, or rejected by the verification job.

Real bytes go to the real ticket (the app's ``/_storage/upload`` on the embedded run, the S3 server in the
services run). moto does not enforce the POST policy, so where the local backend refuses a body at the
door the S3 run stores it and the job rejects it: both outcomes are accepted below, and either way the
outcome ends ``file_rejected`` with a reason and no rejected object is left in storage.
"""
from __future__ import annotations

import uuid

import pytest

from lp_saas.database import db
from lp_saas.jobs.queue import submit
from lp_saas.portfolio.models import StoredFile
from tests.conftest import as_tenant
from tests.test_outcomes import build_world, pdf, send_bytes, spec_of


PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"This program cannot be run"


@pytest.fixture
def world(app, make_school, make_user, api_for, drain_jobs):
    return build_world(app, make_school, make_user, api_for, drain_jobs)


def _rejected(world, outcome_id, reasons: set[str]) -> None:
    body = world.api(world.student).get(f"/api/v1/outcomes/{outcome_id}").get_json()
    assert body["status"] == "file_rejected", body
    assert body["reason_code"] in reasons, body
    assert body["reason"] and body["reason"] != body["reason_code"]  # a sentence, in the user's language
    assert body["file"]["status"] == "rejected"
    stored = world.stored(world.outcome(outcome_id).file_id)
    assert not world.in_storage(stored.key), "a rejected object must not stay in storage"


# (name, declared bytes, sent bytes, declared filename, declared type, acceptable reasons)
BAD_FILES = [
    ("hash mismatch", pdf("declared"), pdf("sent!!!!"), "報告.pdf", "application/pdf", {"hash_mismatch"}),
    ("png named .pdf", PNG, PNG, "掃描.pdf", "application/pdf", {"type_mismatch"}),
    ("text named .pdf", b"just some text, not a PDF at all\n", b"just some text, not a PDF at all\n", "notes.pdf",
     "application/pdf", {"type_mismatch"}),
    ("program named .pdf", EXE, EXE, "setup.pdf", "application/pdf", {"type_mismatch"}),
    ("pdf named .png", pdf("p"), pdf("p"), "photo.png", "image/png", {"type_mismatch"}),
    ("never uploaded", pdf("never"), None, "報告.pdf", "application/pdf", {"missing"}),
    # the local backend refuses these at the door (nothing stored); S3 stores them and the job rejects them
    ("empty object", pdf("twenty"), b"", "報告.pdf", "application/pdf", {"missing", "empty"}),
    ("bigger than declared", pdf("small"), pdf("small") + b"0" * 5000, "報告.pdf", "application/pdf",
     {"missing", "size_mismatch"}),
]


@pytest.mark.parametrize("name,declared,sent,filename,content_type,reasons", BAD_FILES,
                         ids=[case[0].replace(" ", "-") for case in BAD_FILES])
def test_a_bad_file_is_rejected_and_removed_from_storage(world, name, declared, sent, filename, content_type,
                                                        reasons):
    spec = spec_of(declared, filename=filename, content_type=content_type)
    outcome_id = world.upload(world.student, declared, spec=spec, send=False if sent is None else sent,
                              filename=filename, content_type=content_type)
    _rejected(world, outcome_id, reasons)


def test_a_file_over_the_school_s_new_limit_is_rejected(world):
    data = pdf("x" * 3000)
    created = world.create_file(world.student, data)
    send_bytes(world.app, world.school, created["upload"], data)
    world.amend(lambda rules: rules["uploads"]["file_types"].update(pdf=2000))  # stricter, before the check
    assert world.api(world.student).post(f"/api/v1/outcomes/{created['id']}/uploaded").status_code == 202
    world.drain()
    _rejected(world, created["id"], {"too_large"})


def test_a_type_the_school_drops_before_the_check_is_rejected(world):
    spec = spec_of(PNG, filename="photo.png", content_type="image/png")
    created = world.create_file(world.student, PNG, spec=spec)
    send_bytes(world.app, world.school, created["upload"], PNG, "photo.png", "image/png")
    world.amend(lambda rules: rules["uploads"]["file_types"].pop("png"))
    world.api(world.student).post(f"/api/v1/outcomes/{created['id']}/uploaded")
    world.drain()
    _rejected(world, created["id"], {"type_not_allowed"})


def test_a_png_and_a_pdf_that_are_what_they_say_are_accepted(world):
    world.submitted_pdf()
    png = world.upload(world.student, PNG, spec=spec_of(PNG, filename="作品照片.PNG", content_type="image/png"),
                       filename="作品照片.PNG", content_type="image/png")
    assert world.outcome(png).status == "submitted"


BAD_SPECS = [
    ({"size": 0}, "file.size"),
    ({"size": "1024"}, "file.size"),
    ({"size": True}, "file.size"),
    ({"size": -5}, "file.size"),
    ({"size": 4 * 1024 * 1024 + 1}, "file.size"),  # over the national 4 MB for a PDF
    ({"filename": "report.pdf.exe"}, "file.filename"),
    ({"filename": "report.exe.pdf"}, "file.filename"),
    ({"filename": "photo.php.jpg", "content_type": "image/jpeg"}, "file.filename"),
    ({"filename": "../../etc/passwd.pdf"}, "file.filename"),
    ({"filename": "..\\..\\boot.pdf"}, "file.filename"),
    ({"filename": "a/b.pdf"}, "file.filename"),
    ({"filename": ".hidden.pdf"}, "file.filename"),
    ({"filename": "bell\x07.pdf"}, "file.filename"),
    ({"filename": "virus.exe", "content_type": "application/octet-stream"}, "file.filename"),
    ({"filename": "notes.docx"}, "file.filename"),
    ({"filename": "noextension"}, "file.filename"),
    ({"filename": ""}, "file.filename"),
    ({"filename": "x" * 200 + ".pdf"}, "file.filename"),
    ({"content_type": "text/html"}, "file.content_type"),
    ({"content_type": "image/png"}, "file.content_type"),
    ({"content_type": ""}, "file.content_type"),
    ({"sha256": "abc"}, "file.sha256"),
    ({"sha256": "z" * 64}, "file.sha256"),
    ({"md5": "0" * 32}, "file"),
]


@pytest.mark.parametrize("change,field", BAD_SPECS, ids=[f"{f}-{i}" for i, (_c, f) in enumerate(BAD_SPECS)])
def test_a_bad_file_description_gets_no_ticket_and_stores_nothing(world, change, field):
    before = world.counts()
    spec = {**spec_of(pdf("spec")), **change}
    response = world.api(world.student).post("/api/v1/outcomes", {
        "course_id": str(world.course.id), "title": "報告", "file": spec})
    assert response.status_code == 422, response.get_json()
    details = response.get_json()["error"]["details"]
    assert field in details and details[field], details
    assert world.counts() == before


def test_the_school_s_stricter_size_limit_is_named_when_the_ticket_is_refused(world):
    world.amend(lambda rules: rules["uploads"]["file_types"].update(pdf=1024 * 1024))
    before = world.counts()
    response = world.api(world.student).post("/api/v1/outcomes", {
        "course_id": str(world.course.id), "title": "報告", "file": spec_of(pdf("big"), size=2 * 1024 * 1024)})
    assert response.status_code == 422
    assert "1" in response.get_json()["error"]["details"]["file.size"]
    assert world.counts() == before


def test_verifying_again_changes_nothing(world):
    """The job is idempotent: a second run (a resend by the sweep) leaves a certified outcome as it is."""
    outcome_id = world.submitted_pdf()
    assert world.api(world.teacher).post(f"/api/v1/outcomes/{outcome_id}/certify").status_code == 200
    file_id = world.outcome(outcome_id).file_id
    with as_tenant(world.app, world.school):
        submit(world.school.id, "verify_file", {"file_id": str(file_id)})
        db.session.commit()
    world.drain()
    assert world.outcome(outcome_id).status == "certified"
    assert world.stored(file_id).status == "verified"


def test_an_earlier_revision_s_file_cannot_move_the_outcome(world):
    """A late verdict on the file of an older revision (say, the reconciling sweep's) is ignored."""
    first = world.create_file(world.student, pdf("old"))
    old_file = world.outcome(first["id"]).file_id
    assert world.api(world.student).post(f"/api/v1/outcomes/{first['id']}/revise", {
        "title": "改用連結", "link": "https://example.org/v2"}).get_json()["status"] == "submitted"
    with as_tenant(world.app, world.school):
        stored = db.session.get(StoredFile, (world.school.id, old_file))
        stored.status = "verifying"
        submit(world.school.id, "verify_file", {"file_id": str(old_file)})  # never sent: it will be "missing"
        db.session.commit()
    world.drain()
    assert world.stored(old_file).status == "rejected"
    assert world.outcome(first["id"]).status == "submitted"


def test_the_stored_file_keeps_the_user_s_name_but_not_as_its_key(world):
    outcome_id = world.submitted_pdf()
    stored = world.stored(world.outcome(outcome_id).file_id)
    assert stored.filename == "期末報告.pdf"
    assert "期末報告" not in stored.key and stored.key.startswith(f"outcomes/{outcome_id}/")
    assert stored.sha256 == stored.declared_sha256 and stored.size == stored.declared_size
    uuid.UUID(stored.key.rsplit("/", 1)[1])
