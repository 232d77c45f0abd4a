"""AWS's data plane in the model (`check`): every pair healthy in prefix and routed mode, the VPC
router's failures with EC2's words and fixes, and the model fed what the emulator holds (through
boto3) agreeing with the plan once `aws apply` is done, and failing as EC2 would before it.

Needs the cloud seam's typed pieces (Azure's rules as a mixin; specs with `aws:`): skipped on a
tree without them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

pytest.importorskip("nestnet.clouds.azure.rules", reason="the cloud seam's rules mixin is not on this tree")
if "'prefix'" not in str(__import__("nestnet.spec", fromlist=["NestedSpec"]).NestedSpec.model_fields["mode"].annotation):
    pytest.skip("nested.mode does not take 'prefix' on this tree yet", allow_module_level=True)

from aws_helpers import example_file, make_vpc  # noqa: E402
from nestnet.clouds.aws.cloud import aws_of  # noqa: E402
from nestnet.clouds.aws.dataplane import observed_state  # noqa: E402
from nestnet.clouds.aws.ec2 import Ec2Client  # noqa: E402
from nestnet.clouds.aws.reconcile import apply, observe, plan_changes  # noqa: E402

PREFIX = Path(__file__).parents[2] / "examples" / "aws.yaml"
NODES = ("vme-kvm-vm1", "vme-kvm-vm2", "web1", "web2", "mgmt-vm")


def spec(tmp_path: Path, mode: str) -> Path:
    return example_file(tmp_path, mode, f"aws-{mode}")


def verdicts(state) -> dict[tuple[str, str], object]:
    from nestnet.model.engine import model_class

    m = model_class("aws")
    return {(a, b): m(state).ping(a, b) for a in NODES for b in NODES if a != b}


def load(path: Path):
    from nestnet.model.state import from_plan
    from nestnet.plan import load_plan

    plan = load_plan(path)
    return plan, from_plan(plan)


@pytest.mark.parametrize("mode", ["prefix", "routed"])
def test_every_pair_is_healthy_as_planned(tmp_path, mode):
    _, state = load(spec(tmp_path, mode))
    assert state.cloud.cloud == "aws"
    bad = {k: v.reason for k, v in verdicts(state).items() if not v.ok}
    assert bad == {}


def test_the_source_dest_check_on_drops_what_a_host_forwards(tmp_path):
    from nestnet.faults import parse_fault
    from nestnet.model.whatif import apply_faults

    plan, state = load(spec(tmp_path, "routed"))
    broken = apply_faults(state, [parse_fault("src-dst-check-on:vme-kvm-vm1", plan)])
    v = verdicts(broken)
    failed = sorted(k for k, r in v.items() if not r.ok)
    assert failed == sorted([(s, "web1") for s in ("vme-kvm-vm2", "web2", "mgmt-vm")] +
                            [("web1", d) for d in ("vme-kvm-vm2", "web2", "mgmt-vm")])
    r = v[("mgmt-vm", "web1")]
    assert r.dies_at == "aws:vme-kvm-vm1-eni" and "source/destination check is on" in r.reason
    assert "--no-source-dest-check" in r.fix and "Azure" not in r.reason


@pytest.mark.parametrize("mode", ["prefix", "routed"])
def test_what_ec2_holds_is_what_the_model_walks(ec2, tmp_path, mode):
    path = spec(tmp_path, mode)
    plan, state = load(path)
    make_vpc(ec2.client())
    client = Ec2Client("us-east-1", ec2.env())
    want = aws_of(plan)
    before = verdicts(replace(state, cloud=observed_state(plan, observe(client, want))))
    # Nothing applied yet: every pair to or from a nested VM dies in the VPC (prefix missing,
    # no route, the check on), as EC2 would drop it.
    dead = {k for k, r in before.items() if not r.ok}
    assert dead == {(a, b) for a in NODES for b in NODES if a != b and ({a, b} & {"web1", "web2"})
                    and not ({a, b} == {"web1", "vme-kvm-vm1"} or {a, b} == {"web2", "vme-kvm-vm2"})}
    r = before[("mgmt-vm", "web1")]
    assert r.dies_at.startswith("aws:") and "nestnet aws apply" in r.fix
    obs, changes = plan_changes(client, want)
    apply(client, want, obs, changes)
    after = verdicts(replace(state, cloud=observed_state(plan, observe(client, want))))
    assert {k: r.ok for k, r in after.items()} == {k: r.ok for k, r in verdicts(state).items()}
    assert all(r.ok for r in after.values())


@pytest.mark.parametrize("mode", ["prefix", "routed"])
def test_an_imported_spec_diffs_clean(ec2, tmp_path, mode):
    from nestnet.clouds.aws.importer import import_text
    from nestnet.clouds.aws.reconcile import observe_vpc
    from nestnet.plan import load_plan

    plan, _ = load(spec(tmp_path, mode))
    make_vpc(ec2.client())
    client = Ec2Client("us-east-1", ec2.env())
    want = aws_of(plan)
    obs, changes = plan_changes(client, want)
    apply(client, want, obs, changes)
    out = tmp_path / "imported.yaml"
    out.write_text(import_text(observe_vpc(client, "vme-vpc"), "us-east-1", "vme-vpc"))
    assert plan_changes(client, aws_of(load_plan(out)))[1] == []


@pytest.mark.parametrize("seed", range(6))
def test_randomised_ec2_breakage_is_what_the_whatif_model_says(ec2, tmp_path, seed):
    """A random set of AWS fault kinds made for real in EC2 through boto3 (a host's prefix
    unassigned; its route deleted, or pointed at an ENI that is then deleted, a blackhole; its
    source/destination check back on; a subnet left to the VPC's main route table), read back
    through `observed_state`, gives pair for pair the verdicts of the planned state with the
    matching what-ifs (no-eni-prefix, no-route, route-blackhole, src-dst-check-on,
    main-route-table)."""
    import random

    from nestnet.faults import parse_fault
    from nestnet.model.whatif import apply_faults

    rng = random.Random(seed)
    mode = rng.choice(["prefix", "routed"])
    plan, state = load(spec(tmp_path, mode))
    c = ec2.client()
    v = make_vpc(c)
    client = Ec2Client("us-east-1", ec2.env())
    want = aws_of(plan)
    obs, changes = plan_changes(client, want)
    apply(client, want, obs, changes)
    faults = []
    for host in ("vme-kvm-vm1", "vme-kvm-vm2"):
        eni, block = v.enis[host], str(plan.hosts[host].block)
        kinds = ["no-eni-prefix", "src-dst-check-on"] if mode == "prefix" else \
            [rng.choice(["no-route", "route-blackhole"]), "src-dst-check-on"]
        for kind in kinds:
            if rng.random() < 0.5:
                continue
            faults.append(parse_fault(f"{kind}:{host}", plan))
            if kind == "no-eni-prefix":
                c.unassign_private_ip_addresses(NetworkInterfaceId=eni, Ipv4Prefixes=[block])
            elif kind == "no-route":
                c.delete_route(RouteTableId=v.table, DestinationCidrBlock=block)
            elif kind == "route-blackhole":  # the route's ENI replaced by one that is then deleted
                gone = c.create_network_interface(SubnetId=v.subnets["vm-subnet"])["NetworkInterface"]
                c.replace_route(RouteTableId=v.table, DestinationCidrBlock=block,
                                NetworkInterfaceId=gone["NetworkInterfaceId"])
                c.delete_network_interface(NetworkInterfaceId=gone["NetworkInterfaceId"])
            else:
                c.modify_network_interface_attribute(NetworkInterfaceId=eni, SourceDestCheck={"Value": True})
    if mode == "routed" and rng.random() < 0.3:
        faults.append(parse_fault("main-route-table:mgmt-subnet", plan))
        assoc = next(a["RouteTableAssociationId"] for t in c.describe_route_tables(RouteTableIds=[v.table])["RouteTables"]
                     for a in t["Associations"] if a.get("SubnetId") == v.subnets["mgmt-subnet"])
        c.disassociate_route_table(AssociationId=assoc)
    seen = verdicts(replace(state, cloud=observed_state(plan, observe(client, want))))
    said = verdicts(apply_faults(state, faults))
    assert {k: r.ok for k, r in seen.items()} == {k: r.ok for k, r in said.items()}, [str(f) for f in faults]
    assert {k: r.dies_at for k, r in seen.items()} == {k: r.dies_at for k, r in said.items()}


def test_check_takes_aws_kinds_and_refuses_what_the_mode_lacks():
    """`check --fault` on an AWS spec lists AWS's kinds (not Azure's) and refuses a kind that means
    nothing in the spec's mode with one line, exit 2."""
    import subprocess
    import sys

    def check(*faults: str) -> subprocess.CompletedProcess[str]:
        args = [a for f in faults for a in ("--fault", f)]
        return subprocess.run([sys.executable, "-m", "nestnet", "check", str(PREFIX), *args],
                              capture_output=True, text=True, timeout=120)

    r = check("nic-forwarding-off:vme-kvm-vm1")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "expected one of src-dst-check-on:HOST, no-eni-prefix:HOST, no-route:HOST, route-blackhole:HOST, " \
           "main-route-table:SUBNET, ip-forward-off:HOST" in r.stderr
    r = check("route-blackhole:vme-kvm-vm1")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "means nothing in nested.mode prefix" in r.stderr and "only in routed mode" in r.stderr
    r = check("no-eni-prefix:vme-kvm-vm1")
    assert r.returncode == 1 and "web1" in r.stdout


