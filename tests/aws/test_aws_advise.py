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
    assert advise(Needs(vms_per_host=vms, hosts=hosts, max_routes=routes), {"instance_type": itype}).mode == mode


def test_the_cli_speaks_for_aws():
    r = subprocess.run([sys.executable, "-m", "nestnet", "advise", "--cloud", "aws", "--hosts", "60",
                        "--vms-per-host", "30", "--max-routes", "100", "--json"], capture_output=True, text=True)
    d = json.loads(r.stdout)
    assert r.returncode == 0 and d["mode"] == "routed" and list(d["modes"]) == list(MODES)
    assert d["needs"]["max_routes"] == 100
    bad = subprocess.run([sys.executable, "-m", "nestnet", "advise", "--instance-type", "c8i.large"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --instance-type: only with --cloud aws"


def test_the_core_reaches_aws_through_the_seam():
    """`nestnet.advise.advise(needs, "aws")` is EC2's advice: AWS's modes, its default route
    quota of 50 filled in (not Azure's 400), and its limits deciding."""
    from nestnet import advise as core
    from nestnet import clouds

    a = core.advise(Needs(hosts=51, vms_per_host=17), "aws")
    assert a.modes == MODES and a.needs.max_routes == 50 and a.mode == "secondary-ip"
    assert a.ruled_out == {"prefix": ["prefix-per-host"], "routed": ["routed-route-limit"],
                           "nat": ["nat-no-inbound", "nat-hides-source"]}
    azure = core.advise(Needs(hosts=51, vms_per_host=17))  # the default cloud's: 51 of 400 routes
    assert azure.mode == "routed" and azure.needs.max_routes == 400 and "prefix" not in azure.modes
    assert clouds.advisors() == ("azure", "aws") and clouds.advisor("aws").OPTIONS[0].flag == "--instance-type"


@pytest.mark.parametrize("args,mode,ruled_out", [
    ([], "prefix", {"nat"}),
    (["--vms-per-host", "17"], "routed", {"nat", "prefix"}),  # a /28 holds 16
    (["--vms-per-host", "17", "--hosts", "51"], "secondary-ip", {"nat", "prefix", "routed"}),  # 51 > 50 routes
    (["--vms-per-host", "17", "--hosts", "51", "--instance-type", "t3.micro"], None, set(MODES)),  # 2 per ENI
    (["--vms-per-host", "17", "--hosts", "51", "--max-routes", "400"], "routed", {"nat", "prefix"}),
])
def test_the_cli_gives_ec2s_modes_and_limits(args, mode, ruled_out):
    r = subprocess.run([sys.executable, "-m", "nestnet", "advise", "--cloud", "aws", *args, "--json"],
                       capture_output=True, text=True)
    assert r.returncode == (0 if mode else 1), r.stderr
    d = json.loads(r.stdout)
    assert d["mode"] == mode and list(d["modes"]) == list(MODES)
    assert {m for m, v in d["modes"].items() if not v["fits"]} == ruled_out
    assert d["needs"]["max_routes"] == (400 if "--max-routes" in args else 50)


def test_the_help_lists_each_clouds_modes_and_options():
    r = subprocess.run([sys.executable, "-m", "nestnet", "advise", "--help"], capture_output=True, text=True)
    text = " ".join(r.stdout.split())  # as click wrapped it
    assert r.returncode == 0
    assert "--cloud [azure|aws]" in text and "(aws: prefix, routed, secondary-ip, nat; --max-routes default 50)" in text
    assert "--instance-type TYPE aws: the hosts' instance type, for the addresses per ENI (default c8i.large)" in text
