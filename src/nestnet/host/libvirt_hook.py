"""The libvirt ``qemu`` hook that runs a move's host-side steps at the migration's phases.

Opt-in per host (``hosts[].migration_hook: true``): ``nestnet host apply`` then writes
``/etc/libvirt/hooks/qemu.d/50-nestnet`` (libvirt >= 6.5 runs every executable there, so a
``/etc/libvirt/hooks/qemu`` of the user's own stays untouched). libvirt calls it with the guest's
name, the operation and the sub-operation, the domain XML on stdin; it must be quick and must
not call back into libvirt. The script only hands these to ``nestnet host hook``, which decides
(``steps``, pure) and runs the steps of host/move.py. See docs/decisions/0013-vm-mobility.md.

Phases (libvirt.org/hooks.html; only the destination is told about an incoming migration):

    destination  migrate begin   arrive: the move tunnel (receive) + host apply -> local /32
                 started begin   arrive again (idempotent; also covers a cold move: plain start)
    source       stopped end     depart: the VM's /32 into the tunnel to the host the spec names

The source learns the destination from the spec (libvirt does not tell it), so the spec and lock
on every host must already say where the VM lives: ``nestnet vm move`` first, then copy them to
``/etc/nestnet/`` on the hosts. The old host keeps tunnelling until ``nestnet host apply`` runs
there after the cloud's apply (``nestnet <cloud> apply``: it replaces the tunnel's route with the planned one).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Literal

from ..plan import Host, Plan
from .move import STAGED_DIR

HOOK_PATH = "etc/libvirt/hooks/qemu.d/50-nestnet"
SPEC_PATH = "/etc/nestnet/nestnet.yaml"  # where fleet apply copies the spec
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

Step = Literal["arrive", "depart"]
PHASES = ("migrate/begin", "started/begin", "stopped/end")
LOG_TAG = "nestnet-hook"  # journalctl -t nestnet-hook: what the hook did, and its errors


def render(plan: Plan, host: Host, header: str) -> str:
    """The hook script for ``host`` (``header``: the owned-file marker lines).

    libvirt keeps nothing a hook prints (9.0 logs neither its output nor its exit status unless
    debug logging is on), so the script hands what ``nestnet host hook`` said, and a failure, to
    the journal itself (``logger -t nestnet-hook``): ``journalctl -t nestnet-hook`` on the host
    shows every step it ran and any error."""
    return (
        "#!/bin/sh\n"
        + header
        + "# libvirt qemu hook: $1 guest, $2 operation, $3 sub-operation; the domain XML on stdin.\n"
        "# Quick, never calls back into libvirt (it would deadlock), and never fails: a non-zero exit\n"
        "# would abort the start or migration of every guest, nestnet's or not.\n"
        'case "$2/$3" in\n'
        f"    {'|'.join(PHASES)}) ;;\n"
        "    *) exit 0 ;;\n"
        "esac\n"
        f"PATH={PATH}\n"
        "export PATH\n"
        "# stopped/end on the old host: what `nestnet host stage-departure` staged before the migration,\n"
        "# in shell at once (nestnet's own start takes a second or two; the guest's traffic waits\n"
        "# for it). Only if staged after the spec was copied here last (a stale one is ignored).\n"
        f'staged=/{STAGED_DIR}/$1.ip\n'
        'if [ "$2/$3" = stopped/end ] && [ -f "$staged" ] && [ "$staged" -nt ' + SPEC_PATH + ' ]; then\n'
        '    if out=$(ip -batch "$staged" 2>&1); then\n'
        f'        logger -t {LOG_TAG} "nestnet: $1: staged departure applied ($2 $3)"\n'
        "    else\n"
        f'        printf \'nestnet: %s: staged departure failed: %s\\n\' "$1" "$out" | logger -t {LOG_TAG} -p user.err\n'
        "    fi\n"
        "fi\n"
        f'out=$(nestnet -q host hook {SPEC_PATH} --host {host.name} -- "$1" "$2" "$3" 2>&1)\n'
        "rc=$?\n"
        f'[ -z "$out" ] || printf \'%s\\n\' "$out" | logger -t {LOG_TAG}\n'
        f'[ "$rc" -eq 0 ] || logger -t {LOG_TAG} -p user.err "nestnet: host hook failed for $1 ($2 $3), exit $rc"\n'
        "exit 0\n"
    )


DAEMONS = ("libvirtd.service", "virtqemud.service")  # monolithic, or the modular QEMU daemon


def tell_libvirt() -> list[str]:
    """libvirt looks for hook scripts when its daemon starts or reloads: a hook written while it
    runs is never called until then (seen here: libvirt 9.0 ran a hook added after its start only
    after ``systemctl reload``, SIGHUP). So after writing or removing the hook, ``host apply``
    reloads whichever of its daemons is running (a reload keeps the guests running). Returns the
    units reloaded."""
    import shutil

    from ..errors import HostError
    from .observe import run

    if not shutil.which("systemctl"):
        return []
    done = []
    for unit in DAEMONS:
        if run(["systemctl", "is-active", "--quiet", unit]).returncode != 0:
            continue
        r = run(["systemctl", "reload", unit])
        if r.returncode != 0:
            raise HostError(f"systemctl reload {unit} (so libvirt finds the hook): {(r.stderr or r.stdout).strip()}")
        done.append(unit)
    return done


def vm_of(plan: Plan, guest: str, domain_xml: str) -> str | None:
    """The spec's VM for a libvirt domain: by an interface's MAC, else by the domain's name."""
    try:
        root = ET.fromstring(domain_xml) if domain_xml.strip() else None
    except ET.ParseError:
        root = None
    if root is not None:
        macs = {m.get("address", "").lower() for m in root.iterfind("./devices/interface/mac")}
        for v in plan.vms.values():
            if v.mac in macs:
                return v.name
    return guest if guest in plan.vms else None


def steps(plan: Plan, host: str, vm: str | None, operation: str, sub: str) -> tuple[Step, ...]:
    """Pure: what this host does for ``vm`` at this phase."""
    phase = f"{operation}/{sub}"
    if vm is None or phase not in PHASES or plan.mode != "routed":
        return ()
    lives_here = plan.vms[vm].host == host
    if phase in ("migrate/begin", "started/begin"):
        return ("arrive",) if lives_here else ()
    # stopped/end: it ran here; if the spec says it lives elsewhere now, the cloud may still send its
    # traffic here (the old route) until its apply has propagated: forward it away
    return () if lives_here else ("depart",)
