"""The pictures explain themselves without hover (issue 23): a legend, each cause with its count
beside where it dies, the observed state as observed (and the plan's value where they differ),
/32 exceptions marked, next-hop types given; Mermaid without backticks, rendered offline by
Mermaid's own renderer with no two boxes overlapping."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from nestnet.faults import parse_faults
from nestnet.plan import load_plan
from nestnet.specedit import vm_add
from nestnet.viz import analyse, diagram, report

ROOT = Path(__file__).parents[2]
SEED = ROOT / "examples" / "seed.yaml"
MMDC = ROOT / ".venv" / "node" / "node_modules" / ".bin" / "mmdc"  # Makefile: make deps
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _faulted(fault: str = "nic-forwarding-off:vme-kvm-vm2"):
    plan = load_plan(str(SEED), write=False)
    return analyse(plan, parse_faults([fault], plan))


def _moved(tmp_path: Path):
    for f in ("seed.yaml", "seed.lock"):
        shutil.copy(SEED.parent / f, tmp_path / f)
    vm_add(str(tmp_path / "seed.yaml"), "db1", "vme-kvm-vm2", "10.0.1.30")
    return analyse(load_plan(str(tmp_path / "seed.yaml"), write=False))


def test_observed_state_is_drawn_as_observed_with_the_plan_beside_it() -> None:
    v = _faulted()
    html = report.render(v, "<svg/>")
    rows = re.findall(r"<tr><td>(vme-kvm-vm\d)</td>(.*?)</tr>", html)
    fwd = {h: re.findall(r"<td>([^<]*)</td>", rest)[2] for h, rest in rows}  # subnet, NIC, IP forwarding
    assert fwd == {"vme-kvm-vm1": "on", "vme-kvm-vm2": "OFF (planned on)"}, fwd  # was "on": the plan's
    d = diagram.build(v)
    nic = next(e for e in d.edges if e.id == "nic-vme-kvm-vm2")
    assert "IP forwarding OFF (planned on)" in nic.label
    off = analyse(load_plan(str(SEED), write=False), parse_faults(["ip-forward-off:vme-kvm-vm1",
                                                                   "no-route-table:mgmt-subnet"], v.plan))
    d = diagram.build(off)
    host = next(n for n in d.nodes if n.id == "host-vme-kvm-vm1")
    assert "ip_forward OFF (planned on)" in host.lines
    assert any("route table NOT ASSOCIATED (planned associated)" in c.label for c in d.clusters)
    assert "ip_forward (kernel)" in report.render(off, "<svg/>") and "OFF (planned on)" in report.render(off, "<svg/>")


def test_next_hop_types_and_32_exceptions_are_marked(tmp_path: Path) -> None:
    v = _moved(tmp_path)
    d = diagram.build(v)
    routes = next(n for n in d.nodes if n.id == "routes")
    assert "10.0.1.16/28 → VirtualAppliance 10.0.1.10" in routes.lines
    assert "10.0.1.30/32 → VirtualAppliance 10.0.1.11 · /32 exception: db1" in routes.lines
    vm = next(n for n in d.nodes if n.id == "vm-db1")
    assert "/32 exception: in vme-kvm-vm1's block" in vm.lines
    assert not any("exception" in ln for n in d.nodes if n.id == "vm-web1" for ln in n.lines)
    assert any("/32 exception" in ln for ln in diagram.legend(d))
    html = report.render(v, "<svg/>")
    assert "/32 exception: db1" in html and "<th>next hop type</th>" in html


def test_legend_and_causes_with_counts_are_in_the_picture_itself() -> None:
    d = diagram.build(_faulted())
    dot = diagram.to_dot(d)
    assert '"legend" [' in dot and "red fill: where failing pairs die" in dot
    [(nid, target, lines)] = diagram.notes(d)
    assert target == "host-vme-kvm-vm2" and lines[0].startswith("✗ 6 failing pairs die here")
    text = " ".join(lines)
    assert "IP forwarding is off" in text and "‘nestnet azure apply’" in text and "`" not in text
    assert f'"{nid}" [shape=note' in dot and f'"{target}" -- "{nid}"' in dot  # a node, not a hover title
    mmd = diagram.to_mermaid(d)
    assert "`" not in mmd and "legend" in mmd and "✗ 6 failing pairs die here" in mmd


def _boxes_overlap(svg: str) -> list[str]:
    """Every pair of node boxes that overlap, and nodes sticking out of their subgraph, as laid
    out by the browser (getBoundingClientRect)."""
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = b.new_page()
            page.set_content(f"<!DOCTYPE html><html><body>{svg}</body></html>")
            found = page.evaluate("""() => {
                const r = e => { const b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
                const nodes = [...document.querySelectorAll('g.node')].map(g => [g.id, r(g)]);
                const clusters = [...document.querySelectorAll('g.cluster')].map(g => [g.id, r(g.querySelector('rect'))]);
                return {nodes, clusters};
            }""")
        finally:
            b.close()

    def meet(a, c) -> bool:
        return a[0] < c[2] - 1 and c[0] < a[2] - 1 and a[1] < c[3] - 1 and c[1] < a[3] - 1

    bad = []
    nodes = found["nodes"]
    for i, (na, ra) in enumerate(nodes):
        for nb, rb in nodes[i + 1:]:
            if meet(ra, rb):
                bad.append(f"{na} overlaps {nb}")
    clusters = found["clusters"]
    for i, (ca, ra) in enumerate(clusters):
        for cb, rb in clusters[i + 1:]:
            inside = all(ra[k] <= rb[k] + 1 for k in (0, 1)) and all(ra[k] >= rb[k] - 1 for k in (2, 3))
            inside |= all(rb[k] <= ra[k] + 1 for k in (0, 1)) and all(rb[k] >= ra[k] - 1 for k in (2, 3))
            if meet(ra, rb) and not inside:
                bad.append(f"subgraph {ca} overlaps {cb}")
    assert nodes and clusters, "nothing rendered"
    return bad


@pytest.mark.parametrize("fault", ["nic-forwarding-off:vme-kvm-vm2", "no-route-table:mgmt-subnet", None])
def test_mermaid_renders_offline_without_overlaps(tmp_path: Path, fault) -> None:
    if shutil.which("npm") is None:
        pytest.skip("npm is absent (scripts/system-deps installs it; the Makefile then mermaid-cli)")
    assert MMDC.exists(), f"{MMDC} missing: run `make deps` (it installs @mermaid-js/mermaid-cli with npm)"
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium missing: scripts/system-deps installs it")
    v = _faulted(fault) if fault else analyse(load_plan(str(SEED), write=False))
    src = tmp_path / "fabric.mmd"
    src.write_text(diagram.to_mermaid(diagram.build(v)))
    cfg = tmp_path / "puppeteer.json"
    cfg.write_text(json.dumps({"executablePath": CHROMIUM, "args": ["--no-sandbox", "--disable-gpu"]}))
    out = tmp_path / "fabric.svg"
    # offline: in a network namespace of its own (no route anywhere), as a printout would be made
    cmd = [str(MMDC), "-p", str(cfg), "-i", str(src), "-o", str(out), "-q"]
    if shutil.which("unshare") and subprocess.run(["unshare", "--net", "true"]).returncode == 0:
        cmd = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "mmdc", *cmd]  # lo: the browser's pipe
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and out.exists(), r.stdout + r.stderr
    svg = out.read_text()
    assert "Syntax error" not in svg and "`" not in svg
    assert _boxes_overlap(svg) == []
