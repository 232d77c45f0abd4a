"""The cloud-init guest (issue 22): its figures beside a DHCP guest's, through the CLI as a user runs it.

- image build: `nestnet lab image --flavour cloud-init --refresh --json` into a throw-away cache
  (only with --build: debootstrap from Debian's mirror, a few minutes);
- per round, the seed as a systemd + libvirt lab with web1 by DHCP and web2 by cloud-init:
  `lab up` wall time, each guest's boot to its address (guest uptime, from its console), and the
  cloud-init guest's stages (/run/cloud-init/status.json once `cloud-init status --wait` is done).
Run as root: .venv/bin/python bench/bench_cloudinit_guest.py [rounds] [--build]
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEED = Path(__file__).parents[1] / "examples" / "seed.yaml"
NESTNET = [sys.executable, "-m", "nestnet", "-q"]
CLOUD_INIT_VM, DHCP_VM = "web2", "web1"


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([*NESTNET, *args], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"nestnet {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def console(plan, vm: str) -> str:
    from nestnet.lab import core, libvirt

    state = core.state_dir(plan.name)
    return (libvirt.host_root(state, plan.vms[vm].host) / libvirt.paths(vm)["log"].lstrip("/")).read_text(
        errors="replace")


def uptime_at_address(text: str, vm_ip: str) -> float:
    """The guest's uptime when it held its address: the cloud-init guest's unit says it; the DHCP
    guest's initrd prints its userspace time right after udhcpc's lease."""
    m = re.search(rf"eth0 {re.escape(vm_ip)}/\S+ by cloud-init at ([\d.]+) s", text)
    if m:
        return float(m.group(1))
    m = re.search(r"nestnet-guest: userspace at ([\d.]+) s", text)
    if m:
        return float(m.group(1))
    raise SystemExit(f"no address line for {vm_ip} on the console")


def one_round(n: int) -> dict[str, float]:
    from nestnet.lab import core, libvirt
    from nestnet.plan import load_plan

    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "nestnet.yaml"
        spec.write_text(SEED.read_text().replace("\nname: ", f"\nname: bci{os.getpid() % 1000}{n}-", 1))
        t0 = time.monotonic()
        cli("lab", "up", str(spec), "--hosts", "systemd", "--guests", "libvirt", "--cloud-init", CLOUD_INIT_VM)
        up = time.monotonic() - t0
        try:
            plan = load_plan(str(spec))
            got = {"lab_up_s": up}
            for vm in (DHCP_VM, CLOUD_INIT_VM):
                got[f"{vm}_address_uptime_s"] = uptime_at_address(console(plan, vm), str(plan.vms[vm].ip))
            (_, _), (_, status) = libvirt.agent(plan, core.state_dir(plan.name), CLOUD_INIT_VM, [
                "cloud-init status --wait", "cat /run/cloud-init/status.json"], timeout=300)
            # each stage's start and end as cloud-init records them (`cloud-init analyze show` raised
            # IndexError on this image's log)
            for stage, v in json.loads(status)["v1"].items():
                if isinstance(v, dict) and v.get("start") and v.get("finished"):
                    got[f"stage_{stage}_s"] = v["finished"] - v["start"]
            return got
        finally:
            subprocess.run([*NESTNET, "lab", "down", str(spec)], capture_output=True)


def main() -> int:
    argv = [a for a in sys.argv[1:] if a != "--build"]
    rounds = int(argv[0]) if argv else 1
    if "--build" in sys.argv:
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "NESTNET_IMAGE_CACHE": cache}
            t0 = time.monotonic()
            got = json.loads(cli("lab", "image", "--flavour", "cloud-init", "--refresh", "--json", env=env).stdout)
            print(f"cloud-init image build: {time.monotonic() - t0:.0f} s, rootfs {got['rootfs_mib']} MiB used")
    for flavour in ("libvirt", "guest", "cloud-init"):
        cli("lab", "image", "--flavour", flavour)
    load = os.getloadavg()[0]
    results = [one_round(i) for i in range(rounds)]
    for key in results[0]:
        vals = [r[key] for r in results if key in r]
        print(f"{key:32} median {statistics.median(vals):7.1f} s  (min {min(vals):.1f}, max {max(vals):.1f})")
    ci = statistics.median(r[f"{CLOUD_INIT_VM}_address_uptime_s"] for r in results)
    dh = statistics.median(r[f"{DHCP_VM}_address_uptime_s"] for r in results)
    print(f"boot to address, cloud-init / DHCP guest: {ci / dh:.1f}x  ({rounds} rounds, load average {load:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
