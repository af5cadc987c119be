"""``pnp store``: inspect and verify precompute stores.

Usage::

    pnp store info PATH                  # shape, splits, completion, provenance
    pnp store verify PATH [--recompute K] [--seed 0] [--device auto|cpu|cuda] [--threads 1] [--rtol R]
                     [--repair] [--quiet]

``verify`` checks the schema, each array's metadata against the consolidated copy, the status
codes, every chunk of every done sample (decoding: crc32c checksums), finiteness, completeness,
the layout against the spec, ``metric = JᵀJ`` and the eigenvalues, and recomputes ``K`` random
done samples with the library.  It prints one line per problem (array, chunk, samples) and a
summary, and exits 0 (clean), 1 (problems) or 2 (unusable arguments).  ``--repair`` (under the
writer lock) rewrites damaged metadata and layout arrays and marks every chunk with a problem
pending, so that the next ``pnp precompute`` recomputes exactly those.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from pnp.cli.options import add_device, add_quiet, add_seed, add_threads, integer, number, set_threads

HELP = "inspect (info) or check (verify) a precompute store"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``store`` (sub-commands ``info`` and ``verify``) on ``subparsers``."""
    p = subparsers.add_parser("store", help=HELP, description=HELP + ".")
    sub = p.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    info = sub.add_parser("info", help="shape, splits, completion and provenance of a store")
    info.add_argument("path", metavar="PATH", help="store path or URL")
    info.add_argument("--json", action="store_true", help="print the full attributes as JSON")
    info.add_argument("--storage-options", metavar="JSON", help="fsspec options for URL stores, as JSON")
    info.set_defaults(func=run_info)
    ver = sub.add_parser("verify", help="completeness, finiteness and K recomputed samples")
    ver.add_argument("path", metavar="PATH", help="store path or URL")
    ver.add_argument("--recompute", type=integer(0), default=0, metavar="K",
                     help="recompute K random done samples (>= 0, default 0)")
    add_seed(ver, "the recomputed samples' choice")
    add_device(ver, "where the samples are recomputed")
    add_threads(ver)
    ver.add_argument("--rtol", type=number(0, open_low=True), metavar="R",
                     help="relative tolerance, > 0 (default 1e-4 for float32 computations, 1e-5 for float64)")
    ver.add_argument("--repair", action="store_true",
                     help="mark every chunk with a problem pending (then run pnp precompute to recompute them)")
    add_quiet(ver)
    ver.add_argument("--storage-options", metavar="JSON", help="fsspec options for URL stores, as JSON")
    ver.set_defaults(func=run_verify)
    return p


def _options(text: str | None):
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--storage-options must be a JSON object: {err}") from None
    if not isinstance(value, dict):
        raise ValueError("--storage-options must be a JSON object")
    return value


def describe(st) -> str:
    """Human-readable summary of an opened :class:`pnp.store.Store`."""
    import numpy as np

    from pnp import store as pstore

    a = st.attrs
    S, P, K = st.n_samples, len(st.params), st.n_coefs
    counts = st.counts()
    split = np.asarray(st.group["split"][:])
    lines = [f"store {st.path}", f"  name        {a.get('name')}: {a.get('description', '')}".rstrip()]
    lines.append(f"  shape       {S} samples x {P} free parameters ({', '.join(st.params)}) x {K} coefficients")
    if a.get("fixed"):
        lines.append("  fixed       " + ", ".join(f"{k} = {v:g}" for k, v in a["fixed"].items()))
    lines.append(f"  chunks      {st.chunk_size} samples per chunk ({-(-S // st.chunk_size)} chunks)")
    lines.append("  arrays      " + ", ".join(
        f"{n}{tuple(st[n].shape)} {st[n].dtype}" for n in pstore.schema(
            a["spec"]["store"]["jacobian"], a["spec"]["store"]["audio"])))
    names = ("train", "val", "test")
    lines.append("  splits      " + ", ".join(f"{n} {int(np.sum(split == i))}" for i, n in enumerate(names)))
    pct = 100.0 * (counts["done"] + counts["failed"]) / S if S else 100.0
    lines.append(f"  completion  {counts['done']} done, {counts['failed']} failed, {counts['pending']} pending "
                 f"({pct:.1f} % processed)")
    sp = a["spec"]
    lines.append(f"  synth       {json.dumps(a['synth'])}")
    lines.append(f"  grid        {json.dumps(sp['grid'])}; split {json.dumps(sp['split'])}")
    lines.append(f"  represent.  {json.dumps(a['representation'])}")
    comp = a["compression"]
    lines.append(f"  features    {comp['formula']}" + (f" with c = {comp['c']:g}" if comp.get("c") else "")
                 + f"; computed in {sp['compute']['dtype']}, stored in float32")
    lines.append(f"  normaliser  {a['normalizer']['kind']} ({a['normalizer']['formula']})")
    v = a.get("versions", {})
    lines.append("  versions    " + ", ".join(f"{k} {v[k]}" for k in v))
    lines.append(f"  git commit  {a.get('git_commit') or 'unknown'}")
    lines.append(f"  created     {a.get('created')} on {a.get('host')} (device {a.get('device')}); spec hash "
                 f"{a.get('spec_hash')} from {a.get('spec_source')}")
    for i, r in enumerate(a.get("runs", [])):
        lines.append(f"  run {i}       {r.get('started')} → {r.get('finished', '?')}: {r.get('state')}, "
                     f"{r.get('samples_computed', 0)} samples computed, {r.get('samples_failed', 0)} failed "
                     f"({r.get('cluster')})")
    unprotected = [n for n in sorted(st.group.array_keys()) if not pstore.has_checksums(st.group[n])]
    lines.append("  checksums   " + ("crc32c on every array" if not unprotected else
                                     f"none on {', '.join(unprotected)} (made before pnp added crc32c)"))
    size = pstore.store_size(st.path)
    lines.append(f"  size        {pstore.human_bytes(size)} ({pstore.human_bytes(size / max(S, 1))} per sample)")
    return "\n".join(lines)


def run_info(args: argparse.Namespace) -> int:
    from pnp.store import open_store

    st = open_store(args.path, _options(args.storage_options))
    if args.json:
        print(json.dumps(st.attrs, indent=2))
    else:
        print(describe(st))
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from pnp.pipelines.precompute import verify

    if "://" not in args.path and not os.path.exists(args.path):
        raise FileNotFoundError(f"no store at {args.path}")  # an unusable argument (exit 2), not a damaged store
    if args.recompute:
        set_threads(args.threads)
    report = verify(args.path, recompute=args.recompute, seed=args.seed, device=args.device, rtol=args.rtol,
                    storage_options=_options(args.storage_options), repair=args.repair,
                    progress=not args.quiet)
    for line in report.lines:
        print(line)
    for p in report.problems:
        print(f"PROBLEM: {p}")
    print("verify: OK" if report.ok else f"verify: FAILED ({len(report.problems)} problem(s))"
          + (" - repaired: run `pnp precompute` with the store's spec to recompute the pending chunks"
             if args.repair and report.repair is not None and report.repair.chunks_marked_pending else ""))
    return 0 if report.ok else 1
