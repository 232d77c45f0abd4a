"""``nestnet diagram``: the fabric as a graph, with check's verdicts on it.

The cloud's network holds its subnets; a subnet holds its gateway, its hosts (each with its nested
VMs) and its endpoints; every gateway hangs off the cloud's router, which reaches the internet. The
route table sits beside the subnets, dashed lines to the subnets it is associated with. What the
model says is off (the cloud's NIC settings, a missing association, ``ip_forward``) is written on the
element. Each failing pair marks the element where it dies (``dies_at``): red, with every
such pair and its cause on hover (SVG ``<title>``) or in a note (Mermaid); the nodes at either
end of a failing pair get an amber border, the others a green one. The cloud's elements, in its
words, come from its package (``nestnet.clouds.drawing``).

``build`` is pure; ``to_dot`` and ``to_mermaid`` are text; ``svg`` runs Graphviz's ``dot``
(layout is Graphviz's job, never hand-placed) and writes the causes into the SVG.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from xml.etree import ElementTree as ET

from .. import clouds
from ..errors import OperationError
from ..model.state import INTERNET_IP
from ..sysctl import IP_FORWARD
from . import Verdicts, on, seen

NOTE_LINES = 6  # failing pairs listed per Mermaid note; the SVG title lists up to TITLE_LINES
TITLE_LINES = 40
VMS_DRAWN = 6  # per host; beyond, the first five and one node for the rest
# Per subnet, likewise: beyond, the first 23 and one node for the rest (with their VMs). Graphviz
# lays 1,000 host boxes side by side in minutes (its ordering and placement grow faster than the
# rank's width); the report and check name every host, the picture shows the shape.
HOSTS_DRAWN = 24

FAIL, TOUCHED, OK, OFF = "fail", "touched", "ok", "off"
COLOURS = {  # stroke, fill
    FAIL: ("#c0392b", "#fde2df"),
    TOUCHED: ("#d68910", "#ffffff"),
    OK: ("#1e8449", "#ffffff"),
}
OFF_COLOUR = "#b9770e"


@dataclass(frozen=True)
class Node:
    id: str
    kind: str  # internet | cloud (its router) | routes | gw | host | vm | ep
    lines: tuple[str, ...]  # the first is the title
    cluster: str | None = None
    off: tuple[str, ...] = ()  # what is not as planned here, in words


@dataclass(frozen=True)
class Edge:
    id: str
    a: str
    b: str
    kind: str  # nic | bridge | sdn | assoc | egress
    label: tuple[str, ...] = ()
    off: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cluster:
    id: str
    label: str
    parent: str | None = None
    off: tuple[str, ...] = ()


@dataclass(frozen=True)
class Diagram:
    title: str
    clusters: tuple[Cluster, ...]
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    # element id -> the failing pairs dying there: ("src → dst", cause)
    marks: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)  # node id -> FAIL | TOUCHED | OK
    by_design: tuple[str, ...] = ()  # pairs the mode cannot serve by design (groups of them), not marked
    count: dict[str, int] = field(default_factory=dict)  # element id -> how many failing pairs die there
    designed: int = 0  # how many pairs the mode cannot serve by design
    legend_exception: str = ""  # the legend's words for a /32 exception: the cloud's

    def dying(self, element: str, most: int) -> list[str]:
        """Lines for people: how many pairs die at ``element``, which (up to ``most``), and why."""
        dying = self.marks.get(element, ())
        if not dying:
            return []
        pairs = [p for p, _ in dying]
        n = self.count.get(element, len(pairs))
        lines = [f"✗ {n} failing pair{'s' if n != 1 else ''} die here: "
                 + "; ".join(pairs[:most]) + (f" and {len(pairs) - most} more causes" if len(pairs) > most else "")]
        causes = list(dict.fromkeys(c for _, c in dying))
        lines += [f"cause: {c}" for c in causes[:most]]
        if len(causes) > most:
            lines.append(f"... and {len(causes) - most} other causes")
        return lines

    def hover(self, element: str, base: str) -> str:
        """What a person sees on hover: the element, then the failing pairs that die there and why."""
        return "\n".join([base, *self.dying(element, TITLE_LINES)])


NOTE_WIDTH = 64  # characters per line of a note: Graphviz does not wrap, Mermaid wraps badly


def _plain(text: str) -> str:
    """Commands the model writes in backticks, quoted for a picture (no Markdown there)."""
    return re.sub(r"`([^`]*)`", "‘\\1’", text)


def notes(d: Diagram) -> list[tuple[str, str, tuple[str, ...]]]:
    """Each element where failing pairs die as a note beside it: (note id, the node it hangs off,
    its lines: how many pairs die there, which, and each cause with its fix), so a printout or
    a PNG shows what a browser shows on hover."""
    import textwrap

    by_id = {e.id: e for e in d.edges}
    out = []
    for el in d.marks:
        if el in by_id and by_id[el].kind == "nic":
            continue  # its owner node carries the note
        target = by_id[el].b if el in by_id else el  # the red link shows the edge
        lines = [w for line in d.dying(el, NOTE_LINES) for w in textwrap.wrap(_plain(line), NOTE_WIDTH)]
        out.append((f"note-{el}", target, tuple(lines)))
    return out


def legend(d: Diagram) -> tuple[str, ...]:
    """What the colours and words of the picture mean (only what it can show)."""
    lines = ["legend",
             "red fill: where failing pairs die (the note beside it: pairs, cause, fix)",
             "amber border: an end of a failing pair · green border: all its pairs work",
             "CAPITALS (planned …): observed differs from the plan",
             "dashed: route table associated with the subnet (or a link not as planned)"]
    if any(" · /32 exception" in ln for n in d.nodes for ln in n.lines):
        lines.append(d.legend_exception)
    if d.by_design:
        lines.append("not marked: pairs the mode cannot serve by design (caption)")
    return tuple(lines)


def _nesting(d: Diagram) -> tuple[dict[str | None, list[Cluster]], dict[str | None, list[Node]]]:
    """Each cluster's sub-clusters and nodes (key None: the top level), in the diagram's order."""
    children: dict[str | None, list[Cluster]] = {}
    for c in d.clusters:
        children.setdefault(c.parent, []).append(c)
    members: dict[str | None, list[Node]] = {}
    for n in d.nodes:
        members.setdefault(n.cluster, []).append(n)
    return children, members


def _id(kind: str, name: str = "") -> str:
    # kinds contain no '-', so "<kind>-<name>" never collides across kinds
    return f"{kind}-{name}" if name else kind


def build(v: Verdicts) -> Diagram:
    """Pure: the graph of ``v.plan`` as the faulted state has it, marked with ``v``'s verdicts. The
    cloud's part (its network, router, route table, subnets' tables, NICs) is its package's drawing."""
    plan, st = v.plan, v.state
    cloud = plan.cloud.cloud_name
    draw = clouds.drawing(cloud)
    net = draw.network_id
    clusters = [Cluster(net, f"{draw.network(plan)} · {', '.join(map(str, plan.address_space))}")]
    nodes: list[Node] = [
        Node("internet", "internet", ("internet", str(INTERNET_IP))),
        Node(cloud, "cloud", draw.router(plan), net),
    ]
    # edges run top-down (Graphviz ranks an edge's first node above its second)
    edges: list[Edge] = [Edge("egress", "internet", cloud, "egress", draw.egress(plan))]
    table = draw.route_table(plan, st)
    if table is not None:
        nodes.append(Node("routes", "routes", table.lines, net, table.off))
    for s in plan.subnets.values():
        sub = draw.subnet(plan, st, s)
        cid = _id("subnet", s.name)
        clusters.append(Cluster(cid, " · ".join((s.name, str(s.prefix), *sub.lines)), net, sub.off))
        gw = _id("gw", s.name)
        nodes.append(Node(gw, "gw", (f"gateway {s.gateway}",), cid))
        edges.append(Edge(_id("sdn", s.name), cloud, gw, "sdn"))
        if table is not None and sub.linked:
            edges.append(Edge(_id("assoc", s.name), "routes", gw, "assoc", ("associated",)))
    drawn = _drawn_hosts(plan)
    for h in plan.hosts.values():
        if h.name in drawn.shown:
            _draw_host(v, draw, h, clusters, nodes, edges)
    for s in plan.subnets.values():
        rest = drawn.rest.get(s.name, ())
        if not rest:
            continue
        hid, first, last = _id("hosts", s.name), plan.hosts[rest[0]], plan.hosts[rest[-1]]
        nvms = sum(len(plan.hosts[h].vms) for h in rest)
        lines = (f"+{len(rest)} more hosts", f"{first.name} … {last.name}", f"{first.ip} … {last.ip}",
                 f"blocks {first.block} … {last.block}", f"{nvms} nested VMs")
        off = tuple(f"{h}: net.ipv4.ip_forward=0" for h in rest if not st.hosts[h].ip_forward)
        nodes.append(Node(hid, "host", lines, _id("subnet", s.name), off))
        link = draw.nics(plan, st, tuple(plan.hosts[h] for h in rest))
        edges.append(Edge(_id("nics", s.name), _id("gw", s.name), hid, "nic", link.lines, link.off))
    for e in plan.endpoints.values():
        nodes.append(Node(_id("ep", e.name), "ep", (e.name, str(e.ip)), _id("subnet", e.subnet)))
        edges.append(Edge(_id("nic", e.name), _id("gw", e.subnet), _id("ep", e.name), "nic"))
    d = Diagram(f"{plan.name} ({plan.mode})", tuple(clusters), tuple(nodes), tuple(edges), legend_exception=draw.exception_words)
    return _mark(d, v)


