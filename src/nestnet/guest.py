"""Guest network configuration for nested VMs, from the Plan.

Two guest styles (DESIGN §4):
- ``onlink``: address/32, a route to the host's address on the interface, default via the host
  ``onlink``. The host needs no proxy ARP.
- ``subnet``: address with the subnet's prefix and default via the host; the host answers ARP for
  the subnet on the nested bridge (proxy ARP).
- ``shared``: as ``onlink``, but the gateway is 169.254.1.1, which every host's nested bridge
  carries (with one MAC): the guest's config does not name its host, so it can move
  (docs/decisions/0013).
Every format names the host's DNS forwarder as the name server (the cloud's DNS does not answer nested
addresses; docs/decisions/0011), and the search domains. The same values come by DHCP from the
host (host/dhcp.py), so a guest that asks DHCP gets exactly what these files say.
"""

from __future__ import annotations

import shlex

from .plan import VM, Plan

FORMATS = ("ip", "netplan", "cloud-init", "libvirt", "libvirt-domain")

AGENT_CHANNEL = "org.nestnet.agent"  # the lab's guest agent's virtio-serial port


def ip_commands(vm: VM, iface: str = "eth0") -> list[list[str]]:
    """The ``ip`` commands (argv lists) that configure the guest."""
    cmds = [
        ["ip", "link", "set", iface, "up"],
        ["ip", "addr", "replace", f"{vm.ip}/{vm.prefix_len}", "dev", iface],
    ]
    if vm.guest_style != "subnet":
        cmds += [
            ["ip", "route", "replace", str(vm.gateway), "dev", iface, "scope", "link"],
            ["ip", "route", "replace", "default", "via", str(vm.gateway), "dev", iface, "onlink"],
        ]
    else:
        cmds += [["ip", "route", "replace", "default", "via", str(vm.gateway), "dev", iface]]
    return cmds


def resolv_conf(vm: VM) -> str:
    """/etc/resolv.conf for a guest without a resolver manager."""
    lines = [f"search {' '.join(vm.search)}"] if vm.search else []
    return "\n".join(lines + [f"nameserver {a}" for a in vm.nameservers]) + "\n"


def _dns_lines(vm: VM, iface: str) -> list[str]:
    """Shell lines for the ``ip`` format: systemd-resolved when it runs, else resolv.conf."""
    if not vm.nameservers:
        return []
    q = shlex.quote
    resolved = [f"resolvectl dns {q(iface)} {' '.join(str(a) for a in vm.nameservers)}"]
    if vm.search:
        resolved.append(f"resolvectl domain {q(iface)} {' '.join(q(d) for d in vm.search)}")
    return [
        "if command -v resolvectl >/dev/null 2>&1 && resolvectl status >/dev/null 2>&1; then",
        *(f"  {line}" for line in resolved),
        "else",
        f"  printf '%s\\n' {' '.join(q(line) for line in resolv_conf(vm).splitlines())} > /etc/resolv.conf",
        "fi",
    ]


def _routes(vm: VM) -> list[dict]:
    if vm.guest_style != "subnet":
        return [
            {"to": f"{vm.gateway}/32", "scope": "link"},
            {"to": "default", "via": str(vm.gateway), "on-link": True},
        ]
    return [{"to": "default", "via": str(vm.gateway)}]


def _ethernet(vm: VM, iface: str, match: bool) -> dict:
    eth: dict = {}
    if match:
        eth["match"] = {"macaddress": vm.mac}
        eth["set-name"] = iface
    eth["addresses"] = [f"{vm.ip}/{vm.prefix_len}"]
    eth["routes"] = _routes(vm)
    if vm.nameservers:
        ns: dict = {"addresses": [str(a) for a in vm.nameservers]}
        if vm.search:
            ns["search"] = list(vm.search)
        eth["nameservers"] = ns
    return eth


