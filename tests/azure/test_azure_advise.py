"""``nestnet advise`` on Azure (the default cloud): each rule on its own, the choice, the spec
fragment (a valid spec), the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ipaddress import ip_network

from nestnet.advise import Needs, advise
from nestnet.clouds.azure import advise as A


def rules_of(n: Needs, name: str) -> list[A.Finding]:
    return [f for f in advise(n).findings if f.rule == name]


def test_nat_cannot_serve_inbound() -> None:
    assert [f.fits for f in rules_of(Needs(inbound=True), "nat-no-inbound")] == [False]
    assert [f.fits for f in rules_of(Needs(inbound=False), "nat-no-inbound")] == [True]


def test_nat_hides_the_source_address() -> None:
    assert [f.fits for f in rules_of(Needs(keep_source_ip=True), "nat-hides-source")] == [False]
    assert rules_of(Needs(keep_source_ip=False), "nat-hides-source") == []


@pytest.mark.parametrize("hosts,max_routes,fits", [(400, 400, True), (401, 400, False), (1000, 1000, True),
                                                    (1001, 1000, False)])
def test_routed_one_route_per_host_within_the_table_limit(hosts: int, max_routes: int, fits: bool) -> None:
    (f,) = rules_of(Needs(hosts=hosts, max_routes=max_routes), "routed-route-limit")
    assert f.fits is fits and f.mode == "routed"
    assert ("--max-routes 1000" in f.text) is (not fits and hosts <= 1000)


@pytest.mark.parametrize("vms,fits", [(255, True), (256, False)])
def test_secondary_ip_primary_plus_vms_within_256_per_nic(vms: int, fits: bool) -> None:
    (f,) = rules_of(Needs(vms_per_host=vms), "secondary-ip-per-nic")
    assert f.fits is fits
    assert f"{vms + 1}" in f.text


def test_secondary_ip_within_the_vnet_address_limit() -> None:
    assert rules_of(Needs(hosts=256, vms_per_host=255), "secondary-ip-per-vnet") == []  # exactly 65,536
    (f,) = rules_of(Needs(hosts=257, vms_per_host=255), "secondary-ip-per-vnet")
    assert not f.fits and "65,536" in f.text


def test_block_limit() -> None:
    assert A.block_prefix_len(16) == 28 and A.block_prefix_len(17) == 27 and A.block_prefix_len(1) == 30
    assert A.block_prefix_len(65536) == 16 and A.block_prefix_len(65537) is None
    assert {f.mode for f in rules_of(Needs(vms_per_host=65537), "block-limit")} == set(A.MODES)


def test_every_rule_names_its_source() -> None:
    for n in (Needs(), Needs(False, False, 300, 2000)):
        for f in advise(n).findings:
            assert f.source in (A.SEED, A.LIMITS, A.PREFIX_SRC, "nestnet") and f.text


@pytest.mark.parametrize("needs,mode", [
    (Needs(), "routed"),  # inbound and source IPs: routes (the seed's "if you need inbound")
    (Needs(inbound=False, keep_source_ip=False), "nat"),  # the seed's "NAT for simplicity"
    (Needs(inbound=False, keep_source_ip=True), "routed"),
    (Needs(hosts=600, vms_per_host=10), "secondary-ip"),  # too many routes, few VMs per NIC
    (Needs(hosts=600, vms_per_host=10, max_routes=1000), "routed"),
    (Needs(hosts=600, vms_per_host=300), None),  # neither the table nor the NICs hold it
    (Needs(hosts=600, vms_per_host=300, inbound=False, keep_source_ip=False), "nat"),
    (Needs(hosts=5000, vms_per_host=15), "nic-prefix"),  # 80,000 secondary IPs: only /28 prefixes hold it
    (Needs(hosts=5000, vms_per_host=17), None),  # a /28 holds 16
])
def test_choice(needs: Needs, mode: str | None) -> None:
    a = advise(needs)
    assert a.mode == mode
    if mode is None:
        assert set(a.ruled_out) == set(A.MODES) and a.fragment == ""
    else:  # the chosen mode is never ruled out, and nothing the seed prefers over it fits
        assert mode not in a.ruled_out
        order = ("nat", "routed", "secondary-ip", "nic-prefix")
        assert all(m in a.ruled_out for m in order[: order.index(mode)])


@pytest.mark.parametrize("needs", [Needs(), Needs(inbound=False, keep_source_ip=False),
                                   Needs(hosts=600, vms_per_host=10), Needs(hosts=3, vms_per_host=100),
                                   Needs(hosts=5000, vms_per_host=15)])
def test_fragment_is_a_valid_spec(needs: Needs, tmp_path: Path) -> None:
    """The printed fragment, dropped into a spec sized as asked, validates and plans."""
    from nestnet.plan import load_plan

    a = advise(needs)
    frag = yaml.safe_load(a.fragment)
    nested = frag["nested"]
    pool = ip_network(nested["pool"])
    # secondary-ip: blocks lie in the hosts' subnet, so give the hosts a subnet around the pool
    inside = a.mode in ("secondary-ip", "nic-prefix")
    subnet = pool.supernet(new_prefix=pool.prefixlen - 1) if inside else ip_network("10.0.0.0/24")
    first = subnet.network_address + (pool.num_addresses if inside and
                                      subnet.network_address == pool.network_address else 0)
    spec = {
        "version": 1, "name": "adv",
        "azure": {"resource_group": "rg", "vnet": "v", "address_space": ["10.0.0.0/8"], **frag.get("azure", {})},
        "subnets": [{"name": "s", "prefix": str(subnet)}],
        "nested": nested,
        "hosts": [{"name": f"h{i}", "ip": str(first + 4 + i), "subnet": "s"} for i in range(min(needs.hosts, 3))],
    }
    path = tmp_path / "adv.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    plan = load_plan(path)
    assert plan.mode == a.mode
    assert plan.block_prefix_len == (28 if a.mode == "nic-prefix" else A.block_prefix_len(needs.vms_per_host))
    assert 2 ** (32 - plan.block_prefix_len) >= needs.vms_per_host
    assert pool.num_addresses >= needs.hosts * 2 ** (32 - plan.block_prefix_len)


def nestnet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nestnet", *args], capture_output=True, text=True, timeout=60)


def test_cli() -> None:
    r = nestnet("advise", "--inbound", "no", "--keep-source-ip", "no", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["mode"] == "nat" and d["modes"]["nat"]["fits"] and yaml.safe_load(d["fragment"])["nested"]["mode"] == "nat"
    r = nestnet("advise", "--hosts", "2000", "--vms-per-host", "300")
    assert r.returncode == 1 and "no mode fits" in r.stdout
    r = nestnet("advise")
    assert r.returncode == 0 and "use routed" in r.stdout and "mode: routed" in r.stdout
    r = nestnet("advise", "--inbound", "maybe")
    assert r.returncode == 2 and "Traceback" not in r.stderr


NEEDS = [Needs(), Needs(False, False, 1, 1), Needs(True, False, 300, 2000), Needs(False, True, 65537, 401),
         Needs(hosts=40000)]


@pytest.mark.parametrize("fn", A.RULES, ids=lambda f: f.__name__)
def test_each_rule_speaks_only_for_itself(fn) -> None:
    """Every rule's findings carry its own name and a mode; rules that never rule out are the
    seed's plain statements of what a mode needs or gives."""
    name = fn.__name__.replace("_", "-")
    found = [f for n in NEEDS for f in fn(n)]
    assert found and all(f.rule == name and f.mode in A.MODES for f in found)
    informational = {"nat-no-azure", "routed-inbound", "routed-forwarding", "secondary-ip-azure-per-vm",
                     "nic-prefix-unconfirmed"}
    assert all(f.fits for f in found) is (name in informational)


