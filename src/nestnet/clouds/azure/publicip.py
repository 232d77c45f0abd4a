"""Exposed ports on Azure's side (issue 26, docs/decisions/0027): each host whose VMs expose ports
needs a public IP on its NIC's primary ip configuration, and NSGs on the way that let the ports in.

Pure, like ``diff``: the wanted public IPs come from the plan; ``changes`` compares them with ARM's
JSON and yields only what differs; ``needs`` names what nestnet may not change.

- The public IP is the user's (``hosts[].public_ip``: it must exist in the resource group; nestnet
  never writes it, only associates it when it is free) or nestnet's own
  (``<route_prefix><host>-pip``, Standard SKU, Static, tagged like the route table): created when
  missing with ``If-None-Match: *``, refused when a foreign resource has its name.
- The association is one more edit in the NIC's one If-Match PUT (``diff.nic_body``): the primary
  configuration's ``publicIPAddress``. A primary configuration that holds another public IP, or a
  public IP another configuration holds, is refused before any write.
- NSGs: every exposed port must pass the NSGs on the host's subnet and NIC (inbound, judged as
  Azure does: the NIC's private address, the public port, a source on the internet). In an NSG
  that is nestnet's (tagged ``managed-by: nestnet`` and ``nestnet-fabric: <fabric>``) nestnet
  adds its Allow rule (``<route_prefix>expose-<vm>-<proto>-<port>``, at the highest free priority,
  so the user's own rules keep precedence), updates it, and deletes its rules no VM needs any
  more; it writes them with If-Match on the NSG's etag (If-None-Match for a new one). Any other
  NSG is only checked: what it lacks is a *need*, named with the `az` command that adds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any, Mapping

from .facts import name_key, own_public_ip_name

# A client on the internet, as the model's internet node (model/state.py: INTERNET_IP).
INTERNET_CLIENT = IPv4Address("203.0.113.10")
PRIORITIES = (100, 4096)  # user rules' priorities (Microsoft Learn, "Network security groups")


@dataclass(frozen=True)
class WantPublicIp:
    host: str
    nic: str
    name: str
    own: bool  # nestnet creates and owns it
    private_ip: str  # the NIC's primary address (Azure delivers the public IP there)
    subnet: str
    ports: tuple[tuple[str, int, str], ...]  # (proto, public port, VM) exposed through it


def wanted(plan: Any) -> tuple[WantPublicIp, ...]:
    by_host: dict[str, list[tuple[str, int, str]]] = {}
    for v in plan.vms.values():
        for e in v.exposes:
            by_host.setdefault(v.host, []).append((e.proto, e.public_port, v.name))
    out = []
    for h in plan.hosts.values():
        if h.name in by_host:
            name = h.public_ip or own_public_ip_name(plan.azure.route_prefix, h.name)
            out.append(WantPublicIp(h.name, h.nic, name, not h.public_ip, str(h.ip), h.subnet, tuple(by_host[h.name])))
    return tuple(out)


def rule_name(prefix: str, vm: str, proto: str, port: int) -> str:
    return f"{prefix}expose-{vm}-{proto}-{port}"


def _props(res: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (res or {}).get("properties") or {}


def _primary(nic: Mapping[str, Any]) -> Mapping[str, Any] | None:
    cfgs = list(_props(nic).get("ipConfigurations") or [])
    return next((c for c in cfgs if _props(c).get("primary")), cfgs[0] if cfgs else None)


def _ref_name(ref: Any) -> str | None:
    rid = ref.get("id") if isinstance(ref, Mapping) else None
    return rid.rstrip("/").rsplit("/", 1)[-1] if isinstance(rid, str) and rid else None


def _sibling_id(nic: Mapping[str, Any], rtype: str, name: str) -> str:
    """The id of resource ``name`` of ``rtype`` in the NIC's resource group."""
    base = str(nic.get("id") or "").rsplit("/networkInterfaces/", 1)[0]
    return f"{base}/{rtype}/{name}"


def _by_name(items: Mapping[str, Any], name: str) -> Any:
    k = name_key(name)
    return next((v for n, v in items.items() if name_key(n) == k), None)


def ours(res: Mapping[str, Any] | None, fabric: str) -> bool:
    from .diff import TAG_FABRIC, TAG_OWNER

    tags = (res or {}).get("tags") or {}
    return tags.get(TAG_OWNER) == "nestnet" and tags.get(TAG_FABRIC) == fabric


