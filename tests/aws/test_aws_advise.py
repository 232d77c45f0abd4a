"""`nestnet advise --cloud aws`: AWS's modes and limits decide, each finding with its source."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nestnet.advise import Needs
from nestnet.clouds.aws.advise import MODES, advise


def fits(a) -> dict[str, bool]:
    return {m: m not in a.ruled_out for m in MODES}


def test_prefix_first_when_vms_need_their_addresses():
    a = advise(Needs(vms_per_host=16, hosts=2))
    assert a.mode == "prefix" and "mode: prefix" in a.fragment and "block_prefix_len: 28" in a.fragment
    assert a.modes == MODES and all(f.source for f in a.findings)


def test_nat_when_nothing_needs_them():
    assert advise(Needs(inbound=False, keep_source_ip=False)).mode == "nat"


@pytest.mark.parametrize("vms,hosts,routes,itype,mode", [
    (17, 2, None, None, "routed"),            # more than a /28 per host: routes
    (17, 51, None, None, "secondary-ip"),     # 51 routes > 50 per table; 18 of c8i.large's 20 addresses
    (30, 60, None, None, None),               # 31 > 20 addresses, 60 > 50 routes, 30 > 16
    (30, 60, 100, None, "routed"),            # a raised quota
    (17, 51, None, "t3.micro", None),         # 2 addresses per ENI: no secondary-ip
    (19, 51, None, "c8i.xlarge", "secondary-ip"),  # 30 addresses per ENI
])
def test_ec2_limits_decide(vms, hosts, routes, itype, mode):
    assert advise(Needs(vms_per_host=vms, hosts=hosts), routes, itype).mode == mode


def test_the_cli_speaks_for_aws():
    r = subprocess.run([sys.executable, "-m", "nestnet", "advise", "--cloud", "aws", "--hosts", "60",
                        "--vms-per-host", "30", "--max-routes", "100", "--json"], capture_output=True, text=True)
    d = json.loads(r.stdout)
    assert r.returncode == 0 and d["mode"] == "routed" and list(d["modes"]) == list(MODES)
    assert d["needs"]["max_routes"] == 100
    bad = subprocess.run([sys.executable, "-m", "nestnet", "advise", "--instance-type", "c8i.large"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --instance-type: only with --cloud aws"
