"""Numerical tests of the multi-scale spectrogram (mss) and time scattering (scattering1d)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal
import torch
from torch.func import jacfwd, jacrev, jvp, vmap

import pnp.scattering
from pnp.scattering.mss import MultiScaleSpectrogram
from pnp.scattering.time_scattering import TimeScattering

# kymatio warns for short signals; the small sizes below are deliberate (fast tests)
pytestmark = [
    pytest.mark.filterwarnings("ignore:Signal support is too small"),
    # a vmap fallback would mean a slow per-sample loop: make it an error
    pytest.mark.filterwarnings("error:There is a performance drop"),
]

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")




def _rng(seed=0):
    return np.random.default_rng(seed)


# =============================================================================== MSS
def _np_stft_mag(x: np.ndarray, w: int, hop: int) -> np.ndarray:
    """Reference: periodic Hann, no centring, frames x[t*hop : t*hop+w] -> (B, w//2+1, T)."""
    win = scipy.signal.get_window("hann", w)  # periodic (fftbins=True)
    frames = np.lib.stride_tricks.sliding_window_view(x, w, axis=-1)[..., ::hop, :]
    return np.abs(np.fft.rfft(frames * win, n=w, axis=-1)).transpose(0, 2, 1)


def test_mss_matches_numpy_and_scipy_reference():
    rep = MultiScaleSpectrogram()
    assert rep.window_sizes == (32, 64, 128, 256, 512, 1024)
    assert rep.hops == (8, 16, 32, 64, 128, 256)
    N = 1500  # not a multiple of any hop: trailing samples are dropped
    x = _rng(1).standard_normal((2, N))
    specs = rep.spectrograms(torch.from_numpy(x))
    assert len(specs) == 6
    refs = []
    for s, w, h in zip(specs, rep.window_sizes, rep.hops):
        ref = _np_stft_mag(x, w, h)
        refs.append(ref)
        assert s.dtype == torch.float64
        assert tuple(s.shape) == (2, w // 2 + 1, 1 + (N - w) // h) == ref.shape
        np.testing.assert_allclose(s.numpy(), ref, rtol=0, atol=1e-10)
        # scipy.signal.stft with the same framing ('spectrum' scaling divides by sum(window))
        win = scipy.signal.get_window("hann", w)
        _, _, Z = scipy.signal.stft(x, window=win, nperseg=w, noverlap=w - h, boundary=None,
                                    padded=False, detrend=False, return_onesided=True)
        np.testing.assert_allclose(s.numpy(), np.abs(Z) * win.sum(), rtol=0, atol=1e-10)
        # and torch.stft(center=False)
        ts = torch.stft(torch.from_numpy(x), w, h, window=torch.hann_window(w, dtype=torch.float64),
                        center=False, return_complex=True).abs()
        torch.testing.assert_close(s, ts, rtol=0, atol=1e-10)
    # forward = concatenation of the flattened per-scale magnitudes
    S = rep(torch.from_numpy(x))
    ref_flat = np.concatenate([r.reshape(2, -1) for r in refs], axis=1)
    assert S.shape == (2, rep.n_features(N)) == ref_flat.shape
    np.testing.assert_allclose(S.numpy(), ref_flat, rtol=0, atol=1e-10)
    assert [tuple(s.shape[1:]) for s in specs] == rep.output_shapes(N)


def test_mss_hop_ratio_and_custom_windows():
    rep = MultiScaleSpectrogram(window_sizes=[16, 4], hop_ratio=0.5)
    assert rep.hops == (8, 2)
    x = _rng(2).standard_normal((1, 37))
    for s, w, h in zip(rep.spectrograms(torch.from_numpy(x)), (16, 4), (8, 2)):
        np.testing.assert_allclose(s.numpy(), _np_stft_mag(x, w, h), rtol=0, atol=1e-12)


def test_mss_distance_values():
    rep = MultiScaleSpectrogram(window_sizes=[32, 64, 128])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 500, generator=g, dtype=torch.float64)
    y = torch.randn(3, 500, generator=g, dtype=torch.float64)
    assert torch.equal(rep.distance(x, x), torch.zeros(3, dtype=torch.float64))
    dxy, dyx = rep.distance(x, y), rep.distance(y, x)
    assert dxy.shape == (3,) and (dxy > 0).all()
    torch.testing.assert_close(dxy, dyx, rtol=0, atol=0)
    # explicit formula from the numpy reference magnitudes
    xn, yn = x.numpy(), y.numpy()
    expl = np.mean(
        [np.abs(_np_stft_mag(xn, w, h) - _np_stft_mag(yn, w, h)).mean(axis=(1, 2))
         for w, h in zip(rep.window_sizes, rep.hops)], axis=0)
    np.testing.assert_allclose(dxy.numpy(), expl, rtol=1e-12, atol=1e-12)
    # optional log-magnitude term
    rep_log = MultiScaleSpectrogram(window_sizes=[32, 64, 128], log_weight=0.5, log_eps=1e-3)
    expl_log = expl + 0.5 * np.mean(
        [np.abs(np.log(_np_stft_mag(xn, w, h) + 1e-3) - np.log(_np_stft_mag(yn, w, h) + 1e-3)).mean(axis=(1, 2))
         for w, h in zip(rep.window_sizes, rep.hops)], axis=0)
    np.testing.assert_allclose(rep_log.distance(x, y).numpy(), expl_log, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        rep.distance(x, y[:, :400])


def _gathered_frames_mag(x: torch.Tensor, w: int, h: int) -> torch.Tensor:
    """pnp's earlier MSS: frames gathered by an index tensor, Hann window, rfft, magnitude."""
    index = torch.arange(0, x.shape[-1] - w + 1, h)[:, None] + torch.arange(w)
    frames = x[..., index] * torch.hann_window(w, periodic=True, dtype=x.dtype)
    return torch.fft.rfft(frames, n=w, dim=-1).abs().transpose(-1, -2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mss_on_torch_stft_equals_the_gathered_frames_and_vmaps_without_fallback(dtype):
    import warnings

    rep = MultiScaleSpectrogram(window_sizes=[16, 64, 256])
    x = torch.from_numpy(_rng(7).standard_normal((3, 1000))).to(dtype)
    for s, w, h in zip(rep.spectrograms(x), rep.window_sizes, rep.hops):
        torch.testing.assert_close(s, _gathered_frames_mag(x, w, h), rtol=4 * torch.finfo(dtype).eps, atol=0)
    y = torch.zeros_like(x)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*performance drop.*")  # torch's vmap fall-back warning
        g = vmap(torch.func.grad(lambda a: rep.distance(a[None], y[:1]).sum()))(x)
    ref = torch.stack([torch.func.grad(lambda a: rep.distance(a[None], y[:1]).sum())(a) for a in x])
    torch.testing.assert_close(g, ref, rtol=0, atol=0)


def test_mss_gradcheck_float64():
    rep = MultiScaleSpectrogram(window_sizes=[4, 8, 16])
    x = torch.randn(2, 40, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 40, dtype=torch.float64)
    assert torch.autograd.gradcheck(rep, (x,))
    assert torch.autograd.gradcheck(lambda a: rep.distance(a, y), (x,))
    assert torch.autograd.gradgradcheck(rep, (x,), fast_mode=True)


def test_mss_forward_mode_vmap_jacfwd():
    rep = MultiScaleSpectrogram(window_sizes=[4, 8, 16], hop_ratio=0.5)
    x = torch.randn(1, 24, dtype=torch.float64)
    jf, jr = jacfwd(rep)(x), jacrev(rep)(x)
    assert jf.shape == (1, rep.n_features(24), 1, 24)
    torch.testing.assert_close(jf, jr, rtol=1e-12, atol=1e-12)
    v = torch.randn_like(x)
    out, tangent = jvp(rep, (x,), (v,))
    torch.testing.assert_close(tangent, torch.einsum("bkcn,cn->bk", jr, v), rtol=1e-12, atol=1e-12)
    # vmap (over an extra leading axis) == loop, no stft fallback involved
    xs = torch.randn(4, 2, 24, dtype=torch.float64)
    torch.testing.assert_close(vmap(rep)(xs), torch.stack([rep(a) for a in xs]), rtol=0, atol=0)
    y = torch.randn(2, 24, dtype=torch.float64)
    torch.testing.assert_close(vmap(lambda a: rep.distance(a, y))(xs),
                               torch.stack([rep.distance(a, y) for a in xs]), rtol=0, atol=0)


def test_mss_zero_input_gradients_are_finite():
    rep = MultiScaleSpectrogram(window_sizes=[8, 16])
    z = torch.zeros(2, 64, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(rep(z).sum(), z)
    assert torch.isfinite(g).all() and torch.equal(g, torch.zeros_like(g))
    (g,) = torch.autograd.grad(rep.distance(z, torch.zeros_like(z)).sum(), z)
    assert torch.equal(g, torch.zeros_like(g))
    y = torch.randn(2, 64, dtype=torch.float64)
    (g,) = torch.autograd.grad(rep.distance(z, y).sum(), z)
    assert torch.isfinite(g).all()
    jf = jacfwd(rep)(torch.zeros(1, 32, dtype=torch.float64))
    assert torch.isfinite(jf).all() and (jf == 0).all()
    z32 = torch.zeros(2, 64, requires_grad=True)
    (g,) = torch.autograd.grad(rep.distance(z32, y.float()).sum(), z32)
    assert torch.isfinite(g).all()


def test_mss_dtypes_and_features():
    rep = MultiScaleSpectrogram(window_sizes=[16, 32], log1p_c=1e-3)
    x = torch.randn(2, 100)
    assert rep(x).dtype == torch.float32
    assert all(s.dtype == torch.float32 for s in rep.spectrograms(x))
    assert rep.distance(x, x.flip(-1)).dtype == torch.float32
    torch.testing.assert_close(rep(x).double(), rep(x.double()), rtol=1e-5, atol=1e-5)
    f = rep.features(x)
    assert f.dtype == torch.float32 and f.shape == (2, rep.n_features(100))
    torch.testing.assert_close(f, torch.log1p(rep(x).reshape(2, -1) / 1e-3), rtol=0, atol=0)
    assert torch.equal(MultiScaleSpectrogram(window_sizes=[16, 32]).features(x), rep(x))


def test_mss_config_round_trip():
    rep = MultiScaleSpectrogram(window_sizes=[64, 32], hop_ratio=0.5, log_weight=0.25, log1p_c=0.01)
    cfg = rep.config()
    assert cfg == {"name": "mss", "window_sizes": [64, 32], "hop_ratio": 0.5, "log_weight": 0.25,
                   "log_eps": 1e-7, "log1p_c": 0.01}
    import json
    rep2 = pnp.scattering.get(**json.loads(json.dumps(cfg)))
    assert type(rep2) is MultiScaleSpectrogram and rep2.config() == cfg
    x, y = torch.randn(2, 200), torch.randn(2, 200)
    assert torch.equal(rep2.features(x), rep.features(x))
    assert torch.equal(rep2.distance(x, y), rep.distance(x, y))
    assert type(pnp.scattering.get(**MultiScaleSpectrogram().config())) is MultiScaleSpectrogram


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"window_sizes": [48]}, "window_sizes"),
        ({"window_sizes": [2]}, "window_sizes"),
        ({"window_sizes": []}, "window_sizes"),
        ({"window_sizes": [32.0]}, "window_sizes"),
        ({"window_sizes": [32, 32]}, "window_sizes"),
        ({"window_sizes": 32}, "window_sizes"),
        ({"hop_ratio": 0}, "hop_ratio"),
        ({"hop_ratio": 1.5}, "hop_ratio"),
        ({"window_sizes": [4], "hop_ratio": 0.1}, "hop_ratio"),
        ({"log_weight": -1}, "log_weight"),
        ({"log_eps": 0}, "log_eps"),
        ({"log1p_c": 0}, "log1p_c"),
    ],
)
def test_mss_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiScaleSpectrogram(**kwargs)


