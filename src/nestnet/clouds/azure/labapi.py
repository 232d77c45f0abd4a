"""Azure's API in the lab (``lab up --azure api``): nestnet's ARM emulator inside the lab's
``internet`` namespace at https://203.0.113.10 - where ARM is for Azure VMs: on the internet,
reached through the fabric - seeded from the spec and programming the fabric on every write
(``nestnet.clouds.azure.lab.lab_programmer``). The lab core reaches it through the seam
(``nestnet.clouds.LabApi``); this module stays cheap to import (the CLI reads its help texts).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from ...errors import LabError

if TYPE_CHECKING:
    from ...lab.topology import Topology
    from ...plan import Plan

ARM_PORT = 443
ARM_DIR = "arm"  # the emulator's state, under the lab's state directory (a running lab's name: kept)


class AzureLabApi:
    """``nestnet.clouds.LabApi`` for Azure: the ARM emulator."""

    api = "ARM API"
    emulator = "ARM emulator"
    up_help = ("Where Azure's side comes from: the plan, or (api) an ARM emulator inside the lab's "
               "internet, empty as Terraform left it, that `nestnet azure apply` on a lab host programs.")
    migrate_help = "Expect the lab's Azure to come from the plan or the ARM API (as it was brought up)."

    def start(self, plan: Plan, topo: Topology, lab_dir: Path, propagation_delay: float = 0.0,
              timeout: float = 30.0) -> None:
        """Run ``nestnet azure emulator`` inside the internet namespace; ``lab down`` ends it with the
        namespace's other processes."""
        from ...lab.topology import INTERNET_IP

        if not plan.source:
            raise LabError("--azure api needs the plan's spec file (the emulator is seeded from it)")
        d = lab_dir / ARM_DIR
        d.mkdir(parents=True, exist_ok=True)
        log = open(d / "emulator.log", "w")
        cmd = [
            "ip", "netns", "exec", topo.internet_ns,
            sys.executable, "-m", "nestnet", "azure", "emulator",
            "--listen", f"{INTERNET_IP}:{ARM_PORT}", "--state-dir", str(d),
            "--seed", str(Path(plan.source).resolve()), "--program-lab",
            "--propagation-delay", str(propagation_delay),
        ]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log.close()
        (d / "pid").write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + timeout
        while not (d / "endpoint").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                tail = (d / "emulator.log").read_text().strip().splitlines()[-1:] or ["no output"]
                raise LabError(f"the lab's ARM emulator did not start: {tail[0]}")
            time.sleep(0.05)

    def endpoint(self, lab_dir: Path) -> str | None:
        p = lab_dir / ARM_DIR / "endpoint"
        return p.read_text().strip() if p.exists() else None

    def env(self, plan: Plan, lab_dir: Path) -> dict[str, str]:
        """What a lab host needs to reach the lab's ARM emulator."""
        from .emulator import DEFAULT_SUBSCRIPTION

        d = lab_dir / ARM_DIR
        return {
            "NESTNET_ARM_ENDPOINT": (d / "endpoint").read_text().strip(),
            "NESTNET_ARM_CA_BUNDLE": str(d / "ca.pem"),
            "NESTNET_ARM_TOKEN": "lab",  # the emulator takes any bearer token
            "AZURE_SUBSCRIPTION_ID": plan.azure.subscription_id or DEFAULT_SUBSCRIPTION,
        }

    def build_by_hand(self, plan: Plan, env: Mapping[str, str]) -> None:
        """Inside a lab host: the seed's route table, associations and forwarding, through ARM."""
        from . import handbuilt
        from .arm import ArmClient, ArmSettings

        handbuilt.build(ArmClient(ArmSettings.from_env(plan.azure.resource_group, plan.azure.subscription_id, env)), plan)

    def import_args(self, plan: Plan) -> list[str]:
        return ["--resource-group", plan.azure.resource_group, "--vnet", plan.azure.vnet]


API = AzureLabApi()
