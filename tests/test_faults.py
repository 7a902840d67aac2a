"""Faults with the real services: a worker SIGKILLed in the middle of verification, Redis emptied with
jobs queued, the S3 server stopped during verification and started again, the database failing in the
middle of a transition. After each, every submitted file ends verified exactly once: nothing lost,
nothing duplicated, nothing stuck (the counts are printed: ``pytest -s``).

On the embedded run (no Redis, no storage server, jobs in-process) each fault has its nearest
equivalent: the process dies in the middle of a job, the process dies between a commit and the jobs
it would have run, the storage directory fails, the database fails.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from lp_saas import clock
from lp_saas.audit.models import AuditEvent
from lp_saas.database import db
from lp_saas.jobs.models import Job
from lp_saas.portfolio.models import CourseOutcome, StoredFile
from lp_saas.tenants.context import tenant_scope
from tests.conftest import base_test_config
from tests.test_lifecycle import PDF, add_course, add_file, app  # noqa: F401 - app
from tests.test_scheduler import start_worker, stop_worker

UPLOADS = 12


# --- helpers ---------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def other_app(app):
    """Another app on the same database (another process would see the same), with other services."""
    made = []

    def make(**overrides):
        made.append(_other_app(app, **overrides))
        return made[-1]

    yield make
    for an_app in made:
        with an_app.app_context():
            db.engine.dispose()


def _other_app(app, **overrides):
    from lp_saas import create_app
    from lp_saas.lifecycle import init_app

    config = base_test_config(app.config["SQLALCHEMY_DATABASE_URI"], Path(app.config["LOCAL_STORAGE_DIR"]).parent)
    config.update(overrides)
    other = create_app(config)
    init_app(other)
    return other


def drain(an_app) -> None:
    """Work every queued job of ``an_app``'s Redis (nothing to do in-process)."""
    if not an_app.config.get("REDIS_URL"):
        return
    from rq import SimpleWorker

    from lp_saas.jobs.queue import redis_connection, rq_queue
    from lp_saas.jobs.worker import QUEUES

    with an_app.app_context():
        SimpleWorker([rq_queue(q) for q in QUEUES], connection=redis_connection()).work(burst=True)


@pytest.fixture
def uploads_world(app, make_school, make_user):
    school = make_school()
    teacher, student = make_user(school, "teacher"), make_user(school, "student")
    with app.app_context(), tenant_scope(school):
        course_id = add_course(school, teacher).id
        db.session.commit()
    return {"school": school, "student": student, "course": course_id}


def submit_uploads(an_app, world, n=UPLOADS) -> list[uuid.UUID]:
    """``n`` outcomes whose files are in storage and whose clients said "uploaded": each is now
    ``verifying`` with a verification job, dispatched when this commits. Returns the file ids."""
    from lp_saas.portfolio.files import begin_verification

    school, student = world["school"], world["student"]
    file_ids = []
    with an_app.app_context(), tenant_scope(school):
        for i in range(n):
            outcome = CourseOutcome(tenant_id=school.id, id=uuid.uuid4(), student_id=student.id,
                                    course_id=world["course"], academic_year=113, semester=2, title=f"成果 {i}",
                                    status="verifying", created_by_id=student.id)
            db.session.add(outcome)
            db.session.flush()
            stored = add_file(school, "outcome", outcome.id, student.id, status="pending",
                              data=PDF + f"upload {i} {uuid.uuid4()}".encode())
            outcome.file_id = stored.id
            begin_verification(school, stored)
            file_ids.append(stored.id)
        db.session.commit()
    return file_ids


def reconcile(an_app, world, later: timedelta = timedelta(0)) -> list[dict]:
    """The reconciling sweep, run as if ``later`` had passed (the way the schedule runs it)."""
    from lp_saas.lifecycle import reconcile as sweep

    with clock.frozen(datetime.now(timezone.utc) + later), an_app.app_context(), tenant_scope(world["school"]):
        actions = sweep.sweep(world["school"])
        db.session.commit()
    return actions


def settle(an_app, world, rounds: int = 4) -> list[dict]:
    """Drain, then reconcile as the schedule would over the next hour, until nothing is left."""
    actions = []
    for k in range(1, rounds + 1):
        drain(an_app)
        actions += reconcile(an_app, world, later=timedelta(minutes=15 * k))
        drain(an_app)
    return actions


