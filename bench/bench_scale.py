"""Issue 24's scale goals, every row of its table: each command through the CLI in a fresh
interpreter, its wall seconds, CPU seconds and peak memory (max RSS), side by side with the same
command run from an older checkout (``--before SRC``: today's main at the session's start) and
with the goal, as ratios.

    plan --json            < 0.5 s at 1,000 x 16; < 2 s at 4,096 x 15 (with the spec's lock; "(new)": none yet)
    vm add / rm / move     < 0.5 s at either size, comments kept
    check (and --json)     < 1.5 s and < 300 MB at 1,000 x 16 in every mode; < 4 s at 4,096 x 15
    report                 < 5 s at 1,000 hosts
    azure apply            <= 2 write requests per added host (the emulator's counts), any size

1,000 x 16 runs in every mode (routed, secondary-ip, nat, nic-prefix), 4,096 x 15 in those that hold that
many hosts (routed stops at azure.max_routes): secondary-ip, nat, and nic-prefix where this
nestnet knows it. ``before`` is e.g. ``git worktree add --detach /tmp/old main`` and
``--before /tmp/old/src``. A run over ``--limit-mb`` of address space (default 4,000) or
``--timeout`` seconds (default 120) is killed and shown so: nat mode before issue 24 grew to 22 GB.
The machine is shared: CPU seconds are the steadier figure, the goal ratio uses wall seconds.
Prints figures, asserts nothing.
Run: .venv/bin/python bench/bench_scale.py [--before /tmp/old/src] [--sizes 1000x16,4096x15] [--only check]
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

COMMENT = "# a comment the edits must keep\n"
MODES_AT = {1000: ("routed", "secondary-ip", "nat", "nic-prefix"), 4096: ("secondary-ip", "nat", "nic-prefix")}


def goal(label: str, hosts: int) -> tuple[float | None, float | None]:
    """(seconds, MB) the issue asks of ``label`` at ``hosts``."""
    big = hosts > 1000
    if label == "plan --json":  # with the spec's lock; "(new)": the first plan, allocating everything
        return (2.0 if big else 0.5), None
    if label.startswith("vm "):
        return 0.5, None
    if label in ("check", "check --json"):
        return (4.0, None) if big else (1.5, 300.0)
    if label == "report":
        return 5.0, None
    return None, None


def spec_text(hosts: int, vms: int, mode: str) -> str:
    spec = fabric(hosts, vms, plen=28 if mode == "nic-prefix" else 27, pool="10.64.0.0/12")
    spec["subnets"].append({"name": "mgmt", "prefix": "10.1.0.0/24"})
    spec["endpoints"] = [{"name": "mgmt-vm", "ip": "10.1.0.5", "subnet": "mgmt"}]
    spec["nested"]["mode"] = mode
    if mode in ("secondary-ip", "nic-prefix"):  # the blocks are addresses of the hosts' subnet
        spec["subnets"][0]["prefix"] = "10.64.0.0/10"
        for i, h in enumerate(spec["hosts"]):
            h["ip"] = f"10.96.{i // 250}.{i % 250 + 4}"
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
    # Bytecode cached as an installed nestnet has it (pip compiles at install): with
    # PYTHONDONTWRITEBYTECODE set, as on the developers' machines, every run compiled nestnet
    # from source first (40 ms of each command). The priming run fills the cache.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / f"nestnet-bench-pyc-{os.getuid()}")

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


def commands(d: Path, hosts: int, vms: int):
    """(label, mode, argv, prepare) for every measured command; ``prepare`` resets the spec."""
    for mode in MODES_AT.get(hosts, ("routed", "secondary-ip", "nat")):
        path = d / f"{mode}-{hosts}.yaml"
        text = spec_text(hosts, vms, mode)

        def prepare(path=path, text=text) -> None:
            path.write_text(text)
            path.with_suffix(".lock").unlink(missing_ok=True)  # an edit's allocations go with it

        edits = mode == ("routed" if hosts <= 1000 else "nat")
        yield "plan --json", mode, ["plan", str(path), "--json"], prepare
        yield "plan --json (new)", mode, ["plan", str(path), "--json"], prepare
        yield "check", mode, ["check", str(path)], prepare
        yield "check --json", mode, ["check", str(path), "--json"], prepare
        if edits:
            yield "vm add", mode, ["vm", "add", str(path), "bench-new", "--host", "h5"], prepare
            yield "vm rm", mode, ["vm", "rm", str(path), "h7-v3"], prepare
            yield "vm move", mode, ["vm", "move", str(path), "h8-v2", "--to", "h9", "--renumber"], prepare
        if mode == "routed":
            yield "report", mode, ["report", str(path), "--out", str(d / "report.html")], prepare
            yield "report --fault", mode, ["report", str(path), "--fault", "nic-forwarding-off:h7",
                                           "--out", str(d / "report.html")], prepare
            yield "check --fault", mode, ["check", str(path), "--fault", "nic-forwarding-off:h7"], prepare


def measure(d: Path, hosts: int, vms: int, src: str | None, args) -> dict:
    out: dict = {}
    for label, mode, argv, prepare in commands(d, hosts, vms):
        if args.only and args.only not in label:
            continue
        prepare()
        # the lock exists already, as after a user's first `plan`
        # (--json: the tables for people take rich 20 s at 4,096 hosts, and this run is not measured)
        first = run(["plan", argv[1] if argv[0] != "vm" else argv[2], "--json"], src, args.limit_mb, args.timeout)
        if first.rc not in (0, 1) or first.killed:
            out[(label, mode)] = Run(0, 0, 0, first.rc, first.killed)  # e.g. a mode this nestnet does not know
            continue
        lock = (d / f"{mode}-{hosts}.lock")
        lock_text = lock.read_text() if lock.exists() else None
        best = None
        for _ in range(1 if label.startswith(("vm", "report")) or "(new)" in label else args.reps):
            prepare()
            if lock_text is not None and "(new)" not in label:  # the spec's own lock, as primed
                lock.write_text(lock_text)
            r = run(argv, src, args.limit_mb, args.timeout)
            if best is None or (not r.killed and r.wall < best.wall):
                best = r
            if r.killed:
                break
        if label.startswith("vm"):
            kept = (d / f"{mode}-{hosts}.yaml").read_text().count(COMMENT)
            best.note = f"comments kept: {kept}/3"
        out[(label, mode)] = best
    return out


def azure_writes(hosts: int, mode: str) -> list[str]:
    """Write requests to the emulator for adding 1 and 10 hosts to a fabric of ``hosts``."""
    from nestnet.clouds.azure.arm import ArmClient, ArmSettings
    from nestnet.clouds.azure.emulator import DEFAULT_SUBSCRIPTION, Arm, Emulator
    from nestnet.clouds.azure.reconcile import reconcile
    from nestnet.errors import SpecError
    from nestnet.plan import load_plan

    def spec(n: int) -> dict:
        inside = mode in ("secondary-ip", "nic-prefix")  # the blocks are addresses of the hosts' subnet
        return {
            "version": 1, "name": "bench",
            "azure": {"resource_group": "rg", "location": "westeurope", "vnet": "vnet",
                      "address_space": ["10.0.0.0/8"], "route_table": "rt", "max_routes": 1000},
            "subnets": [{"name": "hosts", "prefix": "10.64.0.0/10" if inside else "10.0.0.0/16"}],
            "nested": {"pool": "10.64.0.0/12", "block_prefix_len": 28, "mode": mode},
            "hosts": [{"name": f"h{i}", "ip": f"10.{96 if inside else 0}.{i // 250}.{i % 250 + 4}"} for i in range(n)],
        }

    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        p = d / "spec.yaml"
        p.write_text(yaml.safe_dump(spec(hosts - 11)))
        try:
            first = load_plan(p)
        except SpecError as exc:
            return [f"azure apply {mode} at {hosts} hosts: {exc.problems[0].message[:70]}"]
        arm = Arm(d / "arm", max_routes=1000)  # newer regions allow 1,000 (DESIGN §3.6)
        arm.seed(first)
        em = Emulator(arm).start()
        try:
            # the deadline covers the whole bench (1,000 NICs written once first), not one command
            client = ArmClient(ArmSettings(em.url, DEFAULT_SUBSCRIPTION, "rg", str(em.ca_pem), "bench", timeout=3600))
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
                lines.append(f"azure apply {mode:<12} at {n} hosts, {added:>2} added: {w:>3} writes "
                             f"({w / added:.1f} per added host, goal <= 2: {'met' if w <= 2 * added else 'NOT met'}), "
                             f"{after['reads'] - before['reads']} reads, {dt:.2f} s")
        finally:
            em.stop()
    return lines


def table(results: dict, before: dict, reps: int) -> list[str]:
    head = (f"{'size':<9}{'command':<16}{'mode':<14}{'now':>28}{'before':>28}{'CPU x':>7}"
            f"{'goal':>9}{'wall/goal':>10}  notes")
    lines = [head, "-" * len(head)]
    for (size, label, mode), r in results.items():
        b = before.get((size, label, mode))
        speed = ""
        if b is not None and not b.killed and not r.killed and r.cpu:
            speed = f"{b.cpu / r.cpu:6.1f}x"
        elif b is not None and b.killed and not r.killed:
            speed = "  inf"
        g_s, g_mb = goal(label, int(size.split("x")[0]))
        g = f"< {g_s:g} s" if g_s else ""
        ratio = f"{r.wall / g_s:9.2f}" if g_s and not r.killed else ""
        notes = [getattr(r, "note", "")]
        if g_mb and not r.killed:
            notes.append(f"{r.rss_mb:.0f}/{g_mb:.0f} MB {'met' if r.rss_mb < g_mb else 'NOT met'}")
        if g_s and not r.killed:
            notes.append("met" if r.wall < g_s else f"CPU {'met' if r.cpu < g_s else 'NOT met'}, wall not")
        if b is not None and getattr(b, "note", ""):
            notes.append("before: " + b.note)
        lines.append(f"{size:<9}{label:<16}{mode:<14}{str(r):>28}{str(b) if b else '':>28}{speed:>7}"
                     f"{g:>9}{ratio:>10}  {'; '.join(n for n in notes if n)}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", metavar="SRC")
    ap.add_argument("--sizes", default="1000x16,4096x15", help="HOSTSxVMS,...")
    ap.add_argument("--only")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--limit-mb", type=int, default=4000)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--no-azure", action="store_true")
    args = ap.parse_args()
    sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]
    now: dict = {}
    before: dict = {}
    d = Path(tempfile.mkdtemp(prefix="nestnet-bench-scale-"))
    try:
        for hosts, vms in sizes:
            size = f"{hosts}x{vms}"
            now.update({(size, *k): r for k, r in measure(d, hosts, vms, None, args).items()})
            if args.before:
                before.update({(size, *k): r for k, r in measure(d, hosts, vms, args.before, args).items()})
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}; best of {args.reps} by wall (vm and report: "
          "1 run); each cell: wall, CPU, max RSS; CPU x = before's CPU / now's")
    print("\n".join(table(now, before, args.reps)))
    if not args.no_azure and not args.only:
        for hosts, _ in sizes:
            for mode in ("routed", "secondary-ip", "nic-prefix") if hosts <= 1000 else ("secondary-ip", "nic-prefix"):
                print("\n".join(azure_writes(hosts, mode)))


if __name__ == "__main__":
    main()