def _yaml(obj: dict) -> str:
    # JSON is YAML; a flow-free block rendering reads better, so render by hand for 2 levels.
    import yaml

    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)


def render(plan: Plan, vm_name: str, fmt: str, iface: str = "eth0") -> str:
    vm = plan.vms[vm_name]
    host = plan.hosts[vm.host]
    header = f"nestnet guest config for {vm.name} on {vm.host} ({plan.name}, {vm.guest_style} style)"
    if fmt == "ip":
        lines = [f"# {header}", "set -e"]
        lines += [" ".join(shlex.quote(a) for a in c) for c in ip_commands(vm, iface)]
        lines += _dns_lines(vm, iface)
        return "\n".join(lines) + "\n"
    if fmt == "netplan":
        doc = {"network": {"version": 2, "ethernets": {iface: _ethernet(vm, iface, match=False)}}}
        return f"# {header}\n" + _yaml(doc)
    if fmt == "cloud-init":
        doc = {"version": 2, "ethernets": {iface: _ethernet(vm, iface, match=True)}}
        return f"# {header}\n# cloud-init network-config (version 2)\n" + _yaml(doc)
    if fmt == "libvirt":
        vport = "\n  <virtualport type='openvswitch'/>" if host.bridge_type == "ovs" else ""
        return (
            f"<!-- {header} -->\n"
            + _dhcp_note(vm, host.bridge)
            + "<interface type='bridge'>\n"
            f"  <mac address='{vm.mac}'/>\n"
            f"  <source bridge='{host.bridge}'/>{vport}\n"
            "  <model type='virtio'/>\n"
            "</interface>\n"
        )
    if fmt == "libvirt-domain":
        return (
            f"<!-- {header}: define with virsh define; disk and seed paths are examples -->\n"
            + _dhcp_note(vm, host.bridge)
            + domain_xml(plan, vm_name)
        )
    raise ValueError(f"unknown format {fmt!r}")


def _dhcp_note(vm: VM, bridge: str) -> str:
    """What the guest gets from nestnet's DHCP server, as an XML comment (libvirt formats carry no
    addresses of their own)."""
    dns = ", ".join(str(a) for a in vm.nameservers)
    search = f", search {' '.join(vm.search)}" if vm.search else ""
    return (
        f"<!-- the guest gets {vm.ip}/{vm.prefix_len} by DHCP from nestnet on {bridge} (a static lease for"
        f" this MAC), with name server {dns}{search} -->\n"
    )


