"""Helpers for the azure tests: spec builders and a handle on an emulated ARM endpoint."""

from __future__ import annotations

import copy
import io
import os
import json
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from nestnet.clouds.azure.arm import ArmClient, ArmSettings
from nestnet.clouds.azure.emulator import DEFAULT_SUBSCRIPTION, Arm, Emulator
from nestnet.plan import Plan

from core.specs import SEED  # noqa: E402 - the seed fabric as data, shared by the test areas


def seed_spec() -> dict:
    return copy.deepcopy(SEED)


def fabric_spec(n_hosts: int, **azure: Any) -> dict:
    """A routed fabric of ``n_hosts`` hosts in one subnet, /28 blocks from 10.1.0.0/16."""
    return {
        "version": 1,
        "name": "big",
        "azure": {"resource_group": "rg", "location": "westeurope", "vnet": "vnet",
                  "address_space": ["10.0.0.0/8"], "route_table": "rt", "max_routes": 400, **azure},
        "subnets": [{"name": "hosts", "prefix": "10.0.0.0/16"}, {"name": "mgmt", "prefix": "10.2.0.0/24"}],
        "nested": {"pool": "10.1.0.0/16", "block_prefix_len": 28},
        "hosts": [{"name": f"h{i}", "ip": f"10.0.{i // 250}.{i % 250 + 4}", "nic": f"h{i}-nic"} for i in range(n_hosts)],
    }


def write_spec(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass
class Endpoint:
    arm: Arm
    emulator: Emulator
    url: str
    ca: str

    def settings(self, plan: Plan) -> ArmSettings:
        return ArmSettings(self.url, plan.azure.subscription_id or DEFAULT_SUBSCRIPTION,
                           plan.azure.resource_group, self.ca, "test-token")

    def client(self, plan: Plan) -> ArmClient:
        return ArmClient(self.settings(plan))

    def stats(self) -> dict[str, int]:
        """Read over HTTPS, as any user of the emulator would."""
        ctx = ssl.create_default_context(cafile=self.ca)
        with urllib.request.urlopen(f"{self.url}/_emulator/stats", context=ctx, timeout=10) as r:
            return json.loads(r.read())

    def sdk(self, plan: Plan) -> "PlainSdk":
        """The plain azure-mgmt-network client (its default retries), for reading back what nestnet
        did and for writing as another tool would; answers read as ARM's JSON (see ``Rest``)."""
        from azure.mgmt.network import NetworkManagementClient

        from nestnet.clouds.azure.arm import _StaticToken

        return PlainSdk(NetworkManagementClient(
            _StaticToken("test-token"), plan.azure.subscription_id or DEFAULT_SUBSCRIPTION, base_url=self.url,
            credential_scopes=[f"{self.url}/.default"], connection_verify=self.ca, retry_backoff_factor=0.01))

    def readdress_nic(self, plan: Plan, nic: str, ip: str) -> None:
        """Give a host NIC another primary address, as its owner would (for the reality checks)."""
        rg = plan.azure.resource_group
        sdk = self.sdk(plan)
        n = sdk.network_interfaces.get(rg, nic).json
        for c in n["properties"]["ipConfigurations"]:
            if c["properties"].get("primary"):
                c["properties"]["privateIPAddress"] = ip
        sdk.network_interfaces.begin_create_or_update(rg, nic, n).result()


def _raw(pipeline_response: Any, deserialized: Any, headers: Any) -> Any:
    text = pipeline_response.http_response.text()
    return json.loads(text) if text else None


class Rest:
    """ARM JSON read with the SDK's attribute names (``t.properties.next_hop_ip_address``).

    Tests must run against every azure-mgmt-network release from the floor up, whose models
    differ (flattened snake_case in msrest-era releases, nested REST keys later): reading the wire
    JSON with names matched case- and underscore-insensitively works for all of them.
    """

    def __init__(self, data: dict):
        self.json = data

    def __getattr__(self, name: str) -> Any:
        want = name.replace("_", "").lower()
        for k, v in self.json.items():
            if k.replace("_", "").lower() == want:
                return _wrap(v)
        # Flattened access (``table.routes``), as the SDK models also offer it.
        props = self.json.get("properties")
        if isinstance(props, dict):
            for k, v in props.items():
                if k.replace("_", "").lower() == want:
                    return _wrap(v)
        return None

    def as_dict(self) -> dict:
        """ARM's JSON (REST key names), whatever the SDK release."""
        return self.json

    def __eq__(self, other: object) -> bool:
        return self.json == (other.json if isinstance(other, Rest) else other)

    def __repr__(self) -> str:
        return f"Rest({self.json!r})"


def _wrap(v: Any) -> Any:
    if isinstance(v, dict):
        return Rest(v)
    if isinstance(v, list):
        return [_wrap(x) for x in v]
    return v


class _Poller:
    def __init__(self, poller: Any):
        self._poller = poller

    def result(self) -> Any:
        return _wrap(self._poller.result())


class _Ops:
    def __init__(self, ops: Any):
        self._ops = ops

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._ops, name)
        if name.startswith("begin_"):
            def begun(*a: Any, **kw: Any) -> _Poller:
                if a and isinstance(a[-1], dict):  # a JSON body goes as bytes, past any SDK model
                    a = (*a[:-1], io.BytesIO(json.dumps(a[-1]).encode()))
                    kw.setdefault("content_type", "application/json")
                return _Poller(fn(*a, cls=_raw, **kw))
            return begun
        if name.startswith("list"):
            def listed(*a: Any, **kw: Any) -> list:
                pages: list = []
                for _ in fn(*a, raw_response_hook=lambda r: pages.append(_raw(r, None, None)), **kw):
                    pass
                return [_wrap(x) for p in pages for x in (p or {}).get("value") or []]
            return listed
        return lambda *a, **kw: _wrap(fn(*a, cls=_raw, **kw))


