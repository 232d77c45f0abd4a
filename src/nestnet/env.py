"""The environment variables nestnet reads: the one place they are parsed (the edge).

An environment value is input like a spec value: a bad one is exit 2 with one line naming the
variable and the value, before anything runs (``check_all`` at start-up) - never a traceback, a
wait for ever (``nan``) or a value used unchecked (a subscription id in a request URL).
Everything else reads them through ``get``; ``tests/cli/test_env.py`` walks ``VARIABLES`` and
fails when code reads a variable elsewhere.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from .clouds import cloud_variables
from .errors import UsageError

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
MAX_SECONDS = 86400.0  # a day: any wait longer is a typo, not a plan


def _bad(name: str, value: str, why: str) -> UsageError:
    return UsageError(f"{name} {value!r}: {why}")


def seconds(name: str, value: str) -> float:
    """A finite number of seconds, more than 0 and at most a day (``abc``, ``nan``, ``inf``, ``-5`` refused)."""
    try:
        t = float(value)
    except ValueError:
        t = math.nan
    if not (math.isfinite(t) and 0 < t <= MAX_SECONDS):
        raise _bad(name, value, f"expected a number of seconds, more than 0 and at most {MAX_SECONDS:g}")
    return t


def wait_seconds(name: str, value: str) -> float:
    """How long to wait for something: as ``seconds``, but 0 (do not wait) is allowed."""
    try:
        t = float(value)
    except ValueError:
        t = math.nan
    if not (math.isfinite(t) and 0 <= t <= MAX_SECONDS) or value.strip().startswith("-"):
        raise _bad(name, value, f"expected a number of seconds, from 0 (do not wait) to {MAX_SECONDS:g}")
    return t


def guid(name: str, value: str) -> str:
    if not GUID_RE.match(value):
        raise _bad(name, value, "is not a subscription GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
    return value


def https_url(name: str, value: str) -> str:
    try:
        url = urlsplit(value)
        url.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise _bad(name, value, f"not a URL ({exc})") from None
    if url.scheme != "https":
        raise _bad(name, value, "must be an https:// URL (TLS is never turned off)")
    if not url.hostname:
        raise _bad(name, value, "no host name")
    return value


def pem_file(name: str, value: str) -> str:
    """A CA bundle that cannot serve is the user's mistake (2), found before any request, not
    "cannot reach ARM" (3) at the first TLS handshake."""
    import ssl

    if Path(value).is_dir():
        raise _bad(name, value, "is a directory, not a file (give a PEM file)")
    if not Path(value).exists():
        raise _bad(name, value, "no such file")
    try:
        ssl.create_default_context(cafile=value)
    except ssl.SSLError as exc:
        raise _bad(name, value, f"no PEM certificate in it ({exc.reason or exc})") from None
    except OSError as exc:
        raise _bad(name, value, f"cannot read: {exc.strerror or exc}") from None
    return value


def token(name: str, value: str) -> str:
    # It becomes an HTTP header: no spaces, no control characters (no header injection).
    if not re.fullmatch(r"[\x21-\x7e]+", value):
        raise _bad(name, value, "must be printable ASCII without spaces (a bearer token)")
    return value


def flag(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise _bad(name, value, "expected 1/0, true/false, yes/no or on/off")


def ssh_connection(name: str, value: str) -> int:
    """sshd's ``client-ip client-port server-ip server-port``: the server port (the session the
    firewall guard protects). A malformed value would protect the wrong port: refused."""
    parts = value.split()
    if len(parts) != 4 or not all(p.isdigit() and 0 < int(p) < 65536 for p in (parts[1], parts[3])):
        raise _bad(name, value, "expected 'client-ip client-port server-ip server-port' (as sshd sets it)")
    return int(parts[3])


def abs_dir(name: str, value: str) -> Path:
    """An absolute path that is a directory or does not exist yet (nestnet creates it)."""
    p = Path(value)
    if not p.is_absolute():
        raise _bad(name, value, "must be an absolute path")
    if p.exists() and not p.is_dir():
        raise _bad(name, value, "is not a directory")
    return p


def xdg_dir(name: str, value: str) -> Path | None:
    """An XDG base directory: absolute, else ignored (XDG Base Directory Specification: "If an
    implementation encounters a relative path in any of these variables it should consider the
    path invalid and ignore it")."""
    p = Path(value)
    return p if p.is_absolute() else None


def mirror_url(name: str, value: str) -> str:
    if not value.startswith(("http://", "https://", "file:/")) or any(c.isspace() for c in value):
        raise _bad(name, value, "must be an http://, https:// or file:/ URL of a Debian mirror")
    return value.rstrip("/")


def attempts(name: str, value: str) -> int:
    if not value.strip().isdigit() or not 1 <= int(value) <= 50:
        raise _bad(name, value, "expected a number of tries from 1 to 50")
    return int(value)


def directory(name: str, value: str) -> str:
    return value  # read by click as an option's value (envvar=): UserPath checks it and names the variable


@dataclass(frozen=True)
class Variable:
    name: str
    parse: Callable[[str, str], Any]
    help: str


VARIABLES: dict[str, Variable] = {v.name: v for v in (
    Variable("NESTNET_LOCK_TIMEOUT", seconds, "how long a writer waits for the spec's writer lock (default 120)"),
    Variable("NESTNET_ROOT", directory, "--root of host and doctor commands"),
    Variable("NESTNET_DEBUG", flag, "show a traceback instead of saving it (1)"),
    Variable("NESTNET_IMAGE_CACHE", abs_dir, "where `lab image` caches the systemd hosts' rootfs (default /var/cache/nestnet/images)"),
    Variable("NESTNET_DEBIAN_MIRROR", mirror_url, "the Debian mirror `lab image` builds from (default http://deb.debian.org/debian)"),
    Variable("XDG_CACHE_HOME", xdg_dir, "the user's cache directory (default ~/.cache): nestnet's `checked` records; a relative path is ignored"),
    Variable("SSH_CONNECTION", ssh_connection, "set by sshd: the SSH session the firewall guard protects"),
)}
# Each cloud's own (its API's endpoint, credentials, deadlines), declared by its package (``ENV``:
# name, the parser's name here, help), parsed and checked like the core's.
VARIABLES |= {name: Variable(name, globals()[parse], help_) for name, parse, help_ in cloud_variables()}


def get(name: str, env: Mapping[str, str] | None = None) -> Any:
    """The parsed value of variable ``name`` (one of ``VARIABLES``), or None when unset or empty."""
    raw = (os.environ if env is None else env).get(name)
    if not raw:
        return None
    return VARIABLES[name].parse(name, raw)


def check_all(env: Mapping[str, str] | None = None) -> None:
    """Parse every variable that is set: the first bad one is a UsageError (exit 2)."""
    for name in VARIABLES:
        get(name, env)
