"""What the spec checks need to know of Azure (the cloud seam's ``spec_rules()``): its names, the
address ranges a VNet refuses, its smallest subnet and reserved addresses, the ``azure:`` section's
own checks and Azure's limits. Messages name the spec's key and value as validate.py's do."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network

from ...env import GUID_RE  # one rule for a subscription id, from the spec or the environment
from ...errors import Problem
from .facts import NIC_PREFIX_LEN, name_key, reserved_addresses
from .spec import AZURE_NAME_RE

# Azure region names as ARM spells them: 'eastus', 'westeurope', 'eastus2euap'.
LOCATION_RE = re.compile(r"^[a-z][a-z0-9]{1,39}$")
# Ranges Azure refuses in a VNet's address space (VNet FAQ, "What address ranges can I use"):
# multicast, broadcast, loopback, link-local and the platform's DNS/health address.
AZURE_FORBIDDEN_SPACE = tuple(
    IPv4Network(n) for n in ("224.0.0.0/4", "255.255.255.255/32", "127.0.0.0/8", "169.254.0.0/16", "168.63.129.16/32")
)


class AzureSpecRules:
    title = "Azure"
    name_re = AZURE_NAME_RE  # resource names: subnets, NICs, public IPs
    forbidden_space = AZURE_FORBIDDEN_SPACE
    forbidden_why = "which Azure does not allow in a VNet's address space"
    smallest_subnet = 29  # Azure's smallest IPv4 subnet
    reserved_why = "first four and last address"

    def reserved(self, prefix: IPv4Network) -> tuple[IPv4Address, ...]:
        return reserved_addresses(prefix)

    def name_key(self, name: str) -> str:
        return name_key(name)

    def address_space(self, spec) -> list[tuple[str, str]]:
        """The VNet's address space as the spec gives it: (path, text) each."""
        return [(f"azure.address_space[{i}]", text) for i, text in enumerate(spec.azure.address_space)]

    def check_section(self, spec, p: list[Problem]) -> None:
        """The ``azure:`` section's names and ids."""
        az = spec.azure
        for key in ("resource_group", "vnet", "route_table"):
            v = getattr(az, key)
            if v is not None and not AZURE_NAME_RE.match(v):
                p.append(Problem(f"azure.{key}", f"{v!r} is not a valid Azure name (letters, digits, '_', '.', '-')"))
        if az.subscription_id is not None and not GUID_RE.match(az.subscription_id):
            p.append(Problem("azure.subscription_id", f"{az.subscription_id!r} is not a subscription GUID"))
        if az.location is not None and not LOCATION_RE.match(az.location):
            p.append(Problem(
                "azure.location",
                f"{az.location!r} is not an Azure region name; write it as Azure spells it "
                f"(lowercase letters and digits, e.g. 'eastus', 'westeurope')",
            ))
        if spec.nested.mode == "routed" and not az.route_table:
            p.append(Problem("azure.route_table", "required key 'route_table' is missing (needed in routed mode)"))
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$", az.route_prefix):
            p.append(Problem("azure.route_prefix", f"{az.route_prefix!r} is not a valid route name prefix"))

    def check_blocks(self, spec, p: list[Problem]) -> None:
        nested = spec.nested
        if nested.mode == "nic-prefix" and nested.block_prefix_len != NIC_PREFIX_LEN:
            # Azure takes only /28 prefixes on a NIC (azure-cli #30837; docs/decisions/0028)
            p.append(Problem(
                "nested.block_prefix_len", f"{nested.block_prefix_len}: nic-prefix mode gives each host one Azure "
                                           f"NIC prefix, and Azure takes only /{NIC_PREFIX_LEN} ones: set it to "
                                           f"{NIC_PREFIX_LEN} (16 addresses per host)"
            ))

    def check_limits(self, spec, p: list[Problem]) -> None:
        az = spec.azure
        if spec.nested.mode == "routed" and len(spec.hosts) > az.max_routes:
            p.append(Problem(
                "hosts",
                f"{len(spec.hosts)} hosts need {len(spec.hosts)} routes, more than azure.max_routes={az.max_routes} "
                "(Azure's limit per route table); raise max_routes if your region allows 1,000, or split the fabric",
            ))
        if spec.nested.mode != "secondary-ip":
            return
        per_host: dict[str, int] = {}
        for v in spec.vms:
            per_host[v.host] = per_host.get(v.host, 0) + 1
        for h, n in per_host.items():
            if n + 1 > az.max_ip_configs:
                p.append(Problem(
                    "vms",
                    f"host {h!r} has {n} VMs: with its primary that is {n + 1} IP configurations, over "
                    f"azure.max_ip_configs={az.max_ip_configs} (Azure's limit per NIC); use routed mode",
                ))

    def route_limit(self, spec) -> tuple[int, str]:
        """Routes nestnet may write (per route table), and the spec key that says so."""
        return spec.azure.max_routes, "azure.max_routes"

    def low_block_why(self, mode: str) -> str | None:
        return (f"{self.title} hands out dynamic NIC addresses from the lowest free one, so give NICs static "
                "addresses or move the pool to the top of the subnet")


RULES = AzureSpecRules()
