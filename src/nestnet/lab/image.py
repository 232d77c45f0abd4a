"""The systemd hosts' root filesystem: Debian bookworm from Debian's own packages, built once and cached.

``ensure(flavour)`` returns the cached rootfs directory, building it first when it is missing:
``debootstrap --variant=minbase`` with the packages below, then what a KVM host in the cloud has
beside them (networkd enabled, UFW with an ssh allow rule). Flavours are layers: ``libvirt`` is
a copy of ``base`` plus libvirt and QEMU, so plain systemd-host labs never pay for them.

The cache is ``/var/cache/nestnet/images/<flavour>-<key>`` (``NESTNET_IMAGE_CACHE`` overrides the
directory; it must be an absolute path), ``key`` a hash of the suite, the mirror, the package
lists and ``BUILDER``: change any of them and a new image is built beside the old one. A build
happens in a temporary directory renamed into place when complete, under an exclusive ``flock``
so two concurrent builds of one image do the work once; an interrupted build leaves no image.
Per-host things (hostname, the uplink's netplan file, whether UFW is enabled) are not in the
image: ``lab/systemd.py`` writes them into each host's own overlay.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import env
from ..errors import LabError, UsageError

BUILDER = "1"  # bump when the steps below change what an image holds
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
CACHE_ENV = "NESTNET_IMAGE_CACHE"
MIRROR_ENV = "NESTNET_DEBIAN_MIRROR"
DEFAULT_CACHE = Path("/var/cache/nestnet/images")

# debootstrap --include: what a KVM host needs to boot and what nestnet programs.
BASE_INCLUDE = (
    "systemd", "systemd-sysv", "dbus", "iproute2", "nftables", "dnsmasq-base", "udev", "kmod",
    "netplan.io", "ufw", "iptables", "procps", "iputils-ping",
    # what the Python that runs nestnet inside the hosts links against (bound from this machine)
    "libssl3", "libffi8", "libsqlite3-0", "zlib1g", "libbz2-1.0", "liblzma5",
)
LAYERS: dict[str, tuple[str, ...]] = {
    "base": (),
    # the real-guests lab (issue 22): libvirt and QEMU (TCG) inside the hosts
    "libvirt": ("libvirt-daemon-system", "qemu-system-x86", "qemu-utils"),
}

Say = Callable[[str], None]


@dataclass(frozen=True)
class Image:
    flavour: str
    path: Path
    key: str
    built: bool  # built by this call (False: taken from the cache)
    seconds: float  # how long this call took

    def to_dict(self) -> dict[str, object]:
        return {"flavour": self.flavour, "path": str(self.path), "key": self.key, "built": self.built,
                "seconds": round(self.seconds, 2)}


def cache_dir() -> Path:
    return env.get("NESTNET_IMAGE_CACHE") or DEFAULT_CACHE


def mirror() -> str:
    return env.get("NESTNET_DEBIAN_MIRROR") or DEFAULT_MIRROR


def _check_flavour(flavour: str) -> None:
    if flavour not in LAYERS:
        raise UsageError(f"image flavour {flavour!r}: known are {', '.join(LAYERS)}")


def key(flavour: str) -> str:
    """Pure: what the image is made of, hashed. The libvirt layer's key covers base's too."""
    _check_flavour(flavour)
    parts = [BUILDER, SUITE, mirror(), ",".join(BASE_INCLUDE)]
    if flavour != "base":
        parts += [flavour, ",".join(LAYERS[flavour])]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def path(flavour: str = "base") -> Path:
    return cache_dir() / f"{flavour}-{key(flavour)}"


def cached(flavour: str = "base") -> Path | None:
    p = path(flavour)
    return p if (p / "etc" / "os-release").exists() else None


def ensure(flavour: str = "base", *, refresh: bool = False, say: Say = lambda _m: None) -> Image:
    """The image, built when missing (or when ``refresh``); concurrent callers wait for one build."""
    _check_flavour(flavour)
    t0 = time.monotonic()
    _require_tools()
    final = path(flavour)
    root = final.parent
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabError(f"image cache {root}: {exc.strerror}") from exc
    def build(tmp: Path) -> None:
        if flavour == "base":
            _debootstrap(tmp, say)
        else:
            below = ensure("base", say=say).path
            say(f"copying the base image ({below.name})")
            _run(["cp", "-a", "--reflink=auto", f"{below}/.", str(tmp)], "copying the base image", say, mkdir=tmp)
            _chroot_install(tmp, LAYERS[flavour], say)
            _configure_libvirt(tmp)
        _configure(tmp)

    if not build_once(final, f".{flavour}.lock", lambda: cached(flavour) is not None, build, refresh=refresh):
        return Image(flavour, final, key(flavour), False, time.monotonic() - t0)
    say(f"image {final} ready")
    return Image(flavour, final, key(flavour), True, time.monotonic() - t0)


def _require_tools() -> None:
    if os.geteuid() != 0:
        raise LabError("building the systemd hosts' image needs root (debootstrap): run it with sudo")
    missing = [t for t in ("debootstrap", "systemd-nspawn", "nsenter") if shutil.which(t) is None]
    if missing:
        pkgs = {"debootstrap": "debootstrap", "systemd-nspawn": "systemd-container", "nsenter": "util-linux"}
        raise LabError(f"systemd hosts need {', '.join(missing)} (apt-get install "
                       f"{' '.join(pkgs[m] for m in missing)}, or run scripts/system-deps)")


def build_once(final: Path, lock_name: str, ready: Callable[[], bool], build: Callable[[Path], None], *,
               refresh: bool = False) -> bool:
    """Build ``final`` in the cache unless ``ready()`` (or when ``refresh``): ``build(tmp)`` fills a
    temporary directory beside it, which is renamed into place, so an image is there whole or not at
    all. Concurrent callers wait on ``lock_name``'s flock for one build. True when this call built it."""
    root = final.parent
    with open(root / lock_name, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready() and not refresh:
            return False
        tmp = root / f".build-{final.name}-{os.getpid()}"
        _remove_tree(tmp)
        try:
            build(tmp)
            old = root / f".old-{final.name}-{os.getpid()}"
            if final.exists():
                final.rename(old)
            tmp.rename(final)
            _remove_tree(old)
        except BaseException:
            _remove_tree(tmp)
            raise
    return True


def _remove_tree(p: Path) -> None:
    if p.exists() or p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)


