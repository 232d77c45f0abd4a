"""Azure's control-plane state as the lab sees it, and what it means for the SDN namespace (pure, bar
the emulator reads at the end).

The state is the model's ``nestnet.model.state.CloudState`` - one Azure state for check, doctor
and lab. ``CloudState.from_plan(plan)`` is the planned state; Azure-side faults are the model's
what-ifs (``with_faults``: the same code as ``check --fault``); with ``lab up --azure api`` the
state comes from what the ARM emulator holds (``from_resources``, through the one ARM reader
``nestnet.clouds.azure.dataplane``). ``nestnet.clouds.azure.sdn.program(topology, state)`` makes the SDN
namespace match it idempotently.

``desired(topology, state)`` turns a state into the SDN namespace's dynamic configuration, and
``diff(desired, observed)`` into the only changes needed. Both are pure.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from .facts import none_routes
from ...faults import Fault
from ...model.state import CloudState, from_plan
from ...model.whatif import apply_faults, is_cloud_fault
from ...plan import Plan
from ...lab.topology import INET_LINK_PEER, INET_PORT, SINK, Topology

if TYPE_CHECKING:
    from .emulator import Arm

DEFAULT = IPv4Network("0.0.0.0/0")


def with_faults(plan: Plan, faults: Iterable[Fault]) -> CloudState:
    """The planned Azure state with the Azure-side ``faults`` applied (the model's what-ifs)."""
    return apply_faults(from_plan(plan), [f for f in faults if is_cloud_fault(f)]).cloud


# A route in the fabric's route-table table, compared on these fields only:
# (dst, type, via, dev) with type "unicast" or "blackhole".
RouteKey = tuple[str, str, str | None, str | None]


@dataclass(frozen=True)
class SdnConfig:
    """The fabric's state that depends on Azure's configuration."""

    table: frozenset[RouteKey]  # the route table's routes: system routes overlaid by user routes
    rule_ports: frozenset[str]  # ports whose traffic is routed by the route table
    ipfwd_ports: frozenset[str]  # ports whose src/dst check is lifted
    nsg_sig: str = ""  # signature of the NSG table ("" none)
    # NIC prefixes (nic-prefix mode): their delivery in the main table (the route table has them
    # in ``table``) and the (port, address) pairs the src/dst check lets through
    delivered: frozenset[RouteKey] = frozenset()
    prefix_ips: frozenset[tuple[str, str]] = frozenset()
    nsg_text: str = field(default="", compare=False)  # desired only: the table's text
    pip_sig: str = ""  # signature of the public IP table ("" none)
    pip_text: str = field(default="", compare=False)  # desired only: the table's text


@dataclass(frozen=True)
class SdnChanges:
    del_routes: tuple[RouteKey, ...] = ()
    add_routes: tuple[RouteKey, ...] = ()
    del_rules: tuple[str, ...] = ()
    add_rules: tuple[str, ...] = ()
    del_ipfwd: tuple[str, ...] = ()
    add_ipfwd: tuple[str, ...] = ()
    nsg_text: str | None = None  # the NSG table to load ("" deletes it); None: unchanged
    pip_text: str | None = None  # the public IP table to load ("" deletes it); None: unchanged
    del_delivered: tuple[RouteKey, ...] = ()
    add_delivered: tuple[RouteKey, ...] = ()
    del_prefix_ips: tuple[tuple[str, str], ...] = ()
    add_prefix_ips: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return any((self.del_routes, self.add_routes, self.del_rules, self.add_rules, self.del_ipfwd, self.add_ipfwd,
                    self.nsg_text is not None, self.pip_text is not None, self.del_delivered, self.add_delivered,
                    self.del_prefix_ips, self.add_prefix_ips))


def system_routes(topo: Topology) -> dict[IPv4Network, RouteKey]:
    """Azure's system routes plus delivery by NIC ownership, as Linux routes."""
    out: dict[IPv4Network, RouteKey] = {}
    for space in topo.address_space:
        out[space] = (str(space), "unicast", None, SINK)  # VnetLocal; unowned addresses vanish
    for n in topo.nics:
        out[IPv4Network(n.ip)] = (f"{n.ip}/32", "unicast", None, n.port)
        for s in n.secondary:  # delivered to the NIC that owns the IP configuration
            out[IPv4Network(s)] = (f"{s}/32", "unicast", str(n.ip), n.port)
    out[DEFAULT] = ("0.0.0.0/0", "unicast", INET_LINK_PEER, INET_PORT)
    for n in none_routes(tuple(topo.address_space)):  # Azure drops these private ranges (next hop None)
        out[n] = (str(n), "blackhole", None, None)
    return out


def desired(topo: Topology, state: CloudState) -> SdnConfig:
    table = system_routes(topo)
    for r in state.user_routes:
        nic = topo.nic_of_ip(r.next_hop_ip)
        # On an exact tie a user route beats a system route; a next hop no NIC owns drops.
        table[r.prefix] = (
            (str(r.prefix), "unicast", str(r.next_hop_ip), nic.port) if nic else (str(r.prefix), "blackhole", None, None)
        )
    # Azure delivers a NIC prefix's addresses to its NIC (decision 0028), in every subnet's view.
    delivered: set[RouteKey] = set()
    prefix_ips: set[tuple[str, str]] = set()
    for n in topo.nics:
        for p in getattr(state.nics.get(n.nic), "prefixes", ()):
            delivered.add((str(p), "unicast", str(n.ip), n.port))
            prefix_ips.update((n.port, str(a)) for a in p)
            # a user route for the same block wins, as on an exact tie in Azure (ASSUMPTION, decision 0028)
            table.setdefault(p, (str(p), "unicast", str(n.ip), n.port))
    associated = {name for name, s in state.subnets.items() if s.route_table}
    forwarding = {name for name, n in state.nics.items() if n.ip_forwarding}
    return SdnConfig(
        table=frozenset(table.values()),
        rule_ports=frozenset(n.port for n in topo.nics if n.subnet in associated),
        ipfwd_ports=frozenset(n.port for n in topo.nics if n.nic in forwarding),
        nsg_sig=nsg_signature(nsgs := render_nsgs(topo, state)),
        nsg_text=nsgs,
        pip_sig=nsg_signature(pips := render_public_ips(topo, state)),
        pip_text=pips,
        delivered=frozenset(delivered),
        prefix_ips=frozenset(prefix_ips),
    )


def diff(want: SdnConfig, have: SdnConfig) -> SdnChanges:
    return SdnChanges(
        del_routes=tuple(sorted(have.table - want.table, key=str)),
        add_routes=tuple(sorted(want.table - have.table, key=str)),
        del_rules=tuple(sorted(have.rule_ports - want.rule_ports)),
        add_rules=tuple(sorted(want.rule_ports - have.rule_ports)),
        del_ipfwd=tuple(sorted(have.ipfwd_ports - want.ipfwd_ports)),
        add_ipfwd=tuple(sorted(want.ipfwd_ports - have.ipfwd_ports)),
        nsg_text=want.nsg_text if want.nsg_sig != have.nsg_sig else None,
        pip_text=want.pip_text if want.pip_sig != have.pip_sig else None,
        del_delivered=tuple(sorted(have.delivered - want.delivered, key=str)),
        add_delivered=tuple(sorted(want.delivered - have.delivered, key=str)),
        del_prefix_ips=tuple(sorted(have.prefix_ips - want.prefix_ips)),
        add_prefix_ips=tuple(sorted(want.prefix_ips - have.prefix_ips)),
    )


# --- the ARM emulator's state (``lab up --azure api``) -----------------------------------------

def from_resources(resources: Mapping[str, Mapping[str, Any]], plan: Plan) -> CloudState:
    """The CloudState the emulator's resources give the plan's VNet, route table and NICs.

    Secondary ip configurations are not read: the lab's topology takes them from the plan, so in
    secondary-ip mode the lab delivers nested VM addresses whatever the emulator holds."""
    from .dataplane import azure_state, with_nsgs, with_public_ips
    from .emulator import DEFAULT_SUBSCRIPTION, NET

    az = plan.azure
    root = f"/subscriptions/{az.subscription_id or DEFAULT_SUBSCRIPTION}/resourceGroups/{az.resource_group}/providers/{NET}"
    table_id = f"{root}/routeTables/{az.route_table}" if az.route_table else ""
    nic_root = f"{root}/networkInterfaces/".lower()
    nics = {r["name"]: r for k, r in resources.items() if k.startswith(nic_root) and "/" not in k[len(nic_root):]}
    nsg_root = f"{root}/networkSecurityGroups/".lower()
    nsgs = [r for k, r in resources.items() if k.startswith(nsg_root) and "/" not in k[len(nsg_root):]]
    vnet = resources.get(f"{root}/virtualNetworks/{az.vnet}".lower())
    state = azure_state(
        CloudState.from_plan(plan),
        resources.get(table_id.lower()) if table_id else None,
        vnet,
        nics,
        table_id,
    )
    pip_root = f"{root}/publicIPAddresses/".lower()
    pips = [r for k, r in resources.items() if k.startswith(pip_root) and "/" not in k[len(pip_root):]]
    state = with_public_ips(state, nics, pips)  # on the NICs' primary configurations, as ARM holds them
    return with_nsgs(state, nsgs, az.vnet, vnet, nics)


def from_emulator(state_dir: str | Path, plan: Plan) -> CloudState:
    """Read ``STATE_DIR/state.json`` (as the emulator last wrote it) and return the CloudState."""
    from .emulator import STATE_FILE

    path = Path(state_dir) / STATE_FILE
    resources = json.loads(path.read_text())["resources"] if path.exists() else {}
    return from_resources(resources, plan)


def lab_programmer(plan: Plan, delay: float = 0.0) -> Callable[["Arm"], None]:
    """An ``Arm.on_change`` hook that makes the running lab's SDN namespace match the emulator.

    Runs in the emulator's request thread after each accepted write; a failure is reported on
    stderr and does not fail the ARM request (the write did happen, as it would in Azure).

    ``delay``: the data plane follows each write only ``delay`` seconds later, in write order
    (ARM answers at once; Azure's route programming takes seconds - docs/decisions/0013). The
    state is the one the write left, captured when it was accepted.
    """
    from . import sdn

    topo = Topology.from_plan(plan)

    def apply(state: Any) -> None:
        try:
            sdn.program_ns(topo, state)
        except Exception as exc:  # keep serving: the lab may have been torn down under us
            print(f"nestnet azure emulator: programming lab {plan.name} failed: {exc}", file=sys.stderr, flush=True)

    def zone(arm: "Arm") -> None:  # the lab's Azure DNS answers from the emulator's zone, at once
        if plan.azure.private_dns_zone:
            from .emulator.privatedns import a_records
            from ...lab.dns import write_zone

            write_zone(plan, a_records(arm.resources, plan.azure.private_dns_zone))

    if delay <= 0:
        return lambda arm: (zone(arm), apply(from_resources(arm.resources, plan)))[1]
    pending: "queue.Queue[tuple[float, Any]]" = queue.Queue()

    def worker() -> None:
        while True:
            due, state = pending.get()
            time.sleep(max(0.0, due - time.monotonic()))
            apply(state)

    threading.Thread(target=worker, name="propagation", daemon=True).start()
    first = [True]

    def program(arm: "Arm") -> None:
        zone(arm)
        state = from_resources(arm.resources, plan)
        if first[0]:  # the lab starts from what the emulator holds: no delay for that
            first[0] = False
            apply(state)
            return
        pending.put((time.monotonic() + delay, state))

    return program


# --- network security groups (docs/decisions/0022) ---------------------------------------------

NSG_TABLE = "fabnsg"
_L4 = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "esp": "esp", "ah": "ah"}


