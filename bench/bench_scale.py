"""Issue 24's scale goals at 1,000 hosts x 16 VMs (routed and nat), every command through the CLI
in a fresh interpreter: wall seconds, CPU seconds and peak memory (max RSS) of that process.

    plan --json            < 0.5 s        vm add / rm / move     < 0.5 s each, comments kept
    check (and --json)     < 1.5 s, < 300 MB in routed and nat modes
    report                 < 5 s at 1,000 hosts
    azure apply            <= 2 write requests per added host (the emulator's counts), any size

With ``--before SRC`` (the ``src`` of an older checkout, e.g. ``git worktree add --detach /tmp/old
main``) every command also runs from that source, side by side, with the ratio. A run that
exceeds ``--limit-mb`` of address space (default 4,000) or ``--timeout`` seconds (default 120) is
killed and shown as such: nat mode before issue 24 grew to 22 GB. Prints figures, asserts nothing.
Run: .venv/bin/python bench/bench_scale.py [--before /tmp/old/src] [--hosts 1000] [--only check]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from core.specs import fabric  # noqa: E402

GOALS = {"plan --json": 0.5, "vm add": 0.5, "vm rm": 0.5, "vm move": 0.5, "check": 1.5, "check --json": 1.5,
         "report": 5.0}
COMMENT = "# a comment the edits must keep\n"


def spec_text(hosts: int, vms: int, mode: str) -> str:
    spec = fabric(hosts, vms, plen=27, pool="10.64.0.0/12")
    spec["subnets"].append({"name": "mgmt", "prefix": "10.1.0.0/24"})
    spec["endpoints"] = [{"name": "mgmt-vm", "ip": "10.1.0.5", "subnet": "mgmt"}]
    spec["nested"]["mode"] = mode
    text = yaml.safe_dump(spec, sort_keys=False)
    # comments in three places: the top, inside hosts, inside vms
    text = COMMENT + text.replace("\n- name: h1\n", f"\n{COMMENT}- name: h1\n", 1)
    return text.replace("\n- name: h1-v1\n", f"\n{COMMENT}- name: h1-v1\n", 1)


class Run:
    def __init__(self, wall: float, cpu: float, rss_mb: float, rc: int, killed: str = ""):
        self.wall, self.cpu, self.rss_mb, self.rc, self.killed = wall, cpu, rss_mb, rc, killed

    def __str__(self) -> str:
        if self.killed:
            return f"{self.killed:>28}"
        return f"{self.wall:6.2f}s {self.cpu:6.2f}s CPU {self.rss_mb:6.0f} MB"


def run(argv: list[str], src: str | None, limit_mb: int, timeout: float, out: Path | None = None) -> Run:
    """One CLI run; its own rusage (os.wait4), not the sum of every child so far."""
    env = dict(os.environ, PYTHONPATH=src) if src else dict(os.environ)
    env["NO_COLOR"] = "1"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_mb << 20, limit_mb << 20))

    sink = open(out, "wb") if out else subprocess.DEVNULL
    t = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "nestnet", "-q", *argv], stdout=sink, stderr=subprocess.PIPE,
                         env=env, preexec_fn=limit)
    deadline = t + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            p.kill()
            os.wait4(p.pid, 0)
            return Run(timeout, timeout, 0, -9, f"killed after {timeout:.0f} s")
        time.sleep(0.01)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    if out:
        sink.close()
    err = p.stderr.read().decode(errors="replace")
    rc = p.returncode
    if rc not in (0, 1):
        low = "MemoryError" in err or rc in (-9, 70) and "Memory" in err
        return Run(wall, 0, 0, rc, f"over {limit_mb} MB" if low else f"exit {rc}: {err.strip()[-60:]}")
    return Run(wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, rc)


def commands(d: Path, hosts: int, vms: int, only: str | None):
    """(label, mode, argv, prepare) for every measured command; ``prepare`` resets the spec."""
    for mode in ("routed", "nat"):
        path = d / f"{mode}.yaml"
        text = spec_text(hosts, vms, mode)

        def prepare(path=path, text=text) -> None:
            path.write_text(text)
            path.with_suffix(".lock").unlink(missing_ok=True)  # an edit's allocations go with it

        yield "plan --json", mode, ["plan", str(path), "--json"], prepare
        yield "check", mode, ["check", str(path)], prepare
        yield "check --json", mode, ["check", str(path), "--json"], prepare
        if mode == "routed":
            yield "vm add", mode, ["vm", "add", str(path), "bench-new", "--host", "h5"], prepare
            yield "vm rm", mode, ["vm", "rm", str(path), "h7-v3"], prepare
            yield "vm move", mode, ["vm", "move", str(path), "h8-v2", "--to", "h9", "--renumber"], prepare
            yield "report", mode, ["report", str(path), "--out", str(d / "report.html")], prepare
            yield "report --fault", mode, ["report", str(path), "--fault", "nic-forwarding-off:h7",
                                           "--out", str(d / "report.html")], prepare
            yield "check --fault", mode, ["check", str(path), "--fault", "nic-forwarding-off:h7"], prepare


def measure(d: Path, hosts: int, vms: int, src: str | None, args) -> dict:
    out: dict = {}
    for label, mode, argv, prepare in commands(d, hosts, vms, args.only):
        if args.only and args.only not in label:
            continue
        prepare()
        # the lock exists already, as after a user's first `plan`
        run(["plan", argv[1] if argv[0] != "vm" else argv[2]], src, args.limit_mb, args.timeout)
        best = None
        for _ in range(1 if label.startswith(("vm", "report")) or src else args.reps):
            prepare()
            r = run(argv, src, args.limit_mb, args.timeout)
            if best is None or (not r.killed and r.wall < best.wall):
                best = r
            if r.killed:
                break
        if label.startswith("vm"):
            kept = (d / f"{mode}.yaml").read_text().count(COMMENT)
            best.killed = best.killed or ""
            best.note = f"comments kept: {kept}/3"
        out[(label, mode)] = best
    return out


def azure_writes(hosts: int) -> str:
    """Write requests to the emulator for adding 1 and 10 hosts to a fabric of ``hosts``."""
    from nestnet.clouds.azure.arm import ArmClient, ArmSettings
    from nestnet.clouds.azure.emulator import DEFAULT_SUBSCRIPTION, Arm, Emulator
    from nestnet.clouds.azure.reconcile import reconcile
    from nestnet.plan import load_plan

    def spec(n: int) -> dict:
        return {
            "version": 1, "name": "bench",
            "azure": {"resource_group": "rg", "location": "westeurope", "vnet": "vnet",
                      "address_space": ["10.0.0.0/8"], "route_table": "rt", "max_routes": 1000},
            "subnets": [{"name": "hosts", "prefix": "10.0.0.0/16"}],
            "nested": {"pool": "10.64.0.0/12", "block_prefix_len": 28},
            "hosts": [{"name": f"h{i}", "ip": f"10.0.{i // 250}.{i % 250 + 4}"} for i in range(n)],
        }

    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        p = d / "spec.yaml"
        p.write_text(yaml.safe_dump(spec(hosts - 11)))
        arm = Arm(d / "arm", max_routes=1000)  # newer regions allow 1,000 (DESIGN §3.6)
        arm.seed(load_plan(p))
        em = Emulator(arm).start()
        try:
            client = ArmClient(ArmSettings(em.url, DEFAULT_SUBSCRIPTION, "rg", str(em.ca_pem), "bench"))
            reconcile(client, load_plan(p))
            for added, n in ((1, hosts - 10), (10, hosts)):
                p.write_text(yaml.safe_dump(spec(n)))
                plan = load_plan(p)
                arm.seed(plan)
                before = arm.stats.to_dict()
                t = time.perf_counter()
                reconcile(client, plan)
                dt = time.perf_counter() - t
                after = arm.stats.to_dict()
                w = after["writes"] - before["writes"]
                lines.append(f"azure apply at {n} hosts, {added} added: {w} writes ({w / added:.1f} per added host, "
                             f"goal <= 2), {after['reads'] - before['reads']} reads, {dt:.2f} s")
        finally:
            em.stop()
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", metavar="SRC")
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--vms", type=int, default=16)
    ap.add_argument("--only")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--limit-mb", type=int, default=4000)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--no-azure", action="store_true")
    args = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="nestnet-bench-scale-"))
    try:
        now = measure(d, args.hosts, args.vms, None, args)
        before = measure(d, args.hosts, args.vms, args.before, args) if args.before else {}
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(f"{args.hosts} hosts x {args.vms} VMs, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}; "
          f"best of {args.reps} (vm and report: 1 run)")
    print(f"{'command':<16}{'mode':<8}{'now':>30}{'before':>30}{'ratio':>8}{'goal':>8}")
    for key, r in now.items():
        b = before.get(key)
        ratio = "" if b is None or b.killed or r.killed else f"{b.wall / r.wall:7.1f}x"
        if b is not None and b.killed and not r.killed:
            ratio = "    inf"
        goal = GOALS.get(key[0])
        print(f"{key[0]:<16}{key[1]:<8}{str(r):>30}{str(b) if b else '':>30}{ratio:>8}"
              f"{f'< {goal} s' if goal else '':>8}  {getattr(r, 'note', '')}"
              f"{'  before: ' + b.note if b is not None and getattr(b, 'note', '') else ''}")
    if not args.no_azure and not args.only:
        print(azure_writes(args.hosts))


if __name__ == "__main__":
    main()
