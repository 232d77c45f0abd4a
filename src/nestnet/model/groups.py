"""Pairs grouped by root cause, each group's pairs as a few ``src-set x dst-set`` blocks.

What ``check``, ``doctor``, ``fleet doctor``, the report and the diagram show: one group per
cause (where it is, the fix), not one line per pair. A group's pairs are exact and recoverable:

    pairs(block) = [(a, b) for a in block.src for b in block.dst
                    if a != b and relation(a, b) == block.hosts or block.hosts == "any"]

where ``relation`` is "same" when both ends sit on one host (a VM on its host, given by
``check --json``'s ``vm_host``; any other node counts as its own host) and "different"
otherwise; ``expand`` does exactly this for a ``check --json`` document. Blocks come straight
from ``check``'s class pairs (``nestnet.model.classes``), so their size is the number of nodes
times the number of classes, not the number of pairs: JSON stays linear in the fabric
(docs/decisions/0024).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable, Iterable, Iterator, Mapping

from .engine import PairResult
from .state import INTERNET

FAIL, BY_DESIGN, OK = "fail", "by-design", "ok"
HOSTS = ("any", "same", "different")


@dataclass(frozen=True, slots=True)
class PairBlock:
    src: tuple[str, ...]
    dst: tuple[str, ...]
    hosts: str = "any"  # any | same | different: which (src, dst) of the product belong

    def to_dict(self) -> dict:
        return {"src": list(self.src), "dst": list(self.dst), "hosts": self.hosts}

    def pairs(self, host_of: Mapping[str, str]) -> Iterator[tuple[str, str]]:
        for a in self.src:
            for b in self.dst:
                if a != b and self._rel(a, b, host_of):
                    yield a, b

    def _rel(self, a: str, b: str, host_of: Mapping[str, str]) -> bool:
        if self.hosts == "any":
            return True
        return (host_of.get(a, a) == host_of.get(b, b)) == (self.hosts == "same")


@dataclass(frozen=True)
class CauseGroup:
    """Pairs with one verdict and one cause: ``example`` is one of them, traced."""

    verdict: str  # fail | by-design | ok
    example: PairResult
    blocks: tuple[PairBlock, ...]
    count: int
    design: str = ""  # by-design: why the mode cannot serve them

    @property
    def cause(self) -> str:
        return cause_of(self.example)

    def to_dict(self) -> dict:
        e = self.example
        out = {"verdict": self.verdict, "count": self.count}
        if self.verdict == FAIL:
            out.update(dies_at=e.dies_at, cause=self.cause, fix=e.fix)
            if e.intermittent:
                out["intermittent"] = e.intermittent
        elif self.verdict == BY_DESIGN:
            out.update(design=self.design)
        if self.verdict != OK:
            out["example"] = {"src": e.src, "dst": e.dst, "reason": e.reason, "hops": list(e.hops)}
        out["pairs"] = [b.to_dict() for b in self.blocks]
        return out

    def pairs(self, host_of: Mapping[str, str]) -> Iterator[tuple[str, str]]:
        for b in self.blocks:
            yield from b.pairs(host_of)


def expand(doc: Mapping) -> Iterator[tuple[str, str, dict]]:
    """Every pair of a ``check --json`` document, with its group: (src, dst, group)."""
    vm_host = doc.get("vm_host", {})
    for g in doc["groups"]:
        for b in g["pairs"]:
            yield from ((a, d, g) for a, d in PairBlock(tuple(b["src"]), tuple(b["dst"]), b["hosts"]).pairs(vm_host))


def cause_of(p: PairResult) -> str:
    """A failed pair's reason without its fix (the fix is shown apart)."""
    r = p.reason
    return r[: -len(p.fix) - 3] if p.fix and r.endswith(f" → {p.fix}") else r


def cause_key(p: PairResult) -> Hashable:
    """Pairs with equal keys fail for one root cause: where the cause is and its fix (the reason
    names each pair's own addresses; without a fix, the reason is all there is)."""
    return (p.root or p.dies_at, p.fix or p.reason, bool(p.intermittent))  # a race is a cause of its own


def node_order(state) -> dict[str, int]:
    return {n: i for i, n in enumerate((*state.node_names, INTERNET))}


def host_of(state) -> dict[str, str]:
    """Each host-bound node's host (a host is its own)."""
    return {**{h: h for h in state.hosts}, **{g.name: g.host for g in state.guests.values()}}


