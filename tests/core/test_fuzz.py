"""Fuzz: spec documents and CLI arguments thrown at the real CLI (in process, through
``nestnet.cli.main``): every case exits 0 or 2 (``check`` also 1: pairs fail), never 70, never a
traceback, and on exit 2 the spec and lock are byte for byte what they were."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nestnet.cli import main

from .specs import seed

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from([
        "", "0.0.0.0/0", "10.0.1.0/24", "10.0.1.16/28", "10.0.1.20", "::1", "10.0.1.300", "10.0.1.0/33",
        "all", "lo", "default", "eth0", "a" * 70, "web1", "vme-kvm-vm1", "East US", "east\x00us", "-x",
        "nat", "secondary-ip", "routed", "subnet", "onlink", "52:54:00:00:00:01", "01:00:5e:00:00:01",
        "<<", "&a", "*a", "{}", "[]", "255.255.255.255/32", "127.0.0.1", "168.63.129.16",
    ]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=6)

# Every key path of the seed, to mutate one at a time.
def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


PATHS = _paths(seed())


def _has(node: Any, key: Any) -> bool:
    if isinstance(node, dict):
        return key in node
    return isinstance(node, list) and isinstance(key, int) and key < len(node)


def _mutate(doc: dict, path: tuple, value: Any, delete: bool) -> dict:
    cur: Any = doc
    for k in path[:-1]:  # an earlier mutation may have replaced a parent: then leave it
        if not _has(cur, k):
            return doc
        cur = cur[k]
    if not _has(cur, path[-1]):
        return doc
    if delete and isinstance(cur, dict):
        cur.pop(path[-1], None)
    else:
        cur[path[-1]] = value
    return doc


@st.composite
def spec_texts(draw) -> str:
    kind = draw(st.sampled_from(["seed", "seed", "mutated", "mutated", "raw", "added"]))
    if kind == "raw":
        return draw(st.one_of(
            st.text(max_size=200),
            st.sampled_from([
                "version: 1\n? [a, b]\n: 1\n", "a: &x 1\nb: *x\n", "<<: {version: 1}\n", "[1, 2]\n",
                "version: 1\nname: x\nname: y\n", "\x00", "version: !!python/object:os.system x\n",
                "version: 1\n" + "- " * 50 + "x\n",
            ]),
        ))
    doc = seed()
    for _ in range(0 if kind == "seed" else draw(st.integers(1, 2))):
        if kind == "added":
            key = draw(st.sampled_from(["hosts", "vms", "endpoints", "subnets"]))
            doc[key].append(draw(st.dictionaries(st.sampled_from(["name", "ip", "host", "subnet", "block", "prefix",
                                                                 "bridge", "uplink", "mac", "nic"]), SCALARS)))
        else:
            doc = _mutate(doc, draw(st.sampled_from(PATHS)), draw(VALUES), draw(st.booleans()))
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


NAMES = st.one_of(st.sampled_from(["web1", "web2", "x1", "vme-kvm-vm1", "mgmt-vm", "a;b", "-h", "--json", ""]),
                  st.text(max_size=12))


@st.composite
def argvs(draw, spec: str) -> list[str]:
    cmd = draw(st.sampled_from(["validate", "validate --json", "plan", "plan --json", "plan --frozen",
                                "vm add", "vm rm", "vm list", "vm list --json", "vm config", "check", "check --json"]))
    argv = [*cmd.split()[:2], spec, *cmd.split()[2:]] if cmd.startswith("vm") else [cmd.split()[0], spec, *cmd.split()[1:]]
    if cmd == "vm add":
        argv += [draw(NAMES), "--host", draw(st.one_of(st.just("vme-kvm-vm1"), NAMES))]
        if draw(st.booleans()):
            argv += ["--ip", draw(st.one_of(st.sampled_from(["10.0.1.21", "10.0.1.99", "::1", "10.0.1.10", "x"]),
                                            st.text(max_size=15)))]
    elif cmd in ("vm rm", "vm config"):
        argv.append(draw(NAMES))
        if cmd == "vm config" and draw(st.booleans()):
            argv += ["--format", draw(st.sampled_from(["ip", "netplan", "cloud-init", "libvirt", "yaml"]))]
    elif cmd.startswith("check") and draw(st.booleans()):
        argv += ["--fault", draw(st.one_of(st.sampled_from(["ip-forward-off:vme-kvm-vm1", "no-route-table:vm-subnet",
                                                            "nope", "ip-forward-off:", ":"]), st.text(max_size=20)))]
    if draw(st.booleans()):
        argv.insert(0, "-q")
    return argv


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, out.getvalue(), err.getvalue()


@settings(max_examples=int(os.environ.get("NESTNET_FUZZ_EXAMPLES", "150")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=spec_texts(), data=st.data(), with_lock=st.booleans())
def test_fuzz_cli(text, data, with_lock):
    with tempfile.TemporaryDirectory(prefix="nestnet-fuzz-") as tmp:
        spec = Path(tmp) / "s.yaml"
        spec.write_bytes(text.encode("utf-8", "surrogatepass"))
        lock = spec.with_suffix(".lock")
        if with_lock:
            lock.write_text("version: 1\nblocks: {vme-kvm-vm1: 10.0.1.16/28}\nvms: {web1: 10.0.1.20, x1: 10.0.1.50}\n")
        before = {p.name: p.read_bytes() for p in Path(tmp).iterdir()}
        argv = data.draw(argvs(str(spec)))
        code, out, err = run(argv)
        allowed = (0, 1, 2) if argv[argv.index(str(spec)) - 1] == "check" else (0, 2)
        assert code in allowed, (argv, code, err)
        assert "Traceback" not in err and "internal error" not in err, (argv, err)
        if code == 2:
            after = {p.name: p.read_bytes() for p in Path(tmp).iterdir() if not p.name.startswith(".")}
            assert after == before, (argv, err)
            assert err.strip(), argv  # said why
