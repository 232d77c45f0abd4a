"""Azure as ARM reports it, in the model's shape: the one reader of ARM JSON for the data plane.

``azure_state(planned, table, vnet, nics, table_id)`` puts ARM's user routes, subnet associations
and NIC IP forwarding into the planned ``nestnet.model.state.CloudState``. Pure: the caller does
the reads (``doctor --azure`` through ``ArmClient``: 3 GETs; the lab from the emulator's
resources). The same JSON shapes as the SDK's ``as_dict()`` and the REST API (``properties``).
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Mapping

from .nsg import Nsg, NsgRule
from ...model.state import PUBLIC_STANDIN, CloudState, NicState, PublicIp, SubnetState, UserRoute, endpoint_nic
from ...plan import Plan
from .facts import none_routes, own_public_ip_name, reserved_addresses


def planned_state(plan: Plan) -> CloudState:
    """Azure once nestnet has applied ``plan``: the route table, associations, NIC forwarding."""
    az = plan.azure
    subnets = {
        s.name: SubnetState(s.name, s.prefix, s.gateway, s.name in az.subnet_associations, reserved_addresses(s.prefix))
        for s in plan.subnets.values()
    }
    secondary: dict[str, set[IPv4Address]] = {}
    for s in az.secondary_ips:
        secondary.setdefault(s.nic, set()).add(s.ip)
    prefixes: dict[str, tuple[IPv4Network, ...]] = {}
    for x in getattr(az, "nic_prefixes", ()):
        prefixes[x.nic] = (*prefixes.get(x.nic, ()), x.prefix)
    forwarding = set(az.nic_ip_forwarding)
    nics: dict[str, NicState] = {}
    for h in plan.hosts.values():
        own = prefixes.get(h.nic, ())
        nics[h.nic] = NicState(
            h.nic, h.subnet, h.name, frozenset({h.ip, *secondary.get(h.nic, ()), *(a for p in own for a in p)}),
            h.nic in forwarding, prefixes=own,
        )
    for e in plan.endpoints.values():
        nic = endpoint_nic(e.name)
        nics[nic] = NicState(nic, e.subnet, e.name, frozenset({e.ip}), False)
    return CloudState(
        address_space=plan.address_space,
        route_table=az.route_table,
        subnets=subnets,
        user_routes=tuple(UserRoute(r.name, r.address_prefix, r.next_hop_ip) for r in az.routes),
        nics=nics,
        resource_group=az.resource_group,
        none_routes=none_routes(tuple(plan.address_space)),
        public_ips=planned_public_ips(plan),
        owned_by_nic=plan.mode in ("secondary-ip", "nic-prefix"),
    )


def planned_public_ips(plan: Plan) -> tuple[PublicIp, ...]:
    """The public IPs of hosts whose VMs expose ports, at stand-in addresses (the i-th host of the
    plan gets ``PUBLIC_STANDIN[i + 1]``). Open to inbound: the plan's NSG rules allow the exposed
    ports (``azure diff`` names the rules an NSG nestnet may not change lacks)."""
    exposed = {v.host for v in plan.vms.values() if v.exposes}
    return tuple(PublicIp(h.public_ip or own_public_ip_name(plan.azure.route_prefix, h.name), PUBLIC_STANDIN[i + 1], h.nic)
                 for i, h in enumerate(plan.hosts.values()) if h.name in exposed)


def _props(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (obj or {}).get("properties") or {}


def _ipv4_net(text: str) -> IPv4Network | None:
    """A route's prefix; None for what the model does not route (service tags, IPv6)."""
    try:
        return IPv4Network(text, strict=False)
    except ValueError:
        return None


def user_routes(table: Mapping[str, Any] | None) -> tuple[UserRoute, ...]:
    """The table's VirtualAppliance routes (what nestnet writes; the model routes only those)."""
    return tuple(
        UserRoute(r["name"], net, IPv4Address(p["nextHopIpAddress"]))
        for r in _props(table).get("routes") or []
        if (p := _props(r)).get("nextHopType", "").lower() == "virtualappliance" and p.get("nextHopIpAddress")
        and (net := _ipv4_net(p.get("addressPrefix", ""))) is not None
    )


def associated_subnets(vnet: Mapping[str, Any] | None, table_id: str) -> frozenset[str]:
    """Subnets of ``vnet`` whose route table is ``table_id`` (ARM ids compare case-insensitively)."""
    return frozenset(
        s["name"] for s in _props(vnet).get("subnets") or []
        if table_id and (_props(s).get("routeTable") or {}).get("id", "").lower() == table_id.lower()
    )


