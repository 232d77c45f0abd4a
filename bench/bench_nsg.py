"""Benchmark: `nestnet check` with network security groups (issue 10).

For 100/400/1000 hosts x 16 VMs it prints the all-pairs check without NSGs (the reference), with
an NSG holding only Azure's default rules on every subnet, and with one rule denying one VM pair
(the two VMs it names become their own classes), and the ratio to the reference; then the same
deny NSG plus an allow for TCP 22 checked with ``--probe tcp/22`` (a port probe, its ratio to the
reference). Asserts nothing.
Run: .venv/bin/python bench/bench_nsg.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from core.specs import fabric  # noqa: E402

from nestnet.model import from_plan  # noqa: E402
from nestnet.model.classes import reachability  # noqa: E402
from nestnet.model.nsg import ICMP, Nsg, NsgRule, Probe  # noqa: E402
from nestnet.plan import load_plan  # noqa: E402


def timed(state, probe=ICMP):
    t = time.perf_counter()
    r = reachability(state, probe)
    return time.perf_counter() - t, r


def main() -> None:
    print(f"{'fabric':>14} {'no NSG':>8} {'defaults':>9} {'1 deny':>8} {'ratio':>6} {'cls pairs':>9} {'failed':>6} "
          f"{'tcp/22':>8} {'ratio':>6} failed")
    for n in (100, 400, 1000):
        d = Path(tempfile.mkdtemp())
        (d / "f.yaml").write_text(yaml.safe_dump(fabric(n, 16)))
        state = from_plan(load_plan(d / "f.yaml"))
        az = state.azure
        vms = list(state.guests.values())

        def with_nsg(nsg: Nsg):
            return replace(state, cloud=replace(az, nsgs={nsg.name: nsg},
                                                subnets={k: replace(s, nsg=nsg.name) for k, s in az.subnets.items()}))

        deny = Nsg("n", (NsgRule("deny", 100, "Inbound", "Deny", "*", (str(vms[0].ip),), (str(vms[-1].ip),)),))
        t0, _ = timed(state)
        t1, _ = timed(with_nsg(Nsg("n")))
        t2, r = timed(with_nsg(deny))
        ssh = replace(deny, rules=(*deny.rules, NsgRule("ssh", 200, "Inbound", "Allow", "Tcp", ("VirtualNetwork",),
                                                         ("*",), ("*",), ("22",))))
        t3, r3 = timed(with_nsg(ssh), Probe("tcp", 22))
        print(f"{n:>5} x 16 VMs {t0:>7.3f}s {t1:>8.3f}s {t2:>7.3f}s {t2 / t0:>5.1f}x {len(r.class_pairs):>9} "
              f"{r.summary['failed']:>6} {t3:>7.3f}s {t3 / t0:>5.1f}x {r3.summary['failed']}")


if __name__ == "__main__":
    main()
