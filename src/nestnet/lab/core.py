"""Bring a lab up and down, break it with faults, heal it, run commands in it.

Per-lab state lives under /run/nestnet/lab/<name>/ (host root directories, applied faults);
namespaces are all named ``nn-<name>.<node>``, so ``down`` needs only the lab's name and also
cleans up after a crash.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal, Mapping

from ..errors import LabError, UsageError
from ..faults import Fault
from ..guest import resolv_conf
from ..netns import list_names, run_in
from ..plan import Plan
from . import apps, dhcpclient, dns, nodes, ovs
from .. import clouds
from ..model.state import CloudState
from .faultlab import apply_host_fault, clear_host_faults, is_cloud_fault
from .sysio import NO_IPV6, Job, ip_batch, parallel, write_sysctls
from .topology import INTERNET, SDN_NODE, Topology, ns_prefix

STATE_ROOT = Path("/run/nestnet/lab")
TOOLS = ("ip", "nft", "fping")
OVS_TOOLS = ("ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovsdb-tool", "ethtool")


def state_dir(name: str) -> Path:
    return STATE_ROOT / name


def host_dirs(plan: Plan, host: str) -> tuple[str, str]:
    """The host's root directory for nestnet's files, and its private OVS directory (short: the
    OVS database socket path must fit in 108 bytes)."""
    d = state_dir(plan.name)
    return str(d / "hosts" / host), str(d / f"ovs{list(plan.hosts).index(host)}")


def require_root(tools: tuple[str, ...] = TOOLS) -> None:
    if not sys.platform.startswith("linux"):
        raise LabError("the lab needs Linux network namespaces")
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, veth, nftables): run it with sudo")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise LabError(f"the lab needs {', '.join(missing)} (run scripts/system-deps)")


def lab_namespaces(name: str) -> list[str]:
    pre = ns_prefix(name)
    return [n for n in list_names() if n.startswith(pre)]


def is_up(name: str) -> bool:
    return bool(lab_namespaces(name))


def require_up(plan: Plan) -> None:
    if not is_up(plan.name):
        raise LabError(f"lab {plan.name} is not up: run nestnet lab up {plan.source or 'SPEC'}")


def read_faults(name: str) -> tuple[Fault, ...]:
    p = state_dir(name) / "faults.json"
    if not p.exists():
        return ()
    return tuple(sorted(Fault(*f.split(":", 1)) for f in json.loads(p.read_text())))


def _write_faults(name: str, faults: tuple[Fault, ...]) -> None:
    (state_dir(name) / "faults.json").write_text(json.dumps(sorted(str(f) for f in set(faults))))


LabSource = clouds.LabSource
GuestConfig = Literal["static", "dhcp", "libvirt"]
HostsKind = Literal["netns", "systemd"]


def _source_file(plan: Plan) -> Path:
    """Where ``lab up`` wrote where the lab's cloud side comes from: a file named after the cloud."""
    return state_dir(plan.name) / plan.cloud.cloud_name


def api_source(plan: Plan) -> LabSource:
    """Where the running lab's cloud side comes from: the plan, or the cloud's emulated API (``api``)."""
    p = _source_file(plan)
    return "api" if p.exists() and p.read_text().strip() == "api" else "plan"


def source_of(plan: Plan, sources: Mapping[str, str]) -> LabSource:
    """Where ``lab up`` takes the plan's cloud side from: ``sources`` by cloud name (``lab up --<cloud>
    api`` is ``up(plan, <cloud>="api")``); only the plan's own cloud can come from its API."""
    apis = clouds.lab_apis()
    for name, value in sources.items():
        if name not in apis:
            raise TypeError(f"up() got an unexpected keyword argument {name!r}")
        if value == "api" and name != plan.cloud.cloud_name:
            raise UsageError(f"--{name} api: {plan.source or plan.name} is for {clouds.title(plan.cloud.cloud_name)}")
    return "api" if sources.get(plan.cloud.cloud_name) == "api" else "plan"


def lab_api(plan: Plan) -> clouds.LabApi:
    api = clouds.lab_api(plan.cloud.cloud_name)
    if api is None:
        raise UsageError(f"--{plan.cloud.cloud_name} api: the lab has no {clouds.title(plan.cloud.cloud_name)} API yet")
    return api


