"""Schedules of the PNP damping λ, stepped once per validation (typically once per epoch).

Every schedule has ``lam`` (the current λ, a float >= 0), ``step(val_loss, model=None,
optimizer=None) -> str`` (what happened: ``"constant"``, ``"decay"``, ``"accelerate"`` or
``"brake"``) and ``state_dict()`` / ``load_state_dict()`` for checkpoints.

* :class:`ConstantDamping` — λ fixed.
* :class:`DecayDamping` — λ ← max(minimum, λ · factor) every ``every`` steps.
* :class:`LevenbergMarquardt` — the Levenberg–Marquardt rule of the PNP paper on the validation
  loss: an improvement *accelerates* (λ ← λ · accelerator, trust the metric more, the best
  weights are remembered); otherwise it *brakes* (λ ← min(ceiling, λ · brake)) and the best
  weights (and optimizer state) are loaded back into the model, so the epoch is retried from the
  best point with a more gradient-descent-like loss.  pnp's variant of the rule.
* :class:`AdaptiveDamping` — the rule the PNP authors ran (lylyhan/perceptual_neural_physical,
  ``cnn.py`` "adaptive" mode): an improvement of the validation loss multiplies λ by
  ``accelerator`` (0.05 in their final TASLP scripts), a non-improvement multiplies it by
  ``brake`` (1: λ unchanged), λ never exceeds ``ceiling`` (λ₀), and nothing is restored (their
  "revert to the best model" rebinds a method and restores no weights).
"""

from __future__ import annotations

import copy
import math
from typing import Any

from pnp.loss._checks import number

#: schedule names (``pnp train --schedule``) → classes, filled below
SCHEDULES: dict[str, type] = {}


def _loss_value(val_loss: Any) -> float:
    """float(val_loss) for a number or a one-element tensor / array; ``ValueError`` otherwise."""
    if hasattr(val_loss, "detach"):
        val_loss = val_loss.detach().cpu().numpy()
    if hasattr(val_loss, "size") and hasattr(val_loss, "reshape"):
        if val_loss.size != 1:
            raise ValueError(f"val_loss must be a scalar, got an array of {val_loss.size} elements")
        val_loss = val_loss.reshape(-1)[0]
    if isinstance(val_loss, bool):
        raise ValueError(f"val_loss must be a number, got {val_loss!r}")
    try:
        return float(val_loss)
    except (TypeError, ValueError):
        raise ValueError(f"val_loss must be a number, got {val_loss!r}") from None


class _Schedule:
    name = ""

    def __init__(self, lam: float):
        self.lam = lam
        self.n_steps = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lam={self.lam:g}, steps={self.n_steps})"

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "lam": self.lam, "n_steps": self.n_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or state.get("name") != self.name:
            got = state.get("name") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"state is not a {type(self).__name__} state (name {got!r}, expected {self.name!r})")
        self.lam = number(state["lam"], "lam", lo=0.0)
        self.n_steps = int(state["n_steps"])


class ConstantDamping(_Schedule):
    """λ fixed at ``lam`` (>= 0); ``step`` always returns ``"constant"``."""

    name = "constant"

    def __init__(self, lam: float = 0.0):
        super().__init__(number(lam, "lam", lo=0.0))

    def step(self, val_loss: Any = None, model: Any = None, optimizer: Any = None) -> str:
        self.n_steps += 1
        return "constant"


class DecayDamping(_Schedule):
    """λ ← max(minimum, λ · factor) every ``every`` steps (``"decay"``), else ``"constant"``.

    ``lam >= minimum >= 0``, ``factor`` in (0, 1], ``every`` an integer >= 1.
    """

    name = "decay"

    def __init__(self, lam: float = 1.0, factor: float = 0.5, every: int = 1, minimum: float = 0.0):
        self.minimum = number(minimum, "minimum", lo=0.0)
        super().__init__(number(lam, "lam", lo=self.minimum))
        self.factor = number(factor, "factor", lo=0.0, hi=1.0, lo_open=True)
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every!r}")
        self.every = every

    def step(self, val_loss: Any = None, model: Any = None, optimizer: Any = None) -> str:
        self.n_steps += 1
        if self.n_steps % self.every == 0:
            self.lam = max(self.minimum, self.lam * self.factor)
            return "decay"
        return "constant"


