r"""Training an encoder ν̂ = f(x) on a precompute store, with one of four losses.

``Trainer(loss="pnp", epochs=30, ...).fit(store)`` trains an
:class:`~pnp.training.encoder.Encoder` on the store's ``train`` split (audio → ν̂ (B, P) in
(-1, 1)) and validates on its ``val`` split after every epoch (``pnp train`` /
:func:`pnp.pipelines.training.train` do the same and write a run directory).

Losses (``loss``):

==========  =======================================================================================
``ploss``   :class:`pnp.loss.ParameterLoss`, ``mean (ν̂ − ν)²`` (the P-loss)
``pnp``     :class:`pnp.loss.PNPLoss`, ``½ mean_b (ν̂−ν)ᵀ(M_b + λD)(ν̂−ν)`` with the stored metric M
            (needs a store precomputed with ``store.jacobian = true``); ``damping`` picks D, the
            λ schedule (``schedule``, ``lam``) sets λ per epoch; validation always uses λ = 0
``mss``     :class:`pnp.loss.SpectralLoss` with the default multi-scale spectrogram and the store's
            compression: renders g(θ(ν̂)) at every step (the DDSP baseline)
``jtfs``    :class:`pnp.loss.SpectralLoss` with the store's own JTFS in the loop; the targets are
            the stored features Φ g(θ)
``mrstft``  :class:`pnp.loss.AudioSpectralLoss`: auraloss's ``MultiResolutionSTFTLoss()`` between the
            rendered sound and the stored audio (the ICASSP 2023 DDSP baseline)
``specl2``  :class:`pnp.loss.AudioSpectralLoss`: the TASLP baseline, linear-magnitude 6-scale STFT
            L2 (n_fft 2048 … 64, hop n/4)
``scrapl``  :class:`pnp.loss.RandomPathLoss`: SCRAPL, one random path of the store's JTFS per step
            between the rendered and the stored sound (needs a JTFS store with audio); optimiser
            ``p-adam-saga`` by default (SGD behind 𝒫-Adam and 𝒫-SAGA, :mod:`pnp.training.pathwise`);
            validation compares each sound on one fixed path (a deterministic estimate of the
            expected training loss); ``theta_is`` sets the path probabilities by θ-IS
==========  =======================================================================================

Every epoch records (``history_``, one row per epoch; ``metrics.csv`` in a run directory): ``train_loss`` (mean
training loss over the epoch's samples, with the epoch's λ), ``val_loss`` (the training loss on the
validation split, λ = 0), ``val_ploss`` (the P-loss on the validation split, for every loss),
``val_pnp`` (the PNP loss with λ = 0 on the validation split, when the store has a metric),
``lam`` (λ used in the epoch), ``action`` (what the schedule did with ``val_loss``: ``constant``,
``decay``, ``accelerate``, ``brake``), ``lr``, ``seconds`` and ``samples_per_s``.

Schedules (``schedule``): ``constant`` (λ = ``lam``, default 0), ``decay`` (λ halves every epoch
from ``lam``, default 1) and ``lm`` (:class:`pnp.loss.LevenbergMarquardt` from ``lam``, default 1:
a validation improvement divides λ by 2, a non-improvement multiplies it by 10, up to
``max(1e4, 1e4 · lam)``, **and restores the best weights and optimizer state**, logged as a brake:
pnp's variant) and ``adaptive`` (:class:`pnp.loss.AdaptiveDamping`, the PNP authors' rule: from
λ₀ = ``lam``, by default ``"max-eig-squared"`` = the square of the largest stored eigenvalue of M
over the training split, an improvement multiplies λ by ``accelerator`` (0.05), a
non-improvement by ``brake`` (1), λ ≤ λ₀, nothing restored).  λ only enters the ``pnp`` loss;
with the other losses ``lm`` still restores the best weights on a brake.

Protocol options (the PNP authors'): ``lr_plateau`` (``ReduceLROnPlateau(patience)`` on the
validation loss), ``pretrain_epochs`` (that many epochs of P-loss first; at the switch the
optimizer, the plateau scheduler, the λ schedule and the best-epoch tracking start afresh, as in
their fine-tuning scripts), ``steps_per_epoch`` (epochs of that many batches drawn i.i.d. —
several passes over a small split — instead of one pass; the authors' epochs are 100 steps of
256), ``order`` (``"chunks"``: store chunks then samples within them, cheap reads; ``"samples"``:
uniform shuffling, the authors' i.i.d. batches; the split is then cached in memory), and
``encoder_kind`` (``"scalogram"``, the compact CPU encoder, or ``"effnet-cqt"``, the authors'
EfficientNet-B0, which needs torchvision: ``pip install -e .[effnet]``).

Persistence: :meth:`Trainer.fit` keeps everything in memory and calls its ``callbacks`` after
every epoch with an :class:`EpochEnd` (the metrics row, the history, whether the validation loss
improved, and :meth:`EpochEnd.checkpoint`, the complete state to resume from).  Writing run
directories (``config.json``, ``checkpoint.pt``, ``best.pt``, ``metrics.csv/json``, the loss
curves) is the workflow :mod:`pnp.pipelines.training`'s job; ``fit(checkpoint=...)`` resumes from a
checkpoint dict and refuses one whose configuration differs (naming the fields), except for
``epochs`` (train further), ``num_workers``, ``device`` and ``progress``.  Training is deterministic
given ``seed`` (model initialisation, batch order per epoch): a run resumed after ``k`` epochs
gives the same weights as an uninterrupted one (bit-identical on CPU with the same number of
torch threads).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from pnp.checks import check_bool
from pnp.vocabulary import (  # the shared names, defined without heavy imports
    DAMPING_NAMES,
    DEFAULT_SCRAPL_OPTIMIZER,
    DEVICES,
    ENCODER_KINDS,
    LAM0_AUTO,
    LOSSES,
    OPTIMIZERS,
    SCHEDULE_NAMES,
)

#: schedule defaults: (accelerator, brake)
SCHEDULE_FACTORS = {"lm": (0.5, 10.0), "adaptive": (0.05, 1.0)}
#: configuration keys that may change when resuming (they do not change the numbers on CPU)
RESUMABLE = ("epochs", "num_workers", "device", "progress")
#: a run's phases: P-loss pretraining (``pretrain_epochs``), then the chosen loss
PRETRAIN = "pretrain"
#: metrics columns, in order
COLUMNS = ("epoch", "train_loss", "val_loss", "val_ploss", "val_pnp", "lam", "action", "lr", "seconds",
           "samples_per_s", "theta_is_seconds")


# ------------------------------------------------------------------------------ helpers
def _choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _int(value: Any, name: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def _float(value: Any, name: str, lo: float, lo_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or (v <= lo if lo_open else v < lo):
        raise ValueError(f"{name} must be a finite number {'>' if lo_open else '>='} {lo:g}, got {value!r}")
    return v


def torch_device(device: str) -> torch.device:
    """The ``torch.device`` for ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``): :func:`pnp.devices.resolve_device`."""
    from pnp.devices import resolve_device as resolve

    return torch.device(resolve(device))


def load_torch(path: str, map_location: Any = "cpu") -> Any:
    """Load a checkpoint file (``torch.save`` of :meth:`EpochEnd.checkpoint` or of the best
    weights; plain tensors / containers only: ``weights_only``)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"no {os.path.basename(path)} in {os.path.dirname(path) or '.'}") from None
    except Exception as err:  # noqa: BLE001 - corrupt / foreign file
        raise ValueError(f"{path} is not a readable pnp checkpoint ({type(err).__name__}: {err})") from None


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any], ignore: tuple[str, ...] = RESUMABLE) -> list[str]:
    """``"key (checkpoint: X, now: Y)"`` for every differing key (``ignore``d keys skipped)."""
    out = []
    for key in sorted(set(old) | set(new)):
        if key in ignore:
            continue
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
            out.append(f"{key} (checkpoint: {json.dumps(a)}, now: {json.dumps(b)})")
    return out


