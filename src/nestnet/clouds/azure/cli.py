"""``nestnet azure``: diff/apply the Azure side, export Terraform/az, run the emulated ARM endpoint."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import click

from ...cli.output import UserPath, console, emit_json, json_option, note, spec_argument, warn_lines

prune_option = click.option(
    "--prune-foreign", is_flag=True, help="Also delete routes in the table that nestnet does not own."
)
timeout_option = click.option(
    "--timeout", "timeout", metavar="SECONDS", default=None,
    help="Give up after this long, retries included (default: NESTNET_ARM_TIMEOUT, else 300); "
    "each request also times out (connect 10 s, read 60 s, or what is left).",
)
adopt_option = click.option(
    "--adopt", is_flag=True,
    help="Rename foreign routes with a wanted prefix and the same next hop to nestnet's names (same PUT).",
)


@click.group()
def azure() -> None:
    """Reconcile the Azure route table, subnet associations and NIC forwarding; export them.

    The cloud comes from the spec's azure.cloud (public, usgov, china) or azure.arm_endpoint and
    azure.authority_host; NESTNET_ARM_ENDPOINT overrides the endpoint, TLS is verified against
    NESTNET_ARM_CA_BUNDLE if set, NESTNET_ARM_TOKEN gives a static token (emulators),
    AZURE_SUBSCRIPTION_ID the subscription when the spec has none, NESTNET_ARM_TIMEOUT the deadline.

    Exit codes: 0 nothing to do / done; 1 changes pending (diff) or ARM refused a change;
    2 bad input, or the spec does not match Azure (region, address space, a NIC's address),
    nothing written; 3 Azure could not be reached, authorized or brought to the plan in time, or
    another apply held its lease past --lock-timeout (`azure unlock` clears a killed apply's).
    """


def _client(plan: Any, progress: bool, timeout: str | None = None):
    from .arm import ArmClient, parse_timeout, settings_for

    settings = settings_for(plan, timeout=parse_timeout("--timeout", timeout) if timeout is not None else None)

    def show(msg: str) -> AbstractContextManager[Any]:
        # Long-running ARM operations take seconds: say what we are waiting for.
        return console(stderr=True).status(f"{msg}: waiting for Azure") if progress else nullcontext()

    return ArmClient(settings, progress=show)


def _print_changes(changes: list, header: str) -> None:
    if not changes:
        click.echo("no changes: Azure matches the plan")
        return
    click.echo(header)
    for c in changes:
        click.echo(f"  {c}")


@azure.command()
@spec_argument
@json_option
@prune_option
@adopt_option
@timeout_option
def diff(spec: str, as_json: bool, prune_foreign: bool, adopt: bool, timeout: str | None) -> None:
    """Show what `apply` would change in Azure.

    Exit 0: nothing to do; 1: changes pending (drift); 2: bad input or the spec does not match
    Azure; 3: Azure could not be reached or authorized (so CI can tell drift from an outage).
    """
    from .reconcile import plan_changes
    from .. import load_own

    plan = load_own(spec, "azure")
    want, obs, changes = plan_changes(_client(plan, False, timeout), plan, prune_foreign=prune_foreign, adopt=adopt)
    needs = _needs(plan, want, obs, changes)
    if as_json:
        emit_json({"changes": [c.to_dict() for c in changes], **({"needs": needs} if needs else {})})
    else:
        warn_lines(plan.warnings)
        _print_changes(changes, f"{len(changes)} change(s):")
        _print_needs(needs)
    sys.exit(1 if changes or needs else 0)


def _needs(plan: Any, want: Any, obs: Any, changes: list) -> list[str]:
    """What the exposed ports need in Azure that nestnet may not write (an NSG that is not its own)."""
    from .publicip import needs

    return needs(want, obs, changes, plan.azure.resource_group)


def _print_needs(needs: list[str]) -> None:
    if needs:
        click.echo("needed, and not nestnet's to change:")
        for n in needs:
            click.echo(f"  {n}")


def _lock_timeout(value: str | None) -> float:
    from .lease import DEFAULT_LOCK_TIMEOUT
    from ...env import get, wait_seconds

    if value is not None:
        return wait_seconds("--lock-timeout", value)
    from_env = get("NESTNET_ARM_LOCK_TIMEOUT")
    return DEFAULT_LOCK_TIMEOUT if from_env is None else from_env


@azure.command()
@spec_argument
@json_option
@prune_option
@adopt_option
@timeout_option
@click.option("--lock-timeout", "lock_timeout", metavar="SECONDS", default=None,
              help="Wait this long for another apply's lease on the route table (VNet in other modes) before "
              "exit 3 (default: NESTNET_ARM_LOCK_TIMEOUT, else 60; 0: do not wait).")
def apply(spec: str, as_json: bool, prune_foreign: bool, adopt: bool, timeout: str | None,
          lock_timeout: str | None) -> None:
    """Apply exactly the changes `diff` shows: one PUT for the whole route table, then subnets and NICs.

    Each subnet and NIC is read again just before its write and written with If-Match, so a
    change someone else made meanwhile is kept. One apply at a time: before its first write,
    apply takes a lease recorded in the tag nestnet-apply-lease of the route table (of the VNet
    in modes without one), waits up to --lock-timeout for another apply's, reads Azure again
    under it (so the changes shown are made to what the previous apply left) and releases it
    after, also on failure or Ctrl-C; an expired lease (a killed apply's) is taken over.
    Exit 0 done, 1 ARM refused, 2 bad input or the spec does not match Azure (nothing written),
    3 Azure unreachable, still busy at --timeout, or another apply's lease still held at --lock-timeout.
    """
    import os

    from .lease import locked_apply
    from .. import load_own

    plan = load_own(spec, "azure")
    wait = _lock_timeout(lock_timeout)
    client = _client(plan, progress=not as_json and sys.stderr.isatty(), timeout=timeout)

    def show(changes: list) -> None:
        if not as_json:
            warn_lines(plan.warnings)  # once Azure has been read (an error is one line)
            _print_changes(changes, f"applying {len(changes)} change(s):")

    want, obs, changes, outcome, held = locked_apply(
        client, plan, os.path.abspath(spec), wait, prune_foreign=prune_foreign, adopt=adopt, say=note, show=show)
    needs = _needs(plan, want, obs, changes)
    if as_json:
        emit_json({"changes": [c.to_dict() for c in changes], **outcome.to_dict(),
                   "lease": held.to_dict() if held else None, **({"needs": needs} if needs else {})})
        if needs:
            sys.exit(1)
    else:
        _print_needs(needs)
        if len(outcome.applied) != len(changes) or any(c not in changes for c in outcome.applied):
            # Someone wrote in between (412): the diff was re-computed on what Azure holds now.
            _print_changes(outcome.applied, "Azure changed meanwhile: re-read it and wrote instead "
                           f"{len(outcome.applied)} change(s):")
        if changes or outcome.applied:
            extra = f", {outcome.retries_412} retried after a concurrent change" if outcome.retries_412 else ""
            extra += f", {outcome.busy_retries} retried while Azure was busy" if outcome.busy_retries else ""
            click.echo(f"done: {outcome.writes} write(s){extra}")
        if needs:
            sys.exit(1)


@azure.command()
@spec_argument
@json_option
@click.option("--force", is_flag=True,
              help="Also clear a lease that has not expired (its apply is gone, e.g. its machine was lost).")
@click.option("--dry-run", is_flag=True, help="Show the lease that would be cleared; write nothing.")
@timeout_option
def unlock(spec: str, as_json: bool, force: bool, dry_run: bool, timeout: str | None) -> None:
    """Clear a stuck apply lease (a killed `azure apply`'s) from the route table, or the VNet in
    modes without one, keeping everything else on it.

    An expired lease is cleared as it is (apply would also take it over); a live one only with
    --force: without it, exit 1 and nothing is written. Exit 0: cleared, or no lease there.
    """
    from .diff import desired
    from .lease import unlock as clear
    from .. import load_own

    plan = load_own(spec, "azure")
    place, lease, cleared = clear(_client(plan, False, timeout), desired(plan), force=force, dry_run=dry_run)
    if as_json:
        emit_json({"resource": str(place), "lease": lease.to_dict() if lease else None,
                   "live": bool(lease and lease.live()), "cleared": cleared, "dry_run": dry_run})
    elif lease is None:
        click.echo(f"no apply lease on {place}")
    else:
        state = "live" if lease.live() else "expired"
        verb = "would clear" if dry_run else "cleared" if cleared else "found no longer"
        click.echo(f"{verb} the {state} apply lease on {place}: {lease.describe()}")


class ExportOut(UserPath):
    """``--out`` of ``azure export``: '-' (stdout), a directory (existing, or written with a
    trailing '/') to write the default file name into, or the file itself; either kind is right,
    so only what can never be written is refused (checked when parsed, as every --out)."""

    either_kind = True

    def __init__(self) -> None:
        super().__init__("new")
        self.dir_okay = True

    def convert(self, value, param, ctx):
        import os

        if value == "-":
            return value
        if str(value).endswith("/") or os.path.isdir(value):
            return UserPath("dir").convert(value, param, ctx)
        return super().convert(value, param, ctx)


@azure.command()
@spec_argument
@click.option("--format", "fmt", type=click.Choice(["terraform", "az"]), required=True)
@click.option("--out", "out", required=True, metavar="PATH|-", type=ExportOut(),
              help="Where to write: '-' for stdout; a directory (existing, or ending in '/'; created if missing) gets "
              "nestnet.tf or nestnet-az.sh; any other path is the file itself (terraform: a name ending in .tf).")
@click.option(
    "--tf-association", type=click.Choice(["resource", "inline"]), default="resource", show_default=True,
    help="Terraform: attach the table with azurerm_subnet_route_table_association resources (subnets that are "
    "azurerm_subnet resources or outside Terraform), or inline via route_table_id in the subnet blocks of your "
    "azurerm_virtual_network (subnets declared inline there).",
)
def export(spec: str, fmt: str, out: str, tf_association: str) -> None:
    """Write the Azure side as Terraform or an az CLI script: to stdout (--out -), a file, or a
    directory (DIR/nestnet.tf, DIR/nestnet-az.sh).

    Both are safe to run again: the az script creates the route table only when it is missing and
    never removes what it did not write.
    """
    from .export import export_text, write_export
    from .. import load_own

    plan = load_own(spec, "azure")
    if out == "-":
        click.echo(export_text(plan, fmt, tf_association), nl=False)
        return
    # An OSError names the path that failed (store.write_output): the CLI reports it under --out.
    note(f"wrote {write_export(plan, fmt, out, tf_association)}")


@azure.command()
@click.option("--listen", default="127.0.0.1:8443", show_default=True, help="IPv4:PORT (port 0: any free port).")
@click.option("--state-dir", type=UserPath("dir"), required=True)
@click.option("--seed", "seed_spec", type=UserPath("in"), help="Create the VNet, subnets and host NICs of this spec.")
@click.option("--inject", "inject", multiple=True, metavar="KIND:RATE",
              help="Repeatable. KIND: 429 (throttled), 409 (AnotherOperationInProgress), canceled (the write's "
              "operation ends Canceled, not applied), writer (another writer changes the resource between "
              "read and write). RATE: share of requests, 0..1.")
@click.option("--inject-seed", default=0, show_default=True, type=int, help="Seed of the injections' random draws.")
@click.option("--retry-after", default="1", show_default=True, help="Retry-After seconds sent with injected 429s ('none': no header).")
@click.option("--program-lab", is_flag=True, help="Make the running lab of --seed SPEC follow every write (lab up --azure api).")
@click.option("--propagation-delay", type=click.FloatRange(min=0), default=0.0, show_default=True, metavar="SECONDS",
              help="With --program-lab: writes reach the lab's data plane this much later, as on Azure.")
def emulator(
    listen: str, state_dir: str, seed_spec: str | None, inject: tuple[str, ...], inject_seed: int, retry_after: str,
    program_lab: bool, propagation_delay: float,
) -> None:
    """Run an emulated ARM endpoint (HTTPS; its CA in STATE_DIR/ca.pem, its URL in STATE_DIR/endpoint).

    GET /_emulator/stats counts requests and what each injection did; POST /_emulator/inject
    {"rates": {"409": 0.5}, "seed": 1} changes the injections while it runs.
    """
    from .emulator import DEFAULT_SUBSCRIPTION, Arm, Emulator, parse_inject, parse_listen
    from ...errors import UsageError

    host, port = parse_listen(listen)
    rates = dict(parse_inject(v) for v in inject)
    wait: str | None = None if retry_after.strip().lower() == "none" else retry_after
    try:
        if wait is not None and float(wait) < 0:
            raise ValueError
    except ValueError:
        raise UsageError(f"--retry-after {retry_after!r}: expected a number of seconds >= 0, or none") from None
    if propagation_delay and not program_lab:
        raise UsageError("--propagation-delay: only with --program-lab (it delays the lab's data plane)")
    if program_lab and not seed_spec:
        raise UsageError("--program-lab needs --seed SPEC (the lab's spec)")
    plan = None
    if seed_spec:
        from .. import load_own

        plan = load_own(seed_spec, "azure")
    arm = Arm(state_dir, inject=rates, retry_after=wait, rng_seed=inject_seed)  # takes the state dir's lock first
    if arm.notice:
        click.echo(f"nestnet azure emulator: {arm.notice}", err=True)
    sub = DEFAULT_SUBSCRIPTION
    if plan is not None:
        arm.seed(plan)
        sub = plan.azure.subscription_id or sub
        if program_lab:
            from .lab import lab_programmer
            from ...lab.core import is_up

            if not is_up(plan.name):
                raise UsageError(f"--program-lab: lab {plan.name} is not up (nestnet lab up {seed_spec})")
            arm.on_change = lab_programmer(plan, propagation_delay)
            arm.on_change(arm)  # the lab starts from what the emulator holds, not from the plan
    try:
        em = Emulator(arm, host, port)
    except OSError as exc:
        raise UsageError(f"--listen {listen}: {exc.strerror or exc}") from None
    click.echo(f"ARM emulator on {em.url} (CA {em.ca_pem}, subscription {sub}); stats at {em.url}/_emulator/stats")
    sys.stdout.flush()
    try:
        em.serve_forever()
    except KeyboardInterrupt:
        pass
