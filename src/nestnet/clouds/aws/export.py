"""The EC2 side as text for other tools: Terraform, and an AWS CLI script (pure).

Both find the VPC, ENIs and route tables by the spec's references (an id, or the Name tag inside
the VPC), so they need no ids nestnet has not seen.

- Terraform: ``data`` sources for the VPC, the hosts' ENIs and the route tables; each host ENI as an
  ``aws_network_interface`` adopted with an ``import`` block (Terraform >= 1.6: the id comes from
  the data source), managing only ``ipv4_prefixes`` (prefix mode), ``private_ips`` (secondary-ip)
  and ``source_dest_check`` (routed): every other attribute is in ``ignore_changes``; an
  ``aws_route`` per route. Terraform's ``ipv4_prefixes`` and ``private_ips`` are an ENI's whole
  list: a prefix or address someone else adds later is removed by the next ``terraform apply``
  (the script and ``nestnet aws apply`` keep them).
- AWS CLI: looks each thing up before it writes it and writes only what is missing (assign a prefix
  or address, create or replace a route, turn the check off); removes nothing; safe to run again.
"""

from __future__ import annotations

import re
import shlex

from .plan import AwsPlan

IDS = {"vpc": "vpc-", "eni": "eni-", "rtb": "rtb-", "instance": "i-"}


def _tf_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return name if re.match(r"^[A-Za-z_]", name) else f"_{name}"


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "$${") + '"'


def _filter(name: str, value: str) -> list[str]:
    return ["  filter {", f"    name   = {_q(name)}", f"    values = [{_q(value)}]", "  }"]


def _lookup(kind: str, ref: str, vpc: bool = True) -> list[str]:
    """The filters finding ``ref`` (an id or a Name tag) of ``kind``, inside the fabric's VPC."""
    id_filter = {"vpc": "vpc-id", "eni": "network-interface-id", "rtb": "route-table-id", "instance": "instance-id"}[kind]
    out = _filter(id_filter if ref.startswith(IDS[kind]) else "tag:Name", ref)
    if vpc:
        out += ["  filter {", '    name   = "vpc-id"', "    values = [data.aws_vpc.fabric.id]", "  }"]
    return out


_ATTR = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_]*) += (.*)$")


def _aligned(lines: list[str]) -> list[str]:
    """As ``terraform fmt`` writes them: the ``=`` of consecutive one-line attributes at one level
    in one column."""
    out = list(lines)
    i = 0
    while i < len(out):
        m = _ATTR.match(out[i])
        if not m:
            i += 1
            continue
        j = i
        while j < len(out) and (mj := _ATTR.match(out[j])) and mj.group(1) == m.group(1):
            j += 1
        width = max(len(_ATTR.match(out[k]).group(2)) for k in range(i, j))  # type: ignore[union-attr]
        for k in range(i, j):
            mk = _ATTR.match(out[k])
            assert mk is not None
            out[k] = f"{mk.group(1)}{mk.group(2).ljust(width)} = {mk.group(3)}"
        i = j
    return out


