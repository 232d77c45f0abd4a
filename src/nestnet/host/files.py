"""Persistent files: what keeps the host's state across reboot and ``netplan apply``. Pure render.

- routes: a systemd-networkd drop-in for the device that carries them (netplan names its files
  ``10-netplan-<dev>.network``; a drop-in directory beside any copy of that name applies), each
  ``[Route]`` with ``Protocol=201`` so networkd configures, and so keeps, nestnet's routes even
  with ``ManageForeignRoutes=yes``;
- the nested bridge nestnet made: its own ``.network`` (own-block route, /32 in subnet style) and,
  for a Linux bridge, ``.netdev`` (fixed MAC; OVS keeps its bridges in its own database);
- sysctls: ``/etc/sysctl.d/60-nestnet.conf``; per-device keys (the bridge's) once the device
  exists, by ``nestnet-link-sysctl.service`` (systemd-sysctl runs at boot before networkd makes
  the bridge, and without udev - a container - nothing applies them later; issue 21);
- the nftables table: ``/etc/nestnet/firewall.nft`` loaded by ``nestnet-firewall.service``
  (not ``/etc/nftables.conf``, whose stock version starts with ``flush ruleset``);
- the protocol name: ``/etc/iproute2/rt_protos.d/nestnet.conf``.
Every file starts with a header saying nestnet owns it; that header is how ``remove`` and stale
clean-up recognise them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Collection, Iterable, Mapping

from .. import sysctl
from ..plan import ROUTE_PROTO, ROUTE_PROTO_NAME, Host, Plan
from ..mobility import SHARED_GATEWAY, SHARED_GATEWAY_MAC
from . import dhcp

if TYPE_CHECKING:
    from .desired import WantedKernelRoute

MARK = "Managed by nestnet"
NETWORKD = "etc/systemd/network"
UNIT = "etc/systemd/system/nestnet-firewall.service"
UNIT_LINK = "etc/systemd/system/multi-user.target.wants/nestnet-firewall.service"
NFT_FILE = "etc/nestnet/firewall.nft"
LINK_UNIT = "etc/systemd/system/nestnet-link-sysctl.service"
LINK_UNIT_LINK = "etc/systemd/system/multi-user.target.wants/nestnet-link-sysctl.service"
SYSCTL_BIN = "/usr/lib/systemd/systemd-sysctl"
# Where owned files may be, for finding stale ones (glob patterns relative to root).
OWNED_GLOBS = (
    "etc/iproute2/rt_protos.d/nestnet.conf",
    "etc/sysctl.d/60-nestnet.conf",
    NFT_FILE,
    UNIT,
    UNIT_LINK,
    LINK_UNIT,
    LINK_UNIT_LINK,
    f"{NETWORKD}/50-nestnet-*",
    f"{NETWORKD}/*.network.d/50-nestnet.conf",
    "etc/libvirt/hooks/qemu.d/50-nestnet",
    *dhcp.FILES,
)


@dataclass(frozen=True)
class File:
    content: str = ""
    link: str | None = None  # a symlink to this target instead of content
    executable: bool = False  # mode 0755 instead of 0644 (the libvirt hook)

    def describe(self) -> str:
        return f"-> {self.link}" if self.link else f"{len(self.content.splitlines())} lines" + (
            ", executable" if self.executable else "")


def header(plan: Plan, host: Host, comment: str = "#") -> str:
    return (
        f"{comment} {MARK} (fabric {plan.name}, host {host.name}).\n"
        f"{comment} Do not edit: `nestnet host apply` rewrites it, `nestnet host remove` deletes it.\n"
    )


def _routes_dropin(routes: Iterable[WantedKernelRoute], dev: str) -> str:
    out = []
    for r in routes:
        if r.dev != dev:
            continue
        if r.via_s:
            out.append(f"[Route]\nDestination={r.dst_s}\nGateway={r.via_s}\nGatewayOnLink=yes\nProtocol={ROUTE_PROTO}\n")
        else:
            out.append(f"[Route]\nDestination={r.dst_s}\nScope=link\nProtocol={ROUTE_PROTO}\n")
    return "\n".join(out)


def bridge_mac(host: Host) -> str:
    """A fixed, locally administered MAC so the bridge's address never changes as ports join;
    with the shared gateway one MAC on every host, so a moved guest's ARP entry stays right."""
    if host.bridge_address == SHARED_GATEWAY:
        return SHARED_GATEWAY_MAC
    b = host.ip.packed
    return f"02:6e:{b[0]:02x}:{b[1]:02x}:{b[2]:02x}:{b[3]:02x}"


