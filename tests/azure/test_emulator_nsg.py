"""NSGs and the read-only children the emulator now stores, through the plain azure-mgmt-network SDK:
network security groups and their rules, subnet associations, ip configuration reads, list-all,
UpdateTags, and the other writer attaching an NSG."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from azure_helpers import seed_spec
from emulator_http import arm_path, request

RULE = {"protocol": "Icmp", "sourceAddressPrefix": "10.0.2.5/32", "destinationAddressPrefix": "10.0.1.20/32",
        "access": "Deny", "sourcePortRange": "*", "destinationPortRange": "*", "priority": 100, "direction": "Inbound"}


def test_nsg_with_rules_associated_to_a_subnet(emulator, plan_of):
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    sdk = ep.sdk(plan)
    rg, vnet = plan.azure.resource_group, plan.azure.vnet
    nsg = sdk.network_security_groups.begin_create_or_update(
        rg, "vm-nsg", {"location": "eastus", "properties": {"securityRules": [{"name": "deny-mgmt", "properties": RULE}]}}).result()
    assert [r.name for r in nsg.security_rules] == ["deny-mgmt"]
    assert [r.priority for r in nsg.default_security_rules] == [65000, 65001, 65500, 65000, 65001, 65500]
    rule = sdk.security_rules.begin_create_or_update(
        rg, "vm-nsg", "allow-web", {"properties": {**RULE, "access": "Allow", "priority": 200, "protocol": "Tcp",
                                                   "destinationPortRange": "80"}}).result()
    assert rule.access == "Allow" and rule.provisioning_state == "Succeeded"
    assert sorted(r.name for r in sdk.security_rules.list(rg, "vm-nsg")) == ["allow-web", "deny-mgmt"]
    assert sdk.default_security_rules.get(rg, "vm-nsg", "DenyAllInBound").access == "Deny"
    # Same priority and direction twice is refused; nothing stored.
    with pytest.raises(HttpResponseError) as exc:
        sdk.security_rules.begin_create_or_update(rg, "vm-nsg", "dup", {"properties": {**RULE, "priority": 200}})
    assert exc.value.status_code == 400
    with pytest.raises(HttpResponseError):
        sdk.security_rules.begin_create_or_update(rg, "vm-nsg", "low", {"properties": {**RULE, "priority": 99}})
    # Associate with the subnet; the NSG shows the back-reference; in use, it cannot be deleted.
    sub = sdk.subnets.get(rg, vnet, "vm-subnet").as_dict()
    sub["properties"]["networkSecurityGroup"] = {"id": nsg.id}
    sdk.subnets.begin_create_or_update(rg, vnet, "vm-subnet", sub).result()
    assert [s.id for s in sdk.network_security_groups.get(rg, "vm-nsg").subnets] == [sub["id"]]
    with pytest.raises(HttpResponseError) as exc:
        sdk.network_security_groups.begin_delete(rg, "vm-nsg").result()
    assert exc.value.error.code == "InUseNetworkSecurityGroupCannotBeDeleted"
    # A reference to an NSG that does not exist is refused.
    sub["properties"]["networkSecurityGroup"] = {"id": nsg.id + "-gone"}
    with pytest.raises(HttpResponseError) as exc:
        sdk.subnets.begin_create_or_update(rg, vnet, "mgmt-subnet", sub)
    assert exc.value.error.code == "InvalidResourceReference"
    sdk.security_rules.begin_delete(rg, "vm-nsg", "allow-web").result()
    assert [r.name for r in sdk.security_rules.list(rg, "vm-nsg")] == ["deny-mgmt"]
    assert sorted(n.name for n in sdk.network_security_groups.list_all()) == ["vm-nsg"]


def test_ip_configurations_read_back_references_list_all_and_update_tags(emulator, plan_of):
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    sdk = ep.sdk(plan)
    rg, vnet = plan.azure.resource_group, plan.azure.vnet
    nic = "vme-kvm-vm1-vm-nic"
    cfgs = list(sdk.network_interface_ip_configurations.list(rg, nic))
    assert [c.name for c in cfgs] == ["ipconfig1"] and cfgs[0].private_ip_address == "10.0.1.10"
    assert sdk.network_interface_ip_configurations.get(rg, nic, "ipconfig1").primary is True
    status, _, _ = request(ep, "PUT", arm_path(plan, f"networkInterfaces/{nic}/ipConfigurations/x"), {"properties": {}})
    assert status == 405  # ip configurations are written through the NIC only
    subnet = sdk.subnets.get(rg, vnet, "vm-subnet")
    assert sorted(c.id.rsplit("/", 3)[1] for c in subnet.ip_configurations) == ["vme-kvm-vm1-vm-nic", "vme-kvm-vm2-vm-nic"]
    with pytest.raises(HttpResponseError) as exc:
        sdk.subnets.begin_delete(rg, vnet, "vm-subnet").result()
    assert exc.value.error.code == "InUseSubnetCannotBeDeleted"
    sdk.subnets.begin_delete(rg, vnet, "mgmt-subnet").result()  # a free subnet can be deleted
    assert [s.name for s in sdk.virtual_networks.get(rg, vnet).subnets] == ["vm-subnet"]
    assert sorted(n.name for n in sdk.network_interfaces.list_all()) == ["vme-kvm-vm1-vm-nic", "vme-kvm-vm2-vm-nic"]
    before = sdk.network_interfaces.get(rg, nic)
    tagged = sdk.network_interfaces.update_tags(rg, nic, {"tags": {"team": "net"}})
    assert tagged.tags == {"team": "net"} and tagged.etag != before.etag
    assert tagged.ip_configurations[0].etag == tagged.etag


def test_other_writer_attaches_an_nsg_when_there_is_one(emulator, plan_of):
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    sdk = ep.sdk(plan)
    rg, vnet = plan.azure.resource_group, plan.azure.vnet
    nsg = sdk.network_security_groups.begin_create_or_update(rg, "their-nsg", {"location": "eastus"}).result()
    sub = sdk.subnets.get(rg, vnet, "vm-subnet").as_dict()
    request(ep, "POST", "/_emulator/inject", {"rates": {"writer": 1.0}}, query="")
    with pytest.raises(HttpResponseError) as exc:
        sdk.subnets.begin_create_or_update(rg, vnet, "vm-subnet", sub, headers={"If-Match": sub["etag"]})
    assert exc.value.status_code == 412
    request(ep, "POST", "/_emulator/inject", {"rates": {"writer": 0.0}}, query="")
    assert sdk.subnets.get(rg, vnet, "vm-subnet").network_security_group.id == nsg.id
    assert ep.stats()["writer_nsg"] == 1