def tally(an_app, world, file_ids, scenario: str) -> dict:
    """submitted / verified / lost / duplicated / stuck, printed, for the files of one scenario."""
    school = world["school"]
    with an_app.app_context(), tenant_scope(school):
        files = {f.id: f for f in db.session.scalars(sa.select(StoredFile).where(
            StoredFile.tenant_id == school.id, StoredFile.id.in_(file_ids)))}
        verified = sum(1 for f in files.values() if f.status == "verified" and f.sha256 and f.verified_at)
        events = db.session.execute(
            sa.select(AuditEvent.target_id, sa.func.count()).where(
                AuditEvent.tenant_id == school.id, AuditEvent.action == "file.verified",
                AuditEvent.target_id.in_([str(i) for i in file_ids]))
            .group_by(AuditEvent.target_id)).all()
        submitted_events = db.session.execute(
            sa.select(AuditEvent.target_id, sa.func.count()).where(
                AuditEvent.tenant_id == school.id, AuditEvent.action == "outcome.submitted")
            .group_by(AuditEvent.target_id)).all()
        outcomes = list(db.session.scalars(sa.select(CourseOutcome).where(
            CourseOutcome.tenant_id == school.id, CourseOutcome.file_id.in_(file_ids))))
        live_jobs = db.session.scalar(sa.select(sa.func.count()).select_from(Job).where(
            Job.tenant_id == school.id, Job.status.in_(("queued", "running"))))
    counts = {
        "submitted": len(file_ids),
        "verified": verified,
        "lost": len(file_ids) - verified,
        "duplicated": sum(n - 1 for _id, n in events if n > 1) + sum(n - 1 for _id, n in submitted_events if n > 1),
        "stuck": live_jobs + sum(1 for o in outcomes if o.status != "submitted"),
    }
    print(f"\n[{scenario}] " + " ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


def assert_all_verified_once(counts, n=UPLOADS):
    assert counts == {"submitted": n, "verified": n, "lost": 0, "duplicated": 0, "stuck": 0}, counts


# --- 1. a worker SIGKILLed in the middle of verification ---------------------------------------------

def kill_worker_and_horse(worker: subprocess.Popen) -> None:
    """SIGKILL an RQ worker and its work-horse. The horse runs in a process group of its own
    (RQ calls setpgrp), so it is found among the worker's children, frozen first so it forks no other."""
    os.kill(worker.pid, signal.SIGSTOP)
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    assert children, "no work-horse was running"
    for pid in children:
        os.kill(int(pid), signal.SIGKILL)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)


class ProcessKilled(BaseException):
    """What an embedded process sees of SIGKILL: nothing after this line runs, not even an except."""


@pytest.mark.postgres  # a real worker process on Redis, killed with SIGKILL
def test_a_worker_sigkilled_in_the_middle_of_verification(app, uploads_world, tmp_path):
    file_ids = submit_uploads(app, uploads_world)
    worker = start_worker(app, tmp_path, slow_hash=2.0)
    school = uploads_world["school"]
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            with app.app_context(), tenant_scope(school):
                done = db.session.scalar(sa.select(sa.func.count()).select_from(StoredFile).where(
                    StoredFile.tenant_id == school.id, StoredFile.status == "verified"))
            if done >= 3:
                break
            time.sleep(0.1)
        time.sleep(0.6)  # the next work-horse is now hashing (2 s)
        kill_worker_and_horse(worker)  # a machine reset: both die, without warning
    finally:
        stop_worker(worker, signal.SIGKILL)
    with app.app_context(), tenant_scope(school):
        running = db.session.scalar(sa.select(sa.func.count()).select_from(Job).where(
            Job.tenant_id == school.id, Job.status == "running"))
    assert running == 1  # killed in the middle of a verification: its row says so
    actions = settle(app, uploads_world)
    assert [a["reason"] for a in actions if a["action"] == "resend_job"] == ["stale"]
    assert_all_verified_once(tally(app, uploads_world, file_ids, "worker SIGKILLed"))