def merge_blocks(blocks: Iterable[PairBlock], order: Mapping[str, int],
                 hosts: Mapping[str, str] | None = None) -> tuple[PairBlock, ...]:
    """Fewer, larger blocks with the same pairs: a relation every pair of the product has
    anyway becomes "any" (``hosts``: each node's host); equal destinations and relation join
    their sources, then equal sources join their destinations; "same" + "different" of one
    product is "any" (blocks of one group never overlap: class pairs partition the pairs)."""
    if hosts is not None:
        blocks = [_loosen(b, hosts) for b in blocks]

    def srt(names: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted(set(names), key=order.__getitem__))

    def join(items: list[PairBlock], by_dst: bool) -> list[PairBlock]:
        acc: dict[tuple, list[str]] = {}
        for b in items:
            k = (b.dst if by_dst else b.src, b.hosts)
            acc.setdefault(k, []).extend(b.src if by_dst else b.dst)
        return [PairBlock(srt(v), k[0], k[1]) if by_dst else PairBlock(k[0], srt(v), k[1]) for k, v in acc.items()]

    items = join(join(list(blocks), True), False)
    rel: dict[tuple, set[str]] = {}
    for b in items:
        rel.setdefault((b.src, b.dst), set()).add(b.hosts)
    out = []
    for (s, d), kinds in rel.items():
        if {"same", "different"} <= kinds:
            kinds = (kinds - {"same", "different"}) | {"any"}
        out += [PairBlock(s, d, k) for k in sorted(kinds)]
    out.sort(key=lambda b: (order[b.src[0]], order[b.dst[0]]))
    return tuple(out)


def _loosen(b: PairBlock, hosts: Mapping[str, str]) -> PairBlock:
    if b.hosts == "any":
        return b
    hs, hd = {hosts.get(a, a) for a in b.src}, {hosts.get(a, a) for a in b.dst}
    if b.hosts == "different" and not hs & hd:
        return PairBlock(b.src, b.dst, "any")
    if b.hosts == "same" and len(hs | hd) == 1:
        return PairBlock(b.src, b.dst, "any")
    return b


def compress(pairs: Iterable[tuple[str, str]], order: Mapping[str, int]) -> tuple[PairBlock, ...]:
    """Explicit pairs as blocks (``hosts: any``): sources with the same destinations share one.
    A source counts as its own destination (a pair is never a node with itself), so sources
    that differ only there still share."""
    dsts: dict[str, set[str]] = {}
    for a, b in pairs:
        dsts.setdefault(a, set()).add(b)
    by_key: dict[frozenset, list[str]] = {}
    for a, d in dsts.items():
        by_key.setdefault(frozenset(d | {a}), []).append(a)
    blocks = []
    for k, s in by_key.items():  # a lone source is shown without itself among its destinations
        blocks.append(PairBlock(tuple(s), tuple(k - {s[0]} if len(s) == 1 else k), "any"))
    return merge_blocks(blocks, order)


def groups(res, design: Callable[[str, str], str] = lambda a, b: "", include_ok: bool = False) -> list[CauseGroup]:
    """``res``'s pairs (``Reachability``) by verdict and cause, failures first, in node order of
    their first pair. One trace per failing class pair; ``design(src, dst)``: why the mode
    cannot serve the pair ("" when it should work); the same for every pair of a class pair."""
    order = node_order(res.state)
    acc: dict[Hashable, tuple[PairResult, str, list[PairBlock], int]] = {}
    for cp in res.class_pairs:
        if cp.ok and not include_ok:
            continue
        hosts = "any" if cp.same_host is None else "same" if cp.same_host else "different"
        block = PairBlock(cp.src.members, cp.dst.members, hosts)
        why = design(*cp.rep) if not cp.ok else ""
        if cp.ok:
            key: Hashable = (OK,)
            example = PairResult(*cp.rep, True)
        elif why:
            key, example = (BY_DESIGN, why), PairResult(*cp.rep, False, why)
        else:
            example = res.model.ping(*cp.rep)
            key = (FAIL, cause_key(example))
        if key in acc:
            e, w, blocks, n = acc[key]
            blocks.append(block)
            acc[key] = (e, w, blocks, n + cp.count)
        else:
            acc[key] = (example, why, [block], cp.count)
    out = []
    for key, (example, why, blocks, n) in acc.items():
        merged = merge_blocks(blocks, order, res._host_of)
        first = next(iter(merged[0].pairs(res._host_of)), (example.src, example.dst))
        if key[0] == FAIL and (example.src, example.dst) != first:
            example = res.model.ping(*first)  # the group's first pair, as people read it
        out.append(CauseGroup(key[0], example, merged, n, why))
    rank = {FAIL: 0, BY_DESIGN: 1, OK: 2}
    out.sort(key=lambda g: (rank[g.verdict], order[g.example.src], order[g.example.dst]))
    return out


def names(items: tuple[str, ...], most: int = 3) -> str:
    """``a, b, c and 997 more``."""
    head = ", ".join(items[:most])
    return head if len(items) <= most else f"{head} and {len(items) - most} more"


def describe(blocks: tuple[PairBlock, ...], most: int = 3) -> str:
    """Blocks for people, e.g. ``web1, web2 → 12 destinations``: names up to ``most``, then counts."""
    parts = []
    for b in blocks[:most]:
        src, dst = names(b.src, most), names(b.dst, most)
        rel = {"any": "", "same": " on the same host", "different": " on other hosts"}[b.hosts]
        parts.append(f"{src} → {dst}{rel}")
    if len(blocks) > most:
        parts.append(f"and {plural(len(blocks) - most, 'more set')}")
    return "; ".join(parts)


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"
