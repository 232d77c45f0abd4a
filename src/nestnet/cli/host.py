"""``nestnet host apply|diff|remove|hook``: program this KVM host from the plan."""

from __future__ import annotations

import sys

import click

from .output import UserPath, emit_json, json_option, note, spec_argument, warn_lines

host_option = click.option("--host", "host_name", metavar="NAME", help="Which host this is (default: the one whose IP is local).")
# Checked when parsed; not remembered: a file error under it mid-apply is the host's (HostError).
root_option = click.option(
    "--root", default="/", show_default=True, envvar="NESTNET_ROOT", type=UserPath("dir", remember=False, writable=False),
    help="Write persistent files under this directory ($NESTNET_ROOT; `nestnet lab exec` sets it for lab hosts).",
)
dry_run_option = click.option("--dry-run", is_flag=True, help="Print the changes, make none.")
adopt_option = click.option(
    "--adopt", is_flag=True,
    help="Take over foreign routes with the same prefix and next hop (a hand-built fabric), atomically.",
)


@click.group()
def host() -> None:
    """Program this KVM host: routes to the other hosts' blocks, the nested bridge, sysctls,
    firewall (nftables table or UFW rules), persistence. Run as root on the host."""


def _load(spec: str, host_name: str | None):
    from .. import host as reconciler
    from ..errors import HostError, UsageError
    from ..plan import load_plan

    plan = load_plan(spec, write=False)
    warn_lines(plan.warnings)
    if host_name:
        return plan, host_name
    try:
        return plan, reconciler.find_self(plan)
    except HostError as exc:  # the user must say which host: bad input (2), as for doctor
        raise UsageError(str(exc)) from None


def _print(changes, as_json: bool, verb: str, name: str) -> None:
    if as_json:
        emit_json({"host": name, "changes": [c.to_dict() for c in changes]})
        return
    for c in changes:
        click.echo(f"{'-' if c.op == 'del' else '~' if c.op in ('set', 'replace') else '+'} {c}")
    note(f"{name}: {len(changes)} changes {verb}")


@host.command()
@spec_argument
@host_option
@root_option
@dry_run_option
@adopt_option
@json_option
def apply(spec: str, host_name: str | None, root: str, dry_run: bool, adopt: bool, as_json: bool) -> None:
    """Make this host match SPEC; prints exactly the changes made (a second run makes none)."""
    from .. import host as reconciler

    plan, name = _load(spec, host_name)
    changes = reconciler.apply(plan, name, root, dry_run=dry_run, adopt=adopt)
    _print(changes, as_json, "to make (dry run)" if dry_run else "made", name)


@host.command()
@spec_argument
@host_option
@root_option
@adopt_option
@json_option
def diff(spec: str, host_name: str | None, root: str, adopt: bool, as_json: bool) -> None:
    """Show what apply would change on this host. Writes nothing.

    Exit 0: in sync; 1: changes pending (as the cloud's diff and `git diff --exit-code`); 2: bad input.
    """
    from .. import host as reconciler

    from ..host.leftovers import find

    plan, name = _load(spec, host_name)
    changes = reconciler.diff(plan, name, root, adopt=adopt)
    left = find(root, plan, name)
    if as_json:
        emit_json({"host": name, "changes": [c.to_dict() for c in changes], "leftovers": left})
    else:
        _print(changes, False, "pending", name)
        for line in left:  # advice: they are not nestnet's to change, so not pending
            note(f"leftover of the manual set-up: {line}")
    sys.exit(1 if changes else 0)


@host.command()
@spec_argument
@host_option
@root_option
@dry_run_option
@json_option
def remove(spec: str, host_name: str | None, root: str, dry_run: bool, as_json: bool) -> None:
    """Delete everything nestnet owns on this host: its routes, table, bridge and files."""
    from .. import host as reconciler

    plan, name = _load(spec, host_name)
    changes = reconciler.remove(plan, name, root, dry_run=dry_run)
    _print(changes, as_json, "to make (dry run)" if dry_run else "made", name)


