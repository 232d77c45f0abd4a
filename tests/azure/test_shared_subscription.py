"""A real, shared subscription (issue 9 and the Azure items of issue 16), through the real SDK
against the emulated ARM over HTTPS:

- other writers between nestnet's reads and writes (same process, and a separate SDK process
  writing while `nestnet azure apply` runs): no change is lost;
- ARM's conflict answers (409 AnotherOperationInProgress, operations that end Canceled /
  CanceledAndSupersededDueToAnotherOperation, 429 with and without Retry-After): converge, or
  exit 3 with one line naming the resource and ARM's code when the deadline passes;
- timeouts (a TLS server on loopback that never answers), bad endpoints, unreadable answers;
- reality checks (region, address space, NIC addresses) before any write; `azure diff` exit codes.

ARM's answers that the emulator does not produce by itself are given by wrapping its request
handler (``answer``): the bodies and headers are ARM's documented ones (docs/decisions/0009).
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid

import pytest

from azure_helpers import arm_get, fabric_spec, seed_spec, write_between, write_spec
from nestnet.clouds.azure.arm import ArmClient, ArmSettings, settings_for
from nestnet.clouds.azure.emulator import DEFAULT_SUBSCRIPTION, Reply
from nestnet.clouds.azure.reconcile import apply, plan_changes, reconcile
from nestnet.errors import UsageError

NESTNET = [sys.executable, "-m", "nestnet"]
NIC1, NIC2 = "vme-kvm-vm1-vm-nic", "vme-kvm-vm2-vm-nic"


def delta(before, after):
    return {k: after[k] - before[k] for k in after}


def answer(ep, method, path_part, replies):
    """Answer the next requests ``method`` on a path containing ``path_part`` with ``replies``
    (a list of Reply, or of callables giving one) instead of the emulator; then the emulator again."""
    arm, inner = ep.arm, ep.arm.handle
    queue = list(replies)
    seen = []

    def handle(m, target, headers, body, base):
        if m == method and path_part.lower() in target.lower() and queue:
            r = queue.pop(0)
            seen.append(target)
            return r(m, target, headers, body, base) if callable(r) else r
        return inner(m, target, headers, body, base)

    arm.handle = handle
    return seen


def arm_error(code, message):
    return {"error": {"code": code, "message": message}}


BUSY = Reply(409, arm_error("AnotherOperationInProgress",
                            "Another operation on this or dependent resource is in progress. To retrieve status of the "
                            "operation use uri: https://management.azure.com/subscriptions/x/providers/Microsoft.Network/"
                            "locations/eastus/operations/00000000-0000-0000-0000-000000000000?api-version=2024-05-01."))


def canceled_write(ep):
    """A write ARM accepts (201 + Azure-AsyncOperation) whose operation then ends Canceled,
    superseded by another operation: nothing of it is applied."""
    op = str(uuid.uuid4())
    body = {"status": "Canceled", "error": {
        "code": "CanceledAndSupersededDueToAnotherOperation",
        "message": "Operation PutSubnetOperation (00000000-0000-0000-0000-000000000000) was canceled and superseded by "
                   "operation PutSubnetOperation (11111111-1111-1111-1111-111111111111)."}}
    answer(ep, "GET", f"/operations/{op}", [Reply(200, body)])

    def accept(m, target, headers, raw, base):
        url = f"{base}/subscriptions/{DEFAULT_SUBSCRIPTION}/providers/Microsoft.Network/locations/eastus/operations/{op}?api-version=2024-05-01"
        return Reply(201, {**json.loads(raw), "properties": {**json.loads(raw).get("properties", {}),
                                                              "provisioningState": "Updating"}},
                     {"Azure-AsyncOperation": url})

    return accept


def fast(ep, plan, timeout=30.0):
    s = ep.settings(plan)
    return ArmClient(ArmSettings(s.endpoint, s.subscription_id, s.resource_group, s.ca_bundle, s.token,
                                 timeout=timeout, backoff=0.01))


def read_back(ep, plan):
    sdk = ep.sdk(plan)
    az = plan.azure
    table = sdk.route_tables.get(az.resource_group, az.route_table)
    routes = {r.name: r.properties.address_prefix for r in table.properties.routes}
    vnet = sdk.virtual_networks.get(az.resource_group, az.vnet)
    subnets = {s.name: s.json["properties"] for s in vnet.properties.subnets}
    nics = {n.name: n.json for n in sdk.network_interfaces.list(az.resource_group)}
    return routes, subnets, nics


# -- other writers ---------------------------------------------------------------------------------

def test_subnet_written_between_get_and_put_keeps_the_other_writers_setting(emulator, plan_of):
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    client = ep.client(plan)
    want, obs, changes = plan_changes(client, plan)
    vnet_path = f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/{plan.azure.resource_group}/providers/Microsoft.Network/virtualNetworks/{plan.azure.vnet}"

    def add_service_endpoint():
        # Someone attaches a service endpoint to vm-subnet right after nestnet's GET of it.
        from azure_helpers import arm_put
        sub = arm_get(ep, f"{vnet_path}/subnets/vm-subnet")
        sub["properties"]["serviceEndpoints"] = [{"service": "Microsoft.Storage"}]
        assert arm_put(ep, f"{vnet_path}/subnets/vm-subnet", sub).status == 200

    ran = write_between(ep, "PUT", "subnets/vm-subnet", add_service_endpoint)
    before = ep.stats()
    outcome = apply(client, want, obs, changes)
    assert ran == [1]
    # The PUT built from the stale GET was refused (412), re-read, and only routeTable re-applied.
    assert outcome.retries_412 == 1 and delta(before, ep.stats())["precondition_failed"] == 1
    _, subnets, _ = read_back(ep, plan)
    assert [e["service"] for e in subnets["vm-subnet"]["serviceEndpoints"]] == ["Microsoft.Storage"]
    assert subnets["vm-subnet"]["routeTable"]["id"].endswith(plan.azure.route_table)
    assert plan_changes(client, plan)[2] == []


def test_subnet_changed_after_the_first_read_is_kept_by_the_fresh_read(emulator, plan_of):
    """The bug of issue 9: the subnet body came from the VNet read at the start of the run."""
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    client = ep.client(plan)
    want, obs, changes = plan_changes(client, plan)
    sdk = ep.sdk(plan)
    rg, vnet = plan.azure.resource_group, plan.azure.vnet
    sub = sdk.subnets.get(rg, vnet, "mgmt-subnet").json
    sub["properties"]["delegations"] = [{"name": "d", "properties": {"serviceName": "Microsoft.Web/serverFarms"}}]
    sdk.subnets.begin_create_or_update(rg, vnet, "mgmt-subnet", sub).result()
    outcome = apply(client, want, obs, changes)
    assert outcome.retries_412 == 0
    _, subnets, _ = read_back(ep, plan)
    assert subnets["mgmt-subnet"]["delegations"][0]["properties"]["serviceName"] == "Microsoft.Web/serverFarms"
    assert subnets["mgmt-subnet"]["routeTable"]["id"].endswith(plan.azure.route_table)


WRITER = r"""
import io, json, sys, time
from azure.mgmt.network import NetworkManagementClient
from azure.core.exceptions import HttpResponseError
from azure.core.credentials import AccessToken

