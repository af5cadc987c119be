"""``pnp predict``: a trained run's encoder applied to sound files (the maths:
:class:`pnp.training.predict.Predictor`; the audio conditioning: :mod:`pnp.audio`).

:func:`predict` reads every file first (so a bad file refuses the command before any output),
conditions each to the run's store (mono, resampled, trimmed / zero-padded, level: each step
stated per file), predicts in batches, and writes

* ``OUT.csv`` — one row per file: the conditioning, ν̂ and θ̂ per parameter (physical units, the
  unit in the column name), the JTFS / MSS / MRSTFT distances between the input and its
  resynthesis, ``jtfs_relative`` and a ``note`` flagging a poor resynthesis;
* ``OUT.json`` — the same with the run, the store, the conditioning rules and every step;
* ``OUT_figures/<name>.png`` — input vs resynthesis log-scalograms, one figure per file;
* ``RESYNTH/<name>.wav`` (with ``resynth``) — g(θ̂), float32 WAV at the store's rate.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from pnp.files import write_json

#: CSV columns before the parameters
LEAD = ("file", "sample_rate_in", "channels_in", "duration_in_s", "resampled", "align", "padded_samples",
        "trimmed_samples", "start_sample", "gain")
#: CSV columns after the parameters
TAIL = ("jtfs_distance", "mss_distance", "mrstft", "jtfs_relative", "note")
LEVELS = ("auto", "asis", "peak")
ALIGNS = ("auto", "start", "centre", "loudest")


def load_predictor(run_dir: str | os.PathLike, weights: str = "best", device: str = "cpu"):
    """The :class:`~pnp.training.predict.Predictor` of a run directory."""
    from pnp.pipelines.training import weights_file
    from pnp.training.predict import Predictor

    return Predictor(weights_file(run_dir, weights), device=device)


def resolve_conditioning(level: str, align: str, synth: Any) -> tuple[str, str]:
    """``(level, align)`` with ``"auto"`` replaced by the synth's own (:func:`pnp.audio.synth_level`,
    :func:`pnp.audio.synth_alignment`); ``ValueError`` for an unknown value."""
    from pnp.audio import synth_alignment, synth_level

    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    if align not in ALIGNS:
        raise ValueError(f"align must be one of {', '.join(ALIGNS)}, got {align!r}")
    return (synth_level(synth) if level == "auto" else level), (synth_alignment(synth) if align == "auto" else align)


def output_names(paths: Sequence[str]) -> list[str]:
    """A distinct file-name stem per input (``name``, or ``k_name`` when stems repeat)."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    return [f"{k}_{s}" if stems.count(s) > 1 else s for k, s in enumerate(stems)]


def predict(run_dir: str | os.PathLike, audio: Sequence[str | os.PathLike], out: str | os.PathLike | None = None,
            resynth: str | os.PathLike | None = None, batch_size: int = 16, device: str = "cpu", weights: str = "best",
            level: str = "auto", align: str = "auto", figures: bool = True, progress: bool = True) -> dict[str, Any]:
    """Predict θ̂ for every file of ``audio`` with the run's encoder (module docs); returns the
    JSON-able result (``files``: one dict per input, in order).  ``out``: the CSV path (the JSON
    and the figures go beside it); ``resynth``: a directory for the resynthesised WAVs."""
    from tqdm.auto import tqdm

    from pnp.audio import conditioning_rules, load

    paths = [os.fspath(p) for p in audio]
    if not paths:
        raise ValueError("give at least one audio file")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if out is not None and not os.fspath(out).endswith(".csv"):
        raise ValueError(f"--out must be a .csv file path, got {os.fspath(out)!r}")
    predictor = load_predictor(run_dir, weights, device)
    lvl, aln = resolve_conditioning(level, align, predictor.synth)
    inputs = [load(p, predictor.sample_rate, predictor.n_samples, lvl, aln) for p in paths]
    rows: list[dict[str, Any]] = []
    arrays: dict[str, list[np.ndarray]] = {"x": [], "x_hat": []}
    for a in tqdm(range(0, len(inputs), batch_size), desc="predict", unit="batch", disable=not progress, leave=False):
        chunk = inputs[a:a + batch_size]
        res = predictor.predict(np.stack([c.audio for c in chunk]))
        for b, c in enumerate(chunk):
            rows.append(_row(predictor, c, {k: v[b] for k, v in res.items()}))
        arrays["x"].extend(c.audio for c in chunk)
        arrays["x_hat"].extend(res["resynthesis"])
    result = {
        "command": "predict", "run_dir": os.path.abspath(os.fspath(run_dir)), "weights": weights,
        "store": predictor.config["store"], "synth": predictor.synth.config(),
        "sample_rate": predictor.sample_rate, "n_samples": predictor.n_samples, "params": list(predictor.params),
        "fixed": dict(predictor.param.fixed), "units": _units(predictor), "level": lvl, "align": aln,
        "conditioning": conditioning_rules(), "device": str(predictor.device), "files": rows,
    }
    _write(result, predictor, paths, arrays, out, resynth, figures)
    return result


