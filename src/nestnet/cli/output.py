"""Printing for the CLI: rich tables for people, JSON for programs, one-line warnings."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from typing import Any

import click

PATHS_KEY = "nestnet.paths"  # ctx.meta: (absolute path, option, value) of every UserPath given


class UserPath(click.Path):
    """A path given on the command line, checked when the arguments are parsed - before anything
    runs or changes - so a mistake is one line naming the option, the path and why, exit 2.

    ``kind``: ``in`` an existing file to read; ``out`` a file to write in an existing directory;
    ``new`` a file to write whose missing directories are created; ``dir`` a directory, created if
    missing. For ``out``/``new``/``dir`` nothing may be in the way (a file where a directory must
    be) and, unless ``writable=False``, the directory written in must be writable. With
    ``remember`` (the default) an ``OSError`` on the path or below it later in the command is
    still about the user's path, not a bug: ``user_path_error`` makes it exit 2 too.
    """

    def __init__(self, kind: str, remember: bool = True, writable: bool = True):
        assert kind in ("in", "out", "new", "dir")
        self.kind, self.remember, self.writable = kind, remember, writable
        super().__init__(dir_okay=kind == "dir", file_okay=kind != "dir", path_type=str)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from ..errors import UsageError

        value = os.fsdecode(value)
        hint = _hint(param) if param is not None else "path"
        if param is not None and ctx is not None and isinstance(param.envvar, str) and \
                ctx.get_parameter_source(param.name or "") == click.core.ParameterSource.ENVIRONMENT:
            hint = f"{param.envvar} (for {hint})"  # the environment is input too: name the variable
        full = os.path.abspath(value)

        def bad(why: str) -> UsageError:
            return UsageError(f"{hint} {value}: {why}")

        if self.kind == "in":
            try:
                st = os.stat(full)
            except FileNotFoundError:
                raise bad("no such file") from None
            except OSError as exc:  # a directory on the way that is a file or may not be searched
                raise bad(f"cannot read: {exc.strerror}") from None
            if stat.S_ISDIR(st.st_mode):
                raise bad("is a directory, not a file")
            if not os.access(full, os.R_OK):
                raise bad("cannot read: Permission denied")
        elif self.kind == "dir" and os.path.exists(full) and not os.path.isdir(full):
            raise bad("is a file, not a directory")
        elif self.kind != "dir" and os.path.isdir(full):
            raise bad("is a directory, not a file")
        into = None  # the directory written in
        if self.kind == "out":
            into = os.path.dirname(full)
            if not os.path.isdir(into):
                raise bad(f"no directory {os.path.dirname(value) or '.'} to write it in")
        elif self.kind in ("new", "dir"):
            into = full if self.kind == "dir" else os.path.dirname(full)
            while not os.path.exists(into):  # the nearest existing ancestor must be a directory
                into = os.path.dirname(into)
            if not os.path.isdir(into):
                raise bad(f"{into} is a file, so no directory can be created below it")
        if into is not None and self.writable and not os.access(into, os.W_OK):
            raise bad(f"cannot write in {into} (read-only or permission denied)")
        if self.remember and ctx is not None:
            ctx.meta.setdefault(PATHS_KEY, []).append((full, hint, value))
        return value


def _hint(param: click.Parameter) -> str:
    return param.opts[0] if isinstance(param, click.Option) else param.human_readable_name


def user_path_error(ctx: click.Context, exc: OSError):  # -> errors.UsageError | None
    """``exc`` as bad input (exit 2) when it is about a path the user gave (or one below it, such
    as DIR/nestnet.tf), naming the option, the path and the OS's reason; else None (a bug)."""
    from ..errors import UsageError

    for name in (exc.filename, exc.filename2):
        if name is None or isinstance(name, int):
            continue
        full = os.path.abspath(os.fsdecode(name))
        for given, hint, value in ctx.meta.get(PATHS_KEY, ()):
            if full == given or full.startswith(given.rstrip("/") + "/"):
                below = "" if full == given else f" {os.fsdecode(name)}:"
                return UsageError(f"{hint} {value}:{below} {exc.strerror or exc}")
    return None


# The spec is checked by the store when the command loads it (every command does so first): it names
# the file on any error, and `validate --json` can still answer in JSON.
spec_argument = click.argument("spec", type=click.Path(path_type=str))
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
frozen_option = click.option(
    "--frozen", is_flag=True, help="Refuse to allocate anything the lock file lacks (for CI)."
)


