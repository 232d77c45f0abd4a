"""A lock with a git conflict is merged from both sides, never deleted (issue 20 item 2).

Real git: two branches each add a VM with ``nestnet vm add``, then ``git merge`` - with the merge
driver configured (git calls ``nestnet lock merge %O %A %B %P``) and without it (the lock keeps
git's conflict markers and ``nestnet lock merge SPEC`` repairs it)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nestnet.errors import SpecError
from nestnet.ipam import Lock, parse_lock
from nestnet.lockmerge import merge, split_conflict

EXAMPLES = Path(__file__).parents[2] / "src" / "nestnet" / "examples"
NESTNET = str(Path(sys.executable).with_name("nestnet"))
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def sh(repo: Path, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, cwd=repo, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if check:
        assert r.returncode == 0, (argv, r.stdout, r.stderr)
    return r


def nn(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return sh(repo, NESTNET, "-q", *args, check=False)


def repo_with_two_branches(tmp_path: Path, driver: bool, a: tuple[str, str], b: tuple[str, str],
                           style: str = "merge") -> Path:
    """main: the seed; branch one adds VM a[0] on host a[1], branch two b[0] on b[1]; one is checked out."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(EXAMPLES / "seed.yaml", repo / "seed.yaml")
    shutil.copy(EXAMPLES / "seed.lock", repo / "seed.lock")
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "git", "config", "user.email", "t@example.com")
    sh(repo, "git", "config", "user.name", "t")
    sh(repo, "git", "config", "merge.conflictStyle", style)
    if driver:  # the README's two lines
        (repo / ".gitattributes").write_text("*.lock merge=nestnet-lock\n")
        sh(repo, "git", "config", "merge.nestnet-lock.driver", f"{NESTNET} lock merge %O %A %B %P")
    (repo / ".gitignore").write_text(".*.flock\n")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "seed")
    for branch, (vm, host) in (("one", a), ("two", b)):
        sh(repo, "git", "checkout", "-q", "-b", branch, "main")
        assert nn(repo, "vm", "add", "seed.yaml", vm, "--host", host).returncode == 0
        sh(repo, "git", "commit", "-qam", f"add {vm}")
    return repo


def addresses(repo: Path, ref: str) -> dict[str, str]:
    text = sh(repo, "git", "show", f"{ref}:seed.lock").stdout
    lk = parse_lock(text, "seed.lock")
    return {**{k: str(v) for k, v in lk.vms.items()}, **{k: str(v) for k, v in lk.blocks.items()}}


def keep_both_sides_of_the_spec(repo: Path) -> None:
    """What a person does with the spec's conflict (both branches appended a VM): keep both."""
    text = (repo / "seed.yaml").read_text()
    assert "<<<<<<<" in text
    (repo / "seed.yaml").write_text(re.sub(r"^(<{7}|\|{7}|={7}|>{7}).*\n", "", text, flags=re.M))


def merged_vms(repo: Path) -> dict[str, str]:
    r = nn(repo, "vm", "list", "seed.yaml", "--json", "--frozen")  # --frozen: nothing allocated anew
    assert r.returncode == 0, r.stderr
    return {k: v["ip"] for k, v in json.loads(r.stdout)["vms"].items()}


def test_git_merge_with_the_driver_keeps_every_address(tmp_path):
    repo = repo_with_two_branches(tmp_path, True, ("a1", "vme-kvm-vm1"), ("b1", "vme-kvm-vm2"))
    one, two = addresses(repo, "one"), addresses(repo, "two")
    sh(repo, "git", "checkout", "-q", "one")
    r = sh(repo, "git", "merge", "two", "-m", "merge", check=False)
    # the spec conflicts (both appended a VM); the lock does not: the driver merged it
    unmerged = sh(repo, "git", "diff", "--name-only", "--diff-filter=U").stdout.split()
    assert unmerged == ["seed.yaml"], r.stdout + r.stderr
    assert "<<<<<<<" not in (repo / "seed.lock").read_text()
    keep_both_sides_of_the_spec(repo)
    vms = merged_vms(repo)
    assert vms == {"web1": one["web1"], "web2": one["web2"], "a1": one["a1"], "b1": two["b1"]}
    assert nn(repo, "validate", "seed.yaml").returncode == 0


