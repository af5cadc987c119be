"""Sound matching by gradient descent with the bold-driver learning-rate rule.

:func:`bold_driver` minimises a batch of independent problems ``f(ν) → (loss (B,), ∇ (B, P))``
(one batched call per iteration).  Per item, with learning rate ``η``:

1. trial ``ν' = clip(ν - η ∇L(ν), lo, hi)`` (projected onto the parameter box);
2. if ``L(ν') < L(ν)`` the step is accepted and ``η ← 1.2 η``; otherwise (including a NaN
   loss) the step is undone and ``η ← η / 2``.

The decision uses only the loss, never the (unknown in practice) distance to the target, so a
loss increase is never accepted; the recorded loss is non-increasing.  A rejected step keeps
the gradient already computed at ``ν``, so each iteration costs one evaluation.

The initial learning rate is either given (``lr``) or set per item so that the first step has
length ``step0`` in ν units (``η₀ = step0 / ‖∇L(ν₀)‖``): the losses' scales differ by orders of
magnitude (JTFS vs MSS, shifted vs not), and this makes the comparison independent of them.

:func:`init_points` draws initial points: ``far`` (ν-distance to the target ≥ 1, half the box
width), ``near`` (distance in [0.05, 0.2], about one or two grid steps of the 20-point grid),
``anywhere`` (uniform in the box); :func:`grid_nodes` the nodes of a regular grid (the
``grid`` initialisation of ``pnp match`` starts from the ones of lowest loss).

:func:`adam` is the alternative step rule: projected Adam with a fixed learning rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from pnp.checks import check_int

INIT_SCHEMES = ("far", "near", "anywhere")
#: default Adam learning rate (ν units per step)
ADAM_LR = 0.02
#: ν-distance bounds of the init schemes
FAR_MIN = 1.0
NEAR_RANGE = (0.05, 0.2)


@dataclass
class DescentResult:
    """Trajectories of a batch of descents (``T`` = iterations, ``B`` = items, ``P`` = params).

    ``nu`` (T+1, B, P), ``loss`` (T+1, B) and ``lr`` (T+1, B) after each iteration (index 0 =
    start); ``trial_loss`` (T, B) and ``accepted`` (T, B) for each iteration's trial step;
    ``distance`` (T+1, B) the ν-distance to ``target_nu`` if given.
    """

    nu: np.ndarray
    loss: np.ndarray
    lr: np.ndarray
    trial_loss: np.ndarray
    accepted: np.ndarray
    distance: np.ndarray | None = None


def bold_driver(
    fn: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    nu0: Any,
    iters: int = 100,
    lr: float | None = None,
    step0: float = 0.1,
    up: float = 1.2,
    down: float = 0.5,
    bounds: tuple[float, float] = (-1.0, 1.0),
    target_nu: Any = None,
    progress: Any = None,
) -> DescentResult:
    """Bold-driver gradient descent from ``nu0`` (B, P) (see module docstring).

    ``fn`` maps ν (B, P) float64 to ``(loss (B,), grad (B, P))``.  ``progress``: tqdm-like,
    updated once per iteration.
    """
    nu = np.array(nu0, dtype=np.float64, ndmin=2)
    check_int(iters, "iters", 0)
    if not (up > 1 and 0 < down < 1):
        raise ValueError(f"need up > 1 and 0 < down < 1, got up={up}, down={down}")
    lo, hi = bounds
    B, P = nu.shape
    loss, grad = fn(nu)
    loss = np.asarray(loss, dtype=np.float64).copy()
    grad = np.asarray(grad, dtype=np.float64).copy()
    if lr is None:
        norm = np.linalg.norm(grad, axis=1)
        eta = np.where(norm > 0, step0 / np.where(norm > 0, norm, 1.0), step0)
    else:
        if not np.isfinite(lr) or lr <= 0:
            raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
        eta = np.full(B, float(lr))
    hist_nu, hist_loss, hist_lr = [nu.copy()], [loss.copy()], [eta.copy()]
    trials, accepts = [], []
    for _ in range(int(iters)):
        trial = np.clip(nu - eta[:, None] * grad, lo, hi)
        t_loss, t_grad = fn(trial)
        t_loss = np.asarray(t_loss, dtype=np.float64)
        ok = np.isfinite(t_loss) & (t_loss < loss)
        nu = np.where(ok[:, None], trial, nu)
        loss = np.where(ok, t_loss, loss)
        grad = np.where(ok[:, None], np.asarray(t_grad, dtype=np.float64), grad)
        eta = np.where(ok, eta * up, eta * down)
        hist_nu.append(nu.copy())
        hist_loss.append(loss.copy())
        hist_lr.append(eta.copy())
        trials.append(t_loss.copy())
        accepts.append(ok.copy())
        if progress is not None:
            progress.update(1)
    res = DescentResult(
        nu=np.stack(hist_nu),
        loss=np.stack(hist_loss),
        lr=np.stack(hist_lr),
        trial_loss=np.stack(trials) if trials else np.zeros((0, B)),
        accepted=np.stack(accepts) if accepts else np.zeros((0, B), dtype=bool),
    )
    if target_nu is not None:
        res.distance = np.linalg.norm(res.nu - np.asarray(target_nu, dtype=np.float64), axis=-1)
    return res


def adam(
    fn: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    nu0: Any,
    iters: int = 100,
    lr: float = ADAM_LR,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    bounds: tuple[float, float] = (-1.0, 1.0),
    target_nu: Any = None,
    progress: Any = None,
) -> DescentResult:
    """Projected Adam (Kingma & Ba 2015) from ``nu0`` (B, P): every step is taken (``accepted``
    all true) and projected onto the box; ``lr`` in ν units (each coordinate moves by about
    ``lr`` per step at first).  The recorded loss is that of each iterate (it may increase).
    ``fn``, ``progress``, ``target_nu``: as :func:`bold_driver`."""
    nu = np.array(nu0, dtype=np.float64, ndmin=2)
    check_int(iters, "iters", 0)
    if not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    (b1, b2), (lo, hi) = betas, bounds
    B, P = nu.shape
    loss, grad = (np.asarray(v, dtype=np.float64) for v in fn(nu))
    m, v = np.zeros((B, P)), np.zeros((B, P))
    hist_nu, hist_loss = [nu.copy()], [loss.copy()]
    for t in range(1, int(iters) + 1):
        g = np.nan_to_num(grad)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        nu = np.clip(nu - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps), lo, hi)
        loss, grad = (np.asarray(x, dtype=np.float64) for x in fn(nu))
        hist_nu.append(nu.copy())
        hist_loss.append(loss.copy())
        if progress is not None:
            progress.update(1)
    losses = np.stack(hist_loss)
    res = DescentResult(nu=np.stack(hist_nu), loss=losses, lr=np.full_like(losses, float(lr)),
                        trial_loss=losses[1:].copy(), accepted=np.ones((int(iters), B), dtype=bool))
    if target_nu is not None:
        res.distance = np.linalg.norm(res.nu - np.asarray(target_nu, dtype=np.float64), axis=-1)
    return res


def grid_nodes(n_per_axis: int, dim: int) -> np.ndarray:
    """The ``n_per_axis ** dim`` nodes (n, dim) of the regular grid of the box's interior:
    ``n_per_axis`` points per axis at ν = -1 + (2k + 1) / n_per_axis (cell centres)."""
    check_int(n_per_axis, "grid points per parameter", 1)
    axis = -1.0 + (2.0 * np.arange(n_per_axis) + 1.0) / n_per_axis
    return np.stack(np.meshgrid(*[axis] * dim, indexing="ij"), axis=-1).reshape(-1, dim)


def init_points(scheme: str, n: int, target_nu: Any, seed: int = 0) -> np.ndarray:
    """``n`` initial points (n, P) in the box [-1, 1]^P for ``scheme`` (see module docstring)."""
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; choose one of {', '.join(INIT_SCHEMES)}")
    check_int(n, "number of initialisations", 1)
    target_nu = np.asarray(target_nu, dtype=np.float64)
    P = target_nu.size
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 100_000:  # pragma: no cover - only for a target in a corner of a tiny box
            raise ValueError(f"could not draw {n} {scheme!r} initialisations around {target_nu}")
        if scheme == "near":
            d = rng.standard_normal(P)
            d /= np.linalg.norm(d)
            x = target_nu + d * rng.uniform(*NEAR_RANGE)
            if np.all(np.abs(x) <= 1.0):
                out.append(x)
            continue
        x = rng.uniform(-1.0, 1.0, P)
        if scheme == "far" and np.linalg.norm(x - target_nu) < FAR_MIN:
            continue
        out.append(x)
    return np.stack(out)
