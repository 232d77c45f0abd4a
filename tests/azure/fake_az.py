"""A stateful stand-in for the `az` CLI, for the commands nestnet's az export runs.

It keeps Azure's state as JSON in $FAKE_AZ_STATE and appends each argv to $FAKE_AZ_LOG, and it
behaves as the real commands do where it matters for re-running a script:

- `show` of a missing resource exits 3 (azure-cli#6612: "show commands fail with exit code 3 upon
  a missing resource");
- `network route-table create` is a bare PUT of the table: on an existing table it replaces the
  routes with none (ARM's PUT replaces the whole resource; routes are part of the table's body);
- `route create`, `vnet subnet update`, `nic update`, `nic ip-config create` change only what
  they name (the first is a PUT of one child route; the others GET the parent and PUT it back).
"""

from __future__ import annotations

import json
import os
import sys


def parse(argv: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    words: list[str] = []
    opts: dict[str, list[str]] = {}
    key = None
    for a in argv:
        if a.startswith("--"):
            key = a[2:]
            opts.setdefault(key, [])
        elif key is None:
            words.append(a)
        else:
            opts[key].append(a)
    return words, opts


def missing(what: str) -> None:
    sys.stderr.write(f"(ResourceNotFound) The Resource '{what}' was not found.\n")
    sys.exit(3)


def need(d: dict, key: str, what: str) -> dict:
    if key not in d:
        missing(what)
    return d[key]


def main() -> None:
    argv = sys.argv[1:]
    with open(os.environ["FAKE_AZ_LOG"], "a") as log:
        log.write(json.dumps(argv) + "\n")
    path = os.environ.get("FAKE_AZ_STATE")
    if not path:
        return  # recording only
    state = json.load(open(path))
    words, o = parse(argv)
    one = lambda k: o[k][0]  # noqa: E731
    tables, subnets, nics = state.setdefault("routeTables", {}), state.setdefault("subnets", {}), state.setdefault("nics", {})
    cmd = " ".join(words)
    out = None
    if cmd == "network route-table show":
        out = need(tables, one("name"), f"Microsoft.Network/routeTables/{one('name')}")
    elif cmd == "network route-table create":
        tags = dict(t.split("=", 1) for t in o.get("tags", []))
        tables[one("name")] = {"location": one("location") if "location" in o else "eastus", "tags": tags, "routes": {}}
    elif cmd == "network route-table route create":
        t = need(tables, one("route-table-name"), f"Microsoft.Network/routeTables/{one('route-table-name')}")
        t["routes"][one("name")] = {"addressPrefix": one("address-prefix"), "nextHopType": one("next-hop-type"),
                                    "nextHopIpAddress": one("next-hop-ip-address")}
    elif cmd == "network vnet subnet update":
        key = f"{one('vnet-name')}/{one('name')}"
        s = need(subnets, key, f"Microsoft.Network/virtualNetworks/{key}")
        if "route-table" in o:
            if one("route-table") not in tables:
                sys.stderr.write("(InvalidResourceReference) route table not found\n")
                sys.exit(1)
            s["routeTable"] = one("route-table")
    elif cmd == "network nic update":
        n = need(nics, one("name"), f"Microsoft.Network/networkInterfaces/{one('name')}")
        if "ip-forwarding" in o:
            n["enableIPForwarding"] = one("ip-forwarding") == "true"
    elif cmd == "network nic ip-config show":
        n = need(nics, one("nic-name"), f"Microsoft.Network/networkInterfaces/{one('nic-name')}")
        out = need(n.setdefault("ipConfigurations", {}), one("name"), f"ipConfigurations/{one('name')}")
    elif cmd == "network nic ip-config create":
        n = need(nics, one("nic-name"), f"Microsoft.Network/networkInterfaces/{one('nic-name')}")
        cfg = {"privateIPAddress": one("private-ip-address")}
        if "private-ip-address-prefix-length" in o:
            cfg["privateIPAddressPrefixLength"] = int(one("private-ip-address-prefix-length"))
        n.setdefault("ipConfigurations", {})[one("name")] = cfg
    else:
        sys.stderr.write(f"fake az: unknown command {cmd!r}\n")
        sys.exit(2)
    if out is not None and o.get("output") != ["none"]:
        print(json.dumps(out))
    state["writes"] = state.get("writes", 0) + (0 if words[-1] == "show" else 1)
    json.dump(state, open(path, "w"), indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
