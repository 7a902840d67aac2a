"""The one clock every deadline is judged by. Tests freeze it; nothing else reads the wall clock
for a rule (windows, deadlines, caps)."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime, timezone

from lp_saas.i18n import TAIPEI

_frozen: datetime | None = None


def now() -> datetime:
    """The current time, aware, in UTC."""
    return _frozen if _frozen is not None else datetime.now(timezone.utc)


def today() -> date:
    """Today in Taiwan (deadlines are Taiwan calendar days)."""
    return now().astimezone(TAIPEI).date()


@contextmanager
def frozen(at: datetime):
    """Freeze the clock at ``at`` (tests and ``lifecycle run --as-of``)."""
    global _frozen
    if at.tzinfo is None:
        raise ValueError("freeze the clock with an aware datetime")
    previous, _frozen = _frozen, at.astimezone(timezone.utc)
    try:
        yield
    finally:
        _frozen = previous
