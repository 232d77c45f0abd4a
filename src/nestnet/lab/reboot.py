"""``nestnet lab reboot SPEC HOST|--all``: a real reboot of systemd lab hosts, timed until green.

For each host: ``systemctl poweroff`` inside and wait for systemd-nspawn to exit; the host's
network namespace deleted and made anew, so the kernel's state (routes, sysctls, nft tables,
links) starts empty as after a power cycle; its NIC plugged into the fabric again (what the cloud
does when the VM starts); then the same overlay booted again. Nothing of nestnet runs except
what the host's own boot starts (units, networkd files, sysctl.d). With namespace guests the lab
then plays libvirt: once the nested bridge exists it plugs the VMs' ports in and the guests
configure themselves as at their first boot. With libvirt guests (``--guests libvirt``) the host's
own libvirt does it: at poweroff ``libvirt-guests`` saves each running guest (``ON_SHUTDOWN=suspend``,
set by the lab as KVM hosts commonly are; Debian ships ``shutdown``, lab/livemigrate.py), and at boot
libvirtd restores the autostart domains (``virsh autostart``, set for every guest) from that save,
memory and all; nestnet's hook runs at each start (``started begin``: arrive, idempotent). ``green_s`` is from the start of the boot until every pair of the host
(the host and its VMs, to and from every node) answers in ``lab matrix``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import LabError
from ..netns import run_in
from ..plan import Plan
from .matrix import matrix as run_matrix
from .. import netns
from . import libvirt, nodes, systemd
from .. import clouds
from .core import api_source, guest_config, is_systemd, read_faults, require_root, require_up, state_dir
from .sysio import link_gone, parallel
from .topology import Topology

GREEN_TIMEOUT = 120.0


@dataclass(frozen=True)
class Rebooted:
    host: str
    down_s: float  # poweroff until nspawn exited
    running_s: float  # boot until systemd said running
    green_s: float | None  # boot until every pair of the host was green (None: not within the timeout)

    def to_dict(self) -> dict[str, object]:
        r = lambda x: None if x is None else round(x, 2)  # noqa: E731
        return {"host": self.host, "down_s": r(self.down_s), "running_s": r(self.running_s), "green_s": r(self.green_s)}


def _pairs_of(plan: Plan, host: str) -> set[str]:
    return {host, *plan.hosts[host].vms}


def reboot(plan: Plan, hosts: list[str], timeout: float = GREEN_TIMEOUT) -> list[Rebooted]:
    require_root()
    require_up(plan)
    state = state_dir(plan.name)
    if not is_systemd(plan.name):
        raise LabError(f"lab {plan.name} runs its hosts as namespaces: lab reboot needs lab up --hosts systemd")
    in_libvirt = guest_config(plan.name) == "libvirt"
    topo = Topology.from_plan(plan)
    if api_source(plan) != "plan":  # pragma: no cover - refused at lab up
        raise LabError(f"lab reboot: only with {clouds.title(plan.cloud.cloud_name)} from the plan")
    fabric = clouds.of(plan).lab_fabric()
    cloud = fabric.with_faults(plan, read_faults(plan.name))

    def power_off(h: str) -> float:
        t = time.monotonic()
        systemd.stop(systemd.dirs(state, h))
        return time.monotonic() - t

    downs = dict(zip(hosts, systemd._each(power_off, hosts)))
    # the hosts' namespaces anew (the kernel frees the old ones, with both ends of every veth,
    # in its own time: wait until the fabric's port and each VM's eth0 are gone)
    for h in hosts:
        netns.delete(topo.ns(h))
        netns.add(topo.ns(h))
    parallel([(topo.sdn_ns, link_gone, (next(n.port for n in topo.nics if n.node == h),)) for h in hosts])
    vms = [v for h in hosts for v in plan.hosts[h].vms]
    if not in_libvirt:  # libvirt guests have no namespace of their own: they live in their host
        parallel([(topo.ns(v), link_gone, ("eth0",)) for v in vms])
    run_in(topo.sdn_ns, fabric.replug, topo, hosts, cloud)

    started: dict[str, float] = {}
    running: dict[str, float] = {}

    def boot(h: str) -> None:
        d = systemd.dirs(state, h)
        started[h] = time.monotonic()
        systemd.start(plan, plan.hosts[h], d, topo.ns(h))
        if in_libvirt:
            # the host's own libvirt brings its guests back (libvirt-guests restores what it saved
            # at poweroff; autostart starts what it did not): nothing is started from outside
            systemd.wait_running(h, d)
            libvirt.wait_running(plan, state, h)
        else:
            # libvirt's part: the guests' ports once the bridge (networkd's, from nestnet's files) exists
            systemd.wait_link(d, plan.hosts[h].bridge)
            run_in(topo.ns(h), nodes.vm_ports, plan, topo, h)
            parallel([(topo.ns(v), nodes.vm, (plan, v)) for v in plan.hosts[h].vms])
            systemd.wait_running(h, d)
        running[h] = time.monotonic() - started[h]

    systemd._each(boot, hosts)
    green: dict[str, float] = {}
    deadline = min(started.values()) + timeout
    while len(green) < len(hosts) and time.monotonic() < deadline:
        try:
            pairs = run_matrix(plan)
        except LabError:  # a libvirt guest's agent not answering yet: its host is not green yet
            time.sleep(0.5)
            continue
        now = time.monotonic()
        for h in hosts:
            if h in green:
                continue
            mine = _pairs_of(plan, h)
            if all(p.ok for p in pairs if p.src in mine or p.dst in mine):
                green[h] = now - started[h]
    return [Rebooted(h, downs[h], running[h], green.get(h)) for h in hosts]
