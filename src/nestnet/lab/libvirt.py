"""Nested VMs as libvirt domains on the systemd hosts: ``lab up --hosts systemd --guests libvirt``.

Each host boots from the ``libvirt`` image (lab/image.py: libvirtd + QEMU, qemu.conf without
cgroups or namespaces, DESIGN 5b). For each of its VMs the lab copies the guest image
(lab/guestimage.py) into the host, writes the domain nestnet itself renders (guest.domain_xml:
TCG, the kernel booted directly, nestnet's ``<interface>`` on the host's bridge, the console to a
file, the agent's virtio-serial channel) and runs ``virsh define`` and ``virsh start`` inside the
host, as its admin would. The guest asks nestnet's dnsmasq for its address (DHCP).

A cloud-init guest (``lab up --cloud-init VM``) boots the cloud-init image instead
(lab/cloudinitimage.py): a qcow2 overlay over its ``rootfs.raw`` made by ``qemu-img`` in the host,
and its NoCloud seed (guest.cloud_init_seed, the ``cloud-init`` format as ``network-config``) as
an ISO 9660 image labelled ``cidata`` made here by ``genisoimage``, attached as a read-only
virtio disk. cloud-init in the guest applies nestnet's static config; no DHCP.

The guest's agent (the initrd's ``/init``) answers on a unix socket libvirt binds in the host;
the lab reaches it through ``/proc/<host PID 1>/root``. Nothing here runs in this machine's
network namespace: the socket is a path, not an address.
"""

from __future__ import annotations

import shutil
import socket
import time
import uuid
from pathlib import Path

from ..errors import LabError
from ..guest import cloud_init_seed, domain_xml
from ..plan import Plan
from . import cloudinitimage, guestimage, systemd

GUEST_DIR = "/var/lib/nestnet-lab/guests"  # inside each host
BOOT_TIMEOUT = 120.0  # TCG on 2 shared cores: a boot is ~3 s alone, much more when the machine is busy
# A cloud-init guest reached its address at 57-65 s of uptime with the machine at load 10-16
# (Python under TCG: docs/decisions/0025): give it the same margin, about twice that.
CLOUD_INIT_BOOT_TIMEOUT = 240.0
MEMORY_MIB = 192
# Under TCG the guest's TSC is no clock to keep: a guest that chose it ran 15 times too fast after
# a live migration (100 s of uptime in 7 s); without it the kernel keeps time by its timer ticks.
TSC = "tsc=unstable"
CLOUD_INIT_DIR = f"{GUEST_DIR}/cloud-init"  # inside each host: the cloud-init image's files
CLOUD_INIT_FILE = "cloud-init"  # in the lab's state: the names of the cloud-init guests, one a line


def paths(vm: str) -> dict[str, str]:
    d = f"{GUEST_DIR}/{vm}"
    return {"dir": d, "xml": f"{d}/domain.xml", "log": f"{d}/console.log", "sock": f"{d}/agent.sock",
            "disk": f"{d}/disk.qcow2", "seed": f"{d}/seed.iso"}


def domain(plan: Plan, vm: str, cloud_init: bool = False) -> str:
    """Pure: the domain the lab defines for ``vm`` on its host."""
    p = paths(vm)
    if cloud_init:
        return domain_xml(
            plan, vm, domain_type="qemu", memory_mib=cloudinitimage.MEMORY_MIB, kernel=f"{CLOUD_INIT_DIR}/vmlinuz",
            initrd=f"{CLOUD_INIT_DIR}/initrd.gz", cmdline=f"console=ttyS0 root=/dev/vda quiet panic=-1 {TSC}",
            disk=p["disk"], seed=p["seed"], seed_bus="virtio", console_log=p["log"], agent_socket=p["sock"],
        )
    return domain_xml(
        plan, vm, domain_type="qemu", memory_mib=MEMORY_MIB, kernel=f"{GUEST_DIR}/vmlinuz",
        initrd=f"{GUEST_DIR}/initrd.gz", cmdline=f"console=ttyS0 quiet panic=-1 {TSC} nestnet.name={vm}",
        console_log=p["log"], agent_socket=p["sock"],
    )


def cloud_init_guests(state: Path) -> frozenset[str]:
    """The lab's cloud-init guests (``lab up --cloud-init``), as recorded in its state."""
    p = state / CLOUD_INIT_FILE
    return frozenset(p.read_text().split()) if p.exists() else frozenset()


