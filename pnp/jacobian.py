r"""Features, Jacobians and the induced metric of a synthesizer seen through a representation.

For a synth ``g`` (θ physical → audio) and a representation ``Φ`` (audio → features), the
function differentiated here is

.. math::

    \nu \;\mapsto\; S(\nu) = \Phi\big(g(\theta(\nu))\big),

where ``ν ∈ [-1, 1]^P`` are the *free* parameters normalised by the synth's
:class:`~pnp.synth.space.ParameterSpace` (affine in scale space, see
``ParameterSpace.normalize``) and the *fixed* parameters are held at given physical values.
:class:`Parametrization` is that map ``ν ↦ θ``.

* :func:`features_and_jacobian` — ``S`` (B, K) and ``J = ∂S/∂ν`` (B, K, P) by the chain rule
  ``J = ∂Φ/∂x · ∂x/∂ν``: the audio tangents ``∂x/∂ν`` (P per sample) by ``torch.func.jacfwd``
  through the synth, then ``representation.features_jvp`` pushes them through Φ (for the JTFS,
  one pass over a dual batch; for other representations, ``torch.func.jvp``). Micro-batched
  (``batch_size`` samples at a time) so that memory stays bounded whatever B is.
* :func:`metric` — the pulled-back metric ``M = JᵀJ`` (B, P, P) in float64.
* :func:`eigenvalues` — the eigenvalues of ``M`` (B, P), float64, ascending.

Everything follows ν's dtype and device (float32 or float64, CPU or CUDA); synths and
representations are ``nn.Module`` s without trainable state, used as they are.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, cast

import torch
from torch.func import jacfwd, vmap

from pnp.synth.space import ParameterSpace

#: default number of samples per micro-batch (each is 1 + P signals through the representation;
#: on one CPU thread larger working sets cost more than they save, GPUs like larger ones:
#: measured in docs/representations.md, "Joint time–frequency scattering")
DEFAULT_BATCH_SIZE = 1
LN10 = math.log(10.0)


class Parametrization:
    """The map ``ν`` (free parameters, normalised) → ``θ`` (all parameters, physical units).

    Parameters
    ----------
    space : ParameterSpace
        The synth's full parameter space (P_full parameters).
    fixed : mapping name → float, optional
        Parameters held constant, in physical units (inside their bounds).  The others are
        *free*, in the order of ``space``; at least one must remain free.

    Attributes
    ----------
    free : tuple of str
        Names of the free parameters (P = len(free)), in ``space`` order.
    free_space : ParameterSpace
        The sub-space of the free parameters (used for grids and normalisation).
    fixed : dict name → float
    """

    def __init__(self, space: ParameterSpace, fixed: Mapping[str, Any] | None = None):
        if not isinstance(space, ParameterSpace):
            raise TypeError(f"space must be a ParameterSpace, got {type(space).__name__}")
        fixed = dict(fixed or {})
        clean: dict[str, float] = {}
        for name, value in fixed.items():
            if name not in space.names:
                raise ValueError(
                    f"fixed parameter {name!r} is not a parameter of {space.name or 'the synth'}; "
                    f"expected one of {space.names}"
                )
            p = space[name]
            if isinstance(value, bool):
                raise TypeError(f"fixed parameter {name!r} must be a number, got {value!r}")
            try:
                v = float(value)
            except (TypeError, ValueError):
                raise TypeError(f"fixed parameter {name!r} must be a number, got {value!r}") from None
            tol = float(space.tolerance()[space.index(name)])
            if not math.isfinite(v) or not (p.lo - tol <= v <= p.hi + tol):
                raise ValueError(f"fixed parameter {name!r} = {value!r} is outside its bounds {p.bounds_str()}")
            clean[name] = v
        free = tuple(n for n in space.names if n not in clean)
        if not free:
            raise ValueError(f"every parameter of {space.names} is fixed; at least one must be free")
        self.space = space
        self.fixed = {n: clean[n] for n in space.names if n in clean}  # space order
        self.free = free
        self.free_index = tuple(space.index(n) for n in free)
        self.free_space = ParameterSpace([space[n] for n in free], name=space.name)

    @property
    def dim(self) -> int:
        """Number of free parameters P."""
        return len(self.free)

    def __repr__(self) -> str:
        return f"Parametrization(free={self.free}, fixed={self.fixed})"

    def theta(self, nu: torch.Tensor) -> torch.Tensor:
        """ν (..., P) → θ (..., P_full), physical units, ν's dtype/device.  Differentiable and
        ``torch.func``-safe (no value reads).

        Same map as ``ParameterSpace.denormalize`` (equal up to a few ulps), written on
        ``(..., 1)`` slices and with ``exp(z ln 10)``: in torch 2.13, forward-mode AD of a 0-d
        tensor combined with a Python float (``x[..., i] + 1.0``, ``pow(10.0, z)``) yields
        float64 tangents for float32 input, which would silently turn a float32 Jacobian
        computation into a mixed-precision one.
        """
        cols: list[Any]  # None for the fixed parameters until the second pass
        cols, k = [], 0
        for p in self.space.parameters:
            if p.name in self.fixed:
                cols.append(None)
                continue
            z = (nu[..., k : k + 1] + 1.0) * (0.5 * (p.s_hi - p.s_lo)) + p.s_lo
            cols.append(torch.exp(z * LN10) if p.is_log else z)
            k += 1
        ref = next(c for c in cols if c is not None)
        cols = [torch.full_like(ref, self.fixed[p.name]) if c is None else c for p, c in zip(self.space.parameters, cols)]
        return torch.cat(cols, dim=-1)

    def nu(self, theta_free: Any) -> Any:
        """Free-parameter θ (..., P) physical → ν (..., P) (numpy in → float64 numpy out)."""
        return self.free_space.normalize(theta_free)

    def check_nu(self, nu: Any) -> torch.Tensor:
        """Raise ``ValueError`` unless ``nu`` is a floating (B, P) tensor of finite values in
        [-1, 1] (a few ulps of slack); returns it."""
        if not isinstance(nu, torch.Tensor):
            raise TypeError(f"nu must be a torch.Tensor of shape (B, {self.dim}), got {type(nu).__name__}")
        if nu.dim() != 2 or nu.shape[1] != self.dim:
            raise ValueError(
                f"nu must have shape (B, {self.dim}) for the free parameters {self.free}, got {tuple(nu.shape)}"
            )
        if nu.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"nu must be float32 or float64, got {nu.dtype}")
        if nu.shape[0] == 0:
            return nu
        slack = 8 * torch.finfo(nu.dtype).eps
        bad = ~(torch.isfinite(nu) & (nu.abs() <= 1 + slack))
        if bool(bad.any()):
            row, col = (int(v) for v in torch.nonzero(bad)[0])
            raise ValueError(
                f"nu[{row}, {col}] (parameter {self.free[col]!r}) = {float(nu[row, col])!r} is outside [-1, 1]"
            )
        return nu

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description of the normaliser (stored as provenance)."""
        return {
            "kind": "affine in scale space to [-1, 1]",
            "formula": "nu = 2 (s(theta) - s(lo)) / (s(hi) - s(lo)) - 1, s = log10 for log-scaled parameters",
            "range": [-1.0, 1.0],
            "free": list(self.free),
            "fixed": dict(self.fixed),
            "free_space": self.free_space.to_dict(),
        }


