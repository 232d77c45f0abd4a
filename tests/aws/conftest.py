"""Fixtures: nestnet's EC2 emulator over real HTTPS (moto's server behind it, in this process) and
plain boto3 clients of it.

moto keeps one state per process: the emulator is started once per test process and reset
before each test, so every test starts from an empty EC2."""

from __future__ import annotations

import pytest

from aws_helpers import Ec2Endpoint
from nestnet.clouds.aws.emulator import Emulator


@pytest.fixture(scope="session")
def _ec2_emulator(tmp_path_factory):
    em = Emulator(tmp_path_factory.mktemp("ec2")).start()
    try:
        yield em
    finally:
        em.stop()


@pytest.fixture
def ec2(_ec2_emulator) -> Ec2Endpoint:
    """The emulator, empty, its injections off and its route limit EC2's default."""
    ep = Ec2Endpoint(_ec2_emulator, _ec2_emulator.url, str(_ec2_emulator.ca_pem))
    ep.reset()
    _ec2_emulator.front.max_routes = 50
    return ep


