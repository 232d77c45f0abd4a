"""``nestnet report`` opened in a real browser: Debian's Chromium driven by Playwright, headless and
offline (every request that is not the report file itself is blocked and recorded). The page must
render with no console error and no fetch, the matrix must have one cell per ordered pair with
the verdict classes check (and the lab) gave, and the diagram must mark where failures die."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from nestnet.lab.demo import seed_spec

from .conftest import unique_name

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install '.[test]')")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists() or shutil.which("dot") is None,
                                reason="needs Debian's chromium and graphviz (scripts/system-deps)")


@dataclass
class Opened:
    page: object
    console: list[str] = field(default_factory=list)  # errors and warnings from the console, page errors
    fetched: list[str] = field(default_factory=list)  # every request that was not the file itself


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def open_page(browser):
    pages = []

    def open_(path: Path) -> Opened:
        ctx = browser.new_context(offline=True, viewport={"width": 1400, "height": 900})
        page = ctx.new_page()
        pages.append(ctx)
        o = Opened(page)
        url = path.resolve().as_uri()

        def route(r) -> None:
            if r.request.url == url:
                r.continue_()
            else:
                o.fetched.append(r.request.url)
                r.abort()

        ctx.route("**/*", route)
        page.on("console", lambda m: o.console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: o.console.append(f"pageerror: {e}"))
        page.goto(url, wait_until="load")
        return o

    yield open_
    for ctx in pages:
        ctx.close()


def report(tmp_path: Path, *args: str, mode: str = "routed") -> Path:
    spec = tmp_path / "seed.yaml"
    spec.write_text(yaml.safe_dump(seed_spec(mode, unique_name()), sort_keys=False))
    out = tmp_path / "r.html"
    r = subprocess.run([sys.executable, "-m", "nestnet", "report", str(spec), *args, "--out", str(out)],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    return out


def cells(page, kind: str) -> dict[tuple[str, str], set[str]]:
    got = page.eval_on_selector_all(
        f'figure.matrix[data-kind="{kind}"] td[data-src]',
        "els => els.map(e => [e.dataset.src, e.dataset.dst, e.className])",
    )
    out = {(s, d): set(c.split()) for s, d, c in got}
    assert len(out) == len(got)  # one cell per pair
    return out


def test_harness_sees_a_fetch_and_a_console_error(open_page, tmp_path: Path) -> None:
    """The offline guard and the console watch work: a page that fetches and fails is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><img src="https://example.invalid/x.png"><script>console.error("boom")</script>')
    o = open_page(bad)
    assert o.fetched == ["https://example.invalid/x.png"]
    assert any("boom" in c for c in o.console)


@pytest.mark.root
def test_seed_report_with_the_lab(open_page, tmp_path: Path) -> None:
    o = open_page(report(tmp_path, "--lab"))
    assert o.console == [] and o.fetched == []
    page = o.page
    assert page.title().startswith("nestnet report")
    for kind in ("check", "lab"):
        c = cells(page, kind)
        assert len(c) == 25 and all(cls == {"cell", "ok"} for cls in c.values()), c
    assert page.locator("td.disagree").count() == 0
    assert page.locator("svg g.node").count() >= 9  # internet, azure, routes, 2 gateways, 2 hosts, 2 VMs, mgmt
    assert page.locator("svg g.fail").count() == 0
    assert page.locator("svg").first.bounding_box()["width"] > 400  # drawn, not collapsed
    page.screenshot(path=str(tmp_path / "seed.png"), full_page=True)


def test_fault_report_marks_the_host_and_the_failing_pairs(open_page, tmp_path: Path) -> None:
    o = open_page(report(tmp_path, "--fault", "nic-forwarding-off:vme-kvm-vm2"))
    assert o.console == [] and o.fetched == []
    page = o.page
    c = cells(page, "check")
    assert len(c) == 25
    failing = {k for k, cls in c.items() if "fail" in cls}
    assert failing == {("vme-kvm-vm1", "web2"), ("web1", "web2"), ("web2", "vme-kvm-vm1"), ("web2", "web1"),
                       ("web2", "mgmt-vm"), ("mgmt-vm", "web2")}
    assert all(cls == {"cell", "ok"} for k, cls in c.items() if k not in failing)
    host = page.locator('svg g[data-element="host-vme-kvm-vm2"]')
    assert "fail" in host.get_attribute("class").split()
    assert "6 failing pairs die here" in host.locator("title").text_content()
    assert "fail" in page.locator('svg g[data-element="nic-vme-kvm-vm2"]').get_attribute("class").split()
    assert "fail" not in page.locator('svg g[data-element="host-vme-kvm-vm1"]').get_attribute("class").split()
    rows = page.locator("table.failures tbody tr")
    assert rows.count() == 1  # one cause, one row with its 6 pairs (issue 23 item 9)
    text = page.locator("table.failures").inner_text()
    assert "6 pairs: vme-kvm-vm1, web1, mgmt-vm → web2; web2 → vme-kvm-vm1, web1, mgmt-vm" in text
    assert "azure:vme-kvm-vm2-vm-nic" in text and "--ip-forwarding true" in text and "IP forwarding is off" in text
    assert page.locator('td[data-src="web1"][data-dst="web2"]').get_attribute("title").startswith("web1 → web2: Azure")


