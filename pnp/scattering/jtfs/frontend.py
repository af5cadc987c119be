"""``TimeFrequencyScattering``: the torch frontend of pnp's joint time-frequency scattering."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch

from pnp.scattering.base import Representation, check_compute_dtype
from pnp.scattering.jtfs.core import scatter, scatter_blocks
from pnp.scattering.jtfs.filter_bank import parse_averaging
from pnp.scattering.jtfs.plan import DEFAULT_EPS, FrequencyStage, Plan, WindowedFilter, build_plan

#: time padding modes: kymatio 0.4's reflection, or the zeros of the PNP authors' JTFS
PAD_MODES = ("reflect", "zero")


def _positive_int(value, name: str, low: int = 1) -> int:
    """``value`` as an int >= ``low``: ``TypeError`` for a non-integer (as kymatio), ``ValueError`` below ``low``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {low}, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


#: the output types: one array, or kymatio 0.4's list of per-path dicts / dict keyed by path
OUT_TYPES = ("array", "list", "dict")


def _parse_Q_fr(Q_fr) -> tuple[int]:
    """kymatio's rules: an integer >= 1 or a 1-tuple; a list is refused (ValueError), a tuple of
    several filter banks is not implemented (NotImplementedError)."""
    if isinstance(Q_fr, tuple):
        if len(Q_fr) != 1:
            raise NotImplementedError(f"Q_fr must be an integer or 1-tuple: several frequential filter banks are "
                                      f"not implemented, got {Q_fr!r}")
        Q_fr = Q_fr[0]
    elif isinstance(Q_fr, (list, np.ndarray)):
        raise ValueError(f"Q_fr must be an integer or 1-tuple, got a list {Q_fr!r}")
    if isinstance(Q_fr, bool) or not isinstance(Q_fr, numbers.Integral) or Q_fr < 1:
        raise ValueError(f"Q_fr must be >= 1 and an integer (frequential wavelets per octave), got {Q_fr!r}")
    return (int(Q_fr),)


def _log2_stride(stride, name: str, average, averaging_name: str, default: int) -> int:
    if stride is None:
        return default
    stride = _positive_int(stride, name)
    if stride & (stride - 1):
        raise ValueError(f"{name} must be a power of two >= 1, got {stride}")
    if average != "local":
        value = {False: 0}.get(average, average)
        raise ValueError(f"{name}={stride} is incompatible with {averaging_name}={value!r}: it needs local averaging "
                         f"({averaging_name} an integer >= 1 or None)")
    return int(math.log2(stride))


def _parse_Q(Q) -> tuple[int, int]:
    """kymatio's rules: an integer or a tuple ``(Q1,)`` / ``(Q1, Q2)`` of integers >= 1 (a list is
    refused: ValueError); longer tuples are not implemented (NotImplementedError)."""
    if isinstance(Q, numbers.Integral) and not isinstance(Q, bool):
        Q = (Q,)
    if not isinstance(Q, tuple):
        kind = " (a list: pass a tuple)" if isinstance(Q, list) else ""
        raise ValueError(f"Q must be an integer or a tuple (Q1,) or (Q1, Q2) of integers >= 1, got {Q!r}{kind}")
    if len(Q) > 2:
        raise NotImplementedError(f"Q must be an integer, 1-tuple or 2-tuple: scattering beyond order 2 is not "
                                  f"implemented, got {Q!r}")
    if not Q or any(isinstance(q, bool) or not isinstance(q, numbers.Integral) or q < 1 for q in Q):
        raise ValueError(f"Q must always be >= 1: an integer or a tuple (Q1,) or (Q1, Q2) of integers >= 1, got {Q!r}")
    return (int(Q[0]), int(Q[1]) if len(Q) == 2 else 1)


def _parse_shape(shape, J: int) -> int:
    """kymatio's rules: an integer or a 1-tuple (a list is refused); here also ``N >= 2**J``."""
    if isinstance(shape, tuple):
        if len(shape) != 1:
            raise ValueError(f"shape must be an integer or a 1-tuple (N,): if shape is a tuple, it must have exactly "
                             f"one element, got {shape!r}")
        shape = shape[0]
    if isinstance(shape, bool) or not isinstance(shape, numbers.Integral):
        kind = " (a list: pass a tuple or an integer)" if isinstance(shape, list) else ""
        raise ValueError(f"shape must be an integer or a 1-tuple (N,), got {shape!r}{kind}")
    if 1 <= int(shape) < 2**J:
        raise ValueError(f"shape must be at least 2**J = {2**J} samples for J = {J} octaves, got {shape}; "
                         f"use J <= {int(math.log2(int(shape)))}")
    return _positive_int(shape, "shape", low=2**J)


