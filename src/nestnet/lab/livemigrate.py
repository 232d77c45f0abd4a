"""``nestnet lab migrate`` in a libvirt-guest lab: ``virsh migrate --live`` between booted hosts.

The guest is a QEMU (TCG) domain in one host container (lab/libvirt.py); the lab runs, inside
that host, what its admin would: ``virsh migrate --live --p2p --persistent --undefinesource VM
qemu+tcp://<new host's uplink address>/system --migrateuri tcp://<same>`` (``--p2p``: the old
host's libvirtd drives the migration itself, one round trip fewer while the guest is paused:
libvirt's downtime 307 ms against 438 ms through virsh, here under load). Both the libvirt
connection and QEMU's migration stream go over the lab's cloud fabric (the hosts' uplinks, which
exist only inside the lab's namespaces); the guest boots from a kernel and initrd that every host
has, so no storage is copied. nestnet's host-side steps are not run by the lab: libvirt calls
nestnet's qemu hook (``migration_hook: true``, installed by ``host apply``) on the destination at
``migrate begin`` (arrive) and on the source at ``stopped end`` (depart), as on a real host; the
hook writes what it did to the host's journal (``journalctl -t nestnet-hook``), which the result
carries. The cloud's route change follows the migration (``--propagation-delay``: that much later,
as the cloud's takes effect late); then ``host apply`` on the old host settles the tunnel away.

The gap is measured both ways, 50 ms apart: the first endpoint pings the VM (``ping`` in its
namespace), and the VM pings the endpoint (busybox ``ping`` inside the guest, started and read
through its agent). Afterwards every pair is probed (from inside the guests) and compared with
``check``.

Lab only: libvirtd takes TCP connections without authentication (``auth_tcp = "none"``), reachable
only on the lab's fabric. A real fleet uses qemu+ssh or qemu+tls between its hosts.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from ..errors import HostError, LabError, UsageError
from ..host import libvirt_hook, move
from ..ipam import lock_path
from ..netns import run_in
from ..plan import Plan, load_plan
from .. import clouds
from ..model.state import CloudState
from . import libvirt, systemd
from .core import api_source, require_root, require_up, state_dir
from .migrate import BASELINE, INTERVAL, TAIL, Probe, Result, _Pingers, _pairs, _refuse, _wait_route, parse_ping
from .topology import Topology

LIBVIRTD_CONF = "etc/libvirt/libvirtd.conf"
TCP_SOCKET = "libvirtd-tcp.socket"
# Debian ships libvirt-guests with ON_SHUTDOWN=shutdown and ON_BOOT=ignore: a guest without ACPI
# (the lab's busybox guest) is then waited for 300 s at poweroff, and autostart boots it afresh.
# The lab's hosts are set as KVM hosts commonly are, so their guests survive a reboot with their
# state: saved at poweroff (managedsave), restored at boot.
GUESTS_DEFAULTS = "etc/default/libvirt-guests"
MARK = "# nestnet lab: migrations between the lab's hosts"
MIGRATE_TIMEOUT = 300.0  # TCG on 2 shared cores; the copy itself takes a second or two
GUEST_LOG = "/tmp/nestnet-probe.log"
GUEST_PID = "/tmp/nestnet-probe.pid"


def prepare_overlay(plan: Plan, root: Path) -> None:
    """Before a host's first boot (its overlay): libvirtd accepts the other hosts' connections
    (TCP, no authentication: lab only), libvirt-guests saves and restores the guests across a
    reboot, and, where the hook is installed, the spec is where the hook reads it
    (``/etc/nestnet/nestnet.yaml``, as fleet apply copies it)."""
    conf = root / LIBVIRTD_CONF
    text = conf.read_text() if conf.exists() else ""
    if MARK not in text:
        conf.write_text(text + f"\n{MARK}: TCP without authentication, on the lab's fabric only\n"
                        'auth_tcp = "none"\n')
    wants = root / "etc/systemd/system/sockets.target.wants" / TCP_SOCKET
    wants.parent.mkdir(parents=True, exist_ok=True)
    if not wants.is_symlink():
        wants.symlink_to(f"/lib/systemd/system/{TCP_SOCKET}")
    guests = root / GUESTS_DEFAULTS
    text = guests.read_text() if guests.exists() else ""
    if MARK not in text:
        guests.parent.mkdir(parents=True, exist_ok=True)
        guests.write_text(text + f"\n{MARK} and reboots: guests saved at poweroff, restored at boot\n"
                          "ON_SHUTDOWN=suspend\nON_BOOT=start\n")
    # Debian 12's libvirt-guests is ordered after libvirtd's sockets only: at poweroff systemd
    # stopped libvirtd while libvirt-guests was saving a guest, and the save failed (seen here)
    dropin = root / "etc/systemd/system/libvirt-guests.service.d/nestnet-lab.conf"
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text(f"{MARK}: stop the guests before libvirtd\n[Unit]\nAfter=libvirtd.service\n")
    install_spec(plan, root)


LIBVIRT_PORTS = "16509,49152:49215"  # libvirtd's TCP socket, QEMU's migration ports (qemu.conf defaults)


def open_libvirt_ports(plan: Plan, state: Path, host: str) -> None:
    """On a host whose UFW is on: the other hosts may reach its libvirtd and QEMU's migration ports,
    as the admin of UFW hosts allows them (``ufw allow``; nestnet's own move tunnel is host apply's)."""
    d = systemd.dirs(state, host)
    if "Status: active" not in systemd.run_inside(d, ["ufw", "status"], timeout=60).stdout:
        return
    for h in plan.hosts.values():
        if h.name != host:
            _inside(state, host, ["ufw", "allow", "proto", "tcp", "from", str(h.ip), "to", "any", "port",
                                  LIBVIRT_PORTS], f"ufw allow from {h.ip} (libvirt's ports)", 60)


def install_spec(plan: Plan, root: Path) -> None:
    """The spec and its lock into the host's ``/etc/nestnet/`` (what the hook reads), as
    ``fleet apply`` copies them; only when a host has the hook."""
    if not plan.source or not any(h.migration_hook for h in plan.hosts.values()):
        return
    from ..store import write_atomic

    d = root / Path(libvirt_hook.SPEC_PATH).parent.relative_to("/")
    d.mkdir(parents=True, exist_ok=True)
    write_atomic(d / Path(libvirt_hook.SPEC_PATH).name, Path(plan.source).read_text())
    lock = lock_path(plan.source)
    if lock.exists():
        write_atomic(lock_path(d / Path(libvirt_hook.SPEC_PATH).name), lock.read_text())


def virsh_migrate_argv(plan: Plan, vm: str, to: str) -> list[str]:
    """Pure: the migration as the old host's admin runs it (``plan``: after the move)."""
    dst = plan.hosts[to].ip
    return ["virsh", "migrate", "--live", "--p2p", "--persistent", "--undefinesource", vm,
            f"qemu+tcp://{dst}/system", "--migrateuri", f"tcp://{dst}"]


