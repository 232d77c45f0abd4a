"""The host-side steps of moving a nested VM between hosts (docs/decisions/0013).

Each step works on the *current* network namespace (so the lab runs it inside a host namespace
through ``netns.run_in``, and the libvirt hook on the host itself). ``plan`` is the plan *after*
the move: the VM lives on its new host (an exception to its block, or renumbered).

    arrive(plan, host, vm, root)   new host, before the guest runs there: the move tunnel (to
                                   receive), then the host reconciler (local /32, firewall)
    depart(plan, host, vm)         old host, as soon as the guest has left: the VM's /32 into the
                                   tunnel to the new host (no loop while the cloud still sends here)
    settle(plan, host, vm, root)   old host, once the cloud routes the /32 to the new host: the
                                   reconciler replaces the tunnel's route with the planned one in
                                   one step; the tunnel goes once nothing uses it

The command lists are pure (``*_lines``) so they are tested without root.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import HostError, UsageError
from ..mobility import MOVE_PORT, MOVE_PROTO, MOVE_TUNNEL, MOVE_VNI, SHARED_GATEWAY, tunnel_mac
from ..plan import Host, Plan
from .observe import run


TUNNEL_ADDRESS = SHARED_GATEWAY


def _vm(plan: Plan, vm: str):
    try:
        return plan.vms[vm]
    except KeyError:
        raise UsageError(f"{plan.source or plan.name}: no VM named {vm!r}") from None


def tunnel_lines(host: Host) -> list[str]:
    """``ip -batch`` lines that create the move tunnel: unicast VXLAN, no learning, fixed MAC."""
    return [
        f"link add {MOVE_TUNNEL} address {tunnel_mac(host.ip)} type vxlan id {MOVE_VNI} local {host.ip} "
        f"dstport {MOVE_PORT} nolearning dev {host.l3_dev}",
        # An address, any: rp_filter (even loose) drops what arrives on a device without one.
        f"addr add {TUNNEL_ADDRESS}/32 dev {MOVE_TUNNEL} scope link",
        f"link set {MOVE_TUNNEL} up",
    ]


def forward_lines(plan: Plan, host: str, vm: str) -> tuple[list[str], list[str]]:
    """(ip lines, bridge lines) that send ``vm``'s address into the tunnel to its new host."""
    v = _vm(plan, vm)
    new = plan.hosts[v.host]
    mac = tunnel_mac(new.ip)
    ip_lines = [
        f"neigh replace {v.ip} lladdr {mac} dev {MOVE_TUNNEL} nud permanent",
        # src: the host's own traffic to the VM must not leave from the tunnel's link-local address
        f"route replace {v.ip}/32 dev {MOVE_TUNNEL} proto {MOVE_PROTO} src {plan.hosts[host].ip}",
    ]
    return ip_lines, [f"fdb replace {mac} dev {MOVE_TUNNEL} dst {new.ip} self permanent"]


def _batch(tool: str, lines: list[str]) -> None:
    if not lines:
        return
    r = run([tool, "-batch", "-"], input="\n".join(lines) + "\n")
    if r.returncode != 0:
        raise HostError(f"{tool} -batch: {(r.stderr or r.stdout).strip()}")


def _tunnel_exists() -> bool:
    return run(["ip", "link", "show", "dev", MOVE_TUNNEL]).returncode == 0


def ensure_tunnel(host: Host) -> bool:
    """Create the move tunnel if it is missing; True if it was created."""
    if _tunnel_exists():
        return False
    _batch("ip", tunnel_lines(host))
    return True


def arrive(plan: Plan, host: str, vm: str, root: str | Path = "/") -> None:
    from . import apply

    if _vm(plan, vm).host != host:
        raise UsageError(f"{plan.source or plan.name}: VM {vm!r} lives on {plan.vms[vm].host}, not {host}")
    ensure_tunnel(plan.hosts[host])
    apply(plan, host, root=root)


def prepare_departure(plan: Plan, host: str, vm: str) -> list[str]:
    """Old host, while the guest still runs here: the tunnel and its entries for the new host.
    Returns the ``ip`` lines ``depart`` still has to run (the neighbour entry and the route)."""
    if _vm(plan, vm).host == host:
        raise UsageError(f"{plan.source or plan.name}: VM {vm!r} lives on {host}: nothing to forward away")
    ensure_tunnel(plan.hosts[host])
    ip_lines, fdb_lines = forward_lines(plan, host, vm)
    _batch("bridge", fdb_lines)
    return ip_lines


def depart(plan: Plan, host: str, vm: str, root: str | Path = "/") -> None:
    _batch("ip", prepare_departure(plan, host, vm))
    staged_path(root, vm).unlink(missing_ok=True)  # done: a later plain stop must not replay it


STAGED_DIR = "run/nestnet/depart"  # under the host's root: <vm>.ip, ``ip -batch`` lines


def staged_path(root: str | Path, vm: str) -> Path:
    return Path(root) / STAGED_DIR / f"{vm}.ip"


def stage_departure(plan: Plan, host: str, vm: str, root: str | Path = "/") -> Path:
    """Old host, before ``virsh migrate``: ``prepare_departure`` (the tunnel and its entries for
    the new host), and the lines ``depart`` would run written to ``run/nestnet/depart/<vm>.ip``.

    The libvirt hook runs them with ``ip -batch`` in shell at ``stopped end``, before nestnet's
    own start (which then departs again, idempotently, and removes the file): the guest's traffic
    goes into the tunnel a few milliseconds after the guest left, not after a Python start (one
    to two seconds on a loaded host: the gap, as the lab measured it)."""
    from ..store import write_atomic

    lines = prepare_departure(plan, host, vm)
    p = staged_path(root, vm)
    p.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(p, "\n".join(lines) + "\n")
    return p


def _tunnel_routes() -> list[dict]:
    r = run(["ip", "-j", "route", "show", "dev", MOVE_TUNNEL])
    return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else []


def settle(plan: Plan, host: str, vm: str, root: str | Path = "/") -> None:
    """The reconciler replaces the tunnel's route (its own, MOVE_PROTO) with the planned /32 in
    one netlink replace; then the tunnel goes if nothing routes into it any more."""
    from . import apply

    _vm(plan, vm)
    apply(plan, host, root=root)
    retire_tunnel()


def retire_tunnel() -> None:
    """On the new host once the move is over: the receiving tunnel goes if nothing routes into it."""
    if _tunnel_exists() and not _tunnel_routes():
        _batch("ip", [f"link del {MOVE_TUNNEL}"])
