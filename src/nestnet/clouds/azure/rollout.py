"""``nestnet rollout``: Azure first, then every host - one command after a spec change."""

from __future__ import annotations

import resource
import time

import click

from ...cli.output import UserPath, emit_json, json_option, note, spec_argument, warn_lines


@click.command(context_settings={"ignore_unknown_options": True})
@spec_argument
@click.option("--adopt", is_flag=True, help="Take over hand-built routes with the same next hop (Azure and hosts).")
@click.option("--dry-run", is_flag=True, help="Show each step's changes; change nothing.")
@click.option("--inventory", "inventory_file", type=UserPath("in"),
              help="The Ansible inventory for the hosts step (default: one built from SPEC).")
@json_option
@click.argument("ansible_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- ANSIBLE ARGS...]")
def rollout(spec: str, adopt: bool, dry_run: bool, inventory_file: str | None, as_json: bool,
            ansible_args: tuple[str, ...]) -> None:
    """Bring Azure and every host to SPEC: `azure apply`, then `fleet apply`.

    Azure goes first so that a new host's block is routed before hosts route to it. Reports each
    step's changes and the seconds it took; exit 1 if any host failed (Azure's refusals stop
    the rollout before any host is touched).
    """
    import os

    from ... import fleet as fl
    from .. import load_own
    from .cli import _client, _lock_timeout
    from .lease import locked_apply
    from .reconcile import plan_changes

    t0 = time.monotonic()
    plan = load_own(spec, "azure", write=not dry_run)
    if not as_json:
        warn_lines(plan.warnings)
    client = _client(plan, progress=False)
    writes = 0
    if dry_run:
        _, _, changes = plan_changes(client, plan, adopt=adopt)
    else:
        # As `azure apply`: under the apply lease (docs/decisions/0029), the changes made under it.
        _, _, changes, outcome, _ = locked_apply(client, plan, os.path.abspath(spec), _lock_timeout(None),
                                                 adopt=adopt, say=note)
        writes = outcome.writes
    t1 = time.monotonic()
    if not as_json:
        for c in changes:
            click.echo(f"azure: {c}")
        note(f"azure: {len(changes)} changes {'pending (dry run)' if dry_run else 'made'} in {t1 - t0:.1f} s")
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    results = fl.apply(plan, spec, inventory=inventory_file, dry_run=dry_run, extra_args=ansible_args, adopt=adopt)
    t2 = time.monotonic()
    c2 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU of ansible-playbook and its ssh clients (the controller's side): a figure load does not inflate.
    cpu = (c2.ru_utime - c1.ru_utime) + (c2.ru_stime - c1.ru_stime)
    host_changes = sum(len(r.changes) for r in results)
    if as_json:
        emit_json({
            "dry_run": dry_run,
            "steps": [
                {"step": "azure", "seconds": round(t1 - t0, 3), "writes": writes, "changes": [c.to_dict() for c in changes]},
                {"step": "hosts", "seconds": round(t2 - t1, 3), "cpu_s": round(cpu, 3), "hosts": [r.to_dict() for r in results]},
            ],
            "seconds": round(t2 - t0, 3),
        })
    else:
        for r in results:
            for c in r.changes:
                mark = "-" if c["op"] == "del" else "~" if c["op"] in ("set", "replace") else "+"
                detail = f" ({c['detail']})" if c.get("detail") else ""
                click.echo(f"{r.host}: {mark} {c['kind']} {c['op']} {c['key']}{detail}")
            if not r.good:
                click.echo(f"{r.host}: {r.status}: {r.error}")
        note(f"hosts: {host_changes} changes {'pending (dry run)' if dry_run else 'made'} on {len(results)} hosts "
             f"in {t2 - t1:.1f} s; rollout {t2 - t0:.1f} s")
    if any(not r.good for r in results):
        raise click.exceptions.Exit(1)