class LevenbergMarquardt(_Schedule):
    """Levenberg–Marquardt damping on the validation loss (see the module docs).

    Parameters
    ----------
    lam : float — initial λ, ``0 <= lam <= ceiling``
    accelerator : float in (0, 1] — λ factor after an improvement
    brake : float >= 1 — λ factor after a non-improvement
    ceiling : float — largest λ

    ``step(val_loss, model, optimizer)``: on the first step, and whenever ``val_loss < best_loss``,
    remembers ``best_loss`` and a deep copy of ``model.state_dict()`` (and of the optimizer's) in
    ``best_state`` and accelerates; otherwise (a non-finite loss never improves) brakes and loads
    ``best_state`` back into ``model`` and ``optimizer`` in place.  A non-finite first loss brakes
    with nothing to restore.  (λ = 0 stays 0: start from λ > 0 to let the brake act.)
    """

    name = "lm"

    def __init__(self, lam: float = 1.0, accelerator: float = 0.5, brake: float = 10.0, ceiling: float = 1e4):
        self.ceiling = number(ceiling, "ceiling", lo=0.0)
        super().__init__(number(lam, "lam", lo=0.0, hi=self.ceiling))
        self.accelerator = number(accelerator, "accelerator", lo=0.0, hi=1.0, lo_open=True)
        self.brake = number(brake, "brake", lo=1.0)
        self.best_loss: float | None = None
        self.best_state: dict[str, Any] | None = None

    def step(self, val_loss: Any, model: Any = None, optimizer: Any = None) -> str:
        value = _loss_value(val_loss)
        self.n_steps += 1
        improved = math.isfinite(value) and (self.best_loss is None or value < self.best_loss)
        if improved:
            self.best_loss = value
            self.best_state = {
                "model": copy.deepcopy(model.state_dict()) if model is not None else None,
                "optimizer": copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None,
            }
            self.lam = self.lam * self.accelerator
            return "accelerate"
        self.lam = min(self.ceiling, self.lam * self.brake)
        if self.best_state is not None:
            if model is not None and self.best_state["model"] is not None:
                model.load_state_dict(self.best_state["model"])  # copies into the parameters in place
            if optimizer is not None and self.best_state["optimizer"] is not None:
                # a copy: Optimizer.load_state_dict may keep references to the given tensors
                optimizer.load_state_dict(copy.deepcopy(self.best_state["optimizer"]))
        return "brake"

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out.update(best_loss=self.best_loss, best_state=copy.deepcopy(self.best_state))
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.best_loss = None if state.get("best_loss") is None else float(state["best_loss"])
        self.best_state = copy.deepcopy(state.get("best_state"))


class AdaptiveDamping(_Schedule):
    """The PNP authors' damping schedule (see the module docs).

    Parameters
    ----------
    lam : float > 0 — λ₀ (the authors: the square of the largest eigenvalue of M over the
        loaded split; :func:`max_eig_squared`)
    accelerator : float in (0, 1] — λ factor after an improvement (default 0.05, TASLP)
    brake : float >= 1 — λ factor after a non-improvement (default 1: unchanged)
    ceiling : float >= lam, optional — largest λ (default λ₀)

    ``step(val_loss)``: ``"accelerate"`` when ``val_loss`` is finite and below the best so far
    (the first finite loss is an improvement), else ``"brake"``. ``model`` / ``optimizer`` are
    accepted and never touched: no weights are restored.
    """

    name = "adaptive"

    def __init__(self, lam: float = 1.0, accelerator: float = 0.05, brake: float = 1.0, ceiling: float | None = None):
        lam = number(lam, "lam", lo=0.0, lo_open=True)
        self.ceiling = lam if ceiling is None else number(ceiling, "ceiling", lo=lam)
        super().__init__(lam)
        self.accelerator = number(accelerator, "accelerator", lo=0.0, hi=1.0, lo_open=True)
        self.brake = number(brake, "brake", lo=1.0)
        self.best_loss: float | None = None

    def step(self, val_loss: Any, model: Any = None, optimizer: Any = None) -> str:
        value = _loss_value(val_loss)
        self.n_steps += 1
        if math.isfinite(value) and (self.best_loss is None or value < self.best_loss):
            self.best_loss = value
            self.lam = self.lam * self.accelerator
            return "accelerate"
        self.lam = min(self.ceiling, self.lam * self.brake)
        return "brake"

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out.update(best_loss=self.best_loss)
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.best_loss = None if state.get("best_loss") is None else float(state["best_loss"])


def max_eig_squared(eigvals: Any) -> float:
    """The authors' λ₀: the square of the largest eigenvalue of M over a split, from the stored
    eigenvalues ``eigvals`` (B, P) (any array-like; non-finite rows ignored). ``ValueError``
    when there is no finite eigenvalue."""
    import numpy as np

    e = np.asarray(eigvals, dtype=np.float64)
    e = e[np.isfinite(e)]
    if e.size == 0:
        raise ValueError("max-eig-squared: the split has no finite stored eigenvalue")
    return float(e.max()) ** 2


SCHEDULES.update({c.name: c for c in (ConstantDamping, DecayDamping, LevenbergMarquardt, AdaptiveDamping)})


def make_schedule(name: str, **kwargs: Any):
    """A schedule by name (``"constant"``, ``"decay"``, ``"lm"``, ``"adaptive"``) with its keyword
    arguments."""
    if name not in SCHEDULES:
        raise ValueError(f"damping schedule must be one of {', '.join(map(repr, SCHEDULES))}, got {name!r}")
    try:
        return SCHEDULES[name](**kwargs)
    except TypeError as err:
        raise ValueError(f"damping schedule {name!r}: {err}") from None