def api_env(plan: Plan) -> dict[str, str]:
    """What a lab host needs to reach the lab's emulated cloud API (``lab up --<cloud> api``)."""
    return lab_api(plan).env(plan, state_dir(plan.name))


arm_env = api_env  # its first name (the default cloud's API is ARM), as tests and benchmarks call it


def guest_config(name: str) -> GuestConfig:
    p = state_dir(name) / "guests"
    got = p.read_text().strip() if p.exists() else ""
    return got if got in ("dhcp", "libvirt") else "static"  # type: ignore[return-value]


def is_systemd(name: str) -> bool:
    """The lab's hosts are booted by systemd (lab up --hosts systemd)."""
    p = state_dir(name) / "hosts-kind"
    return p.exists() and p.read_text().strip() == "systemd"


def resolv_paths(plan: Plan) -> dict[str, Path]:
    topo = Topology.from_plan(plan)
    return {v: dns.ETC_NETNS / topo.ns(v) / "resolv.conf" for v in plan.vms}


def up(
    plan: Plan, faults: tuple[Fault, ...] = (), *, as_seed: bool = False, bare: bool = False,
    propagation_delay: float = 0.0,
    guests: GuestConfig = "static",
    hosts: HostsKind = "netns",
    ufw: str = "ufw-hosts",
    image: str = "base",
    cloud_init: tuple[str, ...] = (),
    **sources: LabSource,
) -> None:
    """Build the whole fabric for ``plan``; on any failure everything built so far is removed.

    ``<cloud>="api"`` (``sources``, by the plan's cloud's name): the cloud's side starts empty
    (no routes, associations or forwarding, as Terraform leaves it) and the cloud's emulated API
    runs inside the lab's ``internet`` namespace (``clouds.LabApi``), seeded from the spec and
    programming the fabric on every write. So ``nestnet <cloud> apply`` run on a lab host (``lab
    exec``) is what turns the pings green. Cloud-side faults are then made through that API, not
    ``apply_fault``.

    ``as_seed``: hosts (and, with the API, the cloud) as the seed document's manual procedure
    leaves them, not as nestnet would (``lab/seedbuilt.py``, the API's ``build_by_hand``).
    ``bare``: hosts as fresh machines (their VMs' bridge only), for nestnet to bring in.
    ``propagation_delay``: the emulator's writes reach the fabric that many seconds late.
    ``guests="dhcp"``: every nested VM configures itself only through a DHCP client (udhcpc)
    talking to its host's DHCP server; else (``static``) by the ``ip`` guest config.
    ``hosts="systemd"``: every KVM host boots with systemd from the cached rootfs
    (``lab/systemd.py``) and is configured by ``nestnet host apply`` run inside it; ``ufw``:
    which of them boot with UFW enabled (``ufw-hosts``: those with ``firewall: ufw``; ``all``; or
    ``none``); ``image``: the rootfs flavour (``base``, or ``libvirt`` with libvirt and QEMU).
    ``cloud_init`` (with ``guests="libvirt"``): these VMs boot the cloud-init guest image and
    configure themselves from their NoCloud seed (static, ``vm config --format cloud-init``).
    """
    ovs_hosts = any(h.bridge_type == "ovs" for h in plan.hosts.values())
    require_root(TOOLS + OVS_TOOLS if ovs_hosts else TOOLS)
    topo = Topology.from_plan(plan)
    source = source_of(plan, sources)
    if hosts == "systemd":
        _refuse_for_systemd(plan, source, as_seed, bare, guests, ufw)
    elif guests == "libvirt":
        raise UsageError("--guests libvirt: only with --hosts systemd (libvirtd runs in the booted hosts)")
    _check_cloud_init(plan, guests, cloud_init)
    for h in plan.hosts.values():
        if h.firewall == "ufw" and hosts == "netns":
            # ufw reads and writes the machine's /etc/ufw: a namespace alone does not isolate it.
            raise LabError(f"host {h.name}: the lab runs nftables hosts only (firewall: ufw is not isolated yet)")
    if is_up(plan.name):
        raise LabError(f"lab {plan.name} is already up: run nestnet lab down {plan.source or plan.name} first")
    if source == "api":
        api, name = lab_api(plan), plan.cloud.cloud_name
        bad = [str(f) for f in faults if is_cloud_fault(f)]
        if bad:
            raise UsageError(f"{', '.join(bad)}: with --{name} api, change {clouds.title(name)} through the {api.api} instead")
    try:
        if cloud_init:  # before the hosts boot: their guests are defined from it
            from .libvirt import CLOUD_INIT_FILE

            state_dir(plan.name).mkdir(parents=True, exist_ok=True)
            (state_dir(plan.name) / CLOUD_INIT_FILE).write_text("".join(f"{v}\n" for v in sorted(set(cloud_init))))
        planned = CloudState.from_plan(plan)
        hand = "seed" if as_seed else "bare" if bare else ""
        # the cloud's side from the plan includes the private zone's records; with the API, the
        # zone holds what the cloud's apply writes there
        zone = dns.zone_records(plan) if source == "plan" else {}
        _build(plan, topo, planned.unconfigured() if source == "api" else planned, hand, guests, zone, hosts, ufw, image)
        _source_file(plan).write_text(source)
        (state_dir(plan.name) / "guests").write_text(guests)
        if source == "api":
            api.start(plan, topo, state_dir(plan.name), propagation_delay)
            if as_seed:
                run_in(topo.ns(next(iter(plan.hosts))), api.build_by_hand, plan, api_env(plan))
        _write_faults(plan.name, ())
        for f in faults:
            apply_fault(plan, f)
    except BaseException:
        down(plan.name)
        raise


