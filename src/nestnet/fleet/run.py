"""Run ``ansible-playbook`` on the rendered inventory and playbook and read its JSON outcome."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from ..errors import OperationError, UsageError
from ..ipam import lock_path
from ..model.probe import ICMP, Probe
from ..plan import Plan
from ..store import read_text
from . import render
from .summary import HostResult, summarise

CALLBACKS = Path(__file__).with_name("callback_plugins")


class FleetError(OperationError):
    """ansible-playbook could not run, or ran without producing an outcome."""


def find_ansible_playbook() -> str:
    """The venv's ``ansible-playbook`` (next to this Python) first, then ``PATH``."""
    beside = Path(sys.executable).with_name("ansible-playbook")
    if beside.exists():
        return str(beside)
    found = shutil.which("ansible-playbook")
    if found is None:
        raise FleetError("ansible-playbook not found next to this Python or on PATH: pip install ansible-core")
    return found


def dump(data: object) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=1000)


class _Unsafe(str):
    """A string Ansible must take as data, never render as a template (YAML tag ``!unsafe``)."""


class _UnsafeDumper(yaml.SafeDumper):
    pass


_UnsafeDumper.add_representer(_Unsafe, lambda d, v: d.represent_scalar("!unsafe", str(v)))


def _unsafe(data: object) -> object:
    if isinstance(data, dict):
        return {k: _unsafe(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_unsafe(v) for v in data]
    return _Unsafe(data) if isinstance(data, str) else data


def dump_unsafe(data: object) -> str:
    """``data`` as YAML for Ansible with every string value tagged ``!unsafe``: variables and
    inventory values nestnet passes are data, so a ``{{ ... }}`` in a path or name is never run."""
    return yaml.dump(_unsafe(data), Dumper=_UnsafeDumper, sort_keys=False, default_flow_style=False, width=1000)


def apply(
    plan: Plan,
    spec_path: str | Path,
    *,
    inventory: str | Path | None = None,
    dry_run: bool = False,
    extra_args: tuple[str, ...] = (),
    adopt: bool = False,
) -> list[HostResult]:
    """Apply ``plan`` to every host in the inventory (default: one built from the plan).

    ``adopt``: each host runs ``host apply --adopt`` (foreign routes with the same next hop
    become nestnet's)."""
    doc = _run(plan, spec_path, render.playbook(), inventory, {"nestnet_adopt": adopt},
               [*(["--check"] if dry_run else []), *extra_args])
    return summarise(doc, plan.hosts)


def doctor(
    plan: Plan, spec_path: str | Path, *, inventory: str | Path | None = None, extra_args: tuple[str, ...] = (),
    probe: Probe = ICMP,
) -> dict:
    """Run ``nestnet doctor --probe PROBE`` on every host; the callback's document (see
    ``summary.doctors``)."""
    return _run(plan, spec_path, render.doctor_playbook(), inventory, {"nestnet_probe": str(probe)}, list(extra_args))


def _run(plan: Plan, spec_path: str | Path, playbook: list, inventory: str | Path | None, extra_vars: dict,
         args: list[str]) -> dict:
    spec = Path(spec_path).resolve()
    lock = lock_path(spec)
    if inventory is not None and not Path(inventory).is_file():
        raise UsageError(f"--inventory {inventory}: no such file")
    with tempfile.TemporaryDirectory(prefix="nestnet-fleet-") as tmp:
        d = Path(tmp)
        inv = Path(inventory).resolve() if inventory is not None else d / "inventory.yaml"
        if inventory is None:
            inv.write_text(dump_unsafe(render.inventory(plan)))
        (d / "playbook.yaml").write_text(dump(playbook))
        # Extra vars as a file, every string !unsafe; the spec and lock as one base64 payload read
        # here, so no user path or text reaches Ansible's templating (docs/decisions/0007).
        text = read_text(spec) or ""
        payload = render.payload(text, read_text(lock, missing_ok=True))
        (d / "vars.yaml").write_text(dump_unsafe({"nestnet_payload": payload, **extra_vars}))
        argv = [find_ansible_playbook(), "-i", str(inv), str(d / "playbook.yaml"), "-e", f"@{d / 'vars.yaml'}", *args]
        env = {
            # Speed defaults, each overridable from the environment: pipelining runs a module in
            # the ssh session itself (no temp files, fewer round trips); one fork per host.
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_FORKS": str(max(5, len(plan.hosts))),
            # A given inventory Ansible cannot parse is an error, not a run on no host at all.
            **({"ANSIBLE_INVENTORY_UNPARSED_FAILED": "True"} if inventory is not None else {}),
            **os.environ,
            "ANSIBLE_STDOUT_CALLBACK": "nestnet_json",
            "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_NOCOLOR": "1",
        }
        try:
            r = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, check=False)
        except OSError as exc:
            raise FleetError(f"running {argv[0]}: {exc}") from exc
    return _outcome(r, inventory)


def _outcome(r: subprocess.CompletedProcess, inventory: str | Path | None = None) -> dict:
    """The callback's document (the last stdout line); without one, ansible's own error line."""
    last = r.stdout.strip().splitlines()[-1:] if r.stdout.strip() else []
    try:
        doc = json.loads(last[0]) if last else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        lines = [ln.strip() for ln in (r.stderr + "\n" + r.stdout).splitlines() if ln.strip()]
        if inventory is not None and any("inventory source" in ln or "No inventory was parsed" in ln for ln in lines):
            why = next((m.group(1) for ln in lines if (m := re.search(r"Failed to parse .*?plugin:\s*(.+)", ln))), "")
            raise UsageError(f"--inventory {inventory}: Ansible cannot parse it as an inventory" + (f" ({why})" if why else ""))
        # "ERROR! ..." (Ansible) or "ansible-playbook: error: ..." (its argument parser)
        err = next((ln for ln in lines if ln.startswith(("ERROR", "[ERROR]")) or ": error: " in ln),
                   lines[-1] if lines else "no output")
        raise FleetError(f"ansible-playbook exited {r.returncode}: {err}")
    return doc
