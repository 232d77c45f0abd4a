"""The lab's cloud-init guests' image: a small Debian rootfs with cloud-init, built once and cached.

Everything comes from Debian's packages (DESIGN 5b): ``debootstrap --variant=minbase`` with
systemd, udev, cloud-init, netplan.io (cloud-init's network renderer here, rendering for
systemd-networkd as on Ubuntu's cloud images) and systemd-resolved (the resolver that takes the
name servers networkd learns from netplan), iproute2 and iputils-ping; the kernel is the same
Debian cloud kernel package the DHCP guests boot (lab/guestimage.py), extracted, never installed.

Boot, kept short under TCG: the kernel and a busybox initrd are booted directly by libvirt; the
initrd loads virtio_blk, virtio_net, virtio_console and isofs (the cloud kernel has them as
modules, and no AHCI: the NoCloud seed is a virtio disk, not a SATA CD-ROM), mounts ``/dev/vda``
(a qcow2 overlay per guest over the image's ext4 ``rootfs.raw``, made by ``mkfs.ext4 -d`` without
mounting anything) and switches to systemd. Units a guest does not need for its network are
masked (timers, gettys, fsck). cloud-init runs as Debian ships it (its four stages); the NoCloud
datasource only (``datasource_list``), network by netplan. Two units of the lab's own: the agent
(the DHCP guests' shell loop, lab/guestimage.AGENT_LOOP, here under bash) and one that prints
``nestnet-guest: eth0 ADDR/LEN ...`` to the console once eth0 has a global address, which the
lab waits for (lab/libvirt.wait_address).

Cached as ``<image cache>/cloudinit-<key>/{vmlinuz,initrd.gz,rootfs.raw}`` beside the other
images (same directory, ``flock``, a temporary directory renamed into place); ``key`` hashes the
builder, the suite, the mirror, the package list, every file written here and the kernel's version.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabError
from ..guest import AGENT_CHANNEL
from . import guestimage, image

BUILDER = "1"
INCLUDE = (
    "systemd", "systemd-sysv", "udev", "dbus", "systemd-resolved", "cloud-init", "netplan.io",
    "python3-cffi-backend",  # debootstrap resolves no virtual packages: python3-cryptography needs it
    "iproute2", "iputils-ping",
)
MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "virtio_console", "isofs")
MEMORY_MIB = 384  # cloud-init is Python: 192 MiB (the DHCP guests') is too tight for it

INIT = r"""#!/bin/busybox sh
# nestnet lab cloud-init guest: virtio modules, the root disk, then systemd
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
mkdir -p /newroot
mount -t ext4 -o rw /dev/vda /newroot || { echo "nestnet-guest: cannot mount /dev/vda"; exec sh; }
echo "nestnet-guest: root disk at $(cut -d' ' -f1 /proc/uptime) s"
mount -o move /dev /newroot/dev
umount /sys /proc
exec switch_root /newroot /sbin/init
"""

AGENT = "#!/bin/bash\n# nestnet lab agent (lab/guestimage.AGENT_LOOP)\n" + guestimage.AGENT_LOOP.replace(
    "@CHANNEL@", AGENT_CHANNEL)

AGENT_UNIT = """[Unit]
Description=nestnet lab agent on the virtio-serial port
DefaultDependencies=no
After=systemd-udevd.service

[Service]
ExecStart=/usr/local/sbin/nestnet-agent
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
"""

ADDRESS = r"""#!/bin/sh
# nestnet lab: say on the console when eth0 holds a global address (the lab waits for this line)
for i in $(seq 1 600); do
  a=$(ip -o -4 addr show dev eth0 scope global 2>/dev/null | sed -n 's/.* inet \([^ ]*\) .*/\1/p' | head -n1)
  if [ -n "$a" ]; then
    echo "nestnet-guest: eth0 $a by cloud-init at $(cut -d' ' -f1 /proc/uptime) s" > /dev/console
    exit 0
  fi
  sleep 0.2
done
echo "nestnet-guest: eth0 has no address after 120 s" > /dev/console
exit 1
"""

# Not ordered after sysinit.target: cloud-init.service (its network stage) runs before that, and
# the address is there as soon as networkd has applied what cloud-init-local rendered. After
# resolved: once the lab sees the address, names resolve too (with resolved ordered late, a ping
# by name right after lab up failed, seen here).
ADDRESS_UNIT = """[Unit]
Description=nestnet lab: report eth0's address on the console
DefaultDependencies=no
After=systemd-networkd.service systemd-resolved.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/nestnet-address

[Install]
WantedBy=multi-user.target
"""

CLOUD_CFG = """# nestnet lab: the seed is a NoCloud cidata disk; netplan renders the network (for networkd).
datasource_list: [NoCloud]
system_info:
  network:
    renderers: [netplan]
# Only the modules this image has the programs for (no ssh, sudo, apt sources or locales): the
# others fail (cc_locale's update-locale) or warn (cc_ssh's keys), and each costs seconds under TCG.
cloud_init_modules: [migrator, seed_random, bootcmd, write-files, set_hostname, update_hostname, update_etc_hosts]
cloud_config_modules: [runcmd]
cloud_final_modules: [write-files-deferred, scripts-vendor, scripts-per-once, scripts-per-boot, scripts-per-instance,
                      scripts-user, final-message]
