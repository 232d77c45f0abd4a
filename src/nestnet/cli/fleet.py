"""``nestnet fleet inventory|playbook|apply``: apply the plan to every host through Ansible."""

from __future__ import annotations

import click

from .output import (
    UserPath,
    console,
    emit_json,
    json_option,
    note,
    probe_option,
    spec_argument,
    table,
    warn_lines,
)

out_option = click.option("--out", type=UserPath("out"), help="Write to FILE instead of stdout.")


@click.group()
def fleet() -> None:
    """Apply the plan to every host with ansible-playbook: each host gets the spec and its lock
    and runs ``nestnet host apply`` itself. ``inventory`` and ``playbook`` print what ``apply``
    runs, for use in your own Ansible."""


def _write(text: str, out: str | None) -> None:
    if out is None:
        click.echo(text, nl=False)
        return
    from ..store import write_output

    write_output(out, text)  # atomic: a full disk leaves the previous file whole (exit 2, naming it)


def _plan(spec: str, write: bool = False):
    from ..plan import load_plan

    plan = load_plan(spec, write=write)
    warn_lines(plan.warnings)
    return plan


@fleet.command()
@spec_argument
@out_option
def inventory(spec: str, out: str | None) -> None:
    """Print an Ansible inventory (YAML) of SPEC's hosts: group nestnet_hosts."""
    from ..fleet import inventory as render
    from ..fleet.run import dump

    _write(dump(render(_plan(spec))), out)


@fleet.command()
@spec_argument
@out_option
def playbook(spec: str, out: str | None) -> None:
    """Print the playbook apply runs. It needs the extra var nestnet_payload (what apply passes:
    base64 of the spec and lock) or else nestnet_spec_src and nestnet_lock_src (controller
    paths; empty lock = none), and reads nestnet_install (pip|skip),
    nestnet_pip_name, nestnet_command and nestnet_root (all with defaults)."""
    from ..fleet import playbook as render
    from ..fleet.run import dump

    _plan(spec)  # a broken spec is an error here too
    _write(dump(render()), out)


@fleet.command(context_settings={"ignore_unknown_options": True})
@spec_argument
@click.option("--inventory", "inventory_file", type=UserPath("in"),
              help="Use this inventory (group nestnet_hosts) instead of one built from SPEC.")
@click.option("--dry-run", is_flag=True, help="Check mode: each host runs nestnet host diff; nothing changes.")
@click.option("--adopt", is_flag=True, help="Each host takes over foreign routes with the same next hop (host apply --adopt).")
@json_option
@click.argument("ansible_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- ANSIBLE ARGS...]")
def apply(
    spec: str, inventory_file: str | None, dry_run: bool, adopt: bool, as_json: bool, ansible_args: tuple[str, ...]
) -> None:
    """Make every host match SPEC (exit 1 if any host failed or was unreachable)."""
    from .. import fleet as fl

    # The lock the hosts get must hold every allocation; a dry run writes nothing, and the hosts
    # then allocate from the same spec and lock exactly as this would have.
    plan = _plan(spec, write=not dry_run)
    results = fl.apply(plan, spec, inventory=inventory_file, dry_run=dry_run, extra_args=ansible_args, adopt=adopt)
    if as_json:
        emit_json({"dry_run": dry_run, "hosts": [r.to_dict() for r in results]})
    else:
        t = table(None, ["host", "status", "changes", "error"])
        for r in results:
            t.add_row(r.host, r.status, str(len(r.changes)), r.error)
        console().print(t)
        for r in results:  # the same lines `nestnet host apply` prints, per host
            for c in r.changes:
                mark = "-" if c["op"] == "del" else "~" if c["op"] in ("set", "replace") else "+"
                detail = f" ({c['detail']})" if c.get("detail") else ""
                click.echo(f"{r.host}: {mark} {c['kind']} {c['op']} {c['key']}{detail}")
        total = sum(len(r.changes) for r in results)
        note(f"{total} changes {'pending (dry run)' if dry_run else 'made'} on {len(results)} hosts")
    bad = [r for r in results if not r.good]
    if bad:
        raise click.exceptions.Exit(1)


@fleet.command(context_settings={"ignore_unknown_options": True})
@spec_argument
@click.option("--inventory", "inventory_file", type=UserPath("in"),
              help="Use this inventory (group nestnet_hosts) instead of one built from SPEC.")
@probe_option
@json_option
@click.argument("ansible_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- ANSIBLE ARGS...]")
def doctor(spec: str, inventory_file: str | None, probe, as_json: bool, ansible_args: tuple[str, ...]) -> None:
    """Run `nestnet doctor` on every host and merge the findings: per host, and the pairs that
    fail anywhere. --probe goes to every host's doctor. Changes nothing. Exit 0 when every host
    is healthy, 1 otherwise."""
    from .. import fleet as fl
    from ..fleet.summary import causes, doctors, failing_anywhere
    from ..model.groups import PairBlock, describe, plural

    plan = _plan(spec)
    results = doctors(fl.doctor(plan, spec, inventory=inventory_file, extra_args=ansible_args, probe=probe), plan.hosts)
    failing = failing_anywhere(results)
    by_cause = causes(failing)
    if as_json:
        emit_json({"probe": str(probe), "hosts": [r.to_dict() for r in results], "failing_pairs": failing,
                   "causes": by_cause, "healthy": all(r.status == "healthy" for r in results)})
    else:
        t = table(None, ["host", "status", "findings", "failing pairs", "drift", "error"])
        for r in results:
            d = r.to_dict()
            t.add_row(r.host, r.status, str(len(d["findings"])), str(len(d["pairs"])), str(len(d["drift"])), r.error)
        console().print(t)
        for r in results:
            for f in r.to_dict()["findings"]:
                click.echo(f"{r.host}: {f}")
            for line in r.to_dict()["leftovers"]:
                click.echo(f"{r.host}: leftover of the manual set-up: {line}")
        for c in by_cause:  # one line per cause, with the pairs it breaks
            blocks = tuple(PairBlock(tuple(b["src"]), tuple(b["dst"]), b["hosts"]) for b in c["sets"])
            click.echo(f"FAIL {plural(c['pairs'], 'pair')}: {describe(blocks)} (seen by {', '.join(c['seen_by'])}; "
                       f"dies at {c['dies_at']}): {c['example']}")
        what = "" if probe.port is None else f" (probe {probe})"  # a ping: the summary it always had
        note(f"{sum(r.status == 'healthy' for r in results)}/{len(results)} hosts healthy, {len(failing)} pairs failing{what}")
    if any(r.status != "healthy" for r in results):
        raise click.exceptions.Exit(1)