def terraform(aws: AwsPlan, fabric: str) -> str:
    lines = [f"# nestnet: fabric {fabric}, mode {aws.mode}, region {aws.region} (generated; edit the spec instead)",
             "", "terraform {", '  required_version = ">= 1.6"', "  required_providers {",
             "    aws = {", '      source  = "hashicorp/aws"', '      version = ">= 5.0"', "    }", "  }", "}", "",
             'provider "aws" {', f"  region = {_q(aws.region)}", "}", "", 'data "aws_vpc" "fabric" {',
             *_lookup("vpc", aws.vpc, vpc=False), "}", ""]
    enis: dict[str, str] = {}  # ENI reference -> data source name
    for host, ref, _ in aws.host_enis:
        n = _tf_name(host)
        enis[ref] = n
        if ref.startswith("instance:"):
            lines += [f'data "aws_instance" "{n}" {{', *_lookup("instance", ref.split(":", 1)[1]), "}", "",
                      f'data "aws_network_interface" "{n}" {{', f"  id = data.aws_instance.{n}.network_interface_id",
                      "}", ""]
        else:
            lines += [f'data "aws_network_interface" "{n}" {{', *_lookup("eni", ref), "}", ""]
    prefixes = {p.eni: p for p in aws.prefixes}
    addresses: dict[str, list[str]] = {}
    for a in aws.addresses:
        addresses.setdefault(a.eni, []).append(a.ip)
    managed = set(prefixes) | set(addresses) | set(aws.source_dest_check_off)
    for host, ref, ip in aws.host_enis:
        if ref not in managed:
            continue
        n = enis[ref]
        ignore = ["attachment", "description", "security_groups", "tags", "private_ip_list",
                  "private_ip_list_enabled", "ipv4_prefix_count", "private_ips_count", "ipv6_addresses",
                  "ipv6_address_count", "ipv6_prefixes", "ipv6_prefix_count", "source_dest_check", "ipv4_prefixes",
                  "private_ips", "subnet_id"]
        body = [f"# host {host}"]
        body += [f'resource "aws_network_interface" "{n}" {{', f"  subnet_id = data.aws_network_interface.{n}.subnet_id"]
        if ref in prefixes:
            body.append(f"  ipv4_prefixes = [{_q(str(prefixes[ref].prefix))}]")
            ignore.remove("ipv4_prefixes")
        if ref in addresses:
            body.append(f"  private_ips = [{', '.join(_q(x) for x in [ip] + addresses[ref])}]")
            ignore.remove("private_ips")
        if ref in aws.source_dest_check_off:
            body.append("  source_dest_check = false")
            ignore.remove("source_dest_check")
        body += ["  lifecycle {", "    # only what nestnet owns is managed here",
                 f"    ignore_changes = [{', '.join(ignore)}]", "  }", "}", "",
                 "import {", f"  to = aws_network_interface.{n}", f"  id = data.aws_network_interface.{n}.id", "}", ""]
        lines += body
    tables: dict[str, str] = {}
    for r in aws.routes:
        if r.table not in tables:
            tables[r.table] = _tf_name(f"rt_{r.table}")
            lines += [f'data "aws_route_table" "{tables[r.table]}" {{', *_lookup("rtb", r.table), "}", ""]
        lines += [f'resource "aws_route" "{_tf_name(f"{tables[r.table]}_{r.destination}")}" {{',
                  f"  route_table_id         = data.aws_route_table.{tables[r.table]}.id",
                  f"  destination_cidr_block = {_q(str(r.destination))}",
                  f"  network_interface_id   = data.aws_network_interface.{enis[r.eni]}.id", "}", ""]
    return "\n".join(_aligned(lines)).rstrip("\n") + "\n"


def _sh_lookup(var: str, kind: str, ref: str) -> str:
    cmd = {"vpc": ("describe-vpcs", "Vpcs[].VpcId", "vpc-id"),
           "eni": ("describe-network-interfaces", "NetworkInterfaces[].NetworkInterfaceId", "network-interface-id"),
           "rtb": ("describe-route-tables", "RouteTables[].RouteTableId", "route-table-id"),
           "instance": ("describe-instances", "Reservations[].Instances[].NetworkInterfaces[?Attachment.DeviceIndex==`0`]"
                        "[].NetworkInterfaceId", "instance-id")}[kind]
    key = cmd[2] if ref.startswith(IDS[kind]) else "tag:Name"
    vpc = "" if kind == "vpc" else " Name=vpc-id,Values=\"$VPC\""
    return (f"{var}=$(one {shlex.quote(ref)} \"$(aws ec2 {cmd[0]} --region \"$REGION\" --filters "
            f"{shlex.quote(f'Name={key},Values={ref}')}{vpc} --query {shlex.quote(cmd[1])} --output text)\")")


