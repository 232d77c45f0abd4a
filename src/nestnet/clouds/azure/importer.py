"""``nestnet import``: a spec that reproduces the fabric Azure has today (pure over ARM JSON).

Reads are the reconciler's three (route table, VNet with its subnets, the resource group's NICs);
``render`` turns them into spec text:

- each VirtualAppliance route whose next hop is a NIC's primary address becomes that NIC's
  host, with the route's prefix pinned as the host's block;
- every other NIC in a subnet that uses the table becomes an endpoint (it must stay reachable);
- subnets keep their association as they are (``route_table: true`` only where the table is);
- what Azure cannot say (uplink, guest style, the pool for future blocks, names of VMs without
  a VM reference) is guessed, and each guess carries a YAML comment saying so.

Nothing about where packets go changes when the result is applied with ``--adopt``: the same
prefixes to the same next hops, under nestnet's route names.

A fabric without a route table whose host NICs carry prefix ip configurations (Azure's "Prefix on
NIC", docs/decisions/0028) is imported in ``nic-prefix`` mode: each NIC with a non-primary /28
prefix becomes a host with that block, every other NIC of the VNet an endpoint; ``--adopt`` then
renames each prefix configuration to nestnet's name in its NIC's one PUT.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from ipaddress import IPv4Network, ip_network
from typing import Any, Mapping

from .facts import name_key
from ...errors import UsageError
from ...spec import HOST_DEFAULTABLE, NODE_NAME_RE


@dataclass
class Imported:
    text: str
    hosts: dict[str, str] = field(default_factory=dict)  # host -> block
    endpoints: dict[str, str] = field(default_factory=dict)  # endpoint -> ip
    skipped: list[str] = field(default_factory=list)  # routes not imported, with the reason


def _props(d: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (d or {}).get("properties") or {}


def _last(rid: str | None) -> str:
    return (rid or "").rstrip("/").rsplit("/", 1)[-1]


def _primary(nic: Mapping[str, Any]) -> Mapping[str, Any] | None:
    cfgs = _props(nic).get("ipConfigurations") or []
    return next((c for c in cfgs if _props(c).get("primary")), cfgs[0] if cfgs else None)


def _name_of(nic: Mapping[str, Any]) -> tuple[str, bool]:
    """A node name for a NIC: its VM's name, else guessed from the NIC's name."""
    vm = _last((_props(nic).get("virtualMachine") or {}).get("id"))
    if vm and NODE_NAME_RE.match(vm):
        return vm, False
    base = re.sub(r"(-vm)?-nic$", "", nic["name"], flags=re.I) or nic["name"]
    base = re.sub(r"[^A-Za-z0-9-]", "-", base).strip("-")[:63] or "node"
    return base, True


def fabric_name(raw: str) -> str:
    s = re.sub(r"[^a-z0-9-]", "-", raw.lower()).strip("-")[:24].strip("-")
    return s or "imported"


def _prefix_hosts(nics: list[Mapping[str, Any]], subnet_of_id: Mapping[str, str], used_names: set[str],
                  skipped: list[str]) -> list[dict[str, Any]]:
    """Hosts of a nic-prefix fabric: each NIC's first non-primary prefix ip configuration."""
    hosts: list[dict[str, Any]] = []
    for nic in nics:
        primary = _primary(nic)
        found = []
        for c in _props(nic).get("ipConfigurations") or []:
            p = _props(c)
            if c is primary or not p.get("privateIPAddressPrefixLength") or not p.get("privateIPAddress"):
                continue
            try:
                found.append((c["name"], ip_network(f"{str(p['privateIPAddress']).partition('/')[0]}/"
                                                    f"{p['privateIPAddressPrefixLength']}")))
            except ValueError:
                skipped.append(f"ip configuration {c['name']!r} of {nic['name']!r}: {p['privateIPAddress']!r} is not "
                               "a network address")
        if not found or not _props(primary).get("privateIPAddress"):
            continue
        for cname, block in found[1:]:
            skipped.append(f"prefix {block} ({cname!r} on {nic['name']!r}): the NIC already has a block "
                           "(nestnet gives each host one)")
        hname, guessed = _name_of(nic)
        while name_key(hname) in used_names:
            hname, guessed = f"{hname}-x", True
        used_names.add(name_key(hname))
        subnet = subnet_of_id.get((((_props(primary).get("subnet")) or {}).get("id") or "").lower(), "")
        hosts.append({"name": hname, "ip": str(_props(primary)["privateIPAddress"]), "nic": nic["name"],
                      "subnet": subnet, "block": found[0][1], "guessed": guessed, "config": found[0][0]})
    return hosts


