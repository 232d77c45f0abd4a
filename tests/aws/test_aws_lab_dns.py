"""The Amazon DNS server in an AWS lab (issue 25): it answers at 169.254.169.253 and at the VPC's base
plus two, as the VPC user guide's "Amazon DNS server" says, and a nested VM resolves through its
host's forwarder, which asks the link-local address (plan.cloud.resolver). Before, the AWS lab served
DNS only at Azure's 168.63.129.16, so the hosts' forwarders asked an address nobody answered."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nestnet.clouds.aws.lab import example_plan
from nestnet.lab.topology import Topology

pytestmark = [pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root and namespaces")]

# A DNS query for www.example.com (A) from inside a namespace, straight to a server: "answer" when
# the server's reply carries an address.
ASK = r"""
import socket, sys
q = bytes.fromhex("123401000001000000000000") + b"\x03www\x07example\x03com\x00\x00\x01\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.5)
s.sendto(q, (sys.argv[1], 53))
try:
    r = s.recvfrom(512)[0]
    print("answer" if r[:2] == q[:2] and r[6:8] != b"\0\0" else "empty")
except OSError:
    print("none")
"""


def ask(plan, node: str, server: str) -> str:
    ns = Topology.from_plan(plan).ns(node)
    return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", ASK, server],
                          capture_output=True, text=True).stdout.strip()


def test_the_amazon_dns_server_answers_at_both_addresses_and_guests_resolve_through_their_host() -> None:
    from nestnet import lab

    plan = example_plan("prefix", f"awsdns{os.getpid()}"[:14])
    host = next(iter(plan.hosts.values()))
    vm = plan.vms[host.vms[0]]
    assert [str(a) for a in plan.cloud.resolvers] == ["169.254.169.253", "10.0.0.2"]
    try:
        lab.up(plan)
        assert ask(plan, host.name, "169.254.169.253") == "answer"
        assert ask(plan, host.name, "10.0.0.2") == "answer"
        assert ask(plan, host.name, "168.63.129.16") == "none"  # Azure's address means nothing in a VPC
        assert ask(plan, vm.name, str(host.ip)) == "answer"  # the host's forwarder asks the VPC's resolver
    finally:
        lab.down(plan)