def console(stderr: bool = False):  # -> rich.console.Console
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        c = Console(stderr=stderr, highlight=False, soft_wrap=False)
    else:  # piped or redirected: no wrapping at 80 columns in the middle of a command or a fix
        c = Console(stderr=stderr, highlight=False, soft_wrap=True, width=100_000)
    c.on_broken_pipe = broken_pipe  # rich's own exits 1, which means "not healthy" here
    return c


class _GuardedStdout(io.RawIOBase):
    """File descriptor 1 for ``sys.stdout``: a write the OS refuses (ENOSPC, EIO, EBADF: ``>
    /dev/full``, a closed stdout) is a ``StdoutError`` (one line, exit 74) instead of an OSError
    that would look like a bug (70); a reader gone away stays a BrokenPipeError (141)."""

    def __init__(self, closed_at_start: bool):
        super().__init__()
        self.closed_at_start = closed_at_start
        self.written = 0  # bytes that reached fd 1 (an error as JSON only on a clean stdout)

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return 1

    def isatty(self) -> bool:
        return not self.closed_at_start and os.isatty(1)

    def write(self, b) -> int:  # type: ignore[override]
        from ..errors import StdoutError

        if self.closed_at_start:
            why = "it is closed"
        else:
            try:
                n = os.write(1, b)
                self.written += n
                return n
            except BrokenPipeError:
                raise
            except OSError as exc:
                why = exc.strerror or str(exc)
        _drop_stdout()
        raise StdoutError(f"cannot write standard output: {why}")


def _drop_stdout() -> None:
    """Whatever is still buffered for stdout goes nowhere (it could not be written)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8")


def guard_stdout() -> None:
    """Put ``_GuardedStdout`` under ``sys.stdout`` (the process's own stdout only, not a test's
    capture). A closed fd 1 is first taken by /dev/null, so no file nestnet opens later becomes
    "stdout" by getting descriptor 1."""
    if sys.stdout is not None and sys.stdout is not sys.__stdout__:
        return
    try:
        os.fstat(1)
        closed = False
    except OSError:
        closed = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        if devnull != 1:
            os.dup2(devnull, 1)
            os.close(devnull)
    old = sys.stdout
    enc = getattr(old, "encoding", None) or "utf-8"
    errors = getattr(old, "errors", None) or "strict"
    line = bool(getattr(old, "line_buffering", False))
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(
        io.BufferedWriter(_GuardedStdout(closed)), encoding=enc, errors=errors, line_buffering=line)


def stdout_is_clean() -> bool:
    """Nothing has been written to stdout yet (so a JSON error document would stand alone)."""
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001 - an unwritable stdout is not clean
        return False
    raw = getattr(getattr(sys.stdout, "buffer", None), "raw", None)
    return isinstance(raw, _GuardedStdout) and raw.written == 0 and not raw.closed_at_start


def error_json(exc: BaseException, code: int) -> dict[str, Any]:
    """A failed command's error for ``--json``: the shape ``validate --json`` prints."""
    from ..errors import SpecError

    if isinstance(exc, SpecError):
        errors = [p.to_dict() for p in exc.problems]
    else:
        errors = [{"file": "", "line": None, "path": "", "message": str(exc), "severity": "error"}]
    return {"ok": False, "exit_code": code, "errors": errors, "warnings": []}


BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader went away


def broken_pipe() -> None:
    """The reader of stdout went away (``nestnet check | head``): stop quietly with the shell's
    SIGPIPE status (as git does), not click's and rich's 1, which would say "not healthy"."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # nothing more to flush at exit
    raise SystemExit(BROKEN_PIPE)


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


def _parse_probe(ctx: click.Context, param: click.Parameter, value: str):  # -> nestnet.model.probe.Probe
    from ..errors import UsageError
    from ..model.probe import Probe

    try:
        return Probe.parse(value)
    except ValueError as exc:
        raise UsageError(f"--probe {value}: {exc}") from None


# What check, doctor and the lab send to every pair (one spelling: icmp, tcp/PORT, udp/PORT).
probe_option = click.option(
    "--probe", default="icmp", show_default=True, metavar="icmp|tcp/PORT|udp/PORT", callback=_parse_probe,
    help="What each pair sends: a ping, or a TCP/UDP connection to PORT (NSG rules match protocol and ports).")
