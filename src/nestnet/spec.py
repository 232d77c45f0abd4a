"""The spec file (``nestnet.yaml``): reading it and checking its shape.

Reading is two-speed on purpose: a fast C YAML loader builds the data, and only when there is
something to report does a round-trip loader (ruamel) re-read the text to find line numbers.
Structure (types, unknown keys, defaults) is pydantic's job; meaning (addresses, overlaps,
references) is ``validate.py``'s.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, Field, ValidationError, create_model, field_validator

from . import clouds
from .errors import Problem, SpecError

SPEC_VERSION = 1

# Names end up as Linux network-namespace prefixes, the cloud's names/tags and shell words.
FABRIC_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?$")
# Hostname label / VM / endpoint names: safe in shells, the cloud's names and file names.
NODE_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
# Linux interface names: at most 15 bytes, no '/', whitespace or ':'.
IFNAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$")
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
from .specbase import DOMAIN_RE, _domain, _Model  # noqa: F401 - the spec's base, shared with the clouds' sections


class SubnetSpec(_Model):
    name: str
    prefix: str
    route_table: bool = True


class DhcpSpec(_Model):
    dynamic: bool = False  # also lease the free part of each host's block to unknown MACs


class NestedSpec(_Model):
    mode: Literal["routed", "nat", "secondary-ip", "nic-prefix", "prefix"] = "routed"
    pool: str
    block_prefix_len: int = Field(28, ge=16, le=30)
    guest_style: Literal["onlink", "subnet", "shared"] = "onlink"
    egress: Literal["masquerade-outside-vnet", "none"] = "masquerade-outside-vnet"
    dhcp: DhcpSpec = Field(default_factory=DhcpSpec)
    dns_search: list[Annotated[str, AfterValidator(_domain)]] | None = None  # default: [the cloud section's private_dns_zone]


HOST_DEFAULTABLE = (
    "subnet",
    "uplink",
    "bridge",
    "bridge_type",
    "bridge_has_uplink",
    "firewall",
    "ssh_port",
    "migration_hook",
)


class HostSpec(_Model):
    name: str
    ip: str
    subnet: str | None = None
    nic: str | None = None
    uplink: str = "eth0"
    bridge: str = "nestbr0"
    bridge_type: Literal["linux", "ovs"] = "linux"
    bridge_has_uplink: bool = False
    block: str | None = None
    firewall: Literal["nftables", "ufw"] = "nftables"
    ssh_port: int = Field(22, ge=1, le=65535)
    migration_hook: bool = False  # install the libvirt qemu hook for live migration (docs/decisions/0013)
    # An existing public IP of the cloud (its name) on the primary ip configuration of the host's NIC,
    # for its VMs' ``expose``; unset: nestnet creates and owns one (docs/decisions/0027)
    public_ip: str | None = None
    dhcp_dynamic: bool | None = None  # this host's nested.dhcp.dynamic


class ForwardSpec(_Model):
    port: int = Field(ge=1, le=65535)  # on the VM
    host_port: int | None = Field(None, ge=1, le=65535)  # on its host's address; default: port
    proto: Literal["tcp", "udp"] = "tcp"


class ExposeSpec(_Model):
    """A VM's port reachable from the internet: the host's public IP's ``public_port`` DNATed to it."""
    port: int = Field(ge=1, le=65535)  # on the VM
    public_port: int | None = Field(None, ge=1, le=65535)  # on its host's public IP; default: port
    proto: Literal["tcp", "udp"] = "tcp"


class VMSpec(_Model):
    name: str
    host: str
    ip: str | None = None
    mac: str | None = None
    forwards: list[ForwardSpec] = Field(default_factory=list)  # nested.mode nat: DNAT on the host
    expose: list[ExposeSpec] = Field(default_factory=list)  # any mode: from the host's public IP (issue 26)

    @field_validator("mac")
    @classmethod
    def _mac_lower(cls, v: str | None) -> str | None:
        return v.lower() if isinstance(v, str) else v


class EndpointSpec(_Model):
    name: str
    ip: str
    subnet: str | None = None


class _SpecHead(_Model):
    version: int
    name: str


# The cloud sections (one per cloud, named as it is): one optional key per cloud package, each its package's
# model (nestnet.clouds.sections); a spec has exactly one (_one_cloud below).
_SECTIONS = clouds.sections()
_SpecClouds = create_model(  # type: ignore[call-overload]
    "_SpecClouds", __base__=_SpecHead, **{n: (m | None, None) for n, m in _SECTIONS.items()}
)


