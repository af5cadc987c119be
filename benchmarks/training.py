"""Benchmark of the training loop: time per step for each loss, and data-loader throughput.

Usage::

    python benchmarks/training.py [--store data/stores/amchirp_train.zarr] [--threads 1]
                                  [--steps 20] [--jtfs-steps 5] [--warmup 2] [--batch-size 32]
                                  [--losses ploss,pnp,mss,jtfs,mrstft,specl2] [--encoder scalogram] [--hop H]
                                  [--loader-workers 0,2] [--device cpu] [--json docs/results/bench_training.json]
                                  [--torchvision-model-code] [--no-loader]

Prints:

1. the time of one training step — encoder forward, loss, backward, Adam step — with the same
   encoder (:class:`pnp.training.Encoder`, built from the store) and the same batch (the first
   ``--batch-size`` training samples, already loaded: data loading is measured separately) for
   each loss: ``ploss`` (MSE in ν), ``pnp`` (the stored metric, λ = 1 so the damping term runs),
   ``mss`` (synth + multi-scale spectrogram in the loop), ``jtfs`` (synth + the store's JTFS in
   the loop), ``mrstft`` (synth + auraloss's MRSTFT) and ``specl2`` (synth + the TASLP
   linear-magnitude 6-scale STFT L2), with ``--encoder`` (``scalogram`` or the authors'
   ``effnet-cqt``); median (and min / max) over ``--steps`` steps after ``--warmup`` warm-up steps
   (``--jtfs-steps`` for JTFS, which is slow); then the ratio of the JTFS step to the PNP step
   (goal: a PNP step at least 50× faster than JTFS in the loop);
2. the throughput (samples/s) of ``pnp.data.make_loader`` over the whole training split, with
   ``input="audio"`` (ν, M and the audio, what ``--loss pnp`` reads) and without (ν, M only),
   for each ``--loader-workers`` value: the first pass (cold: worker start-up, zarr reads and
   decompression) and a second pass (the decoded chunks are then in the per-process cache).

Nothing is asserted.  The machine may be shared: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def step_times(store: str, loss: str, batch_size: int, steps: int, warmup: int, device: str,
               encoder_kind: str = "scalogram", encoder: dict | None = None) -> list[float]:
    """Seconds per training step (forward + loss + backward + Adam step) on one fixed batch."""
    import torch

    from pnp.data import StoreDataset
    from pnp.training.encoder import build_encoder
    from pnp.training.trainer import Objective, torch_device

    dev = torch_device(device)
    fields = ["nu", "metric"] + (["features"] if loss == "jtfs" else [])
    ds = StoreDataset(store, split="train", fields=fields, input="audio")
    n = min(batch_size, len(ds))
    batch = {k: v.to(dev) for k, v in ds.get_batch(list(range(n))).items()}
    torch.manual_seed(0)
    model = build_encoder(encoder_kind, ds, **(encoder or {})).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    objective = Objective(loss, ds).to(dev)
    lam = 1.0 if loss == "pnp" else 0.0
    out = []
    for i in range(warmup + steps):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        nu_hat = model(batch["audio"])
        value = objective.train(nu_hat, batch, lam)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            out.append(time.perf_counter() - t0)
    return out


def loader_throughput(store: str, batch_size: int, workers: int, audio: bool) -> tuple[float, float, int]:
    """(cold, warm) samples/s of one pass over the training split, and the number of samples."""
    from pnp.data import StoreDataset, make_loader

    ds = StoreDataset(store, split="train", fields=("nu", "metric"), input="audio" if audio else None)
    loader = make_loader(ds, batch_size, shuffle=True, num_workers=workers, seed=0,
                         persistent_workers=workers > 0)
    rates = []
    for epoch in range(2):
        loader.sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        n = 0
        for batch in loader:
            n += int(batch["nu"].shape[0])
        rates.append(n / (time.perf_counter() - t0))
    return rates[0], rates[1], len(ds)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default=str(ROOT / "data/stores/amchirp_train.zarr"))
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per loss (default 20)")
    ap.add_argument("--jtfs-steps", type=int, default=5, help="timed steps for jtfs (default 5)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps (default 2)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--losses", default="ploss,pnp,mss,jtfs,mrstft,specl2")
    ap.add_argument("--encoder", default="scalogram", choices=("scalogram", "effnet-cqt"))
    ap.add_argument("--hop", type=int, default=None, help="encoder frame hop (default: the encoder's)")
    ap.add_argument("--json", default=None, metavar="FILE", help="also write the figures as JSON")
    ap.add_argument("--loader-workers", "--workers", dest="workers", default="0,2",
                    help="data-loader worker counts (default 0,2; --workers is the old spelling)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-loader", action="store_true", help="skip the data-loader measurements")
    ap.add_argument("--torchvision-model-code", action="store_true",
                    help="load torchvision without its compiled extension (see benchmarks/torchvision_model_code.py): "
                         "for effnet-cqt where only a CUDA-linked torchvision wheel exists for a CPU torch")
    args = ap.parse_args(argv)
    for name in ("threads", "steps", "jtfs_steps", "batch_size"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0:
        ap.error("--warmup must be >= 0")
    if not os.path.exists(args.store):
        ap.error(f"no store at {args.store} (pnp precompute data/amchirp_train.toml --store {args.store})")
    import torch

    if args.torchvision_model_code:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        import torchvision_model_code

        torchvision_model_code.enable()
    torch.set_num_threads(args.threads)
    from pnp.data import StoreDataset
    from pnp.training.encoder import build_encoder

    ds = StoreDataset(args.store, split="train", fields=("nu",), input="audio")
    enc_kw = {} if args.hop is None else {"hop": args.hop}
    enc = build_encoder(args.encoder, ds, **enc_kw)
    print(f"store {args.store}: {len(ds)} training samples, N = {enc.n_samples} at {enc.sample_rate:g} Hz, "
          f"P = {enc.n_params}, K = {ds.n_coefs} features")
    print(f"encoder: {args.encoder}, {enc.n_weights():,} weights")
    report = {"command": "python benchmarks/training.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "store": args.store,
              "encoder": args.encoder, "encoder_options": enc_kw,
              "torchvision_model_code_only": bool(args.torchvision_model_code), "encoder_weights": enc.n_weights(), "threads": args.threads,
              "batch_size": args.batch_size, "cpus": os.cpu_count(), "load_before": _load(), "steps": {}}
    print(f"torch {torch.__version__}, {args.threads} thread(s), device {args.device}, batch {args.batch_size}; "
          f"load average before: {_load()}")

    losses = [s.strip() for s in args.losses.split(",") if s.strip()]
    medians = {}
    print("\ntraining step (forward + loss + backward + Adam), seconds:")
    print(f"  {'loss':<6} {'median':>9} {'min':>9} {'max':>9} {'steps':>6}  samples/s")
    for loss in losses:
        n = args.jtfs_steps if loss == "jtfs" else args.steps
        times = step_times(args.store, loss, args.batch_size, n, args.warmup, args.device, args.encoder, enc_kw)
        med = statistics.median(times)
        medians[loss] = med
        report["steps"][loss] = {"median_s": med, "min_s": min(times), "max_s": max(times), "steps": n}
        print(f"  {loss:<6} {med:9.4f} {min(times):9.4f} {max(times):9.4f} {n:6d}  {args.batch_size / med:9.1f}",
              flush=True)
    if "jtfs" in medians and "pnp" in medians:
        ratio = medians["jtfs"] / medians["pnp"]
        print(f"\nJTFS-in-the-loop step / PNP step: {ratio:.1f}x  (goal >= 50x: {'met' if ratio >= 50 else 'NOT met'})")
    if "mss" in medians and "pnp" in medians:
        print(f"MSS-in-the-loop step / PNP step: {medians['mss'] / medians['pnp']:.1f}x")

    if not args.no_loader:
        print("\ndata loader over the training split (make_loader, ChunkShuffleSampler), samples/s:")
        print(f"  {'input':<20} {'workers':>7} {'cold':>10} {'warm':>10}")
        for audio in (True, False):
            for w in [int(v) for v in args.workers.split(",") if v.strip()]:
                cold, warm, n = loader_throughput(args.store, args.batch_size, w, audio)
                label = "nu + metric + audio" if audio else "nu + metric"
                print(f"  {label:<20} {w:7d} {cold:10.0f} {warm:10.0f}", flush=True)
    print(f"\nload average after: {_load()}")
    if args.json:
        from pnp.files import write_json

        report["load_after"] = _load()
        if "jtfs" in medians and "pnp" in medians:
            report["jtfs_over_pnp"] = medians["jtfs"] / medians["pnp"]
        write_json(args.json, report)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
