"""Lab speed: up (namespaces + fabric + host reconciler + guests) and the full matrix for 10 hosts
x 2 VMs + a mgmt endpoint (~32 namespaces, ~900 ordered pairs), then down.

Targets (issue 4): up + matrix < 5 s, down < 1 s. Reference (DESIGN §5): the same topology
with plain `ip` commands, no host reconciler, no matrix: up ~0.6 s, down ~0.04 s.
Run as root: .venv/bin/python bench/bench_lab.py [rounds]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from nestnet import lab
from nestnet.plan import load_plan

TARGET_UP_MATRIX, TARGET_DOWN = 5.0, 1.0
REF_UP, REF_DOWN = 0.6, 0.04


def spec(n_hosts: int = 10, vms: int = 2) -> dict:
    return {
        "version": 1,
        "name": f"bench{os.getpid()}",
        "azure": {"resource_group": "rg", "vnet": "vnet", "address_space": ["10.0.0.0/16"], "route_table": "rt"},
        "subnets": [{"name": "hosts", "prefix": "10.0.1.0/24"}, {"name": "mgmt", "prefix": "10.0.2.0/24"}],
        "nested": {"pool": "10.0.128.0/17", "block_prefix_len": 28},
        "host_defaults": {"uplink": "eth1"},
        "hosts": [{"name": f"h{i}", "ip": f"10.0.1.{10 + i}"} for i in range(n_hosts)],
        "vms": [{"name": f"h{i}-v{j}", "host": f"h{i}"} for i in range(n_hosts) for j in range(vms)],
        "endpoints": [{"name": "mgmt-vm", "ip": "10.0.2.5", "subnet": "mgmt"}],
    }


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(yaml.safe_dump(spec()))
        plan = load_plan(path)
        ups, mats, downs, red = [], [], [], 0
        for _ in range(rounds):
            try:
                t0 = time.perf_counter()
                lab.up(plan)
                t1 = time.perf_counter()
                pairs = lab.matrix(plan)
                t2 = time.perf_counter()
            finally:
                t3 = time.perf_counter()
                lab.down(plan)
                t4 = time.perf_counter()
            ups.append(t1 - t0)
            mats.append(t2 - t1)
            downs.append(t4 - t3)
            red += sum(not p.ok for p in pairs)
    up, mat, down = (statistics.median(x) for x in (ups, mats, downs))
    n_ns = len(plan.node_names) + 2
    print(f"lab bench: {len(plan.hosts)} hosts, {len(plan.vms)} VMs, {len(plan.endpoints)} endpoint(s), "
          f"{n_ns} namespaces, {len(pairs)} pairs, {rounds} rounds (median)")
    print(f"  up (incl. host reconciler, guests)  {up:6.3f} s   (plain-ip reference {REF_UP} s: x{up / REF_UP:.1f})")
    print(f"  matrix                             {mat:6.3f} s")
    print(f"  up + matrix                        {up + mat:6.3f} s   target < {TARGET_UP_MATRIX} s: "
          f"{(up + mat) / TARGET_UP_MATRIX:.0%} of budget")
    print(f"  down                               {down:6.3f} s   target < {TARGET_DOWN} s "
          f"(plain-ip reference {REF_DOWN} s: x{down / REF_DOWN:.1f})")
    print(f"  red pairs (should be 0)            {red}")
    ok = up + mat < TARGET_UP_MATRIX and down < TARGET_DOWN and red == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
