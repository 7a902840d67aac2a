"""``flask worker``: RQ workers inside the app context, with the scheduler for retries and delays."""
from __future__ import annotations

from flask import current_app

QUEUES = ("high", "default", "low")


def run_worker(*, burst: bool = False, queues=None) -> bool:
    from rq import Worker

    from lp_saas.jobs.queue import queue_name, redis_connection, rq_queue

    names = queues or QUEUES
    connection = redis_connection()
    worker = Worker([rq_queue(n) for n in names], connection=connection,
                    name=None, log_job_description=False)
    current_app.logger.info("worker on %s", [queue_name(n) for n in names])
    return worker.work(burst=burst, with_scheduler=True)
