"""The CLI end to end, through the installed entry point (subprocess, as a user runs it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .specs import seed, write

SEED = Path(__file__).parents[2] / "examples" / "seed.yaml"


def nestnet(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nestnet", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def seed_copy(tmp_path) -> Path:
    shutil.copy(SEED, tmp_path / "seed.yaml")
    return tmp_path / "seed.yaml"


def test_version_and_help():
    r = nestnet("--version")
    assert r.returncode == 0 and "nestnet, version" in r.stdout
    r = nestnet("--help")
    assert r.returncode == 0
    for cmd in ("validate", "plan", "vm"):
        assert cmd in r.stdout


def test_validate_seed(seed_copy):
    r = nestnet("validate", str(seed_copy))
    assert r.returncode == 0, r.stderr
    assert "ok (routed): 2 hosts, 2 VMs, 1 endpoint," in r.stdout
    assert not seed_copy.with_suffix(".lock").exists()  # validate writes nothing
    r = nestnet("validate", str(seed_copy), "--json")
    d = json.loads(r.stdout)
    assert d["ok"] is True and d["errors"] == [] and len(d["warnings"]) == 2


def test_plan_json_holds_the_seed_design(seed_copy):
    r = nestnet("plan", str(seed_copy), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    routes = {(x["address_prefix"], x["next_hop_ip"], x["next_hop_type"]) for x in d["azure"]["routes"]}
    assert routes == {
        ("10.0.1.16/28", "10.0.1.10", "VirtualAppliance"),
        ("10.0.1.48/28", "10.0.1.11", "VirtualAppliance"),
    }
    assert d["azure"]["route_table"] == "vme-kvm-nested-vm-routes"
    assert d["azure"]["subnet_associations"] == ["vm-subnet", "mgmt-subnet"]
    assert d["azure"]["nic_ip_forwarding"] == ["vme-kvm-vm1-vm-nic", "vme-kvm-vm2-vm-nic"]
    h1, h2 = d["hosts"]["vme-kvm-vm1"], d["hosts"]["vme-kvm-vm2"]
    assert {"dst": "10.0.1.48/28", "via": "10.0.1.11", "dev": "eth1"} in h1["routes"]
    assert {"dst": "10.0.1.16/28", "via": "10.0.1.10", "dev": "eth1"} in h2["routes"]
    assert {"dst": "10.0.1.16/28", "dev": "nestbr0"} in h1["routes"]
    assert h1["sysctl"]["net.ipv4.ip_forward"] == "1"
    assert d["vms"]["web1"] == {
        "host": "vme-kvm-vm1", "ip": "10.0.1.20", "prefix_len": 32, "gateway": "10.0.1.10",
        "guest_style": "onlink", "mac": "52:54:00:00:01:14", "nameservers": ["10.0.1.10"], "search": [], "forwards": [],
    }
    assert seed_copy.with_suffix(".lock").exists()


def test_plan_table(seed_copy):
    r = nestnet("plan", str(seed_copy))
    assert r.returncode == 0
    assert "nestnet-vme-kvm-vm1" in r.stdout and "10.0.1.48/28" in r.stdout


def test_cross_subnet_hosts_route_via_gateway(tmp_path):
    d = seed()
    d["hosts"].append({"name": "far", "ip": "10.0.2.10", "block": "10.0.1.64/28"})
    plan = json.loads(nestnet("plan", str(write(tmp_path, d)), "--json").stdout)
    h1 = plan["hosts"]["vme-kvm-vm1"]["routes"]
    assert {"dst": "10.0.1.64/28", "via": "10.0.1.1", "dev": "eth1"} in h1  # not on-link: Azure gateway
    far = plan["hosts"]["far"]["routes"]
    assert {"dst": "10.0.1.16/28", "via": "10.0.2.1", "dev": "eth1"} in far


def test_vm_add_keeps_comments_and_rm_restores(seed_copy):
    before = seed_copy.read_text()
    r = nestnet("vm", "add", str(seed_copy), "db1", "--host", "vme-kvm-vm2")
    assert r.returncode == 0, r.stderr
    assert "added db1 on vme-kvm-vm2: 10.0.1.48/32" in r.stdout
    after = seed_copy.read_text()
    assert "# nested VMs use 10.0.1.16-31" in after and "{name: db1, host: vme-kvm-vm2}" in after
    assert "db1: 10.0.1.48" in seed_copy.with_suffix(".lock").read_text()
    r = nestnet("vm", "config", str(seed_copy), "db1")
    assert "ip addr replace 10.0.1.48/32 dev eth0" in r.stdout
    assert nestnet("vm", "rm", str(seed_copy), "db1").returncode == 0
    assert seed_copy.read_text() == before
    assert "db1" not in seed_copy.with_suffix(".lock").read_text()


def test_vm_add_bad_input_changes_nothing(seed_copy):
    nestnet("plan", str(seed_copy))
    spec_before = seed_copy.read_text()
    lock_before = seed_copy.with_suffix(".lock").read_text()
    for args, expected in (
        (["--host", "nope"], "no host named 'nope'"),
        (["--host", "vme-kvm-vm1", "--ip", "10.0.3.99"], "outside the nested pool"),
        (["--host", "vme-kvm-vm1", "--ip", "10.0.1.20"], "already used"),
    ):
        r = nestnet("vm", "add", str(seed_copy), "x1", *args)
        assert r.returncode == 2 and expected in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = nestnet("vm", "add", str(seed_copy), "web1", "--host", "vme-kvm-vm1")
    assert r.returncode == 2 and "already exists" in r.stderr
    assert seed_copy.read_text() == spec_before
    assert seed_copy.with_suffix(".lock").read_text() == lock_before


def test_vm_config_unknown_vm(seed_copy):
    r = nestnet("vm", "config", str(seed_copy), "nope")
    assert r.returncode == 2 and "no VM named 'nope'" in r.stderr


def test_vm_list_json(seed_copy):
    d = json.loads(nestnet("vm", "list", str(seed_copy), "--json").stdout)
    assert d["vms"]["web2"]["ip"] == "10.0.1.50"


def test_warnings_once_count_elsewhere_quiet(seed_copy):
    r = nestnet("validate", str(seed_copy))
    assert [line.startswith("warning: ") for line in r.stderr.splitlines()] == [True, True], r.stderr
    assert "hosts[0] (vme-kvm-vm1).block" in r.stderr  # errors and warnings name the entry
    r = nestnet("vm", "list", str(seed_copy))
    assert r.returncode == 0 and r.stderr.splitlines() == [
        f"warning: 2 warnings about {seed_copy} (`nestnet validate {seed_copy}` lists them; -q hides this)"
    ]
    for args in (["-q", "vm", "list"], ["-q", "plan"], ["--quiet", "validate"]):
        r = nestnet(*args, str(seed_copy))
        assert r.returncode == 0 and "warning" not in r.stderr, (args, r.stderr)


def test_help_lists_exit_codes():
    r = nestnet("--help")
    for line in ("0   ok", "1   not healthy", "2   bad input", "3   could not reach", "70  a bug"):
        assert line in r.stdout


def test_piped_output_does_not_wrap(tmp_path):
    d = seed()
    d["hosts"][0]["name"] = "h" * 60
    d["vms"][0]["host"] = "h" * 60
    r = nestnet("plan", str(write(tmp_path, d)))
    assert r.returncode == 0, r.stderr
    row = [line for line in r.stdout.splitlines() if line.startswith("h" * 60)]
    assert row and "10.0.1.16/28" in row[0] and len(row[0]) > 80


def _with(path: str, value):
    def mutate(d):
        cur = d
        keys = path.split(".")
        for k in keys[:-1]:
            cur = cur[int(k)] if k.isdigit() else cur[k]
        cur[keys[-1]] = value
        return d

    return mutate


@pytest.mark.parametrize("mutate,key,value", [
    (_with("nested.pool", "0.0.0.0/0"), "nested.pool", "0.0.0.0/0"),
    (_with("nested.pool", "192.168.0.0/24"), "nested.pool", "192.168.0.0/24 is outside the VNet address space"),
    (_with("azure.address_space", ["10.0.0.0/16", "0.0.0.0/0"]), "azure.address_space[1]", "0.0.0.0/0"),
    (_with("hosts.0.bridge", "all"), "hosts[0] (vme-kvm-vm1).bridge", "'all'"),
    (_with("hosts.1.bridge", "default"), "hosts[1] (vme-kvm-vm2).bridge", "'default'"),
    (_with("azure.location", "east\x00us"), "azure.location", "'east\\x00us'"),
    (_with("azure.location", "East US"), "azure.location", "'East US'"),
])
def test_issue16_values_refused_in_one_line(tmp_path, mutate, key, value):
    spec = write(tmp_path, mutate(seed()))
    assert nestnet("plan", str(spec)).returncode in (0, 2)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for args in (["validate", str(spec)], ["plan", str(spec)],
                 ["vm", "add", str(spec), "x1", "--host", "vme-kvm-vm1"], ["vm", "list", str(spec)]):
        r = nestnet(*args)
        lines = r.stderr.splitlines()  # one line per problem, each naming the file
        assert r.returncode == 2 and lines and all(line.startswith(f"error: {spec}") for line in lines), r.stderr
        assert any(f"{key}:" in line and value in line for line in lines), r.stderr
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # not even the flock file


def test_vm_add_ip_names_the_option(seed_copy):
    nestnet("plan", str(seed_copy))
    before = {p.name: p.read_bytes() for p in seed_copy.parent.iterdir()}
    for ip in ("::1", "10.0.1", "x"):
        r = nestnet("vm", "add", str(seed_copy), "x1", "--host", "vme-kvm-vm1", "--ip", ip)
        assert r.returncode == 2 and r.stderr == f"error: --ip: {ip!r} is not an IPv4 address\n", r.stderr
    r = nestnet("vm", "add", str(seed_copy), "a b", "--host", "vme-kvm-vm1")
    assert r.returncode == 2 and "NAME: 'a b'" in r.stderr
    assert {p.name: p.read_bytes() for p in seed_copy.parent.iterdir()} == before
