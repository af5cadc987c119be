"""Summaries and paired tests of per-sound test metrics across training runs.

* :func:`summary` — mean, sample standard deviation and count of a list of numbers;
* :func:`paired_wilcoxon` — the Wilcoxon signed-rank test between two losses on the same test
  sounds: per sound, each loss's metric averaged over its seeds (seeds pooled by averaging), then
  ``scipy.stats.wilcoxon`` (two-sided) on the per-sound differences.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """``{"mean", "sd", "n"}`` of finite ``values`` (sd: ddof = 1, None for n < 2)."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"mean": None, "sd": None, "n": 0}
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else None, "n": int(v.size)}


def seed_mean(per_seed: Sequence[np.ndarray]) -> np.ndarray:
    """Per-sound mean over seeds: a list of (S,) arrays on the same sounds → (S,)."""
    arr = np.stack([np.asarray(a, dtype=np.float64) for a in per_seed])
    return arr.mean(axis=0)


def paired_wilcoxon(a: np.ndarray, b: np.ndarray) -> dict[str, float | int | None]:
    """Two-sided Wilcoxon signed-rank test of per-sound values ``a`` vs ``b`` (S,) (same sounds).

    Returns ``{"p_value", "statistic", "n", "median_difference"}`` (median of ``a - b``);
    ``p_value`` is None when every difference is 0. ``ValueError`` for arrays of different shapes.
    """
    from scipy.stats import wilcoxon

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_wilcoxon needs two 1-D arrays of the same length, got {a.shape} and {b.shape}")
    d = a - b
    out: dict[str, float | int | None] = {"n": int(d.size), "median_difference": float(np.median(d)) if d.size else None}
    if d.size == 0 or not np.any(d != 0):
        return {**out, "p_value": None, "statistic": None}
    res = wilcoxon(a, b, alternative="two-sided")
    return {**out, "p_value": float(res.pvalue), "statistic": float(res.statistic)}
