"""Killing apply at any point and running it again converges."""

from __future__ import annotations

import os
import signal
import time

import pytest

from nestnet import host, netns

pytestmark = pytest.mark.root


def _apply_then_exit(ns_name, plan, root):
    os.setpgrp()  # so the test can kill this process and run_in's child together
    try:
        netns.run_in(ns_name, host.apply, plan, "h0", root)
    finally:
        os._exit(0)


def _kill_after(ns_name, plan, root, seconds: float) -> None:
    pid = os.fork()
    if pid == 0:
        _apply_then_exit(ns_name, plan, root)
    try:
        os.setpgid(pid, pid)  # also here: no race with the child's own setpgrp
    except PermissionError:
        pass  # the child already made its group
    time.sleep(seconds)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it finished first
    os.waitpid(pid, 0)


def test_kill_apply_anywhere_then_rerun_converges(ns, make_plan, root):
    n = ns(ip="10.0.16.10/20")
    plan = make_plan(hosts=300)
    t0 = time.perf_counter()
    full = len(n.run(host.apply, plan, "h0", root))
    duration = time.perf_counter() - t0
    n.run(host.remove, plan, "h0", root)
    partial = 0
    for k in range(1, 12):
        _kill_after(n.name, plan, root, duration * k / 10)
        redo = n.run(host.apply, plan, "h0", root)
        partial += 0 < len(redo) < full
        assert n.run(host.diff, plan, "h0", root) == []
        n.run(host.remove, plan, "h0", root)
    assert partial, "no kill landed in the middle of an apply"
