"""The doctor on live lab hosts: each host-side fault is named and the failing pairs it reports are
exactly the ones the lab's real pings fail (of those involving the host); healed, it is healthy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nestnet import doctor
from nestnet.faults import Fault
from nestnet.netns import run_in

from .conftest import spec, write

lab = pytest.importorskip("nestnet.lab")
from nestnet.lab.core import host_dirs
from nestnet.lab.topology import Topology

pytestmark = pytest.mark.root

FAULTS = [
    ("ip-forward-off", "ip_forward is 0"),
    ("no-host-routes", "host route missing"),
    ("firewall-deny-routed", "has policy drop"),
    ("rp-filter-strict", "rp_filter is 1 (strict)"),
    ("no-proxy-arp", "proxy_arp is 0 on"),
    ("no-masquerade", "masquerade rule is missing"),
]


def _up(tmp: Path, style: str) -> Iterator[tuple[Path, object]]:
    path, plan = write(tmp, spec(style))
    try:
        lab.up(plan)
        yield path, plan
    finally:
        lab.down(plan)


@pytest.fixture(scope="module")
def subnet_lab(tmp_path_factory) -> Iterator[tuple[Path, object]]:
    # subnet style: the only style where no-proxy-arp breaks pairs (onlink guests need no proxy ARP)
    yield from _up(tmp_path_factory.mktemp("doc"), "subnet")


@pytest.fixture
def onlink_lab(tmp_path: Path) -> Iterator[tuple[Path, object]]:
    yield from _up(tmp_path, "onlink")


def _diagnose(plan, host: str) -> doctor.Diagnosis:
    return run_in(Topology.from_plan(plan).ns(host), doctor.run, plan, host, host_dirs(plan, host)[0])


@pytest.mark.parametrize("kind, needle", FAULTS, ids=[k for k, _ in FAULTS])
def test_fault_named_and_pairs_match_the_lab(subnet_lab, kind: str, needle: str) -> None:
    _, plan = subnet_lab
    mine = {"h1", *plan.hosts["h1"].vms}
    lab.apply_fault(plan, Fault(kind, "h1"))
    try:
        d = _diagnose(plan, "h1")
        real = {(p.src, p.dst) for p in lab.matrix(plan) if not p.ok and {p.src, p.dst} & mine}
    finally:
        lab.heal(plan)
    assert any(needle in f for f in d.findings), d.findings
    if kind == "rp-filter-strict":
        # Routes are symmetric here, so strict rp_filter breaks no pair (tests/lab/test_faults agrees):
        # the doctor must still name it, and invent no failure.
        assert not real and not d.pairs
    else:
        assert real, f"{kind} broke no pair in the lab: this test would prove nothing"
    # A pair the doctor calls intermittent (an ARP race: with h1's block route gone, h1 answers
    # v1's ARP for v1b by proxy, and so does v1b) may go either way in the lab: compared are the
    # pairs whose verdict is certain, and which pairs are racy is itself asserted.
    racy = {(p.src, p.dst) for p in d.pairs if p.intermittent}
    assert racy == ({("v1", "v1b"), ("v1b", "v1")} if kind == "no-host-routes" else set()), d.pairs
    assert all(j["intermittent"] for j in d.to_dict()["pairs"] if (j["src"], j["dst"]) in racy)
    seen = {(p.src, p.dst) for p in d.pairs} - racy
    real -= racy
    assert seen == real, f"doctor only {sorted(seen - real)}, lab only {sorted(real - seen)}"
    healed = _diagnose(plan, "h1")
    assert healed.healthy, (healed.findings, healed.pairs, healed.drift)


def _cli(path: Path, plan, host: str, *args: str) -> subprocess.CompletedProcess:
    # no --root: `lab exec` tells nestnet where the lab host's files are (NESTNET_ROOT)
    argv = [sys.executable, "-m", "nestnet", "doctor", str(path), *args]
    return lab.exec_(plan, host, argv)


def test_cli_in_a_lab_host_finds_itself(onlink_lab) -> None:
    path, plan = onlink_lab
    r = _cli(path, plan, "h2", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["host"] == "h2" and out["healthy"] and out["pairs"] == [] and out["drift"] == []
    assert out["observed"]["ip_forward"] == 1 and out["observed"]["nft"]["nestnet_forward_chain"]

    lab.apply_fault(plan, Fault("ip-forward-off", "h2"))
    r = _cli(path, plan, "h2")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "ip_forward is 0" in r.stdout and r.stdout.count("FAIL ") == 1  # one cause, one line (issue 23)
    assert "FAIL 9 pairs: h1, v1, v1b and 1 more → v2; v2 → h1, v1, v1b and 2 more" in r.stdout, r.stdout
    assert "sysctl set net.ipv4.ip_forward (0 -> 1)" in r.stdout  # the drift: what host apply would do
    assert "probe" not in r.stdout  # a ping: the output it always had
    r = _cli(path, plan, "h2", "--probe", "tcp/22")  # a host that does not forward drops TCP as well
    assert r.returncode == 1, r.stdout + r.stderr  # the same 9 pairs (mgmt among them: "and 1 more")
    assert "FAIL 9 pairs: h1, v1, v1b and 1 more → v2; v2 → h1, v1, v1b and 2 more" in r.stdout, r.stdout
    assert " pairs involving h2 or its VMs ok (probe tcp/22)" in r.stdout, r.stdout
    r = _cli(path, plan, "h2", "--probe", "tcp/22x")
    assert r.returncode == 2 and r.stderr.splitlines() == ["error: --probe tcp/22x: tcp needs a port 1-65535 "
                                                           "(expected tcp/PORT, e.g. tcp/22)"], r.stderr
    # the doctor writes nothing: still broken
    assert lab.exec_(plan, "h2", ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "0"

    lab.heal(plan)
    assert _cli(path, plan, "h2").returncode == 0


def test_azure_read_through_the_labs_arm_api(tmp_path: Path) -> None:
    from nestnet.lab.core import arm_env

    path, plan = write(tmp_path, spec("onlink"))
    try:
        lab.up(plan, azure="api")  # Azure starts empty, as Terraform leaves it
        env = ["env", *(f"{k}={v}" for k, v in arm_env(plan).items())]
        doc = [*env, sys.executable, "-m", "nestnet", "doctor", str(path), "--root", host_dirs(plan, "h1")[0],
               "--azure", "--json"]
        r = lab.exec_(plan, "h1", doc)
        assert r.returncode == 1, r.stdout + r.stderr
        out = json.loads(r.stdout)
        assert "Azure NIC h1-nic: IP forwarding is off → `nestnet azure apply`" in out["findings"]
        assert out["observed"]["azure"]["user_routes"] == []
        mine = {"h1", *plan.hosts["h1"].vms}
        real = {(p.src, p.dst) for p in lab.matrix(plan) if not p.ok and {p.src, p.dst} & mine}
        assert {(p["src"], p["dst"]) for p in out["pairs"]} == real and real

        apply = lab.exec_(plan, "h1", [*env, sys.executable, "-m", "nestnet", "azure", "apply", str(path)])
        assert apply.returncode == 0, apply.stdout + apply.stderr
        r = lab.exec_(plan, "h1", doc)
        assert r.returncode == 0 and json.loads(r.stdout)["healthy"], r.stdout + r.stderr
    finally:
        lab.down(plan)


def test_a_namespace_that_is_no_host_of_the_spec_is_bad_input(tmp_path: Path) -> None:
    from nestnet import netns

    path, _ = write(tmp_path, spec())
    ns = f"nndoc-none{os.getpid() % 100000}"
    netns.add(ns)
    try:
        r = netns.sh(ns, sys.executable, "-m", "nestnet", "doctor", str(path), check=False)
    finally:
        netns.delete(ns)
    assert r.returncode == 2 and "pass --host NAME" in r.stderr and "Traceback" not in r.stderr, r.stderr
