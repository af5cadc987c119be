"""``pnp precompute``: features, Jacobians and metrics of a dataset spec into a zarr store.

Usage::

    pnp precompute SPEC --store PATH [--workers N] [--threads-per-worker T]
                   [--scheduler ADDRESS | --scheduler-file FILE] [--device auto|cpu|cuda]
                   [--limit N] [--dashboard] [--[no-]tune-malloc] [--skip-check] [--quiet]

Without ``--scheduler`` / ``--scheduler-file`` an embedded dask ``LocalCluster`` runs the job;
with them, an existing dask.distributed cluster does (its workers must import ``pnp`` and reach
the store path).  Running the same command again resumes (only pending chunks are computed);
a store created from another spec is refused.  One run writes a store at a time (a second is
refused naming the first); a resumed store is first checked chunk by chunk and every damaged
chunk is recomputed (``--skip-check`` skips the scan).  See :mod:`pnp.pipelines.precompute`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pnp.cli.options import add_device, add_quiet, integer

HELP = "compute features, Jacobians and metrics of a dataset spec into a zarr store (dask)"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``precompute`` on ``subparsers`` (``func=run``)."""
    p = subparsers.add_parser("precompute", help=HELP, description=HELP + ". Re-run the same command to resume.")
    p.add_argument("spec", metavar="SPEC", help="dataset spec (TOML), e.g. data/demo.toml")
    p.add_argument("--store", required=True, metavar="PATH",
                   help="zarr store: a local path or an fsspec URL (s3://bucket/x.zarr); created or resumed")
    p.add_argument("--workers", type=integer(1), metavar="N",
                   help="dask worker processes of the embedded LocalCluster (>= 1; default: one per CPU core, or per GPU)")
    p.add_argument("--threads-per-worker", type=integer(1), default=1, metavar="T",
                   help="threads (concurrent tasks) per embedded worker (>= 1, default 1)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--scheduler", metavar="ADDRESS", help="attach to a running dask scheduler (tcp://host:8786)")
    group.add_argument("--scheduler-file", metavar="FILE", help="attach to the dask scheduler described by FILE")
    add_device(p, "where the workers compute")
    p.add_argument("--limit", type=integer(1), metavar="N",
                   help="compute only the first pending chunks covering N samples, whole chunks (>= 1; the rest stays "
                        "pending: run again to continue)")
    p.add_argument("--storage-options", metavar="JSON",
                   help='fsspec options for URL stores, as JSON (e.g. \'{"anon": false}\')')
    p.add_argument("--dashboard", action="store_true",
                   help="serve dask's dashboard (embedded cluster; on :8787 or the next free port)")
    p.add_argument("--tune-malloc", action=argparse.BooleanOptionalAction, default=None,
                   help="glibc allocator settings in every worker (pnp.allocator; default: on for the embedded "
                        "cluster, off for --scheduler / --scheduler-file workers)")
    p.add_argument("--skip-check", action="store_true",
                   help="resume without first scanning the store for damaged chunks (the scan reads it once)")
    add_quiet(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``pnp precompute``; 0 when the store is complete, 1 when samples remain
    pending (``--limit``) or failed."""
    from pnp.pipelines.precompute import precompute

    options = None
    if args.storage_options:
        try:
            options = json.loads(args.storage_options)
        except json.JSONDecodeError as err:
            raise ValueError(f"--storage-options must be a JSON object: {err}") from None
        if not isinstance(options, dict):
            raise ValueError("--storage-options must be a JSON object")
    summary = precompute(
        args.spec,
        args.store,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        scheduler=args.scheduler,
        scheduler_file=args.scheduler_file,
        device=args.device,
        limit=args.limit,
        storage_options=options,
        progress=not args.quiet,
        dashboard=args.dashboard,
        check=not args.skip_check,
        tune_malloc=args.tune_malloc,
    )
    if summary.failed:
        return 1
    return 0
