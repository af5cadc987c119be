r"""SCRAPL's path-wise optimisers, 𝒫-Adam and 𝒫-SAGA, in front of plain SGD.

SCRAPL (:mod:`pnp.loss.scrapl`) takes one step per sampled JTFS path ``k``; its package
(``scrapl-loss`` 0.1.0, ``SCRAPLLoss.attach_params`` / ``grad_hook``) transforms each parameter's
gradient ``g`` before a vanilla SGD step (no momentum, optional weight decay), in this order:

1. ``g ← grad_mult · g`` (when ``grad_mult ≠ 1``);
2. **𝒫-Adam** — Adam moments kept per path, decayed by the time since the path's last step.
   With ``t`` the package's clock (the number of training steps so far, this one included,
   plus one), ``τ = t / P`` and ``τ_k`` path ``k``'s ``τ`` at its previous step (0 if none),
   ``Δ = τ − τ_k``:

   .. math::

       m_k ← β_1^Δ m_k + (1 − β_1^Δ) g, \quad v_k ← β_2^Δ v_k + (1 − β_2^Δ) g^2, \quad
       g ← \frac{m_k / (1 − β_1^τ)}{\sqrt{v_k / (1 − β_2^τ)} + ε};

3. **𝒫-SAGA** — with ``G_j`` the last (post-𝒫-Adam) gradient of path ``j`` (0 if unseen) and
   ``n`` the number of distinct paths sampled so far, this one included:
   ``g ← g − G_k + (Σ_j G_j) / max(1, n − 1)``, then ``G_k ← g`` (the value before this update);
4. SGD: ``w ← w − lr (g + weight_decay · w)``.

The numbers are the package's (its clock offset and SAGA divisor included); tests compare the
states and steps with it. Unlike the package (gradient hooks, state outside the optimiser,
"resuming is not supported"), the state lives in the optimiser, so ``state_dict()`` /
``load_state_dict()`` checkpoint and resume it. Memory: 3 tensors of ``P`` copies of every
parameter (𝒫-Adam's m, v; 𝒫-SAGA's G).
"""

from __future__ import annotations

from typing import Any

import torch

#: the path-wise optimisers (pnp's names): 𝒫-Adam then 𝒫-SAGA, either alone
PATHWISE = {"p-adam-saga": (True, True), "p-adam": (True, False), "p-saga": (False, True)}


