"""Golden traces: tests/check/golden/<case>/case.txt names a pair (and faults) on the seed fabric;
expected.txt is the trace people see. NESTNET_UPDATE_GOLDEN=1 rewrites the expected files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nestnet.faults import parse_faults
from nestnet.model import Model, apply_faults, from_plan

from .fabrics import write_plan

GOLDEN = Path(__file__).parent / "golden"
SEED = Path(__file__).resolve().parents[2] / "examples" / "seed.yaml"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "case.txt").exists())


def render(result) -> str:
    lines = [f"{result.src} -> {result.dst}: {'ok' if result.ok else 'FAILED at ' + result.dies_at}"]
    lines += [f"  {h}" for h in result.hops]
    if result.reason:
        lines.append(f"reason: {result.reason}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("case", CASES)
def test_golden_trace(case: str, tmp_path: Path) -> None:
    import yaml

    args = dict(line.split(": ", 1) for line in (GOLDEN / case / "case.txt").read_text().splitlines() if line)
    spec = yaml.safe_load(SEED.read_text())
    if args.get("style") == "subnet":
        spec["nested"].update(guest_style="subnet", pool="10.0.1.128/25")
        for h, blk in zip(spec["hosts"], ("10.0.1.128/28", "10.0.1.160/28")):
            h["block"] = blk
        for v, ip in zip(spec["vms"], ("10.0.1.130", "10.0.1.162")):
            v["ip"] = ip
    plan = write_plan(tmp_path, spec)
    faults = parse_faults(args["fault"].split(), plan) if "fault" in args else ()
    src, dst = args["trace"].split()
    got = render(Model(apply_faults(from_plan(plan), faults)).ping(src, dst))
    expected = GOLDEN / case / "expected.txt"
    if os.environ.get("NESTNET_UPDATE_GOLDEN"):
        expected.write_text(got)
    assert got == expected.read_text()
