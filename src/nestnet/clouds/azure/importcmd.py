"""``nestnet import``: write a spec and lock reproducing the fabric Azure has today."""

from __future__ import annotations

import click

from ...cli.output import UserPath, emit_json, json_option, note


@click.command("import")
@click.option("--resource-group", "rg", required=True, help="The resource group of the VNet, route table and NICs.")
@click.option("--vnet", required=True, help="The virtual network.")
@click.option("--route-table", default=None, help="The route table (default: the one the VNet's subnets use).")
@click.option("--out", "out", required=True, type=UserPath("new"),
              help="The spec to write (its lock goes beside it); must not exist.")
@click.option("--name", default=None, help="The fabric's name (default: from the route table's name).")
@click.option("--host-default", "host_defaults", multiple=True, metavar="KEY=VALUE",
              help="A host_defaults entry Azure cannot know, e.g. uplink=eth1 (repeatable).")
@json_option
def import_(rg: str, vnet: str, route_table: str | None, out: str, name: str | None,
            host_defaults: tuple[str, ...], as_json: bool) -> None:
    """Read the VNet, its subnets, the NICs and the route table's VirtualAppliance routes and
    write SPEC (+ lock): hosts from the NICs the routes point at, blocks pinned from the routes,
    the other NICs in associated subnets as endpoints, a comment on every guess. Then
    `nestnet azure diff SPEC --adopt` shows renames only."""
    from pathlib import Path

    from .arm import ArmClient, ArmSettings
    from .importer import fabric_name, read, render
    from ...errors import UsageError
    from ...plan import load_plan, load_source
    from ...spec import SpecSource
    from ...store import write_atomic

    path = Path(out)
    if path.exists():
        raise UsageError(f"--out {out}: already exists (nestnet import never overwrites a spec)")
    hd: dict[str, str] = {}
    for item in host_defaults:
        k, sep, v = item.partition("=")
        if not sep or not k or not v:
            raise UsageError(f"--host-default {item!r}: expected KEY=VALUE")
        hd[k.strip()] = v.strip()
    client = ArmClient(ArmSettings.from_env(rg, None))
    v, t, nics = read(client, vnet, route_table)
    imp = render(resource_group=rg, vnet=v, table=t, nics=nics, name=name or fabric_name((t or {}).get("name") or vnet),
                 host_defaults=hd)
    load_source(SpecSource(path, imp.text), write=False)  # a spec nestnet itself refuses is never written
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, imp.text)  # exclusive temp file + rename: no planted *.tmp is followed
    load_plan(path, write=True)  # the lock, under the spec's writer lock
    if as_json:
        emit_json({"spec": str(path), "hosts": imp.hosts, "endpoints": imp.endpoints, "skipped": imp.skipped})
        return
    for h, b in imp.hosts.items():
        click.echo(f"host {h}: block {b}")
    for e, ip in imp.endpoints.items():
        click.echo(f"endpoint {e}: {ip}")
    for s in imp.skipped:
        note(f"not imported: {s}")
    note(f"wrote {path} and its lock; next: nestnet azure diff {path} --adopt")
