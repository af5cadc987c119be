"""The commands' figures say what they show: labelled 3-D axes and colour bars with plain-number
ticks (``pnp embed``), units on the k-NN panels and a legend of the stores (``pnp knn``), a legend
that explains every line and band (``pnp match``), plain ticks on log axes (``pnp chirp-pairs``)
and a colour bar on the spectrogram (``pnp synth --plot``).  Each figure is drawn on synthetic
data and inspected as matplotlib objects (the PNGs were also looked at)."""

from __future__ import annotations

import numpy as np
import pytest

import pnp.figures
from pnp.geometry.plots import _colour_ticks, plot_embedding, plot_log2_ratios
from pnp.matching.plots import plot_chirp_pairs, plot_match_summary


@pytest.fixture
def figures(monkeypatch):
    """Every figure the plotting functions create, in order."""
    made = []
    build = pnp.figures._Figures.figure

    def record(**kwargs):
        fig = build(**kwargs)
        made.append(fig)
        return fig

    monkeypatch.setattr(pnp.figures._Figures, "figure", staticmethod(record))
    return made


def _tick_texts(axis) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels() if t.get_text()]


def test_colour_bar_ticks_are_round_plain_numbers():
    assert _colour_ticks(512, 1024, True) == [600, 700, 800, 900, 1000]
    assert _colour_ticks(4, 16, True) == [4, 5, 6, 8, 10]
    assert _colour_ticks(0.5, 4, True) == [0.5, 1, 2, 3]
    assert _colour_ticks(0, 1, False) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])


def test_embedding_axes_and_colour_bars_are_labelled(figures, tmp_path):
    rng = np.random.default_rng(0)
    theta = np.stack([rng.uniform(512, 1024, 200), rng.uniform(0, 1, 200)], axis=1)
    plot_embedding([rng.normal(size=(200, 3))], [theta], ["jtfs"], ["f_c (Hz)", "alpha"], [True, False],
                   str(tmp_path / "e.png"))
    fig = figures[-1]
    fig.canvas.draw()
    panels = [ax for ax in fig.axes if ax.name == "3d"]
    bars = [ax for ax in fig.axes if ax.name != "3d"]
    assert [(ax.get_xlabel(), ax.get_ylabel(), ax.get_zlabel()) for ax in panels] == [("dim 1", "dim 2", "dim 3")] * 2
    assert [ax.get_ylabel() for ax in bars] == ["f_c (Hz)", "alpha"]
    labels = [_tick_texts(ax.yaxis) for ax in bars]
    assert labels[0] == ["600", "700", "800", "900", "1000"] and not any("10^" in t or "×" in t for t in labels[1])
    assert (tmp_path / "e.png").stat().st_size > 10_000


def test_knn_panels_state_units_and_name_the_stores(figures, tmp_path):
    rng = np.random.default_rng(1)
    plot_log2_ratios([rng.normal(size=(50, 2)), rng.normal(size=(50, 2))], ["0:jtfs", "1:mss"], ["f_m (Hz)", "gamma"],
                     str(tmp_path / "k.png"))
    fig = figures[-1]
    assert [ax.get_title() for ax in fig.axes] == ["f_m (Hz)", "gamma"]
    assert "octaves" in fig.axes[0].get_ylabel()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["0:jtfs", "1:mss"]
    assert all(label.count("\n") == 1 and "[" in label for label in _tick_texts(fig.axes[0].xaxis))  # median [IQR]


def _summary(shifts):
    runs = [{"shift": s, "distance": [[1.0, 0.5, 0.2], [1.2, 0.9, 0.6]], "final_distance": [0.2, 0.6]} for s in shifts]
    return {"runs": runs, "threshold": 0.1, "synth": {"name": "amchirp"}, "loss": "mss", "init": "far", "n_inits": 2}


def test_match_legends_explain_the_line_band_and_threshold(figures, tmp_path):
    plot_match_summary(_summary([0, 64]), str(tmp_path / "m.png"))
    curves, sweep = figures[-1].axes
    assert [t.get_text() for t in curves.get_legend().get_texts()] == [
        "shift 0 samples", "shift 64 samples", "line: mean over 2 initialisations", "band: their min–max range",
        "converged below 0.1"]
    assert [t.get_text() for t in sweep.get_legend().get_texts()] == [
        "MSS", "marker and bar: mean and min–max over 2 inits", "dots: each initialisation", "converged below 0.1"]


def test_chirp_pairs_log_axis_has_plain_ticks(figures, tmp_path):
    g = list(np.geomspace(0.5, 4, 6))
    losses = {loss: {"displaced": {"distance": list(np.linspace(1, 2, 6))}, "aligned": {"distance": list(np.ones(6))}}
              for loss in ("mss", "jtfs")}
    plot_chirp_pairs({"gammas": g, "losses": losses, "shift": 64, "reference": [8.3, 1.49], "synth": "amchirp"},
                     str(tmp_path / "c.png"))
    fig = figures[-1]
    fig.canvas.draw()
    assert _tick_texts(fig.axes[0].xaxis) == ["0.5", "1", "2", "4"]


def test_synth_spectrogram_has_a_colour_bar(figures, tmp_path):
    from pnp.audio_figures import plot_sound

    t = np.arange(4096) / 4096
    plot_sound(str(tmp_path / "s.png"), np.sin(2 * np.pi * 440 * t), 4096.0, "tone")
    fig = figures[-1]
    assert [ax.get_ylabel() for ax in fig.axes] == ["amplitude", "frequency (Hz)", "power (dB re peak)"]
