"""Fixtures for the host reconciler: throwaway namespaces (always deleted) and small specs."""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from nestnet import netns
from nestnet.plan import Plan, load_plan

_seq = itertools.count()


def spec_text(
    name: str,
    guest_style: str = "onlink",
    egress: str = "masquerade-outside-vnet",
    bridge_type: str = "linux",
    firewall: str = "nftables",
    hosts: int = 2,
    bridge_has_uplink: bool = False,
) -> str:
    """Host i has IP 10.0.1.(10+i) and block 10.0.1.16/28 + 32*i (up to 7 hosts; more go in
    10.0.16.0/20 with blocks from 10.0.128.0/17); one VM on each of the first two hosts."""
    big = hosts > 7  # big fabrics: a /20 host subnet and a /17 pool
    lines = [
        "version: 1",
        f"name: {name}",
        "azure: {resource_group: rg, vnet: vnet, address_space: [10.0.0.0/16], route_table: rt, max_routes: 1000}",
        "subnets:",
        "  - {name: vm-subnet, prefix: 10.0.16.0/20}" if big else "  - {name: vm-subnet, prefix: 10.0.1.0/24}",
        "  - {name: mgmt-subnet, prefix: 10.0.2.0/24}",
        "nested:",
        "  mode: routed",
        "  pool: 10.0.128.0/17" if big else "  pool: 10.0.1.0/24",
        "  block_prefix_len: 28",
        f"  guest_style: {guest_style}",
        f"  egress: {egress}",
        "host_defaults:",
        "  uplink: eth1",
        f"  bridge_type: {bridge_type}",
        f"  firewall: {firewall}",
        f"  bridge_has_uplink: {str(bridge_has_uplink).lower()}",
        "  bridge: " + ("mgmt" if bridge_has_uplink else "nestbr0"),
        "hosts:",
    ]
    for i in range(hosts):
        if big:
            ip, block = IPv4Address("10.0.16.10") + i, IPv4Network((int(IPv4Address("10.0.128.0")) + 16 * i, 28))
        else:
            ip, block = IPv4Address("10.0.1.10") + i, IPv4Network(f"10.0.1.{16 + 32 * i}/28")
        lines.append(f"  - {{name: h{i}, ip: {ip}, nic: h{i}-nic, block: {block}}}")
    lines.append("vms:")
    for i in range(min(hosts, 2)):
        vm_ip = IPv4Address("10.0.128.4") + 16 * i if big else IPv4Address("10.0.1.20") + 32 * i
        lines.append(f"  - {{name: vm{i}, host: h{i}, ip: {vm_ip}}}")
    lines.append("endpoints:\n  - {name: mgmt-vm, ip: 10.0.2.5, subnet: mgmt-subnet}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def make_plan(tmp_path):
    def make(**kw) -> Plan:
        d = tmp_path / f"spec{next(_seq)}"
        d.mkdir()
        p = d / "nestnet.yaml"
        p.write_text(spec_text(kw.pop("name", "hosttest"), **kw))
        return load_plan(p)

    return make


@pytest.fixture
def root(tmp_path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    return r


class NS:
    """A namespace with ``eth1`` at 10.0.1.10/24 (a veth; its peer ``fab0`` stays in the ns)."""

    def __init__(self, name: str):
        self.name = name

    def sh(self, *argv: str, check: bool = True, input: str | None = None):
        return netns.sh(self.name, *argv, check=check, input=input)

    def run(self, fn, *args, **kw):
        return netns.run_in(self.name, fn, *args, **kw)


@pytest.fixture
def ns():
    names: list[str] = []

    def make(ip: str = "10.0.1.10/24", peer_ns: str | None = None) -> NS:
        name = f"nnh{os.getpid() % 10000}-{next(_seq)}"
        names.append(name)
        netns.add(name)
        n = NS(name)
        n.sh("ip", "link", "set", "lo", "up")
        n.sh("ip", "link", "add", "eth1", "type", "veth", "peer", "name", "fab0")
        if peer_ns is not None:
            n.sh("ip", "link", "set", "fab0", "netns", peer_ns)
        else:
            n.sh("ip", "link", "set", "fab0", "up")
        n.sh("ip", "link", "set", "eth1", "up")
        n.sh("ip", "addr", "add", ip, "dev", "eth1")
        return n

    def new_bare() -> NS:
        name = f"nnh{os.getpid() % 10000}-{next(_seq)}"
        names.append(name)
        netns.add(name)
        n = NS(name)
        n.sh("ip", "link", "set", "lo", "up")
        return n

    make.bare = new_bare  # type: ignore[attr-defined]
    try:
        yield make
    finally:
        for name in names:
            netns.delete(name)


@pytest.fixture
def ovs(tmp_path, monkeypatch):
    """Yield a function that starts a private ovsdb-server + ovs-vswitchd inside a namespace
    (userspace datapath: no OVS kernel module here); both are ended by PID afterwards."""
    procs: list[subprocess.Popen] = []
    run = tmp_path / "ovs"
    run.mkdir()

    def start(ns_name: str) -> None:
        subprocess.run(["ovsdb-tool", "create", str(run / "conf.db"), "/usr/share/openvswitch/vswitch.ovsschema"], check=True)
        env = {**os.environ, "OVS_RUNDIR": str(run), "OVS_LOGDIR": str(run), "OVS_DBDIR": str(run)}
        sock = run / "db.sock"
        procs.append(subprocess.Popen(
            ["ip", "netns", "exec", ns_name, "ovsdb-server", str(run / "conf.db"), f"--remote=punix:{sock}",
             f"--unixctl={run / 'ovsdb.ctl'}", f"--log-file={run / 'ovsdb.log'}"], env=env, stderr=subprocess.DEVNULL))
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.02)
        procs.append(subprocess.Popen(
            ["ip", "netns", "exec", ns_name, "ovs-vswitchd", f"unix:{sock}", f"--unixctl={run / 'vswitchd.ctl'}",
             f"--log-file={run / 'vswitchd.log'}"], env=env, stderr=subprocess.DEVNULL))
        monkeypatch.setenv("OVS_RUNDIR", str(run))  # ovs-vsctl (ours and nestnet's) finds this db
        subprocess.run(["ovs-vsctl", "--timeout=10", "init"], check=True)

    try:
        yield start
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
