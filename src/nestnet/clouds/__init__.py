"""The cloud seam: what nestnet needs from the cloud its KVM hosts run in, as one small protocol.

In the style of flannel's backend interface: consumers (``check``'s model, the lab, the doctor,
the CLI) ask ``get(name)`` for a ``Cloud`` and use only what is below; Azure (``clouds/azure/cloud.py``)
is the first implementation, wrapping ``nestnet.clouds.azure`` without changing it. What a second cloud
would have to provide (AWS, Google Cloud) is recorded in docs/decisions/0016-cloud-seam.md; a
test-only second cloud (tests/check/test_cloud_seam.py) runs ``check``'s model unchanged.

    plan (pure, in ``build_plan``):
        plan(fabric, subnets, hosts, vms, moved) -> the cloud's part of the Plan (a ``CloudPlan``)
    control plane (``nestnet <cloud> diff|apply|export``):
        client(plan, env)                    -> a client of the cloud's API (credentials from env)
        desired(plan)                        -> what the cloud must hold (pure)
        read(client, desired)                -> what it holds (a handful of reads)
        diff(client, desired, observed)      -> the changes, in the order apply makes them (pure)
        apply(client, desired, observed, changes) -> makes exactly those changes
        export(plan, fmt)                    -> the same as text for other tools (Terraform, a script)
    data plane (``check``, ``doctor``, ``lab``), in the model's one shape (``CloudState``):
        planned_state(plan)                  -> the data plane once ``apply`` is done (pure)
        observed_state(plan, client)         -> the data plane as the cloud's API reports it
        reserved(prefix)                     -> addresses of a subnet the cloud never delivers
        rules()                              -> the model's forwarding rules for it (a Model mixin)
    lab (``nestnet lab``):
        lab_fabric()                         -> the cloud's network in the lab's SDN namespace (``LabFabric``)
    faults (``check --fault``, ``lab fault``):
        fault_kinds()                        -> the cloud's own fault kinds, each with its what-if (``FaultKind``)
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Literal, Mapping, Protocol, TypeVar, cast, runtime_checkable

from ..errors import UsageError

if TYPE_CHECKING:
    import re

    from pydantic import BaseModel
    from rich.console import Console

    from ..advise import Advice, Needs
    from ..errors import Problem
    from ..faults import Fault
    from ..lab.topology import Topology
    from ..mobility import Move
    from ..model.engine import Model
    from ..model.state import CloudState, State
    from ..plan import VM, Host, Plan, Subnet
    from ..spec import Spec
    from ..validate import ResolvedSpec

# A cloud's own types: its API client, what its API must hold, what it holds, one change, what
# an apply reports; and its lab fabric's configuration. The core passes them through untouched.
ClientT = TypeVar("ClientT")
DesiredT = TypeVar("DesiredT")
ObservedT = TypeVar("ObservedT")
ChangeT = TypeVar("ChangeT")
ResultT = TypeVar("ResultT", covariant=True)
ConfigT = TypeVar("ConfigT", covariant=True)


@dataclass(frozen=True)
class ApplyOptions:
    """How far ``diff``/``apply`` may go beyond writing what the plan wants."""

    prune_foreign: bool = False  # also remove routes/addresses nestnet does not own
    adopt: bool = False  # take over a foreign resource that already is what the plan wants


@dataclass(frozen=True)
class FaultKind:
    """A fault kind a cloud contributes to ``check --fault`` and ``lab fault``: breaks the cloud's
    side as ``whatif`` says (the lab programs its fabric from the faulted ``CloudState``)."""

    target: str  # what KIND:TARGET names: "host" or "subnet"
    text: str  # what breaks, in words (``nestnet lab faults``)
    whatif: Callable[["State", str], "State"]  # pure: the state with the fault
    modes: tuple[str, ...] = ()  # the nested modes it means something in (() every mode); else refused


class CloudSpec(Protocol):
    """What the core reads of a spec's cloud section (``azure:``, ...)."""

    @property
    def private_dns_zone(self) -> str | None: ...  # nested VMs' records kept there; their search domain


