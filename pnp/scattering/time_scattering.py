"""First/second-order time scattering (kymatio 0.3 ``Scattering1D``, torch).

``TimeScattering`` wraps kymatio 0.3.0's torch ``Scattering1D`` (imported from
``kymatio.scattering1d.frontend.torch_frontend`` because ``import kymatio.torch`` fails with
SciPy >= 1.17: kymatio's 3-D module imports the removed ``scipy.special.sph_harm``). kymatio
builds the filter bank, the padding and the border indices and supplies ``meta()``; the
transform itself is kymatio's own ``scattering1d`` core algorithm. Two things differ from
calling the kymatio module directly, and neither changes the numbers:

* **dtype / device.** kymatio registers its filters as float32 buffers and refuses inputs of
  another dtype ("Input and filter must be of the same dtype"). Here the filter bank is kept in
  float64 (NumPy, as kymatio computes it) and cast lazily to the input's dtype and device, with
  one cached copy per ``(dtype, device)``. Float32 inputs therefore see exactly kymatio's float32
  filters (the same ``float64 -> float32`` cast), float64 inputs see the full-precision float64
  filters (the same filters kymatio's NumPy frontend uses). The filters are not module buffers,
  so ``state_dict()`` is empty and ``.to()`` is not needed: the output follows ``x``.
* **autodiff.** kymatio 0.3's torch backend takes the modulus with a legacy
  ``torch.autograd.Function`` (``ModulusStable``: no ``jvp``, no ``setup_context``) and builds its
  FFT input by writing in place into a fresh zero tensor. With the stock module, therefore, only
  plain reverse mode (``loss.backward()`` / ``torch.autograd.grad``) works; forward mode,
  ``torch.func.vmap``, ``jvp``, ``jacfwd`` and even ``torch.func.grad``/``jacrev`` raise. This
  class runs the core algorithm with a thin subclass of kymatio's ``TorchBackend1D`` that
  overrides only ``modulus`` (``sqrt(re^2 + im^2)`` written with ``torch.where`` so that the
  gradient at an exact zero is 0 -- the same value and the same zero subgradient as
  ``ModulusStable``) and ``rfft`` (out-of-place). With it the transform works in reverse mode,
  forward mode (``torch.func.jvp``, ``torch.autograd.forward_ad``), under ``torch.func.vmap``,
  ``jacrev`` and ``jacfwd``.
"""

from __future__ import annotations

import numbers
from typing import Any, cast

import numpy as np
import torch
from kymatio.scattering1d.backend.torch_backend import TorchBackend1D
from kymatio.scattering1d.core.scattering1d import scattering1d
from kymatio.scattering1d.filter_bank import scattering_filter_factory
from kymatio.scattering1d.frontend.torch_frontend import ScatteringTorch1D

from pnp.scattering.base import Representation


class _FuncTorchBackend1D(TorchBackend1D):
    """kymatio's torch 1-D backend with functorch / forward-AD friendly ``modulus`` and ``rfft``."""

    @classmethod
    def modulus(cls, x: torch.Tensor) -> torch.Tensor:
        # x: (..., 2) real view of a complex tensor -> (..., 1) modulus
        cls.complex_check(x)
        sq = x[..., 0] * x[..., 0] + x[..., 1] * x[..., 1]
        nonzero = sq > 0
        safe = torch.where(nonzero, sq, torch.ones_like(sq))
        out = torch.where(nonzero, torch.sqrt(safe), torch.zeros_like(sq))
        return out[..., None]

    @classmethod
    def rfft(cls, x: torch.Tensor) -> torch.Tensor:
        # x: (..., 1) real -> (..., 2) real view of its (full, two-sided) FFT, like kymatio's rfft
        cls.real_check(x)
        xr = x[..., 0]
        xc = torch.complex(xr, torch.zeros_like(xr))
        return torch.view_as_real(torch.fft.fft(xc))


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


