"""The spec's fast YAML reader (libyaml events -> data) gives exactly what the full loader gives,
and leaves every document it does not handle to the full loader (same data, same refusals)."""

from __future__ import annotations

import datetime

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from nestnet.errors import SpecError
from nestnet.spec import _fast_load, _Loader, _Unusual, parse_yaml

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12),
    st.sampled_from(["10.0.0.1", "yes", "No", "0x1f", "1_000", "~", "2001-12-14", ".inf", "=", "<<", "0o7"]),
    st.dates(min_value=datetime.date(1970, 1, 1)),
)
data = st.recursive(
    scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(data, st.sampled_from([False, True]))
def test_fast_reader_equals_full_loader(value, flow):
    text = yaml.safe_dump(value, default_flow_style=flow)
    want = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader subclass
    got = _fast_load(text)
    assert repr(got) == repr(want)


@pytest.mark.parametrize("text, refusal", [
    ("a: 1\na: 2", "duplicate key 'a'"),
    ("{1: x, 1: y}", "duplicate key 1"),
    ("<<: {a: 1}", "merge keys"),
    ("? [a]\n: 1", "complex keys"),
    ("a: &x [1]\nb: *x", "anchors and aliases"),
    ("a: !custom 1", "could not determine a constructor"),
    ("--- 1\n--- 2", "but found another document"),
    ("a: b: c", "mapping values are not allowed"),
])
def test_unusual_documents_go_to_the_full_loader(text, refusal):
    with pytest.raises(_Unusual):
        _fast_load(text)
    with pytest.raises(SpecError) as err:
        parse_yaml(text, "f.yaml")
    assert refusal in str(err.value.problems[0].message)


def test_explicit_tags_are_read_by_the_full_loader():
    with pytest.raises(_Unusual):
        _fast_load("a: !!str 1")
    assert parse_yaml("a: !!str 1", "f.yaml") == {"a": "1"}
    assert parse_yaml("", "f.yaml") is None


keys = st.from_regex(r"[a-z][a-z0-9_-]{0,6}", fullmatch=True).filter(
    lambda k: k not in ("y", "n", "yes", "no", "on", "off", "true", "false", "null"))
docs = st.recursive(
    st.one_of(st.none(), st.integers(), st.text(max_size=8), st.sampled_from(["10.0.0.1/24", "a b", "x: y"])),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(keys, kids, max_size=4), max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(keys, docs, min_size=1, max_size=4), st.sampled_from([False, True]))
def test_line_index_from_events_equals_ruamels(value, flow):
    """Issue 24: the line index of a spec with a warning took ruamel 3.5 s at 1,000 hosts."""
    from nestnet.spec import _fast_index, _ruamel_index

    text = "# a comment\n" + yaml.safe_dump(value, default_flow_style=flow, sort_keys=False)
    assert _fast_index(text) == _ruamel_index(text)


def test_line_index_of_what_the_fast_reader_leaves_alone_is_ruamels():
    from nestnet.spec import _fast_index, _index_lines

    text = "a: &x [1]\nb: *x\n"
    assert _fast_index(text) is None and _index_lines(text) == {"a": 1, "a[0]": 1, "b": 2, "b[0]": 1}


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys | st.sampled_from(["a.b", "", "x[0]", "1"]), docs, min_size=1, max_size=4),
       st.sampled_from([False, True]), st.data())
def test_line_of_from_the_readers_lines_equals_the_index(value, flow, data):
    """SpecSource.line_of walks the lines the fast reader recorded (no second read of the text):
    the same answer as the index of every key path, for paths that exist, end below a scalar,
    miss a key or an item, and after structure() dropped a key."""
    from pathlib import Path

    from nestnet.spec import SpecSource, _index_lines

    text = "# a comment\n" + yaml.safe_dump(value, default_flow_style=flow, sort_keys=False)
    index = _index_lines(text)
    paths = sorted(index) + [p + ".nokey" for p in index] + [p + "[7]" for p in index] + ["", "zz", "[0]", "a..b"]
    drop = data.draw(st.sampled_from([None, *index]))
    fresh = SpecSource(Path("s.yaml"), text)
    parsed = parse_yaml(text, "s.yaml", fresh)
    if drop is not None and "." in drop and "[" not in drop:  # as structure()'s _drop pops an unknown key
        parent, _, key = drop.rpartition(".")
        node = parsed
        for part in parent.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(key, None)
    want = SpecSource(Path("s.yaml"), text)  # no recorded lines: the index
    for p in data.draw(st.permutations(paths)):
        assert fresh.line_of(p) == want.line_of(p), p


def test_line_of_a_plain_spec_does_not_read_the_text_again():
    from pathlib import Path

    from nestnet.spec import SpecSource

    text = "version: 1\nhosts:\n- name: h0\n  ip: 10.0.0.4\n# a comment\n- {name: h1, ip: 10.0.0.5}\n"
    source = SpecSource(Path("s.yaml"), text)
    parse_yaml(text, "s.yaml", source)
    got = [source.line_of(p) for p in ("hosts[0].block", "hosts[1].ip", "hosts[1]", "hosts", "version", "nested.pool")]
    assert got == [3, 6, 6, 2, 1, None] and source._lines is None  # no index was built
