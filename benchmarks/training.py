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

With ``--scrapl`` (no store needed)::

    python benchmarks/training.py --scrapl [--spec data/amchirp_pnp_local.toml] [--batch-size 4]
                                  [--steps 8] [--jtfs-steps 2] [--warmup 1] [--threads 1]
                                  [--json docs/results/bench_scrapl.json]

synthesises a batch of the study's chirps from the spec (its synth, grid and JTFS: 4 s at
8192 Hz, J=13 Q=(12,1) J_fr=3 F=2 T=global), and prints, measured in this one run:

3. the training step (same encoder, same batch) with ``scrapl`` (one random path of the JTFS,
   pnp's sub-plan, SGD behind 𝒫-Adam + 𝒫-SAGA; ``--steps`` paths drawn with seed 0), ``jtfs``
   (the full JTFS in the loop), ``mss``, ``pnp`` (a random SPD metric of the stored shape: the
   values do not change the cost) and ``ploss``, and the ratios to the ``scrapl`` step;
4. the SCRAPL loss alone (distance on one path + its gradient in the predicted sound, the same
   paths and sounds) for pnp's ``RandomPathJTFS`` and the ``scrapl-loss`` package's
   ``SCRAPLLoss`` (kymatio 0.4, in a child process: float32, reflect padding, both), and the
   full JTFS's path-averaged distance, with their ratios.

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

from _peer import BUNDLED_KYMATIO  # noqa: E402 (benchmarks/ is on sys.path as the script's folder)


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


# ------------------------------------------------------------------------------ SCRAPL (--scrapl)
PEER_PATH_TIMES = BUNDLED_KYMATIO + r"""
logging.disable(logging.INFO)
import torch
job = json.loads(open(sys.argv[1]).read())
torch.set_num_threads(job["threads"])
from scrapl import SCRAPLLoss
data = np.load(sys.argv[2])
loss = SCRAPLLoss(**job["config"], use_p_adam=False, use_p_saga=False, grad_mult=1.0)
x_hat, x = (torch.from_numpy(data[k]).float().unsqueeze(1) for k in ("x_hat", "x"))
times = []
for i, k in enumerate([job["paths"][0]] * job["warmup"] + job["paths"]):
    xk = x_hat.clone().requires_grad_()
    t0 = time.perf_counter()
    torch.autograd.grad(loss(xk, x, path_idx=int(k)), xk)
    if i >= job["warmup"]:
        times.append(time.perf_counter() - t0)
print(json.dumps(times))
"""


def _study_batch(spec, batch_size: int) -> dict:
    """The first ``batch_size`` training sounds of the spec's grid, rendered (float32 as a
    StoreDataset gives them), their JTFS features and a random SPD metric of shape (B, P, P)."""
    import numpy as np
    import torch

    synth = spec.build_synth()
    param = spec.parametrization(synth)
    lay = spec.layout(param)
    idx = np.flatnonzero(lay.split == 0)[:batch_size]
    nu = torch.as_tensor(lay.nu[idx], dtype=torch.float64)
    with torch.no_grad():
        audio = synth(param.theta(nu), validate=False).float()
        features = spec.build_representation(synth).features(audio)
    g = torch.Generator().manual_seed(0)
    A = torch.randn(len(idx), nu.shape[1], nu.shape[1], generator=g)
    return {"audio": audio, "nu": nu.float(), "features": features, "metric": A @ A.transpose(1, 2),
            "index": torch.as_tensor(idx)}


def _scrapl_step_times(spec, batch: dict, loss: str, steps: int, warmup: int, hop: int) -> list[float]:
    """Seconds per training step for ``loss`` on ``batch`` (the Trainer's step: encoder, loss,
    backward, optimiser step); SCRAPL with its path-wise SGD and paths drawn with seed 0."""
    import torch

    from pnp.loss import ParameterLoss, PNPLoss, RandomPathLoss, SpectralLoss
    from pnp.training.encoder import Encoder
    from pnp.training.pathwise import make_pathwise

    synth = spec.build_synth()
    torch.manual_seed(0)
    model = Encoder(synth.n_samples, float(synth.sample_rate), batch["nu"].shape[1], hop=hop)
    if loss == "scrapl":
        objective = RandomPathLoss.from_store(spec)
        opt = make_pathwise("p-adam-saga", model.parameters(), objective.distance, lr=1e-4)
        paths = torch.Generator().manual_seed(0)
        fn = lambda nu_hat: objective(nu_hat, batch["audio"], path=objective.distance.sample_path(generator=paths))  # noqa: E731
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        if loss in ("jtfs", "mss"):
            spectral = SpectralLoss.from_store(spec, representation=loss)
            fn = ((lambda nu_hat: spectral(nu_hat, target=batch["features"])) if loss == "jtfs"
                  else (lambda nu_hat: spectral(nu_hat, nu=batch["nu"])))
        elif loss == "pnp":
            pnp_loss = PNPLoss()
            fn = lambda nu_hat: pnp_loss(nu_hat, batch["nu"], batch["metric"], lam=1.0)  # noqa: E731
        else:
            fn = lambda nu_hat: ParameterLoss()(nu_hat, batch["nu"])  # noqa: E731
    out = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        value = fn(model(batch["audio"]))
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        if i >= warmup:
            out.append(time.perf_counter() - t0)
    return out


def _loss_alone_times(spec, batch: dict, paths: list[int], warmup: int, threads: int, full_calls: int) -> dict:
    """pnp's RandomPathJTFS vs SCRAPLLoss (child process) vs pnp's full JTFS on the same
    configuration (reflect padding, kymatio's), sounds and paths: seconds per loss + gradient."""
    import json as _json
    import subprocess
    import tempfile

    import numpy as np
    import torch

    from pnp.loss import RandomPathJTFS

    cfg = spec.representation_config()
    J, Q, J_fr, Q_fr, F, T = cfg["J"], tuple(cfg["Q"]), cfg["J_fr"], cfg.get("Q_fr", 1), cfg["F"], cfg["T"]
    ours = RandomPathJTFS(J=J, J_fr=J_fr, Q=Q, shape=cfg["shape"], T=T, Q_fr=Q_fr, F=F, use_rho_log1p=True,
                          log1p_eps=spec.compression["c"], grad_mult=1.0)
    x = batch["audio"]
    x_hat = torch.roll(x, 1, 0) * 0.9  # other sounds of the batch: non-zero distances
    res: dict = {"ours": [], "full": []}
    for i, k in enumerate([paths[0]] * warmup + paths):
        xk = x_hat.clone().requires_grad_()
        t0 = time.perf_counter()
        torch.autograd.grad(ours.distance(xk, x, k), xk)
        if i >= warmup:
            res["ours"].append(time.perf_counter() - t0)
    for i in range(warmup + full_calls):
        xk = x_hat.clone().requires_grad_()
        t0 = time.perf_counter()
        torch.autograd.grad(ours.expected_distance(xk, x), xk)
        if i >= warmup:
            res["full"].append(time.perf_counter() - t0)
    import importlib.util

    if importlib.util.find_spec("scrapl") is None:
        res["peer"] = None
        return res
    config = dict(shape=cfg["shape"], J=J, Q1=Q[0], Q2=Q[1], J_fr=J_fr, Q_fr=Q_fr, T=T, F=F, use_rho_log1p=True,
                  log1p_eps=spec.compression["c"])
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(f"{tmp}/x.npz", x=x.numpy(), x_hat=x_hat.numpy())
        with open(f"{tmp}/job.json", "w") as f:
            _json.dump({"config": config, "paths": paths, "warmup": warmup, "threads": threads}, f)
        out = subprocess.run([sys.executable, "-c", PEER_PATH_TIMES, f"{tmp}/job.json", f"{tmp}/x.npz"],
                             check=True, capture_output=True, text=True)
    res["peer"] = _json.loads(out.stdout.strip().splitlines()[-1])
    return res


def scrapl_main(args) -> int:
    """``--scrapl``: the SCRAPL step and loss timings (module docs, items 3 and 4)."""
    import torch

    from pnp.loss import RandomPathJTFS
    from pnp.spec import load_spec

    torch.set_num_threads(args.threads)
    spec = load_spec(args.spec)
    batch = _study_batch(spec, args.batch_size)
    hop = args.hop or 256
    n_paths = RandomPathJTFS.from_spec(spec).n_paths
    print(f"spec {args.spec}: batch {len(batch['nu'])} sounds of N = {batch['audio'].shape[1]}, {n_paths} SCRAPL paths; "
          f"torch {torch.__version__}, {args.threads} thread(s); load average before: {_load()}")
    report = {"command": "python benchmarks/training.py " + " ".join(sys.argv[1:]),
              "spec": os.path.relpath(args.spec, ROOT),
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "batch_size": len(batch["nu"]),
              "n_paths": n_paths, "threads": args.threads, "encoder": {"kind": "scalogram", "hop": hop},
              "cpus": os.cpu_count(), "load_before": _load(), "steps": {}, "loss_alone": {}}
    print("\ntraining step (encoder + loss + backward + optimiser step), seconds:")
    med = {}
    for loss in ("scrapl", "jtfs", "mss", "pnp", "ploss"):
        n = args.jtfs_steps if loss == "jtfs" else args.steps
        times = _scrapl_step_times(spec, batch, loss, n, args.warmup, hop)
        med[loss] = statistics.median(times)
        report["steps"][loss] = {"median_s": med[loss], "min_s": min(times), "max_s": max(times), "steps": n}
        print(f"  {loss:<7} median {med[loss]:8.3f}  min {min(times):8.3f}  max {max(times):8.3f}  ({n} steps)", flush=True)
    report["step_ratios"] = {f"{loss}/scrapl": med[loss] / med["scrapl"] for loss in med if loss != "scrapl"}
    print("  ratios to the scrapl step: " + ", ".join(f"{k} {v:.2f}x" for k, v in report["step_ratios"].items()))
    paths = [RandomPathJTFS.from_spec(spec).sample_path(seed=s) for s in range(args.steps)]
    alone = _loss_alone_times(spec, batch, paths, args.warmup, args.threads, args.jtfs_steps)
    print(f"\nSCRAPL loss alone (distance + gradient in x_hat; {len(paths)} paths {paths}), seconds:")
    for name in ("ours", "peer", "full"):
        if alone[name] is None:
            print(f"  {name:<5} (scrapl-loss not installed)")
            continue
        report["loss_alone"][name] = {"median_s": statistics.median(alone[name]), "times_s": alone[name]}
        print(f"  {name:<5} median {statistics.median(alone[name]):8.3f}  ({len(alone[name])} calls)")
    mo = report["loss_alone"]["ours"]["median_s"]
    report["loss_alone_ratios"] = {"full/ours": report["loss_alone"]["full"]["median_s"] / mo}
    if "peer" in report["loss_alone"]:
        report["loss_alone_ratios"]["peer/ours"] = report["loss_alone"]["peer"]["median_s"] / mo
    print("  ratios: " + ", ".join(f"{k} {v:.2f}x" for k, v in report["loss_alone_ratios"].items()))
    report["load_after"] = _load()
    print(f"\nload average after: {_load()}")
    if args.json:
        from pnp.files import write_json

        write_json(args.json, report)
        print(f"wrote {args.json}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default=str(ROOT / "data/stores/amchirp_train.zarr"))
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per loss (default 20)")
    ap.add_argument("--jtfs-steps", type=int, default=5, help="timed steps for jtfs (default 5)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps (default 2)")
    ap.add_argument("--batch-size", type=int, default=None, help="default 32 (--scrapl: 4)")
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
    ap.add_argument("--scrapl", action="store_true", help="the SCRAPL comparison on a synthesised batch (no store)")
    ap.add_argument("--spec", default=str(ROOT / "data/amchirp_pnp_local.toml"), help="--scrapl: the study's spec")
    args = ap.parse_args(argv)
    if args.batch_size is None:  # a full JTFS step on 32 sounds takes minutes: 4 for the SCRAPL comparison
        args.batch_size = 4 if args.scrapl else 32
    if args.scrapl:
        for name in ("threads", "steps", "jtfs_steps", "batch_size"):
            if getattr(args, name) < 1:
                ap.error(f"--{name.replace('_', '-')} must be >= 1")
        return scrapl_main(args)
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
