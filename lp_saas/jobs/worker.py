"""``flask worker``: RQ workers inside the app context, with RQ's scheduler for retries and delays,
and the periodic-work scheduler (``jobs/scheduler.py``): every worker runs one, one of them leads."""
from __future__ import annotations

from flask import current_app

QUEUES = ("high", "default", "low")


def run_worker(*, burst: bool = False, queues=None, periodic: bool | None = None) -> bool:
    """Work the queues. ``periodic`` (default: unless ``burst``) also runs the periodic scheduler."""
    from rq import Worker

    from lp_saas.jobs.queue import queue_name, redis_connection, rq_queue

    names = queues or QUEUES
    connection = redis_connection()
    worker = Worker([rq_queue(n) for n in names], connection=connection,
                    name=None, log_job_description=False)
    current_app.logger.info("worker on %s", [queue_name(n) for n in names])
    scheduler = stop = None
    if periodic if periodic is not None else not burst:
        from lp_saas.jobs.scheduler import scheduler_for_app

        scheduler = scheduler_for_app(current_app)
        _thread, stop = scheduler.start()
    try:
        return worker.work(burst=burst, with_scheduler=True)
    finally:
        if stop is not None:
            stop.set()
            scheduler.release()
