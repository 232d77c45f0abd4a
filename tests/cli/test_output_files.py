"""Output files and standard output on a full disk: every file nestnet writes is replaced
atomically, so ENOSPC leaves the previous file whole and exits 2 with one line naming the option
and the path;
a standard output that cannot be written ends with one line and exit 74.

The full disk is real: a 256 KiB tmpfs mounted in a private mount namespace (``unshare -m``) that
dies with the command; nothing is mounted in this machine's own namespace."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SEED = Path(__file__).parents[2] / "src" / "nestnet" / "examples" / "seed.yaml"
NESTNET = [sys.executable, "-m", "nestnet"]

# (name, the command's arguments with OUT for the output path, the file it writes under OUT)
WRITERS = [
    ("terraform", ["azure", "export", "SPEC", "--format", "terraform", "--out", "OUT"], "nestnet.tf"),
    ("az", ["azure", "export", "SPEC", "--format", "az", "--out", "OUT"], "nestnet-az.sh"),
    ("diagram", ["diagram", "SPEC", "--format", "mermaid", "--out", "OUT/fabric.mmd"], "fabric.mmd"),
    ("report", ["report", "SPEC", "--out", "OUT/report.html"], "report.html"),
    ("playbook", ["fleet", "playbook", "SPEC", "--out", "OUT/playbook.yaml"], "playbook.yaml"),
    ("inventory", ["fleet", "inventory", "SPEC", "--out", "OUT/inventory.yaml"], "inventory.yaml"),
]


def _in_full_tmpfs(mnt: Path, setup: str, commands: list[list[str]], results: Path) -> None:
    """Mount a small tmpfs at ``mnt`` in a private mount namespace, run ``setup``, fill the tmpfs
    to the last block, then run each command (its rc and stderr go to ``results``)."""
    lines = [
        "set -u",
        f"mount -t tmpfs -o size=256k nestnet-test {shlex.quote(str(mnt))}",
        setup,
        f"dd if=/dev/zero of={shlex.quote(str(mnt / 'fill'))} bs=4k 2>/dev/null || true",
    ]
    for i, argv in enumerate(commands):
        err = shlex.quote(str(results / f"{i}.err"))
        lines.append(f"{shlex.join(argv)} >/dev/null 2>{err}; echo $? > {shlex.quote(str(results / f'{i}.rc'))}")
    lines.append(f"for f in {shlex.quote(str(mnt))}/*; do [ \"$f\" = {shlex.quote(str(mnt / 'fill'))} ] || "
                 f"cp -p \"$f\" {shlex.quote(str(results))}/after.\"$(basename \"$f\")\"; done")
    lines.append(f"ls -A {shlex.quote(str(mnt))} > {shlex.quote(str(results / 'listing'))}")
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", "\n".join(lines)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


@pytest.mark.root
def test_enospc_on_an_output_file_keeps_the_previous_file_and_names_it(tmp_path):
    spec = tmp_path / "seed.yaml"
    shutil.copy(SEED, spec)
    shutil.copy(SEED.with_suffix(".lock"), spec.with_suffix(".lock"))
    mnt, results = tmp_path / "mnt", tmp_path / "results"
    mnt.mkdir()
    results.mkdir()
    previous = "the previous good file\n" * 10
    setup = "\n".join(f"printf %s {shlex.quote(previous)} > {shlex.quote(str(mnt / f))}; chmod 640 {shlex.quote(str(mnt / f))}"
                      for _, _, f in WRITERS)
    commands = [[*NESTNET, *[str(spec) if a == "SPEC" else a.replace("OUT", str(mnt)) for a in args]]
                for _, args, _ in WRITERS]
    _in_full_tmpfs(mnt, setup, commands, results)
    for i, (name, _, f) in enumerate(WRITERS):
        rc = int((results / f"{i}.rc").read_text())
        err = (results / f"{i}.err").read_text()
        assert rc == 2, (name, rc, err)
        where = f"--out {mnt}: {mnt / f}" if name in ("terraform", "az") else f"--out {mnt / f}"
        assert err.splitlines()[-1] == f"error: {where}: No space left on device", (name, err)
        assert "Traceback" not in err and len([ln for ln in err.splitlines() if ln.startswith("error")]) == 1
        after = results / f"after.{f}"
        assert after.read_text() == previous, f"{name}: the previous file was cut"
        assert oct(after.stat().st_mode & 0o777) == "0o640"
    # no temp file left behind
    assert sorted((results / "listing").read_text().split()) == sorted(["fill", *(f for _, _, f in WRITERS)])


def test_output_files_are_written_whole_with_their_mode(tmp_path):
    """The atomic path on a disk with room: the content, the az script executable, an existing
    file's mode kept, and ``--out /dev/stdout`` (not a regular file) written through."""
    spec = str(SEED)
    r = subprocess.run([*NESTNET, "azure", "export", spec, "--format", "az", "--out", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    script = tmp_path / "nestnet-az.sh"
    assert script.stat().st_mode & 0o111 and script.read_text().startswith("#!")
    pb = tmp_path / "pb.yaml"
    pb.write_text("old")
    pb.chmod(0o600)
    assert subprocess.run([*NESTNET, "fleet", "playbook", spec, "--out", str(pb)]).returncode == 0
    assert "nestnet host apply" in pb.read_text() and oct(pb.stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nestnet-az.sh", "pb.yaml"]
    r = subprocess.run([*NESTNET, "fleet", "inventory", spec, "--out", "/dev/stdout"], capture_output=True, text=True)
    assert r.returncode == 0 and "nestnet_hosts" in r.stdout, r.stderr


@pytest.mark.parametrize("args", [["plan", "SPEC", "--json"], ["plan", "SPEC"], ["validate", "SPEC", "--json"],
                                  ["vm", "list", "SPEC", "--json"], ["check", "SPEC", "--json"],
                                  ["fleet", "inventory", "SPEC"]])
def test_a_full_stdout_is_one_line_and_exit_74(args):
    with open("/dev/full", "w") as full:
        r = subprocess.run([*NESTNET, "-q", *(str(SEED) if a == "SPEC" else a for a in args)], stdout=full, stderr=subprocess.PIPE,
                           text=True)
    assert r.returncode == 74, r.stderr
    assert r.stderr.splitlines() == ["error: cannot write standard output: No space left on device"]


def test_a_closed_stdout_is_one_line_and_exit_74(tmp_path):
    spec = tmp_path / "seed.yaml"
    shutil.copy(SEED, spec)
    r = subprocess.run(["sh", "-c", f"{shlex.join([*NESTNET, 'plan', '--json', str(spec)])} >&-"],
                       capture_output=True, text=True)
    assert r.returncode == 74, r.stderr
    assert r.stderr.splitlines()[-1] == "error: cannot write standard output: it is closed"
    # the descriptor was not handed to a file nestnet wrote: the lock holds a lock, not the plan
    lock = spec.with_suffix(".lock").read_text()
    assert lock.startswith("# nestnet lock") and "{" not in lock
