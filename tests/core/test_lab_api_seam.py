"""The lab reaches a cloud's emulated API through the seam (``clouds.LabApi``, issue 25): each cloud
package with a ``labapi`` module gives ``lab up``/``lab migrate`` its ``--<cloud> plan|api``
option, and only the plan's own cloud can come from its API. No root needed: all of it is decided
before the lab is touched."""

from __future__ import annotations

import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from nestnet import clouds
from nestnet.errors import UsageError
from nestnet.lab.core import source_of
from nestnet.plan import load_plan

from .specs import SEED


def _nestnet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nestnet", *args], capture_output=True, text=True)


def _aws_spec(tmp_path: Path) -> Path:
    path = tmp_path / "aws.yaml"
    path.write_text((files("nestnet") / "examples" / "aws.yaml").read_text(encoding="utf-8"))
    return path


def _seed(tmp_path: Path) -> Path:
    path = tmp_path / "seed.yaml"
    path.write_text(yaml.safe_dump(SEED, sort_keys=False))
    return path


def test_each_cloud_with_a_lab_api_gives_lab_up_and_migrate_its_option():
    apis = clouds.lab_apis()
    assert clouds.DEFAULT in apis
    for command in ("up", "migrate"):
        params = {p.name: p for p in _command(command).params}
        for name in apis:
            assert params[name].opts == [f"--{name}"] and list(params[name].type.choices) == ["plan", "api"]


def _command(name: str):
    from nestnet.cli.lab import lab

    return lab.commands[name]


def test_the_source_is_the_plans_own_clouds(tmp_path):
    plan = load_plan(_seed(tmp_path), write=False)
    assert source_of(plan, {plan.cloud.cloud_name: "api"}) == "api"
    assert source_of(plan, {plan.cloud.cloud_name: "plan"}) == "plan"
    assert source_of(plan, {}) == "plan"
    with pytest.raises(TypeError, match="unexpected keyword argument 'guest'"):
        source_of(plan, {"guest": "api"})


def test_another_clouds_api_for_a_plan_is_one_line_exit_2(tmp_path):
    aws = load_plan(_aws_spec(tmp_path), write=False)
    other = next(n for n in clouds.lab_apis() if n != aws.cloud.cloud_name)
    assert source_of(aws, {other: "plan"}) == "plan"  # the option's default says nothing
    with pytest.raises(UsageError, match=f"--{other} api: .* is for {clouds.title(aws.cloud.cloud_name)}"):
        source_of(aws, {other: "api"})
    r = _nestnet("lab", "up", str(_aws_spec(tmp_path)), f"--{other}", "api")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: --{other} api: {tmp_path / 'aws.yaml'} is for {clouds.title(aws.cloud.cloud_name)}"]
