"""The two code tables of a store, defined once: a sample's :class:`Status` and its :class:`Split`.

``status`` (S,) uint8 and ``split`` (S,) int8 hold these codes.  Readers select samples by split
name (``"train"``, ``"val"``, ``"test"`` or ``"all"``) with :func:`split_mask`; the done samples of
a split are :meth:`pnp.store.Store.indices`.  This module imports numpy only.
"""

from __future__ import annotations

import enum

import numpy as np


class Status(enum.IntEnum):
    """Codes of the ``status`` array: a sample is pending (not computed), done, or failed
    (its features or Jacobian were not finite)."""

    PENDING = 0
    DONE = 1
    FAILED = 2


class Split(enum.IntEnum):
    """Codes of the ``split`` array (the data-set folds), as the splitters of
    :mod:`pnp.synth.space` assign them."""

    TRAIN = 0
    VAL = 1
    TEST = 2


#: status names, indexed by code
STATUS_NAMES = tuple(s.name.lower() for s in Status)
#: split names, indexed by code
SPLIT_NAMES = tuple(s.name.lower() for s in Split)
#: what readers accept to select samples: a split name, or "all" for every sample
SELECTIONS = SPLIT_NAMES + ("all",)


def split_code(split: str) -> int | None:
    """The code of the split named ``split`` (``None`` for ``"all"``); ``ValueError`` otherwise."""
    if not isinstance(split, str) or split not in SELECTIONS:
        raise ValueError(f"split must be one of {', '.join(map(repr, SELECTIONS))}, got {split!r}")
    return None if split == "all" else SPLIT_NAMES.index(split)


def split_mask(codes: np.ndarray, split: str) -> np.ndarray:
    """(S,) bool: the samples of ``split`` among the split ``codes`` (S,) (``"all"``: every one)."""
    code = split_code(split)
    return np.ones(codes.shape[0], dtype=bool) if code is None else np.asarray(codes) == code


def status_counts(status: np.ndarray) -> dict[str, int]:
    """Number of samples per status name in ``status`` (S,)."""
    return {name: int(np.sum(status == code)) for code, name in enumerate(STATUS_NAMES)}
