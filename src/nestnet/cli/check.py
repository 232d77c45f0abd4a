"""``nestnet check``: prove offline which ordered pairs of nodes can reach each other (a ping, or
TCP/UDP to a port with ``--probe``), and why not."""

from __future__ import annotations

import sys
import click

from . import cloudopts
from .cloudopts import file_flags, read_flags
from .output import console, emit_json, json_option, probe_option, spec_argument, warn_lines

ROWS = 40  # causes shown to people; --json lists them all, each with every pair


@click.command()
@spec_argument
@click.option("--fault", "faults", multiple=True, metavar="KIND:TARGET",
              help="What-if: break the model like `nestnet lab fault` would (repeatable).")
@click.option("--all", "all_pairs", is_flag=True, help="List every pair, not only the failed ones.")
@click.option("--trace", nargs=2, metavar="SRC DST", help="Show one ping hop by hop, request and reply.")
@read_flags("Read")
@file_flags
@probe_option
@json_option
def check(spec: str, faults: tuple[str, ...], all_pairs: bool, trace: tuple[str, str] | None,
          read_cloud: str | None, probe, as_json: bool, **cloud_files: str | None) -> None:
    """Check every ordered pair of nodes of SPEC (hosts, VMs, endpoints, to the internet).

    A pair passes when the probe's request and its reply both get through (a ping; with
    --probe tcp/22 a TCP connection to port 22, which is what NSG port rules judge). Exit 0 when
    every pair passes, 1 when any fails, 2 on bad input, 3 when the cloud cannot be read (its flag).

    \b
    Faults (what-ifs, the same as `nestnet lab fault`):
      nic-forwarding-off:HOST  no-route-table:SUBNET  no-user-route:HOST
      ip-forward-off:HOST  no-host-routes:HOST  firewall-deny-routed:HOST
      rp-filter-strict:HOST  no-proxy-arp:HOST  no-masquerade:HOST
    """
    from ..faults import parse_faults
    from ..model import apply_faults, from_plan
    from ..plan import load_plan

    plan = load_plan(spec, write=False)
    parsed = parse_faults(faults, plan)
    state = from_plan(plan)
    cloud = cloudopts.read_cloud(plan, read_cloud)
    if cloud is not None:  # the cloud as its API reports it, instead of as planned
        from dataclasses import replace

        state = replace(state, cloud=cloud.observed_state(plan, cloud.client(plan)))
    state = cloudopts.with_files(state, plan, cloud_files)
    state = apply_faults(state, parsed)
    if not as_json:
        warn_lines(plan.warnings)
    if trace:
        sys.exit(_trace(state, plan, trace, as_json, probe))
    from ..model import reachability

    from .. import exposes, forwards

    from ..model.groups import BY_DESIGN, FAIL, host_of

    res = reachability(state, probe)
    groups = _groups(res, plan, all_pairs)
    fwd = forwards.check(state, plan)  # nat mode's port forwards, from every endpoint
    exp = exposes.check(state, plan)  # exposed ports, from the internet through the public IPs
    summary = dict(res.summary)
    summary["by_design"] = sum(g.count for g in groups if g.verdict == BY_DESIGN)
    summary["failed"] = sum(g.count for g in groups if g.verdict == FAIL)
    if as_json:
        vm_host = {n: h for n, h in host_of(state).items() if n != h}
        emit_json({
            "probe": str(probe),
            "summary": summary,
            "faults": [str(f) for f in parsed],
            "groups": [g.to_dict() for g in groups],
            "vm_host": vm_host,
            "forwards": [f.to_dict() for f in fwd],
            "exposed": [e.to_dict() for e in exp],
        })
    else:
        _print(summary, groups, parsed, all_pairs, probe)
        _print_forwards(fwd)
        _print_exposed(exp)
    sys.exit(0 if not summary["failed"] and all(f.ok for f in fwd) and all(e.ok for e in exp) else 1)


def _print_exposed(exp) -> None:
    out = console()
    for e in exp:
        if e.ok:
            out.print(f"  [green]ok[/]   exposed: {e}", highlight=False)
        else:
            out.print(f"  [red]FAIL[/] exposed: {e}  [dim](dies at {e.dies_at})[/]", highlight=False)
            out.print(f"       {e.reason}", markup=False)


def _groups(res, plan, include_ok: bool):
    """Pairs by verdict and cause; pairs the mode cannot serve (NAT) are not failures."""
    from ..advise import design_rule
    from ..model.groups import groups

    return groups(res, lambda a, b: design_rule(plan, a, b), include_ok)