"""

FSTAB = "/dev/vda / ext4 rw,noatime 0 0\n"

# Not needed for a guest's network, and slow under TCG: masked.
MASKED = (
    "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer",
    "getty@tty1.service", "serial-getty@ttyS0.service", "systemd-networkd-wait-online.service",
    "systemd-fsck-root.service", "systemd-remount-fs.service", "systemd-random-seed.service",
    "systemd-pstore.service", "modprobe@drm.service", "systemd-journal-flush.service",
)

FILES = {
    "usr/local/sbin/nestnet-agent": (AGENT, 0o755),
    "usr/local/sbin/nestnet-address": (ADDRESS, 0o755),
    "etc/systemd/system/nestnet-agent.service": (AGENT_UNIT, 0o644),
    "etc/systemd/system/nestnet-address.service": (ADDRESS_UNIT, 0o644),
    "etc/cloud/cloud.cfg.d/90-nestnet-lab.cfg": (CLOUD_CFG, 0o644),
    "etc/fstab": (FSTAB, 0o644),
}


@dataclass(frozen=True)
class CloudInitImage(guestimage.GuestImage):
    """The DHCP guests' kernel and initrd (the initrd mounts the rootfs), and the rootfs."""

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs.raw"

    def to_dict(self) -> dict[str, object]:
        size = self.rootfs.stat().st_blocks * 512 if self.rootfs.exists() else 0
        return {"flavour": "cloud-init", "path": str(self.path), "key": self.key, "built": self.built,
                "seconds": round(self.seconds, 2), "rootfs_mib": round(size / 2**20)}


def key(pkgs: list[tuple[str, str]]) -> str:
    """Pure: what the image is made of, hashed."""
    parts = [BUILDER, image.SUITE, image.mirror(), ",".join(INCLUDE), ",".join(MODULES), INIT, *MASKED,
             *(f"{p}:{t}" for p, (t, _m) in sorted(FILES.items())), *(f"{p}={v}" for p, v in pkgs)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def cached() -> CloudInitImage | None:
    """The newest built cloud-init image, without asking apt (for lab up, which must not build)."""
    found = sorted((p for p in image.cache_dir().glob("cloudinit-*") if (p / "rootfs.raw").exists()),
                   key=lambda p: p.stat().st_mtime)
    return CloudInitImage(found[-1], found[-1].name[10:], False, 0.0) if found else None


def ensure(*, refresh: bool = False, say=lambda _m: None) -> CloudInitImage:
    t0 = time.monotonic()
    if os.geteuid() != 0:
        raise LabError("building the lab's cloud-init guest image needs root (debootstrap)")
    for tool in ("debootstrap", "mkfs.ext4", "apt-get", "dpkg-deb", "depmod", "cpio"):
        if shutil.which(tool) is None:
            raise LabError(f"building the lab's cloud-init guest image needs {tool} (scripts/system-deps)")
    pkgs = guestimage.packages()
    k = key(pkgs)
    root = image.cache_dir()
    final = root / f"cloudinit-{k}"
    root.mkdir(parents=True, exist_ok=True)
    def build(tmp: Path) -> None:
        tmp.mkdir()
        guestimage._build(tmp, pkgs, say, modules=MODULES, init=INIT)
        _rootfs(tmp, say)

    if not image.build_once(final, ".cloudinit.lock", (final / "rootfs.raw").exists, build, refresh=refresh):
        return CloudInitImage(final, k, False, time.monotonic() - t0)
    say(f"cloud-init guest image {final} ready")
    return CloudInitImage(final, k, True, time.monotonic() - t0)


def _rootfs(tmp: Path, say) -> None:
    d = tmp / "rootfs"
    image._run(["debootstrap", "--variant=minbase", f"--include={','.join(INCLUDE)}", image.SUITE, str(d),
                image.mirror()], "debootstrap (cloud-init guest)", say)
    configure(d)
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for f in (d / cache).glob("*"):
            if f.is_file():
                f.unlink()
    used = sum(f.lstat().st_size for f in d.rglob("*") if f.is_file() and not f.is_symlink())
    size_mib = used * 13 // 10 // 2**20 + 128  # room for what cloud-init and the journal write
    say(f"making rootfs.raw ({size_mib} MiB ext4, mkfs.ext4 -d)")
    image._run(["mkfs.ext4", "-q", "-F", "-L", "nestnet-root", "-d", str(d), str(tmp / "rootfs.raw"),
                f"{size_mib}M"], "mkfs.ext4 -d", say)
    shutil.rmtree(d)


def configure(d: Path) -> None:
    """The lab's files, networkd enabled (Debian leaves it off; cloud-init's netplan renders for
    it), the masked units."""
    for rel, (text, mode) in FILES.items():
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(mode)
    units = d / "etc/systemd/system"
    wants = units / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    for unit, target in (("systemd-networkd.service", "/lib/systemd/system/systemd-networkd.service"),
                         ("nestnet-agent.service", "/etc/systemd/system/nestnet-agent.service"),
                         ("nestnet-address.service", "/etc/systemd/system/nestnet-address.service")):
        link = wants / unit
        if not link.is_symlink():
            link.symlink_to(target)
    sock = units / "sockets.target.wants/systemd-networkd.socket"
    sock.parent.mkdir(parents=True, exist_ok=True)
    if not sock.is_symlink():
        sock.symlink_to("/lib/systemd/system/systemd-networkd.socket")
    for unit in MASKED:
        mask = units / unit
        if mask.is_symlink() or mask.exists():
            mask.unlink()
        mask.symlink_to("/dev/null")
    (d / "etc/hostname").write_text("localhost\n")  # cloud-init sets the seed's local-hostname
    (d / "etc/machine-id").write_text("")  # a fresh one per boot, as a cloned image has
