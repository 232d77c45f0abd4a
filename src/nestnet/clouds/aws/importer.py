"""``nestnet aws import``: a spec reproducing the fabric EC2 holds today (pure, from ``Observed``).

The mode is read from what the hosts' ENIs carry: /28 IPv4 prefixes (``prefix``), routes to them
for ranges outside the VPC (``routed``), or secondary addresses (``secondary-ip``). Hosts are the
instances' primary ENIs that carry one of those; their blocks are the prefixes or route
destinations, the pool the smallest network holding every block. Names are the Name tags (the id
where there is none), so `nestnet aws diff` on the written spec finds the same resources and, on
an untouched fabric, shows no change.
"""

from __future__ import annotations

import re
from collections import Counter
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from ...errors import UsageError
from .desired import Eni, Observed

NAME_OK = re.compile(r"[^a-z0-9-]+")


def _fabric_name(text: str) -> str:
    name = NAME_OK.sub("-", text.lower()).strip("-")[:24].strip("-")
    return name or "imported"


def _common(nets: list[IPv4Network]) -> IPv4Network:
    net = nets[0]
    while not all(n.subnet_of(net) for n in nets):
        net = net.supernet()
    return net


def spec_from(obs: Observed, region: str, vpc_ref: str, name: str | None = None) -> dict[str, Any]:
    vpc_cidrs = [IPv4Network(c) for c in obs.cidr_blocks]
    subnet_name = {sid: (n or sid) for sid, (n, _) in obs.subnets.items()}
    primary = {eni: (iid, iname, itype) for iid, (iname, itype, eni) in obs.instances.items() if eni}
    hosts_enis = [e for e in obs.enis.values() if e.id in primary]
    blocks: dict[str, list[IPv4Network]] = {}
    mode = ""
    for e in hosts_enis:
        pref = [IPv4Network(p) for p in e.prefixes]
        if pref:
            blocks[e.id] = pref
    if blocks:
        mode = "prefix"
    else:
        for t in obs.tables.values():
            for r in t.routes:
                dest = IPv4Network(r.destination)
                if r.eni in primary and not any(dest.overlaps(c) for c in vpc_cidrs):
                    blocks.setdefault(r.eni, [])
                    if dest not in blocks[r.eni]:
                        blocks[r.eni].append(dest)
        if blocks:
            mode = "routed"
    secondary = {e.id: [IPv4Address(a) for a in e.secondary_ips] for e in hosts_enis if e.secondary_ips}
    if not mode and secondary:
        mode = "secondary-ip"
        for eni, ips in secondary.items():
            blocks[eni] = [IPv4Network(f"{min(ips)}/28", strict=False)]
    if not mode:
        raise UsageError(f"VPC {obs.vpc_id}: no instance's ENI carries a prefix, a route to it from outside the VPC, "
                         "or secondary addresses: nothing to import")
    for eni, nets in blocks.items():
        if len(nets) != 1:
            raise UsageError(f"network interface {eni} carries {len(nets)} blocks ({', '.join(map(str, nets))}); "
                             "nestnet plans one block per host")
    pool = _common([n[0] for n in blocks.values()])
    hosts, vms = [], []
    itypes = Counter(primary[eni][2] for eni in blocks)
    for eni_id, nets in sorted(blocks.items(), key=lambda kv: obs.enis[kv[0]].primary_ip):
        e: Eni = obs.enis[eni_id]
        iid, iname, _ = primary[eni_id]
        host = iname or iid
        hosts.append({"name": host, "ip": e.primary_ip, "subnet": subnet_name.get(e.subnet_id, e.subnet_id),
                      "nic": e.name or e.id, "block": str(nets[0])})
        for ip in secondary.get(eni_id, []) if mode == "secondary-ip" else []:
            vms.append({"name": f"vm-{str(ip).replace('.', '-')}", "host": host, "ip": str(ip)})
    tables = {}
    for t in obs.tables.values():
        for sid in t.subnet_ids:
            tables[subnet_name.get(sid, sid)] = t.name or t.id
    aws: dict[str, Any] = {"region": region, "vpc": vpc_ref, "cidr_blocks": [str(c) for c in vpc_cidrs]}
    if tables:
        aws["route_tables"] = dict(sorted(tables.items()))
    if itypes:
        aws["instance_type"] = itypes.most_common(1)[0][0]
    return {
        "version": 1,
        "name": _fabric_name(name or vpc_ref),
        "aws": aws,
        "subnets": [{"name": subnet_name[sid], "prefix": cidr} for sid, (_, cidr) in
                    sorted(obs.subnets.items(), key=lambda kv: IPv4Network(kv[1][1]))],
        "nested": {"mode": mode, "pool": str(pool), "block_prefix_len": next(iter(blocks.values()))[0].prefixlen,
                   "guest_style": "onlink", "egress": "masquerade-outside-vnet"},
        "hosts": hosts,
        "vms": vms,
    }


def import_text(obs: Observed, region: str, vpc_ref: str, name: str | None = None) -> str:
    import yaml

    data = spec_from(obs, region, vpc_ref, name)
    head = (f"# Imported from EC2 (VPC {obs.vpc_id} in {region}) by `nestnet aws import`: the hosts are the\n"
            "# instances whose ENIs carry a block; add the nested VMs (vms:) and endpoints you need.\n")
    return head + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)