def _print_forwards(fwd) -> None:
    out = console()
    for f in fwd:
        head = f"forward {f.src} → {f.vm}:{f.port} via host port {f.proto}/{f.host_port}"
        if f.ok:
            out.print(f"  [green]ok[/]   {head}", highlight=False)
        else:
            out.print(f"  [red]FAIL[/] {head}", highlight=False)
            out.print(f"       {f.reason}", markup=False)


def _trace(state, plan, pair: tuple[str, str], as_json: bool, probe) -> int:
    from ..errors import UsageError
    from ..model import INTERNET, Model
    from ..names import unknown

    src, dst = pair
    known = [*state.node_names, INTERNET]
    for name in pair:
        if name not in known:
            raise UsageError(f"{plan.source or plan.name}: no node named {name!r}{unknown(name, known)}")
    if src == dst:
        raise UsageError(f"--trace {src} {dst}: give two different nodes")
    if src == INTERNET:
        r = _trace_in(state, plan, dst, probe)
        probe = r[1]
        r = r[0]
    else:
        r = Model(state, probe).ping(src, dst)
    if as_json:
        emit_json({"probe": str(probe), **r.to_dict()})
        return 0 if r.ok else 1
    out = console()
    for h in r.hops:
        if h.startswith(("request ", "reply ")):
            out.print(f"[bold]{h}[/]", markup=True, highlight=False)
        else:
            node, _, what = h.partition(": ")
            out.print(f"  {node:<22} {what}", markup=False)
    if r.ok:
        out.print(f"[green]ok[/]: {src} → {dst} and back ({probe})")
    else:
        out.print(f"[red]FAILED[/] at {r.dies_at}: ", end="")
        out.print(r.reason, markup=False)
    return 0 if r.ok else 1


def _trace_in(state, plan, dst: str, probe):
    """The internet's way in: to ``dst``'s host's public IP (the VM's first exposed port unless
    --probe names one), through the host's DNAT to an exposed VM; nothing else opens a path in."""
    from ..errors import UsageError
    from ..exposes import public_ip_of, reach
    from ..model import ICMP, Model

    vm = plan.vms.get(dst)
    host = vm.host if vm is not None else dst if dst in state.hosts else None
    pub = public_ip_of(state, host) if host is not None else None
    if pub is None:
        raise UsageError(f"--trace internet {dst}: the internet is a destination only, but for exposed VMs and their "
                         f"hosts, through the host's public IP, and {dst} has none (vms[].expose)")
    if probe == ICMP and vm is not None and vm.exposes:
        probe = type(probe)(vm.exposes[0].proto, vm.exposes[0].public_port)
    if vm is None:
        return Model(state, probe).from_internet(dst, pub.address), probe
    return reach(state, dst, probe.protocol, probe.port), probe


def _print(summary, groups, faults, all_pairs: bool, probe) -> None:
    from ..model.groups import BY_DESIGN, FAIL, describe, plural

    out = console()
    what = f" with {', '.join(map(str, faults))}" if faults else ""
    what += "" if probe.port is None else f" (probe {probe})"
    colour = "green" if summary["failed"] == 0 else "red"
    causes = sum(1 for g in groups if g.verdict == FAIL)
    head = f"{summary['ok']}/{summary['pairs']} pairs ok, {summary['failed']} failed"
    if causes:
        head += f" ({plural(causes, 'cause')})"
    if summary["by_design"]:
        head += f", {summary['by_design']} unreachable by design"
    out.print(f"[{colour}]{head}[/]{what}", highlight=False)
    shown = [g for g in groups if all_pairs or g.verdict != "ok"]
    for g in shown[:ROWS]:
        pairs = f"{plural(g.count, 'pair')}: {describe(g.blocks)}"
        if g.verdict == FAIL:
            out.print(f"  [red]FAIL[/] {pairs}  [dim](dies at {g.example.dies_at})[/]", highlight=False)
            out.print(f"       {g.example.reason}", markup=False)
        elif g.verdict == BY_DESIGN:
            out.print(f"  [dim]by design[/] {pairs}", highlight=False)
            out.print(f"       {g.design}", markup=False)
        else:
            out.print(f"  [green]ok[/]   {pairs}", highlight=False)
    if len(shown) > ROWS:
        out.print(f"... and {len(shown) - ROWS} more causes (--json lists them all; --trace SRC DST shows one hop by hop)")
