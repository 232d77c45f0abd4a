"""``nestnet aws``: diff/apply the EC2 side, export Terraform/AWS CLI, run the emulated EC2 endpoint."""

from __future__ import annotations

import sys

import click

from ...cli.output import UserPath, emit_json, json_option, note, spec_argument, warn_lines

prune_option = click.option(
    "--prune-foreign", is_flag=True,
    help="Also delete (or replace) routes inside nested.pool in the spec's route tables that nestnet does not own.",
)


class _Out(UserPath):
    """``--out``: '-' for stdout, else a file in an existing directory (checked when parsed)."""

    def __init__(self) -> None:
        super().__init__("out")

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        return value if value == "-" else super().convert(value, param, ctx)


def _load(spec: str):  # -> (Plan, AwsPlan)
    from ...plan import load_plan
    from .cloud import aws_of

    plan = load_plan(spec, write=False)
    return plan, aws_of(plan)


def _print_changes(changes: list, header: str) -> None:
    if not changes:
        click.echo("no changes: EC2 matches the plan")
        return
    click.echo(header)
    for c in changes:
        click.echo(f"  {c}")


@click.group("aws")
def aws() -> None:
    """Reconcile ENI prefixes, routes and source/destination checks in EC2; export them.

    Credentials and endpoint come from AWS's default chain (environment, ~/.aws, instance
    role); AWS_ENDPOINT_URL (or the config file's endpoint_url) points at an emulator and
    AWS_CA_BUNDLE at its CA. The Region is the spec's aws.region.

    Exit codes: 0 nothing to do / done; 1 changes pending (diff) or EC2 refused a change;
    2 bad input, or the spec does not match EC2, nothing written; 3 EC2 could not be reached,
    authorized or brought to the plan in time.
    """


@aws.command()
@click.option("--listen", default="127.0.0.1:8444", show_default=True, help="IPv4:PORT (port 0: any free port).")
@click.option("--state-dir", type=UserPath("dir"), required=True)
@click.option("--seed", "seed_spec", type=UserPath("in"),
              help="Create the VPC, subnets, route tables and host instances (their ENIs Name-tagged) of this spec.")
@click.option("--inject", "inject", multiple=True, metavar="KIND:RATE",
              help="Repeatable. KIND: throttle (503 RequestLimitExceeded), unavailable (503 Unavailable), internal "
              "(500 InternalError), writer (another writer adds a route or an address just before a write). "
              "RATE: share of requests, 0..1.")
@click.option("--inject-seed", default=0, show_default=True, type=int, help="Seed of the injections' random draws.")
@click.option("--max-routes", type=click.IntRange(1, 1000), default=50, show_default=True,
              help="Routes per route table (EC2's default quota is 50, adjustable up to 1,000).")
def emulator(listen: str, state_dir: str, seed_spec: str | None, inject: tuple[str, ...], inject_seed: int,
             max_routes: int) -> None:
    """Run an emulated EC2 endpoint: moto's server behind HTTPS, with ENI prefixes, EC2's limits
    and route rules (its CA in STATE_DIR/ca.pem, its URL in STATE_DIR/endpoint).

    GET /_emulator/stats counts requests and injections; POST /_emulator/inject
    {"rates": {"throttle": 0.5}, "seed": 1} changes the injections while it runs; POST
    /_emulator/reset forgets everything. State lives in memory, as long as the emulator runs.
    """
    from ...clouds.azure.emulator import parse_listen
    from ...errors import UsageError
    from .emulator import Emulator, Injector, parse_inject

    host, port = parse_listen(listen)
    rates = dict(parse_inject(v) for v in inject)
    plan = _load(seed_spec)[0] if seed_spec else None  # a bad spec stops here, before anything starts
    try:
        em = Emulator(state_dir, host, port, Injector(rates, inject_seed), max_routes)
    except OSError as exc:
        raise UsageError(f"--listen {listen}: {exc.strerror or exc}") from None
    if plan is not None:
        from .emulator.seed import seed

        em.start()
        made = seed(em.url, str(em.ca_pem), plan)
        click.echo(f"seeded {len(made)} resources of {seed_spec} (VPC {made[plan.cloud.vpc]})")
    click.echo(f"EC2 emulator on {em.url} (CA {em.ca_pem}); use AWS_ENDPOINT_URL={em.url} "
               f"AWS_CA_BUNDLE={em.ca_pem}; stats at {em.url}/_emulator/stats")
    sys.stdout.flush()
    try:
        if plan is not None:
            em.wait()
        else:
            em.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        em.stop()