def _draw_host(v: Verdicts, draw: clouds.CloudDrawing, h, clusters: list[Cluster], nodes: list[Node],
               edges: list[Edge]) -> None:
    """A host drawn in its box: its node, the link from its subnet's gateway (the cloud's NIC), its VMs."""
    plan, st = v.plan, v.state
    hs = st.hosts[h.name]
    hc = _id("hostc", h.name)
    clusters.append(Cluster(hc, "", _id("subnet", h.subnet)))  # the host and its VMs, boxed
    off = () if hs.ip_forward else ("net.ipv4.ip_forward=0",)
    bridge = f"bridge {h.bridge} ({h.bridge_type}{', holds ' + h.uplink if h.bridge_has_uplink else ''})"
    lines = (h.name, f"{h.ip} on {h.uplink}", f"block {h.block}", bridge,
             f"ip_forward {seen(on(hs.ip_forward), on(h.sysctl.get(IP_FORWARD) == '1'))}")
    nodes.append(Node(_id("host", h.name), "host", lines, hc, off))
    link = draw.nic(plan, st, h)
    edges.append(Edge(_id("nic", h.name), _id("gw", h.subnet), _id("host", h.name), "nic", link.lines, link.off))
    moved_vm = _moved_vms(plan)
    shown = h.vms if len(h.vms) <= VMS_DRAWN else h.vms[: VMS_DRAWN - 1]
    for vm in shown:
        g = plan.vms[vm]
        m = moved_vm.get(vm)
        exc = () if m is None else (f"/32 exception: in {m.owner}'s block" if m.owner else "/32 exception: in no block",)
        nodes.append(Node(_id("vm", vm), "vm", (vm, f"{g.ip}/{g.prefix_len}", f"gw {g.gateway}", *exc), hc))
        edges.append(Edge(_id("br", vm), _id("host", h.name), _id("vm", vm), "bridge", (h.bridge,)))
    rest = h.vms[len(shown):]
    if rest:  # one node stands for the rest: a host's VMs all sit alike behind its bridge
        first, last = plan.vms[rest[0]], plan.vms[rest[-1]]
        lines = (f"+{len(rest)} more VMs", f"{rest[0]} … {rest[-1]}", f"{first.ip} … {last.ip}")
        nodes.append(Node(_id("vms", h.name), "vm", lines, hc))
        edges.append(Edge(_id("brs", h.name), _id("host", h.name), _id("vms", h.name), "bridge", (h.bridge,)))


