"""``pnp synth``: render one sound from a registered synthesizer.

Usage::

    pnp synth NAME --theta v1,v2,... [--out file.wav] [--plot file.png] [--synth-config key=value ...]
    pnp synth NAME --describe [--synth-config key=value ...]

θ is given in physical units, in the order of the synth's parameter space (see ``--describe``).
``--synth-config`` values are parsed as JSON when possible (``n_samples=4096``, ``n_modes=[5,5]``,
``normalize=false``) and kept as strings otherwise (``nyquist=reference``).  Bad input (unknown
synth or config key, wrong number of values, non-numbers, out-of-range values) raises
``ValueError``, which ``pnp`` prints as a one-line error with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported where it is used: pnp --help stays light
    import numpy as np

#: peak amplitude below which a rendered sound counts as silence (refused, not written)
SILENCE = 1e-9
HELP = "render one sound from a synthesizer (ftm, amchirp, arpeggio)"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``synth`` sub-command on ``subparsers`` (``func=run``)."""
    p = subparsers.add_parser(
        "synth",
        help=HELP,
        description=HELP + ". θ is in physical units, in the order listed by --describe.",
    )
    p.add_argument("name", metavar="NAME", help="synth name: ftm, amchirp or arpeggio")
    p.add_argument(
        "--theta",
        metavar="V1,V2,...",
        help="comma-separated parameter values in physical units (use --theta=-1,... for a leading minus)",
    )
    p.add_argument("--out", metavar="FILE.wav", help="write the sound to this WAV file")
    p.add_argument("--plot", metavar="FILE.png", help="write a waveform + spectrogram figure")
    p.add_argument(
        "--synth-config",
        metavar="KEY=VALUE",
        nargs="+",
        action="extend",
        default=[],
        help="synth config entries (JSON values, e.g. n_samples=4096 n_modes=[5,5]; pnp list synths shows the keys)",
    )
    p.add_argument("--config", dest="synth_config", nargs="+", action="extend", help=argparse.SUPPRESS)  # deprecated
    p.add_argument(
        "--format",
        choices=("pcm16", "float32"),
        default="pcm16",
        help="WAV sample format (default pcm16; a peak above 1 is normalised to avoid clipping)",
    )
    p.add_argument("--describe", action="store_true", help="print the parameter space and config, then exit")
    p.set_defaults(func=run)
    return p


def parse_config(items: list[str]) -> dict[str, Any]:
    """``["k=v", ...]`` → dict; values parsed as JSON when possible, else kept as strings."""
    cfg: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--synth-config entries must look like key=value, got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        cfg[key] = value
    return cfg


def parse_theta(text: str, n_params: int, names: tuple[str, ...]) -> np.ndarray:
    """``"v1,v2,..."`` → (P,) float64; ``ValueError`` for a wrong count or a non-number."""
    import numpy as np

    parts = [s.strip() for s in text.split(",")]
    if len(parts) != n_params:
        raise ValueError(
            f"--theta needs {n_params} comma-separated values ({', '.join(names)}), got {len(parts)}: {text!r}"
        )
    values = []
    for name, s in zip(names, parts):
        try:
            v = float(s)
        except ValueError:
            raise ValueError(f"--theta value for parameter {name!r} is not a number: {s!r}") from None
        if not math.isfinite(v):
            raise ValueError(f"--theta value for parameter {name!r} is not finite: {s!r}")
        values.append(v)
    return np.asarray(values, dtype=np.float64)


def write_wav(path: str, audio: np.ndarray, sample_rate: int, fmt: str = "pcm16") -> float:
    """Write mono ``audio`` (N,) to ``path``; returns the gain applied (1 unless normalised)."""
    import numpy as np
    from scipy.io import wavfile

    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    gain = 1.0
    if fmt == "pcm16":
        if peak > 1.0:
            gain = 1.0 / peak
        data = np.round(np.clip(audio * gain, -1.0, 1.0) * 32767.0).astype(np.int16)
    else:
        data = audio.astype(np.float32)
    wavfile.write(path, int(sample_rate), data)
    return gain


def plot_sound(path: str, audio: np.ndarray, sample_rate: float, title: str) -> None:
    """Waveform (top) and power spectrogram in dB relative to its peak (bottom, 80 dB range, with
    its colour bar) of ``audio`` (N,) float at ``sample_rate`` Hz → ``path`` (PNG)."""
    import numpy as np
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


def run(args: argparse.Namespace) -> int:
    """Execute ``pnp synth``; returns the exit status (``ValueError`` for bad input)."""
    import numpy as np
    import torch

    import pnp.synth as ps

    synth = ps.get(args.name, **parse_config(args.synth_config))
    if args.describe:
        print(synth.space.describe())
        print(f"sample_rate = {synth.sample_rate:g} Hz, n_samples = {synth.n_samples}")
        print("config: " + json.dumps(synth.config()))
        return 0
    if args.theta is None:
        raise ValueError("--theta is required (or use --describe to list the parameters)")
    theta = parse_theta(args.theta, synth.space.dim, synth.space.names)
    synth.space.validate(theta)
    with torch.no_grad():
        audio = synth(torch.as_tensor(theta, dtype=torch.float64)[None])[0].numpy()
    if not np.all(np.isfinite(audio)):  # pragma: no cover - guarded by the synths
        raise ValueError("the synth produced non-finite samples")
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak < SILENCE:  # e.g. sample_rate=1: every partial above the Nyquist frequency
        raise ValueError(f"the sound is silent (peak {peak:.3g} over {audio.size} samples at {synth.sample_rate:g} Hz): "
                         "check --synth-config (a sample rate below twice the sound's frequencies leaves nothing)")
    rms = float(np.sqrt(np.mean(audio**2)))
    values = ", ".join(f"{n}={v:g}" for n, v in zip(synth.space.names, theta))
    print(
        f"{synth.name}: {values} -> {synth.n_samples} samples at {synth.sample_rate:g} Hz "
        f"({synth.n_samples / synth.sample_rate:.3f} s), peak {np.max(np.abs(audio)):.4g}, rms {rms:.4g}"
    )
    if args.out:
        try:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            gain = write_wav(args.out, audio, int(round(synth.sample_rate)), args.format)
        except OSError as err:
            raise ValueError(f"cannot write {args.out!r}: {err.strerror or err}") from None
        note = f" (normalised by {gain:.4g} to avoid clipping)" if gain != 1.0 else ""
        print(f"wrote {args.out}{note}")
    if args.plot:
        try:
            Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
            plot_sound(args.plot, audio, synth.sample_rate, f"{synth.name}: {values}")
        except OSError as err:
            raise ValueError(f"cannot write {args.plot!r}: {err.strerror or err}") from None
        print(f"wrote {args.plot}")
    return 0
