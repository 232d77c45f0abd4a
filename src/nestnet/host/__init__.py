"""The host reconciler: program a KVM host from the Plan (routes, bridge, sysctls, firewall, files).

    diff(plan, host_name, root)    -> the changes apply would make (writes nothing)
    apply(plan, host_name, root)   -> makes exactly those changes; a second run returns []
    remove(plan, host_name, root)  -> deletes everything nestnet owns on the host
    find_self(plan)                -> the host whose Plan IP is on a local interface

Everything works on the *current* network namespace (safe to call from ``netns.run_in``) and
writes persistent files under ``root``. Observe (observe.py) -> pure diff (desired.py) -> execute
(execute.py); the firewall text is nft.py, the files files.py, netlink for routes rtnl.py.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import HostError, UsageError
from ..names import unknown
from ..plan import Host, Plan
from . import desired, guard, lock, observe
from .execute import ApplyError, execute
from .desired import Change

__all__ = ["ApplyError", "Change", "apply", "diff", "find_self", "remove"]


def _host(plan: Plan, host_name: str) -> Host:
    try:
        return plan.hosts[host_name]
    except KeyError:
        raise UsageError(
            f"host {host_name!r} is not in {plan.source or plan.name}{unknown(host_name, plan.hosts)}"
        ) from None


def _state(plan: Plan, host_name: str, root: str | Path) -> tuple[desired.Desired, desired.Observed, Path]:
    host = _host(plan, host_name)
    root = Path(root)
    want = desired.desired(plan, host, observe.bridge_netfilter_sysctls())
    ovs = host.bridge_type == "ovs"
    seen = observe.observe(root, want.sysctl, want.files, ovs=ovs, flows_on=host.bridge if ovs and host.bridge_has_uplink else None)
    return want, seen, root


def diff(plan: Plan, host_name: str, root: str | Path = "/", adopt: bool = False) -> list[Change]:
    want, seen, _ = _state(plan, host_name, root)
    return desired.diff(want, seen, adopt)


def apply(
    plan: Plan, host_name: str, root: str | Path = "/", dry_run: bool = False, adopt: bool = False
) -> list[Change]:
    """``adopt``: foreign routes with the same next hop as a wanted one become nestnet's.
    Holds the host lock (host/lock.py) from observing to the last write."""
    if dry_run:
        return _apply(plan, host_name, root, True, adopt)
    with lock.held(root, "host apply"):
        return _apply(plan, host_name, root, False, adopt)


def _apply(plan: Plan, host_name: str, root: str | Path, dry_run: bool, adopt: bool) -> list[Change]:
    want, seen, root = _state(plan, host_name, root)
    changes = desired.diff(want, seen, adopt)
    guard.refuse_lockout(want, changes)
    if not dry_run:
        execute(changes, root)
    return changes


def remove(plan: Plan, host_name: str, root: str | Path = "/", dry_run: bool = False) -> list[Change]:
    if dry_run:
        want, seen, _ = _state(plan, host_name, root)
        return desired.removal(want, seen)
    with lock.held(root, "host remove"):
        want, seen, root = _state(plan, host_name, root)
        changes = desired.removal(want, seen)
        execute(changes, root)
        return changes


def find_self(plan: Plan) -> str:
    """The host whose Plan IP is on a local interface; ``HostError`` if none or several."""
    local = {a for link in observe.links().values() for a in link.addrs}
    found = [h.name for h in plan.hosts.values() if h.ip in local]
    if len(found) == 1:
        return found[0]
    if not found:
        raise HostError(
            f"none of the hosts of {plan.source or plan.name} has its IP on a local interface; pass --host NAME"
        )
    raise HostError(f"several hosts' IPs are local here ({', '.join(found)}); pass --host NAME")
