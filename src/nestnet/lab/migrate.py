"""``nestnet lab migrate``: what a live migration does, in the lab, with the gap measured.

The guest keeps its namespace, addresses and MAC; its link (the host-side veth) moves from the old
host's bridge to the new one's, as a live migration moves the guest's tap. Meanwhile nestnet's
host-side steps run in the order of docs/decisions/0013 (the same functions the libvirt hook
calls), and the cloud's route change goes through the plan (the fabric is reprogrammed at once)
or, with ``--<cloud> api``, through ``nestnet <cloud> apply`` against the lab's emulated cloud API,
whose ``--propagation-delay`` makes the change take effect late, as in the cloud.

An endpoint and a nested VM on a third host ping the moving VM every 50 ms throughout; the gap is
the longest run of lost replies. Afterwards every pair of the moved plan is probed (the matrix)
and compared with ``check``'s verdict on the updated spec.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import HostError, LabError, UsageError
from ..names import unknown
from ..host import move
from ..netns import run_in
from ..plan import Plan, load_plan
from . import nodes
from .. import clouds
from ..model.state import CloudState
from .core import api_env, api_source, host_dirs, lab_api, require_root, require_up
from .sysio import parallel, run
from .topology import Topology

INTERVAL = 0.05  # seconds between echo requests, per prober
BASELINE = 1.0  # pinging before the move starts
TAIL = 1.0  # and after it is over
ROUTE_TIMEOUT = 60.0  # for the cloud's route change to reach the fabric


@dataclass
class Probe:
    src: str
    dst: str
    sent: int = 0
    lost: int = 0
    gap_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"src": self.src, "dst": self.dst, "sent": self.sent, "lost": self.lost, "gap_s": round(self.gap_s, 3)}


@dataclass
class Result:
    vm: str
    src_host: str
    dst_host: str
    source: str  # where the lab's cloud side comes from: "plan" or "api"
    probes: list[Probe]
    pairs: list[dict[str, Any]]
    timings: dict[str, float] = field(default_factory=dict)
    hook: dict[str, list[str]] = field(default_factory=dict)  # libvirt guests: the hook's journal, per host
    hook_errors: list[str] = field(default_factory=list)
    propagation_delay: float = 0.0
    cloud: str = clouds.DEFAULT  # the plan's cloud: the key its source has in the JSON

    @property
    def sent(self) -> int:
        return sum(p.sent for p in self.probes)

    @property
    def lost(self) -> int:
        return sum(p.lost for p in self.probes)

    @property
    def gap_s(self) -> float:
        return max((p.gap_s for p in self.probes), default=0.0)

    @property
    def ok(self) -> bool:
        return all(p["ok"] and p["check"] for p in self.pairs) and not self.hook_errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "lost": self.lost,
            "gap_s": round(self.gap_s, 3),
            "pairs": self.pairs,
            "vm": self.vm,
            "from": self.src_host,
            "to": self.dst_host,
            self.cloud: self.source,
            "probes": [p.to_dict() for p in self.probes],
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "propagation_delay_s": self.propagation_delay,
            **({"hook": self.hook, "hook_errors": self.hook_errors} if self.hook else {}),
        }


_SEQ = re.compile(r"\b(?:icmp_)?seq=(\d+)")  # iputils: icmp_seq=, busybox: seq=
_SENT = re.compile(r"(\d+) packets transmitted")


def parse_ping(src: str, dst: str, out: str, interval: float = INTERVAL, first_seq: int = 1) -> Probe:
    """Pure: sent, lost and the longest gap from ``ping -n -i`` output (ended by SIGINT);
    ``first_seq``: the first request's number (iputils 1, busybox 0).

    Replies still unanswered at the very end (at most two intervals' worth: in flight when ping
    was stopped) do not count as sent."""
    got = sorted({int(m.group(1)) + 1 - first_seq for m in _SEQ.finditer(out)})
    m = _SENT.search(out)
    sent = int(m.group(1)) if m else (got[-1] if got else 0)
    last = got[-1] if got else 0
    if 0 < sent - last <= 2:
        sent = last
    lost = sent - len([s for s in got if s <= sent])
    marks = [0, *got, sent + 1] if got else [0, sent + 1]
    gap = max((b - a - 1 for a, b in zip(marks, marks[1:])), default=0)
    return Probe(src, dst, sent, lost, gap * interval)


def probers(plan: Plan, vm: str, hosts: tuple[str, str]) -> list[str]:
    """Who pings the moving VM: the first endpoint and the first VM on a third host."""
    out = list(plan.endpoints)[:1]
    third = [v.name for v in plan.vms.values() if v.host not in hosts and v.name != vm]
    out += third[:1]
    if len(out) < 2:
        raise UsageError(
            f"{plan.source or plan.name}: lab migrate needs an endpoint and a VM on a third host to ping {vm!r}"
        )
    return out


def _refuse(plan: Plan, vm: str, to: str) -> str:
    """The old host, after checking the move can run in the lab; UsageError (exit 2) if not."""
    where = plan.source or plan.name
    if vm not in plan.vms:
        raise UsageError(f"{where}: no VM named {vm!r}{unknown(vm, plan.vms)}")
    if to not in plan.hosts:
        raise UsageError(f"{where}: no host named {to!r}{unknown(to, plan.hosts)}")
    src = plan.vms[vm].host
    if src == to:
        raise UsageError(f"{where}: VM {vm!r} already lives on {to}")
    if plan.guest_style != "shared":
        raise UsageError(
            f"{where}: nested.guest_style {plan.guest_style!r}: the guest's gateway is its host's own address, so "
            "it cannot move unchanged; use guest_style 'shared' (docs/decisions/0013) or vm move --renumber"
        )
    for h in (src, to):
        hp = plan.hosts[h]
        if hp.bridge_type != "linux" or hp.bridge_has_uplink:
            raise UsageError(f"{where}: host {h}: lab migrate moves guests between Linux bridges without the uplink")
    return src


class _Pingers:
    def __init__(self, plan: Plan, topo: Topology, vm: str, sources: list[str]):
        self.sources = sources
        self.vm = vm
        ip = str(plan.vms[vm].ip)
        self.procs = [
            subprocess.Popen(
                ["ip", "netns", "exec", topo.ns(s), "ping", "-n", "-i", str(INTERVAL), "-W", "1", ip],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            )
            for s in sources
        ]

    def stop(self) -> list[Probe]:
        out = []
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for s, p in zip(self.sources, self.procs):
            try:
                text, _ = p.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                text, _ = p.communicate()
            out.append(parse_ping(s, self.vm, text))
        return out


def _move_link(topo: Topology, vm: str, port: str, src: str, dst: str, bridge: str, forward: list[str]) -> None:
    """The migration's switch-over: the guest's link leaves the old host (whose /32 then goes into
    the tunnel, in the same ``ip`` process) and joins the new host's bridge."""
    run(["ip", "-n", topo.ns(src), "-batch", "-"],
        input="\n".join([f"link set {port} netns {topo.ns(dst)}", *forward]) + "\n", what="moving the guest's link")
    run(["ip", "-n", topo.ns(dst), "-batch", "-"],
        input=f"link set {port} master {bridge}\nlink set {port} up\n", what="attaching the guest's link")


