"""KVM hosts booted by systemd: ``lab up --hosts systemd`` (DESIGN 5b).

Each host is ``systemd-nspawn -b`` of its own overlay of the cached rootfs (``lab/image.py``)
inside the host's lab network namespace: systemd is PID 1 there, networkd configures the uplink
from a netplan file like the cloud's ``50-cloud-init.yaml``, systemd-sysctl and every unit nestnet
installed run at boot, UFW starts when the host's ``ufw.conf`` says ``ENABLED=yes``. nestnet itself
runs inside (``lab exec`` = ``nsenter -t <PID 1> -a``): the venv and the Python it runs on are
bound read-only at the same paths, the spec's directory read-write at its own path.

Per host, under ``/run/nestnet/lab/<lab>/systemd/<host>/``: ``upper``/``work`` (the overlay's
writable layer: everything the host writes survives its reboots), ``root`` (the overlay, mounted
in this machine's mount namespace and unmounted by ``stop_all``), ``pid`` (systemd-nspawn),
``leader`` (the container's PID 1), ``console.log``. Processes are ended by their PID only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .. import clouds
from ..errors import LabError
from ..plan import Host, Plan
from . import image

BOOT_TIMEOUT = 60.0
POWEROFF_TIMEOUT = 20.0
INSIDE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
UFW_MODES = ("ufw-hosts", "all", "none")  # which systemd hosts boot with UFW enabled


@dataclass(frozen=True)
class Dirs:
    base: Path

    @property
    def upper(self) -> Path:
        return self.base / "upper"

    @property
    def work(self) -> Path:
        return self.base / "work"

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def pid(self) -> Path:
        return self.base / "pid"

    @property
    def leader(self) -> Path:
        return self.base / "leader"

    @property
    def log(self) -> Path:
        return self.base / "console.log"


def dirs(state: Path, host: str) -> Dirs:
    return Dirs(state / "systemd" / host)


def netplan_uplink(plan: Plan, host: Host) -> str:
    """Pure: the uplink's netplan file, shaped like the one cloud-init writes in the plan's cloud
    (``/etc/netplan/50-cloud-init.yaml``) but with the NIC's static address instead of DHCP.

    The cloud's file matches the NIC by ``macaddress`` (and driver ``hv_netvsc``); netplan renders that
    as ``PermanentMACAddress=``, which a veth does not have, so the lab matches by name.
    """
    return (
        "# This file is generated from information provided by the datasource.  Changes\n"
        "# to it will not persist across an instance reboot.  (nestnet lab: as cloud-init\n"
        f"# writes it on {clouds.title(plan.cloud.cloud_name)}, with the NIC's static address instead of DHCP)\n"
        "network:\n"
        "    version: 2\n"
        "    ethernets:\n"
        f"        {host.uplink}:\n"
        "            match:\n"
        f"                name: {host.uplink}\n"
        "            dhcp4: false\n"
        "            dhcp6: false\n"
        f"            addresses: [{host.ip}/{host.prefix_len}]\n"
        "            routes:\n"
        "            -   to: default\n"
        f"                via: {host.gateway}\n"
    )


def ufw_enabled(host: Host, mode: str) -> bool:
    """``all``: every host as the seed's Ubuntu hosts (``ufw enable``); ``ufw-hosts``: only
    hosts whose spec says ``firewall: ufw``; ``none``: no host (UFW installed, disabled)."""
    return mode == "all" or (mode == "ufw-hosts" and host.firewall == "ufw")


def python_roots() -> list[str]:
    """What nestnet needs to run inside a host, bound read-only at the same paths: the Python
    installation, the venv, and the source tree of an editable install."""
    import nestnet

    cands = {sys.base_prefix, sys.prefix, str(Path(nestnet.__file__).resolve().parent.parent)}
    cands = {os.path.realpath(c) for c in cands}
    roots = sorted(cands, key=len)
    out: list[str] = []
    for r in roots:
        if r in ("/", "/usr") or any(r == o or r.startswith(o + "/") for o in out):
            continue
        out.append(r)
    return out


def _write(p: Path, text: str, mode: int = 0o644) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    p.chmod(mode)


def prepare(plan: Plan, host: Host, d: Dirs, img: Path, ufw_mode: str) -> None:
    """The host's overlay, mounted, with what makes it this host (written once: a reboot keeps
    whatever the host changed since)."""
    for p in (d.upper, d.work, d.root):
        p.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={img},upperdir={d.upper},workdir={d.work}", str(d.root)],
        capture_output=True, text=True,
    )
    if r.returncode != 0:
        raise LabError(f"host {host.name}: mounting its overlay of {img}: {r.stderr.strip()}")
    root = d.root
    _write(root / "etc/hostname", f"{host.name}\n")
    _write(root / "etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{host.name}\n")
    _write(root / "etc/netplan/50-cloud-init.yaml", netplan_uplink(plan, host), 0o600)
    conf = root / "etc/ufw/ufw.conf"
    text = conf.read_text()
    want = "ENABLED=yes" if ufw_enabled(host, ufw_mode) else "ENABLED=no"
    conf.write_text("\n".join(want if line.startswith("ENABLED=") else line for line in text.splitlines()) + "\n")
    # The kernel is this machine's: a lab host loads no module into it (what the lab needs is loaded).
    mask = root / "etc/systemd/system/systemd-modules-load.service"
    if not mask.is_symlink():
        mask.symlink_to("/dev/null")
    # `nestnet` on PATH, run by the very interpreter (and venv) that runs this lab
    _write(root / "usr/local/bin/nestnet", f'#!/bin/sh\nexec {sys.executable} -m nestnet "$@"\n', 0o755)


def nspawn_argv(plan: Plan, host: Host, d: Dirs, netns: str, spec_dir: str | None) -> list[str]:
    argv = [
        "systemd-nspawn", "-D", str(d.root), "-b", "--register=no", "--keep-unit",
        f"--machine={_machine(plan, host)}", f"--network-namespace-path=/run/netns/{netns}",
        "--console=pipe", "--capability=all", "--bind=/dev/net/tun",
    ]
    if spec_dir:
        argv.append(f"--bind={spec_dir}")
    argv += [f"--bind-ro={p}" for p in python_roots() if not (spec_dir and _under(p, spec_dir))]
    return argv


def _under(p: str, d: str) -> bool:
    return p == d or p.startswith(d.rstrip("/") + "/")


def _machine(plan: Plan, host: Host) -> str:
    # also names nspawn's propagation directory: unique per lab host
    return f"nn-{plan.name}-{list(plan.hosts).index(host.name)}"


def start(plan: Plan, host: Host, d: Dirs, netns: str) -> int:
    """Boot the host; returns nspawn's PID once the container's PID 1 is known."""
    spec_dir = str(Path(plan.source).resolve().parent) if plan.source else None
    env = {**os.environ, "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"}  # sysctls under /proc/sys/net
    groups = own_cgroups(d, _machine(plan, host))
    log = open(d.log, "ab")
    try:
        proc = subprocess.Popen(nspawn_argv(plan, host, d, netns, spec_dir), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                preexec_fn=lambda: _join(groups))
    except OSError as exc:
        raise LabError(f"host {host.name}: systemd-nspawn: {exc}") from exc
    finally:
        log.close()
    d.pid.write_text(f"{proc.pid}\n")
    d.leader.unlink(missing_ok=True)
    deadline = time.monotonic() + BOOT_TIMEOUT
    while True:
        leader = _child(proc.pid)
        if leader and _in_netns(leader, netns):
            d.leader.write_text(f"{leader}\n")
            return proc.pid
        if proc.poll() is not None or time.monotonic() > deadline:
            raise LabError(f"host {host.name}: systemd-nspawn {'exited' if proc.poll() is not None else 'hung'}: "
                           f"{_tail(d.log)}")
        time.sleep(0.02)


CGROUP_ROOTS = (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))


def own_cgroups(d: Dirs, machine: str) -> list[Path]:
    """A cgroup of its own for each container, in the hierarchies systemd manages (the named
    ``systemd`` v1 one and the unified one; or the unified one alone on a cgroup2 machine).

    With ``--keep-unit`` nspawn boots the container in the cgroup it was started in. Two
    containers sharing one then make and remove the same ``system.slice/<unit>`` directories:
    a unit of one host failed now and then with status 219/CGROUP as the other's finished.
    """
    groups = []
    for root in CGROUP_ROOTS:
        if (root / "cgroup.procs").exists() and not any(_under(str(root), str(g)) for g in groups):
            if root == CGROUP_ROOTS[2] and groups:
                break  # hybrid: the two above are the ones
            g = root / "nestnet" / machine
            g.mkdir(parents=True, exist_ok=True)
            groups.append(g)
    d.base.joinpath("cgroups").write_text("".join(f"{g}\n" for g in groups))
    return groups


def _join(groups: list[Path]) -> None:
    """In the forked child, before exec: move into the container's own cgroups."""
    for g in groups:
        with open(g / "cgroup.procs", "w") as fh:
            fh.write("0")


