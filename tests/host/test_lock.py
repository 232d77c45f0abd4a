"""The host lock (issue 20 item 4): one writer per host root, a waiter that times out names the holder."""

from __future__ import annotations

import os
import time

import pytest

from nestnet.errors import HostError
from nestnet.host import lock


def test_a_second_writer_waits_then_names_the_holder(tmp_path):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        with lock.held(tmp_path, "host apply"):
            os.write(w, b"x")
            time.sleep(3)
        os._exit(0)
    try:
        os.read(r, 1)
        t0 = time.monotonic()
        with pytest.raises(HostError) as e:
            with lock.held(tmp_path, "host remove", timeout=0.3):
                pass
        assert time.monotonic() - t0 >= 0.3
        msg = str(e.value)
        assert f"(pid {pid}: host apply)" in msg and str(tmp_path / lock.LOCK) in msg and "\n" not in msg
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    with lock.held(tmp_path, "host remove", timeout=0.3):  # a killed holder holds nothing
        with lock.held(tmp_path, "host apply"):  # re-entrant: the hook's arrive runs apply
            assert (tmp_path / lock.LOCK).read_text() == f"{os.getpid()} host remove\n"
