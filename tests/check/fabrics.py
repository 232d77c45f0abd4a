"""Random small fabrics (spec dicts) and fault sets, shared by the class and differential tests."""

from __future__ import annotations

import random
from pathlib import Path

import yaml

from nestnet.faults import FAULT_KINDS
from nestnet.plan import Plan, load_plan


def random_spec(rng: random.Random, name: str, modes: tuple[str, ...] = ("routed",), bridges: bool = False) -> dict:
    """``bridges``: vary the hosts' bridges too (OVS; bridges holding the uplink)."""
    mode = rng.choice(modes)
    style = rng.choice(("onlink", "subnet")) if mode == "routed" else "onlink"
    n_hosts = rng.randint(2, 5)
    subnets = [
        {"name": "sa", "prefix": "10.0.1.0/24", "route_table": rng.random() < 0.9},
        {"name": "sb", "prefix": "10.0.2.0/24", "route_table": rng.random() < 0.8},
        {"name": "sc", "prefix": "10.0.3.0/24", "route_table": rng.random() < 0.7},
    ]
    hosts = []
    for i in range(n_hosts):
        # subnet style needs every block inside its host's subnet: keep those hosts in sa
        sub = "sa" if style == "subnet" or mode in ("secondary-ip", "nic-prefix") or rng.random() < 0.6 else "sb"
        third = 1 if sub == "sa" else 2
        host = {"name": f"h{i}", "ip": f"10.0.{third}.{4 + i}", "uplink": "eth1"}
        if bridges:
            host["bridge_has_uplink"] = rng.random() < 0.3
            host["bridge_type"] = rng.choice(("linux", "linux", "ovs"))
        hosts.append(host)
    vms = []
    for i, h in enumerate(hosts):
        for j in range(rng.randint(0, 3)):
            vms.append({"name": f"v{i}{j}", "host": h["name"]})
    endpoints = [
        {"name": f"e{k}", "ip": f"10.0.{rng.choice((1, 2, 3))}.{100 + k}"} for k in range(rng.randint(0, 2))
    ]
    pool = {"routed": "10.0.1.128/25", "nat": "192.168.100.0/24", "secondary-ip": "10.0.1.128/25",
            "nic-prefix": "10.0.1.128/25"}[mode]
    return {
        "version": 1,
        "name": name,
        "azure": {"resource_group": "rg", "vnet": "vnet", "address_space": ["10.0.0.0/16"], "route_table": "rt"},
        "subnets": subnets,
        "nested": {
            "mode": mode,
            "pool": pool,
            "block_prefix_len": 28,
            "guest_style": style,
            "egress": rng.choice(("masquerade-outside-vnet", "masquerade-outside-vnet", "none")),
        },
        "hosts": hosts,
        "vms": vms,
        "endpoints": endpoints,
    }


def random_faults(rng: random.Random, plan: Plan, most: int = 3) -> list[str]:
    out = []
    for _ in range(rng.randint(0, most)):
        kind = rng.choice(sorted(FAULT_KINDS))
        names = list(plan.hosts) if FAULT_KINDS[kind][0] == "host" else list(plan.subnets)
        out.append(f"{kind}:{rng.choice(names)}")
    return out


def write_plan(tmp: Path, spec: dict) -> Plan:
    path = tmp / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return load_plan(path)


# Port rules for a TCP/UDP probe (``ports=True``): destination ports around the probes' 22, 53 and
# 1500; source ports never ephemeral, all ephemeral ones, or "*" (the lab's kernel picks the
# client's port in 32768-60999, where the model's worst-case judgement and the kernel agree).
DPORTS = (("*",), ("22",), ("53",), ("20-25",), ("1000-2000",), ("80", "22"), ("80", "443"), ("0-65535",))
SPORTS = (("*",), ("*",), ("*",), ("22",), ("1000-2000",), ("32768-65535",))


def random_nsgs(rng: random.Random, state, ports: bool = False):
    """``state.azure`` with 1-3 random NSGs (rules naming nodes' addresses, subnets, blocks and
    service tags; some for TCP or port 22, which a ping never matches) on random subnets and NICs.
    ``ports``: more rules, for TCP/UDP/Esp and port ranges (DPORTS, SPORTS), for a port probe."""
    from dataclasses import replace

    from nestnet.clouds.azure.nsg import Nsg, NsgRule

    az = state.azure
    prefixes = [str(state.address_of(n)) for n in state.node_names]
    prefixes += [str(s.prefix) for s in az.subnets.values()] + [str(h.block) for h in state.hosts.values()]
    prefixes += ["VirtualNetwork", "Internet", "*", "203.0.113.0/24"]
    nodes = [str(state.address_of(n)) for n in state.node_names]
    nsgs = {}
    for k in range(rng.randint(1, 3)):
        rules, used = [], set()
        # one deny naming a node, so that most fabrics have a pair an NSG drops
        direction = rng.choice(("Inbound", "Outbound"))
        used.add((direction, 4000))
        ends = [rng.choice(nodes), rng.choice(("*", "VirtualNetwork", rng.choice(nodes)))]
        rng.shuffle(ends)
        rules.append(NsgRule("deny-node", 4000, direction, "Deny", "*", (ends[0],), (ends[1],)))
        for j in range(rng.randint(0, 4)):
            direction = rng.choice(("Inbound", "Outbound"))
            prio = rng.choice([p for p in range(100, 1100, 100) if (direction, p) not in used])
            used.add((direction, prio))
            if ports:
                rules.append(NsgRule(
                    f"p{j}", prio, direction, rng.choice(("Allow", "Deny")),
                    rng.choice(("*", "Tcp", "Tcp", "Udp", "Icmp", "Esp")), (rng.choice(prefixes),),
                    (rng.choice(prefixes),), rng.choice(SPORTS), rng.choice(DPORTS)))
                continue
            rules.append(NsgRule(
                f"r{j}", prio, direction, rng.choice(("Allow", "Deny", "Deny")), rng.choice(("*", "*", "Icmp", "Tcp")),
                (rng.choice(prefixes),), (rng.choice(prefixes),), ("*",), (rng.choice(("*", "*", "*", "22")),)))
        nsgs[f"nsg{k}"] = Nsg(f"nsg{k}", tuple(rules))
    pick = [None, *nsgs]
    return replace(
        az, nsgs=nsgs,
        subnets={k: replace(s, nsg=rng.choice(pick)) for k, s in az.subnets.items()},
        nics={k: replace(n, nsg=rng.choice(pick)) for k, n in az.nics.items()},
    )
