#!/usr/bin/env python3
"""Portfolio page speed at 1× and 10× data, and file verification throughput.

    .venv/bin/python bench/portfolio_pages.py [--students 3000] [--items 10] [--requests 25]
        [--database-url URL] [--files 200 --file-kb 256]

Seeds a school of N students with ``--items`` course outcomes each (mixed states) into a fresh
database (SQLite in a temp folder unless ``--database-url`` names an empty PostgreSQL database),
then prints the median server time of the student's portfolio page, the teacher's certification
queue and the admin's progress dashboard, at 1× and 10× the data (10× the platform: ten such schools
in the database, measured at one; and, for information, one school ten times as large); then the verification job's
files per second beside the storage backend's own put+get rate (S3 if S3_ENDPOINT is set, else
the local-directory backend). Targets (issue 3): 10× data ≤ 1.5× the time; each page < 50 ms median
at 1× (dashboard < 200 ms); verification ≥ half the raw storage rate.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PASSWORD = "Bench-pass-2024"
STATUSES = ("submitted", "certified", "certified", "returned", "certified", "verifying", "submitted",
            "certified", "file_rejected", "certified")
NOW = datetime(2025, 1, 6, 4, 0, tzinfo=timezone.utc)  # 113學年度第1學期, inside the upload window


def make_app(database_url: str, instance: str):
    os.environ["LP_INSTANCE_PATH"] = instance
    from lp_saas import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": database_url, "LOCAL_STORAGE_DIR": f"{instance}/storage",
                       "TESTING": False, "LP_CLIENT_LOGIN_LIMIT": "100000 per minute"})


def migrate(app):
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()


def seed(app, slug: str, students: int, items: int) -> dict:
    """A school with ``students`` students in classes of 30, 10 courses a semester taught by teachers
    of 150 students each, ``items`` outcomes per student. Bulk inserts; returns who to sign in as."""
    import sqlalchemy as sa

    from lp_saas.academics.models import ClassMembership, Course, Enrollment, SchoolClass, Term
    from lp_saas.accounts.models import User
    from lp_saas.accounts.services import create_user, hash_password
    from lp_saas.database import db
    from lp_saas.portfolio.models import CourseOutcome, SelectionItem
    from lp_saas.roles.models import Role, UserRole
    from lp_saas.tenants import services
    from lp_saas.tenants.context import tenant_scope

    with app.app_context():
        tenant, _ = services.create_tenant(slug=slug, name=f"壓測高中 {slug}", school_code="999999")
        db.session.commit()
        services.provision_now(tenant)
        tenant = services.find_by_slug(slug)
        with tenant_scope(tenant):
            admin = create_user(tenant, "bench", username="admin", display_name="管理者", password=PASSWORD,
                                roles=["school_admin"])
            db.session.add(Term(tenant_id=tenant.id, academic_year=113, semester=1, starts_on=date(2024, 8, 1),
                                ends_on=date(2025, 1, 31), ceremony_on=date(2025, 1, 20)))
            roles = {r.key: r.id for r in db.session.scalars(sa.select(Role).where(Role.tenant_id == tenant.id))}
            pw = hash_password(PASSWORD)
            n_teachers = max(1, students // 150)
            teachers = [{"tenant_id": tenant.id, "id": uuid.uuid4(), "username": f"t{i}", "display_name": f"老師{i}",
                         "password_hash": pw, "status": "active"} for i in range(n_teachers)]
            kids = [{"tenant_id": tenant.id, "id": uuid.uuid4(), "username": f"s{i}", "display_name": f"學生{i}",
                     "password_hash": pw, "status": "active", "student_no": f"{i:06d}"} for i in range(students)]
            db.session.execute(sa.insert(User), teachers + kids)
            db.session.execute(sa.insert(UserRole), [{"tenant_id": tenant.id, "user_id": t["id"], "role_id": roles["teacher"]}
                                                     for t in teachers]
                               + [{"tenant_id": tenant.id, "user_id": k["id"], "role_id": roles["student"]} for k in kids])
            classes = [{"tenant_id": tenant.id, "id": uuid.uuid4(), "academic_year": 113, "name": f"{c:03d}",
                        "grade": 10 + c % 3, "homeroom_teacher_id": teachers[c % n_teachers]["id"]}
                       for c in range((students + 29) // 30)]
            db.session.execute(sa.insert(SchoolClass), classes)
            db.session.execute(sa.insert(ClassMembership), [
                {"tenant_id": tenant.id, "class_id": classes[i // 30]["id"], "student_id": k["id"]} for i, k in enumerate(kids)])
            # each teacher teaches 10 courses; each student takes 10 courses of their group's teacher set
            courses = [{"tenant_id": tenant.id, "id": uuid.uuid4(), "code": f"C{t}-{c}", "name": f"科目{c}",
                        "credits": 2, "academic_year": 113, "semester": 1, "teacher_id": teachers[t]["id"]}
                       for t in range(n_teachers) for c in range(10)]
            db.session.execute(sa.insert(Course), courses)
            enrol, outcomes, selections = [], [], []
            for i, kid in enumerate(kids):
                mine = courses[(i // 150 % n_teachers) * 10:(i // 150 % n_teachers) * 10 + 10]
                for course in mine:
                    enrol.append({"tenant_id": tenant.id, "course_id": course["id"], "student_id": kid["id"]})
                for n in range(items):
                    status = STATUSES[n % len(STATUSES)]
                    oid = uuid.uuid4()
                    outcomes.append({"tenant_id": tenant.id, "id": oid, "student_id": kid["id"],
                                     "course_id": mine[n % len(mine)]["id"], "academic_year": 113, "semester": 1,
                                     "title": f"作品 {n}", "description": "課堂作品", "status": status,
                                     "link_url": "https://example.org/work", "created_at": NOW, "updated_at": NOW,
                                     "revision": 1})
                    if status == "certified" and n < 6:
                        selections.append({"tenant_id": tenant.id, "student_id": kid["id"], "academic_year": 113,
                                           "item_kind": "outcome", "item_id": oid, "selected_at": NOW})
            for start in range(0, len(enrol), 20000):
                db.session.execute(sa.insert(Enrollment), enrol[start:start + 20000])
            for start in range(0, len(outcomes), 20000):
                db.session.execute(sa.insert(CourseOutcome), outcomes[start:start + 20000])
            for start in range(0, len(selections), 20000):
                db.session.execute(sa.insert(SelectionItem), selections[start:start + 20000])
            db.session.commit()
    return {"slug": slug, "admin": "admin", "teacher": "t0", "student": "s0"}


def signed_in(app, slug: str, username: str):
    client = app.test_client()
    base = f"http://{slug}.localhost"
    page = client.get("/login", base_url=base)
    import re

    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True)).group(1)
    response = client.post("/login", base_url=base, data={"csrf_token": token, "username": username,
                                                          "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    return client, base


def median_ms(client, base: str, path: str, requests: int) -> float:
    from lp_saas import clock

    times = []
    with clock.frozen(NOW):
        for i in range(requests + 3):
            start = time.perf_counter()
            response = client.get(path, base_url=base)
            elapsed = (time.perf_counter() - start) * 1000
            assert response.status_code == 200, (path, response.status_code)
            if i >= 3:  # warm-up
                times.append(elapsed)
    return statistics.median(times)


PAGES = (
    ("student portfolio", "student", "/portfolio?year=113&semester=1", 50.0),
    ("teacher queue", "teacher", "/outcomes/queue", 50.0),
    ("admin dashboard", "admin", "/admin/progress?year=113&semester=1", 200.0),
)


#: the data each run seeds: (label, schools, students per school as a multiple of --students)
SCALES = (
    ("1×", 1, 1),            # one school of N students
    ("10× platform", 10, 1),  # ten such schools in one database: the SaaS grown tenfold, measured at the first
    ("10× school", 1, 10),    # one school of 10 N students (larger than any real one), for information
)


def analyze(app) -> None:
    """Refresh the planner's statistics after the bulk seed, as a live database has them (PostgreSQL's
    autovacuum; on SQLite, ANALYZE); without them SQLite may pick an index that scans the school."""
    import sqlalchemy as sa

    from lp_saas.database import db

    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))


def bench_pages(args) -> None:
    results = {}
    for label, schools, multiple in SCALES:
        with tempfile.TemporaryDirectory() as instance:
            url = args.database_url or f"sqlite:///{instance}/bench.sqlite3"
            app = make_app(url, instance)
            if not args.database_url or label == "1×":
                migrate(app)
            started = time.perf_counter()
            seeded = [seed(app, f"bench{uuid.uuid4().hex[:6]}", args.students * multiple, args.items)
                      for _ in range(schools)]
            analyze(app)
            print(f"{label}: seeded {schools} school(s) of {args.students * multiple} students × {args.items} "
                  f"items in {time.perf_counter() - started:.1f} s", flush=True)
            who = seeded[0]
            for name, role, path, _target in PAGES:
                client, base = signed_in(app, who["slug"], who[role])
                results[(name, label)] = median_ms(client, base, path, args.requests)
    labels = [label for label, _s, _m in SCALES]
    print(f"\n{'page (median ms)':<20}" + "".join(f"{label:>15}" for label in labels)
          + f"{'platform/1×':>13}{'school/1×':>11}{'target':>10}")
    for name, _role, _path, target in PAGES:
        row = [results[(name, label)] for label in labels]
        print(f"{name:<20}" + "".join(f"{value:>15.1f}" for value in row)
              + f"{row[1] / row[0]:>13.2f}{row[2] / row[0]:>11.2f}{'<' + str(int(target)) + ' ms':>10}")
    print("targets: each page under its target at 1×; 10× the platform's data ≤ 1.5× the time. "
          "A 10× larger school is shown for information: the dashboard reads every item of its school.")


def bench_verification(args) -> None:
    from lp_saas import clock
    from lp_saas.database import db
    from lp_saas.jobs.runner import run_in_process
    from lp_saas.jobs.queue import submit
    from lp_saas.portfolio.files import begin_verification, create_upload
    from lp_saas.portfolio.models import StoredFile
    from lp_saas.storage import get_storage
    from lp_saas.tenants import services
    from lp_saas.tenants.context import tenant_scope

    with tempfile.TemporaryDirectory() as instance:
        app = make_app(f"sqlite:///{instance}/verify.sqlite3", instance)
        if os.environ.get("S3_ENDPOINT"):
            app.config.update(S3_ENDPOINT=os.environ["S3_ENDPOINT"], S3_ACCESS_KEY=os.environ.get("S3_ACCESS_KEY", "x"),
                              S3_SECRET_KEY=os.environ.get("S3_SECRET_KEY", "x"))
            from lp_saas import storage

            app.extensions["lp_storage"] = storage.storage_from_config(app.config)
        migrate(app)
        payload = b"%PDF-1.4\n" + os.urandom(args.file_kb * 1024)
        digest = hashlib.sha256(payload).hexdigest()
        with app.app_context():
            tenant, _ = services.create_tenant(slug=f"verify{uuid.uuid4().hex[:6]}", name="驗證", school_code="999998")
            db.session.commit()
            services.provision_now(tenant)
            tenant = services.find_by_slug(tenant.slug)
            storage = get_storage()
            # raw rate: put + get of the same bytes, as the verification reads them back
            start = time.perf_counter()
            for i in range(args.files):
                storage.put_bytes(tenant.bucket, f"raw/{i}", payload, "application/pdf")
                storage.get_bytes(tenant.bucket, f"raw/{i}")
            raw = args.files / (time.perf_counter() - start)
            with tenant_scope(tenant):
                ids = []
                for i in range(args.files):
                    stored, _upload = create_upload(tenant, owner_kind="bench", owner_id=uuid.uuid4(), student_id=None,
                                                    spec={"filename": f"f{i}.pdf", "size": len(payload),
                                                          "file_type": "pdf", "content_type": "application/pdf",
                                                          "sha256": digest})
                    storage.put_bytes(tenant.bucket, stored.key, payload, "application/pdf")
                    ids.append(stored.id)
                db.session.commit()
                files = [db.session.get(StoredFile, (tenant.id, i)) for i in ids]
                jobs = []
                for stored in files:
                    stored.status = "verifying"
                    jobs.append(submit(tenant.id, "verify_file", {"file_id": str(stored.id)}, dispatch=False))
                db.session.commit()
                job_ids = [j.id for j in jobs]
            start = time.perf_counter()
            for job_id in job_ids:
                assert run_in_process(tenant.id, job_id) == "succeeded"
            verified = args.files / (time.perf_counter() - start)
        backend = "S3 (" + os.environ["S3_ENDPOINT"] + ")" if os.environ.get("S3_ENDPOINT") else "local directory"
        print(f"\nverification on {backend}, {args.files} files of {args.file_kb} KB:")
        print(f"  storage put+get: {raw:8.1f} files/s")
        print(f"  verify_file job: {verified:8.1f} files/s  ({verified / raw:.2f}× the raw rate; target ≥ 0.5×)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=3000)
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--requests", type=int, default=25)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--file-kb", type=int, default=256)
    parser.add_argument("--skip-pages", action="store_true")
    parser.add_argument("--skip-files", action="store_true")
    args = parser.parse_args()
    if not args.skip_pages:
        bench_pages(args)
    if not args.skip_files:
        bench_verification(args)


if __name__ == "__main__":
    main()