def changes(want: Any, obs: Any, refusals: list[str]) -> list[Any]:
    """Public IPs to create, their associations (NIC changes) and nestnet's NSG rules."""
    from .diff import Change

    out: list[Any] = []
    if not want.public_ips and not obs.public_ips:
        return out
    for w in want.public_ips:
        nic = _by_name(obs.nics, w.nic)
        if nic is None:
            refusals.append(f"network interface {w.nic!r} was not found in the resource group")
            continue
        pip = _by_name(obs.public_ips, w.name)
        primary = _primary(nic)
        held = _ref_name(_props(primary).get("publicIPAddress"))
        if held is not None and name_key(held) != name_key(w.name):
            refusals.append(
                f"the primary ip configuration of {w.nic!r} holds public IP {held!r}, not {w.name!r}"
                + (f": name it in the spec (hosts[].public_ip: {held}) to expose {w.host}'s VMs through it"
                   if w.own else "; nestnet does not replace it"))
            continue
        if pip is None and not w.own:
            refusals.append(f"public IP {w.name!r} (host {w.host!r}, public_ip) was not found in the resource group")
            continue
        if pip is not None and w.own and not ours(pip, want.fabric):
            refusals.append(f"public IP {w.name!r} exists and is not nestnet's (fabric {want.fabric!r}); "
                            f"name it in hosts[].public_ip to use it, or remove it")
            continue
        if pip is None:
            out.append(Change("create", "public_ip", w.name, None, {"sku": "Standard", "allocation": "Static"}, w.nic))
        holder = _props(pip).get("ipConfiguration") if pip is not None else None
        if held is None:
            hid = str((holder or {}).get("id") or "")
            if hid and f"/networkinterfaces/{name_key(w.nic)}/" not in hid.lower():
                refusals.append(f"public IP {w.name!r} is held by {hid.rsplit('/', 3)[-3]!r}'s ip configuration "
                                f"{hid.rsplit('/', 1)[-1]!r}; a public IP serves one configuration")
                continue
            pid = str((pip or {}).get("id") or _sibling_id(nic, "publicIPAddresses", w.name))
            out.append(Change("associate", "public_ip", w.name, {"ipConfiguration": None},
                              {"ipConfiguration": str((primary or {}).get("name")), "id": pid}, w.nic))
    out += _stale(want, obs, {name_key(w.name) for w in want.public_ips})
    out += _rule_changes(want, obs)
    return out


def holds_own(want: Any, nics: Mapping[str, Any]) -> bool:
    """Whether a NIC of the resource group holds a public IP named like nestnet's own."""
    prefix = name_key(want.route_prefix)
    for nic in nics.values():
        for c in _props(nic).get("ipConfigurations") or []:
            ref = _ref_name(_props(c).get("publicIPAddress"))
            if ref and name_key(ref).startswith(prefix) and name_key(ref).endswith("-pip"):
                return True
    return False


def _stale(want: Any, obs: Any, wanted: set[str]) -> list[Any]:
    """nestnet's own public IPs (tagged for the fabric, named ``<route_prefix>...-pip``) that no
    host needs any more: taken off the NIC that holds them (in its one NIC PUT), then deleted.
    One held by anything else than a NIC of the resource group is left where it is."""
    from .diff import Change

    out: list[Any] = []
    for name, pip in obs.public_ips.items():
        key = name_key(name)
        if key in wanted or not ours(pip, want.fabric) or not key.startswith(name_key(want.route_prefix)) \
                or not key.endswith("-pip"):
            continue
        hid = str((_props(pip).get("ipConfiguration") or {}).get("id") or "")
        if hid:
            parts = hid.split("/")
            low = [x.lower() for x in parts]
            if "networkinterfaces" not in low or _by_name(obs.nics, parts[low.index("networkinterfaces") + 1]) is None:
                continue
            nic = _by_name(obs.nics, parts[low.index("networkinterfaces") + 1])["name"]
            out.append(Change("dissociate", "public_ip", name, {"ipConfiguration": parts[-1]}, None, nic))
        out.append(Change("delete", "public_ip", name, {"ipAddress": _props(pip).get("ipAddress")}, None))
    return out