class Spec(_SpecClouds):  # type: ignore[misc, valid-type]
    subnets: list[SubnetSpec] = Field(min_length=1)
    nested: NestedSpec
    host_defaults: dict[str, Any] = Field(default_factory=dict)
    hosts: list[HostSpec] = Field(min_length=1)
    vms: list[VMSpec] = Field(default_factory=list)
    endpoints: list[EndpointSpec] = Field(default_factory=list)


# A spec whose one cloud section is null reads as one with that section required (pydantic's "should be a
# valid dictionary"), and a spec with none as one missing the default cloud's (pydantic's "missing", in
# field order, as when that section was the only one).
_SpecRequiring = {
    name: create_model("Spec", __base__=Spec, **{name: (model, ...)})  # type: ignore[call-overload]
    for name, model in _SECTIONS.items()
}


def _spec_model(data: dict[str, Any]) -> type[Spec]:
    if any(data.get(k) is not None for k in _SECTIONS):
        return Spec
    null = [k for k in _SECTIONS if k in data]
    return _SpecRequiring[null[0] if null else clouds.DEFAULT]


# --------------------------------------------------------------------------------------------
# Source text and line lookup


@dataclass
class SpecSource:
    """Where a spec came from: its path and text, for messages with line numbers and names."""

    path: Path
    text: str
    _lines: dict[str, int] | None = field(default=None, repr=False)
    _names: dict[str, str] = field(default_factory=dict, repr=False)
    # (data, lines) as the fast reader built them from ``text``; None: read it again for lines
    _read: tuple[Any, dict[int, list[int]]] | None = field(default=None, repr=False)
    _plain: bool | None = field(default=None, repr=False)  # no key of _read is empty or holds '.' or '['

    @property
    def display(self) -> str:
        return str(self.path)

    def note_names(self, data: Any) -> None:
        """Remember which name each list entry has ("vms[0]" -> "web1") for messages."""
        if not isinstance(data, dict):
            return
        for key in ("subnets", "hosts", "vms", "endpoints"):
            items = data.get(key)
            if isinstance(items, list):
                for i, item in enumerate(items):
                    if isinstance(item, dict) and isinstance(item.get("name"), str):
                        self._names[f"{key}[{i}]"] = item["name"]

    def name_of(self, path: str) -> str:
        return self._names.get(path[: path.index("]") + 1], "") if "]" in path else ""

    def line_of(self, path: str) -> int | None:
        if self._lines is None and self._read is not None:
            if self._plain is None:
                self._plain = not _dotted_keys(self._read[0])
            found = _walk_lines(*self._read, path) if self._plain else _Unusual
            if found is not _Unusual:
                return found  # type: ignore[return-value]
            self._read = None  # keys the walk cannot tell apart, or data changed since: the index
        if self._lines is None:
            self._lines = _index_lines(self.text)
        # Fall back to the nearest enclosing key that has a line.
        p = path
        while p:
            if p in self._lines:
                return self._lines[p]
            cut = max(p.rfind("."), p.rfind("["))
            p = p[:cut] if cut > 0 else ""
        return None

    def locate(self, problems: list[Problem]) -> list[Problem]:
        return [
            Problem(
                p.path, p.message, self.display, p.line or self.line_of(p.path), p.severity,
                p.name or self.name_of(p.path), p.other,
                p.other_line or (self.line_of(p.other) if p.other else None),
            )
            for p in problems
        ]


_STEP = re.compile(r"(\.?)([^.\[]+)|\[([0-9]+)\]")


def _walk_lines(data: Any, lines: dict[int, list[int]], path: str) -> Any:
    """``line_of(path)`` from the lines the fast reader recorded: the line of the deepest node
    on ``path`` (the nearest enclosing key that has a line, as the index gives), without reading
    the text again (4,096 hosts with a warning each: 0.4 s). ``_Unusual`` where the index's
    answer could differ (the caller rules out keys with '.' or '[' or empty: paths collide), a path
    not spelled as the index spells them, or a container changed since it was read
    (structure() drops unknown keys)."""
    if not path:
        return None
    node: Any = data
    line: int | None = None
    pos = 0
    while pos < len(path):
        m = _STEP.match(path, pos)
        if m is None or (m.group(2) is not None and bool(m.group(1)) != (pos > 0)):
            return _Unusual
        pos = m.end()
        if type(node) is not dict and type(node) is not list:
            return line  # a scalar: nothing below it has a line
        own = lines.get(id(node))
        if own is None or len(own) != len(node):
            return _Unusual
        if m.group(3) is not None:  # [i]
            i = int(m.group(3))
            if type(node) is not list or i >= len(node):
                return line
            line, node = own[i] + 1, node[i]
            continue
        if type(node) is not dict:
            return line
        hits = [i for i, k in enumerate(node) if str(k) == m.group(2)]
        if not hits:
            return line
        key = list(node)[hits[-1]]  # two keys with one text: the index keeps the later
        line, node = own[hits[-1]] + 1, node[key]
    return line


