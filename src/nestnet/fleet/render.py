"""The inventory and the playbook, as plain data built from the Plan (pure: no I/O).

The playbook's knobs are variables with defaults written inline (``| default(...)``): play
``vars`` would outrank the inventory, and a per-host ``nestnet_root`` must win.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from ..plan import Plan

GROUP = "nestnet_hosts"
APPLY_TASK = "nestnet host apply"  # the task whose JSON output the summary reads

# Variables the playbook reads; every one has a default, so an inventory may set any subset.
DEFAULTS: dict[str, str] = {
    "nestnet_install": "pip",  # pip | skip
    "nestnet_pip_name": "nestnet",
    "nestnet_command": "nestnet",
    "nestnet_root": "/",
}


JSON_OUT = r"^\{.*\}$"  # nestnet's --json: one object on one line
FAIL_MSG = (
    "{%- set r = nn_result -%}"
    "{%- set lines = (r.stderr_lines | default([]) | select('match', '^error: ') | map('regex_replace', '^error: ', '') | list)"
    " + ((r.stderr_lines | default([]) | select('match', '.*\\S') | list)[-1:] if r.rc != 0 else [])"
    " + ([(nestnet_command | default('nestnet')) ~ ': ' ~ r.msg] if r.msg | default('') not in ('', 'non-zero return code') else [])"
    " + [('nestnet exited ' ~ r.rc) if r.rc != 0 else ('nestnet printed no JSON: ' ~ (r.stdout_lines[-1:] | join('')))] -%}"
    "{{ lines | first }}"
)


def inventory(plan: Plan) -> dict[str, Any]:
    """Group ``nestnet_hosts``: each plan host by name, reached at its plan IP and SSH port."""
    hosts = {
        h.name: {"ansible_host": str(h.ip), "ansible_port": h.ssh_port, "nestnet_block": str(h.block)}
        for h in plan.hosts.values()
    }
    return {GROUP: {"hosts": hosts, "vars": {"nestnet_fabric": plan.name}}}


def _var(name: str) -> str:
    return f"{name} | default({DEFAULTS[name]!r})"


# Runs on each host, with the Python Ansible runs modules with (stdlib only): writes the spec and
# lock that arrive on stdin (base64 of {"spec": text, "lock": text or null}) into DIR, or, for a
# dry run or doctor (CHECK=1), into a scratch directory removed afterwards; then runs the command
# with "{spec}" replaced by the spec's path and exits with its status. One module run per host
# instead of six (directory, two copies each with a stat, stale-lock removal, the command).
DELIVER = """\
import base64, json, os, shutil, subprocess, sys, tempfile
d, check, cmd = sys.argv[1], sys.argv[2] == "1", sys.argv[3:]
files = json.loads(base64.b64decode(sys.stdin.read()).decode("utf-8"))
rc = 1
try:
    if check:
        d = tempfile.mkdtemp(prefix="nestnet-")
    else:
        os.makedirs(d, mode=0o755, exist_ok=True)
    for name, text in (("nestnet.yaml", files["spec"]), ("nestnet.lock", files["lock"])):
        p = os.path.join(d, name)
        if text is None:
            # a stale lock from an earlier spec would allocate differently from the controller
            if os.path.lexists(p):
                os.unlink(p)
            continue
        try:
            with open(p, encoding="utf-8", newline="") as f:
                same = f.read() == text
        except (OSError, ValueError):
            same = False
        if not same:  # an unchanged file stays untouched; a changed one is replaced whole
            tmp = os.path.join(d, "." + name + ".tmp")
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                f.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, p)
    cmd = [os.path.join(d, "nestnet.yaml") if a == "{spec}" else a for a in cmd]
    try:
        rc = subprocess.call(cmd)
    except OSError as e:
        sys.stderr.write("%s: %s\\n" % (cmd[0], e.strerror))
        rc = 127
except OSError as e:
    sys.stderr.write("%s: %s\\n" % (e.filename or d, e.strerror))
finally:
    if check:
        shutil.rmtree(d, ignore_errors=True)
