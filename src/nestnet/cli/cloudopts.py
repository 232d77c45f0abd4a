"""The options each cloud package adds to the core's commands (``check``, ``doctor``): its "read
the cloud's API" flag and its offline inputs, declared by the package (``clouds.read_options``,
``clouds.file_options``), so the core's commands name no cloud."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping, TypeVar

import click

from .. import clouds
from .output import UserPath

if TYPE_CHECKING:
    from ..errors import UsageError
    from ..model.state import State
    from ..plan import Plan

F = TypeVar("F", bound=Callable[..., object])


def read_flags(verb: str) -> Callable[[F], F]:
    """One flag per cloud (``--<cloud>``), all filling ``read_cloud`` with the cloud's name."""

    def deco(f: F) -> F:
        for o in reversed(clouds.read_options()):  # click shows options in the order they were written
            f = click.option(o.flag, "read_cloud", flag_value=o.cloud, default=None, help=f"{verb} {o.reads}")(f)
        return f

    return deco


def file_flags(f: F) -> F:
    """Each cloud's offline inputs of ``check`` (``--nsgs FILE``), each filling its own parameter."""
    for o in reversed(clouds.file_options()):
        f = click.option(o.flag, o.dest, metavar=o.metavar, type=UserPath("in"), help=o.help)(f)
    return f


def read_cloud(plan: Plan, flag_cloud: str | None) -> clouds.AnyCloud | None:
    """The cloud to read when its flag was given: the plan's own (another cloud's flag is bad input)."""
    if flag_cloud is None:
        return None
    cloud = clouds.of(plan)
    if cloud.name != flag_cloud:
        raise _mismatch(plan, flag_cloud, cloud.name)
    return cloud


def with_files(state: State, plan: Plan, given: Mapping[str, str | None]) -> State:
    """``state`` with each cloud input that was given put on it, in the order the options are declared."""
    from importlib import import_module

    for o in clouds.file_options():
        path = given.get(o.dest)
        if not path:
            continue
        if o.cloud != plan.cloud.cloud_name:
            raise _mismatch(plan, o.cloud, plan.cloud.cloud_name, o.flag)
        module, _, name = o.loader.partition(":")
        loader: Callable[[State, Plan, str], State] = getattr(import_module(module), name)
        state = loader(state, plan, path)
    return state


def _mismatch(plan: Plan, asked: str, has: str, flag: str | None = None) -> UsageError:
    from ..errors import UsageError

    flag = flag or next((o.flag for o in clouds.read_options() if o.cloud == asked), f"--{asked}")
    source = plan.source or plan.name
    return UsageError(f"{flag}: {source} is a spec for {clouds.title(has)} ({has}:), not for {clouds.title(asked)}")