def _api_apply(plan: Plan, host: str) -> None:
    """``nestnet <cloud> apply`` on ``host``, against the lab's emulated cloud API."""
    env = {**os.environ, **api_env(plan), "NESTNET_ROOT": host_dirs(plan, host)[0]}
    cloud = plan.cloud.cloud_name
    r = subprocess.run(
        ["ip", "netns", "exec", Topology.from_plan(plan).ns(host), sys.executable, "-m", "nestnet", cloud, "apply",
         plan.source], capture_output=True, text=True, env=env,
    )
    if r.returncode != 0:
        raise LabError(f"nestnet {cloud} apply (from {host}) failed: {(r.stderr or r.stdout).strip()[-300:]}")


def _wait_route(topo: Topology, plan: Plan, vm: str, timeout: float = ROUTE_TIMEOUT) -> None:
    """Until the fabric (the cloud's data plane) routes the VM's /32 as the plan says: to its new host,
    or (back in its own block) not at all."""
    fabric = clouds.of(plan).lab_fabric()
    dst = f"{plan.vms[vm].ip}/32"
    want = {r for r in fabric.desired(topo, CloudState.from_plan(plan)).table if r[0] == dst}
    deadline = time.monotonic() + timeout
    while {r for r in run_in(topo.sdn_ns, fabric.observe).table if r[0] == dst} != want:
        if time.monotonic() > deadline:
            raise LabError(f"{clouds.title(plan.cloud.cloud_name)}'s route for {vm} ({dst}) did not reach the fabric within {timeout:.0f} s")
        time.sleep(0.1)