sys.exit(rc)
"""
# The Python that runs DELIVER: the inventory's interpreter when it names one, else python3.
PYTHON = "{{ ansible_python_interpreter if (ansible_python_interpreter | default('')) is match('/') else 'python3' }}"
# DELIVER's stdin. `fleet apply` passes it ready-made as ``nestnet_payload`` (base64, read by
# nestnet itself, marked !unsafe): no path or text of the user's is ever a template Ansible renders
# (a spec in a directory named {{ lookup('pipe', ...) }} must not run anything). Your own Ansible
# may instead give the two controller paths (exact bytes: no rstrip; an empty lock path = no lock).
PAYLOAD = (
    "{{ nestnet_payload if nestnet_payload is defined else"
    " ({'spec': lookup('file', nestnet_spec_src, rstrip=False),"
    " 'lock': (lookup('file', nestnet_lock_src, rstrip=False) if nestnet_lock_src | length > 0 else none)}"
    " | to_json | b64encode) }}"
)


def payload(spec_text: str, lock_text: str | None) -> str:
    """``nestnet_payload``: what DELIVER reads on its stdin."""
    return base64.b64encode(json.dumps({"spec": spec_text, "lock": lock_text}).encode("utf-8")).decode("ascii")


def _deliver_and_run(check: str, argv: list[str]) -> dict[str, Any]:
    config_dir = "{{ ((" + _var("nestnet_root") + ") | regex_replace('/+$', '')) ~ '/etc/nestnet' }}"
    return {"argv": [PYTHON, "-c", DELIVER, config_dir, check, *argv], "stdin": PAYLOAD}


# `host apply` exits 0 when done; `host diff` (check mode) 0 in sync, 1 changes pending.
RC_OK = "nn_result.rc in ([0, 1] if ansible_check_mode else [0])"


def playbook() -> list[dict[str, Any]]:
    """Deliver the spec and its lock to each host and run ``nestnet host apply`` there, in one
    module run per host (``DELIVER``).

    The files go to ``<nestnet_root>/etc/nestnet/nestnet.{yaml,lock}``. In check mode
    (``--check``, nestnet's ``--dry-run``) they go to a scratch directory that is removed
    afterwards and the host runs ``nestnet host diff``: the host's config is untouched, yet the
    diff is against this spec; the task therefore runs with ``check_mode: false``. The files come
    as ``nestnet_payload`` (``payload()``; what ``fleet apply`` passes as an !unsafe extra var) or,
    without it, from the controller paths ``nestnet_spec_src`` / ``nestnet_lock_src`` (an empty
    lock path means the spec has none).
    """
    root = "{{ " + _var("nestnet_root") + " }}"
    tasks: list[dict[str, Any]] = [
        {
            "name": "nestnet is installed",
            "ansible.builtin.pip": {"name": "{{ " + _var("nestnet_pip_name") + " }}"},
            "when": f"({_var('nestnet_install')}) == 'pip'",
        },
        {
            "name": APPLY_TASK,
            "ansible.builtin.command": _deliver_and_run("{{ '1' if ansible_check_mode else '0' }}", [
                "{{ " + _var("nestnet_command") + " }}", "host",
                "{{ 'diff' if ansible_check_mode else 'apply' }}", "{spec}",
                "--host", "{{ inventory_hostname }}", "--root", root, "--json",
                # argv has no optional items: without adoption the slot repeats --json.
                "{{ '--adopt' if (nestnet_adopt | default(false) | bool) else '--json' }}",
            ]),
            "check_mode": False,
            "register": "nn_result",
            "failed_when": False,
            # changed means nestnet changed something (or, dry run, would): its JSON says so.
            "changed_when": f"{RC_OK} and nn_result.stdout is match({JSON_OUT!r})"
            " and (nn_result.stdout | from_json).changes | length > 0",
        },
        {
            "name": "nestnet failed",
            # One line: nestnet's own "error: ..." line, else (on a non-zero exit) stderr's last
            # line, else the command module's message (e.g. no such file), else the exit status.
            "ansible.builtin.fail": {"msg": FAIL_MSG.replace("r.rc != 0", f"not ({RC_OK})")},
            "when": f"not ({RC_OK}) or nn_result.stdout is not match({JSON_OUT!r})",
        },
    ]
    return [
        {
            "name": "apply the nestnet plan",
            "hosts": GROUP,
            "gather_facts": False,
            # nestnet changes routes and firewall: root. The seed logs in as a sudo user.
            "become": "{{ nestnet_become | default((ansible_user | default('')) != 'root') }}",
            "tasks": tasks,
        }
    ]


DOCTOR_TASK = "nestnet doctor"


def doctor_playbook() -> list[dict[str, Any]]:
    """Deliver the spec and its lock to a scratch directory on each host and run ``nestnet doctor
    --json`` there (exit 1 = problems found, not a failure of the task), in one module run per
    host. Nothing on the host changes; the scratch directory is removed afterwards. Variable
    ``nestnet_probe`` (default ``icmp``) is the doctor's ``--probe``."""
    root = "{{ " + _var("nestnet_root") + " }}"
    # argv has no optional items: with the default probe both slots repeat --json, so the command
    # a host runs is the one it ran before --probe existed.
    probe = "(nestnet_probe | default('icmp') | string)"
    other = f"{probe} != 'icmp'"
    tasks: list[dict[str, Any]] = [
        {
            "name": DOCTOR_TASK,
            "ansible.builtin.command": _deliver_and_run("1", [
                "{{ " + _var("nestnet_command") + " }}", "doctor", "{spec}",
                "--host", "{{ inventory_hostname }}", "--root", root, "--json",
                "{{ '--probe' if " + other + " else '--json' }}", "{{ " + probe + " if " + other + " else '--json' }}",
            ]),
            "check_mode": False,
            "register": "nn_result",
            "failed_when": False,
            "changed_when": False,
        },
        {
            "name": "nestnet failed",
            "ansible.builtin.fail": {"msg": FAIL_MSG.replace("r.rc != 0", "r.rc not in (0, 1)")},
            "when": f"nn_result.rc not in (0, 1) or nn_result.stdout is not match({JSON_OUT!r})",
        },
    ]
    return [
        {
            "name": "diagnose every nestnet host",
            "hosts": GROUP,
            "gather_facts": False,
            "become": "{{ nestnet_become | default((ansible_user | default('')) != 'root') }}",
            "tasks": tasks,
        }
    ]
