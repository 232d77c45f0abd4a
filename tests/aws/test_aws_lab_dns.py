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
name = sys.argv[2] if len(sys.argv) > 2 else "www.example.com"
q = bytes.fromhex("123401000001000000000000") + b"".join(bytes([len(x)]) + x.encode() for x in name.split(".")) + b"\x00\x00\x01\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.5)
s.sendto(q, (sys.argv[1], 53))
try:
    r = s.recvfrom(512)[0]
    # the reply's last answer's address (an A record's 4 bytes end the message here)
    print(socket.inet_ntoa(r[-4:]) if r[:2] == q[:2] and r[6:8] != b"\0\0" else "empty")
except OSError:
    print("none")
"""


def ask(plan, node: str, server: str, name: str = "www.example.com") -> str:
    """The address ``server`` gives for ``name`` asked from ``node``, "empty" (no answer) or "none" (no reply)."""
    ns = Topology.from_plan(plan).ns(node)
    return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", ASK, server, name],
                          capture_output=True, text=True).stdout.strip()


def test_the_amazon_dns_server_answers_at_both_addresses_and_guests_resolve_through_their_host() -> None:
    from nestnet import lab

    plan = example_plan("prefix", f"awsdns{os.getpid()}"[:14])
    host = next(iter(plan.hosts.values()))
    vm = plan.vms[host.vms[0]]
    assert [str(a) for a in plan.cloud.resolvers] == ["169.254.169.253", "10.0.0.2"]
    try:
        lab.up(plan)
        www = ask(plan, host.name, "169.254.169.253")
        assert www not in ("empty", "none")
        assert ask(plan, host.name, "10.0.0.2") == www
        assert ask(plan, host.name, "168.63.129.16") == "none"  # Azure's address means nothing in a VPC
        assert ask(plan, vm.name, str(host.ip)) == www  # the host's forwarder asks the VPC's resolver
    finally:
        lab.down(plan)


@pytest.mark.parametrize("region,domain", [("us-east-1", "ec2.internal"), ("eu-west-1", "eu-west-1.compute.internal")])
def test_instances_have_ec2s_ip_names(region: str, domain: str) -> None:
    """EC2's private hostnames are IP names (EC2 user guide, "EC2 instance hostname types"):
    ip-10-0-1-10.ec2.internal in us-east-1, ip-10-0-1-10.<region>.compute.internal elsewhere. The lab's
    DNS answers them, for hosts and endpoints, and not Azure's <name>.<lab>.internal.cloudapp.net,
    which an AWS lab served before."""
    from dataclasses import replace

    from nestnet import lab

    plan = example_plan("prefix", f"awsnm{os.getpid()}"[:14])
    plan = replace(plan, cloud=replace(plan.cloud, region=region))
    host, other = list(plan.hosts.values())[:2]
    mgmt = next(iter(plan.endpoints.values()))
    try:
        lab.up(plan)
        for node in (other, mgmt):
            name = f"ip-{str(node.ip).replace('.', '-')}.{domain}"
            assert ask(plan, host.name, "169.254.169.253", name) == str(node.ip), name
        assert ask(plan, host.name, "169.254.169.253", f"{other.name}.{plan.name}.internal.cloudapp.net") == "empty"
    finally:
        lab.down(plan)
