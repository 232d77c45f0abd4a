"""An edit that starts from a spec and lock recorded as checked (nestnet.checked) skips loading
them again (issue 24: `vm move` loaded the spec twice). Differential: every random sequence of
edits - valid and invalid, pinned and moved VMs, hand edits in between - gives the same result,
the same one-line error, the same files and the same "before" VM with the record as without it
(the record disabled: the full path, as before it existed)."""

from __future__ import annotations

import shutil

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nestnet import checked
from nestnet.errors import NestnetError
from nestnet.plan import load
from nestnet.specedit import move_vm, vm_add, vm_rm

from .specs import fabric, write

HOSTS = [f"h{i}" for i in range(4)] * 3 + ["nohost"]
VMS = [f"h{i}-v{j}" for i in range(4) for j in range(3)] + ["new1", "new2", "nosuch"]

edit_st = st.one_of(
    *[st.tuples(st.just("move"), st.sampled_from(VMS), st.sampled_from(HOSTS), st.booleans())] * 4,
    st.tuples(st.just("add"), st.sampled_from(VMS), st.sampled_from(HOSTS), st.sampled_from([None, "10.1.0.40", "10.1.0.3"])),
    st.tuples(st.just("rm"), st.sampled_from(VMS)),
    # hand edits: a pin, a VM on a host that does not exist, a second VM on one address, a mac
    st.tuples(st.just("hand"), st.sampled_from(["pin", "badhost", "clash", "mac", "lockgone"])),
)


def _hand(path, what: str) -> None:
    text = path.read_text()
    if what == "pin":
        text = text.replace("- name: h1-v2\n  host: h1\n", "- name: h1-v2\n  host: h1\n  ip: 10.1.0.29\n", 1)
    elif what == "badhost":
        text += "- {name: stray, host: nohost}\n"
    elif what == "clash":
        text += "- {name: twin, host: h2, ip: 10.1.0.33}\n- {name: twin2, host: h2, ip: 10.1.0.33}\n"
    elif what == "mac":
        text = text.replace("- name: h2-v1\n  host: h2\n", "- name: h2-v1\n  host: h2\n  mac: 02:00:00:00:00:09\n", 1)
    else:
        path.with_suffix(".lock").unlink(missing_ok=True)
        return
    path.write_text(text)


def _run(path, op) -> tuple:
    try:
        if op[0] == "move":
            old, loaded = move_vm(path, op[1], op[2], op[3])
            return "ok", old, loaded.plan.vms[op[1]], loaded.new_allocations
        if op[0] == "add":
            return "ok", vm_add(path, op[1], op[2], op[3]).plan.vms[op[1]]
        if op[0] == "rm":
            return "ok", vm_rm(path, op[1]).lock
        _hand(path, op[1])
        return ("hand",)
    except NestnetError as exc:  # the one line the CLI prints, the spec's directory left out
        return "error", type(exc).__name__, str(exc).replace(str(path.parent), "D")


def _files(d):
    return {p.name: p.read_text() for p in sorted(d.iterdir()) if p.is_file()}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(edit_st, min_size=1, max_size=8), st.sampled_from(["routed", "nat"]), st.booleans())
def test_an_edit_from_a_checked_spec_is_the_full_edit(tmp_path_factory, monkeypatch, ops, mode, plan_first):
    base = tmp_path_factory.mktemp("known")
    monkeypatch.setenv("XDG_CACHE_HOME", str(base / "home"))
    spec = fabric(4, 3)
    spec["nested"]["mode"] = mode
    spec["azure"]["max_routes"] = 8
    text = "# kept\n" + yaml.safe_dump(spec, sort_keys=False)
    fast_dir, full_dir = base / "fast", base / "full"
    for d in (fast_dir, full_dir):
        d.mkdir()
        write(d, text)
        if plan_first:  # as after the user's first `nestnet plan`: its pair is recorded
            load(d / "spec.yaml")
    for op in ops:
        got = _run(fast_dir / "spec.yaml", op)
        with monkeypatch.context() as m:
            m.setattr(checked, "known", lambda *a: None)  # the full path: nothing is known
            want = _run(full_dir / "spec.yaml", op)
        assert got == want, op
        assert _files(fast_dir) == _files(full_dir), op


def test_the_record_is_used_and_a_stale_or_corrupt_one_is_a_miss(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    path = write(tmp_path, yaml.safe_dump(fabric(3, 2), sort_keys=False))
    load(path)
    lock_text = path.with_suffix(".lock").read_text()
    assert checked.known(path, path.read_text(), lock_text) == checked.CANONICAL
    assert checked.known(path, path.read_text() + "\n", lock_text) is None  # another text
    assert checked.known(path, path.read_text(), None) is None  # another lock
    other = tmp_path / "copy.yaml"
    shutil.copy(path, other)
    assert checked.known(other, path.read_text(), lock_text) is None  # another spec path
    record = checked._file(path)
    record.write_text("nestnet-checked 1 " + "0" * 64 + " valid\n")
    assert checked.known(path, path.read_text(), lock_text) is None
    record.write_bytes(b"\xff\x00garbage")
    assert checked.known(path, path.read_text(), lock_text) is None
    # a move from an unrecorded pair loads it in full (and records the result)
    old, loaded = move_vm(path, "h1-v1", "h2", renumber=True)
    assert old.host == "h1" and loaded.plan.vms["h1-v1"].host == "h2"
    assert checked.known(path, path.read_text(), path.with_suffix(".lock").read_text()) == checked.CANONICAL


def test_a_record_in_an_unwritable_cache_is_no_error(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.write_text("a file, not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    path = write(tmp_path, yaml.safe_dump(fabric(2, 2), sort_keys=False))
    load(path)
    assert checked.known(path, path.read_text(), path.with_suffix(".lock").read_text()) is None
    old, loaded = move_vm(path, "h1-v1", "h0", renumber=True)
    assert loaded.plan.vms["h1-v1"].host == "h0"


@pytest.mark.parametrize("renumber", [False, True])
def test_the_fast_move_loads_once(tmp_path, monkeypatch, renumber):
    """The point of the record: the spec the move starts from is not checked again."""
    import nestnet.store as store

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    spec = fabric(3, 2)
    path = write(tmp_path, yaml.safe_dump(spec, sort_keys=False))
    load(path)
    calls = []
    real = store._checked_spec
    monkeypatch.setattr(store, "_checked_spec", lambda source: calls.append(source.text) or real(source))
    old, loaded = move_vm(path, "h1-v1", "h2", renumber)
    assert len(calls) == 1 and calls[0] == path.read_text()
    assert old.host == "h1" and loaded.plan.vms["h1-v1"].host == "h2"


def test_a_relative_xdg_cache_home_is_ignored(tmp_path, monkeypatch):
    """The XDG Base Directory Specification: a relative $XDG_CACHE_HOME is invalid and ignored
    (the record goes under ~/.cache, never relative to the working directory)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "rel")
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, yaml.safe_dump(fabric(2, 2), sort_keys=False))
    load(path)
    assert checked._file(path).parent == tmp_path / "home" / ".cache" / "nestnet" / "checked"
    assert checked._file(path).exists() and not (tmp_path / "rel").exists()