def _run(argv: list[str], what: str, say: Say, mkdir: Path | None = None, env: dict[str, str] | None = None) -> None:
    """Run a build step, passing each line of its output to ``say`` (the progress display)."""
    if mkdir is not None:
        mkdir.mkdir(parents=True, exist_ok=True)
    tail: list[str] = []
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        if line:
            tail = (tail + [line])[-5:]
            say(line)
    if proc.wait() != 0:
        raise LabError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail[-3:]) or 'no output'}")


def _debootstrap(tmp: Path, say: Say) -> None:
    _run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_INCLUDE)}", SUITE, str(tmp), mirror()],
         "debootstrap", say)
    # apt inside the image fetches from the same mirror (debootstrap writes it already; be explicit)
    (tmp / "etc/apt/sources.list").write_text(f"deb {mirror()} {SUITE} main\n")


CHROOT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


def _chroot_install(tmp: Path, packages: tuple[str, ...], say: Say) -> None:
    # policy-rc.d: no service of the image starts on this machine while it is installed
    prc = tmp / "usr/sbin/policy-rc.d"
    prc.write_text("#!/bin/sh\nexit 101\n")
    prc.chmod(0o755)
    try:
        _run(["chroot", str(tmp), "apt-get", "update", "-q"], "apt-get update in the image", say, env=CHROOT_ENV)
        _run(["chroot", str(tmp), "apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
             "apt-get install in the image", say, env=CHROOT_ENV)
        _run(["chroot", str(tmp), "apt-get", "clean"], "apt-get clean", say, env=CHROOT_ENV)
    finally:
        prc.unlink(missing_ok=True)


def _configure(tmp: Path) -> None:
    """What every host of the lab shares, as the cloud's Ubuntu KVM hosts have it."""
    wants = tmp / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    # netplan renders for systemd-networkd, which Ubuntu (not Debian) enables by default
    link = wants / "systemd-networkd.service"
    if not link.is_symlink():
        link.symlink_to("/lib/systemd/system/systemd-networkd.service")
    sock = tmp / "etc/systemd/system/sockets.target.wants/systemd-networkd.socket"
    sock.parent.mkdir(parents=True, exist_ok=True)
    if not sock.is_symlink():
        sock.symlink_to("/lib/systemd/system/systemd-networkd.socket")
    # UFW as the seed's users leave it before `ufw enable`: ssh allowed (rules written, not loaded).
    # Whether it is enabled is per host (the ENABLED= line of ufw.conf, in the host's overlay).
    _ufw_allow_ssh(tmp)
    # a login prompt on a console that is a pipe would only spin
    (tmp / "etc/systemd/system/console-getty.service").unlink(missing_ok=True)
    for unit in ("console-getty.service", "getty@tty1.service", "systemd-networkd-wait-online.service"):
        mask = tmp / "etc/systemd/system" / unit
        if not mask.is_symlink():
            mask.symlink_to("/dev/null")
    (tmp / "etc/hostname").write_text("nestnet-host\n")
    (tmp / "etc/machine-id").write_text("")  # a fresh one per boot, as a cloned VM image has


def _ufw_allow_ssh(tmp: Path) -> None:
    """``ufw allow 22/tcp`` as UFW writes it in user.rules / user6.rules (run inside the image: it
    only edits files while UFW is disabled)."""
    _run(["chroot", str(tmp), "ufw", "allow", "22/tcp"], "ufw allow 22/tcp in the image", lambda _m: None,
         env=CHROOT_ENV)


def _configure_libvirt(tmp: Path) -> None:
    """libvirt inside a container: its cgroups are read-only there and it may not make namespaces
    (DESIGN 5b)."""
    conf = tmp / "etc/libvirt/qemu.conf"
    if conf.exists():
        text = conf.read_text()
        if "\ncgroup_controllers = [ ]" not in text:
            conf.write_text(text + "\n# nestnet lab: cgroups are read-only in a container\n"
                            "cgroup_controllers = [ ]\nnamespaces = [ ]\n")
