"""Benchmark of the training data loader: whole batches (``pnp.data.make_loader``) against the
same batches read sample by sample and re-stacked by ``default_collate``.

Usage::

    python benchmarks/loader.py [--store data/stores/amchirp_pnp_local.zarr] [--batch-size 64]
                                [--fields nu,metric] [--audio] [--json docs/results/bench_loader.json]

Prints samples/s of one pass over the training split, cold (first pass of a new loader: zarr
reads and decompression, after an untimed pass that warms the OS page cache for both) and warm
(second pass: decoded chunks cached per process), for both loaders on one process
(``num_workers=0``).  Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def passes(make, n_passes: int = 2) -> list[float]:
    loader = make()
    rates = []
    for epoch in range(n_passes):
        loader.sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        n = sum(int(b["index"].shape[0]) for b in loader)
        rates.append(n / (time.perf_counter() - t0))
    return rates


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default=str(ROOT / "data/stores/amchirp_pnp_local.zarr"))
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--fields", default="nu,metric")
    ap.add_argument("--audio", action="store_true", help="also read the stored audio (input='audio')")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if not os.path.exists(args.store):
        ap.error(f"no store at {args.store}")
    import torch

    from pnp.data import ChunkShuffleSampler, StoreDataset, make_loader

    fields = tuple(f for f in args.fields.split(",") if f)
    from _report import header

    report = {**header("loader.py", argv), "store": args.store,
              "batch_size": args.batch_size, "fields": list(fields), "audio": args.audio, "loaders": {}}

    def dataset():
        return StoreDataset(args.store, split="train", fields=fields, input="audio" if args.audio else None)

    class PerSample(torch.utils.data.DataLoader):
        pass

    makers = {
        "whole batches (make_loader)": lambda: make_loader(dataset(), args.batch_size, seed=0),
        "per sample + default_collate": lambda: (lambda ds: PerSample(
            ds, batch_size=args.batch_size, sampler=ChunkShuffleSampler(ds, seed=0),
            collate_fn=torch.utils.data.default_collate))(dataset()),
    }
    passes(makers["whole batches (make_loader)"], 1)  # untimed: the OS page cache is warm for both loaders
    print(f"store {args.store}, fields {fields}{' + audio' if args.audio else ''}, batch {args.batch_size}")
    print(f"  {'loader':<30} {'cold':>10} {'warm':>10}  samples/s")
    for name, make in makers.items():
        cold, warm = passes(make)
        report["loaders"][name] = {"cold_samples_per_s": cold, "warm_samples_per_s": warm}
        print(f"  {name:<30} {cold:10.0f} {warm:10.0f}")
    if args.json:
        from pnp.files import write_json

        write_json(args.json, report)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
