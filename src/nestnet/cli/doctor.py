"""``nestnet doctor``: diagnose this live host - what breaks which pairs, and the fix."""

from __future__ import annotations

import sys
from itertools import islice

import click

from .cloudopts import read_cloud as read_cloud_of, read_flags
from .output import UserPath, console, emit_json, json_option, probe_option, spec_argument, warn_lines

ROWS = 40  # groups of failed pairs shown to people; --json lists every pair


@click.command()
@spec_argument
@click.option("--host", "host_name", metavar="NAME", help="Which host this is (default: the one whose IP is local).")
@click.option(
    "--root", default="/", show_default=True, envvar="NESTNET_ROOT", type=UserPath("dir", remember=False, writable=False),
    help="Where nestnet's persistent files live ($NESTNET_ROOT; `nestnet lab exec` sets it for lab hosts).",
)
@read_flags("Also read")
@probe_option
@json_option
def doctor(spec: str, host_name: str | None, root: str, read_cloud: str | None, probe, as_json: bool) -> None:
    """Diagnose this KVM host against SPEC (run as root on the host).

    Reads this host's kernel routes, forwarding/rp_filter/proxy ARP sysctls and nftables
    ruleset, puts them into the model `nestnet check` uses (the other hosts, the guests and
    the cloud assumed as planned), and reports every failing pair that involves this host or its
    VMs with the hop where it dies, the cause and the fix, plus what `nestnet host apply` would
    change. Writes nothing. Exit 0 healthy, 1 problems found, 2 bad input.
    """
    from .. import doctor as doc
    from ..plan import load_plan

    plan = load_plan(spec, write=False)
    name = doc.host_of(plan, host_name)
    cloud = read_cloud_of(plan, read_cloud)
    client = cloud.client(plan) if cloud is not None else None
    d = doc.run(plan, name, root, client, probe)
    from ..host.leftovers import find

    left = find(root, plan, name)  # advice only: they do not make the host unhealthy
    if as_json:
        emit_json({"probe": str(probe), **d.to_dict(), "leftovers": left})
    else:
        warn_lines(d.warnings)
        _print(d)
        for line in left:
            click.echo(f"leftover of the manual set-up: {line}")
    sys.exit(0 if d.healthy else 1)


def _print(d) -> None:
    from ..model.groups import describe, plural

    out = console()  # soft wrap: long reasons stay one line for grep and copy
    out.soft_wrap = True
    o = d.observed
    nft = o["nft"]
    proxy = next(k for k in o if k.startswith("proxy_arp("))
    out.print(f"[bold]{d.host}[/]: " + ("[green]healthy[/]" if d.healthy else "[red]problems found[/]"))
    out.print(
        f"observed: ip_forward={o['ip_forward']} rp_filter={o['rp_filter']} {proxy}={o[proxy]}, "
        f"{len(o['nestnet_routes'])} nestnet routes, nft: nestnet forward chain "
        f"{'loaded' if nft['nestnet_forward_chain'] else 'MISSING'}, masquerade "
        f"{'loaded' if nft['nestnet_masquerade'] else 'absent'}"
        + (f", drop chains: {', '.join(nft['foreign_drop_chains'])}" if nft["foreign_drop_chains"] else ""),
        markup=False,
    )
    if d.model.state.cloud.cloud in o:  # the cloud was read: what of it
        from ..clouds import views

        cloud = d.model.state.cloud.cloud
        out.print(views(cloud).read_line(o[cloud]), markup=False)
    out.print("[dim]assumed as planned: " + "; ".join(d.assumed) + "[/]")
    if d.findings:
        out.print("[bold]findings[/]")
        for f in d.findings:
            out.print(f"  [red]✗[/] {f}", highlight=False)
    colour = "green" if not d.problems else "red"
    probe = d.model.probe
    what = "" if probe.port is None else f" (probe {probe})"  # a ping says nothing: the output it always had
    design = f", {d.by_design} unreachable by design" if d.by_design else ""
    out.print(f"[{colour}]{d.checked - d.failing - d.by_design}/{d.checked} pairs involving {d.host} or its VMs ok"
              f"{design}{what}[/]")
    for g in islice(d.groups, ROWS):
        p = g.example
        pairs = f"{plural(len(g.pairs), 'pair')}: {describe(g.blocks)}"
        if g.design:
            out.print(f"  [dim]by design[/] {pairs}", highlight=False)
            out.print(f"       {g.design}", markup=False)
            continue
        tag = " [dim](fails in the plan too: the spec's doing, see nestnet check)[/]" if g.in_plan else ""
        out.print(f"  [red]FAIL[/] {pairs}  [dim](dies at {p.dies_at})[/]{tag}", highlight=False)
        out.print(f"       {p.reason}", markup=False)
    if len(d.groups) > ROWS:
        out.print(f"... and {len(d.groups) - ROWS} more causes (--json lists every pair; nestnet check --trace shows one)")
    for f in d.forwards:  # nat mode's port forwards to this host's VMs
        head = f"forward {f.src} → {f.vm}:{f.port} via {f.proto}/{f.host_port}"
        out.print(f"  [green]ok[/]   {head}" if f.ok else f"  [red]FAIL[/] {head}", highlight=False)
        if not f.ok:
            out.print(f"       {f.reason}", markup=False)
    for e in d.exposed:  # exposed ports of this host's VMs, from the internet through its public IP
        out.print(f"  [green]ok[/]   exposed: {e}" if e.ok else f"  [red]FAIL[/] exposed: {e}  [dim](dies at {e.dies_at})[/]",
                  highlight=False)
        if not e.ok:
            out.print(f"       {e.reason}", markup=False)
    if d.drift:
        out.print("[bold]what `nestnet host apply` would change[/]")
        for c in d.drift:
            sign = "-" if c["op"] == "del" else "~" if c["op"] in ("set", "replace") else "+"
            out.print(f"  {sign} {c['kind']} {c['op']} {c['key']}" + (f" ({c['detail']})" if c["detail"] else ""),
                      markup=False)
    else:
        out.print("nothing for `nestnet host apply` to change")
