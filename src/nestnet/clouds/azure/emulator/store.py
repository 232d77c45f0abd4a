"""The emulator's storage: one JSON file per state directory, held by one emulator at a time.

- ``Store.open`` takes an exclusive ``flock`` on ``STATE_DIR/lock`` before it reads or writes
  anything else there, so a second emulator on the same directory stops with one line and the
  running one's ``state.json``, ``ca.pem`` and ``endpoint`` stay untouched.
- ``state.json`` is rewritten atomically (temporary file in the same directory, fsync, rename):
  a reader (the lab) never sees half of it, a kill never truncates it.
- A damaged ``state.json`` (truncated, not JSON, wrong shape) is kept aside as
  ``state.json.damaged`` and the emulator starts empty, saying so on one line: the emulator's
  state is test data, a user restarting it expects a running endpoint, and nothing is lost.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ....errors import UsageError
from .common import STATE_FILE

LOCK_FILE = "lock"


class StateDamaged(ValueError):
    """``state.json`` exists but is not what the emulator writes."""


def read_resources(path: Path) -> dict[str, dict[str, Any]]:
    """The resources of a state file ({} when missing); ``StateDamaged`` names what is wrong."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise StateDamaged(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise StateDamaged(f"{path}: not valid JSON ({str(exc).splitlines()[0][:120]})") from None
    resources = doc.get("resources") if isinstance(doc, dict) else None
    if not isinstance(resources, dict) or not all(
        isinstance(k, str) and isinstance(v, dict) and isinstance(v.get("id"), str) and isinstance(v.get("type"), str)
        for k, v in resources.items()
    ):
        raise StateDamaged(f"{path}: not an emulator state (expected {{\"resources\": {{id: resource}}}})")
    return resources


class Store:
    """The resources of one state directory, locked for this process."""

    def __init__(self, state_dir: Path, lock_fd: int):
        self.state_dir = state_dir
        self.path = state_dir / STATE_FILE
        self._lock_fd: int | None = lock_fd
        self.notice = ""  # one line for the user when the state had to be set aside
        try:
            self.resources: dict[str, dict[str, Any]] = read_resources(self.path)
        except StateDamaged as exc:
            kept = self.path.with_name(STATE_FILE + ".damaged")
            os.replace(self.path, kept)
            self.resources = {}
            self.notice = f"{exc}; kept it as {kept.name} and started empty"

    @classmethod
    def open(cls, state_dir: str | Path) -> "Store":
        d = Path(state_dir)
        try:
            d.mkdir(parents=True, exist_ok=True)
            fd = os.open(d / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise UsageError(f"--state-dir {str(d)!r}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise UsageError(
                f"--state-dir {str(d)!r} is in use by another emulator (pid {holder}); stop it or use another directory"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _remove_stale_temps(d)
        return cls(d, fd)

    def save(self) -> None:  # (a kill -9 in here leaves a .state.*.tmp: the next open removes it)
        data = json.dumps({"resources": self.resources}, indent=1, sort_keys=True).encode()
        fd, tmp = tempfile.mkstemp(prefix=".state.", suffix=".tmp", dir=self.state_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def write_file(self, name: str, data: bytes) -> Path:
        """Write a small file of the state directory atomically (ca.pem, endpoint)."""
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.state_dir)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        target = self.state_dir / name
        os.replace(tmp, target)
        return target

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None


def _remove_stale_temps(d: Path) -> None:
    """Temp files of ``save``/``write_file`` that an emulator killed mid-write left behind. Only
    under the state directory's flock: no live emulator is writing one."""
    for p in d.glob(".*.tmp"):
        try:
            if p.is_file() and not p.is_symlink():
                p.unlink()
        except OSError:
            pass  # not ours to insist on; the next start tries again
