"""``nestnet lab up|down|exec|matrix|fault|heal|demo``: the fabric emulated in network namespaces."""

from __future__ import annotations

import sys
from typing import Callable, TypeVar

import click

from .output import console, emit_json, json_option, note, probe_option, spec_argument, table, warn_lines
from .. import clouds
from ..names import unknown
from ..words import plural

# `lab up --<cloud> api`: the default cloud's flag and name in the help texts (each cloud with an API
# in the lab adds its own option, ``clouds.lab_apis()``)
_API_FLAG, _TITLE = f"--{clouds.DEFAULT} api", clouds.title()


def _source_options(default: str | None, help_of: Callable[[clouds.LabApi], str]) -> Callable[[F], F]:
    """``--<cloud> plan|api`` for each cloud with an API in the lab; the command gets them by the
    cloud's name (``**sources``)."""
    def add(f: F) -> F:
        for name, api in reversed(clouds.lab_apis().items()):
            f = click.option(f"--{name}", name, type=click.Choice(list(clouds.LAB_SOURCES)), default=default,
                             show_default=default is not None, help=help_of(api))(f)
        return f

    return add


F = TypeVar("F", bound=Callable[..., object])


def _example_modes() -> str:
    """What ``lab demo --cloud <cloud>`` runs, for each cloud with an example of its own (its
    package's ``lab.MODES``, the first the default)."""
    from importlib import import_module
    from importlib.util import find_spec

    others = [n for n in clouds.PACKAGES if n != clouds.DEFAULT and find_spec(f"nestnet.clouds.{n}.lab")]
    modes = {n: getattr(import_module(f"nestnet.clouds.{n}.lab"), "MODES", ()) for n in others}
    return "; ".join(f"--cloud {n}: {m[0]}; {n} takes {' and '.join(m)}" for n, m in modes.items() if m)


def _plan(spec: str, write: bool = False):
    from ..plan import load_plan

    return load_plan(spec, write=write)


@click.group(help=f"Emulate the fabric - {_TITLE}, KVM hosts, nested VMs, endpoints - in network namespaces (root).")
def lab() -> None:
    pass


@lab.command("up")
@spec_argument
@click.option("--fault", "faults", multiple=True, metavar="KIND:TARGET", help="Start with this fault (repeatable).")
@_source_options("plan", lambda api: api.up_help)
@click.option("--as-seed", is_flag=True, help=f"Hosts (and with {_API_FLAG}, {_TITLE}) as the seed document's manual "
              "procedure leaves them: plain `ip route add`, forwarding open, routes named to-<host>-nested; nothing of nestnet's.")
@click.option("--propagation-delay", type=click.FloatRange(min=0), default=0.0, show_default=True, metavar="SECONDS",
              help=f"With {_API_FLAG}: route changes reach the lab's data plane this much later, as on {_TITLE}.")
@click.option(
    "--guests", type=click.Choice(["static", "dhcp", "libvirt"]), default="static", show_default=True,
    help="How nested VMs get their network: the `ip` guest config, or only a DHCP client (udhcpc) "
    "asking their host's DHCP server; libvirt (with --hosts systemd): each VM a QEMU (TCG) libvirt domain "
    "on its host, defined from `vm config --format libvirt-domain`, asking nestnet's dnsmasq by DHCP.",
)
@click.option(
    "--hosts", "hosts", type=click.Choice(["netns", "systemd"]), default="netns", show_default=True,
    help="KVM hosts as network namespaces configured from outside, or (systemd) booted by systemd in a "
    "container from the cached Debian rootfs (`lab image`), configured by `nestnet host apply` run inside.",
)
@click.option(
    "--ufw", "ufw", type=click.Choice(["ufw-hosts", "all", "none"]), default="ufw-hosts", show_default=True,
    help="With --hosts systemd: UFW enabled at boot on firewall: ufw hosts, on every host (as the seed does; "
    "nftables hosts then refuse to apply beside it), or on none.",
)
@click.option("--image", "image", type=click.Choice(["base", "libvirt"]), default="base", show_default=True,
              help="With --hosts systemd: the rootfs the hosts boot (`lab image --flavour`).")
