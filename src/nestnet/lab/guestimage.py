"""The lab's libvirt guests' image: Debian's cloud kernel and a busybox initrd, built once and cached.

Everything comes from Debian's packages through this machine's apt (``apt-get download``):
``linux-image-cloud-amd64``'s kernel package (extracted, never installed) and ``busybox-static``.
The initrd holds busybox, the virtio modules the cloud kernel has as modules (virtio_net and
virtio_console with what ``modules.dep`` says they need, loaded in that order; DESIGN 5b), an
``/init`` that configures ``eth0`` by DHCP (udhcpc asking nestnet's dnsmasq on the host) and the
lab's guest agent: a shell loop on the virtio-serial port ``org.nestnet.agent`` (guest.AGENT_CHANNEL)
that runs one command a line and answers ``<id> <output line>``... ``<id> rc=<n>``.

Cached as ``<image cache>/guest-<key>/{vmlinuz,initrd.gz}`` beside the hosts' rootfs (lab/image.py:
same directory, ``flock``, a temporary directory renamed into place); ``key`` hashes the
builder, the package names and the versions apt would fetch, so a new kernel makes a new image.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabError
from ..guest import AGENT_CHANNEL
from . import image

BUILDER = "1"
KERNEL_META = "linux-image-cloud-amd64"
BUSYBOX = "busybox-static"
MODULES = ("virtio_pci", "virtio_net", "virtio_console")

# The agent: find the virtio-serial port named @CHANNEL@, answer one command a line on it.
AGENT_LOOP = r"""port=""
for p in /sys/class/virtio-ports/*; do
  [ "$(cat $p/name 2>/dev/null)" = "@CHANNEL@" ] && port=/dev/${p##*/}
done
[ -n "$port" ] || { echo "nestnet-guest: no @CHANNEL@ port"; exec sh; }
while :; do
  # One open of the port for both directions (a virtio port is opened once at a time). The
  # banner tells a client it may send; an idle port is closed and opened again after 2 s, so a
  # client that left is never waited for (the guest is not told reliably that it left).
  if exec 3<>"$port"; then
    echo "nestnet-agent ready" >&3
    while read -t 2 -r id cmd <&3; do
      { sh -c "$cmd" 2>&1 </dev/null; echo "rc=$?"; } | sed "s/^/$id /" >&3
    done
    exec 3>&-
  fi
  sleep 0.1
done
"""

INIT = r"""#!/bin/busybox sh
# nestnet lab guest: modules, eth0 by DHCP, then the agent on the virtio-serial port
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko; done
hostname "$(sed -n 's/.*nestnet.name=\([^ ]*\).*/\1/p' /proc/cmdline)"
ip link set lo up
ip link set eth0 up
udhcpc -i eth0 -s /etc/udhcpc.script -t 30 -T 1 -A 1 -b -S
echo "nestnet-guest: userspace at $(cut -d' ' -f1 /proc/uptime) s"
""" + AGENT_LOOP

UDHCPC = r"""#!/bin/sh
# udhcpc's hook: the lease as the guest's address, default route and resolver
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-32}" dev "$interface"
    for r in $router; do
      ip route replace "$r" dev "$interface" scope link
      ip route replace default via "$r" dev "$interface" onlink
      break
    done
    : > /etc/resolv.conf
    [ -n "$search" ] && echo "search $search" >> /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    echo "nestnet-guest: $interface $ip/$mask via $router dns $dns"
    ;;
esac
exit 0
"""


@dataclass(frozen=True)
class GuestImage:
    path: Path
    key: str
    built: bool
    seconds: float

    @property
    def kernel(self) -> Path:
        return self.path / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.path / "initrd.gz"

    def to_dict(self) -> dict[str, object]:
        return {"flavour": "guest", "path": str(self.path), "key": self.key, "built": self.built,
                "seconds": round(self.seconds, 2)}


def _apt(argv: list[str], cwd: Path | None = None) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, cwd=cwd)
    except OSError as exc:
        raise LabError(f"{argv[0]}: {exc}") from exc
    if r.returncode != 0:
        raise LabError(f"{' '.join(argv[:3])} failed (exit {r.returncode}): {r.stderr.strip().splitlines()[-1:]}")
    return r.stdout


def packages() -> list[tuple[str, str]]:
    """The (package, version) pairs apt would fetch: the cloud kernel's real package, busybox."""
    kernel = [line.split()[1] for line in _apt(["apt-cache", "depends", KERNEL_META]).splitlines()
              if line.strip().startswith("Depends: linux-image-")]
    if not kernel:
        raise LabError(f"apt knows no {KERNEL_META} (run apt-get update)")
    out = []
    for pkg in (kernel[0], BUSYBOX):
        ver = next((ln.split()[1] for ln in _apt(["apt-cache", "policy", pkg]).splitlines()
                    if ln.strip().startswith("Candidate:")), "(none)")
        if ver == "(none)":
            raise LabError(f"apt has no candidate for {pkg} (run apt-get update)")
        out.append((pkg, ver))
    return out