def _moved_vms(plan):
    if _moved_memo[0] is not plan:
        _moved_memo[:] = [plan, {m.vm: m for m in plan.moves}]
    return _moved_memo[1]


_moved_memo: list = [None, None]  # (plan, VM name -> its Move)


def element_of(plan, state, dies_at: str) -> str:
    """The diagram element a ``dies_at`` of the model names ("<cloud>:<what>" for the cloud's hops)."""
    kind, _, name = dies_at.partition(":")
    cloud = plan.cloud.cloud_name
    if not name:  # a node; what is none of the plan's nodes nor the internet died in the cloud's network
        return _node_of(plan, dies_at, other="internet" if dies_at == "internet" else cloud)
    if kind in plan.hosts:  # "<host>:<bridge>": the host's bridge
        return _host_node(plan, kind)
    if kind == cloud:
        if name == "internet":
            return "egress"
        if name in plan.subnets:
            return _id("gw", name)
        nic = state.cloud.nics.get(name)
        if nic is not None:
            if nic.owner in plan.hosts and nic.owner not in _drawn_hosts(plan).shown:
                return _host_node(plan, nic.owner)  # its link is not drawn: the "+N more hosts" node
            return _id("nic", nic.owner)
        if any(r.name == name for r in state.cloud.user_routes):
            return "routes"
    return cloud


