"""Matplotlib (Agg) figures of the training runs; every function writes one PNG."""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from pnp.figures import pyplot as _plt
from pnp.figures import save_figure


def _save(fig, path: str) -> None:
    save_figure(fig, path, dpi=120, format="png")


def _column(rows: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if r.get(key) is None else float(r[key]) for r in rows], dtype=float)


def plot_loss_curves(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike, title: str = "") -> None:
    """Loss curves of one run (``metrics.json`` rows) → ``path``.

    Left: the training loss (epoch mean) and its validation value (λ = 0), log scale, with the
    Levenberg–Marquardt brakes marked.  Right: the validation P-loss (MSE in ν) and, when the
    store has a metric, the validation PNP loss (λ = 0).
    """
    plt = _plt()
    epoch = _column(rows, "epoch")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ax = axes[0]
    ax.plot(epoch, _column(rows, "train_loss"), "o-", ms=3, label="train")
    ax.plot(epoch, _column(rows, "val_loss"), "s-", ms=3, label="validation (λ = 0)")
    brakes = [r["epoch"] for r in rows if r.get("action") == "brake"]
    for k, e in enumerate(brakes):
        ax.axvline(e, color="red", lw=0.8, ls=":", label="LM brake" if k == 0 else None)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.set_title("training loss")
    ax.legend(fontsize=8, loc="upper right")
    ax = axes[1]
    ax.plot(epoch, _column(rows, "val_ploss"), "o-", ms=3, color="C2", label="val P-loss (MSE in ν)")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("P-loss")
    pnp = _column(rows, "val_pnp")
    if np.isfinite(pnp).any():
        ax2 = ax.twinx()
        ax2.plot(epoch, pnp, "s--", ms=3, color="C3", label="val PNP loss (λ = 0)")
        ax2.set_yscale("log")
        ax2.set_ylabel("PNP loss")
        lines = ax.get_lines() + ax2.get_lines()
        ax.legend(lines, [l.get_label() for l in lines], fontsize=8, loc="upper right")
    else:
        ax.legend(fontsize=8, loc="upper right")
    ax.set_title("validation")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, os.fspath(path))


def plot_predictions(nu: np.ndarray, nu_hat: np.ndarray, names: Sequence[str], path: str | os.PathLike,
                     title: str = "") -> None:
    """Predicted vs true ν, one panel per parameter (``nu``, ``nu_hat``: (S, P)) → ``path``."""
    plt = _plt()
    P = nu.shape[1]
    fig, axes = plt.subplots(1, P, figsize=(3.4 * P, 3.4), squeeze=False)
    for p, ax in enumerate(axes[0]):
        ax.plot([-1, 1], [-1, 1], color="0.6", lw=0.8)
        ax.scatter(nu[:, p], nu_hat[:, p], s=6, alpha=0.6)
        mae = float(np.mean(np.abs(nu_hat[:, p] - nu[:, p])))
        ax.set_title(f"{names[p]}: MAE {mae:.3f}")
        ax.set_xlabel("true ν")
        ax.set_ylabel("predicted ν")
        ax.set_xlim(-1.05, 1.05)
        ax.set_ylim(-1.05, 1.05)
        ax.set_aspect("equal")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, os.fspath(path))