def _dotted_keys(data: Any) -> bool:
    """Whether any key (as text) is empty or holds '.' or '[': its paths collide in the index."""
    stack = [data]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            for k, v in node.items():
                t = str(k)
                if not t or "." in t or "[" in t:
                    return True
                if type(v) is dict or type(v) is list:
                    stack.append(v)
        elif type(node) is list:
            stack.extend(v for v in node if type(v) is dict or type(v) is list)
    return False


def _index_lines(text: str) -> dict[str, int]:
    """Map key paths ('hosts[1].block') to 1-based line numbers: from libyaml's events, or for
    documents the fast reader leaves alone, from ruamel's round-trip data (1,000 hosts: 3.5 s,
    paid by every command whose spec has one warning)."""
    fast = _fast_index(text)
    return fast if fast is not None else _ruamel_index(text)


def _fast_index(text: str) -> dict[str, int] | None:
    """``_index_lines`` from the events ``_fast_load`` reads; None for what it leaves alone."""
    ev = yaml.events
    loader = _Loader(text)
    out: dict[str, int] = {}
    nokey = _Unusual  # a sentinel no key can be
    stack: list[list[Any]] = []  # [is a mapping, its path, pending key (mapping) or next index]
    try:
        loader.get_event()  # StreamStart
        if not isinstance(loader.get_event(), ev.DocumentStartEvent):
            return None
        while True:
            e = loader.get_event()
            cls = type(e)
            if cls is ev.MappingEndEvent or cls is ev.SequenceEndEvent:
                stack.pop()
                continue
            if cls is ev.DocumentEndEvent:
                break
            if cls not in (ev.ScalarEvent, ev.MappingStartEvent, ev.SequenceStartEvent) or e.anchor is not None:
                return None
            path = ""
            if stack:
                frame = stack[-1]
                if frame[0] and frame[2] is nokey:  # a key
                    if cls is not ev.ScalarEvent:
                        return None
                    key = str(_scalar(loader, e))
                    frame[2] = f"{frame[1]}.{key}" if frame[1] else key
                    out[frame[2]] = e.start_mark.line + 1
                    continue
                if frame[0]:
                    path, frame[2] = frame[2], nokey
                else:
                    path = f"{frame[1]}[{frame[2]}]"
                    frame[2] += 1
                    out[path] = e.start_mark.line + 1
            if cls is ev.MappingStartEvent:
                stack.append([True, path, nokey])
            elif cls is ev.SequenceStartEvent:
                stack.append([False, path, 0])
        if not isinstance(loader.get_event(), ev.StreamEndEvent):
            return None
        return out
    except (yaml.YAMLError, _Unusual):
        return None
    finally:
        loader.dispose()


def _ruamel_index(text: str) -> dict[str, int]:
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    out: dict[str, int] = {}
    try:
        data = YAML(typ="rt").load(text)
    except Exception:  # the fast loader already reported the syntax error
        return out

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, CommentedMap):
            for k, v in node.items():
                path = f"{prefix}.{k}" if prefix else str(k)
                try:
                    out[path] = node.lc.key(k)[0] + 1
                except Exception:
                    pass
                walk(v, path)
        elif isinstance(node, CommentedSeq):
            for i, v in enumerate(node):
                path = f"{prefix}[{i}]"
                try:
                    out[path] = node.lc.item(i)[0] + 1
                except Exception:
                    pass
                walk(v, path)

    walk(data, "")
    return out


# --------------------------------------------------------------------------------------------
# Loading


