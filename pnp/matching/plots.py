"""Matplotlib (Agg) figures of the Mesostructures experiments; every function writes one PNG."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence, cast

import numpy as np

from pnp.figures import pyplot as _plt
from pnp.matching.landscape import Landscape

if TYPE_CHECKING:
    from matplotlib.contour import QuadContourSet

LABELS = {"f_m": "$f_m$ (Hz)", "gamma": r"$\gamma$ (oct/s)"}
NICE: dict[str, list[float]] = {"f_m": [4, 6, 8, 12, 16], "gamma": [0.5, 1, 2, 4]}


def _nu_ticks(values: Sequence[float], axis: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Positions in ν of physical ``values`` on a log axis spanning ``axis`` (ν from -1 to 1)."""
    lo, hi = np.log(axis[0]), np.log(axis[-1])
    vals = [v for v in values if axis[0] * (1 - 1e-9) <= v <= axis[-1] * (1 + 1e-9)]
    pos = np.array([-1 + 2 * (np.log(v) - lo) / (hi - lo) for v in vals])
    return pos, [f"{v:g}" for v in vals]


def _decorate(ax, land: Landscape) -> None:
    for k, setter in enumerate((ax.set_xticks, ax.set_yticks)):
        name = land.names[k]
        pos, lab = _nu_ticks(NICE.get(name, list(land.axes[k][:: max(1, len(land.axes[k]) // 4)])), land.axes[k])
        setter(pos)
        (ax.set_xticklabels if k == 0 else ax.set_yticklabels)(lab)
    ax.set_xlabel(LABELS.get(land.names[0], land.names[0]))
    ax.set_ylabel(LABELS.get(land.names[1], land.names[1]))


def _target_nu(land: Landscape) -> np.ndarray:
    return np.array([np.interp(np.log(t), np.log(a), land.nu_axis) for t, a in zip(land.target, land.axes)])


def draw_landscape(ax2d, land: Landscape, ax3d=None, title: str | None = None) -> QuadContourSet:
    """Contour + −∇L quiver on ``ax2d`` (and the 3-D surface on ``ax3d`` if given)."""
    nu = land.nu_axis
    X, Y = np.meshgrid(nu, nu, indexing="ij")
    Z = land.loss / max(float(land.loss.max()), 1e-300)
    if ax3d is not None:
        ax3d.plot_surface(X, Y, Z, cmap="viridis", linewidth=0, antialiased=True)
        ax3d.set_zlabel("loss / max")
        _decorate(ax3d, land)
        ax3d.view_init(elev=30, azim=-130)
    cs = ax2d.contourf(X, Y, Z, levels=20, cmap="viridis")
    g = -land.grad_nu
    norm = np.linalg.norm(g, axis=-1, keepdims=True)
    u = np.where(norm > 0, g / np.where(norm > 0, norm, 1), 0)
    ax2d.quiver(X, Y, u[..., 0], u[..., 1], color="w", scale=30, width=0.004, alpha=0.9)
    t = _target_nu(land)
    ax2d.plot(*t, marker="*", color="r", ms=14, mec="k", label="target", zorder=5)
    i, j = land.argmin
    ax2d.plot(nu[i], nu[j], marker="X", color="orange", ms=9, mec="k", ls="", label="grid minimum", zorder=4)
    from matplotlib.lines import Line2D

    handles, labels = ax2d.get_legend_handles_labels()
    handles.append(Line2D([], [], color="0.25", marker=r"$\rightarrow$", ms=12, ls=""))
    labels.append(r"$-\nabla L$ direction (unit arrows)")
    ax2d.legend(handles, labels, loc="best", fontsize=7, framealpha=0.8)
    _decorate(ax2d, land)
    if title:
        ax2d.set_title(title, fontsize=9)
    return cs


def landscape_title(land: Landscape) -> str:
    cfg = land.config
    loss = cfg.get("loss", "?").upper()
    if cfg.get("random_shift"):
        a, b = cfg["random_shift"]
        sh = f"random shift $2^n$, n∈[{a},{b}]"
    else:
        sh = f"shift {cfg.get('shift', 0)}"
    return f"{cfg.get('synth', {}).get('name', '')} {loss}, {sh}"


def plot_landscape(land: Landscape, path: str, title: str | None = None) -> None:
    """Loss surface (3-D) and contour with the −∇L quiver field (unit arrows) → ``path``."""
    plt = _plt()
    fig = plt.figure(figsize=(11, 4.6))
    ax3 = fig.add_subplot(1, 2, 1, projection="3d")
    ax2 = fig.add_subplot(1, 2, 2)
    cs = draw_landscape(ax2, land, ax3)
    fig.colorbar(cs, ax=ax2, label="loss / max")
    fig.suptitle(title or landscape_title(land), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_landscape_grid(lands: Sequence[tuple[str, Landscape]], path: str, ncols: int = 2, dpi: int = 72) -> None:
    """Several landscapes' contour + quiver panels side by side → ``path``."""
    plt = _plt()
    n = len(lands)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.0 * ncols, 3.5 * nrows), squeeze=False)
    for ax, (label, land) in zip(axes.flat, lands):
        draw_landscape(ax, land, title=label)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def _band(ax, curves: np.ndarray, label: str, color=None) -> None:
    x = np.arange(curves.shape[1])
    line = ax.plot(x, curves.mean(0), label=label, color=color, lw=1.8)[0]
    ax.fill_between(x, curves.min(0), curves.max(0), color=line.get_color(), alpha=0.18)


NU_DISTANCE = r"parameter distance $\|\tilde\nu - \nu^*\|_2$ (normalised log parameters)"


def _explained_legend(ax, n_inits: int, threshold: float | None, band: bool = True, **kwargs: Any) -> None:
    """The axes' legend with what the marks mean: line = mean over the ``n_inits``
    initialisations, band (or error bar) = their min–max range, dotted = the threshold."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles, labels = ax.get_legend_handles_labels()
    if band:
        handles += [Line2D([], [], color="0.3", lw=1.8), Patch(facecolor="0.3", alpha=0.18)]
        labels += [f"line: mean over {n_inits} initialisations", "band: their min–max range"]
    else:
        handles += [Line2D([], [], color="0.3", marker="o", ls="-"), Line2D([], [], color="0.3", marker=".", ls="",
                                                                            alpha=0.5)]
        labels += [f"marker and bar: mean and min–max over {n_inits} inits", "dots: each initialisation"]
    if threshold:
        handles.append(Line2D([], [], color="k", ls=":", lw=1))
        labels.append(f"converged below {threshold:g}")
    below = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.16), "ncol": 2, "frameon": False}
    ax.legend(handles, labels, **{"fontsize": 7, **below, **kwargs})


def plot_descent(series: Sequence[tuple[str, np.ndarray]], path: str, title: str = "", threshold: float | None = None) -> None:
    """Parameter distance vs iteration: mean (line) and min–max range (band) of each
    ``(label, distances (n_inits, T+1))`` → ``path``."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
    for label, d in series:
        _band(ax, np.asarray(d, dtype=float), label)
    if threshold:
        ax.axhline(threshold, color="k", ls=":", lw=1)
    ax.set_xlabel("iteration")
    ax.set_ylabel(NU_DISTANCE, fontsize=9)
    ax.set_ylim(bottom=0)
    _explained_legend(ax, np.asarray(series[0][1]).shape[0], threshold)
    ax.set_title(title, fontsize=10)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_match_summary(summary: dict[str, Any], path: str) -> None:
    """The figure of ``pnp match``: distance curves per shift, plus final distance per shift
    when there are several shifts."""
    plt = _plt()
    runs = summary["runs"]
    multi = len(runs) > 1
    fig, axes = plt.subplots(1, 2 if multi else 1, figsize=(12 if multi else 6.4, 5.0), squeeze=False,
                             layout="constrained")
    ax = axes[0, 0]
    for r in runs:
        _band(ax, np.asarray(r["distance"], dtype=float), f"shift {r['shift']} samples")
    ax.axhline(summary["threshold"], color="k", ls=":", lw=1)
    ax.set_xlabel("iteration")
    ax.set_ylabel(NU_DISTANCE, fontsize=9)
    ax.set_ylim(bottom=0)
    _explained_legend(ax, summary["n_inits"], summary["threshold"])
    ax.set_title(f"{summary['synth']['name']} {summary['loss'].upper()}, init {summary['init']}, "
                 f"{summary['n_inits']} inits", fontsize=10)
    if multi:
        draw_shift_sweep(axes[0, 1], [(summary["loss"].upper(), summary)], summary["threshold"])
        axes[0, 1].set_title("final distance per time shift", fontsize=10)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_audio_match(summary: dict[str, Any], target: np.ndarray, resynthesis: np.ndarray, sample_rate: float,
                     path: str) -> None:
    """The figure of ``pnp match --target-audio``: loss (log scale) and each free parameter (ν)
    over iterations for every initialisation of the first shift (the lowest-loss one bold; the
    truth dotted when known), and the target vs resynthesis log-scalograms."""
    from pnp.audio_figures import draw_comparison

    plt = _plt()
    run = summary["runs"][0]
    loss, nu = np.asarray(run["loss"], dtype=float), np.asarray(run["nu"], dtype=float)  # (n, T+1), (n, T+1, P)
    best = run["best"]["init"]
    fig = plt.figure(figsize=(12, 7.5), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.0, 1.1])
    ax_loss, ax_nu = top.subplots(1, 2)
    for k in range(loss.shape[0]):
        ax_loss.plot(np.maximum(loss[k], 1e-300), lw=2.0 if k == best else 0.8, alpha=1.0 if k == best else 0.5,
                     label=f"init {k}" + (" (lowest loss)" if k == best else ""))
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("iteration")
    ax_loss.set_ylabel(f"{summary['loss'].upper()} loss")
    ax_loss.legend(fontsize=7)
    colors = [f"C{j}" for j in range(nu.shape[2])]
    for j, name in enumerate(summary["free"]):
        for k in range(nu.shape[0]):
            ax_nu.plot(nu[k, :, j], color=colors[j], lw=2.0 if k == best else 0.6, alpha=1.0 if k == best else 0.4,
                       label=name if k == best else None)
        if summary.get("target_nu") is not None:
            ax_nu.axhline(summary["target_nu"][j], color=colors[j], ls=":", lw=1)
    ax_nu.set_ylim(-1.05, 1.05)
    ax_nu.set_xlabel("iteration")
    ax_nu.set_ylabel("normalised parameter nu" + (" (dotted: truth)" if summary.get("target_nu") else ""))
    ax_nu.legend(fontsize=7, ncol=2)
    theta = ", ".join(f"{k} {v:.4g}" for k, v in run["best"]["theta"].items())
    top.suptitle(f"{summary['synth']['name']} {summary['loss'].upper()}, init {summary['init']}, "
                 f"{summary['n_inits']} inits, {summary['optimizer']}: lowest loss {run['best']['loss']:.3g} at {theta}",
                 fontsize=10)
    draw_comparison(bottom.subplots(1, 2, sharey=True), target, resynthesis, sample_rate,
                    ("target (as conditioned)", "resynthesis (lowest-loss init)"))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def draw_shift_sweep(ax, items: Sequence[tuple[str, dict[str, Any]]], threshold: float | None = None) -> None:
    """Final distance (mean, min–max, points) per shift for each ``(label, summary)``."""
    offsets = np.linspace(-0.15, 0.15, len(items)) if len(items) > 1 else [0.0]
    shifts = None
    for off, (label, s) in zip(offsets, items):
        shifts = [r["shift"] for r in s["runs"]]
        x = np.arange(len(shifts)) + off
        finals = [np.asarray(r["final_distance"]) for r in s["runs"]]
        mean = np.array([f.mean() for f in finals])
        lo = mean - np.array([f.min() for f in finals])
        hi = np.array([f.max() for f in finals]) - mean
        eb = ax.errorbar(x, mean, yerr=[lo, hi], fmt="o-", capsize=3, label=label)
        for xi, f in zip(x, finals):
            ax.plot(np.full(f.size, xi), f, ".", color=eb[0].get_color(), alpha=0.4)
    # a list once the loop has run (items is non-empty); cast, not assert: no behaviour change otherwise
    ax.set_xticks(np.arange(len(cast(list[Any], shifts))))
    ax.set_xticklabels([str(s) for s in cast(list[Any], shifts)], rotation=0, fontsize=8)
    ax.set_xlabel("time shift of the predicted sound (samples)")
    ax.set_ylabel(r"final parameter distance $\|\tilde\nu - \nu^*\|_2$", fontsize=9)
    if threshold:
        ax.axhline(threshold, color="k", ls=":", lw=1)
    ax.set_ylim(bottom=0)
    n_inits = len(items[0][1]["runs"][0]["final_distance"])
    _explained_legend(ax, n_inits, threshold, band=False)


def plot_shift_sweep(items: Sequence[tuple[str, dict[str, Any]]], path: str, title: str = "") -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
    draw_shift_sweep(ax, items, items[0][1].get("threshold"))
    ax.set_title(title, fontsize=10)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plain_log_ticks(axis, values: Sequence[float]) -> None:
    """Ticks of a log ``axis`` at ``values``, written as plain numbers (no ``6×10^-1``)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    axis.set_major_locator(FixedLocator(list(values)))
    axis.set_minor_locator(NullLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def plot_chirp_pairs(result: dict[str, Any], path: str) -> None:
    """Normalised MSS and JTFS distances vs the chirp rate of the second chirp → ``path``."""
    plt = _plt()
    g = np.asarray(result["gammas"])
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    colors = {"mss": "tab:grey", "jtfs": "tab:blue"}
    for loss, r in result["losses"].items():
        for name, ls in (("displaced", "-"), ("aligned", "--")):
            d = np.asarray(r[name]["distance"])
            ax.plot(g, d / d.max(), ls, color=colors.get(loss), marker="o" if ls == "-" else None, ms=3,
                    label=f"{loss.upper()}, {'shift ' + str(result['shift']) if name == 'displaced' else 'no shift'}")
    ax.axvline(result["reference"][1], color="r", lw=1, ls=":", label=r"reference $\gamma$")
    ax.set_xscale("log")
    _plain_log_ticks(ax.xaxis, [v for v in (0.5, 1, 2, 4) if g.min() * 0.999 <= v <= g.max() * 1.001])
    ax.set_xlabel(r"chirp rate $\gamma$ of the second chirp (oct/s)")
    ax.set_ylabel("distance / max")
    ax.set_title(f"{result['synth']}: reference (f_m, γ) = ({result['reference'][0]:.3g}, {result['reference'][1]:.3g})", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