def _inside(state: Path, host: str, argv: list[str], what: str, timeout: float = 60) -> str:
    r = systemd.run_inside(systemd.dirs(state, host), argv, timeout=timeout)
    if r.returncode != 0:
        raise LabError(f"host {host}: {what} failed (exit {r.returncode}): {(r.stderr or r.stdout).strip()}")
    return r.stdout


def host_root(state: Path, host: str) -> Path:
    pid = systemd.leader(systemd.dirs(state, host))
    if pid is None:
        raise LabError(f"host {host} is not running")
    return Path(f"/proc/{pid}/root")


def start_guests(plan: Plan, state: Path, host: str, img: guestimage.GuestImage,
                 ci_img: cloudinitimage.CloudInitImage | None = None) -> None:
    """Inside the booted host: libvirtd up, each of its VMs defined and started (the cloud-init
    guests among them with their disk and seed)."""
    vms = [v for v in plan.vms.values() if v.host == host]
    ci = cloud_init_guests(state)
    root = host_root(state, host)
    gdir = root / GUEST_DIR.lstrip("/")
    gdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(img.kernel, gdir / "vmlinuz")
    shutil.copy(img.initrd, gdir / "initrd.gz")
    if any(v.name in ci for v in vms):
        if ci_img is None:
            raise LabError("no cloud-init guest image: run nestnet lab image --flavour cloud-init")
        _copy_cloud_init_image(ci_img, root / CLOUD_INIT_DIR.lstrip("/"))
    _inside(state, host, ["systemctl", "start", "libvirtd.service"], "starting libvirtd")
    for vm in vms:
        p = paths(vm.name)
        d = root / p["dir"].lstrip("/")
        d.mkdir(parents=True, exist_ok=True)
        (d / "console.log").unlink(missing_ok=True)
        if vm.name in ci:
            _seed_iso(cloud_init_seed(plan, vm.name), d / "seed.iso")
            _inside(state, host, ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                                  f"{CLOUD_INIT_DIR}/rootfs.raw", p["disk"]], f"qemu-img create for {vm.name}")
        (d / "domain.xml").write_text(domain(plan, vm.name, cloud_init=vm.name in ci))
        _inside(state, host, ["virsh", "-q", "define", p["xml"]], f"virsh define {vm.name}")
        _inside(state, host, ["virsh", "-q", "start", vm.name], f"virsh start {vm.name}")
        # started again when the host boots, as an admin sets up a guest that should survive reboots
        _inside(state, host, ["virsh", "-q", "autostart", vm.name], f"virsh autostart {vm.name}")


def wait_running(plan: Plan, state: Path, host: str, timeout: float = BOOT_TIMEOUT) -> float:
    """Until every VM the plan puts on ``host`` is a running domain there (after a reboot: restored
    by libvirt-guests or started by autostart); returns the seconds it took."""
    want = {v for v in plan.hosts[host].vms}
    t0 = time.monotonic()
    got: set[str] = set()
    while time.monotonic() - t0 < timeout:
        r = systemd.run_inside(systemd.dirs(state, host), ["virsh", "list", "--name", "--state-running"], timeout=30)
        got = set(r.stdout.split()) if r.returncode == 0 else set()
        if want <= got:
            return time.monotonic() - t0
        time.sleep(0.2)
    raise LabError(f"host {host}: {', '.join(sorted(want - got))} not running {timeout:.0f} s after boot")


def _copy_cloud_init_image(img: cloudinitimage.CloudInitImage, into: Path) -> None:
    """The image's kernel, initrd and rootfs (sparse, read-only: every guest's overlay's backing
    file) into the host."""
    import subprocess

    into.mkdir(parents=True, exist_ok=True)
    for f in (img.kernel, img.initrd, img.rootfs):
        r = subprocess.run(["cp", "--sparse=always", str(f), str(into / f.name)], capture_output=True, text=True)
        if r.returncode != 0:
            raise LabError(f"copying {f} into the host: {r.stderr.strip()}")
    (into / "rootfs.raw").chmod(0o444)


