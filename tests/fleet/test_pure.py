"""Inventory, playbook and summary as data; the CLI's one-line errors; a real ansible-playbook
run on the local connection (no root, no namespace: nestnet's command is replaced by a stand-in
that fails or prints garbage, so nothing on this machine is reconciled)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nestnet.fleet import (
    GROUP,
    HostResult,
    find_ansible_playbook,
    inventory,
    playbook,
    summarise,
)
from nestnet.fleet.render import APPLY_TASK, DELIVER
from nestnet.fleet.run import dump
from nestnet.plan import load_plan

SEED = Path(__file__).parents[2] / "src" / "nestnet" / "examples" / "seed.yaml"
NESTNET = str(Path(sys.executable).with_name("nestnet"))


def nestnet(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([NESTNET, *args], capture_output=True, text=True, env=env, check=False)


def test_inventory_names_every_host_at_its_plan_ip():
    inv = inventory(load_plan(SEED, write=False))
    assert inv == {
        GROUP: {
            "hosts": {
                "vme-kvm-vm1": {"ansible_host": "10.0.1.10", "ansible_port": 22, "nestnet_block": "10.0.1.16/28"},
                "vme-kvm-vm2": {"ansible_host": "10.0.1.11", "ansible_port": 22, "nestnet_block": "10.0.1.48/28"},
            },
            "vars": {"nestnet_fabric": "hpe-vme-test"},
        }
    }


def test_cli_prints_what_apply_runs(tmp_path):
    r = nestnet("fleet", "inventory", str(SEED))
    assert r.returncode == 0 and yaml.safe_load(r.stdout) == inventory(load_plan(SEED, write=False))
    out = tmp_path / "pb.yaml"
    assert nestnet("fleet", "playbook", str(SEED), "--out", str(out)).returncode == 0
    assert yaml.safe_load(out.read_text()) == playbook()
    # Ansible itself accepts it
    r = subprocess.run(
        [find_ansible_playbook(), "--syntax-check", "-i", "localhost,", str(out)],
        capture_output=True, text=True, env=ansible_env(tmp_path), check=False,
    )
    assert r.returncode == 0, r.stderr


def test_the_playbook_reads_its_defaults_inline():
    """Play vars would outrank the inventory: the knobs must be ``| default()``s, not play vars."""
    play = playbook()[0]
    assert "vars" not in play
    text = dump(playbook())
    for var in ("nestnet_install", "nestnet_pip_name", "nestnet_command", "nestnet_root", "nestnet_become"):
        assert f"{var} | default(" in text


def deliver(d: Path, check: str, cmd: list[str], spec: str, lock: str | None) -> subprocess.CompletedProcess:
    """The playbook's one remote step, run here as the host would run it."""
    payload = base64.b64encode(json.dumps({"spec": spec, "lock": lock}).encode()).decode() + "\n"
    return subprocess.run([sys.executable, "-c", DELIVER, str(d), check, *cmd], input=payload,
                          capture_output=True, text=True, check=False)


def test_deliver_writes_spec_and_lock_then_runs_the_command_on_them(tmp_path):
    d = tmp_path / "root" / "etc" / "nestnet"
    spec = "version: 1  # {{ not a template }} é\n"
    r = deliver(d, "0", ["/bin/sh", "-c", 'cat "$1"; exit 3', "sh", "{spec}"], spec, "lock: 1\n")
    assert (r.returncode, r.stdout) == (3, spec)  # the command read the delivered spec; its status passes through
    assert (d / "nestnet.yaml").read_text() == spec and (d / "nestnet.lock").read_text() == "lock: 1\n"
    assert oct((d / "nestnet.yaml").stat().st_mode & 0o777) == "0o644"
    before = (d / "nestnet.yaml").stat().st_ino
    # same spec again: the file is left alone; no lock now: the stale one goes
    assert deliver(d, "0", ["/bin/true"], spec, None).returncode == 0
    assert (d / "nestnet.yaml").stat().st_ino == before and not (d / "nestnet.lock").exists()
    assert sorted(p.name for p in d.iterdir()) == ["nestnet.yaml"]


def test_deliver_in_check_mode_leaves_nothing_and_a_missing_command_is_one_line(tmp_path):
    d = tmp_path / "etc" / "nestnet"
    r = deliver(d, "1", ["/bin/sh", "-c", 'cat "$1" "${1%.yaml}.lock"; echo "$1" >&2', "sh", "{spec}"], "s\n", "l\n")
    assert r.returncode == 0 and r.stdout == "s\nl\n"
    scratch = Path(r.stderr.strip()).parent
    assert not d.exists() and not scratch.exists()
    r = deliver(d, "0", [str(tmp_path / "no-nestnet"), "host"], "s\n", None)
    assert r.returncode == 127 and r.stderr == f"{tmp_path / 'no-nestnet'}: No such file or directory\n"


