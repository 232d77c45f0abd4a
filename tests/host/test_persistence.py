"""The persistent files are what the tools expect: netplan's file names, nft, systemd, sysctl."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from nestnet import host
from nestnet.host import files

pytestmark = pytest.mark.root


def test_files_load_in_their_tools(ns, make_plan, root):
    n = ns()
    plan = make_plan(guest_style="subnet")
    n.run(host.apply, plan, "h0", root)

    # networkd drop-in sits beside the file netplan generates for the uplink
    (root / "etc/netplan").mkdir()
    np = root / "etc/netplan/50-uplink.yaml"
    np.write_text("network:\n  version: 2\n  ethernets:\n    eth1:\n      addresses: [10.0.1.10/24]\n")
    np.chmod(0o600)
    subprocess.run(["netplan", "generate", "--root-dir", str(root)], check=True, capture_output=True)
    generated = {p.name for p in (root / "run/systemd/network").glob("*.network")}
    dropins = {p.parent.name.removesuffix(".d") for p in (root / files.NETWORKD).glob("*.network.d/50-nestnet.conf")}
    assert dropins == {"10-netplan-eth1.network"} and dropins <= generated
    text = (root / files.NETWORKD / "10-netplan-eth1.network.d/50-nestnet.conf").read_text()
    assert "Destination=10.0.1.48/28\nGateway=10.0.1.11\nGatewayOnLink=yes\nProtocol=201" in text
    assert text.startswith("# Managed by nestnet")

    # the nft file checks (nft -c) and, loaded, gives the same table apply made
    nft_file = root / files.NFT_FILE
    n.sh("nft", "-c", "-f", str(nft_file))
    n.sh("nft", "-f", str(nft_file))
    assert n.run(host.diff, plan, "h0", root) == []

    # the unit verifies
    if shutil.which("systemd-analyze"):
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(root / files.UNIT)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    assert str((root / files.UNIT_LINK).readlink()) == "/" + files.UNIT

    # sysctl.d: systemd-sysctl applies it (in the namespace: net.* keys are per namespace)
    n.sh("sysctl", "-w", "net.ipv4.ip_forward=0", "net.ipv4.conf.nestbr0.proxy_arp=0")
    n.sh("/lib/systemd/systemd-sysctl", str(root / "etc/sysctl.d/60-nestnet.conf"))
    assert n.run(host.diff, plan, "h0", root) == []

    # the protocol name file is read by ip
    assert (root / "etc/iproute2/rt_protos.d/nestnet.conf").read_text().splitlines()[-1] == "201\tnestnet"