# ------------------------------------------------------------------------------ losses
class Objective:
    """The training loss of a run and its validation counterparts, on batches (dicts of tensors).

    ``train(nu_hat, batch, lam)`` → scalar (with grad), ``val(nu_hat, batch)`` → dict of scalars
    (``val_loss`` with λ = 0, ``val_ploss``, ``val_pnp`` when ``dataset`` has the metric).
    ``dataset`` is a :class:`pnp.data.StoreDataset` of the store (its spec builds the spectral
    losses); ``mean_metric`` (P, P) is the damping matrix of ``damping="mean"``.
    """

    def __init__(self, loss: str, dataset, damping: str = "identity", mean_metric: Any = None,
                 scrapl: Mapping[str, Any] | None = None):
        from pnp.loss import AudioSpectralLoss, ParameterLoss, PNPLoss, RandomPathLoss, SpectralLoss

        self.loss = loss
        self.ploss = ParameterLoss()
        self.pnp: PNPLoss | None = None
        if loss == "pnp":
            self.pnp = PNPLoss(damping=damping, mean_metric=mean_metric if damping == "mean" else None)
        elif "metric" in dataset.fields:  # validation only (λ = 0): the damping does not matter
            self.pnp = PNPLoss()
        self.spectral: Any = None
        if loss in ("mss", "jtfs"):
            self.spectral = SpectralLoss.from_store(dataset, representation=loss)
        elif loss in ("mrstft", "specl2"):
            self.spectral = AudioSpectralLoss.from_store(dataset, distance=loss)
        elif loss == "scrapl":  # scrapl: the SCRAPL options (p, use_rho_log1p, log1p_eps, grad_mult)
            self.spectral = RandomPathLoss.from_store(dataset, **dict(scrapl or {}))

    def to(self, device: torch.device) -> "Objective":
        for m in (self.ploss, self.pnp, self.spectral):
            if m is not None:
                m.to(device)
        return self

    def train(self, nu_hat: torch.Tensor, batch: Mapping[str, torch.Tensor], lam: float) -> torch.Tensor:
        nu = batch["nu"]
        if self.loss == "ploss":
            return self.ploss(nu_hat, nu)
        if self.loss == "pnp":
            assert self.pnp is not None  # built in __init__ for loss == "pnp"
            return self.pnp(nu_hat, nu, batch["metric"], lam=lam)
        if self.loss == "jtfs":
            return self.spectral(nu_hat, target=batch["features"])
        if self.loss in ("mrstft", "specl2"):
            return self.spectral(nu_hat, audio=batch["audio"])
        if self.loss == "scrapl":
            return self.spectral(nu_hat, batch["audio"])
        return self.spectral(nu_hat, nu=nu)

    @torch.no_grad()
    def val(self, nu_hat: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.loss == "scrapl":  # one fixed path per sound, not a random one
            val_loss = self.spectral.validation(nu_hat, batch["audio"], batch["index"].cpu())
        else:
            val_loss = self.train(nu_hat, batch, 0.0)
        out = {"val_loss": val_loss, "val_ploss": self.ploss(nu_hat, batch["nu"])}
        if self.pnp is not None:
            out["val_pnp"] = self.pnp(nu_hat, batch["nu"], batch["metric"], lam=0.0)
        return out


@dataclass
class EpochEnd:
    """What :meth:`Trainer.fit` tells its callbacks after each epoch.

    ``epoch`` counts from 1; ``row`` is the epoch's metrics (:data:`COLUMNS`); ``history`` every
    row so far; ``improved``: the validation loss is the best of the phase, and ``model`` holds
    those weights now; ``config``: the run's configuration (:meth:`Trainer.config`).
    """

    trainer: "Trainer"
    epoch: int
    row: dict[str, Any]
    history: list[dict[str, Any]]
    best_epoch: int | None
    best_val_loss: float | None
    improved: bool
    config: dict[str, Any]
    model: Any
    _state: Any = field(repr=False, default=None)

    def checkpoint(self) -> dict[str, Any]:
        """The complete state after this epoch (model, optimizer, plateau scheduler, λ schedule,
        RNG, history, config): ``fit(checkpoint=...)`` resumes from it."""
        return self._state()

    def best_weights(self) -> dict[str, Any]:
        """The model's weights with the run's config and epoch (what ``best.pt`` holds)."""
        return {"model": self.model.state_dict(), "config": self.config, "epoch": self.epoch,
                "val_loss": self.best_val_loss}


def training_schedule(name: str, lam: float, accelerator: float | None = None, brake: float | None = None):
    """The λ schedule of a training run, by :class:`Trainer`'s ``schedule`` name, with the run's
    defaults (:func:`pnp.loss.make_schedule` builds it): constant; decay ×0.5 per epoch;
    Levenberg–Marquardt (pnp's variant: restores the best weights, ceiling max(1e4, 1e4 λ₀)); or
    the authors' adaptive rule (ceiling λ₀, no restore).  ``accelerator`` / ``brake`` default to
    :data:`SCHEDULE_FACTORS`."""
    from pnp.loss import make_schedule

    if name == "constant":
        return make_schedule("constant", lam=lam)
    if name == "decay":
        return make_schedule("decay", lam=lam, factor=0.5, every=1)
    acc, brk = SCHEDULE_FACTORS[name]
    acc = acc if accelerator is None else accelerator
    brk = brk if brake is None else brake
    if name == "adaptive":
        return make_schedule("adaptive", lam=lam, accelerator=acc, brake=brk)
    return make_schedule("lm", lam=lam, accelerator=acc, brake=brk, ceiling=max(1e4, 1e4 * lam))


def schedule_description(schedule) -> dict[str, Any]:
    """``name``, ``lam0``, ``accelerator``, ``brake``, ``ceiling``, ``restore`` of a λ schedule
    (``lam0`` is its current λ: call it before the first step)."""
    from pnp.loss import AdaptiveDamping, LevenbergMarquardt

    out: dict[str, Any] = {"name": schedule.name, "lam0": float(schedule.lam)}
    if isinstance(schedule, (AdaptiveDamping, LevenbergMarquardt)):
        out.update(accelerator=schedule.accelerator, brake=schedule.brake, ceiling=schedule.ceiling,
                   restore=isinstance(schedule, LevenbergMarquardt))
    else:
        out.update(accelerator=None, brake=None, ceiling=None, restore=False)
    return out


def _plateau(optimizer, patience: int | None):
    """``ReduceLROnPlateau(optimizer, patience)`` (the authors' TASLP setting), or None."""
    if patience is None:
        return None
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=patience)


