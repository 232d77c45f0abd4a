"""What the seed's manual set-up leaves on a host is recognised, with the way to retire it (pure:
files under a temporary root)."""

from __future__ import annotations

from pathlib import Path

from nestnet.host.leftovers import find
from nestnet.lab import seedbuilt
from nestnet.plan import load_plan

SEED = Path(__file__).parents[2] / "examples" / "seed.yaml"


def test_the_seed_procedure_leftovers_are_each_named(tmp_path):
    plan = load_plan(SEED, write=False)
    for rel, text in seedbuilt.files(plan, "vme-kvm-vm1").items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "etc/netplan").mkdir(parents=True)
    (tmp_path / "etc/netplan/50-cloud-init.yaml").write_text(
        "network:\n  ethernets:\n    eth1:\n      routes:\n        - to: 10.0.1.48/28\n          via: 10.0.1.11\n"
        "        - to: 192.168.0.0/16\n          via: 10.0.1.1\n")
    lines = find(tmp_path, plan, "vme-kvm-vm1")
    text = "\n".join(lines)
    assert len(lines) == 5, text
    assert "/etc/netplan/50-cloud-init.yaml persists 10.0.1.48/28 by hand" in text and "192.168" not in text
    assert "10-nested-vm-routes-eth1.network persists 10.0.1.48/28" in text
    assert "ufw default deny routed" in text
    assert "iptables-persistent" in text and "MASQUERADE" in text
    assert "/etc/sysctl.conf: 'net.ipv4.ip_forward=1'" in text


def test_nothing_found_on_a_clean_host(tmp_path):
    plan = load_plan(SEED, write=False)
    (tmp_path / "etc/default").mkdir(parents=True)
    (tmp_path / "etc/default/ufw").write_text('DEFAULT_FORWARD_POLICY="DROP"\n')
    (tmp_path / "etc/sysctl.conf").write_text("#net.ipv4.ip_forward=1\n")
    assert find(tmp_path, plan, "vme-kvm-vm1") == []
