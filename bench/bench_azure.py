"""Azure reconcile cost against the emulated ARM endpoint (real SDK, real HTTPS, in-process server).

Prints, at 4 and 61 hosts: requests/reads/writes and time to create everything, to add one
host, and for a no-op run; the per-route reference (one route PUT per host, as the seed's
`az network route-table route create` loop does) with the ratio; and convergence under 30%
injected 429s. Run: .venv/bin/python bench/bench_azure.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import yaml

from nestnet.clouds.azure.arm import ArmClient, ArmSettings
from nestnet.clouds.azure.emulator import DEFAULT_SUBSCRIPTION, Arm, Emulator
from nestnet.clouds.azure.reconcile import plan_changes, reconcile
from nestnet.plan import load_plan


def spec(n: int) -> dict:
    return {
        "version": 1,
        "name": "bench",
        "azure": {"resource_group": "rg", "location": "westeurope", "vnet": "vnet",
                  "address_space": ["10.0.0.0/8"], "route_table": "rt", "max_routes": 400},
        "subnets": [{"name": "hosts", "prefix": "10.0.0.0/16"}, {"name": "mgmt", "prefix": "10.2.0.0/24"}],
        "nested": {"pool": "10.1.0.0/16", "block_prefix_len": 28},
        "hosts": [{"name": f"h{i}", "ip": f"10.0.{i // 250}.{i % 250 + 4}", "nic": f"h{i}-nic"} for i in range(n)],
    }


def plan_for(d: Path, n: int):
    p = d / "spec.yaml"
    p.write_text(yaml.safe_dump(spec(n), sort_keys=False))
    return load_plan(p)


class Run:
    def __init__(self, d: Path, plan, **kw):
        self.arm = Arm(d, **kw)
        self.arm.seed(plan)
        self.em = Emulator(self.arm).start()
        self.client = ArmClient(ArmSettings(self.em.url, DEFAULT_SUBSCRIPTION, "rg", str(self.em.ca_pem), "bench"))

    def measure(self, fn):
        before = self.arm.stats.to_dict()
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        after = self.arm.stats.to_dict()
        return {k: after[k] - before[k] for k in after}, dt


def fmt(label: str, st: dict, dt: float) -> str:
    return (f"  {label:<28} requests {st['requests']:>4}  reads {st['reads']:>4}  writes {st['writes']:>3}"
            f"  throttled {st['throttled']:>3}  {dt * 1000:7.0f} ms")


def main() -> None:
    for n in (4, 61):
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            small = plan_for(d, n - 1)
            r = Run(d, small)
            r.client.sdk  # import the SDK outside the timings
            print(f"{n} hosts:")
            st, dt = r.measure(lambda: reconcile(r.client, small))
            print(fmt(f"create ({n - 1} hosts)", st, dt))
            full = plan_for(d, n)
            r.arm.seed(full)
            st, dt = r.measure(lambda: reconcile(r.client, full))
            print(fmt("add one host", st, dt))
            st, dt = r.measure(lambda: reconcile(r.client, full))
            print(fmt("no-op run", st, dt))
            r.em.stop()
        with tempfile.TemporaryDirectory() as tmp:
            # Reference: the same routes written one PUT per route into an existing table.
            d = Path(tmp)
            full = plan_for(d, n)
            r = Run(d, full)
            sdk = r.client.sdk
            sdk.route_tables.begin_create_or_update("rg", "rt", {"location": "westeurope", "properties": {}}).result()

            def per_route():
                for route in full.azure.routes:
                    sdk.routes.begin_create_or_update("rg", "rt", route.name, {"properties": {
                        "addressPrefix": str(route.address_prefix), "nextHopType": "VirtualAppliance",
                        "nextHopIpAddress": str(route.next_hop_ip)}}).result()

            ref, ref_dt = r.measure(per_route)
            r.em.stop()
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            full = plan_for(d, n)
            r = Run(d, full)
            r.client.sdk
            one, one_dt = r.measure(lambda: r.client.put_route_table("rt", {"location": "westeurope", "properties": {
                "routes": [{"name": x.name, "properties": {"addressPrefix": str(x.address_prefix),
                            "nextHopType": "VirtualAppliance", "nextHopIpAddress": str(x.next_hop_ip)}}
                           for x in full.azure.routes]}}, None))
            print(fmt("routes: one table PUT", one, one_dt))
            print(fmt("routes: per-route PUTs (ref)", ref, ref_dt))
            print(f"  per-route / one-PUT: writes x{ref['writes'] / one['writes']:.0f}, time x{ref_dt / one_dt:.1f}")
            r.em.stop()
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            full = plan_for(d, n)
            r = Run(d, full, inject_429=0.3, retry_after="0.01")
            r.client.sdk
            st, dt = r.measure(lambda: reconcile(r.client, full))
            left = plan_changes(r.client, full)[2]
            print(fmt("create under 30% 429s", st, dt) + f"  converged: {not left}")
            r.em.stop()


if __name__ == "__main__":
    main()
