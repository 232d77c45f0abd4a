"""``nestnet report``: one self-contained HTML page - the diagram, the plan, the reachability
matrix from ``check`` (with ``--lab``, the lab's beside it, disagreements marked) and every
failure with its hop, cause and fix.

Self-contained means no fetch of any kind: the SVG is inline, the CSS is inline, there is no
script, no font, no image URL. Pure: it takes the SVG text (``diagram.svg`` runs Graphviz).

Matrix cells carry their verdict as classes (``ok``, ``fail``, ``by-design``, and ``disagree``
where the lab and check differ) and ``data-src``/``data-dst``, which the browser test reads.
"""

from __future__ import annotations

from html import escape
from typing import Iterable, Mapping

from .. import clouds
from ..model import INTERNET
from ..model import from_plan
from ..sysctl import IP_FORWARD
from . import Verdicts, on, seen
from .diagram import cause_of


def _s(items) -> str:
    return "" if len(items) == 1 else "s"


def _e(x: object) -> str:
    return escape(str(x), quote=True)


def _table(head: Iterable[str], rows: Iterable[Iterable[str]], cls: str = "") -> str:
    """Rows hold HTML already escaped by the caller."""
    h = "".join(f"<th>{_e(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>'


def _code(x: object) -> str:
    return f"<code>{_e(x)}</code>"


def _fix_html(fix: str) -> str:
    """The model writes commands in backticks: show them as code."""
    parts = fix.split("`")
    return "".join(f"<code>{_e(p)}</code>" if i % 2 else _e(p) for i, p in enumerate(parts))


MAX_MATRIX_NODES = 80  # beyond this a matrix is unreadable (and megabytes): the failures list stays
MAX_FAILURE_ROWS = 500
MAX_HOST_ROUTE_TABLES = 12  # N hosts have N*N routes in routed mode


def matrix_html(title: str, nodes: list[str], sources: list[str], verdict: Mapping[tuple[str, str], bool],
                reason: Mapping[tuple[str, str], str], by_design: Mapping[tuple[str, str], str],
                other: Mapping[tuple[str, str], bool] | None, kind: str) -> str:
    """One matrix: a row per source, a column per destination, one cell per ordered pair."""
    head = "".join(f'<th class="col" title="{_e(n)}"><span>{_e(n)}</span></th>' for n in nodes)
    rows = []
    for s in sources:
        cells = []
        for d in nodes:
            if s == d:
                cells.append('<td class="self" aria-label="same node"></td>')
                continue
            ok = verdict.get((s, d))
            if ok is None:
                cells.append('<td class="none"></td>')
                continue
            cls = ["cell", "ok" if ok else "fail"]
            if not ok and (s, d) in by_design:
                cls.append("by-design")
            tip = f"{s} → {d}: " + ("ok" if ok else reason.get((s, d)) or "no reply")
            if not ok and (s, d) in by_design:
                tip += f" (by design: {by_design[(s, d)]})"
            if other is not None and other.get((s, d)) is not None and other[(s, d)] != ok:
                cls.append("disagree")
                tip += f" — the {'lab' if kind == 'check' else 'model'} says {'ok' if other[(s, d)] else 'fails'}"
            mark = "✓" if ok else ("–" if "by-design" in cls else "✗")
            cells.append(f'<td class="{" ".join(cls)}" data-src="{_e(s)}" data-dst="{_e(d)}" '
                         f'title="{_e(tip)}">{mark}</td>')
        rows.append(f'<tr><th class="row">{_e(s)}</th>{"".join(cells)}</tr>')
    total = len(verdict)
    green = sum(1 for v in verdict.values() if v)
    designed = sum(1 for k, v in verdict.items() if not v and k in by_design)
    more = f", {designed} by design" if designed else ""
    return (f'<figure class="matrix" data-kind="{kind}"><figcaption>{_e(title)} '
            f'<span class="count {"good" if green + designed == total else "bad"}">{green}/{total} ok{more}</span>'
            '</figcaption>'
            f'<table class="matrix-table"><thead><tr><th class="corner">src \\ dst</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></figure>')


def probe_words(probe) -> dict[str, str]:
    """How the page speaks of ``probe`` (nestnet.model.Probe); a ping's words are the page's own."""
    if probe.port is None:
        return {"a": "a ping", "one": "ping", "many": "pings", "reply": "reply", "answer": "echo reply"}
    if probe.protocol == "tcp":
        return {"a": f"a TCP connection to port {probe.port}", "one": f"TCP connection to port {probe.port}",
                "many": f"TCP connections to port {probe.port}", "reply": "answer",
                "answer": f"TCP connection to port {probe.port}"}
    return {"a": f"a UDP datagram to port {probe.port}", "one": f"UDP datagram to port {probe.port}",
            "many": f"UDP echoes on port {probe.port}", "reply": "echo", "answer": f"UDP echo from port {probe.port}"}


def render(v: Verdicts, svg: str, lab: Mapping[tuple[str, str], bool] | None = None) -> str:
    """The page. ``lab``: the lab's verdict per ordered pair (``nestnet lab matrix``), if it ran."""
    from ..advise import not_served

    plan = v.plan
    nodes = [*plan.node_names, INTERNET]
    sources = list(plan.node_names)
    from ..model.groups import describe, plural

    small = len(nodes) <= MAX_MATRIX_NODES
    # every pair only for a matrix (or a lab to compare with); else the groups and the counts
    failed = list(v.failed) if small or lab is not None else []
    verdict = {(p.src, p.dst): p.ok for p in v.pairs} if small or lab is not None else {}
    reason = {(p.src, p.dst): cause_of(p) for p in failed}
    by_design = {k: w for p in failed if (w := not_served(plan, *(k := (p.src, p.dst))))}
    unexpected = v.failing
    n_failed = v.failing + v.by_design
    disagree = sorted(k for k in verdict if lab is not None and lab.get(k) is not None and lab[k] != verdict[k])
    total = v.total

    faults = ", ".join(map(str, v.faults)) or "none"
    summary = [
        f'<span class="pill {"good" if not unexpected else "bad"}">check: {total - n_failed}/'
        f'{total} pairs ok</span>',
    ]
    causes = sum(1 for g in v.groups if g.verdict == "fail")
    if causes:
        summary.append(f'<span class="pill bad">{plural(v.failing, "failing pair")}, {plural(causes, "cause")}</span>')
    if v.by_design:
        summary.append(f'<span class="pill muted">{v.by_design} not served by design ({_e(plan.mode)})</span>')
    if lab is not None:
        lab_ok = sum(1 for x in lab.values() if x)
        summary.append(f'<span class="pill {"good" if lab_ok + v.by_design == len(lab) else "bad"}">'
                       f'lab: {lab_ok}/{len(lab)} pairs ok</span>')
        summary.append(f'<span class="pill {"good" if not disagree else "bad"}">'
                       f'{"lab and check agree" if not disagree else f"{len(disagree)} disagreement{_s(disagree)}"}</span>')
    if v.faults:
        summary.append(f'<span class="pill warn">faults: {_e(faults)}</span>')
    words = probe_words(v.probe)
    if v.probe.port is not None:
        summary.append(f'<span class="pill muted">probe: {_e(str(v.probe))}</span>')

    if not small:
        matrices = [f'<p class="muted">{len(nodes)} nodes: too many for a readable matrix; '
                    f'{n_failed} failing pairs are listed below by cause (`nestnet check --json` has every pair).</p>']
    else:
        matrices = []
    if small:
        matrices.append(matrix_html("nestnet check (the model)", nodes, sources, verdict, reason, by_design, lab, "check"))
    if lab is not None and small:
        no_reply = {k: f"no {words['answer']} in the lab" for k, ok in lab.items() if not ok}
        matrices.append(matrix_html(f"nestnet lab matrix (real {words['many']} in namespaces)", nodes, sources, lab, no_reply,
                                    by_design, verdict, "lab"))

    # failures: one row per cause (issue 23): its pairs in brief, hop, cause, fix
    frows = []
    for g in v.groups[:MAX_FAILURE_ROWS]:
        p = g.example
        pairs = f'<span class="pair">{_e(plural(g.count, "pair"))}: {_e(describe(g.blocks))}</span>'
        lab_says = ""
        if lab is not None:
            seen = [lab[k] for k in g.pairs(v.result._host_of) if k in lab]
            bad = sum(1 for ok in seen if not ok)
            lab_says = f"fails ({bad}/{len(seen)})" if bad else "ok" if seen else ""
        if g.verdict == "by-design":
            frows.append([pairs, '<span class="muted">—</span>', f'<div class="design">by design: {_e(g.design)}</div>',
                          '<span class="muted">—</span>', *([_e(lab_says)] if lab is not None else [])])
            continue
        frows.append([pairs, _code(p.dies_at), _e(g.cause), _fix_html(p.fix) if p.fix else '<span class="muted">—</span>',
                      *([_e(lab_says)] if lab is not None else [])])
    for s, d in disagree:
        if verdict[(s, d)]:  # check says ok, the lab fails: not in the list above
            frows.append([f'<span class="pair">{_e(s)} → {_e(d)}</span>', '<span class="muted">—</span>',
                          f"the lab's {words['one']} got no {words['reply']} where check says ok", '<span class="muted">—</span>',
                          "fails"])
    if len(v.groups) > MAX_FAILURE_ROWS:
        frows.append([f"... and {len(v.groups) - MAX_FAILURE_ROWS} more causes", "", "", "",
                      *([""] if lab is not None else [])])
    head = ["pairs", "dies at (hop)", "cause", "fix", *(["lab"] if lab is not None else [])]
    failures = (_table(head, frows, "failures") if frows else
                '<p class="all-good">Every pair reaches every other and the internet, request and reply.</p>')

    plan_html = _plan_html(plan, v.state)
    exposed = _exposed_html(plan, v.state, summary)
    title = f"nestnet report: {plan.name}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{CSS}</style></head>
<body>
<header><h1>{_e(plan.name)} <span class="mode">{_e(plan.mode)}</span></h1>
<p class="sub">{_e(plan.source or "")} · {_e(clouds.drawing(plan.cloud.cloud_name).network(plan))} {_e(", ".join(map(str, plan.address_space)))}
 · {len(plan.hosts)} host{_s(plan.hosts)}, {len(plan.vms)} nested VM{_s(plan.vms)}, {len(plan.endpoints)} endpoint{_s(plan.endpoints)} · faults: {_e(faults)}</p>
<p class="summary">{" ".join(summary)}</p></header>
<main>
<section id="diagram"><h2>Fabric</h2>
<p class="hint">Red: where failing pairs die (hover for the pairs and the cause). Amber border: an end of a
failing pair. Green border: every pair through it works.</p>
<div class="diagram">{svg}</div></section>
<section id="matrix"><h2>Reachability</h2>
<p class="hint">Every ordered pair: {_e(words['a'])} whose request and reply both get through. Hover a cell for the
reason.{" A ringed cell is a disagreement between the lab and the model." if lab is not None else ""}</p>
<div class="matrices">{"".join(matrices)}</div></section>
<section id="failures"><h2>Failures</h2>{failures}</section>{exposed}
<section id="plan"><h2>Plan</h2>{plan_html}</section>
</main>
<footer>nestnet · generated offline from the plan and the forwarding model{" and the lab" if lab is not None else ""}
</footer>
</body></html>
"""


def _exposed_html(plan, state, summary: list[str]) -> str:
    """The exposed ports (vms[].expose), each as ``check`` judges it from the internet through the
    host's public IP; "" when nothing is exposed. A failure adds a pill to ``summary``."""
    from .. import exposes

    res = exposes.check(state, plan)
    if not res:
        return ""
    bad = sum(1 for e in res if not e.ok)
    summary.append(f'<span class="pill {"bad" if bad else "good"}">exposed: {len(res) - bad}/{len(res)} ports ok</span>')
    rows = [[_e(e.vm), _e(e.host), _e(f"{e.public_ip} ({e.address})" if e.address else e.public_ip),
             _code(f"{e.proto}/{e.public_port} → {e.port}"),
             '<span class="all-good">ok</span>' if e.ok else f"fails at {_code(e.dies_at)}: {_e(e.reason)}"]
            for e in res]
    return ('\n<section id="exposed"><h2>Exposed ports</h2><p class="hint">From the internet to the host\'s public IP, '
            "DNATed to the VM; the reply back from the public IP (a plan's addresses are stand-ins).</p>"
            + _table(["VM", "host", "public IP", "port", "from the internet"], rows, "exposed") + "</section>")


def _plan_html(plan, state=None) -> str:
    """The plan; with ``state`` (the faulted one) each knob as observed, the plan's value beside
    it where they differ, as the diagram draws it. The cloud's columns and tables are its package's."""
    draw = clouds.drawing(plan.cloud.cloud_name)
    st = state if state is not None else from_plan(plan)

    def kernel_fwd(h) -> str:
        return _e(seen(on(st.hosts[h.name].ip_forward), on(h.sysctl.get(IP_FORWARD) == "1")))

    hosts = _table(
        ["host", "address", "subnet", *draw.host_heads, "ip_forward (kernel)", "block", "bridge", "VMs"],
        [[_e(h.name), _code(h.ip), _e(h.subnet), *map(_e, draw.host_cells(plan, st, h)), kernel_fwd(h), _code(h.block),
          _e(f"{h.bridge} ({h.bridge_type}{', holds ' + h.uplink if h.bridge_has_uplink else ''})"),
          _e(", ".join(h.vms) or "—")] for h in plan.hosts.values()],
        "plan-hosts",
    )
    subnets = _table(
        ["subnet", "prefix", "gateway", *draw.subnet_heads],
        [[_e(s.name), _code(s.prefix), _code(s.gateway), *map(_e, draw.subnet_cells(plan, st, s))]
         for s in plan.subnets.values()],
    )
    host_routes = []
    for h in list(plan.hosts.values())[:MAX_HOST_ROUTE_TABLES]:
        rows = [[_code(r.dst), _e(r.dev), _code(r.via) if r.via else "—"] for r in h.routes]
        host_routes.append(f"<div><h4>{_e(h.name)}</h4>"
                           + _table(["destination", "device", "via"], rows, "host-routes") + "</div>")
    if len(plan.hosts) > MAX_HOST_ROUTE_TABLES:
        host_routes.append(f'<p class="muted">... and {len(plan.hosts) - MAX_HOST_ROUTE_TABLES} more hosts with '
                           'the same pattern (<code>nestnet plan SPEC --json</code> lists them all)</p>')
    guests = _table(
        ["VM", "host", "address", "gateway", "style"],
        [[_e(g.name), _e(g.host), _code(f"{g.ip}/{g.prefix_len}"), _code(g.gateway), _e(g.guest_style)]
         for g in plan.vms.values()],
    ) if plan.vms else '<p class="muted">No nested VMs.</p>'
    endpoints = _table(
        ["endpoint", "address", "subnet"],
        [[_e(e.name), _code(e.ip), _e(e.subnet)] for e in plan.endpoints.values()],
    ) if plan.endpoints else ""
    return f"""<div class="grid">
<div class="wide"><h3>Blocks (hosts)</h3>{hosts}</div>
<div><h3>Subnets</h3>{subnets}{f"<h3>Endpoints</h3>{endpoints}" if endpoints else ""}</div>
<div>{draw.tables_html(plan, st)}</div>
<div><h3>Guest addresses</h3>{guests}</div>
<div class="wide"><h3>Host routes <span class="muted">(owned by nestnet, protocol 201)</span></h3>
<div class="host-route-grid">{"".join(host_routes)}</div></div>
</div>"""


CSS = """
:root{--ok:#1e8449;--ok-bg:#e3f4e8;--fail:#c0392b;--fail-bg:#fde2df;--warn:#d68910;--muted:#6b7785;
--line:#dfe4ea;--ink:#1f2a36;--bg:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:var(--ink);
background:var(--bg)}
header{background:#17324d;color:#fff;padding:18px 28px 14px}
header h1{margin:0;font-size:22px;font-weight:600}
header .mode{font-size:13px;font-weight:500;background:#2e5b86;border-radius:10px;padding:2px 9px;
vertical-align:middle;margin-left:6px}
header .sub{margin:4px 0 10px;color:#c5d3e0;font-size:13px}
.summary{margin:0}
.pill{display:inline-block;border-radius:12px;padding:3px 11px;margin:0 6px 4px 0;font-size:13px;
font-weight:600;background:#fff;color:var(--ink)}
.pill.good{background:var(--ok-bg);color:var(--ok)}.pill.bad{background:var(--fail-bg);color:var(--fail)}
.pill.warn{background:#fff3d6;color:#8a5a00}.pill.muted{background:#e8ecf0;color:var(--muted)}
main{padding:8px 28px 28px;max-width:1500px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 18px;margin:16px 0}
h2{margin:0 0 6px;font-size:17px}h3{font-size:14px;margin:12px 0 6px}h4{margin:8px 0 4px;font-size:13px}
.hint{color:var(--muted);margin:0 0 10px;font-size:13px}
.muted{color:var(--muted);font-weight:400}
.diagram{overflow:auto;text-align:center}.diagram svg{max-width:100%;height:auto}
.diagram g.fail > polygon,.diagram g.fail > path{filter:drop-shadow(0 0 3px rgba(192,57,43,.45))}
.matrices{display:flex;flex-wrap:wrap;gap:28px;align-items:flex-start}
figure.matrix{margin:0}
figcaption{font-weight:600;margin-bottom:8px}
.count{font-size:12px;border-radius:10px;padding:1px 8px;margin-left:6px}
.count.good{background:var(--ok-bg);color:var(--ok)}.count.bad{background:var(--fail-bg);color:var(--fail)}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
thead th{background:#f0f3f6;font-weight:600}
.matrix-table td,.matrix-table th.col{width:34px;text-align:center;padding:0}
.matrix-table td{height:30px;font-size:15px;font-weight:700}
.matrix-table th.col{height:110px;vertical-align:bottom;padding:4px 0}
.matrix-table th.col span{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;font-weight:500}
.matrix-table th.row{font-weight:500;white-space:nowrap;padding:0 10px;vertical-align:middle}
.matrix-table th.corner{color:var(--muted);font-weight:400;font-size:12px}
td.ok{background:var(--ok-bg);color:var(--ok)}
td.fail{background:var(--fail-bg);color:var(--fail)}
td.by-design{background:#eceff2;color:var(--muted)}
td.disagree{outline:3px solid var(--warn);outline-offset:-3px}
td.self{background:repeating-linear-gradient(45deg,#f4f6f8,#f4f6f8 4px,#e9edf1 4px,#e9edf1 8px)}
table.failures{width:100%}table.failures td:first-child{white-space:nowrap}
.pair{font-weight:600}.design{color:var(--muted);font-size:12px;margin-top:3px}
code{font:12px/1.4 ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;background:#f0f3f6;
border-radius:4px;padding:1px 4px}
.all-good{color:var(--ok);font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:6px 28px}
.grid > div{overflow-x:auto;min-width:0}.grid .wide{grid-column:1/-1}
.grid table{width:100%}.host-route-grid table{width:auto}
table.plan-hosts td{white-space:nowrap}
.host-route-grid{display:flex;flex-wrap:wrap;gap:6px 28px}
.off{color:#b9770e;font-weight:600}
footer{color:var(--muted);font-size:12px;padding:0 28px 24px}
"""
