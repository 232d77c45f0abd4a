"""The emulated ARM endpoint on its own: ARM behaviours the plain SDK relies on, persistence,
and the CLI (`nestnet azure emulator` as a process, `diff`/`apply` exit codes and JSON)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError

from azure_helpers import Endpoint, seed_spec, start_emulator_process, write_spec
from nestnet.clouds.azure.emulator import DEFAULT_SUBSCRIPTION, Arm, Emulator

NESTNET = [sys.executable, "-m", "nestnet"]


def test_etags_if_match_412_and_arm_errors(emulator, plan_of):
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    sdk = ep.sdk(plan)
    rg = plan.azure.resource_group
    body = {"location": "eastus", "properties": {"routes": []}}
    t1 = sdk.route_tables.begin_create_or_update(rg, "rt", body).result()
    t2 = sdk.route_tables.begin_create_or_update(rg, "rt", body, headers={"If-Match": t1.etag}).result()
    assert t1.etag != t2.etag  # every write changes the etag
    with pytest.raises(HttpResponseError) as exc:
        sdk.route_tables.begin_create_or_update(rg, "rt", body, headers={"If-Match": t1.etag})
    assert exc.value.status_code == 412 and exc.value.error.code == "PreconditionFailed"
    # The seed's Solution 3 mistake: 10.0.1.20/28 is not a network address.
    with pytest.raises(HttpResponseError) as exc:
        sdk.routes.begin_create_or_update(
            rg, "rt", "bad", {"properties": {"addressPrefix": "10.0.1.20/28", "nextHopType": "VirtualAppliance",
                                             "nextHopIpAddress": "10.0.1.10"}})
    assert exc.value.status_code == 400 and exc.value.error.code == "InvalidRouteAddressPrefix"
    # A table in use by a subnet cannot be deleted.
    vnet = sdk.virtual_networks.get(rg, plan.azure.vnet)
    sub = vnet.properties.subnets[0].json
    sub["properties"]["routeTable"] = {"id": t2.id}
    sdk.subnets.begin_create_or_update(rg, plan.azure.vnet, sub["name"], sub).result()
    with pytest.raises(HttpResponseError) as exc:
        sdk.route_tables.begin_delete(rg, "rt").result()
    assert exc.value.error.code == "InUseRouteTableCannotBeDeleted"
    assert [s.id for s in sdk.route_tables.get(rg, "rt").properties.subnets] == [sub["id"]]
    with pytest.raises(HttpResponseError) as exc:
        sdk.route_tables.get(rg, "missing")
    assert exc.value.status_code == 404


def test_state_survives_a_restart(tmp_path, plan_of):
    plan = plan_of(seed_spec())
    d = tmp_path / "state"
    d.mkdir()
    arm = Arm(d)
    arm.seed(plan)
    em = Emulator(arm).start()
    try:
        ep = Endpoint(arm, em, em.url, str(em.ca_pem))
        ep.sdk(plan).route_tables.begin_create_or_update(
            plan.azure.resource_group, "kept", {"location": "eastus", "properties": {}}).result()
    finally:
        em.stop()
    arm2 = Arm(d)
    em2 = Emulator(arm2).start()  # a new CA and port; the state is the same
    try:
        ep2 = Endpoint(arm2, em2, em2.url, str(em2.ca_pem))
        names = [t.name for t in ep2.sdk(plan).route_tables.list(plan.azure.resource_group)]
        assert names == ["kept"]
    finally:
        em2.stop()


def _start_cli_emulator(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, dict[str, str]]:
    proc, ep = start_emulator_process(tmp_path / "state", *args)
    env = {**os.environ, "NESTNET_ARM_ENDPOINT": ep.url, "NESTNET_ARM_CA_BUNDLE": ep.ca,
           "NESTNET_ARM_TOKEN": "cli-test", "AZURE_SUBSCRIPTION_ID": DEFAULT_SUBSCRIPTION}
    return proc, env


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_cli_diff_apply_against_a_seeded_emulator_process(tmp_path):
    spec = write_spec(tmp_path / "seed.yaml", seed_spec())
    proc, env = _start_cli_emulator(tmp_path, "--seed", str(spec), "--inject", "429:0.3", "--retry-after", "0.01")
    try:
        run = lambda *a: subprocess.run([*NESTNET, "azure", *a], capture_output=True, text=True, env=env, timeout=60)  # noqa: E731
        r = run("diff", str(spec), "--json")
        assert r.returncode == 1, r.stderr
        changes = json.loads(r.stdout)["changes"]
        assert len(changes) == 7
        r = run("apply", str(spec), "--json")
        assert r.returncode == 0, r.stderr
        # The route table is created empty by the apply lease (docs/decisions/0029), then its routes
        # are written in the one table PUT; subnets and NICs as before.
        assert json.loads(r.stdout)["writes"] == 6
        r = run("diff", str(spec), "--json")
        assert r.returncode == 0 and json.loads(r.stdout) == {"changes": []}
        r = run("diff", str(spec))
        assert r.returncode == 0 and "no changes" in r.stdout
    finally:
        _stop(proc)


def test_cli_errors_are_one_line(tmp_path):
    spec = write_spec(tmp_path / "seed.yaml", seed_spec())
    env = {**os.environ, "NESTNET_ARM_ENDPOINT": "http://127.0.0.1:1", "AZURE_SUBSCRIPTION_ID": "s"}
    r = subprocess.run([*NESTNET, "azure", "diff", str(spec)], capture_output=True, text=True, env=env)
    # A bad endpoint is bad input: exit 2, one line naming the variable.
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: NESTNET_ARM_ENDPOINT")
    assert "Traceback" not in r.stderr
    r = subprocess.run([*NESTNET, "azure", "emulator", "--listen", "nowhere", "--state-dir", str(tmp_path / "s")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--listen 'nowhere'" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([*NESTNET, "azure", "emulator", "--inject", "500:0.3", "--state-dir", str(tmp_path / "s")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--inject '500:0.3'" in r.stderr
