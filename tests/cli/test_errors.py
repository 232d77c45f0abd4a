"""The CLI's error lines: click's own (one line, no usage block) and an OS refusal on a path the
user gave, late in a command (exit 2, not a bug's 70)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from nestnet.cli.output import PATHS_KEY, UserPath, user_path_error

SEED = Path(__file__).parents[2] / "examples" / "seed.yaml"


def nestnet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nestnet", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


# Click words its messages differently across versions: the parts that must be there.
@pytest.mark.parametrize("args, parts", [
    (("azure", "export", str(SEED)), ["'--format'", "terraform, az", "(see 'nestnet azure export --help')"]),
    (("no-such-command",), ["'no-such-command'", "(see 'nestnet --help')"]),
    (("vm", "config", str(SEED), "web1", "--format", "xml"), ["--format: 'xml' is not one of 'ip', 'netplan'"]),
    (("advise", "--hosts", "0"), ["--hosts: 0 is not in the range"]),
    (("validate", str(SEED), "--bogus"), ["--bogus", "(see 'nestnet validate --help')"]),
])
def test_click_errors_are_one_line(args, parts):
    r = nestnet(*args)
    assert r.returncode == 2 and r.stdout == ""
    [line] = r.stderr.splitlines()
    assert line.startswith("error: ") and all(p in line for p in parts), line


def test_a_group_without_a_command_shows_its_help():
    r = nestnet("host")
    assert r.returncode == 2 and "Commands:" in r.stderr and "apply" in r.stderr


def test_an_os_refusal_late_on_an_output_path_is_bad_input(tmp_path):
    # /proc takes no new directory, though access() calls it writable: the parse-time check passes
    # and mkdir refuses later, inside the command.
    r = nestnet("azure", "export", str(SEED), "--format", "az", "--out", "/proc/nestnet-no-such-dir")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "error: --out /proc/nestnet-no-such-dir: No such file or directory"
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr


def _ctx_with(tmp_path: Path) -> click.Context:
    @click.command()
    @click.option("--out", type=UserPath("dir"))
    def cmd(out: str) -> None:
        pass

    ctx = cmd.make_context("cmd", ["--out", str(tmp_path / "d")])
    return ctx


def test_user_path_error_names_the_option_and_the_file_below_it(tmp_path):
    ctx = _ctx_with(tmp_path)
    assert ctx.meta[PATHS_KEY] == [(str(tmp_path / "d"), "--out", str(tmp_path / "d"))]
    below = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "d" / "nestnet.tf"))
    err = user_path_error(ctx, below)
    assert err is not None and err.exit_code == 2
    assert str(err) == f"--out {tmp_path / 'd'}: {tmp_path / 'd' / 'nestnet.tf'}: No space left on device"
    # not the user's path (a sibling with the same prefix, a file of nestnet's, none): a bug, not bad input
    for other in (str(tmp_path / "dd"), "/proc/sys/net/ipv4/ip_forward", None):
        assert user_path_error(ctx, OSError(errno.EACCES, "Permission denied", other)) is None


@pytest.mark.parametrize("what", ["directory", "not-pem", "missing"])
def test_a_ca_bundle_that_cannot_serve_is_bad_input_before_any_request(tmp_path, what):
    ca = {"directory": tmp_path, "not-pem": SEED, "missing": tmp_path / "ca.pem"}[what]
    env = {**os.environ, "NESTNET_ARM_CA_BUNDLE": str(ca), "NESTNET_ARM_TOKEN": "t",
           # nothing listens there: a request would be exit 3, not 2
           "NESTNET_ARM_ENDPOINT": "https://127.0.0.1:9", "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000"}
    r = subprocess.run([sys.executable, "-m", "nestnet", "-q", "azure", "diff", str(SEED)], capture_output=True,
                       text=True, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stderr
    [line] = r.stderr.splitlines()
    assert line.startswith(f"error: NESTNET_ARM_CA_BUNDLE '{ca}': ")


def test_a_reader_that_goes_away_is_the_shells_sigpipe_status_not_1(tmp_path):
    """`nestnet check SPEC --all --json | head -c 10`: 1 would say "pairs fail"; git and the shell say 141."""
    import yaml

    from core.specs import fabric

    spec = fabric(300, 4)  # check's JSON is linear in the fabric (issue 24): 1,500 nodes for > 64 KiB
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(spec))
    p = subprocess.Popen([sys.executable, "-m", "nestnet", "-q", "check", str(path), "--all", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert p.stdout is not None and p.stderr is not None
    assert p.stdout.read(10)
    p.stdout.close()  # about 110 KB are left to write: far more than a pipe's 64 KiB
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 141 and err == "", err


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv to drop DAC caps")
def test_an_unwritable_output_or_unreadable_input_is_bad_input(tmp_path):
    """Root without CAP_DAC_OVERRIDE obeys file modes, as a user does: the directory is writable,
    the existing file is not, so only the write itself can tell - late, inside the command."""
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    out = tmp_path / "fabric.svg"
    out.write_text("keep me\n")
    out.chmod(0o444)
    for args in (["diagram", str(SEED), "--format", "dot", "--out", str(out)],
                 ["report", str(SEED), "--out", str(out)],
                 ["fleet", "inventory", str(SEED), "--out", str(out)]):
        r = subprocess.run([*drop, sys.executable, "-m", "nestnet", "-q", *args], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.splitlines() == [f"error: --out {out}: Permission denied"], (args, r.stderr)
        assert out.read_text() == "keep me\n"
    unreadable = tmp_path / "nsgs.json"
    unreadable.write_text("[]")
    unreadable.chmod(0)
    r = subprocess.run([*drop, sys.executable, "-m", "nestnet", "-q", "check", str(SEED), "--nsgs", str(unreadable)],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and r.stderr.splitlines() == [f"error: --nsgs {unreadable}: cannot read: Permission denied"], r.stderr


def test_validate_json_answers_in_json_for_a_spec_that_is_not_there_or_not_a_file(tmp_path):
    for spec, message in ((tmp_path / "nope.yaml", "no such file"), (tmp_path, "is a directory, not a file")):
        r = nestnet("validate", str(spec), "--json")
        assert r.returncode == 2 and r.stderr == f"error: {spec}: {message}\n", r.stderr
        assert json.loads(r.stdout) == {"ok": False, "exit_code": 2, "warnings": [], "errors": [
            {"file": str(spec), "line": None, "path": "", "message": message, "severity": "error"}]}