class SpecRules(Protocol):
    """What validate.py needs to know of a cloud (``nestnet.clouds.<cloud>.validate.RULES``)."""

    title: str  # the cloud in words, in messages
    name_re: "re.Pattern[str]"  # its resource names (subnets, NICs, public IPs)
    forbidden_space: tuple[IPv4Network, ...]  # ranges its network refuses
    forbidden_why: str  # ... in words: "which <cloud> does not allow in a <network>'s address space"
    smallest_subnet: int  # the longest prefix a subnet may have
    reserved_why: str  # which addresses of a subnet it keeps, in words

    def reserved(self, prefix: IPv4Network) -> tuple[IPv4Address, ...]: ...
    def name_key(self, name: str) -> str: ...  # names that are one to the cloud (case)
    def address_space(self, spec: "Spec") -> list[tuple[str, str]]: ...  # the network's ranges: (spec path, text)
    def check_section(self, spec: "Spec", p: list["Problem"]) -> None: ...  # its section's own keys
    def check_blocks(self, spec: "Spec", p: list["Problem"]) -> None: ...  # what its modes need of the blocks
    def check_limits(self, spec: "Spec", p: list["Problem"]) -> None: ...  # routes per table, addresses per NIC
    def route_limit(self, spec: "Spec") -> tuple[int, str]: ...  # routes nestnet may write, and the key saying so
    # why a host block in the lower half of a NIC subnet is a risk in ``mode`` (how the cloud hands
    # out dynamic addresses, and what to do), or None when the mode keeps the block's addresses safe
    def low_block_why(self, mode: str) -> str | None: ...


class CloudPlan(Protocol):
    """What the core reads of a cloud's part of the Plan (``plan.cloud``; ``plan.<cloud name>`` too)."""

    @property
    def cloud_name(self) -> str: ...  # the cloud's name: the key of its part in the plan's JSON

    @property
    def resolver(self) -> IPv4Address: ...  # the cloud's DNS resolver, asked by the hosts' forwarders

    @property
    def resolver_name(self) -> str: ...  # its name in words (comments in generated files)

    def to_dict(self) -> dict[str, object]: ...  # JSON-ready

    @property
    def resolvers(self) -> tuple[IPv4Address, ...]: ...  # every address its DNS answers on, ``resolver`` first

    # what its DNS calls a VM of the network without any zone: the domain (for fabric ``lab``) and
    # the name of the VM ``name`` with primary address ``ip`` (Azure: ``<name>.<domain>``; EC2: its IP name)
    def internal_domain(self, lab: str) -> str: ...
    def internal_name(self, lab: str, name: str, ip: IPv4Address) -> str: ...


class LabFabric(Protocol[ConfigT]):
    """The cloud's network emulated in the lab's SDN namespace (nn-<lab>.fabric): built once, then
    programmed from a ``CloudState`` idempotently (observe, diff, change what differs)."""

    def build(self, topo: "Topology") -> None: ...  # inside the SDN namespace: ports, gateways, static rules
    def program_ns(self, topo: "Topology", state: "CloudState") -> object: ...  # from outside: the changes made
    def replug(self, topo: "Topology", nodes: list[str], state: "CloudState") -> None: ...  # ports of rebooted hosts
    def observe(self) -> ConfigT: ...  # inside the namespace: its dynamic configuration
    def desired(self, topo: "Topology", state: "CloudState") -> ConfigT: ...  # what ``state`` makes of it (pure)
    def with_faults(self, plan: "Plan", faults: Iterable["Fault"]) -> "CloudState": ...  # the planned state, faulted


