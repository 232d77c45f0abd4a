"""What a newcomer meets on the command line (issue 23): global options after the subcommand,
hints, wording, `nestnet init`, exports to a file or stdout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SEED = Path(__file__).parents[2] / "examples" / "seed.yaml"


def nestnet(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nestnet", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, cwd=cwd)


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    for f in ("seed.yaml", "seed.lock"):
        shutil.copy(SEED.parent / f, tmp_path / f)
    return tmp_path / "seed.yaml"


@pytest.mark.parametrize("args", [
    ("-q", "validate", "{seed}"), ("validate", "{seed}", "-q"), ("validate", "-q", "{seed}"),
    ("vm", "list", "{seed}", "--quiet"), ("vm", "-q", "list", "{seed}"),
])
def test_quiet_works_before_and_after_the_subcommand(seed: Path, args) -> None:
    loud = nestnet("validate", str(seed))
    assert "warning:" in loud.stderr  # the seed warns: otherwise -q would prove nothing
    r = nestnet(*(a.format(seed=seed) for a in args))
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_quiet_after_double_dash_is_the_commands_not_ours(seed: Path) -> None:
    # `fleet playbook` takes no extra args; `fleet apply -- -q` would hand -q to ansible-playbook:
    # click stops parsing at `--`, which the generic mechanism must not change.
    from nestnet.cli import cli

    apply = cli.get_command(None, "fleet").commands["apply"]  # type: ignore[union-attr]
    ctx = apply.make_context("apply", [str(seed), "--", "-q"])
    assert ctx.params["ansible_args"] == ("-q",) and not ctx.meta.get("nestnet.quiet")


def test_counts_are_worded_as_english_counts_them(seed: Path) -> None:
    from nestnet.words import plural

    r = nestnet("validate", str(seed), "-q")
    assert "2 hosts, 2 VMs, 1 endpoint, 2 warnings" in r.stdout, r.stdout
    assert (plural(1, "more pair", "more pairs"), plural(3, "more pair", "more pairs")) == ("1 more pair", "3 more pairs")


@pytest.mark.parametrize("args, line", [
    (("check", "{seed}", "--fault", "ip-forward-off:vme-kvm-vm3"),
     "'vme-kvm-vm3' is not a host of hpe-vme-test (did you mean 'vme-kvm-vm2'?"),
    (("check", "{seed}", "--trace", "web3", "mgmt-vm"), "no node named 'web3'"),
    (("vm", "add", "{seed}", "db1", "--host", "vme-kvm-v2"), "did you mean 'vme-kvm-vm2'?"),
    (("vm", "move", "{seed}", "web1", "--to", "vmekvm-vm2"), "did you mean 'vme-kvm-vm2'?"),
    (("doctor", "{seed}", "--host", "vme-kvm-wm1"), "did you mean 'vme-kvm-vm1'?"),
])
def test_an_unknown_host_gets_did_you_mean(seed: Path, args, line: str) -> None:
    r = nestnet(*(a.format(seed=seed) for a in args), "-q")
    assert r.returncode == 2, r.stdout + r.stderr
    [err] = r.stderr.splitlines()
    assert line in err, err
    if "web3" in args:
        assert "did you mean 'web1'?" in err or "did you mean 'web2'?" in err, err


def test_vm_add_outside_the_block_warns_of_the_azure_route(seed: Path) -> None:
    r = nestnet("vm", "add", str(seed), "db1", "--host", "vme-kvm-vm2", "--ip", "10.0.1.30")
    assert r.returncode == 0, r.stderr
    assert ("warning: 10.0.1.30 is outside vme-kvm-vm2's block 10.0.1.48/28: a /32 exception, Azure route "
            "nestnet-db1.32 (10.0.1.30/32 → VirtualAppliance 10.0.1.11)") in r.stderr, r.stderr
    inside = nestnet("vm", "add", str(seed), "db2", "--host", "vme-kvm-vm2", "--ip", "10.0.1.51")
    assert inside.returncode == 0 and "/32 exception" not in inside.stderr, inside.stderr
    quiet = nestnet("vm", "add", str(seed), "db3", "--host", "vme-kvm-vm2", "--ip", "10.0.1.31", "-q")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


def test_azure_export_to_a_file_to_stdout_or_into_a_directory(seed: Path, tmp_path: Path) -> None:
    r = nestnet("azure", "export", str(seed), "--format", "az", "--out", str(tmp_path / "new" / "az.sh"), "-q")
    assert r.returncode == 0, r.stderr
    script = tmp_path / "new" / "az.sh"
    assert script.is_file() and script.read_text().startswith("#!/usr/bin/env bash") and script.stat().st_mode & 0o100
    out = nestnet("azure", "export", str(seed), "--format", "az", "--out", "-", "-q", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout == script.read_text().replace(str(tmp_path / "new"), str(tmp_path / "new"))
    assert not (tmp_path / "-").exists()
    tf = nestnet("azure", "export", str(seed), "--format", "terraform", "--out", str(tmp_path / "infra") + "/", "-q")
    assert tf.returncode == 0 and (tmp_path / "infra" / "nestnet.tf").is_file(), tf.stderr
    one = nestnet("azure", "export", str(seed), "--format", "terraform", "--out", str(tmp_path / "main.tf"), "-q")
    assert one.returncode == 0 and (tmp_path / "main.tf").is_file(), one.stderr
    tfout = nestnet("azure", "export", str(seed), "--format", "terraform", "--out", "-", "-q")
    assert tfout.stdout == (tmp_path / "main.tf").read_text()
    script.chmod(0o755)
    blocked = nestnet("azure", "export", str(seed), "--format", "az", "--out", str(script / "x.sh"), "-q")
    assert blocked.returncode == 2 and len(blocked.stderr.splitlines()) == 1, blocked.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to become nobody")
def test_host_diff_without_root_says_it_needs_root(seed: Path) -> None:
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="nestnet-noroot-"))  # pytest's tmp_path is root's alone
    d.chmod(0o777)
    for f in (seed, seed.with_suffix(".lock")):
        shutil.copy(f, d / f.name)
        (d / f.name).chmod(0o666)
    seed = d / seed.name
    r = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", sys.executable, "-m",
                        "nestnet", "host", "diff", str(seed), "--host", "vme-kvm-vm1", "-q"],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert r.returncode != 0 and r.stdout == ""
    shutil.rmtree(d)
    [line] = r.stderr.splitlines()
    assert line.startswith("error: ") and "this needs root: run it with sudo" in line, line


def test_lab_exec_finds_nestnet_without_it_on_path(monkeypatch) -> None:
    from nestnet.lab.core import _nestnet_resolved

    monkeypatch.setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    [exe, *rest] = _nestnet_resolved(["nestnet", "doctor", "x.yaml"])
    assert rest[-2:] == ["doctor", "x.yaml"] and Path(exe).parent == Path(sys.executable).parent, exe
    r = subprocess.run([exe, *rest[:-2], "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "nestnet" in r.stdout, r.stdout + r.stderr
    assert _nestnet_resolved(["ip", "route"]) == ["ip", "route"]


def test_init_copies_the_example_and_the_walk_through_leaves_the_package_pristine(tmp_path: Path) -> None:
    import hashlib

    def digest() -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(SEED.parent.iterdir())}

    before = digest()
    r = nestnet("init", str(tmp_path / "w"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "w" / "seed.yaml").read_text() == SEED.read_text()
    assert (tmp_path / "w" / "seed.lock").read_text() == SEED.with_suffix(".lock").read_text()
    # the README's walk-through, on the copy
    for args in (("validate", "seed.yaml"), ("plan", "seed.yaml"), ("vm", "add", "seed.yaml", "db1", "--host", "vme-kvm-vm2"),
                 ("vm", "config", "seed.yaml", "web1", "--format", "netplan")):
        r = nestnet(*args, cwd=tmp_path / "w")
        assert r.returncode == 0, (args, r.stderr)
    assert "db1" in (tmp_path / "w" / "seed.lock").read_text()
    assert digest() == before  # nothing in the package changed, no lock file left there
    again = nestnet("init", str(tmp_path / "w"))
    assert again.returncode == 2 and "already there; nothing copied" in again.stderr


def test_lab_demo_runs_the_package_example_which_editing_examples_does_not_change() -> None:
    """`examples/` is the user's copy to read and edit; `lab demo` and `init` use the package's own, so an
    edited examples/seed.yaml (the README's walk-through once did that) cannot change what the demo runs."""
    from importlib.resources import files

    from nestnet.lab.demo import seed_plan

    shipped = Path(str(files("nestnet") / "examples"))
    assert not SEED.parent.is_symlink() and SEED.parent.resolve() != shipped.resolve()
    for f in sorted(shipped.glob("*.yaml")) + sorted(shipped.glob("*.lock")):  # the copy is the package's, as shipped
        assert (SEED.parent / f.name).read_bytes() == f.read_bytes(), f"examples/{f.name} differs from the package's"
    import yaml

    plan = seed_plan()  # read from the package, not from the checkout's examples/
    assert sorted(plan.vms) == sorted(v["name"] for v in yaml.safe_load((shipped / "seed.yaml").read_text())["vms"])


@pytest.mark.skipif(os.geteuid() != 0, reason="the link is made as root only")
def test_make_deps_links_the_entry_point_onto_path_and_never_a_foreign_one(tmp_path: Path) -> None:
    script = Path(__file__).parents[2] / "scripts" / "link-entry-point"
    target = str(Path(sys.executable).parent / "nestnet")
    link = tmp_path / "nestnet"

    def run() -> str:
        r = subprocess.run([str(script), target, str(link)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stderr

    assert "linked" in run() and os.readlink(link) == target
    assert run() == ""  # a second run changes nothing
    link.unlink()
    link.symlink_to("/old/venv/bin/nestnet")  # another nestnet venv's: ours to repoint
    run()
    assert os.readlink(link) == target
    link.unlink()
    link.symlink_to("/usr/bin/something-else")
    assert "left alone" in run() and os.readlink(link) == "/usr/bin/something-else"
    link.unlink()
    link.write_text("#!/bin/sh\n")
    assert "left alone" in run() and link.read_text() == "#!/bin/sh\n"