def _attached(want: Any, obs: Any, w: WantPublicIp) -> list[tuple[str, str, Mapping[str, Any] | None]]:
    """(what, where, NSG JSON) on the way in, subnet's first: attached by name; JSON None when the
    NSG was not in the list."""
    nic = _by_name(obs.nics, w.nic) or {}
    subnets = {s["name"]: s for s in _props(obs.vnet).get("subnets") or []}
    sub = _by_name(subnets, w.subnet) or {}
    nsgs = {n["name"]: n for n in obs.nsgs}
    out = []
    for what, where, res in (("subnet", w.subnet, sub), ("NIC", w.nic, nic)):
        name = _ref_name(_props(res).get("networkSecurityGroup"))
        if name is not None:
            out.append((what, where, _by_name(nsgs, name) or {"name": name}))
    return out


def _model(nsg: Mapping[str, Any]):
    from .nsg import Nsg
    from .dataplane import security_rule

    rules = []
    for r in _props(nsg).get("securityRules") or []:
        try:
            rules.append(security_rule(r))
        except (KeyError, ValueError, TypeError):
            continue  # unreadable: judged without it (Azure refuses such a rule at write time)
    return Nsg(str(nsg.get("name")), tuple(rules))


def _tags(want: Any):
    from .nsg import Tags
    from ipaddress import ip_network

    return Tags(tuple(ip_network(a) for a in want.address_space))


def _rule_props(proto: str, port: int, private_ip: str, priority: int) -> dict[str, Any]:
    return {"protocol": proto.capitalize(), "access": "Allow", "direction": "Inbound", "priority": priority,
            "sourceAddressPrefix": "Internet", "sourcePortRange": "*",
            "destinationAddressPrefix": private_ip, "destinationPortRange": str(port),
            "description": "nestnet: an exposed port (vms[].expose)"}


_COMPARED = ("protocol", "access", "direction", "sourceAddressPrefix", "sourcePortRange",
             "destinationAddressPrefix", "destinationPortRange")


def _free_priority(nsg: Mapping[str, Any], taken: set[int]) -> int | None:
    used = {int(_props(r).get("priority") or 0) for r in _props(nsg).get("securityRules") or []
            if str(_props(r).get("direction")).lower() == "inbound"} | taken
    return next((p for p in range(PRIORITIES[1], PRIORITIES[0] - 1, -1) if p not in used), None)


def _rule_changes(want: Any, obs: Any) -> list[Any]:
    """nestnet's Allow rules in the NSGs that are its own: add, update, delete the stale ones."""
    from .diff import Change

    out: list[Any] = []
    prefix = name_key(want.route_prefix + "expose-")
    wanted: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {}  # NSG name -> rule key -> (name, props)
    for w in want.public_ips:
        for _what, _where, nsg in _attached(want, obs, w):
            if "etag" not in nsg or not ours(nsg, want.fabric):
                continue
            for proto, port, vm in w.ports:
                name = rule_name(want.route_prefix, vm, proto, port)
                wanted.setdefault(nsg["name"], {})[name_key(name)] = (name, _rule_props(proto, port, w.private_ip, 0))
    for nsg in obs.nsgs:
        if not ours(nsg, want.fabric):
            continue
        have = {name_key(r["name"]): r for r in _props(nsg).get("securityRules") or []}
        mine = wanted.get(nsg["name"], {})
        taken: set[int] = set()
        for key, r in have.items():
            if key.startswith(prefix) and key not in mine:
                out.append(Change("delete", "security_rule", r["name"], {"nsg": nsg["name"], **_summary(_props(r))},
                                  None))
        for key, (name, props) in mine.items():
            r = have.get(key)
            if r is not None and all(str(_props(r).get(k)).lower() == str(props[k]).lower() for k in _COMPARED):
                continue
            prio = int(_props(r).get("priority")) if r is not None else _free_priority(nsg, taken)
            if prio is None:
                continue  # no free priority: named by ``needs``
            taken.add(prio)
            props = {**props, "priority": prio}
            out.append(Change("update" if r is not None else "add", "security_rule", name,
                              {"nsg": nsg["name"], **_summary(_props(r))} if r is not None else None,
                              {"nsg": nsg["name"], **props}))
    return out


def _summary(p: Mapping[str, Any]) -> dict[str, Any]:
    return {k: p.get(k) for k in ("priority", *_COMPARED) if k in p}