def _check_cloud_init(plan: Plan, guests: str, cloud_init: tuple[str, ...]) -> None:
    if not cloud_init:
        return
    if guests != "libvirt":
        raise UsageError("--cloud-init: only with --guests libvirt (a cloud-init guest is a libvirt domain)")
    for vm in cloud_init:
        if vm not in plan.vms:
            raise UsageError(f"--cloud-init {vm}: {plan.source or plan.name} has no VM {vm!r}"
                             f" (its VMs: {', '.join(plan.vms) or 'none'})")


def _refuse_for_systemd(plan: Plan, source: str, as_seed: bool, bare: bool, guests: str, ufw: str) -> None:
    from .systemd import UFW_MODES

    what = [
        f"--{plan.cloud.cloud_name} api" if source != "plan" else "", "--as-seed" if as_seed else "", "bare hosts" if bare else "",
        "--guests dhcp" if guests == "dhcp" else "",
    ]
    what += [f"host {h.name}'s bridge_type: ovs" for h in plan.hosts.values() if h.bridge_type == "ovs"]
    what = [w for w in what if w]
    if what:
        raise UsageError(f"--hosts systemd: not with {', '.join(what)} (yet); use the namespace lab (--hosts netns)")
    if ufw not in UFW_MODES:
        raise UsageError(f"--ufw {ufw!r}: expected one of {', '.join(UFW_MODES)}")
    if not plan.source:
        raise LabError("--hosts systemd needs the plan's spec file (nestnet inside each host reads it)")


