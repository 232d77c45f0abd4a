"""Environment values are input: every variable nestnet reads is parsed in one place
(``nestnet.env``), and a bad value is exit 2 with one line naming the variable and the value."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nestnet import env

SRC = Path(__file__).parents[2] / "src" / "nestnet"
SEED = SRC / "examples" / "seed.yaml"

# Bad values for each kind of variable: each must be refused, naming the variable and the value.
BAD: dict[str, list[str]] = {
    "NESTNET_LOCK_TIMEOUT": ["abc", "nan", "inf", "-5", "0", "1e9"],
    "NESTNET_ARM_TIMEOUT": ["abc", "nan", "inf", "-5", "0"],
    "NESTNET_ARM_LOCK_TIMEOUT": ["abc", "nan", "inf", "-5", "1e9", "-0"],
    "NESTNET_ARM_ENDPOINT": ["http://127.0.0.1:9", "not a url", "https://:9", "https://h:99999"],
    "NESTNET_ARM_CA_BUNDLE": ["/nonexistent/ca.pem", "/", str(SEED)],
    "NESTNET_ARM_TOKEN": ["two words", "line\nbreak"],
    "AZURE_SUBSCRIPTION_ID": ["../../x", "sub", "00000000-0000-0000-0000-00000000000g"],
    "NESTNET_DEBUG": ["maybe"],
    "NESTNET_AWS_MAX_ATTEMPTS": ["0", "51", "three", "-1"],
    "NESTNET_IMAGE_CACHE": ["relative/images", str(SEED)],
    "NESTNET_DEBIAN_MIRROR": ["ftp://deb.debian.org/debian", "deb.debian.org", "http://a b"],
    "SSH_CONNECTION": ["garbage", "10.0.0.1 22 10.0.0.2 x", "10.0.0.1 1 10.0.0.2 70000"],
}


def run(*args: str, **extra: str) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k not in env.VARIABLES}
    return subprocess.run([sys.executable, "-m", "nestnet", *args], capture_output=True, text=True,
                          env={**e, **extra}, stdin=subprocess.DEVNULL, timeout=60)


def _read_names() -> set[str]:
    """Every environment variable a module of nestnet reads (outside nestnet.env)."""
    names: set[str] = set()
    for path in SRC.rglob("*.py"):
        if path.name == "env.py" and path.parent == SRC:
            continue
        text = path.read_text()
        # direct reads are not allowed outside env.py (passing the whole environment on is)
        assert not re.search(r"environ\.get\(|environ\[|getenv\(", text), f"{path}: reads the environment; use nestnet.env.get"
        names |= set(re.findall(r"envvar=\"([A-Z_]+)\"", text))
        names |= set(re.findall(r"env(?:ironment)?\.get\(\"([A-Z_]+)\"", text))
        names |= set(re.findall(r"\bget\(\"([A-Z_]+)\"", text))
    return names


def test_every_variable_read_is_registered_and_parsed_in_one_place():
    read = _read_names()
    assert read, "the scan found nothing: it is broken"
    assert read <= set(env.VARIABLES), read - set(env.VARIABLES)
    # every registered variable with a parser that can refuse has bad values in this test (an XDG
    # directory never refuses: a relative one is ignored, as the XDG spec says)
    assert set(BAD) == {n for n, v in env.VARIABLES.items() if v.parse not in (env.directory, env.xdg_dir)}


@pytest.mark.parametrize("name,value", [(n, v) for n, vs in BAD.items() for v in vs])
def test_a_bad_value_is_exit_2_one_line_naming_it(name, value):
    r = run("validate", str(SEED), **{name: value})
    assert r.returncode == 2, (name, value, r.stderr)
    assert r.stdout == ""
    [line] = r.stderr.splitlines() if "\n" not in value else [r.stderr.strip()]
    assert line.startswith(f"error: {name} {value!r}: "), line


def test_good_values_pass(tmp_path):
    good = {"NESTNET_LOCK_TIMEOUT": "0.5", "NESTNET_ARM_TIMEOUT": "30", "NESTNET_ARM_ENDPOINT": "https://127.0.0.1:9",
            "NESTNET_ARM_TOKEN": "t0k.en", "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
            "NESTNET_DEBUG": "0", "NESTNET_AWS_MAX_ATTEMPTS": "3", "SSH_CONNECTION": "fe80::1 50022 10.0.1.10 22", "NESTNET_ROOT": str(tmp_path),
            "XDG_CACHE_HOME": "relative/ignored"}
    r = run("validate", str(SEED), **good)
    assert r.returncode == 0, r.stderr
    assert env.get("SSH_CONNECTION", good) == 22 and env.get("NESTNET_LOCK_TIMEOUT", good) == 0.5


def test_nestnet_root_names_the_variable(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    r = run("host", "diff", str(SEED), "--host", "vme-kvm-vm1", NESTNET_ROOT=str(f))
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: NESTNET_ROOT (for --root) {f}: is a file, not a directory"


def test_the_lock_timeout_is_used_as_given(tmp_path):
    """NESTNET_LOCK_TIMEOUT=nan used to wait for ever (run() would time out); a good value bounds the wait."""
    spec = tmp_path / "seed.yaml"
    shutil.copy(SEED, spec)
    fd = os.open(tmp_path / ".seed.yaml.flock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert run("vm", "add", str(spec), "x1", "--host", "vme-kvm-vm1", NESTNET_LOCK_TIMEOUT="nan").returncode == 2
        r = run("vm", "add", str(spec), "x1", "--host", "vme-kvm-vm1", NESTNET_LOCK_TIMEOUT="0.3")
        assert r.returncode == 1 and "held this spec's writer lock for 0.3 s" in r.stderr, r.stderr
    finally:
        os.close(fd)
    assert "x1" not in spec.read_text()
