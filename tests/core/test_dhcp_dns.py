"""Pure parts of DHCP and DNS for nested VMs: spec keys, the Plan, every guest format, the
dnsmasq config and the lab's names (no root, no I/O beyond a temp spec)."""

from __future__ import annotations

import subprocess
import sys
from ipaddress import IPv4Address, IPv4Network

import pytest
import yaml

from nestnet.errors import SpecError
from nestnet.guest import FORMATS, render, resolv_conf
from nestnet.host.dhcp import render_conf
from nestnet.plan import free_runs, load

from .specs import seed, write


def plan_of(tmp_path, d):
    return load(write(tmp_path, d)).plan


def test_free_runs_skip_the_ends_and_every_taken_address():
    block = IPv4Network("10.0.1.16/28")
    taken = {int(IPv4Address("10.0.1.20")), int(IPv4Address("10.0.1.21")), int(IPv4Address("10.0.1.30"))}
    assert free_runs(block, taken) == (
        (IPv4Address("10.0.1.17"), IPv4Address("10.0.1.19")),
        (IPv4Address("10.0.1.22"), IPv4Address("10.0.1.29")),
    )
    assert free_runs(IPv4Network("10.0.1.16/30"), {int(IPv4Address("10.0.1.17")), int(IPv4Address("10.0.1.18"))}) == ()


@pytest.mark.parametrize("style", ["onlink", "subnet"])
def test_every_guest_format_carries_the_name_server_and_search(tmp_path, style):
    d = seed()
    d["nested"]["guest_style"] = style
    d["azure"]["private_dns_zone"] = "nested.example.net"
    plan = plan_of(tmp_path, d)
    vm = plan.vms["web1"]
    assert vm.nameservers == (IPv4Address("10.0.1.10"),) and vm.search == ("nested.example.net",)
    for fmt in FORMATS:
        text = render(plan, "web1", fmt)
        assert "10.0.1.10" in text and "nested.example.net" in text, fmt
    for fmt in ("netplan", "cloud-init"):
        doc = yaml.safe_load(render(plan, "web1", fmt))
        eth = (doc["network"] if fmt == "netplan" else doc)["ethernets"]["eth0"]
        assert eth["nameservers"] == {"addresses": ["10.0.1.10"], "search": ["nested.example.net"]}
    script = render(plan, "web1", "ip")
    assert "resolvectl dns eth0 10.0.1.10" in script and "resolvectl domain eth0 nested.example.net" in script
    assert resolv_conf(vm) == "search nested.example.net\nnameserver 10.0.1.10\n"


def test_ip_format_writes_resolv_conf_without_resolved(tmp_path):
    """The ``ip`` script's resolv.conf branch, run by a real shell with resolvectl absent."""
    plan = plan_of(tmp_path, seed())
    script = render(plan, "web1", "ip")
    dns = script[script.index("if command -v resolvectl"):].replace("/etc/resolv.conf", str(tmp_path / "resolv.conf"))
    r = subprocess.run(["/bin/sh", "-c", dns], capture_output=True, text=True, env={"PATH": "/nonexistent"})
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "resolv.conf").read_text() == "nameserver 10.0.1.10\n"