def _mark(d: Diagram, v: Verdicts) -> Diagram:
    from ..model.groups import describe, plural

    marks: dict[str, list[tuple[str, str]]] = {}
    count: dict[str, int] = {}
    touched: set[str] = set()
    by_design: list[str] = []
    for g in v.groups:  # one mark per cause, with its pairs in brief (issue 23: not one per pair)
        text = f"{plural(g.count, 'pair')}: {describe(g.blocks)}" if g.count > 1 else describe(g.blocks)
        if g.verdict == "by-design":
            by_design.append(text)
            continue
        p = g.example
        el = element_of(v.plan, v.state, p.dies_at)
        why = (text, cause_of(p))
        # in this order, never a set's: the marks' order is the notes' order (golden files)
        for e in dict.fromkeys((el, *((_node_of(v.plan, el[4:]),) if el.startswith("nic-") else ()))):
            # a NIC drop marks its owner too: that host is where to look
            marks.setdefault(e, []).append(why)
            count[e] = count.get(e, 0) + g.count
        touched.update(_node_of(v.plan, n) for b in g.blocks for n in (*b.src, *b.dst))
    status = {}
    for n in d.nodes:
        if n.kind in ("cloud", "routes", "gw"):
            status[n.id] = FAIL if n.id in marks else ""
            continue
        status[n.id] = FAIL if n.id in marks else TOUCHED if n.id in touched else OK
    return Diagram(d.title, d.clusters, d.nodes, d.edges, {k: tuple(x) for k, x in marks.items()}, status,
                   tuple(by_design), count, v.by_design, d.legend_exception)


def caption(d: Diagram) -> str:
    if not d.by_design:
        return ""
    return (f"{d.designed or len(d.by_design)} pairs fail by design of the mode (not marked): "
            + "; ".join(d.by_design[:NOTE_LINES])
            + (f" and {len(d.by_design) - NOTE_LINES} more" if len(d.by_design) > NOTE_LINES else ""))


def cause_of(p) -> str:
    """A failed pair's reason without the leading "src → dst: " (or "reply dst → src: ")."""
    for head in (f"{p.src} → {p.dst}: ", f"reply {p.dst} → {p.src}: "):
        if p.reason.startswith(head):
            return ("the reply: " if head.startswith("reply") else "") + p.reason[len(head):]
    return p.reason