@click.option("--cloud-init", "cloud_init", multiple=True, metavar="VM",
              help="With --guests libvirt: VM boots the cloud-init guest image (`lab image --flavour cloud-init`) "
              "and takes its static network from a NoCloud seed made from `vm config --format cloud-init`, "
              "not DHCP. Repeat for more VMs.")
def up(spec: str, faults: tuple[str, ...], as_seed: bool, propagation_delay: float, guests: str,
       hosts: str, ufw: str, image: str, cloud_init: tuple[str, ...], **sources: str) -> None:
    """Build the lab for SPEC: namespaces nn-<name>.<node>."""
    from .. import lab as labmod
    from ..faults import parse_faults
    from ..lab.core import source_of

    if propagation_delay and "api" not in sources.values():
        from ..errors import UsageError

        raise UsageError(f"--propagation-delay: only with {_API_FLAG} (with the plan, {_TITLE}'s side is programmed at once)")
    if hosts == "netns" and (ufw != "ufw-hosts" or image != "base"):
        from ..errors import UsageError

        raise UsageError(f"--{'ufw' if ufw != 'ufw-hosts' else 'image'}: only with --hosts systemd")
    plan = _plan(spec, write=True)
    warn_lines(plan.warnings)
    parsed = parse_faults(faults, plan)
    import time

    t0 = time.monotonic()
    source = source_of(plan, sources)
    labmod.up(plan, parsed, as_seed=as_seed, propagation_delay=propagation_delay,  # type: ignore[arg-type]
              guests=guests, hosts=hosts, ufw=ufw, image=image, cloud_init=cloud_init, **sources)  # type: ignore[arg-type]
    n = len(plan.node_names)
    note(
        f"lab {plan.name} is up: {plural(len(plan.hosts), 'host')}, {plural(len(plan.vms), 'VM')}, "
        f"{plural(n - len(plan.hosts) - len(plan.vms), 'endpoint')}, internet; {clouds.title(plan.cloud.cloud_name)} from the {source}; "
        f"guests {({'dhcp': 'by DHCP', 'libvirt': 'libvirt domains (DHCP)'}).get(guests, 'static')}"
        + (f"; cloud-init (static from its seed): {', '.join(sorted(set(cloud_init)))}" if cloud_init else "")
        + ("; built by hand as the seed document does" if as_seed else "")
        + (f"; hosts booted by systemd (UFW enabled on {dict(all='every host', none='no host').get(ufw, 'firewall: ufw hosts')}), "
           f"nestnet host apply run inside each; {time.monotonic() - t0:.1f} s" if hosts == "systemd" else "")
    )
    for f in parsed:
        note(f"fault applied: {f}")
    if source == "api":
        from ..lab.core import lab_api, state_dir

        host, api = next(iter(plan.hosts)), lab_api(plan)
        note(f"{api.emulator}: {api.endpoint(state_dir(plan.name))} (lab exec on a host points nestnet at it)")
        note(f"  nestnet lab exec {spec} {host} -- nestnet {plan.cloud.cloud_name} apply {spec}")


@lab.command("down")
@spec_argument
def down(spec: str) -> None:
    """Remove the lab of SPEC: every nn-<name>.* namespace, the processes in them, its state."""
    from .. import lab as labmod

    plan = _plan(spec)
    labmod.down(plan)
    note(f"lab {plan.name} is down")


@lab.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@spec_argument
@click.argument("node")
@click.argument("argv", nargs=-1, type=click.UNPROCESSED, required=True)
def exec_cmd(spec: str, node: str, argv: tuple[str, ...]) -> None:
    """Run a command inside NODE (a host, VM or endpoint of SPEC, or 'internet'): lab exec SPEC NODE -- CMD..."""
    from .. import lab as labmod

    args = list(argv)
    if args and args[0] == "--":
        args = args[1:]
    r = labmod.exec_(_plan(spec), node, args, capture=False)
    sys.exit(r.returncode)


