"""Host reconciler speed: 1,000 routes by `nestnet host apply` vs `ip -batch`, and a no-op apply.

Each measurement runs in a fresh network namespace (created and deleted here; needs root):
  routes   apply() programming 1,000 routes (999 other hosts' blocks + the own block) onto a host
           already holding the rest of its state, vs `ip -batch` of the same 1,000 routes;
  first    the whole first apply (bridge, sysctls, nft table, files, 1,000 routes);
  noop     apply() when nothing differs, on the 1,000-host plan (reconciler only; plan given);
  cli      `nestnet host diff` end to end (interpreter start, spec load + plan, diff), and
           load_plan alone, which is most of it.
Prints medians over --reps runs and the ratio to `ip -batch`.

    sudo .venv/bin/python bench/bench_host_routes.py [--hosts 1000] [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from nestnet import host, netns
from nestnet.plan import Plan, load_plan

UPLINK_IP = "10.0.16.10/20"


def spec(hosts: int, vms: bool = True) -> str:
    out = [
        "version: 1",
        "name: bench",
        "azure: {resource_group: rg, vnet: vnet, address_space: [10.0.0.0/16], route_table: rt, max_routes: 1000}",
        "subnets:",
        "  - {name: vm-subnet, prefix: 10.0.16.0/20}",
        "nested: {mode: routed, pool: 10.0.128.0/17, block_prefix_len: 28, guest_style: onlink}",
        "host_defaults: {uplink: eth1}",
        "hosts:",
    ]
    for i in range(hosts):
        block = IPv4Network((int(IPv4Address("10.0.128.0")) + 16 * i, 28))
        out.append(f"  - {{name: h{i}, ip: {IPv4Address('10.0.16.10') + i}, nic: n{i}, block: {block}}}")
    out.append("vms:\n  - {name: vm0, host: h0, ip: 10.0.128.4}")
    return "\n".join(out) + "\n"


def plan_for(hosts: int, d: Path) -> Plan:
    p = d / f"bench{hosts}.yaml"
    p.write_text(spec(hosts))
    return load_plan(p)


def fresh_ns(tag: str) -> str:
    name = f"nnbench-{os.getpid()}-{tag}"
    netns.add(name)
    for argv in (
        ["ip", "link", "set", "lo", "up"],
        ["ip", "link", "add", "eth1", "type", "veth", "peer", "name", "fab0"],
        ["ip", "link", "set", "eth1", "up"],
        ["ip", "link", "set", "fab0", "up"],
        ["ip", "addr", "add", UPLINK_IP, "dev", "eth1"],
    ):
        netns.sh(name, *argv)
    return name


def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def _ip_batch(text: str) -> None:
    r = subprocess.run(["ip", "-batch", "-"], input=text, text=True, capture_output=True)
    if r.returncode:
        raise RuntimeError(r.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nnbench-"))
    big = plan_for(a.hosts, tmp)  # first load writes the lock; the timed loads below only read it
    loads = []
    for _ in range(3):
        t = time.perf_counter()
        load_plan(tmp / f"bench{a.hosts}.yaml", write=False)
        loads.append(time.perf_counter() - t)
    small = plan_for(1, tmp)  # same host, no other hosts: everything but the routes
    routes = big.hosts["h0"].routes
    batch = "".join(
        f"route add {r.dst}" + (f" via {r.via}" if r.via else "") + f" dev {r.dev} proto 201\n" for r in routes
    )
    res: dict[str, list[float]] = {"ip -batch": [], "apply routes": [], "apply first": [], "apply no-op": []}
    n_changes = 0
    for rep in range(a.reps):
        names = []
        try:
            ref = fresh_ns(f"ref{rep}")
            names.append(ref)
            netns.sh(ref, "ip", "link", "add", "nestbr0", "type", "bridge")
            netns.sh(ref, "ip", "link", "set", "nestbr0", "up")
            res["ip -batch"].append(netns.run_in(ref, _timed, _ip_batch, batch)[0])

            ours = fresh_ns(f"ours{rep}")
            names.append(ours)
            root = tempfile.mkdtemp(dir=tmp)
            netns.run_in(ours, host.apply, small, "h0", root)  # bridge, sysctls, table, files
            t, changes = netns.run_in(ours, _timed, host.apply, big, "h0", root)
            res["apply routes"].append(t)
            n_changes = sum(c.kind == "route" for c in changes)
            res["apply no-op"].append(netns.run_in(ours, _timed, host.apply, big, "h0", root)[0])

            first = fresh_ns(f"first{rep}")
            names.append(first)
            res["apply first"].append(netns.run_in(first, _timed, host.apply, big, "h0", tempfile.mkdtemp(dir=tmp))[0])
        finally:
            for nm in names:
                netns.delete(nm)
    cli: list[float] = []
    ns = fresh_ns("cli")
    try:
        root = tempfile.mkdtemp(dir=tmp)
        netns.run_in(ns, host.apply, big, "h0", root)
        exe = str(Path(sys.executable).with_name("nestnet"))
        for _ in range(a.reps):
            t = time.perf_counter()
            netns.sh(ns, exe, "host", "diff", str(tmp / f"bench{a.hosts}.yaml"), "--host", "h0", "--root", root, "--json")
            cli.append(time.perf_counter() - t)
    finally:
        netns.delete(ns)
    ref = statistics.median(res["ip -batch"])
    print(f"{a.hosts}-host plan, {len(routes)} kernel routes on h0 ({n_changes} route changes timed); "
          f"median of {a.reps} runs, fresh namespace each")
    for k, v in res.items():
        m = statistics.median(v)
        print(f"  {k:14s} {m * 1000:8.1f} ms   {m / ref:5.2f}x ip -batch")
    m = statistics.median(cli)
    print(f"  {'cli diff':14s} {m * 1000:8.1f} ms   (interpreter + spec load/plan + diff; no-op)")
    print(f"  {'load_plan':14s} {statistics.median(loads) * 1000:8.1f} ms   (of which: core's spec load + plan build)")


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    main()
