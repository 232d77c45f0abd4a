"""observe -> diff -> apply against EC2, through the ``Ec2Client`` seam.

Reads: the VPC, its subnets, network interfaces, route tables and instances, and the instance
types' address limits: six calls whatever the fabric's size (paginated). EC2 has no etags, so
each write is preceded by one read of the resource it changes (the ENI, the route table) and only
what is still to do on that fresh copy is written: another writer's change in between is kept,
and a change someone else already made is not made twice. Writes, frees before takes:

- per ENI, one ``UnassignPrivateIpAddresses`` for its prefixes (or addresses) to drop, later one
  ``AssignPrivateIpAddresses`` for those to add (a block that moves is freed before it is taken);
- per route, one ``DeleteRoute`` / ``ReplaceRoute`` / ``CreateRoute`` (EC2 has no batch);
- per ENI in routed mode, one ``ModifyNetworkInterfaceAttribute`` (source/destination check off).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .desired import ORDER, Change, Eni, Observed, Table, diff
from .ec2 import Ec2Client
from .plan import AwsPlan


def observe(client: Ec2Client, want: AwsPlan) -> Observed:
    return observe_vpc(client, want.vpc, want.instance_type)


def observe_vpc(client: Ec2Client, vpc_ref: str, instance_type: str | None = None) -> Observed:
    vpc = client.vpc(vpc_ref)
    vpc_id = vpc["VpcId"]
    blocks = tuple(a["CidrBlock"] for a in vpc.get("CidrBlockAssociationSet") or []
                   if (a.get("CidrBlockState") or {}).get("State", "associated") == "associated") or (vpc["CidrBlock"],)
    subnets = {s["SubnetId"]: (_name(s), s["CidrBlock"]) for s in client.subnets(vpc_id)}
    enis = {e.id: e for e in (Eni.of(d) for d in client.enis(vpc_id))}
    tables = {t.id: t for t in (Table.of(d) for d in client.route_tables(vpc_id))}
    instances: dict[str, tuple[str, str, str | None]] = {}
    for i in client.instances(vpc_id):
        primary = next((n["NetworkInterfaceId"] for n in i.get("NetworkInterfaces") or []
                        if (n.get("Attachment") or {}).get("DeviceIndex") == 0), None)
        instances[i["InstanceId"]] = (_name(i), i.get("InstanceType", ""), primary)
    types = [instance_type] if instance_type else [t for _, t, _ in instances.values() if t]
    return Observed(vpc_id, blocks, subnets, enis, tables, instances, client.address_limits(types))


def _name(d: dict[str, Any]) -> str:
    return next((t.get("Value", "") for t in d.get("Tags") or d.get("TagSet") or [] if t.get("Key") == "Name"), "")


@dataclass
class Outcome:
    applied: list[Change] = field(default_factory=list)
    writes: int = 0
    reads: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"applied": [c.to_dict() for c in self.applied], "writes": self.writes, "reads": self.reads}


def plan_changes(client: Ec2Client, want: AwsPlan, *, source: str = "spec",
                 prune_foreign: bool = False) -> tuple[Observed, list[Change]]:
    obs = observe(client, want)
    return obs, diff(want, obs, source=source, prune_foreign=prune_foreign)


ENI_ACTIONS = {"unassign-prefix", "unassign-ip", "assign-prefix", "assign-ip", "source-dest-check-off"}


def apply(client: Ec2Client, want: AwsPlan, obs: Observed, changes: list[Change], *, source: str = "spec",
          prune_foreign: bool = False) -> Outcome:
    """Execute ``changes`` (``diff``'s, in its order), each resource re-read just before its write."""
    out = Outcome()
    reads0, writes0 = client.reads, client.writes
    current = obs
    # Steps in diff's order; each step is one resource and one kind of write.
    steps: list[tuple[str, str]] = list(dict.fromkeys((c.action, c.target) for c in changes))
    for action, target in steps:
        if action in ENI_ACTIONS:
            current = current.with_eni(Eni.of(client.eni(target)))
        else:
            current = current.with_table(Table.of(client.route_table(target)))
        # What is still to do on the fresh copy (the limits are checked again on it too).
        todo = [c for c in diff(want, current, source=source, prune_foreign=prune_foreign)
                if c.action == action and c.target == target]
        if not todo:
            continue
        values = [c.value for c in todo]
        if action == "assign-prefix":
            client.assign_prefixes(target, values)
        elif action == "unassign-prefix":
            client.unassign_prefixes(target, values)
        elif action == "assign-ip":
            client.assign_ips(target, values)
        elif action == "unassign-ip":
            client.unassign_ips(target, values)
        elif action == "source-dest-check-off":
            client.source_dest_check_off(target)
        else:
            for c in todo:
                if c.action == "create-route":
                    client.create_route(target, c.value, c.eni)
                elif c.action == "replace-route":
                    client.replace_route(target, c.value, c.eni)
                else:
                    client.delete_route(target, c.value)
        out.applied += todo
    out.applied.sort(key=lambda c: ORDER.index(c.action))
    out.reads, out.writes = client.reads - reads0, client.writes - writes0
    return out
