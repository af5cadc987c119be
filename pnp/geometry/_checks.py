"""Validation of the geometry estimators' parameters (scikit-learn convention: checked in ``fit``).

A wrong type raises ``TypeError``, a value out of range ``ValueError``; both name the parameter
and what it accepts.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def _shown(value: Any) -> str:
    """``value`` for an error message: its type and repr (numpy scalars as plain Python values)."""
    plain = value.item() if isinstance(value, np.generic) else value
    return f"{type(value).__name__} {plain!r}"


def check_int(value: Any, name: str, low: int = 1, high: int | None = None, note: str = "") -> int:
    """``value`` as an int in [low, high] (``high`` None: no upper bound); ``note`` explains ``high``."""
    allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]{note}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be {allowed}, got {_shown(value)}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be {allowed}, got {int(value)}")
    return int(value)


def check_optional_int(value: Any, name: str, low: int = 1) -> int | None:
    """None, or ``value`` as an int >= ``low`` (see :func:`check_int`)."""
    if value is None:
        return None
    allowed = f"None or an integer >= {low}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be {allowed}, got {_shown(value)}")
    if value < low:
        raise ValueError(f"{name} must be {allowed}, got {int(value)}")
    return int(value)


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of the strings ``choices``."""
    allowed = f"one of {', '.join(map(repr, choices))}"
    if not isinstance(value, str):
        raise TypeError(f"{name} must be {allowed}, got {_shown(value)}")
    if value not in choices:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def check_bool(value: Any, name: str) -> bool:
    """``value`` if it is a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_shown(value)}")
    return bool(value)