def render(
    *,
    resource_group: str,
    vnet: Mapping[str, Any],
    table: Mapping[str, Any] | None,
    nics: list[Mapping[str, Any]],
    name: str,
    host_defaults: Mapping[str, str] | None = None,
    subscription_id: str | None = None,
) -> Imported:
    vp = _props(vnet)
    space = [str(p) for p in (vp.get("addressSpace") or {}).get("addressPrefixes") or []]
    table = table or {}
    table_id = (table.get("id") or "").lower()
    subnets = []
    for s in vp.get("subnets") or []:
        rt = (_props(s).get("routeTable") or {}).get("id", "")
        prefix = _props(s).get("addressPrefix") or (_props(s).get("addressPrefixes") or [None])[0]
        subnets.append((s["name"], str(prefix), bool(rt) and rt.lower() == table_id))
    subnet_of_id = {(s.get("id") or "").lower(): s["name"] for s in vp.get("subnets") or []}

    by_ip: dict[str, Mapping[str, Any]] = {}
    for n in nics:
        p = _primary(n)
        if p and _props(p).get("privateIPAddress"):
            by_ip[str(_props(p)["privateIPAddress"])] = n

    hosts: list[dict[str, Any]] = []  # name, ip, nic, subnet, block, guessed
    host_nics: set[str] = set()
    skipped: list[str] = []
    used_names: set[str] = set()
    for r in _props(table).get("routes") or []:
        rp = _props(r)
        if str(rp.get("nextHopType", "")).lower() != "virtualappliance":
            continue
        hop = str(rp.get("nextHopIpAddress") or "")
        nic = by_ip.get(hop)
        if nic is None:
            skipped.append(f"route {r['name']!r} ({rp.get('addressPrefix')} -> {hop}): no NIC in {resource_group!r} has {hop}")
            continue
        if nic["name"] in host_nics:
            skipped.append(f"route {r['name']!r} ({rp.get('addressPrefix')}): host NIC {nic['name']!r} already has a block "
                           "(nestnet gives each host one)")
            continue
        try:
            block = ip_network(str(rp.get("addressPrefix")))
        except ValueError:
            skipped.append(f"route {r['name']!r}: {rp.get('addressPrefix')!r} is not a network address")
            continue
        hname, guessed = _name_of(nic)
        while name_key(hname) in used_names:  # names that differ only by case are one to Azure
            hname, guessed = f"{hname}-x", True
        used_names.add(name_key(hname))
        host_nics.add(nic["name"])
        subnet = subnet_of_id.get((((_props(_primary(nic)).get("subnet")) or {}).get("id") or "").lower(), "")
        hosts.append({"name": hname, "ip": hop, "nic": nic["name"], "subnet": subnet, "block": block,
                      "guessed": guessed, "route": r["name"]})
    mode = "routed"
    if not hosts:
        hosts = _prefix_hosts(nics, subnet_of_id, used_names, skipped)
        host_nics = {h["nic"] for h in hosts}
        mode = "nic-prefix"
    if not hosts:
        where = f"route table {table.get('name')!r}: no VirtualAppliance route points" if table else (
            f"virtual network {vnet.get('name')!r} has no route table, and no")
        raise UsageError(
            f"{where} at a NIC in resource group {resource_group!r} (nor does any NIC carry a prefix ip "
            "configuration); nothing to import" + (f" ({'; '.join(skipped)})" if skipped else "")
        )

    # nic-prefix: every subnet reaches the blocks by Azure's own delivery, so every NIC stays an endpoint
    associated = {s for s, _, a in subnets if a} if mode == "routed" else {s for s, _, _ in subnets}
    endpoints: list[tuple[str, str, str, bool]] = []
    for n in nics:
        if n["name"] in host_nics:
            continue
        p = _primary(n)
        ip = str(_props(p).get("privateIPAddress") or "")
        sub = subnet_of_id.get(((_props(p).get("subnet") or {}).get("id") or "").lower(), "")
        if not ip or sub not in associated:
            continue
        ename, guessed = _name_of(n)
        while name_key(ename) in used_names:
            ename, guessed = f"{ename}-x", True
        used_names.add(name_key(ename))
        endpoints.append((ename, ip, sub, guessed))

    blocks = [h["block"] for h in hosts]
    lens = Counter(b.prefixlen for b in blocks)
    plen = lens.most_common(1)[0][0]
    pool, pool_why = _pool(blocks, subnets)

    if mode == "routed":
        head = [f"# route table {table.get('name')}. Apply with --adopt: the routes keep their prefixes and next hops",
                "# and take nestnet's names. Lines marked 'guessed' are not visible in Azure: check them."]
    else:
        head = ["# its NICs' prefix ip configurations (nic-prefix mode, docs/decisions/0028). Apply with --adopt: each",
                "# prefix takes nestnet's name in its NIC's one PUT. Lines marked 'guessed' are not visible in Azure."]
    out: list[str] = [
        f"# Imported by `nestnet import` from resource group {resource_group}, virtual network {vnet.get('name')},",
        *head,
        "version: 1",
        f"name: {name}",
        "azure:",
    ]
    if subscription_id:
        out.append(f"  subscription_id: {subscription_id}")
    out += [f"  resource_group: {resource_group}"]
    if vnet.get("location"):
        out.append(f"  location: {vnet['location']}")
    out += [
        f"  vnet: {vnet.get('name')}",
        f"  address_space: [{', '.join(space)}]",
        *([f"  route_table: {table.get('name')}"] if mode == "routed" else []),
        "subnets:",
    ]
    for s, prefix, assoc in subnets:
        line = f"  - {{name: {s}, prefix: {prefix}"
        out.append(line + ("}" if assoc or mode != "routed" else
                           ", route_table: false}      # not associated with the table today"))
    out += [
        "nested:",
        f"  mode: {mode}",
        f"  pool: {pool}       # guessed: {pool_why}",
        f"  block_prefix_len: {plen}" + ("" if len(lens) == 1 else "   # guessed: the most common block size"),
        "  guest_style: onlink       # guessed: the nested VMs' own config is not visible in Azure",
    ]
    hd = dict(host_defaults or {})
    bad = [k for k in hd if k not in HOST_DEFAULTABLE]
    if bad:
        raise UsageError(f"--host-default {bad[0]}: not a host key that can default (one of {', '.join(HOST_DEFAULTABLE)})")
    if hd:
        out.append("host_defaults:")
        out += [f"  {k}: {v}" for k, v in hd.items()]
    else:
        out.append("host_defaults: {}       # guessed: uplink eth0; set uplink/bridge as the hosts have them")
    out.append("hosts:")
    for h in hosts:
        src = f"route {h['route']}" if "route" in h else f"prefix ip configuration {h['config']}"
        note = f"   # from {src}" + ("; name guessed from the NIC" if h["guessed"] else "")
        sub = f", subnet: {h['subnet']}" if h["subnet"] else ""
        out.append(f"  - {{name: {h['name']}, ip: {h['ip']}, nic: {h['nic']}{sub}, block: {h['block']}}}{note}")
    out.append("vms: []       # nested VMs are not visible in Azure: add each with `nestnet vm add SPEC NAME --host H --ip IP`")
    if endpoints:
        out.append("endpoints:")
        for ename, ip, sub, guessed in endpoints:
            note = "   # name guessed from the NIC" if guessed else ""
            out.append(f"  - {{name: {ename}, ip: {ip}, subnet: {sub}}}{note}")
    for s in skipped:
        out.append(f"# not imported: {s}")
    return Imported("\n".join(out) + "\n", {h["name"]: str(h["block"]) for h in hosts},
                    {e[0]: e[1] for e in endpoints}, skipped)


