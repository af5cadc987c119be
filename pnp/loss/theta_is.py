r"""θ-IS, SCRAPL's importance-sampling initialisation of the path probabilities.

For an encoder θ̂ = f_w(x) (B, n_θ) and a synth x̂ = g(θ̂), the SCRAPL package
(``SCRAPLLoss.warmup_lc_hvp``, ``update_prob``) measures, for every path ``k`` and parameter
``i``, the curvature of the path loss ``L_k = d_k(x, x̂)`` along θ̂_i seen from the weights: the
largest eigenvalue (in absolute value) of the linear map

.. math::

    v \mapsto \frac{\partial}{\partial w} \Big\langle \frac{\partial}{\partial w}
    \big\langle \mathrm{sg}_i, \hatθ(w) \big\rangle, v \Big\rangle ,
    \qquad \mathrm{sg}_i = \frac{\partial L_k}{\partial \hatθ} \odot e_i
    \ \text{(kept in the graph)},

estimated by power iteration (hessian-eigenthings' rule: a uniform random start, the Rayleigh
quotient ``v·Av`` at each step, stop when it changes by less than ``1e-4`` relative, at most
``n_iter`` steps). The path probabilities are then, with ``c_{k,i}`` these curvatures
(clamped to ``≥ eps``) and ``f`` = ``min_prob_frac``,

.. math::

    π_k = \frac{1}{n_θ} \sum_i \Big( (1 - f) \frac{c_{k,i}}{\sum_j c_{j,i}} + \frac{f}{P} \Big).

:func:`path_curvatures` computes the curvatures with pnp's single-path JTFS, :func:`probabilities`
the distribution (the package's rule once every path has been measured).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from pnp.loss._checks import number

#: hessian-eigenthings' defaults used by the package: power-iteration steps and stopping threshold
N_ITER, THRESHOLD = 20, 1e-4


def probabilities(curvatures: Any, min_prob_frac: float = 0.0, eps: float = 1e-12) -> np.ndarray:
    """θ-IS path probabilities (P,) float64 from the curvatures (P, n_θ) >= 0 (module docs)."""
    c = np.asarray(curvatures, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] < 1:
        raise ValueError(f"curvatures must have shape (P, n_theta), got {c.shape}")
    if not np.all(np.isfinite(c)) or np.any(c < 0):
        raise ValueError("curvatures must be finite and >= 0")
    f = number(min_prob_frac, "min_prob_frac", lo=0.0)
    if f >= 1:
        raise ValueError(f"min_prob_frac must be in [0, 1), got {min_prob_frac!r}")
    log_c = torch.from_numpy(np.log(np.maximum(c, eps)))  # (P, n_theta)
    log_p = log_c - torch.logsumexp(log_c, dim=0, keepdim=True) + np.log1p(-f)
    return (log_p.exp() + f / c.shape[0]).mean(dim=1).numpy()


def power_iteration(apply: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor, n_iter: int = N_ITER,
                    threshold: float = THRESHOLD) -> float:
    """The dominant eigenvalue of the linear map ``apply`` by power iteration from ``start``
    (hessian-eigenthings' rule, module docs)."""
    vec, previous, estimate = start, 0.0, 0.0
    for _ in range(n_iter):
        new = apply(vec)
        norm = float(torch.linalg.vector_norm(new))
        if norm == 0.0:
            return 0.0
        estimate = float(torch.dot(vec, new))
        vec = new.detach() / norm
        error = 1.0 if estimate == 0.0 else abs((estimate - previous) / estimate)
        if error < threshold:
            break
        previous = estimate
    return estimate


def _flat_grad(outputs, params, grad_outputs, create_graph: bool, retain_graph: bool | None = None) -> torch.Tensor:
    grads = torch.autograd.grad(outputs, params, grad_outputs=grad_outputs, create_graph=create_graph,
                                retain_graph=retain_graph, materialize_grads=True)
    return torch.cat([g.reshape(-1) for g in grads])


def path_curvatures(theta_fn: Callable[[torch.Tensor], torch.Tensor], synth_fn: Callable[[torch.Tensor], torch.Tensor],
                    distance: Any, x: torch.Tensor, params: Sequence[torch.Tensor], paths: Sequence[int] | None = None,
                    n_iter: int = N_ITER, generator: torch.Generator | None = None) -> np.ndarray:
    """θ-IS curvatures (len(paths), n_θ) float64 of the :class:`~pnp.loss.scrapl.RandomPathJTFS`
    ``distance`` on one batch ``x`` (B, N) (module docs).

    ``theta_fn(x)`` → θ̂ (B, n_θ) (the encoder, deterministic), ``synth_fn(θ̂)`` → x̂ (B, N),
    ``params``: the encoder weights it differentiates (no ``.grad`` needed or touched).
    ``paths``: default all; ``generator`` draws the power-iteration starts (``torch.rand``, one per
    path and parameter, path-major), default torch's global generator."""
    params = list(params)
    if not params:
        raise ValueError("params must not be empty (the encoder weights)")
    paths = list(range(distance.n_paths)) if paths is None else [int(k) for k in paths]
    size = sum(p.numel() for p in params)
    out = []
    for k in paths:
        theta = theta_fn(x)
        if theta.dim() != 2:
            raise ValueError(f"theta_fn must return (B, n_theta), got shape {tuple(theta.shape)}")
        loss = distance.distance(x, synth_fn(theta), k)
        (g_theta,) = torch.autograd.grad(loss, theta, create_graph=True)
        row = []
        for i in range(theta.shape[1]):
            mask = torch.zeros_like(g_theta)
            mask[:, i] = 1.0
            g_w = _flat_grad(theta, params, g_theta * mask, create_graph=True, retain_graph=True)
            start = torch.rand(size, generator=generator, dtype=g_w.dtype)
            torch.randn(size, generator=generator)  # drawn and unused by hessian-eigenthings: same stream

            def hvp(v, g_w=g_w):
                return _flat_grad(g_w, params, v.to(g_w), create_graph=False, retain_graph=True)

            row.append(abs(power_iteration(hvp, start, n_iter)))
        out.append(row)
    return np.asarray(out, dtype=np.float64)


def warmup(loss: Any, encoder: torch.nn.Module, audio: torch.Tensor, min_prob_frac: float = 0.0,
           n_iter: int = N_ITER, generator: torch.Generator | None = None) -> list[float]:
    """θ-IS for a sound-matching run: the curvatures of every path with the ``encoder`` (audio
    (B, N) → ν̂ (B, P), all its weights) and the :class:`~pnp.loss.scrapl.RandomPathLoss`
    ``loss`` (its synth and distance) on the target sounds ``audio``; sets the distance's
    probabilities to :func:`probabilities` of them and returns those (P floats)."""
    params = [p for p in encoder.parameters() if p.requires_grad]
    curvatures = path_curvatures(encoder, loss.render, loss.distance, audio, params, n_iter=n_iter,
                                 generator=generator)
    probs = probabilities(curvatures, min_prob_frac)
    loss.distance.set_probabilities(probs)
    return [float(p) for p in probs]


__all__ = ["N_ITER", "THRESHOLD", "path_curvatures", "power_iteration", "probabilities", "warmup"]