def _units(predictor) -> dict[str, str]:
    return {p.name: p.unit for p in predictor.param.space.parameters}


def _row(predictor, cond, res: dict[str, Any]) -> dict[str, Any]:
    """One file's record: its conditioning, ν̂, θ̂ (every synth parameter) and the distances."""
    from pnp.training.predict import FAR_RELATIVE

    rep = cond.report
    space = predictor.param.space
    mr = float(res["mrstft"])
    rel = float(res["jtfs_relative"])
    note = (f"poor resynthesis (relative JTFS distance {rel:.2f} > {FAR_RELATIVE:g}): the input may not be a sound "
            "of this synth, or the encoder is inaccurate there" if rel > FAR_RELATIVE else "")
    return {
        "file": rep["path"], **{k: rep[k] for k in LEAD[1:]}, "steps": list(cond.steps),
        "nu_hat": {n: float(v) for n, v in zip(predictor.params, res["nu_hat"])},
        "theta_hat": {p.name: float(v) for p, v in zip(space.parameters, res["theta_hat"])},
        "jtfs_distance": float(res["jtfs"]), "mss_distance": float(res["mss"]),
        "mrstft": None if np.isnan(mr) else mr, "jtfs_relative": rel, "note": note,
    }


def csv_columns(predictor) -> tuple[str, ...]:
    """The CSV header: :data:`LEAD`, ``nu_<p>`` per free parameter, ``theta_<p> [unit]`` per
    synth parameter, :data:`TAIL`."""
    space = predictor.param.space
    return (*LEAD, *(f"nu_{n}" for n in predictor.params),
            *(f"theta_{p.name}" + (f" [{p.unit}]" if p.unit else "") for p in space.parameters), *TAIL)


def _csv_rows(predictor, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    space = predictor.param.space
    out = []
    for r in rows:
        flat = {k: r[k] for k in (*LEAD, *TAIL)}
        flat.update({f"nu_{n}": f"{v:.7g}" for n, v in r["nu_hat"].items()})
        flat.update({f"theta_{p.name}" + (f" [{p.unit}]" if p.unit else ""): f"{r['theta_hat'][p.name]:.7g}"
                     for p in space.parameters})
        out.append(flat)
    return out


def _write(result, predictor, paths, arrays, out, resynth, figures: bool) -> None:
    from pnp.audio import write_audio
    from pnp.audio_figures import plot_comparison
    from pnp.pipelines.training import write_csv

    names = output_names(paths)
    sr = predictor.sample_rate
    if resynth is not None:
        for name, x_hat, row in zip(names, arrays["x_hat"], result["files"]):
            row["resynthesis"] = os.path.join(os.fspath(resynth), f"{name}.wav")
            write_audio(row["resynthesis"], x_hat, sr)
    if out is None:
        return
    out = os.fspath(out)
    root = out[: -len(".csv")]
    if figures:
        for name, x, x_hat, row in zip(names, arrays["x"], arrays["x_hat"], result["files"]):
            row["figure"] = os.path.join(f"{root}_figures", f"{name}.png")
            theta = ", ".join(f"{k} {v:.4g}" for k, v in row["theta_hat"].items())
            plot_comparison(row["figure"], x, x_hat, sr, title=f"{os.path.basename(row['file'])}: theta_hat = {theta}; "
                            f"JTFS distance {row['jtfs_distance']:.3g}")
    write_csv(out, _csv_rows(predictor, result["files"]), csv_columns(predictor))
    write_json(f"{root}.json", result)


def format_table(result: dict[str, Any]) -> str:
    """The console table: one row per file, θ̂ per parameter and the distances."""
    params = list(result["files"][0]["theta_hat"]) if result["files"] else []
    units = result["units"]
    head = ["file", *(f"{p} [{units[p]}]" if units.get(p) else p for p in params), "JTFS", "MSS", "MRSTFT"]
    body = [[os.path.basename(r["file"]), *(f"{r['theta_hat'][p]:.4g}" for p in params), f"{r['jtfs_distance']:.4g}",
             f"{r['mss_distance']:.4g}", "—" if r["mrstft"] is None else f"{r['mrstft']:.4g}"] for r in result["files"]]
    table = [head, *body]
    widths = [max(len(row[c]) for row in table) for c in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


__all__ = ["ALIGNS", "LEVELS", "csv_columns", "format_table", "load_predictor", "output_names", "predict",
           "resolve_conditioning"]
