"""The pure core stays made of short, single-purpose functions (issue 15): none over 60 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src" / "nestnet"
CORE = ("spec.py", "validate.py", "ipam.py", "plan.py", "guest.py", "store.py", "specedit.py")
LIMIT = 60


@pytest.mark.parametrize("module", CORE)
def test_no_function_over_60_lines(module):
    tree = ast.parse((SRC / module).read_text())
    long = [
        f"{module}:{n.lineno} {n.name}() is {n.end_lineno - n.lineno + 1} lines"
        for n in ast.walk(tree)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > LIMIT
    ]
    assert not long, "split these:\n" + "\n".join(long)


def test_the_pure_core_does_no_file_io():
    """plan.py and ipam.py (and validate/spec/guest) leave files to store.py."""
    for module in ("spec.py", "validate.py", "ipam.py", "plan.py", "guest.py"):
        text = (SRC / module).read_text()
        for call in ("open(", "read_text(", "write_text(", "os.rename", "os.replace", "fcntl"):
            assert call not in text, f"{module} does file I/O ({call})"