class PlainSdk:
    def __init__(self, client: Any):
        self.client = client

    def __getattr__(self, name: str) -> _Ops:
        return _Ops(getattr(self.client, name))


def write_between(ep: Endpoint, method: str, path_part: str, action: Any, times: int = 1) -> list[int]:
    """Run ``action()`` (another writer, through the emulator itself) right before the emulator
    handles the next ``times`` requests ``method`` whose path contains ``path_part``: a change that
    lands between nestnet's fresh GET and its PUT. Returns a one-item list counting the runs."""
    arm = ep.arm
    inner = arm.handle
    done = [0]

    def handle(m: str, target: str, headers: dict, body: bytes, base: str) -> Any:
        if m == method and path_part.lower() in target.lower() and done[0] < times:
            done[0] += 1
            action()
        return inner(m, target, headers, body, base)

    arm.handle = handle  # type: ignore[method-assign]
    return done


def arm_put(ep: Endpoint, path: str, body: dict, headers: dict | None = None) -> Any:
    """A write straight into the emulated ARM (as another client's request would arrive)."""
    url = f"{path}?api-version=2024-05-01"
    return ep.arm.handle("PUT", url, {"authorization": "Bearer other", **(headers or {})},
                         json.dumps(body).encode(), ep.url)


def arm_get(ep: Endpoint, path: str) -> dict:
    r = ep.arm.handle("GET", f"{path}?api-version=2024-05-01", {"authorization": "Bearer other"}, b"", ep.url)
    assert r.status == 200, r.body
    return r.body


def fake_az(tmp_path: Path, state: dict | None = None) -> tuple[dict[str, str], Path, Path]:
    """Put the stateful fake `az` (tests/azure/fake_az.py) first on PATH.

    Returns (env, log of argv lists, state file). ``state``: Azure as it is before the script runs
    (``{"routeTables": {...}, "subnets": {"vnet/subnet": {...}}, "nics": {...}}``).
    """
    import sys

    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir(exist_ok=True)
    az = bin_dir / "az"
    az.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).parent / 'fake_az.py'} \"$@\"\n")
    az.chmod(0o755)
    log, state_path = tmp_path / "az.log", tmp_path / "az-state.json"
    state_path.write_text(json.dumps(state or {}))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_AZ_LOG": str(log),
           "FAKE_AZ_STATE": str(state_path)}
    return env, log, state_path


def start_emulator_process(state: Path, *args: str) -> tuple[subprocess.Popen, SimpleNamespace]:
    """``nestnet azure emulator`` as its own process on a free loopback port; ``(proc, ep)`` once it
    has written its endpoint (``ep.url``, ``ep.ca``). The caller stops it by PID."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nestnet", "azure", "emulator", "--listen", "127.0.0.1:0", "--state-dir", str(state), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 20
    while not (state / "endpoint").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"emulator did not start: {proc.communicate()}")
        time.sleep(0.05)
    return proc, SimpleNamespace(url=(state / "endpoint").read_text().strip(), ca=str(state / "ca.pem"))


def check_azure(ep: Any, path: Path, plan: Plan, *args: str) -> subprocess.CompletedProcess:
    """``nestnet check PATH --azure --json ARGS`` against the emulator at ``ep``, as a user runs it."""
    env = {**os.environ, "NESTNET_ARM_ENDPOINT": ep.url, "NESTNET_ARM_CA_BUNDLE": ep.ca, "NESTNET_ARM_TOKEN": "t",
           "AZURE_SUBSCRIPTION_ID": plan.azure.subscription_id or DEFAULT_SUBSCRIPTION}
    return subprocess.run([sys.executable, "-m", "nestnet", "check", str(path), "--azure", "--json", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def add_foreign_routes(ep: Any, plan: Plan, count: int) -> None:
    """Another writer's routes ``foreign0..`` (192.168.i.0/24, next hop None) in the plan's table."""
    az = plan.azure
    for i in range(count):
        ep.sdk(plan).routes.begin_create_or_update(
            az.resource_group, az.route_table, f"foreign{i}",
            {"properties": {"addressPrefix": f"192.168.{i}.0/24", "nextHopType": "None"}},
        ).result()
