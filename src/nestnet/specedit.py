"""Edit a spec file in place (``nestnet vm add|rm``), keeping the user's comments and order.

The edited text is checked in full (spec + lock) before anything is written; on any problem the
spec and the lock stay exactly as they were.
"""

from __future__ import annotations

import io
from pathlib import Path

from .errors import Problem, SpecError, UsageError
from .ipam import lock_path, write_lock
from .plan import Loaded, load_source
from .spec import SpecSource, read_source


def _rt():
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 4096
    return y


def _dump(y, data) -> str:
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()


def _commit(source: SpecSource, new_text: str) -> Loaded:
    candidate = SpecSource(source.path, new_text)
    try:
        loaded = load_source(candidate, write=False)
    except SpecError as exc:
        # Line numbers of the unwritten candidate would point at nothing in the user's file.
        raise SpecError(
            [Problem(p.path, p.message, source.display, None, p.severity) for p in exc.problems]
        ) from None
    # Valid: write the spec, then the lock (both atomically, spec first so a crash in between
    # leaves a spec whose missing lock entries are simply allocated again, identically).
    tmp = source.path.with_name(source.path.name + ".tmp")
    tmp.write_text(new_text, encoding="utf-8")
    tmp.replace(source.path)
    plan = loaded.plan
    from .ipam import Lock

    lock = Lock(
        {h.name: h.block for h in plan.hosts.values()},
        {v.name: v.ip for v in plan.vms.values()},
    )
    write_lock(lock_path(source.path), lock, source.path.name)
    return loaded


def vm_add(spec_path: str | Path, name: str, host: str, ip: str | None = None) -> Loaded:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    source = read_source(spec_path)
    load_source(source, write=False)  # the spec must be valid before we edit it
    y = _rt()
    data = y.load(source.text)
    hosts = [h.get("name") for h in data.get("hosts") or [] if isinstance(h, dict)]
    if host not in hosts:
        raise UsageError(f"{source.display}: no host named {host!r} (known: {', '.join(map(str, hosts))})")
    vms = data.get("vms")
    if vms is None:
        vms = CommentedSeq()
        data["vms"] = vms
    if any(isinstance(v, dict) and v.get("name") == name for v in vms):
        raise UsageError(f"{source.display}: a VM named {name!r} already exists")
    entry = CommentedMap()
    entry["name"] = name
    entry["host"] = host
    if ip is not None:
        entry["ip"] = ip
    entry.fa.set_flow_style()
    vms.append(entry)
    return _commit(source, _dump(y, data))


def vm_rm(spec_path: str | Path, name: str) -> Loaded:
    source = read_source(spec_path)
    load_source(source, write=False)
    y = _rt()
    data = y.load(source.text)
    vms = data.get("vms") or []
    idx = next((i for i, v in enumerate(vms) if isinstance(v, dict) and v.get("name") == name), None)
    if idx is None:
        raise UsageError(f"{source.display}: no VM named {name!r}")
    del vms[idx]
    return _commit(source, _dump(y, data))