def azure_state(
    planned: CloudState,
    table: Mapping[str, Any] | None,
    vnet: Mapping[str, Any] | None,
    nics: Mapping[str, Mapping[str, Any]],
    table_id: str,
) -> CloudState:
    """The planned CloudState with ARM's routes, associations and NIC forwarding in place.

    ``nics``: NIC name -> NIC resource. A NIC ARM does not list does not forward (it does not
    exist; endpoints' NICs, whose names the spec does not give, never forward in the plan)."""
    associated = associated_subnets(vnet, table_id)
    return replace(
        planned,
        user_routes=user_routes(table),
        subnets={k: replace(s, route_table=k in associated) for k, s in planned.subnets.items()},
        nics={k: _nic(n, nics.get(k)) for k, n in planned.nics.items()},
    )


def nic_prefixes(nic: Mapping[str, Any] | None) -> tuple[IPv4Network, ...]:
    """The NIC's prefix ip configurations as ARM holds them (``10.0.1.16/28``, or the bare network
    address beside ``privateIPAddressPrefixLength``: docs/decisions/0028)."""
    out = []
    for c in _props(nic).get("ipConfigurations") or []:
        p = _props(c)
        length, addr = p.get("privateIPAddressPrefixLength"), p.get("privateIPAddress")
        if length and addr:
            net = _ipv4_net(f"{str(addr).partition('/')[0]}/{length}")
            if net is not None:
                out.append(net)
    return tuple(out)


def _nic(planned: NicState, arm: Mapping[str, Any] | None) -> NicState:
    """A planned NIC with ARM's forwarding and prefixes: Azure delivers what a prefix holds, and
    only that (a NIC ARM does not list has neither)."""
    prefixes = nic_prefixes(arm)
    if not prefixes and not planned.prefixes:
        return replace(planned, ip_forwarding=arm is not None and bool(_props(arm).get("enableIPForwarding")))
    planned_addrs = {a for p in planned.prefixes for a in p}
    return replace(
        planned,
        ip_forwarding=arm is not None and bool(_props(arm).get("enableIPForwarding")),
        prefixes=prefixes,
        addresses=(planned.addresses - planned_addrs) | {a for p in prefixes for a in p},
    )


# --- network security groups ------------------------------------------------------------------

