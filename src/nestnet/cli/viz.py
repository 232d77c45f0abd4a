"""``nestnet diagram`` and ``nestnet report``: the fabric drawn, and one page with everything."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .output import note, spec_argument, warn_lines

fault_option = click.option(
    "--fault", "faults", multiple=True, metavar="KIND:TARGET",
    help="What-if: draw the fabric broken this way (as `nestnet check --fault`; repeatable).",
)


def _verdicts(spec: str, faults: tuple[str, ...]):
    from ..faults import parse_faults
    from ..plan import load_plan
    from ..viz import analyse

    plan = load_plan(spec, write=False)
    warn_lines(plan.warnings)
    return analyse(plan, parse_faults(faults, plan))


def _write(out: str | None, text: str) -> None:
    from ..errors import UsageError

    if out is None:
        sys.stdout.write(text)
        return
    try:
        Path(out).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write: {exc.strerror}") from None
    note(f"wrote {out}")


@click.command()
@spec_argument
@fault_option
@click.option("--format", "fmt", type=click.Choice(["svg", "mermaid", "dot"]), default="svg", show_default=True,
              help="svg (laid out by Graphviz's dot), mermaid (renders on GitHub) or the dot source.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write here instead of standard output.")
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
