"""What a newcomer meets on the command line (issue 23): global options after the subcommand,
hints, wording, `nestnet init`, exports to a file or stdout."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SEED = Path(__file__).parents[2] / "examples" / "seed.yaml"


def nestnet(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nestnet", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, cwd=cwd)


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    for f in ("seed.yaml", "seed.lock"):
        shutil.copy(SEED.parent / f, tmp_path / f)
    return tmp_path / "seed.yaml"


@pytest.mark.parametrize("args", [
    ("-q", "validate", "{seed}"), ("validate", "{seed}", "-q"), ("validate", "-q", "{seed}"),
    ("vm", "list", "{seed}", "--quiet"), ("vm", "-q", "list", "{seed}"),
])
def test_quiet_works_before_and_after_the_subcommand(seed: Path, args) -> None:
    loud = nestnet("validate", str(seed))
    assert "warning:" in loud.stderr  # the seed warns: otherwise -q would prove nothing
    r = nestnet(*(a.format(seed=seed) for a in args))
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_quiet_after_double_dash_is_the_commands_not_ours(seed: Path) -> None:
    # `fleet playbook` takes no extra args; `fleet apply -- -q` would hand -q to ansible-playbook:
    # click stops parsing at `--`, which the generic mechanism must not change.
    from nestnet.cli import cli

    apply = cli.get_command(None, "fleet").commands["apply"]  # type: ignore[union-attr]
    ctx = apply.make_context("apply", [str(seed), "--", "-q"])
    assert ctx.params["ansible_args"] == ("-q",) and not ctx.meta.get("nestnet.quiet")
