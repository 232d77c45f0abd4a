"""Benchmark: `nestnet check` on large fabrics (issue 6: 400 hosts x 16 VMs in < 2 s, one core).

For 100/400/1000 hosts it prints: building the model's State from the Plan, the all-pairs check
healthy and with two faults, the number of ordered pairs and classes, and the reference: what
tracing every pair one by one would cost (per-pair trace time x pairs, from a sample), and the
whole `nestnet check SPEC --json` command (interpreter start, spec, plan, check; issue 15's goal:
< 1.5 s for 1,000 x 16, from 3.6 s) and, of it, loading the plan in-process (bench_plan's
business, excluded from the other columns). The CLI is timed as wall and as CPU (user+sys of the
child: the machine may be shared, and wall time then measures the neighbours). Asserts nothing.

With ``--before SRC`` (a ``src`` directory of an older checkout, e.g. made by
``git worktree add --detach /tmp/old a489d56``) the CLI on 1,000 x 16 is also run from that
source, for the before/after ratio. Without it the figure recorded before issue 15's work is shown.
Run: .venv/bin/python bench/bench_check.py [--before /tmp/old/src]
"""

from __future__ import annotations

import os
import random
import resource
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


# `check --json` on 1,000 x 16 (with its lock file) at a489d56, before issue 15's speed work, as this
# bench measured it with --before on the loaded build machine.
BEFORE_CPU, BEFORE_WALL = 1.61, 3.89


def cli_run(path: Path, src: str | None = None) -> tuple[float, float]:
    """Best (wall, CPU user+sys) of 3 runs of `nestnet check PATH --json` in a fresh interpreter."""
    env = dict(os.environ, PYTHONPATH=src) if src else None
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nestnet", "check", str(path), "--json"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=env, check=False)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
    return best_wall, best_cpu


def main() -> None:
    before_src = sys.argv[sys.argv.index("--before") + 1] if "--before" in sys.argv else None
    tmp = Path(tempfile.mkdtemp(prefix="nestnet-bench-check-"))
    print(f"{'fabric':>14} {'nodes':>6} {'pairs':>10} {'cls pairs':>9} {'State':>7} {'check':>7} "
          f"{'faulted':>8} {'1-by-1 (est.)':>14} {'speed-up':>9} {'CLI':>7} {'CLI CPU':>8} {'of it: load':>11}")
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

        t_cli, c_cli = cli_run(path)
        print(f"{hosts:>5} x {vms:>2} VMs {len(names) + 1:>6} {pairs:>10} {len(res.class_pairs):>9} "
              f"{t_state:>6.3f}s {t_check:>6.3f}s {t_fault:>7.3f}s {brute:>13.0f}s {brute / t_check:>8.0f}x "
              f"{t_cli:>6.2f}s {c_cli:>7.2f}s {t_load:>10.2f}s")
        print(f"{'':>14} faulted: {fres.summary['failed']} failed pairs in {len(fres.class_pairs)} class pairs")
    # `path` is the 1,000 x 16 spec now
    if before_src:
        b_wall, b_cpu = cli_run(path, before_src)
        what = f"before ({before_src}, measured now)"
    else:
        b_wall, b_cpu = BEFORE_WALL, BEFORE_CPU
        what = "before (a489d56, recorded)"
    print(f"check --json, 1,000 x 16 via the CLI: now {t_cli:.2f} s wall, {c_cli:.2f} s CPU; {what} "
          f"{b_wall:.2f} s wall, {b_cpu:.2f} s CPU; CPU ratio {b_cpu / c_cli:.1f}x (goal < 1.5 s)")


if __name__ == "__main__":
    main()