def _positions(index: np.ndarray, device) -> slice | torch.Tensor:
    """Channel positions as a ``slice`` (a view, no copy) when they are a contiguous ascending
    range, else as an index tensor."""
    if index.size and np.array_equal(index, np.arange(index[0], index[0] + index.size)):
        return slice(int(index[0]), int(index[0]) + index.size)
    return torch.as_tensor(index, device=device)


def windowed_filter_tensors(op: WindowedFilter, dtype: torch.dtype, device) -> dict:
    """A :class:`~.plan.WindowedFilter` as the tensors of :func:`~.core.windowed_filter`
    (taps complex of ``dtype``'s precision, on ``device``)."""
    cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
    return dict(blocks=torch.as_tensor(op.blocks, device=device), taps=torch.as_tensor(op.taps, dtype=cdtype, device=device),
                L_out=op.L_out, real=op.real, shared=op.shared, whole=op.whole)


def stage_tensors(stage: FrequencyStage, dtype: torch.dtype, device) -> dict:
    """A :class:`~.plan.FrequencyStage` as the tensors of :func:`~.core.frequency_stage`."""
    cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
    return dict(W=torch.as_tensor(stage.W, dtype=cdtype, device=device),
                average=torch.as_tensor(stage.average, dtype=dtype, device=device), layout=(stage.n_real, stage.n_pairs))


