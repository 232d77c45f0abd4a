"""One writer at a time on a host root: ``host apply``, ``host remove`` and ``host hook``.

An exclusive ``flock`` on ``<root>/run/nestnet/host.lock`` for the whole observe-diff-execute
(issue 20: a ``remove`` racing an ``apply`` deleted the pid file of the dnsmasq the apply had
just started). The holder writes "<pid> <what>" into the file, so a waiter that times out names
it. The lock is in /run: a reboot ends every holder. Re-entrant within a process (the migration
hook's ``arrive`` runs ``apply`` under the hook's lock), and a forked child (``netns.run_in``)
shares its parent's lock.
"""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import HostError

LOCK = "run/nestnet/host.lock"
TIMEOUT = 60.0  # seconds a second writer waits (an apply of 1,000 hosts takes well under one)

_held: dict[str, int] = {}  # lock path -> depth, in this process (and its forks)


def path(root: Path | str) -> Path:
    return Path(root) / LOCK


@contextmanager
def held(root: Path | str, what: str, timeout: float = TIMEOUT) -> Iterator[None]:
    p = path(root)
    key = os.path.abspath(p)
    if _held.get(key):
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        why = "is a symlink; remove it" if exc.errno == errno.ELOOP else exc.strerror
        raise HostError(f"{p}: cannot take the host lock: {why}") from None
    try:
        _wait(fd, p, timeout)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {what}\n".encode(), 0)
        _held[key] = 1
        try:
            yield
        finally:
            _held.pop(key, None)
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock


def _wait(fd: int, p: Path, timeout: float) -> None:
    from ..store import flock_within

    if not flock_within(fd, timeout):
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
        pid, _, what = holder.partition(" ")
        raise HostError(
            f"another nestnet holds the host lock {p} (pid {pid}: {what or '?'}) since over {timeout:g} s; "
            "wait for it to finish, or end that process"
        )