def _alternatives(prefixes: tuple[str, ...], vnet: str) -> list[str]:
    """nft matches (without the ``ip saddr``/``ip daddr``) any of which stands for ``prefixes``;
    [] when none can match (another service tag, an ASG)."""
    from .nsg import AZURE_LOAD_BALANCER

    cidrs, out = [], []
    for p in prefixes:
        low = p.strip().lower()
        if low in ("*", "any", "0.0.0.0/0"):
            return [""]
        if low == "virtualnetwork":
            out.append(f"@{vnet}")
        elif low == "internet":
            out.append(f"!= @{vnet}")
        elif low == "azureloadbalancer":
            cidrs.append(str(AZURE_LOAD_BALANCER))
        else:
            try:
                cidrs.append(str(IPv4Network(p.strip(), strict=False)))
            except ValueError:
                continue
    if cidrs:
        out.append("{ " + ", ".join(cidrs) + " }")
    return out


def _ports(ranges: tuple[str, ...]) -> str | None:
    if any(r.strip() == "*" for r in ranges):
        return None
    return "{ " + ", ".join(r.strip() for r in ranges) + " }"


def _rule_lines(r, vnet: str) -> list[str]:
    verdict = "return" if r.access == "Allow" else "drop"
    proto = r.protocol.lower()
    head = ""
    if proto != "*":
        if proto not in _L4:
            return []
        head = f"meta l4proto {_L4[proto]} "
    sports, dports = _ports(r.source_ports), _ports(r.destination_ports)
    if sports or dports:
        if proto in ("icmp", "esp", "ah"):
            return []  # no ports in these headers: the rule never matches
        if proto == "*":
            head = "meta l4proto { tcp, udp } "
        head += (f"th sport {sports} " if sports else "") + (f"th dport {dports} " if dports else "")
    lines = []
    for s in _alternatives(r.sources, vnet):
        for d in _alternatives(r.destinations, vnet):
            m = (f"ip saddr {s} " if s else "") + (f"ip daddr {d} " if d else "")
            lines.append(f"\t\t{head}{m}counter {verdict} comment \"{r.name}\"")
    return lines