def _build(
    plan: Plan, topo: Topology, state: CloudState, hand: str = "", guests: GuestConfig = "static", zone=None,
    hosts: HostsKind = "netns", ufw: str = "ufw-hosts", image: str = "base",
) -> None:
    state_dir(plan.name).mkdir(parents=True, exist_ok=True)
    (state_dir(plan.name) / "hosts-kind").write_text(hosts)
    names = [SDN_NODE, INTERNET, *plan.node_names]
    # `ip -batch` creates the namespace files only: nothing in the root namespace is configured.
    r = subprocess.run(
        ["ip", "-batch", "-"], input="".join(f"netns add {topo.ns(n)}\n" for n in names),
        capture_output=True, text=True,
    )
    if r.returncode != 0:
        raise LabError(f"creating namespaces for lab {plan.name}: {r.stderr.strip()}")
    run_in(topo.sdn_ns, _sdn_job, topo, clouds.of(plan).lab_fabric())
    nics = {n.node: n for n in topo.nics}
    jobs: list[Job] = [(topo.internet_ns, nodes.internet, ())]
    jobs += [(topo.ns(e), nodes.endpoint, (nics[e],)) for e in plan.endpoints]
    if hosts == "netns":
        jobs += [
            (topo.ns(h), nodes.host, (plan, topo, nics[h], *host_dirs(plan, h), hand)) for h in plan.hosts
        ]
    parallel(jobs)
    if hosts == "systemd":
        from . import systemd

        systemd.bring_up(plan, topo, state_dir(plan.name), ufw, libvirt_guests=guests == "libvirt",
                         flavour=image if image != "base" else None)
    if guests != "libvirt":  # libvirt guests are QEMU domains in their hosts, not namespaces
        parallel([(topo.ns(v), nodes.vm, (plan, v, guests == "dhcp")) for v in plan.vms])
    clouds.of(plan).lab_fabric().program_ns(topo, state)
    dns.start(plan, topo, zone or {})
    resolv = resolv_paths(plan)
    for v, path in resolv.items() if guests != "libvirt" else ():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(resolv_conf(plan.vms[v]) if guests == "static" else "")
    if guests == "dhcp":
        dhcpclient.run(plan, topo, list(plan.vms), state_dir(plan.name), apply=True, resolv=resolv)
    if guests == "libvirt":
        from . import libvirt

        for v in plan.vms:  # each got its planned address from nestnet's dnsmasq on its host
            libvirt.wait_address(plan, state_dir(plan.name), v)
    apps.start(plan, topo, state_dir(plan.name))


def _sdn_job(topo: Topology, fabric: clouds.LabFabric) -> None:
    write_sysctls(NO_IPV6)
    ip_batch(["link set lo up"])
    fabric.build(topo)


def down(plan_or_name: Plan | str) -> None:
    """Remove every namespace of the lab, the processes inside them and its state directory."""
    name = plan_or_name if isinstance(plan_or_name, str) else plan_or_name.name
    require_root()
    if (state_dir(name) / "systemd").exists():
        from . import systemd

        systemd.stop_all(state_dir(name))  # poweroff, else killed by PID; overlays unmounted
    spaces = lab_namespaces(name)
    killed: list[int] = []
    for ns in spaces:
        # A process left inside keeps the namespace alive after `ip netns del`.
        r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
        for pid in map(int, r.stdout.split()):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
    _wait_gone(killed)
    dns.remove_resolv(ns_prefix(name))
    if spaces:
        r = subprocess.run(
            ["ip", "-batch", "-"], input="".join(f"netns del {ns}\n" for ns in spaces), capture_output=True, text=True
        )
        if r.returncode != 0:
            raise LabError(f"removing lab {name}: {r.stderr.strip()}")
    shutil.rmtree(state_dir(name), ignore_errors=True)


