"""The real UFW in a throwaway network namespace (DESIGN §5): ``ufw`` runs in a private mount
namespace where /etc/ufw and /etc/default/ufw are a test root's copies and /run is a tmpfs, so
it loads its iptables-nft tables into that namespace only and writes only the copies. Used by
the host and doctor tests (``from host.ufwlive import ...``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

UFW_DIRS = ("etc/ufw", "etc/default/ufw")


def ufw_root(root: Path) -> Path:
    """``root`` with copies of this machine's stock /etc/ufw and /etc/default/ufw (UFW disabled)."""
    shutil.copytree("/etc/ufw", root / "etc/ufw", dirs_exist_ok=True)
    (root / "etc/default").mkdir(parents=True, exist_ok=True)
    shutil.copy("/etc/default/ufw", root / "etc/default/ufw")
    return root


def ufw(ns: str, root: Path, *args: str) -> subprocess.CompletedProcess:
    """``ufw ARGS`` inside ``ns``, reading and writing ``root``'s copies (``ufw_root``)."""
    mounts = " && ".join(f"mount --bind {root / d} /{d}" for d in UFW_DIRS)
    script = f"{mounts} && mount -t tmpfs tmpfs /run && exec ufw \"$@\""
    r = subprocess.run(["ip", "netns", "exec", ns, "unshare", "-m", "--propagation", "private",
                        "sh", "-c", script, "ufw", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"ufw {' '.join(args)} in {ns}: {(r.stderr or r.stdout).strip()}")
    return r


def enable(ns: str, root: Path) -> None:
    """``ufw --force enable`` as the seed does (default deny incoming, deny routed), plus SSH."""
    ufw(ns, root, "allow", "22/tcp")
    ufw(ns, root, "--force", "enable")