def print_matrix(pairs, probe=None) -> None:
    from rich.text import Text

    names: list[str] = []
    for p in pairs:
        for n in (p.src, p.dst):
            if n not in names:
                names.append(n)
    ok = {(p.src, p.dst): p.ok for p in pairs}
    t = table(None, ["src \\ dst", *(str(i + 1) for i in range(len(names)))])
    for src in names:
        if not any(s == src for s, _ in ok):
            continue
        cells = []
        for dst in names:
            if (src, dst) not in ok:
                cells.append(Text("·", style="dim"))
            else:
                cells.append(Text("✓", style="green") if ok[(src, dst)] else Text("✗", style="bold red"))
        t.add_row(f"{names.index(src) + 1} {src}", *cells)
    out = console()
    out.print(t)
    red = sum(1 for p in pairs if not p.ok)
    legend = "  ".join(f"{i + 1}={n}" for i, n in enumerate(names))
    out.print(Text(legend, style="dim"))
    summary = f"{len(pairs) - red}/{len(pairs)} pairs reachable" + (f" (probe {probe})" if probe is not None and probe.port is not None else "")
    out.print(Text(summary, style="green" if red == 0 else "bold red"))


@lab.command("matrix")
@spec_argument
@probe_option
@json_option
def matrix(spec: str, probe, as_json: bool) -> None:
    """Ping every ordered pair of nodes in parallel (the internet as a destination only).

    A pair is green when the echo reply came back; with --probe tcp/PORT when a real TCP
    connection to a listener on PORT in the destination completed, with udp/PORT when its echo
    came back. Exit 1 when any pair is red.
    """
    from .. import lab as labmod

    plan = _plan(spec)
    pairs = labmod.matrix(plan, probe)
    if as_json:
        emit_json({"probe": str(probe), "pairs": [p.to_dict() for p in pairs]})
    else:
        print_matrix(pairs, probe)
    sys.exit(0 if all(p.ok for p in pairs) else 1)


@lab.command("services")
@spec_argument
@json_option
def services(spec: str, as_json: bool) -> None:
    """For every nested VM: its DHCP lease is the plan's address; a VNet name, the internet's name
    and (with a private zone) another VM's name resolve; an HTTP GET by name to the lab's internet
    answers; every NAT forward answers from an endpoint. Exit 1 unless all are ok."""
    from rich.text import Text

    from ..lab import services as svc

    plan = _plan(spec)
    res = svc.run(plan)
    if as_json:
        emit_json({"vms": {v: r.to_dict() for v, r in res.items()}})
    else:
        def mark(ok: bool) -> Text:
            return Text("ok", style="green") if ok else Text("FAIL", style="bold red")

        t = table(None, ["vm", "dhcp lease", "dns", "http", "forwards"])
        for v, r in res.items():
            fw = Text(", ".join(f"{p} {'ok' if ok else 'FAIL'}" for p, ok in r.forwards) or "-")
            t.add_row(v, Text.assemble(mark(r.dhcp_ok), f" {r.ip or 'none'}"), mark(r.dns_ok), mark(r.http_ok), fw)
        out = console()
        out.print(t)
        for v, r in res.items():
            for name, (want, got) in r.names.items():
                if want != got:
                    out.print(f"{v}: {name} resolved to {got or 'nothing'}, want {want}", style="red", markup=False)
    sys.exit(0 if all(r.ok for r in res.values()) else 1)


def _fault_kinds() -> str:
    from ..faults import FAULT_KINDS

    rows = {f"{k}:{what.upper()}": text for k, (what, text) in FAULT_KINDS.items()}
    width = max(map(len, rows))
    return "\b\nFaults:\n" + "\n".join(f"  {k:{width}}  {text}" for k, text in rows.items())


@lab.command("fault", epilog=_fault_kinds())
@spec_argument
@click.argument("fault", metavar="KIND:TARGET")
def fault(spec: str, fault: str) -> None:
    """Break the running lab with one fault; it stays until `lab heal`."""
    from .. import lab as labmod
    from ..faults import parse_fault

    plan = _plan(spec)
    f = parse_fault(fault, plan)
    labmod.apply_fault(plan, f)
    note(f"fault applied: {f}")


