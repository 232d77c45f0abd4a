"""What the emulator answers when other writers and ARM's limits get in the way (--inject), and its
preconditions: real HTTPS, the plain SDK where it would see the answer, raw requests where the
answer's exact shape matters. Sources: docs/decisions/0009-arm-emulator-fidelity.md."""

from __future__ import annotations

import subprocess
import sys

import pytest
from azure.core.exceptions import HttpResponseError

from azure_helpers import seed_spec
from emulator_http import arm_path, request

RT = "routeTables/rt"


def _table(ep, plan, routes=()):
    body = {"location": "eastus", "properties": {"routes": [
        {"name": n, "properties": {"addressPrefix": p, "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.0.1.10"}}
        for n, p in routes]}}
    status, _, out = request(ep, "PUT", arm_path(plan, RT), body)
    assert status == 201, out
    return out


def _inject(ep, **rates):
    status, _, out = request(ep, "POST", "/_emulator/inject", {"rates": {k.lstrip("_"): v for k, v in rates.items()}},
                             query="")
    assert status == 200, out
    return out


def test_429_carries_retry_after_and_the_rate_limit_headers(emulator, plan_of):
    plan = plan_of(seed_spec())
    ep = emulator(plan, inject={"429": 1.0}, retry_after="7")
    status, headers, body = request(ep, "GET", arm_path(plan, "virtualNetworks", plan.azure.vnet))
    assert status == 429
    assert headers["retry-after"] == "7"
    assert headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"
    assert body["error"]["code"] == "SubscriptionRequestsThrottled"
    assert "try again after '7' seconds" in body["error"]["message"]
    status, headers, body = request(ep, "PUT", arm_path(plan, RT), {"location": "eastus"})
    assert status == 429 and headers["x-ms-ratelimit-remaining-subscription-writes"] == "0"
    assert body["error"]["code"] in ("SubscriptionRequestsThrottled", "RetryableErrorDueToAnotherOperation")
    assert ep.stats()["injected_429"] == 2
    # Without Retry-After (ARM's own clients must then back off by themselves).
    _inject(ep, _429=1.0)
    request(ep, "POST", "/_emulator/inject", {"rates": {}, "retry_after": None}, query="")
    status, headers, _ = request(ep, "GET", arm_path(plan, "virtualNetworks", plan.azure.vnet))
    assert status == 429 and "retry-after" not in headers
    # Unthrottled answers report what is left of the token buckets.
    _inject(ep, _429=0.0)
    _, h1, _ = request(ep, "GET", arm_path(plan, "virtualNetworks", plan.azure.vnet))
    assert 0 < int(h1["x-ms-ratelimit-remaining-subscription-reads"]) < 250


def test_rate_limit_buckets_drain_and_refill_as_documented():
    from nestnet.clouds.azure.emulator import Injector

    now = [0.0]
    inj = Injector(clock=lambda: now[0])
    left = [int(inj.remaining("writes")["x-ms-ratelimit-remaining-subscription-writes"]) for _ in range(200)]
    assert left[0] == 199 and left[-1] == 0 and left == sorted(left, reverse=True)
    now[0] += 1.0  # writes refill 10 a second
    assert inj.remaining("writes") == {"x-ms-ratelimit-remaining-subscription-writes": "9"}
    assert inj.remaining("reads") == {"x-ms-ratelimit-remaining-subscription-reads": "249"}
    now[0] += 100.0  # never above the bucket's size
    assert inj.remaining("writes") == {"x-ms-ratelimit-remaining-subscription-writes": "199"}


def test_409_another_operation_in_progress_applies_nothing(emulator, plan_of):
    plan = plan_of(seed_spec())
    ep = emulator(plan, inject={"409": 1.0})
    sdk = ep.sdk(plan)
    rg = plan.azure.resource_group
    with pytest.raises(HttpResponseError) as exc:
        sdk.route_tables.begin_create_or_update(rg, "rt", {"location": "eastus"}).result()
    assert exc.value.status_code == 409 and exc.value.error.code == "AnotherOperationInProgress"
    assert "To retrieve status of the operation use uri: https://" in exc.value.error.message
    _inject(ep, _409=0.0)
    with pytest.raises(HttpResponseError) as exc:
        sdk.route_tables.get(rg, "rt")
    assert exc.value.status_code == 404  # the refused write left nothing behind
    assert ep.stats()["injected_409"] == 1 and ep.stats()["conflicts"] == 1