def ev(host: str, task: str, status: str, **kw) -> dict:
    return {"host": host, "task": task, "status": status, **kw}


CHANGE = {"kind": "route", "op": "add", "key": "10.0.1.48/28", "detail": "via 10.0.1.11 dev eth1 proto nestnet"}

SUMMARY_CASES = {
    "changed": (
        [ev("a", "the spec", "changed"), ev("a", APPLY_TASK, "changed", stdout=json.dumps({"host": "a", "changes": [CHANGE]}))],
        HostResult("a", "changed", (CHANGE,)),
    ),
    "nothing to do": (
        [ev("a", APPLY_TASK, "ok", stdout='{"host": "a", "changes": []}')],
        HostResult("a", "ok"),
    ),
    "nestnet's error, one line": (
        [ev("a", APPLY_TASK, "ok", stdout=""), ev("a", "nestnet failed", "failed", msg="host 'a': uplink 'eth1' does not exist here")],
        HostResult("a", "failed", error="host 'a': uplink 'eth1' does not exist here"),
    ),
    "unreachable: the last line of ssh's story": (
        [ev("a", "nestnet's directory", "unreachable", msg="Failed to connect to the host via ssh: \nssh: connect to host 10.0.1.10 port 22: No route to host")],
        HostResult("a", "unreachable", error="ssh: connect to host 10.0.1.10 port 22: No route to host"),
    ),
    "garbage instead of JSON": (
        [ev("a", APPLY_TASK, "ok", stdout="hello")],
        HostResult("a", "failed", error="nestnet printed no JSON: 'hello'"),
    ),
    "never ran nestnet": (
        [ev("a", "the spec", "ok")],
        HostResult("a", "failed", error=f"task {APPLY_TASK!r} did not run"),
    ),
}


@pytest.mark.parametrize("events,expected", SUMMARY_CASES.values(), ids=SUMMARY_CASES.keys())
def test_summary(events, expected):
    assert summarise({"events": events, "stats": {"a": {}}}, ["a"]) == [expected]


def test_summary_keeps_plan_order_and_flags_hosts_ansible_never_saw():
    doc = {"events": [ev("x", APPLY_TASK, "ok", stdout='{"changes": []}'), ev("b", APPLY_TASK, "ok", stdout='{"changes": []}')]}
    got = summarise(doc, ["a", "b"])
    assert [(r.host, r.status) for r in got] == [("a", "missing"), ("b", "ok"), ("x", "ok")]
    assert [r.good for r in got] == [False, True, True]


def ansible_env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "ANSIBLE_HOME": str(tmp / "ansible"), "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible" / "tmp")}


def local_inventory(tmp: Path, command: str) -> Path:
    """Both seed hosts on Ansible's local connection, with a stand-in for nestnet."""
    hv = {"ansible_connection": "local", "ansible_user": "root", "ansible_python_interpreter": sys.executable,
          "nestnet_install": "skip", "nestnet_command": command}
    inv = {GROUP: {"hosts": {h: {**hv, "nestnet_root": str(tmp / h)} for h in ("vme-kvm-vm1", "vme-kvm-vm2")}}}
    path = tmp / "inventory.yaml"
    path.write_text(yaml.safe_dump(inv))
    return path


@pytest.mark.parametrize("command,error", [("/bin/false", "nestnet exited 1"), ("/bin/echo", "nestnet printed no JSON")])
def test_a_host_whose_nestnet_fails_is_failed_and_exit_is_1(tmp_path, command, error):
    spec = tmp_path / "seed.yaml"
    # what looks like a template arrives as written, byte for byte, trailing blank line included
    spec.write_text(SEED.read_text() + "# {{ not_a_var }} {% raw %} ü\n\n")
    r = nestnet("fleet", "apply", str(spec), "--inventory", str(local_inventory(tmp_path, command)), "--json",
                env=ansible_env(tmp_path))
    assert r.returncode == 1, r.stderr
    hosts = json.loads(r.stdout)["hosts"]
    assert [h["status"] for h in hosts] == ["failed", "failed"]
    assert all(h["error"].startswith(error) and "\n" not in h["error"] for h in hosts)
    # the spec and the lock reached each host's directory
    for h in ("vme-kvm-vm1", "vme-kvm-vm2"):
        assert (tmp_path / h / "etc" / "nestnet" / "nestnet.yaml").read_text() == spec.read_text()


