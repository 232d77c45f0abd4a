"""nic-prefix mode (Azure's "Prefix on NIC", docs/decisions/0028): each host's /28 block as one ip
configuration of its NIC with ``privateIPAddressPrefixLength: 28``, through the real
azure-mgmt-network SDK against the emulated ARM endpoint over HTTPS; the emulator refusing what
the service refuses; the exports."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace

import hcl2
import pytest
from azure.core.exceptions import HttpResponseError

from azure_helpers import fake_az, seed_spec, write_between
from nestnet.clouds.azure.diff import desired
from nestnet.clouds.azure.export import az_script, terraform, write_export
from nestnet.clouds.azure.reconcile import apply, plan_changes, reconcile
from nestnet.errors import AzureError
from test_export import check_golden, hcl_value
from test_secondary_ip import NIC1, NIC2, PRIMARY1, add_foreign, delta, secondary

BLOCK1, BLOCK2 = "10.0.1.16/28", "10.0.1.48/28"


def prefix_spec() -> dict:
    spec = seed_spec()
    spec["nested"]["mode"] = "nic-prefix"
    return spec


def prefixes(ep, plan, nic):
    """name -> (address as ARM answers it, prefix length, primary, allocation) of each ip configuration."""
    n = ep.sdk(plan).network_interfaces.get(plan.azure.resource_group, nic).json
    return {c["name"]: (c["properties"]["privateIPAddress"], c["properties"].get("privateIPAddressPrefixLength"),
                        c["properties"]["primary"], c["properties"]["privateIPAllocationMethod"])
            for c in n["properties"]["ipConfigurations"]}


def prefix(block):
    return (block, 28, False, "Static")


def add_raw(ep, plan, nic, *props):
    """Someone else adds ip configurations with the given properties (subnet: the primary's)."""
    sdk = ep.sdk(plan)
    rg = plan.azure.resource_group
    body = sdk.network_interfaces.get(rg, nic).json
    subnet = body["properties"]["ipConfigurations"][0]["properties"]["subnet"]
    for name, p in props:
        body["properties"]["ipConfigurations"].append({"name": name, "properties": {"subnet": subnet, **p}})
    return sdk.network_interfaces.begin_create_or_update(rg, nic, body).result()


def test_plan_has_one_prefix_per_host_and_no_route_table(plan_of):
    plan = plan_of(prefix_spec())
    assert [(x.nic, x.name, str(x.prefix)) for x in plan.azure.nic_prefixes] == [
        (NIC1, "nestnet-vme-kvm-vm1", BLOCK1), (NIC2, "nestnet-vme-kvm-vm2", BLOCK2)]
    assert plan.azure.routes == () and plan.azure.nic_ip_forwarding == () and plan.azure.secondary_ips == ()
    want = desired(plan)
    assert [w.address for w in want.secondary] == [BLOCK1, BLOCK2]
    # the seed names a route table: nic-prefix mode only ever drops nestnet's routes from it
    assert want.table == plan.azure.route_table and want.table_leaving and want.routes == ()
    assert want.subnets == () and want.unassociated == () and want.nics == ()


def test_create_from_nothing_then_second_run_changes_nothing(emulator, plan_of):
    plan = plan_of(prefix_spec())
    ep = emulator(plan)
    client = ep.client(plan)
    before = ep.stats()
    changes, outcome = reconcile(client, plan)
    assert [str(c) for c in changes] == [f"add ip config nestnet-vme-kvm-vm1 on {NIC1}: {BLOCK1}",
                                         f"add ip config nestnet-vme-kvm-vm2 on {NIC2}: {BLOCK2}"]
    assert outcome.writes == 2 and delta(before, ep.stats())["writes"] == 2  # one NIC PUT per host
    assert prefixes(ep, plan, NIC1) == {"ipconfig1": ("10.0.1.10", None, True, "Static"),
                                        "nestnet-vme-kvm-vm1": prefix(BLOCK1)}
    assert prefixes(ep, plan, NIC2)["nestnet-vme-kvm-vm2"] == prefix(BLOCK2)
    sdk = ep.sdk(plan)
    assert list(sdk.route_tables.list(plan.azure.resource_group)) == []
    assert not any(n.properties.enable_ip_forwarding for n in sdk.network_interfaces.list(plan.azure.resource_group))
    before = ep.stats()
    changes, outcome = reconcile(client, plan)
    assert changes == [] and outcome.writes == 0 and delta(before, ep.stats())["writes"] == 0


def test_foreign_configurations_are_kept_and_stale_owned_ones_removed(emulator, plan_of):
    plan = plan_of(prefix_spec())
    ep = emulator(plan)
    client = ep.client(plan)
    reconcile(client, plan)
    # someone else's single address and their own prefix; a stale nestnet configuration
    add_raw(ep, plan, NIC1, ("app-extra", {"privateIPAddress": "10.0.1.200", "privateIPAllocationMethod": "Static"}),
            ("app-prefix", {"privateIPAddressPrefixLength": 28, "privateIPAllocationMethod": "Dynamic"}),
            ("nestnet-gone", {"privateIPAddress": "10.0.1.201", "privateIPAllocationMethod": "Static"}))
    app_prefix = prefixes(ep, plan, NIC1)["app-prefix"]
    assert app_prefix[1] == 28 and app_prefix[3] == "Dynamic"  # the lowest free aligned /28, as in Azure's example
    before = ep.stats()
    changes, outcome = reconcile(client, plan)
    assert [(c.action, c.name, c.nic) for c in changes] == [("delete", "nestnet-gone", NIC1)]
    d = delta(before, ep.stats())
    assert outcome.writes == 1 and d["writes"] == 1
    assert prefixes(ep, plan, NIC1) == {"ipconfig1": ("10.0.1.10", None, True, "Static"),
                                        "nestnet-vme-kvm-vm1": prefix(BLOCK1),
                                        "app-extra": ("10.0.1.200", None, False, "Static"), "app-prefix": app_prefix}
    assert reconcile(client, plan)[0] == []


def test_nic_change_between_get_and_put_412_rereads_and_keeps_the_other_writer(emulator, plan_of):
    """The prefix is written with If-Match like every NIC write: another writer landing between
    nestnet's GET and PUT makes ARM answer 412, nestnet reads again and keeps the other's change."""
    plan = plan_of(prefix_spec())
    ep = emulator(plan)
    client = ep.client(plan)
    want, obs, changes = plan_changes(client, plan)
    ran = write_between(ep, "PUT", f"networkInterfaces/{NIC1}",
                        lambda: add_foreign(ep, plan, NIC1, ("someone-else", "10.0.1.99")))
    before = ep.stats()
    outcome = apply(client, want, obs, changes)
    assert ran == [1] and outcome.retries_412 == 1 and delta(before, ep.stats())["precondition_failed"] == 1
    assert prefixes(ep, plan, NIC1) == {"ipconfig1": ("10.0.1.10", None, True, "Static"),
                                        "someone-else": ("10.0.1.99", None, False, "Static"),
                                        "nestnet-vme-kvm-vm1": prefix(BLOCK1)}
    assert plan_changes(client, plan)[2] == []


def test_block_taken_by_a_foreign_address_is_refused_before_any_write(emulator, plan_of):
    plan = plan_of(prefix_spec())
    ep = emulator(plan)
    add_foreign(ep, plan, NIC2, ("legacy", "10.0.1.20"))  # inside vm1's block, on the other NIC
    before = ep.stats()
    with pytest.raises(AzureError) as exc:
        reconcile(ep.client(plan), plan)
    assert str(exc.value) == (
        f"refusing to change anything: {BLOCK1} (ip configuration 'nestnet-vme-kvm-vm1' on {NIC1!r}) is already "
        f"used by ip configuration 'legacy' of network interface {NIC2!r}")
    assert delta(before, ep.stats())["writes"] == 0


def test_moving_between_secondary_ip_and_nic_prefix_frees_before_it_takes(emulator, plan_of):
    """secondary-ip holds single addresses of the blocks; nic-prefix needs the whole block: the
    secondary configurations go in the same NIC PUT as the prefix arrives (ARM checks the end state)."""
    sec = seed_spec()
    sec["nested"]["mode"] = "secondary-ip"
    ep = emulator(plan_of(sec))
    client = ep.client(plan_of(sec))
    reconcile(client, plan_of(sec))
    plan = plan_of(prefix_spec())
    changes, outcome = reconcile(client, plan)
    assert sorted((c.action, c.name) for c in changes) == [
        ("add", "nestnet-vme-kvm-vm1"), ("add", "nestnet-vme-kvm-vm2"), ("delete", "nestnet-web1"),
        ("delete", "nestnet-web2")]
    assert outcome.writes == 2
    assert prefixes(ep, plan, NIC1) == {"ipconfig1": ("10.0.1.10", None, True, "Static"),
                                        "nestnet-vme-kvm-vm1": prefix(BLOCK1)}
    assert plan_changes(client, plan)[2] == []


# -- the emulator answers like ARM ---------------------------------------------------------------


def test_emulator_checks_prefixes_like_arm(emulator, plan_of):
    plan = plan_of(prefix_spec())
    ep = emulator(plan)
    reconcile(ep.client(plan), plan)

    def refused(*props):
        with pytest.raises(HttpResponseError) as exc:
            add_raw(ep, plan, NIC1, *props)
        assert exc.value.status_code == 400
        return exc.value.error.code

    static = {"privateIPAllocationMethod": "Static", "privateIPAddressPrefixLength": 28}
    assert refused(("p27", {**static, "privateIPAddress": "10.0.1.96", "privateIPAddressPrefixLength": 27})) == (
        "InvalidPrivateIPAddressPrefixLength")  # only /28 (azure-cli #30837)
    assert refused(("mid", {**static, "privateIPAddress": "10.0.1.100"})) == "InvalidRequestFormat"  # not aligned
    assert refused(("cidr", {**static, "privateIPAddress": "10.0.1.96/27"})) == "InvalidRequestFormat"
    assert refused(("over", {**static, "privateIPAddress": "10.0.1.48"})) == "PrivateIPAddressIsAllocated"  # vm2's
    assert refused(("host", {**static, "privateIPAddress": "10.0.1.0"})) == "PrivateIPAddressInReservedRange"
    assert refused(("away", {**static, "privateIPAddress": "10.0.2.16"})) == "PrivateIPAddressNotInSubnet"
    assert refused(("a", {**static, "privateIPAddress": "10.0.1.96"}),
                   ("b", {"privateIPAddress": "10.0.1.100", "privateIPAllocationMethod": "Static"})) == (
        "PrivateIPAddressIsAllocated")  # one NIC, a single address inside its own prefix
    sdk = ep.sdk(plan)
    rg = plan.azure.resource_group
    body = sdk.network_interfaces.get(rg, NIC1).json
    body["properties"]["ipConfigurations"][0]["properties"]["privateIPAddressPrefixLength"] = 28
    with pytest.raises(HttpResponseError) as exc:
        sdk.network_interfaces.begin_create_or_update(rg, NIC1, body).result()
    assert exc.value.error.code == "PrimaryIpConfigurationCannotHavePrefix"
    # A GET put back unchanged (the prefix in CIDR form, as ARM answers it) is accepted and changes nothing.
    body = sdk.network_interfaces.get(rg, NIC1).json
    assert body["properties"]["ipConfigurations"][1]["properties"]["privateIPAddress"] == BLOCK1
    sdk.network_interfaces.begin_create_or_update(rg, NIC1, body).result()
    assert prefixes(ep, plan, NIC1) == {"ipconfig1": ("10.0.1.10", None, True, "Static"),
                                        "nestnet-vme-kvm-vm1": prefix(BLOCK1)}  # the refused writes changed nothing


# -- the exports ---------------------------------------------------------------------------------


@pytest.fixture
def pre_plan(plan_of):
    return replace(plan_of(prefix_spec()), source="nic-prefix.yaml")


def test_terraform_golden_and_parses(pre_plan):
    text = terraform(pre_plan)
    check_golden("nic-prefix.tf", text)
    doc = hcl2.loads(text)
    assert "resource" not in doc  # the NICs belong to the user's definitions
    cfgs = doc["locals"][0]["nestnet_nic_prefix_ip_configurations"]
    got = {hcl_value(k) if k.startswith('"') else k: [(hcl_value(c["name"]), hcl_value(c["private_ip_address"]),
                                                         c["private_ip_address_prefix_length"]) for c in v]
           for k, v in cfgs.items()}
    assert got == {NIC1: [("nestnet-vme-kvm-vm1", "10.0.1.16", 28)], NIC2: [("nestnet-vme-kvm-vm2", "10.0.1.48", 28)]}
    assert "privateIPAddressPrefixLength = 28" in text and "ASSUMPTION" in text


def test_az_script_golden_and_runs_again_without_changes(pre_plan, tmp_path):
    check_golden("nic-prefix-az.sh", az_script(pre_plan))
    script = write_export(pre_plan, "az", tmp_path / "out")
    env, log, state = fake_az(tmp_path, {"nics": {NIC1: {}, NIC2: {}}})
    subprocess.run(["bash", str(script)], check=True, cwd=tmp_path, env=env)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    creates = [c for c in calls if c[3] == "create"]
    assert [c[c.index("--name") + 1] for c in creates] == ["nestnet-vme-kvm-vm1", "nestnet-vme-kvm-vm2"]
    assert creates[0][creates[0].index("--private-ip-address") + 1] == "10.0.1.16"
    assert creates[0][creates[0].index("--private-ip-address-prefix-length") + 1] == "28"
    first = state.read_text()
    assert json.loads(first)["nics"][NIC1]["ipConfigurations"]["nestnet-vme-kvm-vm1"] == {
        "privateIPAddress": "10.0.1.16", "privateIPAddressPrefixLength": 28}
    subprocess.run(["bash", str(script)], check=True, cwd=tmp_path, env=env)
    again = [json.loads(line) for line in log.read_text().splitlines()][len(calls):]
    assert [c[3] for c in again] == ["show"] * 2
    assert json.loads(state.read_text())["nics"] == json.loads(first)["nics"]


# -- the data plane: what ARM holds is what Azure delivers ---------------------------------------


def drop_config(ep, plan, nic, name):
    """Someone removes an ip configuration from ``nic`` with the plain SDK (GET, edit, PUT)."""
    sdk = ep.sdk(plan)
    rg = plan.azure.resource_group
    body = sdk.network_interfaces.get(rg, nic).json
    body["properties"]["ipConfigurations"] = [c for c in body["properties"]["ipConfigurations"] if c["name"] != name]
    sdk.network_interfaces.begin_create_or_update(rg, nic, body).result()


def test_check_azure_sees_each_prefix_arm_holds(emulator, plan_of, tmp_path):
    from azure_helpers import check_azure, write_spec
    from nestnet.model.groups import expand

    path = write_spec(tmp_path / "np.yaml", prefix_spec())
    plan = plan_of(prefix_spec())
    ep = emulator(plan)
    r = check_azure(ep, path, plan)  # before apply: no NIC owns a nested address
    assert r.returncode == 1, r.stderr
    assert {p for a, b, _ in expand(json.loads(r.stdout)) for p in (a, b)} >= {"web1", "web2"}
    reconcile(ep.client(plan), plan)
    r = check_azure(ep, path, plan)
    assert r.returncode == 0, r.stdout + r.stderr
    drop_config(ep, plan, NIC2, "nestnet-vme-kvm-vm2")  # a missing prefix configuration
    r = check_azure(ep, path, plan)
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    pairs = {(a, b) for a, b, _ in expand(doc)}
    assert pairs and all("web2" in p for p in pairs) and ("web1", "web2") in pairs and ("web2", "web1") in pairs
    assert any(NIC2 in g["cause"] or "vme-kvm-vm2" in g["cause"] for g in doc["groups"]), doc["groups"]


@pytest.mark.root
def test_lab_programmed_from_the_emulator_follows_the_prefixes(emulator, plan_of):
    import os

    from nestnet import lab
    from nestnet.clouds.azure import sdn
    from nestnet.clouds.azure.lab import from_emulator
    from nestnet.lab.topology import Topology
    from nestnet.model import from_plan, reachability

    spec = prefix_spec()
    spec["name"] = f"np{os.getpid()}"
    plan = plan_of(spec)
    ep = emulator(plan)
    lab.up(plan)

    def red():
        return {(p.src, p.dst) for p in lab.matrix(plan) if not p.ok}

    try:
        topo = Topology.from_plan(plan)
        sdn.program_ns(topo, from_emulator(ep.arm.state_dir, plan))  # Azure before apply: no prefixes
        assert {("web1", "web2"), ("mgmt-vm", "web1"), ("web2", "vme-kvm-vm1")} <= red()
        reconcile(ep.client(plan), plan)
        assert sdn.program_ns(topo, from_emulator(ep.arm.state_dir, plan))
        assert red() == set()
        drop_config(ep, plan, NIC2, "nestnet-vme-kvm-vm2")
        state = from_emulator(ep.arm.state_dir, plan)
        sdn.program_ns(topo, state)
        model = {(p.src, p.dst) for p in reachability(replace(from_plan(plan), cloud=state)).pairs()}
        assert red() == model and ("web1", "web2") in model
    finally:
        lab.down(plan)


# -- migration between routed and nic-prefix (docs/decisions/0028) ------------------------------


def routed_spec() -> dict:
    return seed_spec()


def no_pair_lost(plans, seen):
    """An ``Arm.on_change`` hook: after every write ARM accepts, the model of the fabric as ARM
    holds it (hosts as ``plans[0]`` configures them) must have every pair green."""
    from nestnet.clouds.azure.lab import from_resources
    from nestnet.model import from_plan, reachability

    def hook(arm):
        plan = plans[0]
        state = replace(from_plan(plan), cloud=from_resources(arm.resources, plan))
        seen.append(sorted((p.src, p.dst) for p in reachability(state).pairs()))

    return hook


def test_migration_routed_to_nic_prefix_and_back_loses_no_pair(emulator, plan_of):
    routed, pre = plan_of(routed_spec()), plan_of(prefix_spec())
    hosts_as = [routed]
    seen: list = []
    ep = emulator(routed, on_change=no_pair_lost(hosts_as, seen))
    client = ep.client(routed)
    reconcile(client, routed)
    add_foreign_route = ep.sdk(routed).routes.begin_create_or_update
    add_foreign_route(routed.azure.resource_group, routed.azure.route_table, "someone-elses",
                      {"properties": {"addressPrefix": "10.9.0.0/16", "nextHopType": "VirtualAppliance",
                                      "nextHopIpAddress": "10.0.1.10"}}).result()
    seen.clear()
    # routed -> nic-prefix: each NIC gets its block's prefix (both cover the block for a while),
    # then the table loses nestnet's routes; IP forwarding stays on (nestnet never turns it off)
    changes, outcome = reconcile(client, pre)
    assert [(c.action, c.kind, c.name) for c in outcome.applied] == [
        ("add", "ip_config", "nestnet-vme-kvm-vm1"), ("add", "ip_config", "nestnet-vme-kvm-vm2"),
        ("delete", "route", "nestnet-vme-kvm-vm1"), ("delete", "route", "nestnet-vme-kvm-vm2")]
    assert outcome.writes == 3 and len(seen) == 3 and all(s == [] for s in seen), seen
    table = ep.sdk(routed).route_tables.get(routed.azure.resource_group,
                                             routed.azure.route_table).json
    assert [r["name"] for r in table["properties"]["routes"]] == ["someone-elses"]  # foreign kept
    assert reconcile(client, pre)[1].writes == 0
    # the hosts follow (host apply in nic-prefix mode), then back to routed: the routes come
    # first, each NIC drops its prefix in the PUT that keeps forwarding on
    hosts_as[0] = pre
    seen.clear()
    changes, outcome = reconcile(client, routed)
    assert [(c.action, c.kind) for c in outcome.applied] == [
        ("add", "route"), ("add", "route"), ("delete", "ip_config"), ("delete", "ip_config")]
    assert outcome.writes == 3 and all(s == [] for s in seen), seen
    assert reconcile(client, routed)[1].writes == 0


@pytest.mark.root
def test_migration_in_the_lab_every_pair_pings_after_every_write(emulator, plan_of):
    """The same migration on the lab's fabric, programmed from ARM after each write it accepts:
    every pair pings at every step (hosts re-applied in the new mode between the two halves)."""
    import os

    from nestnet import lab
    from nestnet.host import apply as host_apply
    from nestnet.clouds.azure.lab import lab_programmer
    from nestnet.lab.core import state_dir
    from nestnet.lab.topology import Topology
    from nestnet.netns import run_in

    name = f"npm{os.getpid()}"
    routed = plan_of({**routed_spec(), "name": name}, "routed.yaml")
    pre = plan_of({**prefix_spec(), "name": name}, "prefix.yaml")
    red_after_write: list = []
    program = lab_programmer(routed)
    armed: list = []  # the seeding writes come before the lab is up

    def hook(arm):
        if not armed:
            return
        program(arm)
        red_after_write.append({(p.src, p.dst) for p in lab.matrix(routed) if not p.ok})

    ep = emulator(routed, on_change=hook)
    lab.up(routed)
    try:
        armed.append(True)
        topo = Topology.from_plan(routed)
        reconcile(ep.client(routed), routed)
        assert red_after_write and red_after_write[-1] == set()

        def hosts_in(plan):
            for h in plan.hosts:
                run_in(topo.ns(h), host_apply, plan, h, root=str(state_dir(name) / "hosts" / h))

        for plan, then in ((pre, pre), (routed, routed)):
            red_after_write.clear()
            assert reconcile(ep.client(plan), plan)[1].writes == 3
            assert red_after_write == [set()] * 3, red_after_write
            hosts_in(then)
            assert {(p.src, p.dst) for p in lab.matrix(routed) if not p.ok} == set()
    finally:
        lab.down(routed)


# -- import of a hand-built nic-prefix fabric, then adopt -----------------------------------------


def test_import_of_a_hand_built_nic_prefix_fabric_then_adopt_renames_in_one_put_each(emulator, plan_of, tmp_path):
    import os
    import sys
    from pathlib import Path

    import yaml

    from nestnet.plan import load_plan

    plan = plan_of(prefix_spec())
    ep = emulator(plan)
    # by hand, as someone did before nestnet: a prefix per host NIC under their own names
    static = {"privateIPAllocationMethod": "Static", "privateIPAddressPrefixLength": 28}
    add_raw(ep, plan, NIC1, ("kvm1-block", {**static, "privateIPAddress": "10.0.1.16"}))
    add_raw(ep, plan, NIC2, ("kvm2-block", {**static, "privateIPAddress": "10.0.1.48"}))
    client = ep.client(plan)  # and the mgmt VM's NIC, as Terraform made it
    mgmt = next(s for s in client.get_vnet(plan.azure.vnet)["properties"]["subnets"] if s["name"] == "mgmt-subnet")
    client.put_nic("mgmt-vm-nic", {"location": "eastus", "properties": {"ipConfigurations": [{
        "name": "ipconfig1", "properties": {"privateIPAllocationMethod": "Static", "privateIPAddress": "10.0.2.5",
                                            "subnet": {"id": mgmt["id"]}}}]}}, None)
    env = {**os.environ, "NESTNET_ARM_ENDPOINT": ep.url, "NESTNET_ARM_CA_BUNDLE": ep.ca, "NESTNET_ARM_TOKEN": "t",
           "AZURE_SUBSCRIPTION_ID": ep.settings(plan).subscription_id}
    nestnet = str(Path(sys.executable).with_name("nestnet"))
    out = tmp_path / "imported" / "fabric.yaml"
    r = subprocess.run([nestnet, "import", "--resource-group", plan.azure.resource_group, "--vnet", plan.azure.vnet,
                        "--out", str(out), "--name", plan.name], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "mode: nic-prefix" in text and "from prefix ip configuration kvm1-block" in text and "route_table" not in text
    got = load_plan(out, write=False)
    assert {x.nic: str(x.prefix) for x in got.azure.nic_prefixes} == {NIC1: BLOCK1, NIC2: BLOCK2}
    assert {h.nic: str(h.ip) for h in got.hosts.values()} == {h.nic: str(h.ip) for h in plan.hosts.values()}
    assert {str(e.ip) for e in got.endpoints.values()} == {"10.0.2.5"}

    def azure(*args):
        return subprocess.run([nestnet, "azure", *args, str(out)], capture_output=True, text=True, env=env)

    r = azure("diff", "--json")  # without --adopt: the blocks are someone else's configurations
    assert r.returncode == 1 and json.loads(r.stdout)["ok"] is False and "refusing to change anything" in r.stderr
    assert "already used by ip configuration 'kvm1-block'" in r.stderr and "run with --adopt" in r.stderr
    r = azure("diff", "--adopt", "--json")
    assert r.returncode == 1, r.stderr
    changes = yaml.safe_load(r.stdout)["changes"]
    assert [(c["action"], c["before"]["name"], c["name"]) for c in changes] == [
        ("adopt", "kvm1-block", got.azure.nic_prefixes[0].name), ("adopt", "kvm2-block", got.azure.nic_prefixes[1].name)]
    r = azure("apply", "--adopt", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["writes"] == 2  # one NIC PUT each: the block is never without its owner
    assert prefixes(ep, plan, NIC1) == {"ipconfig1": ("10.0.1.10", None, True, "Static"),
                                        got.azure.nic_prefixes[0].name: prefix(BLOCK1)}
    r = azure("diff", "--json")
    assert r.returncode == 0 and yaml.safe_load(r.stdout) == {"changes": []}, r.stdout + r.stderr


def test_doctor_reads_the_prefixes_arm_holds(emulator, plan_of):
    """doctor --azure's observation (the cloud seam's observed_state): each NIC's prefixes as ARM
    holds them, so a missing one is what the model then fails."""
    from nestnet.doctor import observe_cloud
    from nestnet.model import from_plan, reachability

    plan = plan_of(prefix_spec())
    ep = emulator(plan)
    client = ep.client(plan)
    reconcile(client, plan)
    seen = observe_cloud(plan, client)
    assert {n: [str(p) for p in s.prefixes] for n, s in seen.nics.items() if s.prefixes} == {
        NIC1: [BLOCK1], NIC2: [BLOCK2]}
    assert list(reachability(replace(from_plan(plan), cloud=seen)).pairs()) == []
    drop_config(ep, plan, NIC2, "nestnet-vme-kvm-vm2")
    seen = observe_cloud(plan, client)
    assert seen.nics[NIC2].prefixes == () and "10.0.1.50" not in {str(a) for a in seen.nics[NIC2].addresses}
    failed = list(reachability(replace(from_plan(plan), cloud=seen)).pairs())
    assert failed and all("web2" in (p.src, p.dst) for p in failed)
