"""Periodic work: declared as data with stable ids, fired once per slot however many workers run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

import lp_saas.lifecycle.sweeps  # noqa: F401 - declares the periodic work
from lp_saas.database import db
from lp_saas.i18n import TAIPEI
from lp_saas.jobs.models import Job
from lp_saas.jobs.scheduler import PERIODIC, Scheduler, slot_stamp
from tests.conftest import REDIS_URL, RUN_ID, as_tenant, base_test_config
from tests.test_lifecycle import app  # noqa: F401 - the app with the lifecycle registered

WORKER_SCRIPT = """
import json, os, time
import lp_saas.portfolio.outcomes  # the outcome's file callback
from lp_saas import create_app
from lp_saas.lifecycle import init_app

app = create_app(json.loads(os.environ["LP_TEST_APP_CONFIG"]))
init_app(app)
slow = float(os.environ.get("LP_TEST_SLOW_HASH") or 0)
if slow:  # make verification slow enough to be killed in the middle of it
    from lp_saas.storage import get_storage
    with app.app_context():
        storage = get_storage()
    original = storage.fingerprint
    def slow_fingerprint(bucket, key, head=8192):
        time.sleep(slow)
        return original(bucket, key, head)
    storage.fingerprint = slow_fingerprint
from lp_saas.jobs.worker import run_worker
with app.app_context():
    run_worker(periodic=os.environ.get("LP_TEST_PERIODIC") == "1")
