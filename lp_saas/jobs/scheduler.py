"""Periodic work, declared as data with stable ids, fired once per slot however many workers run.

Each entry (:func:`periodic`) names a stable id, a schedule (a cron line read in Asia/Taipei, or
``every`` N seconds) and the function it calls with the slot's time. Every ``flask worker``
starts a :class:`Scheduler` thread; at most one of them leads at a time (a Redis lock renewed on
every pass, taken over when its holder dies). The leader claims each due slot with ``SET NX``
before it enqueues the entry, so a slot fires once even while two processes both believe they
lead (a paused leader whose lock expired). RQ's own cron has no such lock, hence this module.

What a slot fires is light: the entry's function runs in an RQ job and, for per-school work,
records one outbox job per school (deduplicated by slot), so the work itself is as reliable as any
other job. A slot missed while no worker ran is not replayed one by one: the most recent slot
fires once when a leader returns, and the sweeps themselves catch up (they judge by date).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from croniter import croniter

from lp_saas.i18n import TAIPEI

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    id: str
    func: object  # callable(slot: datetime) -> object
    cron: str | None = None  # minute hour day month weekday, Asia/Taipei
    every: int | None = None  # seconds
    queue: str = "low"
    timeout: int = 1800

    def latest_slot(self, now: datetime) -> datetime:
        """The most recent time at or before ``now`` this entry was due (aware, UTC)."""
        if self.every:
            epoch = int(now.timestamp()) // self.every * self.every
            return datetime.fromtimestamp(epoch, timezone.utc)
        local = now.astimezone(TAIPEI) + timedelta(seconds=1)  # get_prev excludes an exact match
        return croniter(self.cron, local).get_prev(datetime).astimezone(timezone.utc)


PERIODIC: dict[str, Periodic] = {}


def periodic(entry_id: str, *, cron: str | None = None, every: int | None = None, queue: str = "low",
             timeout: int = 1800):
    """Declare a function as periodic work with a stable id (one of ``cron`` or ``every``)."""
    if (cron is None) == (every is None):
        raise ValueError("give exactly one of cron= or every=")
    if cron is not None and not croniter.is_valid(cron):
        raise ValueError(f"bad cron line {cron!r}")

    def decorator(fn):
        PERIODIC[entry_id] = Periodic(entry_id, fn, cron=cron, every=every, queue=queue, timeout=timeout)
        return fn

    return decorator


def slot_stamp(slot: datetime) -> str:
    return slot.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


# Renew the lock only if we still hold it; a plain EXPIRE could extend a successor's lock.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class Scheduler:
    """One candidate leader. ``tick()`` is one pass: lead (or not), then fire what is due."""

    def __init__(self, connection, prefix: str, *, name: str | None = None, lock_ttl: float = 60.0,
                 enqueue=None):
        self.connection = connection
        self.prefix = prefix
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lock_key = f"{prefix}:scheduler:leader"
        self.lock_ttl_ms = int(lock_ttl * 1000)
        self._enqueue = enqueue or self._enqueue_rq

    def lead(self) -> bool:
        """Take the leader lock, or keep it if we hold it. True while we lead."""
        if self.connection.set(self.lock_key, self.name, nx=True, px=self.lock_ttl_ms):
            log.info("scheduler %s leads", self.name)
            return True
        return bool(self.connection.eval(_RENEW, 1, self.lock_key, self.name, self.lock_ttl_ms))

    def release(self) -> None:
        try:
            self.connection.eval(_RELEASE, 1, self.lock_key, self.name)
        except Exception:  # noqa: BLE001 - the lock expires by itself
            log.warning("scheduler %s could not release its lock", self.name)

    def _claim_key(self, entry: Periodic, slot: datetime) -> str:
        return f"{self.prefix}:scheduler:{entry.id}:{slot_stamp(slot)}"

    def claim(self, entry: Periodic, slot: datetime) -> bool:
        """Claim a slot of an entry (once, ever, by anyone). Kept a week: long after it matters."""
        return bool(self.connection.set(self._claim_key(entry, slot), self.name, nx=True, ex=7 * 86400))

    def tick(self, now: datetime | None = None) -> list[tuple[str, datetime]]:
        """Fire every entry whose latest slot is unclaimed, if we lead. Returns what fired."""
        now = now or datetime.now(timezone.utc)
        if not self.lead():
            return []
        fired = []
        for entry in list(PERIODIC.values()):
            slot = entry.latest_slot(now)
            if self.claim(entry, slot):
                try:
                    self._enqueue(entry, slot)
                except Exception:
                    # not sent: give the slot back, so that the next pass tries again
                    self.connection.delete(self._claim_key(entry, slot))
                    raise
                fired.append((entry.id, slot))
        return fired

    def _enqueue_rq(self, entry: Periodic, slot: datetime) -> None:
        from rq import Queue

        queue = Queue(f"{self.prefix}-{entry.queue}", connection=self.connection)
        queue.enqueue("lp_saas.jobs.scheduler.run_periodic", entry.id, slot.isoformat(),
                      job_id=f"periodic-{entry.id.replace('.', '_')}-{slot_stamp(slot)}", job_timeout=entry.timeout,
                      result_ttl=86400, failure_ttl=7 * 86400)

    def run(self, stop: threading.Event, poll: float = 15.0) -> None:
        """Tick every ``poll`` seconds until ``stop`` is set; release the lock on the way out."""
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except Exception:  # noqa: BLE001 - Redis blips must not kill the worker's scheduler
                    log.exception("scheduler tick failed")
                stop.wait(poll)
        finally:
            self.release()

    def start(self, poll: float = 15.0) -> tuple[threading.Thread, threading.Event]:
        stop = threading.Event()
        thread = threading.Thread(target=self.run, args=(stop, poll), name="lp-scheduler", daemon=True)
        thread.start()
        return thread, stop


def scheduler_for_app(app) -> Scheduler:
    from redis import Redis

    return Scheduler(Redis.from_url(app.config["REDIS_URL"]), app.config["RQ_QUEUE_PREFIX"])


def run_periodic(entry_id: str, slot_iso: str):
    """The RQ entry point of a fired slot: the entry's function inside an app context."""
    from lp_saas.jobs.runner import _after_fork_dispose, _app

    app = _app()
    _after_fork_dispose(app)
    with app.app_context():
        entry = PERIODIC[entry_id]
        return entry.func(datetime.fromisoformat(slot_iso))