def test_a_blackholed_route_wins_and_drops_where_a_missing_one_falls_through(tmp_path):
    """route-blackhole is not no-route: the blackhole still matches (the drop is at the route),
    a missing route lets the destination fall to the next match."""
    from nestnet.faults import parse_fault
    from nestnet.model.whatif import apply_faults

    plan, state = load(spec(tmp_path, "routed"))
    hole = verdicts(apply_faults(state, [parse_fault("route-blackhole:vme-kvm-vm1", plan)]))[("mgmt-vm", "web1")]
    gone = verdicts(apply_faults(state, [parse_fault("no-route:vme-kvm-vm1", plan)]))[("mgmt-vm", "web1")]
    assert not hole.ok and hole.dies_at == "aws:vme-rt:100.64.0.16/28" and "blackhole" in hole.reason
    assert not gone.ok and gone.dies_at != hole.dies_at


def _internet(tmp_path, mode: str, internet: dict | None, public: list[str] | None = None, faults: tuple[str, ...] = ()):
    from nestnet.faults import parse_fault
    from nestnet.model.whatif import apply_faults

    data = yaml.safe_load(spec(tmp_path, mode).read_text())
    data["aws"].pop("internet", None)
    if internet is not None:
        data["aws"]["internet"] = internet
    if public:
        data["aws"]["public_ips"] = public
    p = tmp_path / "internet.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    plan, state = load(p)
    from nestnet.model.engine import model_class

    m = model_class("aws")(apply_faults(state, [parse_fault(f, plan) for f in faults]))
    return {n: m.ping(n, "internet") for n in NODES}


