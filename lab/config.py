"""Field checks for the experiments' config dataclasses (validated, frozen, one docstring per field).

Each check raises ``ValueError`` naming the field and the bad value; configs call them in ``__post_init__`` so
an invalid config cannot exist. Meaningless numbers are refused rather than clamped: non-finite floats, strings
where numbers belong, booleans where integers belong.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

__all__ = ["check_int", "check_float", "check_choice", "check_bool", "check_int_tuple"]


def check_int(name: str, v: Any, low: int = 1) -> int:
    """An ``int`` (not a bool) ``>= low``."""
    import numpy as np

    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < low:
        kind = "positive" if low == 1 else "non-negative" if low == 0 else f">= {low}"
        raise ValueError(f"{name} must be a {kind} integer; got {v!r}")
    return int(v)


def check_float(name: str, v: Any, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number in the given range (open or closed at each end)."""
    if isinstance(v, (bool, str)) or not hasattr(v, "__float__"):
        raise ValueError(f"{name} must be a number; got {v!r}")
    x = float(v)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite; got {v!r}")
    bad = (low is not None and (x < low or (low_open and x == low))) or \
          (high is not None and (x > high or (high_open and x == high)))
    if bad:
        lo = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
        raise ValueError(f"{name} must lie in {lo}, {hi}; got {v!r}")
    return x


def check_choice(name: str, v: Any, options: Iterable[str]) -> str:
    options = tuple(options)
    if v not in options:
        raise ValueError(f"unknown {name} {v!r}; choose from {', '.join(options)}")
    return v


def check_bool(name: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{name} must be true or false; got {v!r}")
    return v


def check_int_tuple(name: str, v: Any, low: int = 1) -> tuple[int, ...]:
    if not isinstance(v, (tuple, list)) or not v:
        raise ValueError(f"{name} must be a non-empty sequence of integers; got {v!r}")
    return tuple(check_int(f"{name}[{i}]", x, low) for i, x in enumerate(v))