"""


def start_worker(app, tmp_path, *, periodic=False, slow_hash=0.0, config=None) -> subprocess.Popen:
    """A worker process, the way ``flask worker`` runs one (``run_worker`` in the app context),
    in its own process group so that it and its work-horse can be killed together."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    config = config or base_test_config(app.config["SQLALCHEMY_DATABASE_URI"],
                                        Path(app.config["LOCAL_STORAGE_DIR"]).parent)
    env = dict(os.environ, LP_TEST_APP_CONFIG=json.dumps(config), LP_TEST_PERIODIC="1" if periodic else "",
               LP_TEST_SLOW_HASH=str(slow_hash), PYTHONPATH=os.getcwd())
    with open(tmp_path / f"worker-{uuid.uuid4().hex[:6]}.log", "w") as log:
        return subprocess.Popen([sys.executable, str(script)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop_worker(process: subprocess.Popen, sig: int = 15) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait(timeout=10)


def test_periodic_work_is_declared_with_stable_ids():
    assert PERIODIC["lifecycle.daily"].cron == "30 0 * * *"
    assert PERIODIC["lifecycle.reconcile"].every == 300
    daily, frequent = PERIODIC["lifecycle.daily"], PERIODIC["lifecycle.reconcile"]
    before = datetime(2025, 7, 31, 0, 29, tzinfo=TAIPEI)
    at = datetime(2025, 7, 31, 0, 30, tzinfo=TAIPEI)
    assert daily.latest_slot(before) == datetime(2025, 7, 30, 0, 30, tzinfo=TAIPEI)
    assert daily.latest_slot(at) == at and daily.latest_slot(at + timedelta(hours=23)) == at
    assert frequent.latest_slot(at + timedelta(minutes=7, seconds=12)) == at + timedelta(minutes=5)
    assert slot_stamp(at) == "20250730T163000Z"


def test_a_daily_slot_records_one_sweep_job_per_school_however_often_it_fires(app, make_school, drain_jobs):
    from lp_saas.lifecycle.sweeps import schedule_daily_sweeps

    schools = [make_school(), make_school("yuanlin")]
    slot = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=400)  # a slot no other test used
    with app.app_context():
        first = schedule_daily_sweeps(slot)
        second = schedule_daily_sweeps(slot)
    assert first["submitted"] >= 2 and second["submitted"] == 0
    drain_jobs()
    for school in schools:
        with as_tenant(app, school):
            jobs = list(db.session.scalars(sa.select(Job).where(Job.tenant_id == school.id,
                                                                 Job.kind == "lifecycle_sweep")))
            assert len(jobs) == 1 and jobs[0].args["slot"] == slot_stamp(slot)
            assert jobs[0].status == "succeeded" and jobs[0].result["as_of"] == slot.astimezone(TAIPEI).date().isoformat()


def _redis():
    from redis import Redis

    return Redis.from_url(REDIS_URL)


@pytest.mark.postgres  # needs the services run's Redis
def test_one_leader_among_many_schedulers_and_each_slot_once():
    prefix = f"lptest-{RUN_ID}-sched-{uuid.uuid4().hex[:6]}"
    fired: list[tuple[str, str, str]] = []
    lock = threading.Lock()

    def recorder(name):
        def enqueue(entry, slot):
            with lock:
                fired.append((name, entry.id, slot_stamp(slot)))
        return enqueue

    schedulers = [Scheduler(_redis(), prefix, name=f"worker-{i}", lock_ttl=1.0, enqueue=recorder(f"worker-{i}"))
                  for i in range(8)]
    now = datetime(2025, 7, 31, 0, 31, tzinfo=TAIPEI)
    barrier = threading.Barrier(len(schedulers))

    def tick(scheduler):
        barrier.wait()
        scheduler.tick(now)

    threads = [threading.Thread(target=tick, args=(s,)) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(e for _n, e, _s in fired) == ["lifecycle.daily", "lifecycle.reconcile"]
    leaders = {n for n, _e, _s in fired}
    assert len(leaders) == 1
    leader = next(s for s in schedulers if s.name in leaders)

    for scheduler in schedulers:  # everybody ticks again in the same slot: nothing
        scheduler.tick(now + timedelta(seconds=30))
    assert len(fired) == 2

    leader.release()  # the leader stops (or dies and its lock expires): another takes over
    follower = next(s for s in schedulers if s is not leader)
    assert follower.tick(now + timedelta(minutes=1)) == []  # same slots: claimed already
    fired_next = follower.tick(now + timedelta(minutes=5))
    assert [e for e, _s in fired_next] == ["lifecycle.reconcile"]
    assert leader.tick(now + timedelta(minutes=5)) == []  # the old leader no longer leads

    time.sleep(1.2)  # the new leader stops renewing: its lock expires after lock_ttl
    third = next(s for s in schedulers if s not in (leader, follower))
    assert [e for e, _s in third.tick(now + timedelta(minutes=10))] == ["lifecycle.reconcile"]
    assert len(fired) == 4
    _redis().delete(*_redis().keys(f"{prefix}:*"))


@pytest.mark.postgres  # needs the services run's Redis and a database other processes can share
def test_three_worker_processes_schedule_the_daily_sweeps_once(app, make_school, tmp_path):
    school = make_school()
    workers = [start_worker(app, tmp_path, periodic=True) for _ in range(3)]
    try:
        slot = PERIODIC["lifecycle.daily"].latest_slot(datetime.now(timezone.utc))
        deadline = time.time() + 90
        jobs = []
        while time.time() < deadline:
            with as_tenant(app, school):
                jobs = list(db.session.scalars(sa.select(Job).where(Job.tenant_id == school.id,
                                                                     Job.kind == "lifecycle_sweep")))
            if jobs and all(j.status == "succeeded" for j in jobs):
                break
            time.sleep(1)
        time.sleep(3)  # let any second scheduler do its worst
        with as_tenant(app, school):
            jobs = list(db.session.scalars(sa.select(Job).where(Job.tenant_id == school.id,
                                                                 Job.kind == "lifecycle_sweep")))
        assert len(jobs) == 1, [(j.args, j.status) for j in jobs]
        assert jobs[0].args["slot"] == slot_stamp(slot) and jobs[0].status == "succeeded"
        leader = _redis().get(f"{app.config['RQ_QUEUE_PREFIX']}:scheduler:leader")
        assert leader is not None
    finally:
        for worker in workers:
            stop_worker(worker)
    assert _redis().get(f"{app.config['RQ_QUEUE_PREFIX']}:scheduler:leader") is None  # released on the way out


@pytest.mark.postgres  # needs the services run's Redis
def test_a_slot_that_could_not_be_sent_is_tried_again():
    prefix = f"lptest-{RUN_ID}-sched-{uuid.uuid4().hex[:6]}"
    sent, failing = [], {"on": True}

    def enqueue(entry, slot):
        if failing["on"]:
            raise ConnectionError("Redis went away between the claim and the enqueue")
        sent.append(entry.id)

    scheduler = Scheduler(_redis(), prefix, enqueue=enqueue)
    now = datetime(2025, 7, 31, 0, 31, tzinfo=TAIPEI)
    with pytest.raises(ConnectionError):
        scheduler.tick(now)
    failing["on"] = False
    scheduler.tick(now)
    assert sorted(sent) == ["lifecycle.daily", "lifecycle.reconcile"]
    _redis().delete(*_redis().keys(f"{prefix}:*"))