@pytest.mark.parametrize("mode", ["prefix", "routed"])
def test_no_internet_without_a_nat_or_internet_gateway(tmp_path, mode):
    """EC2 gives no default outbound access: a subnet whose route table has no route to an internet
    or NAT gateway (not named in aws.internet) reaches nothing outside."""
    v = _internet(tmp_path, mode, None)
    assert not any(r.ok for r in v.values())
    assert v["web1"].dies_at == "aws:vm-subnet" and "no route to an internet or NAT gateway" in v["web1"].reason
    assert "aws.internet.vm-subnet" in v["web1"].fix


@pytest.mark.parametrize("mode", ["prefix", "routed"])
def test_an_internet_gateway_takes_only_primary_addresses_with_a_public_ip(tmp_path, mode):
    """Behind an internet gateway only an ENI whose primary address has a public IPv4 address gets
    out (1:1): vme-kvm-vm1 and its VMs (masqueraded to its address) do, vme-kvm-vm2 has no public
    IP, and mgmt-vm behind a NAT gateway gets out without one."""
    v = _internet(tmp_path, mode, {"vm-subnet": "internet-gateway", "mgmt-subnet": "nat-gateway"}, ["vme-kvm-vm1"])
    assert {n: r.ok for n, r in v.items()} == {"vme-kvm-vm1": True, "web1": True, "vme-kvm-vm2": False,
                                                "web2": False, "mgmt-vm": True}
    assert "internet gateway translates only addresses with a public IPv4 address" in v["web2"].reason
    assert "aws.public_ips" in v["vme-kvm-vm2"].fix


