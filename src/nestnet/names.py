"""Lists of names in messages: a few entries, then a count, and a "did you mean" for a typo.

An error about one unknown host in a fabric of 1,000 must not list all 1,000 (issue 24).
"""

from __future__ import annotations

import difflib
from typing import Iterable

MOST = 5  # names shown before "and N more"


def few(names: Iterable[str], most: int = MOST) -> str:
    """``a, b, c, d, e and 995 more`` (``none`` for no names)."""
    items = [str(n) for n in names]
    if not items:
        return "none"
    head = ", ".join(items[:most])
    return head if len(items) <= most else f"{head} and {len(items) - most} more"


def unknown(name: str, known: Iterable[str], most: int = MOST) -> str:
    """What follows "no host named 'x'": the closest known name, then a few of them, e.g.
    `` (did you mean 'h12'? known: h0, h1, h2, h3, h4 and 995 more)``."""
    items = [str(n) for n in known]
    close = difflib.get_close_matches(str(name), items, n=1, cutoff=0.6)
    mean = f"did you mean {close[0]!r}? " if close else ""
    return f" ({mean}known: {few(items, most)})"