class TimeFrequencyScattering(Representation):
    """Joint time-frequency scattering (JTFS) with kymatio 0.4's arguments and numbers.

    Parameters
    ----------
    J : int >= 1
        Number of octaves of the first- and second-order temporal wavelets (max scale ``2**J``).
    J_fr : int >= 1
        Number of octaves of the frequential wavelets (along log-frequency ``n1``).
    Q : int or tuple (Q1,) or (Q1, Q2)
        Wavelets per octave at first / second order (``Q2`` defaults to 1). A list is refused
        (ValueError), a longer tuple is not implemented (NotImplementedError), as in kymatio;
        :meth:`from_config` reads the lists of a JSON / TOML config as tuples.
    shape : int or 1-tuple
        Input length ``N`` (samples); a list is refused, as ``Q``.
    T : int in [1, N], 'global', 0, or None
        Temporal averaging: ``None`` means ``2**J``; ``'global'`` sums over time; ``0``: none
        (kymatio 0.4's ``T=0``, out_type 'list' or 'dict' only: the zeroth order is ``x``
        itself (N samples), the first order is averaged by phi of width ``2**J`` at the stride
        ``2**J``, and each second-order path is unaveraged at the resolution ``2**j2`` of its
        wavelet, so paths have different lengths).
    stride : power of two, optional
        Temporal stride of the output (default ``T`` rounded down to a power of two; with
        ``T=0`` or ``'global'`` none may be given).
    Q_fr : int >= 1 or 1-tuple
        Frequential wavelets per octave (held as ``(Q_fr,)``, as kymatio does).
    F : int in [1, (J+1) Q1], 'global', 0, or None
        Frequential averaging width (``None``: ``2**J_fr``; ``0``: none).
    stride_fr : power of two, optional
        Frequential stride after averaging (default ``F`` rounded down to a power of two).
    out_type : 'array', 'list' or 'dict'
        One array (default), or kymatio's per-path list of dicts / dict keyed by path (see
        :meth:`forward`). ``'array'`` with ``T=0``, or with format 'joint' and ``F=0``, is
        refused here at construction (kymatio's message; the kymatio-compatible class raises
        it on the call, as kymatio does).
    format : 'time' or 'joint'
        'time': ``(B, C, T')``, one channel per ``(n1, n2, n_fr)``, zeroth order first.
        'joint': ``(B, P, F', T')``, one path per ``(n2, n_fr)``, every padded frequential row,
        no zeroth order (out_type 'array'; needs F != 0); with out_type 'list' / 'dict',
        kymatio's paths: the zeroth order ``(B, T')`` first, then each path's unpadded rows
        ``(B, F'_p, T')``.
    eps : float in [0, 1e-3]
        Fourier-domain filter taps below ``eps`` times the filter's peak, and frequential rows
        whose influence on every output is below ``eps`` (see
        :meth:`~.plan.FrequencyStage.crop_rows`), are skipped, and spin pairs within ``10 eps``
        are made exact conjugates. ``0`` gives kymatio's exact arithmetic (parity 3e-8, the
        float32 rounding of the references); the default ``1e-5`` is several times faster on the
        PNP configuration and stays within 7.3e-6 relative of kymatio on every test fixture
        (the contract is 1e-4).
    pad_mode : 'reflect' or 'zero'
        Padding of the signal in time before the temporal filters. ``'reflect'`` (default) is
        kymatio 0.4's. ``'zero'`` is the authors' PNP setting (kymatio 0.3.dev0 of
        cyrusvahidi/jtfs-gpu, ``pad_mode='zero'``): the padded signal is the signal followed
        and preceded by zeros, so with ``T='global'`` the zeroth-order coefficient is exactly
        ``S0 = sum_n x[n]`` (a plain sum over the N input samples, no ``1/N`` and no
        ``sqrt(T)`` factor, as for ``'reflect'``, where the sum runs over the reflect-padded
        signal instead). The frequential axis is zero-padded in both modes (kymatio 0.4's
        frequential padding). The padded length is the same in both modes.
    log1p_c : float or None
        Compression used by :meth:`features`.

    Input ``x``: real tensor ``(..., N)`` float32 or float64 on any device; output has the same
    dtype and device. Channel order is kymatio 0.4's array order: zeroth order; first order
    ``for n_fr: for n1``; second order ``for n2: for n_fr: for n1``. :meth:`meta` describes the
    channels *in this order* (kymatio's own ``meta()`` lists them sorted by ``(n1, n2, n_fr)``,
    which is not its output order).
    """

    name = "jtfs"
    #: refuse at construction an out_type='array' that cannot be formed (T=0, or format 'joint'
    #: with F=0); the kymatio-compatible subclass defers it to the call, as kymatio does
    _check_array_at_init = True

    def __init__(
        self,
        J: int,
        J_fr: int,
        Q,
        shape,
        T=None,
        stride=None,
        Q_fr=1,
        F=None,
        stride_fr=None,
        out_type: str = "array",
        format: str = "time",
        eps: float = DEFAULT_EPS,
        pad_mode: str = "reflect",
        log1p_c: float | None = None,
    ):
        super().__init__(log1p_c=log1p_c)
        self.J = _positive_int(J, "J")
        self.J_fr = _positive_int(J_fr, "J_fr")
        self.Q = _parse_Q(Q)
        self.N = _parse_shape(shape, self.J)
        self.shape = (self.N,)
        #: (Q_fr,), as kymatio holds it (one frequential filter bank)
        self.Q_fr = _parse_Q_fr(Q_fr)
        if out_type not in OUT_TYPES:
            raise ValueError(f"out_type must be one of {OUT_TYPES}, got {out_type!r}")
        self.out_type = out_type
        if format not in ("time", "joint"):
            raise ValueError(f"format must be 'time' or 'joint', got {format!r}")
        self.format = format
        eps = float(eps)
        if not 0 <= eps <= 1e-3:
            raise ValueError(f"eps must be in [0, 1e-3], got {eps}")
        self.eps = eps
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
        self.pad_mode = pad_mode
        self._parse_averaging(T, stride, F, stride_fr)
        if self._check_array_at_init:
            self._check_array_output()
        self.plan: Plan = build_plan(
            N=self.N, J=self.J, Q=self.Q, T=self.T_support, average=self.average, log2_stride=self.log2_stride,
            J_fr=self.J_fr, Q_fr=self.Q_fr[0], F=self.F_support, average_fr=self.average_fr,
            log2_stride_fr=self.log2_stride_fr, fmt=self.format, eps=self.eps,
            # per-path outputs; also where no array can be formed (the call then raises)
            paths=out_type != "array" or (format == "joint" and not self.average_fr),
        )
        self._ops_cache: dict[tuple, dict] = {}

    def _parse_averaging(self, T, stride, F, stride_fr) -> None:
        """``T`` / ``F`` as kymatio 0.4 parses them, the strides, and kymatio's attributes."""
        self.T_arg, self.F_arg, self.stride_arg, self.stride_fr_arg = T, F, stride, stride_fr
        self.T_support, self.average = parse_averaging(T, self.J, self.N, "T")
        self.F_support, self.average_fr = parse_averaging(F, self.J_fr, (self.J + 1) * self.Q[0], "F")
        log2_T = int(math.floor(math.log2(self.T_support)))
        log2_F = int(math.floor(math.log2(self.F_support)))
        self.log2_stride = _log2_stride(stride, "stride", self.average, "T", log2_T)
        self.log2_stride_fr = _log2_stride(stride_fr, "stride_fr", self.average_fr, "F", log2_F)
        #: kymatio's attributes: the averaging widths (``T``: ``2**J`` for None, 0 and 'global';
        #: ``F``: ``2**J_fr`` for None, 0 and 'global' — ``average`` / ``average_fr`` tell whether
        #: there is averaging) and the strides
        self.T = self.T_support
        self.F = self.F_support
        self.stride = 2**self.log2_stride
        self.stride_fr = 2**self.log2_stride_fr

    def _check_array_output(self) -> None:
        """kymatio 0.4's checks of ``out_type='array'``: refused with ``T=0`` and, in format
        'joint', with ``F=0`` (the paths would not stack)."""
        if self.out_type != "array":
            return
        if not self.average:
            raise ValueError("Cannot convert to out_type='array' with T=0 (no time averaging: the paths have "
                             "different lengths); set out_type to 'dict' or 'list', or T to an integer >= 1, "
                             "'global' or None")
        if self.format == "joint" and not self.average_fr:
            raise ValueError("Cannot convert to format='joint' with out_type='array' and F=0 (no frequential "
                             "averaging: the paths have different numbers of rows); set format='time', out_type "
                             "to 'dict' or 'list', or F to an integer >= 1, 'global' or None")

    @classmethod
    def from_config(cls, **config: Any) -> "TimeFrequencyScattering":
        """Build from :meth:`config`'s keyword arguments in their JSON / TOML form, where the
        tuples ``Q`` and ``shape`` are lists."""
        for key in ("Q", "shape"):
            if isinstance(config.get(key), list):
                config[key] = tuple(config[key])
        return cls(**config)

    # ------------------------------------------------------------------ description
    def _config(self) -> dict[str, Any]:
        return dict(
            J=self.J,
            J_fr=self.J_fr,
            Q=list(self.Q),
            shape=[self.N],
            T=self.T_arg,
            stride=self.stride_arg,
            Q_fr=self.Q_fr[0],
            F=self.F_arg,
            stride_fr=self.stride_fr_arg,
            out_type=self.out_type,
            format=self.format,
            eps=self.eps,
            pad_mode=self.pad_mode,
        )

    def meta(self) -> dict[str, np.ndarray]:
        """Per-path description, in output order (format 'time': channels; 'joint': paths, with
        the zeroth order first for out_type 'list' / 'dict', as kymatio).

        Keys (kymatio 0.4's): ``order`` (C,), ``n`` (C, 2) = (n1, n2), ``j`` (C, 2), ``xi`` (C, 2)
        (cycles/sample), ``sigma`` (C, 2) (bandwidths, cycles/sample), ``n_fr``, ``j_fr``,
        ``xi_fr`` (cycles/bin), ``sigma_fr``, ``spin`` (C,) -- NaN where undefined -- and ``key``
        (C,) object: kymatio's path keys, ``()``, ``(n1, n_fr)``, ``(n1, n2, n_fr)`` in format
        'time', ``()``, ``(n_fr,)``, ``(n2, n_fr)`` in format 'joint'.
        """
        return {k: v.copy() for k, v in self.plan.meta.items()}

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of the array output for one signal: ``(C, T')`` or ``(P, F', T')``; ValueError
        where the paths do not form one array (T=0; format 'joint' with out_type 'list' / 'dict')."""
        self._check_stackable("output_shape")
        t = self.plan.t_end - self.plan.t_start
        C = self.plan.n_channels
        return (C, t) if self.format == "time" else (C, self.plan.n_rows_joint, t)

    def _check_stackable(self, what: str) -> None:
        self._check_array_output()
        if not self.plan.stackable:
            why = "T=0 gives paths of different lengths" if not self.average else (
                f"format='joint' with out_type={self.out_type!r} gives each path its own unpadded frequential rows")
            raise ValueError(f"{what} needs the array output, which this configuration does not have: {why}; use "
                             "out_type='array' (with T != 0), or features() / the 'list' or 'dict' output")

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._config().items())

    # ------------------------------------------------------------------ computation
    def _ops(self, dtype: torch.dtype, device: torch.device) -> dict:
        key = (dtype, device)
        if key not in self._ops_cache:
            p = self.plan

            def wf(op: WindowedFilter) -> dict:
                return windowed_filter_tensors(op, dtype, device)

            def st(stage: FrequencyStage) -> dict:
                return stage_tensors(stage, dtype, device)

            pad_index = None  # zero padding: torch.nn.functional.pad in the core
            if self.pad_mode == "reflect":
                pad_index = torch.as_tensor(np.pad(np.arange(p.N), (p.pad_left, p.pad_right), mode="reflect"), device=device)
            self._ops_cache[key] = dict(
                dtype=dtype,
                pad_index=pad_index,
                zeroth=wf(p.zeroth) if p.zeroth is not None else None,
                first={k: wf(op) for k, op in p.first.items()},
                lowpass1={k: wf(op) for k, op in p.lowpass1.items()},
                stage1=st(p.stage1),
                second=[wf(g.op) for g in p.second],
                n2_pairs={n2: _positions(v, device) for n2, v in p.n2_pairs.items()},
                lowpass2={n2: wf(op) for n2, op in p.lowpass2.items()},
                stage2={n2: st(s) for n2, s in p.stage2.items()},
            )
        return self._ops_cache[key]

    def _ops_for(self, x: torch.Tensor, dtype: torch.dtype) -> dict:
        """The operators in ``dtype`` on x's device; in mixed precision, the zeroth-order
        filter (a linear functional of x, see :meth:`transform`) in x's precision."""
        ops = self._ops(dtype, x.device)
        if x.dtype != dtype and ops["zeroth"] is not None:
            key = ("zeroth", x.dtype, x.device)
            if key not in self._ops_cache:
                assert self.plan.zeroth is not None  # ops["zeroth"] is built from it
                cdtype = torch.complex64 if x.dtype == torch.float32 else torch.complex128
                self._ops_cache[key] = {**ops["zeroth"], "taps": torch.as_tensor(self.plan.zeroth.taps, dtype=cdtype, device=x.device)}
            ops = {**ops, "zeroth": self._ops_cache[key]}
        return ops

    def forward(self, x: torch.Tensor) -> Any:
        """JTFS of ``x`` (..., N) -> (..., C, T') ('time') or (..., P, F', T') ('joint') with
        ``out_type='array'``; with ``'list'``, one dict per path in output order (``coef``
        (..., T'_p) -- format 'time' and the zeroth order -- or (..., F'_p, T'_p) -- format
        'joint' -- and its :meth:`meta` entries: ``n`` = kymatio's path key, ``order``, ``j``,
        ``xi``, ``sigma``, ``n_fr``, ``j_fr``, ``xi_fr``, ``sigma_fr``, ``spin``); with
        ``'dict'``, ``{path key: coef}``. Lengths differ between paths with ``T=0`` only; see
        the class docstring for format 'joint'."""
        if self.out_type == "array":
            return self.transform(x)
        self._check_signal(x, "x")
        blocks = scatter_blocks(x.reshape(-1, self.N), self.plan, self._ops_for(x, x.dtype))
        return self._split(blocks, x.shape[:-1])

    def _split(self, blocks: list[torch.Tensor], batch_shape: torch.Size) -> Any:
        """The blocks ``(B, R, t)`` of :func:`~.core.scatter_blocks` as kymatio's per-path output."""
        meta = self.plan.meta
        keys = list(meta["key"])
        parts = [c for block, rows in zip(blocks, self.plan.block_rows) for c in block.split(list(rows), dim=1)]
        coefs = []
        for c, order in zip(parts, meta["order"]):
            if self.format == "time" or order == 0:
                c = c.squeeze(1)  # (B, t): a channel, or the zeroth order
            coefs.append(c.reshape(batch_shape + c.shape[1:]))
        if self.out_type == "dict":
            return dict(zip(keys, coefs))
        scalar = ("order", "n_fr", "j_fr", "xi_fr", "sigma_fr", "spin")
        return [{"coef": c, "n": keys[i], **{k: meta[k][i].item() for k in scalar},
                 **{k: tuple(meta[k][i].tolist()) for k in ("j", "xi", "sigma")}} for i, c in enumerate(coefs)]

    def transform(self, x: torch.Tensor, compute_dtype: torch.dtype | None = None) -> torch.Tensor:
        """The array output: JTFS of ``x`` (..., N) computed in ``compute_dtype`` (float32 or
        float64; default x's dtype), output in that dtype, whatever ``out_type`` (ValueError where
        the paths do not form one array, see :attr:`output_shape`). With float64 ``x`` and
        ``compute_dtype=torch.float32`` (mixed precision), the zeroth order -- a linear
        functional of x, with ``T='global'`` the sum of x, which cancels to ~1e-13 for band-pass
        sounds -- is formed in float64 and rounded afterwards; everything else runs in float32."""
        self._check_signal(x, "x")
        check_compute_dtype(compute_dtype)
        self._check_stackable("transform()")
        dtype = compute_dtype or x.dtype
        batch_shape = x.shape[:-1]
        S = scatter(x.reshape(-1, self.N), self.plan, self._ops_for(x, dtype))
        return S.reshape(batch_shape + S.shape[1:])

    def _flat_coefficients(self, x: torch.Tensor, compute_dtype: torch.dtype | None = None) -> torch.Tensor:
        """``(B, K)``: the array output flattened (out_type 'array'), or the paths' coefficients
        flattened and concatenated in output order (out_type 'list' / 'dict'; for format 'time'
        with T != 0 the same numbers)."""
        if self.out_type == "array":
            return super()._flat_coefficients(x, compute_dtype)
        self._check_signal(x, "x")
        check_compute_dtype(compute_dtype)
        blocks = scatter_blocks(x.reshape(-1, self.N), self.plan, self._ops_for(x, compute_dtype or x.dtype))
        flat = torch.cat([b.flatten(1) for b in blocks], dim=1)
        return flat.reshape(x.shape[0], -1) if x.dim() > 1 else flat[0]

    def _check_signal(self, x: torch.Tensor, name: str) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape (..., {self.N}), got {type(x).__name__}")
        if x.dim() < 1 or x.shape[-1] != self.N:
            raise ValueError(f"{name} must have shape (..., N) with N = {self.N} (the shape argument), got {tuple(x.shape)}")
        if x.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"{name} must be float32 or float64, got {x.dtype}")

    def jvp(
        self, x: torch.Tensor, dx: torch.Tensor, compute_dtype: torch.dtype | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """JTFS ``S`` (B, ...) of ``x`` (B, N) and its derivatives ``dS`` (B, P, ...) along the
        tangents ``dx`` (B, P, N), in one pass over a dual batch (see
        :func:`~pnp.scattering.jtfs.core.scatter_blocks`): the numbers of ``torch.func.jvp``,
        computed without autograd's forward mode. Used by
        :func:`pnp.jacobian.features_and_jacobian`. ``S`` is the array output (out_type
        'array'), or the flat coefficients ``(B, K)`` of :meth:`features` before compression
        (out_type 'list' / 'dict'; ``dS`` is then (B, P, K)). ``compute_dtype``: as in
        :meth:`transform` (mixed precision keeps the zeroth order and its derivatives in x's
        precision until the final rounding).
        Not meant to be differentiated itself (its derivative is NaN at x = 0)."""
        self.check_tangents(x, dx, self.N)
        self._check_signal(x, "x")
        check_compute_dtype(compute_dtype)
        if self.out_type == "array":
            self._check_stackable("jvp()")
        dtype = compute_dtype or x.dtype
        B, P = dx.shape[:2]
        dual = torch.cat([x.unsqueeze(1), dx], dim=1).reshape(B * (P + 1), self.N)
        if self.out_type == "array":
            out = scatter(dual, self.plan, self._ops_for(x, dtype), width=P + 1)
        else:
            blocks = scatter_blocks(dual, self.plan, self._ops_for(x, dtype), width=P + 1)
            out = torch.cat([b.flatten(1) for b in blocks], dim=1)
        out = out.unflatten(0, (B, P + 1))
        return out[:, 0], out[:, 1:]
