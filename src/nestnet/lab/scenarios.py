"""``nestnet lab demo --scenario adopt|add-host``: day one and day two, proven in the lab.

adopt     the seed fabric built by hand (``lab up --as-seed --<cloud> api``); while every nested
          VM pings every other nested VM and endpoint (fping, 40 probes/s per pair), the mgmt
          VM runs ``nestnet import`` against the lab's cloud API, adds the running VMs to the
          imported spec (``vm add``, as import's comment says) and ``nestnet rollout --adopt``
          (the cloud, then every host through Ansible over real sshd). Result: probes lost and sent,
          and the matrix afterwards.
add-host  three hosts brought up by ``rollout``; then, timed: ``host add`` + ``vm add`` +
          ``rollout`` for a fourth host (a fresh machine with sshd and its bridge, nothing of
          nestnet's), and the matrix until every pair is green.
migrate   the seed with what a live migration needs (guest style ``shared``, so a guest's gateway
          is the same on every host, and a third host to move to, so mgmt-vm and web2 on the
          other host can watch): ``lab migrate web1 --to vme-kvm-vm3``, its gap and the pairs.

Each runs against its own copy of the spec under a temporary directory and always tear the
lab down.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from ..errors import LabError
from ..plan import Plan, load_plan
from .core import api_env, down, lab_api, up
from .fleetlab import NESTNET, FleetLab
from .matrix import PingResult, matrix
from .topology import Topology

PROBE_PERIOD_MS = 25  # per target: 40 probes a second
STAT_RE = re.compile(r"^(\S+)\s*: xmt/rcv/%loss = (\d+)/(\d+)/")

Say = Callable[[str], None]


@dataclass
class Outcome:
    ok: bool
    doc: dict[str, Any] = field(default_factory=dict)


class Probes:
    """Every nested VM pings every other nested VM and every endpoint until ``stop``.

    One shell loop per VM namespace runs one-second fping rounds (``-c``: each round waits for
    its replies, so stopping loses nothing in flight); the per-target counts of all rounds add
    up to what was sent and what came back.
    """

    def __init__(self, plan: Plan, workdir: Path):
        self.plan, self.dir = plan, workdir
        self.stopfile = workdir / "probes.stop"
        self.procs: dict[str, subprocess.Popen] = {}
        self.targets: dict[str, list[str]] = {}

    def start(self) -> None:
        topo = Topology.from_plan(self.plan)
        count = 1000 // PROBE_PERIOD_MS
        for vm in self.plan.vms.values():
            targets = [str(v.ip) for v in self.plan.vms.values() if v.name != vm.name]
            targets += [str(e.ip) for e in self.plan.endpoints.values()]
            self.targets[vm.name] = targets
            loop = (f"while [ ! -e {self.stopfile} ]; do "
                    f"fping -q -c {count} -p {PROBE_PERIOD_MS} -t 500 {' '.join(targets)}; done")
            self.procs[vm.name] = subprocess.Popen(
                ["ip", "netns", "exec", topo.ns(vm.name), "sh", "-c", loop],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
            )

    def stop(self, timeout: float = 10.0) -> dict[str, Any]:
        self.stopfile.touch()
        names = {str(n.ip): n.name for n in [*self.plan.vms.values(), *self.plan.endpoints.values()]}
        sent = lost = 0
        per_pair: dict[tuple[str, str], list[int]] = {}
        for vm, p in self.procs.items():
            try:
                _, err = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
            for line in err.splitlines():
                m = STAT_RE.match(line.strip())
                if not m:
                    continue
                x, r = int(m.group(2)), int(m.group(3))
                pair = per_pair.setdefault((vm, names.get(m.group(1), m.group(1))), [0, 0])
                pair[0] += x
                pair[1] += r
                sent += x
                lost += x - r
        self.procs.clear()
        return {"lost": lost, "sent": sent,
                "probes": [{"src": s, "dst": d, "sent": v[0], "lost": v[0] - v[1]} for (s, d), v in sorted(per_pair.items())]}

    def kill(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
            p.wait()


@contextmanager
def _lab(plan: Plan, **kw: Any) -> Iterator[None]:
    up(plan, **kw)
    try:
        yield
    finally:
        down(plan)


def _copy_spec(src: Path, dst: Path, name: str | None) -> Path:
    data = yaml.safe_load(src.read_text())
    if name:
        data["name"] = name
    dst.write_text(yaml.safe_dump(data, sort_keys=False))
    return dst


def _check(r: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    if r.returncode not in (0,):
        raise LabError(f"{what} exited {r.returncode}: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
    return r


def adopt(seed_spec: Path, say: Say, name: str | None = None) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="nestnet-adopt-") as tmp:
        d = Path(tmp)
        spec = _copy_spec(seed_spec, d / "seed.yaml", name)
        lab_plan = load_plan(spec)
        with _lab(lab_plan, as_seed=True, **{lab_plan.cloud.cloud_name: "api"}):
            before = matrix(lab_plan)
            say(f"hand-built fabric: {sum(p.ok for p in before)}/{len(before)} pairs reachable")
            if red(before):
                return Outcome(False, {"error": "the hand-built fabric is not green", "pairs": [p.to_dict() for p in before]})
            fl = FleetLab(lab_plan, d)
            probes = Probes(lab_plan, d)
            try:
                fl.start()
                probes.start()
                time.sleep(1.0)  # a first round of probes before anything changes
                arm = api_env(lab_plan)
                out = d / "imported.yaml"
                t0 = time.monotonic()
                r = _check(fl.nestnet("import", *lab_api(lab_plan).import_args(lab_plan),
                                      "--out", str(out), "--name", lab_plan.name, "--json",
                                      *(f"--host-default={k}={v}" for k, v in _host_defaults(seed_spec).items()),
                                      arm=arm), "nestnet import")
                imported = json.loads(r.stdout)
                say(f"import: hosts {imported['hosts']}, endpoints {imported['endpoints']}")
                hosts_by_ip = {str(h.ip): n for n, h in load_plan(out, write=False).hosts.items()}
                for vm in lab_plan.vms.values():  # the running VMs, told to the spec as import says
                    host = hosts_by_ip[str(lab_plan.hosts[vm.host].ip)]
                    _check(subprocess.run([NESTNET, "vm", "add", str(out), vm.name, "--host", host, "--ip", str(vm.ip)],
                                          capture_output=True, text=True), "nestnet vm add")
                imported_plan = load_plan(out, write=False)
                r = _check(fl.nestnet("rollout", str(out), "--adopt", "--json", "--inventory",
                                      str(fl.inventory(imported_plan)), arm=arm), "nestnet rollout --adopt")
                t1 = time.monotonic()
                roll = json.loads(r.stdout)
                time.sleep(1.0)  # a last round after everything changed
                counts = probes.stop()
                again = json.loads(_check(fl.nestnet("rollout", str(out), "--dry-run", "--json", "--inventory",
                                                     str(fl.inventory(imported_plan)), arm=arm), "rollout --dry-run").stdout)
            finally:
                probes.kill()
                fl.close()
            pairs = matrix(lab_plan)
            second = len(again["steps"][0]["changes"]) + sum(len(h["changes"]) for h in again["steps"][1]["hosts"])
            doc = {
                **{k: counts[k] for k in ("lost", "sent")},
                "pairs_before": f"{len(before)}/{len(before)} ok (hand-built)",
                "pairs": [p.to_dict() for p in pairs],
                "import_and_rollout_s": round(t1 - t0, 2),
                "steps": [{"step": s["step"], "seconds": s["seconds"],
                           "changes": len(s["changes"]) if "changes" in s else sum(len(h["changes"]) for h in s["hosts"])}
                          for s in roll["steps"]],
                "second_run_changes": second,
                "probes": counts["probes"],
            }
            ok = counts["lost"] == 0 and counts["sent"] > 0 and all(p.ok for p in pairs) and second == 0
            return Outcome(ok, doc)


def _host_defaults(spec: Path) -> dict[str, str]:
    """What import cannot read from the cloud, told as a user would (the uplink)."""
    data = yaml.safe_load(spec.read_text())
    return {k: str(v) for k, v in (data.get("host_defaults") or {}).items()}


def red(pairs: list[PingResult]) -> list[PingResult]:
    return [p for p in pairs if not p.ok]


NEW_HOST = {"name": "vme-kvm-vm4", "ip": "10.0.1.13", "nic": "vme-kvm-vm4-vm-nic"}
THIRD_HOST = {"name": "vme-kvm-vm3", "ip": "10.0.1.12", "nic": "vme-kvm-vm3-vm-nic"}


def add_host(seed_spec: Path, say: Say, name: str | None = None, green_timeout: float = 60.0) -> Outcome:
    """3 hosts -> 4: ``host add`` + ``vm add`` + ``rollout``, timed until every pair is green."""
    from ..hostedit import host_add
    from ..specedit import vm_add

    with tempfile.TemporaryDirectory(prefix="nestnet-addhost-") as tmp:
        d = Path(tmp)
        spec = _copy_spec(seed_spec, d / "fabric.yaml", name)
        host_add(spec, **THIRD_HOST)
        vm_add(spec, "web3", THIRD_HOST["name"])
        # The machines that exist: the lab's spec is the fabric with the fourth host, which
        # Terraform made (its NIC exists, forwarding off) and nestnet has not touched yet.
        (d / "lab").mkdir()
        lab_spec = d / "lab" / "fabric.yaml"
        lab_spec.write_text(spec.read_text())
        lab_spec.with_suffix(".lock").write_text(spec.with_suffix(".lock").read_text())
        host_add(lab_spec, **NEW_HOST)
        vm_add(lab_spec, "web4", NEW_HOST["name"])
        lab_plan = load_plan(lab_spec)
        with _lab(lab_plan, bare=True, **{lab_plan.cloud.cloud_name: "api"}):
            fl = FleetLab(lab_plan, d)
            try:
                fl.start()
                arm = api_env(lab_plan)
                plan3 = load_plan(spec, write=False)
                r = _check(fl.nestnet("rollout", str(spec), "--json", "--inventory", str(fl.inventory(plan3)), arm=arm),
                           "first rollout")
                base = matrix(plan3)
                say(f"3 hosts by rollout: {sum(p.ok for p in base)}/{len(base)} pairs reachable")
                if red(base):
                    return Outcome(False, {"error": "the 3-host fabric is not green", "pairs": [p.to_dict() for p in base]})
                # -- timed from here: the commands a user runs, then the matrix until green --
                t0 = time.monotonic()
                host_add(spec, **NEW_HOST)
                vm_add(spec, "web4", NEW_HOST["name"])
                plan4 = load_plan(spec, write=False)
                inv = fl.inventory(plan4)
                t1 = time.monotonic()
                remote0 = fl.remote_cpu_s()
                r = _check(fl.nestnet("rollout", str(spec), "--json", "--inventory", str(inv), arm=arm), "rollout")
                t2 = time.monotonic()
                remote_cpu = fl.remote_cpu_s() - remote0
                roll = json.loads(r.stdout)
                rounds = 0
                while True:
                    pairs = matrix(plan4)
                    rounds += 1
                    if not red(pairs) or time.monotonic() - t2 > green_timeout:
                        break
                t3 = time.monotonic()
            finally:
                fl.close()
            ok = not red(pairs)
            doc = {
                "engine": "ansible",
                "convergence_s": round(t3 - t0, 2) if ok else None,
                "pairs": [p.to_dict() for p in pairs],
                "hosts": f"{len(plan3.hosts)} -> {len(plan4.hosts)}",
                "time": {
                    "spec_edit_s": round(t1 - t0, 2),
                    "rollout_s": round(t2 - t1, 2),
                    f"rollout_{lab_plan.cloud.cloud_name}_s": roll["steps"][0]["seconds"],
                    "rollout_hosts_s": roll["steps"][1]["seconds"],
                    "rollout_other_s": round((t2 - t1) - roll["steps"][0]["seconds"] - roll["steps"][1]["seconds"], 2),
                    # CPU (user+sys), which load does not inflate: ansible-playbook's tree on the
                    # controller, and what the hosts' sshd trees used (modules, `nestnet host apply`).
                    "hosts_controller_cpu_s": roll["steps"][1].get("cpu_s"),
                    "hosts_remote_cpu_s": round(remote_cpu, 2),
                    "matrix_s": round(t3 - t2, 2),
                    "matrix_rounds": rounds,
                },
                "changes": {
                    lab_plan.cloud.cloud_name: len(roll["steps"][0]["changes"]),
                    "hosts": {h["host"]: len(h["changes"]) for h in roll["steps"][1]["hosts"]},
                },
            }
            return Outcome(ok, doc)


def migrate(seed_spec: Path, say: Say, name: str | None = None) -> Outcome:
    """The seed, made mobile on a copy, and one live migration in the lab (``lab migrate``)."""
    from ..hostedit import host_add
    from .migrate import migrate as move

    with tempfile.TemporaryDirectory(prefix="nestnet-migrate-") as tmp:
        d = Path(tmp)
        data = yaml.safe_load(seed_spec.read_text())
        data["nested"]["guest_style"] = "shared"
        if name:
            data["name"] = name
        spec = d / "fabric.yaml"
        spec.write_text(yaml.safe_dump(data, sort_keys=False))
        host_add(spec, **THIRD_HOST)
        say(f"on a copy of the seed: guest_style shared, a third host {THIRD_HOST['name']} ({THIRD_HOST['ip']})")
        plan = load_plan(spec)
        with _lab(plan):
            say(f"lab up; moving web1 from {plan.vms['web1'].host} to {THIRD_HOST['name']}, pinged all along")
            res = move(spec, "web1", THIRD_HOST["name"])
        return Outcome(res.ok, res.to_dict())
