"""Background work: an outbox row per job, dispatched after commit, run by RQ or in-process."""
import uuid

import pytest
import sqlalchemy as sa

from lp_saas.database import db
from lp_saas.jobs.models import Job
from lp_saas.jobs.queue import job_kind, submit
from lp_saas.jobs.runner import run_once
from tests.conftest import as_tenant

CALLS: dict[str, int] = {}


@job_kind("test_count", max_attempts=3, backoff=(0, 0))
def _count_job(job, progress):
    """Counts calls per marker; fails the first ``fail`` times."""
    marker = job.args["marker"]
    CALLS[marker] = CALLS.get(marker, 0) + 1
    progress(50)
    if CALLS[marker] <= job.args.get("fail", 0):
        raise RuntimeError("transient failure")
    return {"calls": CALLS[marker]}


def _job(app, school, job_id):
    with as_tenant(app, school):
        return db.session.get(Job, (school.id, job_id))


def _submit(app, school, commit=True, **args):
    with as_tenant(app, school):
        job = submit(school.id, "test_count", args)
        job_id = job.id
        if commit:
            db.session.commit()
        else:
            db.session.rollback()
        return job_id


def test_job_runs_after_commit_and_records_its_result(app, make_school, drain_jobs):
    school = make_school()
    marker = uuid.uuid4().hex
    job_id = _submit(app, school, marker=marker)
    drain_jobs()
    job = _job(app, school, job_id)
    assert job.status == "succeeded" and job.progress == 100 and job.result == {"calls": 1}
    assert job.attempts == 1 and job.finished_at is not None


def test_rolled_back_job_never_runs(app, make_school, drain_jobs):
    school = make_school()
    marker = uuid.uuid4().hex
    job_id = _submit(app, school, commit=False, marker=marker)
    drain_jobs()
    assert _job(app, school, job_id) is None
    assert marker not in CALLS


def test_retries_then_succeeds(app, make_school, drain_jobs):
    school = make_school()
    marker = uuid.uuid4().hex
    job_id = _submit(app, school, marker=marker, fail=2)
    for _ in range(4):  # RQ retries are scheduled; each burst picks up the next attempt
        drain_jobs()
        if _job(app, school, job_id).status == "succeeded":
            break
        if app.config.get("REDIS_URL"):
            _requeue_scheduled(app)
    job = _job(app, school, job_id)
    assert job.status == "succeeded" and job.attempts == 3 and CALLS[marker] == 3


def _requeue_scheduled(app):
    """Move RQ's scheduled retries to their queues now (a running scheduler does this on time)."""
    from rq.registry import ScheduledJobRegistry

    from lp_saas.jobs.queue import rq_queue
    from lp_saas.jobs.worker import QUEUES

    with app.app_context():
        for name in QUEUES:
            queue = rq_queue(name)
            registry = ScheduledJobRegistry(queue=queue)
            for rq_job_id in registry.get_job_ids():
                registry.remove(rq_job_id)
                queue.enqueue_job(queue.fetch_job(rq_job_id))


def test_gives_up_after_max_attempts_with_the_error(app, make_school, drain_jobs):
    school = make_school()
    marker = uuid.uuid4().hex
    job_id = _submit(app, school, marker=marker, fail=99)
    for _ in range(5):
        drain_jobs()
        if app.config.get("REDIS_URL"):
            _requeue_scheduled(app)
    job = _job(app, school, job_id)
    assert job.status == "failed" and job.attempts == 3
    assert "transient failure" in job.error


def test_a_finished_job_is_not_run_again(app, make_school, drain_jobs):
    """Idempotence at the runner: a job re-sent after it finished (a lost ack) does nothing."""
    school = make_school()
    marker = uuid.uuid4().hex
    job_id = _submit(app, school, marker=marker)
    drain_jobs()
    with app.app_context():
        assert run_once(school.id, job_id) == "skipped"
    assert CALLS[marker] == 1


def test_job_status_api_is_for_its_creator(app, make_school, make_user, api_for):
    school = make_school()
    owner, other = make_user(school, "teacher"), make_user(school, "teacher")
    with as_tenant(app, school):
        job = submit(school.id, "test_count", {"marker": uuid.uuid4().hex}, created_by=owner, dispatch=False)
        db.session.commit()
        job_id = job.id
    mine = api_for(school, owner).get(f"/api/v1/jobs/{job_id}")
    assert mine.status_code == 200 and mine.get_json()["status"] == "queued"
    assert set(mine.get_json()) >= {"status", "progress"}
    assert api_for(school, other).get(f"/api/v1/jobs/{job_id}").status_code == 404
    assert api_for(school, owner).get("/api/v1/jobs/nope").status_code == 404




def test_worker_command(app, make_school):
    """``flask worker --burst`` works the queues and exits (with Redis); without Redis it says why."""
    school = make_school()
    marker = uuid.uuid4().hex
    runner = app.test_cli_runner()
    if not app.config.get("REDIS_URL"):
        result = runner.invoke(args=["worker", "--burst"])
        assert result.exit_code != 0 and "REDIS_URL" in result.output
        return
    job_id = _submit(app, school, marker=marker)
    assert _job(app, school, job_id).status == "queued"
    result = runner.invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output
    assert _job(app, school, job_id).status == "succeeded"


def test_job_pages_show_the_creators_work_only(app, make_school, make_user, signed_in):
    school = make_school()
    owner, other = make_user(school, "teacher"), make_user(school, "teacher")
    with as_tenant(app, school):
        job = submit(school.id, "test_count", {"marker": uuid.uuid4().hex}, created_by=owner, dispatch=False)
        db.session.commit()
        job_id = job.id
    mine = signed_in(school, owner)
    assert "test_count" in mine.get("/jobs").get_data(as_text=True)
    assert mine.get(f"/jobs/{job_id}").status_code == 200
    theirs = signed_in(school, other)
    assert "test_count" not in theirs.get("/jobs").get_data(as_text=True)
    assert theirs.get(f"/jobs/{job_id}").status_code == 404