@runtime_checkable
class Cloud(Protocol[ClientT, DesiredT, ObservedT, ChangeT, ResultT]):
    name: str  # as in `nestnet <name> apply`
    export_formats: tuple[str, ...]

    # plan
    def plan(
        self, fabric: "ResolvedSpec", subnets: Mapping[str, "Subnet"], hosts: Mapping[str, "Host"],
        vms: Mapping[str, "VM"], moved: tuple["Move", ...],
    ) -> CloudPlan: ...

    # control plane
    def client(self, plan: "Plan", env: Mapping[str, str] | None = None) -> ClientT: ...
    def desired(self, plan: "Plan") -> DesiredT: ...
    def read(self, client: ClientT, desired: DesiredT) -> ObservedT: ...
    def diff(self, client: ClientT, desired: DesiredT, observed: ObservedT,
             options: ApplyOptions = ApplyOptions()) -> list[ChangeT]: ...
    def apply(self, client: ClientT, desired: DesiredT, observed: ObservedT, changes: list[ChangeT],
              options: ApplyOptions = ApplyOptions()) -> ResultT: ...
    def export(self, plan: "Plan", fmt: str) -> str: ...

    # data plane
    def planned_state(self, plan: "Plan") -> "CloudState": ...
    def observed_state(self, plan: "Plan", client: ClientT) -> "CloudState": ...
    def reserved(self, prefix: IPv4Network) -> tuple[IPv4Address, ...]: ...

    # the model's forwarding rules: a mixin of nestnet.model.engine.Model (its ``_cloud_in``,
    # ``_internet_out``, CLOUD and CLOUD_TITLE), mixed in by ``Model(state)`` for this cloud's state
    def rules(self) -> type["Model"]: ...

    # the lab
    def lab_fabric(self) -> LabFabric[object]: ...

    # faults: the cloud's own kinds (its route table, NICs, ...), listed before the host kinds
    def fault_kinds(self) -> Mapping[str, FaultKind]: ...


# A registered cloud, its own types unknown to the caller (each is the cloud's to interpret).
AnyCloud = Cloud[object, object, object, object, object]

_CLOUDS: dict[str, AnyCloud] = {}
# The cloud packages under nestnet.clouds, each registering itself from its ``cloud`` module when
# first asked for (the only place outside the packages that names them).
PACKAGES = ("azure", "aws")
DEFAULT = PACKAGES[0]


def register(
    cloud: Cloud[ClientT, DesiredT, ObservedT, ChangeT, ResultT],
) -> Cloud[ClientT, DesiredT, ObservedT, ChangeT, ResultT]:
    """Make ``cloud`` known by its name (a second registration of a name replaces the first)."""
    _CLOUDS[cloud.name] = cast(AnyCloud, cloud)  # whoever gets it by name passes its types through
    return cloud


def get(name: str = DEFAULT) -> AnyCloud:
    if name in PACKAGES and name not in _CLOUDS and _ready(name):
        import_module(f"{__name__}.{name}.cloud")  # registers itself
    try:
        return _CLOUDS[name]
    except KeyError:
        raise UsageError(f"cloud {name!r} is not known (known: {', '.join(sorted(_CLOUDS)) or DEFAULT})") from None


def of(plan: "Plan") -> AnyCloud:
    """The cloud ``plan`` is for."""
    return get(plan.cloud.cloud_name)


def refuse_other(plan: "Plan", name: str) -> None:
    """`nestnet <name> ...` takes only a spec for cloud ``name``: another cloud's is one line, exit 2
    (before, the command died reading ``plan.<name>``)."""
    if plan.cloud.cloud_name != name:
        t = title(name)
        raise UsageError(f"{plan.source or plan.name}: not a{'n' if t[0] in 'AEIOU' else ''} {t} spec "
                         f"(it has no {name}: section)")


def load_own(spec: str | Path, name: str, *, write: bool = False) -> "Plan":
    """The plan of ``spec`` for `nestnet <name> ...`: refused before anything is written (a lock
    included) when the spec is another cloud's."""
    from ..plan import load

    loaded = load(spec, write=False)
    refuse_other(loaded.plan, name)
    return load(spec, write=True).plan if write and loaded.lock_changed else loaded.plan  # the lock to record


def names() -> tuple[str, ...]:
    get()  # the default is always there
    return tuple(sorted(_CLOUDS))


