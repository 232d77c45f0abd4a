"""One test (or two) per forwarding rule of the model: Azure, Linux hosts, guests, internet."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

from nestnet.faults import parse_faults
from nestnet.model import Model, State, apply_faults, from_plan
from nestnet.model.classes import reachability
from nestnet.model.state import UserRoute

from .conftest import base


def state_of(make_plan, spec: dict, *faults: str) -> State:
    plan = make_plan(spec)
    return apply_faults(from_plan(plan), parse_faults(faults, plan))


def failed(state: State) -> set[tuple[str, str]]:
    return {(p.src, p.dst) for p in reachability(state).pairs()}


def ping(state: State, a: str, b: str):
    return Model(state).ping(a, b)


# ---------------------------------------------------------------- the healthy fabric


def test_seed_example_is_all_green(make_plan):
    res = reachability(state_of(make_plan, base()))
    # 4 nodes with a NIC or VM address ... 6 nodes, each to 5 others and the internet
    assert res.summary == {"pairs": 36, "ok": 36, "failed": 0}


def test_subnet_style_is_all_green(make_plan):
    assert reachability(state_of(make_plan, base(guest_style="subnet"))).all_ok


def test_secondary_ip_mode_is_all_green_without_ip_forwarding(make_plan):
    spec = base(mode="secondary-ip", pool="10.0.1.0/24")
    s = state_of(make_plan, spec)
    assert not any(n.ip_forwarding for n in s.azure.nics.values())
    assert reachability(s).all_ok


# ---------------------------------------------------------------- Azure


def test_route_table_of_the_source_subnet_decides(make_plan):
    s = state_of(make_plan, base(), "no-route-table:mgmt-subnet")
    assert failed(s) == {("mgmt", "v1"), ("mgmt", "v1b"), ("mgmt", "v2"), ("v1", "mgmt"), ("v1b", "mgmt"),
                         ("v2", "mgmt")}
    r = ping(s, "mgmt", "v1")
    assert r.dies_at == "azure:mgmt-subnet"
    assert "mgmt-subnet is not associated with route table rt" in r.reason
    assert ping(s, "v1", "mgmt").reason.startswith("reply mgmt → v1:")


def test_longest_prefix_then_user_beats_system_on_ties(make_plan):
    s = state_of(make_plan, base())
    wide = UserRoute("wide", IPv4Network("10.0.0.0/8"), IPv4Address("10.0.1.11"))
    tie = UserRoute("tie", IPv4Network("10.0.0.0/16"), IPv4Address("10.0.1.11"))
    m = Model(replace(s, cloud=replace(s.azure, user_routes=(wide,))))
    assert m._azure_route("vm-subnet", IPv4Address("10.0.2.5"))[0] == "vnet"  # /16 system beats /8 user
    m = Model(replace(s, cloud=replace(s.azure, user_routes=(tie,))))
    assert m._azure_route("vm-subnet", IPv4Address("10.0.2.5"))[2] == tie
    m = Model(replace(m.state, cloud=replace(m.state.azure, subnets={
        **s.azure.subnets, "mgmt-subnet": replace(s.azure.subnets["mgmt-subnet"], route_table=False)})))
    assert m._azure_route("mgmt-subnet", IPv4Address("10.0.2.5"))[0] == "vnet"  # unassociated subnet
    assert m._azure_route("vm-subnet", IPv4Address("8.8.8.8"))[0] == "internet"


def test_missing_user_route_means_no_nic_owns_the_address(make_plan):
    s = state_of(make_plan, base(), "no-user-route:h2")
    r = ping(s, "v1", "v2")
    assert not r.ok and r.dies_at == "azure:vm-subnet"
    assert "no user route for h2's block 10.0.1.48/28" in r.reason
    assert ping(s, "h1", "h2").ok and ping(s, "v2", "h2").ok and ping(s, "v2", "internet").ok


def test_user_route_to_an_address_no_nic_owns_drops(make_plan):
    s = state_of(make_plan, base())
    bad = UserRoute("stray", IPv4Network("10.0.1.48/28"), IPv4Address("10.0.1.99"))
    routes = tuple(r for r in s.azure.user_routes if r.prefix != bad.prefix) + (bad,)
    r = ping(replace(s, cloud=replace(s.azure, user_routes=routes)), "v1", "v2")
    assert not r.ok and "points to 10.0.1.99, which no NIC owns" in r.reason


def test_ip_forwarding_lifts_the_source_and_destination_checks(make_plan):
    s = state_of(make_plan, base(), "nic-forwarding-off:h2")
    send = ping(s, "v2", "h1")  # leaves h2's NIC with a VM source: source check
    recv = ping(s, "v1", "v2")  # arrives at h2's NIC for a VM address: destination check
    for r in (send, recv):
        assert not r.ok and r.dies_at == "azure:h2-nic"
        assert "IP forwarding is off and 10.0.1.50 is not one of its addresses" in r.reason
        assert "az network nic update -g rg -n h2-nic --ip-forwarding true" in r.reason
    assert ping(s, "h1", "h2").ok and ping(s, "v1", "h2").ok  # the NIC's own address passes
    assert ping(s, "v2", "internet").ok  # masqueraded to the NIC's address first


def test_bridge_holding_the_uplink(make_plan):
    spec = base()
    spec["hosts"][0]["bridge_has_uplink"] = True
    s = state_of(make_plan, spec)
    assert reachability(s).all_ok  # onlink guests ARP only for the host's own address
    spec = base(guest_style="subnet")
    spec["hosts"][0]["bridge_has_uplink"] = True
    s = state_of(make_plan, spec)
    # guarded, the host must answer ARP by proxy for addresses routed back out the same bridge
    # (checked on the kernel: without proxy_arp_pvlan the guest's ARP stays INCOMPLETE); the
    # Plan sets it for this shape
    assert s.hosts["h1"].proxy_arp_pvlan and reachability(s).all_ok
    no_pvlan = replace(s, hosts={**s.hosts, "h1": replace(s.hosts["h1"], proxy_arp_pvlan=False)})
    r = ping(no_pvlan, "v1", "h2")
    assert not r.ok and r.dies_at == "h1:nestbr0" and "proxy_arp_pvlan is off" in r.reason
    # without guards the guest's ARP leaks to Azure, which answers; its frames carry the VM's MAC
    open_l2 = replace(s, hosts={**s.hosts, "h1": replace(s.hosts["h1"], l2_guards=False)})
    r = ping(open_l2, "v1", "h2")
    assert not r.ok and r.dies_at == "azure:h1-nic" and "source MAC" in r.reason


def test_reserved_addresses_are_never_delivered(make_plan):
    s = state_of(make_plan, base())
    g = replace(s.guests["v2"], ip=IPv4Address("10.0.1.255"))
    r = ping(replace(s, guests={**s.guests, "v2": g}), "v1", "v2")
    assert not r.ok and r.dies_at == "azure:vm-subnet" and "reserved in subnet vm-subnet" in r.reason


def test_internet_egress_is_translated_only_for_nic_addresses(make_plan):
    s = state_of(make_plan, base(), "no-masquerade:h1")
    r = ping(s, "v1", "internet")
    assert not r.ok and r.dies_at == "azure:internet"
    assert "translates only NIC addresses" in r.reason and "h1 forwarded it without masquerading" in r.reason
    assert ping(s, "h1", "internet").ok and ping(s, "mgmt", "internet").ok and ping(s, "v2", "internet").ok
    assert "masquerades 10.0.1.50 as 10.0.1.11" in "\n".join(ping(s, "v2", "internet").hops)


def test_pairs_from_the_internet_are_not_checked(make_plan):
    res = reachability(state_of(make_plan, base()))
    assert all(p.src != "internet" for p in res.pairs(include_ok=True))


# ---------------------------------------------------------------- Linux hosts


def test_connected_route_reaches_a_same_subnet_host(make_plan):
    r = ping(state_of(make_plan, base()), "h1", "h2")
    assert r.ok and any("via 10.0.1.11 dev eth1" in h for h in r.hops)


def test_ip_forward_off_stops_routed_traffic_only(make_plan):
    s = state_of(make_plan, base(), "ip-forward-off:h1")
    assert failed(s) == {
        (a, b)
        for a in ("v1", "v1b")
        for b in ("h2", "v2", "mgmt", "internet", "v1b", "v1")
        if a != b
    } | {(x, v) for x in ("h2", "v2", "mgmt") for v in ("v1", "v1b")}
    r = ping(s, "v2", "v1")
    assert r.dies_at == "h1" and "net.ipv4.ip_forward=0" in r.reason


def test_ip_forward_off_also_silences_proxy_arp(make_plan):
    s = state_of(make_plan, base(guest_style="subnet"), "ip-forward-off:h1")
    r = ping(s, "v1", "h2")
    assert r.dies_at == "h1:nestbr0" and "proxy ARP answers only when forwarding" in r.reason
    assert ping(s, "v1", "v1b").ok  # same bridge, same subnet: plain L2


def test_no_host_routes_loops_through_azure(make_plan):
    s = state_of(make_plan, base(), "no-host-routes:h1")
    r = ping(s, "h2", "v1")
    assert not r.ok and "routing loop" in r.reason
    assert "route `10.0.1.16/28 dev nestbr0` is missing" in r.reason
    assert ping(s, "h1", "h2").ok


def test_strict_rp_filter_drops_what_comes_in_the_wrong_way(make_plan):
    assert reachability(state_of(make_plan, base(), "rp-filter-strict:h1")).all_ok  # symmetric routes pass
    s = state_of(make_plan, base(), "rp-filter-strict:h1", "no-host-routes:h1")
    r = ping(s, "v1", "h2")
    assert not r.ok and "rp_filter=1 (strict)" in r.reason and "leaves by eth1, not nestbr0" in r.reason


def test_firewall_deny_routed_names_the_foreign_chain(make_plan):
    s = state_of(make_plan, base(), "firewall-deny-routed:h2")
    r = ping(s, "v1", "v2")
    assert r.dies_at == "h2" and "policy drop in a forward chain that is not nestnet's" in r.reason
    assert ping(s, "v1", "h2").ok  # to the host itself: not forwarded


def test_nestnet_firewall_keeps_the_block_inside_without_egress(make_plan):
    s = state_of(make_plan, base(egress="none"))
    r = ping(s, "v1", "internet")
    assert r.dies_at == "h1" and "its block may go only to the VNet and nested blocks" in r.reason
    assert failed(s) == {(v, "internet") for v in ("v1", "v1b", "v2")}


def test_proxy_arp_is_what_subnet_style_guests_need(make_plan):
    s = state_of(make_plan, base(guest_style="subnet"), "no-proxy-arp:h1")
    r = ping(s, "v1", "v2")
    assert r.dies_at == "h1:nestbr0" and "proxy ARP is off on h1's nestbr0" in r.reason
    assert ping(s, "v1", "mgmt").ok  # another subnet: through the gateway, no proxy ARP needed
    assert ping(s, "v1", "h1").ok and ping(s, "v1", "v1b").ok
    assert ping(s, "h2", "v1").reason.startswith("reply v1 → h2:")  # the reply ARPs too
    onlink = state_of(make_plan, base(), "no-proxy-arp:h1")
    assert reachability(onlink).all_ok


def test_host_answers_arp_for_its_own_vm_when_the_block_route_is_gone(make_plan):
    # h1 (by proxy, its block route gone) and v1b both answer v1's ARP for v1b: whichever answer
    # v1 gets first decides (issue 23 item 12), so the model says "intermittent", not "fails".
    s = state_of(make_plan, base(guest_style="subnet"), "no-host-routes:h1")
    r = ping(s, "v1", "v1b")
    assert not r.ok and "answers ARP for its own VM v1b" in r.reason
    assert r.intermittent.startswith("ARP race: h1 (by proxy) and v1b both answer v1's ARP for 10.0.1.131")
    assert "intermittent (ARP race" in r.reason and r.to_dict()["intermittent"] == r.intermittent
    racy = {(p.src, p.dst) for p in reachability(s).pairs() if p.intermittent}
    assert racy == {("v1", "v1b"), ("v1b", "v1")}
    # every other failing pair fails whoever answers first: certain, and said so
    assert all(not p.intermittent for p in reachability(s).pairs() if (p.src, p.dst) not in racy)
    # healthy, the host's route uses the bridge, so proxy ARP stays silent: no race at all
    assert not ping(state_of(make_plan, base(guest_style="subnet")), "v1", "v1b").intermittent
    assert "intermittent" not in ping(s, "v1", "h2").to_dict()


# ---------------------------------------------------------------- guests


def test_onlink_guests_go_through_the_host_subnet_guests_bridge(make_plan):
    onlink = ping(state_of(make_plan, base()), "v1", "v1b")
    subnet = ping(state_of(make_plan, base(guest_style="subnet")), "v1", "v1b")
    assert onlink.ok and any("h1: forwards" in h for h in onlink.hops)
    assert subnet.ok and not any("forwards" in h for h in subnet.hops)


def test_guest_without_an_onlink_gateway_has_no_route(make_plan):
    s = state_of(make_plan, base())
    g = replace(s.guests["v1"], onlink=False)
    r = ping(replace(s, guests={**s.guests, "v1": g}), "v1", "v2")
    assert not r.ok and r.dies_at == "v1" and "is not on-link" in r.reason
