"""IPAM properties: blocks never overlap, are aligned, avoid reserved/host addresses, stay put."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nestnet.errors import SpecError
from nestnet.ipam import Lock, allocate, lock_path
from nestnet.store import read_lock
from nestnet.plan import load
from nestnet.spec import SpecSource, structure
from nestnet.validate import check, reserved_addresses

from .specs import fabric as big_fabric
from .specs import seed, write


def _fabric(data: dict):
    spec = structure(data, SpecSource(__file__, "")).spec  # type: ignore[arg-type]
    fab, problems = check(spec)
    assert not problems, problems
    return fab


def _spec(n_hosts: int, plen: int, pool: str, host_offsets: list[int], vms: int = 1) -> dict:
    hosts = [{"name": f"h{i}", "ip": str(IPv4Address("10.0.1.0") + off)} for i, off in enumerate(host_offsets[:n_hosts])]
    return {
        "version": 1,
        "name": "prop",
        "azure": {"resource_group": "rg", "vnet": "v", "address_space": ["10.0.0.0/16"], "route_table": "rt"},
        "subnets": [{"name": "s1", "prefix": "10.0.1.0/24"}, {"name": "s2", "prefix": "10.0.2.0/24"}],
        "nested": {"pool": pool, "block_prefix_len": plen},
        "hosts": hosts,
        "vms": [{"name": f"h{i}-v{j}", "host": f"h{i}"} for i in range(len(hosts)) for j in range(vms)],
    }


def _invariants(fab, alloc):
    blocks = list(alloc.blocks.values())
    taken = {h.ip for h in fab.hosts.values()} | fab.reserved()
    for i, a in enumerate(blocks):
        assert a.subnet_of(fab.pool)
        assert a.prefixlen == fab.spec.nested.block_prefix_len
        assert int(a.network_address) % a.num_addresses == 0  # aligned
        assert not any(ip in a for ip in taken), (a, taken)
        for b in blocks[i + 1 :]:
            assert not a.overlaps(b)
    vm_ips = list(alloc.vm_ips.values())
    assert len(set(vm_ips)) == len(vm_ips)
    for v, ip in alloc.vm_ips.items():
        host = fab.vms[v].host
        assert ip in alloc.blocks[host]
        assert ip not in taken


offsets = st.lists(st.integers(min_value=4, max_value=254), min_size=1, max_size=8, unique=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    offs=offsets,
    plen=st.sampled_from([26, 27, 28, 29, 30]),
    pool=st.sampled_from(["10.0.1.0/24", "10.0.0.0/16", "10.0.1.128/25", "10.0.50.0/24"]),
    vms=st.integers(0, 2),
)
def test_blocks_are_disjoint_aligned_and_free(offs, plen, pool, vms):
    fab = _fabric(_spec(len(offs), plen, pool, offs, vms))
    try:
        alloc = allocate(fab, Lock())
    except SpecError as exc:
        # Only a genuinely full pool or block may fail.
        assert all("no free" in p.message for p in exc.problems), exc.problems
        return
    _invariants(fab, alloc)


@settings(max_examples=100, deadline=None)
@given(offs=offsets, drop=st.integers(0, 7), plen=st.sampled_from([28, 29]))
def test_removing_a_host_moves_no_other(offs, drop, plen):
    data = _spec(len(offs), plen, "10.0.0.0/16", offs, vms=2)
    fab = _fabric(data)
    first = allocate(fab, Lock())
    if len(offs) < 2:
        return
    gone = f"h{drop % len(offs)}"
    data2 = dict(data)
    data2["hosts"] = [h for h in data["hosts"] if h["name"] != gone]
    data2["vms"] = [v for v in data["vms"] if v["host"] != gone]
    second = allocate(_fabric(data2), first.lock())
    for h, b in second.blocks.items():
        assert b == first.blocks[h]
    for v, ip in second.vm_ips.items():
        assert ip == first.vm_ips[v]
    assert second.new == ()


@settings(max_examples=100, deadline=None)
@given(offs=offsets, plen=st.sampled_from([28, 29]))
def test_adding_hosts_and_vms_moves_nothing(offs, plen):
    data = _spec(len(offs), plen, "10.0.0.0/16", offs, vms=1)
    fab = _fabric(data)
    first = allocate(fab, Lock())
    data2 = dict(data)
    data2["hosts"] = [{"name": "new0", "ip": "10.0.2.77"}, *data["hosts"]]  # prepended on purpose
    data2["vms"] = [{"name": "newvm", "host": data["hosts"][0]["name"]}, *data["vms"]]
    second = allocate(_fabric(data2), first.lock())
    for h, b in first.blocks.items():
        assert second.blocks[h] == b
    for v, ip in first.vm_ips.items():
        assert second.vm_ips[v] == ip
    assert set(second.new) == {"block new0", "vm newvm"}
    _invariants(_fabric(data2), second)


def test_first_fit_skips_reserved_and_hosts(tmp_path):
    d = seed()
    for h in d["hosts"]:
        del h["block"]
    del d["vms"][0]["ip"], d["vms"][1]["ip"]
    plan = load(write(tmp_path, d)).plan
    # 10.0.1.0/28 holds Azure's reserved .0-.3 and the hosts .10/.11: first fit is .16/28, then .32/28
    assert [str(h.block) for h in plan.hosts.values()] == ["10.0.1.16/28", "10.0.1.32/28"]
    assert [str(v.ip) for v in plan.vms.values()] == ["10.0.1.16", "10.0.1.32"]


def test_lock_file_written_stable_and_honoured(tmp_path):
    d = seed()
    for h in d["hosts"]:
        del h["block"]
    for v in d["vms"]:
        del v["ip"]
    spec = write(tmp_path, d)
    load(spec)
    lock = lock_path(spec)
    text = lock.read_text()
    assert "vme-kvm-vm1: 10.0.1.16/28" in text and "vme-kvm-vm2: 10.0.1.32/28" in text
    # A hand-moved lock entry is honoured (nothing moves behind the user's back).
    lock.write_text(text.replace("10.0.1.32/28", "10.0.1.64/28"))
    plan = load(spec).plan
    assert str(plan.hosts["vme-kvm-vm2"].block) == "10.0.1.64/28"
    assert load(spec).lock_changed is False
    assert read_lock(lock).blocks["vme-kvm-vm2"] == IPv4Network("10.0.1.64/28")


def test_frozen_refuses_new_allocation(tmp_path):
    d = seed()
    spec = write(tmp_path, d)
    load(spec)
    d["vms"].append({"name": "db1", "host": "vme-kvm-vm1"})
    write(tmp_path, d)
    with pytest.raises(SpecError, match="--frozen: the lock lacks vm db1"):
        load(spec, frozen=True)
    assert "db1" not in lock_path(spec).read_text()


def test_locked_block_now_invalid_is_reported(tmp_path):
    d = seed()
    del d["hosts"][1]["block"]
    del d["vms"][1]["ip"]
    spec = write(tmp_path, d)
    load(spec)
    d["nested"]["block_prefix_len"] = 27
    d["hosts"][0]["block"] = "10.0.1.64/27"
    d["vms"][0]["ip"] = "10.0.1.70"
    write(tmp_path, d)
    with pytest.raises(SpecError) as exc:
        load(spec)
    msg = str(exc.value)
    assert "spec.lock" in msg and "blocks.vme-kvm-vm2" in msg and "delete this entry" in msg


def test_reserved_addresses():
    assert [str(a) for a in reserved_addresses(IPv4Network("10.0.1.0/24"))] == [
        "10.0.1.0", "10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.255",
    ]


def test_big_fabric_allocates(tmp_path):
    plan = load(write(tmp_path, big_fabric(300, 4))).plan
    assert len({h.block for h in plan.hosts.values()}) == 300
    assert len(plan.vms) == 1200


@pytest.mark.parametrize("address,expected", [
    ("10.0.1.50", "is in the block 10.0.1.48/28 of host 'vme-kvm-vm2', not of its host 'vme-kvm-vm1'"),
    ("10.0.1.17", "is pinned by VM 'db1' in the spec"),
])
def test_locked_vm_entries_are_checked_like_blocks(tmp_path, address, expected):
    d = seed()
    del d["vms"][0]["ip"]
    d["vms"].append({"name": "db1", "host": "vme-kvm-vm1", "ip": "10.0.1.17"})
    spec = write(tmp_path, d)
    load(spec)
    lock = lock_path(spec)
    text = lock.read_text()
    lock.write_text(text.replace("web1: 10.0.1.16", f"web1: {address}"))
    with pytest.raises(SpecError) as exc:
        load(spec)
    (p,) = exc.value.problems
    assert p.file == str(lock) and p.path == "vms.web1" and expected in p.message and "delete this entry" in p.message
    assert lock.read_text() != text  # the hand edit is left for the user to fix, not overwritten


def test_two_lock_entries_on_one_address_are_called_lock_entries(tmp_path):
    """After a merge two lock entries can hold one address: the error says so, not "pinned by
    another VM in the spec" (no VM in the spec pins it)."""
    d = seed()
    del d["vms"][0]["ip"]
    d["vms"].append({"name": "db1", "host": "vme-kvm-vm1"})
    spec = write(tmp_path, d)
    load(spec)
    lock = lock_path(spec)
    text = lock.read_text()
    assert "web1: 10.0.1.16" in text and "db1: 10.0.1.17" in text
    lock.write_text(text.replace("db1: 10.0.1.17", "db1: 10.0.1.16"))
    with pytest.raises(SpecError) as exc:
        load(spec)
    (p,) = exc.value.problems
    assert p.file == str(lock) and p.path in ("vms.web1", "vms.db1")
    assert "is also the lock entry of VM" in p.message and "two lock entries hold it" in p.message
    assert "in the spec" not in p.message


def test_locked_vm_outside_every_block_follows_its_host(tmp_path):
    d = seed()
    del d["vms"][0]["ip"]
    spec = write(tmp_path, d)
    load(spec)
    d["hosts"][0]["block"] = "10.0.1.96/28"  # the user moved the block on purpose
    write(tmp_path, d)
    assert str(load(spec).plan.vms["web1"].ip) == "10.0.1.96"
