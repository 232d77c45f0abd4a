"""Cost of `nestnet diagram` and `nestnet report` as the fabric grows: check (analyse), building
the graph, the dot text, Graphviz's layout (dot -Tsvg), the HTML. Each step's median of 3 runs,
and Graphviz's share of the whole. Run: .venv/bin/python bench/bench_viz.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import yaml

from nestnet.plan import load_plan
from nestnet.viz import analyse
from nestnet.viz import diagram as dg
from nestnet.viz.report import render


def spec(hosts: int, vms: int) -> dict:
    return {
        "version": 1, "name": "bench",
        "azure": {"resource_group": "rg", "vnet": "v", "address_space": ["10.0.0.0/8"], "route_table": "rt"},
        "subnets": [{"name": "hosts", "prefix": "10.0.0.0/16"}, {"name": "mgmt", "prefix": "10.2.0.0/24"}],
        "nested": {"pool": "10.1.0.0/16", "block_prefix_len": 28},
        "hosts": [{"name": f"h{i}", "ip": f"10.0.{i // 250}.{i % 250 + 4}"} for i in range(hosts)],
        "vms": [{"name": f"v{i}-{j}", "host": f"h{i}"} for i in range(hosts) for j in range(vms)],
        "endpoints": [{"name": "mgmt-vm", "ip": "10.2.0.5", "subnet": "mgmt"}],
    }


def median(fn, reps: int = 3):
    times, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    print(f"{'fabric':<22}{'check':>9}{'graph':>9}{'dot text':>10}{'dot -Tsvg':>11}{'html':>9}{'total':>9}"
          f"{'graphviz':>10}{'html size':>11}")
    with tempfile.TemporaryDirectory() as d:
        for hosts, vms in ((2, 1), (20, 4), (100, 4), (200, 4)):
            p = Path(d) / f"s{hosts}.yaml"
            p.write_text(yaml.safe_dump(spec(hosts, vms), sort_keys=False))
            plan = load_plan(p)
            t_check, v = median(lambda: analyse(plan))
            t_graph, g = median(lambda: dg.build(v))
            t_dot, _ = median(lambda: dg.to_dot(g))
            t_svg, svg = median(lambda: dg.svg(g))
            t_html, html = median(lambda: render(v, svg))
            total = t_check + t_graph + t_svg + t_html  # svg includes the dot text
            label = f"{hosts} hosts x {vms} VMs"
            print(f"{label:<22}{t_check * 1e3:>7.0f}ms{t_graph * 1e3:>7.0f}ms{t_dot * 1e3:>8.1f}ms"
                  f"{t_svg * 1e3:>9.0f}ms{t_html * 1e3:>7.0f}ms{total * 1e3:>7.0f}ms"
                  f"{(t_svg - t_dot) / total:>9.0%}{len(html) / 1024:>9.0f}KB")


if __name__ == "__main__":
    main()
