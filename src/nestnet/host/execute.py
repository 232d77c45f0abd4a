"""Execute a change list, in order, exactly as printed. The only module here that writes.

On a failure it raises ``HostError`` saying which changes were done and which were not; every
write is idempotent under re-diffing (routes are re-observed, the nft table is replaced in one
transaction, files are renamed into place), so running ``apply`` again converges.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from .. import sysctl
from ..errors import HostError
from . import dhcp, rtnl
from .files import File
from .libvirt_hook import HOOK_PATH, tell_libvirt
from .desired import ALIAS, Change
from .observe import run


class ApplyError(HostError):
    """A change failed: ``done`` were made, ``failed`` was refused, ``pending`` were not tried."""

    def __init__(self, done: list[Change], failed: Change, reason: str, pending: list[Change]):
        self.done, self.failed, self.reason, self.pending = done, failed, reason, pending
        super().__init__(
            f"{failed}: {reason} ({len(done)} of {len(done) + 1 + len(pending)} changes done; "
            f"not done: {', '.join(str(c) for c in [failed, *pending][:5])}"
            f"{' ...' if len(pending) > 4 else ''}); run apply again after fixing it"
        )

    def __reduce__(self):  # crosses netns.run_in's pickle pipe intact
        return (ApplyError, (self.done, self.failed, self.reason, self.pending))


def execute(changes: Sequence[Change], root: Path) -> None:
    changes = list(changes)
    i = 0
    while i < len(changes):
        c = changes[i]
        if c.kind == "route":
            j = i
            while j < len(changes) and changes[j].kind == "route":
                j += 1
            _routes(changes, i, j)
            i = j
            continue
        try:
            _one(c, root)
        except (HostError, OSError) as exc:
            raise ApplyError(changes[:i], c, str(exc), changes[i + 1 :]) from None
        i += 1


def _routes(changes: list[Change], start: int, end: int) -> None:
    batch = changes[start:end]
    try:
        rtnl.write([c.action for c in batch])
    except rtnl.NetlinkError as exc:
        failed = batch[exc.index]
        done = changes[:start] + [c for k, c in enumerate(batch[: exc.upto]) if k not in exc.failed]
        pending = [c for k, c in enumerate(batch) if k in exc.failed and k != exc.index]
        pending += batch[exc.upto :] + changes[end:]
        reason = "; ".join(f"{batch[k].key}: {os.strerror(e)}" for k, e in sorted(exc.failed.items()))
        raise ApplyError(done, failed, reason, pending) from None


def _one(c: Change, root: Path) -> None:
    act = c.action
    if c.kind in ("link", "addr"):
        if act[0] == "ip":
            for argv in act[1:]:
                _check(run(["ip", *argv]), "ip " + " ".join(argv))
        elif act[0] == "ovs":
            _, name, mac = act
            # Without the kernel module only OVS's userspace datapath can carry the bridge.
            dp = "system" if Path("/sys/module/openvswitch").exists() else "netdev"
            _check(run(["ovs-vsctl", "--may-exist", "add-br", name, "--", "set", "bridge", name,
                        f"datapath_type={dp}", f"other-config:hwaddr={mac}"]), f"ovs-vsctl add-br {name}")
            _check(run(["ip", "link", "set", "dev", name, "alias", ALIAS]), f"ip link set {name} alias")
        elif act[0] == "ovs-mac":
            _check(run(["ovs-vsctl", "set", "bridge", act[1], f"other-config:hwaddr={act[2]}"]), f"ovs-vsctl set bridge {act[1]}")
        elif act[0] == "ovs-del":
            _check(run(["ovs-vsctl", "--if-exists", "del-br", act[1]]), f"ovs-vsctl del-br {act[1]}")
    elif c.kind == "flows":
        _, bridge, text = act
        _check(run(["ovs-ofctl", "--bundle", "add-flows", bridge, "-"], input=text), f"ovs-ofctl add-flows {bridge}")
    elif c.kind == "sysctl":
        key, value = act
        try:
            sysctl.path(key).write_text(value + "\n")
        except OSError as exc:
            raise HostError(f"sysctl {key}={value}: {exc.strerror}") from None
    elif c.kind == "nft":
        _check(run(["nft", "-f", "-"], input=act), "nft -f")
    elif c.kind == "file":
        path, f = act
        write_file(root / path, f)
        if path == HOOK_PATH and Path(root) == Path("/"):
            tell_libvirt()  # it finds hooks only when it starts or reloads
    elif c.kind == "service":
        what, dig = act
        dhcp.start(root, dig) if what == "start" else dhcp.stop(root, forget=what == "remove")
    elif c.kind == "ufw":
        _check(run(["ufw", *act[1:]]), "ufw " + " ".join(act[1:]))
    else:  # a Change kind without an executor is a programming error
        raise AssertionError(c.kind)


def _check(r, what: str) -> None:
    if r.returncode != 0:
        raise HostError(f"{what}: {(r.stderr or r.stdout).strip()}")


def write_file(path: Path, f: File | None) -> None:
    """Write atomically (temp file + rename), or delete when ``f`` is None."""
    if f is None:
        path.unlink(missing_ok=True)
        parent = path.parent  # a networkd drop-in directory nestnet made goes too, once empty
        if parent.name.endswith(".network.d") and not any(parent.iterdir()):
            parent.rmdir()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.nestnet-tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    if f.link is not None:
        os.symlink(f.link, tmp)
    else:
        tmp.write_text(f.content)
        if f.executable:
            os.chmod(tmp, 0o755)
    os.replace(tmp, path)
