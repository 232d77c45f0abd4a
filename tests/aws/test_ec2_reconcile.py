"""`aws diff/apply` semantics through boto3 over HTTPS against the emulator: converges, a second
apply writes nothing, foreign routes/prefixes/addresses survive, limits before any write, EC2's
errors as one line."""

from __future__ import annotations

import pytest

from aws_helpers import make_vpc, plan_for, seed_data
from nestnet.clouds.aws.ec2 import AwsError, Ec2Client
from nestnet.clouds.aws.reconcile import apply, plan_changes
from nestnet.errors import UsageError


def converge(client, want):
    obs, changes = plan_changes(client, want)
    out = apply(client, want, obs, changes)
    return changes, out


def eni_state(c, eni):
    ni = c.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    return ([p["Ipv4Prefix"] for p in ni.get("Ipv4Prefixes", [])],
            sorted(a["PrivateIpAddress"] for a in ni["PrivateIpAddresses"] if not a["Primary"]), ni["SourceDestCheck"])


def table_routes(c, table):
    rt = c.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]
    return {r["DestinationCidrBlock"]: r.get("NetworkInterfaceId") or r.get("GatewayId") for r in rt["Routes"]}


def test_prefix_mode_converges_and_a_second_apply_writes_nothing(ec2, tmp_path):
    c = ec2.client()
    v = make_vpc(c)
    c.assign_private_ip_addresses(NetworkInterfaceId=v.enis["vme-kvm-vm1"], Ipv4Prefixes=["10.0.1.96/28"])  # stale, inside the pool: nestnet's
    want = plan_for(tmp_path, "prefix")
    client = Ec2Client("us-east-1", ec2.env())
    changes, out = converge(client, want)
    assert [str(x.action) for x in changes] == ["unassign-prefix", "assign-prefix", "assign-prefix"]
    assert eni_state(c, v.enis["vme-kvm-vm1"])[0] == ["10.0.1.16/28"]
    assert eni_state(c, v.enis["vme-kvm-vm2"])[0] == ["10.0.1.48/28"]
    assert eni_state(c, v.enis["vme-kvm-vm1"])[2] is True  # the check stays on: prefixes pass it
    assert out.writes == 3
    before = ec2.stats()["writes"]
    changes, out = converge(client, want)
    assert changes == [] and out.writes == 0 and ec2.stats()["writes"] == before


def test_foreign_prefixes_addresses_and_routes_survive(ec2, tmp_path):
    c = ec2.client()
    v = make_vpc(c, subnets={"vm-subnet": "10.0.1.0/24", "mgmt-subnet": "10.0.2.0/24", "other": "10.0.3.0/24"})
    one = v.enis["vme-kvm-vm1"]
    other = c.create_network_interface(SubnetId=v.subnets["other"], PrivateIpAddress="10.0.3.5")["NetworkInterface"]
    other = other["NetworkInterfaceId"]
    c.assign_private_ip_addresses(NetworkInterfaceId=other, Ipv4Prefixes=["10.0.3.16/28"])  # not a host's ENI
    c.assign_private_ip_addresses(NetworkInterfaceId=one, PrivateIpAddresses=["10.0.1.200"])  # outside the pool
    c.create_route(RouteTableId=v.table, DestinationCidrBlock="198.51.100.0/24", NetworkInterfaceId=one)
    data = seed_data("prefix")
    data["nested"]["pool"] = "10.0.1.0/25"  # the pool is nestnet's; 10.0.1.200 is not in it
    want = plan_for(tmp_path, "prefix", data)
    client = Ec2Client("us-east-1", ec2.env())
    converge(client, want)
    assert eni_state(c, one)[:2] == (["10.0.1.16/28"], ["10.0.1.200"])
    assert eni_state(c, other)[0] == ["10.0.3.16/28"]
    assert table_routes(c, v.table)["198.51.100.0/24"] == one


def test_routed_mode_routes_every_source_table_and_turns_the_check_off(ec2, tmp_path):
    c = ec2.client()
    v = make_vpc(c)
    mgmt_rt = c.create_route_table(VpcId=v.vpc, TagSpecifications=[
        {"ResourceType": "route-table", "Tags": [{"Key": "Name", "Value": "mgmt-rt"}]}])["RouteTable"]["RouteTableId"]
    c.associate_route_table(RouteTableId=mgmt_rt, SubnetId=v.subnets["mgmt-subnet"])
    aws = {"region": "us-east-1", "vpc": "vme-vpc", "cidr_blocks": ["10.0.0.0/16"],
           "route_tables": {"vm-subnet": "vme-rt", "mgmt-subnet": "mgmt-rt"}}
    want = plan_for(tmp_path, "routed", aws=aws)
    client = Ec2Client("us-east-1", ec2.env())
    changes, out = converge(client, want)
    for t in (v.table, mgmt_rt):
        r = table_routes(c, t)
        assert r["100.64.0.16/28"] == v.enis["vme-kvm-vm1"] and r["100.64.0.48/28"] == v.enis["vme-kvm-vm2"]
    assert eni_state(c, v.enis["vme-kvm-vm1"])[2] is False and eni_state(c, v.enis["vme-kvm-vm2"])[2] is False
    assert out.writes == 6  # 4 routes, 2 checks
    assert converge(client, want)[1].writes == 0


