"""Benchmark: `nestnet plan` on large fabrics, and CLI start-up.

Targets (issue 2): a 400-host x 16-VM plan in < 1 s; `nestnet --help` in < 0.3 s.
Issue 15: `nestnet plan --json` on 1,000 hosts in < 1 s through the CLI (2.4 s before).
Prints figures; asserts nothing. Run: .venv/bin/python bench/bench_plan.py
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from core.specs import fabric  # noqa: E402

from nestnet.plan import load  # noqa: E402


def best(fn, n=5):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="nestnet-bench-"))
    print(f"{'fabric':>16} {'load+plan':>10} {'to JSON':>9} {'CLI plan --json':>16}  routes")
    for hosts, vms in ((100, 16), (400, 16), (1000, 4)):
        spec = tmp / f"f{hosts}.yaml"
        spec.write_text(yaml.safe_dump(fabric(hosts, vms, plen=27)))
        load(spec)  # write the lock once, as a user's first run would
        b_load, _ = best(lambda: load(spec))
        plan = load(spec).plan
        b_json, _ = best(lambda: json.dumps(plan.to_dict()))
        b_cli, _ = best(
            lambda: subprocess.run(
                [sys.executable, "-m", "nestnet", "plan", str(spec), "--json"],
                stdout=subprocess.DEVNULL, check=True,
            ),
            n=3,
        )
        nroutes = sum(len(h.routes) for h in plan.hosts.values())
        print(f"{hosts:>5} x {vms:>2} VMs   {b_load:>9.3f}s {b_json:>8.3f}s {b_cli:>15.3f}s  {nroutes} host routes")
    spec = tmp / "f1000.yaml"
    plan = load(spec).plan
    b_text, _ = best(lambda: plan.to_json(), n=3)
    b_dict, _ = best(lambda: json.dumps(plan.to_dict()), n=3)
    cpu: list[float] = []

    def cli_once() -> None:
        # CPU time of the child too: on a shared machine wall time also measures the neighbours
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-m", "nestnet", "plan", str(spec), "--json"],
                       stdout=subprocess.DEVNULL, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)

    b_cli, med = best(cli_once, n=5)
    print(f"plan --json, 1,000 hosts x 4 VMs: CLI {b_cli:.3f}s best, {med:.3f}s median wall, "
          f"{min(cpu):.3f}s CPU (target < 1 s; 2.4 s before); "
          f"JSON text {b_text:.3f}s vs to_dict+dumps {b_dict:.3f}s ({b_dict / b_text:.1f}x)")
    b_help, med = best(
        lambda: subprocess.run([sys.executable, "-m", "nestnet", "--help"], stdout=subprocess.DEVNULL, check=True)
    )
    b_py, _ = best(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))
    print(f"nestnet --help: {b_help:.3f}s best, {med:.3f}s median (bare python start-up {b_py:.3f}s)")


if __name__ == "__main__":
    main()
