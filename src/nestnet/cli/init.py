"""``nestnet init``: a copy of the built-in example to try things on, so the shipped one stays pristine."""

from __future__ import annotations

import click

from .output import UserPath

FILES = ("seed.yaml", "seed.lock")


@click.command("init")
@click.argument("directory", type=UserPath("dir"), default="nestnet-seed", required=False)
def init(directory: str) -> None:
    """Copy the built-in example (seed.yaml and its lock) into DIRECTORY (default ./nestnet-seed,
    created if missing) to edit and try; refuses to overwrite a file there. `lab demo` always runs
    the example as shipped."""
    from importlib.resources import files
    from pathlib import Path

    from ..errors import UsageError
    from ..store import write_output

    d = Path(directory)
    taken = [f for f in FILES if (d / f).exists()]
    if taken:
        raise UsageError(f"DIRECTORY {directory}: {', '.join(taken)} already there; nothing copied")
    d.mkdir(parents=True, exist_ok=True)
    for f in FILES:
        write_output(d / f, (files("nestnet") / "examples" / f).read_text(encoding="utf-8"))
    click.echo(f"wrote {d / 'seed.yaml'} and {d / 'seed.lock'}; try: nestnet plan {d / 'seed.yaml'}")
