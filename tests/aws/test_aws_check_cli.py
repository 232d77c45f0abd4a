"""`nestnet check --aws` and `nestnet plan` on AWS through the CLI: check reads EC2 through boto3
(the emulator over HTTPS) and judges every pair from what EC2 holds; a foreign change fails exactly
the pairs it breaks, naming the cause; EC2 out of reach is one line, exit 3; another cloud's flag
is bad input (issue 25)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path


from aws_helpers import example_file, make_vpc

EXAMPLE = Path(__file__).parents[2] / "examples" / "aws.yaml"
NODES = ("vme-kvm-vm1", "vme-kvm-vm2", "web1", "web2", "mgmt-vm")


def spec(tmp_path: Path, mode: str = "prefix") -> Path:
    return example_file(tmp_path, mode)


def nestnet(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NESTNET_"))}
    return subprocess.run([sys.executable, "-m", "nestnet", "-q", *args], capture_output=True, text=True,
                          env={**base, **env}, stdin=subprocess.DEVNULL, timeout=120)


def failed(r: subprocess.CompletedProcess) -> set[tuple[str, str]]:
    doc = json.loads(r.stdout)
    return {(a, b) for g in doc["groups"] if g["verdict"] == "fail" for blk in g["pairs"]
            for a in blk["src"] for b in blk["dst"]}


def test_check_reads_ec2_before_and_after_apply_and_after_a_foreign_change(ec2, tmp_path):
    path = spec(tmp_path, "routed")
    c = ec2.client()
    v = make_vpc(c)
    env = ec2.env()
    before = nestnet("check", str(path), "--aws", "--json", env=env)
    assert before.returncode == 1, before.stderr
    assert ("mgmt-vm", "web1") in failed(before)
    assert nestnet("check", str(path), env=env).returncode == 0  # the plan itself is healthy
    applied = nestnet("aws", "apply", str(path), env=env)
    assert applied.returncode == 0, applied.stderr
    after = nestnet("check", str(path), "--aws", env=env)
    assert after.returncode == 0, after.stdout + after.stderr
    # someone turns vme-kvm-vm1's source/destination check back on: what it forwards is dropped
    c.modify_network_interface_attribute(NetworkInterfaceId=v.enis["vme-kvm-vm1"], SourceDestCheck={"Value": True})
    broken = nestnet("check", str(path), "--aws", "--json", env=env)
    assert broken.returncode == 1
    assert failed(broken) == {(a, "web1") for a in ("vme-kvm-vm2", "web2", "mgmt-vm")} | \
        {("web1", b) for b in ("vme-kvm-vm2", "web2", "mgmt-vm")}
    text = nestnet("check", str(path), "--aws", env=env).stdout
    assert "source/destination check is on" in text and "Azure" not in text


def test_a_removed_prefix_fails_exactly_its_hosts_vm(ec2, tmp_path):
    path = spec(tmp_path, "prefix")
    c = ec2.client()
    v = make_vpc(c)
    env = ec2.env()
    assert nestnet("aws", "apply", str(path), env=env).returncode == 0
    assert nestnet("check", str(path), "--aws", env=env).returncode == 0
    c.unassign_private_ip_addresses(NetworkInterfaceId=v.enis["vme-kvm-vm2"], Ipv4Prefixes=["10.0.1.48/28"])
    r = nestnet("check", str(path), "--aws", "--json", env=env)
    assert r.returncode == 1
    assert failed(r) == {(a, "web2") for a in ("vme-kvm-vm1", "web1", "mgmt-vm")} | \
        {("web2", b) for b in ("vme-kvm-vm1", "web1", "mgmt-vm")}
    # the what-if of the same fault says the same pairs
    said = nestnet("check", str(path), "--fault", "no-eni-prefix:vme-kvm-vm2", "--json", env=env)
    assert failed(said) == failed(r)


def test_ec2_out_of_reach_is_one_line_exit_3(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"AWS_ENDPOINT_URL": f"https://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "NESTNET_AWS_MAX_ATTEMPTS": "1"}
    r = nestnet("check", str(spec(tmp_path)), "--aws", env=env)
    assert r.returncode == 3, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "cannot reach EC2" in r.stderr and r.stdout == ""


def test_another_clouds_flag_is_bad_input(tmp_path):
    r = nestnet("check", str(spec(tmp_path)), "--azure", env={})
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: --azure: {tmp_path / 'prefix.yaml'} is a spec for AWS (aws:), not for Azure"
    r = nestnet("check", str(spec(tmp_path)), "--nsgs", str(EXAMPLE), env={})
    assert r.returncode == 2 and "--nsgs" in r.stderr and "not for Azure" in r.stderr


def test_plan_shows_the_eni_prefixes_and_never_says_azure(tmp_path):
    r = nestnet("plan", str(spec(tmp_path)), env={})
    assert r.returncode == 0, r.stderr
    assert "ENI IPv4 prefixes" in r.stdout and "10.0.1.48/28" in r.stdout and "Azure" not in r.stdout
    routed = nestnet("plan", str(spec(tmp_path, "routed")), env={})
    assert "Routes to ENIs" in routed.stdout and "source/destination check off on ENIs" in routed.stdout
    assert "Azure" not in routed.stdout


def test_doctor_reads_ec2_and_names_what_differs(ec2, tmp_path):
    """doctor --aws's diagnosis (this host as planned, EC2 read through boto3): healthy after aws
    apply; a foreign source/destination check turned on is a finding with its fix, its pairs fail,
    and what was read is in the summary under the cloud's name."""
    from nestnet.clouds.aws.ec2 import Ec2Client
    from nestnet.doctor import diagnose, observe_cloud, summary
    from nestnet.model import from_plan, observe_host
    from nestnet.plan import load_plan

    path = spec(tmp_path, "routed")
    c = ec2.client()
    v = make_vpc(c)
    plan = load_plan(path)
    h = from_plan(plan).hosts["vme-kvm-vm1"]
    routes = json.dumps([{"dst": str(r.dst), "dev": r.dev, **({"gateway": str(r.via)} if r.via else {}),
                          "protocol": "201"} for r in h.owned_routes]
                        + [{"dst": str(r.dst), "dev": r.dev, "protocol": "kernel"} for r in h.other_routes])
    sysctl = {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": str(h.rp_filter),
              f"net.ipv4.conf.{h.bridge}.proxy_arp": str(int(h.proxy_arp)),
              f"net.ipv4.conf.{h.bridge}.proxy_arp_pvlan": str(int(h.proxy_arp_pvlan))}
    nft = json.dumps({"nftables": [
        {"chain": {"family": "inet", "table": "nestnet", "name": "forward", "type": "filter", "hook": "forward",
                   "policy": "accept"}},
        {"rule": {"family": "inet", "table": "nestnet", "chain": "postrouting", "expr": [{"masquerade": None}]}}]})
    obs = observe_host(routes, sysctl, nft)
    client = Ec2Client("us-east-1", ec2.env())
    assert nestnet("aws", "apply", str(path), env=ec2.env()).returncode == 0
    healthy = diagnose(plan, "vme-kvm-vm1", obs, cloud=observe_cloud(plan, client))
    assert healthy.findings == () and not healthy.problems, (healthy.findings, healthy.problems)
    assert not any(a.startswith("AWS:") for a in healthy.assumed)
    c.modify_network_interface_attribute(NetworkInterfaceId=v.enis["vme-kvm-vm1"], SourceDestCheck={"Value": True})
    seen = observe_cloud(plan, client)
    d = diagnose(plan, "vme-kvm-vm1", obs, cloud=seen)
    assert d.findings == ("AWS ENI vme-kvm-vm1-eni: the source/destination check is on → `nestnet aws apply`",)
    assert ("mgmt-vm", "web1") in {p for g in d.problems for p in g.pairs}
    read = summary(d.model.state.hosts["vme-kvm-vm1"], obs, seen)["aws"]
    assert read["source_dest_check_off"] == ["vme-kvm-vm2-eni"] and len(read["routes"]) == 2
    assert diagnose(plan, "vme-kvm-vm1", obs).assumed[0].startswith("AWS: ")


def test_doctor_with_ec2_out_of_reach_is_one_line_exit_3(tmp_path):
    # in a network namespace of its own (unshare: nothing listens there, nothing of this machine's
    # network is read), as the host it diagnoses
    import shutil

    import pytest

    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs unshare and root for a network namespace of its own")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NESTNET_"))},
           "AWS_ENDPOINT_URL": "https://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "NESTNET_AWS_MAX_ATTEMPTS": "1"}
    r = subprocess.run(["unshare", "--net", sys.executable, "-m", "nestnet", "-q", "doctor", str(spec(tmp_path)),
                        "--host", "vme-kvm-vm1", "--root", str(tmp_path), "--aws"],
                       capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=120)
    assert r.returncode == 3, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "cannot reach EC2" in r.stderr and r.stdout == ""
