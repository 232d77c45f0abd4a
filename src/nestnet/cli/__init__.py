"""The ``nestnet`` command: a thin layer that parses arguments, calls the library and prints.

Subcommands live in their own modules and are imported only when used, so ``nestnet --help``
stays fast (no pydantic, cloud SDK or Ansible at start-up).
"""

from __future__ import annotations

import gc
import importlib
import os
import sys

import click

from .. import __version__, clouds

# The default cloud in words, as the help texts name it; each cloud package adds its own command group.
_CLOUD = clouds.title()

# name -> "module:attribute"; each area owns its module.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("nestnet.cli.init:init", "Copy the built-in example into a directory, to edit and try."),
    "validate": ("nestnet.cli.core:validate", "Check a spec: every problem, one line each."),
    "plan": ("nestnet.cli.core:plan", f"Show the desired state: blocks, {_CLOUD} routes, host routes, VMs."),
    "vm": ("nestnet.cli.vm:vm", "Add, remove, list nested VMs and print their guest config."),
    "host": ("nestnet.cli.host:host", "Program this KVM host from the plan (routes, sysctls, firewall)."),
    "lab": ("nestnet.cli.lab:lab", f"Emulate the fabric - {_CLOUD}, hosts, nested VMs - in network namespaces."),
    "check": ("nestnet.cli.check:check", "Prove offline which pairs can reach each other, and why not."),
    **clouds.commands(),  # `nestnet <cloud> ...`, one group per cloud package
    "fleet": ("nestnet.cli.fleet:fleet", "Apply the plan to every host through Ansible."),
    "doctor": ("nestnet.cli.doctor:doctor", "Diagnose this live host: what breaks which pairs, and the fix."),
    **clouds.top_commands(),  # the default cloud's own top-level commands (`nestnet import`, `rollout`)
    "diagram": ("nestnet.cli.viz:diagram", "Draw the fabric (SVG, Mermaid, dot) with check's verdicts on it."),
    "report": ("nestnet.cli.viz:report", "Write one self-contained HTML page: diagram, plan, matrix, failures."),
    "advise": ("nestnet.cli.advise:advise", "Recommend routed, nat or secondary-ip for your needs, with reasons."),
    "lock": ("nestnet.cli.lock:lock", "Merge both sides of a git conflict in the lock file (or act as git's merge driver)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [n for n, (target, _) in COMMANDS.items() if _module_exists(target)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = COMMANDS.get(name)
        if entry is None or not _module_exists(entry[0]):
            return None
        module, attr = entry[0].split(":")
        return _with_global_options(getattr(importlib.import_module(module), attr))

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            from .output import broken_pipe

            broken_pipe()
        except OSError as exc:
            # A path the user gave that the OS refused (a full disk, a read-only mount, a file
            # where a directory must be): bad input naming it, exit 2. Any other OSError escaping
            # to here is an edge that did not convert it: a bug (70).
            from .output import user_path_error

            err = user_path_error(ctx, exc)
            if err is None:
                raise
            raise err from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table above: listing commands must not import them.
        rows = [(n, COMMANDS[n][1]) for n in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _quiet(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta["nestnet.quiet"] = True  # ctx.meta is shared by every context of one run


QUIET_HELP = "Print no warnings about the spec (errors still print)."


def _with_global_options(cmd: click.Command) -> click.Command:
    """The global options (-q) also after the subcommand, as every warning's "-q hides this"
    suggests: `nestnet check SPEC -q` as `nestnet -q check SPEC` (issue 23). Added once to each
    command and group below the top; after `--` nothing is parsed, so `lab exec ... -- CMD -q`
    and `fleet apply ... -- -q` still pass -q on."""
    if getattr(cmd, "_nestnet_globals", False):
        return cmd
    if not any("-q" in p.opts or "--quiet" in p.opts for p in cmd.params):
        cmd.params.append(click.Option(["--quiet", "-q"], is_flag=True, expose_value=False, callback=_quiet,
                                       help=QUIET_HELP))
    cmd._nestnet_globals = True  # type: ignore[attr-defined]
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            _with_global_options(sub)
    return cmd


def _module_exists(target: str) -> bool:
    from importlib.util import find_spec

    try:
        return find_spec(target.split(":")[0]) is not None
    except ModuleNotFoundError:
        return False


EXIT_CODES = f"""\b
Exit codes:
  0   ok
  1   not healthy / changes pending / the world refused (netlink, {_CLOUD}, a host)
  2   bad input: spec, lock or option (one line each; nothing changed)
  3   could not reach or authorize {_CLOUD}, a host or a service; another {clouds.DEFAULT} apply's lease held
      past --lock-timeout
  70  a bug in nestnet (traceback saved to a file; please report it)
  74  standard output could not be written (a full disk, closed; one line on stderr)
  141 the reader of the output went away (nestnet ... | head)"""


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
@click.version_option(__version__, prog_name="nestnet")
@click.option("--quiet", "-q", is_flag=True, help=QUIET_HELP)
@click.pass_context
def cli(ctx: click.Context, quiet: bool) -> None:
    """nestnet: real, routable VNet addresses for nested VMs on KVM hosts in {cloud}.

    One spec file (nestnet.yaml) drives everything: the plan, the {cloud} route table,
    every host's routes and firewall, the guests' config, an offline reachability proof
    and an emulated lab. Every command takes the spec file as its first argument.
    """
    ctx.meta["nestnet.quiet"] = quiet


cli.help = (cli.help or "").replace("{cloud}", _CLOUD)


def main(argv: list[str] | None = None) -> None:
    from ..errors import StdoutError
    from .output import guard_stdout

    guard_stdout()
    # A command builds the whole plan (1,000 hosts: ~10^6 small objects that all live to the end):
    # the default thresholds run the cyclic collector hundreds of times over them for nothing
    # (a quarter of `plan`'s CPU). Collect far less often; cycles are still collected.
    gc.set_threshold(100_000, 50, 100)
    try:
        _main(argv)
    finally:
        try:
            sys.stdout.flush()  # here, not at exit, where a reader gone away is a warning and 120
        except BrokenPipeError:
            from .output import broken_pipe

            broken_pipe()
        except StdoutError as exc:
            _print_error(exc)
            raise SystemExit(exc.exit_code) from None


def _main(argv: list[str] | None) -> None:
    from ..errors import NestnetError

    from ..env import check_all

    args = sys.argv[1:] if argv is None else list(argv)
    try:
        check_all()  # the environment is input: a bad value is exit 2 before anything runs
        rv = cli.main(args=args, prog_name="nestnet", standalone_mode=False)
    except NestnetError as exc:
        _json_error(args, exc, exc.exit_code)
        _print_error(exc)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except getattr(click.exceptions, "NoArgsIsHelpError", ()) as exc:  # `nestnet host`: its help (click >= 8.2)
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        _json_error(args, NestnetError(_click_message(exc)), exc.exit_code)
        click.secho(f"error: {_click_message(exc)}", err=True, fg="red" if sys.stderr.isatty() else None)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception:
        if _debug():
            raise
        import tempfile
        import traceback

        fd, path = tempfile.mkstemp(prefix="nestnet-crash-", suffix=".log")
        with os.fdopen(fd, "w") as fh:
            traceback.print_exc(file=fh)
        exc_type, exc_val = sys.exc_info()[:2]
        if exc_val is not None:
            _json_error(args, RuntimeError(f"internal error: {exc_type.__name__}: {exc_val} (traceback in {path})"), 70)
        click.echo(
            f"nestnet: internal error: {exc_type.__name__}: {exc_val} (traceback in {path}; please report it)",
            err=True,
        )
        sys.exit(70)
    sys.exit(rv if isinstance(rv, int) else 0)


def _json_error(args: list[str], exc: BaseException, code: int) -> None:
    """Under ``--json`` a failing command still answers in JSON on stdout (as ``validate --json``
    always did), unless it printed something already; the one line on stderr stays."""
    from ..errors import StdoutError
    from .output import emit_json, error_json, stdout_is_clean

    options = args[: args.index("--")] if "--" in args else args
    if "--json" not in options or isinstance(exc, StdoutError) or not stdout_is_clean():
        return
    try:
        emit_json(error_json(exc, code))
        sys.stdout.flush()
    except Exception:  # noqa: BLE001 - stdout failing now: the stderr line is all there is
        pass


def _debug() -> bool:
    from ..env import get
    from ..errors import NestnetError

    try:
        return bool(get("NESTNET_DEBUG"))
    except NestnetError:
        return False


def _click_message(exc: click.ClickException) -> str:
    """Click's error as one line: the option or argument, the problem (with the value), and for a
    malformed command line where to look; never the usage block."""
    msg = " ".join(exc.format_message().split()).rstrip(".")  # "Choose from:\n\ta,\n\tb" -> one line
    if isinstance(exc, click.BadParameter) and not isinstance(exc, click.MissingParameter) and exc.param is not None:
        from .output import _hint

        return f"{_hint(exc.param)}: {' '.join(exc.message.split()).rstrip('.')}"
    ctx = getattr(exc, "ctx", None)
    return f"{msg} (see '{ctx.command_path} --help')" if ctx is not None else msg


def _print_error(exc: Exception) -> None:
    from ..errors import SpecError

    color = sys.stderr.isatty()
    lines = [str(p) for p in exc.problems] if isinstance(exc, SpecError) else [str(exc)]
    for line in lines:
        click.secho(f"error: {line}", err=True, fg="red" if color else None)