def remove_cgroups(d: Dirs) -> None:
    """The container's cgroups, deepest first (its systemd made slices below them)."""
    try:
        groups = [Path(x) for x in (d.base / "cgroups").read_text().split()]
    except OSError:
        return
    for g in groups:
        if not g.exists():
            continue
        subs = sorted((p for p in g.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
        for cg in [*subs, g]:
            _rmdir_when_empty(cg)


def _rmdir_when_empty(cg: Path, timeout: float = 5.0) -> None:
    """rmdir a cgroup once the processes just killed in it are gone: the kernel empties it a little
    after SIGKILL (their exit), and until then rmdir says EBUSY and the directory would stay."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            cg.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.02)


def _child(pid: int) -> int | None:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(kids[0]) if kids else None


def _in_netns(pid: int, netns: str) -> bool:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{netns}").st_ino
    except OSError:
        return False


def _tail(log: Path) -> str:
    try:
        lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return "no output"
    return " | ".join(lines[-3:]) or "no output"


def leader(d: Dirs) -> int | None:
    try:
        pid = int(d.leader.read_text())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def inside_argv(d: Dirs, argv: list[str], cwd: str | None = None) -> list[str]:
    """``argv`` run inside the booted host, with its environment, not this process's."""
    pid = leader(d)
    if pid is None:
        raise LabError(f"host {d.base.name} is not running (powered off, or its boot failed: {_tail(d.log)})")
    # /proc/<pid>/root sees the container's mounts (the spec's directory bound in)
    wd = cwd if cwd and Path(f"/proc/{pid}/root{cwd}").is_dir() else "/"
    return ["nsenter", "-t", str(pid), "-a", "env", "-i", "-C", wd, f"PATH={INSIDE_PATH}", "HOME=/root",
            "LANG=C.UTF-8", *argv]


def run_inside(d: Dirs, argv: list[str], *, cwd: str | None = None, capture: bool = True,
               timeout: float | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(inside_argv(d, argv, cwd), capture_output=capture, text=True, timeout=timeout)


def wait_running(host: str, d: Dirs, timeout: float = BOOT_TIMEOUT) -> str:
    """Until systemd says the boot is over (``running``; ``degraded`` is an error naming the failed
    units). Asked again and again: before systemd is PID 1 and its bus is up it says ``offline``."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        try:
            r = run_inside(d, ["systemctl", "is-system-running"], timeout=10)
        except subprocess.TimeoutExpired:
            continue
        state = r.stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(0.05)
    if state == "degraded":
        failed = run_inside(d, ["systemctl", "--failed", "--plain", "--no-legend", "--no-pager"]).stdout
        units = [line.split()[0] for line in failed.splitlines() if line.strip()]
        why = ""
        if units:  # the failed unit's last words, so the error says why
            log = run_inside(d, ["journalctl", "-b", "-u", units[0], "-n", "3", "-o", "cat", "--no-pager"]).stdout
            why = ": " + " | ".join(x for x in log.splitlines() if x.strip())
        raise LabError(f"host {host}: booted degraded, failed units: {', '.join(units) or 'unknown'}{why}")
    if state != "running":
        raise LabError(f"host {host}: not booted after {timeout:.0f} s (systemd says {state or 'nothing'}): {_tail(d.log)}")
    return state


def wait_link(d: Dirs, ifname: str, timeout: float = 30.0) -> None:
    """Until ``ifname`` exists in the host (the bridge networkd creates at boot)."""
    pid = leader(d)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid and Path(f"/proc/{pid}/root/sys/class/net/{ifname}").exists():
            return
        time.sleep(0.02)
    raise LabError(f"host {d.base.name}: no {ifname} {timeout:.0f} s after boot")


def poweroff(d: Dirs, timeout: float = POWEROFF_TIMEOUT) -> bool:
    """``systemctl poweroff`` inside, then wait for nspawn to exit; True if it did in time."""
    nspawn = _pid(d.pid)
    if nspawn is None or not _alive(nspawn):
        return True
    if leader(d) is not None:
        try:
            run_inside(d, ["systemctl", "poweroff", "--no-block"], timeout=10)
        except (subprocess.TimeoutExpired, LabError):
            pass
    deadline = time.monotonic() + timeout
    while _alive(nspawn):
        if time.monotonic() > deadline:
            return False
        _reap(nspawn)
        time.sleep(0.02)
    return True


def _reap(pid: int) -> None:
    try:  # ours when this process started it (lab up/reboot in one process): no zombie left
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _pid(p: Path) -> int | None:
    try:
        return int(p.read_text())
    except (OSError, ValueError):
        return None


def _is_nspawn(pid: int, d: Dirs) -> bool:
    """The PID is still the nspawn this lab started (not a reused PID)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmd) and cmd[0].endswith(b"systemd-nspawn") and str(d.root).encode() in cmd


def kill(d: Dirs) -> None:
    """End the container by PID: its PID 1, then nspawn (checked to be ours first)."""
    lead = leader(d)
    nspawn = _pid(d.pid)
    if nspawn is not None and _is_nspawn(nspawn, d):
        if lead is not None:
            _signal(lead)
        _signal(nspawn)
        deadline = time.monotonic() + 5
        while _alive(nspawn) and time.monotonic() < deadline:
            _reap(nspawn)
            time.sleep(0.01)


def _signal(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop(d: Dirs, graceful: bool = True) -> None:
    if not (graceful and poweroff(d)):
        kill(d)
    remove_cgroups(d)


def unmount_all(state: Path) -> None:
    """Every mount below the lab's state directory (the hosts' overlays), deepest first."""
    base = str(state.resolve()) + "/"
    mounts = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            mp = line.split()[4].replace("\\040", " ")
            if mp.startswith(base):
                mounts.append(mp)
    for mp in sorted(set(mounts), key=len, reverse=True):
        r = subprocess.run(["umount", mp], capture_output=True, text=True)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", mp], capture_output=True, text=True)


def _each(fn, items) -> list:
    """``fn(item)`` for every item at once (threads only wait on processes); every call runs to
    completion before the first failure is raised, so the caller can clean up."""
    from concurrent.futures import ThreadPoolExecutor

    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
        futs = [pool.submit(fn, i) for i in items]
    for f in futs:
        if f.exception() is not None:
            raise f.exception()  # type: ignore[misc]
    return [f.result() for f in futs]


def spec_path(plan: Plan) -> str:
    assert plan.source
    return str(Path(plan.source).resolve())


def host_apply(plan: Plan, state: Path, host: str) -> str:
    """``nestnet host apply SPEC`` run inside the host, as its admin would; its output."""
    r = run_inside(dirs(state, host), ["nestnet", "host", "apply", spec_path(plan)], timeout=120)
    if r.returncode != 0:
        out = (r.stderr or r.stdout).strip().splitlines()
        raise LabError(f"host {host}: nestnet host apply failed (exit {r.returncode}): {out[-1] if out else ''}")
    return r.stdout


def boot(plan: Plan, topo, state: Path, host: str) -> None:
    d = dirs(state, host)
    start(plan, plan.hosts[host], d, topo.ns(host))
    wait_running(host, d)


def bring_up(plan: Plan, topo, state: Path, ufw: str = "ufw-hosts", libvirt_guests: bool = False,
             flavour: str | None = None) -> None:
    """Boot every host from its overlay, run ``nestnet host apply`` inside each, then plug the
    nested VMs' ports into the bridges nestnet made (libvirt's part, played by the lab), or
    (``libvirt_guests``) start each VM as a libvirt domain on its host (lab/libvirt.py)."""
    from ..netns import run_in
    from . import nodes

    flavour = flavour or ("libvirt" if libvirt_guests else "base")
    img = image.cached(flavour)
    if img is None:
        raise LabError(f"no {flavour} image for systemd hosts yet: run nestnet lab image"
                       f" --flavour {flavour} (builds it once)")
    if libvirt_guests:
        from . import guestimage, libvirt

        gimg = guestimage.cached()
        if gimg is None:
            raise LabError("no guest image yet: run nestnet lab image --flavour guest (builds it once, about 10 s)")
        ci_img = None
        if libvirt.cloud_init_guests(state):
            from . import cloudinitimage

            ci_img = cloudinitimage.cached()
            if ci_img is None:
                raise LabError("no cloud-init guest image yet: run nestnet lab image --flavour cloud-init"
                               " (builds it once, about 2 min)")

    def one(host: str) -> None:
        prepare(plan, plan.hosts[host], dirs(state, host), img, ufw)
        if libvirt_guests:  # libvirtd reachable from the other hosts, the spec where the hook reads it
            from .livemigrate import prepare_overlay

            prepare_overlay(plan, dirs(state, host).root)
        boot(plan, topo, state, host)
        host_apply(plan, state, host)
        if libvirt_guests:
            from .livemigrate import open_libvirt_ports

            open_libvirt_ports(plan, state, host)
            libvirt.start_guests(plan, state, host, gimg, ci_img)
        else:
            run_in(topo.ns(host), nodes.vm_ports, plan, topo, host)

    _each(one, plan.hosts)


def stop_all(state: Path) -> None:
    """Power every host off (killed by PID when it does not stop in time), then unmount."""
    base = state / "systemd"
    names = sorted(p.name for p in base.iterdir()) if base.is_dir() else []
    _each(lambda h: stop(dirs(state, h)), names)
    unmount_all(state)