class PathwiseSGD(torch.optim.Optimizer):
    """SGD on SCRAPL's path-wise gradients (module docs).

    Parameters
    ----------
    params : iterable of tensors (or parameter groups)
    paths : the loss (:class:`pnp.loss.scrapl.RandomPathJTFS`): its ``n_paths``, ``grad_mult``,
        ``use_rho_log1p`` and, at each :meth:`step`, ``last_path`` (the path of the gradient)
    lr : float > 0
    p_adam, p_saga : bool
        Which path-wise transforms run (at least one).
    betas, eps : 𝒫-Adam's β1, β2, ε (the package's defaults 0.9, 0.999, 1e-8)
    weight_decay : float >= 0
    """

    def __init__(self, params, paths: Any, lr: float, p_adam: bool = True, p_saga: bool = True,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        if not (p_adam or p_saga):
            raise ValueError("PathwiseSGD needs p_adam or p_saga (for neither, use torch.optim.SGD)")
        for name in ("n_paths", "grad_mult", "use_rho_log1p", "last_path"):
            if not hasattr(paths, name):
                raise ValueError(f"paths must be the SCRAPL loss (pnp.loss.RandomPathJTFS), got {type(paths).__name__}")
        if p_adam and not paths.use_rho_log1p and not paths.grad_mult > 1:
            raise ValueError(f"𝒫-Adam without use_rho_log1p needs grad_mult > 1 (float precision of the squared "
                             f"gradients, as the SCRAPL package requires), got grad_mult={paths.grad_mult:g}")
        if not lr > 0 or not weight_decay >= 0 or not all(0 <= b < 1 for b in betas) or not eps > 0:
            raise ValueError(f"PathwiseSGD: lr must be > 0, weight_decay >= 0, betas in [0, 1), eps > 0; got lr={lr}, "
                             f"weight_decay={weight_decay}, betas={betas}, eps={eps}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))
        self.paths = paths
        self.p_adam, self.p_saga = bool(p_adam), bool(p_saga)
        self.n_paths = int(paths.n_paths)
        #: training steps taken (the package's ``scrapl_t``) and the paths sampled so far
        self.steps = 0
        self.seen: set[int] = set()

    def _param_state(self, w: torch.Tensor) -> dict:
        state = self.state[w]
        if not state:
            shape = (self.n_paths, *w.shape)
            if self.p_adam:
                state["m"] = torch.zeros(shape, dtype=w.dtype, device=w.device)
                state["v"] = torch.zeros(shape, dtype=w.dtype, device=w.device)
                state["t"] = torch.zeros(self.n_paths, dtype=torch.float64)  # clock of each path's last step
            if self.p_saga:
                state["memory"] = torch.zeros(shape, dtype=w.dtype, device=w.device)
        return state

    def _p_adam(self, g: torch.Tensor, state: dict, k: int, clock: int, group: dict) -> torch.Tensor:
        b1, b2 = group["betas"]
        tau, tau_k = clock / self.n_paths, int(round(float(state["t"][k]))) / self.n_paths
        e1, e2 = b1 ** (tau - tau_k), b2 ** (tau - tau_k)
        m = e1 * state["m"][k] + (1 - e1) * g
        v = e2 * state["v"][k] + (1 - e2) * g**2
        state["m"][k], state["v"][k], state["t"][k] = m, v, clock
        return (m / (1 - b1**tau)) / (torch.sqrt(v / (1 - b2**tau)) + group["eps"])

    def _p_saga(self, g: torch.Tensor, state: dict, k: int) -> torch.Tensor:
        memory = state["memory"]
        average = memory.sum(0) / max(1, len(self.seen) - 1)
        out = g - memory[k] + average
        memory[k] = g
        return out

    @torch.no_grad()
    def step(self, closure=None):
        """One step on the current gradients, for the loss's last sampled path."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        k = self.paths.last_path
        if k is None or not 0 <= int(k) < self.n_paths:
            raise ValueError("PathwiseSGD.step: the SCRAPL loss has sampled no path yet (call it before step)")
        k = int(k)
        self.steps += 1
        self.seen.add(k)
        clock = self.steps + 1  # the package's clock: scrapl_t (this step included) + 1
        grad_mult = float(self.paths.grad_mult)
        for group in self.param_groups:
            for w in group["params"]:
                if w.grad is None:
                    continue
                g = w.grad * grad_mult if grad_mult != 1.0 else w.grad
                state = self._param_state(w)
                if self.p_adam:
                    g = self._p_adam(g, state, k, clock, group)
                if self.p_saga:
                    g = self._p_saga(g, state, k)
                w.grad.copy_(g)
                if group["weight_decay"]:
                    g = g.add(w, alpha=group["weight_decay"])
                w.add_(g, alpha=-group["lr"])
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "pathwise": {"steps": self.steps, "seen": sorted(self.seen)}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        extra = state_dict.pop("pathwise", None)
        if extra is None:
            raise ValueError("not a PathwiseSGD state (no 'pathwise' entry): the checkpoint's optimiser differs")
        super().load_state_dict(state_dict)
        self.steps, self.seen = int(extra["steps"]), {int(k) for k in extra["seen"]}


def make_pathwise(name: str, params, paths: Any, lr: float, weight_decay: float = 0.0) -> PathwiseSGD:
    """The path-wise optimiser ``name`` (:data:`PATHWISE`: ``"p-adam-saga"``, ``"p-adam"``,
    ``"p-saga"``) with the package's β and ε."""
    if name not in PATHWISE:
        raise ValueError(f"path-wise optimiser must be one of {', '.join(map(repr, PATHWISE))}, got {name!r}")
    p_adam, p_saga = PATHWISE[name]
    return PathwiseSGD(params, paths, lr=lr, p_adam=p_adam, p_saga=p_saga, weight_decay=weight_decay)


__all__ = ["PATHWISE", "PathwiseSGD", "make_pathwise"]