def test_mss_bad_inputs():
    rep = MultiScaleSpectrogram()
    with pytest.raises(ValueError, match=r"N >= max\(window_sizes\) = 1024"):
        rep(torch.randn(1, 1000))
    with pytest.raises(ValueError, match=r"\(B, N\)"):
        rep(torch.randn(2048))


@cuda
def test_mss_cuda():
    rep = MultiScaleSpectrogram(window_sizes=[16, 32])
    x = torch.randn(2, 100, dtype=torch.float64)
    out = rep(x.cuda())
    assert out.is_cuda and out.dtype == torch.float64
    torch.testing.assert_close(out.cpu(), rep(x), rtol=1e-10, atol=1e-10)


# ======================================================================= scattering1d
def _kymatio_torch(**kw):
    from kymatio.scattering1d.frontend.torch_frontend import ScatteringTorch1D

    return ScatteringTorch1D(**kw)


@pytest.mark.parametrize("max_order, Q", [(1, 4), (2, 4), (2, (3, 2))])
def test_scattering1d_equals_kymatio(max_order, Q):
    N = 512
    rep = TimeScattering(J=5, shape=N, Q=Q, max_order=max_order)
    ref = _kymatio_torch(J=5, shape=N, Q=Q, max_order=max_order)
    x = torch.randn(3, N)
    S = rep(x)
    assert S.dtype == torch.float32 and S.shape == ref(x).shape
    assert S.shape[1] == rep.output_size() == len(rep.meta()["order"])
    torch.testing.assert_close(S, ref(x), rtol=0, atol=1e-7)  # in practice bit-identical
    # float64: kymatio's float64 filter bank (same as its NumPy frontend)
    from kymatio.scattering1d.frontend.numpy_frontend import ScatteringNumPy1D

    ref64 = ScatteringNumPy1D(J=5, shape=N, Q=Q, max_order=max_order)
    S64 = rep(x.double())
    assert S64.dtype == torch.float64
    np.testing.assert_allclose(S64.numpy(), ref64(x.double().numpy()), rtol=0, atol=1e-12)
    # ... and close to kymatio torch with its float32 filters cast to float64
    torch.testing.assert_close(S64, ref.double()(x.double()), rtol=1e-5, atol=1e-6)