@pytest.mark.root
def test_fault_report_with_the_lab_agrees(open_page, tmp_path: Path) -> None:
    o = open_page(report(tmp_path, "--lab", "--fault", "nic-forwarding-off:vme-kvm-vm2"))
    assert o.console == [] and o.fetched == []
    check, lab = cells(o.page, "check"), cells(o.page, "lab")
    assert len(lab) == 25
    assert {k for k, c in lab.items() if "fail" in c} == {k for k, c in check.items() if "fail" in c}
    assert len([k for k, c in lab.items() if "fail" in c]) == 6
    assert o.page.locator("td.disagree").count() == 0
    rows = o.page.locator("table.failures tbody tr")  # one row per cause (issue 23): the 6 pairs share one
    assert rows.count() == 1 and "6" in rows.first.inner_text(), rows.first.inner_text()


@pytest.mark.root
def test_tcp_probe_report_with_the_lab_agrees(open_page, tmp_path: Path) -> None:
    """--probe tcp/22: the lab makes real TCP connections (a listener on port 22 in every node);
    the fault breaks the same pairs for TCP as for pings, and the page says what was sent."""
    o = open_page(report(tmp_path, "--lab", "--probe", "tcp/22", "--fault", "nic-forwarding-off:vme-kvm-vm2"))
    assert o.console == [] and o.fetched == []
    check, lab = cells(o.page, "check"), cells(o.page, "lab")
    assert len(lab) == 25 and len([k for k, c in lab.items() if "fail" in c]) == 6
    assert {k for k, c in lab.items() if "fail" in c} == {k for k, c in check.items() if "fail" in c}
    assert o.page.locator("td.disagree").count() == 0
    assert "probe: tcp/22" in o.page.locator("header").inner_text()
    assert "nestnet lab matrix (real TCP connections to port 22 in namespaces)" in o.page.locator("#matrix").inner_text()
    assert "a ping" not in o.page.locator("#matrix").inner_text()


def test_bad_probe_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    spec = tmp_path / "seed.yaml"
    spec.write_text(yaml.safe_dump(seed_spec("routed", unique_name()), sort_keys=False))
    out = tmp_path / "r.html"
    r = subprocess.run([sys.executable, "-m", "nestnet", "report", str(spec), "--lab", "--probe", "sctp/9",
                        "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.splitlines() == [
        "error: --probe sctp/9: unknown protocol 'sctp' (expected icmp, tcp/PORT or udp/PORT)"], r.stderr
    assert not out.exists()


def test_nat_report_shows_by_design_cells(open_page, tmp_path: Path) -> None:
    o = open_page(report(tmp_path, mode="nat"))
    assert o.console == [] and o.fetched == []
    c = cells(o.page, "check")
    design = {k for k, cls in c.items() if "by-design" in cls}
    assert len(design) == 6 and all(d in ("web1", "web2") for _, d in design)
    assert o.page.locator("svg g.fail").count() == 0  # by design is not a fault


def test_disagreements_are_marked(open_page, tmp_path: Path) -> None:
    """A lab verdict that differs from check's rings the cell in both matrices and lists the pair."""
    from nestnet.lab.demo import seed_plan
    from nestnet.viz import analyse
    from nestnet.viz import diagram as dg
    from nestnet.viz.report import render

    v = analyse(seed_plan())
    lab = {(p.src, p.dst): p.ok for p in v.pairs}
    lab[("web1", "mgmt-vm")] = False  # as if the lab's ping got no reply
    page_file = tmp_path / "d.html"
    page_file.write_text(render(v, dg.svg(dg.build(v)), lab))
    o = open_page(page_file)
    assert o.console == [] and o.fetched == []
    for kind in ("check", "lab"):
        c = cells(o.page, kind)
        assert {k for k, cls in c.items() if "disagree" in cls} == {("web1", "mgmt-vm")}
    assert "fail" in cells(o.page, "lab")[("web1", "mgmt-vm")]
    assert "1 disagreement" in o.page.locator("header").inner_text()
    row = o.page.locator("table.failures tbody tr")
    assert row.count() == 1 and "web1 → mgmt-vm" in row.inner_text() and "lab" in row.inner_text()


def test_a_disagreement_names_the_probe_the_lab_sent() -> None:
    from nestnet.lab.demo import seed_plan
    from nestnet.model import Probe
    from nestnet.viz import analyse
    from nestnet.viz.report import render

    v = analyse(seed_plan(), probe=Probe("udp", 5353))
    lab = {(p.src, p.dst): p.ok for p in v.pairs}
    lab[("web1", "mgmt-vm")] = False  # as if no echo came back
    page = render(v, "", lab)
    assert "the lab's UDP datagram to port 5353 got no echo where check says ok" in page
    assert "no UDP echo from port 5353 in the lab" in page and "probe: udp/5353" in page
    assert "ping" not in render(v, "").split('<section id="plan">')[0].split('<div class="diagram">')[1]