def downtime_s(jobinfo: str) -> float | None:
    """Pure: libvirt's ``Total downtime`` of a completed migration (``virsh domjobinfo --completed``)."""
    for line in jobinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Total downtime" and value.split():
            return int(value.split()[0]) / 1000
    return None


def _refuse_hook(plan: Plan, src: str, to: str) -> None:
    where = plan.source or plan.name
    off = [h for h in (src, to) if not plan.hosts[h].migration_hook]
    if off:
        raise UsageError(f"{where}: host {off[0]}: migration_hook is off; with libvirt guests lab migrate needs "
                         "nestnet's qemu hook on both hosts (hosts[].migration_hook: true, then lab up)")
    if not plan.endpoints:
        raise UsageError(f"{where}: lab migrate needs an endpoint to ping the moving VM from and to")


class _GuestPinger:
    """The moving VM pings ``target`` from inside (busybox ping in the background, its output to a
    file in the guest); started through the agent on the old host, read on the new one."""

    def __init__(self, plan: Plan, state: Path, vm: str, target: str, name: str):
        self.vm, self.target, self.name, self.state = vm, target, name, state
        # 3>&-: the agent's port stays the agent's (a background job holding it open made the
        # agent's next open fail with EBUSY, and its init exit: the guest panicked and rebooted)
        line = f"ping -i {INTERVAL} {target} > {GUEST_LOG} 2>&1 3>&- & echo $! > {GUEST_PID}"
        rc, out = libvirt.agent(plan, state, vm, ["mkdir -p /tmp", line])[1]
        if rc != 0:
            raise LabError(f"guest {vm}: starting ping {target} inside: {out}")

    def stop(self, plan: Plan) -> Probe:
        try:
            rc, out = libvirt.agent(plan, self.state, self.vm, [
                f"kill -INT $(cat {GUEST_PID}); sleep 0.3; cat {GUEST_LOG}"], timeout=30)[0]
        except (LabError, OSError) as exc:
            raise LabError(f"guest {self.vm}: reading its ping of {self.target}: {exc}") from None
        # busybox numbers its echo requests from 0, iputils from 1
        return parse_ping(self.vm, self.name, out, first_seq=0)


def _hook_log(state: Path, host: str, since: float) -> tuple[list[str], list[str]]:
    """What the hook wrote to the host's journal since ``since`` (epoch s), and its errors."""
    d = systemd.dirs(state, host)
    base = ["journalctl", "-t", libvirt_hook.LOG_TAG, "--since", f"@{since:.0f}", "-o", "cat", "--no-pager"]
    lines = systemd.run_inside(d, base, timeout=30).stdout.splitlines()
    errors = systemd.run_inside(d, [*base, "-p", "err"], timeout=30).stdout.splitlines()
    return [x for x in lines if x.strip()], [x for x in errors if x.strip()]