def render_nsgs(topo: Topology, state: CloudState) -> str:
    """The ``table inet fabnsg`` text enforcing ``state``'s NSGs on the fabric's ports, or "" when
    no NSG is attached. Stateful by conntrack: a packet of an established flow passes; a new one
    meets, leaving its NIC, the NIC's then the subnet's outbound rules, and arriving at its NIC the
    subnet's then the NIC's inbound rules. A rule chain returns on Allow and drops on Deny, so
    every NSG on the way must allow. The last chain's name carries a signature of the text."""
    import hashlib

    from .nsg import DEFAULT_RULES

    owner_nic = {n.owner: n for n in state.nics.values()}
    per_port: list[tuple[str, str | None, str | None]] = []  # (port, subnet NSG, NIC NSG)
    for n in topo.nics:
        nic = owner_nic.get(n.node)
        sub = state.subnets.get(n.subnet)
        per_port.append((n.port, sub.nsg if sub is not None else None, nic.nsg if nic is not None else None))
    used = sorted({g for _, s, c in per_port for g in (s, c) if g})
    if not used:
        return ""
    vnet = "vnet"
    chains, index = [], {name: i for i, name in enumerate(used)}
    for name in used:
        nsg = state.nsgs.get(name)
        for direction in ("Inbound", "Outbound"):
            rules = nsg.ordered(direction) if nsg is not None else tuple(  # unknown: its DenyAll only
                r for r in DEFAULT_RULES if r.direction == direction and r.priority == 65500)
            body = [line for r in rules for line in _rule_lines(r, vnet)]
            chains.append(f"\tchain n{index[name]}_{direction[:3].lower()} {{ # {name}\n" + "\n".join(body) + "\n\t}")
    base = ["\t\ttype filter hook forward priority filter; policy accept;", "\t\tct state established,related accept"]
    for port, sub, nic in per_port:  # leaving the NIC: NIC then subnet
        base += [f"\t\tiifname \"{port}\" jump n{index[g]}_out" for g in (nic, sub) if g]
    for port, sub, nic in per_port:  # arriving at the NIC: subnet then NIC
        base += [f"\t\toifname \"{port}\" jump n{index[g]}_inb" for g in (sub, nic) if g]
    space = ", ".join(str(n) for n in state.tags.virtual_network)
    text = (f"table inet {NSG_TABLE} {{\n\tset {vnet} {{ type ipv4_addr; flags interval; auto-merge; "
            f"elements = {{ {space} }} }}\n" + "\n".join(chains) + "\n\tchain forward {\n" + "\n".join(base) + "\n\t}\n}\n")
    sig = hashlib.sha256(text.encode()).hexdigest()[:16]
    return text[:-2] + f"\tchain sig_{sig} {{\n\t}}\n}}\n"


