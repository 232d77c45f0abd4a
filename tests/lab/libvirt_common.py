"""What the libvirt-guest lab tests share: nestnet's CLI as a user runs it, the seed, what they need
on this machine, and the images they boot (built once, cached)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nestnet.lab import guestimage, image

MARKS = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("systemd-nspawn") or not shutil.which("debootstrap"),
                       reason="needs root, systemd-container and debootstrap (scripts/system-deps)"),
]
SEED = Path(__file__).parents[2] / "examples/seed.yaml"
NESTNET = str(Path(sys.executable).with_name("nestnet"))


def nestnet(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([NESTNET, "-q", *args], capture_output=True, text=True)
    if ok:
        assert r.returncode == 0, f"nestnet {' '.join(args)}: {r.returncode} {(r.stderr or r.stdout).strip()}"
    return r


@pytest.fixture(scope="module", autouse=True)
def images() -> None:
    """The hosts' libvirt image and the guests' kernel + initrd, built once (cached: on a fresh
    machine debootstrap, libvirt and QEMU, and the kernel package take a few minutes)."""
    nestnet("lab", "image", "--flavour", "libvirt")
    nestnet("lab", "image", "--flavour", "guest")
    assert image.cached("libvirt") and guestimage.cached()