def cloud_of(spec: object) -> str:
    """The cloud a spec is for: the name of its cloud section (``azure:``, ...)."""
    return next((n for n in PACKAGES if getattr(spec, n, None) is not None), DEFAULT)


def section(spec: object) -> CloudSpec:
    """The spec's cloud section."""
    sec: CloudSpec = getattr(spec, cloud_of(spec))
    return sec


def sections() -> dict[str, type["BaseModel"]]:
    """Each cloud package's spec section model (``nestnet.clouds.<cloud>.spec.SECTION``), by the
    section's key (the cloud's name)."""
    return {n: import_module(f"{__name__}.{n}.spec").SECTION for n in PACKAGES if _ready(n)}


def title(name: str = DEFAULT) -> str:
    """The cloud's name in words ("Azure"), from its package (cheap: no SDK, no plan)."""
    title_: str = import_module(f"{__name__}.{name}").TITLE
    return title_


def commands() -> dict[str, tuple[str, str]]:
    """Each cloud package's command group, ``nestnet <cloud> ...``: name -> ("module:attribute",
    its one-line help), for the CLI's lazy command table."""
    return {n: (f"{__name__}.{n}.cli:{n}", import_module(f"{__name__}.{n}").CLI_HELP) for n in PACKAGES if _has(f"{n}.cli")}


def _ready(name: str) -> bool:
    """Whether a cloud package takes specs yet: its section, checks and Cloud are all there (until
    then its section's key is an unknown key, as for any other)."""
    return all(_has(f"{name}.{part}") for part in ("spec", "validate", "cloud"))


def _has(module: str) -> bool:
    """Whether the cloud package has this part yet (a package grows part by part)."""
    from importlib.util import find_spec

    return find_spec(f"{__name__}.{module}") is not None


def spec_rules(name: str = DEFAULT) -> SpecRules:
    """What the spec checks need to know of cloud ``name`` (its package's ``validate.RULES``)."""
    rules: SpecRules = import_module(f"{__name__}.{name}.validate").RULES
    return rules


def top_commands(name: str = DEFAULT) -> dict[str, tuple[str, str]]:
    """The top-level commands cloud ``name`` adds beside its group (``nestnet import``, ``nestnet
    rollout`` for the default cloud): name -> ("module:attribute", its one-line help)."""
    top: dict[str, tuple[str, str]] = getattr(import_module(f"{__name__}.{name}"), "TOP_COMMANDS", {})
    return top


# --- the cloud's API in the lab (``lab up --<cloud> api``) -----------------------------------------

LabSource = Literal["plan", "api"]  # where a lab's cloud side comes from
LAB_SOURCES: tuple[LabSource, ...] = ("plan", "api")


class LabApi(Protocol):
    """The cloud's API emulated inside the lab's internet namespace (``lab up --<cloud> api``): the
    cloud's side starts empty, as Terraform leaves it, and ``nestnet <cloud> apply`` run on a lab
    host programs the fabric through it. It keeps its files under ``lab_dir``, the lab's state
    directory (``lab down`` removes it and ends the emulator with the namespace's processes)."""

    api: str  # the API in words: "the ... API"
    emulator: str  # its emulator in words, in notes and errors
    up_help: str  # the help of ``lab up --<cloud>``
    migrate_help: str  # the help of ``lab migrate --<cloud>``

    def start(self, plan: "Plan", topo: "Topology", lab_dir: Path, propagation_delay: float = 0.0) -> None: ...
    def endpoint(self, lab_dir: Path) -> str | None: ...  # its URL once it listens, else None
    def env(self, plan: "Plan", lab_dir: Path) -> dict[str, str]: ...  # what a lab host needs to reach it
    def build_by_hand(self, plan: "Plan", env: Mapping[str, str]) -> None: ...  # in a lab host: the seed's manual procedure
    def import_args(self, plan: "Plan") -> list[str]: ...  # `nestnet import`'s options finding the plan's fabric there


