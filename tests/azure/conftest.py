"""Fixtures: an emulated ARM endpoint over real HTTPS (in a thread), spec files, the plain SDK."""

from __future__ import annotations

from typing import Any

import pytest

from azure_helpers import Endpoint, write_spec
from nestnet.clouds.azure.emulator import Arm, Emulator
from nestnet.plan import Plan, load_plan


@pytest.fixture
def emulator(tmp_path):
    """Factory: start an emulated ARM endpoint seeded from a plan; stopped at the end."""
    started: list[Emulator] = []

    def start(plan: Plan | None = None, **kwargs: Any) -> Endpoint:
        d = tmp_path / f"arm{len(started)}"
        d.mkdir()
        arm = Arm(d, **kwargs)
        if plan is not None:
            arm.seed(plan)
        em = Emulator(arm).start()
        started.append(em)
        return Endpoint(arm, em, em.url, str(em.ca_pem))

    try:
        yield start
    finally:
        for em in started:
            em.stop()


@pytest.fixture
def plan_of(tmp_path):
    """Factory: write a spec dict to a file in tmp_path and load its Plan."""

    def load(data: dict, name: str = "spec.yaml") -> Plan:
        return load_plan(write_spec(tmp_path / name, data))

    return load
