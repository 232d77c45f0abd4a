"""Per-host outcome of a fleet run, from the callback's JSON document (pure)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from .render import APPLY_TASK, DOCTOR_TASK

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


@dataclass(frozen=True)
class DoctorResult:
    host: str
    status: str  # healthy | problems | failed | unreachable | missing
    diagnosis: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = self.diagnosis
        return {"host": self.host, "status": self.status, "error": self.error,
                "probe": d.get("probe"),  # what the host's doctor says it sent (None: it did not run)
                "findings": d.get("findings", []), "pairs": d.get("pairs", []), "drift": d.get("drift", []),
                "leftovers": d.get("leftovers", [])}


def doctors(doc: dict[str, Any], plan_hosts: Iterable[str]) -> list[DoctorResult]:
    """One result per plan host from ``fleet doctor``'s document (pure)."""
    events: list[dict[str, Any]] = doc.get("events", [])
    stats: dict[str, dict[str, int]] = doc.get("stats", {})
    out: list[DoctorResult] = []
    for host in dict.fromkeys([*plan_hosts, *stats, *(e["host"] for e in events)]):
        mine = [e for e in events if e["host"] == host]
        if not mine and host not in stats:
            out.append(DoctorResult(host, "missing", error="not in the inventory's group nestnet_hosts"))
            continue
        bad = next((e for e in mine if e["status"] in ("unreachable", "failed")), None)
        if bad is not None:
            out.append(DoctorResult(host, bad["status"], error=_one_line(bad.get("msg")) or f"task {bad['task']!r} failed"))
            continue
        ran = next((e for e in mine if e["task"] == DOCTOR_TASK and e["status"] in ("ok", "changed")), None)
        try:
            diag = json.loads((ran or {}).get("stdout", ""))
        except ValueError:
            out.append(DoctorResult(host, "failed", error=f"task {DOCTOR_TASK!r} printed no JSON"))
            continue
        out.append(DoctorResult(host, "healthy" if diag.get("healthy") else "problems", diag))
    return out


def failing_anywhere(results: Iterable[DoctorResult]) -> list[dict[str, Any]]:
    """The pairs some host's doctor found failing, once each, with the hosts that saw them and
    the reason of their group (one traced example per cause)."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:
        groups = r.diagnosis.get("groups", [])
        for p in r.diagnosis.get("pairs", []):
            ex = groups[p["group"]]["example"] if p.get("group") is not None and p["group"] < len(groups) else {}
            if groups and groups[p["group"]].get("design"):
                continue  # the mode cannot serve it (NAT): no host's problem
            entry = seen.setdefault((p["src"], p["dst"]), {"src": p["src"], "dst": p["dst"], "seen_by": [],
                                                           "dies_at": ex.get("dies_at"), "reason": ex.get("reason"),
                                                           "fix": ex.get("fix", "")})
            entry["seen_by"].append(r.host)
    return list(seen.values())


def causes(failing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``failing_anywhere``'s pairs, one entry per root cause (where it dies and its fix), each
    with its pairs as src-set x dst-set blocks (nestnet.model.groups) and the hosts that saw it."""
    from ..model.groups import compress

    acc: dict[tuple, dict[str, Any]] = {}
    for p in failing:
        key = (p["dies_at"], p["fix"] or p["reason"])
        c = acc.setdefault(key, {"dies_at": p["dies_at"], "fix": p["fix"], "example": p["reason"], "seen_by": [],
                                 "_pairs": []})
        c["_pairs"].append((p["src"], p["dst"]))
        c["seen_by"] += [h for h in p["seen_by"] if h not in c["seen_by"]]
    order: dict[str, int] = {}
    for p in failing:
        for n in (p["src"], p["dst"]):
            order.setdefault(n, len(order))
    out = []
    for c in acc.values():
        pairs = c.pop("_pairs")
        out.append({"pairs": len(pairs), **c, "sets": [b.to_dict() for b in compress(pairs, order)]})
    return out
