"""The AWS example in the lab: ``examples/aws.yaml`` (the seed's fabric on AWS, prefix mode) or the
same fabric in routed mode, where the pool moves outside the VPC (100.64.0.0/24, shared address
space, RFC 6598) because a route more specific than the VPC's local route must match a whole
subnet: 10.0.1.x of the blocks and VMs becomes 100.64.0.x."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

MODES = ("prefix", "routed")
ROUTED_NET = "100.64.0."


def example_spec(mode: str = "prefix", name: str | None = None) -> dict[str, Any]:
    spec = yaml.safe_load((files("nestnet") / "examples" / "aws.yaml").read_text(encoding="utf-8"))
    spec["nested"]["mode"] = mode
    if name:
        spec["name"] = name
    if mode == "routed":
        def moved(a: str) -> str:
            return ROUTED_NET + a.split(".", 3)[3]

        spec["nested"]["pool"] = ROUTED_NET + "0/24"
        for h in spec["hosts"]:
            h["block"] = moved(h["block"])
        for v in spec["vms"]:
            v["ip"] = moved(v["ip"])
    return spec


def example_plan(mode: str = "prefix", name: str | None = None) -> Any:
    from ...plan import load_source
    from ...spec import SpecSource

    path = Path(str(files("nestnet") / "examples" / "aws.yaml"))
    text = path.read_text(encoding="utf-8")
    if mode != "prefix" or name:
        text = f"# the packaged AWS example in mode {mode}\n" + yaml.safe_dump(example_spec(mode, name), sort_keys=False)
        path = path.with_name(f"aws-{mode}.yaml")
    # Every block and address is pinned: nothing to allocate, no lock written.
    return load_source(SpecSource(path, text), write=False).plan