def _seed_iso(files: dict[str, str], out: Path) -> None:
    """The NoCloud seed as cloud-init documents it: ISO 9660 (Joliet, Rock Ridge) labelled cidata."""
    import subprocess
    import tempfile

    if shutil.which("genisoimage") is None:
        raise LabError("a cloud-init guest's seed needs genisoimage (apt-get install genisoimage, scripts/system-deps)")
    with tempfile.TemporaryDirectory(prefix="nestnet-seed-") as tmp:
        for name, text in files.items():
            Path(tmp, name).write_text(text)
        r = subprocess.run(["genisoimage", "-quiet", "-output", str(out), "-volid", "cidata", "-joliet", "-rock",
                            *files], cwd=tmp, capture_output=True, text=True)
    if r.returncode != 0:
        raise LabError(f"genisoimage (the cloud-init seed): {r.stderr.strip()}")


def wait_address(plan: Plan, state: Path, vm: str, timeout: float | None = None) -> float:
    """Until the guest's console says it holds its planned address (udhcpc's hook prints it, or
    the cloud-init guest's nestnet-address unit); returns the seconds it took."""
    v = plan.vms[vm]
    ci = vm in cloud_init_guests(state)
    timeout = timeout if timeout is not None else CLOUD_INIT_BOOT_TIMEOUT if ci else BOOT_TIMEOUT
    log = host_root(state, v.host) / paths(vm)["log"].lstrip("/")
    t0 = time.monotonic()
    want = f"eth0 {v.ip}/"
    while time.monotonic() - t0 < timeout:
        try:
            text = log.read_text(errors="replace")
        except OSError:
            text = ""
        if want in text:
            return time.monotonic() - t0
        time.sleep(0.2)
    said = [ln for ln in text.splitlines() if "nestnet-guest" in ln or "udhcpc" in ln]
    tail = " | ".join((said or text.strip().splitlines())[-4:]) if text else "no console output"
    how = "cloud-init" if ci else "DHCP"
    raise LabError(f"guest {vm} on {v.host}: no {v.ip} by {how} after {timeout:.0f} s: {tail}")


def agent(plan: Plan, state: Path, vm: str, commands: list[str], timeout: float = 30.0) -> list[tuple[int, str]]:
    """Run each command (one shell line) in the guest through its agent, in one connection:
    [(exit code, output)], one per command.

    The agent says ``nestnet-agent ready`` each time it opens its port, and closes an idle port
    after 2 s: the guest is not told reliably that a client left (its read stayed blocked and a
    second client was never answered), so every session waits for a banner of its own.
    """
    sock_path = host_root(state, plan.vms[vm].host) / paths(vm)["sock"].lstrip("/")
    results: list[tuple[int, str]] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(sock_path))
        buf = _await_ready(s)
        for command in commands:
            if "\n" in command:
                raise ValueError("one line")
            tag = uuid.uuid4().hex[:8]
            s.sendall(f"{tag} {command}\n".encode())
            rc, out, buf = _answer(s, tag, buf, timeout, vm, command)
            results.append((rc, out))
    return results


def _answer(s: socket.socket, tag: str, buf: bytes, timeout: float, vm: str, command: str) -> tuple[int, str, bytes]:
    out: list[str] = []
    deadline = time.monotonic() + timeout
    s.settimeout(timeout)
    while time.monotonic() < deadline:
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            text = line.decode(errors="replace").rstrip("\r")
            if not text.startswith(tag + " "):
                continue  # an earlier command's late output
            rest = text[len(tag) + 1:]
            if rest.startswith("rc="):
                return int(rest[3:]), "\n".join(out), buf
            out.append(rest)
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    raise LabError(f"guest {vm}: its agent did not answer {command!r} in {timeout:.0f} s")


READY = b"nestnet-agent ready"


# The agent reopens its port 2 s after a client left; a TCG guest on a loaded machine (load 16,
# cloud-init's later stages running) took longer than 5 s for that (seen here): 20 s.
READY_TIMEOUT = 20.0


def _await_ready(s: socket.socket, timeout: float = READY_TIMEOUT) -> bytes:
    """Until the agent says it opened its port for this connection (it reopens the port after
    each client leaves; a line sent before that could be lost). What came after the banner is kept."""
    buf = b""
    deadline = time.monotonic() + timeout
    s.settimeout(0.5)
    try:
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                break
            buf += chunk
            if READY in buf:
                return buf.split(READY, 1)[1].split(b"\n", 1)[-1]
    finally:
        s.settimeout(30.0)
    raise LabError(f"guest agent at {s.getpeername() or 'its socket'}: not ready in {timeout:.0f} s")