class TimeScattering(Representation):
    """Time scattering ``S x = [S0 x, S1 x, S2 x]`` (kymatio 0.3 ``Scattering1D``).

    Parameters
    ----------
    J : int
        Maximum log2-scale of the wavelets, >= 1.
    shape : int or 1-tuple
        Signal length ``N`` (>= 4). Inputs must have exactly ``N`` samples.
    Q : int or tuple
        Wavelets per octave: ``Q1`` or ``(Q1,)`` or ``(Q1, Q2)`` (``Q2`` defaults to 1), ints >= 1.
    T : int or None
        Temporal support of the low-pass filter (``None``: ``2**J``); ``1 <= T <= N``. With
        ``T = None``, ``2**J`` must be ``<= N``.
    max_order : int
        1 or 2.
    out_type : str
        Only ``'array'`` is supported.
    log1p_c : float or None
        If set, :meth:`features` returns ``log1p(S / log1p_c)``.

    ``forward(x)``: ``x`` of shape ``(B, N)`` (float32 or float64, any device) -> ``(B, C, T')``
    in ``x``'s dtype and device, with ``C = 1 + #order-1 (+ #order-2)`` coefficients in kymatio's
    order (order 0, then order 1 by decreasing centre frequency, then order 2); :meth:`meta`
    describes the ``C`` channels (``'order'``, ``'xi'`` in cycles/sample, ``'sigma'``, ``'j'``,
    ``'n'``, ``'key'``).

    Numbers are kymatio 0.3.0's, quirks included: its low-pass filter is periodised with a mean,
    so a first-/second-order path computed at subsampling ``2**k`` (``k = min(j, log2 T)``) comes
    out scaled by ``2**-k`` (e.g. a unit-amplitude tone at the centre of a ``j1 = 2`` wavelet gives
    ``S1 ~ 0.5 / 4`` rather than 0.5; kymatio PR #736 discusses this). Rescale downstream if
    cross-octave amplitudes matter.

    Autodiff: reverse mode, forward mode, ``torch.func.vmap`` / ``jacrev`` / ``jacfwd`` all work
    (see the module docstring for why this needs a small backend override of kymatio).
    """

    name = "scattering1d"

    def __init__(
        self,
        J: int,
        shape: int | tuple[int],
        Q: int | tuple[int, ...] = 1,
        T: int | None = None,
        max_order: int = 2,
        out_type: str = "array",
        log1p_c: float | None = None,
    ):
        super().__init__(log1p_c=log1p_c)
        # shape
        if isinstance(shape, (tuple, list)):
            if len(shape) != 1:
                raise ValueError(f"shape must be an int or a 1-tuple (N,), got {shape!r}")
            shape = shape[0]
        if not _is_int(shape) or shape < 4:
            raise ValueError(f"shape must be an int N >= 4 (or a 1-tuple), got {shape!r}")
        N = int(shape)
        # J
        if not _is_int(J) or J < 1:
            raise ValueError(f"J must be an int >= 1, got {J!r}")
        J = int(J)
        # Q
        if _is_int(Q):
            Q_t: tuple[int, ...] = (int(cast(int, Q)), 1)  # an integer: _is_int does not narrow
        elif isinstance(Q, (tuple, list)) and len(Q) in (1, 2) and all(_is_int(q) for q in Q):
            Q_t = tuple(int(q) for q in Q) + ((1,) if len(Q) == 1 else ())
        else:
            raise ValueError(f"Q must be an int >= 1 or a tuple (Q1,) / (Q1, Q2) of ints >= 1, got {Q!r}")
        if min(Q_t) < 1:
            raise ValueError(f"Q must be an int >= 1 or a tuple (Q1,) / (Q1, Q2) of ints >= 1, got {Q!r}")
        # T
        if T is None:
            if 2**J > N:
                raise ValueError(
                    f"J must satisfy 2**J <= shape when T is None (T defaults to 2**J); "
                    f"got J={J}, shape={N}: J must be in [1, {int(np.log2(N))}]"
                )
        else:
            if not _is_int(T) or not (1 <= T <= N):
                raise ValueError(f"T must be None or an int in [1, shape={N}], got {T!r}")
            T = int(T)
        # max_order, out_type
        if not _is_int(max_order) or max_order not in (1, 2):
            raise ValueError(f"max_order must be 1 or 2, got {max_order!r}")
        if out_type != "array":
            raise ValueError(f"out_type must be 'array' (the only supported value), got {out_type!r}")

        self.J, self.shape, self.Q, self.T = J, N, Q_t, T
        self.max_order, self.out_type = int(max_order), out_type

        sc = ScatteringTorch1D(J=J, shape=(N,), Q=Q_t, T=T, max_order=self.max_order, out_type="array")
        # not a registered submodule: its float32 buffers are unused here (see module docstring)
        self.__dict__["_kymatio"] = sc
        # kymatio's float64 filter bank (ScatteringTorch1D keeps only float32 copies)
        self._np_filters = scattering_filter_factory(
            sc._N_padded, sc.J, sc.Q, sc.T, r_psi=sc.r_psi, sigma0=sc.sigma0, alpha=sc.alpha
        )
        self._filter_cache: dict[tuple[torch.dtype, str], tuple[Any, Any, Any]] = {}

    # ------------------------------------------------------------------ kymatio pass-through
    @property
    def kymatio(self) -> ScatteringTorch1D:
        """The underlying kymatio ``ScatteringTorch1D`` (float32 buffers, stock backend)."""
        return self.__dict__["_kymatio"]

    def meta(self) -> dict[str, Any]:
        """kymatio's ``Scattering1D.meta()`` (order, xi, sigma, j, n, key of the C channels)."""
        return self.kymatio.meta()

    def output_size(self, detail: bool = False):
        """kymatio's ``output_size``: ``C`` (or per-order counts if ``detail``)."""
        return self.kymatio.output_size(detail=detail)

    def _config(self) -> dict[str, Any]:
        return {
            "J": self.J,
            "shape": self.shape,
            "Q": list(self.Q),
            "T": self.T,
            "max_order": self.max_order,
            "out_type": self.out_type,
        }

    def extra_repr(self) -> str:
        return f"J={self.J}, shape={self.shape}, Q={self.Q}, T={self.T}, max_order={self.max_order}"

    # ------------------------------------------------------------------ transform
    def _filters(self, dtype: torch.dtype, device: torch.device):
        key = (dtype, str(device))
        if key not in self._filter_cache:

            def conv(d):
                return {
                    **d,
                    "levels": [
                        torch.from_numpy(np.asarray(f)).to(dtype=dtype, device=device).view(-1, 1)
                        for f in d["levels"]
                    ],
                }

            phi, psi1, psi2 = self._np_filters
            self._filter_cache[key] = (conv(phi), [conv(p) for p in psi1], [conv(p) for p in psi2])
        return self._filter_cache[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scattering coefficients ``(B, C, T')`` of ``x`` ``(B, N)``, in ``x``'s dtype/device."""
        self.check_input(x, n_samples=self.shape)
        if x.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"x must be float32 or float64, got {x.dtype}")
        sc = self.kymatio
        phi, psi1, psi2 = self._filters(x.dtype, x.device)
        B = x.shape[0]
        S = scattering1d(
            x.reshape(B, 1, self.shape).contiguous(),
            _FuncTorchBackend1D,
            psi1,
            psi2,
            phi,
            max_order=self.max_order,
            average=True,
            pad_left=sc.pad_left,
            pad_right=sc.pad_right,
            ind_start=sc.ind_start,
            ind_end=sc.ind_end,
            oversampling=0,
        )
        S = torch.stack([s["coef"] for s in S], dim=-2)  # (B, 1, C, T')
        return S.reshape(B, S.shape[-2], S.shape[-1])
