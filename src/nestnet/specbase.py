"""The spec's pydantic base and shared field checks, for spec.py and for each cloud's section
(``nestnet.clouds.<cloud>.spec``), which spec.py's ``Spec`` includes."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

# A DNS domain (zone or search domain): dot-separated labels, no trailing dot.
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")


def _domain(v: str) -> str:
    v = v.lower()
    if not DOMAIN_RE.match(v):
        raise ValueError("not a DNS domain (labels of a-z, 0-9, '-', at least two, no trailing dot)")
    return v


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