def test_a_moved_block_is_freed_before_it_is_taken(ec2, tmp_path):
    c = ec2.client()
    v = make_vpc(c)
    client = Ec2Client("us-east-1", ec2.env())
    converge(client, plan_for(tmp_path, "prefix"))
    data = seed_data("prefix")
    data["hosts"][0]["block"], data["hosts"][1]["block"] = "10.0.1.48/28", "10.0.1.16/28"
    data["vms"][0]["ip"], data["vms"][1]["ip"] = "10.0.1.50", "10.0.1.20"
    changes, out = converge(client, plan_for(tmp_path, "prefix", data))
    assert [x.action for x in changes] == ["unassign-prefix"] * 2 + ["assign-prefix"] * 2
    assert eni_state(c, v.enis["vme-kvm-vm1"])[0] == ["10.0.1.48/28"]
    assert eni_state(c, v.enis["vme-kvm-vm2"])[0] == ["10.0.1.16/28"]


def test_limits_are_checked_before_any_write(ec2, tmp_path):
    c = ec2.client()
    make_vpc(c, instance_type="t3.micro")  # 2 addresses per ENI: the primary and one
    client = Ec2Client("us-east-1", ec2.env())
    data = seed_data("secondary-ip")
    data["vms"].append({"name": "web3", "host": "vme-kvm-vm1", "ip": "10.0.1.21"})
    want = plan_for(tmp_path, "secondary-ip", data)
    before = ec2.stats()["writes"]
    with pytest.raises(UsageError, match="over EC2's limits, nothing changed.*would hold 3"):
        plan_changes(client, want)
    assert ec2.stats()["writes"] == before
    c2 = ec2.client()
    aws = {"region": "us-east-1", "vpc": "vme-vpc", "cidr_blocks": ["10.0.0.0/16"],
           "route_tables": {"vm-subnet": "vme-rt"}, "max_routes": 1}
    with pytest.raises(UsageError, match="would hold 2 routes, over aws.max_routes 1"):
        plan_changes(client, plan_for(tmp_path, "routed", aws=aws))
    assert ec2.stats()["writes"] == before and c2


def test_the_spec_must_match_ec2(ec2, tmp_path):
    make_vpc(ec2.client(), hosts={"vme-kvm-vm1": ("vm-subnet", "10.0.1.10"), "vme-kvm-vm2": ("vm-subnet", "10.0.1.99")})
    client = Ec2Client("us-east-1", ec2.env())
    with pytest.raises(UsageError, match="host 'vme-kvm-vm2' has ip 10.0.1.11 in the spec but its ENI .* 10.0.1.99"):
        plan_changes(client, plan_for(tmp_path, "prefix"))
    aws = {"region": "us-east-1", "vpc": "vme-vpc", "cidr_blocks": ["10.1.0.0/16"]}
    with pytest.raises(UsageError, match="aws.cidr_blocks is 10.1.0.0/16 but VPC vpc-.* has 10.0.0.0/16"):
        plan_changes(client, plan_for(tmp_path, "prefix", aws=aws))
    with pytest.raises(UsageError, match="aws.vpc 'nope': no VPC"):
        plan_changes(client, plan_for(tmp_path, "prefix", aws={**aws, "vpc": "nope"}))


def test_a_route_held_by_another_target_is_refused(ec2, tmp_path):
    c = ec2.client()
    v = make_vpc(c)
    other = c.create_network_interface(SubnetId=v.subnets["mgmt-subnet"])["NetworkInterface"]["NetworkInterfaceId"]
    c.attach_network_interface(NetworkInterfaceId=other, InstanceId=v.instances["vme-kvm-vm1"], DeviceIndex=1)
    c.create_route(RouteTableId=v.table, DestinationCidrBlock="100.64.0.16/28", NetworkInterfaceId=other)
    client = Ec2Client("us-east-1", ec2.env())
    with pytest.raises(AwsError, match="route 100.64.0.16/28 in rtb-.* goes to eni-.*not nestnet's"):
        plan_changes(client, plan_for(tmp_path, "routed"))
    assert table_routes(c, v.table)["100.64.0.16/28"] == other


