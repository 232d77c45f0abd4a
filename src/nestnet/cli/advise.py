"""``nestnet advise``: routed, nat or secondary-ip for what you need, every reason a tested rule.

The clouds, their route limits, their own options and the help's words come from each cloud
package's ``advise`` module (``clouds.advisor``), so this command names no cloud."""

from __future__ import annotations

import sys
from typing import Callable, TypeVar

import click

from .. import clouds
from .output import console, emit_json, json_option

yes_no = click.Choice(["yes", "no"])
F = TypeVar("F", bound=Callable[..., object])

CLOUDS = clouds.advisors()
ADVISORS = {n: clouds.advisor(n) for n in CLOUDS}
DEFAULT = ADVISORS[clouds.DEFAULT]
OTHERS = "; ".join(f"{n}: {', '.join(a.MODES)}; --max-routes default {a.ROUTES_DEFAULT}"
                   for n, a in ADVISORS.items() if n != clouds.DEFAULT)


def cloud_options(f: F) -> F:
    """Each cloud's own options (``--instance-type``), each filling its own parameter."""
    for o in reversed([o for a in ADVISORS.values() for o in a.OPTIONS]):
        f = click.option(o.flag, o.dest, default=None, metavar=o.metavar, help=o.help)(f)
    return f


@click.command(help=f"Recommend {DEFAULT.SUMMARY}, explain each, and print the spec fragment to use. Needs no "
               "spec file. Exit 0 with a recommendation, 1 when no mode fits.")
@click.option("--inbound", type=yes_no, default="yes", show_default=True,
              help="Must machines outside a host open connections to its nested VMs?")
@click.option("--keep-source-ip", type=yes_no, default="yes", show_default=True,
              help="Must other machines see a nested VM's own address (no NAT)?")
@click.option("--vms-per-host", type=click.IntRange(0, 10_000_000), default=16, show_default=True)
@click.option("--hosts", type=click.IntRange(1, 10_000_000), default=2, show_default=True)
@click.option("--max-routes", type=click.IntRange(1, max(a.ROUTES_MAX for a in ADVISORS.values())),
              default=DEFAULT.ROUTES_DEFAULT, show_default=True,
              help=f"Your region's routes per route table ({DEFAULT.ROUTES_HELP}).")
@click.option("--cloud", type=click.Choice(list(CLOUDS)), default=clouds.DEFAULT, show_default=True,
              help=f"Whose modes and limits ({OTHERS}).")
@cloud_options
@json_option
def advise(inbound: str, keep_source_ip: str, vms_per_host: int, hosts: int, max_routes: int, cloud: str,
           as_json: bool, **options: str | None) -> None:
    from ..advise import Needs, advise as run
    from ..errors import UsageError

    for o in (o for n, a in ADVISORS.items() if n != cloud for o in a.OPTIONS):
        if options.get(o.dest):
            owner = next(n for n, a in ADVISORS.items() if o in a.OPTIONS)
            raise UsageError(f"{o.flag}: only with --cloud {owner}")
    # --max-routes's default is the default cloud's: another cloud's applies unless it was given
    given = click.get_current_context().get_parameter_source("max_routes") != click.core.ParameterSource.DEFAULT
    a = run(Needs(inbound == "yes", keep_source_ip == "yes", vms_per_host, hosts, max_routes if given else None),
            cloud, options)
    if as_json:
        emit_json(a.to_dict())
        sys.exit(0 if a.mode else 1)
    out = console()
    if a.mode:
        out.print(f"[bold green]use {a.mode}[/]: ", end="")
    else:
        out.print("[bold red]no mode fits[/]: ", end="")
    out.print(a.why, markup=False)
    for m in a.modes:
        verdict = "[red]ruled out[/]" if m in a.ruled_out else "[green]fits[/]"
        out.print(f"\n[bold]{m}[/] {verdict}")
        for f in a.findings:
            if f.mode == m:
                mark = "[green]+[/]" if f.fits else "[red]x[/]"
                out.print(f"  {mark} ", end="")
                out.print(f"{f.text} [{f.source}]", markup=False, highlight=False)
    if a.fragment:
        out.print(f"\n[bold]spec fragment[/] (nestnet.yaml, mode {a.mode}):")
        out.print(a.fragment, markup=False, highlight=False, end="", soft_wrap=True)  # YAML: never wrapped
    sys.exit(0 if a.mode else 1)
