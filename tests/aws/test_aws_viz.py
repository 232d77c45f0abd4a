"""`nestnet diagram` and `nestnet report` draw Azure's part of a plan only: on an AWS spec they refuse
in one line with exit 2 and write nothing (they died with exit 70, "'Plan' object has no attribute
'azure'", seen in the crash logs). Drawing AWS fabrics is issue 25's open part."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "aws.yaml"


@pytest.mark.parametrize("command", ["diagram", "report"])
def test_drawing_an_aws_fabric_is_refused_in_one_line(tmp_path: Path, command: str) -> None:
    out = tmp_path / f"x.{'html' if command == 'report' else 'svg'}"
    r = subprocess.run([sys.executable, "-m", "nestnet", command, str(EXAMPLE), "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "draws Azure fabrics only so far, not AWS ones" in r.stderr
    assert "Traceback" not in r.stderr and not out.exists()
