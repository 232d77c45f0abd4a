"""The diagram: golden dot and Mermaid text for the seed (healthy, faulted, each mode); the SVG's
structure (Graphviz versions differ in coordinates); every fault's failures land on an element."""

from __future__ import annotations

import os
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from nestnet.faults import FAULT_KINDS, parse_faults
from nestnet.lab.demo import seed_plan
from nestnet.viz import analyse
from nestnet.viz import diagram as dg

from .conftest import needs_dot

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "case.txt").exists())
SVG = "{http://www.w3.org/2000/svg}"


def case_diagram(case: str) -> dg.Diagram:
    args = dict(line.split(": ", 1) for line in (GOLDEN / case / "case.txt").read_text().splitlines() if line)
    plan = seed_plan(args.get("mode", "routed"))
    faults = parse_faults(args["fault"].split(), plan) if "fault" in args else ()
    return dg.build(analyse(plan, faults))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("fmt", ["dot", "mmd"])
def test_golden(case: str, fmt: str) -> None:
    d = case_diagram(case)
    got = dg.to_dot(d) if fmt == "dot" else dg.to_mermaid(d)
    expected = GOLDEN / case / f"expected.{fmt}"
    if os.environ.get("NESTNET_UPDATE_GOLDEN"):
        expected.write_text(got)
    assert got == expected.read_text()


def test_nic_forwarding_off_marks_the_host_and_its_nic(seed) -> None:
    v = analyse(seed, parse_faults(["nic-forwarding-off:vme-kvm-vm2"], seed))
    d = dg.build(v)
    assert d.status["host-vme-kvm-vm2"] == dg.FAIL
    assert d.status["host-vme-kvm-vm1"] == dg.TOUCHED  # an end of a failing pair, not where it dies
    assert d.status["internet"] == dg.OK
    dying = [p for p, _ in d.marks["nic-vme-kvm-vm2"]]  # one mark per cause, with its pairs in brief
    assert dying == ["6 pairs: vme-kvm-vm1, web1, mgmt-vm → web2; web2 → vme-kvm-vm1, web1, mgmt-vm"]
    assert d.count["nic-vme-kvm-vm2"] == len(v.failed) == 6
    assert d.dying("nic-vme-kvm-vm2", 3)[0].startswith("✗ 6 failing pairs die here: 6 pairs: ")
    assert all("IP forwarding is off" in c for _, c in d.marks["nic-vme-kvm-vm2"])
    nic = next(e for e in d.edges if e.id == "nic-vme-kvm-vm2")
    assert "IP forwarding OFF (planned on)" in nic.label and nic.off


def test_healthy_seed_has_no_marks(seed) -> None:
    d = dg.build(analyse(seed))
    assert d.marks == {}
    assert {s for s in d.status.values() if s} == {dg.OK}


@pytest.mark.parametrize("kind", sorted(FAULT_KINDS))
def test_every_failure_lands_on_a_drawn_element(kind: str, seed) -> None:
    target = "mgmt-subnet" if FAULT_KINDS[kind][0] == "subnet" else "vme-kvm-vm2"
    v = analyse(seed, parse_faults([f"{kind}:{target}"], seed))
    d = dg.build(v)
    ids = {n.id for n in d.nodes} | {e.id for e in d.edges}
    assert set(d.marks) <= ids
    dying: dict[str, set[str]] = {}  # a NIC's pairs also mark its owner: both elements
    for el_, marks in d.marks.items():
        for p, _ in marks:
            dying.setdefault(p, set()).add(el_)
    assert sum(g.count for g in v.groups if g.verdict == "fail") == v.failing == len(v.failed)
    for g in v.groups:  # each cause is on the element named after the hop where its pairs die
        el = dg.element_of(seed, v.state, g.example.dies_at)
        assert any(dg.cause_of(g.example) == c for _, c in d.marks[el])
        assert any(el in els for els in dying.values())
        if g.example.dies_at != "azure":
            assert el != "azure", g.example.dies_at