def test_canceled_operation_applies_nothing(emulator, plan_of):
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    sdk = ep.sdk(plan)
    rg = plan.azure.resource_group
    t1 = _table(ep, plan, [("a", "10.0.1.16/28")])
    _inject(ep, canceled=1.0)
    seen = set()
    for _ in range(6):  # both forms: plain Canceled and CanceledAndSupersededDueToAnotherOperation
        with pytest.raises(HttpResponseError) as exc:
            sdk.route_tables.begin_create_or_update(rg, "rt", {"location": "eastus", "properties": {"routes": []}}).result()
        text = str(exc.value)
        assert "Canceled" in text
        seen.add("CanceledAndSupersededDueToAnotherOperation" in text)
    assert seen == {True, False}
    _inject(ep, canceled=0.0)
    t = sdk.route_tables.get(rg, "rt")
    assert t.etag == t1["etag"] and [r.name for r in t.properties.routes] == ["a"]  # nothing applied
    assert ep.stats()["injected_canceled"] == 6


def test_operation_status_body_of_a_canceled_write(emulator, plan_of):
    plan = plan_of(seed_spec())
    ep = emulator(plan, inject={"canceled": 1.0}, rng_seed=1)
    status, headers, body = request(ep, "PUT", arm_path(plan, RT), {"location": "eastus"})
    assert status == 201 and body["properties"]["provisioningState"] == "Updating"
    op = headers["azure-asyncoperation"].split(ep.url, 1)[1]
    status, _, doc = request(ep, "GET", op, query="")
    assert status == 200 and doc["status"] == "Canceled"
    assert doc["error"]["code"] == "Canceled" and doc["error"]["message"] == "Operation was canceled."
    status, _, _ = request(ep, "GET", arm_path(plan, RT))
    assert status == 404


def test_other_writer_between_read_and_write(emulator, plan_of):
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    sdk = ep.sdk(plan)
    az = plan.azure
    t = _table(ep, plan, [("nestnet-a", "10.0.1.16/28")])
    vnet = sdk.virtual_networks.get(az.resource_group, az.vnet).as_dict()
    nic = sdk.network_interfaces.get(az.resource_group, "vme-kvm-vm1-vm-nic").as_dict()
    _inject(ep, writer=1.0)

    # Route table: a foreign route appears, the etag moves, If-Match answers 412 as documented.
    status, _, body = request(ep, "PUT", arm_path(plan, RT), {"location": "eastus", "properties": {"routes": []}},
                              {"If-Match": t["etag"]})
    assert status == 412 and body["error"]["code"] == "PreconditionFailed"
    detail = body["error"]["details"][0]
    assert detail["code"] == "PreconditionFailedEtagMismatch"
    assert detail["message"].startswith(f"Etag provided in if-match header {t['etag']} does not match etag ")

    # Subnet: a service endpoint appears on it; its etag (the VNet's) moves; If-Match is honoured.
    sub = next(s for s in vnet["properties"]["subnets"] if s["name"] == "vm-subnet")
    with pytest.raises(HttpResponseError) as exc:
        sdk.subnets.begin_create_or_update(az.resource_group, az.vnet, "vm-subnet", sub,
                                           headers={"If-Match": sub["etag"]}).result()
    assert exc.value.status_code == 412

    # NIC: a tag changes.
    with pytest.raises(HttpResponseError) as exc:
        sdk.network_interfaces.begin_create_or_update(az.resource_group, "vme-kvm-vm1-vm-nic", nic,
                                                      headers={"If-Match": nic["etag"]}).result()
    assert exc.value.status_code == 412

    _inject(ep, writer=0.0)
    table = sdk.route_tables.get(az.resource_group, "rt")
    assert sorted(r.name for r in table.properties.routes) == ["nestnet-a", "other-writer-1"]
    assert all(r.etag == table.etag for r in table.properties.routes)
    got = sdk.subnets.get(az.resource_group, az.vnet, "vm-subnet")
    assert [e.service for e in got.properties.service_endpoints] == ["Microsoft.Storage"]
    assert sdk.network_interfaces.get(az.resource_group, "vme-kvm-vm1-vm-nic").tags == {"other-writer": "1"}
    stats = ep.stats()
    assert (stats["writer_foreign_route"], stats["writer_service_endpoint"], stats["writer_nic_tag"]) == (1, 1, 1)
    assert stats["precondition_failed"] == 3


