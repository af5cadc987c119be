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


def open_run_store(config: Mapping[str, Any]):
    """The :class:`pnp.store.Store` a run (its ``config``) was trained on; ``FileNotFoundError``
    when it is gone, ``ValueError`` when the store there has another spec."""
    from pnp.store import open_store

    store = config["store"]
    if not os.path.exists(store):
        raise FileNotFoundError(f"the run's store {store} does not exist any more")
    opened = open_store(store)
    if opened.attrs.get("spec_hash") != config.get("store_spec_hash"):
        raise ValueError(f"the store at {store} is not the one the run was trained on (spec hash "
                         f"{opened.attrs.get('spec_hash')} vs {config.get('store_spec_hash')})")
    return opened


def _dataset(config: Mapping[str, Any], split: str, max_samples: int | None):
    """The split of the run's store (θ, ν, features, metric if stored; audio), in float64;
    ``ValueError`` if the store is not the one the run was trained on."""
    from pnp.data import StoreDataset

    opened = open_run_store(config)
    fields = ["theta", "nu", "features"] + (["metric"] if opened.has_metric else [])
    return StoreDataset(opened, split=split, fields=fields, input="audio", dtype=torch.float64, limit=max_samples)


class SoundDistances:
    """The distances of the module docs between renderings and reference sounds, for a store's
    spec: JTFS through the store's representation (in the spec's representation dtype, with its
    compression), the default MSS with the store's compression, auraloss's MRSTFT.  Used by
    :func:`score` (references rendered from the stored θ) and by :mod:`pnp.training.predict`
    (references read from audio files).

    Attributes: ``synth``, ``param`` (ν → θ), ``rep``, ``mss`` on ``dev``; ``rep_dtype``;
    ``mrstft`` (None for sounds of at most 1024 samples).
    """

    def __init__(self, spec, dev: torch.device, synth=None, parametrization=None, representation=None):
        from pnp.loss import SpectralLoss
        from pnp.loss.audio import MRSTFT_LONGEST_FFT, mrstft_distance

        synth = synth if synth is not None else spec.build_synth()
        self.dev = dev
        self.synth = synth.to(dev)
        self.param = parametrization if parametrization is not None else spec.parametrization(synth)
        rep = representation if representation is not None else spec.build_representation(synth)
        self.rep = rep.to(dev)
        self.mss = SpectralLoss.from_store(spec, representation="mss").representation.to(dev)
        self.rep_dtype = spec.representation_dtype
        # auraloss pads each frame by half its longest FFT: sounds must be longer than that
        self.mrstft = mrstft_distance() if self.synth.n_samples > MRSTFT_LONGEST_FFT // 2 else None

    def render(self, nu: torch.Tensor) -> torch.Tensor:
        """Audio (B, N) float64 of ν (B, P) float64 (clamped to [-1, 1])."""
        return self.synth(self.param.theta(nu.clamp(-1.0, 1.0)), validate=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Φ x (B, K) float64: the store's representation in its dtype, with its compression."""
        return self.rep.features(x, self.rep_dtype).to(torch.float64)

    def distances(self, x_hat: torch.Tensor, x: torch.Tensor, features: torch.Tensor | None = None) -> dict[str, np.ndarray]:
        """Per sound (B,) float64 numpy: ``jtfs`` = ‖Φ x̂ − Φ x‖₂ (``features``: Φ x (B, K) when
        known, e.g. stored), ``mss`` likewise under the MSS, ``mrstft`` (NaN without it); and
        ``jtfs_relative`` = jtfs / ‖Φ x‖₂.  ``x_hat``, ``x``: audio (B, N) float64."""
        S = self.features(x) if features is None else features.to(torch.float64)
        jtfs = torch.linalg.vector_norm(self.features(x_hat) - S, dim=1)
        mss = torch.linalg.vector_norm(self.mss.features(x_hat) - self.mss.features(x), dim=1)
        # auraloss averages over the batch: one sound at a time for per-sound values
        mr = np.array([float(self.mrstft(x_hat[b : b + 1, None].float(), x[b : b + 1, None].float()))
                       if self.mrstft is not None else np.nan for b in range(x.shape[0])])
        rel = jtfs / torch.linalg.vector_norm(S, dim=1).clamp_min(1e-300)
        return {"jtfs": jtfs.cpu().numpy(), "mss": mss.cpu().numpy(), "mrstft": mr, "jtfs_relative": rel.cpu().numpy()}


class _Scorer:
    """Per-sound scores of an encoder's predictions on batches of a :class:`~pnp.data.StoreDataset`
    (the module docs define each), accumulated batch by batch."""

    KEYS = ("index", "nu", "nu_hat", "pnp", "jtfs", "mss", "mrstft")

    def __init__(self, model, ds, dev: torch.device):
        self.model, self.ds, self.dev = model, ds, dev
        self.sounds = SoundDistances(ds.spec, dev, ds.synth, ds.parametrization, ds.representation)
        self.synth, self.param, self.rep, self.mrstft = (self.sounds.synth, self.sounds.param, self.sounds.rep,
                                                         self.sounds.mrstft)
        self.model_dtype = next(model.parameters()).dtype
        self.rows: dict[str, list[np.ndarray]] = {k: [] for k in self.KEYS}

    def add(self, batch: Mapping[str, torch.Tensor]) -> None:
        rows, nu = self.rows, batch["nu"]
        nu_hat = self.model(batch["audio"].to(self.model_dtype)).to(torch.float64)
        d = nu_hat - nu
        if "metric" in batch:
            rows["pnp"].append((0.5 * torch.einsum("bi,bij,bj->b", d, batch["metric"], d)).cpu().numpy())
        nu_true = torch.as_tensor(np.asarray(self.param.nu(batch["theta"].cpu().numpy())), dtype=torch.float64,
                                  device=self.dev)
        dist = self.sounds.distances(self.sounds.render(nu_hat), self.sounds.render(nu_true), batch["features"])
        for key in ("jtfs", "mss", "mrstft"):
            rows[key].append(dist[key])
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


__all__ = ["WEIGHTS", "SoundDistances", "score", "compare_table", "format_table"]
