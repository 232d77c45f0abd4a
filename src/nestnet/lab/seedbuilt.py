"""A lab host as the seed document's manual procedure leaves it (``lab up --as-seed``).

Runs INSIDE the host's namespace instead of nestnet's reconciler. What the seed does by hand:

- ``ip route add <block> via <host> dev <uplink>`` for every other host's block (plain ``ip``:
  proto boot), and the nested VMs' bridge with a route to the host's own block, as libvirt or an
  operator makes it (its own MAC, no nestnet alias);
- ``net.ipv4.ip_forward=1`` appended to /etc/sysctl.conf;
- ``ufw default allow routed``: the forward path is open (no firewall table at all), and
  /etc/default/ufw says ``DEFAULT_FORWARD_POLICY="ACCEPT"``;
- the routes persisted "via systemd network configuration" (a networkd file without
  ``Protocol=``), as ``setup-nested-vm-routes.sh`` does;
- internet egress, where the spec asks for it, by the seed's own NAT recipe: an iptables
  MASQUERADE rule saved by iptables-persistent (/etc/iptables/rules.v4), limited to
  destinations outside the VNet.

Nothing of nestnet's: no route with its protocol, no nftables table ``nestnet``, none of its
files. The files go under the host's lab root, where ``host diff`` and ``doctor`` look.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..errors import LabError
from ..plan import Plan
from .sysio import ip_batch, write_sysctls

SEED_SYSCTL_LINE = "net.ipv4.ip_forward=1\n"


def bridge_mac(plan: Plan, host: str) -> str:
    """A libvirt-style MAC for the hand-made bridge (52:54:00 + the host's address)."""
    b = plan.hosts[host].ip.packed
    return f"52:54:00:{b[1]:02x}:{b[2]:02x}:{b[3]:02x}"


def files(plan: Plan, host: str) -> dict[str, str]:
    """Pure: the files the manual procedure leaves, relative to the host's root."""
    h = plan.hosts[host]
    routes = [r for r in h.routes if r.via is not None]
    networkd = "[Match]\nName={}\n\n[Network]\nDHCP=yes\n".format(h.uplink)
    for r in routes:
        networkd += f"\n[Route]\nDestination={r.dst}\nGateway={r.via}\n"
    out = {
        "etc/sysctl.conf": "# /etc/sysctl.conf - Configuration file for setting system variables\n" + SEED_SYSCTL_LINE,
        "etc/default/ufw": 'IPV6=yes\nDEFAULT_INPUT_POLICY="DROP"\nDEFAULT_OUTPUT_POLICY="ACCEPT"\n'
                           'DEFAULT_FORWARD_POLICY="ACCEPT"\nDEFAULT_APPLICATION_POLICY="SKIP"\n',
        f"etc/systemd/network/10-nested-vm-routes-{h.uplink}.network": networkd,
    }
    if h.masquerade != "none":
        out["etc/iptables/rules.v4"] = (
            "*nat\n:POSTROUTING ACCEPT [0:0]\n"
            f"-A POSTROUTING -s {h.block} -o {h.uplink} {_not_vnet(plan)}-j MASQUERADE\nCOMMIT\n"
        )
    return out


def _not_vnet(plan: Plan) -> str:
    # iptables takes one negated destination; the VNet's first address space is the seed's case.
    return f"! -d {plan.address_space[0]} "


def configure(plan: Plan, host: str, root: str) -> None:
    """Inside the host's namespace: the hand-built configuration, live and on disk."""
    h = plan.hosts[host]
    if h.bridge_type != "linux" or h.bridge_has_uplink:
        raise LabError(f"host {host}: --as-seed builds Linux bridges without the uplink only")
    write_sysctls({"net.ipv4.ip_forward": "1"})
    lines = [f"link add {h.bridge} address {bridge_mac(plan, host)} type bridge", f"link set {h.bridge} up"]
    lines += [f"route add {r.dst} via {r.via} dev {r.dev}" if r.via else f"route add {r.dst} dev {r.dev}" for r in h.routes]
    ip_batch(lines)
    if h.masquerade != "none":
        rules = files(plan, host)["etc/iptables/rules.v4"]
        r = subprocess.run(["iptables-restore"], input=rules, capture_output=True, text=True)
        if r.returncode != 0:
            raise LabError(f"host {host}: iptables-restore: {r.stderr.strip()}")
    for rel, text in files(plan, host).items():
        p = Path(root) / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def configure_bare(plan: Plan, host: str) -> None:
    """Inside the host's namespace: a fresh KVM host - its VMs' bridge, nothing else - for
    ``host add`` to bring in."""
    h = plan.hosts[host]
    if h.bridge_type != "linux" or h.bridge_has_uplink:
        raise LabError(f"host {host}: bare hosts have a Linux bridge without the uplink only")
    ip_batch([f"link add {h.bridge} address {bridge_mac(plan, host)} type bridge", f"link set {h.bridge} up"])