@dataclass(frozen=True)
class _Drawn:
    shown: frozenset[str]  # hosts drawn with their VMs
    rest: dict[str, tuple[str, ...]]  # subnet -> the hosts its "+N more hosts" node stands for


_drawn_memo: list = [None, None]  # (plan, _Drawn): asked once per element on one plan


def _drawn_hosts(plan) -> _Drawn:
    if _drawn_memo[0] is not plan:
        by_subnet: dict[str, list[str]] = {}
        for h in plan.hosts.values():
            by_subnet.setdefault(h.subnet, []).append(h.name)
        shown: set[str] = set()
        rest: dict[str, tuple[str, ...]] = {}
        for subnet, names in by_subnet.items():
            keep = names if len(names) <= HOSTS_DRAWN else names[: HOSTS_DRAWN - 1]
            shown.update(keep)
            if len(keep) < len(names):
                rest[subnet] = tuple(names[len(keep):])
        _drawn_memo[:] = [plan, _Drawn(frozenset(shown), rest)]
    return _drawn_memo[1]


def _host_node(plan, host: str) -> str:
    """The node drawing ``host``: its own, or its subnet's "+N more hosts"."""
    if host in _drawn_hosts(plan).shown:
        return _id("host", host)
    return _id("hosts", plan.hosts[host].subnet)


def _vm_node(plan, vm: str) -> str:
    """The node drawing ``vm``: its own, its host's "+N more VMs" or its subnet's "+N more hosts"."""
    host = plan.hosts[plan.vms[vm].host]
    if host.name not in _drawn_hosts(plan).shown:
        return _host_node(plan, host.name)
    if len(host.vms) > VMS_DRAWN and host.vms.index(vm) >= VMS_DRAWN - 1:
        return _id("vms", host.name)
    return _id("vm", vm)


def _node_of(plan, name: str, other: str = "internet") -> str:
    """The diagram element of a host, VM or endpoint named ``name``; ``other`` for any other name."""
    if name in plan.hosts:
        return _host_node(plan, name)
    if name in plan.vms:
        return _vm_node(plan, name)
    if name in plan.endpoints:
        return _id("ep", name)
    return other


# ---------------------------------------------------------------- Graphviz

