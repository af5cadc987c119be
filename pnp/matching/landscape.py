"""Loss landscapes: the loss and its gradient on a log-spaced grid of the free parameters.

For a target ``θ*`` and an ``n × n`` grid of ``(f_m, γ)`` evenly spaced in log (i.e. in the
normalised coordinates ``ν ∈ [-1, 1]²`` of the synth's parameter space: f_m 4–16 Hz,
γ 0.5–4 oct/s, f_c = 512 Hz fixed), :func:`compute_landscape` evaluates
``L = ‖Φ S_τ g(θ̃) - Φ g(θ*)‖²`` and ``∂L/∂ν`` at every grid point, batched (chunks of grid
points go through synth + representation together; one reverse pass per chunk).  The
predicted sound can be shifted by a constant ``τ`` samples or by ``2**n`` samples with ``n``
drawn uniformly among the integers of ``[a, b]`` for each grid point (seeded).

The default target is the grid node ``(n // 2, n // 2)`` — for n = 20, (f_m, γ) = (8.30 Hz,
1.49 oct/s), the meso-dtfa scripts' ``target_idx`` — so that the loss is exactly 0 there when
unshifted.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from pnp.checks import check_int
from pnp.matching.problem import MatchingProblem, check_shift


def grid_axes(problem: MatchingProblem, n: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(nu_axis (n,), [physical axis (n,) per free parameter])`` of the ``n``-point log grid."""
    check_int(n, "grid size", 2)
    nu_axis = np.linspace(-1.0, 1.0, int(n))
    axes = []
    for k in range(len(problem.free)):
        nu = np.zeros((n, len(problem.free)))
        nu[:, k] = nu_axis
        axes.append(problem.theta_free(nu)[:, k])
    return nu_axis, axes


