"""``nestnet advise``: routed, nat or secondary-ip for what you need, every reason a tested rule."""

from __future__ import annotations

import sys

import click

from .output import console, emit_json, json_option

yes_no = click.Choice(["yes", "no"])


@click.command()
@click.option("--inbound", type=yes_no, default="yes", show_default=True,
              help="Must machines outside a host open connections to its nested VMs?")
@click.option("--keep-source-ip", type=yes_no, default="yes", show_default=True,
              help="Must other machines see a nested VM's own address (no NAT)?")
@click.option("--vms-per-host", type=click.IntRange(0, 10_000_000), default=16, show_default=True)
@click.option("--hosts", type=click.IntRange(1, 10_000_000), default=2, show_default=True)
@click.option("--max-routes", type=click.IntRange(1, 1000), default=400, show_default=True,
              help="Your region's routes per route table (Azure: 400; 1,000 where allowed).")
@click.option("--cloud", type=click.Choice(["azure", "aws"]), default="azure", show_default=True,
              help="Whose modes and limits (aws: prefix, routed, secondary-ip, nat; --max-routes default 50).")
@click.option("--instance-type", default=None, metavar="TYPE",
              help="aws: the hosts' instance type, for the addresses per ENI (default c8i.large).")
@json_option
def advise(inbound: str, keep_source_ip: str, vms_per_host: int, hosts: int, max_routes: int, cloud: str,
           instance_type: str | None, as_json: bool) -> None:
    """Recommend a mode - routed, nat or secondary-ip - from the seed document's trade-offs and
    Azure's limits (routes per route table, IP configurations per NIC), explain each, and print
    the spec fragment to use. Needs no spec file. Exit 0 with a recommendation, 1 when no mode fits.
    """
    from ..advise import Needs, advise as run

    if cloud == "aws":
        from ..clouds.aws.advise import advise as run_aws

        routes = max_routes if click.get_current_context().get_parameter_source("max_routes") != \
            click.core.ParameterSource.DEFAULT else None
        a = run_aws(Needs(inbound == "yes", keep_source_ip == "yes", vms_per_host, hosts), routes, instance_type)
    else:
        if instance_type:
            from ..errors import UsageError

            raise UsageError("--instance-type: only with --cloud aws")
        a = run(Needs(inbound == "yes", keep_source_ip == "yes", vms_per_host, hosts, max_routes))
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
