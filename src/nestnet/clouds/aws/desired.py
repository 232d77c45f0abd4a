"""What EC2 holds (``Observed``, from boto3's answers), and the diff to what the plan wants (pure).

Ownership, so that nothing foreign is touched:

- prefixes and secondary addresses inside ``nested.pool`` on the hosts' ENIs are nestnet's; every
  other prefix and address is kept (a wanted one held by a foreign ENI is refused, not taken);
- routes in the spec's route tables whose destination lies in the pool, is a host block or
  narrower, and whose target is a host's ENI are nestnet's; every other route is kept (a wanted
  destination that a foreign route already holds is refused);
- the source/destination check is only ever turned off (something else may rely on it off).

Limits are checked before any write: routes per table (``aws.max_routes``) and addresses per ENI
(the instance type's ``Ipv4AddressesPerInterface``, each prefix counting one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_network
from typing import Any, Mapping

from ...errors import UsageError
from .ec2 import AwsError
from .plan import AwsPlan


@dataclass(frozen=True)
class Eni:
    id: str
    name: str
    subnet_id: str
    instance_id: str | None
    primary_ip: str
    secondary_ips: tuple[str, ...]
    prefixes: tuple[str, ...]
    source_dest_check: bool

    @classmethod
    def of(cls, d: Mapping[str, Any]) -> "Eni":
        ips = d.get("PrivateIpAddresses") or []
        return cls(
            id=d["NetworkInterfaceId"],
            name=_name(d),
            subnet_id=d.get("SubnetId", ""),
            instance_id=(d.get("Attachment") or {}).get("InstanceId"),
            primary_ip=d.get("PrivateIpAddress", ""),
            secondary_ips=tuple(a["PrivateIpAddress"] for a in ips if not a.get("Primary")),
            prefixes=tuple(p["Ipv4Prefix"] for p in d.get("Ipv4Prefixes") or []),
            source_dest_check=bool(d.get("SourceDestCheck", True)),
        )

    @property
    def used(self) -> int:
        return 1 + len(self.secondary_ips) + len(self.prefixes)


@dataclass(frozen=True)
class Route:
    destination: str
    target: str  # the ENI id, gateway id, "local", ...
    eni: str | None
    state: str


@dataclass(frozen=True)
class Table:
    id: str
    name: str
    routes: tuple[Route, ...]
    subnet_ids: tuple[str, ...]

    @classmethod
    def of(cls, d: Mapping[str, Any]) -> "Table":
        routes = []
        for r in d.get("Routes") or []:
            if "DestinationCidrBlock" not in r:
                continue  # IPv6 and prefix lists: never nestnet's, and counted apart
            target = next((r[k] for k in ("NetworkInterfaceId", "GatewayId", "NatGatewayId", "InstanceId",
                                          "TransitGatewayId", "VpcPeeringConnectionId", "VpcEndpointId") if r.get(k)), "")
            routes.append(Route(r["DestinationCidrBlock"], target, r.get("NetworkInterfaceId"), r.get("State", "active")))
        subnets = tuple(a["SubnetId"] for a in d.get("Associations") or [] if a.get("SubnetId"))
        return cls(d["RouteTableId"], _name(d), tuple(routes), subnets)

    def counted(self) -> int:
        """Routes against the quota: every IPv4 route but the local one."""
        return sum(1 for r in self.routes if r.target != "local")


@dataclass(frozen=True)
class Observed:
    vpc_id: str
    cidr_blocks: tuple[str, ...]
    subnets: Mapping[str, tuple[str, str]]  # id -> (Name tag, CIDR)
    enis: Mapping[str, Eni]
    tables: Mapping[str, Table]
    instances: Mapping[str, tuple[str, str, str | None]]  # id -> (Name tag, type, primary ENI id)
    limits: Mapping[str, int] = field(default_factory=dict)  # instance type -> addresses per ENI

    def with_eni(self, eni: Eni) -> "Observed":
        return Observed(self.vpc_id, self.cidr_blocks, self.subnets, {**self.enis, eni.id: eni}, self.tables,
                        self.instances, self.limits)

    def with_table(self, table: Table) -> "Observed":
        return Observed(self.vpc_id, self.cidr_blocks, self.subnets, self.enis, {**self.tables, table.id: table},
                        self.instances, self.limits)


@dataclass(frozen=True)
class Change:
    action: str  # unassign-prefix | unassign-ip | delete-route | source-dest-check-off | replace-route | create-route | assign-prefix | assign-ip
    target: str  # ENI id or route table id
    value: str  # prefix, address or route destination
    eni: str = ""  # a route's target ENI
    host: str = ""
    label: str = ""  # the target as the spec names it

    def __str__(self) -> str:
        where = f"{self.target} ({self.label})" if self.label and self.label != self.target else self.target
        to = f" -> {self.eni}" if self.eni else ""
        return f"{self.action} {self.value}{to} on {where}" + (f" [host {self.host}]" if self.host else "")

    def to_dict(self) -> dict[str, str]:
        return {"action": self.action, "target": self.target, "value": self.value, "eni": self.eni,
                "host": self.host, "label": self.label}


ORDER = ("unassign-prefix", "unassign-ip", "delete-route", "source-dest-check-off", "replace-route", "create-route",
         "assign-prefix", "assign-ip")


def _name(d: Mapping[str, Any]) -> str:
    return next((t.get("Value", "") for t in d.get("Tags") or d.get("TagSet") or [] if t.get("Key") == "Name"), "")


# -- references -----------------------------------------------------------------------------------


def resolve_eni(obs: Observed, ref: str) -> str:
    if ref.startswith("instance:"):
        inst = ref.split(":", 1)[1]
        ids = [i for i, (name, _, _) in obs.instances.items() if i == inst or name == inst]
        if len(ids) != 1:
            raise UsageError(f"aws.instances: instance {inst!r} is {'not in' if not ids else 'ambiguous in'} "
                             f"VPC {obs.vpc_id} ({len(ids)} match its id or Name tag)")
        eni = obs.instances[ids[0]][2]
        if not eni:
            raise UsageError(f"aws.instances: instance {inst!r} has no primary network interface")
        return eni
    ids = [e.id for e in obs.enis.values() if e.id == ref or e.name == ref]
    if len(ids) != 1:
        raise UsageError(f"hosts[].nic {ref!r}: {'no' if not ids else 'more than one'} network interface of VPC "
                         f"{obs.vpc_id} has this id or Name tag ({len(ids)} found)")
    return ids[0]


def resolve_table(obs: Observed, ref: str) -> str:
    ids = [t.id for t in obs.tables.values() if t.id == ref or t.name == ref]
    if len(ids) != 1:
        raise UsageError(f"aws.route_tables {ref!r}: {'no' if not ids else 'more than one'} route table of VPC "
                         f"{obs.vpc_id} has this id or Name tag ({len(ids)} found)")
    return ids[0]


def check_reality(want: AwsPlan, obs: Observed, source: str = "spec") -> dict[str, str]:
    """The spec's picture of EC2 against EC2's: the VPC's CIDR blocks, each host ENI's primary
    address. Returns host -> ENI id. UsageError (exit 2) naming both values, before any write."""
    bad: list[str] = []
    have = sorted({ip_network(c) for c in obs.cidr_blocks}, key=str)
    spec = sorted(set(want.cidr_blocks), key=str)
    if have != spec:
        bad.append(f"aws.cidr_blocks is {', '.join(map(str, spec))} but VPC {obs.vpc_id} has "
                   f"{', '.join(map(str, have)) or 'none'}")
    enis: dict[str, str] = {}
    for host, ref, ip in want.host_enis:
        eni = obs.enis[resolve_eni(obs, ref)]
        enis[host] = eni.id
        if eni.primary_ip != ip:
            bad.append(f"host {host!r} has ip {ip} in the spec but its ENI {eni.id} ({ref}) has primary address "
                       f"{eni.primary_ip} in EC2")
    for p in want.prefixes:
        eni = obs.enis[enis[p.host]]
        cidr = obs.subnets.get(eni.subnet_id, ("", ""))[1]
        if cidr and not p.prefix.subnet_of(IPv4Network(cidr)):
            bad.append(f"host {p.host!r} has block {p.prefix}, outside its ENI's subnet {eni.subnet_id} ({cidr}): "
                       "EC2 assigns an ENI prefixes of its own subnet only")
    if bad:
        raise UsageError(f"{source}: the spec does not match EC2, nothing changed: " + "; ".join(bad))
    return enis


def address_limit(want: AwsPlan, obs: Observed, eni: Eni) -> int | None:
    itype = want.instance_type
    if itype is None and eni.instance_id in obs.instances:
        itype = obs.instances[eni.instance_id][1]
    return obs.limits.get(itype or "")


# -- the diff -------------------------------------------------------------------------------------


def diff(want: AwsPlan, obs: Observed, *, source: str = "spec", prune_foreign: bool = False) -> list[Change]:
    """The changes that make EC2 match ``want``, frees before takes; UsageError when the spec does
    not describe the EC2 it finds or a limit would be passed, AwsError for what nestnet must not do."""
    enis = check_reality(want, obs, source)
    host_of = {e: h for h, e in enis.items()}
    label = {enis[h]: ref for h, ref, _ in want.host_enis}
    pool = want.pool
    changes: list[Change] = []
    refusals: list[str] = []
    if want.mode != "nat":
        changes += _address_changes(want, obs, enis, host_of, label, refusals)
    if want.mode == "routed":
        for ref in want.source_dest_check_off:
            eni = obs.enis[resolve_eni(obs, ref)]
            if eni.source_dest_check:
                changes.append(Change("source-dest-check-off", eni.id, "SourceDestCheck=false",
                                      host=host_of.get(eni.id, ""), label=ref))
    tables = {ref: resolve_table(obs, ref) for ref in dict.fromkeys(r.table for r in want.routes)}
    changes += _route_changes(want, obs, tables, enis, host_of, pool, refusals, prune_foreign)
    if refusals:
        raise AwsError(f"{source}: nestnet does not take what others hold, nothing changed: " + "; ".join(refusals))
    check_limits(want, obs, changes, source)
    return sorted(changes, key=lambda c: ORDER.index(c.action))


def _address_changes(want: AwsPlan, obs: Observed, enis: dict[str, str], host_of: dict[str, str],
                     label: dict[str, str], refusals: list[str]) -> list[Change]:
    out: list[Change] = []
    pool = want.pool
    want_prefix = {str(p.prefix): enis[p.host] for p in want.prefixes}
    want_ip = {a.ip: enis[a.host] for a in want.addresses}
    for eni in obs.enis.values():
        ours = eni.id in host_of
        for p in eni.prefixes:
            inside = IPv4Network(p).subnet_of(pool)
            if ours and inside and want_prefix.get(p) != eni.id:
                out.append(Change("unassign-prefix", eni.id, p, host=host_of[eni.id], label=label[eni.id]))
            elif not ours and any(IPv4Network(p).overlaps(IPv4Network(w)) for w in want_prefix):
                refusals.append(f"prefix {p} is on network interface {eni.id}, not a host's; it overlaps a host block")
        for ip in eni.secondary_ips:
            if ours and IPv4Address(ip) in pool and want_ip.get(ip) != eni.id:
                out.append(Change("unassign-ip", eni.id, ip, host=host_of[eni.id], label=label[eni.id]))
            elif not ours and ip in want_ip:
                refusals.append(f"address {ip} is on network interface {eni.id}, not its host's")
        for ip in eni.secondary_ips + (eni.primary_ip,):
            if not ours and any(IPv4Address(ip) in IPv4Network(w) for w in want_prefix):
                refusals.append(f"address {ip} of network interface {eni.id} lies in a host block")
    for p, eni_id in want_prefix.items():
        if p not in obs.enis[eni_id].prefixes:
            out.append(Change("assign-prefix", eni_id, p, host=host_of[eni_id], label=label[eni_id]))
    for ip, eni_id in want_ip.items():
        if ip not in obs.enis[eni_id].secondary_ips:
            out.append(Change("assign-ip", eni_id, ip, host=host_of[eni_id], label=label[eni_id]))
    return out


def _owned_route(r: Route, pool: IPv4Network, block_len: int, host_enis: set[str]) -> bool:
    try:
        d = IPv4Network(r.destination)
    except ValueError:
        return False
    return d.subnet_of(pool) and d.prefixlen >= block_len and r.eni in host_enis


def _route_changes(want: AwsPlan, obs: Observed, tables: dict[str, str], enis: dict[str, str],
                   host_of: dict[str, str], pool: IPv4Network, refusals: list[str], prune_foreign: bool) -> list[Change]:
    out: list[Change] = []
    block_len = min((r.destination.prefixlen for r in want.routes), default=28)
    wanted: dict[tuple[str, str], str] = {(tables[r.table], str(r.destination)): enis[r.host] for r in want.routes}
    host_enis = set(host_of)
    for tid in dict.fromkeys(list(tables.values()) + list(_spec_tables(want, obs))):
        table = obs.tables[tid]
        have = {r.destination: r for r in table.routes}
        for r in table.routes:
            key = (tid, r.destination)
            if key in wanted or r.target == "local":
                continue
            if _owned_route(r, pool, block_len, host_enis) or (prune_foreign and IPv4Network(r.destination).subnet_of(pool)):
                out.append(Change("delete-route", tid, r.destination, eni=r.target, host=host_of.get(r.eni or "", ""),
                                  label=table.name))
        for (t, dest), eni in wanted.items():
            if t != tid:
                continue
            r = have.get(dest)
            if r is None:
                out.append(Change("create-route", tid, dest, eni=eni, host=host_of[eni], label=table.name))
            elif r.eni == eni and r.state == "active":
                continue
            elif r.eni in host_enis or r.state == "blackhole" or prune_foreign:
                out.append(Change("replace-route", tid, dest, eni=eni, host=host_of[eni], label=table.name))
            else:
                refusals.append(f"route {dest} in {tid} goes to {r.target}, not nestnet's (--prune-foreign replaces it)")
    return out


def _spec_tables(want: AwsPlan, obs: Observed) -> list[str]:
    """The tables the spec names whether or not it wants routes in them now (so that leaving
    routed mode removes nestnet's routes)."""
    return [t.id for t in obs.tables.values() if t.id in want.table_refs or t.name in want.table_refs]


def check_limits(want: AwsPlan, obs: Observed, changes: list[Change], source: str = "spec") -> None:
    bad: list[str] = []
    for tid, table in obs.tables.items():
        delta = sum(1 for c in changes if c.target == tid and c.action == "create-route") - \
            sum(1 for c in changes if c.target == tid and c.action == "delete-route")
        if delta > 0 and table.counted() + delta > want.max_routes:
            bad.append(f"route table {tid} ({table.name or 'no Name'}) would hold {table.counted() + delta} routes, "
                       f"over aws.max_routes {want.max_routes} (EC2's default quota is 50 per table; fewer host "
                       "blocks, or raise the quota and aws.max_routes)")
    for eni_id, eni in obs.enis.items():
        adds = sum(1 for c in changes if c.target == eni_id and c.action in ("assign-prefix", "assign-ip"))
        drops = sum(1 for c in changes if c.target == eni_id and c.action in ("unassign-prefix", "unassign-ip"))
        limit = address_limit(want, obs, eni)
        if adds and limit is not None and eni.used - drops + adds > limit:
            bad.append(f"network interface {eni_id} would hold {eni.used - drops + adds} private addresses and "
                       f"prefixes, over the {limit} its instance type allows per ENI (each prefix counts one)")
    if bad:
        raise UsageError(f"{source}: over EC2's limits, nothing changed: " + "; ".join(bad))
