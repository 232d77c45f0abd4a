"""lab up --hosts systemd --guests libvirt: each nested VM a QEMU (TCG) libvirt domain on its
booted host, defined from nestnet's own domain XML, getting its planned address from nestnet's
dnsmasq by DHCP; probes run inside the guests through their agent (issue 22). Driven through the
CLI, as tests/host/test_boot.py does."""

from __future__ import annotations

import os
import subprocess


from nestnet.lab import core, libvirt
from nestnet.lab.dns import INTERNET_NAME
from nestnet.lab.matrix import matrix
from nestnet.plan import load_plan

from .libvirt_common import MARKS, NESTNET, SEED, images, nestnet as _nestnet  # noqa: F401 - images: the module's autouse fixture

pytestmark = MARKS


def test_dhcp_guests_reach_each_other_mgmt_and_the_internet_name(tmp_path):
    spec = tmp_path / "nestnet.yaml"
    spec.write_text(SEED.read_text().replace("\nname: ", f"\nname: lg{os.getpid() % 10000}-", 1))  # own lab name
    _nestnet("lab", "up", str(spec), "--hosts", "systemd", "--guests", "libvirt", "--ufw", "ufw-hosts")
    try:
        plan = load_plan(str(spec))
        state = core.state_dir(plan.name)
        mgmt = [str(e.ip) for e in plan.endpoints.values()]
        for vm in plan.vms.values():
            targets = [str(v.ip) for v in plan.vms.values() if v.name != vm.name] + mgmt + [INTERNET_NAME]
            cmds = ["ip addr show eth0", "cat /etc/resolv.conf", *(f"ping -c1 -W5 {t}" for t in targets)]
            got = libvirt.agent(plan, state, vm.name, cmds)
            assert f"inet {vm.ip}/32" in got[0][1]  # the planned address, by DHCP from nestnet's dnsmasq
            assert f"nameserver {vm.nameservers[0]}" in got[1][1]
            for (rc, out), cmd in zip(got[2:], cmds[2:]):
                assert rc == 0, f"{vm.name}: {cmd}: {out}"
        # lab matrix probes from inside the guests (their agent) and check agrees: every pair green
        red = [(r.src, r.dst) for r in matrix(plan) if not r.ok]
        assert red == []
        _nestnet("check", str(spec))
        for vm in plan.vms:  # a second session is answered too (the agent opens its port again)
            assert libvirt.agent(plan, state, vm, ["hostname"]) == [(0, vm)]
    finally:
        subprocess.run([NESTNET, "-q", "lab", "down", str(spec)], capture_output=True)
