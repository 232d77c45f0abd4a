"""The spec and lock files on disk: the one module that reads and writes them (the edge).

The pure core (spec, validate, ipam, plan) works on text and data; this module does the I/O,
safely (docs/decisions/0015):

- every writer (``plan`` recording allocations, ``vm add|rm``) holds an exclusive ``flock`` on a
  sidecar file ``.<spec name>.flock`` beside the spec across its whole read-allocate-write, so
  concurrent writers serialize and none loses work;
- a file is replaced by writing an exclusively created temp file (random name, ``O_EXCL`` and
  ``O_NOFOLLOW``, via ``mkstemp``) in the target's directory, ``fsync``, ``rename`` over the
  target, ``fsync`` of the directory: readers see the old file or the new one, never a part;
- a symlinked spec or lock is written through to its target, keeping its mode and owner;
- the lock is written before the spec, so a crash in between leaves a lock entry the spec does
  not name yet; the next write drops it (the lock is the source of truth for allocations).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

from . import checked as _checked
from .errors import OperationError, Problem, SpecError
from .ipam import Allocation, Lock, allocate, lock_path, parse_lock
from .plan import Plan, build_plan
from .spec import SpecSource, parse_yaml, structure
from .validate import check, check_allocation

# How long a writer waits for another one (seconds); NESTNET_LOCK_TIMEOUT overrides.
LOCK_TIMEOUT = 120.0


def _bad(path: Path | str, message: str) -> SpecError:
    return SpecError([Problem("", message, str(path))])


def read_text(path: Path | str, *, missing_ok: bool = False) -> str | None:
    """The UTF-8 text of a regular file (following symlinks); one-line SpecError otherwise.

    Opened non-blocking and checked with fstat, so a FIFO or device given as a file is refused
    instead of hanging the command.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise _bad(path, "no such file") from None
    except IsADirectoryError:
        raise _bad(path, "is a directory, not a file") from None
    except OSError as exc:
        raise _bad(path, f"cannot read: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise _bad(path, "is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise _bad(path, "is not a regular file (a FIFO, socket or device?); give a file")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read()
    except OSError as exc:
        raise _bad(path, f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(path, "not UTF-8 text") from None


def read_source(path: str | Path) -> SpecSource:
    return SpecSource(Path(path), read_text(path) or "")


def read_lock(path: Path) -> Lock:
    return _lock_of(path, read_lock_text(path))


def read_lock_text(path: Path) -> str | None:
    _refuse_dangling_link(path)
    return read_text(path, missing_ok=True)


# The last lock text parsed and its Lock: an edit reads the same lock two or three times (the
# dry run, the run under the writer lock), 0.14 s each at 4,096 x 15. parse_lock is a function
# of (text, display) alone and a Lock is never changed in place, so the memo is the same result.
_last_lock: tuple[str, str, Lock] | None = None


def _lock_of(path: Path, text: str | None) -> Lock:
    global _last_lock
    if text is None:
        return Lock()
    display = str(path)
    if _last_lock is not None and _last_lock[0] == display and _last_lock[1] == text:
        return _last_lock[2]
    lock = parse_lock(text, display)
    _last_lock = (display, text, lock)
    return lock


def _refuse_dangling_link(path: Path) -> None:
    if os.path.islink(path) and not os.path.exists(path):
        raise _bad(path, f"is a symlink to a missing file ({os.readlink(path)}); remove it or create the target")


def _write_target(path: Path) -> Path:
    """Where writing ``path`` lands: through symlinks to an existing regular file, else ``path``."""
    _refuse_dangling_link(path)
    real = Path(os.path.realpath(path))
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return real
    except OSError as exc:
        raise _bad(path, f"cannot write: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise _bad(path, "is not a regular file; refusing to replace it")
    return real


def write_output(path: Path | str, text: str, mode: int | None = None) -> None:
    """An output file the user asked for (``--out``), replaced atomically like the spec, so a full
    disk leaves the previous file whole. Failures are ``OSError``s naming the path, which the CLI
    reports as bad input naming the option (exit 2, one line; docs/decisions/0023). A file made
    read-only is not replaced (as ``cp`` would not), and a FIFO or device given as the output
    (``--out /dev/stdout``) cannot be: it is written to directly."""
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        with open(p, "w", encoding="utf-8") as fh:
            fh.write(text)
        return
    if st is not None and not os.access(p, os.W_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
    try:
        _replace(p, text, mode)
    except OSError as exc:
        # No temp file in its directory (/proc, a vanished folder): the user's path is what failed.
        raise type(exc)(exc.errno, exc.strerror, str(path)) from None


def write_atomic(path: Path, text: str, mode: int | None = None) -> None:
    """Replace ``path`` (or a symlink's target) with ``text``, all or nothing, keeping mode/owner
    (``mode``: this mode, less the umask, whatever the old file had); a one-line SpecError naming
    ``path`` if the OS refuses."""
    try:
        _replace(path, text, mode)
    except OSError as exc:
        if exc.filename and exc.filename != str(path):  # the temp file could not be made in this directory
            raise _bad(path, f"cannot write in {exc.filename}: {exc.strerror}") from None
        raise _bad(path, f"cannot write: {exc.strerror}") from None


def _replace(path: Path, text: str, mode: int | None) -> None:
    target = _write_target(path)
    try:
        old = os.stat(target)
    except FileNotFoundError:
        old = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, str(target.parent)) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            _keep_mode_owner(fh.fileno(), old)
            if mode is not None:
                os.fchmod(fh.fileno(), mode & ~_umask())
            os.fsync(fh.fileno())
        os.rename(tmp, target)
    except BaseException as exc:
        with _ignore(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise type(exc)(exc.errno, exc.strerror, str(path)) from None
        raise
    _fsync_dir(target.parent)


def _keep_mode_owner(fd: int, old: os.stat_result | None) -> None:
    if old is None:
        os.fchmod(fd, 0o644 & ~_umask())
        return
    os.fchmod(fd, stat.S_IMODE(old.st_mode))
    try:
        os.fchown(fd, old.st_uid, old.st_gid)
    except PermissionError:
        pass  # not ours to give away: the file becomes the writer's, as with any editor


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    with _ignore(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextmanager
def _ignore(*kinds: type[BaseException]) -> Iterator[None]:
    try:
        yield
    except kinds:
        pass


def flock_path(spec_path: Path) -> Path:
    return spec_path.with_name(f".{spec_path.name}.flock")


@contextmanager
def exclusive(spec_path: Path) -> Iterator[None]:
    """Hold the spec's writer lock (``flock`` on the sidecar) for the ``with`` block."""
    path = flock_path(spec_path)
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        why = "is a symlink; remove it" if exc.errno == errno.ELOOP else f"cannot open: {exc.strerror}"
        raise _bad(path, f"the writer lock {why}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _bad(path, "the writer lock is not a regular file; remove it")
        _wait_flock(fd, path)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _wait_flock(fd: int, path: Path) -> None:
    from .env import get as env

    timeout = env("NESTNET_LOCK_TIMEOUT") or LOCK_TIMEOUT
    if not flock_within(fd, timeout):
        raise OperationError(
            f"{path}: another process has held this spec's writer lock for {timeout:g} s; "
            "wait for it or raise NESTNET_LOCK_TIMEOUT"
        )


def flock_within(fd: int, timeout: float) -> bool:
    """Take an exclusive flock on ``fd``, polling (a blocking flock cannot time out) for at most
    ``timeout`` seconds; False if another holder kept it that long."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


# --------------------------------------------------------------------------------------------
# Loading: spec + lock -> Plan


@dataclass(frozen=True)
class Loaded:
    plan: Plan
    lock_changed: bool
    new_allocations: tuple[str, ...]
    lock: Lock  # the allocation as a lock (what the lock file holds after this load)


def plan_source(source: SpecSource, lock: Lock, *, frozen: bool = False, lock_display: str = "") -> Loaded:
    """The Plan for a spec text and a lock (no I/O); SpecError names every problem."""
    fabric = _checked_spec(source)
    try:
        alloc: Allocation = allocate(fabric, lock, frozen=frozen, lock_display=lock_display)
        warnings = check_allocation(fabric, alloc)
        plan = build_plan(fabric, alloc, source.display, warnings)
    except SpecError as exc:
        raise SpecError([p if p.file else source.locate([p])[0] for p in exc.problems]) from None
    plan = replace(plan, warnings=tuple(source.locate(list(plan.warnings))))
    source._read = None  # the parsed data (60 MB at 4,096 x 15): a later line_of reads the text again
    new_lock = alloc.lock()
    return Loaded(plan, new_lock != lock, alloc.new, new_lock)


def _checked_spec(source: SpecSource):  # -> validate.ResolvedSpec
    """The spec checked in full (before any allocation); SpecError naming every problem."""
    from .lockmerge import conflict_line

    line = conflict_line(source.text)
    if line is not None:
        raise SpecError([Problem("", (
            "git conflict markers in the spec: resolve them by hand (keep both sides' hosts and VMs); "
            "a lock with markers is merged by nestnet lock merge"), source.display, line)])
    data = parse_yaml(source.text, source.display, source)
    source.note_names(data)
    shaped = structure(data, source)
    fabric, problems = check(shaped.spec)
    if shaped.problems or problems or fabric is None:
        raise SpecError(shaped.problems + source.locate(problems))
    return fabric


def read_lock_of(source: SpecSource) -> Lock:
    """The spec's lock. A broken lock is reported together with the spec's own problems (a git
    merge leaves markers in both: each file's error shows)."""
    return _read_lock_and_text(source)[0]


def _read_lock_and_text(source: SpecSource) -> tuple[Lock, str | None]:
    """``read_lock_of`` and the lock file's text (None: no file)."""
    lpath = lock_path(source.path)
    try:
        text = read_lock_text(lpath)
        return _lock_of(lpath, text), text
    except SpecError as exc:
        try:
            _checked_spec(source)
            spec_problems: list[Problem] = []
        except SpecError as spec_exc:
            spec_problems = spec_exc.problems
        raise SpecError(spec_problems + exc.problems) from None


def load_source(source: SpecSource, *, write: bool = True, frozen: bool = False) -> Loaded:
    """Plan ``source`` with its lock; with ``write``, record new allocations in the lock file."""
    lpath = lock_path(source.path)
    lock, lock_text = _read_lock_and_text(source)
    loaded = plan_source(source, lock, frozen=frozen, lock_display=str(lpath))
    if not loaded.lock_changed:
        _checked.remember(source.path, source.text, lock_text, _checked.VALID)
    if not (loaded.lock_changed and write and not frozen):
        return loaded
    # Something to record: redo the whole read-allocate-write under the writer lock, so a
    # concurrent writer's allocation is seen and kept (unless nobody wrote meanwhile: then the
    # plan just made is the one this would make, and a first plan of 4,096 hosts saves 1.5 s).
    with exclusive(source.path):
        again = read_source(source.path)
        lock, again_text = _read_lock_and_text(again)
        if again.text != source.text or again_text != lock_text:
            loaded = plan_source(again, lock, lock_display=str(lpath))
        if loaded.lock_changed:
            again_text = loaded.lock.render(source.path.name)
            write_atomic(lpath, again_text)
        _checked.remember(source.path, again.text, again_text,
                          _checked.CANONICAL if loaded.lock_changed else _checked.VALID)
    return loaded


def checked_lock(source: SpecSource) -> Lock | None:
    """The lock of ``source`` when this very spec text and lock text loaded without an error
    before (``checked.known``: the lock then holds a block for every host and an address for
    every VM, nothing else); None when that is not known (check in full)."""
    lpath = lock_path(source.path)
    try:
        text = read_lock_text(lpath)
        if text is None or _checked.known(source.path, source.text, text) is None:
            return None
        return _lock_of(lpath, text)
    except SpecError:
        return None


def load(spec_path: str | Path, *, write: bool = True, frozen: bool = False) -> Loaded:
    """Read and check the spec, allocate with its lock, build the Plan.

    ``write``: record new allocations in the lock file (never with ``frozen``). Raises
    ``SpecError`` with every problem, located in the file, when the spec is invalid.
    """
    return load_source(read_source(spec_path), write=write, frozen=frozen)


def load_plan(spec_path: str | Path, *, write: bool = True, frozen: bool = False) -> Plan:
    return load(spec_path, write=write, frozen=frozen).plan


def edit(spec_path: str | Path, make_text: Callable[[SpecSource], str], forget_vms: tuple[str, ...] = ()) -> Loaded:
    """Edit the spec: ``make_text(current source) -> new text`` (raising on bad input), checked
    in full and written with its lock under the writer lock.

    A dry run outside the lock comes first, so bad input leaves no trace at all (not even the
    lock's sidecar file); the locked run then redoes the read and edit from scratch.
    """
    path = Path(spec_path)
    source = read_source(path)
    text = make_text(source)
    checked = commit(path, text, source.display, forget_vms, write=False)
    lock_text = read_text(lock_path(path), missing_ok=True)
    with exclusive(path):
        again = read_source(path)
        if again.text == source.text and read_text(lock_path(path), missing_ok=True) == lock_text:
            return commit(path, text, again.display, forget_vms, checked=checked)  # nobody wrote meanwhile
        return commit(path, make_text(again), again.display, forget_vms)


def commit(
    spec_path: Path, new_text: str, edit_display: str, forget_vms: tuple[str, ...] = (), *, write: bool = True,
    checked: Loaded | None = None,
) -> Loaded:
    """Check an edited spec text in full with the current lock, then (``write``) write lock and
    spec. Call with ``exclusive(spec_path)`` held. The lock goes first (see the module docstring).
    ``forget_vms``: allocate these VMs again instead of reading their lock entries (vm move
    --renumber).
    """
    lpath = lock_path(spec_path)
    candidate = SpecSource(spec_path, new_text)
    old_text = read_lock_text(lpath)
    old_lock = _lock_of(lpath, old_text)
    use = Lock(old_lock.blocks, {k: v for k, v in old_lock.vms.items() if k not in forget_vms})
    try:  # ``checked``: this very text and lock were just checked (a spec of 1,000 hosts: 0.4 s saved)
        loaded = checked or plan_source(candidate, use, lock_display=str(lpath))
    except SpecError as exc:
        # Line numbers of the unwritten candidate would point at nothing in the user's file.
        raise SpecError(
            [Problem(p.path, p.message, p.file if p.file != str(spec_path) else edit_display,
                     None, p.severity, p.name, p.other) for p in exc.problems]
        ) from None
    if not write:
        return loaded
    # Lock first, holding the old entries too: a crash at any point leaves a lock that covers
    # whichever spec is on disk (extra entries are ignored and dropped by the next write).
    on_disk, union, disk_text = old_lock, old_lock.union(loaded.lock), old_text
    if union != on_disk:
        disk_text = union.render(spec_path.name)
        write_atomic(lpath, disk_text)
        on_disk = union
    try:
        write_atomic(spec_path, new_text)
    except SpecError as exc:
        if on_disk is old_lock:
            raise
        raise SpecError([_with_lock_state(p, lpath, old_text, union, old_lock) for p in exc.problems]) from None
    if loaded.lock != on_disk:
        disk_text = loaded.lock.render(spec_path.name)
        write_atomic(lpath, disk_text)
    # the lock on disk now is the allocation; as Lock.render writes it unless it was kept as it was
    _checked.remember(spec_path, new_text, disk_text, _checked.VALID if disk_text is old_text else _checked.CANONICAL)
    return loaded


def _with_lock_state(p: Problem, lpath: Path, old_text: str | None, union: Lock, old_lock: Lock) -> Problem:
    """The spec could not be written after the lock got the new entries: put the lock back as it
    was (exactly its old bytes) and say so; if even that fails, say precisely what it holds."""
    try:
        if old_text is None:
            os.unlink(lpath)  # nestnet created it a moment ago, for this edit only
        else:
            write_atomic(lpath, old_text)
        state = f"{lpath} is as it was (nothing changed)"
    except (SpecError, OSError):
        added = [f"vm {k} {v}" for k, v in union.vms.items() if old_lock.vms.get(k) != v]
        added += [f"block {k} {v}" for k, v in union.blocks.items() if old_lock.blocks.get(k) != v]
        state = (f"{lpath} already holds {', '.join(added)} (harmless: ignored until the spec names them; "
                 "the same command again gives the same addresses)")
    return replace(p, message=f"{p.message}; {state}")


# --------------------------------------------------------------------------------------------
# Repairing a lock with git conflict markers (docs/decisions/0015; pure part in lockmerge)


@dataclass(frozen=True)
class Merged:
    lock: Lock
    sides: tuple[str, str]  # the two sides' labels
    changed: bool  # False: the lock had no conflict markers, nothing was written


def merge_lock(spec_path: str | Path) -> Merged:
    """Merge the two sides of the spec's lock file (git conflict markers in it) and write the
    result, under the writer lock; SpecError naming both claims of every clash (nothing written)."""
    from .lockmerge import conflict_line, merge, spec_name, split_conflict

    spath = Path(spec_path)
    lpath = lock_path(spath)
    display = str(lpath)
    with exclusive(spath):
        text = read_text(lpath)
        assert text is not None
        if conflict_line(text) is None:
            return Merged(parse_lock(text, display), ("", ""), False)
        s = split_conflict(text, display)
        ours = parse_lock(s.ours, f"{display} ({s.ours_label})")
        theirs = parse_lock(s.theirs, f"{display} ({s.theirs_label})")
        base = parse_lock(s.base, f"{display} (base)") if s.base else None
        merged = merge(ours, theirs, base, (s.ours_label, s.theirs_label), display)
        write_atomic(lpath, merged.render(spec_name(s.ours, spath.name)))
    return Merged(merged, (s.ours_label, s.theirs_label), True)


def merge_lock_files(base_path: str | Path, ours_path: str | Path, theirs_path: str | Path, display: str = "") -> Merged:
    """git's merge driver (``nestnet lock merge %O %A %B``): the merge of the three versions goes
    to OURS. On a clash OURS gets both versions between conflict markers, as git's own merge
    would leave them (git then reports the lock as conflicted), and the SpecError names both claims."""
    from .lockmerge import merge, spec_name

    display = display or str(ours_path)
    texts = [read_text(p) or "" for p in (base_path, ours_path, theirs_path)]
    base = parse_lock(texts[0], f"{display} (base)") if texts[0].strip() else None
    ours = parse_lock(texts[1], f"{display} (ours)")
    theirs = parse_lock(texts[2], f"{display} (theirs)")
    try:
        merged = merge(ours, theirs, base, ("ours", "theirs"), display)
    except SpecError:
        o, t = (x if x.endswith("\n") or not x else x + "\n" for x in texts[1:])
        write_atomic(Path(ours_path), f"<<<<<<< ours\n{o}=======\n{t}>>>>>>> theirs\n")
        raise
    write_atomic(Path(ours_path), merged.render(spec_name(texts[1] or texts[2], "nestnet.yaml")))
    return Merged(merged, ("ours", "theirs"), True)