def _pairs(plan: Plan) -> list[dict[str, Any]]:
    from ..model import Model, from_plan
    from .matrix import matrix

    model = Model(from_plan(plan))
    return [{**p.to_dict(), "check": model.ping(p.src, p.dst).ok == p.ok} for p in sorted(matrix(plan))]


def migrate(spec: str | Path, vm: str, to: str, source: str | None = None, propagation_delay: float = 0.0) -> Result:
    """Move VM to host TO in the running lab (and in the spec), measuring the gap.

    ``source``: where the lab's cloud side must come from ("plan", "api"; None: as it was brought up).
    ``propagation_delay`` (the cloud from the plan): the fabric takes the route change that much
    after the switch-over, as the cloud's takes effect late (with ``--<cloud> api`` the emulator's
    own delay, set at lab up, does that)."""
    from ..specedit import vm_move
    from .core import guest_config

    require_root()
    before = load_plan(spec, write=False)
    src = _refuse(before, vm, to)  # bad input first (2), then whether the lab is up (1)
    require_up(before)
    have, cloud = api_source(before), before.cloud.cloud_name
    if source is not None and source != have:
        raise UsageError(f"lab {before.name} takes {clouds.title(cloud)} from {have!r}: "
                         f"bring it up with --{cloud} {source} to migrate so")
    if propagation_delay and have == "api":
        raise UsageError(f"lab {before.name} takes {clouds.title(cloud)} from the {lab_api(before).emulator}: "
                         "its --propagation-delay is set at lab up")
    if guest_config(before.name) == "libvirt":
        from .livemigrate import migrate as live

        return live(spec, vm, to, propagation_delay)
    topo0 = Topology.from_plan(before)
    sources = probers(before, vm, (src, to))
    port = next(p.port for p in topo0.vm_ports if p.vm == vm)
    plan = vm_move(spec, vm, to).plan  # the spec first, as the hook expects it on every host
    topo = Topology.from_plan(plan)
    t: dict[str, float] = {}
    pingers = _Pingers(plan, topo, vm, sources)
    try:
        time.sleep(BASELINE)
        t0 = time.monotonic()
        # Prepare: the new host delivers locally and receives the tunnel; third hosts take the
        # moved plan (the cloud decides the path, so their /32 may come early); the old host's tunnel
        # entries are ready.
        root_to = host_dirs(plan, to)[0]
        jobs = [(topo.ns(to), move.arrive, (plan, to, vm, root_to))]
        jobs += [(topo.ns(h), nodes.reconcile, (plan, h, *host_dirs(plan, h))) for h in plan.hosts if h not in (src, to)]
        parallel(jobs)
        forward = run_in(topo.ns(src), move.prepare_departure, plan, src, vm)
        t["prepare"] = time.monotonic() - t0
        t1 = time.monotonic()
        _move_link(topo, vm, port, src, to, plan.hosts[to].bridge, forward)
        t["switch"] = time.monotonic() - t1
        t2 = time.monotonic()
        if have == "api":
            _api_apply(plan, to)
        else:
            time.sleep(propagation_delay)
            clouds.of(plan).lab_fabric().program_ns(topo, CloudState.from_plan(plan))
        _wait_route(topo, plan, vm)
        t[cloud] = time.monotonic() - t2  # the cloud's route change
        run_in(topo.ns(src), move.settle, plan, src, vm, host_dirs(plan, src)[0])
        run_in(topo.ns(to), move.retire_tunnel)
        time.sleep(TAIL)
    except (LabError, HostError) as exc:
        raise LabError(f"lab migrate {vm} to {to}: {exc} (the spec already says {vm} lives on {to})") from None
    finally:
        probes = pingers.stop()
    return Result(vm, src, to, have, probes, _pairs(plan), t, propagation_delay=propagation_delay, cloud=cloud)