def _pool(blocks: list[IPv4Network], subnets: list[tuple[str, str, bool]]) -> tuple[IPv4Network, str]:
    """Where future blocks come from: the one subnet holding every block, else their supernet."""
    nets = []
    for _, prefix, _ in subnets:
        try:
            nets.append(ip_network(prefix))
        except ValueError:
            continue
    holding = [n for n in nets if all(b.subnet_of(n) for b in blocks)]
    if holding:
        n = min(holding, key=lambda x: x.num_addresses)
        return n, "the subnet that holds every block today"
    sup = blocks[0]
    while not all(b.subnet_of(sup) for b in blocks):
        sup = sup.supernet()
    return sup, "the smallest network holding every block today"


def read(client: Any, vnet: str, route_table: str | None) -> tuple[dict, dict | None, list[dict]]:
    """The three reads, through the ARM seam. Without ``route_table``: the one table the VNet's
    subnets use."""
    v = client.get_vnet(vnet)
    if route_table is None:
        ids = {((_props(s).get("routeTable") or {}).get("id") or "") for s in _props(v).get("subnets") or []} - {""}
        if not ids:  # no route table: a nic-prefix fabric, or nothing to import (render says which)
            return v, None, client.list_nics()
        if len(ids) != 1:
            found = ", ".join(sorted(_last(i) for i in ids)) or "none"
            raise UsageError(f"virtual network {vnet!r}: its subnets use {len(ids)} route tables ({found}); "
                             "pass --route-table NAME")
        route_table = _last(ids.pop())
    t = client.get_route_table(route_table)
    if t is None:
        raise UsageError(f"route table {route_table!r} was not found in resource group {client.rg!r}")
    return v, t, client.list_nics()

