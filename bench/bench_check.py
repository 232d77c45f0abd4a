"""Benchmark: `nestnet check` on large fabrics (issue 6: 400 hosts x 16 VMs in < 2 s, one core).

For 100/400/1000 hosts it prints: building the model's State from the Plan, the all-pairs check
healthy and with two faults, the number of ordered pairs and classes, and the reference: what
tracing every pair one by one would cost (per-pair trace time x pairs, from a sample), and the
whole `nestnet check SPEC --json` command (interpreter start, spec, plan, check; issue 15's goal:
< 1.5 s for 1,000 x 16, from 3.6 s) and, of it, loading the plan in-process (bench_plan's
business, excluded from the other columns). Asserts nothing.
Run: .venv/bin/python bench/bench_check.py
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from core.specs import fabric  # noqa: E402

from nestnet.faults import parse_faults  # noqa: E402
from nestnet.model import Model, apply_faults, from_plan  # noqa: E402
from nestnet.model.classes import reachability  # noqa: E402
from nestnet.plan import load_plan  # noqa: E402


def timed(fn):
    best, out = float("inf"), None
    for _ in range(3):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="nestnet-bench-check-"))
    print(f"{'fabric':>14} {'nodes':>6} {'pairs':>10} {'cls pairs':>9} {'State':>7} {'check':>7} "
          f"{'faulted':>8} {'1-by-1 (est.)':>14} {'speed-up':>9} {'CLI':>7} {'of it: load':>11}")
    for hosts, vms in ((100, 16), (400, 16), (1000, 16)):
        spec = fabric(hosts, vms, plen=27, pool="10.64.0.0/12")
        spec["subnets"].append({"name": "mgmt", "prefix": "10.1.0.0/24"})
        spec["endpoints"] = [{"name": "mgmt-vm", "ip": "10.1.0.5", "subnet": "mgmt"}]
        path = tmp / f"f{hosts}.yaml"
        path.write_text(yaml.safe_dump(spec))
        plan = load_plan(path)
        t_load, _ = timed(lambda: load_plan(path, write=False))
        t_state, state = timed(lambda: from_plan(plan))
        t_check, res = timed(lambda: reachability(from_plan(plan)))
        faults = parse_faults(["nic-forwarding-off:h7", "no-host-routes:h3"], plan)
        t_fault, fres = timed(lambda: reachability(apply_faults(from_plan(plan), faults)))
        assert res.all_ok and not fres.all_ok
        model = Model(state)
        names = list(state.node_names)
        rng = random.Random(1)
        sample = [tuple(rng.sample(names, 2)) for _ in range(300)]
        t = time.perf_counter()
        for a, b in sample:
            model.ping(a, b)
        per_pair = (time.perf_counter() - t) / len(sample)
        pairs = res.summary["pairs"]
        brute = per_pair * pairs

        def cli():
            subprocess.run([sys.executable, "-m", "nestnet", "check", str(path), "--json"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)

        t_cli, _ = timed(cli)
        print(f"{hosts:>5} x {vms:>2} VMs {len(names) + 1:>6} {pairs:>10} {len(res.class_pairs):>9} "
              f"{t_state:>6.3f}s {t_check:>6.3f}s {t_fault:>7.3f}s {brute:>13.0f}s {brute / t_check:>8.0f}x "
              f"{t_cli:>6.2f}s {t_load:>10.2f}s")
        print(f"{'':>14} faulted: {fres.summary['failed']} failed pairs in {len(fres.class_pairs)} class pairs")


if __name__ == "__main__":
    main()
