"""nestnet's EC2 emulator through plain boto3 over real HTTPS: what it adds to moto, as EC2 does it
(docs/decisions/0030-aws-emulator-fidelity.md), failures included."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from botocore.exceptions import ClientError

from aws_helpers import make_vpc



def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def prefixes(client, eni: str) -> list[str]:
    ni = client.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    return [p["Ipv4Prefix"] for p in ni.get("Ipv4Prefixes", [])]


def routes(client, table: str) -> dict[str, tuple[str | None, str]]:
    rt = client.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]
    return {r["DestinationCidrBlock"]: (r.get("NetworkInterfaceId") or r.get("GatewayId"), r["State"])
            for r in rt["Routes"] if "DestinationCidrBlock" in r}


def test_prefixes_are_stored_described_and_removed(ec2):
    c = ec2.client()
    v = make_vpc(c)
    eni = v.enis["vme-kvm-vm1"]
    out = c.assign_private_ip_addresses(NetworkInterfaceId=eni, Ipv4Prefixes=["10.0.1.16/28"])
    assert out["AssignedIpv4Prefixes"] == [{"Ipv4Prefix": "10.0.1.16/28"}]
    assert prefixes(c, eni) == ["10.0.1.16/28"]
    inst = c.describe_instances(InstanceIds=[v.instances["vme-kvm-vm1"]])["Reservations"][0]["Instances"][0]
    assert inst["NetworkInterfaces"][0]["Ipv4Prefixes"] == [{"Ipv4Prefix": "10.0.1.16/28"}]
    # A count picks free /28s clear of the subnet's reserved addresses, the hosts and the first prefix.
    got = c.assign_private_ip_addresses(NetworkInterfaceId=eni, Ipv4PrefixCount=1)["AssignedIpv4Prefixes"]
    assert got == [{"Ipv4Prefix": "10.0.1.32/28"}]
    c.unassign_private_ip_addresses(NetworkInterfaceId=eni, Ipv4Prefixes=["10.0.1.16/28"])
    assert prefixes(c, eni) == ["10.0.1.32/28"]
    with pytest.raises(ClientError) as e:
        c.unassign_private_ip_addresses(NetworkInterfaceId=eni, Ipv4Prefixes=["10.0.1.16/28"])
    assert code(e) == "InvalidParameterValue"


@pytest.mark.parametrize("prefix,why", [
    ("10.0.1.16/27", "not a /28"),
    ("10.0.2.16/28", "outside the ENI's subnet"),
    ("10.0.1.0/28", "holds the subnet's reserved addresses"),
    ("10.0.1.240/28", "holds the subnet's broadcast address"),
])
def test_bad_prefixes_are_refused(ec2, prefix, why):
    c = ec2.client()
    v = make_vpc(c)
    with pytest.raises(ClientError) as e:
        c.assign_private_ip_addresses(NetworkInterfaceId=v.enis["vme-kvm-vm1"], Ipv4Prefixes=[prefix])
    assert code(e) == "InvalidParameterValue", why
    assert prefixes(c, v.enis["vme-kvm-vm1"]) == []


def test_a_prefix_or_address_in_use_in_the_subnet_is_refused(ec2):
    c = ec2.client()
    v = make_vpc(c)
    one, two = v.enis["vme-kvm-vm1"], v.enis["vme-kvm-vm2"]
    c.assign_private_ip_addresses(NetworkInterfaceId=one, Ipv4Prefixes=["10.0.1.16/28"])
    with pytest.raises(ClientError) as e:
        c.assign_private_ip_addresses(NetworkInterfaceId=two, Ipv4Prefixes=["10.0.1.16/28"])
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        c.assign_private_ip_addresses(NetworkInterfaceId=two, PrivateIpAddresses=["10.0.1.20"])
    assert code(e) == "InvalidIPAddress.InUse"
    with pytest.raises(ClientError) as e:
        c.assign_private_ip_addresses(NetworkInterfaceId=two, PrivateIpAddresses=["10.0.1.10"])
    assert code(e) == "InvalidIPAddress.InUse"
    # What moto alone would have accepted did not happen.
    two_ips = c.describe_network_interfaces(NetworkInterfaceIds=[two])["NetworkInterfaces"][0]["PrivateIpAddresses"]
    assert [a["PrivateIpAddress"] for a in two_ips] == ["10.0.1.11"]


def test_addresses_per_eni_follow_the_instance_type(ec2):
    # t3.micro: 2 IPv4 addresses per interface (moto's copy of DescribeInstanceTypes), a prefix counting one.
    c = ec2.client()
    v = make_vpc(c, instance_type="t3.micro")
    eni = v.enis["vme-kvm-vm1"]
    c.assign_private_ip_addresses(NetworkInterfaceId=eni, Ipv4Prefixes=["10.0.1.16/28"])
    with pytest.raises(ClientError) as e:
        c.assign_private_ip_addresses(NetworkInterfaceId=eni, Ipv4Prefixes=["10.0.1.32/28"])
    assert code(e) == "PrivateIpAddressLimitExceeded"
    with pytest.raises(ClientError) as e:
        c.assign_private_ip_addresses(NetworkInterfaceId=eni, PrivateIpAddresses=["10.0.1.40"])
    assert code(e) == "PrivateIpAddressLimitExceeded"
    assert prefixes(c, eni) == ["10.0.1.16/28"]
    # c8i.large takes 20: the primary and 19 prefixes, not 20.
    big = make_vpc(c, instance_type="c8i.large", cidr="10.1.0.0/16", subnets={"vm-subnet": "10.1.0.0/22"},
                   hosts={"h": ("vm-subnet", "10.1.0.10")})
    c.assign_private_ip_addresses(NetworkInterfaceId=big.enis["h"], Ipv4PrefixCount=19)
    with pytest.raises(ClientError) as e:
        c.assign_private_ip_addresses(NetworkInterfaceId=big.enis["h"], Ipv4PrefixCount=1)
    assert code(e) == "PrivateIpAddressLimitExceeded"
    assert len(prefixes(c, big.enis["h"])) == 19


def test_routes_more_specific_than_local_must_match_a_subnet(ec2):
    c = ec2.client()
    v = make_vpc(c)
    eni = v.enis["vme-kvm-vm1"]
    with pytest.raises(ClientError) as e:  # Azure's per-host /28 inside the VPC: impossible on AWS
        c.create_route(RouteTableId=v.table, DestinationCidrBlock="10.0.1.16/28", NetworkInterfaceId=eni)
    assert code(e) == "InvalidParameterValue"
    igw = c.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    c.attach_internet_gateway(InternetGatewayId=igw, VpcId=v.vpc)
    with pytest.raises(ClientError) as e:  # a whole subnet, but to a gateway
        c.create_route(RouteTableId=v.table, DestinationCidrBlock="10.0.2.0/24", GatewayId=igw)
    assert code(e) == "InvalidParameterValue"
    c.create_route(RouteTableId=v.table, DestinationCidrBlock="10.0.2.0/24", NetworkInterfaceId=eni)
    c.create_route(RouteTableId=v.table, DestinationCidrBlock="100.64.0.16/28", NetworkInterfaceId=eni)
    c.create_route(RouteTableId=v.table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    assert set(routes(c, v.table)) == {"10.0.0.0/16", "10.0.2.0/24", "100.64.0.16/28", "0.0.0.0/0"}
    with pytest.raises(ClientError) as e:  # replacing with a target the rule refuses
        c.replace_route(RouteTableId=v.table, DestinationCidrBlock="10.0.2.0/24", GatewayId=igw)
    assert code(e) == "InvalidParameterValue"


def test_routes_per_table_are_limited(ec2):
    c = ec2.client()
    v = make_vpc(c)
    ec2.em.front.max_routes = 3
    eni = v.enis["vme-kvm-vm1"]
    for i in range(3):
        c.create_route(RouteTableId=v.table, DestinationCidrBlock=f"100.64.0.{16 * i}/28", NetworkInterfaceId=eni)
    with pytest.raises(ClientError) as e:
        c.create_route(RouteTableId=v.table, DestinationCidrBlock="100.64.0.48/28", NetworkInterfaceId=eni)
    assert code(e) == "RouteLimitExceeded"
    assert len(routes(c, v.table)) == 4  # the local route is not counted
    c.replace_route(RouteTableId=v.table, DestinationCidrBlock="100.64.0.0/28", NetworkInterfaceId=v.enis["vme-kvm-vm2"])


def test_a_route_to_a_gone_or_detached_eni_is_a_blackhole(ec2):
    c = ec2.client()
    v = make_vpc(c)
    loose = c.create_network_interface(SubnetId=v.subnets["vm-subnet"])["NetworkInterface"]["NetworkInterfaceId"]
    c.create_route(RouteTableId=v.table, DestinationCidrBlock="100.64.0.0/28", NetworkInterfaceId=v.enis["vme-kvm-vm1"])
    c.create_route(RouteTableId=v.table, DestinationCidrBlock="100.64.0.16/28", NetworkInterfaceId=loose)
    assert routes(c, v.table)["100.64.0.0/28"][1] == "active"
    assert routes(c, v.table)["100.64.0.16/28"][1] == "blackhole"
    c.delete_network_interface(NetworkInterfaceId=loose)
    assert routes(c, v.table)["100.64.0.16/28"] == (loose, "blackhole")


def test_source_dest_check_is_kept(ec2):
    c = ec2.client()
    v = make_vpc(c)
    eni = v.enis["vme-kvm-vm1"]
    assert c.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]["SourceDestCheck"] is True
    c.modify_network_interface_attribute(NetworkInterfaceId=eni, SourceDestCheck={"Value": False})
    assert c.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]["SourceDestCheck"] is False


def test_throttling_is_retried_by_the_sdk_or_surfaces(ec2):
    c = ec2.client(attempts=1)
    ec2.inject({"throttle": 1.0})
    with pytest.raises(ClientError) as e:
        c.describe_vpcs()
    assert code(e) == "RequestLimitExceeded"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    ec2.inject({"throttle": 0.5}, seed=3)
    patient = ec2.client(attempts=20)
    for _ in range(10):
        patient.describe_vpcs()
    s = ec2.stats()
    assert s["injected"]["throttle"] >= 5 and s["reads"] >= 10


@pytest.mark.parametrize("kind,status,err", [("unavailable", 503, "Unavailable"), ("internal", 500, "InternalError")])
def test_other_injected_errors(ec2, kind, status, err):
    ec2.inject({kind: 1.0})
    with pytest.raises(ClientError) as e:
        ec2.client(attempts=1).describe_route_tables()
    assert code(e) == err and e.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_another_writer_adds_a_foreign_route_before_a_route_write(ec2):
    c = ec2.client()
    v = make_vpc(c)
    ec2.inject({"writer": 1.0})
    c.create_route(RouteTableId=v.table, DestinationCidrBlock="100.64.0.0/28", NetworkInterfaceId=v.enis["vme-kvm-vm1"])
    have = routes(c, v.table)
    assert "100.64.0.0/28" in have and "203.0.113.1/32" in have
    assert ec2.stats()["writer"]["foreign_route"] == 1


def test_the_cli_serves_https_and_refuses_bad_input(tmp_path):
    bad = subprocess.run([sys.executable, "-m", "nestnet", "aws", "emulator", "--state-dir", str(tmp_path),
                          "--inject", "throttle:2"], capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "throttle:2" in bad.stderr
    assert not (tmp_path / "endpoint").exists()
    proc = subprocess.Popen([sys.executable, "-m", "nestnet", "aws", "emulator", "--listen", "127.0.0.1:0",
                             "--state-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        endpoint = tmp_path / "endpoint"
        deadline = time.monotonic() + 60
        while not endpoint.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        import boto3

        c = boto3.client("ec2", region_name="eu-west-1", endpoint_url=endpoint.read_text().strip(),
                         verify=str(tmp_path / "ca.pem"), aws_access_key_id="x", aws_secret_access_key="y")
        vpc = c.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        assert [x["VpcId"] for x in c.describe_vpcs(VpcIds=[vpc])["Vpcs"]] == [vpc]
    finally:
        proc.terminate()
        proc.wait(10)