@host.command("add")
@spec_argument
@click.argument("name")
@click.option("--ip", required=True, help="The host NIC's primary private IP.")
@click.option("--nic", default=None, help="Its NIC in the cloud (default <name>-nic).")
@click.option("--subnet", default=None, help="Its subnet (default: the one holding --ip).")
@click.option("--block", default=None, help="Pin its block (default: first free one, recorded in the lock).")
@click.option("--uplink", default=None, help="Its uplink interface (default: host_defaults, else eth0).")
@click.option("--bridge", default=None, help="The nested VMs' bridge.")
@click.option("--bridge-type", type=click.Choice(["linux", "ovs"]), default=None)
@click.option("--bridge-has-uplink/--no-bridge-has-uplink", default=None)
@click.option("--firewall", type=click.Choice(["nftables", "ufw"]), default=None)
@click.option("--ssh-port", type=int, default=None)
@json_option
def add(spec: str, name: str, ip: str, as_json: bool, **keys) -> None:
    """Add host NAME to SPEC (comments and order kept); its block goes to the lock. Then
    `nestnet rollout SPEC` routes it in the cloud and on every host."""
    from ..hostedit import host_add

    plan = host_add(spec, name, ip, **keys).plan
    h = plan.hosts[name]
    if as_json:
        emit_json({"host": name, **h.to_dict()})
        return
    click.echo(f"added host {name}: {h.ip} in {h.subnet}, block {h.block}, NIC {h.nic}")


@host.command("rm")
@spec_argument
@click.argument("name")
@click.option("--release-block", is_flag=True, help="Confirm that the host's block may go to the next host added.")
def rm(spec: str, name: str, release_block: bool) -> None:
    """Remove host NAME (and its lock entry) from SPEC; refused while VMs are on it."""
    from ..hostedit import host_rm

    _, block = host_rm(spec, name, release_block)
    click.echo(f"removed host {name}; block {block} released")


@host.command("hook", context_settings={"ignore_unknown_options": True})
@spec_argument
@host_option
@root_option
@click.argument("guest")
@click.argument("operation")
@click.argument("sub_operation")
def hook(spec: str, host_name: str | None, root: str, guest: str, operation: str, sub_operation: str) -> None:
    """What the libvirt qemu hook runs (hosts[].migration_hook): a move's steps at GUEST's
    OPERATION/SUB_OPERATION; the domain XML on stdin. Exits 0 when there is nothing to do."""
    from ..host import libvirt_hook, lock, move

    plan, name = _load(spec, host_name)
    xml = "" if sys.stdin.isatty() else sys.stdin.read()
    vm = libvirt_hook.vm_of(plan, guest, xml)
    steps = libvirt_hook.steps(plan, name, vm, operation, sub_operation)
    if not steps:
        return
    with lock.held(root, "host hook"):  # one writer on this host at a time (host/lock.py)
        for step in steps:
            assert vm is not None
            if step == "arrive":
                move.arrive(plan, name, vm, root)
            else:
                move.depart(plan, name, vm, root)
            note(f"{name}: {vm} {step} ({operation}/{sub_operation})")


@host.command("stage-departure")
@spec_argument
@click.argument("vm")
@host_option
@root_option
def stage_departure(spec: str, vm: str, host_name: str | None, root: str) -> None:
    """On VM's old host, before `virsh migrate` (SPEC already says where VM goes): the move tunnel
    and its entries for the new host, and the route change staged for the qemu hook, which makes it
    in shell the moment the guest has left (stopped end), before nestnet's own start."""
    from ..host import lock, move

    plan, name = _load(spec, host_name)
    with lock.held(root, "host stage-departure"):
        p = move.stage_departure(plan, name, vm, root)
    note(f"{name}: {vm}'s departure to {plan.vms[vm].host} staged in {p}")
