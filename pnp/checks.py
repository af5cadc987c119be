"""Argument checks shared by the library: a wrong type raises ``TypeError``, a value out of range
``ValueError``; both name the argument and what it accepts (the geometry estimators call them in
``fit``, as scikit-learn does).
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


def check_features(X: Any, name: str = "X", n_cols: int | None = None, min_samples: int = 1,
                   owner: str = "the estimator"):
    """``(X, n, K)``: a lazy (dask / :class:`~pnp.store.reader.Rows`) feature matrix as it is,
    checked for shape and dtype (its blocks are checked finite when read); anything else through
    scikit-learn's ``check_array`` (2-D, float32/float64 — integers converted to float64 —,
    finite, no sparse matrix, at least ``min_samples`` rows), with scikit-learn's messages."""
    from sklearn.utils.validation import check_array

    from pnp.geometry.reading import check_matrix, is_lazy

    if is_lazy(X):
        n, K = check_matrix(X, name, n_cols=n_cols)
    else:
        X = check_array(X, dtype=(np.float64, np.float32), accept_sparse=False, ensure_min_samples=min_samples,
                        input_name=name)
        n, K = X.shape
        if n_cols is not None and K != n_cols:
            raise ValueError(f"{name} has {K} features, but {owner} is expecting {n_cols} features as input "
                             "(n_features_in_ of fit)")
    if n < min_samples:
        raise ValueError(f"{name} has {n} sample(s) (shape=({n}, {K})) while a minimum of {min_samples} is required")
    return X, int(n), int(K)


def check_targets(y: Any, n: int, name: str = "y") -> tuple[np.ndarray, bool]:
    """``(y (n, P) float64, was_1d)``: targets checked finite, 1-D targets as one column."""
    from sklearn.utils.validation import check_array

    if y is None:
        raise ValueError(f"this estimator requires y to be passed, but the target {name} is None")
    arr = check_array(y, ensure_2d=False, dtype=np.float64, input_name=name)
    was_1d = arr.ndim == 1
    arr = arr.reshape(-1, 1) if was_1d else arr
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) or ({n}, P) (one row per sample of X), got {arr.shape}")
    return arr, was_1d