def test_throttling_is_retried_and_a_refusal_is_one_line(ec2, tmp_path):
    make_vpc(ec2.client())
    want = plan_for(tmp_path, "prefix")
    ec2.inject({"throttle": 0.4}, seed=7)
    client = Ec2Client("us-east-1", ec2.env())
    converge(client, want)
    assert ec2.stats()["injected"]["throttle"] > 0
    assert converge(client, want)[1].writes == 0
    ec2.inject({"throttle": 1.0})
    with pytest.raises(AwsError) as e:
        plan_changes(Ec2Client("us-east-1", ec2.env(NESTNET_AWS_MAX_ATTEMPTS="2")), want)
    assert e.value.exit_code == 3 and "RequestLimitExceeded" in str(e.value) and "\n" not in str(e.value)


def test_another_writer_between_read_and_write_loses_nothing(ec2, tmp_path):
    c = ec2.client()
    v = make_vpc(c)
    ec2.inject({"writer": 1.0})
    client = Ec2Client("us-east-1", ec2.env())
    converge(client, plan_for(tmp_path, "routed"))
    ec2.inject({"writer": 0.0})
    routes = table_routes(c, v.table)
    assert routes["100.64.0.16/28"] == v.enis["vme-kvm-vm1"]
    assert sum(1 for d in routes if d.startswith("203.0.113.")) == ec2.stats()["writer"]["foreign_route"] >= 1
    assert converge(client, plan_for(tmp_path, "routed"))[1].writes == 0


def test_secondary_ip_mode_converges_and_frees_before_it_takes(ec2, tmp_path):
    c = ec2.client()
    v = make_vpc(c)
    client = Ec2Client("us-east-1", ec2.env())
    converge(client, plan_for(tmp_path, "secondary-ip"))
    assert eni_state(c, v.enis["vme-kvm-vm1"])[1] == ["10.0.1.20"]
    assert eni_state(c, v.enis["vme-kvm-vm2"])[1] == ["10.0.1.50"]
    data = seed_data("secondary-ip")
    # The blocks swap hosts: each address leaves its ENI before the other ENI takes it.
    data["hosts"][0]["block"], data["hosts"][1]["block"] = "10.0.1.48/28", "10.0.1.16/28"
    data["vms"][0]["ip"], data["vms"][1]["ip"] = "10.0.1.50", "10.0.1.20"
    changes, out = converge(client, plan_for(tmp_path, "secondary-ip", data))
    assert [x.action for x in changes] == ["unassign-ip"] * 2 + ["assign-ip"] * 2
    assert eni_state(c, v.enis["vme-kvm-vm1"])[1] == ["10.0.1.50"]
    assert eni_state(c, v.enis["vme-kvm-vm2"])[1] == ["10.0.1.20"]
    assert converge(client, plan_for(tmp_path, "secondary-ip", data))[1].writes == 0


def test_a_bad_attempts_variable_is_bad_input(ec2):
    with pytest.raises(UsageError, match="NESTNET_AWS_MAX_ATTEMPTS.*'0'.*1 to 50"):
        Ec2Client("us-east-1", ec2.env(NESTNET_AWS_MAX_ATTEMPTS="0"))


@pytest.mark.parametrize("mode", ["prefix", "routed", "secondary-ip"])
def test_import_reads_back_what_apply_wrote(ec2, tmp_path, mode):
    from nestnet.clouds.aws.importer import spec_from
    from nestnet.clouds.aws.reconcile import observe_vpc

    make_vpc(ec2.client())
    client = Ec2Client("us-east-1", ec2.env())
    want = plan_for(tmp_path, mode)
    converge(client, want)
    before = ec2.stats()["writes"]
    data = spec_from(observe_vpc(client, "vme-vpc"), "us-east-1", "vme-vpc")
    assert ec2.stats()["writes"] == before
    assert data["nested"]["mode"] == mode and data["aws"]["instance_type"] == "c8i.large"
    hosts = {h["name"]: (h["ip"], h["nic"], h["block"]) for h in data["hosts"]}
    blocks = {"prefix": ("10.0.1.16/28", "10.0.1.48/28"), "routed": ("100.64.0.16/28", "100.64.0.48/28"),
              "secondary-ip": ("10.0.1.16/28", "10.0.1.48/28")}[mode]
    assert hosts == {"vme-kvm-vm1": ("10.0.1.10", "vme-kvm-vm1-eni", blocks[0]),
                     "vme-kvm-vm2": ("10.0.1.11", "vme-kvm-vm2-eni", blocks[1])}
    assert data["aws"]["route_tables"] == {"mgmt-subnet": "vme-rt", "vm-subnet": "vme-rt"}
    if mode == "secondary-ip":
        assert sorted(v["ip"] for v in data["vms"]) == ["10.0.1.20", "10.0.1.50"]


def test_import_of_an_empty_vpc_is_one_line(ec2):
    from nestnet.clouds.aws.importer import spec_from
    from nestnet.clouds.aws.reconcile import observe_vpc

    make_vpc(ec2.client())
    client = Ec2Client("us-east-1", ec2.env())
    with pytest.raises(UsageError, match="nothing to import"):
        spec_from(observe_vpc(client, "vme-vpc"), "us-east-1", "vme-vpc")
