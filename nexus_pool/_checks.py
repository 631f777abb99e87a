"""The checks of the arguments every pool takes, each failing with an error that names the
argument. Pure functions importing nothing of the package: the public classes, both
facades, the local and shared pools and the C modules call them.
"""

from __future__ import annotations

import math
import operator
from typing import Final

__all__ = ["LONGEST_WAIT", "check_callables", "check_capacity", "check_timeout", "not_made_by"]

LONGEST_WAIT: Final = 365 * 24 * 3600.0
"""Timeouts longer than a year are treated as no limit (``None``): the clock arithmetic
stays exact, and nobody can tell the difference."""


def check_capacity(capacity: object) -> int:
    """``capacity`` as an int >= 1; like ``range()``, any ``__index__`` integer but bool."""
    if isinstance(capacity, bool):
        raise TypeError("capacity must be an int, not bool")
    try:
        number = operator.index(capacity)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"capacity must be an int, not {type(capacity).__name__}") from None
    if number < 1:
        raise ValueError(f"capacity must be >= 1, got {number}")
    return number


def check_callables(factory: object, reset: object) -> None:
    """``factory`` callable and ``reset`` callable or None, else a TypeError naming it."""
    if not callable(factory):
        raise TypeError(f"factory must be callable, not {type(factory).__name__}")
    if reset is not None and not callable(reset):
        raise TypeError(f"reset must be callable or None, not {type(reset).__name__}")


def check_timeout(timeout: object) -> float | None:
    """``timeout`` in seconds; ``None`` for no limit, which a huge or infinite timeout also means."""
    if timeout is None:
        return None
    if isinstance(timeout, bool):
        raise TypeError("timeout must be a number of seconds or None, not bool")
    if not isinstance(timeout, (int, float)):
        try:
            timeout = operator.index(timeout)  # type: ignore[arg-type]  # numpy and friends
        except TypeError:
            raise TypeError(f"timeout must be a number of seconds or None, not {type(timeout).__name__}") from None
    try:
        seconds = float(timeout)
    except OverflowError:  # an int too large for a float: longer than any wait can be
        seconds = math.inf
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"timeout must be >= 0 seconds or None, got {timeout!r}")
    return None if seconds > LONGEST_WAIT else seconds


def not_made_by(obj: object, maker: str) -> TypeError:
    """The error of a public base class's method called on an object that ``maker`` did not
    make (``object.__new__(Pool)``): the implementations override every such method."""
    return TypeError(f"this {type(obj).__name__} was not made by {maker}: it holds nothing")