class _Loader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    """Safe loader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            # '<<' copies another mapping in: the same sharing as anchors, refused the same way
            raise yaml.constructor.ConstructorError(
                None, None, "YAML merge keys (<<) are not supported; write the keys out", key_node.start_mark
            )
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "complex keys ('? [a, b]') are not supported; use plain names as keys", key_node.start_mark
            )
        key = loader.construct_object(key_node, deep=deep)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _reject_aliases(data: Any) -> None:
    """Anchors/aliases make shared subtrees: refuse them before anything walks the data
    (a billion-laughs document is then rejected after visiting a handful of nodes)."""
    seen: set[int] = set()
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, (dict, list)):
            if id(node) in seen:
                raise ValueError("YAML anchors and aliases (&name / *name) are not supported")
            seen.add(id(node))
            stack.extend(node.values() if isinstance(node, dict) else node)


class _Unusual(Exception):
    """The fast reader met something it leaves to the full loader (and its messages)."""


_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("null", "bool", "int", "float", "timestamp")
)


def _fast_load(text: str, lines: dict[int, list[int]] | None = None) -> Any:
    """Build the data straight from libyaml's events: the same result as ``yaml.load`` with
    ``_Loader`` for the plain documents specs are, about 4x faster on a 1,000-host spec (PyYAML's
    composer builds a Node per scalar and resolves it in Python). Anything else - anchors,
    aliases, explicit tags, merge or complex or duplicate keys, several documents, a syntax
    error - raises ``_Unusual`` so the full loader reads the text and reports it its own way."""
    loader = _Loader(text)
    try:
        loader.get_event()  # StreamStart
        if not isinstance(loader.get_event(), yaml.events.DocumentStartEvent):
            raise _Unusual
        data = _build(loader, lines)
        if not isinstance(loader.get_event(), yaml.events.StreamEndEvent):  # a second document
            raise _Unusual
        return data
    except yaml.YAMLError:
        raise _Unusual from None
    finally:
        loader.dispose()


def _scalar(loader: Any, e: yaml.events.ScalarEvent) -> Any:
    value = e.value
    # Only plain scalars starting with a character some implicit resolver watches can be other
    # than a string (PyYAML's resolver is keyed by the first character the same way).
    if e.implicit[0] and (not value or value[0] in loader.yaml_implicit_resolvers):
        tag = loader.resolve(yaml.ScalarNode, value, e.implicit)
        if tag != yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG:
            if tag not in _PLAIN_TAGS:  # '<<' merge keys, '=' value keys
                raise _Unusual
            value = loader.yaml_constructors[tag](loader, yaml.ScalarNode(tag, value))
    return value


def _build(loader: Any, lines: dict[int, list[int]] | None = None) -> Any:
    """One document's events to data; each stack frame is [container, pending mapping key, its
    lines]. ``lines``: filled with id(container) -> the 0-based line of each of its keys or
    items in order (``SpecSource.line_of`` walks these instead of reading the text again)."""
    ev = yaml.events
    scalar, mapping, sequence = ev.ScalarEvent, ev.MappingStartEvent, ev.SequenceStartEvent
    watched = loader.yaml_implicit_resolvers  # _scalar's test, inlined: the loop runs per scalar
    get_event = loader.get_event
    nokey = _Unusual  # a sentinel no YAML value can be
    record = lines is not None
    stack: list[list[Any]] = [[[], nokey, []]]
    while True:
        e = get_event()
        cls = type(e)
        if cls is ev.MappingEndEvent or cls is ev.SequenceEndEvent:
            stack.pop()
            continue
        if cls is ev.DocumentEndEvent:
            return stack[0][0][0]
        if cls is not scalar and cls is not mapping and cls is not sequence:  # aliases
            raise _Unusual
        if e.anchor is not None or e.tag is not None:
            raise _Unusual
        if cls is scalar:
            value = e.value
            if e.implicit[0] and (not value or value[0] in watched):
                value = _scalar(loader, e)
        else:
            value = {} if cls is mapping else []
        frame = stack[-1]
        box = frame[0]
        if type(box) is list:
            box.append(value)
            if record:
                frame[2].append(e.start_mark.line)
        elif frame[1] is nokey:
            if cls is not scalar or value in box:  # complex or duplicate key
                raise _Unusual
            frame[1] = value
            if record:
                frame[2].append(e.start_mark.line)
        else:
            box[frame[1]] = value
            frame[1] = nokey
        if cls is not scalar:
            own: list[int] = []
            if record:
                lines[id(value)] = own  # type: ignore[index]
            stack.append([value, nokey, own])


def parse_yaml(text: str, display: str, source: SpecSource | None = None) -> Any:
    """The YAML data of ``text``; ``source``: the spec it is, which then keeps the lines the
    fast reader saw for its messages."""
    try:
        lines: dict[int, list[int]] | None = {} if source is not None else None
        data = _fast_load(text, lines)
        if source is not None:
            source._read = (data, lines)
        return data
    except _Unusual:
        pass
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(
            [Problem("", f"YAML syntax error: {what}", display, line)]
        ) from None
    try:
        _reject_aliases(data)
    except ValueError as exc:
        raise SpecError([Problem("", str(exc), display, None)]) from None
    return data


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


_FIELDS_AT: dict[str, type[BaseModel]] = {
    "": Spec,
    **_SECTIONS,
    "subnets": SubnetSpec,
    "nested": NestedSpec,
    "nested.dhcp": DhcpSpec,
    "hosts": HostSpec,
    "vms": VMSpec,
    "vms.forwards": ForwardSpec,
    "vms.expose": ExposeSpec,
    "endpoints": EndpointSpec,
}


def _suggest(loc: tuple[Any, ...], bad: str) -> str:
    owner = ".".join(str(p) for p in loc[:-1] if not isinstance(p, int))
    model = _FIELDS_AT.get(owner)
    if model is None:
        return ""
    close = difflib.get_close_matches(str(bad), list(model.model_fields), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _pydantic_problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        path = _loc_to_path(loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            msg = f"unknown key {str(loc[-1])!r}{_suggest(loc, str(loc[-1]))}"
        elif kind == "missing":
            msg = f"required key {str(loc[-1])!r} is missing"
        else:
            value = err.get("input")
            shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
            msg = f"{shown}: {err['msg'][0].lower()}{err['msg'][1:]}"
        problems.append(Problem(path, msg))
    return problems


def _apply_host_defaults(data: dict[str, Any]) -> list[Problem]:
    defaults = data.get("host_defaults")
    if defaults is None:
        return []
    if not isinstance(defaults, dict):
        return [Problem("host_defaults", f"{defaults!r}: must be a mapping of host keys")]
    problems = [
        Problem(
            f"host_defaults.{k}",
            f"{k!r} cannot be defaulted (allowed: {', '.join(HOST_DEFAULTABLE)})",
        )
        for k in defaults
        if k not in HOST_DEFAULTABLE
    ]
    hosts = data.get("hosts")
    if isinstance(hosts, list):
        data["hosts"] = [
            ({**{k: v for k, v in defaults.items() if k in HOST_DEFAULTABLE}, **h} if isinstance(h, dict) else h)
            for h in hosts
        ]
    return problems


def structure(data: Any, source: SpecSource) -> "StructureResult":
    """Check the shape of parsed YAML and return the typed Spec (raises SpecError)."""
    if not isinstance(data, dict):
        raise SpecError(
            source.locate([Problem("", "the spec must be a YAML mapping (version: 1, name: ..., ...)")])
        )
    if data.get("version") != SPEC_VERSION:
        v = data.get("version")
        msg = (
            "required key 'version' is missing; add 'version: 1'"
            if v is None
            else f"{v!r}: unsupported spec version; this nestnet reads version {SPEC_VERSION}"
        )
        raise SpecError(source.locate([Problem("version", msg)]))
    data = dict(data)
    problems = _apply_host_defaults(data)
    given = [k for k in _SECTIONS if k in data]
    if len(given) > 1:
        problems.append(Problem(given[1], f"a spec has one cloud section; {given[0]!r} is given already"))
    try:
        spec = _spec_model(data).model_validate(data)
    except ValidationError as exc:
        problems += _pydantic_problems(exc)
        # Unknown keys (typos) alone still leave a usable spec: drop them and go on, so the
        # user also sees the semantic problems in the same run.
        if all(e["type"] == "extra_forbidden" for e in exc.errors()):
            for err in exc.errors():
                _drop(data, tuple(err["loc"]))
            try:
                return StructureResult(_spec_model(data).model_validate(data), source.locate(problems))
            except ValidationError:
                pass
        raise SpecError(source.locate(problems)) from None
    if problems:
        raise SpecError(source.locate(problems))
    return StructureResult(spec, [])


@dataclass(frozen=True)
class StructureResult:
    spec: Spec
    problems: list[Problem]  # errors that did not stop the typed spec from being built


def _drop(data: Any, loc: tuple[Any, ...]) -> None:
    cur = data
    for part in loc[:-1]:
        cur = cur[part]
    if isinstance(cur, dict):
        cur.pop(loc[-1], None)
