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

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


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


def warn_lines(warnings) -> None:
    color = sys.stderr.isatty()
    for w in warnings:
        click.secho(f"warning: {w}", err=True, fg="yellow" if color else None)


def note(text: str) -> None:
    click.echo(text, err=True)