@aws.command()
@spec_argument
@json_option
@prune_option
def diff(spec: str, as_json: bool, prune_foreign: bool) -> None:
    """Show what `apply` would change in EC2 (six reads, no write).

    Exit 0: nothing to do; 1: changes pending; 2: bad input, the spec does not match EC2 or a
    limit would be passed; 3: EC2 could not be reached, authorized, or refused.
    """
    from .ec2 import Ec2Client
    from .reconcile import plan_changes

    plan, want = _load(spec)
    _, changes = plan_changes(Ec2Client(want.region), want, source=plan.source or spec, prune_foreign=prune_foreign)
    if as_json:
        emit_json({"changes": [c.to_dict() for c in changes]})
    else:
        warn_lines(plan.warnings)
        _print_changes(changes, f"{len(changes)} change(s):")
    sys.exit(1 if changes else 0)


@aws.command()
@spec_argument
@json_option
@prune_option
def apply(spec: str, as_json: bool, prune_foreign: bool) -> None:
    """Apply exactly the changes `diff` shows, each resource read again just before its write.

    Frees before takes (a block moving between hosts is unassigned first); limits and the spec's
    picture of EC2 (CIDR blocks, the hosts' primary addresses) are checked before any write.
    Exit 0 done; 2 bad input or a mismatch or limit, nothing written; 3 EC2 unreachable,
    unauthorized, or it refused a write (after the SDK's retries of throttling).
    """
    from .ec2 import Ec2Client
    from .reconcile import apply as do_apply
    from .reconcile import plan_changes

    plan, want = _load(spec)
    source = plan.source or spec
    client = Ec2Client(want.region)
    obs, changes = plan_changes(client, want, source=source, prune_foreign=prune_foreign)
    if not as_json:
        warn_lines(plan.warnings)
        _print_changes(changes, f"applying {len(changes)} change(s):")
    outcome = do_apply(client, want, obs, changes, source=source, prune_foreign=prune_foreign)
    if as_json:
        emit_json({"changes": [c.to_dict() for c in changes], **outcome.to_dict()})
        return
    if outcome.applied != changes:
        _print_changes(outcome.applied, f"EC2 changed meanwhile: wrote instead {len(outcome.applied)} change(s):")
    if changes or outcome.applied:
        click.echo(f"done: {outcome.writes} write(s)")


@aws.command()
@spec_argument
@click.option("--format", "fmt", type=click.Choice(["terraform", "aws-cli"]), required=True)
@click.option("--out", "out", required=True, metavar="PATH|-", type=_Out(),
              help="Where to write: '-' for stdout, else the file (replaced atomically).")
def export(spec: str, fmt: str, out: str) -> None:
    """Write the EC2 side as Terraform or an AWS CLI script (both re-runnable: the script looks
    before it writes and removes nothing)."""
    from ...store import write_output
    from .export import aws_cli, terraform

    plan, want = _load(spec)
    text = (terraform if fmt == "terraform" else aws_cli)(want, plan.name)
    if out == "-":
        click.echo(text, nl=False)
        return
    write_output(out, text, 0o755 if fmt == "aws-cli" else None)
    note(f"wrote {out}")


@aws.command("import")
@click.option("--region", required=True, help="The AWS Region (e.g. us-east-1).")
@click.option("--vpc", "vpc", required=True, help="The VPC: its id (vpc-...) or Name tag.")
@click.option("--name", default=None, help="The fabric's name (default: from the VPC reference).")
@click.option("--out", "out", required=True, metavar="SPEC|-", type=_Out(), help="Where to write the spec ('-': stdout).")
def import_(region: str, vpc: str, name: str | None, out: str) -> None:
    """Write a spec reproducing the fabric EC2 holds: the hosts whose ENIs carry a /28 prefix, a
    route from outside the VPC, or secondary addresses; their blocks; the subnets and route tables.
    Six reads, no write. Then `nestnet aws diff SPEC` shows no change on an untouched fabric."""
    from ...store import write_output
    from .ec2 import Ec2Client
    from .importer import import_text
    from .spec import REGION_RE

    if not REGION_RE.match(region):
        from ...errors import UsageError

        raise UsageError(f"--region {region!r}: not an AWS Region name (e.g. us-east-1)")
    from .reconcile import observe_vpc

    text = import_text(observe_vpc(Ec2Client(region), vpc), region, vpc, name)
    if out == "-":
        click.echo(text, nl=False)
        return
    write_output(out, text)
    note(f"wrote {out}")
