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
            from pnp.audio import write_wav

            gain = write_wav(args.out, audio, int(round(synth.sample_rate)), args.format)
        except OSError as err:
            raise ValueError(f"cannot write {args.out!r}: {err.strerror or err}") from None
        note = f" (normalised by {gain:.4g} to avoid clipping)" if gain != 1.0 else ""
        print(f"wrote {args.out}{note}")
    if args.plot:
        try:
            Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
            from pnp.audio_figures import plot_sound

            plot_sound(args.plot, audio, synth.sample_rate, f"{synth.name}: {values}")
        except OSError as err:
            raise ValueError(f"cannot write {args.plot!r}: {err.strerror or err}") from None
        print(f"wrote {args.plot}")
    return 0