def key(pkgs: list[tuple[str, str]]) -> str:
    """Pure: what the guest image is made of, hashed."""
    parts = [BUILDER, ",".join(MODULES), INIT, UDHCPC, *(f"{p}={v}" for p, v in pkgs)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def cached() -> GuestImage | None:
    """The newest built guest image, without asking apt (for lab up, which must not build)."""
    root = image.cache_dir()
    found = sorted((p for p in root.glob("guest-*") if (p / "initrd.gz").exists()), key=lambda p: p.stat().st_mtime)
    return GuestImage(found[-1], found[-1].name[6:], False, 0.0) if found else None


def ensure(*, refresh: bool = False, say=lambda _m: None) -> GuestImage:
    t0 = time.monotonic()
    if os.geteuid() != 0:
        raise LabError("building the lab's guest image needs root (apt-get download, depmod)")
    for tool in ("apt-get", "dpkg-deb", "depmod", "cpio"):
        if shutil.which(tool) is None:
            raise LabError(f"building the lab's guest image needs {tool} (scripts/system-deps)")
    pkgs = packages()
    k = key(pkgs)
    root = image.cache_dir()
    final = root / f"guest-{k}"
    root.mkdir(parents=True, exist_ok=True)
    if not image.build_once(final, ".guest.lock", (final / "initrd.gz").exists, lambda tmp: _build(tmp, pkgs, say),
                            refresh=refresh):
        return GuestImage(final, k, False, time.monotonic() - t0)
    say(f"guest image {final} ready")
    return GuestImage(final, k, True, time.monotonic() - t0)


def _build(tmp: Path, pkgs: list[tuple[str, str]], say, modules: tuple[str, ...] = MODULES,
           init: str | None = None) -> None:
    """``vmlinuz``, ``initrd.gz`` (busybox, ``modules`` and their dependencies, ``init`` as
    ``/init``) and ``packages`` in ``tmp``, from the kernel and busybox packages ``pkgs``."""
    debs, x, rd = tmp / "debs", tmp / "x", tmp / "initrd"
    for p in (debs, x, rd):
        p.mkdir(parents=True)
    os.chmod(debs, 0o777)  # apt's sandbox user writes the downloads
    say(f"downloading {', '.join(f'{p} {v}' for p, v in pkgs)}")
    _apt(["apt-get", "download", "-q", *(f"{p}={v}" for p, v in pkgs)], cwd=debs)
    for deb in sorted(debs.glob("*.deb")):
        say(f"extracting {deb.name}")
        _apt(["dpkg-deb", "-x", str(deb), str(x)])
    kver = next(p.name for p in (x / "lib/modules").iterdir())
    _apt(["depmod", "-b", str(x), kver])
    shutil.copy(next((x / "boot").glob("vmlinuz-*")), tmp / "vmlinuz")
    order = module_order(modules, (x / "lib/modules" / kver / "modules.dep").read_text())
    mods = rd / "lib/modules"
    mods.mkdir(parents=True)
    for rel in order:
        shutil.copy(x / "lib/modules" / kver / rel, mods / Path(rel).name)
    (mods / "order").write_text("\n".join(Path(r).name[:-3] for r in order) + "\n")
    for d in ("bin", "proc", "sys", "dev", "etc", "tmp"):
        (rd / d).mkdir(exist_ok=True)
    shutil.copy(x / "bin/busybox", rd / "bin/busybox")
    files_in = (("init", INIT.replace("@CHANNEL@", AGENT_CHANNEL)), ("etc/udhcpc.script", UDHCPC)) if init is None \
        else (("init", init),)
    for name, text in files_in:
        (rd / name).write_text(text)
        (rd / name).chmod(0o755)
    say(f"packing the initrd ({len(order)} modules from {kver})")
    files = sorted(str(p.relative_to(rd)) for p in rd.rglob("*"))
    cp = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], input=("\n".join(files) + "\n").encode(), cwd=rd,
                        capture_output=True)
    if cp.returncode != 0:
        raise LabError(f"cpio failed: {cp.stderr.decode(errors='replace').strip()}")
    (tmp / "initrd.gz").write_bytes(gzip.compress(cp.stdout, 6))
    (tmp / "packages").write_text("".join(f"{p} {v}\n" for p, v in pkgs) + f"kernel {kver}\n")
    for p in (debs, x, rd):
        shutil.rmtree(p)


def module_order(wanted: tuple[str, ...], modules_dep: str) -> list[str]:
    """Pure: the module files to load, dependencies first (``modules.dep`` lists a module's
    dependencies, nearest first), each once."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in modules_dep.splitlines():
        if ":" not in line:
            continue
        mod, rest = line.split(":", 1)
        deps[mod] = rest.split()
        by_name[Path(mod).name.split(".ko")[0]] = mod
    out: list[str] = []
    for name in wanted:
        if name not in by_name:
            raise LabError(f"the kernel has no module {name} (built in? then drop it from MODULES)")
        mod = by_name[name]
        for m in [*reversed(deps[mod]), mod]:
            if m not in out:
                out.append(m)
    return out
