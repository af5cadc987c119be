"""The encoder: audio → normalised synth parameters ν̂, a compact CNN on a log-scalogram.

``Encoder(n_samples, sample_rate, n_params)`` maps audio ``x`` of shape ``(B, N)`` to
``ν̂ = f(x)`` of shape ``(B, P)`` in ``(-1, 1)`` (the normalised parameter box of
:class:`pnp.synth.ParameterSpace`), in the module's dtype and on its device.

Front end (no trainable weights, computed on the fly, batched):

1. **First-order wavelet scalogram.**  A bank of analytic Morlet wavelets ``ψ_f`` from
   kymatio 0.3's filter design (``morlet_1d``), with the centre frequencies and bandwidths of the
   Andén filter bank (``pnp.scattering.jtfs.filter_bank.anden_parameters(J, Q)``: ``Q`` wavelets
   per octave over ``J`` octaves below ≈ 0.43·sr, then ``Q - 1`` constant-bandwidth ones; ``F``
   filters in all).  The signal is zero-padded by ``N/4`` (rounded up to the stride) so that the
   two ends of the sound do not wrap onto each other, and ``|x ∗ ψ_f|`` is computed in the
   Fourier domain, sampled every ``s = max(hop/4, 1)`` samples (the product ``x̂·ψ̂_f`` over the
   positive frequencies is folded onto ``L/s`` bins — exact sampling of the complex band-pass
   signal — before one short inverse FFT), then averaged over ``4`` consecutive samples
   (``hop`` samples of audio).  Frames: ``T = N // hop``; shape ``(B, F, T)``.
2. **Compression.**  ``log1p(U / c)`` (``log1p_c``, default 1e-3 as for PNP's features).
3. **Per-frequency normalisation.**  ``BatchNorm1d(F)`` without affine weights: each frequency
   row is centred and scaled by its batch statistics in training and by the running ones in
   evaluation, so the CNN sees comparable values at every frequency.

CNN: ``len(channels)`` blocks ``Conv2d 3×3 → BatchNorm2d → ReLU → MaxPool2d 2×2`` over the
(frequency, time) plane (the pooling is skipped once a side is down to 1), an adaptive average
pool to a grid of at most ``4 × 4`` (absolute frequency position is kept: it encodes f_c), then
``Linear → ReLU → Linear(P) → tanh``.

The module follows ``.to(device/dtype)``; its input must then have the module's dtype and
device (a clear ``ValueError`` otherwise).  ``Encoder.from_store(ds)`` builds one for a
:class:`pnp.data.StoreDataset` (or a :class:`pnp.store.Store`): N and sr from its synth, P from
its free parameters.  ``config()`` is a JSON-able dict; ``Encoder(**config)`` rebuilds it.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence, cast

import numpy as np
import torch
from torch import nn

#: frames of |x ∗ ψ| averaged into one output frame (the stride is ``hop / OVERSAMPLE``)
OVERSAMPLE = 4
#: side of the adaptive average pool before the dense head
POOL = 4


def _int(v: Any, name: str, lo: int, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {v!r}")
    v = int(v)
    if v < lo or (hi is not None and v > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be an integer {rng}, got {v}")
    return v


def _is_pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def default_hop(n_samples: int, sample_rate: float) -> int:
    """The power of two closest to ``sample_rate / 64`` (≈ 16 ms frames), at most ``N / 8``."""
    hop = 2 ** int(round(math.log2(max(sample_rate / 64.0, 1.0))))
    while hop > 1 and hop > n_samples // 8:
        hop //= 2
    return hop


class LogScalogram(nn.Module):
    """``log1p(|x ∗ ψ_f| / c)`` averaged over ``hop`` samples: ``(B, N) → (B, F, N // hop)``.

    See the module docstring.  No trainable weights; the filters are a non-persistent buffer
    (rebuilt from the constructor arguments, not saved in ``state_dict``).
    """

    filters: torch.Tensor  # the buffer registered in __init__

    def __init__(self, n_samples: int, J: int = 7, Q: int = 8, hop: int = 64, log1p_c: float = 1e-3):
        super().__init__()
        from kymatio.scattering1d.filter_bank import morlet_1d

        from pnp.scattering.jtfs.filter_bank import anden_parameters

        self.n_samples = _int(n_samples, "n_samples", 64)
        self.J = _int(J, "J", 1, max(1, int(math.log2(self.n_samples)) - 2))
        self.Q = _int(Q, "Q", 1, 32)
        self.hop = _int(hop, "hop", 1, self.n_samples // 4)
        if not _is_pow2(self.hop):
            raise ValueError(f"hop must be a power of two, got {self.hop}")
        c = float(log1p_c)
        if not (c > 0 and math.isfinite(c)):
            raise ValueError(f"log1p_c must be a finite number > 0, got {log1p_c!r}")
        self.log1p_c = c
        self.stride = max(self.hop // OVERSAMPLE, 1)
        self.pool = self.hop // self.stride
        # padded length: N + N/4, a multiple of 2*stride (so the positive half folds evenly)
        unit = 2 * self.stride
        self.length = int(math.ceil((self.n_samples + self.n_samples // 4) / unit) * unit)
        self.n_frames = self.n_samples // self.hop
        params = anden_parameters(self.J, self.Q)
        half = self.length // 2
        bank = np.stack([morlet_1d(self.length, xi, sigma)[:half] for xi, sigma in params])  # (F, L/2)
        self.xi = np.array([xi for xi, _ in params])  # cycles / sample, decreasing
        self.register_buffer("filters", torch.as_tensor(bank, dtype=torch.float32), persistent=False)

    @property
    def n_filters(self) -> int:
        return int(self.filters.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, N) real, the module's dtype → ``(B, F, N // hop)`` log-scalogram."""
        B, N = x.shape
        L, s = self.length, self.stride
        xhat = torch.fft.rfft(x, n=L)[..., : L // 2]  # (B, L/2) positive frequencies (no Nyquist)
        prod = xhat[:, None, :] * self.filters.to(xhat.dtype)[None]  # (B, F, L/2)
        folded = prod.reshape(B, self.n_filters, s // 2 if s > 1 else 1, -1)
        if s > 1:
            folded = folded.sum(dim=2)  # (B, F, L/s): aliasing = sampling every s samples
            y = torch.fft.ifft(folded, dim=-1) / s
        else:  # full rate: the analytic band-pass signal itself
            y = torch.fft.ifft(torch.nn.functional.pad(folded[:, :, 0], (0, L - L // 2)), dim=-1)
        u = y.abs()[..., : self.n_frames * self.pool]  # (B, F, T * pool), drop the padding
        u = u.reshape(B, self.n_filters, self.n_frames, self.pool).mean(dim=-1)
        return torch.log1p(u / self.log1p_c)


class Encoder(nn.Module):
    """Audio ``(B, N)`` → ν̂ ``(B, P)`` in (-1, 1).  See the module docstring.

    Parameters
    ----------
    n_samples : int
        N, the input length (>= 64).
    sample_rate : float
        Hz (> 0); sets the default ``hop``.
    n_params : int
        P, the number of outputs (>= 1).
    J, Q : int
        Octaves (1 .. log2(N) - 2) and wavelets per octave (1 .. 32) of the scalogram.  Default
        ``J = min(7, log2(N) - 2)``, ``Q = 8``.
    hop : int or None
        Samples per scalogram frame, a power of two <= N/4; default :func:`default_hop`.
    channels : sequence of int
        Output channels of the convolutional blocks (1 .. 6 blocks, each 1 .. 512).
    hidden : int
        Width of the dense hidden layer (1 .. 4096).
    log1p_c : float
        Compression constant (> 0).
    """

    def __init__(
        self,
        n_samples: int,
        sample_rate: float,
        n_params: int,
        J: int | None = None,
        Q: int = 8,
        hop: int | None = None,
        channels: Sequence[int] = (16, 32, 64, 64),
        hidden: int = 128,
        log1p_c: float = 1e-3,
    ):
        super().__init__()
        n_samples = _int(n_samples, "n_samples", 64)
        # cast(object, ...): typeshed's float is no numbers.Real, so mypy would take the rest as unreachable
        if isinstance(sample_rate, bool) or not isinstance(cast(object, sample_rate), numbers.Real):
            raise ValueError(f"sample_rate must be a number > 0 (Hz), got {sample_rate!r}")
        sample_rate = float(sample_rate)
        if not (sample_rate > 0 and math.isfinite(sample_rate)):
            raise ValueError(f"sample_rate must be a finite number > 0 (Hz), got {sample_rate!r}")
        self.n_samples, self.sample_rate = n_samples, sample_rate
        self.n_params = _int(n_params, "n_params", 1)
        J = min(7, int(math.log2(n_samples)) - 2) if J is None else J
        hop = default_hop(n_samples, sample_rate) if hop is None else hop
        if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence) or not 1 <= len(channels) <= 6:
            raise ValueError(f"channels must be a sequence of 1 to 6 integers, got {channels!r}")
        self.channels = tuple(_int(c, "channels[i]", 1, 512) for c in channels)
        self.hidden = _int(hidden, "hidden", 1, 4096)
        self.frontend = LogScalogram(n_samples, J=J, Q=Q, hop=hop, log1p_c=log1p_c)
        self.norm = nn.BatchNorm1d(self.frontend.n_filters, affine=False)
        blocks: list[nn.Module] = []
        c_in, h, w = 1, self.frontend.n_filters, self.frontend.n_frames
        for c_out in self.channels:
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
            k = (2 if h >= 2 else 1, 2 if w >= 2 else 1)
            if k != (1, 1):
                blocks.append(nn.MaxPool2d(k))
            h, w, c_in = h // k[0], w // k[1], c_out
        grid = (max(1, min(POOL, h)), max(1, min(POOL, w)))
        self.cnn = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(grid))
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(c_in * grid[0] * grid[1], self.hidden), nn.ReLU(),
            nn.Linear(self.hidden, self.n_params), nn.Tanh(),
        )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_store(cls, ds, **kwargs) -> "Encoder":
        """An encoder for a :class:`pnp.data.StoreDataset` or :class:`pnp.store.Store`: N and
        the sample rate from its synth, P from its free parameters; ``kwargs`` as ``__init__``."""
        synth = ds.synth if hasattr(ds, "synth") else ds.spec().build_synth()  # dataset / Store
        n_params = len(ds.params)
        return cls(int(synth.n_samples), float(synth.sample_rate), n_params, **kwargs)

    def config(self) -> dict[str, Any]:
        """JSON-able constructor arguments: ``Encoder(**enc.config())`` rebuilds the architecture."""
        f = self.frontend
        return {
            "n_samples": self.n_samples, "sample_rate": self.sample_rate, "n_params": self.n_params,
            "J": f.J, "Q": f.Q, "hop": f.hop, "channels": list(self.channels), "hidden": self.hidden,
            "log1p_c": f.log1p_c,
        }

    def extra_repr(self) -> str:
        f = self.frontend
        return (f"n_samples={self.n_samples}, sample_rate={self.sample_rate}, n_params={self.n_params}, "
                f"scalogram=({f.n_filters} filters x {f.n_frames} frames, hop {f.hop})")

    # ------------------------------------------------------------------ forward
    def check_input(self, x: torch.Tensor) -> None:
        """``ValueError`` unless ``x`` is a ``(B, N)`` tensor of the module's dtype and device."""
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"x must be a torch.Tensor of shape (B, {self.n_samples}), got {type(x).__name__}")
        if x.dim() != 2 or x.shape[-1] != self.n_samples or x.shape[0] < 1:
            raise ValueError(f"x must have shape (B, {self.n_samples}) with B >= 1, got {tuple(x.shape)}")
        ref = self.head[1].weight
        if x.dtype != ref.dtype:
            raise ValueError(f"x must have the encoder's dtype {ref.dtype}, got {x.dtype} "
                             f"(convert the input, or the encoder with .to({x.dtype}))")
        if x.device != ref.device:
            raise ValueError(f"x is on {x.device} but the encoder is on {ref.device}; move one of them")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised log-scalogram ``(B, F, T)`` the CNN sees."""
        self.check_input(x)
        return self.norm(self.frontend(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, N) → ν̂ (B, P) in (-1, 1), the module's dtype and device."""
        self.check_input(x)
        return self.from_frontend(self.frontend(x))

    def from_frontend(self, u: torch.Tensor) -> torch.Tensor:
        """ν̂ (B, P) from the front end's output ``u = self.frontend(x)`` (B, F, T): what
        :meth:`forward` does after the (weight-free) scalogram, so that a training loop can
        compute the scalograms of fixed training sounds once."""
        return self.head(self.cnn(self.norm(u)[:, None]))

    def n_weights(self) -> int:
        """Number of trainable weights."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


class EffNetEncoder(nn.Module):
    """The PNP authors' encoder: audio ``(B, N)`` → ν̂ ``(B, P)`` in (-1, 1).

    ``log1p(CQT / 1e-3)`` (here the :class:`LogScalogram`, a constant-Q Morlet bank: ``Q = 12``
    bins per octave over ``J`` octaves, ``hop = 256``; the authors use nnAudio's CQT with the same
    bins and hop, J = 6 at 8192 Hz, 10 at 22,050 Hz) → ``BatchNorm2d(1)`` → ``Conv2d(1 → 3, 3×3)``
    → torchvision's EfficientNet-B0 (``num_classes = P``, final bias fixed at 0) →
    ``BatchNorm1d(P)`` without affine weights, times ``sqrt(bn_var)`` (0.5) → ``tanh``
    (``lylyhan/perceptual_neural_physical``, ``src/pnp_synth/neural/cnn.py``).  Randomly
    initialised (no pretrained weights). Needs torchvision (``pip install -e .[effnet]``).
    """

    def __init__(self, n_samples: int, sample_rate: float, n_params: int, J: int | None = None, Q: int = 12,
                 hop: int = 256, bn_var: float = 0.5, log1p_c: float = 1e-3):
        super().__init__()
        try:
            from torchvision.models import efficientnet_b0
        except (ImportError, RuntimeError) as err:  # RuntimeError: a torchvision built for another torch
            raise ValueError("encoder 'effnet-cqt' needs torchvision matching the installed torch "
                             f"(pip install -e .[effnet]; import failed: {str(err).splitlines()[0]}); use the default "
                             "encoder 'scalogram'") from None
        n_samples = _int(n_samples, "n_samples", 64)
        self.n_samples, self.sample_rate = n_samples, float(sample_rate)
        self.n_params = _int(n_params, "n_params", 1)
        J = (6 if self.sample_rate <= 8192 else 10) if J is None else J
        J = min(J, int(math.log2(n_samples)) - 2)
        # cast(object, ...): as for sample_rate in Encoder.__init__
        if isinstance(bn_var, bool) or not isinstance(cast(object, bn_var), numbers.Real) or not 0 < float(bn_var) < math.inf:
            raise ValueError(f"bn_var must be a finite number > 0, got {bn_var!r}")
        self.bn_var = float(bn_var)
        self.frontend = LogScalogram(n_samples, J=J, Q=Q, hop=min(hop, n_samples // 4), log1p_c=log1p_c)
        self.norm = nn.BatchNorm2d(1)
        self.stem = nn.Conv2d(1, 3, 3, padding=1)
        self.net = efficientnet_b0(weights=None, num_classes=self.n_params)
        last = self.net.classifier[-1]
        nn.init.zeros_(last.bias)
        last.bias.requires_grad_(False)
        self.out_norm = nn.BatchNorm1d(self.n_params, affine=False)

    @classmethod
    def from_store(cls, ds, **kwargs) -> "EffNetEncoder":
        synth = ds.synth if hasattr(ds, "synth") else ds.spec().build_synth()
        return cls(int(synth.n_samples), float(synth.sample_rate), len(ds.params), **kwargs)

    def config(self) -> dict[str, Any]:
        f = self.frontend
        return {"n_samples": self.n_samples, "sample_rate": self.sample_rate, "n_params": self.n_params,
                "J": f.J, "Q": f.Q, "hop": f.hop, "bn_var": self.bn_var, "log1p_c": f.log1p_c}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, N) → ν̂ (B, P) in (-1, 1)."""
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[-1] != self.n_samples:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must have shape (B, {self.n_samples}), got {got}")
        return self.from_frontend(self.frontend(x))

    def from_frontend(self, u: torch.Tensor) -> torch.Tensor:
        """ν̂ (B, P) from the scalogram ``u`` (B, F, T) (see :meth:`Encoder.from_frontend`)."""
        z = self.stem(self.norm(u[:, None]))
        return torch.tanh(self.out_norm(self.net(z)) * math.sqrt(self.bn_var))

    def n_weights(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


#: encoder kinds → (class, keyword options)
ENCODERS: dict[str, tuple[type[Encoder] | type[EffNetEncoder], tuple[str, ...]]] = {
    "scalogram": (Encoder, ("J", "Q", "hop", "channels", "hidden", "log1p_c")),
    "effnet-cqt": (EffNetEncoder, ("J", "Q", "hop", "bn_var", "log1p_c")),
}


def encoder_options(kind: str) -> tuple[str, ...]:
    """The keyword options of an encoder kind."""
    if kind not in ENCODERS:
        raise ValueError(f"encoder_kind must be one of {', '.join(map(repr, ENCODERS))}, got {kind!r}")
    return ENCODERS[kind][1]


def build_encoder(kind: str, ds, **kwargs) -> Encoder | EffNetEncoder:
    """An encoder of ``kind`` for a store dataset (N, sample rate and P from it)."""
    encoder_options(kind)
    return ENCODERS[kind][0].from_store(ds, **kwargs)


def encoder_from_config(kind: str, config: dict[str, Any]) -> nn.Module:
    """Rebuild an encoder from its ``config()``."""
    encoder_options(kind)
    return ENCODERS[kind][0](**config)