def domain_xml(
    plan: Plan,
    vm_name: str,
    *,
    domain_type: str = "kvm",
    memory_mib: int = 512,
    vcpus: int = 1,
    disk: str | None = None,
    seed: str | None = None,
    seed_bus: str = "sata",
    kernel: str | None = None,
    initrd: str | None = None,
    cmdline: str | None = None,
    console_log: str | None = None,
    agent_socket: str | None = None,
) -> str:
    """Pure: a whole libvirt domain for the VM, with the ``<interface>`` of the ``libvirt`` format.

    As users define one on a KVM host: a qcow2 disk (``/var/lib/libvirt/images/<vm>.qcow2`` unless
    ``disk``), the NoCloud seed as a CD-ROM labelled ``cidata`` when ``seed`` is given (cloud-init's
    NoCloud datasource finds it by that label; ``seed_bus="virtio"``: a read-only virtio disk
    instead, for kernels without AHCI such as Debian's cloud kernel), a serial console. The lab passes ``domain_type="qemu"``
    (TCG: KVM does not run here, DESIGN 5b), a ``kernel``/``initrd`` booted directly, the console to a
    file and a virtio-serial channel for its agent. The name is the VM's, which the qemu hook maps
    back to the VM (host/libvirt_hook.py); the MAC is nestnet's, which its DHCP server leases.
    """
    import xml.etree.ElementTree as ET

    vm = plan.vms[vm_name]
    host = plan.hosts[vm.host]
    dom = ET.Element("domain", type=domain_type)
    ET.SubElement(dom, "name").text = vm.name
    ET.SubElement(dom, "memory", unit="MiB").text = str(memory_mib)
    ET.SubElement(dom, "vcpu").text = str(vcpus)
    _os_boot(ET.SubElement(dom, "os"), kernel, initrd, cmdline)
    ET.SubElement(dom, "on_poweroff").text = "destroy"
    ET.SubElement(dom, "on_reboot").text = "restart"
    ET.SubElement(dom, "on_crash").text = "destroy"
    dev = ET.SubElement(dom, "devices")
    if not kernel or disk:
        _disk(dev, "disk", "qcow2", disk or f"/var/lib/libvirt/images/{vm.name}.qcow2", "vda", "virtio")
    if seed:
        cd = ("cdrom", "sda", "sata") if seed_bus == "sata" else ("disk", "vdb", "virtio")
        ET.SubElement(_disk(dev, cd[0], "raw", seed, cd[1], cd[2]), "readonly")
    nic = ET.SubElement(dev, "interface", type="bridge")
    ET.SubElement(nic, "mac", address=vm.mac)
    ET.SubElement(nic, "source", bridge=host.bridge)
    if host.bridge_type == "ovs":
        ET.SubElement(nic, "virtualport", type="openvswitch")
    ET.SubElement(nic, "model", type="virtio")
    _console(dev, console_log)
    if agent_socket:
        ch = ET.SubElement(dev, "channel", type="unix")
        ET.SubElement(ch, "source", mode="bind", path=agent_socket)
        ET.SubElement(ch, "target", type="virtio", name=AGENT_CHANNEL)
    ET.SubElement(dev, "memballoon", model="none")
    ET.indent(dom)
    return ET.tostring(dom, encoding="unicode") + "\n"


def _os_boot(os_, kernel: str | None, initrd: str | None, cmdline: str | None) -> None:
    import xml.etree.ElementTree as ET

    ET.SubElement(os_, "type", arch="x86_64", machine="pc").text = "hvm"
    if not kernel:
        ET.SubElement(os_, "boot", dev="hd")
        return
    ET.SubElement(os_, "kernel").text = kernel
    if initrd:
        ET.SubElement(os_, "initrd").text = initrd
    if cmdline:
        ET.SubElement(os_, "cmdline").text = cmdline


def _disk(dev, device: str, fmt: str, path: str, target: str, bus: str):
    import xml.etree.ElementTree as ET

    d = ET.SubElement(dev, "disk", type="file", device=device)
    ET.SubElement(d, "driver", name="qemu", type=fmt)
    ET.SubElement(d, "source", file=path)
    ET.SubElement(d, "target", dev=target, bus=bus)
    return d


def _console(dev, console_log: str | None) -> None:
    """A serial port and the console on it: to a file (the lab reads it) or a pty (virsh console)."""
    import xml.etree.ElementTree as ET

    kind = "file" if console_log else "pty"
    for tag in ("serial", "console"):
        el = ET.SubElement(dev, tag, type=kind)
        if console_log:
            ET.SubElement(el, "source", path=console_log)
        if tag == "serial":
            ET.SubElement(el, "target", port="0")
        else:
            ET.SubElement(el, "target", type="serial", port="0")


def cloud_init_seed(plan: Plan, vm_name: str, iface: str = "eth0", user_data: str | None = None) -> dict[str, str]:
    """Pure: the NoCloud seed's three files (cloud-init's NoCloud datasource: ``meta-data``,
    ``user-data``, ``network-config``), the network config being the ``cloud-init`` format."""
    vm = plan.vms[vm_name]
    return {
        "meta-data": f"instance-id: nestnet-{plan.name}-{vm.name}\nlocal-hostname: {vm.name}\n",
        "user-data": user_data or "#cloud-config\n{}\n",
        "network-config": render(plan, vm_name, "cloud-init", iface),
    }