class Token:
    def get_token(self, *a, **k):
        return AccessToken("writer", int(time.time()) + 3600)

url, ca, rg, vnet, table, nics, n, ready = sys.argv[1:9]
nics = nics.split(",")
sdk = NetworkManagementClient(Token(), "SUBSCRIPTION", base_url=url, credential_scopes=[url + "/.default"],
                              connection_verify=ca, retry_backoff_factor=0.01)
raw = lambda resp, d, h: json.loads(resp.http_response.text())
def body(d):
    return io.BytesIO(json.dumps(d).encode())

def guarded(get, put, change):
    # A careful writer: GET, change, PUT with If-Match; on 412 read again.
    while True:
        cur = get()
        try:
            put(change(cur), cur["etag"])
            return
        except HttpResponseError as exc:
            if exc.status_code != 412:
                raise
            done["conflicts"] += 1

done = {"service_endpoints": 0, "routes": 0, "nic_tags": 0, "conflicts": 0}
open(ready, "w").write("go")
for i in range(int(n)):
    try:
        if i % 3 == 0:
            name = ["hosts", "mgmt"][i // 3 % 2]
            def change(s, i=i):
                eps = s["properties"].setdefault("serviceEndpoints", [])
                eps.append({"service": f"Microsoft.Svc{i}"})
                return s
            guarded(lambda: sdk.subnets.get(rg, vnet, name, cls=raw),
                    lambda b, e: sdk.subnets.begin_create_or_update(rg, vnet, name, body(b), content_type="application/json",
                                                                   headers={"If-Match": e}, cls=raw).result(), change)
            done["service_endpoints"] += 1
        elif i % 3 == 1:
            sdk.routes.begin_create_or_update(rg, table, f"foreign-{i}", body({"properties": {
                "addressPrefix": f"192.168.{i}.0/24", "nextHopType": "None"}}), content_type="application/json").result()
            done["routes"] += 1
        else:
            nic = nics[i // 3 % len(nics)]
            def change(x, i=i):
                x.setdefault("tags", {})[f"writer-{i}"] = "yes"
                return x
            guarded(lambda: sdk.network_interfaces.get(rg, nic, cls=raw),
                    lambda b, e: sdk.network_interfaces.begin_create_or_update(rg, nic, body(b), content_type="application/json",
                                                                              headers={"If-Match": e}, cls=raw).result(), change)
            done["nic_tags"] += 1
    except HttpResponseError as exc:
        print(f"writer: {exc}", file=sys.stderr)
        raise
print(json.dumps(done))
""".replace("SUBSCRIPTION", DEFAULT_SUBSCRIPTION)


@pytest.mark.slow
def test_separate_sdk_process_writing_while_apply_runs_loses_nothing(emulator, plan_of, tmp_path):
    spec = fabric_spec(12)
    spec["azure"]["route_table"] = "rt"
    path = write_spec(tmp_path / "f.yaml", spec)
    plan = plan_of(spec, name="f.yaml")
    ep = emulator(plan)
    az = plan.azure
    # The table exists already (someone else's route in it): the writer can add routes from the start.
    ep.sdk(plan).route_tables.begin_create_or_update(az.resource_group, "rt", {
        "location": "westeurope", "properties": {"routes": [{"name": "seed-foreign", "properties": {
            "addressPrefix": "172.16.0.0/12", "nextHopType": "None"}}]}}).result()
    nics = [h.nic for h in plan.hosts.values()]
    ready = tmp_path / "writer-ready"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, ep.url, ep.ca, az.resource_group, az.vnet, "rt", ",".join(nics), "60", str(ready)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    env = {**os.environ, "NESTNET_ARM_ENDPOINT": ep.url, "NESTNET_ARM_CA_BUNDLE": ep.ca,
           "NESTNET_ARM_TOKEN": "cli", "AZURE_SUBSCRIPTION_ID": DEFAULT_SUBSCRIPTION}
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        r = subprocess.run([*NESTNET, "azure", "apply", str(path), "--json"], capture_output=True, text=True,
                           env=env, timeout=300)
        out, err = writer.communicate(timeout=300)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert r.returncode == 0, r.stderr
    assert writer.returncode == 0, err
    done = json.loads(out)
    assert done["service_endpoints"] + done["routes"] + done["nic_tags"] == 60
    routes, subnets, nics_now = read_back(ep, plan)
    # Every change of the writer is there ...
    for i in range(60):
        if i % 3 == 1:
            assert f"foreign-{i}" in routes
    eps = {e["service"] for s in subnets.values() for e in s.get("serviceEndpoints") or []}
    assert eps == {f"Microsoft.Svc{i}" for i in range(0, 60, 3)}, (done, subnets)
    tags = {k for n in nics_now.values() for k in (n.get("tags") or {})}
    assert tags == {f"writer-{i}" for i in range(2, 60, 3)}
    assert "seed-foreign" in routes
    # ... and so is nestnet's plan: a second run has nothing to do.
    r = subprocess.run([*NESTNET, "azure", "diff", str(path)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and "no changes" in r.stdout, r.stdout + r.stderr


# -- ARM's conflict answers ----------------------------------------------------------------------------

def test_409_another_operation_in_progress_is_waited_out(emulator, plan_of):
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    client = fast(ep, plan)
    want, obs, changes = plan_changes(client, plan)
    seen = answer(ep, "PUT", "subnets/vm-subnet", [BUSY, BUSY])
    outcome = apply(client, want, obs, changes)
    assert len(seen) == 2 and outcome.busy_retries == 2
    _, subnets, _ = read_back(ep, plan)
    assert subnets["vm-subnet"]["routeTable"]["id"].endswith(plan.azure.route_table)
    assert plan_changes(client, plan)[2] == []


def test_operation_canceled_and_superseded_is_read_again_and_retried(emulator, plan_of):
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    client = fast(ep, plan)
    want, obs, changes = plan_changes(client, plan)
    seen = answer(ep, "PUT", f"networkInterfaces/{NIC1}", [canceled_write(ep)])
    reads_before = ep.stats()["reads"]
    outcome = apply(client, want, obs, changes)
    assert len(seen) == 1 and outcome.busy_retries == 1
    assert ep.stats()["reads"] > reads_before
    _, _, nics = read_back(ep, plan)
    assert nics[NIC1]["properties"]["enableIPForwarding"] is True
    assert plan_changes(client, plan)[2] == []


def test_429_without_retry_after_backs_off_and_converges(emulator, plan_of):
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    client = fast(ep, plan)
    throttled = Reply(429, arm_error("SubscriptionRequestsThrottled", "Number of write requests for subscription "
                                     "exceeded the limit of '1200' for time interval '01:00:00'."),
                      {"x-ms-ratelimit-remaining-subscription-writes": "0"})
    # More 429s than azure-core's own retries: nestnet's loop takes over.
    seen = answer(ep, "PUT", "routeTables/", [throttled] * 6)
    changes, outcome = reconcile(client, plan)
    assert len(seen) == 6 and outcome.busy_retries >= 1
    routes, _, _ = read_back(ep, plan)
    assert set(routes) == {r.name for r in plan.azure.routes}


def test_still_busy_at_the_deadline_is_exit_3_naming_resource_and_code(emulator, plan_of, tmp_path):
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    answer(ep, "PUT", "subnets/mgmt-subnet", [BUSY] * 1000)
    path = write_spec(tmp_path / "s.yaml", seed_spec())
    env = {**os.environ, "NESTNET_ARM_ENDPOINT": ep.url, "NESTNET_ARM_CA_BUNDLE": ep.ca, "NESTNET_ARM_TOKEN": "t",
           "AZURE_SUBSCRIPTION_ID": DEFAULT_SUBSCRIPTION}
    t0 = time.monotonic()
    r = subprocess.run([*NESTNET, "azure", "apply", str(path), "--timeout", "3"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert time.monotonic() - t0 < 30
    assert r.returncode == 3, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert "subnet 'mgmt-subnet'" in last and "AnotherOperationInProgress" in last and "3s" in last
    assert "Traceback" not in r.stderr


# -- timeouts, endpoints, unreadable answers -----------------------------------------------------------

def silent_tls_server(tmp_path):
    """A TLS server on loopback that completes the handshake and then never answers."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    ca_pem = tmp_path / "silent-ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    stop = threading.Event()
    held = []

    def serve():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            try:
                tls = ctx.wrap_socket(conn, server_side=True)
                held.append(tls)  # read nothing, write nothing
            except OSError:
                conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()

    def close():
        stop.set()
        t.join(2)
        for c in held:
            c.close()
        sock.close()

    return f"https://127.0.0.1:{sock.getsockname()[1]}", str(ca_pem), held, close


def test_endpoint_that_never_answers_times_out_with_exit_3(tmp_path):
    url, ca, held, close = silent_tls_server(tmp_path)
    path = write_spec(tmp_path / "s.yaml", seed_spec())
    env = {**os.environ, "NESTNET_ARM_ENDPOINT": url, "NESTNET_ARM_CA_BUNDLE": ca, "NESTNET_ARM_TOKEN": "t",
           "AZURE_SUBSCRIPTION_ID": DEFAULT_SUBSCRIPTION, "NESTNET_ARM_TIMEOUT": "2"}
    try:
        for cmd in ("diff", "apply"):
            t0 = time.monotonic()
            r = subprocess.run([*NESTNET, "azure", cmd, str(path)], capture_output=True, text=True, env=env, timeout=60)
            took = time.monotonic() - t0
            assert r.returncode == 3, r.stderr
            assert took < 45, took  # a bound, not a speed figure: issue 16 saw it hang past 90 s
            assert "no answer from ARM in time" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert held  # the TLS handshake did complete: it is the answer that never came
    finally:
        close()


def test_diff_exit_codes_tell_drift_from_failure(emulator, plan_of, tmp_path):
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    path = write_spec(tmp_path / "s.yaml", seed_spec())
    env = {**os.environ, "NESTNET_ARM_ENDPOINT": ep.url, "NESTNET_ARM_CA_BUNDLE": ep.ca, "NESTNET_ARM_TOKEN": "t",
           "AZURE_SUBSCRIPTION_ID": DEFAULT_SUBSCRIPTION}

    def diff(**extra):
        return subprocess.run([*NESTNET, "azure", "diff", str(path)], capture_output=True, text=True,
                              env={**env, **extra}, timeout=60)

    r = diff()
    assert r.returncode == 1 and "change(s)" in r.stdout  # drift
    answer(ep, "GET", "routeTables/", [Reply(401, arm_error("InvalidAuthenticationToken", "The access token is invalid."))])
    r = diff()
    assert r.returncode == 3 and "401 InvalidAuthenticationToken" in r.stderr  # not authorized
    r = diff(NESTNET_ARM_ENDPOINT="https://127.0.0.1:1")
    assert r.returncode == 3 and "cannot reach ARM" in r.stderr  # unreachable
    for bad in ("https://[::1", "http://127.0.0.1:1", "https://"):
        r = diff(NESTNET_ARM_ENDPOINT=bad)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (bad, r.stderr)
        assert r.stderr.startswith(f"error: NESTNET_ARM_ENDPOINT {bad!r}") and "Traceback" not in r.stderr
    r = diff(NESTNET_ARM_TIMEOUT="soon")
    assert r.returncode == 2 and "NESTNET_ARM_TIMEOUT 'soon'" in r.stderr
    reconcile(ep.client(plan), plan)
    r = diff()
    assert r.returncode == 0 and "no changes" in r.stdout


def test_route_without_a_name_in_arms_answer_is_one_line_exit_3(emulator, plan_of, tmp_path):
    """Exit 3, not 1: nestnet could not read Azure's state, so it cannot say whether anything
    differs (it is not drift) and writes nothing - as for an unreachable endpoint."""
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    reconcile(ep.client(plan), plan)
    path = write_spec(tmp_path / "s.yaml", seed_spec())
    env = {**os.environ, "NESTNET_ARM_ENDPOINT": ep.url, "NESTNET_ARM_CA_BUNDLE": ep.ca, "NESTNET_ARM_TOKEN": "t",
           "AZURE_SUBSCRIPTION_ID": DEFAULT_SUBSCRIPTION}
    table_path = f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/{plan.azure.resource_group}/providers/Microsoft.Network/routeTables/{plan.azure.route_table}"
    table = arm_get(ep, table_path)
    table["properties"]["routes"][0]["name"] = None
    before = ep.stats()
    for cmd in ("diff", "apply"):
        answer(ep, "GET", "routeTables/", [Reply(200, table)])
        r = subprocess.run([*NESTNET, "azure", cmd, str(path)], capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 3, r.stderr
        assert r.stderr.count("\n") == 1 and "routes[0] without a name" in r.stderr and "Traceback" not in r.stderr
    assert delta(before, ep.stats())["writes"] == 0


def test_cloud_settings_reach_credential_and_client(monkeypatch):
    s = ArmSettings.from_env("rg", "sub", {}, cloud="usgov")
    assert s.endpoint == "https://management.usgovcloudapi.net" and s.authority_host == "login.microsoftonline.us"
    s = ArmSettings.from_env("rg", "sub", {}, cloud="china")
    assert s.endpoint == "https://management.chinacloudapi.cn" and s.authority_host == "login.chinacloudapi.cn"
    s = ArmSettings.from_env("rg", "sub", {})
    assert s.endpoint == "https://management.azure.com" and s.authority_host is None
    s = ArmSettings.from_env("rg", "sub", {}, arm_endpoint="https://arm.stack.local/", authority_host="login.stack.local")
    assert s.endpoint == "https://arm.stack.local" and s.authority_host == "login.stack.local"
    # The environment's endpoint wins over the spec's (tests, the lab).
    s = ArmSettings.from_env("rg", "sub", {"NESTNET_ARM_ENDPOINT": "https://e.test"}, cloud="usgov")
    assert s.endpoint == "https://e.test"
    with pytest.raises(UsageError, match="azure.arm_endpoint 'http://x': must be an https"):
        ArmSettings.from_env("rg", "sub", {}, arm_endpoint="http://x")
    with pytest.raises(UsageError, match="azure.cloud 'mars'"):
        ArmSettings.from_env("rg", "sub", {}, cloud="mars")

    # Both the credential and the client use the cloud: DefaultAzureCredential(authority=...),
    # base_url and the token scope of that cloud's ARM.
    import azure.identity

    made = []

    class Recording(azure.identity.DefaultAzureCredential):
        def __init__(self, **kwargs):
            made.append(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", Recording)
    client = ArmClient(ArmSettings.from_env("rg", "sub", {}, cloud="usgov")).sdk
    assert made == [{"authority": "login.microsoftonline.us"}]
    assert client._config.credential_scopes == ["https://management.usgovcloudapi.net/.default"]
    # (where the client keeps its endpoint differs between SDK releases)
    assert (getattr(client._config, "base_url", None) or client._client._base_url) == "https://management.usgovcloudapi.net"


def test_cloud_from_the_spec(plan_of):
    spec = seed_spec()
    spec["azure"]["cloud"] = "china"
    s = settings_for(plan_of(spec), env={"AZURE_SUBSCRIPTION_ID": DEFAULT_SUBSCRIPTION})
    assert s.endpoint == "https://management.chinacloudapi.cn" and s.authority_host == "login.chinacloudapi.cn"


# -- reality checks before any write ------------------------------------------------------------------

def test_changed_nic_address_is_refused_before_any_write(emulator, plan_of, tmp_path):
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    reconcile(ep.client(plan), plan)
    ep.readdress_nic(plan, NIC2, "10.0.1.99")
    path = write_spec(tmp_path / "s.yaml", seed_spec())
    env = {**os.environ, "NESTNET_ARM_ENDPOINT": ep.url, "NESTNET_ARM_CA_BUNDLE": ep.ca, "NESTNET_ARM_TOKEN": "t",
           "AZURE_SUBSCRIPTION_ID": DEFAULT_SUBSCRIPTION}
    before = ep.stats()
    for cmd in ("diff", "apply"):
        r = subprocess.run([*NESTNET, "azure", cmd, str(path)], capture_output=True, text=True, env=env, timeout=60)
        # diff reports it (not "no changes"), apply refuses it; both name both values.
        assert r.returncode == 2, r.stdout + r.stderr
        assert "no changes" not in r.stdout
        assert "10.0.1.11 in the spec" in r.stderr or "has ip 10.0.1.11" in r.stderr
        assert "primary address 10.0.1.99" in r.stderr and NIC2 in r.stderr
    assert delta(before, ep.stats())["writes"] == 0


def test_vnet_address_space_and_region_mismatch_are_refused_before_any_write(emulator, plan_of):
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    client = ep.client(plan)
    before = ep.stats()
    spec = seed_spec()
    spec["azure"]["address_space"] = ["10.0.0.0/16", "10.9.0.0/16"]
    with pytest.raises(UsageError, match=r"address_space is 10.0.0.0/16, 10.9.0.0/16 but virtual network 'vme-vnet' has 10.0.0.0/16"):
        reconcile(client, plan_of(spec, name="space.yaml"))
    spec = seed_spec()
    spec["azure"]["location"] = "westeurope"
    with pytest.raises(UsageError, match="azure.location is 'westeurope' but virtual network 'vme-vnet' is in 'eastus'"):
        reconcile(client, plan_of(spec, name="loc.yaml"))
    assert delta(before, ep.stats())["writes"] == 0


# -- the emulator's own injections (nestnet azure emulator --inject KIND:RATE) -------------------------

@pytest.mark.parametrize("kind", ["429", "409", "canceled", "writer"])
def test_apply_converges_under_each_injected_answer(emulator, plan_of, kind):
    spec = fabric_spec(6)
    plan = plan_of(spec)
    ep = emulator(plan, inject={kind: 0.35}, retry_after="0.01", rng_seed=3)
    client = fast(ep, plan, timeout=120)
    changes, outcome = reconcile(client, plan)
    assert changes
    stats = ep.stats()
    done = sum(v for k, v in stats.items() if k.startswith("writer_")) if kind == "writer" else stats[f"injected_{kind}"]
    assert done >= 1, stats  # the injection did meet nestnet's requests
    # Converged: nothing left to do, and what the other writer added is still there.
    assert plan_changes(client, plan)[2] == []
    routes, subnets, nics = read_back(ep, plan)
    assert {r.name for r in plan.azure.routes} <= set(routes)
    assert all(s["routeTable"]["id"].endswith("/rt") for s in subnets.values())
    assert all(n["properties"]["enableIPForwarding"] for n in nics.values())
    if kind == "writer":
        assert any(not r.startswith(plan.azure.route_prefix) for r in routes) or any(
            s.get("serviceEndpoints") for s in subnets.values()) or any(n.get("tags") for n in nics.values())
