"""Desired Azure state from the Plan, the diff against observed ARM JSON, and the PUT bodies.

Pure: no I/O, no SDK. ``diff`` returns the changes ``nestnet azure diff`` prints and ``apply``
executes; the bodies are built from those changes and the observed JSON, so what is written is
exactly what was shown. Ownership: routes whose name starts with the plan's route prefix, and
the tags on the table. Foreign routes are kept unless ``prune_foreign``; NIC forwarding is only
ever turned on (other things on the NIC may rely on it). In ``secondary-ip`` mode nestnet owns
the NIC ip configurations named with the route prefix; the primary and every other one are kept.
In ``nic-prefix`` mode the same owned configurations carry a whole /28 each (Azure's "Prefix on NIC",
``privateIPAddressPrefixLength``; docs/decisions/0028), one per host NIC.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from ipaddress import ip_network
from typing import Any, Mapping

from . import publicip
from .facts import name_key
from ...errors import UsageError
from .errors import AzureError

TAG_OWNER = "managed-by"
TAG_FABRIC = "nestnet-fabric"
# The apply lease (lease.py): a lock, not state. The diff never shows it and every body keeps it.
TAG_LEASE = "nestnet-apply-lease"
# Azure's limit of ip configurations per NIC; the spec's azure.max_ip_configs (Plan.azure) may
# lower it.
MAX_IP_CONFIGS = 256


@dataclass(frozen=True)
class WantRoute:
    name: str
    address_prefix: str
    next_hop_ip: str
    next_hop_type: str = "VirtualAppliance"

    def props(self) -> dict[str, str]:
        return {
            "addressPrefix": self.address_prefix,
            "nextHopType": self.next_hop_type,
            "nextHopIpAddress": self.next_hop_ip,
        }


@dataclass(frozen=True)
class WantIpConfig:
    """An ip configuration nestnet wants on a host NIC: one address (secondary-ip mode) or, with
    ``prefix_len``, a whole block (nic-prefix mode)."""

    nic: str
    name: str
    ip: str  # the address, or the block's network address
    subnet: str  # the subnet the plan puts the host in: the NIC's primary must be there
    prefix_len: int | None = None

    @property
    def address(self) -> str:
        """As a change shows it and a GET of the NIC answers it: ``10.0.1.16/28`` for a prefix."""
        return f"{self.ip}/{self.prefix_len}" if self.prefix_len else self.ip


@dataclass(frozen=True)
class Desired:
    fabric: str
    vnet: str
    table: str | None
    location: str | None
    route_prefix: str
    max_routes: int
    routes: tuple[WantRoute, ...]
    subnets: tuple[str, ...]  # to associate with the table
    unassociated: tuple[str, ...]  # plan subnets that must not carry nestnet's table
    nics: tuple[str, ...]  # need IP forwarding
    secondary: tuple[WantIpConfig, ...] = ()
    managed_nics: tuple[str, ...] = ()  # NICs whose owned ip configurations nestnet reconciles
    max_ip_configs: int = MAX_IP_CONFIGS
    # For the reality checks: what the spec says Azure looks like.
    address_space: tuple[str, ...] = ()
    host_ips: tuple[tuple[str, str, str], ...] = ()  # (host, nic, primary address)
    source: str = "spec"
    # nic-prefix mode with azure.route_table set: the table only loses nestnet's routes (the
    # migration from routed, docs/decisions/0028): never created, tagged or (dis)associated, and
    # written after the NICs, so that each block's prefix exists before its route goes
    table_leaving: bool = False
    public_ips: tuple[Any, ...] = ()  # publicip.WantPublicIp: hosts whose VMs expose ports

    @property
    def tags(self) -> dict[str, str]:
        return {TAG_OWNER: "nestnet", TAG_FABRIC: self.fabric}


def desired(plan: Any) -> Desired:
    az = plan.azure
    # Only routed mode uses the table; nic-prefix mode empties it of nestnet's routes (the
    # migration, decision 0028); other modes leave whatever exists alone.
    leaving = plan.mode == "nic-prefix" and bool(az.route_table)
    table = az.route_table if plan.mode == "routed" or leaving else None
    if az.routes and not table:
        raise AzureError(f"{plan.source or 'spec'}: azure.route_table is not set, but the plan has Azure routes")
    return Desired(
        fabric=plan.name,
        vnet=az.vnet,
        table=table,
        location=az.location,
        route_prefix=az.route_prefix,
        max_routes=az.max_routes,
        routes=tuple(WantRoute(r.name, str(r.address_prefix), str(r.next_hop_ip), r.next_hop_type) for r in az.routes),
        subnets=tuple(az.subnet_associations),
        unassociated=tuple(s for s in plan.subnets if s not in az.subnet_associations) if table and not leaving else (),
        nics=tuple(az.nic_ip_forwarding),
        secondary=tuple(WantIpConfig(x.nic, x.name, str(x.ip), x.subnet) for x in az.secondary_ips)
        + tuple(WantIpConfig(x.nic, x.name, str(x.prefix.network_address), x.subnet, x.prefix.prefixlen)
                for x in getattr(az, "nic_prefixes", ())),
        # Every host NIC, so that a host whose last VM went away loses its stale configurations;
        # in routed mode too, so that leaving secondary-ip or nic-prefix mode removes them (nat mode
        # reads nothing).
        managed_nics=tuple(h.nic for h in plan.hosts.values()) if plan.mode != "nat" else (),
        max_ip_configs=getattr(az, "max_ip_configs", MAX_IP_CONFIGS),
        address_space=tuple(str(n) for n in az.address_space),
        host_ips=tuple((h.name, h.nic, str(h.ip)) for h in plan.hosts.values()) if plan.mode != "nat" else (),
        source=plan.source or "spec",
        public_ips=publicip.wanted(plan),
        table_leaving=leaving,
    )


@dataclass(frozen=True)
class Observed:
    """ARM's answers as REST JSON: the route table (None if missing), the VNet, the NICs by name;
    with exposed ports also the public IPs by name and the NSGs of the resource group."""

    table: Mapping[str, Any] | None
    vnet: Mapping[str, Any] | None
    nics: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    public_ips: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    nsgs: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Change:
    action: str  # create | tag | add | update | delete | associate | dissociate | enable-ip-forwarding
    kind: str  # route_table | route | subnet | nic | ip_config
    name: str
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    nic: str | None = None  # the NIC an ip_config belongs to

    def to_dict(self) -> dict[str, Any]:
        out = {"action": self.action, "kind": self.kind, "name": self.name,
               "before": dict(self.before) if self.before is not None else None,
               "after": dict(self.after) if self.after is not None else None}
        if self.nic is not None:
            out["nic"] = self.nic
        return out

    @property
    def target_nic(self) -> str | None:
        """The NIC this change is written to, if it is a NIC change."""
        if self.kind == "public_ip":
            return self.nic if self.action in ("associate", "dissociate") else None
        return self.nic if self.kind == "ip_config" else self.name if self.kind == "nic" else None

    def __str__(self) -> str:
        if self.kind == "public_ip":
            if self.action == "associate" and self.after:
                return f"associate public IP {self.name} with {self.nic} ({self.after['ipConfiguration']})"
            if self.action == "dissociate":
                return f"dissociate public IP {self.name} from {self.nic} (no VM there exposes a port)"
            if self.action == "delete":
                return f"delete public IP {self.name} (nestnet's, no longer needed)"
            return f"create public IP {self.name} (Standard, Static) for {self.nic}"
        if self.kind == "security_rule":
            d = self.after or self.before or {}
            return (f"{self.action} NSG rule {self.name} in {d.get('nsg')}: allow {d.get('protocol')} "
                    f"{d.get('destinationPortRange')} from {d.get('sourceAddressPrefix')} to "
                    f"{d.get('destinationAddressPrefix')} (priority {d.get('priority')})")
        if self.kind == "ip_config" and self.action == "adopt" and self.before and self.after:
            return (f"adopt ip config {self.before['name']} as {self.name} on {self.nic}: "
                    f"{self.after['privateIPAddress']} (same addresses)")
        if self.kind == "ip_config":
            ips = " => ".join(d["privateIPAddress"] for d in (self.before, self.after) if d)
            return f"{self.action} ip config {self.name} on {self.nic}: {ips}"
        if self.kind == "route":
            if self.action == "adopt" and self.before and self.after:
                return f"adopt route {self.before['name']} as {self.name}: {_hop(self.after)} (same next hop)"
            if self.before and self.after:
                return f"{self.action} route {self.name}: {_hop(self.before)} => {_hop(self.after)}"
            return f"{self.action} route {self.name}: {_hop(self.after or self.before)}"
        what = f"{self.action} {self.kind.replace('_', ' ')} {self.name}"
        return f"{what}: {_hop(self.after)}" if self.after else what


def _hop(d: Mapping[str, Any] | None) -> str:
    if not d:
        return "-"
    if "addressPrefix" in d:
        return f"{d['addressPrefix']} -> {d.get('nextHopType')} {d.get('nextHopIpAddress') or ''}".rstrip()
    return ", ".join(f"{k}={v}" for k, v in d.items())


def _props(route: Mapping[str, Any]) -> dict[str, str]:
    p = route.get("properties") or {}
    out = {"addressPrefix": str(p.get("addressPrefix")), "nextHopType": str(p.get("nextHopType"))}
    if p.get("nextHopIpAddress"):
        out["nextHopIpAddress"] = str(p["nextHopIpAddress"])
    return out


def _same_route(have: Mapping[str, str], want: WantRoute) -> bool:
    # Compare on the chosen fields only, prefixes as networks (ARM may normalise the text).
    try:
        same_net = ip_network(have["addressPrefix"], strict=False) == ip_network(want.address_prefix)
    except ValueError:
        same_net = False
    return (
        same_net
        and have["nextHopType"].lower() == want.next_hop_type.lower()
        and have.get("nextHopIpAddress") == want.next_hop_ip
    )


def by_name(items: Mapping[str, Any], name: str) -> Any:
    """``items[name]`` as Azure finds it: names compared by ``name_key`` (without case)."""
    if name in items:
        return items[name]
    k = name_key(name)
    return next((v for n, v in items.items() if name_key(n) == k), None)


def _clashes(want: Desired) -> list[str]:
    """Names of the plan that Azure would take for one (validation refuses such specs; a plan
    built another way must not lose a route silently either)."""
    out: list[str] = []
    groups = [("route", [r.name for r in want.routes]), ("network interface", list(want.managed_nics or want.nics))]
    groups += [(f"ip configuration on {n!r}", [w.name for w in want.secondary if w.nic == n])
               for n in dict.fromkeys(w.nic for w in want.secondary)]
    for what, names in groups:
        seen: dict[str, str] = {}
        for n in names:
            first = seen.setdefault(name_key(n), n)
            if first != n:
                out.append(f"the plan has {what}s {first!r} and {n!r}, one name to Azure (names ignore case)")
    return out


def owned(name: str, prefix: str) -> bool:
    return name_key(name).startswith(name_key(prefix))


def _norm_location(loc: str) -> str:
    # ARM names regions "westeurope"; people and the portal write "West Europe".
    return "".join(loc.split()).lower()


def check_reality(want: Desired, obs: Observed) -> None:
    """The spec's picture of Azure against ARM's: region, VNet address space, host NIC addresses.

    A mismatch means the plan would write routes to addresses no NIC owns (a black hole) or a
    table ARM cannot attach: UsageError (exit 2) naming both values, before any write.
    """
    bad: list[str] = []
    vnet = obs.vnet
    if vnet is not None:
        loc = vnet.get("location")
        if want.location and loc and _norm_location(want.location) != _norm_location(str(loc)):
            bad.append(f"azure.location is {want.location!r} but virtual network {want.vnet!r} is in {loc!r} "
                       "(a route table must be in its subnets' region)")
        space = ((vnet.get("properties") or {}).get("addressSpace") or {}).get("addressPrefixes")
        if want.address_space and isinstance(space, list):
            try:
                have = sorted({ip_network(str(p), strict=False) for p in space}, key=str)
            except ValueError:
                have = []
            spec = sorted({ip_network(p) for p in want.address_space}, key=str)
            if have and have != spec:
                bad.append(f"azure.address_space is {', '.join(map(str, spec))} but virtual network {want.vnet!r} "
                           f"has {', '.join(map(str, have))}")
    for host, nic_name, ip in want.host_ips:
        nic = by_name(obs.nics, nic_name)
        if nic is None:
            continue  # reported by the diff as not found
        primary = _primary(_ip_configs(nic))
        real = _address(primary) if primary else None
        if real and real != ip:
            bad.append(f"host {host!r} has ip {ip} in the spec but its NIC {nic_name!r} has primary address {real} "
                       "in Azure (routes to it would be a black hole)")
    if bad:
        raise UsageError(f"{want.source}: the spec does not match Azure, nothing changed: " + "; ".join(bad))


def diff(
    want: Desired, obs: Observed, table_id: str, *, prune_foreign: bool = False, adopt: bool = False
) -> list[Change]:
    """The changes that make ARM match ``want``; raises AzureError for what nestnet must not do,
    UsageError when the spec does not describe the Azure it finds (``check_reality``).

    ``adopt``: a foreign route with a wanted prefix and the same next hop is renamed to
    nestnet's name in the same table PUT (no moment without the route)."""
    check_reality(want, obs)
    refusals: list[str] = _clashes(want)
    changes: list[Change] = []
    if want.table:
        changes += _table_changes(want, obs.table, prune_foreign, refusals, adopt)
    changes += _subnet_changes(want, obs.vnet, table_id, refusals)
    changes += _ip_config_changes(want, obs.nics, refusals, adopt)
    for nic in want.nics:
        have = by_name(obs.nics, nic)
        if have is None:
            refusals.append(f"network interface {nic!r} was not found in the resource group")
        elif not (have.get("properties") or {}).get("enableIPForwarding"):
            changes.append(Change("enable-ip-forwarding", "nic", nic, {"enableIPForwarding": False}, {"enableIPForwarding": True}))
    changes += publicip.changes(want, obs, refusals)
    if refusals:
        raise AzureError("refusing to change anything: " + "; ".join(dict.fromkeys(refusals)))
    return changes


