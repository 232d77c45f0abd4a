"""How nestnet words counts for people: "1 endpoint", "2 endpoints" (unknown names: nestnet.names)."""

from __future__ import annotations



def plural(n: int, word: str, many: str | None = None) -> str:
    """``n`` and ``word`` as English counts it: 1 endpoint, 2 endpoints, 0 VMs."""
    return f"{n} {word if n == 1 else many or word + 's'}"