@lab.command("heal")
@spec_argument
def heal(spec: str) -> None:
    """Remove every fault: the fabric and the hosts back to the planned state."""
    from .. import lab as labmod

    healed = labmod.heal(_plan(spec))
    note(f"healed: {', '.join(map(str, healed)) or 'nothing to heal'}")


@lab.command("demo")
@click.option("--mode", type=click.Choice(["routed", "nat", "secondary-ip", "nic-prefix", "prefix"]), default=None,
              help="The seed's fabric in this mode (nat: nested VMs on 192.168.122.0/24 behind their host); "
              f"default routed ({_example_modes()}).")
@click.option("--cloud", type=click.Choice(clouds.PACKAGES), default=clouds.DEFAULT, show_default=True,
              help="Whose example: the seed (the default cloud's) or examples/<cloud>.yaml.")
@click.option("--scenario", type=click.Choice(["seed", "adopt", "add-host", "migrate"]), default="seed", show_default=True,
              help="seed: the seed's verification and every pair; adopt: import + rollout --adopt of the hand-built "
              "seed under continuous pings; add-host: host add + rollout, timed until every pair is green; migrate: a live "
              "migration of web1 to a third host on a mobile copy of the seed, its gap and every pair.")
@click.option("--name", default=None, hidden=True, help="Lab name instead of the seed's (tests run side by side).")
@probe_option
@json_option
def demo(mode: str | None, cloud: str, scenario: str, name: str | None, probe, as_json: bool) -> None:
    """Bring up the seed fabric in MODE, run the seed's verification inside it, ping every pair
    (the internet too; with --probe tcp/PORT or udp/PORT a real connection to PORT instead), ask
    `check` the same, tear down.

    A pair is expected to fail only where the mode cannot serve it by design (nat: nothing
    outside a host reaches its nested VMs). Exit 0 only when every pair is as expected and
    check agrees with the lab on every pair.
    """
    if cloud != clouds.DEFAULT:
        from importlib import import_module

        from ..errors import UsageError

        example = import_module(f"nestnet.clouds.{cloud}.lab")
        mode = mode or example.MODES[0]
        if mode not in example.MODES or scenario != "seed":
            raise UsageError(f"--cloud {cloud}: --mode {' or '.join(example.MODES)} with --scenario seed")
    mode = mode or "routed"
    if scenario != "seed":
        from ..errors import UsageError

        if mode != "routed":
            raise UsageError(f"--scenario {scenario} runs the routed seed only; drop --mode {mode}")
        if probe.port is not None:  # the scenarios time continuous pings
            raise UsageError(f"--scenario {scenario} pings; --probe {probe} runs with --scenario seed only")
        _scenario(scenario, as_json, name)
        return
    from ..lab.demo import passed, result, run_demo, seed_plan

    plan = seed_plan(mode, name) if cloud == clouds.DEFAULT else example.example_plan(mode, name)
    out = console(stderr=as_json)

    def report(c) -> None:
        if as_json:
            return
        mark = "[green]PASS[/]" if c.ok else "[bold red]FAIL[/]"
        out.print(f"{mark} {c.node}: ", end="")
        out.print(c.command, markup=False, soft_wrap=True)
        if not c.ok:
            out.print(f"     expected /{c.expect or 'exit 0'}/, got: {c.output or '(nothing)'}", markup=False)

    if not as_json:
        out.print(f"[bold]lab {plan.name} ({mode})[/]: the seed's verification, run inside it:")
    done, pairs = run_demo(plan, report, probe)
    ok = all(c.ok for c in done) and passed(pairs)
    if as_json:
        emit_json(result(mode, pairs, probe))
        sys.exit(0 if ok else 1)
    what = "" if probe.port is None else f", probe {probe}"  # a ping: the heading it always had
    out.print(f"[bold]reachability matrix[/] (every ordered pair, both directions{what}):")
    print_matrix(pairs)
    for p in pairs:
        if not p.expected:
            out.print(f"  [dim]by design[/] {p.src} → {p.dst}: ", end="")
            out.print(p.why_not, markup=False)
        if p.ok != p.expected:
            out.print(f"  [bold red]unexpected[/] {p.src} → {p.dst}: {'reached' if p.ok else 'unreachable'}")
        if p.check != p.ok:
            out.print(f"  [bold red]check disagrees[/] {p.src} → {p.dst}: check says {'ok' if p.check else 'fails'}")
    out.print("[bold green]demo passed[/]" if ok else "[bold red]demo failed[/]")
    sys.exit(0 if ok else 1)