def _flat(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """ARM's ``properties`` (REST, SDK ``as_dict()`` keeps it flat already) or the object itself
    (``az network nsg list -o json`` prints the properties flattened)."""
    return obj.get("properties") or obj


def _list(p: Mapping[str, Any], one: str, many: str) -> tuple[str, ...]:
    values = [v for v in (p.get(many) or []) if isinstance(v, str)]
    single = p.get(one)
    if isinstance(single, str) and single:
        values.insert(0, single)
    return tuple(values) or ("*",)


def _snake(p: Mapping[str, Any], camel: str) -> Any:
    """SDK ``as_dict()`` writes snake_case keys; REST and az write camelCase."""
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    return p.get(camel, p.get(snake))


def security_rule(r: Mapping[str, Any], default: bool = False) -> NsgRule:
    """One ARM security rule; raises KeyError/ValueError/TypeError on a malformed one."""
    p = _flat(r)
    g = {k: _snake(p, k) for k in (
        "priority", "direction", "access", "protocol", "sourceAddressPrefix", "sourceAddressPrefixes",
        "destinationAddressPrefix", "destinationAddressPrefixes", "sourcePortRange", "sourcePortRanges",
        "destinationPortRange", "destinationPortRanges")}
    direction = str(g["direction"]).capitalize()
    access = str(g["access"]).capitalize()
    if direction not in ("Inbound", "Outbound"):
        raise ValueError(f"direction {g['direction']!r} is not Inbound or Outbound")
    if access not in ("Allow", "Deny"):
        raise ValueError(f"access {g['access']!r} is not Allow or Deny")
    prio = g["priority"]
    if not isinstance(prio, int) or isinstance(prio, bool):
        raise ValueError(f"priority {prio!r} is not an integer")
    if not isinstance(r.get("name"), str):
        raise ValueError("the rule has no name")
    return NsgRule(
        name=r["name"], priority=prio, direction=direction,  # type: ignore[arg-type]
        access=access, protocol=str(g["protocol"] or "*"),  # type: ignore[arg-type]
        sources=_list(g, "sourceAddressPrefix", "sourceAddressPrefixes"),
        destinations=_list(g, "destinationAddressPrefix", "destinationAddressPrefixes"),
        source_ports=_list(g, "sourcePortRange", "sourcePortRanges"),
        destination_ports=_list(g, "destinationPortRange", "destinationPortRanges"),
        default=default,
    )


def _last(ref: Any) -> tuple[str, str] | None:
    """(parent path, name) of an ARM id ``.../virtualNetworks/V/subnets/S`` or ``.../networkInterfaces/N``."""
    rid = ref.get("id") if isinstance(ref, Mapping) else None
    if not isinstance(rid, str) or "/" not in rid:
        return None
    parent, _, name = rid.rstrip("/").rpartition("/")
    return parent.lower(), name


def nsgs_from_arm(items: Any, vnet: str) -> tuple[dict[str, Nsg], dict[str, str], dict[str, str]]:
    """NSGs as ARM lists them (``az network nsg list -o json``, the SDK's ``as_dict()`` or REST):
    (NSGs by name, subnet of ``vnet`` -> NSG, NIC -> NSG) from each NSG's ``subnets[].id`` and
    ``networkInterfaces[].id``. Raises ValueError naming the NSG and rule that cannot be read.
    User rules only: Azure's default rules are the same in every NSG (``nsg.DEFAULT_RULES``)."""
    if not isinstance(items, list):
        raise ValueError("expected a JSON list of network security groups (`az network nsg list -o json`)")
    nsgs: dict[str, Nsg] = {}
    subnets: dict[str, str] = {}
    nics: dict[str, str] = {}
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise ValueError(f"[{i}]: not a network security group (no name)")
        name = item["name"]
        p = _flat(item)
        rules = []
        for j, r in enumerate(_snake(p, "securityRules") or []):
            try:
                rules.append(security_rule(r))
            except (AttributeError, ValueError, TypeError) as exc:
                rname = r.get("name", "?") if isinstance(r, Mapping) else "?"
                raise ValueError(f"[{i}] {name}: securityRules[{j}] {rname}: {exc}") from None
        nsgs[name] = Nsg(name, tuple(rules))
        for ref in _snake(p, "subnets") or []:
            got = _last(ref)
            if got and got[0].endswith(f"/virtualnetworks/{vnet.lower()}/subnets"):
                subnets[got[1]] = name
        for ref in _snake(p, "networkInterfaces") or []:
            got = _last(ref)
            if got and got[0].endswith("/networkinterfaces"):
                nics[got[1]] = name
    return nsgs, subnets, nics


def _own_nsg(obj: Mapping[str, Any] | None) -> str | None:
    got = _last(_snake(_flat(obj or {}), "networkSecurityGroup"))
    return got[1] if got else None


def with_nsgs(state: CloudState, items: Any, vnet: str,
              vnet_body: Mapping[str, Any] | None = None,
              nic_bodies: Mapping[str, Mapping[str, Any]] | None = None) -> CloudState:
    """``state`` with ARM's NSGs attached to its subnets and NICs. Attachments come from each NSG's
    back-references and, when given, from the subnets' and NICs' own ``networkSecurityGroup``."""
    nsgs, by_subnet, by_nic = nsgs_from_arm(items, vnet)
    for s in _snake(_flat(vnet_body or {}), "subnets") or []:
        if (n := _own_nsg(s)) is not None:
            by_subnet[s["name"]] = n
    for k, body in (nic_bodies or {}).items():
        if (n := _own_nsg(body)) is not None:
            by_nic[k] = n
    return replace(
        state,
        nsgs=nsgs,
        subnets={k: replace(s, nsg=by_subnet.get(k)) for k, s in state.subnets.items()},
        nics={k: replace(n, nsg=by_nic.get(k)) for k, n in state.nics.items()},
    )


# --- public IPs on NICs (docs/decisions/0027) ---------------------------------------------------

def with_public_ips(state: CloudState, nics: Mapping[str, Mapping[str, Any]], pips: Any) -> CloudState:
    """``state`` with the public IPs ARM shows on its NICs' primary ip configurations: the address
    and whether it is Standard (closed to inbound without an NSG). ``pips``: the resource group's
    public IPs (REST JSON, a list); one not listed, or without an address yet, is left out."""
    from ...model.state import PublicIp

    by_id = {str(p.get("id") or "").lower(): p for p in pips or [] if isinstance(p, Mapping)}
    out = []
    for name in state.nics:
        nic = nics.get(name)
        cfgs = list(_props(nic).get("ipConfigurations") or [])
        primary = next((c for c in cfgs if _props(c).get("primary")), cfgs[0] if cfgs else None)
        ref = (_props(primary).get("publicIPAddress") or {}).get("id")
        pip = by_id.get(str(ref).lower()) if ref else None
        address = _props(pip).get("ipAddress")
        if pip is None or not address:
            continue
        try:
            ip = IPv4Address(str(address))
        except ValueError:
            continue
        sku = str(((pip.get("sku") or {}).get("name")) or "Basic")
        out.append(PublicIp(str(pip.get("name")), ip, name, standard=sku.lower() == "standard"))
    return replace(state, public_ips=tuple(out))


def with_nsgs_file(state: Any, plan: Plan, path: str) -> Any:
    """``state`` (the model's State) with the NSGs of ``path`` (ARM JSON, as `az network nsg list
    -o json` prints it) on its subnets and NICs: `check --nsgs FILE`."""
    import json

    from ...errors import UsageError

    try:
        items = json.loads(open(path, encoding="utf-8").read())
    except OSError as exc:
        raise UsageError(f"--nsgs {path}: cannot read it ({exc.strerror})") from None
    except ValueError as exc:
        raise UsageError(f"--nsgs {path}: not JSON ({exc})") from None
    try:
        return replace(state, cloud=with_nsgs(state.cloud, items, plan.azure.vnet))
    except ValueError as exc:
        raise UsageError(f"--nsgs {path}: {exc}") from None
