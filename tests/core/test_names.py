"""Long lists in errors stop after a few names, with a "did you mean" (issue 24)."""

from __future__ import annotations

import subprocess
import sys

from nestnet.names import few, unknown

from .specs import fabric, write


def test_few_and_unknown():
    assert few([]) == "none" and few(["a", "b"]) == "a, b"
    assert few([f"h{i}" for i in range(1000)]) == "h0, h1, h2, h3, h4 and 995 more"
    assert unknown("h1x", [f"h{i}" for i in range(1000)]).startswith(" (did you mean 'h1'? known: h0, ")
    assert unknown("zzz", ["a", "b"]) == " (known: a, b)"


def test_an_unknown_host_among_many_names_few_and_the_closest(tmp_path):
    path = write(tmp_path, fabric(60, 1))
    for argv in (["vm", "add", str(path), "x", "--host", "h511"], ["doctor", str(path), "--host", "h511"],
                 ["check", str(path), "--fault", "ip-forward-off:h511"], ["vm", "move", str(path), "h1-v0", "--to", "h511"]):
        r = subprocess.run([sys.executable, "-m", "nestnet", "-q", *argv], capture_output=True, text=True)
        assert r.returncode == 2, (argv, r.stderr)
        assert "did you mean 'h51'?" in r.stderr and "and 55 more" in r.stderr, r.stderr
        assert r.stderr.count(", h") < 10 and r.stderr.count("\n") == 1, r.stderr
