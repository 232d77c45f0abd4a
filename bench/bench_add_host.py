"""Day two speed: 3 -> 4 hosts with `host add` + `vm add` + `rollout` (Azure through the lab's ARM
emulator, hosts through Ansible over real sshd), until every pair of the matrix is green.

Goal (issue 12): convergence <= 30 s. Prints the convergence time of each round and where it
went: the spec edits, Azure's step, the hosts' step (ansible-playbook: ssh, module runs, each
host's `nestnet host apply`), the rest of the rollout process, the matrix.
Run as root: .venv/bin/python bench/bench_add_host.py [rounds]
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

from nestnet.lab import scenarios

GOAL = 30.0
SEED = Path(__file__).parents[1] / "examples" / "seed.yaml"


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    seen, cpu = [], []
    for i in range(rounds):
        o = scenarios.add_host(SEED, lambda _m: None, name=f"bah{os.getpid()}{i}"[:24])
        if not o.ok:
            print(f"round {i}: not green: {[p for p in o.doc.get('pairs', []) if not p['ok']]}")
            return 1
        t = o.doc["time"]
        seen.append(o.doc["convergence_s"])
        print(f"round {i}: convergence {o.doc['convergence_s']:.1f} s = spec edits {t['spec_edit_s']:.2f} + azure "
              f"{t['rollout_azure_s']:.2f} + hosts (ansible) {t['rollout_hosts_s']:.2f} + rollout process "
              f"{t['rollout_other_s']:.2f} + matrix {t['matrix_s']:.2f} ({t['matrix_rounds']} rounds); "
              f"hosts step CPU: controller (ansible-playbook tree) {t['hosts_controller_cpu_s']:.2f} s + hosts' sshd trees "
              f"{t['hosts_remote_cpu_s']:.2f} s")
        cpu.append(t["hosts_controller_cpu_s"] + t["hosts_remote_cpu_s"])
    med = statistics.median(seen)
    print(f"add-host convergence median {med:.1f} s over {rounds} round(s); goal {GOAL:.0f} s: {med / GOAL:.2f}x of it; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus; hosts step CPU median {statistics.median(cpu):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
