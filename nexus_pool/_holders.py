"""Who holds a pool's slots: ``pool.holders()``, acquire sites, exhaustion messages, leak
warnings.

Every acquisition records when it happened (a coarse clock in C) and on which thread;
where it happened (the acquire site: file, line, function of the caller's frame) is
recorded as ``track`` says:

* ``"off"``: never;
* ``"sampled"`` (the default): about one acquisition in :data:`SAMPLE_PERIOD` (16), at
  random intervals (so that a periodic pattern of call sites cannot hide one of them);
* ``"every"``: every acquisition (the ``debug`` backend always records).

``Pool(..., track=...)`` chooses, else the environment variable ``NEXUS_POOL_TRACK``.
``warn_after=seconds`` (else ``NEXUS_POOL_WARN_AFTER``) makes a guard held longer than that
produce one :class:`~nexus_pool.PoolLeakWarning`, checked when the pool is acquired from
and when it runs dry: no timer thread, nothing at all when unset.

This module imports nothing of the package but the errors and the records: both facades, the local
pools and the shared pool use it, and the C modules import it.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import warnings
from collections import Counter
from collections.abc import Container, Iterable, Sequence
from types import FrameType
from typing import Final, Protocol

from ._errors import PoolExhausted, PoolLeakWarning
from ._records import AcquireSite, Holder, HowAcquired

__all__ = [
    "INTERNAL_PREFIX",
    "SAMPLE_PERIOD",
    "TRACK_ENV_VAR",
    "TRACK_MODES",
    "WARN_AFTER_ENV_VAR",
    "caller_site",
    "check_track",
    "check_warn_after",
    "exhausted",
    "make_holder",
    "thread_names",
    "warn_crossed",
    "warn_held_too_long",
]

TRACK_ENV_VAR: Final = "NEXUS_POOL_TRACK"
WARN_AFTER_ENV_VAR: Final = "NEXUS_POOL_WARN_AFTER"
TRACK_MODES: Final = ("off", "sampled", "every")

SAMPLE_PERIOD: Final = 16
"""``track="sampled"`` records the site of about one acquisition in this many. Recording one
costs about 12 ns on the native facade (the caller's frame, its code object and the
instruction's offset; the line is looked up only when holders() asks), so one in 16 costs
about 1% of its fastest acquire-and-release cycle (the documentation's "Statistics and
holders" guide has the measurement)."""

INTERNAL_PREFIX: Final = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_")
"""Frames of files whose path starts so (the package's private modules, ``_*.py`` and
``_backends/``) are nexus_pool's own: an acquire site is the first frame outside them (the
C modules skip them too). The demo and the benchmark are programs like any user's."""


def thread_names() -> dict[int, str]:
    """The names of the live threads, by ident."""
    return {thread.ident: thread.name for thread in threading.enumerate() if thread.ident is not None}


def make_holder(
    slot: int | None,
    seconds: float,
    thread_id: int,
    names: dict[int, str],
    site: tuple[str, int, str] | None,
    how: HowAcquired,
) -> Holder:
    return Holder(
        slot,
        max(seconds, 0.0),
        thread_id,
        names.get(thread_id, "(ended)"),
        None if site is None else AcquireSite(*site),
        how,
    )


def caller_site() -> tuple[str, int, str] | None:
    """The innermost frame outside nexus_pool: (file, line, function) of the user's line."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(INTERNAL_PREFIX):
        frame = frame.f_back
    if frame is None:
        return None
    return frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name


def check_track(track: object) -> int:
    """``track`` (``None``: the environment, else ``"sampled"``) as a sampling period:
    0 for ``"off"``, 1 for ``"every"``, :data:`SAMPLE_PERIOD` for ``"sampled"``."""
    source = ""
    if track is None:
        track = os.environ.get(TRACK_ENV_VAR, "").strip().lower() or "sampled"
        source = f" (read from the environment variable {TRACK_ENV_VAR})"
    if not isinstance(track, str):
        raise TypeError(f"track must be one of {', '.join(map(repr, TRACK_MODES))} or None, not {type(track).__name__}")
    if track not in TRACK_MODES:
        raise ValueError(f"track must be one of {', '.join(map(repr, TRACK_MODES))}, got {track!r}{source}")
    return {"off": 0, "every": 1, "sampled": SAMPLE_PERIOD}[track]


def check_warn_after(warn_after: object) -> float:
    """``warn_after`` in seconds (``None``: the environment, else none); 0.0 for none."""
    source = ""
    if warn_after is None:
        text = os.environ.get(WARN_AFTER_ENV_VAR, "").strip()
        if not text:
            return 0.0
        source = f" (read from the environment variable {WARN_AFTER_ENV_VAR})"
        try:
            warn_after = float(text)
        except ValueError:
            raise ValueError(f"warn_after must be a number of seconds, got {text!r}{source}") from None
    if isinstance(warn_after, bool) or not isinstance(warn_after, (int, float)):
        raise TypeError(f"warn_after must be a number of seconds or None, not {type(warn_after).__name__}")
    seconds = float(warn_after)
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"warn_after must be a finite number of seconds > 0, got {warn_after!r}{source}")
    return seconds


def describe(holders: Sequence[Holder]) -> str:
    """``"oldest held 12.4 s; 6 acquired at parser.py:88 in read_frames"``: what the
    exhaustion messages add (empty when nothing is known)."""
    if not holders:
        return ""
    parts = [f"oldest held {max(holder.seconds for holder in holders):.1f} s"]
    sites = Counter(holder.site for holder in holders if holder.site is not None)
    common = [f"{count} acquired at {site}" for site, count in sites.most_common(3)]
    unknown = sum(holder.site is None for holder in holders)
    if common:
        parts.append(", ".join(common) + (f" ({unknown} more where not recorded)" if unknown else ""))
    return "; ".join(parts)


def exhausted(
    capacity: int, holders: Sequence[Holder], waited: object = None, *, what: str = "slots", note: str = ""
) -> PoolExhausted:
    """The :class:`~nexus_pool.PoolExhausted` a pool raises: all its slots are out, who holds them,
    and (if it waited) for how long. ``waited`` is the timeout as the caller gave it;
    ``note`` ends the message."""
    message = f"all {capacity} {what} are in use"
    if waited is not None:
        message += f" and none came back within {waited} s"
    described = describe(holders)
    if described:
        message += f"; {described}"
    if note:
        message += f"; {note}"
    error = PoolExhausted(message)
    error.holders = list(holders)
    return error


def warn_held_too_long(holders: Iterable[Holder], threshold: float, pool: object) -> None:
    """One :class:`~nexus_pool.PoolLeakWarning` per holder in ``holders`` (held longer than ``threshold``).

    Called by a pool's acquire path; the warning points at the caller's line.
    """
    level = 1  # the caller's line: the first frame outside nexus_pool
    frame: FrameType | None = sys._getframe(0)
    while frame is not None and frame.f_code.co_filename.startswith(INTERNAL_PREFIX):
        frame = frame.f_back
        level += 1
    for holder in holders:
        where = f", acquired at {holder.site}" if holder.site is not None else ""
        warnings.warn(
            f"a guard of {pool!r} has been held for {holder.seconds:.1f} s (warn_after={threshold:g} s): "
            f"slot {holder.slot}, by thread {holder.thread_name!r} ({holder.thread_id}){where}",
            PoolLeakWarning,
            stacklevel=level,
        )


def warn_crossed(pool: _HasHolders, threshold: float, slots: Container[int | None]) -> None:
    """The C facade's leak check found ``slots`` held past ``threshold``: warn about them."""
    warn_held_too_long([holder for holder in pool.holders() if holder.slot in slots], threshold, pool)


class _HasHolders(Protocol):
    def holders(self) -> list[Holder]: ...
