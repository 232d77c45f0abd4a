"""Nested VMs that configure themselves by DHCP: Debian's udhcpc (busybox) in each VM namespace.

``lab up --guests dhcp`` leaves each guest's ``eth0`` unconfigured and runs udhcpc there; its hook
(below, in the way of busybox's ``examples/udhcp/simple.script``, plus option 121) applies exactly
what the lease says: the address and mask, the classless static routes (RFC 3442: when present,
the router option is ignored) or else the router, and the name servers and search domains into
the guest's resolv.conf. ``probe`` asks the host's DHCP server again for a VM and only records
the answer (``lab services``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ..errors import LabError
from ..plan import Plan
from .topology import Topology

UDHCPC = "udhcpc"

HOOK = r"""#!/bin/sh
# nestnet lab: a nested VM's DHCP client hook; udhcpc calls it with deconfig|bound|renew|...
# NESTNET_APPLY=1 configures eth0 from the lease; else it only records the lease.
lease="$NESTNET_LEASE_DIR/$interface.lease"
case "$1" in
deconfig)
  [ "$NESTNET_APPLY" = 1 ] || exit 0
  ip link set "$interface" up
  ip -4 addr flush dev "$interface"
  ;;
bound|renew)
  printf '%s\n' "ip=$ip" "mask=$mask" "router=$router" "dns=$dns" "search=$search" "domain=$domain" \
    "staticroutes=$staticroutes" "serverid=$serverid" > "$lease"
  [ "$NESTNET_APPLY" = 1 ] || exit 0
  ip -4 addr flush dev "$interface"
  ip addr add "$ip/$mask" dev "$interface"
  if [ -n "$staticroutes" ]; then
    set -- $staticroutes
    while [ $# -ge 2 ]; do
      if [ "$2" = 0.0.0.0 ]; then ip route replace "$1" dev "$interface" scope link
      else ip route replace "$1" via "$2" dev "$interface"; fi
      shift 2
    done
  elif [ -n "$router" ]; then
    ip route replace default via "${router%% *}" dev "$interface"
  fi
  {
    if [ -n "$search" ]; then echo "search $search"; elif [ -n "$domain" ]; then echo "search $domain"; fi
    for d in $dns; do echo "nameserver $d"; done
  } > "$NESTNET_RESOLV"
  ;;
esac
exit 0
"""


def parse_lease(text: str) -> dict[str, str]:
    """The hook's record: ``key=value`` lines."""
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v.strip()
    return out


def _hook(state: Path) -> Path:
    p = state / "dhcp-client.sh"
    if not p.exists():
        p.write_text(HOOK)
        p.chmod(0o755)
    return p


def _start(topo: Topology, vm: str, state: Path, kind: str, apply: bool, resolv: Path) -> subprocess.Popen:
    lease_dir = state / kind / vm
    lease_dir.mkdir(parents=True, exist_ok=True)
    (lease_dir / "eth0.lease").unlink(missing_ok=True)
    env = {
        **os.environ,
        "NESTNET_APPLY": "1" if apply else "0",
        "NESTNET_LEASE_DIR": str(lease_dir),
        "NESTNET_RESOLV": str(resolv),
    }
    # -f -q: stay in the foreground and quit once bound; -n: fail if no lease after -t tries
    cmd = [
        "ip", "netns", "exec", topo.ns(vm), UDHCPC, "-i", "eth0", "-f", "-q", "-n", "-t", "5", "-T", "1", "-A", "1",
        "-s", str(_hook(state)), "-O", "staticroutes", "-O", "search", "-x", f"hostname:{vm}",
    ]
    try:
        return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError as exc:
        raise LabError(f"starting udhcpc for {vm}: {exc}") from exc


def run(plan: Plan, topo: Topology, vms: list[str], state: Path, *, apply: bool, resolv: dict[str, Path]) -> dict[str, dict[str, str] | None]:
    """Run udhcpc for every VM at once; each VM's lease as recorded (None: no lease)."""
    kind = "leases" if apply else "probe"
    procs = {v: _start(topo, v, state, kind, apply, resolv[v]) for v in vms}
    out: dict[str, dict[str, str] | None] = {}
    for v, p in procs.items():
        log, _ = p.communicate(timeout=60)
        f = state / kind / v / "eth0.lease"
        out[v] = parse_lease(f.read_text()) if p.returncode == 0 and f.exists() else None
        if apply and out[v] is None:
            raise LabError(f"VM {v}: udhcpc got no lease from its host: {log.strip().splitlines()[-1:] or 'no output'}")
    return out
