"""``python -m nexus_pool.shared``: the operators' view of shared-memory blocks, as ``ipcs``.

* ``list``: every block this package made (``/dev/shm/nxp-*``): name, producer pid and
  whether it runs, capacity, buffer size, buffers in use, the oldest holder's age;
* ``inspect NAME``: one block's holders: slot, held or in transit, pid, alive, age;
* ``remove-orphans``: remove the blocks whose producer has died.

``list`` and ``inspect`` map each block read-only and only read it, so they are safe on
blocks in use; a name that is not one of this package's blocks is a clear error (exit
status 2), not a guess.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from ._errors import SharedBlockCorrupted
from ._shared import remove_orphans, shared_unavailable
from ._shared_base import BLOCK_PREFIX, pid_alive, shared_holders

if TYPE_CHECKING:
    from ._shared_native import SharedBufferPool as Block

__all__ = ["main"]


def _blocks() -> list[str]:
    try:
        entries = os.listdir("/dev/shm")
    except FileNotFoundError:
        return []
    return sorted(entry for entry in entries if entry.startswith(BLOCK_PREFIX))


def _table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out)


def _block_type() -> type[Block]:
    """The compiled Block type (imported once ``main`` knows it loads: the report of why
    not is the command's to make)."""
    from ._shared_native import SharedBufferPool  # the compiled module: known to load by now

    return SharedBufferPool


def _list(out: TextIO) -> int:
    rows = [["NAME", "PRODUCER", "ALIVE", "CAPACITY", "SIZE", "IN USE", "OLDEST HOLDER"]]
    for name in _blocks():
        try:
            block = _block_type()._inspect(name)
            holders = shared_holders(block)
        except (OSError, SharedBlockCorrupted) as error:
            rows.append([name, "?", "?", "?", "?", "?", f"unreadable: {error}"])
            continue
        oldest = max(holders, key=lambda holder: holder.seconds, default=None)
        rows.append(
            [
                name,
                str(block.creator),
                "yes" if pid_alive(block.creator) else "no",
                str(block.capacity),
                str(block.size),
                str(len(holders)),
                "-" if oldest is None else f"{oldest.seconds:.1f} s (slot {oldest.slot}, pid {oldest.pid})",
            ]
        )
    if len(rows) == 1:
        print("no nexus_pool shared blocks", file=out)
        return 0
    _table(rows, out)
    return 0


def _inspect(name: str, out: TextIO, err: TextIO) -> int:
    if not name.startswith(BLOCK_PREFIX) or "/" in name:
        print(
            f"nexus_pool.shared: {name!r} is not a nexus_pool block name (they start with {BLOCK_PREFIX!r})", file=err
        )
        return 2
    try:
        block = _block_type()._inspect(name)
        holders = shared_holders(block)
    except FileNotFoundError:
        print(f"nexus_pool.shared: no shared block {name!r}", file=err)
        return 2
    except SharedBlockCorrupted as error:
        print(f"nexus_pool.shared: {error}", file=err)
        return 2
    alive = "alive" if pid_alive(block.creator) else "dead"
    print(
        f"{name}: {block.capacity} buffers of {block.size} bytes, producer pid {block.creator} ({alive}), "
        f"{len(holders)} in use",
        file=out,
    )
    if holders:
        rows = [["SLOT", "STATE", "PID", "ALIVE", "FOR"]]
        rows += [
            [
                str(holder.slot),
                holder.state,
                str(holder.pid),
                "yes" if holder.alive else "no",
                f"{holder.seconds:.1f} s",
            ]
            for holder in holders
        ]
        _table(rows, out)
    return 0


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nexus_pool.shared",
        description="nexus_pool's shared-memory blocks on this machine (Linux: /dev/shm/nxp-*).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every block: producer, capacity, size, in use, oldest holder (read-only)")
    inspect = commands.add_parser("inspect", help="one block's holders (read-only)")
    inspect.add_argument("name")
    commands.add_parser("remove-orphans", help="remove the blocks whose producer has died")
    arguments = parser.parse_args(argv)
    why = shared_unavailable()
    if why:
        print(f"nexus_pool.shared: {why}", file=err)
        return 2
    if arguments.command == "list":
        return _list(out)
    if arguments.command == "inspect":
        return _inspect(arguments.name, out, err)
    removed = remove_orphans()
    for name in removed:
        print(f"removed {name}", file=out)
    if not removed:
        print("no orphaned blocks", file=out)
    return 0
