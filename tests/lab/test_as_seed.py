"""`lab up --as-seed`: the fabric as the seed's manual procedure leaves it is green and holds
nothing of nestnet's; nestnet refuses it without --adopt and takes it over with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestnet import host, lab
from nestnet.errors import HostError
from nestnet.lab.core import host_dirs
from nestnet.lab.topology import Topology
from nestnet.netns import run_in, sh
from nestnet.plan import ROUTE_PROTO

from .conftest import plan_of, red, seed

pytestmark = pytest.mark.root


def test_hand_built_fabric_is_green_foreign_and_adoptable(tmp_path):
    plan = plan_of(tmp_path, seed())
    lab.up(plan, as_seed=True)
    try:
        assert red(plan) == set()
        topo = Topology.from_plan(plan)
        ns = topo.ns("hosta")
        routes = sh(ns, "ip", "-N", "route", "show").stdout
        lines = {" ".join(ln.split()) for ln in routes.splitlines()}
        # plain `ip route add`: proto boot, which ip does not print
        assert "10.0.1.48/28 via 10.0.1.11 dev eth1" in lines and "10.0.1.16/28 dev nestbr0 scope 253" in lines
        assert f"proto {ROUTE_PROTO}" not in routes
        assert "nestnet" not in sh(ns, "nft", "list", "tables").stdout
        root = host_dirs(plan, "hosta")[0]
        assert not (Path(root) / "etc/sysctl.d/60-nestnet.conf").exists() and (Path(root) / "etc/sysctl.conf").exists()
        with pytest.raises(HostError, match="run with --adopt"):
            run_in(ns, host.diff, plan, "hosta", root)
        changes = run_in(ns, host.apply, plan, "hosta", root, adopt=True)
        assert {c.key for c in changes if c.kind == "route"} == {"10.0.1.48/28", "10.0.1.16/28"}
        assert red(plan) == set()
        assert run_in(ns, host.apply, plan, "hosta", root) == []
    finally:
        lab.down(plan)