SHAPES = {
    "internet": 'shape=ellipse, style="filled", fillcolor="#eef3f8"',
    "cloud": 'shape=box, style="rounded,filled", fillcolor="#dbe9f6"',
    "routes": 'shape=note, style="filled", fillcolor="#fffbe6"',
    "gw": 'shape=box, style="rounded,filled", fillcolor="#eef3f8"',
    "host": 'shape=box, style="filled", fillcolor="#ffffff"',
    "vm": 'shape=box, style="rounded,filled", fillcolor="#ffffff"',
    "ep": 'shape=box, style="rounded,filled", fillcolor="#ffffff"',
}


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(d: Diagram) -> str:
    """Graphviz text; deterministic for one input (golden-tested)."""
    out = [
        f"graph {_q(d.title)} {{",
        '  graph [fontname="Helvetica,Arial,sans-serif", fontsize=11, rankdir=TB, nodesep=0.3, ranksep=0.45, '
        'newrank=true, bgcolor="transparent"];',
        '  node [fontname="Helvetica,Arial,sans-serif", fontsize=10, color="#5d6d7e", penwidth=1.2];',
        '  edge [fontname="Helvetica,Arial,sans-serif", fontsize=9, color="#85929e", fontcolor="#566573"];',
    ]
    children, members = _nesting(d)

    def node_line(n: Node, pad: str) -> str:
        attrs = [SHAPES[n.kind], f"id={_q(n.id)}", f"label={_q(chr(10).join(n.lines))}"]
        st = d.status.get(n.id, "")
        if st in COLOURS:
            stroke, fill = COLOURS[st]
            attrs.append(f'color="{stroke}"')
            if st == FAIL:
                attrs += [f'fillcolor="{fill}"', "penwidth=2.4"]
        if n.off:
            attrs.append(f'fontcolor="{OFF_COLOUR}"')
        return f"{pad}{_q(n.id)} [{', '.join(attrs)}];"

    cluster_of = {n.id: n.cluster for n in d.nodes}
    note_list = notes(d)

    def emit(parent: str | None, depth: int) -> None:
        pad = "  " * depth
        for n in members.get(parent, []):
            out.append(node_line(n, pad))
        for nid, target, lines in note_list:
            if cluster_of.get(target) == parent:
                out.append(f'{pad}{_q(nid)} [shape=note, style="filled", fillcolor="#fff8e1", color="{COLOURS[TOUCHED][0]}", '
                           f'fontcolor="#6e2c00", fontsize=9, id={_q(nid)}, label={_q(chr(10).join(lines))}];')
        for c in children.get(parent, []):
            out.append(f"{pad}subgraph {_q('cluster_' + c.id)} {{")
            style = 'style="rounded,dashed"' if c.id.startswith("hostc-") else 'style="rounded"'
            colour = OFF_COLOUR if c.off else "#aab7c4"
            out.append(f'{pad}  {style}; color="{colour}"; id={_q(c.id)}; label={_q(c.label)}; labeljust=l;')
            if c.off:
                out.append(f'{pad}  fontcolor="{OFF_COLOUR}";')
            emit(c.id, depth + 1)
            out.append(f"{pad}}}")

    if caption(d):
        out.append(f'  label={_q(caption(d))}; labelloc=b; fontcolor="#566573";')
    emit(None, 1)
    out.append(f'  "legend" [shape=box, style="rounded", color="#aab7c4", fontsize=9, id="legend", '
               f'label={_q(chr(10).join(legend(d)))}];')
    for nid, target, _ in note_list:
        out.append(f'  {_q(target)} -- {_q(nid)} [style=dashed, color="{COLOURS[TOUCHED][0]}", id={_q("to-" + nid)}];')
    for e in d.edges:
        attrs = [f"id={_q(e.id)}"]
        if e.label:
            attrs.append(f"label={_q(chr(10).join(e.label))}")
        if e.kind == "assoc":
            attrs += ["style=dashed", 'color="#b7950b"']
        if e.off:
            attrs += ["style=dashed", f'fontcolor="{OFF_COLOUR}"']
        if e.id in d.marks:
            attrs += [f'color="{COLOURS[FAIL][0]}"', "penwidth=2.4"]
        out.append(f"  {_q(e.a)} -- {_q(e.b)} [{', '.join(attrs)}];")
    out.append("}")
    return "\n".join(out) + "\n"


def svg(d: Diagram) -> str:
    """The SVG Graphviz lays out, each element's ``<title>`` replaced by its hover text and its
    class extended with its verdict (``fail``, ``touched``, ``ok``) for the report's styles."""
    try:
        r = subprocess.run(["dot", "-Tsvg"], input=to_dot(d), capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise OperationError(
            "Graphviz's `dot` is not installed (apt-get install graphviz); --format dot or mermaid need nothing"
        ) from None
    if r.returncode != 0:
        raise OperationError(f"dot -Tsvg failed: {r.stderr.strip() or f'exit {r.returncode}'}")
    return annotate_svg(r.stdout, d)


SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"


def annotate_svg(text: str, d: Diagram) -> str:
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    root = ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", text))
    base = {n.id: "\n".join(n.lines) + (f"\nnot as planned: {'; '.join(n.off)}" if n.off else "") for n in d.nodes}
    for e in d.edges:
        base[e.id] = f"{e.a} — {e.b}" + (f": {' '.join(e.label)}" if e.label else "") + (
            f"\nnot as planned: {'; '.join(e.off)}" if e.off else "")
    for c in d.clusters:
        base[c.id] = c.label + (f"\nnot as planned: {'; '.join(c.off)}" if c.off else "")
    for g in root.iter(f"{{{SVG_NS}}}g"):
        el = g.get("id")
        if el not in base:
            continue
        title = g.find(f"{{{SVG_NS}}}title")
        if title is not None:
            title.text = d.hover(el, base[el])
        classes = [g.get("class", "")]
        st = d.status.get(el) or (FAIL if el in d.marks else "")
        if st:
            classes.append(st)
        g.set("class", " ".join(c for c in classes if c))
        g.set("data-element", el)
    return ET.tostring(root, encoding="unicode")


# ---------------------------------------------------------------- Mermaid


def _mq(text: str) -> str:
    """A Mermaid label: quoted, HTML-escaped, newlines as <br/>."""
    t = _plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "#quot;")
    return '"' + t.replace("\n", "<br/>") + '"'