def test_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\nhosts: 3\n")
    cases = [
        (("fleet", "inventory", str(bad)), 2, None),
        (("fleet", "apply", str(SEED), "--inventory", str(tmp_path / "nope.yaml")), 2,
         f"error: --inventory {tmp_path / 'nope.yaml'}: no such file"),
        (("fleet", "inventory", str(SEED), "--out", str(tmp_path / "no" / "dir.yaml")), 2,
         f"error: --out {tmp_path / 'no' / 'dir.yaml'}: no directory {tmp_path / 'no'} to write it in"),
        (("fleet", "doctor", str(SEED), "--probe", "tcp/0"), 2,
         "error: --probe tcp/0: tcp needs a port 1-65535 (expected tcp/PORT, e.g. tcp/22)"),
    ]
    for args, code, line in cases:
        r = nestnet(*args)
        assert r.returncode == code, (args, r.stderr)
        assert "Traceback" not in r.stderr and r.stderr.strip().splitlines()[-1].startswith("error: ")
        if line:
            assert r.stderr.strip().splitlines()[-1] == line
        if args[-2:] == ("--probe", "tcp/0"):  # nothing ran: the one line is all
            assert r.stderr.strip().splitlines() == [line], r.stderr
    # an inventory Ansible cannot parse: bad input naming it, not a run on no host (Ansible's reason varies)
    broken = tmp_path / "broken.yaml"
    broken.write_text("[\n")
    r = nestnet("fleet", "doctor", str(SEED), "--inventory", str(broken))
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"error: --inventory {broken}: Ansible cannot parse it")


def test_ansible_refusing_its_arguments_is_one_line(tmp_path):
    spec = tmp_path / "seed.yaml"
    spec.write_text(SEED.read_text())
    r = nestnet("fleet", "apply", str(spec), "--", "--no-such-ansible-option", env=ansible_env(tmp_path))
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ansible-playbook exited ") and "--no-such-ansible-option" in last


def test_a_spec_path_that_looks_like_a_template_is_data_and_runs_nothing(tmp_path):
    """A spec in a directory named {{ lookup("pipe", ...) }}: Ansible used to render the path (an
    extra var) and run the command as root on the controller. Now nothing runs, and the apply
    works: both hosts get the spec and lock byte for byte and report their JSON."""
    pwned = tmp_path / "pwned"
    d = tmp_path / '{{ lookup("pipe","id>$F") }}'
    d.mkdir()
    spec = d / "seed.yaml"
    spec.write_text(SEED.read_text() + "# {{ lookup('pipe', 'id>$F') }}\n")
    (d / "seed.lock").write_text(SEED.with_suffix(".lock").read_text())
    standin = tmp_path / "standin"
    standin.write_text("#!/bin/sh\necho '{\"host\": \"x\", \"changes\": []}'\n")
    standin.chmod(0o755)
    r = nestnet("fleet", "apply", str(spec), "--inventory", str(local_inventory(tmp_path, str(standin))), "--json",
                env={**ansible_env(tmp_path), "F": str(pwned)})
    assert not pwned.exists(), "a template in the spec's path ran on the controller"
    assert r.returncode == 0, r.stderr
    assert [h["status"] for h in json.loads(r.stdout)["hosts"]] == ["ok", "ok"]
    for h in ("vme-kvm-vm1", "vme-kvm-vm2"):
        etc = tmp_path / h / "etc" / "nestnet"
        assert (etc / "nestnet.yaml").read_text() == spec.read_text()
        assert (etc / "nestnet.lock").read_text() == (d / "seed.lock").read_text()


def test_variables_nestnet_passes_are_unsafe_for_ansible(tmp_path):
    """The inventory nestnet renders and its extra vars: every string tagged !unsafe, and Ansible
    still resolves them (here as connection settings of a local host)."""
    from nestnet.fleet.run import dump_unsafe

    inv = {GROUP: {"hosts": {"h": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                                   "msg": "{{ lookup('pipe', 'touch " + str(tmp_path / "pwned") + "') }}"}}}}
    text = dump_unsafe(inv)
    assert text.count("!unsafe") == 3
    (tmp_path / "inv.yaml").write_text(text)
    pb = tmp_path / "pb.yaml"
    pb.write_text(dump([{"hosts": GROUP, "gather_facts": False, "tasks": [{"debug": {"msg": "{{ msg }}"}}]}]))
    r = subprocess.run([find_ansible_playbook(), "-i", str(tmp_path / "inv.yaml"), str(pb)],
                       capture_output=True, text=True, env=ansible_env(tmp_path), check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "lookup('pipe'" in r.stdout and not (tmp_path / "pwned").exists()
