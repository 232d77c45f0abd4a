"""One test per validation rule: the spec is rejected with a line naming the key path and value."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from nestnet.errors import SpecError
from nestnet.plan import load

from .specs import seed, write


def _set(path: str, value):
    def mutate(d):
        keys = path.replace("]", "").replace("[", ".").split(".")
        cur = d
        for k in keys[:-1]:
            cur = cur[int(k)] if k.isdigit() else cur[k]
        last = keys[-1]
        if value is _DELETE:
            del cur[int(last) if last.isdigit() else last]
        elif last.isdigit():
            cur[int(last)] = value
        else:
            cur[last] = value
        return d

    return mutate


_DELETE = object()

CASES = [
    # (id, mutation, path, expected substring)
    ("cidr-syntax", _set("subnets.0.prefix", "10.0.1.0/33"), "subnets[0].prefix", "not a valid IPv4 CIDR"),
    ("cidr-no-len", _set("azure.address_space.0", "10.0.0.0"), "azure.address_space[0]", "not a CIDR prefix"),
    ("block-misaligned", _set("hosts.0.block", "10.0.1.20/28"), "hosts[0].block", "did you mean 10.0.1.16/28?"),
    ("subnet-outside-vnet", _set("subnets.1.prefix", "10.1.2.0/24"), "subnets[1].prefix", "outside the VNet"),
    ("subnet-overlap", _set("subnets.1.prefix", "10.0.1.0/25"), "subnets[1].prefix", "overlaps subnet 'vm-subnet'"),
    ("subnet-too-small", _set("subnets.1.prefix", "10.0.2.0/30"), "subnets[1].prefix", "smallest IPv4 subnet is /29"),
    # its "first four addresses" run past 255.255.255.255: exit 70 (AddressValueError), found by test_fuzz_cli
    ("subnet-too-small-at-the-top", _set("subnets.1.prefix", "255.255.255.253/32"), "subnets[1].prefix",
     "smallest IPv4 subnet is /29"),
    ("host-ip-not-in-subnet", _set("hosts.0.subnet", "mgmt-subnet"), "hosts[0].ip", "not inside its subnet"),
    ("host-ip-in-no-subnet", _set("hosts.0.ip", "10.0.9.10"), "hosts[0].ip", "in no subnet"),
    ("host-ip-reserved-first", _set("hosts.0.ip", "10.0.1.3"), "hosts[0].ip", "reserved by Azure"),
    ("host-ip-reserved-last", _set("hosts.0.ip", "10.0.1.255"), "hosts[0].ip", "reserved by Azure"),
    ("host-ip-not-ipv4", _set("hosts.0.ip", "10.0.1"), "hosts[0].ip", "not an IPv4 address"),
    ("host-ip-with-prefix", _set("hosts.0.ip", "10.0.1.10/24"), "hosts[0].ip", "without a prefix length"),
    ("host-dup-name", _set("hosts.1.name", "vme-kvm-vm1"), "hosts[1].name", "already used by hosts[0].name"),
    ("host-dup-ip", _set("hosts.1.ip", "10.0.1.10"), "hosts[1].ip", "already used by hosts[0].ip"),
    ("host-dup-nic", _set("hosts.1.nic", "vme-kvm-vm1-vm-nic"), "hosts[1].nic", "already the NIC"),
    ("host-unknown-subnet", _set("hosts.0.subnet", "nope"), "hosts[0].subnet", "not a subnet"),
    ("name-clash-vm-host", _set("vms.0.name", "vme-kvm-vm2"), "vms[0].name", "already used by hosts[1].name"),
    ("blocks-overlap", _set("hosts.1.block", "10.0.1.16/28"), "hosts[1].block", "overlaps the block of host 'vme-kvm-vm1'"),
    ("block-has-host-ip", _set("hosts.0.block", "10.0.1.0/28"), "hosts[0].block", "contains 10.0.1.0 (reserved by Azure"),
    ("block-outside-pool", _set("hosts.0.block", "10.0.3.0/28"), "hosts[0].block", "outside the pool"),
    ("pool-exhausted", lambda d: _set("nested.pool", "10.0.1.224/27")(_set("hosts.0.block", _DELETE)(_set("hosts.1.block", _DELETE)(d))), "hosts[1]", "has no free /28"),
    ("block-len-vs-pool", _set("nested.block_prefix_len", 22), "nested.block_prefix_len", "larger than the pool"),
    ("max-routes", _set("azure.max_routes", 1), "hosts", "more than azure.max_routes=1"),
    ("vm-ip-outside-pool", _set("vms.0.ip", "10.0.3.40"), "vms[0].ip", "outside the nested pool 10.0.1.0/24"),
    ("vm-ip-dup", _set("vms.1.ip", "10.0.1.20"), "vms[1].ip", "already used by vms[0].ip"),
    ("vm-ip-is-host", _set("vms.0.ip", "10.0.1.10"), "vms[0].ip", "already used by hosts[0].ip"),
    ("vm-unknown-host", _set("vms.0.host", "nope"), "vms[0].host", "'nope' is not a host"),
    ("vm-bad-mac", _set("vms.0.mac", "zz:00:00:00:00:01"), "vms[0].mac", "not a MAC address"),
    ("vm-multicast-mac", _set("vms.0.mac", "01:00:5e:00:00:01"), "vms[0].mac", "multicast"),
    ("endpoint-unknown-subnet", _set("endpoints.0.subnet", "nope"), "endpoints[0].subnet", "not a subnet"),
    ("unknown-key-typo", _set("hosts.0.blok", "10.0.1.16/28"), "hosts[0].blok", "unknown key 'blok'; did you mean 'block'?"),
    ("unknown-top-key", _set("vm", []), "vm", "unknown key 'vm'; did you mean 'vms'?"),
    ("missing-required", _set("azure.vnet", _DELETE), "azure.vnet", "required key 'vnet' is missing"),
    ("missing-route-table", _set("azure.route_table", _DELETE), "azure.route_table", "needed in routed mode"),
    ("bad-mode", _set("nested.mode", "bgp"), "nested.mode", "'bgp'"),
    ("unsafe-host-name", _set("hosts.0.name", "vm1;rm -rf /"), "hosts[0].name", "not a valid host name"),
    ("unsafe-azure-name", _set("azure.route_table", "rt $(reboot)"), "azure.route_table", "not a valid Azure name"),
    ("fabric-name", _set("name", "HPE_VME"), "name", "not a valid fabric name"),
    ("fabric-name-long", _set("name", "a" * 25), "name", "not a valid fabric name"),
    ("uplink-too-long", _set("hosts.0.uplink", "averyverylonginterface"), "hosts[0].uplink", "not a valid Linux interface name"),
    ("bridge-is-uplink", _set("hosts.0.bridge", "eth1"), "hosts[0].bridge", "also the uplink"),
    ("subscription-not-guid", _set("azure.subscription_id", "my-sub"), "azure.subscription_id", "not a subscription GUID"),
    ("host-defaults-name", _set("host_defaults.name", "x"), "host_defaults.name", "cannot be defaulted"),
    ("version-unsupported", _set("version", 2), "version", "unsupported spec version"),
    ("version-missing", _set("version", _DELETE), "version", "'version' is missing"),
    ("wrong-type", _set("hosts", "vme-kvm-vm1"), "hosts", "valid list"),
    ("subnet-style-block-outside", lambda d: _set("nested.guest_style", "subnet")(_set("nested.pool", "10.0.0.0/16")(_set("hosts.0.block", "10.0.3.16/28")(d))), "hosts[0].block", "guest_style 'subnet'"),
    ("secondary-ip-outside-subnet", lambda d: _set("nested.mode", "secondary-ip")(_set("nested.pool", "10.0.0.0/16")(_set("hosts.0.block", "10.0.3.16/28")(d))), "hosts[0].block", "secondary IP configurations"),
    ("pool-everything", _set("nested.pool", "0.0.0.0/0"), "nested.pool", "0.0.0.0/0 overlaps 224.0.0.0/4"),
    ("pool-outside-vnet", _set("nested.pool", "192.168.0.0/24"), "nested.pool", "outside the VNet address space"),
    ("nat-pool-everything", lambda d: _set("nested.mode", "nat")(_set("nested.pool", "0.0.0.0/0")(d)), "nested.pool", "0.0.0.0/0 overlaps 224.0.0.0/4"),
    ("space-everything", _set("azure.address_space.0", "0.0.0.0/0"), "azure.address_space[0]", "Azure does not allow"),
    ("space-loopback", _set("azure.address_space", ["10.0.0.0/16", "127.0.0.0/8"]), "azure.address_space[1]", "overlaps 127.0.0.0/8"),
    ("bridge-all", _set("hosts.0.bridge", "all"), "hosts[0].bridge", "'all' is a name Linux reserves"),
    ("bridge-default", _set("hosts.1.bridge", "default"), "hosts[1].bridge", "'default' is a name Linux reserves"),
    ("uplink-lo", _set("host_defaults.uplink", "lo"), "hosts[0].uplink", "'lo' is a name Linux reserves"),
    ("bridge-dotdot", _set("hosts.0.bridge", ".."), "hosts[0].bridge", "not a valid Linux interface name"),
    ("location-display-name", _set("azure.location", "East US"), "azure.location", "not an Azure region name"),
    ("location-control-char", _set("azure.location", "east\x00us"), "azure.location", "'east\\x00us'"),
    ("nic-prefix-not-28", lambda d: _set("nested.mode", "nic-prefix")(_set("nested.block_prefix_len", 27)(d)), "nested.block_prefix_len", "only /28"),
    ("nic-prefix-outside-subnet", lambda d: _set("nested.mode", "nic-prefix")(_set("nested.pool", "10.0.0.0/16")(_set("hosts.0.block", "10.0.3.16/28")(d))), "hosts[0].block", "prefix ip configuration"),
    ("secondary-ip-too-many", lambda d: _set("nested.mode", "secondary-ip")(_set("azure.max_ip_configs", 1)(d)), "vms", "max_ip_configs=1"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_rule(tmp_path, case):
    _id, mutate, path, expected = case
    spec = write(tmp_path, mutate(seed()))
    with pytest.raises(SpecError) as exc:
        load(spec, write=False)
    lines = [str(p) for p in exc.value.problems]
    match = [p for p in exc.value.problems if p.path == path and expected in p.message]
    assert match, f"expected {path}: ...{expected}... in\n" + "\n".join(lines)
    assert all(p.file == str(spec) for p in exc.value.problems)
    assert not (tmp_path / "spec.lock").exists()


def test_seed_is_valid(tmp_path):
    plan = load(write(tmp_path, seed()), write=False).plan
    assert len(plan.hosts) == 2


def test_all_problems_at_once_with_lines(tmp_path):
    d = seed()
    d["hosts"][0]["block"] = "10.0.1.20/28"
    d["hosts"][1]["ip"] = "10.0.1.3"
    d["vms"][0]["host"] = "nope"
    spec = write(tmp_path, d)
    with pytest.raises(SpecError) as exc:
        load(spec)
    problems = exc.value.problems
    assert {p.path for p in problems} >= {"hosts[0].block", "hosts[1].ip", "vms[0].host"}
    text = spec.read_text().splitlines()
    for p in problems:
        assert p.line is not None
        key = p.path.rsplit(".", 1)[-1]
        assert key in text[p.line - 1], (p, text[p.line - 1])


def test_yaml_syntax_error_has_line(tmp_path):
    spec = write(tmp_path, "version: 1\nname: x\nhosts:\n  - {name: a, ip: 10.0.1.4\n  - b\n")
    with pytest.raises(SpecError) as exc:
        load(spec)
    (p,) = exc.value.problems
    assert "YAML syntax error" in p.message and p.line is not None and p.line >= 4


def test_duplicate_yaml_key(tmp_path):
    spec = write(tmp_path, "version: 1\nname: a\nname: b\n")
    with pytest.raises(SpecError) as exc:
        load(spec)
    assert "duplicate key 'name'" in str(exc.value) and exc.value.problems[0].line == 3


def test_alias_bomb_rejected_fast(tmp_path):
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 9)}]")
    spec = write(tmp_path, "version: 1\n" + "\n".join(lines) + "\n")
    t = time.perf_counter()
    with pytest.raises(SpecError) as exc:
        load(spec)
    assert "aliases" in str(exc.value)
    assert time.perf_counter() - t < 5  # a generous bound: expanding it would take forever


def test_not_a_mapping(tmp_path):
    with pytest.raises(SpecError, match="must be a YAML mapping"):
        load(write(tmp_path, "- a\n- b\n"))


@pytest.mark.parametrize("section", ["azure", "aws"])
def test_a_null_cloud_section_is_named_as_that_clouds(tmp_path, section):
    """``aws:`` with nothing under it is AWS's section left empty, not a spec missing Azure's."""
    spec = seed()
    del spec["azure"]
    spec[section] = None
    with pytest.raises(SpecError, match=rf"{section}: None: input should be a valid dictionary"):
        load(write(tmp_path, spec))
    del spec[section]
    with pytest.raises(SpecError, match="required key 'azure' is missing"):  # no section: the default cloud's
        load(write(tmp_path, spec))


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load(tmp_path / "nope.yaml")


def test_cli_bad_spec_exit_2_no_traceback(tmp_path):
    d = seed()
    d["hosts"][0]["block"] = "10.0.1.20/28"
    d["hosts"][1]["blok"] = "x"
    spec = write(tmp_path, d)
    for cmd in (["validate"], ["plan"], ["plan", "--json"], ["vm", "list"]):
        r = subprocess.run(
            [sys.executable, "-m", "nestnet", *cmd, str(spec)], capture_output=True, text=True
        )
        assert r.returncode == 2, (cmd, r.stderr)
        assert "Traceback" not in r.stderr
        errors = [l for l in r.stderr.splitlines() if l.startswith("error:")]
        assert len(errors) == 2, r.stderr
        assert f"{spec}:" in errors[0] and "did you mean 10.0.1.16/28?" in r.stderr
    assert not (tmp_path / "spec.lock").exists()


CASE_CLASHES = [
    # (mutation, path of the second entry, its value, the first entry's path) - issue 20
    (lambda d: (_set("hosts.1.name", "VME-KVM-VM1")(d), _set("vms.1.host", "VME-KVM-VM1")(d))[0],
     "hosts[1].name", "VME-KVM-VM1", "hosts[0].name"),
    (lambda d: (_set("vms.1.name", "WEB1")(d), _set("azure.private_dns_zone", "nested.example.net")(d))[0],
     "vms[1].name", "WEB1", "vms[0].name"),
    (_set("endpoints", [{"name": "mgmt-vm", "ip": "10.0.2.5"}, {"name": "MGMT-VM", "ip": "10.0.2.6"}]),
     "endpoints[1].name", "MGMT-VM", "endpoints[0].name"),
    (_set("vms.0.name", "VME-KVM-VM2"), "vms[0].name", "VME-KVM-VM2", "hosts[1].name"),
    (_set("hosts.1.nic", "VME-KVM-VM1-vm-nic"), "hosts[1].nic", "VME-KVM-VM1-vm-nic", "hosts[0].nic"),
    # a NIC derived from a host name (<host>-nic) against one given by name
    (lambda d: (_set("hosts.0.nic", "Kvm-B-nic")(d), _set("hosts.1.name", "kvm-b")(d), _set("hosts.1.nic", _DELETE)(d),
                _set("vms.1.host", "kvm-b")(d))[0], "hosts[1].name", "kvm-b-nic", "hosts[0].nic"),
    (_set("subnets.1.name", "VM-SUBNET"), "subnets[1].name", "VM-SUBNET", "subnets[0].name"),
]


@pytest.mark.parametrize("case", CASE_CLASHES, ids=["hosts", "vms-dns", "endpoints", "vm-vs-host", "nic", "derived-nic", "subnets"])
def test_names_that_differ_only_by_case_are_refused_naming_both(tmp_path, case):
    """Azure resource names and DNS names ignore case: two such names would be one route, NIC,
    ip configuration or record, and one host's or VM's would be lost with exit 0 (issue 20)."""
    mutate, path, value, first = case
    spec = write(tmp_path, mutate(seed()))
    r = subprocess.run([sys.executable, "-m", "nestnet", "validate", str(spec)], capture_output=True, text=True)
    assert r.returncode == 2, r.stdout + r.stderr
    text = spec.read_text().splitlines()
    lines = [ln for ln in r.stderr.splitlines() if path.split("[")[0] in ln and f"{value!r}" in ln]
    assert lines, r.stderr
    line = lines[0]
    # file and line of this entry, its key path and value; the other entry's key path and line
    assert line.startswith(f"error: {spec}:")
    own = int(line.split(":")[2])
    assert value.split("-nic")[0] in text[own - 1] or value in text[own - 1], (line, text[own - 1])
    other = int(line.split(f"{first}, line ")[1].split(")")[0].split(";")[0].split(",")[0])
    assert first.rsplit(".", 1)[-1] in text[other - 1], (line, text[other - 1])
    assert "Traceback" not in r.stderr and not (tmp_path / "spec.lock").exists()