class FrontendCache:
    """The encoder front end's output (the weight-free log-scalogram) of each store sound,
    computed once and kept (the PNP authors precompute their CQTs the same way): ``cache(model,
    batch)`` → ν̂ for the batch, through ``model.from_frontend``; the sounds are keyed by their
    global store ``index``. Same numbers as ``model(batch["audio"])``."""

    def __init__(self) -> None:
        self._rows: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def __call__(self, model, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        ids = batch["index"].tolist()
        missing = [i for i, k in enumerate(ids) if k not in self._rows]
        if missing:
            with torch.no_grad():
                u = model.frontend(batch["audio"][missing])
            for i, row in zip(missing, u):
                self._rows[ids[i]] = row
        return model.from_frontend(torch.stack([self._rows[k] for k in ids]))


def _batch_to(batch: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


#: the SCRAPL options a run may set (:meth:`pnp.loss.RandomPathJTFS.from_spec`)
SCRAPL_OPTIONS = ("p", "use_rho_log1p", "log1p_eps", "grad_mult")


def _scrapl_options(loss: str, optimizer: Any, scrapl: Any, theta_is: Any) -> tuple[str, dict[str, Any], int | None]:
    """(optimizer, scrapl options, theta_is) of a run, checked: the path-wise optimisers and the
    SCRAPL options apply to ``loss="scrapl"`` only."""
    if optimizer is None:
        optimizer = DEFAULT_SCRAPL_OPTIMIZER if loss == "scrapl" else "adam"
    _choice(optimizer, "optimizer", OPTIMIZERS)
    if optimizer != "adam" and loss != "scrapl":
        raise ValueError(f"optimizer {optimizer!r} (SCRAPL's path-wise optimiser) applies to loss='scrapl' only, "
                         f"not {loss!r}; use optimizer 'adam'")
    if scrapl is not None and not isinstance(scrapl, Mapping):
        raise ValueError(f"scrapl must be a dict of SCRAPL options, got {type(scrapl).__name__}")
    scrapl = dict(scrapl or {})
    bad = sorted(set(scrapl) - set(SCRAPL_OPTIONS))
    if bad:
        raise ValueError(f"scrapl: unknown option(s) {bad}; allowed: {', '.join(SCRAPL_OPTIONS)}")
    if theta_is is not None:
        theta_is = _int(theta_is, "theta_is", 1)
    if loss != "scrapl" and (scrapl or theta_is is not None):
        raise ValueError(f"scrapl and theta_is apply to loss='scrapl' only, not {loss!r}")
    return optimizer, scrapl, theta_is


# ------------------------------------------------------------------------------ trainer
class Trainer:
    """Train an encoder on a store (see the module docs).

    Parameters
    ----------
    loss : {"ploss", "pnp", "mss", "jtfs", "mrstft", "specl2", "scrapl"}
    epochs : int >= 1
        Total number of epochs, pretraining included (a resumed run trains up to this many).
    batch_size : int >= 1
    lr : float > 0
        Learning rate (of Adam, or of the SGD behind the path-wise optimisers).
    optimizer : {"adam", "p-adam-saga", "p-adam", "p-saga"} or None
        ``"adam"`` (default for every loss but ``scrapl``), or, for ``loss="scrapl"`` only,
        SCRAPL's vanilla SGD behind 𝒫-Adam and 𝒫-SAGA (``"p-adam-saga"``, its default), one of
        them, or plain Adam on the single-path gradients (:class:`~pnp.training.pathwise.PathwiseSGD`;
        P-loss pretraining epochs always use Adam).
    scrapl : dict, optional
        ``loss="scrapl"``: options of :meth:`pnp.loss.RandomPathJTFS.from_spec` (``p``,
        ``use_rho_log1p``, ``log1p_eps``, ``grad_mult``; defaults: p=2 and, on a log1p store, its
        compression with grad_mult 1).
    theta_is : int >= 1 or None
        ``loss="scrapl"``: sample the paths by θ-IS probabilities measured on this many training
        sounds when the SCRAPL phase starts (:func:`pnp.loss.theta_is.path_curvatures`; costly:
        3 × up to 20 Hessian-vector products per path and parameter); None: uniform.
    damping : {"identity", "diag", "mean"} or None
        The PNP damping matrix D (``loss="pnp"`` only; default ``"identity"``).
    lam : float >= 0, "max-eig-squared" or None
        Initial λ (``loss="pnp"`` only); default 0 for ``constant``, 1 for ``decay`` / ``lm``,
        ``"max-eig-squared"`` for ``adaptive`` (which needs λ₀ > 0).
    schedule : {"constant", "decay", "lm", "adaptive"}
    accelerator, brake : float or None
        λ factors after an improvement / a non-improvement (``lm``, ``adaptive`` only; defaults
        0.5 / 10 for ``lm``, 0.05 / 1 for ``adaptive``).
    lr_plateau : int >= 0 or None
        Patience of ``ReduceLROnPlateau`` on the validation loss (None: constant learning rate).
    pretrain_epochs : int >= 0
        Epochs of P-loss before the chosen loss (< ``epochs``; 0: none).
    steps_per_epoch : int >= 1 or None
        Batches per epoch, drawn i.i.d. (needs ``order="samples"``); None: one pass.
    order : {"chunks", "samples"}
        Batch order (see the module docs).
    seed : int >= 0
        Seeds the weights and the batch order.
    num_workers : int >= 0
        DataLoader worker processes.
    device : {"cpu", "cuda", "auto"}
    progress : bool
        tqdm bar per epoch (rate, ETA, running loss) and one summary line per epoch.
    encoder : dict, optional
        Extra keyword arguments of the encoder (:class:`~pnp.training.encoder.Encoder`: ``J``,
        ``Q``, ``hop``, ``channels``, ``hidden``, ``log1p_c``; ``effnet-cqt``: ``J``, ``Q``,
        ``hop``, ``bn_var``, ``log1p_c``).
    encoder_kind : {"scalogram", "effnet-cqt"}
    cache_frontend : bool
        Compute the encoder's weight-free front end (the scalogram) of each training sound once
        and keep it (:class:`FrontendCache`); validation and evaluation run the whole encoder.

    After :meth:`fit`: ``model_`` (the final encoder), ``history_`` (metrics rows),
    ``best_epoch_``, ``best_val_loss_``, ``run_dir_``, ``config_``, ``schedule_`` (the
    :func:`schedule_description` of the λ schedule at its start).
    """

    def __init__(self, loss: str = "pnp", epochs: int = 30, batch_size: int = 32, lr: float = 1e-3,
                 damping: str | None = None, lam: float | str | None = None, schedule: str = "constant",
                 seed: int = 0, num_workers: int = 0, device: str = "cpu", progress: bool = True,
                 encoder: Mapping[str, Any] | None = None, accelerator: float | None = None,
                 brake: float | None = None, lr_plateau: int | None = None, pretrain_epochs: int = 0,
                 steps_per_epoch: int | None = None, order: str = "chunks", encoder_kind: str = "scalogram",
                 cache_frontend: bool = False, optimizer: str | None = None,
                 scrapl: Mapping[str, Any] | None = None, theta_is: int | None = None):
        from pnp.data import SHUFFLES
        from pnp.training.encoder import encoder_options

        self.loss = _choice(loss, "loss", LOSSES)
        self.epochs = _int(epochs, "epochs", 1)
        self.batch_size = _int(batch_size, "batch_size", 1)
        self.lr = _float(lr, "lr", 0.0, lo_open=True)
        self.optimizer, self.scrapl, self.theta_is = _scrapl_options(loss, optimizer, scrapl, theta_is)
        if damping is not None:
            _choice(damping, "damping", DAMPING_NAMES)
            if loss != "pnp" and damping != "identity":
                raise ValueError(f"damping applies to loss='pnp' only, not {loss!r}")
        self.damping = damping or "identity"
        self.schedule = _choice(schedule, "schedule", SCHEDULE_NAMES)
        self.lam = self._check_lam(lam, loss, schedule)
        for name, value, lo, lo_open in (("accelerator", accelerator, 0.0, True), ("brake", brake, 1.0, False)):
            if value is not None:
                if schedule not in SCHEDULE_FACTORS:
                    raise ValueError(f"{name} applies to schedule 'lm' or 'adaptive' only, not {schedule!r}")
                _float(value, name, lo, lo_open=lo_open)
        if accelerator is not None and float(accelerator) > 1:
            raise ValueError(f"accelerator must be a finite number in (0, 1], got {accelerator!r}")
        self.accelerator = None if accelerator is None else float(accelerator)
        self.brake = None if brake is None else float(brake)
        self.lr_plateau = None if lr_plateau is None else _int(lr_plateau, "lr_plateau", 0)
        self.pretrain_epochs = _int(pretrain_epochs, "pretrain_epochs", 0)
        if self.pretrain_epochs and (self.pretrain_epochs >= self.epochs or loss == "ploss"):
            raise ValueError(f"pretrain_epochs must be < epochs ({self.epochs}) and the loss other than 'ploss', got "
                             f"{self.pretrain_epochs} with loss {loss!r}")
        self.order = _choice(order, "order", SHUFFLES)
        self.steps_per_epoch = None if steps_per_epoch is None else _int(steps_per_epoch, "steps_per_epoch", 1)
        if self.steps_per_epoch is not None and self.order != "samples":
            raise ValueError("steps_per_epoch needs order='samples' (batches drawn i.i.d.)")
        self.seed = _int(seed, "seed", 0)
        self.num_workers = _int(num_workers, "num_workers", 0)
        self.device = _choice(device, "device", DEVICES)
        check_bool(progress, "progress")
        self.progress = progress
        self.encoder_kind = _choice(encoder_kind, "encoder_kind", ENCODER_KINDS)
        check_bool(cache_frontend, "cache_frontend")
        self.cache_frontend = cache_frontend
        if encoder is not None and not isinstance(encoder, Mapping):
            raise ValueError(f"encoder must be a dict of encoder keyword arguments, got {type(encoder).__name__}")
        self.encoder = dict(encoder or {})
        allowed = encoder_options(self.encoder_kind)
        bad = set(self.encoder) - set(allowed)
        if bad:
            raise ValueError(f"encoder: unknown option(s) {sorted(bad)}; allowed: {', '.join(allowed)}")

    @staticmethod
    def _check_lam(lam: Any, loss: str, schedule: str) -> float | str:
        if lam is None:
            return LAM0_AUTO if schedule == "adaptive" else (0.0 if schedule == "constant" else 1.0)
        if isinstance(lam, str):
            if lam != LAM0_AUTO or schedule != "adaptive":
                raise ValueError(f"lam must be a finite number >= 0 (or {LAM0_AUTO!r} with schedule 'adaptive'), got {lam!r}")
        else:
            lam = _float(lam, "lam", 0.0, lo_open=False)
        if loss != "pnp" and lam != 0:
            raise ValueError(f"lam (the PNP damping) applies to loss='pnp' only, not {loss!r}")
        if schedule in ("lm", "adaptive") and lam == 0 and loss == "pnp":
            raise ValueError(f"schedule={schedule!r} multiplies lam, so lam must be > 0 (e.g. 1.0), got 0")
        return lam

    # ---------------------------------------------------------------- set-up
    def _fields(self, has_metric: bool) -> tuple[list[str], list[str]]:
        """(train fields, val fields) of the datasets."""
        feats = ["features"] if self.loss == "jtfs" else []
        train = ["nu"] + (["metric"] if self.loss == "pnp" else []) + feats
        return train, ["nu"] + (["metric"] if has_metric else []) + feats

    def _datasets(self, store: str):
        from pnp.data import StoreDataset
        from pnp.store import open_store

        keys = set(open_store(store).fields)
        has_metric = "metric" in keys
        if self.loss == "pnp" and not has_metric:
            raise ValueError(
                f"loss='pnp' needs the metric M = JᵀJ, but the store {store} has none (features only); "
                "precompute it with store.jacobian = true in its spec"
            )
        if self.loss == "scrapl":
            _check_scrapl_store(store, keys)
        if self.lam == LAM0_AUTO and self.loss == "pnp" and "eigvals" not in keys:
            raise ValueError(f"lam={LAM0_AUTO!r} needs the stored eigenvalues of M; the store {store} has none")
        train_fields, fields = self._fields(has_metric)
        # uniform shuffling touches every chunk per batch: keep the whole split in the cache
        cache: dict[str, Any] = {"cache_bytes": 2**33} if self.order == "samples" else {}
        train_ds = StoreDataset(store, split="train", fields=train_fields, input="audio", **cache)
        val_ds = StoreDataset(store, split="val", fields=fields, input="audio")
        return train_ds, val_ds

    def resolve_lam(self, store: str) -> float:
        """λ₀ of the run: ``lam``, or for ``"max-eig-squared"`` the square of the largest stored
        eigenvalue of M over the store's training split."""
        if self.lam != LAM0_AUTO:
            return float(self.lam)
        if self.loss != "pnp":  # λ is not used: no need to read the eigenvalues
            return 1.0
        from pnp.data import StoreDataset
        from pnp.loss import max_eig_squared

        ds = StoreDataset(store, split="train", fields=("eigvals",), dtype=torch.float64)
        return max_eig_squared(ds.get_batch(np.arange(len(ds)))["eigvals"].numpy())

    def config(self, store: str, train_ds, encoder_config: Mapping[str, Any]) -> dict[str, Any]:
        """The run's configuration (``config.json``; compared on resume)."""
        return {
            "store": store,
            "store_spec_hash": train_ds.attrs.get("spec_hash"),
            "store_name": train_ds.attrs.get("name"),
            "params": list(train_ds.params),
            "loss": self.loss,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "optimizer": self.optimizer,
            "damping": self.damping,
            "lam": self.lam,
            "schedule": self.schedule,
            "accelerator": self.accelerator,
            "brake": self.brake,
            "lr_plateau": self.lr_plateau,
            "pretrain_epochs": self.pretrain_epochs,
            "steps_per_epoch": self.steps_per_epoch,
            "order": self.order,
            "seed": self.seed,
            "num_workers": self.num_workers,
            "device": self.device,
            "progress": self.progress,
            "encoder_kind": self.encoder_kind,
            "cache_frontend": self.cache_frontend,
            "encoder": dict(encoder_config),
            "n_train": len(train_ds),
            # the SCRAPL options (absent for the other losses: older run directories resume)
            **({"scrapl": dict(self.scrapl), "theta_is": self.theta_is} if self.loss == "scrapl" else {}),
        }

    def _phase(self, epoch: int) -> str:
        """``"pretrain"`` for the P-loss epochs, else the run's loss."""
        return PRETRAIN if epoch < self.pretrain_epochs else self.loss

    def _optimizers(self, model, phase: str, objectives: Mapping[str, "Objective"]):
        """A fresh optimiser for ``phase`` and its plateau scheduler (at the start, and again at
        the end of pretraining): Adam, or the SCRAPL phase's path-wise SGD."""
        if phase == PRETRAIN or self.optimizer == "adam":
            optimizer: Any = torch.optim.Adam(model.parameters(), lr=self.lr)
        else:
            from pnp.training.pathwise import make_pathwise

            optimizer = make_pathwise(self.optimizer, model.parameters(), objectives[self.loss].spectral.distance,
                                      lr=self.lr)
        return optimizer, _plateau(optimizer, self.lr_plateau)

    def _theta_is(self, run: "_Run", train_ds) -> list[float]:
        """θ-IS path probabilities on the first ``theta_is`` training sounds, with the current
        encoder (set into the SCRAPL loss; returned for the checkpoint)."""
        from pnp.loss.theta_is import warmup

        assert self.theta_is is not None  # called only for theta_is runs
        batch = _batch_to(train_ds.get_batch(list(range(min(self.theta_is, len(train_ds))))), run.device)
        loss = run.objectives[self.loss].spectral
        probs = warmup(loss, run.model, batch["audio"], generator=torch.Generator().manual_seed(self.seed))
        _logger(self.progress)(f"θ-IS: path probabilities in [{min(probs):.3g}, {max(probs):.3g}] "
                               f"(uniform {1 / len(probs):.3g}) from {len(batch['audio'])} training sounds")
        return probs

    # ---------------------------------------------------------------- training
    def fit(self, store: str | os.PathLike, callbacks: Sequence[Callable[[EpochEnd], None]] = (),
            checkpoint: Mapping[str, Any] | None = None, on_start: Callable[[dict], None] | None = None) -> "Trainer":
        """Train on ``store``'s train split, validating on its val split.

        ``callbacks`` are called after every epoch with an :class:`EpochEnd`; ``on_start`` once
        with the run's configuration before the first epoch; ``checkpoint`` (a dict of
        :meth:`EpochEnd.checkpoint`) resumes that run (``ValueError`` if its configuration
        differs).  Returns ``self``, fitted.
        """
        from pnp.store import normalise_path
        from pnp.training.encoder import build_encoder

        if not isinstance(store, (str, os.PathLike)) or not os.fspath(store):
            raise TypeError(f"store must be a store path, got {store!r}")
        if checkpoint is not None and not isinstance(checkpoint, Mapping):
            raise TypeError(f"checkpoint must be a dict (EpochEnd.checkpoint()), got {type(checkpoint).__name__}")
        store = normalise_path(store)
        device = torch_device(self.device)
        train_ds, val_ds = self._datasets(store)
        lam0 = self.resolve_lam(store)
        torch.manual_seed(self.seed)
        model = build_encoder(self.encoder_kind, train_ds, **self.encoder)
        config = self.config(store, train_ds, model.config())
        model.to(device)
        run = _Run(model=model, config=config, device=device,
                   schedule=training_schedule(self.schedule, lam0, self.accelerator, self.brake),
                   objectives=self._objectives(train_ds, val_ds, device))
        start = int(checkpoint.get("epoch", 0)) if checkpoint is not None else 0  # the checkpoint's phase
        run.optimizer, run.plateau = self._optimizers(model, self._phase(max(start - 1, 0)), run.objectives)
        self.schedule_ = schedule_description(run.schedule)
        if checkpoint is not None:
            run.restore(checkpoint)
        if on_start is not None:
            on_start(config)
        self._train(run, train_ds, val_ds, list(callbacks))
        self.model_, self.history_, self.best_epoch_ = model, run.history, run.best_epoch
        self.best_val_loss_ = run.best_val if run.best_epoch else None
        self.config_ = config
        return self

    def _train(self, run: "_Run", train_ds, val_ds, callbacks: list) -> None:
        """The epochs from ``run.start`` to ``epochs``."""
        objectives = run.objectives
        samples = None if self.steps_per_epoch is None else self.steps_per_epoch * self.batch_size
        loader = make_loader_for(train_ds, self, samples)
        val_loader = make_loader_for(val_ds, self, None, shuffle=False)
        log = _logger(self.progress)
        self._encode = FrontendCache() if self.cache_frontend else (lambda m, b: m(b["audio"]))
        if run.start >= self.epochs:
            log(f"{run.start} epochs already done (epochs = {self.epochs}); nothing to train")
        for epoch in range(run.start, self.epochs):
            phase = self._phase(epoch)
            if self.pretrain_epochs and epoch == self.pretrain_epochs:  # the switch: start afresh
                run.optimizer, run.plateau = self._optimizers(run.model, phase, objectives)
                run.best_val, run.best_epoch = math.inf, None
            theta_is_seconds = 0.0  # θ-IS runs once, before the first SCRAPL epoch (not in its "seconds")
            if phase == "scrapl" and self.theta_is is not None and run.scrapl_probs is None:
                t0 = time.perf_counter()
                run.scrapl_probs = self._theta_is(run, train_ds)
                theta_is_seconds = time.perf_counter() - t0
            row = self._epoch(epoch, phase, run.model, objectives[phase], run.optimizer, run.schedule, loader,
                              val_loader, run.device)
            row["theta_is_seconds"] = theta_is_seconds
            improved = run.end_epoch(row, epoch)
            log(self._summary(row, run.best_epoch))
            if row["action"] == "brake" and self.schedule == "lm":
                sched = run.schedule
                log(f"  Levenberg–Marquardt brake: val_loss {row['val_loss']:.4g} did not improve on "
                    f"{sched.best_loss if sched.best_loss is not None else float('nan'):.4g}; best weights "
                    f"restored, lambda -> {sched.lam:.4g}")
            end = EpochEnd(trainer=self, epoch=epoch + 1, row=row, history=run.history, best_epoch=run.best_epoch,
                           best_val_loss=run.best_val if run.best_epoch else None, improved=improved,
                           config=run.config, model=run.model, _state=run.checkpoint)
            for callback in callbacks:
                callback(end)

    def _objectives(self, train_ds, val_ds, device) -> dict[str, Objective]:
        """The objective of each phase (the loss; the P-loss while pretraining), on ``device``."""
        mean_metric = train_ds.mean_metric() if self.loss == "pnp" and self.damping == "mean" else None
        objectives = {self.loss: Objective(self.loss, val_ds, self.damping, mean_metric, scrapl=self.scrapl).to(device)}
        if self.pretrain_epochs:
            objectives[PRETRAIN] = Objective("ploss", val_ds).to(device)
        return objectives

    def _epoch(self, epoch: int, phase: str, model, objective: Objective, optimizer, schedule, loader, val_loader,
               device) -> dict[str, Any]:
        """Train one epoch, validate, step the λ schedule (not while pretraining); the metrics row."""
        from tqdm.auto import tqdm

        t0 = time.perf_counter()
        loader.sampler.set_epoch(epoch)
        model.train()
        lam = float(schedule.lam)
        total = torch.zeros((), dtype=torch.float64)
        seen = 0
        label = "ploss (pretraining)" if phase == PRETRAIN else self.loss
        bar = tqdm(loader, desc=f"{label} epoch {epoch + 1}/{self.epochs}", unit="batch",
                   disable=not self.progress, leave=False, dynamic_ncols=True)
        for batch in bar:
            batch = _batch_to(batch, device)
            loss = objective.train(self._encode(model, batch), batch, lam)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            b = int(batch["nu"].shape[0])
            total += loss.detach().double().cpu() * b
            seen += b
            bar.set_postfix(loss=f"{float(total) / seen:.4g}", refresh=False)
        bar.close()
        val = self.validate(model, objective, val_loader, device)
        action = PRETRAIN if phase == PRETRAIN else schedule.step(val["val_loss"], model=model, optimizer=optimizer)
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "train_loss": float(total) / max(seen, 1), **val, "lam": lam, "action": action,
               "lr": float(optimizer.param_groups[0]["lr"]), "seconds": seconds,
               "samples_per_s": seen / seconds if seconds > 0 else None}
        row.setdefault("val_pnp", None)
        return row

    @staticmethod
    @torch.no_grad()
    def validate(model, objective: Objective, loader, device: torch.device) -> dict[str, float]:
        """Mean validation metrics over ``loader`` (sample-weighted), the model in eval mode."""
        was_training = model.training
        model.eval()
        sums: dict[str, float] = {}
        n = 0
        for batch in loader:
            batch = _batch_to(batch, device)
            nu_hat = model(batch["audio"])
            b = int(batch["nu"].shape[0])
            for k, v in objective.val(nu_hat, batch).items():
                sums[k] = sums.get(k, 0.0) + float(v) * b
            n += b
        model.train(was_training)
        return {k: v / n for k, v in sums.items()}

    def _summary(self, row: Mapping[str, Any], best_epoch: int | None) -> str:
        parts = [f"epoch {row['epoch']}/{self.epochs}", f"train {row['train_loss']:.4g}", f"val {row['val_loss']:.4g}",
                 f"val P-loss {row['val_ploss']:.4g}"]
        if row.get("val_pnp") is not None and self.loss != "pnp":
            parts.append(f"val PNP {row['val_pnp']:.4g}")
        if self.loss == "pnp":
            parts.append(f"lambda {row['lam']:.3g}")
        parts += [row["action"], f"{row['seconds']:.1f} s", f"best epoch {best_epoch}"]
        return " | ".join(parts)


@dataclass
class _Run:
    """The mutable state of one :meth:`Trainer.fit`: model, optimizer, schedules, history, best epoch."""

    model: Any
    config: dict[str, Any]
    device: torch.device
    schedule: Any
    optimizer: Any = None
    plateau: Any = None
    history: list[dict[str, Any]] = field(default_factory=list)
    best_val: float = math.inf
    best_epoch: int | None = None
    start: int = 0
    #: the objective of each phase; the θ-IS path probabilities of a SCRAPL run once measured
    objectives: dict[str, Any] = field(default_factory=dict)
    scrapl_probs: list[float] | None = None

    def end_epoch(self, row: dict[str, Any], epoch: int) -> bool:
        """Record the epoch's row (and step the plateau scheduler); whether it is the best so far."""
        if self.plateau is not None:
            self.plateau.step(row["val_loss"])
        self.history.append(row)
        improved = math.isfinite(row["val_loss"]) and row["val_loss"] < self.best_val
        if improved:
            self.best_val, self.best_epoch = row["val_loss"], epoch + 1
        return improved

    def checkpoint(self) -> dict[str, Any]:
        cuda = self.device.type == "cuda"
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "plateau": self.plateau.state_dict() if self.plateau is not None else None,
                "schedule": self.schedule.state_dict(), "epoch": self.history[-1]["epoch"] if self.history else 0,
                "rng": {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state() if cuda else None},
                "config": self.config, "history": list(self.history),
                "best_val_loss": self.best_val if self.best_epoch else None, "best_epoch": self.best_epoch,
                **({"scrapl_probs": list(self.scrapl_probs)} if self.scrapl_probs is not None else {})}

    def restore(self, ck: Mapping[str, Any]) -> None:
        """Load a :meth:`checkpoint` dict; ``ValueError`` if its configuration differs."""
        diff = config_diff(ck.get("config", {}), self.config)
        if diff:
            raise ValueError("cannot resume: the configuration differs from its checkpoint: " + "; ".join(diff))
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        if self.plateau is not None and ck.get("plateau") is not None:
            self.plateau.load_state_dict(ck["plateau"])
        self.schedule.load_state_dict(ck["schedule"])
        torch.set_rng_state(ck["rng"]["torch"])
        if self.device.type == "cuda" and ck["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(ck["rng"]["cuda"])
        self.history = list(ck["history"])
        if ck.get("scrapl_probs") is not None:  # θ-IS measured before the checkpoint: not again
            self.scrapl_probs = [float(p) for p in ck["scrapl_probs"]]
            self.objectives["scrapl"].spectral.distance.set_probabilities(self.scrapl_probs)
        self.best_val = math.inf if ck["best_val_loss"] is None else float(ck["best_val_loss"])
        self.best_epoch, self.start = ck["best_epoch"], int(ck["epoch"])


def _check_scrapl_store(store: str, keys: set) -> None:
    """SCRAPL compares sounds on the store's own JTFS: the store needs both."""
    from pnp.store import open_store

    if "audio" not in keys:
        raise ValueError(f"loss='scrapl' compares the rendered sound with the stored one, but the store {store} has no "
                         "audio (store.audio = true in its spec)")
    name = open_store(store).spec().representation_name
    if name != "jtfs":
        raise ValueError(f"loss='scrapl' samples paths of the store's JTFS, but the store {store} holds {name!r} "
                         "features (representation.name = \"jtfs\" in its spec)")


def make_loader_for(ds, trainer: "Trainer", samples_per_epoch: int | None, shuffle: bool = True):
    """The loader of a run's split: its batch size, order and workers (validation: in order)."""
    from pnp.data import make_loader

    if not shuffle:
        return make_loader(ds, trainer.batch_size, shuffle=False, num_workers=0)
    return make_loader(ds, trainer.batch_size, shuffle=True, num_workers=trainer.num_workers, seed=trainer.seed,
                       persistent_workers=trainer.num_workers > 0, order=trainer.order,
                       samples_per_epoch=samples_per_epoch)


def _logger(progress: bool):
    from tqdm.auto import tqdm

    return (lambda msg: tqdm.write(msg, file=sys.stderr)) if progress else (lambda msg: None)


def load_encoder(path: str | os.PathLike, map_location: Any = "cpu"):
    """The encoder of a ``best.pt`` / ``checkpoint.pt`` (eval mode) and the run's config."""
    from pnp.training.encoder import encoder_from_config

    ck = load_torch(os.fspath(path), map_location=map_location)
    if not isinstance(ck, dict) or "model" not in ck or "config" not in ck:
        raise ValueError(f"{path} is not a pnp training checkpoint (no model / config)")
    model = encoder_from_config(ck["config"].get("encoder_kind", "scalogram"), ck["config"]["encoder"])
    model.load_state_dict(ck["model"])
    model.eval()
    return model, ck["config"], ck


__all__ = ["COLUMNS", "LOSSES", "SCHEDULE_NAMES", "DAMPING_NAMES", "ENCODER_KINDS", "LAM0_AUTO", "EpochEnd",
           "Trainer", "load_encoder", "load_torch", "Objective", "config_diff", "torch_device", "training_schedule",
           "schedule_description"]
