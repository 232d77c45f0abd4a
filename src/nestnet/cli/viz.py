"""``nestnet diagram`` and ``nestnet report``: the fabric drawn, and one page with everything."""

from __future__ import annotations

import sys

import click

from .output import UserPath, note, probe_option, spec_argument, warn_lines

fault_option = click.option(
    "--fault", "faults", multiple=True, metavar="KIND:TARGET",
    help="What-if: draw the fabric broken this way (as `nestnet check --fault`; repeatable).",
)


def _verdicts(spec: str, faults: tuple[str, ...], probe=None):
    from ..faults import parse_faults
    from ..model import ICMP
    from ..plan import load_plan
    from ..viz import analyse

    plan = load_plan(spec, write=False)
    warn_lines(plan.warnings)
    return analyse(plan, parse_faults(faults, plan), probe or ICMP)


def _write(out: str | None, text: str) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    from ..store import write_output

    write_output(out, text)  # atomic: a full disk leaves the previous file whole (exit 2, naming it)
    note(f"wrote {out}")


@click.command()
@spec_argument
@fault_option
@click.option("--format", "fmt", type=click.Choice(["svg", "mermaid", "dot"]), default="svg", show_default=True,
              help="svg (laid out by Graphviz's dot), mermaid (renders on GitHub) or the dot source.")
@click.option("--out", type=UserPath("out"), help="Write here instead of standard output.")
def diagram(spec: str, faults: tuple[str, ...], fmt: str, out: str | None) -> None:
    """Draw the fabric of SPEC: VNet, subnets (route table associated or not), hosts (NIC
    forwarding, block, bridge), nested VMs, endpoints, the internet and the route table's routes.

    Check's verdicts are drawn on it: the element where a failing pair dies is red, with the
    pairs and the cause on hover (SVG) or in a note (Mermaid). Exit 0 when drawn, 2 on bad input.
    """
    from ..viz import diagram as dg

    d = dg.build(_verdicts(spec, faults))
    text = dg.svg(d) if fmt == "svg" else dg.to_mermaid(d) if fmt == "mermaid" else dg.to_dot(d)
    _write(out, text)


def _lab_matrix(plan, faults, probe) -> dict[tuple[str, str], bool]:
    """The lab's verdicts with ``faults``: a running lab of the spec is used as it is (its faults
    must be the ones asked for); otherwise one is brought up for this and always torn down."""
    from .. import lab as labmod
    from ..errors import UsageError

    if labmod.is_up(plan.name):
        running = labmod.read_faults(plan.name)
        if tuple(sorted(running)) != tuple(sorted(faults)):
            raise UsageError(
                f"lab {plan.name} is up with faults {', '.join(map(str, running)) or 'none'}, not "
                f"{', '.join(map(str, faults)) or 'none'}: pass the same --fault, or `nestnet lab down` it first"
            )
        note(f"using the running lab {plan.name}")
        return {(p.src, p.dst): p.ok for p in labmod.matrix(plan, probe)}
    labmod.up(plan, tuple(faults))
    try:
        return {(p.src, p.dst): p.ok for p in labmod.matrix(plan, probe)}
    finally:
        labmod.down(plan)


@click.command()
@spec_argument
@fault_option
@click.option("--lab", "with_lab", is_flag=True,
              help="Also ping every pair in the lab (root; a running lab of SPEC is used, else one is brought "
              "up with the same faults and torn down) and put its matrix beside check's.")
@click.option("--out", required=True, type=UserPath("out"), help="The HTML file to write.")
@probe_option
def report(spec: str, faults: tuple[str, ...], with_lab: bool, out: str, probe) -> None:
    """Write one self-contained HTML page for SPEC (no network fetches: inline SVG and CSS, no
    scripts): the diagram, the plan (blocks, the cloud's routes, host routes, guest addresses), the
    reachability matrix from `check` - with --lab the lab's beside it, disagreements marked - and
    every failure with its hop, cause and fix. With --probe tcp/PORT or udp/PORT check judges
    that connection and the lab makes it for real. Exit 0 when written, 2 on bad input.
    """
    from ..viz import diagram as dg
    from ..viz.report import render

    v = _verdicts(spec, faults, probe)
    lab = _lab_matrix(v.plan, v.faults, probe) if with_lab else None
    _write(out, render(v, dg.svg(dg.build(v)), lab))