def test_the_process_dies_in_the_middle_of_a_verification(app, uploads_world, monkeypatch):
    """The nearest thing on every run: the process running the jobs dies inside the fourth one;
    the jobs after it never start."""
    from lp_saas.jobs import queue
    from lp_saas.jobs.runner import run_in_process
    from lp_saas.portfolio import files

    monkeypatch.setattr(queue, "dispatch_job", lambda *a: None)  # this test runs them itself, below
    file_ids = submit_uploads(app, uploads_world)
    monkeypatch.undo()
    school = uploads_world["school"]
    with app.app_context(), tenant_scope(school):
        job_ids = list(db.session.scalars(sa.select(Job.id).where(Job.tenant_id == school.id, Job.kind == "verify_file")
                                          .order_by(Job.created_at)))
    original, calls = files.verify_stored_file, {"n": 0}

    def dies_on_the_fourth(*args):
        calls["n"] += 1
        if calls["n"] == 4:
            raise ProcessKilled()
        return original(*args)

    monkeypatch.setattr(files, "verify_stored_file", dies_on_the_fourth)
    with pytest.raises(ProcessKilled), app.app_context():
        for job_id in job_ids:
            run_in_process(school.id, job_id)
    monkeypatch.setattr(files, "verify_stored_file", original)
    with app.app_context(), tenant_scope(school):
        statuses = dict(db.session.execute(sa.select(Job.status, sa.func.count()).where(
            Job.tenant_id == school.id, Job.kind == "verify_file").group_by(Job.status)).all())
    assert statuses == {"succeeded": 3, "running": 1, "queued": UPLOADS - 4}
    actions = settle(app, uploads_world)
    assert len([a for a in actions if a["action"] == "resend_job"]) == UPLOADS - 3
    assert_all_verified_once(tally(app, uploads_world, file_ids, "process died mid-verification"))


# --- 2. Redis emptied with jobs queued ------------------------------------------------------------

@pytest.fixture
def private_redis():
    """A Redis server of our own, so that emptying it cannot disturb anything else."""
    binary = shutil.which("redis-server")
    if binary is None:  # pragma: no cover - the services run installs it
        pytest.fail("redis-server is not installed")
    port = _free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from redis import Redis

    connection = Redis(host="127.0.0.1", port=port)
    for _ in range(100):
        try:
            connection.ping()
            break
        except Exception:  # noqa: BLE001 - starting
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0", connection
    process.terminate()
    process.wait(timeout=10)


@pytest.mark.postgres  # Redis of its own, emptied with FLUSHALL
def test_redis_emptied_with_jobs_queued(app, uploads_world, private_redis, other_app):
    url, connection = private_redis
    on_private = other_app(REDIS_URL=url, RATELIMIT_STORAGE_URI=url)
    file_ids = submit_uploads(on_private, uploads_world)
    assert connection.llen(f"rq:queue:{on_private.config['RQ_QUEUE_PREFIX']}-high") == UPLOADS
    connection.flushall()  # Redis lost everything: the queue and every job's message
    actions = reconcile(on_private, uploads_world)  # at once: the messages are gone, no waiting
    assert sorted(a["reason"] for a in actions if a["action"] == "resend_job") == ["lost"] * UPLOADS
    settle(on_private, uploads_world)
    assert_all_verified_once(tally(on_private, uploads_world, file_ids, "Redis flushed"))


def test_the_process_dies_between_the_commit_and_its_jobs(app, uploads_world, monkeypatch):
    """On every run: the jobs were recorded, then the process died before sending or running any."""
    from lp_saas.jobs import queue

    monkeypatch.setattr(queue, "dispatch_job", lambda *a: None)
    file_ids = submit_uploads(app, uploads_world)
    monkeypatch.undo()
    assert reconcile(app, uploads_world) == []  # not yet: they may still be on their way
    actions = settle(app, uploads_world)
    reasons = [a["reason"] for a in actions if a["action"] == "resend_job"]
    assert len(reasons) == UPLOADS and set(reasons) <= {"not_sent", "stale"}
    assert_all_verified_once(tally(app, uploads_world, file_ids, "jobs lost before they ran"))


# --- 3. the S3 server stopped during verification and started again --------------------------------