def test_scattering1d_meta_passthrough():
    rep = TimeScattering(J=5, shape=256, Q=(4, 2), max_order=2)
    m, mk = rep.meta(), _kymatio_torch(J=5, shape=256, Q=(4, 2)).meta()
    assert set(m) == set(mk)
    for k in ("order", "xi", "sigma", "j", "n"):
        np.testing.assert_array_equal(m[k], mk[k])
    assert list(m["key"]) == list(mk["key"])
    assert list(rep.output_size(detail=True)) == [1, int((m["order"] == 1).sum()), int((m["order"] == 2).sum())]


def test_scattering1d_pure_tone_peaks_at_nearest_filter():
    N = 2048
    rep = TimeScattering(J=6, shape=N, Q=8, max_order=1)
    meta = rep.meta()
    idx = np.flatnonzero(meta["order"] == 1)
    xi = meta["xi"][idx, 0]  # cycles / sample, decreasing
    assert np.all(np.diff(xi) < 0)
    t = torch.arange(N, dtype=torch.float64)
    # a tone exactly at a centre frequency -> that filter has the largest order-1 coefficient
    tones = torch.stack([torch.cos(2 * math.pi * float(f) * t) for f in xi])
    S1 = rep(tones)[:, idx].mean(-1)
    assert torch.equal(S1.argmax(-1), torch.arange(len(idx)))
    # random tones within the filter bank's range: the peak is at (or next to) the nearest centre
    freqs = _rng(3).uniform(xi.min(), xi.max(), 40)
    S1 = rep(torch.stack([torch.cos(2 * math.pi * float(f) * t) for f in freqs]))[:, idx].mean(-1)
    nearest = np.abs(freqs[:, None] - xi[None, :]).argmin(1)
    assert np.all(np.abs(S1.argmax(-1).numpy() - nearest) <= 1)
    assert np.mean(S1.argmax(-1).numpy() == nearest) >= 0.8
    # amplitude: |cos * psi_n| = 1/2 at the centre (max |psi_hat| = 1), then low-passed by phi;
    # kymatio 0.3.0 periodises phi with a *mean* (see TimeScattering docs / kymatio PR #736), so a
    # wavelet computed at subsampling 2**k1, k1 = min(j1, log2 T), comes out scaled by 2**-k1.
    j1 = meta["j"][idx, 0]
    expected = 0.5 * 2.0 ** -np.minimum(j1, 6)
    np.testing.assert_allclose(torch.diagonal(rep(tones)[:, idx].mean(-1)).numpy(), expected, rtol=0.05)


