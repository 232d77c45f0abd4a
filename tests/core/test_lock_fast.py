"""The lock's line reader gives exactly what the YAML reading gives for every lock nestnet
writes, and leaves every other text to the YAML reading (same result, same refusals)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nestnet.errors import SpecError
from nestnet.ipam import Lock, _fast_lock, parse_lock
from nestnet.spec import parse_yaml

names = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,8}", fullmatch=True)
nets = st.builds(lambda a, p: IPv4Network((a, p), strict=False), st.integers(0, 2**32 - 1), st.integers(8, 32))
addrs = st.builds(IPv4Address, st.integers(0, 2**32 - 1))


def _yaml_lock(text: str) -> Lock:
    data = parse_yaml(text, "f.lock")
    return Lock({str(k): IPv4Network(str(v)) for k, v in (data.get("blocks") or {}).items()},
                {str(k): IPv4Address(str(v)) for k, v in (data.get("vms") or {}).items()})


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(names, nets, max_size=6), st.dictionaries(names, addrs, max_size=6))
def test_line_reader_equals_yaml_reading(blocks, vms):
    text = Lock(blocks, vms).render("f.yaml")
    want = _yaml_lock(text)
    got = _fast_lock(text)
    if got is None:  # only keys YAML reads as something else than the name's text
        assert {k.lower() for k in [*blocks, *vms]} & {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}
    else:
        assert got == want
    assert parse_lock(text, "f.lock") == want


@pytest.mark.parametrize("text", [
    "version: 1\nblocks:\n  h1: 10.0.0.0/28  # moved by hand\nvms: {}\n",  # a comment after an entry
    "version: 1\nblocks:\n  h1: 10.0.0.0/28\n  h1: 10.0.0.16/28\nvms: {}\n",  # a duplicate
    "version: 1\nblocks:\n  h1: 10.0.0.1/28\nvms: {}\n",  # host bits set
    "version: 1\nblocks: {}\nvms:\n  v1: 10.0.0.256\n",  # not an address
    "version: 1\nblocks: {}\nvms:\n  v1: 10.0.0.05\n",  # a leading zero
    "version: 1\nblocks:\n  h1: 10.0.0.0/33\nvms: {}\n",  # not a prefix length
    "version: 1\nblocks: {}\nvms:\n  yes: 10.0.0.5\n",  # YAML's boolean
    "version: 1\n\nblocks: {}\nvms: {}\n",  # a blank line
    "version: 2\nblocks: {}\nvms: {}\n",
    "blocks: {}\nvms: {}\n",
    "version: 1\nvms: {}\nblocks: {}\n",  # another order
    "version: 1\nblocks: {}\nvms: {}",  # no final newline
])
def test_anything_else_is_read_as_yaml(text):
    assert _fast_lock(text) is None
    try:
        want = _yaml_lock(text) if parse_yaml(text, "f.lock").get("version") == 1 else None
    except (SpecError, ValueError):
        want = None
    try:
        got = parse_lock(text, "f.lock")
    except SpecError:
        got = None
    assert got == want
