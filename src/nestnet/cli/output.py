"""Printing for the CLI: rich tables for people, JSON for programs, one-line warnings."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

spec_argument = click.argument("spec", type=click.Path(dir_okay=False, path_type=str))
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
frozen_option = click.option(
    "--frozen", is_flag=True, help="Refuse to allocate anything the lock file lacks (for CI)."
)


def console(stderr: bool = False):  # -> rich.console.Console
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr, highlight=False, soft_wrap=False)
    # Piped or redirected: no wrapping at 80 columns in the middle of a command or a fix.
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=100_000)


def table(title: str | None, columns: list[str]):  # -> rich.table.Table
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for c in columns:
        t.add_column(c)
    return t


def emit_json(obj: Any) -> None:
    # Indented for a person at a terminal; compact (C encoder, several times faster) for programs.
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(obj, indent=indent, default=str))
    sys.stdout.write("\n")


def emit_json_chunks(chunks, obj=None) -> None:
    """Print compact JSON given as text pieces (rendered by its owner, e.g. a 60 MB plan);
    at a terminal, ``obj()`` indented for a person instead."""
    if sys.stdout.isatty() and obj is not None:
        emit_json(obj())
        return
    write = sys.stdout.write
    for chunk in chunks():
        write(chunk)
    write("\n")


# Commands whose job is to show the spec's warnings print each one; the others print a count.
WARNING_COMMANDS = ("validate", "plan")


def warn_lines(warnings) -> None:
    """The one place the CLI prints warnings about the spec: once per command, none with
    ``--quiet``, every line for ``validate``/``plan`` and a one-line count for the others."""
    warnings = list(warnings)
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    meta = root.meta if root is not None else {}
    if not warnings or meta.get("nestnet.quiet") or meta.get("nestnet.warned"):
        return
    meta["nestnet.warned"] = True
    color = sys.stderr.isatty()
    command = root.invoked_subcommand if root is not None else None
    if command is None or command in WARNING_COMMANDS:
        for w in warnings:
            click.secho(f"warning: {w}", err=True, fg="yellow" if color else None)
        return
    spec = getattr(warnings[0], "file", "") or "SPEC"
    n = len(warnings)
    click.secho(
        f"warning: {n} warning{'s' if n != 1 else ''} about {spec} (`nestnet validate {spec}` lists them; -q hides this)",
        err=True, fg="yellow" if color else None,
    )


def note(text: str) -> None:
    click.echo(text, err=True)