def render(
    plan: Plan, host: Host, sysctl: Mapping[str, str], nft_ruleset: str | None, routes: Collection[WantedKernelRoute]
) -> dict[str, File]:
    files: dict[str, File] = {
        "etc/iproute2/rt_protos.d/nestnet.conf": File(header(plan, host) + f"{ROUTE_PROTO}\t{ROUTE_PROTO_NAME}\n"),
        "etc/sysctl.d/60-nestnet.conf": File(
            header(plan, host) + "".join(f"{_sysctl_key(k)} = {v}\n" for k, v in sysctl.items())
        ),
    }
    own_bridge = not host.bridge_has_uplink  # nestnet made it; one that holds the uplink is its owner's
    for dev in sorted({r.dev for r in host.routes}):
        if dev == host.bridge and own_bridge:
            continue
        files[f"{NETWORKD}/10-netplan-{dev}.network.d/50-nestnet.conf"] = File(
            header(plan, host) + "\n" + _routes_dropin(routes, dev)
        )
    if own_bridge:
        if host.bridge_type == "linux":  # OVS keeps its bridges in its own database
            files[f"{NETWORKD}/50-nestnet-{host.bridge}.netdev"] = File(
                header(plan, host) + f"[NetDev]\nName={host.bridge}\nKind=bridge\nMACAddress={bridge_mac(host)}\n"
            )
        net = [
            header(plan, host),
            f"[Match]\nName={host.bridge}\n",
            "[Network]\nConfigureWithoutCarrier=yes\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n",
        ]
        if host.bridge_address is not None:
            net.append(f"[Address]\nAddress={host.bridge_address}/32\n")
        net.append(_routes_dropin(routes, host.bridge))
        files[f"{NETWORKD}/50-nestnet-{host.bridge}.network"] = File("\n".join(net))
    if nft_ruleset is not None:
        files[NFT_FILE] = File(header(plan, host) + nft_ruleset)
        files[UNIT] = File(
            header(plan, host)
            + "[Unit]\nDescription=nestnet's nftables tables\n"
            "DefaultDependencies=no\nBefore=network-pre.target\nWants=network-pre.target\n"
            "After=local-fs.target\n\n"
            "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
            f"ExecStart=/usr/sbin/nft -f /{NFT_FILE}\n\n"
            "[Install]\nWantedBy=multi-user.target\n"
        )
        files[UNIT_LINK] = File(link=f"/{UNIT}")
    devs = link_devices(sysctl)
    if devs:
        files[LINK_UNIT] = File(header(plan, host) + link_unit(devs))
        files[LINK_UNIT_LINK] = File(link=f"/{LINK_UNIT}")
    if host.migration_hook:
        from .libvirt_hook import HOOK_PATH, render as render_hook

        files[HOOK_PATH] = File(render_hook(plan, host, header(plan, host)), executable=True)
    files.update(dhcp.files(plan, host, header(plan, host), File))
    return files


def link_devices(keys: Iterable[str]) -> list[str]:
    """The devices with keys of their own (net.ipv4.conf.<dev>.*, net.ipv4.neigh.<dev>.*)."""
    out = set()
    for k in keys:
        p = sysctl.parts(k)
        if len(p) == 5 and p[:2] == ["net", "ipv4"] and p[2] in ("conf", "neigh") and p[3] not in ("all", "default"):
            out.add(p[3])
    return sorted(out)


def link_unit(devs: list[str]) -> str:
    """A oneshot after networkd: wait for each device (30 s at most), then let systemd-sysctl
    apply that device's keys from sysctl.d, as udev's 99-systemd.rules does where udev runs."""
    waits = " ".join(f"/proc/sys/net/ipv4/conf/{d}" for d in devs)
    prefixes = " ".join(f"--prefix=/net/ipv4/conf/{d} --prefix=/net/ipv4/neigh/{d}" for d in devs)
    return (
        f"[Unit]\nDescription=nestnet's per-device sysctls ({', '.join(devs)}) once the devices exist\n"
        "After=systemd-networkd.service systemd-sysctl.service openvswitch-switch.service\n"
        "Before=network-online.target libvirtd.service\n\n"
        "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
        f"ExecStart=/bin/sh -c 'for i in $$(seq 300); do ok=1; for d in {waits}; do [ -d $$d ] || ok=; done; "
        "[ -n \"$$ok\" ] && exit 0; sleep 0.1; done; echo devices missing >&2; exit 1'\n"
        f"ExecStart={SYSCTL_BIN} {prefixes}\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


def _sysctl_key(key: str) -> str:
    # sysctl.d reads '/' as the separator when the key has one: needed for names with a dot.
    parts = sysctl.parts(key)
    text = "/".join(parts) if any("." in p for p in parts) else key
    # br_netfilter's keys exist only once the module is loaded: '-' lets systemd-sysctl skip them.
    return "-" + text if key.startswith("net.bridge.") else text


def read(root: Path, want: Mapping[str, File]) -> dict[str, File | None]:
    """The wanted paths plus every owned file found under ``root`` (recognised by its header)."""
    seen: dict[str, File | None] = {}
    paths = set(want)
    for pattern in OWNED_GLOBS:
        paths.update(str(p.relative_to(root)) for p in root.glob(pattern))
    for rel in paths:
        p = root / rel
        if p.is_symlink():
            seen[rel] = File(link=str(p.readlink())) if rel in want or rel in (UNIT_LINK, LINK_UNIT_LINK, dhcp.UNIT_LINK) else None
            continue
        try:
            text = p.read_text()
        except (FileNotFoundError, NotADirectoryError):
            seen[rel] = None
            continue
        lines = text.split("\n", 2)  # the marker is on the first line, or after a #! line
        mine = MARK in (lines[1] if text.startswith("#!") and len(lines) > 1 else lines[0])
        seen[rel] = File(text, executable=os.access(p, os.X_OK)) if (mine or rel in want) else None
    return seen
