"""Real hosts (issue 21): the three figures of the systemd lab, through the CLI as a user runs it.

- rootfs build: `nestnet lab image --refresh --json` into a throw-away cache (only with --build:
  about a minute of debootstrap from Debian's mirror);
- bring-up of the 2-host seed lab with `--hosts systemd` from the cached rootfs (goal < 20 s),
  `nestnet host apply` inside each host included;
- recovery after a real reboot: `lab reboot --all --json`, boot -> every pair of the host green.
Run as root: .venv/bin/python bench/bench_systemd_lab.py [rounds] [--build]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

GOAL_UP = 20.0
SEED = Path(__file__).parents[1] / "examples" / "seed.yaml"
NESTNET = [sys.executable, "-m", "nestnet", "-q"]


def cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([*NESTNET, *args], capture_output=True, text=True, cwd=cwd, env=env)
    if r.returncode != 0:
        raise SystemExit(f"nestnet {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def main() -> int:
    argv = [a for a in sys.argv[1:] if a != "--build"]
    rounds = int(argv[0]) if argv else 3
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        if "--build" in sys.argv:
            env = {**os.environ, "NESTNET_IMAGE_CACHE": str(d / "images")}
            r = json.loads(cli("lab", "image", "--refresh", "--json", cwd=d, env=env).stdout)
            print(f"rootfs build (debootstrap + configure): {r['seconds']:.1f} s")
        print(f"image: {json.loads(cli('lab', 'image', '--json', cwd=d).stdout)['path']} (cached)")
        spec = yaml.safe_load(SEED.read_text())
        spec["name"] = f"bsd{os.getpid()}"[:24]
        (d / "seed.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        ups, greens = [], []
        for _ in range(rounds):
            t = time.monotonic()
            cli("lab", "up", "seed.yaml", "--hosts", "systemd", cwd=d)
            ups.append(time.monotonic() - t)
            try:
                hosts = json.loads(cli("lab", "reboot", "seed.yaml", "--all", "--json", cwd=d).stdout)["hosts"]
                greens += [h["green_s"] for h in hosts]
            finally:
                cli("lab", "down", "seed.yaml", cwd=d)
    if None in greens:
        print(f"{greens.count(None)} host reboots never turned all green within the timeout")
        return 1
    up = statistics.median(ups)
    print(f"2-host systemd lab up (cached rootfs, host apply inside): median {up:.2f} s of {rounds} "
          f"({min(ups):.2f}-{max(ups):.2f}); goal {GOAL_UP:.0f} s: {GOAL_UP / up:.1f}x under")
    print(f"reboot, boot -> every pair of the host green: median {statistics.median(greens):.2f} s "
          f"({min(greens):.2f}-{max(greens):.2f}, {len(greens)} host reboots)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
