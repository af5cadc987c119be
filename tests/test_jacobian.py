"""pnp.jacobian: features / Jacobian vs central finite differences (float64), micro-batching,
fixed parameters, metric and eigenvalues, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pnp.scattering as sc
import pnp.synth as ps
from pnp.jacobian import Parametrization, eigenvalues, features_and_jacobian, metric


@pytest.fixture(scope="module")
def chirp():
    synth = ps.get("amchirp", duration=0.125)  # N = 1024
    rep = sc.get("jtfs", J=5, Q=(4, 1), J_fr=2, Q_fr=1, F=2, T="global", shape=synth.n_samples, log1p_c=1e-3)
    return synth, rep


def _direct_features(synth, rep, param, nu):
    with torch.no_grad():
        return rep.features(synth(param.theta(nu), validate=False))


def _central_fd(synth, rep, param, nu, h=1e-6):
    """(B, K, P) central differences of the features w.r.t. ν, float64."""
    cols = []
    for i in range(nu.shape[1]):
        e = torch.zeros_like(nu)
        e[:, i] = h
        cols.append((_direct_features(synth, rep, param, nu + e) - _direct_features(synth, rep, param, nu - e)) / (2 * h))
    return torch.stack(cols, dim=-1)


def _rel(a, b):
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


@pytest.mark.parametrize("fixed", [None, {"f_c": 700.0}])
def test_jacobian_matches_central_differences_float64(chirp, fixed):
    synth, rep = chirp
    param = Parametrization(synth.space, fixed)
    nu = torch.tensor(np.random.default_rng(0).uniform(-0.9, 0.9, (3, param.dim)), dtype=torch.float64)
    S, J = features_and_jacobian(synth, rep, nu, fixed=fixed, batch_size=2)
    assert S.dtype == J.dtype == torch.float64
    assert S.shape == (3, 132) and J.shape == (3, 132, param.dim)
    # features are exactly Φ(g(θ(ν)))
    torch.testing.assert_close(S, _direct_features(synth, rep, param, nu), rtol=1e-12, atol=1e-12)
    fd = _central_fd(synth, rep, param, nu)
    for b in range(3):
        for i in range(param.dim):
            assert _rel(J[b, :, i], fd[b, :, i]) < 1e-5, (b, i)


def test_fixed_parameter_jacobian_is_the_free_columns(chirp):
    """With f_c fixed, J equals the (f_m, γ) columns of the full Jacobian at the same θ."""
    synth, rep = chirp
    full = Parametrization(synth.space)
    part = Parametrization(synth.space, {"f_c": 700.0})
    assert part.free == ("f_m", "gamma") and part.fixed == {"f_c": 700.0}
    nu_free = torch.tensor([[0.3, -0.5], [-0.7, 0.2]], dtype=torch.float64)
    theta = part.theta(nu_free)
    assert torch.allclose(theta[:, 0], torch.full((2,), 700.0, dtype=torch.float64))
    nu_full = full.nu(theta)
    _, J_full = features_and_jacobian(synth, rep, nu_full)
    _, J_part = features_and_jacobian(synth, rep, nu_free, fixed={"f_c": 700.0})
    torch.testing.assert_close(J_part, J_full[:, :, 1:], rtol=1e-9, atol=1e-9)


def test_micro_batching_does_not_change_results(chirp):
    synth, rep = chirp
    nu = torch.tensor(np.random.default_rng(1).uniform(-1, 1, (5, 3)), dtype=torch.float64)
    S1, J1 = features_and_jacobian(synth, rep, nu, batch_size=1)
    S5, J5 = features_and_jacobian(synth, rep, nu, batch_size=5)
    S3, J3 = features_and_jacobian(synth, rep, nu, batch_size=3)
    torch.testing.assert_close(S1, S5, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(J1, J5, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(J3, J5, rtol=1e-10, atol=1e-10)
    S_only, none = features_and_jacobian(synth, rep, nu, jacobian=False)
    assert none is None
    torch.testing.assert_close(S_only, S5, rtol=1e-12, atol=1e-12)
    # empty batch: shapes only
    S0, J0 = features_and_jacobian(synth, rep, nu[:0])
    assert S0.shape == (0, 132) and J0.shape == (0, 132, 3)


def test_float32_stays_float32(chirp):
    """A float32 ν gives a float32 computation end to end (tangents included: torch 2.13's
    forward AD promotes 0-d float32 ⊗ Python-float tangents to float64, which
    Parametrization.theta avoids).  Float32 accuracy itself is limited: the chirp's phase and
    log1p(|S|/1e-3) of near-silent coefficients amplify round-off (why specs default to float64)."""
    synth, rep = chirp
    nu = torch.tensor([[0.1, 0.2, -0.3], [0.8, -0.8, 0.5]], dtype=torch.float64)
    S64, J64 = features_and_jacobian(synth, rep, nu)
    S32, J32 = features_and_jacobian(synth, rep, nu.float())
    assert S32.dtype == J32.dtype == torch.float32
    assert _rel(S32.double(), S64) < 1e-3
    assert _rel(J32.double(), J64) < 5e-2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_jacobian_equals_jacfwd_through_the_whole_chain(chirp, dtype):
    """The chain rule (synth tangents, then the JTFS's dual-batch JVP) gives the numbers of
    ``vmap(jacfwd)`` through synth + JTFS + log1p (float64: rel 1e-11; float32: 1e-4)."""
    synth, rep = chirp
    param = Parametrization(synth.space)
    nu = torch.tensor(np.random.default_rng(5).uniform(-0.9, 0.9, (2, param.dim)), dtype=dtype)
    S, J = features_and_jacobian(synth, rep, nu)
    ref = torch.func.vmap(torch.func.jacfwd(lambda v: rep.features(synth(param.theta(v)[None], validate=False))[0]))(nu)
    assert J.dtype == dtype and J.shape == ref.shape
    assert _rel(J, ref) < (1e-11 if dtype == torch.float64 else 1e-4)


def test_other_representation_mss():
    synth = ps.get("amchirp", duration=0.0625)
    rep = sc.get("mss", window_sizes=(32, 64))
    param = Parametrization(synth.space, {"gamma": 2.0})
    nu = torch.tensor([[0.2, -0.4]], dtype=torch.float64)
    S, J = features_and_jacobian(synth, rep, nu, parametrization=param)
    fd = _central_fd(synth, rep, param, nu)
    assert _rel(J, fd) < 1e-5


def test_metric_and_eigenvalues():
    rng = np.random.default_rng(3)
    J = torch.tensor(rng.standard_normal((4, 50, 3)), dtype=torch.float32)
    M = metric(J)
    assert M.dtype == torch.float64 and M.shape == (4, 3, 3)
    J64 = J.double()
    torch.testing.assert_close(M, J64.mT @ J64, rtol=1e-12, atol=1e-12)
    assert torch.equal(M, M.mT)
    ev = eigenvalues(M)
    assert ev.dtype == torch.float64 and ev.shape == (4, 3)
    assert torch.all(ev[:, 1:] >= ev[:, :-1]) and torch.all(ev > 0)
    np.testing.assert_allclose(ev.numpy(), np.linalg.eigvalsh(M.numpy()), rtol=1e-12)
    # trace = sum of eigenvalues = squared Frobenius norm of J
    np.testing.assert_allclose(ev.sum(1).numpy(), (J64**2).sum((1, 2)).numpy(), rtol=1e-12)
    # a non-finite row gives NaN eigenvalues, the others are unaffected
    M2 = M.clone()
    M2[1, 0, 0] = float("nan")
    ev2 = eigenvalues(M2)
    assert torch.isnan(ev2[1]).all() and torch.equal(ev2[[0, 2, 3]], ev[[0, 2, 3]])
    # rank-deficient J (a zero column): smallest eigenvalue 0
    Jz = J64.clone()
    Jz[:, :, 2] = 0
    assert torch.all(eigenvalues(metric(Jz))[:, 0].abs() < 1e-9)


def test_clear_errors(chirp):
    synth, rep = chirp
    with pytest.raises(ValueError, match=r"nu must have shape \(B, 3\)"):
        features_and_jacobian(synth, rep, torch.zeros(2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"parameter 'f_m'\) = 1.5 is outside \[-1, 1\]"):
        features_and_jacobian(synth, rep, torch.tensor([[0.0, 1.5, 0.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="nu must be float32 or float64"):
        features_and_jacobian(synth, rep, torch.zeros(1, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="not finite|outside"):
        features_and_jacobian(synth, rep, torch.tensor([[0.0, float("nan"), 0.0]]))
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        features_and_jacobian(synth, rep, torch.zeros(1, 3), batch_size=0)
    with pytest.raises(ValueError, match=r"fixed parameter 'f_c' = 100.0 is outside its bounds \[512, 1024\] Hz"):
        Parametrization(synth.space, {"f_c": 100.0})
    with pytest.raises(ValueError, match="fixed parameter 'bogus' is not a parameter"):
        Parametrization(synth.space, {"bogus": 1.0})
    with pytest.raises(ValueError, match="at least one must be free"):
        Parametrization(synth.space, {"f_c": 600.0, "f_m": 8.0, "gamma": 1.0})
    with pytest.raises(ValueError, match=r"J must be a real floating tensor of shape \(B, K, P\)"):
        metric(torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"M must be a tensor of shape \(B, P, P\)"):
        eigenvalues(torch.zeros(2, 3, 2))


def test_parametrization_round_trip_and_description():
    space = ps.get("ftm", n_samples=256).space
    param = Parametrization(space, {"alpha": 0.5, "tau": 0.3})
    assert param.free == ("omega", "p", "D") and param.dim == 3
    rng = np.random.default_rng(0)
    nu = torch.tensor(rng.uniform(-1, 1, (6, 3)), dtype=torch.float64)
    theta = param.theta(nu)
    assert theta.shape == (6, 5)
    assert torch.all(theta[:, 4] == 0.5) and torch.all(theta[:, 1] == 0.3)
    np.testing.assert_allclose(param.nu(theta[:, [0, 2, 3]].numpy()), nu.numpy(), rtol=0, atol=1e-12)
    d = param.to_dict()
    assert d["free"] == ["omega", "p", "D"] and d["fixed"] == {"tau": 0.3, "alpha": 0.5}
    assert d["range"] == [-1.0, 1.0]


@pytest.mark.parametrize("case", ["ftm", "amchirp"])
def test_mixed_precision_jacobian_is_within_2e3_of_float64(case):
    """Mixed precision (ν, θ, synth, tangents float64; the zero-padded PNP-kind JTFS in float32)
    gives float32 S and J within 2e-3 relative (Frobenius, per sample) of the all-float64
    computation, and M within 1e-3, on small FTM and AM-chirp configurations (the cast of
    tangents alone, as float32 everywhere, is far off for the chirps)."""
    if case == "ftm":
        synth = ps.get("ftm", n_samples=2**13)
        rep = sc.get("jtfs", J=9, J_fr=3, Q=(8, 1), shape=2**13, T="global", F=2, pad_mode="zero", log1p_c=1e-3)
    else:
        synth = ps.get("amchirp", sample_rate=2048.0, duration=2.0)
        rep = sc.get("jtfs", J=9, J_fr=3, Q=(8, 1), shape=2**12, T="global", F=2, pad_mode="zero", log1p_c=1e-3)
    param = Parametrization(synth.space)
    g = torch.Generator().manual_seed(3)
    nu = torch.rand(3, param.dim, generator=g, dtype=torch.float64) * 1.8 - 0.9
    S64, J64 = features_and_jacobian(synth, rep, nu, parametrization=param)
    S, J = features_and_jacobian(synth, rep, nu, parametrization=param, representation_dtype=torch.float32)
    assert S.dtype == J.dtype == torch.float32 and J.shape == J64.shape

    def rel(a, b):
        return (a.double() - b).flatten(1).norm(dim=1) / b.flatten(1).norm(dim=1)

    assert rel(J, J64).max() < 2e-3, rel(J, J64)
    assert rel(S, S64).max() < 2e-3
    assert rel(metric(J), metric(J64)).max() < 1e-3
    S_only, none = features_and_jacobian(synth, rep, nu, parametrization=param, jacobian=False,
                                         representation_dtype=torch.float32)
    assert none is None and S_only.dtype == torch.float32 and rel(S_only, S64).max() < 2e-3
    with pytest.raises(ValueError, match="representation_dtype"):
        features_and_jacobian(synth, rep, nu, parametrization=param, representation_dtype=torch.float16)


def test_metric_trace_and_share():
    """trace(JᵀJ) equals the trace of :func:`metric`; the share of a set of rows is their part
    of the squared entries (all rows: 1; none: 0; a zero Jacobian: share 0, not NaN)."""
    from pnp.jacobian import metric_trace_and_share

    g = torch.Generator().manual_seed(5)
    J = torch.randn(4, 7, 3, generator=g, dtype=torch.float32)
    J[3] = 0
    trace, share = metric_trace_and_share(J, torch.tensor([0, 2]))
    assert trace.dtype == share.dtype == torch.float64
    torch.testing.assert_close(trace, torch.diagonal(metric(J), dim1=1, dim2=2).sum(-1))
    expected = J.double()[:, [0, 2]].square().sum((1, 2)) / J.double().square().sum((1, 2))
    torch.testing.assert_close(share[:3], expected[:3])
    assert share[3] == 0 and trace[3] == 0
    torch.testing.assert_close(metric_trace_and_share(J, torch.arange(7))[1][:3], torch.ones(3, dtype=torch.float64))
    assert torch.equal(metric_trace_and_share(J, torch.tensor([], dtype=torch.int64))[1], torch.zeros(4, dtype=torch.float64))
