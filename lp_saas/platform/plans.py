"""The plans a school can subscribe to: a small catalogue in code, each with its quotas.

A school's :class:`~lp_saas.platform.models.Subscription` copies the quotas when the plan is chosen,
so changing this catalogue never moves an existing school's limits; an operator changes a school's
plan in the console.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

GB = 1024 ** 3


@dataclass(frozen=True)
class Plan:
    key: str
    name: object  # a lazy, translated string
    max_students: int
    max_storage_bytes: int


PLANS: dict[str, Plan] = {p.key: p for p in (
    Plan("small", _l("Small school"), 600, 100 * GB),
    Plan("standard", _l("Standard"), 2000, 400 * GB),
    Plan("large", _l("Large school"), 5000, 1024 * GB),
)}
DEFAULT_PLAN = "standard"


def get_plan(key) -> Plan | None:
    return PLANS.get(key) if isinstance(key, str) else None


def format_bytes(size: int | None) -> str:
    """1.5 GB, 300 MB, 12 KB (binary units, like the storage servers report them)."""
    size = int(size or 0)
    for unit, factor in (("TB", 1024 ** 4), ("GB", GB), ("MB", 1024 ** 2), ("KB", 1024)):
        if size >= factor:
            value = size / factor
            text = f"{value:.1f}".rstrip("0").rstrip(".")
            return f"{text} {unit}"
    return f"{size} B"
