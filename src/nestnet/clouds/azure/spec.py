"""The spec's ``azure:`` section (the cloud seam's ``spec_model``): which subscription, resource
group, VNet and route table the fabric lives in, and Azure's limits for it."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from ...specbase import _domain, _Model

# Azure resource names: alphanumerics, '_', '.', '-'; start alnum; end alnum or '_'.
AZURE_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")


class AzureSpec(_Model):
    subscription_id: str | None = None
    resource_group: str
    location: str | None = None
    vnet: str
    address_space: list[str] = Field(min_length=1)
    route_table: str | None = None
    max_routes: int = Field(400, ge=1, le=1000)
    max_ip_configs: int = Field(256, ge=1, le=256)
    route_prefix: str = "nestnet-"
    # Which Azure cloud ARM and the credential talk to; arm_endpoint/authority_host override it.
    cloud: Literal["public", "usgov", "china"] = "public"
    arm_endpoint: str | None = None
    authority_host: str | None = None
    private_dns_zone: str | None = None  # nested VMs' A records kept there by `azure apply`

    @field_validator("private_dns_zone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        return _domain(v) if isinstance(v, str) else v


SECTION = AzureSpec