def _table_changes(
    want: Desired, table: Mapping[str, Any] | None, prune_foreign: bool, refusals: list[str], adopt: bool = False
) -> list[Change]:
    assert want.table
    out: list[Change] = []
    have: dict[str, Mapping[str, Any]] = {}
    if table is None and want.table_leaving:
        return out  # no table, no routes of nestnet's to drop
    if table is None:
        out.append(Change("create", "route_table", want.table, None, {"tags": want.tags}))
    else:
        tags = {k: v for k, v in (table.get("tags") or {}).items() if k != TAG_LEASE}
        if tags.get(TAG_FABRIC) not in (None, want.fabric):
            refusals.append(
                f"route table {want.table!r} is tagged for nestnet fabric {tags[TAG_FABRIC]!r}, not {want.fabric!r}"
            )
        if not want.table_leaving and any(tags.get(k) != v for k, v in want.tags.items()):
            out.append(Change("tag", "route_table", want.table, dict(tags), {**tags, **want.tags}))
        have = {name_key(r["name"]): r for r in (table.get("properties") or {}).get("routes") or []}
    wanted = {name_key(r.name): r for r in want.routes}
    by_net = {ip_network(w.address_prefix): w for w in want.routes}
    adopted: set[str] = set()  # name_key of nestnet names whose route a foreign one becomes
    kept_foreign: list[Mapping[str, Any]] = []
    for key, r in have.items():
        if owned(r["name"], want.route_prefix):
            if key not in wanted:
                out.append(Change("delete", "route", r["name"], _props(r), None))
            continue
        w = _adoptable(r, by_net) if adopt else None
        if w is not None and name_key(w.name) not in have and name_key(w.name) not in adopted:
            adopted.add(name_key(w.name))
            out.append(Change("adopt", "route", w.name, {"name": r["name"], **_props(r)}, w.props()))
        elif prune_foreign:
            out.append(Change("delete", "route", r["name"], _props(r), None))
        else:
            kept_foreign.append(r)
    for key, w in wanted.items():
        if key in adopted:
            continue
        if key not in have:
            out.append(Change("add", "route", w.name, None, w.props()))
        elif not _same_route(_props(have[key]), w):
            out.append(Change("update", "route", w.name, _props(have[key]), w.props()))
    wanted_nets = {ip_network(w.address_prefix): w.name for w in want.routes}
    for r in kept_foreign:
        try:
            net = ip_network(_props(r)["addressPrefix"], strict=False)
        except ValueError:
            continue
        if net in wanted_nets:
            w = by_net[net]
            if not adopt:
                why = "run with --adopt to take over a route with the same next hop"
            elif _same_route(_props(r), w):
                # Same next hop, yet not adoptable: nestnet's name is taken (in the table, or by
                # another foreign route adopted in this diff).
                why = f"a route named {w.name!r} is already in the table, so --adopt cannot rename it to that"
            else:
                why = f"its next hop is {_hop(_props(r))}, not {_hop(w.props())}, so --adopt does not take it over"
            refusals.append(
                f"foreign route {r['name']!r} in {want.table!r} already covers {net}, which nestnet routes as "
                f"{wanted_nets[net]!r} ({why}; or remove it, or run with --prune-foreign)"
            )
    total = len(kept_foreign) + len(want.routes)
    if total > want.max_routes:
        refusals.append(
            f"route table {want.table!r} would hold {total} routes ({len(want.routes)} nestnet, "
            f"{len(kept_foreign)} foreign), over max_routes {want.max_routes}"
        )
    return out