def lab_api(name: str = DEFAULT) -> LabApi | None:
    """Cloud ``name``'s API in the lab (its package's ``labapi.API``), None when it has none."""
    if not _has(f"{name}.labapi"):
        return None
    api: LabApi = import_module(f"{__name__}.{name}.labapi").API
    return api


def lab_apis() -> dict[str, LabApi]:
    """Each cloud package's API in the lab, by the cloud's name (``lab up --<name> api``)."""
    return {n: api for n in PACKAGES if (api := lab_api(n)) is not None}


def error_class(name: str) -> type[Exception]:
    """A cloud's own error class by name, from the ``errors`` module of the package that has it."""
    for n in PACKAGES:
        if _has(f"{n}.errors"):
            found: type[Exception] | None = getattr(import_module(f"{__name__}.{n}.errors"), name, None)
            if found is not None:
                return found
    raise AttributeError(f"module 'nestnet.errors' has no attribute {name!r}")


def cloud_variables() -> tuple[tuple[str, str, str], ...]:
    """Each cloud package's environment variables (``ENV``): name, the name of its parser in
    nestnet.env, its help."""
    return tuple(v for n in PACKAGES for v in getattr(import_module(f"{__name__}.{n}"), "ENV", ()))


@runtime_checkable
class CloudViews(Protocol):
    """What the core's commands show of a cloud beside the model, in its own words: its package's
    ``views`` module (``views(name)`` says when it has none)."""

    def show_plan(self, plan: "Plan", out: "Console") -> None: ...  # `nestnet plan`: its part, after the hosts
    def exception_route(self, plan: "Plan", ip: IPv4Address) -> str | None: ...  # the route a /32 exception takes
    # `doctor --<cloud>`: what was read (JSON: lists of names), that in one line, where it differs
    # from the plan (each with its fix), and what is assumed as planned when it is not read
    def read_summary(self, got: "CloudState") -> dict[str, list[str]]: ...
    def read_line(self, summary: Mapping[str, list[str]]) -> str: ...
    def findings(self, want: "CloudState", got: "CloudState") -> list[str]: ...
    def assumed(self) -> str: ...


def views(name: str = DEFAULT) -> CloudViews:
    """Cloud ``name``'s words for the core's commands (the module's functions are the protocol's)."""
    get(name)  # a known cloud, or the one-line error naming the known ones
    if name not in PACKAGES:
        raise UsageError(f"cloud {name!r} cannot show its part of a plan")
    return cast(CloudViews, import_module(f"{__name__}.{name}.views"))


@dataclass(frozen=True)
class ReadOption:
    """A cloud's flag of ``check`` and ``doctor`` that reads its API instead of assuming the plan
    (``--azure``), from its package's ``READ``: the flag and what it reads, how, in words."""

    cloud: str
    flag: str
    reads: str  # after "Read " / "Also read " in the help


@dataclass(frozen=True)
class FileOption:
    """A cloud's offline input to ``check`` (``--nsgs FILE``), from its package's ``CHECK_FILES``:
    its flag, the parameter it fills, help, and "module:function" putting the file on the model's
    state (``(state, plan, path) -> state``; a bad file is a UsageError)."""

    cloud: str
    flag: str
    dest: str
    metavar: str
    help: str
    loader: str


def read_options() -> tuple[ReadOption, ...]:
    return tuple(ReadOption(n, *getattr(import_module(f"{__name__}.{n}"), "READ")) for n in PACKAGES
                 if hasattr(import_module(f"{__name__}.{n}"), "READ"))


def file_options() -> tuple[FileOption, ...]:
    return tuple(FileOption(n, *o) for n in PACKAGES for o in getattr(import_module(f"{__name__}.{n}"), "CHECK_FILES", ()))


# --- the cloud drawn (``nestnet diagram``, ``nestnet report``) --------------------------------------


@dataclass(frozen=True)
class Drawn:
    """A cloud's element of the diagram: its lines (a node's text, a link's label or a subnet box's
    words after its name and prefix), what is not as planned there in words (drawn amber), and for a
    subnet whether the route table's dashed link reaches it."""

    lines: tuple[str, ...]
    off: tuple[str, ...] = ()
    linked: bool = False


