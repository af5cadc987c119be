"""Figures of the geometry evaluations (matplotlib, Agg backend).

* :func:`plot_log2_ratios` — per parameter, violins + box of the DAFx log2 ratios
  log2(exp(mean log θ_neighbours) / θ) in octaves, one coloured violin per store (representation).
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
    """``ratios[s]`` (q, P) log2 ratios of store ``s``; one panel per parameter ``names[p]`` (a name
    may carry its unit, "f_c (Hz)"), one coloured violin + box per store, its median [IQR] as the
    tick label, the stores in a legend under the panels."""
    plt = _plt()
    from matplotlib.patches import Patch

    P, S = len(names), len(labels)
    colours = [plt.get_cmap("tab10")(i % 10) for i in range(S)]
    fig, axes = plt.subplots(1, P, figsize=(1.2 + max(2.6, 1.15 * S) * P, 4.2), squeeze=False, sharey=True,
                             layout="constrained")
    for p, ax in enumerate(axes[0]):
        data = [np.asarray(r, dtype=float)[:, p] for r in ratios]
        data = [d[np.isfinite(d)] for d in data]
        ticks = []
        for i, d in enumerate(data):
            if not d.size:
                ticks.append("undefined\n(θ ≤ 0)")
                continue
            parts = ax.violinplot([d], positions=[i + 1], showextrema=False, widths=0.8)
            for body in parts["bodies"]:
                body.set(facecolor=colours[i], alpha=0.35)
            ax.boxplot([d], positions=[i + 1], widths=0.25, showfliers=False,
                       medianprops={"color": colours[i], "lw": 2})
            lo, med, hi = np.percentile(d, [25, 50, 75])
            ticks.append(f"{med:+.3f}\n[{lo:+.2f}, {hi:+.2f}]")
        ax.axhline(0.0, color="k", lw=0.6, ls="--")
        ax.set_xticks(range(1, S + 1))
        ax.set_xticklabels(ticks, fontsize=7)
        ax.set_xlim(0.4, S + 0.6)
        ax.set_title(names[p], fontsize=10)
        ax.set_xlabel("median [interquartile range]", fontsize=8)
        if p == 0:
            ax.set_ylabel(r"$\log_2(\hat\theta/\theta)$ (octaves; 0 = exact)" "\n"
                          r"$\hat\theta$: geometric mean of the k neighbours' $\theta$", fontsize=8)
    finite = [float(np.abs(np.asarray(r)[np.isfinite(r)]).max()) for r in ratios if np.isfinite(r).any()]
    lim = 1.05 * max([0.1] + finite)
    axes[0][0].set_ylim(-lim, lim)
    fig.legend([Patch(facecolor=c, alpha=0.6) for c in colours], list(labels), loc="outside lower center",
               ncol=min(S, 4), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, path)


def _colour_ticks(lo: float, hi: float, log: bool) -> list[float]:
    """At most five round values in ``[lo, hi]`` for a colour bar: ``c × 10^k`` for the densest set
    of mantissas ``c`` that fits on a log scale, MaxNLocator's steps on a linear one."""
    from matplotlib.ticker import MaxNLocator

    if not log:
        span = 1e-12 * abs(hi - lo)
        return [float(v) for v in MaxNLocator(5).tick_values(lo, hi) if lo - span <= v <= hi + span]
    decades = 10.0 ** np.arange(np.floor(np.log10(lo)), np.ceil(np.log10(hi)) + 1)
    ticks: list[float] = []
    for mantissas in ((1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 4, 5, 6, 8), (1, 2, 3, 5), (1, 2, 5), (1,)):
        grid = [float(f"{c * d:.3g}") for d in decades for c in mantissas]
        ticks = [v for v in grid if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)]
        if len(ticks) <= 5:
            break
    return ticks


def _colour_bar(fig, sc, ax, label: str, lo: float, hi: float, log: bool) -> None:
    """A colour bar labelled ``label`` with plain-number ticks (no ``6×10^0``)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    cb = fig.colorbar(sc, ax=ax, shrink=0.6, pad=0.12)
    cb.set_label(label, fontsize=8)
    cb.ax.yaxis.set_major_locator(FixedLocator(_colour_ticks(lo, hi, log)))
    cb.ax.yaxis.set_minor_locator(NullLocator())
    cb.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    cb.ax.tick_params(labelsize=7)


def plot_embedding(coords: Sequence[np.ndarray], thetas: Sequence[np.ndarray], labels: Sequence[str], names: Sequence[str],
                   log_scale: Sequence[bool], path: str, title: str = "", max_points: int = 20000, seed: int = 0) -> None:
    """One row per store (``coords[s]`` (n, C), ``thetas[s]`` (n, P)), one panel per parameter
    ``names[p]`` (with its unit, e.g. "f_c (Hz)"), coloured by it, with a labelled colour bar; the
    axes are the embedding's first components ("dim 1", ...)."""
    plt = _plt()
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.ticker import MaxNLocator

    S, P = len(coords), len(names)
    C = np.asarray(coords[0]).shape[1]
    fig = plt.figure(figsize=(4.0 * P, 3.6 * S), layout="constrained")
    for s in range(S):
        xy, th = np.asarray(coords[s]), np.asarray(thetas[s])
        if xy.shape[0] > max_points:
            keep = np.sort(np.random.default_rng(seed).choice(xy.shape[0], max_points, replace=False))
            xy, th = xy[keep], th[keep]
        for p in range(P):
            kw = {"projection": "3d"} if C >= 3 else {}
            ax = fig.add_subplot(S, P, s * P + p + 1, **kw)
            c = th[:, p]
            lo, hi = float(c.min()), float(c.max())
            log = bool(log_scale[p]) and lo > 0
            norm = LogNorm(lo, hi) if log else Normalize(lo, hi)
            if C >= 3:
                sc = ax.scatter(xy[:, 0], xy[:, 1], xy[:, 2], c=c, norm=norm, s=3, cmap="viridis", depthshade=False)
                ax.set_zlabel("dim 3", fontsize=8, labelpad=-2)
                ax.zaxis.set_major_locator(MaxNLocator(4))
            elif C == 2:
                sc = ax.scatter(xy[:, 0], xy[:, 1], c=c, norm=norm, s=3, cmap="viridis")
            else:
                sc = ax.scatter(xy[:, 0], c, c=c, norm=norm, s=3, cmap="viridis")
            ax.set_xlabel("dim 1", fontsize=8, labelpad=-2 if C >= 3 else None)
            ax.set_ylabel(names[p] if C == 1 else "dim 2", fontsize=8, labelpad=-2 if C >= 3 else None)
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_locator(MaxNLocator(4))
            ax.tick_params(labelsize=7, pad=0 if C >= 3 else 2)
            _colour_bar(fig, sc, ax, names[p], lo, hi, log)
            ax.set_title(f"{labels[s]}: {names[p]}" if S > 1 else names[p], fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, path)
