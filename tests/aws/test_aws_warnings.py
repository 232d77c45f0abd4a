"""The spec's warnings are its cloud's (issue 25): an AWS spec never hears Azure's facts. Azure
hands out dynamic NIC addresses from the lowest free one; EC2 picks any free address of the
subnet, and an assigned ENI prefix's addresses are the ENI's, so prefix mode has no such risk."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nestnet", "validate", str(path)], capture_output=True, text=True,
                          timeout=120)


def test_prefix_mode_on_aws_warns_of_no_dynamic_addresses():
    r = validate(ROOT / "examples" / "aws.yaml")
    assert r.returncode == 0, r.stderr
    assert "dynamic" not in r.stderr and "Azure" not in r.stderr and "0 warnings" in r.stdout


def test_secondary_ip_mode_on_aws_warns_with_ec2s_facts(tmp_path):
    data = yaml.safe_load((ROOT / "examples" / "aws.yaml").read_text())
    data["nested"]["mode"] = "secondary-ip"
    p = tmp_path / "aws-secondary.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    r = validate(p)
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stderr.splitlines() if "lower half of NIC subnet" in x]
    assert len(lines) == 2 and all("EC2 gives a new network interface any free address" in x for x in lines)
    assert "Azure" not in r.stderr and "lowest free" not in r.stderr


def test_azure_keeps_its_warning():
    r = validate(ROOT / "examples" / "seed.yaml")
    assert r.returncode == 0 and r.stderr.count("Azure hands out dynamic NIC addresses from the lowest free one") == 2