def test_dnsmasq_config_onlink_subnet_and_dynamic(tmp_path):
    d = seed()
    plan = plan_of(tmp_path, d)
    conf = render_conf(plan, plan.hosts["vme-kvm-vm1"])
    assert "interface=nestbr0\n" in conf and "server=168.63.129.16\n" in conf and "bind-dynamic\n" in conf
    assert "dhcp-host=52:54:00:00:01:14,10.0.1.20,web1,12h\n" in conf
    assert "dhcp-option=tag:nestnet,option:netmask,255.255.255.255\n" in conf
    assert "option:classless-static-route,10.0.1.10/32,0.0.0.0,0.0.0.0/0,10.0.1.10\n" in conf
    assert "shared-network=nestbr0,10.0.1.16\n" in conf
    assert "domain-search" not in conf  # no zone, no dns_search: nothing to search
    assert [l for l in conf.splitlines() if l.startswith("dhcp-range")] == [
        "dhcp-range=set:nestnet,10.0.1.16,static,255.255.255.240,12h"
    ]
    d["nested"]["guest_style"] = "subnet"
    d["nested"]["dhcp"] = {"dynamic": True}
    d["nested"]["dns_search"] = ["a.example", "b.example"]
    d["hosts"][1]["dhcp_dynamic"] = False
    plan = plan_of(tmp_path, d)
    conf = render_conf(plan, plan.hosts["vme-kvm-vm1"])
    assert "netmask" not in conf and "classless" not in conf and "option:router,10.0.1.10\n" in conf
    assert "dhcp-range=set:nestnet,10.0.1.0,static,255.255.255.0,12h\n" in conf
    assert "dhcp-range=set:nestnet,10.0.1.17,10.0.1.19,255.255.255.0,12h\n" in conf
    assert "dhcp-range=set:nestnet,10.0.1.21,10.0.1.30,255.255.255.0,12h\n" in conf
    assert "option:domain-search,a.example,b.example\n" in conf and "option:domain-name,a.example\n" in conf
    assert plan.hosts["vme-kvm-vm2"].dhcp_ranges == ()  # per-host override
    assert plan.hosts["vme-kvm-vm1"].bridge_address == IPv4Address("10.0.1.10")


def test_bad_zone_and_search_are_bad_input_exit_2(tmp_path):
    d = seed()
    d["azure"]["private_dns_zone"] = "not a zone"
    d["nested"]["dns_search"] = ["ok.example", "bad_domain."]
    spec = write(tmp_path, d)
    with pytest.raises(SpecError) as e:
        load(spec)
    paths = sorted(p.path for p in e.value.problems)
    assert paths == ["azure.private_dns_zone", "nested.dns_search[1]"]
    r = subprocess.run([sys.executable, "-m", "nestnet", "validate", str(spec)], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "private_dns_zone" in r.stderr
    assert not (tmp_path / "spec.lock").exists()


def test_lab_names(tmp_path):
    from nestnet.lab import dns, services

    d = seed()
    d["azure"]["private_dns_zone"] = "nested.example.net"
    plan = plan_of(tmp_path, d)
    sfx = dns.vnet_suffix(plan)
    assert dns.vnet_names(plan)[f"mgmt-vm.{sfx}"] == IPv4Address("10.0.2.5")
    assert dns.zone_records(plan) == {"web1.nested.example.net": IPv4Address("10.0.1.20"),
                                      "web2.nested.example.net": IPv4Address("10.0.1.50")}
    assert dns.hosts_text({"b.x": IPv4Address("10.0.0.2"), "a.x": IPv4Address("10.0.0.1")}) == "10.0.0.1 a.x\n10.0.0.2 b.x\n"
    want = services.expected_names(plan, "web1")
    assert want == {f"mgmt-vm.{sfx}": IPv4Address("10.0.2.5"), dns.INTERNET_NAME: dns.INTERNET_IP,
                    "web2.nested.example.net": IPv4Address("10.0.1.50"), "web2": IPv4Address("10.0.1.50")}


def test_ufw_hosts_let_the_vms_reach_dhcp_and_dns_on_the_bridge_only(tmp_path):
    from nestnet.host import ufw

    plan = plan_of(tmp_path, seed())
    _, filt = ufw.blocks(plan, plan.hosts["vme-kvm-vm1"])
    lines = [l for l in filt.splitlines() if l.startswith("-A ufw-before-input")]
    assert lines == [
        "-A ufw-before-input -i nestbr0 -p udp --dport 67 -j ACCEPT",
        "-A ufw-before-input -i nestbr0 -d 10.0.1.10 -p udp --dport 53 -j ACCEPT",
        "-A ufw-before-input -i nestbr0 -d 10.0.1.10 -p tcp --dport 53 -j ACCEPT",
    ]
