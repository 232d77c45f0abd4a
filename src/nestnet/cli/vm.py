"""``nestnet vm add|rm|list|config|move``."""

from __future__ import annotations

import sys

import click

from .output import console, emit_json, frozen_option, json_option, spec_argument, table, warn_lines

FORMATS = ("ip", "netplan", "cloud-init", "libvirt", "libvirt-domain")  # guest.FORMATS (not imported: start-up time)


@click.group()
def vm() -> None:
    """Nested VMs: add, remove, list, and their guest network config."""


@vm.command("add")
@spec_argument
@click.argument("name")
@click.option("--host", "host", required=True, help="The KVM host the VM runs on.")
@click.option("--ip", default=None, help="Pin an address (default: the lowest free one in the host's block).")
@json_option
def add(spec: str, name: str, host: str, ip: str | None, as_json: bool) -> None:
    """Add VM NAME on HOST to SPEC (comments and order kept); its address goes to the lock."""
    from ..specedit import vm_add

    plan = vm_add(spec, name, host, ip).plan
    v = plan.vms[name]
    if as_json:
        emit_json({"vm": name, **v.to_dict()})
        return
    click.echo(f"added {name} on {host}: {v.ip}/{v.prefix_len} gateway {v.gateway}")
    from .. import clouds

    cloud = plan.cloud.cloud_name
    # only outside the host's block does the cloud hold a route of the VM's own (asking loads the cloud)
    route = None if v.ip in plan.hosts[host].block else clouds.views(cloud).exception_route(plan, v.ip)
    if route is not None and not click.get_current_context().meta.get("nestnet.quiet"):
        # outside the host's block: one more route in the cloud (counted against max_routes) and a route on every host
        click.secho(f"warning: {v.ip} is outside {host}'s block {plan.hosts[host].block}: a /32 exception, "
                    f"{route} and "
                    f"a route on every host (`nestnet {cloud} apply`, then `nestnet fleet apply`; -q hides this)",
                    err=True, fg="yellow" if sys.stderr.isatty() else None)


@vm.command("rm")
@spec_argument
@click.argument("name")
def rm(spec: str, name: str) -> None:
    """Remove VM NAME from SPEC and the lock (no other address moves)."""
    from ..specedit import vm_rm

    vm_rm(spec, name)
    click.echo(f"removed {name}")


@vm.command("list")
@spec_argument
@json_option
@frozen_option
def list_(spec: str, as_json: bool, frozen: bool) -> None:
    """List the nested VMs with their addresses."""
    from ..plan import load

    loaded = load(spec, frozen=frozen)
    plan = loaded.plan
    if as_json:
        emit_json({"vms": {n: v.to_dict() for n, v in plan.vms.items()}})
        return
    warn_lines(plan.warnings)
    t = table(None, ["vm", "host", "address", "gateway", "mac"])
    for v in plan.vms.values():
        t.add_row(v.name, v.host, f"{v.ip}/{v.prefix_len}", str(v.gateway), v.mac)
    console().print(t)


@vm.command("config")
@spec_argument
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="ip", show_default=True)
@click.option("--iface", default="eth0", show_default=True, help="The guest's interface name.")
@frozen_option
def config(spec: str, name: str, fmt: str, iface: str, frozen: bool) -> None:
    """Print VM NAME's guest network config (ip commands, netplan, cloud-init, a libvirt <interface> or a whole libvirt domain)."""
    from ..errors import UsageError
    from ..guest import render
    from ..names import unknown
    from ..plan import load

    loaded = load(spec, write=False, frozen=frozen)
    plan = loaded.plan
    if name not in plan.vms:
        raise UsageError(f"{spec}: no VM named {name!r}{unknown(name, plan.vms)}")
    if loaded.lock_changed and not frozen:
        plan = load(spec).plan  # record the address it is about to be told (bad input wrote nothing)
    click.echo(render(plan, name, fmt, iface), nl=False)


@vm.command("move")
@spec_argument
@click.argument("name")
@click.option("--to", "to", required=True, help="The host the VM now lives on.")
@click.option("--renumber", is_flag=True, help="Give it an address in the new host's block (no /32 exception).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="ip", show_default=True,
              help="Format of the guest config printed when it changes.")
@json_option
def move(spec: str, name: str, to: str, renumber: bool, fmt: str, as_json: bool) -> None:
    """Move VM NAME to host TO in SPEC. It keeps its address (a /32 exception: a route in the cloud
    and a route on every host) unless --renumber; its guest config is printed when it changes."""
    from ..guest import render
    from ..specedit import move_vm

    old, loaded = move_vm(spec, name, to, renumber)
    plan = loaded.plan
    v = plan.vms[name]
    exception = next((m for m in plan.moves if m.vm == name), None)
    changed = (old.ip, old.gateway, old.prefix_len) != (v.ip, v.gateway, v.prefix_len)
    config = render(plan, name, fmt) if changed else None
    if as_json:
        emit_json({"vm": name, **v.to_dict(), "exception": exception.to_dict() if exception else None,
                   "guest_config_changed": changed, "guest_config": config})
        return
    from ..clouds import title

    how = (f"keeps {v.ip} (a /32 exception: {title(plan.cloud.cloud_name)} route and a route on every host)" if exception
           else f"address {v.ip}/{v.prefix_len}")
    click.echo(f"moved {name} to {to}: {how}; guest config {'changed' if changed else 'unchanged'}")
    if config:
        click.echo(config, nl=False)
