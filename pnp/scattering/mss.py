"""Multi-scale spectrogram (MSS), as in the Mesostructures paper (Vahidi et al. 2023, eq. 18).

For each window size ``W`` in ``window_sizes`` (default ``2**5 .. 2**10``) the representation
computes the magnitude of a short-time Fourier transform with a periodic Hann window of length
``W`` (no zero padding, ``n_fft = W``), hop ``H = round(W * hop_ratio)`` (default ``W / 4``) and
*no centring*: frame ``t`` covers ``x[t*H : t*H + W]``, there are ``T_W = 1 + (N - W) // H``
frames, and trailing samples that do not fill a whole frame are not analysed. The spectrogram at
scale ``W`` has shape ``(B, W // 2 + 1, T_W)`` (one-sided, unnormalised, i.e.
``|sum_n w[n] x[tH + n] exp(-2i pi k n / W)|``); it equals
``torch.stft(x, W, H, window=torch.hann_window(W), center=False, return_complex=True).abs()``.

The STFT is ``torch.stft`` (the frames of a whole batch in one call), faster than gathering
the frames with an index tensor + ``torch.fft.rfft`` in every autodiff mode (``benchmarks/mss.py``;
figures in ``docs/representations.md``).  Under a
plain ``torch.func.vmap`` of the forward pass, where ``aten::stft`` has no batching rule in torch
2.13 (a per-sample fall-back), the gathered frames are used instead; both give the same numbers
to round-off (tested).  Everything is differentiable in reverse mode, forward mode (``torch.func.jvp``,
``torch.autograd.forward_ad``), under ``torch.func.vmap``, ``jacrev`` and ``jacfwd``.

Magnitude at zero: the magnitude is :func:`pnp.scattering.jtfs.modulus.modulus` of the complex
STFT, whose derivative is ``Re(conj(sgn(z)) dz)`` with a safe ``sgn`` that is 0 where ``|z|`` is 0;
an all-zero input therefore gets a zero (sub)gradient instead of NaN, in reverse and forward mode
alike. (Float32 sounds with subnormal tails can still give NaN gradients through the STFT:
``pnp.matching`` flushes samples below ~1e-19 to zero before the MSS.) (Only second derivatives at an
exact zero are unbounded, as for any modulus.)

The MSS *distance* of the paper is the mean over scales of the mean absolute difference between
linear magnitudes, ``d(x, y) = 1/|W| sum_W mean_{k,t} | |STFT_W x| - |STFT_W y| |`` (one value
per batch item). An optional log-magnitude term ``log_weight * mean |log(|X| + log_eps) -
log(|Y| + log_eps)|`` can be added per scale; it is off by default (``log_weight = 0``), which
is the paper's linear-magnitude L1.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence, cast

import torch

from pnp.scattering.base import Representation
from pnp.scattering.jtfs.modulus import modulus

DEFAULT_WINDOW_SIZES = (32, 64, 128, 256, 512, 1024)


def _is_power_of_two(n: int) -> bool:
    return n > 0 and (n & (n - 1)) == 0


def _is_vmapped(x: torch.Tensor) -> bool:
    """Whether ``x`` is batched by ``torch.func.vmap`` itself (not only wrapped by ``grad`` / ``jvp``)."""
    try:
        return bool(torch._C._functorch.is_batchedtensor(x))
    except AttributeError:  # pragma: no cover - a torch without functorch internals
        return False


def _torch_stft(x: torch.Tensor, w: int, h: int, window: torch.Tensor) -> torch.Tensor:
    """Complex STFT (..., W//2 + 1, T) of ``x`` (..., N): ``torch.stft``, no centring."""
    spec = torch.stft(x.reshape(-1, x.shape[-1]), n_fft=w, hop_length=h, win_length=w, window=window, center=False,
                      return_complex=True)
    return spec.reshape(*x.shape[:-1], *spec.shape[-2:])


def _gathered_stft(x: torch.Tensor, w: int, h: int, window: torch.Tensor) -> torch.Tensor:
    """The same STFT by gathering the frames with an index tensor + ``rfft`` (equal to round-off):
    used under a plain ``vmap``, where ``aten::stft`` has no batching rule in torch 2.13 (and
    ``Tensor.unfold``'s backward has none either)."""
    index = torch.arange(0, x.shape[-1] - w + 1, h, device=x.device)[:, None] + torch.arange(w, device=x.device)
    return torch.fft.rfft(x[..., index] * window, n=w, dim=-1).transpose(-1, -2)


class MultiScaleSpectrogram(Representation):
    """Multi-scale STFT magnitudes (Vahidi et al. 2023, eq. 18).

    Parameters
    ----------
    window_sizes : sequence of int
        STFT window sizes (= FFT sizes), each a power of two >= 4, no duplicates. Default
        ``(32, 64, 128, 256, 512, 1024)``, i.e. ``2**5 .. 2**10``. Stored in the given order.
    hop_ratio : float
        Hop size as a fraction of the window, in ``(0, 1]``; ``hop = round(W * hop_ratio)`` must
        be >= 1 for every window size. Default ``0.25``.
    log_weight : float
        Weight (>= 0) of the optional log-magnitude L1 term of :meth:`distance`. Default 0 (off).
    log_eps : float
        Offset (> 0) inside that log: ``log(|X| + log_eps)``. Default 1e-7.
    log1p_c : float or None
        If set, :meth:`features` returns ``log1p(S / log1p_c)`` (see ``Representation``).

    Shapes
    ------
    ``forward(x)`` with ``x`` of shape ``(B, N)``, ``N >= max(window_sizes)``, returns a single
    ``(B, K)`` tensor: the concatenation, in ``window_sizes`` order, of each scale's magnitudes
    ``(B, W//2 + 1, T_W)`` flattened row-major (frequency-major, then time), so
    ``K = sum_W (W//2 + 1) * (1 + (N - W) // hop_W)`` (see :meth:`n_features`). Use
    :meth:`spectrograms` for the per-scale ``(B, F_W, T_W)`` tensors. Output dtype/device = input's.
    """

    name = "mss"

    def __init__(
        self,
        window_sizes: Sequence[int] = DEFAULT_WINDOW_SIZES,
        hop_ratio: float = 0.25,
        log_weight: float = 0.0,
        log_eps: float = 1e-7,
        log1p_c: float | None = None,
    ):
        super().__init__(log1p_c=log1p_c)
        # --- window_sizes
        if isinstance(window_sizes, (str, bytes)) or not isinstance(window_sizes, Sequence):
            raise ValueError(
                "window_sizes must be a non-empty sequence of powers of two >= 4, "
                f"got {window_sizes!r}"
            )
        sizes: list[int] = []
        for w in window_sizes:
            # cast(object, ...): typeshed's int is no numbers.Integral, so mypy would take the rest as unreachable
            if isinstance(w, bool) or not isinstance(cast(object, w), numbers.Integral):
                raise ValueError(f"window_sizes must contain ints (powers of two >= 4), got {w!r}")
            w = int(w)
            if w < 4 or not _is_power_of_two(w):
                raise ValueError(f"window_sizes must contain powers of two >= 4, got {w}")
            sizes.append(w)
        if not sizes:
            raise ValueError("window_sizes must be a non-empty sequence of powers of two >= 4, got []")
        if len(set(sizes)) != len(sizes):
            raise ValueError(f"window_sizes must not contain duplicates, got {sizes}")
        # --- hop_ratio
        try:
            hop_ratio = float(hop_ratio)
        except (TypeError, ValueError):
            raise ValueError(f"hop_ratio must be a number in (0, 1], got {hop_ratio!r}") from None
        if not (0.0 < hop_ratio <= 1.0):
            raise ValueError(f"hop_ratio must be in (0, 1], got {hop_ratio!r}")
        hops = [int(round(w * hop_ratio)) for w in sizes]
        for w, h in zip(sizes, hops):
            if h < 1:
                raise ValueError(
                    f"hop_ratio={hop_ratio} gives hop round({w} * hop_ratio) = {h} < 1 for window "
                    f"size {w}; hop_ratio must be >= {0.5 / w} for that window"
                )
        # --- log term
        log_weight = float(log_weight)
        if not (log_weight >= 0.0) or math.isinf(log_weight):
            raise ValueError(f"log_weight must be a finite number >= 0, got {log_weight!r}")
        log_eps = float(log_eps)
        if not (log_eps > 0.0) or math.isinf(log_eps):
            raise ValueError(f"log_eps must be a finite number > 0, got {log_eps!r}")

        self.window_sizes: tuple[int, ...] = tuple(sizes)
        self.hop_ratio = hop_ratio
        self.hops: tuple[int, ...] = tuple(hops)
        self.log_weight = log_weight
        self.log_eps = log_eps

    # ------------------------------------------------------------------ config / shapes
    def _config(self) -> dict[str, Any]:
        return {
            "window_sizes": list(self.window_sizes),
            "hop_ratio": self.hop_ratio,
            "log_weight": self.log_weight,
            "log_eps": self.log_eps,
        }

    def extra_repr(self) -> str:
        return f"window_sizes={list(self.window_sizes)}, hop_ratio={self.hop_ratio}"

    def _check_length(self, n: int) -> None:
        w_max = max(self.window_sizes)
        if n < w_max:
            raise ValueError(
                f"x must have N >= max(window_sizes) = {w_max} samples (every window must fit in "
                f"the signal; no padding is done), got N = {n}"
            )

    def output_shapes(self, n_samples: int) -> list[tuple[int, int]]:
        """``[(F_W, T_W) for W in window_sizes]`` for signals of ``n_samples`` samples."""
        self._check_length(int(n_samples))
        return [(w // 2 + 1, 1 + (n_samples - w) // h) for w, h in zip(self.window_sizes, self.hops)]

    def n_features(self, n_samples: int) -> int:
        """``K``, the width of ``forward(x)`` / ``features(x)`` for ``n_samples`` samples."""
        return sum(f * t for f, t in self.output_shapes(n_samples))

    # ------------------------------------------------------------------ transforms
    def spectrograms(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per-scale magnitudes ``[(B, W//2 + 1, T_W) for W in window_sizes]`` (x's dtype/device)."""
        self.check_input(x)
        self._check_length(x.shape[-1])
        stft = _gathered_stft if _is_vmapped(x) else _torch_stft
        out = []
        for w, h in zip(self.window_sizes, self.hops):
            window = torch.hann_window(w, periodic=True, dtype=x.dtype, device=x.device)
            out.append(modulus(stft(x, w, h, window)))  # (B, F, T)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenated flattened magnitudes of all scales, shape ``(B, K)``; see class docs."""
        specs = self.spectrograms(x)
        return torch.cat([s.reshape(s.shape[0], -1) for s in specs], dim=-1)

    def distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """MSS distance ``(B,)``: mean over scales of the mean |.| difference of magnitudes.

        ``d(x, y) = 1/S sum_s mean_{k,t} | |STFT_s x| - |STFT_s y| |``
        (+ ``log_weight * mean | log(|STFT_s x| + log_eps) - log(|STFT_s y| + log_eps) |`` per
        scale if ``log_weight > 0``). ``x`` and ``y`` must have the same shape ``(B, N)``.
        """
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.shape != y.shape:
            raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        sx, sy = self.spectrograms(x), self.spectrograms(y)
        total: torch.Tensor | int = 0
        for a, b in zip(sx, sy):
            term = (a - b).abs().mean(dim=(-2, -1))
            if self.log_weight > 0:
                la = torch.log(a + self.log_eps)
                lb = torch.log(b + self.log_eps)
                term = term + self.log_weight * (la - lb).abs().mean(dim=(-2, -1))
            total = total + term
        return cast(torch.Tensor, total) / len(sx)  # a tensor: there is at least one window size