def test_scattering1d_gradients_reverse_mode():
    rep = TimeScattering(J=3, shape=64, Q=2, max_order=2)
    x = torch.randn(1, 64, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rep, (x,))
    # directional finite difference on a bigger transform
    rep = TimeScattering(J=5, shape=512, Q=4)
    x = torch.randn(2, 512, dtype=torch.float64, requires_grad=True)
    w = torch.randn_like(rep(x))
    (g,) = torch.autograd.grad((rep(x) * w).sum(), x)
    v, h = torch.randn_like(x), 1e-6
    with torch.no_grad():
        fd = ((rep(x + h * v) - rep(x - h * v)) * w).sum() / (2 * h)
    torch.testing.assert_close((g * v).sum(), fd, rtol=1e-6, atol=1e-8)
    # all-zero input: finite gradients (order 0 is linear, the moduli get a zero subgradient)
    z = torch.zeros(1, 64, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(TimeScattering(J=3, shape=64, Q=2)(z).sum(), z)
    assert torch.isfinite(g).all()


def test_scattering1d_forward_mode_vmap_jacfwd():
    rep = TimeScattering(J=3, shape=64, Q=2, max_order=2)
    x = torch.randn(1, 64, dtype=torch.float64)
    jf, jr = jacfwd(rep)(x), jacrev(rep)(x)
    torch.testing.assert_close(jf, jr, rtol=1e-10, atol=1e-12)
    v = torch.randn_like(x)
    _, tangent = jvp(rep, (x,), (v,))
    torch.testing.assert_close(tangent, torch.einsum("bctin,in->bct", jr, v), rtol=1e-10, atol=1e-12)
    xs = torch.randn(3, 2, 64)
    torch.testing.assert_close(vmap(rep)(xs), torch.stack([rep(a) for a in xs]), rtol=1e-6, atol=1e-7)
    jz = jacfwd(rep)(torch.zeros(1, 64, dtype=torch.float64))
    assert torch.isfinite(jz).all()


def test_scattering1d_dtype_features_and_config_round_trip():
    rep = TimeScattering(J=4, shape=(256,), Q=(4,), T=8, max_order=2, log1p_c=1e-3)
    cfg = rep.config()
    assert cfg == {"name": "scattering1d", "J": 4, "shape": 256, "Q": [4, 1], "T": 8,
                   "max_order": 2, "out_type": "array", "log1p_c": 1e-3}
    import json
    rep2 = pnp.scattering.get(**json.loads(json.dumps(cfg)))
    assert type(rep2) is TimeScattering and rep2.config() == cfg
    x = torch.randn(2, 256)
    S = rep(x)
    assert S.dtype == torch.float32 and S.shape[-1] == 256 // 8
    assert torch.equal(rep2(x), S) and torch.equal(rep2.features(x), rep.features(x))
    # order 0 (x * phi) is signed: features use log1p(|S| / c), which is log1p(S / c) for orders 1-2
    F = rep.features(x)
    assert torch.isfinite(F).all() and (S[:, 0] < -1e-3).any()  # the plain formula would give NaN
    torch.testing.assert_close(F, torch.log1p(S.abs().reshape(2, -1) / 1e-3), rtol=0, atol=0)
    assert torch.equal(TimeScattering(J=4, shape=256, T=8, Q=4).features(x), S.reshape(2, -1))
    assert rep(x.double()).dtype == torch.float64
    assert len(rep.state_dict()) == 0  # filters follow the input, no buffers to move
    cfg_default = TimeScattering(J=4, shape=256).config()
    assert cfg_default["T"] is None
    assert torch.equal(pnp.scattering.get(**cfg_default)(x), TimeScattering(J=4, shape=256)(x))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"J": 0, "shape": 256}, "J"),
        ({"J": 2.0, "shape": 256}, "J"),
        ({"J": 9, "shape": 256}, "J"),
        ({"J": 4, "shape": (256, 2)}, "shape"),
        ({"J": 4, "shape": 2}, "shape"),
        ({"J": 4, "shape": 256, "Q": 0}, "Q"),
        ({"J": 4, "shape": 256, "Q": (1, 2, 3)}, "Q"),
        ({"J": 4, "shape": 256, "Q": 1.5}, "Q"),
        ({"J": 4, "shape": 256, "T": 0}, "T"),
        ({"J": 4, "shape": 256, "T": 512}, "T"),
        ({"J": 4, "shape": 256, "max_order": 3}, "max_order"),
        ({"J": 4, "shape": 256, "out_type": "list"}, "out_type"),
        ({"J": 4, "shape": 256, "log1p_c": -1.0}, "log1p_c"),
    ],
)
def test_scattering1d_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TimeScattering(**kwargs)


def test_scattering1d_bad_inputs():
    rep = TimeScattering(J=4, shape=256)
    with pytest.raises(ValueError, match="N = 256"):
        rep(torch.randn(2, 255))
    with pytest.raises(ValueError, match=r"\(B, N\)"):
        rep(torch.randn(256))
    with pytest.raises(ValueError, match="float32 or float64"):
        rep(torch.randn(1, 256).half())


@cuda
def test_scattering1d_cuda():
    rep = TimeScattering(J=4, shape=256, Q=4)
    x = torch.randn(2, 256, dtype=torch.float64)
    out = rep(x.cuda())
    assert out.is_cuda and out.dtype == torch.float64
    torch.testing.assert_close(out.cpu(), rep(x), rtol=1e-10, atol=1e-10)