class CloudDrawing(Protocol):
    """How the diagram and the report draw a cloud's part of the fabric, in its words: its package's
    ``viz`` module (``drawing(name)``). The core draws the rest (hosts, bridges, VMs, endpoints, the
    internet, the verdicts); ``state`` is the faulted one, drawn as observed beside the plan."""

    network_id: str  # the id of its network's box in the pictures
    exception_words: str  # the legend's words for a /32 exception
    host_heads: tuple[str, ...]  # the report's columns of a host's interface, after its subnet
    subnet_heads: tuple[str, ...]  # the report's columns of a subnet, after its gateway

    def network(self, plan: "Plan") -> str: ...  # its network in words, before its ranges
    def router(self, plan: "Plan") -> tuple[str, ...]: ...  # the node routing between subnets
    def egress(self, plan: "Plan") -> tuple[str, ...]: ...  # the label of its way to the internet
    def route_table(self, plan: "Plan", state: "State") -> Drawn | None: ...  # its routes' node, if drawn
    def subnet(self, plan: "Plan", state: "State", subnet: "Subnet") -> Drawn: ...
    def nic(self, plan: "Plan", state: "State", host: "Host") -> Drawn: ...  # the link to a drawn host
    def nics(self, plan: "Plan", state: "State", hosts: tuple["Host", ...]) -> Drawn: ...  # to "+N more hosts"
    def host_cells(self, plan: "Plan", state: "State", host: "Host") -> tuple[str, ...]: ...  # text
    def subnet_cells(self, plan: "Plan", state: "State", subnet: "Subnet") -> tuple[str, ...]: ...  # text
    def tables_html(self, plan: "Plan", state: "State") -> str: ...  # its own tables in the report (HTML)


def drawing(name: str = DEFAULT) -> CloudDrawing:
    """Cloud ``name``'s part of the diagram and the report (the module's functions are the protocol's)."""
    get(name)  # a known cloud, or the one-line error naming the known ones
    if name not in PACKAGES or not _has(f"{name}.viz"):
        raise UsageError(f"cloud {name!r} cannot draw its part of a plan")
    return cast(CloudDrawing, import_module(f"{__name__}.{name}.viz"))


# --- `nestnet advise`: each cloud's modes and limits -----------------------------------------------


@dataclass(frozen=True)
class AdviseOption:
    """A cloud's own option of ``nestnet advise`` (``--instance-type``): its flag, the key its value
    has in ``Advisor.advise``'s options, the metavar and the help."""

    flag: str
    dest: str
    metavar: str
    help: str


class Advisor(Protocol):
    """What ``nestnet advise`` knows of a cloud: its package's ``advise`` module, every finding a
    rule with its source (docs/decisions/0014)."""

    MODES: tuple[str, ...]  # the cloud's modes, in the order shown
    ROUTES_DEFAULT: int  # routes per route table when --max-routes is not given
    ROUTES_MAX: int  # the most a route table can be raised to
    ROUTES_HELP: str  # those in words, the cloud named: --max-routes's help when it is the default
    SUMMARY: str  # what the advice weighs, in words: the command's help for the default cloud
    OPTIONS: tuple[AdviseOption, ...]  # its own options

    # the advice, the needs' route limit filled in (None: ROUTES_DEFAULT); ``options``: dest -> value
    def advise(self, needs: "Needs", options: Mapping[str, str | None]) -> "Advice": ...


def advisor(name: str = DEFAULT) -> Advisor:
    """Cloud ``name``'s rules for ``nestnet advise`` (its package's ``advise`` module)."""
    if name not in PACKAGES or not _has(f"{name}.advise"):
        raise UsageError(f"cloud {name!r} has no advice (known: {', '.join(advisors())})")
    return cast(Advisor, import_module(f"{__name__}.{name}.advise"))


def advisors() -> tuple[str, ...]:
    """The clouds ``nestnet advise`` knows, the default first."""
    return tuple(n for n in PACKAGES if _has(f"{n}.advise"))
