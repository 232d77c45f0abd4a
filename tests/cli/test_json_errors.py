"""Under ``--json`` a failing command answers in JSON on stdout too (issue 20 item 8), as
``validate --json`` always did: ``{"ok": false, "exit_code": N, "errors": [...]}``, with the one
line on stderr as before. Every command with ``--json`` is found by walking the click group."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .test_paths import _argv, leaves  # the same walk and argument values

JSON_COMMANDS = [(path, cmd) for path, cmd in leaves() if any(p.name == "as_json" for p in cmd.params)]


def test_the_walk_finds_the_json_commands():
    names = {" ".join(p) for p, _ in JSON_COMMANDS}
    assert {"validate", "plan", "vm add", "check", "azure diff", "fleet apply", "doctor", "lock merge"} <= names


@pytest.mark.root
@pytest.mark.parametrize("path", [p for p, _ in JSON_COMMANDS], ids=[" ".join(p) for p, _ in JSON_COMMANDS])
def test_a_failing_command_prints_its_error_as_json(tmp_path, path):
    cmd = dict(JSON_COMMANDS)[path]
    work = tmp_path / "work"
    work.mkdir()
    broken = work / "seed.yaml"
    broken.write_text("version: 1\nname: x\nhosts: 3\n")
    if any(p.name == "spec" for p in cmd.params):  # a broken spec: every such command loads it first
        argv = [*path, *_argv(cmd, "spec", str(broken), work), "--json"]
        want = str(broken)
    else:  # an option no command has: refused while parsing, before anything runs
        argv = [*path, "--json", "--no-such-option"]
        want = "--no-such-option"
    env = {k: v for k, v in os.environ.items() if k != "NESTNET_DEBUG"}
    r = subprocess.run(["unshare", "--net", "--", sys.executable, "-m", "nestnet", *argv],
                       capture_output=True, text=True, env={**env, "TMPDIR": str(tmp_path)},
                       stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 2, (argv, r.stderr)
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 2 and doc["errors"], doc
    assert any(want in (e["file"] + e["message"]) for e in doc["errors"]), doc
    [line, *_] = r.stderr.splitlines()
    assert line.startswith("error: ") and "Traceback" not in r.stderr


def test_validate_json_keeps_its_shape(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("version: 1\nname: x\nhosts: 3\n")
    r = subprocess.run([sys.executable, "-m", "nestnet", "validate", str(spec), "--json"], capture_output=True, text=True)
    doc = json.loads(r.stdout)
    assert r.returncode == 2 and set(doc) >= {"ok", "errors", "warnings"} and doc["errors"][0]["file"] == str(spec)


def test_no_json_no_json_and_after_output_no_second_document(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("version: 1\nname: x\nhosts: 3\n")
    r = subprocess.run([sys.executable, "-m", "nestnet", "plan", str(spec)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == ""
    # `lab exec SPEC NODE -- cmd --json`: the --json after -- is the command's, not nestnet's
    r = subprocess.run([sys.executable, "-m", "nestnet", "lab", "exec", str(spec), "n", "--", "x", "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == ""
