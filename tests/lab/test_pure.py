"""The lab's pure parts: names, the Azure state and what it means for the fabric, matrix parsing.

No root needed: these run everywhere.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import pytest

from nestnet.errors import UsageError
from nestnet.faults import Fault
from nestnet.clouds.azure.lab import CloudState, SdnConfig, desired, diff, with_faults
from nestnet.model.state import UserRoute
from nestnet.lab.demo import checks
from nestnet.clouds.azure.sdn import render_nft
from nestnet.lab.matrix import addresses, pairs_from, parse_alive
from nestnet.lab.topology import INTERNET, Topology, nic_mac, ns_name, port_name

from .conftest import plan_of, seed


@pytest.fixture
def plan(tmp_path):
    return plan_of(tmp_path, seed())


def test_names_are_derived_from_the_lab_name_and_fit_linux_limits(plan):
    topo = Topology.from_plan(plan)
    assert topo.sdn_ns == f"nn-{plan.name}.fabric"
    assert topo.ns("vma") == ns_name(plan.name, "vma")
    assert port_name(IPv4Address("255.255.255.255")) == "nffffffff"
    assert all(len(n.port) <= 15 for n in topo.nics)
    assert nic_mac(IPv4Address("10.0.1.10")) == "02:00:0a:00:01:0a"
    # named by address, so a VM that moves keeps its port name
    assert [(p.vm, p.host, p.port) for p in topo.vm_ports] == [("vma", "hosta", "vn0a000114"), ("vmb", "hostb", "vn0a000132")]


def test_reserved_node_names_are_refused(tmp_path):
    spec = seed()
    spec["endpoints"][0]["name"] = "internet"
    with pytest.raises(UsageError, match="'internet' is reserved"):
        Topology.from_plan(plan_of(tmp_path, spec))


def test_planned_azure_state(plan):
    state = CloudState.from_plan(plan)
    assert {r.prefix: r.next_hop_ip for r in state.user_routes} == {
        IPv4Network("10.0.1.16/28"): IPv4Address("10.0.1.10"),
        IPv4Network("10.0.1.48/28"): IPv4Address("10.0.1.11"),
    }
    assert _associated(state) == {"vm-subnet", "mgmt-subnet"}
    assert _forwarding(state) == {"hosta-nic", "hostb-nic"}


def _associated(state: CloudState) -> set[str]:
    return {k for k, s in state.subnets.items() if s.route_table}


def _forwarding(state: CloudState) -> set[str]:
    return {k for k, n in state.nics.items() if n.ip_forwarding}


def test_azure_faults_change_only_the_state_they_name(plan):
    state = with_faults(
        plan, (Fault("nic-forwarding-off", "hostb"), Fault("no-route-table", "mgmt-subnet"), Fault("no-user-route", "hosta"))
    )
    assert _forwarding(state) == {"hosta-nic"}
    assert _associated(state) == {"vm-subnet"}
    assert [r.prefix for r in state.user_routes] == [IPv4Network("10.0.1.48/28")]
    assert with_faults(plan, (Fault("ip-forward-off", "hosta"),)) == CloudState.from_plan(plan)


def test_route_table_is_system_routes_overlaid_by_user_routes(plan):
    topo = Topology.from_plan(plan)
    want = desired(topo, CloudState.from_plan(plan))
    a, b, m = (port_name(IPv4Address(ip)) for ip in ("10.0.1.10", "10.0.1.11", "10.0.2.5"))
    assert ("10.0.1.16/28", "unicast", "10.0.1.10", a) in want.table
    assert ("10.0.0.0/16", "unicast", None, "vnetsink") in want.table
    assert ("10.0.2.5/32", "unicast", None, m) in want.table
    assert ("0.0.0.0/0", "unicast", "198.51.100.254", "pinet") in want.table
    assert want.rule_ports == {a, b, m}
    assert want.ipfwd_ports == {a, b}
    # a route to a next hop no NIC owns drops, as in Azure
    lost = replace(CloudState.from_plan(plan), user_routes=(UserRoute("r", IPv4Network("10.0.1.16/28"), IPv4Address("10.0.1.99")),))
    assert ("10.0.1.16/28", "blackhole", None, None) in desired(topo, lost).table


def test_diff_is_empty_when_observed_matches_and_minimal_otherwise(plan):
    topo = Topology.from_plan(plan)
    want = desired(topo, CloudState.from_plan(plan))
    assert not diff(want, want)
    broken = desired(topo, with_faults(plan, (Fault("nic-forwarding-off", "hostb"),)))
    ch = diff(want, broken)
    assert ch.add_ipfwd == (port_name(IPv4Address("10.0.1.11")),)
    assert not (ch.add_routes or ch.del_routes or ch.add_rules or ch.del_rules or ch.del_ipfwd)
    empty = SdnConfig(frozenset(), frozenset(), frozenset())
    assert len(diff(want, empty).add_routes) == len(want.table)


def test_fabric_nft_names_every_nic_port_and_mac(plan):
    text = render_nft(Topology.from_plan(plan))
    for n in Topology.from_plan(plan).nics:
        assert f'"{n.port}" . {n.ip}' in text
        assert f'"{n.port}" . {n.mac}' in text


def test_matrix_pairs_are_every_ordered_pair_with_the_internet_as_destination_only(plan):
    addrs = addresses(plan)
    assert list(addrs) == ["hosta", "hostb", "vma", "vmb", "mgmt", INTERNET]
    alive = {src: {"10.0.1.11"} for src in addrs if src != INTERNET}
    pairs = pairs_from(addrs, alive)
    assert len(pairs) == 5 * 5
    assert all(p.src != p.dst and p.src != INTERNET for p in pairs)
    assert {(p.src, p.dst) for p in pairs if p.ok} == {(s, "hostb") for s in alive if s != "hostb"}
    assert pairs[0].to_dict() == {"src": "hosta", "dst": "hostb", "ok": True}
    assert parse_alive("10.0.1.11\n10.0.2.5\n\n") == {"10.0.1.11", "10.0.2.5"}


def test_demo_checks_follow_the_seed_verification(plan):
    cs = checks(plan)
    routes = [c for c in cs if c.command.startswith("ip route show")]
    assert [(c.node, c.expect) for c in routes] == [
        ("hosta", r"10\.0\.1\.48/28 via 10\.0\.1\.11"),
        ("hostb", r"10\.0\.1\.16/28 via 10\.0\.1\.10"),
    ]
    assert [c.command for c in cs if c.node == "vma"] == [
        "ping -c1 -W1 10.0.1.10", "ping -c1 -W1 10.0.1.11", "ping -c1 -W1 10.0.2.5",
    ]


def test_guest_modules_load_dependencies_first():
    from nestnet.lab.guestimage import module_order

    dep = ("kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko "
           "kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n"
           "kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n"
           "kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n")
    names = [m.rsplit("/", 1)[1] for m in module_order(("virtio_net", "virtio_console"), dep)]
    assert names == ["virtio_ring.ko", "virtio.ko", "failover.ko", "net_failover.ko", "virtio_net.ko", "virtio_console.ko"]


def test_lab_guest_domain_is_nestnets_own_with_tcg(tmp_path):
    import xml.etree.ElementTree as ET

    from nestnet.lab import libvirt

    plan = plan_of(tmp_path, seed())
    dom = ET.fromstring(libvirt.domain(plan, "vma"))
    assert dom.get("type") == "qemu"  # KVM makes no progress here (DESIGN 5b)
    assert dom.find("devices/interface/mac").get("address") == plan.vms["vma"].mac
    assert "nestnet.name=vma" in dom.findtext("os/cmdline")
