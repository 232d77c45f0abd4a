"""``nestnet host add|rm``: edit the spec's hosts in place, like ``vm add|rm`` (specedit.py).

Same guarantees, same code path: comments and order kept, the edited text checked in full
(spec + lock) before anything is written, nothing written on any problem. A new host's block
comes from the lock's first fit unless pinned; no other block moves.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from .errors import UsageError
from .names import unknown as unknown_name
from .spec import NODE_NAME_RE, HostSpec, SpecSource
from .specedit import _dump, _rt
from .store import Loaded, edit, load_source

HOST_KEYS = tuple(k for k in HostSpec.model_fields if k not in ("name", "ip"))


def host_add(spec_path: str | Path, name: str, ip: str, **keys: Any) -> Loaded:
    from ruamel.yaml.comments import CommentedMap

    if not NODE_NAME_RE.match(name):
        raise UsageError(f"NAME: {name!r} is not a valid host name (letters, digits, '-', at most 63)")
    try:
        IPv4Address(ip)
    except ValueError:
        raise UsageError(f"--ip: {ip!r} is not an IPv4 address") from None
    unknown = [k for k in keys if k not in HOST_KEYS]
    if unknown:
        raise UsageError(f"{unknown[0]}: not a host key (one of {', '.join(HOST_KEYS)})")

    def make_text(source: SpecSource) -> str:
        load_source(source, write=False)  # the spec must be valid before we edit it
        y = _rt()
        data = y.load(source.text)
        hosts = data.get("hosts")
        if any(isinstance(h, dict) and h.get("name") == name for h in hosts or []):
            raise UsageError(f"{source.display}: a host named {name!r} already exists")
        entry = CommentedMap()
        entry["name"] = name
        entry["ip"] = ip
        for k in HOST_KEYS:  # in the spec's own key order
            if keys.get(k) is not None:
                entry[k] = keys[k]
        entry.fa.set_flow_style()
        hosts.append(entry)
        return _dump(y, data)

    return edit(spec_path, make_text)  # the whole read-edit-write under the writer lock, as vm add


def host_rm(spec_path: str | Path, name: str, release_block: bool = False) -> tuple[Loaded, str]:
    """Remove host ``name``; returns the plan and the block it gave up.

    Refused while VMs are on the host (they would lose their addresses) and, without
    ``release_block``, because the block then goes back to the pool: the next ``host add`` may
    get it while guests configured with its addresses still run somewhere.
    """
    released: list[str] = []

    def make_text(source: SpecSource) -> str:
        before = load_source(source, write=False).plan
        if name not in before.hosts:
            raise UsageError(f"{source.display}: no host named {name!r}{unknown_name(name, before.hosts)}")
        vms = [v.name for v in before.vms.values() if v.host == name]
        if vms:
            raise UsageError(f"{source.display}: host {name!r} still runs VMs {', '.join(vms)}; remove them first (nestnet vm rm)")
        block = str(before.hosts[name].block)
        if not release_block:
            raise UsageError(
                f"{source.display}: removing host {name!r} releases its block {block} to the next host added; "
                "pass --release-block once no guest uses its addresses"
            )
        released.append(block)
        y = _rt()
        data = y.load(source.text)
        hosts = data.get("hosts") or []
        idx = next(i for i, h in enumerate(hosts) if isinstance(h, dict) and h.get("name") == name)
        del hosts[idx]
        return _dump(y, data)

    loaded = edit(spec_path, make_text)
    return loaded, released[-1]