@needs_dot
def test_svg_structure_and_titles(seed) -> None:
    v = analyse(seed, parse_faults(["nic-forwarding-off:vme-kvm-vm2"], seed))
    d = dg.build(v)
    root = ET.fromstring(dg.svg(d))
    groups = {g.get("id"): g for g in root.iter(f"{SVG}g") if g.get("data-element")}
    assert {n.id for n in d.nodes} | {e.id for e in d.edges} <= set(groups)
    host = groups["host-vme-kvm-vm2"]
    assert "fail" in host.get("class").split()
    title = host.find(f"{SVG}title").text
    assert "6 failing pairs die here" in title and "vme-kvm-vm2-vm-nic" in title
    assert "fail" in groups["nic-vme-kvm-vm2"].get("class").split()
    assert "ok" in groups["internet"].get("class").split()
    # every label is drawn as text
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    for name in ("vme-kvm-vm1", "web2", "mgmt-vm", "10.0.1.48/28 → VirtualAppliance 10.0.1.11", "IP forwarding OFF"):
        assert name in texts


def test_many_vms_per_host_are_drawn_as_five_and_the_rest(tmp_path: Path) -> None:
    import yaml

    from nestnet.lab.demo import seed_spec
    from nestnet.plan import load_plan

    spec = seed_spec()
    spec["vms"] += [{"name": f"x{i}", "host": "vme-kvm-vm2"} for i in range(8)]  # web2 + 8 on vm2
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    plan = load_plan(tmp_path / "s.yaml")
    v = analyse(plan, parse_faults(["ip-forward-off:vme-kvm-vm1"], plan))
    d = dg.build(v)
    vms = [n for n in d.nodes if n.kind == "vm"]
    assert [n.id for n in vms] == ["vm-web1", "vm-web2", "vm-x0", "vm-x1", "vm-x2", "vm-x3", "vms-vme-kvm-vm2"]
    assert vms[-1].lines[0] == "+4 more VMs" and vms[-1].lines[1] == "x4 … x7"
    ids = {n.id for n in d.nodes} | {e.id for e in d.edges}
    assert set(d.status) <= ids and set(d.marks) <= ids
    assert d.status["vms-vme-kvm-vm2"] == dg.TOUCHED  # x4..x7 cannot reach web1 through vm1


def _big_plan(tmp_path, hosts: int):
    import yaml

    from nestnet.plan import load_plan

    from core.specs import fabric

    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(fabric(hosts, 2), sort_keys=False))
    return load_plan(path)


def test_hosts_beyond_the_drawn_ones_are_one_node(tmp_path) -> None:
    """Issue 24: 1,000 host boxes took Graphviz minutes. Per subnet, the first HOSTS_DRAWN - 1
    hosts are drawn and one node stands for the rest; a failure there marks that node."""
    plan = _big_plan(tmp_path, dg.HOSTS_DRAWN + 6)
    last = f"h{dg.HOSTS_DRAWN + 5}"
    v = analyse(plan, parse_faults([f"nic-forwarding-off:{last}"], plan))
    d = dg.build(v)
    hosts = [n for n in d.nodes if n.kind == "host"]
    assert [n.id for n in hosts] == [f"host-h{i}" for i in range(dg.HOSTS_DRAWN - 1)] + ["hosts-hosts"]
    assert hosts[-1].lines[:2] == ("+7 more hosts", f"h{dg.HOSTS_DRAWN - 1} … {last}")
    assert not any(n.id.startswith("vm-") and n.lines[0].startswith(last) for n in d.nodes)
    assert set(d.marks) == {"hosts-hosts"} and d.status["hosts-hosts"] == dg.FAIL
    assert f"{last}-nic" in "".join(c for _, c in d.marks["hosts-hosts"])
    assert next(e for e in d.edges if e.id == "nics-hosts").off == (f"IP forwarding off on NIC {last}-nic",)
    ids = {n.id for n in d.nodes} | {e.id for e in d.edges}
    assert {e.a for e in d.edges} | {e.b for e in d.edges} <= ids | {"legend"}
    v = analyse(plan, parse_faults(["nic-forwarding-off:h1"], plan))  # a drawn host: its own marks
    assert set(dg.build(v).marks) == {"nic-h1", "host-h1"}


def test_up_to_hosts_drawn_every_host_is_drawn(tmp_path) -> None:
    d = dg.build(analyse(_big_plan(tmp_path, dg.HOSTS_DRAWN), ()))
    assert [n.id for n in d.nodes if n.kind == "host"] == [f"host-h{i}" for i in range(dg.HOSTS_DRAWN)]
