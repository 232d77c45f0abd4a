"""The cloud seam holds: a second cloud that exists only here plugs in through ``nestnet.clouds``,
and ``check``'s model (``from_plan`` -> ``reachability``) runs on it unchanged.

``ToyCloud`` is shaped like Google Cloud (docs/decisions/0016-cloud-seam.md): routes belong to
the whole network, so every subnet uses them (no per-subnet association); a NIC forwards when the
instance may forward (``canIpForward``); each subnet keeps its first two and last two addresses.
Its API is a dict in memory that fails the way an API would (an unknown NIC is an error).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Mapping

import pytest

from nestnet import clouds as cloud
from nestnet.model import from_plan, reachability
from nestnet.model.state import CloudState, NicState, SubnetState, UserRoute, endpoint_nic

from .conftest import base


@dataclass
class ToyApi:
    routes: dict[str, tuple[IPv4Network, IPv4Address]] = field(default_factory=dict)  # name -> (prefix, next hop)
    forwarding: dict[str, bool] = field(default_factory=dict)  # instance NIC -> canIpForward

    def set_forwarding(self, nic: str, on: bool) -> None:
        if nic not in self.forwarding:
            raise LookupError(f"no NIC {nic!r}")  # as an API answers 404
        self.forwarding[nic] = on


class ToyCloud:
    name = "toycloud"
    export_formats = ("text",)

    # --- plan: the toy's routes and forwarding are the ones Azure's part of the plan names
    def plan(self, *parts: Any) -> Any:
        return cloud.get("azure").plan(*parts)

    # --- the model's rules (the toy's differences are in its CloudState) and the lab
    def rules(self) -> type:
        return cloud.get("azure").rules()

    def lab_fabric(self) -> Any:
        raise NotImplementedError("the toy cloud has no lab")

    def fault_kinds(self) -> Mapping[str, Any]:
        return {}  # the host kinds only

    # --- control plane
    def client(self, plan: Any, env: Mapping[str, str] | None = None) -> ToyApi:
        return ToyApi(forwarding={h.nic: False for h in plan.hosts.values()})

    def desired(self, plan: Any) -> dict[str, Any]:
        return {
            "routes": {r.name: (r.address_prefix, r.next_hop_ip) for r in plan.azure.routes},
            "forwarding": {n: True for n in plan.azure.nic_ip_forwarding},
        }

    def read(self, client: ToyApi, desired: Any) -> dict[str, Any]:
        return {"routes": dict(client.routes), "forwarding": dict(client.forwarding)}

    def diff(self, client: ToyApi, desired: Any, observed: Any, **options: Any) -> list[tuple]:
        out: list[tuple] = [("route", n, v) for n, v in desired["routes"].items() if observed["routes"].get(n) != v]
        out += [("forwarding", n, True) for n in desired["forwarding"] if not observed["forwarding"].get(n)]
        return out

    def apply(self, client: ToyApi, desired: Any, observed: Any, changes: list[tuple], **options: Any) -> int:
        for kind, name, value in changes:
            if kind == "route":
                client.routes[name] = value
            else:
                client.set_forwarding(name, value)
        return len(changes)

    def export(self, plan: Any, fmt: str) -> str:
        return "".join(f"route {n} {p} via {hop}\n" for n, (p, hop) in self.desired(plan)["routes"].items())

    # --- data plane
    def reserved(self, prefix: IPv4Network) -> tuple[IPv4Address, ...]:
        first, last = int(prefix.network_address), int(prefix.broadcast_address)
        return tuple(IPv4Address(a) for a in (first, first + 1, last - 1, last))

    def _state(self, plan: Any, routes: Mapping[str, tuple], forwarding: Mapping[str, bool]) -> CloudState:
        nics = {h.nic: NicState(h.nic, h.subnet, h.name, frozenset({h.ip}), forwarding.get(h.nic, False))
                for h in plan.hosts.values()}
        nics |= {endpoint_nic(e.name): NicState(endpoint_nic(e.name), e.subnet, e.name, frozenset({e.ip}), False)
                 for e in plan.endpoints.values()}
        return CloudState(
            address_space=plan.address_space,
            route_table="network routes",
            # routes are the network's: every subnet uses them
            subnets={s.name: SubnetState(s.name, s.prefix, s.gateway, True, self.reserved(s.prefix))
                     for s in plan.subnets.values()},
            user_routes=tuple(UserRoute(n, p, hop) for n, (p, hop) in routes.items()),
            nics=nics,
        )

    def planned_state(self, plan: Any) -> CloudState:
        want = self.desired(plan)
        return self._state(plan, want["routes"], want["forwarding"])

    def observed_state(self, plan: Any, client: ToyApi) -> CloudState:
        return self._state(plan, client.routes, client.forwarding)


@pytest.fixture
def toy():
    c = cloud.register(ToyCloud())
    yield c
    cloud._CLOUDS.pop(c.name, None)


def _failed(state) -> set[tuple[str, str]]:
    return {(p.src, p.dst) for p in reachability(state).pairs()}


def test_the_second_cloud_is_a_cloud_and_is_found_by_name(toy):
    assert isinstance(toy, cloud.Cloud) and isinstance(cloud.get(), cloud.Cloud)
    assert cloud.get("toycloud") is toy and "toycloud" in cloud.names()


def test_checks_model_runs_on_the_second_cloud(toy, make_plan):
    spec = base()
    spec["subnets"][1]["route_table"] = False  # in Azure: mgmt's replies to nested VMs never come back
    plan = make_plan(spec)
    on_azure, on_toy = from_plan(plan), from_plan(plan, cloud="toycloud")
    assert ("mgmt", "v1") in _failed(on_azure)  # Azure routes per subnet
    assert reachability(on_toy).all_ok  # the toy's routes are the network's: every subnet has them
    off = replace(on_toy, cloud=replace(on_toy.azure, nics={
        k: replace(n, ip_forwarding=False) if n.owner == "h2" else n for k, n in on_toy.azure.nics.items()}))
    assert ("v1", "v2") in _failed(off) and ("h1", "h2") not in _failed(off)


def test_the_model_respects_the_second_clouds_reserved_addresses(toy, make_plan):
    spec = base()
    spec["endpoints"][0]["ip"] = "10.0.2.254"  # Azure delivers it; the toy keeps the last two addresses
    plan = make_plan(spec)
    assert reachability(from_plan(plan)).all_ok
    failed = _failed(from_plan(plan, cloud="toycloud"))
    assert ("v1", "mgmt") in failed and ("h1", "mgmt") in failed and ("v1", "v2") not in failed


def test_control_plane_through_the_seam_converges_and_the_model_reads_the_result(toy, make_plan):
    plan = make_plan(base())
    c = cloud.get("toycloud")
    api = c.client(plan)
    want = c.desired(plan)
    first = c.diff(api, want, c.read(api, want))
    assert first and not reachability(from_observed := replace(from_plan(plan, cloud="toycloud"),
                                                               cloud=c.observed_state(plan, api))).all_ok
    assert ("v1", "v2") in _failed(from_observed)
    assert c.apply(api, want, c.read(api, want), first) == len(first)
    assert c.diff(api, want, c.read(api, want)) == []  # a second run changes nothing
    assert c.observed_state(plan, api) == c.planned_state(plan)
    assert reachability(replace(from_plan(plan, cloud="toycloud"), cloud=c.observed_state(plan, api))).all_ok
    assert "10.0.1.16/28 via 10.0.1.10" in c.export(plan, "text")
