"""FTM drum from a recording: how many of ``--targets`` random drums ``pnp match --target-audio``
recovers within 0.1 in ν, from random initialisations and from an encoder's prediction
(``--init-from``), at a size that runs in minutes on this 2-core machine.

Scaled down from PNP's FTM set (2**16 samples at 22050 Hz, 10^5 sounds, J = 13): the drum at
8192 Hz for 1 s (N = 8192), a small JTFS (J = 8, Q = (8, 1), J_fr = 3, F = 2, T = global, log1p
c = 1e-3: the store's features and the matching loss are the same transform), a store of
``--counts``^5 jittered sounds (no Jacobians), a P-loss encoder trained ``--epochs`` epochs on it.
Every target is rendered by pnp's FTM synth at a uniformly random θ, written to a float32 WAV and
matched through the CLI (all five parameters free, bold driver, ``--iters`` iterations):

* ``random``: ``--init anywhere --n-inits N`` (uniform in the box);
* ``init-from``: ``--init-from RUN_DIR`` (the encoder's prediction, one start).

A target counts as recovered when the lowest-loss initialisation (what a user would keep: the
truth is not used to choose) ends within 0.1 of the truth in ν; ``any_within`` also counts
targets that some initialisation reached; ``per_parameter`` the lowest-loss initialisation's
error |ν̂ − ν*| per parameter; ``median_loss_ratio`` its final / initial loss.  Writes ``--json`` (default
``docs/results/ftm_recovery.json``) with the command, the settings and every target's numbers.

    python benchmarks/ftm_recovery.py                    # ~10 min here
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time

import numpy as np

SYNTH = {"sample_rate": 8192.0, "n_samples": 8192}
#: seed offset of the targets' draw (apart from the initialisations' seeds 0, 1, ...)
TARGET_SEED = 1000
JTFS = {"J": 8, "Q": [8, 1], "J_fr": 3, "Q_fr": 1, "F": 2, "T": "global"}
SPEC = """
name = "ftm_recovery"
description = "benchmarks/ftm_recovery.py: FTM drum, 1 s at 8192 Hz, small JTFS"
[synth]
name = "ftm"
config = {{ sample_rate = 8192.0, n_samples = 8192 }}
[grid]
kind = "jittered"
counts = [{c}, {c}, {c}, {c}, {c}]
seed = 0
[split]
rule = "random"
fractions = [0.8, 0.1, 0.1]
seed = 0
[representation]
name = "jtfs"
config = {{ J = 8, Q = [8, 1], J_fr = 3, Q_fr = 1, F = 2, T = "global" }}
[features]
compression = "log1p"
c = 1e-3
[compute]
dtype = "mixed"
batch_size = 8
[store]
chunk_size = 64
jacobian = false
"""


def build_store(path: str, counts: int) -> str:
    """Precompute the store in this process (the dask worker's functions, no cluster)."""
    from pnp import store as pstore
    from pnp.pipelines.precompute import prepare_store
    from pnp.spec import loads_spec
    from pnp.store.compute import build_engine, process_chunk

    spec = loads_spec(SPEC.format(c=counts), source="benchmarks/ftm_recovery.py")
    path = pstore.normalise_path(path)
    group, _ = prepare_store(spec, path, "cpu")
    engine = build_engine(spec, "cpu")
    for chunk in pstore.pending_chunks(group):
        process_chunk(group, chunk, engine)
    pstore.consolidate(path)
    return path


def match_args(wav: str, truth: np.ndarray, out: str, iters: int) -> list[str]:
    """The ``pnp match`` arguments shared by both initialisations."""
    loss_config = [f"{k}={json.dumps(v).replace(' ', '')}" for k, v in JTFS.items()] + ["log1p_c=1e-3"]
    return ["match", "--synth", "ftm", "--loss", "jtfs", "--synth-config", *(f"{k}={v}" for k, v in SYNTH.items()),
            "--loss-config", *loss_config, "--target-audio", wav, "--truth", ",".join(f"{v:.17g}" for v in truth),
            "--iters", str(iters), "--out", out, "--quiet"]


def run_cli(argv: list[str]) -> dict:
    from pnp.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    if code != 0:
        raise SystemExit(f"pnp {' '.join(argv)} exited {code}")
    with open(os.path.join(argv[argv.index("--out") + 1], "summary.json")) as f:
        return json.load(f)


def one_target(k: int, theta: np.ndarray, synth, tmp: str, run_dir: str, args) -> dict:
    """Render target ``k``, match it both ways; its record."""
    import torch

    from pnp.audio import write_audio

    wav = os.path.join(tmp, f"target{k}.wav")
    with torch.no_grad():
        write_audio(wav, synth(torch.as_tensor(theta[None]))[0].numpy(), synth.sample_rate)
    rec: dict = {"theta": dict(zip(synth.space.names, theta.tolist()))}
    for name, extra in (("random", ["--init", "anywhere", "--n-inits", str(args.inits), "--seed", str(k)]),
                        ("init_from", ["--init-from", run_dir, "--device", "cpu"])):
        t0 = time.perf_counter()
        s = run_cli(match_args(wav, theta, os.path.join(tmp, f"m{k}_{name}"), args.iters) + extra)
        d = np.asarray(s["final_distance"])
        best = s["best"]["init"]
        err = np.abs(np.asarray(s["best"]["nu"]) - np.asarray(s["target_nu"]))
        rec[name] = {"best_distance": s["best"]["distance"], "min_distance": float(d.min()),
                     "initial_distance": s["runs"][0]["initial_distance"], "final_distance": d.tolist(),
                     "best_loss": s["best"]["loss"], "best_initial_loss": s["runs"][0]["loss"][best][0],
                     "best_error_nu": dict(zip(s["free"], err.tolist())), "seconds": time.perf_counter() - t0}
        if name == "init_from":
            rec[name]["prediction"] = s["init_from"]["theta_hat"]
    return rec


def summarise(records: list[dict], threshold: float) -> dict:
    out = {}
    for name in ("random", "init_from"):
        best = np.array([r[name]["best_distance"] for r in records])
        low = np.array([r[name]["min_distance"] for r in records])
        start = np.array([min(r[name]["initial_distance"]) for r in records])
        err = {p: np.array([r[name]["best_error_nu"][p] for r in records]) for p in records[0][name]["best_error_nu"]}
        ratio = np.array([r[name]["best_loss"] / r[name]["best_initial_loss"] for r in records])
        out[name] = {"recovered": int(np.sum(best < threshold)), "of": len(records),
                     "recovered_fraction": float(np.mean(best < threshold)),
                     "any_within": int(np.sum(low < threshold)),
                     "median_best_distance": float(np.median(best)),
                     "median_start_distance": float(np.median(start)),
                     "median_loss_ratio": float(np.median(ratio)),
                     "per_parameter": {p: {"median_abs_error_nu": float(np.median(e)),
                                           "within_threshold": int(np.sum(e < threshold))} for p, e in err.items()},
                     "seconds": float(sum(r[name]["seconds"] for r in records))}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", type=int, default=10)
    p.add_argument("--counts", type=int, default=4, help="grid bins per parameter of the training store")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--inits", type=int, default=4, help="random initialisations per target")
    p.add_argument("--iters", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default=None, help="directory for the store and the run (kept; default: a temporary one)")
    p.add_argument("--json", default="docs/results/ftm_recovery.json")
    args = p.parse_args(argv)
    import torch

    import pnp.synth
    from pnp.files import write_json
    from pnp.pipelines.training import train

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or tmp
        store = build_store(os.path.join(work, "ftm_recovery.zarr"), args.counts)
        t_store = time.perf_counter() - t0
        run_dir = os.path.join(work, "run")
        reused = os.path.exists(os.path.join(run_dir, "best.pt"))  # a kept --work directory: the same encoder
        if not reused:
            train(store, loss="ploss", out=run_dir, epochs=args.epochs, batch_size=32, lr=1e-3, seed=0, progress=False)
        evaluation = json.loads(json.dumps(_evaluate(run_dir)))
        t_train = time.perf_counter() - t0 - t_store
        synth = pnp.synth.get("ftm", **SYNTH)
        # targets from their own stream (the initialisations use seeds 0 .. targets - 1)
        thetas = synth.space.uniform(args.targets, seed=TARGET_SEED + args.seed).theta
        records = []
        for k, theta in enumerate(thetas):
            records.append(one_target(k, np.asarray(theta, dtype=np.float64), synth, tmp, run_dir, args))
            r = records[-1]
            print(f"target {k}: best distance random {r['random']['best_distance']:.3f}, "
                  f"init-from {r['init_from']['best_distance']:.3f}", flush=True)
    result = {
        "command": "python benchmarks/ftm_recovery.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count(),
        "synth": {"name": "ftm", **SYNTH}, "jtfs": {**JTFS, "log1p_c": 1e-3},
        "store": {"counts": [args.counts] * 5, "samples": args.counts**5, "split": [0.8, 0.1, 0.1],
                  "seconds": t_store},
        "encoder": {"loss": "ploss", "epochs": args.epochs, "batch_size": 32, "lr": 1e-3, "seconds": None if reused else t_train,
                    "reused_from_work_dir": reused,
                    "test_mae_nu": evaluation},
        "matching": {"free": list(synth.space.names), "optimizer": "bold", "iters": args.iters,
                     "targets": f"uniform in the box (log-uniform for omega, p, D), seed {TARGET_SEED + args.seed}",
                     "random_inits": args.inits, "threshold": 0.1,
                     "recovered_rule": "the lowest-final-loss initialisation ends within 0.1 of the truth in nu"},
        "summary": summarise(records, 0.1), "targets": records,
    }
    write_json(args.json, result)
    print(json.dumps(result["summary"], indent=2))
    return 0


def _evaluate(run_dir: str) -> dict:
    from pnp.pipelines.training import evaluate

    r = evaluate(run_dir, progress=False, write=False)
    return {"mae_nu": r["mae_nu"], "mae_nu_mean": r["mae_nu_mean"], "n": r["n"]}


if __name__ == "__main__":
    sys.exit(main())
