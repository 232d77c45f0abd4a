"""The lab's narrow seam to the kernel: sysctls, ``ip -batch``, nft, and running jobs in namespaces.

Functions without an ``ns`` argument act on the CURRENT network namespace: they are meant to run
inside a child made by ``nestnet.netns.run_in`` (fork + setns), where /proc/sys/net and every
subprocess already belong to the lab namespace. Nothing here touches the root namespace.
"""

from __future__ import annotations

import ctypes  # noqa: F401 - imported here so forked children (netns.run_in) never import it
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Mapping, Sequence

from .. import sysctl
from ..errors import LabError
from ..netns import run_in

NO_IPV6 = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}


def write_sysctls(values: Mapping[str, str], *, missing_ok: bool = False) -> None:
    for key, value in values.items():
        try:
            with open(sysctl.path(key), "w") as fh:
                fh.write(value)
        except FileNotFoundError:
            if not missing_ok:
                raise LabError(f"sysctl {key}: no such key in this namespace") from None
        except OSError as exc:
            raise LabError(f"sysctl {key}={value}: {exc.strerror}") from exc


def read_sysctl(key: str) -> str:
    with open(sysctl.path(key)) as fh:
        return fh.read().strip()


def run(argv: Sequence[str], *, input: str | None = None, what: str = "") -> str:
    r = subprocess.run(list(argv), input=input, capture_output=True, text=True)
    if r.returncode != 0:
        detail = (r.stderr or r.stdout).strip().splitlines()
        raise LabError(f"{what or ' '.join(argv)}: {detail[0] if detail else f'exit {r.returncode}'}")
    return r.stdout


def ip_batch(lines: Iterable[str]) -> None:
    text = "\n".join(lines)
    if text:
        run(["ip", "-batch", "-"], input=text + "\n", what="ip -batch")


def ip_json(*args: str) -> list[dict[str, Any]]:
    out = run(["ip", "-j", *args])
    return json.loads(out) if out.strip() else []


def link_gone(name: str, timeout: float = 10.0) -> None:
    """Until no link ``name`` is left in this namespace (a deleted namespace's veth peers go
    when the kernel gets round to freeing it, not at once)."""
    import time

    deadline = time.monotonic() + timeout
    while subprocess.run(["ip", "link", "show", "dev", name], capture_output=True).returncode == 0:
        if time.monotonic() > deadline:
            raise LabError(f"{name} still here {timeout:.0f} s after its peer's namespace was deleted")
        time.sleep(0.01)


def nft(text: str) -> None:
    run(["nft", "-f", "-"], input=text, what="nft -f")


def nft_json(*args: str) -> dict[str, Any]:
    return json.loads(run(["nft", "-j", *args]))


Job = tuple[str, Callable[..., Any], tuple[Any, ...]]


def parallel(jobs: Sequence[Job]) -> list[Any]:
    """Run each ``fn(*args)`` inside its namespace, concurrently; results in job order.

    Threads only wait for forked children; every module a child needs is imported before the
    fork, so a child never needs a lock another thread might hold.

    Every job runs to completion before the first failure is raised, so callers can clean up.
    """
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(jobs))) as pool:
        futures = [pool.submit(run_in, ns, fn, *args) for ns, fn, args in jobs]
    results, first = [], None
    for (ns, _, _), fut in zip(jobs, futures):
        exc = fut.exception()
        if exc is not None and first is None:
            first = LabError(f"namespace {ns}: {exc}") if not isinstance(exc, LabError) else exc
        results.append(None if exc else fut.result())
    if first is not None:
        raise first
    return results