def _scenario(scenario: str, as_json: bool, name: str | None = None) -> None:
    from importlib.resources import as_file, files
    from pathlib import Path

    from ..lab import scenarios

    say = (lambda _m: None) if as_json else note
    with as_file(files("nestnet") / "examples" / "seed.yaml") as seed:
        run = {"adopt": scenarios.adopt, "add-host": scenarios.add_host, "migrate": scenarios.migrate}[scenario]
        outcome = run(Path(seed), say, name=name)
    if as_json:
        emit_json(outcome.doc)
    else:
        doc = outcome.doc
        for k, v in doc.items():
            if k not in ("pairs", "probes"):
                click.echo(f"{k}: {v}")
        from ..lab.matrix import PingResult

        print_matrix([PingResult(p["src"], p["dst"], p["ok"]) for p in doc.get("pairs", [])])
    sys.exit(0 if outcome.ok else 1)


@lab.command("migrate")
@spec_argument
@click.argument("vm")
@click.option("--to", "to", required=True, help="The host the VM moves to.")
@_source_options(None, lambda api: api.migrate_help)
@click.option("--propagation-delay", type=click.FloatRange(min=0), default=0.0, show_default=True, metavar="SECONDS",
              help=f"With {_TITLE} from the plan: the route change reaches the fabric this much after the switch-over, "
              f"as on {_TITLE} (with {_API_FLAG}, lab up's --propagation-delay does it).")
@json_option
def migrate(spec: str, vm: str, to: str, propagation_delay: float, as_json: bool, **sources: str | None) -> None:
    """Live-migrate VM to host TO in the running lab, measuring the gap (the spec is updated).

    With libvirt guests (lab up --hosts systemd --guests libvirt): virsh migrate --live between the
    two hosts over the lab's fabric; nestnet's qemu hook (hosts[].migration_hook) runs the host-side
    steps, and what it did is read back from each host's journal. Exit 1 when a pair is not green
    afterwards or the hook reported an error."""
    from ..lab.migrate import migrate as run

    res = run(spec, vm, to, next((s for s in sources.values() if s is not None), None), propagation_delay)
    if as_json:
        emit_json(res.to_dict())
    else:
        delay = f", route change {propagation_delay:g} s late" if propagation_delay else ""
        click.echo(f"moved {vm} from {res.src_host} to {res.dst_host} ({clouds.title(res.cloud)} from the {res.source}{delay})")
        for p in res.probes:
            click.echo(f"  {p.src} -> {p.dst}: {p.sent} sent, {p.lost} lost, gap {p.gap_s:.2f} s")
        if "downtime" in res.timings:
            click.echo(f"  libvirt: virsh migrate {res.timings['migrate']:.1f} s, the guest paused "
                       f"{res.timings['downtime']:.3f} s (QEMU's downtime)")
        for h, lines in res.hook.items():
            click.echo(f"  hook on {h}: " + ("; ".join(lines) if lines else "nothing in its journal"))
        for e in res.hook_errors:
            click.echo(f"  HOOK ERROR {e}")
        bad = [p for p in res.pairs if not (p["ok"] and p["check"])]
        click.echo(f"{len(res.pairs) - len(bad)}/{len(res.pairs)} pairs ok and as check says; gap {res.gap_s:.2f} s")
        for p in bad:
            click.echo(f"  FAIL {p['src']} -> {p['dst']} (lab {'ok' if p['ok'] else 'fails'}, check "
                       f"{'agrees' if p['check'] else 'disagrees'})")
    sys.exit(0 if res.ok else 1)


