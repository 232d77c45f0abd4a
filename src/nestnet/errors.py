"""nestnet's exceptions, in one place.

    NestnetError                 every error nestnet raises on purpose
     ├── SpecError               the user's spec/lock is wrong: exit 2, nothing changed
     │                           (carries every Problem found, one line each)
     ├── UsageError              a command-line value is wrong (unknown host, bad fault): exit 2
     ├── OperationError          the world refused (netlink, nft, the cloud, lab): exit 1
     │    ├── HostError
     │    ├── (a cloud's)         its API refused (nestnet.clouds.<cloud>.errors; here too by name)
     │    └── LabError
     ├── ServiceError            could not reach or authorize the cloud, a host or a service
     │                           (timeout, refused, 401/403, deadline passed): exit 3
     └── StdoutError             standard output cannot be written (full disk, closed): exit 74

Exit codes: 0 ok; 1 "not healthy" / "changes pending" / the world refused; 2 bad input
(nothing changed); 3 a service could not be reached or authorized; 70 a bug in nestnet; 74
standard output could not be written (``> /dev/full``, closed; sysexits' EX_IOERR); 141 the
reader of the output went away (`| head`), as for git.

Errors from dependencies are converted at the edge (``raise HostError(...) from exc``) so the CLI
can print one line and never a traceback for a known failure. A path the user gives is checked
when the command line is parsed (``cli.output.UserPath``); an ``OSError`` on it later is still
bad input (2), and click's own errors are one line too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One finding about a spec: where it is, what value, what is wrong and how to fix it."""

    path: str  # key path, e.g. "hosts[1].block"
    message: str  # what is wrong + the fix; names the value
    file: str = ""
    line: int | None = None
    severity: str = "error"  # "error" | "warning"
    name: str = ""  # the host/VM/endpoint/subnet the path's index points at, for people
    # A clash names both sides: the other entry's key path (which the message names) and, once
    # located, its line, added after the path's first mention.
    other: str = ""
    other_line: int | None = None

    @property
    def text(self) -> str:
        """The message with the line of the other side of a clash."""
        if not self.other or self.other_line is None:
            return self.message
        return self.message.replace(self.other, f"{self.other}, line {self.other_line}", 1)

    def __str__(self) -> str:
        where = self.file or "<spec>"
        if self.line is not None:
            where += f":{self.line}"
        path = self.path
        if self.name and "]" in path:  # vms[0].ip -> vms[0] (web1).ip
            cut = path.index("]") + 1
            path = f"{path[:cut]} ({self.name}){path[cut:]}"
        path = f" {path}:" if path else ""
        return f"{where}:{path} {self.text}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "path": self.path,
            "message": self.text,
            "severity": self.severity,
        }


class NestnetError(Exception):
    """Base of every error nestnet raises on purpose."""

    exit_code = 1


class SpecError(NestnetError):
    """The spec (or its lock) is invalid. ``problems`` holds every finding, errors first."""

    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class UsageError(NestnetError):
    """A command-line argument is wrong (unknown node name, malformed fault, ...)."""

    exit_code = 2


class OperationError(NestnetError):
    """The system refused or failed an operation."""

    exit_code = 1


class HostError(OperationError):
    """A host-side operation failed (netlink, sysctl, nftables, files)."""


class LabError(OperationError):
    """The namespace lab failed to come up, run or go down."""


class ServiceError(NestnetError):
    """The cloud, a host or another service could not be reached or authorized in time: exit 3.

    Kept apart from ``OperationError`` so that the cloud's diff and doctor's read of it can tell
    "changes pending" (1) from "could not look" (3).
    """

    exit_code = 3


class StdoutError(NestnetError):
    """Standard output cannot be written (a full disk, an I/O error, closed): exit 74, sysexits.h's
    EX_IOERR. What the command did before is done; only its report is lost."""

    exit_code = 74


def __getattr__(name: str) -> type[NestnetError]:
    """A cloud's own error class by name (``nestnet.errors.<Cloud>Error``), from its package's
    ``errors`` module: the core names no cloud, and code that imported it from here still works."""
    if name.startswith("__"):  # the import system's questions (``__path__``): a module's own
        raise AttributeError(name)
    from .clouds import error_class

    return error_class(name)
