r"""Spectral losses between rendered sounds: the PNP authors' DDSP baselines.

Both render the predicted sound ``x̂ = g(θ(ν̂))`` and compare it with the target sound ``x``
(``(B, N)`` audio, e.g. the store's ``audio`` array, or rendered from ν):

* ``"mrstft"`` — auraloss's ``MultiResolutionSTFTLoss()`` with its defaults (FFT sizes 1024, 2048,
  512; hops 120, 240, 50; windows 600, 1200, 240; spectral convergence + log-magnitude L1), the
  baseline of the ICASSP 2023 paper (``icassp23/04_train_effnet_specloss.py``), and its test
  metric ``mrstft``;
* ``"specl2"`` — the TASLP baseline ``MultiScaleSpectralLoss(p=2)`` of
  ``src/pnp_synth/neural/loss.py``: for the 6 scales ``n = 2048, 1024, …, 64`` (hop ``n/4``, Hann
  window, ``torch.stft``'s centred reflect padding), the L2 norm of the difference of the *linear*
  magnitudes ``‖ |STFT_n x̂| − |STFT_n x| ‖₂`` taken over the whole batch (as the authors'
  ``torch.norm``), averaged over the scales:

  .. math::

      L = \frac{1}{6} \sum_{n} \Big( \sum_{b,f,t} \big(|X̂_n[b,f,t]| - |X_n[b,f,t]|\big)^2 \Big)^{1/2}.

  The magnitude is pnp's modulus (finite derivatives at 0), equal to ``abs`` elsewhere.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from pnp.loss._checks import check_pair, is_transformed

AUDIO_LOSSES = ("mrstft", "specl2")
#: the TASLP baseline's FFT sizes (max 2048, 6 scales, halving)
SPECL2_FFT_SIZES = (2048, 1024, 512, 256, 128, 64)
#: the longest FFT of auraloss's default MultiResolutionSTFTLoss
MRSTFT_LONGEST_FFT = 2048


def _magnitude(z: torch.Tensor) -> torch.Tensor:
    from pnp.scattering.jtfs.modulus import modulus

    return modulus(z)


def specl2_distance(x_hat: torch.Tensor, x: torch.Tensor, fft_sizes=SPECL2_FFT_SIZES) -> torch.Tensor:
    """The TASLP ``specl2`` distance (module docs) between audio batches (B, N): a scalar."""
    total = x_hat.new_zeros(())
    for n in fft_sizes:
        window = torch.hann_window(n, dtype=x_hat.dtype, device=x_hat.device)
        spec = [_magnitude(torch.stft(y, n_fft=n, hop_length=n // 4, window=window, return_complex=True))
                for y in (x_hat, x)]
        total = total + torch.linalg.vector_norm(spec[0] - spec[1])
    return total / len(fft_sizes)


def mrstft_distance() -> nn.Module:
    """auraloss's ``MultiResolutionSTFTLoss()`` with its defaults (``ValueError`` naming the
    package when auraloss is missing)."""
    try:
        from auraloss.freq import MultiResolutionSTFTLoss
    except ImportError:  # pragma: no cover - auraloss is a dependency
        raise ValueError("the mrstft loss needs auraloss (pip install auraloss)") from None
    return MultiResolutionSTFTLoss()


class AudioSpectralLoss(nn.Module):
    """``d(g(θ(ν̂)), x)`` with ``d`` the ``"mrstft"`` or ``"specl2"`` distance (module docs).

    Parameters
    ----------
    synth : pnp synth (``nn.Module``)
    parametrization : :class:`pnp.jacobian.Parametrization`
    distance : {"mrstft", "specl2"}

    Call ``loss(nu_hat, audio=None, nu=None)``: ``nu_hat`` (B, P) in [-1, 1]; the target sound is
    ``audio`` (B, N) when given, else rendered from ``nu`` (B, P) without gradient. Returns a
    scalar in ``nu_hat``'s dtype/device.
    """

    def __init__(self, synth: nn.Module, parametrization: Any, distance: str = "mrstft"):
        super().__init__()
        from pnp.jacobian import Parametrization

        if not isinstance(synth, nn.Module) or not hasattr(synth, "space"):
            raise TypeError(f"synth must be a pnp synth (nn.Module with a parameter space), got {type(synth).__name__}")
        if not isinstance(parametrization, Parametrization):
            raise TypeError(f"parametrization must be a pnp.jacobian.Parametrization, got {type(parametrization).__name__}")
        if distance not in AUDIO_LOSSES:
            raise ValueError(f"distance must be one of {', '.join(map(repr, AUDIO_LOSSES))}, got {distance!r}")
        longest = MRSTFT_LONGEST_FFT if distance == "mrstft" else SPECL2_FFT_SIZES[0]
        if cast(Any, synth).n_samples <= longest // 2:  # a pnp synth (mypy: nn.Module.__getattr__)
            raise ValueError(f"the {distance} loss needs sounds longer than {longest // 2} samples (half its longest "
                             f"FFT, {longest}); the synth renders {synth.n_samples}")
        self.synth = synth
        self.parametrization = parametrization
        self.distance = distance
        self.mrstft = mrstft_distance() if distance == "mrstft" else None

    def extra_repr(self) -> str:
        return f"distance={self.distance!r}, free={self.parametrization.free}"

    def render(self, nu: torch.Tensor) -> torch.Tensor:
        """g(θ(ν)) (B, N) in ν's dtype/device (differentiable)."""
        return self.synth(self.parametrization.theta(nu), validate=False)

    def compare(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The distance between two audio batches (B, N) (scalar)."""
        if self.distance == "specl2":
            return specl2_distance(x_hat, x)
        assert self.mrstft is not None  # distance == "mrstft"
        return self.mrstft(x_hat[:, None], x[:, None])

    def forward(self, nu_hat: torch.Tensor, audio: torch.Tensor | None = None, nu: torch.Tensor | None = None) -> torch.Tensor:
        if audio is None and nu is None:
            raise ValueError("AudioSpectralLoss: give the target audio (B, N) or the target parameters nu (B, P)")
        nu_hat, _ = check_pair(nu_hat, nu_hat if nu is None else nu, "AudioSpectralLoss")
        if not is_transformed(nu_hat):
            self.parametrization.check_nu(nu_hat.detach())
        if audio is None:
            assert nu is not None  # checked at the top: audio or nu is given
            with torch.no_grad():
                audio = self.render(nu)
        if not isinstance(audio, torch.Tensor) or audio.dim() != 2 or audio.shape[0] != nu_hat.shape[0]:
            got = tuple(audio.shape) if isinstance(audio, torch.Tensor) else type(audio).__name__
            raise ValueError(f"AudioSpectralLoss: audio must be a tensor of shape (B, N) with B = {nu_hat.shape[0]}, got {got}")
        x_hat = self.render(nu_hat)
        if x_hat.shape != audio.shape:
            raise ValueError(f"AudioSpectralLoss: audio has N = {audio.shape[1]} samples, the synth renders {x_hat.shape[1]}")
        return self.compare(x_hat, audio.to(dtype=x_hat.dtype, device=x_hat.device))

    @classmethod
    def from_store(cls, store_or_spec: Any, distance: str = "mrstft", storage_options: Any = None) -> "AudioSpectralLoss":
        """The loss of a store's synth (with its fixed parameters); see :meth:`SpectralLoss.from_store`."""
        from pnp.loss.spectral import spec_of

        spec = spec_of(store_or_spec, storage_options)
        synth = spec.build_synth()
        return cls(synth, spec.parametrization(synth), distance=distance)