def _adoptable(route: Mapping[str, Any], by_net: Mapping[Any, WantRoute]) -> WantRoute | None:
    """The wanted route a foreign one can become: same prefix, same next hop."""
    have = _props(route)
    try:
        w = by_net.get(ip_network(have["addressPrefix"], strict=False))
    except ValueError:
        return None
    return w if w is not None and _same_route(have, w) else None


def _subnet_changes(
    want: Desired, vnet: Mapping[str, Any] | None, table_id: str, refusals: list[str]
) -> list[Change]:
    if not want.subnets and not want.unassociated:
        return []
    if vnet is None:
        refusals.append(f"virtual network {want.vnet!r} was not found")
        return []
    subnets = {s["name"]: s for s in (vnet.get("properties") or {}).get("subnets") or []}
    out: list[Change] = []
    for name in want.subnets:
        s = by_name(subnets, name)
        if s is None:
            refusals.append(f"subnet {name!r} was not found in virtual network {want.vnet!r}")
            continue
        current = ((s.get("properties") or {}).get("routeTable") or {}).get("id")
        if current and name_key(current) == name_key(table_id):
            continue
        if current:
            refusals.append(
                f"subnet {name!r} is associated with another route table ({current.rsplit('/', 1)[-1]!r}); "
                "nestnet does not replace it"
            )
            continue
        out.append(Change("associate", "subnet", name, {"routeTable": None}, {"routeTable": want.table}))
    for name in want.unassociated:
        s = by_name(subnets, name)
        current = (((s or {}).get("properties") or {}).get("routeTable") or {}).get("id")
        if current and name_key(current) == name_key(table_id):
            out.append(Change("dissociate", "subnet", name, {"routeTable": want.table}, {"routeTable": None}))
    return out


