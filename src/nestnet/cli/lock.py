"""``nestnet lock merge``: repair a lock file with git conflict markers by merging both sides."""

from __future__ import annotations

import click

from .output import UserPath, emit_json, json_option, note


@click.group()
def lock() -> None:
    """The lock file beside the spec (the blocks and VM addresses nestnet allocated).

    Never delete it: it holds the addresses running VMs use, and a new allocation renumbers them."""


@lock.command("merge")
@click.argument("files", nargs=-1, required=True, type=UserPath("in"), metavar="SPEC | BASE OURS THEIRS [PATH]")
@json_option
def merge(files: tuple[str, ...], as_json: bool) -> None:
    """Merge the two sides of a git conflict in SPEC's lock file and write the result; or, with
    three files, act as git's merge driver (%O %A %B: the result goes to OURS; %P, the lock's
    path, names it in messages).

    Refused (exit 2, nothing merged) when the sides give one address to two VMs, one block to two
    hosts, or one entry two different values: each clash names both claims. Set up the driver
    once per clone (see the README):

    \b
      echo '*.lock merge=nestnet-lock' >> .gitattributes
      git config merge.nestnet-lock.driver 'nestnet lock merge %O %A %B %P'
    """
    from ..errors import UsageError
    from ..store import merge_lock, merge_lock_files

    if len(files) == 1:
        done = merge_lock(files[0])
        what = files[0]
    elif len(files) in (3, 4):
        what = files[3] if len(files) == 4 else files[1]
        done = merge_lock_files(*files[:3], display=what)
    else:
        raise UsageError(f"lock merge takes SPEC, or BASE OURS THEIRS [PATH] (git's %O %A %B %P), not {len(files)} files")
    lk = done.lock
    if as_json:
        emit_json({"ok": True, "merged": done.changed, "blocks": {k: str(v) for k, v in lk.blocks.items()},
                   "vms": {k: str(v) for k, v in lk.vms.items()}})
        return
    if not done.changed:
        note(f"{what}: its lock has no conflict markers; nothing to merge")
        return
    note(f"merged the lock of {what} from {done.sides[0]} and {done.sides[1]}: "
         f"{len(lk.blocks)} blocks, {len(lk.vms)} VMs")
