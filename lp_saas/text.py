"""Checks shared by every one-line text a person or an integrator sends (names, titles, codes)."""
from __future__ import annotations

import re

#: markup and control characters (NUL included: PostgreSQL refuses it in text) have no place in a name
UNSAFE_TEXT_RE = re.compile(r"[<>\x00-\x1f\x7f]")


def unsafe_line(value: str) -> bool:
    """Whether a one-line text holds markup or control characters."""
    return bool(UNSAFE_TEXT_RE.search(value))