def _progress(as_json: bool):
    """A live one-line status of a slow step on stderr for people (the build's current line);
    with --json or when stderr is not a terminal, a few plain lines instead."""
    from contextlib import contextmanager

    @contextmanager
    def show(title: str):
        if as_json:
            yield lambda _m: None
            return
        out = console(stderr=True)
        if not out.is_terminal:
            note(f"{title} ...")
            steps = {"I: Retrieving", "I: Validating", "I: Extracting", "I: Installing", "I: Configuring"}
            seen: set[str] = set()

            def plain(m: str) -> None:
                head = " ".join(m.split()[:2])
                if head in steps and head not in seen:  # one line per debootstrap phase
                    seen.add(head)
                    note(f"  {m}")
            yield plain
            return
        with out.status(title) as st:
            yield lambda m: st.update(f"{title}: {m[:100]}")

    return show


@lab.command("image")
@click.option("--flavour", type=click.Choice(["base", "libvirt", "guest", "cloud-init"]), default="base",
              show_default=True,
              help="base: systemd, networkd, netplan, UFW, nftables, dnsmasq; libvirt: base plus libvirt and QEMU; "
              "guest: the libvirt guests' Debian cloud kernel and busybox initrd (--guests libvirt); "
              "cloud-init: a small Debian rootfs with cloud-init, netplan and systemd-resolved (--cloud-init VM).")
@click.option("--refresh", is_flag=True, help="Build it again even when it is cached.")
@json_option
def image(flavour: str, refresh: bool, as_json: bool) -> None:
    """Build (or reuse) the Debian bookworm rootfs that `lab up --hosts systemd` boots (root, debootstrap).

    Cached in /var/cache/nestnet/images (NESTNET_IMAGE_CACHE), keyed by what it is made of; built
    from Debian's packages (NESTNET_DEBIAN_MIRROR) in a temporary directory renamed into place.
    """
    from ..lab import image as img

    with _progress(as_json)(f"building the {flavour} image") as say:
        if flavour == "guest":
            from ..lab import guestimage

            got = guestimage.ensure(refresh=refresh, say=say)
        elif flavour == "cloud-init":
            from ..lab import cloudinitimage

            got = cloudinitimage.ensure(refresh=refresh, say=say)
        else:
            got = img.ensure(flavour, refresh=refresh, say=say)
    if as_json:
        emit_json(got.to_dict())
    else:
        how = f"built in {got.seconds:.0f} s" if got.built else "cached"
        note(f"image {got.to_dict()['flavour']}: {got.path} ({how})")


@lab.command("reboot")
@spec_argument
@click.argument("host", required=False)
@click.option("--all", "all_hosts", is_flag=True, help="Reboot every host at once.")
@json_option
def reboot(spec: str, host: str | None, all_hosts: bool, as_json: bool) -> None:
    """Reboot HOST (or --all) of a `lab up --hosts systemd` lab for real: systemctl poweroff, a fresh
    network namespace, boot again; nothing of nestnet runs but what the host's boot starts.

    With libvirt guests the host's libvirt saves its guests at poweroff and restores them at boot.
    Prints the time from boot to every pair of the host green (lab matrix). Exit 1 when a host's
    pairs were not all green within 120 s.
    """
    from ..errors import UsageError
    from ..lab.reboot import reboot as run

    plan = _plan(spec)
    if bool(host) == all_hosts:
        raise UsageError("lab reboot: give one HOST or --all")
    if host and host not in plan.hosts:
        raise UsageError(f"{spec}: no host named {host!r}{unknown(host, plan.hosts)}")
    done = run(plan, list(plan.hosts) if all_hosts else [host])
    if as_json:
        emit_json({"hosts": [r.to_dict() for r in done]})
    else:
        for r in done:
            green = f"every pair green {r.green_s:.1f} s after boot" if r.green_s is not None else "NOT all pairs green"
            note(f"{r.host}: powered off in {r.down_s:.1f} s; booted (running) in {r.running_s:.1f} s; {green}")
    sys.exit(0 if all(r.green_s is not None for r in done) else 1)
