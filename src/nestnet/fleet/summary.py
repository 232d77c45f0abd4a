"""Per-host outcome of a fleet run, from the callback's JSON document (pure)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from .render import APPLY_TASK

Status = Literal["ok", "changed", "failed", "unreachable", "missing"]


@dataclass(frozen=True)
class HostResult:
    host: str
    status: Status
    changes: tuple[dict[str, str], ...] = field(default=())
    error: str = ""

    @property
    def good(self) -> bool:
        return self.status in ("ok", "changed")

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "status": self.status, "changes": list(self.changes), "error": self.error}


def _one_line(text: Any) -> str:
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def summarise(doc: dict[str, Any], plan_hosts: Iterable[str]) -> list[HostResult]:
    """One result per plan host, in plan order, then any host the inventory added.

    A plan host Ansible never ran on is ``missing`` (it is not in the inventory's group): the
    fleet is not applied, so it counts as a failure.
    """
    events: list[dict[str, Any]] = doc.get("events", [])
    stats: dict[str, dict[str, int]] = doc.get("stats", {})
    order = list(dict.fromkeys([*plan_hosts, *stats, *(e["host"] for e in events)]))
    out: list[HostResult] = []
    for host in order:
        mine = [e for e in events if e["host"] == host]
        if not mine and host not in stats:
            out.append(HostResult(host, "missing", error="not in the inventory's group nestnet_hosts"))
            continue
        bad = next((e for e in mine if e["status"] in ("unreachable", "failed")), None)
        if bad is not None:
            out.append(HostResult(host, bad["status"], error=_one_line(bad.get("msg")) or f"task {bad['task']!r} failed"))
            continue
        applied = next((e for e in mine if e["task"] == APPLY_TASK and e["status"] in ("ok", "changed")), None)
        if applied is None:
            out.append(HostResult(host, "failed", error=f"task {APPLY_TASK!r} did not run"))
            continue
        try:
            changes = tuple(json.loads(applied.get("stdout", ""))["changes"])
        except (ValueError, KeyError, TypeError):
            out.append(HostResult(host, "failed", error=f"nestnet printed no JSON: {_one_line(applied.get('stdout'))!r}"))
            continue
        out.append(HostResult(host, "changed" if changes else "ok", changes))
    return out
