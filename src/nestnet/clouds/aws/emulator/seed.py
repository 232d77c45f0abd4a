"""Create in the emulator the EC2 a spec describes before nestnet's apply: the VPC, its subnets
and route tables (each associated with its subnets), and per host an instance of the spec's type
whose primary ENI has the host's address, all Name-tagged as the spec names them. Through boto3
over the emulator's HTTPS endpoint, as anybody's set-up would be."""

from __future__ import annotations

from typing import Any

AMI = "ami-12c6146b"  # one of the images moto ships (any would do: nothing boots)


def seed(url: str, ca: str, plan: Any) -> dict[str, str]:
    """What was created, by reference (Name tag) -> id."""
    import boto3

    aws = plan.cloud
    ec2 = boto3.client("ec2", region_name=aws.region, endpoint_url=url, verify=ca,
                       aws_access_key_id="nestnet", aws_secret_access_key="nestnet")
    made: dict[str, str] = {}

    def tags(kind: str, name: str) -> list[dict[str, Any]]:
        return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}]}]

    blocks = [str(c) for c in aws.cidr_blocks]
    vpc = ec2.create_vpc(CidrBlock=blocks[0], TagSpecifications=tags("vpc", aws.vpc))["Vpc"]["VpcId"]
    for extra in blocks[1:]:
        ec2.associate_vpc_cidr_block(VpcId=vpc, CidrBlock=extra)
    made[aws.vpc] = vpc
    subnet_ids = dict(aws.subnet_ids)
    for s in plan.subnets.values():
        ref = subnet_ids.get(s.name, s.name)
        made[ref] = ec2.create_subnet(VpcId=vpc, CidrBlock=str(s.prefix),
                                      TagSpecifications=tags("subnet", ref))["Subnet"]["SubnetId"]
    for subnet, table in aws.route_tables_by_subnet:
        if table not in made:
            made[table] = ec2.create_route_table(VpcId=vpc, TagSpecifications=tags("route-table", table))[
                "RouteTable"]["RouteTableId"]
        ec2.associate_route_table(RouteTableId=made[table], SubnetId=made[subnet_ids.get(subnet, subnet)])
    for h in plan.hosts.values():
        ref = dict((x[0], x[1]) for x in aws.host_enis)[h.name]
        inst = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType=aws.instance_type or "c8i.large",
                                 SubnetId=made[subnet_ids.get(h.subnet, h.subnet)], PrivateIpAddress=str(h.ip),
                                 TagSpecifications=tags("instance", h.name))["Instances"][0]
        eni = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
        if not ref.startswith("instance:"):
            ec2.create_tags(Resources=[eni], Tags=[{"Key": "Name", "Value": ref}])
        made[h.name] = inst["InstanceId"]
        made[ref] = eni
    return made
