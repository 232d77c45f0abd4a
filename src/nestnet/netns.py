"""Network namespaces: create, delete, and run Python code inside one.

``run_in(ns, fn, *args)`` forks, moves the child into ``ns`` with setns(2) and returns what ``fn``
returned (pickled through a pipe); exceptions come back too. A forked child keeps every module
already imported, so running nestnet's host reconciler in ten namespaces costs milliseconds, not
ten interpreter start-ups. Only the child changes namespace: the caller never leaves its own.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import traceback
from pathlib import Path
from typing import Any, Callable

from .errors import LabError

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000


def exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def list_names() -> list[str]:
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


def add(name: str) -> None:
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode != 0:
        raise LabError(f"ip netns add {name}: {r.stderr.strip()}")


def delete(name: str) -> None:
    """Delete the namespace and end the processes left inside it (they would keep it alive)."""
    if exists(name):
        r = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
        for pid in map(int, r.stdout.split()):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", name], capture_output=True, text=True)


def _setns(name: str) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(NETNS_DIR / name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({name}): {os.strerror(err)}")
    finally:
        os.close(fd)


class RemoteError(Exception):
    """An exception raised by code run inside a namespace, with the child's traceback."""

    def __init__(self, original: BaseException, tb: str):
        super().__init__(f"{type(original).__name__}: {original}")
        self.original = original
        self.child_traceback = tb


def run_in(name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``fn(*args, **kwargs)`` inside network namespace ``name``; return its result.

    Exceptions raised by ``fn`` are re-raised here (nestnet's own errors as themselves).
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        code = 0
        try:
            _setns(name)
            payload: tuple[str, Any] = ("ok", fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
            code = 1
            try:
                pickle.dumps(exc)
                payload = ("err", (exc, traceback.format_exc()))
            except Exception:
                payload = ("err", (RuntimeError(f"{type(exc).__name__}: {exc}"), traceback.format_exc()))
        try:
            data = pickle.dumps(payload)
            with os.fdopen(w, "wb") as fh:
                fh.write(data)
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    if not data:
        raise LabError(f"process in namespace {name} died without an answer")
    kind, value = pickle.loads(data)
    if kind == "ok":
        return value
    exc, tb = value
    from .errors import NestnetError

    if isinstance(exc, NestnetError):
        raise exc
    raise RemoteError(exc, tb) from exc


def sh(ns: str | None, *argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    """Run a command, inside ``ns`` when given (``ip netns exec``)."""
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(argv)
    r = subprocess.run(cmd, capture_output=True, text=True, input=input)
    if check and r.returncode != 0:
        raise LabError(f"{' '.join(cmd)}: {(r.stderr or r.stdout).strip()}")
    return r