def test_an_internet_gateway_does_not_translate_a_vms_own_address(tmp_path):
    """Even a prefix address (the ENI's own) does not leave by the internet gateway: its public IP
    is on the primary address only, so a host that stops masquerading cuts its VMs off."""
    v = _internet(tmp_path, "prefix", {"vm-subnet": "internet-gateway"}, ["vme-kvm-vm1"], ("no-masquerade:vme-kvm-vm1",))
    assert v["vme-kvm-vm1"].ok and not v["web1"].ok
    assert "translates only 10.0.1.10" in v["web1"].reason and "masquerade" in v["web1"].fix
    nat = _internet(tmp_path, "prefix", {"vm-subnet": "nat-gateway"}, None, ("no-masquerade:vme-kvm-vm1",))
    assert nat["web1"].ok  # a NAT gateway translates the ENI's prefix addresses too


@pytest.mark.parametrize("key,value,where", [
    ("internet", {"nosuch": "nat-gateway"}, "aws.internet.nosuch"),
    ("internet", {"vm-subnet": "egress-only"}, "aws.internet.vm-subnet"),
    ("public_ips", ["nosuch"], "aws.public_ips[0]"),
])
def test_bad_internet_keys_are_one_line(tmp_path, key, value, where):
    import subprocess
    import sys

    data = yaml.safe_load(PREFIX.read_text())
    data["aws"][key] = value
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    r = subprocess.run([sys.executable, "-m", "nestnet", "validate", str(p)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and where in r.stderr and r.stderr.count("\n") == 1, r.stderr


@pytest.mark.parametrize("mode", ["prefix", "routed"])
def test_check_tells_hosts_with_a_public_ip_from_those_without(tmp_path, mode):
    """`check` traces one pair per class: a host with a public IP behind an internet gateway is not
    in its peer's class (once it was, and check let vme-kvm-vm2 and web2 out as vme-kvm-vm1 is)."""
    from nestnet.model.classes import reachability
    from nestnet.model.engine import model_class

    data = yaml.safe_load(spec(tmp_path, mode).read_text())
    data["aws"]["internet"], data["aws"]["public_ips"] = {"vm-subnet": "internet-gateway"}, ["vme-kvm-vm1"]
    p = tmp_path / "public.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    _, state = load(p)
    m = model_class("aws")(state)
    brute = {(a, b): m.ping(a, b).ok for a in NODES for b in (*NODES, "internet") if a != b}
    got = {(r.src, r.dst): r.ok for r in reachability(state).pairs(include_ok=True)}
    assert got == brute and not brute[("vme-kvm-vm2", "internet")] and brute[("vme-kvm-vm1", "internet")]
