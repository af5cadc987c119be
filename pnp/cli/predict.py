"""``pnp predict``: a trained encoder (``pnp train``) applied to sound files.

Usage::

    pnp predict RUN_DIR AUDIO... [--out FILE.csv] [--resynth DIR] [--level auto|asis|peak]
                [--align auto|start|centre|loudest]
                [--weights best|final] [--batch-size 16] [--device auto|cpu|cuda] [--threads 1] [--quiet]

Reads each file (WAV, FLAC, OGG, MP3, AIFF, ...: libsndfile), mixes it to mono (mean of the
channels), resamples it to the run's store rate (scipy's polyphase ``resample_poly``, Kaiser
window β = 5), trims or zero-pads it to the store's length N (``--align auto``: around the
centre for the chirps, from the start for the FTM drum), and scales it to peak 1 for a
peak-normalising synth (``--level auto``: the FTM drum) — each step printed per file.  Prints
θ̂ (physical units) and the JTFS / MSS / MRSTFT distances between the input and g(θ̂); ``--out``
writes FILE.csv, FILE.json (every step, the rules) and FILE_figures/<name>.png (input vs
resynthesis scalograms); ``--resynth DIR`` writes g(θ̂) as float32 WAVs.  See
:mod:`pnp.pipelines.predict`.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from pnp.cli.options import add_batch_size, add_device, add_quiet, add_threads, set_threads

HELP = "predict synth parameters of sound files with a trained encoder, resynthesise and score them"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``predict`` on ``subparsers`` (``func=run``)."""
    p = subparsers.add_parser(
        "predict", help=HELP,
        description=HELP + ": prints theta_hat and the JTFS / MSS / MRSTFT distances per file; --out writes "
        "FILE.csv, FILE.json and FILE_figures/ (input vs resynthesis scalograms).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by pnp train")
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="sound files (WAV, FLAC, OGG, MP3, AIFF, ...)")
    p.add_argument("--out", default=None, metavar="FILE.csv",
                   help="write the table to FILE.csv, the full report to FILE.json and a figure per file to "
                        "FILE_figures/ (default: print only)")
    p.add_argument("--resynth", default=None, metavar="DIR",
                   help="write each resynthesis g(theta_hat) to DIR/<name>.wav (float32, the store's rate)")
    p.add_argument("--level", default="auto", choices=("auto", "asis", "peak"),
                   help="input level: auto (default: peak for synths that peak-normalise their sounds, e.g. ftm; "
                        "asis otherwise), asis (amplitude kept) or peak (scaled to peak 1)")
    p.add_argument("--align", default="auto", choices=("auto", "start", "centre", "loudest"),
                   help="which part of a longer sound is kept / where a shorter one is padded: auto (default: centre "
                        "for the chirps, centred in their frame; start for ftm), start (first N samples; zeros at the "
                        "end), centre (middle N; zeros on both sides) or loudest (the N samples of largest energy)")
    p.add_argument("--weights", default="best", choices=("best", "final"),
                   help="best: the best validation epoch's weights (best.pt, default); final: the last epoch's "
                        "(checkpoint.pt)")
    add_batch_size(p, 16, "sounds")
    add_device(p)
    add_threads(p)
    add_quiet(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``pnp predict``: prints the conditioning steps, the table and what was written."""
    from pnp.pipelines.predict import format_table, predict

    if args.out is not None and not args.out.endswith(".csv"):
        raise ValueError(f"--out must be a .csv file path, got {args.out!r}")
    set_threads(args.threads)
    result = predict(args.run_dir, args.audio, out=args.out, resynth=args.resynth, batch_size=args.batch_size,
                     device=args.device, weights=args.weights, level=args.level, align=args.align,
                     progress=not args.quiet)
    print(f"{len(result['files'])} file(s) -> {result['synth']['name']} at {result['sample_rate']:g} Hz, "
          f"{result['n_samples']} samples (level {result['level']}, align {result['align']}; {result['device']})")
    for row in result["files"]:
        if row["steps"]:
            print(f"  {os.path.basename(row['file'])}: {'; '.join(row['steps'])}")
    print(format_table(result))
    for row in result["files"]:
        if row["note"]:
            print(f"note: {os.path.basename(row['file'])}: {row['note']}")
    if args.out is not None:
        print(f"wrote {args.out}, {args.out[:-4]}.json" + (f", {args.out[:-4]}_figures/" if result["files"] else ""))
    if args.resynth is not None:
        print(f"wrote {len(result['files'])} resynthesis WAV(s) to {args.resynth}")
    return 0