def _inside(state: Path, host: str, argv: list[str], what: str, timeout: float) -> str:
    try:
        r = systemd.run_inside(systemd.dirs(state, host), argv, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LabError(f"host {host}: {what}: no end after {timeout:.0f} s") from None
    if r.returncode != 0:
        raise LabError(f"host {host}: {what} failed (exit {r.returncode}): {(r.stderr or r.stdout).strip()[-400:]}")
    return r.stdout


def migrate(spec: str | Path, vm: str, to: str, propagation_delay: float = 0.0) -> Result:
    """Live-migrate VM to host TO under libvirt in the running lab (and in the spec)."""
    from ..specedit import vm_move

    require_root()
    before = load_plan(spec, write=False)
    src = _refuse(before, vm, to)
    _refuse_hook(before, src, to)
    require_up(before)
    state = state_dir(before.name)
    if vm in libvirt.cloud_init_guests(state):
        raise UsageError(f"{before.source or before.name}: VM {vm!r} is a cloud-init guest with a disk of its own on "
                         f"{src}: lab migrate moves guests booted from kernel and initrd only (no storage is copied)")
    if api_source(before) != "plan":  # pragma: no cover - systemd labs take the cloud from the plan
        raise LabError(f"lab migrate with libvirt guests: only with {clouds.title(before.cloud.cloud_name)} from the plan")
    endpoint = next(iter(before.endpoints))
    plan = vm_move(spec, vm, to).plan  # the spec first: the hook reads it on both hosts
    topo = Topology.from_plan(plan)
    t: dict[str, float] = {}
    since = time.time() - 1
    to_vm: _Pingers | None = None
    from_vm: _GuestPinger | None = None
    probes: list[Probe] = []
    try:
        for h in plan.hosts:  # the overlay itself: /proc/<pid>/root resolves to / when written atomically
            install_spec(plan, systemd.dirs(state, h).root)
        (systemd.dirs(state, to).root / libvirt.paths(vm)["dir"].lstrip("/")).mkdir(parents=True, exist_ok=True)
        to_vm = _Pingers(plan, topo, vm, [endpoint])
        from_vm = _GuestPinger(before, state, vm, str(plan.endpoints[endpoint].ip), endpoint)
        # as the old host's admin does before migrating: the departure staged for the hook
        _inside(state, src, ["nestnet", "-q", "host", "stage-departure", libvirt_hook.SPEC_PATH, vm, "--host", src],
                f"nestnet host stage-departure {vm}", 120)
        time.sleep(BASELINE)
        t0 = time.monotonic()
        _inside(state, src, virsh_migrate_argv(plan, vm, to), f"virsh migrate {vm}", MIGRATE_TIMEOUT)
        t["migrate"] = time.monotonic() - t0
        _inside(state, to, ["virsh", "-q", "autostart", vm], f"virsh autostart {vm}", 60)
        down = downtime_s(_inside(state, to, ["virsh", "domjobinfo", "--completed", vm], "virsh domjobinfo", 60))
        if down is not None:  # QEMU's own: the guest paused on the old host until it ran on the new
            t["downtime"] = down
        t2 = time.monotonic()
        time.sleep(propagation_delay)  # the cloud's route change takes effect this much later
        clouds.of(plan).lab_fabric().program_ns(topo, CloudState.from_plan(plan))
        _wait_route(topo, plan, vm)
        t[plan.cloud.cloud_name] = time.monotonic() - t2  # the cloud's route change
        t3 = time.monotonic()
        # the old host (and any other) takes the planned /32 in place of the tunnel's route
        systemd._each(lambda h: systemd.host_apply(plan, state, h), [h for h in plan.hosts if h != to])
        for h in (src, to):
            run_in(topo.ns(h), move.retire_tunnel)
        t["settle"] = time.monotonic() - t3
        time.sleep(TAIL)
    except (LabError, HostError, OSError) as exc:
        raise LabError(f"lab migrate {vm} to {to}: {exc} (the spec already says {vm} lives on {to})") from None
    finally:
        probes = to_vm.stop() if to_vm is not None else []
        if from_vm is not None:
            live = plan if _running_on(state, to, vm) else before
            try:
                probes.append(from_vm.stop(live))
            except LabError:
                pass  # the migration's own error is the one to report
    hook: dict[str, list[str]] = {}
    errors: list[str] = []
    for h in (src, to):
        hook[h], errs = _hook_log(state, h, since)
        errors += [f"{h}: {e}" for e in errs]
    want = {to: f"{vm} arrive (migrate/begin)", src: f"{vm} depart (stopped/end)"}
    staged = f"{vm}: staged departure applied (stopped end)"
    if not any(staged in x for x in hook[src]):
        errors.append(f"{src}: no '{staged}' in its journal")
    missing = [f"{h}: no '{w}' in its journal" for h, w in want.items() if not any(w in x for x in hook[h])]
    return Result(vm, src, to, "plan", probes, _pairs(plan), t, hook=hook, hook_errors=errors + missing,
                  propagation_delay=propagation_delay, cloud=plan.cloud.cloud_name)


def _running_on(state: Path, host: str, vm: str) -> bool:
    try:
        r = systemd.run_inside(systemd.dirs(state, host), ["virsh", "domstate", vm], timeout=30)
    except (subprocess.TimeoutExpired, LabError):
        return False
    return r.returncode == 0 and r.stdout.strip() == "running"
