"""A record that a spec text and its lock text loaded without an error (docs/decisions/0024,
fourth pass): an edit that starts from a pair recorded here need not check that pair again.

One small file per spec path in the user's cache directory (``$XDG_CACHE_HOME/nestnet/checked/``,
``~/.cache`` without it;
named by a hash of the spec's real path), holding one line: the SHA-256 of this nestnet's code,
the spec's real path, the spec text and the lock text, and what is known of the pair:

- ``valid``: loading it raised no SpecError, and the lock holds exactly the allocation (a block
  for every host, an address for every VM, nothing else);
- ``canonical``: also, the lock text is exactly what ``Lock.render`` writes for it.

The file is a claim, never data: nothing is read from it but that line, compared with the
digest of the texts on disk, so a stale, corrupt, foreign or missing file is a miss (the edit
then checks in full, as without this record), never a wrong answer for other texts. Written
atomically (temp file + rename), without fsync (a torn write is a miss). Any OS error is a miss.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

VALID, CANONICAL = "valid", "canonical"
_MAGIC = "nestnet-checked 1"
_code: str | None = None


def _code_stamp() -> str:
    """This nestnet's code, as the (path, mtime, size) of every module: a changed check is a new key."""
    global _code
    if _code is None:
        root = Path(__file__).parent
        h = hashlib.sha256()
        for dirpath, dirnames, files in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for f in sorted(files):
                if f.endswith(".py"):
                    st = os.stat(os.path.join(dirpath, f))
                    h.update(f"{dirpath}/{f} {st.st_mtime_ns} {st.st_size}\n".encode())
        _code = h.hexdigest()
    return _code


def _cache_home() -> Path:
    """``$XDG_CACHE_HOME``, else ``~/.cache`` (XDG Base Directory Specification: a relative path
    there is invalid and ignored)."""
    from .env import get

    xdg: Path | None = get("XDG_CACHE_HOME")
    return xdg if xdg is not None else Path.home() / ".cache"


def _file(spec_path: Path) -> Path:
    real = os.path.realpath(spec_path)
    return _cache_home() / "nestnet" / "checked" / hashlib.sha256(real.encode()).hexdigest()[:32]


def digest(spec_path: Path, spec_text: str, lock_text: str | None) -> str:
    h = hashlib.sha256()
    for part in (_code_stamp(), os.path.realpath(spec_path)):
        h.update(part.encode() + b"\0")
    h.update(f"{len(spec_text)}\0".encode())
    h.update(spec_text.encode())
    h.update(b"\0none" if lock_text is None else b"\0lock\0" + lock_text.encode())
    return h.hexdigest()


def known(spec_path: Path, spec_text: str, lock_text: str | None) -> str | None:
    """``VALID``, ``CANONICAL`` or None (nothing recorded for exactly these texts)."""
    try:
        line = _file(spec_path).read_text(encoding="ascii")
    except (OSError, RuntimeError, UnicodeDecodeError, ValueError):
        return None
    parts = line.rstrip("\n").split(" ")
    if len(parts) != 4 or " ".join(parts[:2]) != _MAGIC or parts[3] not in (VALID, CANONICAL):
        return None
    return parts[3] if parts[2] == digest(spec_path, spec_text, lock_text) else None


def remember(spec_path: Path, spec_text: str, lock_text: str | None, kind: str) -> None:
    """Record that these texts are ``kind`` (best effort: a cache, never an error)."""
    try:
        target = _file(spec_path)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".checked.", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(f"{_MAGIC} {digest(spec_path, spec_text, lock_text)} {kind}\n")
            os.rename(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
    except (OSError, RuntimeError, ValueError):
        pass


def forget(spec_path: Path) -> None:
    try:
        os.unlink(_file(spec_path))
    except (OSError, RuntimeError, ValueError):
        pass
