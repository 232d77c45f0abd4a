"""guest.py's whole libvirt domain and NoCloud seed: libvirt's own schema (virt-xml-validate)
accepts them, and they carry what nestnet planned (the VM's MAC on its host's bridge)."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
import yaml

from nestnet import guest
from nestnet.cli import vm as cli_vm
from nestnet.plan import load_plan

from .specs import seed as seed_spec, write


def write_seed(tmp_path):
    return write(tmp_path, seed_spec())


def _validate(tmp_path, text: str) -> None:
    if shutil.which("virt-xml-validate") is None or shutil.which("xmllint") is None:
        pytest.skip("virt-xml-validate (libvirt-clients) and xmllint (libxml2-utils) not installed: scripts/system-deps")
    f = tmp_path / "d.xml"
    f.write_text(text)
    r = subprocess.run(["virt-xml-validate", str(f), "domain"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_cli_offers_every_guest_format():
    assert cli_vm.FORMATS == guest.FORMATS


def test_user_domain_validates_and_carries_the_plan(tmp_path):
    plan = load_plan(str(write_seed(tmp_path)))
    text = guest.render(plan, "web1", "libvirt-domain")
    _validate(tmp_path, text)
    dom = ET.fromstring(text.split("-->", 1)[1])
    assert dom.get("type") == "kvm" and dom.findtext("name") == "web1"
    nic = dom.find("devices/interface")
    assert nic.find("mac").get("address") == plan.vms["web1"].mac
    assert nic.find("source").get("bridge") == plan.hosts[plan.vms["web1"].host].bridge
    assert dom.find("devices/disk/source").get("file") == "/var/lib/libvirt/images/web1.qcow2"


def test_lab_domain_validates(tmp_path):
    plan = load_plan(str(write_seed(tmp_path)))
    text = guest.domain_xml(plan, "web2", domain_type="qemu", kernel="/g/vmlinuz", initrd="/g/initrd",
                            cmdline="console=ttyS0", console_log="/g/console.log", agent_socket="/g/agent.sock",
                            seed="/g/seed.iso")
    _validate(tmp_path, text)
    dom = ET.fromstring(text)
    assert dom.get("type") == "qemu" and dom.findtext("os/kernel") == "/g/vmlinuz"
    assert dom.find("devices/channel/target").get("name") == guest.AGENT_CHANNEL
    assert dom.find("devices/disk[@device='cdrom']/source").get("file") == "/g/seed.iso"
    assert dom.find("devices/disk[@device='disk']") is None  # a kernel booted directly needs no disk


def test_seed_network_config_is_the_cloud_init_format(tmp_path):
    plan = load_plan(str(write_seed(tmp_path)))
    seed = guest.cloud_init_seed(plan, "web1")
    assert set(seed) == {"meta-data", "user-data", "network-config"}
    net = yaml.safe_load(seed["network-config"])
    assert net["version"] == 2
    assert net["ethernets"]["eth0"]["addresses"] == [f"{plan.vms['web1'].ip}/{plan.vms['web1'].prefix_len}"]
    assert yaml.safe_load(seed["meta-data"])["local-hostname"] == "web1"
    assert seed["user-data"].startswith("#cloud-config")


def test_lab_cloud_init_domain_validates_with_its_disk_and_seed(tmp_path):
    from nestnet.lab import libvirt

    plan = load_plan(str(write_seed(tmp_path)))
    text = libvirt.domain(plan, "web2", cloud_init=True)
    _validate(tmp_path, text)
    dom = ET.fromstring(text)
    p = libvirt.paths("web2")
    root = dom.find("devices/disk[@device='disk']/target[@dev='vda']/..")
    assert root.find("source").get("file") == p["disk"] and root.find("driver").get("type") == "qcow2"
    # Debian's cloud kernel has no AHCI: the cidata seed is a read-only virtio disk, not a SATA CD-ROM
    seed = dom.find("devices/disk[@device='disk']/target[@dev='vdb']/..")
    assert seed.find("source").get("file") == p["seed"] and seed.find("readonly") is not None
    assert seed.find("target").get("bus") == "virtio"
    assert "root=/dev/vda" in dom.findtext("os/cmdline")
    assert dom.find("devices/interface/mac").get("address") == plan.vms["web2"].mac
