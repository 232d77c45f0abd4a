"""The shared fault vocabulary (nestnet.faults), made real in the lab.

Cloud-side faults change the ``CloudState`` the fabric is programmed from, through the model's
what-ifs (the cloud lab fabric's ``with_faults``, the same code as ``check --fault``); host-side faults
change the host namespace behind nestnet's back, the way an operator or a reboot would. Healing
reprograms the fabric from the plan and re-runs the host reconciler.
"""

from __future__ import annotations

import shutil

from .. import firewall, sysctl
from ..faults import Fault
from ..model.whatif import is_cloud_fault  # noqa: F401 - the lab core asks it here
from ..plan import ROUTE_PROTO, Plan
from .nodes import reconcile
from .sysio import ip_batch, ip_json, nft, nft_json, run, write_sysctls

FAULT_TABLE = "nestnet_labfault"  # the lab's own table: a plain drop policy, no nestnet rules


def _links() -> list[str]:
    return [link["ifname"] for link in ip_json("link", "show")]


def _delete_masquerade() -> None:
    cmds = []
    for item in nft_json("-a", "list", "ruleset")["nftables"]:
        rule = item.get("rule")
        if rule and any("masquerade" in e for e in rule.get("expr", [])):
            cmds.append(f"delete rule {rule['family']} {rule['table']} {rule['chain']} handle {rule['handle']}")
    if cmds:
        nft("\n".join(cmds) + "\n")
    # UFW's masquerade (firewall: ufw) is an iptables-nft rule: an xt target nft does not name
    if shutil.which("iptables"):
        for line in run(["iptables", "-w", "-t", "nat", "-S"]).splitlines():
            if line.startswith("-A ") and line.endswith("-j MASQUERADE"):
                run(["iptables", "-w", "-t", "nat", "-D", *line[3:].split()])


def apply_host_fault(plan: Plan, f: Fault) -> None:
    """Inside the host's namespace."""
    h = plan.hosts[f.target]
    if f.kind == "ip-forward-off":
        write_sysctls({sysctl.IP_FORWARD: "0"})
    elif f.kind == "no-host-routes":
        ip_batch([f"route flush proto {ROUTE_PROTO}"])
    elif f.kind == "firewall-deny-routed":
        nft(
            f"table inet {FAULT_TABLE} {{\n chain forward {{\n"
            "  type filter hook forward priority filter; policy drop;\n }\n}\n"
        )
    elif f.kind == "rp-filter-strict":
        # The kernel uses max(all, <dev>): strict everywhere, or a loose device wins.
        names = ["all", "default", *_links()]
        write_sysctls({sysctl.rp_filter(n): "1" for n in names})
    elif f.kind == "no-proxy-arp":
        # both knobs: proxy_arp_pvlan alone answers for addresses routed back out the bridge
        write_sysctls({sysctl.proxy_arp(h.bridge): "0", sysctl.proxy_arp_pvlan(h.bridge): "0"})
    elif f.kind == "no-masquerade":
        _delete_masquerade()
    else:  # pragma: no cover - the lab's core gives this only host kinds (faults.HOST_KINDS)
        raise ValueError(f.kind)


def clear_host_faults(
    plan: Plan, host: str, root: str, ovs_dir: str, kinds: tuple[str, ...], reconcile_here: bool = True
) -> None:
    """Inside the host's namespace: remove the lab's fault table, then reconcile from the plan
    (``reconcile_here=False``: a systemd host, where nestnet inside it does that)."""
    tables = set(run(["nft", "list", "tables"]).splitlines())
    drop = [f"inet {FAULT_TABLE}"]
    if "no-masquerade" in kinds:
        # The reconciler knows its table by a digest comment, which a rule deleted behind its
        # back leaves in place: drop the table so the reconciler loads it afresh.
        drop.append(f"{firewall.FAMILY} {firewall.TABLE}")
    drop = [t for t in drop if f"table {t}" in tables]
    if drop:
        nft("".join(f"delete table {t}\n" for t in drop))
    if reconcile_here:
        reconcile(plan, host, root, ovs_dir)
