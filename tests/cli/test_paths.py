"""Every leaf command, every path it takes, given wrong: exit 2, one line naming the path, no
traceback, nothing written.

The commands are found by walking the click group, so a new command or path option is covered
without being listed here. Each runs as a user runs it (a subprocess), inside a network namespace
of its own (``unshare --net``): a command that got past its arguments could only touch that.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from nestnet.cli import cli

EXAMPLES = Path(__file__).parents[2] / "examples"

# Values for the required parameters that are not paths, by parameter name: valid for the seed,
# so that only the path under test can be wrong.
VALUES: dict[str, list[str]] = {
    "name": ["web9"], "host": ["vme-kvm-vm1"], "to": ["vme-kvm-vm2"], "ip": ["10.0.1.30"],
    "guest": ["web1"], "operation": ["migrate"], "sub_operation": ["begin"], "node": ["web1"],
    "argv": ["true"], "fault": ["ip-forward-off:vme-kvm-vm1"], "vm": ["web1"], "rg": ["rg"], "vnet": ["vnet"], "region": ["us-east-1"], "vpc": ["vme-vpc"],
}
# A parameter with one of these words in its name holds a path: it must be typed as one (checked when parsed).
PATHLIKE = {"spec", "file", "dir", "out", "root", "inventory", "seed", "path", "nsgs"}


def leaves() -> list[tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(cli)
    found: list[tuple[tuple[str, ...], click.Command]] = []

    def walk(cmd: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None, name
                walk(sub, (*path, name))
        else:
            found.append((path, cmd))

    walk(cli, ())
    return found


def path_params(cmd: click.Command) -> list[click.Parameter]:
    return [p for p in cmd.params if isinstance(p.type, click.Path)]


def wants_dir(p: click.Parameter) -> bool:
    return not p.type.file_okay  # type: ignore[attr-defined]


CASES = [
    pytest.param(path, p.name, how, id=f"{' '.join(path)}-{p.name}-{how}")
    for path, cmd in leaves()
    for p in path_params(cmd)
    # either_kind: a file or a directory are both right (azure export --out): only below-a-file is wrong
    for how in (("below-a-file",) if getattr(p.type, "either_kind", False) else ("below-a-file", "wrong-kind"))
]


def test_the_walk_finds_every_command_and_path():
    names = {" ".join(path) for path, _ in leaves()}
    assert {"validate", "host diff", "azure export", "azure emulator", "fleet inventory", "report", "import"} <= names
    assert len(CASES) >= 2 * len(names) - 4  # every command but lab demo and advise takes a path
    for path, cmd in leaves():
        for p in cmd.params:
            if isinstance(p.type, click.types.StringParamType) and set((p.name or "").split("_")) & PATHLIKE:
                assert isinstance(p.type, click.Path), f"{' '.join(path)} {p.name}: a path, typed as {p.type!r}"


def _argv(cmd: click.Command, tested: str, bad: str, work: Path) -> list[str]:
    """The command line: ``bad`` for the tested parameter, valid values for the others."""
    opts: list[str] = []
    args: list[str] = []
    for p in cmd.params:
        if p.name == tested:
            value = [bad]
        elif isinstance(p.type, click.Path):
            if not p.required and p.default is None:
                continue
            if wants_dir(p):
                value = [str(work / f"{p.name}.d")]
            elif p.name == "spec" or getattr(p.type, "kind", "in") == "in":
                value = [str(work / "seed.yaml")]
            else:
                value = [str(work / f"{p.name}.out")]
        elif not p.required:
            continue
        elif isinstance(p.type, click.Choice):
            value = [str(p.type.choices[0])]
        else:
            assert p.name in VALUES, f"{cmd.name}: give the test a value for {p.name}"
            value = VALUES[p.name]
        if isinstance(p, click.Option):
            opts += [p.opts[0], *value]
        else:
            args += value
    return [*opts, *args]


def _tree(d: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(d.rglob("*"))}


@pytest.mark.root
@pytest.mark.parametrize("path, param, how", CASES)
def test_a_wrong_path_is_one_line_and_exit_2(tmp_path, path, param, how):
    cmd = dict(leaves())[path]
    p = next(x for x in cmd.params if x.name == param)
    work = tmp_path / "work"
    work.mkdir()
    for f in ("seed.yaml", "seed.lock"):
        shutil.copy(EXAMPLES / f, work / f)
    afile = tmp_path / "a-file"
    afile.write_text("not a directory\n")
    if how == "below-a-file":  # can never exist nor be created, even by root
        bad = str(afile / "x")
    else:  # a directory where a file belongs, or a file where a directory belongs
        bad = str(afile) if wants_dir(p) else str(work)
    argv = [*path, *_argv(cmd, param, bad, work)]
    env = {**os.environ, "NESTNET_ARM_ENDPOINT": "https://127.0.0.1:9", "NESTNET_ARM_TOKEN": "t",
           "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000", "NESTNET_ARM_TIMEOUT": "5",
           "NESTNET_ROOT": str(tmp_path / "root"), "TMPDIR": str(tmp_path)}
    env.pop("NESTNET_DEBUG", None)
    before = _tree(tmp_path)
    r = subprocess.run(["unshare", "--net", "--", sys.executable, "-m", "nestnet", *argv],
                       capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=60)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, (argv, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: ") and bad in lines[0], (argv, r.stderr)
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert _tree(tmp_path) == before, argv  # nothing written, no crash log