def nsg_signature(text: str) -> str:
    """The signature ``render_nsgs`` put into ``text`` ("" for no table)."""
    i = text.find("chain sig_")
    return text[i + 10:i + 26] if i >= 0 else ""


# --- public IPs on NICs (docs/decisions/0027) ---------------------------------------------------

PIP_TABLE = "fabpip"


def render_public_ips(topo: Topology, state: CloudState) -> str:
    """The ``table ip fabpip`` text giving ``state``'s public IPs their 1:1 delivery, or "" when
    there are none: what arrives from the internet for a public address is DNATed to its NIC's
    primary address (the fabric's forward chain lets DNATed new flows in from the internet; the NSG
    table then judges them at the NIC, with the private address and the public port, as Azure does);
    conntrack turns the replies back into the public address. A Standard SKU address on a NIC with
    no NSG on it or its subnet gets no DNAT: closed, as Azure keeps it. New outbound connections
    from the NIC's primary address leave as the public IP (SNAT before the default outbound one),
    as Azure's instance-level public IP does. Signed like ``render_nsgs``."""
    import hashlib

    ports = {n.nic: n for n in topo.nics}
    lines = []
    for p in state.public_ips:
        nic, port = state.nics.get(p.nic), ports.get(p.nic)
        if nic is None or port is None:
            continue
        sub = state.subnets.get(nic.subnet)
        if p.standard and not nic.nsg and not (sub is not None and sub.nsg):
            lines.append(f"\t\t# {p.name}: Standard SKU, no NSG on {p.nic} or {nic.subnet}: closed")
            continue
        lines.append(f"\t\tiifname \"{INET_PORT}\" ip daddr {p.address} dnat ip to {port.ip} comment \"{p.name}\"")
    # outbound: the NIC's primary address leaves as its public IP, before the default outbound SNAT
    snat = [f"\t\toifname \"{INET_PORT}\" ip saddr {ports[p.nic].ip} snat ip to {p.address} comment \"{p.name}\""
            for p in state.public_ips if p.nic in ports and p.nic in state.nics]
    if not lines and not snat:
        return ""
    text = (f"table ip {PIP_TABLE} {{\n\tchain prerouting {{\n\t\ttype nat hook prerouting priority dstnat; "
            "policy accept;\n" + "\n".join(lines) + "\n\t}\n\tchain postrouting {\n\t\ttype nat hook postrouting "
            "priority srcnat - 10; policy accept;\n" + "\n".join(snat) + "\n\t}\n}\n")
    sig = hashlib.sha256(text.encode()).hexdigest()[:16]
    return text[:-2] + f"\tchain sig_{sig} {{\n\t}}\n}}\n"
