"""Synthesizers: reference parity, differentiability (gradcheck, jacfwd/jacrev, vmap), batching,
validation, dtype following, the FTM's α = 0 and Nyquist handling, the arpeggiator's equations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import torch
from torch.func import jacfwd, jacrev, vmap

import pnp.synth as ps
from pnp.synth.amchirp import shift_samples

FIXTURE = Path(__file__).parent / "fixtures" / "synth_reference.npz"

# Relative-L2 tolerance of the parity tests.  The reference audio is stored as float32, which
# alone puts a floor of ~2.6e-8 under the measured error (float64 rendering: FTM 2.56e-8, chirp
# 2.57e-8); 1e-6 leaves a wide margin above that floor while still catching any modelling error.
PARITY_RTOL = 1e-6


def rel_l2(a, b) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.linalg.norm(a - b, axis=-1) / np.linalg.norm(b, axis=-1)


@pytest.fixture(scope="module")
def ref():
    with np.load(FIXTURE) as d:
        return {k: d[k] for k in d.files}


def ftm_theta_physical(theta_log10: np.ndarray) -> torch.Tensor:
    theta = torch.tensor(theta_log10, dtype=torch.float64).clone()
    theta[:, [0, 2, 3]] = 10.0 ** theta[:, [0, 2, 3]]
    return theta


# Short configurations for the (expensive) derivative checks, and a generic θ inside each space.
SHORT = {
    "ftm": dict(name="ftm", n_samples=96),
    "amchirp": dict(name="amchirp", duration=96 / 8192),
    "arpeggio": dict(name="arpeggio", duration=96 / 2048, sample_rate=2048),
}
THETA = {
    "ftm": [[1234.5, 0.31, 3.3e-3, 2.1e-2, 0.63], [431.0, 0.12, 1.7e-4, 4.4e-4, 0.27]],
    "amchirp": [[601.3, 7.7, 1.37], [987.0, 13.1, 3.3]],
    "arpeggio": [[7.7, 1.37], [13.1, 3.3]],
}


def theta_of(name: str, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(THETA[name], dtype=dtype)


# ------------------------------------------------------------------------------ parity
def test_ftm_matches_reference(ref):
    theta = ftm_theta_physical(ref["ftm_theta_log10"])
    synth = ps.get("ftm")
    assert synth.sample_rate == 22050 and synth.n_samples == 2**16
    y = synth(theta)
    assert y.shape == (12, 65536) and y.dtype == torch.float64
    err = rel_l2(y.numpy(), ref["ftm_audio"])
    assert err.max() < PARITY_RTOL, err
    assert err.max() > 1e-9  # the float32 storage floor is real: we really compared numbers
    np.testing.assert_allclose(y.abs().amax(-1).numpy(), 1.0, rtol=1e-12)
    # the reference's rectangular Nyquist truncation agrees here (no mode above Nyquist)
    y_ref_rule = ps.get("ftm", nyquist="reference")(theta)
    assert rel_l2(y_ref_rule.numpy(), ref["ftm_audio"]).max() < PARITY_RTOL


def test_ftm_float32_follows_dtype_and_stays_close(ref):
    theta = ftm_theta_physical(ref["ftm_theta_log10"][:4]).float()
    y = ps.get("ftm")(theta)
    assert y.dtype == torch.float32 and y.device == theta.device
    assert rel_l2(y.double().numpy(), ref["ftm_audio"][:4]).max() < 5e-4


def test_amchirp_matches_pnp_authors():
    """pnp's ``amchirp`` at its defaults (4 s at 8192 Hz, bw 2, σ₀ 0.1) is the PNP authors'
    ``generate_am_chirp`` (lylyhan/perceptual_neural_physical, audio made by their code in
    float64, tests/fixtures/README.md): within 1e-11 relative on five θ spanning the ranges."""
    with np.load(Path(__file__).parent / "fixtures" / "pnp_chirp_reference.npz") as d:
        theta, ref_audio = d["theta"], d["audio"]
    y = ps.get("amchirp")(torch.tensor(theta, dtype=torch.float64)).numpy()
    assert y.shape == ref_audio.shape == (5, 2**15)
    assert rel_l2(y, ref_audio).max() < 1e-11


def test_chirp_matches_reference(ref):
    theta = torch.tensor(ref["chirp_theta"], dtype=torch.float64)
    synth = ps.get("amchirp")
    assert synth.sample_rate == 8192 and synth.n_samples == 32768
    y = synth(theta)
    assert y.shape == (4, 32768)
    err = rel_l2(y.numpy(), ref["chirp_audio"])
    assert err.max() < PARITY_RTOL, err
    y32 = synth(theta.float())
    assert y32.dtype == torch.float32
    assert rel_l2(y32.double().numpy(), ref["chirp_audio"]).max() < 5e-4


# ------------------------------------------------------------------- derivatives, batching
@pytest.mark.parametrize("name", ["ftm", "amchirp", "arpeggio"])
def test_gradcheck(name):
    synth = ps.get(**SHORT[name])
    theta = theta_of(name)[:1].requires_grad_(True)
    assert torch.autograd.gradcheck(synth, (theta,), eps=1e-7, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("name", ["ftm", "amchirp", "arpeggio"])
def test_jacfwd_equals_jacrev_and_vmap(name):
    synth = ps.get(**SHORT[name])
    theta = theta_of(name)
    J_fwd = vmap(jacfwd(synth))(theta)
    J_rev = jacrev(synth)(theta[1])
    assert J_fwd.shape == (2, synth.n_samples, synth.space.dim)
    scale = J_rev.abs().max()
    assert scale > 0
    torch.testing.assert_close(J_fwd[1], J_rev, atol=1e-10 * scale, rtol=1e-9)
    # vmap over the batch equals the batched call
    torch.testing.assert_close(vmap(synth)(theta), synth(theta), atol=1e-13, rtol=0)


@pytest.mark.parametrize("name", ["ftm", "amchirp", "arpeggio"])
def test_batched_equals_per_sample_and_input_untouched(name):
    synth = ps.get(name)
    theta = theta_of(name)
    before = theta.clone()
    y = synth(theta)
    assert y.shape == (2, synth.n_samples)
    for i in range(2):
        torch.testing.assert_close(synth(theta[i : i + 1])[0], y[i], atol=1e-12, rtol=0)
        torch.testing.assert_close(synth(theta[i]), y[i], atol=1e-12, rtol=0)  # 1-D θ → (N,)
    assert torch.equal(theta, before)


@pytest.mark.parametrize("name", ["ftm", "amchirp", "arpeggio"])
def test_dtype_following(name):
    synth = ps.get(**SHORT[name])
    y64 = synth(theta_of(name))
    y32 = synth(theta_of(name, torch.float32))
    assert y64.dtype == torch.float64 and y32.dtype == torch.float32
    assert float((y32.double() - y64).abs().max()) < 1e-4 * float(y64.abs().max())
    # integer θ (a whole-number parameter set) is promoted to the default float dtype
    if name == "amchirp":
        assert synth(torch.tensor([[600, 8, 2]])).dtype == torch.get_default_dtype()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", ["ftm", "amchirp", "arpeggio"])
def test_device_following(name):  # pragma: no cover - needs a GPU
    synth = ps.get(**SHORT[name])
    y = synth(theta_of(name).cuda())
    assert y.is_cuda
    torch.testing.assert_close(y.cpu(), synth(theta_of(name)), atol=1e-10, rtol=1e-8)


# ------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "name, theta, match",
    [
        ("ftm", [[1000.0, 0.9, 1e-2, 1e-2, 0.5]], r"'tau' \(index 1\) = 0.9 is outside its bounds \[0.07, 0.8\] s"),
        ("ftm", [[1000.0, 0.3, 1e-2, 1e-2, 1.5]], r"'alpha' .* = 1.5 .*\[0, 1\]"),
        ("ftm", [[100.0, 0.3, 1e-2, 1e-2, 0.5]], r"'omega' .* = 100 .*\[251.189, 6309.57\] rad/s"),
        ("amchirp", [[600.0, 8.0, float("nan")]], r"'gamma' .* = nan is not finite.*\[0.5, 4\] oct/s"),
        ("amchirp", [[2000.0, 8.0, 1.0]], r"'f_c' .* = 2000 .*\[512, 1024\] Hz"),
        ("arpeggio", [[8.0, 1.0], [20.0, 1.0]], r"'f_m' .* = 20 .*\[4, 16\] Hz \(row 1 of the batch\)"),
        ("arpeggio", [[8.0, 1.0, 3.0]], r"shape \(2,\) or \(B, 2\).*f_m, gamma.*got shape \(1, 3\)"),
        ("ftm", [[[1.0] * 5]], r"shape \(5,\) or \(B, 5\)"),
    ],
)
def test_bad_theta_raises(name, theta, match):
    with pytest.raises(ValueError, match=match):
        ps.get(name)(torch.tensor(theta, dtype=torch.float64))


def test_validation_can_be_skipped_and_is_skipped_under_transforms():
    synth = ps.get(**SHORT["amchirp"])
    out_of_range = torch.tensor([[2000.0, 8.0, 1.0]], dtype=torch.float64)
    y = synth(out_of_range, validate=False)
    assert torch.isfinite(y).all()
    # transforms cannot read values: validation is skipped, the shape is still checked
    assert vmap(synth)(out_of_range).shape == (1, synth.n_samples)
    with pytest.raises(ValueError, match="shape"):
        vmap(synth)(torch.zeros(2, 4, dtype=torch.float64))


# --------------------------------------------------------------------------------- FTM
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ftm_alpha_zero_is_finite(dtype):
    synth = ps.get("ftm")
    theta = torch.tensor(
        [[1000.0, 0.3, 1e-2, 1e-2, 0.0], [6309.0, 0.07, 0.19, 0.31, 0.0], [252.0, 0.8, 1e-5, 1e-5, 0.0]],
        dtype=dtype,
        requires_grad=True,
    )
    y = synth(theta)
    assert torch.isfinite(y).all() and y.dtype == dtype
    assert float(y.detach().abs().amax(-1).min()) == pytest.approx(1.0, abs=1e-6)  # real sound
    (y**2).sum().backward()
    assert torch.isfinite(theta.grad).all()
    assert float(theta.grad[:, :4].abs().sum()) > 0
    # below alpha_min the synth is constant in α (clamp), so α = 0 equals α = alpha_min
    at_min = theta.detach().clone()
    at_min[:, 4] = synth.alpha_min
    torch.testing.assert_close(y.detach(), synth(at_min), atol=1e-5 if dtype == torch.float32 else 1e-12, rtol=0)
    J = jacfwd(ps.get("ftm", n_samples=256))(theta.detach()[0].double())
    assert torch.isfinite(J).all()


def direct_ftm(theta: np.ndarray, n: int, sr: float, keep: np.ndarray) -> np.ndarray:
    """Straightforward float64 evaluation of the reference formulas (no factorisation)."""
    w, tau, p, D, a = theta
    l0 = math.pi
    l2 = l0 * a
    bs = a + 1 / a
    S4 = ((D * w * a) ** 2 + (p * a / tau) ** 2)
    T = a * (1 / bs - p**2 * bs) / tau**2 + a * w**2 * (1 / bs - D**2 * bs)
    d1, d3 = 2 * (1 - p * bs) / tau, -2 * p * a / tau
    mu = np.arange(1, 11)[:, None]
    nu = np.arange(1, 11)[None, :]
    nn = mu**2 + (nu / a) ** 2
    K = np.sin(mu * math.pi * 0.4) * np.sin(nu * math.pi * 0.4)
    sig = (d1 - d3 * nn) / 2
    om = np.sqrt(np.abs(S4 * nn**2 + T * nn - sig**2))
    t = np.arange(n) / sr
    g = 0.03 * K**2 / (om * l0 * l2 / 4) * keep
    y = np.einsum("ij,ijn->n", g, np.exp(-sig[..., None] * t) * np.sin(om[..., None] * t))
    return y / np.abs(y).max(), om


def test_ftm_nyquist_mask_and_reference_truncation():
    theta = np.array([6000.0, 0.3, 1e-3, 0.25, 0.35])
    n = 4096
    _, om = direct_ftm(theta, n, 22050, np.ones((10, 10)))
    rejected = om / (2 * math.pi) > 22050 / 2
    assert 0 < rejected.sum() < 100
    # mask: exactly the modes under Nyquist
    gain, _, omega = ps.get("ftm").modes(torch.tensor(theta)[None])
    assert int((gain[0] == 0).sum()) == int(rejected.sum())
    np.testing.assert_allclose(omega[0].numpy().reshape(10, 10), om, rtol=1e-12)
    y = ps.get("ftm", n_samples=n)(torch.tensor(theta)[None])[0].numpy()
    expected, _ = direct_ftm(theta, n, 22050, ~rejected)
    assert rel_l2(y, expected) < 1e-10
    # reference rule: keep the rectangle μ1 < m1 - max #rejected per column (likewise μ2)
    c1 = 10 - rejected.sum(0).max()
    c2 = 10 - rejected.sum(1).max()
    rect = np.zeros((10, 10), bool)
    rect[: c1 or 10, : c2 or 10] = True
    assert (rect != ~rejected).any()  # the two rules differ for this θ
    y_ref = ps.get("ftm", n_samples=n, nyquist="reference")(torch.tensor(theta)[None])[0].numpy()
    expected_ref, _ = direct_ftm(theta, n, 22050, rect)
    assert rel_l2(y_ref, expected_ref) < 1e-10


# ------------------------------------------------------------------------------ AM chirp
def test_amchirp_shift():
    synth = ps.get("amchirp", duration=0.25)
    theta = theta_of("amchirp")
    y = synth(theta)
    ys = ps.get("amchirp", duration=0.25, shift=100)(theta)
    torch.testing.assert_close(ys[:, 100:], y[:, :-100], atol=0, rtol=0)
    assert torch.all(ys[:, :100] == 0)
    yn = synth(theta, shift=-37)
    torch.testing.assert_close(yn[:, :-37], y[:, 37:], atol=0, rtol=0)
    assert torch.all(yn[:, -37:] == 0)
    assert torch.equal(shift_samples(y, 10**6), torch.zeros_like(y))
    with pytest.raises(ValueError, match="integer"):
        ps.get("amchirp", shift=1.5)


def test_amchirp_instantaneous_frequency():
    synth = ps.get("amchirp")
    f_c, f_m, gamma = 700.0, 4.3, 1.1
    x = synth(torch.tensor([[f_c, f_m, gamma]], dtype=torch.float64))[0].numpy()
    t = np.arange(x.size) / 8192 - 2.0
    # sin(2π f_m t) changes sign at t = 0; look at one modulation lobe, near its maximum
    sel = (t > 0.2 / f_m) & (t < 0.3 / f_m)
    inst = np.diff(np.unwrap(np.angle(scipy.signal.hilbert(x)))) * 8192 / (2 * math.pi)
    tm = t[:-1] + 0.5 / 8192
    np.testing.assert_allclose(inst[sel[:-1]], f_c * 2 ** (gamma * tm[sel[:-1]]), rtol=5e-3)


# ------------------------------------------------------------------------------ arpeggio
def test_arpeggio_n_events_formula():
    synth = ps.get("arpeggio", w=3.0)
    theta = torch.tensor([[8.0, 2.0], [4.0, 0.5]], dtype=torch.float64)
    torch.testing.assert_close(synth.n_events(theta), torch.tensor([12.0, 24.0], dtype=torch.float64))
    np.testing.assert_allclose(synth.n_events(np.array([16.0, 4.0])), 12.0)


def event_peaks(x: np.ndarray, t: np.ndarray, f_m: float) -> np.ndarray:
    """Peak |x| inside every event window [(n - 1/2)/f_m, (n + 1/2)/f_m)."""
    n = np.floor(t * f_m + 0.5).astype(int)
    peaks = np.zeros(n.max() - n.min() + 1)
    np.maximum.at(peaks, n - n.min(), np.abs(x))
    return peaks


@pytest.mark.parametrize(
    "f_m, gamma, w",
    [(4.0, 4.0, 2.0), (6.0, 1.5, 2.0), (9.7, 2.3, 2.0), (16.0, 4.0, 2.0), (5.3, 0.9, 2.0), (12.0, 3.0, 1.0),
     (7.0, 1.0, 3.0)],
)
def test_arpeggio_event_count_follows_eq8(f_m, gamma, w):
    synth = ps.get("arpeggio", w=w)
    theta = torch.tensor([[f_m, gamma]], dtype=torch.float64)
    x = synth(theta)[0].numpy()
    t = synth.time().numpy()
    peaks = event_peaks(x, t, f_m)
    count = int((peaks >= synth.support_level * peaks.max()).sum())
    expected = float(synth.n_events(theta)[0])
    assert abs(count - expected) <= 1, (count, expected)


@pytest.mark.parametrize("f_m, gamma", [(6.0, 1.5), (11.0, 3.2), (4.4, 0.6)])
def test_arpeggio_instantaneous_frequency(f_m, gamma):
    synth = ps.get("arpeggio")
    theta = torch.tensor([[f_m, gamma]], dtype=torch.float64)
    x = synth(theta)[0].numpy()
    t = synth.time().numpy()
    sr = synth.sample_rate
    phase = np.unwrap(np.angle(scipy.signal.hilbert(x)))
    inst = np.diff(phase) * sr / (2 * math.pi)
    tm = t[:-1] + 0.5 / sr
    expected = synth.instantaneous_frequency(theta)[0].numpy()
    np.testing.assert_allclose(expected, 512.0 * 2 ** (gamma * t), rtol=1e-12)
    checked = 0
    for n in range(-3, 4):  # the central chirplets, near their peaks (envelope away from zero)
        sel = np.abs(tm - n / f_m) < 0.25 / f_m
        if np.abs(x[:-1][sel]).max() < 0.05:
            continue
        np.testing.assert_allclose(inst[sel], 512.0 * 2 ** (gamma * tm[sel]), rtol=1e-2)
        checked += 1
    assert checked >= 3
    # continuous phase: the frequency keeps rising from one event to the next
    centres = [inst[np.argmin(np.abs(tm - n / f_m))] for n in (-1, 0, 1)]
    assert centres[0] < centres[1] < centres[2]


# ------------------------------------------------------------------------------ registry
@pytest.mark.parametrize("name", ["ftm", "amchirp", "arpeggio"])
def test_config_round_trip(name):
    synth = ps.get(**SHORT[name])
    cfg = json.loads(json.dumps(synth.config()))
    assert cfg["name"] == name
    again = ps.get(**cfg)
    assert again.config() == synth.config()
    assert again.space == synth.space and again.space.name == name
    torch.testing.assert_close(again(theta_of(name)), synth(theta_of(name)), atol=0, rtol=0)
    assert ps.available() == ("amchirp", "arpeggio", "ftm")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="piano"), "unknown synth 'piano'"),
        (dict(name="ftm", colour="red"), r"unknown config key\(s\) \['colour'\]"),
        (dict(name="ftm", n_samples=0), "n_samples must be an integer >= 1"),
        (dict(name="ftm", nyquist="clip"), "nyquist must be one of"),
        (dict(name="ftm", n_modes=[10]), "n_modes"),
        (dict(name="amchirp", duration=-1.0), "duration"),
        (dict(name="arpeggio", w="wide"), "w must be a number"),  # a TypeError (a wrong type)
        (dict(), "synth name is required"),
    ],
)
def test_bad_config_raises(kwargs, match):
    error = TypeError if match == "w must be a number" else ValueError
    with pytest.raises(error, match=match):
        ps.get(**kwargs)