def needs(want: Any, obs: Any, changes: list[Any], resource_group: str) -> list[str]:
    """What the exposed ports need that nestnet may not write: a rule in an NSG that is not its own,
    a rule of the user's that denies them, or an NSG at all for a Standard public IP. Judged on the
    NSGs as they will be once ``changes`` are written."""
    from ...model.probe import Probe
    from .nsg import decide

    added = {(c.after["nsg"], name_key(c.name)): c.after for c in changes
             if c.kind == "security_rule" and c.after is not None}
    out: list[str] = []
    tags = _tags(want)
    for w in want.public_ips:
        attached = _attached(want, obs, w)
        pip = _by_name(obs.public_ips, w.name)
        standard = w.own or str(((pip or {}).get("sku") or {}).get("name") or "Standard").lower() == "standard"
        if not attached:
            if standard:
                ports = ", ".join(f"{p}/{n}" for p, n, _v in w.ports)
                out.append(f"public IP {w.name!r} is Standard SKU, closed to inbound unless an NSG allows it, and "
                           f"neither NIC {w.nic!r} nor subnet {w.subnet!r} has an NSG: attach one that allows {ports} "
                           f"from Internet to {w.private_ip} (tagged managed-by=nestnet, nestnet-fabric={want.fabric} "
                           "to let nestnet add the rules)")
            continue
        for what, where, nsg in attached:
            if "etag" not in nsg:
                out.append(f"NSG {nsg['name']!r} on {what} {where!r} was not found in the resource group: "
                           "nestnet cannot judge the exposed ports there")
                continue
            model = _model(nsg)
            for proto, port, vm in w.ports:
                name = rule_name(want.route_prefix, vm, proto, port)
                extra = added.get((nsg["name"], name_key(name)))
                if extra is not None:
                    from .dataplane import security_rule

                    rules = [r for r in model.rules if name_key(r.name) != name_key(name)]
                    model = type(model)(model.name, (*rules, security_rule({"name": name, "properties": extra})))
                rule = decide(model, "Inbound", INTERNET_CLIENT, IPv4Address(w.private_ip), tags, Probe(proto, port))
                if rule.access == "Allow":
                    continue
                if ours(nsg, want.fabric) and not rule.default:
                    out.append(f"NSG {nsg['name']!r} ({what} {where}) rule {rule.name!r} (priority {rule.priority}) "
                               f"denies {proto}/{port} to {vm} from the internet; nestnet does not override a rule "
                               "it did not write: narrow or remove it")
                    continue
                prio = _free_priority(nsg, set()) or 4096
                out.append(
                    f"NSG {nsg['name']!r} ({what} {where}) does not let {proto}/{port} in to {vm} "
                    f"({rule.name}, priority {rule.priority}) and is not nestnet's to change: "
                    f"`az network nsg rule create -g {resource_group} --nsg-name {nsg['name']} -n {name} "
                    f"--priority {prio} --direction Inbound --access Allow --protocol {proto.capitalize()} "
                    f"--source-address-prefixes Internet --destination-address-prefixes {w.private_ip} "
                    f"--destination-port-ranges {port}`")
    return out


# -- bodies -----------------------------------------------------------------------------------

