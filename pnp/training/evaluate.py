r"""Evaluating a trained run on a split of its store.

``score(weights, split="test")`` loads a run's weights (``best.pt``, or ``checkpoint.pt``: the
last epoch's, what the PNP authors test), predicts ν̂ = f(x) (B, P) for every
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

:func:`pnp.pipelines.training.evaluate` writes them into the run directory (``pnp evaluate``);
:func:`format_table` / :func:`compare_table` print one run or several side by side.
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


@torch.no_grad()
def score(weights: str | os.PathLike, split: str = "test", batch_size: int = 64, device: str = "cpu",
          progress: bool = True, max_samples: int | None = None,
          label: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
    """Score the encoder saved in ``weights`` (a ``best.pt`` / ``checkpoint.pt`` file) on ``split``
    of the store it was trained on (see the module docs); ``max_samples``: only the split's first
    ``max_samples`` sounds (a fixed subset, in store order).

    Returns ``(result, arrays)``: the JSON-able summary, and the per-sound arrays (``index``,
    ``nu``, ``nu_hat`` (n, P) float64, ``pnp``, ``jtfs``, ``mss``, ``mrstft`` (n,) float64; ``pnp`` is
    None without a stored metric).  ``FileNotFoundError`` without the store, ``ValueError`` /
    ``TypeError`` for bad arguments.
    """
    from tqdm.auto import tqdm

    from pnp.data import make_loader
    from pnp.store.codes import split_code
    from pnp.training.trainer import load_encoder, torch_device

    split_code(split)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise TypeError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    dev = torch_device(device)
    model, config, ck = load_encoder(weights, map_location="cpu")
    model.to(dev)
    ds = _dataset(config, split, max_samples)
    scorer = _Scorer(model, ds, dev)
    for batch in tqdm(make_loader(ds, batch_size, shuffle=False), desc=f"evaluate {label} ({split})".replace("  ", " "),
                      unit="batch", disable=not progress, leave=False):
        scorer.add({k: v.to(dev) for k, v in batch.items()})
    arr = scorer.arrays()
    return _result(split, max_samples, config, ck, ds, scorer, arr), arr


def _dataset(config: Mapping[str, Any], split: str, max_samples: int | None):
    """The split of the run's store (θ, ν, features, metric if stored; audio), in float64;
    ``ValueError`` if the store is not the one the run was trained on."""
    from pnp.data import StoreDataset
    from pnp.store import open_store

    store = config["store"]
    if not os.path.exists(store):
        raise FileNotFoundError(f"the run's store {store} does not exist any more")
    opened = open_store(store)
    if opened.attrs.get("spec_hash") != config.get("store_spec_hash"):
        raise ValueError(f"the store at {store} is not the one the run was trained on (spec hash "
                         f"{opened.attrs.get('spec_hash')} vs {config.get('store_spec_hash')})")
    fields = ["theta", "nu", "features"] + (["metric"] if opened.has_metric else [])
    return StoreDataset(opened, split=split, fields=fields, input="audio", dtype=torch.float64, limit=max_samples)


class _Scorer:
    """Per-sound scores of an encoder's predictions on batches of a :class:`~pnp.data.StoreDataset`
    (the module docs define each), accumulated batch by batch."""

    KEYS = ("index", "nu", "nu_hat", "pnp", "jtfs", "mss", "mrstft")

    def __init__(self, model, ds, dev: torch.device):
        from pnp.loss import SpectralLoss
        from pnp.loss.audio import MRSTFT_LONGEST_FFT, mrstft_distance

        self.model, self.ds, self.dev = model, ds, dev
        self.synth, self.param = ds.synth.to(dev), ds.parametrization
        self.rep = ds.representation.to(dev)
        self.mss = SpectralLoss.from_store(ds, representation="mss").representation.to(dev)
        self.model_dtype = next(model.parameters()).dtype
        self.rep_dtype = ds.spec.representation_dtype
        # auraloss pads each frame by half its longest FFT: sounds must be longer than that
        self.mrstft = mrstft_distance() if self.synth.n_samples > MRSTFT_LONGEST_FFT // 2 else None
        self.rows: dict[str, list[np.ndarray]] = {k: [] for k in self.KEYS}

    def render(self, nu: torch.Tensor) -> torch.Tensor:
        """Audio (B, N) float64 of ν (B, P) float64 (clamped to [-1, 1])."""
        return self.synth(self.param.theta(nu.clamp(-1.0, 1.0)), validate=False)

    def add(self, batch: Mapping[str, torch.Tensor]) -> None:
        rows, nu = self.rows, batch["nu"]
        nu_hat = self.model(batch["audio"].to(self.model_dtype)).to(torch.float64)
        d = nu_hat - nu
        if "metric" in batch:
            rows["pnp"].append((0.5 * torch.einsum("bi,bij,bj->b", d, batch["metric"], d)).cpu().numpy())
        x_hat = self.render(nu_hat)
        nu_true = torch.as_tensor(np.asarray(self.param.nu(batch["theta"].cpu().numpy())), dtype=torch.float64,
                                  device=self.dev)
        x = self.render(nu_true)
        S_hat = self.rep.features(x_hat, self.rep_dtype).to(torch.float64)
        rows["jtfs"].append(torch.linalg.vector_norm(S_hat - batch["features"], dim=1).cpu().numpy())
        rows["mss"].append(torch.linalg.vector_norm(self.mss.features(x_hat) - self.mss.features(x), dim=1)
                           .cpu().numpy())
        # auraloss averages over the batch: one sound at a time for per-sound values
        rows["mrstft"].append(np.array([float(self.mrstft(x_hat[b : b + 1, None].float(), x[b : b + 1, None].float()))
                                        if self.mrstft is not None else np.nan for b in range(x.shape[0])]))
        rows["index"].append(batch["index"].cpu().numpy())
        rows["nu"].append(nu.cpu().numpy())
        rows["nu_hat"].append(nu_hat.cpu().numpy())

    def arrays(self) -> dict[str, Any]:
        """The scores as arrays (a split is never empty); ``"pnp"`` is None without a stored metric."""
        return {k: np.concatenate(v) if v else None for k, v in self.rows.items()}


def _result(split, max_samples, config, ck, ds, scorer: _Scorer, arr) -> dict[str, Any]:
    err = arr["nu_hat"] - arr["nu"]
    names = list(ds.params)
    mae = np.abs(err).mean(axis=0)
    return {
        "split": split,
        "n": int(err.shape[0]),
        "loss": config["loss"],
        "max_samples": max_samples,
        "best_epoch": int(ck["epoch"]),
        "epochs": int(config["epochs"]),
        "store": config["store"],
        "params": names,
        "mae_nu": {n: float(v) for n, v in zip(names, mae)},
        "mae_nu_mean": float(mae.mean()),
        "mae_octaves": {n: (float(v * 0.5 * (q.s_hi - q.s_lo) * np.log2(10.0)) if q.is_log else None)
                        for n, v, q in zip(names, mae, scorer.param.free_space.parameters)},
        "ploss": float(np.mean(err**2)),
        "pnp_loss": float(arr["pnp"].mean()) if arr["pnp"] is not None else None,
        "store_representation": scorer.rep.name,
        "jtfs_distance": float(arr["jtfs"].mean()),
        "mss_distance": float(arr["mss"].mean()),
        "mrstft": float(arr["mrstft"].mean()) if scorer.mrstft is not None else None,
        "config": {k: config[k] for k in ("loss", "epochs", "batch_size", "lr", "damping", "lam", "schedule", "seed")},
    }


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


__all__ = ["WEIGHTS", "score", "compare_table", "format_table"]