def _wait_gone(pids: list[int], timeout: float = 2.0) -> None:
    """Until every killed process is gone (a zombie counts as gone: it holds no namespace)."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                        break
            except FileNotFoundError:
                break
            time.sleep(0.005)


def apply_fault(plan: Plan, fault: Fault) -> None:
    """Break the running lab the way ``fault`` says; it stays broken until ``heal``."""
    require_root()
    require_up(plan)
    topo = Topology.from_plan(plan)
    faults = tuple(sorted({*read_faults(plan.name), fault}))
    if is_cloud_fault(fault) and api_source(plan) == "api":
        title = clouds.title(plan.cloud.cloud_name)
        raise UsageError(f"{fault}: lab {plan.name} takes {title}'s state from the {lab_api(plan).api}; change it there")
    if is_cloud_fault(fault):
        fabric = clouds.of(plan).lab_fabric()
        fabric.program_ns(topo, fabric.with_faults(plan, faults))
    else:
        run_in(topo.ns(fault.target), apply_host_fault, plan, fault)
    _write_faults(plan.name, faults)
    _forget_neighbours(plan.name)


def heal(plan: Plan) -> tuple[Fault, ...]:
    """Restore the planned state; returns the faults that were healed."""
    require_root()
    require_up(plan)
    topo = Topology.from_plan(plan)
    faults = read_faults(plan.name)
    if api_source(plan) == "plan":  # with the API, the cloud's state is the emulator's to keep
        clouds.of(plan).lab_fabric().program_ns(topo, CloudState.from_plan(plan))
    kinds: dict[str, tuple[str, ...]] = {}
    for f in faults:
        if not is_cloud_fault(f):
            kinds[f.target] = (*kinds.get(f.target, ()), f.kind)
    systemd_hosts = is_systemd(plan.name)
    parallel(
        [(topo.ns(h), clear_host_faults, (plan, h, *host_dirs(plan, h), k, not systemd_hosts))
         for h, k in sorted(kinds.items())]
    )
    if systemd_hosts:  # each host heals as its admin would: nestnet host apply, run inside it
        from . import systemd

        systemd._each(lambda h: systemd.host_apply(plan, state_dir(plan.name), h), sorted(kinds))
        for h, k in sorted(kinds.items()):
            if "no-masquerade" in k and plan.hosts[h].firewall == "ufw":
                # a rule deleted behind UFW's back: its files are unchanged, so host apply (rightly)
                # has nothing to write; the admin's way back is UFW's own reload
                systemd.run_inside(systemd.dirs(state_dir(plan.name), h), ["ufw", "reload"], timeout=60)
    _write_faults(plan.name, ())
    _forget_neighbours(plan.name)
    return faults


def _flush_neighbours() -> None:
    ip_batch(["neigh flush all"])


def _forget_neighbours(name: str) -> None:
    """Cold ARP caches everywhere, so a fault (or its heal) shows at once and the same every time."""
    parallel([(ns, _flush_neighbours, ()) for ns in lab_namespaces(name)])


def node_ns(plan: Plan, node: str) -> str:
    if node != INTERNET and node not in plan.node_names:
        from ..names import unknown

        raise UsageError(f"{plan.source or plan.name}: no node named {node!r}{unknown(node, [*plan.node_names, INTERNET])}")
    return Topology.from_plan(plan).ns(node)


def _nestnet_resolved(argv: list[str]) -> list[str]:
    """``nestnet ...`` as the README writes it, also where PATH lacks nestnet (sudo's secure_path,
    a venv not activated): this very nestnet, from the bin directory of the running Python."""
    if not argv or argv[0] != "nestnet" or shutil.which("nestnet"):
        return argv
    beside = Path(sys.executable).parent / "nestnet"
    return [str(beside), *argv[1:]] if beside.exists() else [sys.executable, "-m", "nestnet", *argv[1:]]


def exec_(plan: Plan, node: str, argv: list[str], *, capture: bool = True) -> subprocess.CompletedProcess:
    """Run ``argv`` inside ``node``'s namespace (``ip netns exec``)."""
    require_root()
    ns = node_ns(plan, node)
    require_up(plan)
    if not argv:
        raise UsageError("lab exec: give a command after --")
    env = None
    inside = node in plan.hosts and is_systemd(plan.name)
    if inside:
        from . import systemd

        # inside the booted host, as its admin: its own environment, this directory if it is there
        argv = systemd.inside_argv(systemd.dirs(state_dir(plan.name), node), argv, os.getcwd())
    elif node in plan.hosts:
        # nestnet run on a lab host finds that host's files (host diff/apply, doctor) by itself
        env = {**os.environ, "NESTNET_ROOT": host_dirs(plan, node)[0]}
        if plan.hosts[node].bridge_type == "ovs":
            env.update(ovs.env(Path(host_dirs(plan, node)[1])))  # its private OVS
        if api_source(plan) == "api" and lab_api(plan).endpoint(state_dir(plan.name)):
            env.update(api_env(plan))  # a lab host's cloud API is the lab's emulator: `nestnet <cloud> ...` just works
    if not inside:
        argv = _nestnet_resolved(argv)  # env keeps this process's PATH
    try:
        cmd = argv if inside else ["ip", "netns", "exec", ns, *argv]
        return subprocess.run(cmd, capture_output=capture, text=True, env=env)
    except OSError as exc:
        raise LabError(f"lab exec {node}: {exc}") from exc
