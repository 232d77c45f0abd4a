"""`aws export`: Terraform that `terraform fmt -check` accepts (where terraform is on PATH) and that
says what the plan says; an AWS CLI script, run by the real `aws` CLI against the emulator, that
converges to what `aws apply` would write, writes nothing the second time and keeps what others hold."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import hcl2
import pytest

from aws_helpers import make_vpc, plan_for
from nestnet.clouds.aws.ec2 import Ec2Client
from nestnet.clouds.aws.export import aws_cli, terraform
from nestnet.clouds.aws.reconcile import plan_changes

AWS_CLI = Path(sys.executable).with_name("aws")


def unquoted(node):
    """python-hcl2 keeps HCL's quotes on block labels and strings (5.x): drop them."""
    if isinstance(node, dict):
        return {k.strip('"'): unquoted(v) for k, v in node.items()}
    if isinstance(node, list):
        return [unquoted(v) for v in node]
    if isinstance(node, str) and len(node) >= 2 and node[0] == node[-1] == '"':
        return node[1:-1]
    return node


@pytest.mark.parametrize("mode", ["prefix", "routed", "secondary-ip"])
def test_terraform_says_what_the_plan_says(tmp_path, mode):
    want = plan_for(tmp_path, mode)
    text = terraform(want, "fab")
    doc = unquoted(hcl2.loads(text))
    enis = {k: v for r in doc.get("resource", []) for t, res in r.items() if t == "aws_network_interface"
            for k, v in res.items()}
    routes = [v for r in doc.get("resource", []) for t, res in r.items() if t == "aws_route" for v in res.values()]
    if mode == "prefix":
        assert {k: v["ipv4_prefixes"] for k, v in enis.items()} == {"vme_kvm_vm1": ["10.0.1.16/28"],
                                                                     "vme_kvm_vm2": ["10.0.1.48/28"]}
        assert routes == []
    elif mode == "routed":
        assert {v["destination_cidr_block"] for v in routes} == {"100.64.0.16/28", "100.64.0.48/28"}
        assert all(v["source_dest_check"] is False for v in enis.values())
    else:
        assert enis["vme_kvm_vm1"]["private_ips"] == ["10.0.1.10", "10.0.1.20"]
    assert len(doc["import"]) == len(enis)  # the hosts' ENIs exist: adopted, never created
    if shutil.which("terraform"):
        f = tmp_path / "nestnet.tf"
        f.write_text(text)
        r = subprocess.run(["terraform", "fmt", "-check", "-diff", str(f)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(not AWS_CLI.exists(), reason="the aws CLI (awscli, a test dependency) is not installed")
@pytest.mark.parametrize("mode", ["prefix", "routed"])
def test_the_aws_cli_script_converges_and_reruns_without_writes(ec2, tmp_path, mode):
    c = ec2.client()
    v = make_vpc(c)
    c.create_route(RouteTableId=v.table, DestinationCidrBlock="198.51.100.0/24", NetworkInterfaceId=v.enis["vme-kvm-vm2"])
    want = plan_for(tmp_path, mode)
    script = tmp_path / "nestnet-aws.sh"
    script.write_text(aws_cli(want, "fab"))
    env = {**os.environ, **ec2.env(), "PATH": f"{AWS_CLI.parent}:{os.environ['PATH']}", "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    first = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    client = Ec2Client("us-east-1", ec2.env())
    assert plan_changes(client, want)[1] == []  # what apply would have written, and no more
    writes = ec2.stats()["writes"]
    again = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout == "", again.stdout + again.stderr
    assert ec2.stats()["writes"] == writes + (2 if mode == "routed" else 0)  # the check, set off again
    rt = c.describe_route_tables(RouteTableIds=[v.table])["RouteTables"][0]["Routes"]
    assert any(r.get("DestinationCidrBlock") == "198.51.100.0/24" for r in rt)


def test_the_script_stops_on_a_reference_it_cannot_find(ec2, tmp_path):
    if not AWS_CLI.exists():
        pytest.skip("the aws CLI is not installed")
    want = plan_for(tmp_path, "prefix")
    script = tmp_path / "s.sh"
    script.write_text(aws_cli(want, "fab"))
    env = {**os.environ, **ec2.env(), "PATH": f"{AWS_CLI.parent}:{os.environ['PATH']}", "AWS_CONFIG_FILE": "/dev/null"}
    r = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "vme-vpc: expected exactly one match, found: none" in r.stderr
    assert ec2.stats()["writes"] == 0
