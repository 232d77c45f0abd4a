"""The apply lease (issue 20 item 3(b)): one `nestnet azure apply` at a time, as Terraform locks
its state. Real `nestnet azure apply` processes, the real SDK over real HTTPS, the emulated ARM.

- two applies at once run one after the other; the second reads Azure again under the lease and
  its printed diff shows what it changes of the first one's work (kept, or deleted when its own
  spec lacks it); nothing is lost silently, foreign tags and routes are kept;
- a live lease: waited for up to --lock-timeout / NESTNET_ARM_LOCK_TIMEOUT, then exit 3 naming its
  holder and expiry, nothing written; bad values exit 2;
- an expired lease (a killed apply's) is taken over, saying so; a killed apply's live lease is
  cleared by `azure unlock --force`; Ctrl-C releases the lease;
- modes without a route table put the lease on the VNet, keeping its subnets and tags.

To make "at once" certain rather than likely, the emulator holds the first holder's write (the
one PUT that carries the lease it already holds) until the other apply has said it is waiting.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from azure_helpers import arm_get, fabric_spec, seed_spec, write_spec
from nestnet.clouds.azure.emulator import DEFAULT_SUBSCRIPTION
from nestnet.clouds.azure.reconcile import reconcile
from nestnet.env import VARIABLES
from nestnet.plan import load_plan

NESTNET = [sys.executable, "-m", "nestnet"]
LEASE = "nestnet-apply-lease"
RG = f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Network"
TABLE = f"{RG}/routeTables/rt"
FOREIGN_ROUTE = {"name": "team-x-default", "properties": {"addressPrefix": "172.16.0.0/12", "nextHopType": "None"}}


def cli_env(ep, token: str = "cli", **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    return {**base, "NESTNET_ARM_ENDPOINT": ep.url, "NESTNET_ARM_CA_BUNDLE": ep.ca, "NESTNET_ARM_TOKEN": token,
            "AZURE_SUBSCRIPTION_ID": DEFAULT_SUBSCRIPTION, **extra}


def nestnet(ep, *args: str, token: str = "cli", **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([*NESTNET, *args], capture_output=True, text=True, env=cli_env(ep, token, **extra),
                          stdin=subprocess.DEVNULL, timeout=180)


def lease_value(holder: str, expires: datetime, spec: str = "/ops/other.yaml") -> str:
    return f"expires={expires.strftime('%Y-%m-%dT%H:%M:%SZ')} holder={holder} spec={spec}"


def in_an_hour() -> datetime:
    return datetime.now(timezone.utc) + timedelta(hours=1)


def table(ep) -> dict:
    return arm_get(ep, TABLE)


def routes(ep) -> dict[str, str]:
    return {r["name"]: r["properties"]["addressPrefix"] for r in table(ep)["properties"]["routes"]}


def no_etags(items: list[dict]) -> list[dict]:
    return [{k: v for k, v in i.items() if k != "etag"} for i in items]


def shown(out: str) -> list[str]:
    """The changes an apply printed (the lines under 'applying N change(s):')."""
    return [line.strip() for line in out.splitlines() if line.startswith("  ")]


def write_table(ep, plan, tags: dict[str, str], extra_routes=()) -> None:
    """The table as another tool leaves it: a foreign route and tags (the plain SDK, over HTTPS)."""
    sdk = ep.sdk(plan)
    from azure.core.exceptions import ResourceNotFoundError

    try:
        body = sdk.route_tables.get("rg", "rt").json
    except ResourceNotFoundError:
        body = {"location": "westeurope", "properties": {"routes": []}}
    body = {"location": body["location"], "tags": tags,
            "properties": {"routes": [{"name": r["name"], "properties": {
                k: v for k, v in r["properties"].items() if k != "provisioningState"}}
                for r in body["properties"].get("routes") or []] + list(extra_routes)}}
    sdk.route_tables.begin_create_or_update("rg", "rt", body).result()


class Gate:
    """Hold the first PUT of ``path`` that is written under a lease already held (its body carries
    the lease the stored resource has) until ``until()`` is true; every other request passes."""

    def __init__(self, ep, path: str, until, limit: float = 60.0):
        self.ep, self.path, self.until, self.limit = ep, path.lower(), until, limit
        self.held: list[str] = []  # the Authorization of each held request
        self.passed = threading.Event()  # the held request has been answered
        inner = ep.arm.handle

        def handle(m, target, headers, body, base):
            if m == "PUT" and target.lower().startswith(self.path + "?") and not self.held:
                sent = (json.loads(body).get("tags") or {}).get(LEASE)
                stored = inner("GET", f"{path}?api-version=2024-05-01", {"authorization": "Bearer gate"}, b"", base)
                if sent and stored.status == 200 and (stored.body.get("tags") or {}).get(LEASE) == sent:
                    self.held.append(headers.get("authorization", ""))
                    deadline = time.monotonic() + self.limit
                    while not self.until() and time.monotonic() < deadline:
                        time.sleep(0.02)
                    try:
                        return inner(m, target, headers, body, base)
                    finally:
                        self.passed.set()
            return inner(m, target, headers, body, base)

        ep.arm.handle = handle


def wait_for(cond, what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def lease_of(ep, path: str = TABLE) -> str | None:
    return (arm_get(ep, path).get("tags") or {}).get(LEASE)


# -- two applies at once -----------------------------------------------------------------------------

@pytest.fixture
def fabric(emulator, tmp_path):
    """An emulated ARM seeded with NICs for h0..h13, a table holding a foreign route and tag, the
    base fabric (h0..h11) applied; specs: base, +h12, +h13, +h12+h13 (each in its own directory)."""
    specs = {}
    for name, hosts in (("base", range(12)), ("h12", range(13)), ("h13", [*range(12), 13]), ("both", range(14))):
        data = fabric_spec(14)
        data["hosts"] = [h for i, h in enumerate(data["hosts"]) if i in hosts]
        (tmp_path / name).mkdir()
        specs[name] = write_spec(tmp_path / name / "f.yaml", data)
    ep = emulator(load_plan(write_spec(tmp_path / "seed.yaml", fabric_spec(14))))
    base = load_plan(specs["base"])
    write_table(ep, base, {"owner": "team-x"}, [FOREIGN_ROUTE])
    # Every NIC forwards already (nestnet never turns it off): the applies differ by routes only.
    reconcile(ep.client(base), load_plan(specs["both"]))
    reconcile(ep.client(base), base)
    return ep, specs, base


def _reset(ep, base) -> None:
    reconcile(ep.client(base), base)
    assert not {"nestnet-h12", "nestnet-h13"} & set(routes(ep))


def _pair(ep, tmp_path, first_spec, second_spec, ordered: bool, rnd: int):
    """Start two applies; returns [(process, stdout, stderr, spec)] in the order they held the lease."""
    logs = {t: (tmp_path / f"r{rnd}-{t}.out", tmp_path / f"r{rnd}-{t}.err") for t in ("op-a", "op-b")}
    for out, err in logs.values():
        out.write_text("")
        err.write_text("")

    def other_waits():
        # Whoever holds the lease: the other one has said it waits for it.
        holder = gate.held[0].removeprefix("Bearer ") if gate.held else None
        other = "op-b" if holder == "op-a" else "op-a"
        return "waiting up to" in logs[other][1].read_text()

    gate = Gate(ep, TABLE, other_waits)
    procs = {}
    for token, spec in (("op-a", first_spec), ("op-b", second_spec)):
        out, err = logs[token]
        with open(out, "w") as o, open(err, "w") as e:
            procs[token] = (subprocess.Popen([*NESTNET, "azure", "apply", str(spec)], stdout=o, stderr=e,
                                             env=cli_env(ep, token), stdin=subprocess.DEVNULL), spec)
        if ordered and token == "op-a":
            pid = procs[token][0].pid
            wait_for(lambda: f":{pid} " in (lease_of(ep) or ""), "the first apply's lease")
    for p, _ in procs.values():
        p.wait(timeout=180)
    assert gate.held, "no write was made under a held lease"
    runs = {t: (p, logs[t][0].read_text(), logs[t][1].read_text(), spec) for t, (p, spec) in procs.items()}
    first = gate.held[0].removeprefix("Bearer ")
    second = "op-b" if first == "op-a" else "op-a"
    return [runs[first], runs[second]]


def _common(ep, first, second) -> float:
    for p, out, err, _ in (first, second):
        assert p.returncode == 0, out + err
    # The second waited for the first, naming it (holder user@host:pid, spec, expiry), then took it.
    assert re.search(rf"held by \S+@\S+:{first[0].pid} \(spec {re.escape(str(first[3]))}\), expires \d{{4}}-",
                     second[2]), second[2]
    waited = re.search(r"took the apply lease on route table 'rt' after waiting ([\d.]+)s", second[2])
    assert waited, second[2]
    assert "waiting" not in first[2], first[2]
    # Released; foreign route and tag kept.
    t = table(ep)
    assert LEASE not in t["tags"] and t["tags"]["owner"] == "team-x", t["tags"]
    assert "team-x-default" in routes(ep)
    return float(waited[1])


def test_two_applies_at_once_run_one_after_the_other(fabric, tmp_path):
    ep, specs, base = fabric
    waits = []
    # The second operator pulled the first one's change (+h12) and adds h13: the first's route is
    # kept - not shown, not touched - and both are there at the end.
    for rnd in range(2):
        _reset(ep, base)
        first, second = _pair(ep, tmp_path, specs["h12"], specs["both"], ordered=True, rnd=rnd)
        assert first[3] == specs["h12"]
        waits.append(_common(ep, first, second))
        assert [c.split(":")[0] for c in shown(first[1])] == ["add route nestnet-h12"], first[1]
        assert [c.split(":")[0] for c in shown(second[1])] == ["add route nestnet-h13"], second[1]
        assert "done: 1 write(s)" in second[1] and "meanwhile" not in second[1]
        have = routes(ep)
        assert {"nestnet-h12", "nestnet-h13"} <= set(have), have
        assert have["nestnet-h12"] != have["nestnet-h13"]
    # Each adds its own host (the same free block): whoever comes second deletes the first one's
    # route, and says so in the diff it prints before writing.
    for rnd in range(2, 5):
        _reset(ep, base)
        first, second = _pair(ep, tmp_path, specs["h12"], specs["h13"], ordered=False, rnd=rnd)
        waits.append(_common(ep, first, second))
        mine, theirs = ("h13", "h12") if second[3] == specs["h13"] else ("h12", "h13")
        assert [c.split(":")[0] for c in shown(first[1])] == [f"add route nestnet-{theirs}"], first[1]
        assert sorted(c.split(":")[0] for c in shown(second[1])) == [f"add route nestnet-{mine}",
                                                                   f"delete route nestnet-{theirs}"], second[1]
        assert "meanwhile" not in second[1]
        have = routes(ep)
        assert f"nestnet-{mine}" in have and f"nestnet-{theirs}" not in have, have
    print("second apply waited (s):", waits)


def test_the_second_applys_json_names_the_lease_it_waited_for(fabric, tmp_path):
    ep, specs, base = fabric
    _reset(ep, base)
    seen = {}
    gate = Gate(ep, TABLE, lambda: seen.get("waiting", False))
    first = subprocess.Popen([*NESTNET, "azure", "apply", str(specs["h12"]), "--json"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=cli_env(ep, "op-a"))
    wait_for(lambda: f":{first.pid} " in (lease_of(ep) or ""), "the first apply's lease")
    err_path = tmp_path / "second.err"
    with open(err_path, "w") as e:
        second = subprocess.Popen([*NESTNET, "azure", "apply", str(specs["both"]), "--json"],
                                  stdout=subprocess.PIPE, stderr=e, text=True, env=cli_env(ep, "op-b"))
    wait_for(lambda: "waiting up to" in err_path.read_text(), "the second apply to wait")
    seen["waiting"] = True
    out1, err1 = first.communicate(timeout=120)
    out2, _ = second.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, err1 + err_path.read_text()
    assert gate.held
    one, two = json.loads(out1), json.loads(out2)
    assert [c["name"] for c in one["applied"]] == ["nestnet-h12"] and one["lease"]["waited_for"] is None
    assert one["lease"]["released"] and one["lease"]["resource"] == "route table 'rt'"
    assert [(c["action"], c["name"]) for c in two["changes"]] == [("add", "nestnet-h13")]
    assert two["applied"] == two["changes"] and two["writes"] == 1
    assert two["lease"]["waited_for"]["holder"].endswith(f":{first.pid}")
    assert two["lease"]["waited_for"]["spec"] == str(specs["h12"])
    assert two["lease"]["waited_seconds"] > 0 and two["lease"]["released"]
    assert two["lease"]["holder"].endswith(f":{second.pid}") and two["lease"]["took_over"] is None


# -- a live lease, an expired one, unlock ------------------------------------------------------------

def test_a_live_lease_is_waited_for_then_exit_3_naming_holder_and_expiry(fabric):
    ep, specs, base = fabric
    expires = in_an_hour()
    write_table(ep, base, {"owner": "team-x", **table(ep)["tags"], LEASE: lease_value("op@elsewhere:4242", expires)})
    before = table(ep)
    stamp = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    for args, extra, said in ((["--lock-timeout", "1.5"], {}, "waited 2s"),
                              ([], {"NESTNET_ARM_LOCK_TIMEOUT": "1"}, "waited 1s"),
                              (["--lock-timeout", "0"], {}, "waited 0s")):
        r = nestnet(ep, "azure", "apply", str(specs["h12"]), *args, **extra)
        assert r.returncode == 3, r.stdout + r.stderr
        error = [line for line in r.stderr.splitlines() if line.startswith("error:")]
        assert len(error) == 1 and "op@elsewhere:4242" in error[0] and stamp in error[0], r.stderr
        assert "spec /ops/other.yaml" in error[0] and said in error[0], error
        assert f"nestnet azure unlock {specs['h12']} --force" in error[0]
        assert r.stdout == ""  # nothing was applied (the diff is shown only under the lease)
        assert table(ep) == before  # not a write: the same etag
    # Bad values: one line naming them, exit 2, nothing written.
    for args, extra, name in ((["--lock-timeout", "nan"], {}, "--lock-timeout"),
                              (["--lock-timeout", "-1"], {}, "--lock-timeout"),
                              ([], {"NESTNET_ARM_LOCK_TIMEOUT": "abc"}, "NESTNET_ARM_LOCK_TIMEOUT")):
        r = nestnet(ep, "azure", "apply", str(specs["h12"]), *args, **extra)
        assert r.returncode == 2, r.stderr
        [line] = r.stderr.splitlines()
        assert line.startswith(f"error: {name} "), line
    assert table(ep) == before


def test_an_expired_lease_is_taken_over_keeping_foreign_tags_and_routes(fabric):
    ep, specs, base = fabric
    gone = datetime.now(timezone.utc) - timedelta(minutes=5)
    write_table(ep, base, {**table(ep)["tags"], "cost-centre": "42", LEASE: lease_value("op@dead:99", gone)},
                [{"name": "team-y", "properties": {"addressPrefix": "192.168.0.0/16", "nextHopType": "None"}}])
    r = nestnet(ep, "azure", "apply", str(specs["h12"]))
    assert r.returncode == 0, r.stderr
    assert re.search(r"apply lease on route table 'rt' of op@dead:99 \(spec /ops/other.yaml\), expires \S+ has "
                     r"expired .*taken over", r.stderr), r.stderr
    assert [c.split(":")[0] for c in shown(r.stdout)] == ["add route nestnet-h12"], r.stdout
    t = table(ep)
    assert t["tags"] == {"owner": "team-x", "cost-centre": "42", "managed-by": "nestnet", "nestnet-fabric": "big"}
    assert {"team-x-default", "team-y", "nestnet-h12"} <= set(routes(ep))
    r = nestnet(ep, "azure", "diff", str(specs["h12"]))
    assert r.returncode == 0 and "no changes" in r.stdout


def test_unlock_clears_an_expired_lease_and_a_live_one_only_with_force(fabric):
    ep, specs, base = fabric
    spec = str(specs["base"])
    r = nestnet(ep, "azure", "unlock", spec)
    assert r.returncode == 0 and r.stdout.strip() == "no apply lease on route table 'rt'", r.stdout + r.stderr
    live = lease_value("op@elsewhere:4242", in_an_hour())
    write_table(ep, base, {**table(ep)["tags"], LEASE: live})
    before = table(ep)
    r = nestnet(ep, "azure", "unlock", spec)
    assert r.returncode == 1 and "is live: op@elsewhere:4242" in r.stderr and "--force" in r.stderr, r.stderr
    r = nestnet(ep, "azure", "unlock", spec, "--force", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"resource": "route table 'rt'", "lease": {
        "holder": "op@elsewhere:4242", "spec": "/ops/other.yaml", "expires": live.split()[0].split("=")[1],
        "value": live}, "live": True, "cleared": False, "dry_run": True}
    assert table(ep) == before
    r = nestnet(ep, "azure", "unlock", spec, "--force")
    assert r.returncode == 0 and r.stdout.startswith("cleared the live apply lease on route table 'rt'"), r.stdout
    after = table(ep)
    assert after["tags"] == {k: v for k, v in before["tags"].items() if k != LEASE}
    assert no_etags(after["properties"]["routes"]) == no_etags(before["properties"]["routes"])
    write_table(ep, base, {**after["tags"], LEASE: lease_value("op@dead:99", datetime.now(timezone.utc)
                                                                 - timedelta(seconds=1))})
    r = nestnet(ep, "azure", "unlock", spec, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["cleared"] is True, r.stdout + r.stderr
    assert LEASE not in table(ep)["tags"]


def test_a_killed_apply_blocks_until_unlocked_and_ctrl_c_releases(fabric):
    ep, specs, base = fabric
    for sig in (signal.SIGKILL, signal.SIGINT, signal.SIGTERM):
        ep.arm.__dict__.pop("handle", None)  # the emulator's own handler again (a gate wrapped it)
        _reset(ep, base)
        go = threading.Event()
        gate = Gate(ep, TABLE, go.is_set)
        p = subprocess.Popen([*NESTNET, "azure", "apply", str(specs["h12"])], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=cli_env(ep, "op-a"))
        wait_for(lambda: bool(gate.held), "the apply's write under its lease")
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
        go.set()  # the write ARM had accepted goes on without its client
        wait_for(gate.passed.is_set, "the held write to be answered")
        if sig == signal.SIGKILL:
            assert "nestnet-h12" in routes(ep)  # ARM did the write it had taken
            assert f":{p.pid} " in (lease_of(ep) or "")  # stuck: nothing ran to release it
            # Another operator's apply (with something to change) is refused naming the dead holder ...
            r = nestnet(ep, "azure", "apply", str(specs["h13"]), "--lock-timeout", "0")
            assert r.returncode == 3 and f":{p.pid} (spec {specs['h12']})" in r.stderr, r.stderr
            assert "nestnet-h13" not in routes(ep)
            # ... until it is unlocked: the lease lives for the dead apply's deadline (and a margin).
            r = nestnet(ep, "azure", "unlock", str(specs["h13"]))
            assert r.returncode == 1, r.stderr
            r = nestnet(ep, "azure", "unlock", str(specs["h13"]), "--force")
            assert r.returncode == 0, r.stderr
            r = nestnet(ep, "azure", "apply", str(specs["h13"]), "--lock-timeout", "0")
            assert r.returncode == 0 and "delete route nestnet-h12" in r.stdout, r.stdout + r.stderr
        else:
            assert p.returncode != 0, out + err
            assert LEASE not in (table(ep).get("tags") or {}), (sig, err)  # released on the way out
            assert "nestnet-h12" not in routes(ep)  # the held write met the released table: 412
        r = nestnet(ep, "azure", "apply", str(specs["h12"]), "--lock-timeout", "0")
        assert r.returncode == 0, r.stderr
        assert "nestnet-h12" in routes(ep) and LEASE not in table(ep)["tags"]
        assert "team-x-default" in routes(ep) and table(ep)["tags"]["owner"] == "team-x"


# -- modes without a route table: the VNet ---------------------------------------------------------

def test_without_a_route_table_the_lease_is_on_the_vnet_keeping_its_subnets_and_tags(emulator, tmp_path):
    spec = seed_spec()
    spec["nested"]["mode"] = "secondary-ip"
    path = write_spec(tmp_path / "s.yaml", spec)
    plan = load_plan(path)
    ep = emulator(plan)
    vnet_path = f"/subscriptions/{plan.azure.subscription_id or DEFAULT_SUBSCRIPTION}/resourceGroups/" \
                f"{plan.azure.resource_group}/providers/Microsoft.Network/virtualNetworks/{plan.azure.vnet}"
    sdk = ep.sdk(plan)
    v = sdk.virtual_networks.get(plan.azure.resource_group, plan.azure.vnet).json
    v["tags"] = {"owner": "net-team", LEASE: lease_value("op@elsewhere:7", in_an_hour())}
    sdk.virtual_networks.begin_create_or_update(plan.azure.resource_group, plan.azure.vnet, v).result()
    before = arm_get(ep, vnet_path)
    r = nestnet(ep, "azure", "apply", str(path), "--lock-timeout", "0")
    assert r.returncode == 3 and "lease on virtual network" in r.stderr and "op@elsewhere:7" in r.stderr, r.stderr
    assert arm_get(ep, vnet_path) == before
    r = nestnet(ep, "azure", "unlock", str(path), "--force")
    assert r.returncode == 0 and "virtual network" in r.stdout, r.stderr
    unlocked = arm_get(ep, vnet_path)
    assert unlocked["tags"] == {"owner": "net-team"}
    assert no_etags(unlocked["properties"]["subnets"]) == no_etags(before["properties"]["subnets"])
    # An apply takes it (seen on the VNet while the apply writes the NICs) and releases it.
    held = []
    inner = ep.arm.handle

    def handle(m, target, headers, body, base):
        if m == "PUT" and "/networkinterfaces/" in target.lower():
            held.append((arm_get(ep, vnet_path).get("tags") or {}).get(LEASE))
        return inner(m, target, headers, body, base)

    ep.arm.handle = handle
    r = nestnet(ep, "azure", "apply", str(path))
    assert r.returncode == 0, r.stderr
    assert held and all(h and h.endswith("spec=" + str(path)) for h in held), held
    after = arm_get(ep, vnet_path)
    assert after["tags"] == {"owner": "net-team"}
    assert [s["name"] for s in after["properties"]["subnets"]] == [s["name"] for s in before["properties"]["subnets"]]
    assert "add ip config" in r.stdout or "ip config" in r.stdout, r.stdout


def test_a_missing_route_table_is_created_by_the_lease_and_reported(emulator, tmp_path):
    """Routed mode before the first apply: the lease creates the table (If-None-Match: *, so of two
    applies exactly one creates it) and that creation is the apply's reported `create route table`."""
    paths = {}
    for name, n in (("a", 12), ("b", 13)):
        (tmp_path / name).mkdir()
        paths[name] = write_spec(tmp_path / name / "f.yaml", fabric_spec(n))
    ep = emulator(load_plan(write_spec(tmp_path / "seed.yaml", fabric_spec(14))))
    procs = [subprocess.Popen([*NESTNET, "azure", "apply", str(paths[k]), "--json"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=cli_env(ep, f"op-{k}")) for k in ("a", "b")]
    done = [(p, *p.communicate(timeout=180)) for p in procs]
    for p, out, err in done:
        assert p.returncode == 0, err
    outs = [json.loads(out) for _, out, _ in done]
    created = [o for o in outs if ("create", "rt") in [(c["action"], c["name"]) for c in o["applied"]]]
    assert len(created) == 1, outs
    for o in outs:
        assert o["applied"] == o["changes"]  # what was written is what was shown, creation included
        assert o["lease"]["resource"] == "route table 'rt'" and o["lease"]["released"], o
    t = table(ep)
    assert t["tags"] == {"managed-by": "nestnet", "nestnet-fabric": "big"}
    assert "nestnet-h11" in routes(ep)


def test_rollout_takes_the_same_lease(fabric):
    """`rollout`'s Azure step is an apply: a live lease stops it (exit 3, naming the holder) before
    any host is touched."""
    ep, specs, base = fabric
    write_table(ep, base, {**table(ep)["tags"], LEASE: lease_value("op@elsewhere:4242", in_an_hour())})
    before = table(ep)
    r = nestnet(ep, "rollout", str(specs["h12"]), NESTNET_ARM_LOCK_TIMEOUT="0")
    assert r.returncode == 3 and "op@elsewhere:4242" in r.stderr, r.stdout + r.stderr
    assert table(ep) == before