class TcpProxy:
    """A TCP relay in front of the S3 server: ``stop()`` refuses connections and cuts open ones,
    as a storage server that goes down does; ``start()`` brings it back with its data."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.port = _free_port()
        self.listener = None
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()

    def start(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self):
        listener, self.listener = self.listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            listener.close()
        with self.lock:
            for sock in self.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self.sockets.clear()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def _storage_down_while(an_app, world, file_ids, stop, start):
    """Verification runs; storage goes down after the first three files; then comes back."""
    school = world["school"]

    def stop_after_three():
        deadline = time.time() + 60
        while time.time() < deadline:
            with an_app.app_context(), tenant_scope(school):
                done = db.session.scalar(sa.select(sa.func.count()).select_from(StoredFile).where(
                    StoredFile.tenant_id == school.id, StoredFile.status == "verified"))
            if done >= 3:
                break
            time.sleep(0.02)
        stop()

    watcher = threading.Thread(target=stop_after_three)
    watcher.start()
    drain(an_app)  # the worker (RQ installs signal handlers: the main thread)
    watcher.join(timeout=120)
    with an_app.app_context(), tenant_scope(school):
        statuses = dict(db.session.execute(sa.select(StoredFile.status, sa.func.count()).where(
            StoredFile.tenant_id == school.id).group_by(StoredFile.status)).all())
    # some verified before the outage, the rest wait; an unreachable server is never taken for a missing file
    assert 3 <= statuses.get("verified", 0) < len(file_ids) and "rejected" not in statuses, statuses
    start()


@pytest.mark.postgres  # the S3 server (moto, behind a relay we can cut) on loopback
def test_the_s3_server_stops_during_verification_and_starts_again(app, uploads_world, monkeypatch, other_app):
    target = urlsplit(app.config["S3_ENDPOINT"]).port
    proxy = TcpProxy(target)
    proxy.start()
    try:
        through = other_app(S3_ENDPOINT=f"http://127.0.0.1:{proxy.port}")
        with through.app_context():
            from lp_saas.storage import get_storage

            storage = get_storage()
        hashing = storage.fingerprint
        monkeypatch.setattr(storage, "fingerprint", lambda b, k, head=8192: (time.sleep(0.2), hashing(b, k, head))[1])
        file_ids = submit_uploads(through, uploads_world)
        _storage_down_while(through, uploads_world, file_ids, proxy.stop, proxy.start)
        settle(through, uploads_world)
        assert_all_verified_once(tally(through, uploads_world, file_ids, "S3 server stopped and started"))
    finally:
        proxy.stop()


def test_the_storage_fails_during_verification_and_comes_back(app, uploads_world, monkeypatch):
    """On every run: the storage backend fails after the third file (a dead disk mount, a server
    that answers with errors), then comes back."""
    from lp_saas.storage import StorageUnavailable, get_storage

    with app.app_context():
        storage = get_storage()
    state = {"down": False, "verified": 0}
    hashing = storage.fingerprint

    def fingerprint(bucket, key, head=8192):
        if state["down"]:
            raise StorageUnavailable("storage unreachable")
        state["verified"] += 1
        if state["verified"] == 3:
            state["down"] = True  # the storage fails after the third file
        return hashing(bucket, key, head=head)

    monkeypatch.setattr(storage, "fingerprint", fingerprint)
    file_ids = submit_uploads(app, uploads_world)
    drain(app)
    school = uploads_world["school"]
    with app.app_context(), tenant_scope(school):
        statuses = dict(db.session.execute(sa.select(StoredFile.status, sa.func.count()).where(
            StoredFile.tenant_id == school.id).group_by(StoredFile.status)).all())
    assert statuses == {"verified": 3, "verifying": UPLOADS - 3}  # waiting for a retry; nothing rejected
    state["down"] = False
    actions = settle(app, uploads_world)
    # in-process the jobs gave up (a new job per file); on RQ their retries wait (each is sent again)
    assert len([a for a in actions if a["action"] in ("reverify_file", "resend_job")]) == UPLOADS - 3
    assert_all_verified_once(tally(app, uploads_world, file_ids, "storage failed and came back"))


# --- 4. the database fails in the middle of a transition -------------------------------------------

def test_the_database_fails_in_the_middle_of_a_transition(app, uploads_world, monkeypatch):
    """The file's check is done and its new status set, then the database goes away before the
    commit (PostgreSQL: the server ends the connection; SQLite: the driver fails)."""
    from lp_saas.portfolio import files

    audit, failed = files.audit, {"n": 0}

    class FailingAudit:
        @staticmethod
        def record(tenant_id, actor, action, **kw):
            if action in ("file.verified", "file.rejected") and failed["n"] < 4:
                failed["n"] += 1
                if db.engine.dialect.name == "postgresql":
                    db.session.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())"))
                raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"))
            return audit.record(tenant_id, actor, action, **kw)

    monkeypatch.setattr(files, "audit", FailingAudit)
    file_ids = submit_uploads(app, uploads_world)
    drain(app)
    settle(app, uploads_world)
    assert failed["n"] == 4
    counts = tally(app, uploads_world, file_ids, "database failed mid-transition")
    assert_all_verified_once(counts)
    with app.app_context(), tenant_scope(uploads_world["school"]):
        attempts = db.session.scalar(sa.select(sa.func.sum(Job.attempts)).where(
            Job.tenant_id == uploads_world["school"].id, Job.kind == "verify_file"))
    assert attempts == UPLOADS + 4  # each failure cost one more attempt, nothing more
