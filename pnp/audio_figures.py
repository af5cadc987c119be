"""Figures of sounds: an input and its resynthesis side by side, as log-scalograms.

:func:`scalogram` is the encoder's front end (:class:`pnp.training.encoder.LogScalogram`: Morlet
wavelets, Q = 8 per octave over up to 8 octaves below 0.43·sr, ``log1p(|x ∗ ψ| / 1e-3)``, 128
frames); :func:`draw_comparison` draws two of them on a shared colour scale.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

#: frames per scalogram (fewer for sounds shorter than 4 * 128 samples)
FRAMES = 128


def scalogram(audio: Any, sample_rate: float) -> tuple[np.ndarray, np.ndarray, float]:
    """``audio`` (N,) → ``(S (F, T) log-scalogram, centre frequencies (F,) Hz, frame hop in s)``."""
    import torch

    from pnp.training.encoder import LogScalogram

    x = torch.as_tensor(np.asarray(audio, dtype=np.float32).reshape(1, -1))
    n = x.shape[1]
    J = max(1, min(8, int(math.log2(n)) - 2))
    hop = max(1, 2 ** int(math.log2(max(1, n // FRAMES))))
    hop = min(hop, max(1, 2 ** int(math.log2(n // 4))))
    f = LogScalogram(n, J=J, Q=8, hop=hop)
    with torch.no_grad():
        S = f(x)[0].numpy()
    return S, np.asarray(f.xi) * sample_rate, hop / sample_rate


def draw_scalogram(ax, audio: Any, sample_rate: float, title: str, vmax: float | None = None):
    """One scalogram on ``ax`` (time in s, frequency in Hz on a log axis); returns the image."""
    S, freqs, dt = scalogram(audio, sample_rate)
    T = S.shape[1]
    # rows are ordered by decreasing frequency: draw with the lowest at the bottom
    im = ax.pcolormesh(np.arange(T + 1) * dt, _edges(freqs[::-1]), S[::-1], shading="flat", vmin=0, vmax=vmax,
                       cmap="magma")
    ax.set_yscale("log")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    ax.set_title(title, fontsize=9)
    return im


def _edges(centres: np.ndarray) -> np.ndarray:
    """Bin edges (F + 1,) of increasing positive centre frequencies (F,), geometric midpoints."""
    c = np.asarray(centres, dtype=np.float64)
    if c.size == 1:
        return np.array([c[0] / 1.1, c[0] * 1.1])
    mid = np.sqrt(c[1:] * c[:-1])
    return np.concatenate([[c[0] ** 2 / mid[0]], mid, [c[-1] ** 2 / mid[-1]]])


def draw_comparison(axes, audio: Any, resynthesis: Any, sample_rate: float, titles=("input", "resynthesis")) -> None:
    """Input and resynthesis scalograms on two axes, one colour scale (with a colour bar)."""
    vmax = float(max(scalogram(audio, sample_rate)[0].max(), scalogram(resynthesis, sample_rate)[0].max()))
    draw_scalogram(axes[0], audio, sample_rate, titles[0], vmax)
    im = draw_scalogram(axes[1], resynthesis, sample_rate, titles[1], vmax)
    axes[0].figure.colorbar(im, ax=list(axes), label="log1p(|x * psi| / 1e-3)", shrink=0.9)


def plot_comparison(path: str | os.PathLike, audio: Any, resynthesis: Any, sample_rate: float, title: str = "",
                    titles=("input", "resynthesis")) -> None:
    """:func:`draw_comparison` as a PNG at ``path`` (written atomically)."""
    from pnp.figures import pyplot, save_figure

    fig, axes = pyplot().subplots(1, 2, figsize=(11, 4.0), layout="constrained", sharey=True)
    draw_comparison(axes, audio, resynthesis, sample_rate, titles)
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path, dpi=90)


__all__ = ["FRAMES", "draw_comparison", "draw_scalogram", "plot_comparison", "plot_sound", "scalogram"]


def plot_sound(path: str, audio: np.ndarray, sample_rate: float, title: str) -> None:
    """Waveform (top) and power spectrogram in dB relative to its peak (bottom, 80 dB range, with
    its colour bar) of ``audio`` (N,) float at ``sample_rate`` Hz → ``path`` (PNG)."""
    from scipy.signal import spectrogram

    from pnp.figures import pyplot, save_figure

    n = audio.size
    t = np.arange(n) / sample_rate
    nperseg = int(min(1024, max(16, 2 ** int(np.log2(max(n // 8, 16))))))
    f, tt, S = spectrogram(audio, fs=sample_rate, nperseg=nperseg, noverlap=nperseg * 3 // 4)
    fig, (ax0, ax1) = pyplot().subplots(2, 1, figsize=(9, 6), sharex=True, layout="constrained")
    ax0.plot(t, audio, lw=0.5)
    ax0.set_ylabel("amplitude")
    ax0.set_title(title)
    S_db = 10 * np.log10(S + 1e-20)
    S_db -= S_db.max()
    mesh = ax1.pcolormesh(tt, f, S_db, shading="auto", cmap="magma", vmin=-80.0, vmax=0.0)
    ax1.set_ylabel("frequency (Hz)")
    ax1.set_xlabel("time (s)")
    ax1.set_xlim(0, n / sample_rate)
    ax1.set_facecolor(mesh.cmap(0.0))  # before the first and after the last frame: the floor of the scale
    fig.colorbar(mesh, ax=[ax0, ax1], label="power (dB re peak)", shrink=0.5, anchor=(0.0, 0.0))
    save_figure(fig, path, dpi=100)