def to_mermaid(d: Diagram) -> str:
    """A Mermaid flowchart (renders on GitHub and in Markdown); each failing element gets a note."""
    ids: dict[str, str] = {}

    def mid(x: str) -> str:
        if x not in ids:
            base = re.sub(r"[^A-Za-z0-9_]", "_", x)
            cand, i = base, 1
            while cand in ids.values():
                i += 1
                cand = f"{base}_{i}"
            ids[x] = cand
        return ids[x]

    shapes = {"internet": ("((", "))"), "routes": ("[/", "/]"), "gw": ("([", "])")}
    out = ["flowchart TB"]
    children, members = _nesting(d)

    cluster_of = {n.id: n.cluster for n in d.nodes}
    note_list = notes(d)

    def emit(parent: str | None, depth: int) -> None:
        pad = "    " * depth
        for n in members.get(parent, []):
            o, c = shapes.get(n.kind, ("[", "]"))
            out.append(f"{pad}{mid(n.id)}{o}{_mq(chr(10).join(n.lines))}{c}")
        for nid, target, lines in note_list:  # beside its element, inside the same box: no long link across
            if cluster_of.get(target) == parent:
                out.append(f"{pad}{mid(nid)}[{_mq(chr(10).join(lines))}]:::note")
        for c in children.get(parent, []):
            out.append(f"{pad}subgraph {mid(c.id)}[{_mq(c.label or ' ')}]")  # unlabelled shows its id
            emit(c.id, depth + 1)
            out.append(f"{pad}end")

    emit(None, 1)
    out.append(f"    {mid('legend')}[{_mq(chr(10).join(legend(d)))}]:::legend")
    red_links: list[int] = []
    for i, e in enumerate(d.edges):
        arrow = "-.-" if e.kind == "assoc" or e.off else "---"
        label = f"|{_mq(chr(10).join(e.label))}|" if e.label else ""
        b = e.b
        if e.kind in ("sdn", "assoc"):
            # to the subnet's box, not the gateway inside it: dagre lays sibling subgraphs over each
            # other when links from outside reach into them (issue 23)
            b = cluster_of.get(e.b) or e.b
        out.append(f"    {mid(e.a)} {arrow}{label} {mid(b)}")
        if e.id in d.marks:
            red_links.append(i)
    for nid, target, _ in note_list:
        out.append(f"    {mid(target)} -.- {mid(nid)}")
    if caption(d):
        out.append(f"    by_design[{_mq(caption(d))}]:::note")
    out += [
        f"    classDef fail fill:{COLOURS[FAIL][1]},stroke:{COLOURS[FAIL][0]},stroke-width:2px",
        f"    classDef touched stroke:{COLOURS[TOUCHED][0]},stroke-width:1.5px",
        f"    classDef ok stroke:{COLOURS[OK][0]}",
        "    classDef note fill:#fff8e1,stroke:#d68910,color:#6e2c00,text-align:left",
        "    classDef legend fill:#ffffff,stroke:#aab7c4,color:#566573,text-align:left",
    ]
    for st in (FAIL, TOUCHED, OK):
        members_ = [mid(n) for n, s in d.status.items() if s == st]
        if members_:
            out.append(f"    class {','.join(members_)} {st}")
    if red_links:
        out.append(f"    linkStyle {','.join(map(str, red_links))} stroke:{COLOURS[FAIL][0]},stroke-width:3px")
    return "\n".join(out) + "\n"