def test_git_merge_with_the_driver_refuses_one_address_for_two_vms(tmp_path):
    repo = repo_with_two_branches(tmp_path, True, ("a1", "vme-kvm-vm1"), ("b1", "vme-kvm-vm1"))
    one, two = addresses(repo, "one"), addresses(repo, "two")
    assert one["a1"] == two["b1"]  # both branches took the lowest free address of the same block
    sh(repo, "git", "checkout", "-q", "one")
    r = sh(repo, "git", "merge", "two", "-m", "merge", check=False)
    assert r.returncode != 0
    unmerged = sh(repo, "git", "diff", "--name-only", "--diff-filter=U").stdout.split()
    assert sorted(unmerged) == ["seed.lock", "seed.yaml"]
    claim = f"{one['a1']} is the address of vm 'a1' (ours) and of vm 'b1' (theirs)"
    assert claim in r.stdout + r.stderr  # git shows the driver's line
    # the lock keeps both versions between markers; every command names the repair
    keep_both_sides_of_the_spec(repo)
    v = nn(repo, "validate", "seed.yaml")
    assert v.returncode == 2 and "nestnet lock merge" in v.stderr and "never delete the lock" in v.stderr
    m = nn(repo, "lock", "merge", "seed.yaml")
    assert m.returncode == 2
    [line] = m.stderr.splitlines()
    assert claim in line and line.startswith("error: seed.lock: cannot merge: ")


def test_a_lock_with_conflict_markers_is_repaired_by_lock_merge(tmp_path):
    repo = repo_with_two_branches(tmp_path, False, ("a1", "vme-kvm-vm1"), ("b1", "vme-kvm-vm2"))
    one, two = addresses(repo, "one"), addresses(repo, "two")
    sh(repo, "git", "checkout", "-q", "one")
    sh(repo, "git", "merge", "two", "-m", "merge", check=False)
    lock = (repo / "seed.lock").read_text()
    assert "<<<<<<< HEAD" in lock and ">>>>>>> two" in lock
    # both files have markers: both errors show, and the lock's names its repair (never "delete it")
    v = nn(repo, "validate", "seed.yaml")
    assert v.returncode == 2
    errors = v.stderr.splitlines()
    assert any(e.startswith("error: seed.yaml:") for e in errors), v.stderr
    [lock_error] = [e for e in errors if e.startswith("error: seed.lock:")]
    assert "`nestnet lock merge seed.yaml`" in lock_error and "delete it" not in v.stderr
    keep_both_sides_of_the_spec(repo)
    m = nn(repo, "lock", "merge", "seed.yaml")
    assert m.returncode == 0, m.stderr
    assert m.stderr.strip() == "merged the lock of seed.yaml from HEAD and two: 2 blocks, 4 VMs"
    assert merged_vms(repo) == {"web1": one["web1"], "web2": one["web2"], "a1": one["a1"], "b1": two["b1"]}
    again = nn(repo, "lock", "merge", "seed.yaml")
    assert again.returncode == 0 and "nothing to merge" in again.stderr


def test_a_removal_on_one_side_is_kept_with_a_base(tmp_path):
    """diff3 style (the base between |||||||): a VM removed on one side and untouched on the other
    goes; a VM changed on one side takes the change."""
    base = Lock({"h1": _net("10.0.1.16/28")}, {"a": _ip("10.0.1.17"), "b": _ip("10.0.1.18")})
    ours = Lock(base.blocks, {"a": _ip("10.0.1.17")})  # b removed
    theirs = Lock(base.blocks, {"a": _ip("10.0.1.19"), "b": _ip("10.0.1.18"), "c": _ip("10.0.1.20")})
    got = merge(ours, theirs, base, ("ours", "theirs"), "x.lock")
    assert got.vms == {"a": _ip("10.0.1.19"), "c": _ip("10.0.1.20")}
    # without the base nothing is known to be removed: b stays (an extra entry is harmless)
    assert merge(ours, base, None, ("o", "t"), "x.lock").vms == base.vms
    with pytest.raises(SpecError) as e:
        merge(Lock(base.blocks, {"a": _ip("10.0.1.21")}), theirs, base, ("o", "t"), "x.lock")
    assert "the address of vm 'a' is 10.0.1.21 on one side (o) and 10.0.1.19 on the other (t)" in str(e.value)
    with pytest.raises(SpecError) as e:
        merge(Lock({"h1": _net("10.0.1.16/28")}, {}), Lock({"h2": _net("10.0.1.16/28")}, {}), None, ("o", "t"), "x")
    assert "the block 10.0.1.16/28 of host 'h1' (o) overlaps the block 10.0.1.16/28 of host 'h2' (t)" in str(e.value)


def test_split_conflict_reads_diff3_hunks():
    text = "version: 1\n<<<<<<< HEAD\na: 1\n||||||| base\n=======\nb: 2\n>>>>>>> two\nz: 9\n"
    s = split_conflict(text, "x")
    assert (s.ours, s.base, s.theirs) == ("version: 1\na: 1\nz: 9\n", "version: 1\nz: 9\n", "version: 1\nb: 2\nz: 9\n")
    assert (s.ours_label, s.theirs_label) == ("HEAD", "two")


def _net(s: str):
    from ipaddress import IPv4Network

    return IPv4Network(s)


def _ip(s: str):
    from ipaddress import IPv4Address

    return IPv4Address(s)
