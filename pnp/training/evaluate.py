r"""Evaluating a trained run on a split of its store.

``evaluate(run_dir, split="test")`` loads ``run_dir/best.pt`` (``weights="final"``: the last
epoch's weights in ``checkpoint.pt``, what the PNP authors test), predicts ν̂ = f(x) (B, P) for every
sample of the split (batched, the encoder in eval mode) and reports

* ``mae_nu`` — per free parameter, the mean absolute error ``mean_s |ν̂_sp − ν_sp|`` in the
  normalised parameters (ν ∈ [-1, 1]; one grid bin of a 12-bin grid is 2/12 = 0.167 wide), and
  ``mae_nu_mean``, their mean; ``mae_octaves``, the same error in octaves for log-scaled
  parameters (``|Δν| · (log2 hi − log2 lo) / 2``);
* ``ploss`` — the P-loss ``mean_{s,p} (ν̂ − ν)²``;
* ``pnp_loss`` — the PNP loss with λ = 0, ``½ mean_s (ν̂−ν)ᵀ M_s (ν̂−ν)`` (stores with a metric);
* ``jtfs_distance`` — ``mean_s ‖Φ g(θ(ν̂_s)) − Φ g(θ_s)‖₂`` through the store's representation Φ
  (JTFS for the shipped training specs; its name is in ``store_representation``) with the store's
  compression: Φ g(θ_s) are the stored features, Φ g(θ(ν̂_s)) is computed batched in the spec's
  precision exactly as ``pnp precompute`` renders and analyses a sample (float64, or float64
  synth and float32 representation for ``compute.dtype = "mixed"``) — the authors' "JTFS
  distance";
* ``mrstft`` — auraloss's ``MultiResolutionSTFTLoss()`` (defaults) between ``g(θ(ν̂_s))`` and
  ``g(θ_s)``, per sound, averaged — the authors' "MSS" test metric (None for sounds of at most
  1024 samples, which auraloss's 2048-point FFT cannot pad);
* ``mss_distance`` — the same L2 distance under the default multi-scale spectrogram (windows
  32 … 1024 samples that fit N, hop W/4) with the store's compression, both sounds rendered here.

Writes ``run_dir/evaluation.json`` (``evaluation_<split>.json`` for the other splits),
``run_dir/predictions_<split>.npz`` (``index``, ``nu``, ``nu_hat`` and the per-sound
``jtfs_distance``, ``mss_distance``, ``mrstft``, ``ploss``) and a scatter plot of ν̂
against ν, ``run_dir/predictions_<split>.png``.  :func:`format_table` / :func:`compare_table`
print one run or several side by side.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np
import torch

#: rows of the printed tables: (key, label, format)
ROWS = (
    ("loss", "training loss", "{}"),
    ("best_epoch", "best epoch / epochs", "{}"),
    ("n", "samples", "{}"),
    ("ploss", "P-loss (MSE in nu)", "{:.4g}"),
    ("pnp_loss", "PNP loss (lambda = 0)", "{:.4g}"),
    ("jtfs_distance", "JTFS distance", "{:.4g}"),
    ("mss_distance", "MSS distance", "{:.4g}"),
    ("mrstft", "MRSTFT (auraloss)", "{:.4g}"),
    ("mae_nu_mean", "MAE in nu, mean", "{:.4f}"),
)


#: which weights :func:`evaluate` tests: the best validation epoch's, or the last epoch's
WEIGHTS = ("best", "final")


def _out_name(split: str, stem: str, ext: str) -> str:
    return f"{stem}.{ext}" if (split == "test" and stem == "evaluation") else f"{stem}_{split}.{ext}"


@torch.no_grad()
def evaluate(run_dir: str | os.PathLike, split: str = "test", batch_size: int = 64, device: str = "cpu",
             progress: bool = True, write: bool = True, weights: str = "best",
             max_samples: int | None = None) -> dict[str, Any]:
    """Evaluate ``run_dir/best.pt`` (``weights="final"``: ``checkpoint.pt``) on ``split`` of its
    store (see the module docs); ``max_samples``: only the split's first ``max_samples`` sounds
    (a fixed subset, in store order).

    Returns the JSON-able result dict (also written to ``run_dir`` when ``write``).  Raises
    ``FileNotFoundError`` without a run / store, ``ValueError`` for bad arguments.
    """
    from tqdm.auto import tqdm

    from pnp.data import SPLITS, StoreDataset, make_loader
    from pnp.files import write_json
    from pnp.loss import SpectralLoss
    from pnp.loss.audio import MRSTFT_LONGEST_FFT, mrstft_distance
    from pnp.training.plots import plot_predictions
    from pnp.training.trainer import BEST, CHECKPOINT, _store_keys, load_encoder, resolve_device

    run_dir = os.path.abspath(os.fspath(run_dir))
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"no run directory {run_dir}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(map(repr, SPLITS))}, got {split!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(map(repr, WEIGHTS))}, got {weights!r}")
    dev = resolve_device(device)
    name = BEST if weights == "best" else CHECKPOINT
    path = os.path.join(run_dir, name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no {name} in {run_dir} (not a training run, or no epoch finished yet)")
    model, config, ck = load_encoder(path, map_location="cpu")
    model.to(dev)
    store = config["store"]
    if not os.path.exists(store):
        raise FileNotFoundError(f"the run's store {store} does not exist any more")
    probe = StoreDataset(store, split=split, fields=("nu",))
    if probe.attrs.get("spec_hash") != config.get("store_spec_hash"):
        raise ValueError(f"the store at {store} is not the one the run was trained on (spec hash "
                         f"{probe.attrs.get('spec_hash')} vs {config.get('store_spec_hash')})")
    fields = ["theta", "nu", "features"] + (["metric"] if "metric" in _store_keys(store) else [])
    ds = StoreDataset(store, split=split, fields=fields, input="audio", dtype=torch.float64, limit=max_samples)
    synth, param = ds.synth, ds.parametrization
    rep = ds.representation.to(dev)
    mss = SpectralLoss.from_store(ds, representation="mss").representation.to(dev)
    synth = synth.to(dev)
    model_dtype = next(model.parameters()).dtype
    rep_dtype = ds.spec.representation_dtype
    # auraloss pads each frame by half its longest FFT: sounds must be longer than that
    mrstft = mrstft_distance() if synth.n_samples > MRSTFT_LONGEST_FFT // 2 else None

    def render(nu: torch.Tensor) -> torch.Tensor:  # (B, P) float64 → audio (B, N) float64
        return synth(param.theta(nu.clamp(-1.0, 1.0)), validate=False)

    loader = make_loader(ds, batch_size, shuffle=False)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("index", "nu", "nu_hat", "pnp", "jtfs", "mss", "mrstft")}
    for batch in tqdm(loader, desc=f"evaluate {os.path.basename(run_dir)} ({split})", unit="batch",
                      disable=not progress, leave=False):
        batch = {k: v.to(dev) for k, v in batch.items()}
        nu = batch["nu"]
        nu_hat = model(batch["audio"].to(model_dtype)).to(torch.float64)
        d = nu_hat - nu
        if "metric" in batch:
            rows["pnp"].append((0.5 * torch.einsum("bi,bij,bj->b", d, batch["metric"], d)).cpu().numpy())
        x_hat = render(nu_hat)
        nu_true = torch.as_tensor(np.asarray(param.nu(batch["theta"].cpu().numpy())), dtype=torch.float64, device=dev)
        x = render(nu_true)
        S_hat = rep.features(x_hat, rep_dtype).to(torch.float64)
        rows["jtfs"].append(torch.linalg.vector_norm(S_hat - batch["features"], dim=1).cpu().numpy())
        rows["mss"].append(torch.linalg.vector_norm(mss.features(x_hat) - mss.features(x), dim=1).cpu().numpy())
        # auraloss averages over the batch: one sound at a time for per-sound values
        rows["mrstft"].append(np.array([float(mrstft(x_hat[b : b + 1, None].float(), x[b : b + 1, None].float()))
                                        if mrstft is not None else np.nan for b in range(x.shape[0])]))
        rows["index"].append(batch["index"].cpu().numpy())
        rows["nu"].append(nu.cpu().numpy())
        rows["nu_hat"].append(nu_hat.cpu().numpy())
    # arrays (a split is never empty), but "pnp" is None without a stored metric
    arr: dict[str, Any] = {k: np.concatenate(v) if v else None for k, v in rows.items()}
    err = arr["nu_hat"] - arr["nu"]
    names = list(ds.params)
    mae = np.abs(err).mean(axis=0)
    result: dict[str, Any] = {
        "run_dir": run_dir,
        "split": split,
        "n": int(err.shape[0]),
        "loss": config["loss"],
        "weights": weights,
        "max_samples": max_samples,
        "best_epoch": int(ck["epoch"]),
        "epochs": int(config["epochs"]),
        "store": store,
        "params": names,
        "mae_nu": {n: float(v) for n, v in zip(names, mae)},
        "mae_nu_mean": float(mae.mean()),
        "mae_octaves": {n: (float(v * 0.5 * (q.s_hi - q.s_lo) * np.log2(10.0)) if q.is_log else None)
                        for n, v, q in zip(names, mae, param.free_space.parameters)},
        "ploss": float(np.mean(err**2)),
        "pnp_loss": float(arr["pnp"].mean()) if arr["pnp"] is not None else None,
        "store_representation": rep.name,
        "jtfs_distance": float(arr["jtfs"].mean()),
        "mss_distance": float(arr["mss"].mean()),
        "mrstft": float(arr["mrstft"].mean()) if mrstft is not None else None,
        "config": {k: config[k] for k in ("loss", "epochs", "batch_size", "lr", "damping", "lam", "schedule", "seed")},
    }
    if write:
        write_json(os.path.join(run_dir, _out_name(split, "evaluation", "json")), result)
        np.savez(os.path.join(run_dir, f"predictions_{split}.npz"), index=arr["index"], nu=arr["nu"],
                 nu_hat=arr["nu_hat"], jtfs_distance=arr["jtfs"], mss_distance=arr["mss"], mrstft=arr["mrstft"],
                 ploss=(err**2).mean(axis=1))
        plot_predictions(arr["nu"], arr["nu_hat"], names, os.path.join(run_dir, f"predictions_{split}.png"),
                         title=f"{os.path.basename(run_dir)} ({config['loss']}), {split} split")
    return result


def _cell(result: Mapping[str, Any], key: str, fmt: str) -> str:
    if key == "best_epoch":
        return f"{result.get('best_epoch')}/{result.get('epochs')}"
    if key.startswith(("mae_nu:", "mae_octaves:")):
        group, name = key.split(":", 1)
        v = result.get(group, {}).get(name)
    else:
        v = result.get(key)
    return "—" if v is None else fmt.format(v)


def compare_table(results: Sequence[Mapping[str, Any]], names: Sequence[str] | None = None) -> str:
    """A plain-text table, one column per run (``names`` default to the run directories' names)."""
    if not results:
        raise ValueError("compare_table needs at least one result")
    names = list(names) if names is not None else [os.path.basename(r["run_dir"]) for r in results]
    params = list(results[0]["params"])
    rows = (list(ROWS[:-1]) + [(f"mae_nu:{p}", f"MAE in nu, {p}", "{:.4f}") for p in params] + [ROWS[-1]]
            + [(f"mae_octaves:{p}", f"MAE in octaves, {p}", "{:.4f}") for p in params
               if results[0].get("mae_octaves", {}).get(p) is not None])
    table = [["", *names]] + [[label, *(_cell(r, key, fmt) for r in results)] for key, label, fmt in rows]
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    lines = []
    for i, row in enumerate(table):
        lines.append("  ".join(cell.ljust(widths[0]) if c == 0 else cell.rjust(widths[c]) for c, cell in enumerate(row)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_table(result: Mapping[str, Any]) -> str:
    """One run's evaluation as a plain-text table."""
    return compare_table([result])


__all__ = ["evaluate", "compare_table", "format_table"]