def aws_cli(aws: AwsPlan, fabric: str) -> str:
    out = ["#!/usr/bin/env bash",
           f"# nestnet: fabric {fabric}, mode {aws.mode} (generated; edit the spec instead).",
           "# Looks before it writes; adds what is missing, removes nothing: safe to run again.",
           "set -euo pipefail", f"REGION={shlex.quote(aws.region)}", "",
           "one() {  # exactly one id found for a reference, or stop",
           '  local ref="$1" ids="$2"',
           '  if [ -z "$ids" ] || [ "$ids" = None ] || [ "$(wc -w <<<"$ids")" != 1 ]; then',
           '    echo "nestnet: $ref: expected exactly one match, found: ${ids:-none}" >&2; exit 1',
           "  fi",
           '  echo "$ids"',
           "}", "", _sh_lookup("VPC", "vpc", aws.vpc)]
    var: dict[str, str] = {}
    for i, (host, ref, _) in enumerate(aws.host_enis):
        v = f"ENI_{i}"
        var[ref] = v
        kind, r = ("instance", ref.split(":", 1)[1]) if ref.startswith("instance:") else ("eni", ref)
        out.append(f"{_sh_lookup(v, kind, r)}  # host {host}")
    def assign_if_missing(v: str, key: str, field: str, value: str, flag: str, what: str) -> list[str]:
        # An ENI without prefixes has no Ipv4Prefixes key at all: `[]` stands in for it.
        q = shlex.quote(f"length(NetworkInterfaces[0].{key}[?{field}=='{value}'] || `[]`)")
        return [f"if [ \"$(aws ec2 describe-network-interfaces --region \"$REGION\" --network-interface-ids \"${v}\" "
                f"--query {q} --output text)\" = 0 ]; then",
                f"  aws ec2 assign-private-ip-addresses --region \"$REGION\" --network-interface-id \"${v}\" "
                f"{flag} {value} >/dev/null",
                f"  echo \"{what}\"", "fi"]

    for p in aws.prefixes:
        out += assign_if_missing(var[p.eni], "Ipv4Prefixes", "Ipv4Prefix", str(p.prefix), "--ipv4-prefixes",
                                 f"assigned prefix {p.prefix} to ${var[p.eni]} (host {p.host})")
    for a in aws.addresses:
        out += assign_if_missing(var[a.eni], "PrivateIpAddresses", "PrivateIpAddress", str(a.ip),
                                 "--private-ip-addresses", f"assigned {a.ip} to ${var[a.eni]} (VM {a.vm})")
    for ref in aws.source_dest_check_off:
        out.append(f"aws ec2 modify-network-interface-attribute --region \"$REGION\" --network-interface-id "
                   f"\"${var[ref]}\" --no-source-dest-check")
    tvar: dict[str, str] = {}
    for r in aws.routes:
        if r.table not in tvar:
            tvar[r.table] = f"RTB_{len(tvar)}"
            out.append(_sh_lookup(tvar[r.table], "rtb", r.table))
        t, e = tvar[r.table], var[r.eni]
        q = shlex.quote(f"RouteTables[0].Routes[?DestinationCidrBlock=='{r.destination}'].NetworkInterfaceId | [0]")
        out += [f"have=$(aws ec2 describe-route-tables --region \"$REGION\" --route-table-ids \"${t}\" --query {q} "
                "--output text)",
                "if [ \"$have\" = None ] || [ -z \"$have\" ]; then",
                f"  aws ec2 create-route --region \"$REGION\" --route-table-id \"${t}\" --destination-cidr-block "
                f"{r.destination} --network-interface-id \"${e}\" >/dev/null",
                f"  echo \"created route {r.destination} -> ${e} in ${t}\"",
                f"elif [ \"$have\" != \"${e}\" ]; then",
                f"  aws ec2 replace-route --region \"$REGION\" --route-table-id \"${t}\" --destination-cidr-block "
                f"{r.destination} --network-interface-id \"${e}\"",
                f"  echo \"replaced route {r.destination} -> ${e} in ${t}\"", "fi"]
    return "\n".join(out) + "\n"
