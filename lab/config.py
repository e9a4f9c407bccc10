"""Field checks for the experiments' config dataclasses (validated, frozen, one docstring per field).

Each check raises ``ValueError`` naming the field and the bad value; configs call them in ``__post_init__`` so
an invalid config cannot exist. Meaningless numbers are refused rather than clamped: non-finite floats, strings
where numbers belong, booleans where integers belong.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from typing import Any, Iterable

__all__ = ["check_int", "check_float", "check_choice", "check_bool", "check_int_tuple", "bounded", "check_fields"]


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


def bounded(low: float | None = None, high: float | None = None, low_open: bool = False,
            high_open: bool = False) -> dict:
    """Field metadata stating a number's range, checked by :func:`check_fields`:
    ``seed: int = field(default=0, metadata=bounded(0))`` (an ``int`` field takes ``low`` only)."""
    return {"bounds": (low, high, low_open, high_open)}


def _scalar(tp: Any) -> tuple[Any, bool]:
    """``(type, optional)`` of a field annotation (``X | None`` -> ``(X, True)``)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(tp))
    return tp, False


@functools.lru_cache(maxsize=None)
def _bounded_fields(cls: type) -> tuple:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, f.metadata["bounds"], *_scalar(hints[f.name]))
                 for f in dataclasses.fields(cls) if "bounds" in f.metadata)


def check_fields(obj: Any) -> None:
    """Check every field of the dataclass instance ``obj`` that carries :func:`bounded` metadata, in field order
    (``None`` passes for an optional field): ``int`` fields with :func:`check_int`, the others with
    :func:`check_float`. Raises ``ValueError`` naming the first bad field."""
    for name, (low, high, low_open, high_open), tp, optional in _bounded_fields(type(obj)):
        v = getattr(obj, name)
        if optional and v is None:
            continue
        if tp is int:
            check_int(name, v, 1 if low is None else int(low))
        else:
            check_float(name, v, low, high, low_open, high_open)