def default_target(problem: MatchingProblem, n: int = 20) -> np.ndarray:
    """The grid node ``(n // 2, ..., n // 2)`` of the ``n``-point grid, physical units (P,)."""
    nu_axis, _ = grid_axes(problem, n)
    return problem.theta_free(np.full(len(problem.free), nu_axis[n // 2]))


def parse_random_shift(text: str, n_samples: int, option: str = "random_shift") -> tuple[int, int]:
    """``"a:b"`` → (a, b) integers with 0 <= a <= b and 2**b < n_samples (``ValueError`` naming
    ``option``, the argument the text came from, otherwise)."""
    parts = str(text).split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        a, b = int(parts[0]), int(parts[1])
    except ValueError:
        raise ValueError(f"{option} must look like A:B (integers, shifts 2**A .. 2**B samples), got {text!r}") from None
    max_b = int(np.floor(np.log2(n_samples - 1)))
    if not 0 <= a <= b <= max_b:
        raise ValueError(f"{option} A:B needs 0 <= A <= B <= {max_b} (2**B < N = {n_samples}), got {text!r}")
    return a, b


@dataclass
class Landscape:
    """A computed landscape.  Arrays are indexed ``[i, j]`` = (first free parameter index i,
    second free parameter index j), e.g. ``loss[i, j]`` at ``(f_m[i], gamma[j])``."""

    names: tuple[str, ...]
    axes: list[np.ndarray]  # physical values along each free parameter (n,)
    nu_axis: np.ndarray  # (n,)
    theta: np.ndarray  # (n, n, P) physical
    loss: np.ndarray  # (n, n)
    grad_nu: np.ndarray  # (n, n, P): ∂L/∂ν
    grad_log: np.ndarray  # (n, n, P): ∂L/∂ln θ
    shifts: np.ndarray  # (n, n) int samples applied to the predicted sound
    target: np.ndarray  # (P,) physical
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def argmin(self) -> tuple[int, int]:
        # two indices: loss is (n, n)
        return cast(tuple[int, int], tuple(int(k) for k in np.unravel_index(np.argmin(self.loss), self.loss.shape)))

    def summary(self) -> dict[str, Any]:
        """JSON-able numbers describing the landscape (see :func:`landscape_stats`)."""
        return {**self.config, "seconds": self.seconds, **landscape_stats(self)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every array and the config (inverse: :meth:`from_dict`)."""
        return {
            "names": list(self.names),
            "axes": [a.tolist() for a in self.axes],
            "nu_axis": self.nu_axis.tolist(),
            "theta": self.theta.tolist(),
            "loss": self.loss.tolist(),
            "grad_nu": self.grad_nu.tolist(),
            "grad_log": self.grad_log.tolist(),
            "shifts": self.shifts.tolist(),
            "target": self.target.tolist(),
            "seconds": self.seconds,
            "config": self.config,
            "stats": landscape_stats(self),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Landscape":
        arr = np.asarray
        return cls(
            names=tuple(d["names"]),
            axes=[arr(a, dtype=float) for a in d["axes"]],
            nu_axis=arr(d["nu_axis"], dtype=float),
            theta=arr(d["theta"], dtype=float),
            loss=arr(d["loss"], dtype=float),
            grad_nu=arr(d["grad_nu"], dtype=float),
            grad_log=arr(d["grad_log"], dtype=float),
            shifts=arr(d["shifts"], dtype=np.int64),
            target=arr(d["target"], dtype=float),
            seconds=float(d["seconds"]),
            config=dict(d.get("config", {})),
        )

    def save(self, out_dir: str) -> dict[str, str]:
        """Write ``landscape.npz`` (all arrays) and ``summary.json`` into ``out_dir``."""
        os.makedirs(out_dir, exist_ok=True)
        npz = os.path.join(out_dir, "landscape.npz")
        np.savez(
            npz,
            names=np.array(self.names),
            nu_axis=self.nu_axis,
            theta=self.theta,
            loss=self.loss,
            grad_nu=self.grad_nu,
            grad_log=self.grad_log,
            shifts=self.shifts,
            target=self.target,
            seconds=self.seconds,
            config=json.dumps(self.config),
            # cast: mypy would match the ** mapping against allow_pickle (bool) too
            **cast(dict[str, Any], {f"axis_{n}": a for n, a in zip(self.names, self.axes)}),
        )
        js = os.path.join(out_dir, "summary.json")
        with open(js, "w") as f:
            json.dump(self.summary(), f, indent=2)
        return {"npz": npz, "json": js}


def landscape_stats(land: Landscape) -> dict[str, Any]:
    """Numbers for the README: where the minimum is and whether −∇L points to the target.

    * ``argmin_theta`` / ``argmin_distance_nu``: the grid's minimum and its ν-distance to θ*;
    * ``descent_alignment``: the fraction of grid points (target node excluded) where −∇L makes
      an angle < 90° with the direction to the target (cos > 0), and the median cosine;
    * ``sign_toward_target``: per free parameter, the fraction of grid points (off the target's
      line for that parameter) where the component of −∇L has the sign that moves that
      parameter towards its target value;
    * ``variation_along``: per free parameter, the median (over the other parameter's grid
      lines) of the loss range along that parameter, divided by the whole grid's loss range —
      near 0 means the loss is flat along that parameter.
    """
    n = land.loss.shape[0]
    target_nu = np.array([np.interp(np.log(t), np.log(a), land.nu_axis) for t, a in zip(land.target, land.axes)])
    nu = np.stack(np.meshgrid(land.nu_axis, land.nu_axis, indexing="ij"), axis=-1)
    to_target = target_nu - nu
    dist = np.linalg.norm(to_target, axis=-1)
    g = -land.grad_nu
    gnorm = np.linalg.norm(g, axis=-1)
    mask = (dist > 1e-9) & (gnorm > 0)
    cos = np.sum(g * to_target, axis=-1)[mask] / (gnorm[mask] * dist[mask])
    i, j = land.argmin
    rng = float(land.loss.max() - land.loss.min())
    return {
        "grid": n,
        "target": land.target.tolist(),
        "loss_min": float(land.loss.min()),
        "loss_max": float(land.loss.max()),
        "loss_at_target_node": float(land.loss[n // 2, n // 2]) if n > 1 else None,
        "argmin_index": [i, j],
        "argmin_theta": land.theta[i, j].tolist(),
        "argmin_distance_nu": float(dist[i, j]),
        "descent_alignment": {
            "fraction_cos_positive": float(np.mean(cos > 0)) if cos.size else None,
            "median_cos": float(np.median(cos)) if cos.size else None,
        },
        "sign_toward_target": {
            name: float(np.mean(np.sign(g[..., k])[off] == np.sign(to_target[..., k])[off]))
            for k, name in enumerate(land.names)
            for off in [np.abs(to_target[..., k]) > 1e-9]
        },
        "variation_along": {
            name: float(np.median(np.ptp(land.loss, axis=k), axis=None) / rng) if rng > 0 else 0.0
            for k, name in enumerate(land.names)
        },
    }


def _grid_shifts(n: int, shift: int, random_shift: tuple[int, int] | None, seed: int, N: int) -> np.ndarray:
    """(n, n) int64 shifts of the predicted sound: ``shift`` everywhere, or ``2**k`` per point with
    ``k`` uniform in ``random_shift = (a, b)`` (``rng(seed)``)."""
    if random_shift is None:
        return np.full((n, n), shift, dtype=np.int64)
    if shift:
        raise ValueError("use either a constant shift or a random shift, not both")
    a, b = (int(v) for v in random_shift)
    if not 0 <= a <= b or 2**b >= N:
        raise ValueError(f"random shift exponents must satisfy 0 <= a <= b and 2**b < {N}, got {random_shift}")
    return 2 ** np.random.default_rng(seed).integers(a, b + 1, size=(n, n))


def _evaluate_grid(problem: MatchingProblem, flat_nu: np.ndarray, tgt, shifts: np.ndarray, batch_size: int,
                   progress: bool):
    """Loss (n²,) and gradient (n², 2) at the grid points, with a progress bar."""
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=flat_nu.shape[0], desc=f"landscape {problem.loss.name}", unit="pt", leave=False)
    try:
        return problem.evaluate(flat_nu, tgt, shifts.reshape(-1).tolist(), grad=True, batch_size=batch_size,
                                progress=bar)
    finally:
        if bar is not None:
            bar.close()


def compute_landscape(
    problem: MatchingProblem,
    n: int = 20,
    target: Any = None,
    shift: int = 0,
    random_shift: tuple[int, int] | None = None,
    seed: int = 0,
    batch_size: int = 8,
    progress: bool = True,
) -> Landscape:
    """Loss and gradient on the ``n × n`` grid (see module docstring).

    ``target``: free physical parameters (P,) (default :func:`default_target`); ``shift``:
    constant shift (samples) of the predicted sound; ``random_shift=(a, b)``: per-point shift
    ``2**k``, ``k`` uniform integer in ``[a, b]`` (``rng(seed)``), exclusive with ``shift``.
    """
    if len(problem.free) != 2:
        raise ValueError(f"a landscape needs exactly 2 free parameters, got {problem.free}")
    nu_axis, axes = grid_axes(problem, n)
    target = default_target(problem, n) if target is None else problem.check_target(target)
    shift = check_shift(shift, problem.n_samples)
    shifts = _grid_shifts(n, shift, random_shift, seed, problem.n_samples)
    nu = np.stack(np.meshgrid(nu_axis, nu_axis, indexing="ij"), axis=-1)  # (n, n, 2)
    flat_nu = nu.reshape(-1, 2)
    t0 = time.perf_counter()
    loss, grad = _evaluate_grid(problem, flat_nu, problem.target_features(target), shifts, batch_size, progress)
    seconds = time.perf_counter() - t0
    theta = problem.theta_free(flat_nu).reshape(n, n, 2)
    assert grad is not None  # evaluate(..., grad=True)
    grad_nu = grad.reshape(n, n, 2)
    config = {
        "command": "landscape",
        **problem.config(),
        "grid": n,
        "shift": int(shift),
        "random_shift": list(random_shift) if random_shift is not None else None,
        "seed": seed,
        "batch_size": batch_size,
        "loss_definition": "||Phi(shift(g(theta))) - Phi(g(theta*))||_2^2, raw features",
        "gradient": "d loss / d nu, nu = space.normalize(theta) in [-1, 1] (affine in log10 theta)",
    }
    return Landscape(
        names=problem.free,
        axes=axes,
        nu_axis=nu_axis,
        theta=theta,
        loss=loss.reshape(n, n),
        grad_nu=grad_nu,
        grad_log=grad_nu * problem.dnu_dlog,
        shifts=shifts,
        target=np.asarray(target, dtype=np.float64),
        seconds=seconds,
        config=config,
    )
