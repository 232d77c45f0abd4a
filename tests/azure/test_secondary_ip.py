"""secondary-ip mode (the seed's Solution A): nestnet's secondary ip configurations on the host
NICs, through the real azure-mgmt-network SDK against the emulated ARM endpoint over HTTPS; the
pure diff and write order on plain data; the emulator answering like ARM; the exports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import hcl2
import pytest
from azure.core.exceptions import HttpResponseError

from azure_helpers import fake_az, seed_spec, write_between
from nestnet.clouds.azure.diff import Change, Observed, desired, diff, nic_write_order
from nestnet.clouds.azure.export import az_script, terraform, write_export
from nestnet.clouds.azure.reconcile import apply, plan_changes, reconcile
from nestnet.errors import AzureError
from test_export import check_golden, hcl_value

NIC1, NIC2 = "vme-kvm-vm1-vm-nic", "vme-kvm-vm2-vm-nic"


def secondary_spec() -> dict:
    """The seed fabric in secondary-ip mode, with a second VM on the first host."""
    spec = seed_spec()
    spec["nested"]["mode"] = "secondary-ip"
    spec["vms"].append({"name": "web3", "host": "vme-kvm-vm1", "ip": "10.0.1.21"})
    return spec


def big_spec(n_vms: int) -> dict:
    """One host in a /16 subnet with ``n_vms`` VMs (room for more than 256 ip configurations)."""
    return {
        "version": 1,
        "name": "bigsec",
        "azure": {"resource_group": "rg", "location": "eastus", "vnet": "vnet", "address_space": ["10.0.0.0/16"]},
        "subnets": [{"name": "hosts", "prefix": "10.0.0.0/16"}],
        "nested": {"mode": "secondary-ip", "pool": "10.0.1.0/24", "block_prefix_len": 24},
        "hosts": [{"name": "h0", "ip": "10.0.0.4", "nic": "h0-nic", "block": "10.0.1.0/24"}],
        "vms": [{"name": f"v{i}", "host": "h0", "ip": f"10.0.1.{i + 1}"} for i in range(n_vms)],
    }


def configs(ep, plan, nic):
    """name -> (address, primary, allocation, version, subnet name) as the plain SDK reads the NIC."""
    n = ep.sdk(plan).network_interfaces.get(plan.azure.resource_group, nic)
    return {
        c.name: (c.properties.private_ip_address, c.properties.primary, c.properties.private_ip_allocation_method,
                 c.properties.private_ip_address_version, c.properties.subnet.id.rsplit("/", 1)[-1])
        for c in n.properties.ip_configurations
    }


def secondary(address):
    return (address, False, "Static", "IPv4", "vm-subnet")


PRIMARY1 = ("10.0.1.10", True, "Static", "IPv4", "vm-subnet")


def add_foreign(ep, plan, nic, *cfgs):
    """Someone else adds ip configurations to ``nic`` (name, address) with the plain SDK."""
    sdk = ep.sdk(plan)
    rg = plan.azure.resource_group
    body = sdk.network_interfaces.get(rg, nic).json
    subnet = body["properties"]["ipConfigurations"][0]["properties"]["subnet"]
    for name, address in cfgs:
        body["properties"]["ipConfigurations"].append({"name": name, "properties": {
            "privateIPAddress": address, "privateIPAllocationMethod": "Static", "subnet": subnet}})
    return sdk.network_interfaces.begin_create_or_update(rg, nic, body).result()


def delta(before, after):
    return {k: after[k] - before[k] for k in after}


# -- against the emulated ARM endpoint ---------------------------------------------------------


def test_create_from_nothing_then_second_run_changes_nothing(emulator, plan_of):
    plan = plan_of(secondary_spec())
    ep = emulator(plan)
    client = ep.client(plan)
    before = ep.stats()
    changes, outcome = reconcile(client, plan)
    assert [(c.action, c.kind, c.name, c.nic) for c in changes] == [
        ("add", "ip_config", "nestnet-web1", NIC1),
        ("add", "ip_config", "nestnet-web3", NIC1),
        ("add", "ip_config", "nestnet-web2", NIC2),
    ]
    assert str(changes[0]) == f"add ip config nestnet-web1 on {NIC1}: 10.0.1.20"
    assert outcome.writes == 2  # one PUT per NIC, whatever the number of VMs on it
    d = delta(before, ep.stats())
    assert d["writes"] == 2 and d["precondition_failed"] == 0
    assert configs(ep, plan, NIC1) == {"ipconfig1": PRIMARY1, "nestnet-web1": secondary("10.0.1.20"),
                                       "nestnet-web3": secondary("10.0.1.21")}
    assert configs(ep, plan, NIC2) == {"ipconfig1": ("10.0.1.11", True, "Static", "IPv4", "vm-subnet"),
                                       "nestnet-web2": secondary("10.0.1.50")}
    # secondary-ip mode needs no route table and no forwarding (the NIC owns the addresses).
    sdk = ep.sdk(plan)
    assert list(sdk.route_tables.list(plan.azure.resource_group)) == []
    assert not any(n.properties.enable_ip_forwarding for n in sdk.network_interfaces.list(plan.azure.resource_group))

    before = ep.stats()
    changes, outcome = reconcile(client, plan)
    assert changes == [] and outcome.writes == 0
    d = delta(before, ep.stats())
    # One VNet GET (region and address space checked) and one NIC list, whatever the fabric's size.
    assert d["writes"] == 0 and d["reads"] == 2


def test_foreign_ip_configurations_are_kept_and_stale_owned_ones_removed(emulator, plan_of):
    plan = plan_of(secondary_spec())
    ep = emulator(plan)
    client = ep.client(plan)
    reconcile(client, plan)
    add_foreign(ep, plan, NIC1, ("app-extra", "10.0.1.200"), ("nestnet-old-vm", "10.0.1.201"))
    before = ep.stats()
    changes, outcome = reconcile(client, plan)
    assert [(c.action, c.name, c.nic) for c in changes] == [("delete", "nestnet-old-vm", NIC1)]
    assert outcome.writes == 1 and delta(before, ep.stats())["writes"] == 1
    got = configs(ep, plan, NIC1)
    assert got == {"ipconfig1": PRIMARY1, "nestnet-web1": secondary("10.0.1.20"),
                   "nestnet-web3": secondary("10.0.1.21"), "app-extra": secondary("10.0.1.200")}


def test_vm_removed_loses_its_configuration_and_a_host_its_last_one(emulator, plan_of):
    plan = plan_of(secondary_spec())
    ep = emulator(plan)
    client = ep.client(plan)
    reconcile(client, plan)
    spec = secondary_spec()
    spec["vms"] = [v for v in spec["vms"] if v["name"] not in ("web3", "web2")]
    smaller = plan_of(spec)
    before = ep.stats()
    changes, outcome = reconcile(client, smaller)
    assert [(c.action, c.name, c.nic) for c in changes] == [
        ("delete", "nestnet-web3", NIC1), ("delete", "nestnet-web2", NIC2)]
    assert outcome.writes == 2 and delta(before, ep.stats())["writes"] == 2
    assert configs(ep, plan, NIC1) == {"ipconfig1": PRIMARY1, "nestnet-web1": secondary("10.0.1.20")}
    assert set(configs(ep, plan, NIC2)) == {"ipconfig1"}
    assert reconcile(client, smaller)[0] == []


def test_routed_mode_removes_the_configurations_of_secondary_ip_mode(emulator, plan_of):
    plan = plan_of(secondary_spec())
    ep = emulator(plan)
    client = ep.client(plan)
    reconcile(client, plan)
    add_foreign(ep, plan, NIC1, ("app-extra", "10.0.1.200"))
    spec = secondary_spec()
    spec["nested"]["mode"] = "routed"
    changes, outcome = reconcile(client, plan_of(spec))
    assert outcome.writes == 1 + 2 + 2  # the table, two subnets, one PUT per NIC
    assert sorted((c.action, c.name) for c in changes if c.kind == "ip_config") == [
        ("delete", "nestnet-web1"), ("delete", "nestnet-web2"), ("delete", "nestnet-web3")]
    # Forwarding and the ip configurations of a NIC go in one PUT.
    assert [c.kind for c in changes if c.target_nic == NIC1] == ["ip_config", "ip_config", "nic"]
    assert configs(ep, plan, NIC1) == {"ipconfig1": PRIMARY1, "app-extra": secondary("10.0.1.200")}
    assert set(configs(ep, plan, NIC2)) == {"ipconfig1"}


def test_readdressed_vm_is_updated_in_place(emulator, plan_of):
    plan = plan_of(secondary_spec())
    ep = emulator(plan)
    client = ep.client(plan)
    reconcile(client, plan)
    spec = secondary_spec()
    spec["vms"][2]["ip"] = "10.0.1.22"
    changes, outcome = reconcile(client, plan_of(spec))
    assert [(c.action, c.name, c.before, c.after) for c in changes] == [
        ("update", "nestnet-web3", {"privateIPAddress": "10.0.1.21"}, {"privateIPAddress": "10.0.1.22"})]
    assert configs(ep, plan, NIC1)["nestnet-web3"] == secondary("10.0.1.22")


def test_over_limit_is_refused_before_any_write(emulator, plan_of):
    plan = plan_of(big_spec(200))
    ep = emulator(plan)
    # 60 foreign configurations: with the primary and nestnet's 200 the NIC would hold 261.
    add_foreign(ep, plan, "h0-nic", *[(f"app{i}", f"10.0.2.{i + 1}") for i in range(60)])
    before = ep.stats()
    with pytest.raises(AzureError) as exc:
        reconcile(ep.client(plan), plan)
    assert str(exc.value) == (
        "refusing to change anything: network interface 'h0-nic' would hold 261 ip configurations "
        "(200 nestnet, 61 primary and foreign), over Azure's limit of 256 per NIC"
    )
    assert delta(before, ep.stats())["writes"] == 0
    assert len(configs(ep, plan, "h0-nic")) == 61


def test_address_used_by_another_nic_is_refused_before_any_write(emulator, plan_of):
    plan = plan_of(secondary_spec())
    ep = emulator(plan)
    client = ep.client(plan)
    add_foreign(ep, plan, NIC2, ("legacy", "10.0.1.20"))  # web1's address, on the other host's NIC
    before = ep.stats()
    with pytest.raises(AzureError) as exc:
        reconcile(client, plan)
    assert str(exc.value) == (
        "refusing to change anything: 10.0.1.20 (ip configuration 'nestnet-web1' on "
        f"'{NIC1}') is already used by ip configuration 'legacy' of network interface '{NIC2}'"
    )
    assert delta(before, ep.stats())["writes"] == 0


def test_address_taken_after_the_read_is_refused_by_arm_in_one_line(emulator, plan_of):
    plan = plan_of(secondary_spec())
    ep = emulator(plan)
    client = ep.client(plan)
    want, obs, changes = plan_changes(client, plan)
    # Between nestnet's read and its write, a new VM's NIC in the VNet takes web2's address.
    sdk = ep.sdk(plan)
    subnet = sdk.network_interfaces.get(plan.azure.resource_group, NIC1).properties.ip_configurations[0].properties.subnet.id
    sdk.network_interfaces.begin_create_or_update(plan.azure.resource_group, "new-vm-nic", {
        "location": "eastus", "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": {
            "privateIPAddress": "10.0.1.50", "privateIPAllocationMethod": "Static", "subnet": {"id": subnet}}}]}}).result()
    with pytest.raises(AzureError) as exc:
        apply(client, want, obs, changes)
    msg = str(exc.value)
    assert msg.startswith(f"PUT network interface '{NIC2}': HTTP 400 PrivateIPAddressIsAllocated: ")
    assert "10.0.1.50" in msg and "new-vm-nic" in msg and "\n" not in msg
    assert "nestnet-web2" not in configs(ep, plan, NIC2)
    # The next run sees it and refuses before writing, naming the holder.
    with pytest.raises(AzureError, match="already used by ip configuration 'ipconfig1' of network interface 'new-vm-nic'"):
        plan_changes(client, plan)


def test_concurrent_nic_change_is_kept_by_the_fresh_read(emulator, plan_of):
    plan = plan_of(secondary_spec())
    ep = emulator(plan)
    client = ep.client(plan)
    want, obs, changes = plan_changes(client, plan)
    add_foreign(ep, plan, NIC1, ("someone-else", "10.0.1.99"))
    before = ep.stats()
    outcome = apply(client, want, obs, changes)
    # The NIC PUT is built from a GET made just before it: the other writer's change is in it.
    assert outcome.retries_412 == 0 and delta(before, ep.stats())["precondition_failed"] == 0
    assert configs(ep, plan, NIC1) == {"ipconfig1": PRIMARY1, "someone-else": secondary("10.0.1.99"),
                                       "nestnet-web1": secondary("10.0.1.20"), "nestnet-web3": secondary("10.0.1.21")}
    assert plan_changes(client, plan)[2] == []


def test_nic_change_between_get_and_put_412_rereads_and_keeps_the_other_writer(emulator, plan_of):
    plan = plan_of(secondary_spec())
    ep = emulator(plan)
    client = ep.client(plan)
    want, obs, changes = plan_changes(client, plan)
    # Another writer lands between nestnet's fresh GET of the NIC and its PUT.
    ran = write_between(ep, "PUT", f"networkInterfaces/{NIC1}", lambda: add_foreign(ep, plan, NIC1, ("someone-else", "10.0.1.99")))
    before = ep.stats()
    outcome = apply(client, want, obs, changes)
    assert ran == [1]
    assert outcome.retries_412 == 1 and delta(before, ep.stats())["precondition_failed"] == 1
    assert configs(ep, plan, NIC1) == {"ipconfig1": PRIMARY1, "someone-else": secondary("10.0.1.99"),
                                       "nestnet-web1": secondary("10.0.1.20"), "nestnet-web3": secondary("10.0.1.21")}
    assert plan_changes(client, plan)[2] == []


def test_hosts_swapping_blocks_move_addresses_in_two_steps(emulator, plan_of):
    plan = plan_of(secondary_spec())
    ep = emulator(plan)
    client = ep.client(plan)
    reconcile(client, plan)
    spec = secondary_spec()
    h1, h2 = spec["hosts"]
    h1["block"], h2["block"] = h2["block"], h1["block"]
    for v in spec["vms"]:
        v["host"] = "vme-kvm-vm2" if v["host"] == "vme-kvm-vm1" else "vme-kvm-vm1"
    swapped = plan_of(spec)
    want, obs, changes = plan_changes(client, swapped)
    # Each NIC frees an address the other takes: deletions go first, then additions.
    assert nic_write_order(changes) == [(NIC1, True), (NIC2, True), (NIC1, False), (NIC2, False)]
    outcome = apply(client, want, obs, changes)
    assert outcome.writes == 4
    assert configs(ep, plan, NIC1) == {"ipconfig1": PRIMARY1, "nestnet-web2": secondary("10.0.1.50")}
    assert set(configs(ep, plan, NIC2)) == {"ipconfig1", "nestnet-web1", "nestnet-web3"}
    assert plan_changes(client, swapped)[2] == []


def test_cli_diff_apply_json(emulator, plan_of, tmp_path):
    from azure_helpers import write_spec

    path = write_spec(tmp_path / "sec.yaml", secondary_spec())
    plan = plan_of(secondary_spec())
    ep = emulator(plan)
    env = {**os.environ, "NESTNET_ARM_ENDPOINT": ep.url, "NESTNET_ARM_CA_BUNDLE": ep.ca,
           "NESTNET_ARM_TOKEN": "cli-test", "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000"}
    run = lambda *a: subprocess.run([sys.executable, "-m", "nestnet", "azure", *a, str(path)],  # noqa: E731
                                    capture_output=True, text=True, env=env, timeout=60)
    r = run("diff")
    assert r.returncode == 1 and f"add ip config nestnet-web2 on {NIC2}: 10.0.1.50" in r.stdout, r.stderr
    r = run("apply", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["writes"] == 2 and {c["nic"] for c in out["changes"]} == {NIC1, NIC2}
    r = run("diff", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"changes": []}


# -- the emulator answers like ARM ---------------------------------------------------------------


def test_emulator_checks_ip_configurations_like_arm(emulator, plan_of):
    plan = plan_of(secondary_spec())
    ep = emulator(plan)

    def refused(*cfgs):
        with pytest.raises(HttpResponseError) as exc:
            add_foreign(ep, plan, NIC1, *cfgs)
        assert exc.value.status_code == 400
        return exc.value.error.code

    assert refused(("dup", "10.0.1.11")) == "PrivateIPAddressIsAllocated"  # NIC2's primary
    assert refused(("a", "10.0.1.30"), ("b", "10.0.1.30")) == "PrivateIPAddressIsAllocated"
    assert refused(("out", "10.0.2.30")) == "PrivateIPAddressNotInSubnet"
    assert refused(("gw", "10.0.1.1")) == "PrivateIPAddressInReservedRange"
    assert refused(("last", "10.0.1.255")) == "PrivateIPAddressInReservedRange"
    sdk = ep.sdk(plan)
    rg = plan.azure.resource_group
    body = sdk.network_interfaces.get(rg, NIC1).json
    body["properties"]["ipConfigurations"].append(
        {"name": "second-primary", "properties": {"primary": True, "privateIPAddress": "10.0.1.31",
                                                  "subnet": body["properties"]["ipConfigurations"][0]["properties"]["subnet"]}})
    with pytest.raises(HttpResponseError) as exc:
        sdk.network_interfaces.begin_create_or_update(rg, NIC1, body).result()
    assert exc.value.error.code == "NetworkInterfaceMustHaveOnePrimaryIpConfiguration"
    # A dynamic configuration gets the lowest free address after the four reserved ones.
    body = sdk.network_interfaces.get(rg, NIC1).json
    body["properties"]["ipConfigurations"].append(
        {"name": "dyn", "properties": {"privateIPAllocationMethod": "Dynamic",
                                       "subnet": body["properties"]["ipConfigurations"][0]["properties"]["subnet"]}})
    nic = sdk.network_interfaces.begin_create_or_update(rg, NIC1, body).result()
    assert {c.name: c.properties.private_ip_address for c in nic.properties.ip_configurations}["dyn"] == "10.0.1.4"
    assert set(configs(ep, plan, NIC1)) == {"ipconfig1", "dyn"}  # the refused writes changed nothing


def test_emulator_limit_of_ip_configurations(emulator, plan_of):
    plan = plan_of(big_spec(1))
    ep = emulator(plan, max_ip_configs=4)
    add_foreign(ep, plan, "h0-nic", ("a", "10.0.2.1"), ("b", "10.0.2.2"), ("c", "10.0.2.3"))
    with pytest.raises(HttpResponseError) as exc:
        add_foreign(ep, plan, "h0-nic", ("d", "10.0.2.4"))
    assert exc.value.status_code == 400 and exc.value.error.code == "IpConfigurationCountLimitReached"


# -- pure: the diff and the write order on plain data --------------------------------------------

SUBNET = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vme-vnet/subnets/vm-subnet"


def nic(name, *cfgs, subnet=SUBNET):
    return {"name": name, "etag": "e", "properties": {"ipConfigurations": [
        {"name": n, "properties": {"privateIPAddress": a, "primary": i == 0, "subnet": {"id": subnet}}}
        for i, (n, a) in enumerate(cfgs)]}}


@pytest.fixture
def want(plan_of):
    return desired(plan_of(secondary_spec()))


def in_sync():
    return {NIC1: nic(NIC1, ("ipconfig1", "10.0.1.10"), ("nestnet-web1", "10.0.1.20"), ("nestnet-web3", "10.0.1.21")),
            NIC2: nic(NIC2, ("ipconfig1", "10.0.1.11"), ("nestnet-web2", "10.0.1.50"))}


def test_desired_in_secondary_mode(want):
    assert want.table is None and want.nics == () and want.subnets == ()
    assert want.managed_nics == (NIC1, NIC2) and want.max_ip_configs == 256
    assert [(w.nic, w.name, w.ip) for w in want.secondary] == [
        (NIC1, "nestnet-web1", "10.0.1.20"), (NIC2, "nestnet-web2", "10.0.1.50"), (NIC1, "nestnet-web3", "10.0.1.21")]
    assert diff(want, Observed(None, None, in_sync()), "") == []


def test_primary_is_never_touched_even_with_an_owned_name(want):
    nics = in_sync()
    nics[NIC2] = nic(NIC2, ("nestnet-primary", "10.0.1.11"), ("nestnet-web2", "10.0.1.50"))
    assert diff(want, Observed(None, None, nics), "") == []
    nics[NIC2] = nic(NIC2, ("nestnet-web2", "10.0.1.11"))
    with pytest.raises(AzureError, match="the primary ip configuration of 'vme-kvm-vm2-vm-nic' is named 'nestnet-web2'"):
        diff(want, Observed(None, None, nics), "")


def test_refusals_name_the_thing(want):
    nics = in_sync()
    nics[NIC2] = nic(NIC2, ("ipconfig1", "10.0.1.11"), subnet=SUBNET.replace("vm-subnet", "other"))
    with pytest.raises(AzureError, match="network interface 'vme-kvm-vm2-vm-nic' is in subnet 'other', but the plan "
                                         "puts its host in 'vm-subnet'"):
        diff(want, Observed(None, None, nics), "")
    del nics[NIC2]
    with pytest.raises(AzureError, match="network interface 'vme-kvm-vm2-vm-nic' was not found"):
        diff(want, Observed(None, None, nics), "")
    nics = in_sync()
    del nics[NIC2]["properties"]["ipConfigurations"][1]
    nics["old-host-nic"] = nic("old-host-nic", ("ipconfig1", "10.0.1.12"), ("nestnet-web2", "10.0.1.50"))
    with pytest.raises(AzureError, match=r"nestnet's own, on a NIC that is not in the plan: delete it there first"):
        diff(want, Observed(None, None, nics), "")


def test_limit_counts_primary_foreign_and_planned(want):
    nics = in_sync()
    assert diff(replace(want, max_ip_configs=3), Observed(None, None, nics), "") == []
    nics[NIC1]["properties"]["ipConfigurations"].append({"name": "app", "properties": {"privateIPAddress": "10.0.1.99"}})
    with pytest.raises(AzureError, match=r"would hold 4 ip configurations \(2 nestnet, 2 primary and foreign\), over "
                                         r"Azure's limit of 3 per NIC"):
        diff(replace(want, max_ip_configs=3), Observed(None, None, nics), "")


def ch(action, name, nic_, before=None, after=None):
    return Change(action, "ip_config", name, {"privateIPAddress": before} if before else None,
                  {"privateIPAddress": after} if after else None, nic_)


WRITE_ORDER = {
    "independent": ([ch("add", "x", "a", after="1"), ch("delete", "y", "b", before="2")], [("a", False), ("b", False)]),
    "freed first": ([ch("add", "x", "a", after="1"), ch("delete", "x", "b", before="1")], [("b", False), ("a", False)]),
    "chain": ([ch("add", "x", "a", after="1"), ch("delete", "x", "b", before="1"), ch("add", "y", "b", after="2"),
               ch("delete", "y", "c", before="2")], [("c", False), ("b", False), ("a", False)]),
    "swap": ([ch("update", "x", "a", "1", "2"), ch("update", "y", "b", "2", "1")],
             [("a", True), ("b", True), ("a", False), ("b", False)]),
    "forwarding too": ([Change("enable-ip-forwarding", "nic", "n"), ch("add", "x", "a", after="1")],
                       [("n", False), ("a", False)]),
}


@pytest.mark.parametrize("case", WRITE_ORDER, ids=list(WRITE_ORDER))
def test_nic_write_order(case):
    changes, expected = WRITE_ORDER[case]
    assert nic_write_order(changes) == expected


# -- exports -------------------------------------------------------------------------------------


@pytest.fixture
def sec_plan(plan_of):
    return replace(plan_of(secondary_spec()), source="secondary.yaml")


def test_terraform_golden_and_parses(sec_plan):
    text = terraform(sec_plan)
    check_golden("secondary.tf", text)
    doc = hcl2.loads(text)
    assert "resource" not in doc  # nothing that claims the NICs: they belong to the user's definitions
    cfgs = doc["locals"][0]["nestnet_secondary_ip_configurations"]
    got = {hcl_value(k) if k.startswith('"') else k: [(hcl_value(c["name"]), hcl_value(c["private_ip_address"])) for c in v]
           for k, v in cfgs.items()}
    assert got == {NIC1: [("nestnet-web1", "10.0.1.20"), ("nestnet-web3", "10.0.1.21")],
                   NIC2: [("nestnet-web2", "10.0.1.50")]}
    assert "no `azurerm_network_interface_ip_configuration` resource" in text
    assert 'dynamic "ip_configuration"' in text


def test_az_script_golden_and_runs_against_a_recording_az(sec_plan, tmp_path):
    check_golden("secondary-az.sh", az_script(sec_plan))
    hostile = replace(sec_plan, cloud=replace(sec_plan.azure, resource_group="rg'; touch PWNED; echo '",
                                              subscription_id="sub $(id)"))
    script = write_export(hostile, "az", tmp_path / "out")
    env, log, state = fake_az(tmp_path, {"nics": {NIC1: {}, NIC2: {}}})
    subprocess.run(["bash", str(script)], check=True, cwd=tmp_path, env=env)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    common = ["--subscription", "sub $(id)", "--resource-group", "rg'; touch PWNED; echo '"]
    assert calls[1] == ["network", "nic", "ip-config", "create", *common, "--nic-name", NIC1, "--name", "nestnet-web1",
                        "--private-ip-address", "10.0.1.20", "--private-ip-address-version", "IPv4"]
    creates = [c for c in calls if c[3] == "create"]
    assert [(c[-7], c[-5]) for c in creates] == [(NIC1, "nestnet-web1"), (NIC2, "nestnet-web2"), (NIC1, "nestnet-web3")]
    assert not list(tmp_path.glob("PWNED*"))
    # Run again: every configuration exists, so nothing is created and the state is unchanged.
    first = state.read_text()
    subprocess.run(["bash", str(script)], check=True, cwd=tmp_path, env=env)
    again = [json.loads(line) for line in log.read_text().splitlines()][len(calls):]
    assert [c[3] for c in again] == ["show"] * 3
    assert json.loads(state.read_text())["nics"] == json.loads(first)["nics"]


def test_nat_mode_has_nothing_to_export(sec_plan):
    from nestnet.errors import UsageError

    with pytest.raises(UsageError, match="nat mode needs nothing in Azure"):
        az_script(replace(sec_plan, mode="nat"))