def _ip_configs(nic: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((nic.get("properties") or {}).get("ipConfigurations") or [])


def _address(cfg: Mapping[str, Any]) -> str | None:
    """The configuration's address; a prefix's as ``network/length`` whether ARM answered it in
    CIDR form (a NIC GET) or bare with ``privateIPAddressPrefixLength`` (docs/decisions/0028)."""
    p = cfg.get("properties") or {}
    a, length = p.get("privateIPAddress"), p.get("privateIPAddressPrefixLength")
    if not a or not length:
        return a
    try:
        return str(ip_network(f"{str(a).partition('/')[0]}/{length}", strict=False))
    except ValueError:
        return str(a)


def _addrs(text: str | None) -> list[str]:
    """Every address an ip configuration holds: one, or each of its prefix's."""
    if not text:
        return []
    if "/" not in text:
        return [text]
    try:
        net = ip_network(text, strict=False)
    except ValueError:
        return [text]
    return [str(a) for a in net] if net.num_addresses > 1 else [str(net.network_address)]


def _primary(cfgs: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    # ARM marks one configuration primary; a NIC with a single one may omit the flag.
    return next((c for c in cfgs if (c.get("properties") or {}).get("primary")), cfgs[0] if cfgs else None)


def _ip_config_changes(
    want: Desired, nics: Mapping[str, Mapping[str, Any]], refusals: list[str], adopt: bool = False
) -> list[Change]:
    """Owned ip configurations on the host NICs: add, re-address, delete stale ones. ``adopt``: a
    foreign non-primary configuration on the same NIC with exactly the wanted address or prefix is
    renamed to nestnet's name in the NIC's one PUT (``nestnet import`` of a nic-prefix fabric)."""
    if not want.managed_nics:
        return []
    by_nic: dict[str, dict[str, WantIpConfig]] = {}
    for w in want.secondary:
        by_nic.setdefault(w.nic, {})[name_key(w.name)] = w
    out: list[Change] = []
    released: set[tuple[str, str]] = set()  # (nic, config) whose address this diff frees
    for nic_name in want.managed_nics:
        nic = by_name(nics, nic_name)
        if nic is None:
            refusals.append(f"network interface {nic_name!r} was not found in the resource group")
            continue
        cfgs = _ip_configs(nic)
        primary = _primary(cfgs)
        wanted = by_nic.get(nic_name, {})
        subnet_id = (((primary or {}).get("properties") or {}).get("subnet") or {}).get("id", "")
        subnet = subnet_id.rsplit("/", 1)[-1]
        for w in wanted.values():
            if name_key(subnet) != name_key(w.subnet):
                refusals.append(
                    f"network interface {nic_name!r} is in subnet {subnet or '(none)'!r}, but the plan puts its "
                    f"host in {w.subnet!r}: nestnet's ip configurations must be in the NIC's subnet"
                )
                break
        have = {name_key(c["name"]): c for c in cfgs}
        adopted: dict[str, Mapping[str, Any]] = {}  # nestnet name key -> the foreign configuration it becomes
        if adopt:
            by_addr = {_address(c): c for c in cfgs if c is not primary and not owned(c["name"], want.route_prefix)}
            for key, w in wanted.items():
                c = by_addr.pop(w.address, None) if key not in have else None
                if c is not None:
                    adopted[key] = c
        kept = 0  # the primary and foreign configurations
        for key, c in have.items():
            if c is primary:
                kept += 1
                if key in wanted:
                    refusals.append(
                        f"the primary ip configuration of {nic_name!r} is named {c['name']!r}, which nestnet "
                        "wants for a secondary one; rename it or change azure.route_prefix"
                    )
            elif any(a is c for a in adopted.values()):
                released.add((name_key(nic_name), key))
            elif not owned(c["name"], want.route_prefix):
                kept += 1
            elif key not in wanted:
                out.append(Change("delete", "ip_config", c["name"], {"privateIPAddress": _address(c)}, None, nic_name))
                released.add((name_key(nic_name), key))
        for key, w in wanted.items():
            c = have.get(key)
            if key in adopted:
                out.append(Change("adopt", "ip_config", w.name, {"name": adopted[key]["name"], "privateIPAddress":
                                                                  _address(adopted[key])},
                                  {"privateIPAddress": w.address}, nic_name))
            elif c is None:
                out.append(Change("add", "ip_config", w.name, None, {"privateIPAddress": w.address}, nic_name))
            elif c is not primary and _address(c) != w.address:
                out.append(Change("update", "ip_config", c["name"], {"privateIPAddress": _address(c)},
                                  {"privateIPAddress": w.address}, nic_name))
                released.add((name_key(nic_name), key))
        total = kept + len(wanted)
        if total > want.max_ip_configs:
            refusals.append(
                f"network interface {nic_name!r} would hold {total} ip configurations ({len(wanted)} nestnet, "
                f"{kept} primary and foreign), over Azure's limit of {want.max_ip_configs} per NIC"
            )
    # An address may sit on one configuration only (ARM answers 400 PrivateIPAddressIsAllocated);
    # only the NICs of this resource group are visible here, ARM checks the whole VNet.
    # A prefix holds each of its addresses (ARM: 400 PrivateIPAddressIsAllocated for an overlap).
    holders: dict[str, tuple[str, str]] = {}
    for n in nics.values():
        for c in _ip_configs(n):
            for a in _addrs(_address(c)):
                holders.setdefault(a, (n["name"], c["name"]))
    for w in want.secondary:
        mine = {(name_key(w.nic), name_key(w.name))}
        h = next((h for a in _addrs(w.address) if (h := holders.get(a)) is not None
                  and (name_key(h[0]), name_key(h[1])) not in released | mine), None)
        if h is None:
            continue
        # nestnet only edits the plan's host NICs: a host taken out of the plan keeps its configurations.
        hint = (
            " (nestnet's own, on a NIC that is not in the plan: delete it there first)"
            if owned(h[1], want.route_prefix) and by_name(dict.fromkeys(want.managed_nics, True), h[0]) is None else
            " (run with --adopt to rename it to nestnet's in the same NIC write)"
            if not adopt and name_key(h[0]) == name_key(w.nic) and _same_holding(nics, h, w.address) else ""
        )
        refusals.append(
            f"{w.address} (ip configuration {w.name!r} on {w.nic!r}) is already used by ip configuration "
            f"{h[1]!r} of network interface {h[0]!r}{hint}"
        )
    return out


def _same_holding(nics: Mapping[str, Mapping[str, Any]], holder: tuple[str, str], address: str) -> bool:
    """Whether ip configuration ``holder`` (nic, name) holds exactly ``address`` (what --adopt takes)."""
    nic = by_name(nics, holder[0]) or {}
    return any(name_key(c["name"]) == name_key(holder[1]) and _address(c) == address for c in _ip_configs(nic))


def nic_write_order(changes: list[Change]) -> list[tuple[str, bool]]:
    """The NIC PUTs to make, in order: (nic, deletes_only).

    A NIC that frees an address another NIC takes is written first (ARM refuses an address that
    is still allocated). NICs that free addresses for each other in a cycle (hosts swapping
    blocks) first get a PUT with only their deletions, then one with the rest.
    """
    nics = list(dict.fromkeys(c.target_nic for c in changes if c.target_nic))
    frees: dict[str, set[str]] = {n: set() for n in nics}
    takes: dict[str, set[str]] = {n: set() for n in nics}
    for c in changes:
        if c.kind != "ip_config" or c.nic is None:
            continue
        if c.before:
            frees[c.nic].update(_addrs(c.before["privateIPAddress"]))
        if c.after:
            takes[c.nic].update(_addrs(c.after["privateIPAddress"]))
    after = {n: {m for m in nics if m != n and takes[n] & frees[m]} for n in nics}  # n waits for these
    order: list[tuple[str, bool]] = []
    done: set[str] = set()
    while len(done) < len(nics):
        ready = [n for n in nics if n not in done and after[n] <= done]
        if not ready:
            stuck = [n for n in nics if n not in done]
            order += [(n, True) for n in stuck] + [(n, False) for n in stuck]
            break
        order += [(n, False) for n in ready]
        done.update(ready)
    return order


# -- bodies for the writes: built from the observed JSON plus exactly the listed changes --------

_READONLY = ("etag", "provisioningState", "resourceGuid", "subnets")


def route_table_body(
    want: Desired, table: Mapping[str, Any] | None, changes: list[Change], location: str
) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(dict(table)) if table else {"location": location, "properties": {}}
    body.pop("etag", None)
    props = body.setdefault("properties", {})
    for k in _READONLY:
        props.pop(k, None)
    for c in changes:
        if c.kind == "route_table" and c.after:
            # A tag change merges into the table's tags as read (the apply lease among them).
            body["tags"] = dict(c.after["tags"]) if c.action == "create" else {**(body.get("tags") or {}), **c.after}
    routes = [
        {"name": r["name"], "properties": {k: v for k, v in (r.get("properties") or {}).items() if k != "provisioningState"}}
        for r in props.get("routes") or []
    ]
    by_name = {name_key(r["name"]): i for i, r in enumerate(routes)}
    dropped: set[int] = set()
    for c in changes:
        if c.kind != "route":
            continue
        i = by_name.get(name_key(c.name))
        if c.action == "delete" and i is not None:
            dropped.add(i)
        elif c.action == "adopt" and c.before and c.after:
            # The foreign route leaves and nestnet's arrives in this one PUT.
            j = by_name.get(name_key(str(c.before["name"])))
            if j is not None:
                dropped.add(j)
            routes.append({"name": c.name, "properties": dict(c.after)})
        elif c.action == "update" and i is not None and c.after:
            routes[i] = {"name": routes[i]["name"], "properties": dict(c.after)}
        elif c.action == "add" and c.after:
            routes.append({"name": c.name, "properties": dict(c.after)})
    props["routes"] = [r for i, r in enumerate(routes) if i not in dropped]
    return body


def subnet_body(subnet: Mapping[str, Any], table_id: str | None) -> dict[str, Any]:
    body = copy.deepcopy(dict(subnet))
    body.pop("etag", None)
    props = body.setdefault("properties", {})
    props.pop("provisioningState", None)
    if table_id:
        props["routeTable"] = {"id": table_id}
    else:
        props.pop("routeTable", None)
    return body


def _address_props(address: str | None) -> dict[str, Any]:
    """A static configuration's address keys: a prefix as its network address plus
    ``privateIPAddressPrefixLength`` (ASSUMPTION: Azure takes a static block so, docs/decisions/0028)."""
    if address and "/" in address:
        base, _, length = address.partition("/")
        return {"privateIPAddress": base, "privateIPAddressPrefixLength": int(length)}
    return {"privateIPAddress": address}


def nic_body(nic: Mapping[str, Any], changes: list[Change]) -> dict[str, Any]:
    """The NIC as read, with forwarding turned on and ip configurations edited as ``changes`` say.

    Applying a change that is already true changes nothing, so a body built from a NIC re-read
    after a 412 (or after a first, deletions-only PUT) is still right.
    """
    body = copy.deepcopy(dict(nic))
    body.pop("etag", None)
    props = body.setdefault("properties", {})
    props.pop("provisioningState", None)
    cfgs = [c for c in props.get("ipConfigurations") or []]
    for c in cfgs:
        c.pop("etag", None)
        (c.get("properties") or {}).pop("provisioningState", None)
    primary = _primary(cfgs)
    subnet = ((primary or {}).get("properties") or {}).get("subnet")
    for ch in changes:
        if ch.kind == "nic" and ch.action == "enable-ip-forwarding":
            props["enableIPForwarding"] = True
        elif ch.kind == "public_ip" and ch.action == "associate" and ch.after and primary is not None:
            primary.setdefault("properties", {})["publicIPAddress"] = {"id": ch.after["id"]}
        elif ch.kind == "public_ip" and ch.action == "dissociate":
            for c in cfgs:
                ref = str(((c.get("properties") or {}).get("publicIPAddress") or {}).get("id") or "")
                if ref and name_key(ref.rsplit("/", 1)[-1]) == name_key(ch.name):
                    del c["properties"]["publicIPAddress"]
        elif ch.kind == "ip_config":
            if ch.action == "adopt" and ch.before:  # the foreign one leaves in the PUT nestnet's arrives in
                gone = name_key(str(ch.before["name"]))
                cfgs = [c for c in cfgs if name_key(c["name"]) != gone]
            key = name_key(ch.name)
            i = next((i for i, c in enumerate(cfgs) if name_key(c["name"]) == key), None)
            if ch.action == "delete":
                if i is not None:
                    del cfgs[i]
            elif i is None:
                cfgs.append({"name": ch.name, "properties": {
                    "primary": False,
                    "privateIPAllocationMethod": "Static",
                    "privateIPAddressVersion": "IPv4",
                    "subnet": {"id": subnet["id"]} if subnet else None,
                    **_address_props(ch.after["privateIPAddress"] if ch.after else None),
                }})
            elif ch.after:
                p = cfgs[i].setdefault("properties", {})
                p["privateIPAllocationMethod"] = "Static"
                p.pop("privateIPAddressPrefixLength", None)
                p.update(_address_props(ch.after["privateIPAddress"]))
    props["ipConfigurations"] = cfgs
    return body