@pytest.mark.parametrize("name,words", [
    ("nat-no-azure", ["no Azure change"]),
    ("routed-inbound", ["reachable", "source IPs preserved"]),
    ("routed-forwarding", ["IP forwarding", "block"]),
    ("secondary-ip-azure-per-vm", ["Azure change"]),
])
def test_informational_rules_say_the_seeds_words(name: str, words: list[str]) -> None:
    (f,) = rules_of(Needs(), name)
    assert f.source == A.SEED and all(w in f.text for w in words)


def test_nic_prefix_lifts_the_route_limit_up_to_the_vnet() -> None:
    """One /28 per host: 16 VMs per host at most; a prefix counts as one of the VNet's 65,536
    private IPs, so 32,768 hosts (primary + prefix) and no route-table limit."""
    (f,) = rules_of(Needs(hosts=4096, vms_per_host=16), "nic-prefix-per-host")
    assert f.fits and "no route table" in f.text and "400/1,000" in f.text
    (f,) = rules_of(Needs(vms_per_host=17), "nic-prefix-per-host")
    assert not f.fits and "/28" in f.text
    (f,) = rules_of(Needs(hosts=32768), "nic-prefix-per-vnet")
    assert f.fits and "65,536 of" in f.text
    (f,) = rules_of(Needs(hosts=32769), "nic-prefix-per-vnet")
    assert not f.fits
    (f,) = rules_of(Needs(), "nic-prefix-unconfirmed")
    assert "ASSUMPTION" in f.text and "generally available" in f.text
