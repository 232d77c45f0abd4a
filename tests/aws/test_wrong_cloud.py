"""A cloud's commands take only that cloud's spec: `nestnet azure ...` and `nestnet rollout` on an AWS
spec (and `nestnet aws ...` on an Azure one) are one line, exit 2, with nothing written - no lock,
no export, no emulator state. `azure diff|apply|unlock` and `rollout` on examples/aws.yaml died
with exit 70 ("'Plan' object has no attribute 'azure'", seen in the crash logs)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("example,args,words", [
    ("aws.yaml", ["azure", "diff"], "not an Azure spec (it has no azure: section)"),
    ("aws.yaml", ["azure", "apply"], "not an Azure spec"),
    ("aws.yaml", ["azure", "unlock"], "not an Azure spec"),
    ("aws.yaml", ["azure", "export", "--format", "az", "--out", "x.sh"], "not an Azure spec"),
    ("aws.yaml", ["rollout"], "not an Azure spec"),
    ("aws.yaml", ["azure", "emulator", "--state-dir", "st", "--program-lab", "--seed"], "not an Azure spec"),
    ("seed.yaml", ["aws", "diff"], "not an AWS spec (it has no aws: section)"),
    ("seed.yaml", ["aws", "apply"], "not an AWS spec"),
])
def test_another_clouds_spec_is_one_line_and_nothing_is_written(tmp_path: Path, example: str, args: list[str],
                                                                 words: str) -> None:
    spec = tmp_path / example
    shutil.copy(ROOT / "examples" / example, spec)
    r = subprocess.run([sys.executable, "-m", "nestnet", *args, spec.name], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"error: {spec.name}: {words}") and r.stderr.count("\n") == 1, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [example]  # no lock, no export, no state dir
