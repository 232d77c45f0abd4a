"""`nestnet diagram` and `nestnet report` draw AWS fabrics in EC2's words (issue 25): the VPC, each
subnet's route table and internet, each ENI with its source/destination check and its IPv4 prefix
(prefix mode) or the routes to it (routed mode); a fault shows where it breaks. Before the cloud's
part was its package's drawing (clouds/aws/viz.py) they refused AWS specs, and before that died
with exit 70 ("'Plan' object has no attribute 'azure'")."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aws_helpers import example_file


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nestnet", *args], capture_output=True, text=True)


@pytest.mark.parametrize("mode", ["prefix", "routed"])
def test_the_diagram_draws_the_vpc_in_ec2s_words(tmp_path: Path, mode: str) -> None:
    spec = example_file(tmp_path, mode)
    out = tmp_path / "d.dot"
    r = _run("diagram", str(spec), "--format", "dot", "--out", str(out))
    assert r.returncode == 0, r.stderr
    dot = out.read_text()
    assert "Azure" not in dot and "VNet" not in dot
    assert 'label="VPC vme-vpc · 10.0.0.0/16' in dot
    assert "internet: NAT gateway" in dot
    if mode == "prefix":
        for block in ("10.0.1.16/28", "10.0.1.48/28"):
            assert f"IPv4 prefix {block}" in dot
        assert "source/dest check on" in dot
    else:
        assert "IPv4 prefix" not in dot and dot.count("source/dest check off") == 2
        for block, eni in (("100.64.0.16/28", "vme-kvm-vm1-eni"), ("100.64.0.48/28", "vme-kvm-vm2-eni")):
            assert f"{block} → ENI {eni}" in dot
    if shutil.which("dot"):  # Graphviz lays it out: the text is a graph, not only strings
        svg = subprocess.run(["dot", "-Tsvg", str(out)], capture_output=True, text=True)
        assert svg.returncode == 0 and "<svg" in svg.stdout, svg.stderr


def test_a_missing_eni_prefix_is_drawn_where_it_breaks_and_reported_missing(tmp_path: Path) -> None:
    spec = example_file(tmp_path, "prefix")
    healthy = _run("diagram", str(spec), "--format", "dot")
    assert healthy.returncode == 0 and "failing pairs die here" not in healthy.stdout
    broken = _run("diagram", str(spec), "--format", "dot", "--fault", "no-eni-prefix:vme-kvm-vm1")
    assert broken.returncode == 0, broken.stderr
    assert "failing pairs die here" in broken.stdout and "no ENI owns it" in broken.stdout
    html = tmp_path / "r.html"
    r = _run("report", str(spec), "--fault", "no-eni-prefix:vme-kvm-vm1", "--out", str(html))
    assert r.returncode == 0, r.stderr
    text = re.sub(r"<[^>]+>", " ", html.read_text())
    table = text[text.index("ENI IPv4 prefixes"):text.index("Guest addresses")]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"(vme-kvm-vm\d)\s+\S+-eni\s+(\S+)[^v]*", table)}
    assert "MISSING" in rows["vme-kvm-vm1"] and "MISSING" not in rows["vme-kvm-vm2"], table
