"""Fixtures for the viz tests: the packaged seed in each mode, with a unique name where a lab runs."""

from __future__ import annotations

import itertools
import os
import shutil

import pytest

from nestnet.lab.demo import seed_plan

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot (scripts/system-deps)")


@pytest.fixture(scope="session")
def seed():
    return seed_plan()


_seq = itertools.count()


def unique_name() -> str:
    # pid keeps parallel workers (xdist) and concurrent runs apart; <= 24 chars
    return f"v{os.getpid()}-{next(_seq)}"
