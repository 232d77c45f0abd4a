"""``nestnet host add|rm`` through the installed entry point: spec edited in place with its
comments, the lock updated, bad input refused with one line and nothing changed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SEED = Path(__file__).parents[2] / "examples" / "seed.yaml"


def nestnet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nestnet", *args], capture_output=True, text=True)


@pytest.fixture
def seed_copy(tmp_path) -> Path:
    shutil.copy(SEED, tmp_path / "seed.yaml")
    shutil.copy(SEED.with_suffix(".lock"), tmp_path / "seed.lock")
    return tmp_path / "seed.yaml"


def test_host_add_keeps_comments_allocates_and_rm_restores(seed_copy):
    original = seed_copy.read_text()
    lock_before = seed_copy.with_suffix(".lock").read_text()
    r = nestnet("host", "add", str(seed_copy), "vme-kvm-vm3", "--ip", "10.0.1.12", "--nic", "vme-kvm-vm3-vm-nic",
                "--firewall", "nftables", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["block"] == "10.0.1.32/28"  # first free /28; no other block moved
    text = seed_copy.read_text()
    assert "# needs the route table too" in text and "# nested VMs use 10.0.1.16-31" in text
    assert text.startswith(original.rstrip("\n").split("vms:")[0].rstrip("\n"))
    assert "  - {name: vme-kvm-vm3, ip: 10.0.1.12, nic: vme-kvm-vm3-vm-nic, firewall: nftables}\n" in text
    lock = seed_copy.with_suffix(".lock").read_text()
    assert "vme-kvm-vm3: 10.0.1.32/28" in lock and "vme-kvm-vm1: 10.0.1.16/28" in lock
    r = nestnet("plan", str(seed_copy), "--json")
    routes = {x["name"]: x["address_prefix"] for x in json.loads(r.stdout)["azure"]["routes"]}
    assert routes["nestnet-vme-kvm-vm3"] == "10.0.1.32/28"

    r = nestnet("host", "rm", str(seed_copy), "vme-kvm-vm3")
    assert r.returncode == 2 and "--release-block" in r.stderr and seed_copy.read_text() == text
    r = nestnet("host", "rm", str(seed_copy), "vme-kvm-vm3", "--release-block")
    assert r.returncode == 0, r.stderr
    assert seed_copy.read_text() == original
    assert seed_copy.with_suffix(".lock").read_text() == lock_before


@pytest.mark.parametrize("args,message", [
    (("vme-kvm-vm1", "--ip", "10.0.1.13"), "a host named 'vme-kvm-vm1' already exists"),
    (("h3", "--ip", "10.0.1.300"), "--ip: '10.0.1.300' is not an IPv4 address"),
    (("h3", "--ip", "10.0.1.20"), "10.0.1.20"),  # a VM's address: the validator names it
    (("h3", "--ip", "10.0.1.12", "--block", "10.0.1.16/28"), "overlaps the block of host 'vme-kvm-vm1'"),
    (("bad name", "--ip", "10.0.1.12"), "is not a valid host name"),
])
def test_host_add_bad_input_changes_nothing(seed_copy, args, message):
    spec, lock = seed_copy.read_text(), seed_copy.with_suffix(".lock").read_text()
    r = nestnet("host", "add", str(seed_copy), *args)
    assert r.returncode == 2, r.stdout
    assert message in r.stderr and "Traceback" not in r.stderr
    assert seed_copy.read_text() == spec and seed_copy.with_suffix(".lock").read_text() == lock


def test_host_rm_refuses_while_vms_run_there(seed_copy):
    spec = seed_copy.read_text()
    r = nestnet("host", "rm", str(seed_copy), "vme-kvm-vm2", "--release-block")
    assert r.returncode == 2 and "still runs VMs web2" in r.stderr
    assert seed_copy.read_text() == spec