def _check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    return batch_size


def features_and_jacobian(
    synth: torch.nn.Module,
    representation: torch.nn.Module,
    nu: torch.Tensor,
    fixed: Mapping[str, Any] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    jacobian: bool = True,
    parametrization: Parametrization | None = None,
    representation_dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Features ``S = Φ(g(θ(ν)))`` and Jacobian ``J = ∂S/∂ν`` of a batch of parameter points.

    Parameters
    ----------
    synth : pnp synth (``pnp.synth.get(...)``)
    representation : pnp representation (``pnp.scattering.get(...)``), its ``features``
        (with its ``log1p_c`` compression if set) defines S.
    nu : torch.Tensor, (B, P) float32 or float64
        Free parameters normalised to [-1, 1] (see :class:`Parametrization`); its dtype and
        device set those of the computation.
    fixed : mapping name → physical value, optional
        Parameters held constant (ignored when ``parametrization`` is given).
    batch_size : int
        Samples per micro-batch; bounds the memory (≈ batch_size · (1 + P) signals through the
        representation at once).  Results do not depend on it beyond round-off.
    jacobian : bool
        False: features only (J is None), computed without autograd.
    parametrization : Parametrization, optional
        Pre-built ν → θ map (saves rebuilding it on every call).
    representation_dtype : torch.float32 or torch.float64, optional
        Precision of Φ (default: ν's dtype). *Mixed precision*: with ν in float64 and
        ``representation_dtype=torch.float32``, θ, the synth and its audio tangents ``∂x/∂ν``
        are computed in float64 (chirp phases need it) and Φ runs in float32
        (``representation.features_jvp(x, dx, compute_dtype)``: the audio and tangents are
        rounded to float32, except for the JTFS's zeroth order, a linear functional of the
        audio formed in float64); S and J are then float32.

    Returns
    -------
    S : torch.Tensor, (B, K), ``representation_dtype`` (default ν's dtype), ν's device
    J : torch.Tensor, (B, K, P), same dtype/device — ``J[b, k, i] = ∂S[b, k]/∂ν[b, i]`` — or None

    Raises ``ValueError`` for a badly shaped ν, values outside [-1, 1], or bad fixed values.
    Non-finite outputs are returned as they are (callers decide what to do with them).
    """
    # synth / representation: pnp ones (typed nn.Module), whose own attributes mypy would see through
    # nn.Module.__getattr__ (Tensor | Module), hence the casts to Any
    param = parametrization or Parametrization(cast(Any, synth).space, fixed)
    nu = param.check_nu(nu)
    batch_size = _check_batch_size(batch_size)
    if representation_dtype is None:
        representation_dtype = nu.dtype
    if representation_dtype not in (torch.float32, torch.float64):
        raise ValueError(f"representation_dtype must be torch.float32 or torch.float64, got {representation_dtype!r}")
    rdt = representation_dtype

    def audio(nu1: torch.Tensor):  # (P,) → ((N,), (N,))
        x = synth(param.theta(nu1)[None], validate=False)[0]
        return x, x

    S_parts, J_parts = [], []
    for start in range(0, nu.shape[0], batch_size):
        block = nu[start : start + batch_size]
        if jacobian:
            with torch.no_grad():
                dx, x = vmap(jacfwd(audio, has_aux=True))(block)  # (b, N, P), (b, N)
                dx = dx.transpose(1, 2)  # (b, P, N)
                S, dS = (cast(Any, representation).features_jvp(x, dx, rdt) if rdt != nu.dtype
                         else cast(Any, representation).features_jvp(x, dx))
            J_parts.append(dS.transpose(1, 2))
        else:
            with torch.no_grad():
                x = synth(param.theta(block), validate=False)
                S = (cast(Any, representation).features(x, rdt) if rdt != nu.dtype
                     else cast(Any, representation).features(x))
        S_parts.append(S.detach())
    if not S_parts:  # B = 0: learn K from one point, return empty arrays
        with torch.no_grad():
            K = cast(Any, representation).features(synth(param.theta(nu.new_zeros(1, param.dim)), validate=False), rdt).shape[1]
        S0 = nu.new_zeros(0, K, dtype=rdt)
        return S0, (nu.new_zeros(0, K, param.dim, dtype=rdt) if jacobian else None)
    S = torch.cat(S_parts)
    return S, (torch.cat(J_parts) if jacobian else None)


def metric(J: torch.Tensor) -> torch.Tensor:
    """``M = JᵀJ``: J (B, K, P) any real dtype → M (B, P, P) float64 (symmetric, PSD).

    Computed in float64 whatever J's precision, on J's device.
    """
    if not isinstance(J, torch.Tensor) or J.dim() != 3 or not J.is_floating_point():
        shape = tuple(J.shape) if isinstance(J, torch.Tensor) else type(J).__name__
        raise ValueError(f"J must be a real floating tensor of shape (B, K, P), got {shape}")
    J64 = J.to(torch.float64)
    M = J64.transpose(-1, -2) @ J64
    return 0.5 * (M + M.transpose(-1, -2))  # exactly symmetric


def eigenvalues(M: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of the symmetric M (B, P, P) → (B, P) float64, ascending.

    Rows of M that are not finite give NaN eigenvalues (instead of a LAPACK error).
    """
    if not isinstance(M, torch.Tensor) or M.dim() != 3 or M.shape[-1] != M.shape[-2]:
        shape = tuple(M.shape) if isinstance(M, torch.Tensor) else type(M).__name__
        raise ValueError(f"M must be a tensor of shape (B, P, P), got {shape}")
    M64 = M.to(torch.float64)
    out = torch.full(M64.shape[:-1], float("nan"), dtype=torch.float64, device=M64.device)
    ok = torch.isfinite(M64).flatten(1).all(1)
    if bool(ok.any()):
        out[ok] = torch.linalg.eigvalsh(M64[ok])
    return out


def metric_trace_and_share(J: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """trace(M) of ``M = JᵀJ`` and the share of it carried by the coefficients ``rows``.

    J (B, K, P) real, rows (R,) int64 indices into K -> ``trace`` (B,) float64 =
    ``sum_{k,i} J[b,k,i]^2`` and ``share`` (B,) float64 in [0, 1] =
    ``sum_{k in rows, i} J[b,k,i]^2 / trace`` (0 where the trace is 0).
    """
    if not isinstance(J, torch.Tensor) or J.dim() != 3 or not J.is_floating_point():
        shape = tuple(J.shape) if isinstance(J, torch.Tensor) else type(J).__name__
        raise ValueError(f"J must be a real floating tensor of shape (B, K, P), got {shape}")
    energy = J.to(torch.float64).square().sum(-1)  # (B, K)
    trace = energy.sum(-1)
    part = energy.index_select(1, rows.to(device=J.device, dtype=torch.int64)).sum(-1)
    return trace, torch.where(trace > 0, part / torch.where(trace > 0, trace, 1.0), 0.0)
