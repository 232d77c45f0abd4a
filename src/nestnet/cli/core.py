"""``nestnet validate`` and ``nestnet plan``."""

from __future__ import annotations

import click

from ..words import plural

from .output import console, emit_json, emit_json_chunks, frozen_option, json_option, note, spec_argument, table, warn_lines
from ..names import few


@click.command()
@spec_argument
@json_option
def validate(spec: str, as_json: bool) -> None:
    """Check SPEC and report every problem at once (exit 2 if any). Writes nothing."""
    from ..plan import load

    loaded = load(spec, write=False)  # an error: main prints it (as JSON too with --json)
    plan = loaded.plan
    if as_json:
        emit_json({"ok": True, "errors": [], "warnings": [w.to_dict() for w in plan.warnings]})
        return
    warn_lines(plan.warnings)
    click.echo(
        f"{spec}: ok ({plan.mode}): {plural(len(plan.hosts), 'host')}, {plural(len(plan.vms), 'VM')}, "
        f"{plural(len(plan.endpoints), 'endpoint')}, {plural(len(plan.warnings), 'warning')}"
    )


@click.command()
@spec_argument
@json_option
@frozen_option
def plan(spec: str, as_json: bool, frozen: bool) -> None:
    """Show the desired state of the fabric described by SPEC.

    New allocations (host blocks, VM addresses) are recorded in the lock file beside SPEC.
    """
    from ..plan import load

    loaded = load(spec, frozen=frozen)
    p = loaded.plan
    if as_json:
        # Piped: the plan's own JSON text (1,000 hosts own a million routes; no dict per route)
        emit_json_chunks(p.json_chunks, p.to_dict)
        return
    warn_lines(p.warnings)
    if loaded.new_allocations:
        note(f"allocated {few(loaded.new_allocations)} (recorded in the lock file)")
    out = console()
    out.print(f"[bold]{p.name}[/]  mode [bold]{p.mode}[/], guest style [bold]{p.guest_style}[/], pool {p.pool}")
    t = table("Hosts", ["host", "ip", "subnet", "nic", "uplink", "bridge", "block", "vms"])
    for h in p.hosts.values():
        t.add_row(h.name, str(h.ip), h.subnet, h.nic, h.uplink, h.bridge, str(h.block), str(len(h.vms)))
    out.print(t)
    from .. import clouds

    clouds.views(p.cloud.cloud_name).show_plan(p, out)  # the cloud's part: its routes, addresses
    t = table("Host routes", ["host", "destination", "via", "dev"])
    limit = 12
    for h in p.hosts.values():
        for i, r in enumerate(h.routes):
            if i == limit:
                t.add_row(h.name, f"... {len(h.routes) - limit} more", "", "")
                break
            t.add_row(h.name, str(r.dst), str(r.via or ""), r.dev)
    out.print(t)
    if p.vms:
        t = table("Nested VMs", ["vm", "host", "address", "gateway"])
        for v in p.vms.values():
            t.add_row(v.name, v.host, f"{v.ip}/{v.prefix_len}", str(v.gateway))
        out.print(t)
    if p.moves:
        t = table("Exceptions (a /32 each)", ["vm", "address", "lives on", "block of"])
        for m in p.moves:
            t.add_row(m.vm, str(m.ip), m.host, m.owner or "-")
        out.print(t)
    if p.endpoints:
        t = table("Endpoints", ["endpoint", "address", "subnet"])
        for e in p.endpoints.values():
            t.add_row(e.name, f"{e.ip}/{e.prefix_len}", e.subnet)
        out.print(t)
