"""The inventory and the playbook, as plain data built from the Plan (pure: no I/O).

The playbook's knobs are variables with defaults written inline (``| default(...)``): play
``vars`` would outrank the inventory, and a per-host ``nestnet_root`` must win.
"""

from __future__ import annotations

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


def playbook() -> list[dict[str, Any]]:
    """Copy the spec and its lock to each host, then run ``nestnet host apply`` there.

    In check mode (``--check``, nestnet's ``--dry-run``) the files go to a scratch directory that
    is removed afterwards and the host runs ``nestnet host diff``: the host's config is untouched,
    yet the diff is against this spec. The copies therefore run with ``check_mode: false``.
    Variables ``nestnet_spec_src`` / ``nestnet_lock_src`` (the controller's files; an empty lock
    means the spec has none) come from ``fleet apply`` as extra vars.
    """
    root = "{{ " + _var("nestnet_root") + " }}"
    config_dir = "((" + _var("nestnet_root") + ") | regex_replace('/+$', '')) ~ '/etc/nestnet'"
    tasks: list[dict[str, Any]] = [
        {
            "name": "nestnet is installed",
            "ansible.builtin.pip": {"name": "{{ " + _var("nestnet_pip_name") + " }}"},
            "when": f"({_var('nestnet_install')}) == 'pip'",
        },
        {
            "name": "scratch directory for the dry run",
            "ansible.builtin.tempfile": {"state": "directory", "prefix": "nestnet-"},
            "check_mode": False,
            "register": "nn_scratch",
            "when": "ansible_check_mode",
        },
        {
            "name": "nestnet's directory",
            "ansible.builtin.file": {"path": "{{ nn_dir }}", "state": "directory", "mode": "0755"},
            "check_mode": False,
        },
        {
            "name": "the spec",
            "ansible.builtin.copy": {"src": "{{ nestnet_spec_src }}", "dest": "{{ nn_dir }}/nestnet.yaml", "mode": "0644"},
            "check_mode": False,
        },
        {
            "name": "the lock file",
            "ansible.builtin.copy": {"src": "{{ nestnet_lock_src }}", "dest": "{{ nn_dir }}/nestnet.lock", "mode": "0644"},
            "check_mode": False,
            "when": "nestnet_lock_src | length > 0",
        },
        {
            # A stale lock left from an earlier spec would allocate differently from the controller.
            "name": "no stale lock file",
            "ansible.builtin.file": {"path": "{{ nn_dir }}/nestnet.lock", "state": "absent"},
            "check_mode": False,
            "when": "nestnet_lock_src | length == 0",
        },
        {
            "name": APPLY_TASK,
            "ansible.builtin.command": {
                "argv": [
                    "{{ " + _var("nestnet_command") + " }}", "host",
                    "{{ 'diff' if ansible_check_mode else 'apply' }}", "{{ nn_dir }}/nestnet.yaml",
                    "--host", "{{ inventory_hostname }}", "--root", root, "--json",
                    # argv has no optional items: without adoption the slot repeats --json.
                    "{{ '--adopt' if (nestnet_adopt | default(false) | bool) else '--json' }}",
                ],
            },
            "check_mode": False,
            "register": "nn_result",
            "failed_when": False,
            # changed means nestnet changed something (or, dry run, would): its JSON says so.
            "changed_when": f"nn_result.rc == 0 and nn_result.stdout is match({JSON_OUT!r})"
            " and (nn_result.stdout | from_json).changes | length > 0",
        },
        {
            "name": "nestnet failed",
            # One line: nestnet's own "error: ..." line, else (on a non-zero exit) stderr's last
            # line, else the command module's message (e.g. no such file), else the exit status.
            "ansible.builtin.fail": {"msg": FAIL_MSG},
            "when": f"nn_result.rc != 0 or nn_result.stdout is not match({JSON_OUT!r})",
        },
    ]
    cleanup = {
        "name": "remove the scratch directory",
        "ansible.builtin.file": {"path": "{{ nn_scratch.path }}", "state": "absent"},
        "check_mode": False,
        "when": "ansible_check_mode and nn_scratch.path is defined",
    }
    return [
        {
            "name": "apply the nestnet plan",
            "hosts": GROUP,
            "gather_facts": False,
            # nestnet changes routes and firewall: root. The seed logs in as a sudo user.
            "become": "{{ nestnet_become | default((ansible_user | default('')) != 'root') }}",
            "vars": {"nn_dir": "{{ nn_scratch.path if ansible_check_mode else " + config_dir + " }}"},
            "tasks": [{"block": tasks, "always": [cleanup]}],
        }
    ]


DOCTOR_TASK = "nestnet doctor"


def doctor_playbook() -> list[dict[str, Any]]:
    """Copy the spec and its lock to a scratch directory on each host and run ``nestnet doctor
    --json`` there (exit 1 = problems found, not a failure of the task). Nothing on the host
    changes; the scratch directory is removed afterwards."""
    root = "{{ " + _var("nestnet_root") + " }}"
    tasks: list[dict[str, Any]] = [
        {
            "name": "scratch directory",
            "ansible.builtin.tempfile": {"state": "directory", "prefix": "nestnet-"},
            "register": "nn_scratch",
        },
        {
            "name": "the spec",
            "ansible.builtin.copy": {"src": "{{ nestnet_spec_src }}", "dest": "{{ nn_scratch.path }}/nestnet.yaml", "mode": "0644"},
        },
        {
            "name": "the lock file",
            "ansible.builtin.copy": {"src": "{{ nestnet_lock_src }}", "dest": "{{ nn_scratch.path }}/nestnet.lock", "mode": "0644"},
            "when": "nestnet_lock_src | length > 0",
        },
        {
            "name": DOCTOR_TASK,
            "ansible.builtin.command": {
                "argv": [
                    "{{ " + _var("nestnet_command") + " }}", "doctor", "{{ nn_scratch.path }}/nestnet.yaml",
                    "--host", "{{ inventory_hostname }}", "--root", root, "--json",
                ],
            },
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
    cleanup = {
        "name": "remove the scratch directory",
        "ansible.builtin.file": {"path": "{{ nn_scratch.path }}", "state": "absent"},
        "when": "nn_scratch.path is defined",
    }
    return [
        {
            "name": "diagnose every nestnet host",
            "hosts": GROUP,
            "gather_facts": False,
            "become": "{{ nestnet_become | default((ansible_user | default('')) != 'root') }}",
            "tasks": [{"block": tasks, "always": [cleanup]}],
        }
    ]
