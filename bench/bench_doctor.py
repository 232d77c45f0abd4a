"""Benchmark: `nestnet doctor`'s diagnosis (pure: observed host + model) on large fabrics.

The observation of a live host is a handful of reads (routes, sysctls, nft); what grows with the
fabric is the model run over every pair involving the host. With ip_forward=0 every pair through
the host's VMs fails: the doctor groups them by check's classes and traces one per group; the
reference column traces every failing pair one by one, as the doctor did before (issue 15:
7.6 s on 1,000 hosts). The observed routes are a plain tuple, as parsed from a live host.
Prints figures; asserts nothing. Run: .venv/bin/python bench/bench_doctor.py
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

from nestnet.doctor import diagnose  # noqa: E402
from nestnet.model import from_plan  # noqa: E402
from nestnet.model.observed import HostObservation  # noqa: E402
from nestnet.plan import load_plan  # noqa: E402


def best(fn, n=3):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="nestnet-bench-doctor-"))
    print(f"{'fabric':>14} {'healthy':>9} {'ip_forward=0':>13} {'failing':>8} {'groups':>7} "
          f"{'every pair traced (before)':>27} {'speed-up':>9}")
    for hosts in (10, 100, 400, 1000):
        spec = tmp / f"d{hosts}.yaml"
        spec.write_text(yaml.safe_dump(fabric(hosts, 4, plen=28)))
        plan = load_plan(spec)
        h = next(iter(plan.hosts))
        state = from_plan(plan)
        hs = state.hosts[h]
        # what a healthy host reads back: its owned routes, its sysctls, nestnet's nft loaded
        healthy = HostObservation(tuple(hs.owned_routes), hs.other_routes, dict(plan.hosts[h].sysctl), True, True, ())
        broken = replace(healthy, sysctl={**healthy.sysctl, "net.ipv4.ip_forward": "0"})
        t_ok = best(lambda: diagnose(plan, h, healthy, planned=state))
        t_bad = best(lambda: diagnose(plan, h, broken, planned=state))
        d = diagnose(plan, h, broken, planned=state)
        t_each = best(lambda: d.pairs, n=1)  # a trace per failing pair: the old doctor's work
        print(f"{hosts:>5} x 4 VMs  {t_ok:>8.3f}s {t_bad:>12.3f}s {d.failing:>8} {len(d.groups):>7} "
              f"{t_each + t_bad:>26.3f}s {(t_each + t_bad) / t_bad:>8.0f}x")


if __name__ == "__main__":
    main()
