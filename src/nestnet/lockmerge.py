"""Merging two versions of a lock file (pure: text in, text out; docs/decisions/0015).

The lock holds the addresses running VMs use and the blocks hosts route: deleting it to get rid
of a git conflict renumbers VMs and swaps blocks. So a lock with conflict markers is merged from
both sides instead, by ``nestnet lock merge SPEC`` or by git itself through the merge driver
(``nestnet lock merge %O %A %B``). Per entry, three-way when the base is known:

- both sides agree: kept; one side changed it and the other did not: the change;
- one side removed it and the other did not change it: removed; any other one-sided entry: kept
  (an extra entry is harmless: commands ignore entries for names the spec lacks);
- both changed it differently, one address for two VMs, or overlapping blocks for two hosts:
  refused (SpecError, exit 2) naming both claims - only a person knows which VM runs there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from .errors import Problem, SpecError

_START, _BASE, _MID, _END = "<<<<<<<", "|||||||", "=======", ">>>>>>>"
_MARKER = re.compile(r"^(<{7}|\|{7}|={7}|>{7})(?: |$)", re.M)


def conflict_line(text: str) -> int | None:
    """The line number of the first git conflict marker in ``text``, if any."""
    m = _MARKER.search(text)
    return text.count("\n", 0, m.start()) + 1 if m else None


@dataclass(frozen=True)
class Sides:
    ours: str
    theirs: str
    base: str | None  # only when every hunk carries one (merge.conflictStyle diff3 / zdiff3)
    ours_label: str = "ours"
    theirs_label: str = "theirs"


def split_conflict(text: str, display: str) -> Sides:
    """The two (or three) versions a text with git conflict markers was made from."""
    ours: list[str] = []
    theirs: list[str] = []
    base: list[str] = []
    all_based = True
    labels = ["", ""]
    state = None  # None: common text; "ours" | "base" | "theirs": inside a hunk
    n = 0
    for n, line in enumerate(text.splitlines(keepends=True), 1):
        if line.startswith(_START) and state is None:
            state, based = "ours", False
            labels[0] = labels[0] or line[7:].strip()
        elif line.startswith(_BASE) and state == "ours":
            state, based = "base", True
        elif line.startswith(_MID) and state in ("ours", "base"):
            state = "theirs"
        elif line.startswith(_END) and state == "theirs":
            labels[1] = labels[1] or line[7:].strip()
            all_based = all_based and based
            state = None
        elif _MARKER.match(line):
            raise SpecError([Problem("", f"conflict marker {line.strip()!r} out of place; "
                                     "fix the markers by hand, then run nestnet lock merge", display, n)])
        elif state is None:
            ours.append(line)
            theirs.append(line)
            base.append(line)
        else:
            {"ours": ours, "base": base, "theirs": theirs}[state].append(line)
    if state is not None:
        raise SpecError([Problem("", "a conflict hunk is not closed (no >>>>>>> line); fix the markers by hand",
                                 display, n)])
    return Sides("".join(ours), "".join(theirs), "".join(base) if all_based else None,
                 labels[0] or "ours", labels[1] or "theirs")


def _pick(key: str, o, t, b, has_base: bool, conflicts: list[str], labels: tuple[str, str]):
    if o == t:
        return o
    if o is None or t is None:
        present = o if t is None else t
        return None if has_base and present == b else present
    if has_base and o == b:
        return t
    if has_base and t == b:
        return o
    conflicts.append(f"{key} is {o} on one side ({labels[0]}) and {t} on the other ({labels[1]})")
    return None


def merge(ours, theirs, base, labels: tuple[str, str], display: str):  # Lock, Lock, Lock | None -> Lock
    """The merged Lock; SpecError naming every clash (both claims each)."""
    from .ipam import Lock

    conflicts: list[str] = []
    blocks: dict[str, IPv4Network] = {}
    vms: dict[str, IPv4Address] = {}
    for out, section, kind in ((blocks, "blocks", "block of host"), (vms, "vms", "address of vm")):
        o_s, t_s = getattr(ours, section), getattr(theirs, section)
        b_s = getattr(base, section) if base is not None else {}
        for k in sorted(set(o_s) | set(t_s)):
            v = _pick(f"the {kind} {k!r}", o_s.get(k), t_s.get(k), b_s.get(k), base is not None, conflicts, labels)
            if v is not None:
                out[k] = v

    def side(section: str, name: str) -> str:
        o, t = getattr(ours, section).get(name), getattr(theirs, section).get(name)
        return labels[0] if o is not None and t is None else labels[1] if t is not None and o is None else "both"

    by_addr: dict[IPv4Address, str] = {}
    for name, addr in vms.items():
        if addr in by_addr:
            other = by_addr[addr]
            conflicts.append(f"{addr} is the address of vm {other!r} ({side('vms', other)}) and of vm {name!r} "
                             f"({side('vms', name)})")
        else:
            by_addr[addr] = name
    reach: tuple[int, str] | None = None  # the block reaching furthest so far: (its last address, host)
    for name in sorted(blocks, key=lambda h: (int(blocks[h].network_address), h)):
        net = blocks[name]
        if reach is not None and int(net.network_address) <= reach[0]:
            other = reach[1]
            conflicts.append(f"the block {blocks[other]} of host {other!r} ({side('blocks', other)}) overlaps "
                             f"the block {net} of host {name!r} ({side('blocks', name)})")
        if reach is None or int(net.broadcast_address) > reach[0]:
            reach = (int(net.broadcast_address), name)
    if conflicts:
        fix = ("; keep the entry of what already runs there and remove the other from the lock "
               "(nestnet allocates it again on the next plan), then run nestnet lock merge again")
        raise SpecError([Problem("", f"cannot merge: {c}{fix}", display) for c in conflicts])
    return Lock(blocks, vms)


def spec_name(text: str, default: str) -> str:
    """The spec a lock's header names (``# nestnet lock for seed.yaml: ...``)."""
    m = re.search(r"^# nestnet lock for (.+?): ", text, re.M)
    return m.group(1) if m else default
