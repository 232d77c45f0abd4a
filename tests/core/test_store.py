"""Safe writes of spec and lock (issue 16): real concurrent CLI processes, real symlinks, real
permissions and FIFOs, a crash between the two writes."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from nestnet import store
from nestnet.errors import SpecError
from nestnet.store import flock_path, load, read_lock

from .specs import seed, write

SEED = Path(__file__).parents[2] / "examples" / "seed.yaml"


def nestnet(*args: str, env: dict | None = None, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "nestnet", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )


def roomy_seed(tmp_path: Path) -> Path:
    """The seed with /27 blocks: room for 20 more VMs on one host."""
    d = seed()
    d["nested"]["block_prefix_len"] = 27
    d["hosts"][0]["block"], d["hosts"][1]["block"] = "10.0.1.32/27", "10.0.1.64/27"
    d["vms"][0]["ip"], d["vms"][1]["ip"] = "10.0.1.40", "10.0.1.70"
    return write(tmp_path, d, "s.yaml")


def snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in d.iterdir() if p.is_file() and not p.is_symlink()}


def test_concurrent_vm_add_records_every_vm(tmp_path):
    spec = roomy_seed(tmp_path)
    assert nestnet("plan", str(spec)).returncode == 0
    stop = threading.Event()
    seen_bad: list[str] = []

    def reader() -> None:  # readers never see a partial file
        while not stop.is_set():
            for p in (spec, spec.with_suffix(".lock")):
                try:
                    data = yaml.safe_load(p.read_text())
                except Exception as exc:  # noqa: BLE001 - record anything
                    seen_bad.append(f"{p.name}: {exc}")
                    continue
                if not isinstance(data, dict) or data.get("version") != 1:
                    seen_bad.append(f"{p.name}: {data!r:.80}")

    t = threading.Thread(target=reader)
    t.start()
    procs = [
        subprocess.Popen([sys.executable, "-m", "nestnet", "vm", "add", str(spec), f"vm{i}", "--host", "vme-kvm-vm1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(20)
    ]
    outs = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    stop.set()
    t.join()
    assert all(rc == 0 for rc, _, _ in outs), [e for rc, _, e in outs if rc]
    assert not seen_bad, seen_bad[:3]
    told = {line.split(": ")[1].split("/")[0] for _, out, _ in outs for line in out.splitlines()}
    assert len(told) == 20  # 20 distinct addresses told
    loaded = load(spec, frozen=True)  # spec and lock agree: nothing to allocate
    names = {f"vm{i}" for i in range(20)}
    assert names <= set(loaded.plan.vms)
    assert {str(loaded.plan.vms[n].ip) for n in names} == told
    lock = read_lock(spec.with_suffix(".lock"))
    assert set(lock.vms) == set(loaded.plan.vms) and len(set(lock.vms.values())) == 22


def test_concurrent_plan_and_vm_rm_serialize(tmp_path):
    spec = roomy_seed(tmp_path)
    for i in range(6):
        assert nestnet("vm", "add", str(spec), f"v{i}", "--host", "vme-kvm-vm2").returncode == 0
    before = read_lock(spec.with_suffix(".lock"))
    # VMs written by hand: `plan` must record them while the removals run
    data = yaml.safe_load(spec.read_text())
    data["vms"] += [{"name": f"h{i}", "host": "vme-kvm-vm1"} for i in range(3)]
    write(tmp_path, data, "s.yaml")
    cmds = [["vm", "rm", str(spec), f"v{i}"] for i in range(0, 6, 2)] + [["plan", str(spec)]] * 3
    procs = [subprocess.Popen([sys.executable, "-m", "nestnet", *c], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for c in cmds]
    assert [p.wait(timeout=120) for p in procs] == [0] * len(cmds), [p.stderr.read() for p in procs]
    loaded = load(spec, frozen=True)
    assert set(loaded.plan.vms) == {"web1", "web2", "v1", "v3", "v5", "h0", "h1", "h2"}
    lock = read_lock(spec.with_suffix(".lock"))
    assert set(lock.vms) == set(loaded.plan.vms)
    assert all(lock.vms[n] == before.vms[n] for n in ("web1", "web2", "v1", "v3", "v5"))  # nobody moved
    assert len(set(lock.vms.values())) == 8


def test_a_held_writer_lock_is_waited_for(tmp_path):
    spec = roomy_seed(tmp_path)
    fd = os.open(flock_path(spec), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        before = snapshot(tmp_path)
        r = nestnet("vm", "add", str(spec), "x1", "--host", "vme-kvm-vm1", env={"NESTNET_LOCK_TIMEOUT": "0.5"})
        assert r.returncode == 1 and "writer lock" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
        assert snapshot(tmp_path) == before
        p = subprocess.Popen([sys.executable, "-m", "nestnet", "vm", "add", str(spec), "x1", "--host", "vme-kvm-vm1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        assert p.poll() is None  # still waiting
    finally:
        os.close(fd)
    assert p.wait(timeout=60) == 0, p.stderr.read()
    assert "x1" in load(spec, frozen=True).plan.vms


def test_symlinked_tmp_files_leave_the_victim_untouched(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    shutil.copy(SEED, d / "seed.yaml")
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    for name in ("seed.lock.tmp", "seed.yaml.tmp", ".seed.lock.tmp", ".seed.yaml.tmp"):
        (d / name).symlink_to(victim)
    assert nestnet("plan", str(d / "seed.yaml")).returncode == 0
    r = nestnet("vm", "add", str(d / "seed.yaml"), "x1", "--host", "vme-kvm-vm1")
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "precious\n"
    assert not (d / "seed.lock").is_symlink() and "x1: 10.0.1." in (d / "seed.lock").read_text()
    assert not [p for p in d.iterdir() if p.name.endswith(".tmp") and not p.is_symlink()]  # no leftovers


def test_symlinked_writer_lock_is_refused(tmp_path):
    shutil.copy(SEED, tmp_path / "seed.yaml")
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    flock_path(tmp_path / "seed.yaml").symlink_to(victim)
    before = snapshot(tmp_path)
    r = nestnet("vm", "add", str(tmp_path / "seed.yaml"), "x1", "--host", "vme-kvm-vm1")
    assert r.returncode == 2 and "writer lock is a symlink" in r.stderr and len(r.stderr.splitlines()) == 1
    assert snapshot(tmp_path) == before and victim.read_text() == "precious\n"


def test_symlinked_spec_is_written_through_keeping_mode_and_owner(tmp_path):
    real, link = tmp_path / "real", tmp_path / "link"
    real.mkdir()
    link.mkdir()
    shutil.copy(SEED, real / "seed.yaml")
    os.chmod(real / "seed.yaml", 0o640)
    os.chown(real / "seed.yaml", 1234, 4321)
    (link / "seed.yaml").symlink_to(real / "seed.yaml")
    r = nestnet("vm", "add", str(link / "seed.yaml"), "x1", "--host", "vme-kvm-vm1")
    assert r.returncode == 0, r.stderr
    assert (link / "seed.yaml").is_symlink()
    st = os.stat(real / "seed.yaml")
    assert stat.S_IMODE(st.st_mode) == 0o640 and (st.st_uid, st.st_gid) == (1234, 4321)
    assert "name: x1" in (real / "seed.yaml").read_text()
    assert "x1:" in (link / "seed.lock").read_text()  # the lock lives beside the path given


def test_dangling_lock_symlink_is_refused(tmp_path):
    shutil.copy(SEED, tmp_path / "seed.yaml")
    (tmp_path / "seed.lock").symlink_to(tmp_path / "elsewhere" / "file")
    r = nestnet("plan", str(tmp_path / "seed.yaml"))
    assert r.returncode == 2 and "symlink to a missing file" in r.stderr, r.stderr
    assert not (tmp_path / "elsewhere").exists()


def test_crash_between_lock_and_spec_is_repaired(tmp_path, monkeypatch):
    spec = roomy_seed(tmp_path)
    load(spec)
    spec_before = spec.read_text()
    real_write = store.write_atomic
    calls: list[Path] = []

    def crash_on_spec(path: Path, text: str) -> None:
        calls.append(path)
        if path == spec:
            raise KeyboardInterrupt  # killed between the lock and the spec write
        real_write(path, text)

    from nestnet.specedit import vm_add

    monkeypatch.setattr(store, "write_atomic", crash_on_spec)
    with pytest.raises(KeyboardInterrupt):
        vm_add(spec, "x1", "vme-kvm-vm1")
    monkeypatch.setattr(store, "write_atomic", real_write)
    assert spec.read_text() == spec_before  # the spec never saw x1 ...
    promised = read_lock(spec.with_suffix(".lock")).vms["x1"]  # ... the lock holds its address
    # Reading commands ignore the extra entry; the next writer drops it or keeps the promise.
    assert "x1" not in load(spec, write=False).plan.vms
    assert vm_add(spec, "x1", "vme-kvm-vm1").plan.vms["x1"].ip == promised
    assert load(spec, frozen=True).lock_changed is False


def test_killed_writers_never_leave_a_broken_pair(tmp_path):
    spec = roomy_seed(tmp_path)
    assert nestnet("plan", str(spec)).returncode == 0
    for i in range(12):
        p = subprocess.Popen([sys.executable, "-m", "nestnet", "vm", "add", str(spec), f"k{i}", "--host", "vme-kvm-vm1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.25 + 0.03 * i)
        p.send_signal(signal.SIGKILL)
        p.wait()
        loaded = load(spec)  # always loadable; repairs the lock if a kill fell between the writes
        assert load(spec, frozen=True).plan.vms.keys() == loaded.plan.vms.keys()
        added = [n for n in loaded.plan.vms if n.startswith("k")]
        assert set(read_lock(spec.with_suffix(".lock")).vms) == set(loaded.plan.vms), added


def test_fifo_as_spec_is_refused_not_hung(tmp_path):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    for args in (["validate", str(fifo)], ["plan", str(fifo)], ["vm", "add", str(fifo), "x", "--host", "h"]):
        r = nestnet(*args)
        assert r.returncode == 2 and "not a regular file" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr


def test_lock_is_a_directory(tmp_path):
    shutil.copy(SEED, tmp_path / "seed.yaml")
    (tmp_path / "seed.lock").mkdir()
    for args in (["plan", str(tmp_path / "seed.yaml")], ["vm", "list", str(tmp_path / "seed.yaml")]):
        r = nestnet(*args)
        assert r.returncode == 2 and "seed.lock: is a directory" in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv to drop DAC caps")
def test_unreadable_spec_dir_and_lock(tmp_path):
    """Permission errors as a user meets them: root without CAP_DAC_OVERRIDE obeys file modes."""
    drop = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")
    d = tmp_path / "d"
    d.mkdir()
    shutil.copy(SEED, d / "seed.yaml")
    assert nestnet("plan", str(d / "seed.yaml")).returncode == 0
    os.chmod(d / "seed.lock", 0)
    r = nestnet("plan", str(d / "seed.yaml"), prefix=drop)
    assert r.returncode == 2 and "seed.lock: cannot read: Permission denied" in r.stderr, r.stderr
    os.chmod(d / "seed.lock", 0o644)
    os.chmod(d, 0)
    try:
        r = nestnet("vm", "add", str(d / "seed.yaml"), "x1", "--host", "vme-kvm-vm1", prefix=drop)
        assert r.returncode == 2 and "Permission denied" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    finally:
        os.chmod(d, 0o755)


@pytest.mark.parametrize("text,expected", [
    ("version: 1\n? [a, b]\n: 1\n", "complex keys"),
    ("version: 1\nbase: &b {x: 1}\nname:\n  <<: *b\n", "merge keys"),
    ("version: 1\nname:\n  <<: {x: 1}\n", "merge keys"),
])
def test_yaml_features_refused(tmp_path, text, expected):
    spec = write(tmp_path, text)
    with pytest.raises(SpecError, match=expected):
        load(spec)
    r = nestnet("validate", str(spec))
    assert r.returncode == 2 and expected in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr


@pytest.mark.root
def test_a_full_disk_after_the_lock_was_written_puts_the_lock_back(tmp_path):
    """`vm add` writes the lock (with the new entry) before the spec. ENOSPC on the spec used to
    exit 2 "cannot write" with the lock already holding the entry, unsaid. Now the lock is put back
    byte for byte and the one line says so. The full disk is real: a tmpfs in a private mount
    namespace, filled so that exactly one page is free (the lock fits, the 12 KiB spec does not)."""
    import shlex

    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir()
    out.mkdir()
    src = tmp_path / "seed.yaml"
    src.write_text(SEED.read_text() + "# padding\n" * 1200)  # about 12 KiB: three pages
    shutil.copy(SEED.with_suffix(".lock"), tmp_path / "seed.lock")
    lock_before = (tmp_path / "seed.lock").read_text()
    q = lambda p: shlex.quote(str(p))  # noqa: E731
    script = "\n".join([
        f"mount -t tmpfs -o size=128k nestnet-test {q(mnt)} || exit 9",
        f"cp {q(src)} {q(tmp_path / 'seed.lock')} {q(mnt)}/",
        f"dd if=/dev/zero of={q(mnt / 'fill')} bs=4k 2>/dev/null; truncate -s -4096 {q(mnt / 'fill')}",
        f"{shlex.join([sys.executable, '-m', 'nestnet', '-q', 'vm', 'add', str(mnt / 'seed.yaml'), 'x1', '--host', 'vme-kvm-vm1'])}"
        f" >{q(out / 'stdout')} 2>{q(out / 'stderr')}; echo $? > {q(out / 'rc')}",
        f"cp {q(mnt / 'seed.yaml')} {q(mnt / 'seed.lock')} {q(out)}/; ls -A {q(mnt)} > {q(out / 'listing')}",
    ])
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    err = (out / "stderr").read_text()
    assert (out / "rc").read_text().strip() == "2", err
    assert err.splitlines() == [
        f"error: {mnt / 'seed.yaml'}: cannot write: No space left on device; {mnt / 'seed.lock'} is as it was (nothing changed)"
    ]
    assert (out / "seed.lock").read_text() == lock_before
    assert (out / "seed.yaml").read_text() == src.read_text()
    assert sorted((out / "listing").read_text().split()) == [".seed.yaml.flock", "fill", "seed.lock", "seed.yaml"]


def test_a_first_plan_under_the_writer_lock_equals_the_plan_made_before_it(tmp_path, monkeypatch):
    """load() plans once when nobody wrote between its dry run and the writer lock: the plan and
    the lock it records are those of planning again (the old way), and a lock written meanwhile
    is still seen and kept."""
    from nestnet.ipam import Lock
    from nestnet.store import plan_source, read_source

    spec = roomy_seed(tmp_path)
    calls: list[int] = []
    real = store.plan_source
    monkeypatch.setattr(store, "plan_source", lambda *a, **k: calls.append(1) or real(*a, **k))
    loaded = load(spec)
    assert len(calls) == 1 and loaded.lock_changed
    again = plan_source(read_source(spec), Lock(), lock_display=str(spec.with_suffix(".lock")))
    assert loaded.plan.to_dict() == again.plan.to_dict()
    assert spec.with_suffix(".lock").read_text() == again.lock.render(spec.name)

    # another writer records an allocation between the dry run and the writer lock: planned again
    spec.with_suffix(".lock").unlink()
    d = yaml.safe_load(spec.read_text())
    d["vms"].append({"name": "late", "host": d["hosts"][0]["name"]})
    spec.write_text(yaml.safe_dump(d))
    other = f"  late: {d['hosts'][0]['block'].rsplit('.', 1)[0]}.50\n"
    real_exclusive = store.exclusive

    def meanwhile(path):
        spec.with_suffix(".lock").write_text(f"version: 1\nblocks: {{}}\nvms:\n{other}")
        return real_exclusive(path)

    monkeypatch.setattr(store, "exclusive", meanwhile)
    calls.clear()
    loaded = load(spec)
    assert len(calls) == 2 and str(loaded.plan.vms["late"].ip) == other.split(": ")[1].strip()
