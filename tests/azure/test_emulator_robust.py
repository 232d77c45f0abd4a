"""The emulator answers malformed requests as ARM does (400/413 with a JSON error body), never with
a traceback and never persisting anything; it validates api-versions, names and tags; one emulator
per state directory; a damaged state file is set aside. Real processes, sockets and HTTPS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from azure_helpers import seed_spec, start_emulator_process, write_spec
from emulator_http import arm_path, raw_exchange, request
from nestnet.plan import load_plan

NESTNET = [sys.executable, "-m", "nestnet", "azure", "emulator"]


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


@pytest.fixture
def served(tmp_path):
    """A seeded emulator process; yields (endpoint, plan, state dir); its stderr is checked at the end."""
    spec = write_spec(tmp_path / "seed.yaml", seed_spec())
    state = tmp_path / "state"
    proc, ep = start_emulator_process(state, "--seed", str(spec))
    plan = load_plan(spec, write=False)
    yield ep, plan, state
    err = _stop(proc)
    assert "Traceback" not in err and "Exception" not in err, err


def _state(state: Path) -> bytes:
    return (state / "state.json").read_bytes()


def _head(ep, method: str, path: str, content_length: str, body: bytes = b"") -> bytes:
    host = ep.url.split("//", 1)[1]
    return (f"{method} {path}?api-version=2024-05-01 HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer t\r\n"
            f"Content-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n").encode() + body


@pytest.mark.parametrize("length, status, code", [
    ("abc", 400, "InvalidContentLength"),
    ("-5", 400, "InvalidContentLength"),
    ("999999999999", 413, "RequestEntityTooLarge"),
])
def test_bad_content_length_is_a_json_error(served, length, status, code):
    ep, plan, state = served
    before = _state(state)
    answer = raw_exchange(ep, _head(ep, "PUT", arm_path(plan, "routeTables/rt"), length, b'{"location": "eastus"}'))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status}".encode()), answer[:200]
    assert b"application/json" in head
    assert json.loads(body)["error"]["code"] == code
    assert _state(state) == before
    # The emulator still serves.
    assert request(ep, "GET", arm_path(plan, "virtualNetworks", plan.azure.vnet))[0] == 200


@pytest.mark.parametrize("body", [
    b"[1, 2]",
    b'"a string"',
    b'{"location": "eastus", "properties": "x"}',
    b'{"location": "eastus", "properties": {"routes": {"a": 1}}}',
    b'{"location": "eastus", "properties": {"routes": [7]}}',
    b'{"location": "eastus", "properties": {"routes": [{"name": "r", "properties": {"addressPrefix": 10}}]}}',
    b'{"location": "eastus", "tags": {"a": 1}}',
    b'{"location": "eastus", "tags": ["a"]}',
    b'{"location": 5}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"location": "eastus", "properties": {"x": ' + b"[" * 200 + b"]" * 200 + b"}}",
    b"\xff\xfe not json",
    b'{"location": "eastus"',
])
def test_wrong_bodies_are_400_with_an_arm_error_and_nothing_stored(served, body):
    ep, plan, state = served
    before = _state(state)
    status, headers, doc = request(ep, "PUT", arm_path(plan, "routeTables/rt"), raw=body)
    assert status == 400, doc
    assert headers["content-type"].startswith("application/json")
    assert doc["error"]["code"] in ("InvalidRequestContent", "InvalidRequestFormat")
    assert doc["error"]["message"]
    assert _state(state) == before
    assert request(ep, "GET", arm_path(plan, "routeTables/rt"))[0] == 404


def test_wrong_typed_child_and_nic_bodies(served):
    ep, plan, state = served
    before = _state(state)
    vnet = arm_path(plan, "virtualNetworks", plan.azure.vnet)
    for path, body in [
        (f"{vnet}/subnets/s9", b'{"properties": {"addressPrefix": ["10.0.9.0/24"]}}'),
        (f"{vnet}/subnets/s9", b'{"properties": {"routeTable": "rt"}}'),
        (f"{vnet}/subnets/s9", b"[]"),
        (arm_path(plan, "networkInterfaces/n9"), b'{"location": "eastus", "properties": {"ipConfigurations": {}}}'),
        (arm_path(plan, "networkInterfaces/n9"), b'{"location": "eastus", "properties": {"enableIPForwarding": "yes"}}'),
    ]:
        status, _, doc = request(ep, "PUT", path, raw=body)
        assert status == 400 and doc["error"]["code"] in ("InvalidRequestFormat", "InvalidRequestContent"), (path, doc)
    assert _state(state) == before


def test_api_versions_are_checked_like_arm(served):
    ep, plan, _ = served
    path = arm_path(plan, "virtualNetworks", plan.azure.vnet)
    status, _, doc = request(ep, "GET", path, query="")
    assert status == 400 and doc["error"]["code"] == "MissingApiVersionParameter"
    status, _, doc = request(ep, "GET", path, query="api-version=1999-garbage")
    assert status == 400 and doc["error"]["code"] == "InvalidApiVersionParameter"
    assert doc["error"]["message"].startswith("The api-version '1999-garbage' is invalid. The supported versions are '")
    for version in ("2099-01-01", "1999-01-01", "2019-01-01"):
        status, _, doc = request(ep, "GET", path, query=f"api-version={version}")
        assert status == 400 and doc["error"]["code"] == "NoRegisteredProviderFound", version
        assert f"API version '{version}' for type 'virtualNetworks'" in doc["error"]["message"]
    for version in ("2024-05-01", "2023-09-01", "2018-10-01"):
        assert request(ep, "GET", path, query=f"api-version={version}")[0] == 200, version


@pytest.mark.parametrize("where, name", [
    ("routeTables/{}", "%2E%2E"),
    ("routeTables/{}", "a%00b"),
    ("routeTables/{}", "x" * 81),
    ("routeTables/{}", "-lead"),
    ("routeTables/{}", "trail."),
    ("routeTables/{}", "sp%20ace"),
    ("networkInterfaces/{}", "a%2Fb"),
    ("virtualNetworks/{}", "v"),
    ("virtualNetworks/{}", "v" * 65),
])
def test_names_are_validated_like_arm(served, where, name):
    ep, plan, state = served
    before = _state(state)
    body = {"location": "eastus", "properties": {}}
    status, _, doc = request(ep, "PUT", arm_path(plan, where.format(name)), body)
    assert status in (400, 404), doc  # a decoded '/' no longer names a resource: 404 as ARM
    if status == 400:
        assert doc["error"]["code"] == "InvalidResourceName"
    assert _state(state) == before


def test_child_names_are_validated_too(served):
    ep, plan, state = served
    before = _state(state)
    vnet = arm_path(plan, "virtualNetworks", plan.azure.vnet)
    status, _, doc = request(ep, "PUT", f"{vnet}/subnets/a%00b", {"properties": {"addressPrefix": "10.0.9.0/24"}})
    assert status == 400 and doc["error"]["code"] == "InvalidResourceName"
    body = {"location": "eastus", "properties": {"routes": [
        {"name": "bad name!", "properties": {"addressPrefix": "10.0.1.16/28", "nextHopType": "None"}}]}}
    status, _, doc = request(ep, "PUT", arm_path(plan, "routeTables/rt"), body)
    assert status == 400 and doc["error"]["code"] == "InvalidResourceName"
    assert _state(state) == before
    # Names at the limits pass.
    assert request(ep, "PUT", arm_path(plan, "routeTables/" + "r" * 80), {"location": "eastus"})[0] == 201
    assert request(ep, "PUT", arm_path(plan, "routeTables/a_b.c-d_"), {"location": "eastus"})[0] == 201


@pytest.mark.parametrize("tags, code", [
    ({f"t{i}": "v" for i in range(51)}, "InvalidTagsCount"),
    ({"n" * 513: "v"}, "InvalidTagNameLength"),
    ({"n": "v" * 257}, "InvalidTagValueLength"),
    ({"a/b": "v"}, "InvalidTagNameCharacters"),
])
def test_tag_limits(served, tags, code):
    ep, plan, state = served
    before = _state(state)
    status, _, doc = request(ep, "PUT", arm_path(plan, "routeTables/rt"), {"location": "eastus", "tags": tags})
    assert status == 400 and doc["error"]["code"] == code
    assert _state(state) == before
    ok = {f"t{i}": "v" * 256 for i in range(49)} | {"n" * 512: ""}
    assert request(ep, "PUT", arm_path(plan, "routeTables/rt"), {"location": "eastus", "tags": ok})[0] == 201


def test_sixty_megabytes_of_tags_are_refused_unread(served):
    ep, plan, state = served
    before = _state(state)
    huge = {"location": "eastus", "tags": {f"t{i}": "v" * 250 for i in range(240_000)}}
    data = json.dumps(huge).encode()
    assert len(data) > 60_000_000
    answer = raw_exchange(ep, _head(ep, "PUT", arm_path(plan, "routeTables/rt"), str(len(data)), data[:1000]))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and json.loads(body)["error"]["code"] == "RequestEntityTooLarge"
    assert _state(state) == before


def test_a_second_emulator_on_the_same_state_dir_refuses_before_touching_anything(served, tmp_path):
    ep, plan, state = served
    files = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in state.iterdir()}
    r = subprocess.run([*NESTNET, "--listen", "127.0.0.1:0", "--state-dir", str(state)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "is in use by another emulator (pid" in lines[0]
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in state.iterdir()} == files
    assert request(ep, "GET", arm_path(plan, "virtualNetworks", plan.azure.vnet))[0] == 200


def test_a_busy_port_fails_before_writing_a_certificate(served, tmp_path):
    ep, _, _ = served
    port = ep.url.rsplit(":", 1)[1]
    other = tmp_path / "other"
    r = subprocess.run([*NESTNET, "--listen", f"127.0.0.1:{port}", "--state-dir", str(other)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and f"--listen 127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr
    assert not (other / "ca.pem").exists() and not (other / "endpoint").exists()


@pytest.mark.parametrize("damage", [b'{"resources": {"/subscriptions/x": {"id"', b"", b"[]", b'{"resources": 3}', b"\x00\x01"])
def test_a_damaged_state_file_is_kept_aside_and_the_emulator_starts_empty(tmp_path, damage):
    state = tmp_path / "state"
    state.mkdir()
    (state / "state.json").write_bytes(damage)
    proc, ep = start_emulator_process(state)
    try:
        status, _, doc = request(ep, "GET", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/routeTables")
        assert status == 200 and doc == {"value": []}
    finally:
        err = _stop(proc)
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and "state.json" in lines[0] and "kept it as state.json.damaged" in lines[0], err
    assert (state / "state.json.damaged").read_bytes() == damage
    assert "Traceback" not in err


def test_a_half_sent_body_times_out_cleanly(served, monkeypatch):
    """A client that promises more bytes than it sends gets a JSON 400 after the read timeout (shortened here
    through a second in-process emulator) and the server keeps serving others meanwhile."""
    from nestnet.clouds.azure.emulator import server

    monkeypatch.setattr(server, "IO_TIMEOUT", 1.0)
    monkeypatch.setattr(server._Handler, "timeout", 1.0)
    ep, plan, state = served
    from nestnet.clouds.azure.emulator import Arm, Emulator

    arm = Arm(state.parent / "inproc")
    em = Emulator(arm).start()
    try:
        ep2 = SimpleNamespace(url=em.url, ca=str(em.ca_pem))
        answer = raw_exchange(ep2, _head(ep2, "PUT", arm_path(plan, "routeTables/rt"), "100", b'{"loc'))
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400") and json.loads(body)["error"]["code"] == "InvalidRequestContent"
    finally:
        em.stop()
    assert os.path.exists(state / "state.json")


def test_temp_files_a_killed_emulator_left_are_removed_at_start(tmp_path):
    """kill -9 during a save leaves ``.state.XXXX.tmp`` (and ``.ca.pem.XXXX.tmp``) behind; they
    used to pile up for ever. The next emulator on the directory removes them once it holds the
    directory's lock, and serves the state the killed one had saved."""
    import tempfile

    spec = write_spec(tmp_path / "seed.yaml", seed_spec())
    plan = load_plan(spec, write=False)
    state = tmp_path / "state"
    proc, ep = start_emulator_process(state, "--seed", str(spec))
    assert request(ep, "GET", arm_path(plan, "virtualNetworks", plan.azure.vnet))[0] == 200
    proc.kill()  # SIGKILL: no clean-up of its own
    proc.communicate()
    # what a kill in the middle of save() / write_file() leaves: mkstemp's names, half written
    for prefix in (".state.", ".state.", ".ca.pem."):
        fd, _ = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=state)
        os.write(fd, b'{"resources": {"/subscr')
        os.close(fd)
    (state / "endpoint").unlink()
    foreign = state / "notes.txt"  # not a temp file of the emulator's: left alone
    foreign.write_text("mine\n")
    proc, ep = start_emulator_process(state)
    try:
        assert sorted(p.name for p in state.glob(".*.tmp")) == []
        assert request(ep, "GET", arm_path(plan, "virtualNetworks", plan.azure.vnet))[0] == 200
        assert foreign.read_text() == "mine\n"
    finally:
        _stop(proc)