def public_ip_body(want: Any, location: str) -> dict[str, Any]:
    """nestnet's own public IP: Standard (Basic is retired), Static (Standard's only method)."""
    return {"location": location, "tags": dict(want.tags), "sku": {"name": "Standard", "tier": "Regional"},
            "properties": {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4"}}


def rule_body(change: Any) -> dict[str, Any]:
    return {"name": change.name, "properties": {k: v for k, v in change.after.items() if k != "nsg"}}


def apply(client: Any, want: Any, obs: Any, changes: list[Any], out: Any, location: str) -> None:
    """Create nestnet's public IPs (before the NIC PUTs that reference them)."""
    for c in changes:
        if c.kind == "public_ip" and c.action == "create":
            client.put_public_ip(c.name, public_ip_body(want, location), None)
            out.writes += 1
            out.applied.append(c)


def apply_deletes(client: Any, obs: Any, changes: list[Any], out: Any) -> None:
    """Delete nestnet's stale public IPs (after the NIC PUTs that let go of them), each with
    If-Match on the etag it was read with: one changed since (412) is kept, the run says so."""
    for c in changes:
        if c.kind == "public_ip" and c.action == "delete":
            pip = _by_name(obs.public_ips, c.name) or {}
            client.delete_public_ip(c.name, pip.get("etag"))
            out.writes += 1
            out.applied.append(c)


def apply_rules(client: Any, want: Any, changes: list[Any], out: Any) -> None:
    """nestnet's rules in its own NSGs, each written with the NSG's etag as just read (412: read
    again and write again, a bounded number of times, by ``reconcile._guarded``)."""
    from .reconcile import _guarded

    for c in changes:
        if c.kind != "security_rule":
            continue
        nsg = (c.after or c.before or {})["nsg"]

        def read(n: int, nsg: str = nsg) -> Any:
            return client.get_nsg(nsg)

        def build(current: Any, n: int, c: Any = c) -> dict[str, Any] | None:
            have = next((r for r in _props(current).get("securityRules") or []
                         if name_key(r["name"]) == name_key(c.name)), None)
            if c.action == "delete":
                return {"delete": True} if have is not None else None
            if c.action == "add" and have is not None:
                return None  # written meanwhile (by another nestnet run): the next diff compares it
            return rule_body(c)

        def put(body: dict[str, Any], etag: str | None, c: Any = c, nsg: str = nsg) -> Any:
            # A rule carries its NSG's etag: If-Match on it for a change, If-None-Match for a new one.
            if body.get("delete"):
                return client.delete_security_rule(nsg, c.name, etag)
            return client.put_security_rule(nsg, c.name, body, etag if c.action != "add" else None)

        if _guarded(client, out, f"network security group {nsg!r}", read, build, put):
            out.applied.append(c)


# -- exports (``nestnet azure export``) --------------------------------------------------------

def terraform(plan: Any) -> str:
    """The public IPs (nestnet's own as resources, the user's as data sources), where each one goes
    on the host NIC (a comment and a local: the NICs are the user's resources), and the NSG rules,
    written into the NSG that ``var.nestnet_expose_nsg`` names (none while it is empty)."""
    from .diff import TAG_FABRIC, TAG_OWNER
    from .export import _comment, hcl_string as q, tf_ident

    want = wanted(plan)
    if not want:
        return ""
    az = plan.azure
    used: set[str] = set()
    rg = q(az.resource_group)
    loc = q(az.location) if az.location else "data.azurerm_virtual_network.nestnet.location"
    lines = ["", "# Exposed ports (vms[].expose): the public IP on each host NIC's primary ip configuration,",
             "# and an inbound Allow per port in the NSG that var.nestnet_expose_nsg names.", ""]
    ids = []
    for w in want:
        ident = tf_ident("pip_" + w.name, used)
        if w.own:
            lines += [f'resource "azurerm_public_ip" {q(ident)} {{', f"  name                = {q(w.name)}",
                      f"  location            = {loc}", f"  resource_group_name = {rg}",
                      '  allocation_method   = "Static"', '  sku                 = "Standard"', "",
                      "  tags = {", f"    {q(TAG_OWNER)} = {q('nestnet')}", f"    {q(TAG_FABRIC)} = {q(plan.name)}",
                      "  }", "}", ""]
            ids.append((w, f"azurerm_public_ip.{ident}.id"))
        else:
            lines += [f'data "azurerm_public_ip" {q(ident)} {{', f"  name                = {q(w.name)}",
                      f"  resource_group_name = {rg}", "}", ""]
            ids.append((w, f"data.azurerm_public_ip.{ident}.id"))
    lines += ["# In each host's azurerm_network_interface, set in its primary ip_configuration",
              "#     public_ip_address_id = local.nestnet_public_ip_ids[<this NIC's name>]",
              "locals {", "  nestnet_public_ip_ids = {"]
    lines += [f"    {q(w.nic)} = {ref}  # host {_comment(w.host)}" for w, ref in ids]
    lines += ["  }", "}", "",
              'variable "nestnet_expose_nsg" {',
              '  description = "The NSG (on the hosts\' subnet or NICs) that gets the exposed ports\' Allow rules; empty: none"',
              "  type        = string", '  default     = ""', "}", ""]
    prio = PRIORITIES[1]
    for w in want:
        for proto, port, vm in w.ports:
            name = rule_name(az.route_prefix, vm, proto, port)
            lines += [f'resource "azurerm_network_security_rule" {q(tf_ident("rule_" + name, used))} {{',
                      '  count                       = var.nestnet_expose_nsg == "" ? 0 : 1',
                      f"  name                        = {q(name)}",
                      f"  resource_group_name         = {rg}",
                      "  network_security_group_name = var.nestnet_expose_nsg",
                      f"  priority                    = {prio}",
                      '  direction                   = "Inbound"', '  access                      = "Allow"',
                      f"  protocol                    = {q(proto.capitalize())}",
                      '  source_address_prefix       = "Internet"', '  source_port_range           = "*"',
                      f"  destination_address_prefix  = {q(w.private_ip)}",
                      f"  destination_port_range      = {q(str(port))}", "}", ""]
            prio -= 1
    return "\n".join(lines)


def az_lines(plan: Any) -> str:
    """The same as az commands, each write made only when it is missing (running it again changes
    nothing): nestnet's own public IP created, the public IP put on the primary configuration when
    that holds none (and a stop when it holds another), the NSG rules when NESTNET_EXPOSE_NSG names one."""
    from .diff import TAG_FABRIC, TAG_OWNER
    from .export import _cmd, _comment

    want = wanted(plan)
    if not want:
        return ""
    az = plan.azure
    sub = ["--subscription", az.subscription_id] if az.subscription_id else []
    rg = ["--resource-group", az.resource_group]
    lines = ["", "# Exposed ports (vms[].expose): each host's public IP on its NIC's primary ip configuration;",
             "# the Allow rules go into the NSG named by NESTNET_EXPOSE_NSG (none when it is empty).",
             'NESTNET_EXPOSE_NSG="${NESTNET_EXPOSE_NSG:-}"']
    for w in want:
        lines.append(f"# host {_comment(w.host)}: public IP {_comment(w.name)}")
        if w.own:
            lines += ["rc=0", _cmd("az", "network", "public-ip", "show", *sub, *rg, "--name", w.name, "--output", "none")
                      + " || rc=$?", 'if [ "$rc" -eq 3 ]; then',
                      "  " + _cmd("az", "network", "public-ip", "create", *sub, *rg, "--name", w.name, "--sku", "Standard",
                                  "--allocation-method", "Static", "--version", "IPv4",
                                  *(["--location", az.location] if az.location else []),
                                  "--tags", f"{TAG_OWNER}=nestnet", f"{TAG_FABRIC}={plan.name}"),
                      'elif [ "$rc" -ne 0 ]; then exit "$rc"; fi']
        lines += ["cfg=$(" + _cmd("az", "network", "nic", "show", *sub, *rg, "--name", w.nic, "--query",
                                  "ipConfigurations[?primary].name | [0]", "--output", "tsv") + ")",
                  # az prints camelCase keys (publicIpAddress), not ARM's (publicIPAddress)
                  "held=$(" + _cmd("az", "network", "nic", "ip-config", "show", *sub, *rg, "--nic-name", w.nic)
                  + ' --name "$cfg" ' + _cmd("--query", "publicIpAddress.id", "--output", "tsv") + ")",
                  'if [ -z "$held" ]; then',
                  "  " + _cmd("az", "network", "nic", "ip-config", "update", *sub, *rg, "--nic-name", w.nic)
                  + ' --name "$cfg" ' + _cmd("--public-ip-address", w.name),
                  f'elif [ "${{held##*/}}" != {_cmd(w.name)} ]; then',
                  f'  echo "nestnet-az.sh: NIC {w.nic} already holds public IP ${{held##*/}}, not {w.name}" >&2; exit 1',
                  "fi"]
    prio = PRIORITIES[1]
    lines.append('if [ -n "$NESTNET_EXPOSE_NSG" ]; then')
    for w in want:
        for proto, port, vm in w.ports:
            name = rule_name(az.route_prefix, vm, proto, port)
            lines += ["  rc=0", "  " + _cmd("az", "network", "nsg", "rule", "show", *sub, *rg) + ' --nsg-name "$NESTNET_EXPOSE_NSG" '
                      + _cmd("--name", name, "--output", "none") + " || rc=$?",
                      '  if [ "$rc" -eq 3 ]; then',
                      "    " + _cmd("az", "network", "nsg", "rule", "create", *sub, *rg) + ' --nsg-name "$NESTNET_EXPOSE_NSG" '
                      + _cmd("--name", name, "--priority", str(prio), "--direction", "Inbound", "--access", "Allow",
                             "--protocol", proto.capitalize(), "--source-address-prefixes", "Internet",
                             "--source-port-ranges", "*", "--destination-address-prefixes", w.private_ip,
                             "--destination-port-ranges", str(port)),
                      '  elif [ "$rc" -ne 0 ]; then exit "$rc"; fi']
            prio -= 1
    lines += ["fi", ""]
    return "\n".join(lines)