def test_subnet_without_if_match_overwrites_the_other_writer(emulator, plan_of):
    """What ARM does to a stale subnet body sent without If-Match: the other writer's change is lost."""
    plan = plan_of(seed_spec())
    ep = emulator(plan, inject={"writer": 1.0})
    sdk = ep.sdk(plan)
    az = plan.azure
    sub = sdk.subnets.get(az.resource_group, az.vnet, "mgmt-subnet").as_dict()
    sdk.subnets.begin_create_or_update(az.resource_group, az.vnet, "mgmt-subnet", sub).result()
    assert ep.stats()["writer_service_endpoint"] == 1
    _inject(ep, writer=0.0)
    assert not sdk.subnets.get(az.resource_group, az.vnet, "mgmt-subnet").properties.service_endpoints


def test_subnets_carry_the_vnet_etag_and_if_match_is_honoured(emulator, plan_of):
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    sdk = ep.sdk(plan)
    az = plan.azure
    vnet = sdk.virtual_networks.get(az.resource_group, az.vnet)
    assert {s.etag for s in vnet.properties.subnets} == {vnet.etag}
    a = sdk.subnets.get(az.resource_group, az.vnet, "vm-subnet").as_dict()
    b = sdk.subnets.get(az.resource_group, az.vnet, "mgmt-subnet").as_dict()
    sdk.subnets.begin_create_or_update(az.resource_group, az.vnet, "vm-subnet", a, headers={"If-Match": a["etag"]}).result()
    # Writing subnet A moved subnet B's etag too: B's stale If-Match is refused, a fresh one passes.
    with pytest.raises(HttpResponseError) as exc:
        sdk.subnets.begin_create_or_update(az.resource_group, az.vnet, "mgmt-subnet", b, headers={"If-Match": b["etag"]})
    assert exc.value.status_code == 412
    fresh = sdk.subnets.get(az.resource_group, az.vnet, "mgmt-subnet").as_dict()
    assert fresh["etag"] != b["etag"]
    sdk.subnets.begin_create_or_update(az.resource_group, az.vnet, "mgmt-subnet", fresh,
                                       headers={"If-Match": fresh["etag"]}).result()


def test_injections_are_reproducible_with_a_seed(emulator, plan_of):
    plan = plan_of(seed_spec())

    def run(seed):
        ep = emulator(plan, inject={"429": 0.3, "409": 0.3}, rng_seed=seed)
        return [request(ep, "PUT", arm_path(plan, RT), {"location": "eastus"})[0] for _ in range(20)]

    first, again, other = run(5), run(5), run(6)
    assert first == again and first != other
    assert {429, 409} <= set(first)


def test_cli_takes_repeated_injections_and_refuses_bad_ones(tmp_path):
    nestnet = [sys.executable, "-m", "nestnet", "azure", "emulator", "--state-dir", str(tmp_path / "s"),
               "--listen", "127.0.0.1:0"]
    r = subprocess.run([*nestnet, "--inject", "409:0.5", "--inject", "teapot:0.1"], capture_output=True, text=True)
    assert r.returncode == 2 and "--inject 'teapot:0.1'" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([*nestnet, "--inject", "writer:1.5"], capture_output=True, text=True)
    assert r.returncode == 2 and "0 <= RATE <= 1" in r.stderr
    assert not (tmp_path / "s").exists()  # refused before anything was created
