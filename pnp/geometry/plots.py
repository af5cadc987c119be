"""Figures of the geometry evaluations (matplotlib, Agg backend).

* :func:`plot_log2_ratios` — per parameter, violins + box of the DAFx log2 ratios
  log2(exp(mean log θ_neighbours) / θ), one violin per store (representation).
* :func:`plot_embedding` — one scatter panel per parameter (3-D for ≥ 3 components, 2-D for 2,
  coordinate vs ν for 1) coloured by that parameter (log colour scale for log parameters); one
  row of panels per store.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pnp.figures import pyplot as _plt
from pnp.figures import save_figure


def _save(fig, path: str) -> None:
    save_figure(fig, path, dpi=120, bbox_inches="tight")


def plot_log2_ratios(ratios: Sequence[np.ndarray], labels: Sequence[str], names: Sequence[str], path: str,
                     title: str = "") -> None:
    """``ratios[s]`` (q, P) log2 ratios of store ``s``; one panel per parameter ``names[p]``."""
    plt = _plt()
    P = len(names)
    fig, axes = plt.subplots(1, P, figsize=(2.2 + 1.3 * len(labels) * P, 3.8), squeeze=False, sharey=True)
    for p, ax in enumerate(axes[0]):
        data = [np.asarray(r)[:, p] for r in ratios]
        data = [d[np.isfinite(d)] for d in data]
        pos = [i + 1 for i, d in enumerate(data) if d.size]
        if pos:
            vals = [data[i - 1] for i in pos]
            ax.violinplot(vals, positions=pos, showextrema=False, widths=0.8)
            ax.boxplot(vals, positions=pos, widths=0.25, showfliers=False)
        ticks = []
        for d, label in zip(data, labels):
            if d.size:
                lo, med, hi = np.percentile(d, [25, 50, 75])
                ticks.append(f"{label}\n{med:+.3f} [{lo:+.2f}, {hi:+.2f}]")
            else:
                ticks.append(f"{label}\nundefined (θ ≤ 0)")
        ax.axhline(0.0, color="k", lw=0.6, ls="--")
        ax.set_xticks(range(1, len(labels) + 1))
        ax.set_xticklabels(ticks, fontsize=7, rotation=30 if len(labels) > 1 else 0,
                           ha="right" if len(labels) > 1 else "center")
        ax.set_xlim(0.4, len(labels) + 0.6)
        ax.set_title(names[p])
        if p == 0:
            ax.set_ylabel("log2( exp(mean log θ_nbrs) / θ )")
    lim = 1.05 * max([0.1] + [float(np.abs(np.asarray(r)[np.isfinite(r)]).max()) for r in ratios
                              if np.isfinite(r).any()])
    axes[0][0].set_ylim(-lim, lim)
    if title:
        fig.suptitle(title, fontsize=9, y=1.04)
    fig.tight_layout()
    _save(fig, path)


def plot_embedding(coords: Sequence[np.ndarray], thetas: Sequence[np.ndarray], labels: Sequence[str], names: Sequence[str],
                   log_scale: Sequence[bool], path: str, title: str = "", max_points: int = 20000, seed: int = 0) -> None:
    """One row per store (``coords[s]`` (n, C), ``thetas[s]`` (n, P)), one panel per parameter."""
    plt = _plt()
    from matplotlib.colors import LogNorm, Normalize

    S, P = len(coords), len(names)
    C = np.asarray(coords[0]).shape[1]
    fig = plt.figure(figsize=(3.6 * P, 3.3 * S))
    for s in range(S):
        xy, th = np.asarray(coords[s]), np.asarray(thetas[s])
        if xy.shape[0] > max_points:
            keep = np.sort(np.random.default_rng(seed).choice(xy.shape[0], max_points, replace=False))
            xy, th = xy[keep], th[keep]
        for p in range(P):
            kw = {"projection": "3d"} if C >= 3 else {}
            ax = fig.add_subplot(S, P, s * P + p + 1, **kw)
            c = th[:, p]
            norm = LogNorm(c.min(), c.max()) if log_scale[p] and c.min() > 0 else Normalize(c.min(), c.max())
            if C >= 3:
                sc = ax.scatter(xy[:, 0], xy[:, 1], xy[:, 2], c=c, norm=norm, s=3, cmap="viridis", depthshade=False)
                ax.tick_params(labelsize=6)
            elif C == 2:
                sc = ax.scatter(xy[:, 0], xy[:, 1], c=c, norm=norm, s=3, cmap="viridis")
            else:
                sc = ax.scatter(xy[:, 0], c, c=c, norm=norm, s=3, cmap="viridis")
                ax.set_ylabel(names[p])
            fig.colorbar(sc, ax=ax, shrink=0.6, pad=0.1)
            ax.set_title(f"{labels[s]}: {names[p]}" if S > 1 else names[p], fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)
