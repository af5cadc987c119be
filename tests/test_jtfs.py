"""Numerical tests of pnp's joint time-frequency scattering (``pnp.scattering.jtfs``).

1. parity with kymatio 0.4 golden fixtures (outputs in float32 / float64, and ``meta()``);
2. automatic differentiation (reverse, forward, ``torch.func`` transforms, gradcheck, the
   modulus at 0);
3. invariants with measured, documented bounds (time-shift stability, global shift invariance,
   spin discrimination, Littlewood-Paley sums of the filter banks);
4. shapes, dtypes, config round trip, ``features``, argument validation.

Everything runs on CPU in one thread with small configurations (the parity cases are the
fixtures' own sizes).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch.func import grad, jacfwd, jacrev, jvp, vmap

import pnp.scattering
from pnp.scattering.jtfs import TimeFrequencyScattering
from pnp.scattering.jtfs.filter_bank import frequential_filter_bank, time_filter_bank
from pnp.scattering.jtfs.modulus import modulus
from pnp.scattering.jtfs.plan import DEFAULT_EPS

pytestmark = [
    # kymatio warns for short signals; the small sizes below are deliberate (fast tests)
    pytest.mark.filterwarnings("ignore:Signal support is too small"),
    # a vmap fallback would mean a slow per-sample loop: make it an error
    pytest.mark.filterwarnings("error:There is a performance drop"),
    # torch-internal (forward-mode AD decompositions), not ours
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
]

FIXTURE_DIR = Path(__file__).parent / "fixtures" / "jtfs"
FIXTURES = sorted(FIXTURE_DIR.glob("*.npz"))




def rel_err(a, b) -> float:
    """Relative L2 error ``||a - b|| / ||b||`` (float64)."""
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    return (torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b)).item()


# ====================================================================================== 1. parity
def _fixture_cases():
    cases = []
    for path in FIXTURES:
        with np.load(path) as d:
            for fmt in ("time", "joint"):
                if f"S_{fmt}" in d.files:
                    cases.append(pytest.param(path, fmt, id=f"{path.stem}-{fmt}"))
    return cases


FIXTURE_CASES = _fixture_cases()


@functools.lru_cache(maxsize=None)
def _load_fixture(path: Path) -> dict:
    with np.load(path) as d:
        return {k: d[k] for k in d.files}


@functools.lru_cache(maxsize=None)
def _fixture_scattering(path: Path, fmt: str, eps: float | None = None) -> TimeFrequencyScattering:
    cfg = json.loads(str(_load_fixture(path)["config"]))
    return TimeFrequencyScattering.from_config(**cfg, format=fmt, **({} if eps is None else dict(eps=eps)))


def test_fixtures_present():
    """The parity tests below are parametrised by glob: make sure they are not silently empty."""
    assert len(FIXTURES) >= 3
    assert len(FIXTURE_CASES) >= 5


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("path, fmt", FIXTURE_CASES)
def test_parity_with_kymatio(path, fmt, dtype):
    """Same shape as kymatio 0.4, relative L2 error <= 1e-4 (the contract). With the default
    ``eps=1e-5`` (negligible filter taps and frequential rows skipped, spin pairs made exact
    conjugates within ``10 eps``) measured <= 7.3e-6 ('joint') and <= 6.9e-6 ('time'), per
    signal, in float32 and float64. Asserted: 1e-5."""
    d = _load_fixture(path)
    s = _fixture_scattering(path, fmt)
    x = torch.from_numpy(d["x"]).to(dtype)
    S = s(x)
    ref = d[f"S_{fmt}"]
    assert S.dtype == dtype
    assert tuple(S.shape) == ref.shape
    assert tuple(S.shape[1:]) == s.output_shape
    assert torch.isfinite(S).all()
    tol = 1e-5
    errs = [rel_err(S[b], ref[b]) for b in range(ref.shape[0])]
    assert max(errs) <= min(tol, 1e-4), errs
    assert rel_err(S, ref) <= tol


@pytest.mark.parametrize("path, fmt", FIXTURE_CASES)
def test_exact_mode_parity_with_kymatio(path, fmt):
    """``eps=0`` reproduces kymatio's arithmetic: measured <= 3e-8 in float64, the float32
    rounding of the stored reference, per signal. Asserted: 1e-7."""
    d = _load_fixture(path)
    S = _fixture_scattering(path, fmt, eps=0.0)(torch.from_numpy(d["x"]).double())
    ref = d[f"S_{fmt}"]
    assert max(rel_err(S[b], ref[b]) for b in range(ref.shape[0])) <= 1e-7


@pytest.mark.parametrize("path, fmt", FIXTURE_CASES)
def test_spin_paired_product_matches_general_product_and_kymatio(path, fmt, monkeypatch):
    """The fused global-time stage computes each up/down spin pair from one real product when
    ``W`` is wide (``PAIR_MIN_COLUMNS``); forcing that path on every stage gives the numbers of
    the general product (float64, rel 1e-12) and kymatio's (rel 1e-5). Local-time
    configurations do not use the fused stage: equal by construction."""
    import pnp.scattering.jtfs.modulus as modulus

    d = _load_fixture(path)
    s = _fixture_scattering(path, fmt)
    x = torch.from_numpy(d["x"]).double()
    if s.plan.average == "global":
        assert all(st.n_pairs > 0 for st in s.plan.stage2.values())
    monkeypatch.setattr(modulus, "PAIR_MIN_COLUMNS", 10**9)
    general = s(x)
    monkeypatch.setattr(modulus, "PAIR_MIN_COLUMNS", 1)
    paired = s(x)
    assert rel_err(paired, general) < 1e-12
    ref = d[f"S_{fmt}"]
    assert max(rel_err(paired[b], ref[b]) for b in range(ref.shape[0])) <= 1e-5


def test_spin_pairing_is_exact_with_eps_zero_and_pairs_every_row_by_default():
    """``eps=0`` keeps kymatio's filters exactly (no row is paired or made real); the default
    pairs every up/down row of the PNP-like frequential bank (the down rows are then exactly
    the conjugates of the up rows)."""
    kw = dict(J=6, J_fr=2, Q=(8, 1), shape=512, T="global", F=2)
    exact = TimeFrequencyScattering(eps=0, **kw).plan
    assert all(st.n_pairs == 0 and st.n_real == 0 for st in exact.stage2.values())
    for st in TimeFrequencyScattering(**kw).plan.stage2.values():
        R0, p = st.n_real, st.n_pairs
        assert R0 + 2 * p == st.W.shape[0]
        assert np.array_equal(st.W[R0 + p : R0 + 2 * p], st.W[R0 : R0 + p].conj())
        assert np.all(st.W[:R0].imag == 0)


def _kymatio_sort(meta: dict) -> np.ndarray:
    """Permutation putting our (output-order) meta in kymatio's meta() order: sorted by
    (order, n1, n2, n_fr), NaN (undefined) first -- all indices are >= 0."""

    def key(a):
        return np.nan_to_num(np.asarray(a, dtype=float), nan=-1.0)

    n = meta["n"]
    return np.lexsort((key(meta["n_fr"]), key(n[:, 1]), key(n[:, 0]), meta["order"]))


@pytest.mark.parametrize("path, fmt", FIXTURE_CASES)
def test_meta_parity_with_kymatio(path, fmt):
    """Every field of kymatio's meta() (order, n, j, spin, n_fr, j_fr; NaN where undefined) equals
    ours: 'time' after re-sorting ours by (order, n1, n2, n_fr) (kymatio's meta is sorted, its
    array is not), 'joint' directly (its path order is already (n2, n_fr))."""
    d = _load_fixture(path)
    s = _fixture_scattering(path, fmt)
    meta = s.meta()
    C = s.output_shape[0]
    for key, value in meta.items():
        assert value.shape[0] == C, key
    if fmt == "time":
        perm = _kymatio_sort(meta)
        # the sort key identifies channels uniquely, so the permutation is well defined
        keys = np.stack([meta["order"], *np.nan_to_num(meta["n"], nan=-1).T, np.nan_to_num(meta["n_fr"], nan=-1)])
        assert len({tuple(k) for k in keys.T}) == C
    else:
        perm = np.arange(C)
        assert np.isnan(meta["n"][:, 0]).all()  # no n1 per joint path
        # first-order paths, then second-order ones grouped by ascending n2
        assert np.all(np.diff(meta["order"]) >= 0)
        assert np.all(np.diff(meta["n"][meta["order"] == 2, 1]) >= 0)
    prefix = f"meta_{fmt}_"
    fields = [k[len(prefix) :] for k in d if k.startswith(prefix)]
    assert {"order", "j", "spin", "n_fr", "j_fr"} <= set(fields)
    for field in fields:
        ours = np.asarray(meta[field], dtype=float)[perm]
        ref = d[prefix + field]
        assert ours.shape == ref.shape, field
        np.testing.assert_array_equal(ours, ref, err_msg=field)  # NaNs compare equal here
    # self-consistency of the extra fields kymatio's fixture does not carry
    defined = ~np.isnan(meta["n_fr"])
    np.testing.assert_array_equal(np.isnan(meta["xi_fr"]), ~defined)
    np.testing.assert_array_equal(meta["spin"][defined], np.sign(meta["xi_fr"][defined]))
    np.testing.assert_array_equal(np.isnan(meta["xi"]), np.isnan(meta["j"]))


# =================================================================================== 2. autodiff
# Small configurations: J=5, J_fr=2, Q=(4, 1), N=256; global / local T, F None / 2, both formats.
N_AD = 256
AD_CONFIGS = {
    "global-time": dict(T="global", F=None, format="time"),
    "global-joint": dict(T="global", F=2, format="joint"),
    "local-time": dict(T=None, F=2, format="time"),
    "local-joint": dict(T=32, F=None, format="joint"),
    # the PNP authors' zero padding (every autodiff test runs on these too)
    "global-time-zero": dict(T="global", F=2, format="time", pad_mode="zero"),
    "local-joint-zero": dict(T=32, F=2, format="joint", pad_mode="zero"),
}


@functools.lru_cache(maxsize=None)
def _ad_scattering(name: str) -> TimeFrequencyScattering:
    return TimeFrequencyScattering(J=5, J_fr=2, Q=(4, 1), shape=N_AD, **AD_CONFIGS[name])


def _signal(n=N_AD, seed=0, batch=(), dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*batch, n, generator=g, dtype=dtype)


def _projection(s, m, seed=1, dtype=torch.float64):
    """A fixed random (m, numel(output)) projection: reduces the outputs for cheap Jacobians."""
    g = torch.Generator().manual_seed(seed)
    K = int(np.prod(s.output_shape))
    return torch.randn(m, K, generator=g, dtype=dtype) / K**0.5


AD_NAMES = list(AD_CONFIGS)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", AD_NAMES)
def test_backward_matches_finite_differences_and_leaves_x_alone(name, dtype):
    """``.backward()`` gives finite gradients of the right dtype; the directional derivative
    matches a central finite difference (float64: rel 1e-6); ``x`` is not modified in place
    (values and version counter unchanged after forward and backward)."""
    s = _ad_scattering(name)
    x = _signal(dtype=dtype).requires_grad_(True)
    x_before = x.detach().clone()
    version = x._version
    w = torch.randn(s.output_shape, generator=torch.Generator().manual_seed(3), dtype=dtype)
    S = s(x)
    assert S.shape == s.output_shape and S.dtype == dtype
    (S * w).sum().backward()
    assert x._version == version
    assert torch.equal(x.detach(), x_before)
    assert x.grad is not None and x.grad.dtype == dtype
    assert torch.isfinite(x.grad).all() and x.grad.abs().max() > 0
    if dtype == torch.float32:  # same gradient as in float64, to float32 accuracy
        x64 = x_before.double().requires_grad_(True)
        (s(x64) * w.double()).sum().backward()
        assert rel_err(x.grad, x64.grad) < 1e-4
    else:
        v = _signal(seed=4)
        h = 1e-5
        with torch.no_grad():
            fd = ((s(x_before + h * v) * w).sum() - (s(x_before - h * v) * w).sum()) / (2 * h)
        ad = (x.grad * v).sum()
        assert abs(fd - ad).item() <= 1e-6 * abs(ad).item()


@pytest.mark.parametrize("name", AD_NAMES)
def test_forward_mode_equals_reverse_mode(name):
    """Forward mode (``torch.func.jvp`` and ``torch.autograd.forward_ad``) gives ``J v`` equal to
    the one from ``jacrev`` (projected to 6 outputs; rel 1e-10 in float64). For the global-time
    configuration (84 outputs) the full ``jacrev`` Jacobian is used."""
    s = _ad_scattering(name)
    x, v = _signal(seed=0), _signal(seed=5)
    S, Jv = jvp(s, (x,), (v,))
    assert torch.allclose(S, s(x), rtol=1e-14, atol=1e-16)
    P = _projection(s, 6)

    def proj(y):
        return P @ s(y).reshape(-1)

    PJ = jacrev(proj)(x)  # (6, N)
    assert rel_err(P @ Jv.reshape(-1), PJ @ v) < 1e-10
    with fwAD.dual_level():
        out = s(fwAD.make_dual(x, v))
        Jv_dual = fwAD.unpack_dual(out).tangent
    assert rel_err(Jv_dual, Jv) < 1e-12
    if name == "global-time":
        Jfull = jacrev(s)(x).reshape(-1, N_AD)
        assert rel_err(Jv.reshape(-1), Jfull @ v) < 1e-10


@pytest.mark.parametrize("name", AD_NAMES)
def test_jacfwd_equals_jacrev(name):
    """``jacfwd`` = ``jacrev`` (float64, rel 1e-10) for ``a -> P S(x0 + V a)``: 4 input directions,
    5 projected outputs (a full N x C Jacobian both ways is seconds per configuration)."""
    s = _ad_scattering(name)
    x0 = _signal(seed=0)
    V = _signal(seed=6, batch=(4,)).T  # (N, 4)
    P = _projection(s, 5, seed=7)

    def f(a):
        return P @ s(x0 + V @ a).reshape(-1)

    a = torch.zeros(4, dtype=torch.float64)
    Jf, Jr = jacfwd(f)(a), jacrev(f)(a)
    assert Jf.shape == Jr.shape == (5, 4)
    assert rel_err(Jf, Jr) < 1e-10


@pytest.mark.parametrize("name", AD_NAMES)
def test_vmap_equals_batched_call(name):
    """``vmap(S)`` over a batch equals the batched call (1e-12), and per-sample gradients by
    ``vmap(grad)`` equal a loop of single-sample gradients."""
    s = _ad_scattering(name)
    X = _signal(seed=8, batch=(3,))
    assert torch.allclose(vmap(s)(X), s(X), rtol=1e-12, atol=1e-14)
    w = torch.randn(s.output_shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)

    def f(y):
        return (s(y) * w).sum()

    G = vmap(grad(f))(X)
    G_loop = torch.stack([grad(f)(X[i]) for i in range(3)])
    assert torch.allclose(G, G_loop, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["global-time", "local-joint"])
def test_gradcheck(name):
    """``torch.autograd.gradcheck`` in float64, reverse and forward mode: (a) on the full input
    with ``fast_mode`` (a random projection of the Jacobian), (b) exactly on a 3-dimensional
    slice ``a -> P S(x0 + V a)`` with 4 projected outputs."""
    s = _ad_scattering(name)
    x = _signal(seed=10).requires_grad_(True)
    P = _projection(s, 4, seed=11)

    def full(y):
        return P @ s(y).reshape(-1)

    assert torch.autograd.gradcheck(full, (x,), fast_mode=True, check_forward_ad=True)
    x0 = x.detach()
    V = _signal(seed=12, batch=(3,)).T

    def sliced(a):
        return P @ s(x0 + V @ a).reshape(-1)

    a = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(sliced, (a,), check_forward_ad=True)


@pytest.mark.parametrize("name", AD_NAMES)
def test_zero_input_gives_zero_finite_gradients(name):
    """At ``x = 0`` every modulus sits at its kink: the derivative convention makes all
    first/second-order derivatives exactly 0 (not NaN) in reverse and forward mode. The zeroth
    order (format 'time') is linear, so its derivative is the (finite) linear map itself."""
    s = _ad_scattering(name)
    x = torch.zeros(N_AD, dtype=torch.float64, requires_grad=True)
    S = s(x)
    higher = torch.as_tensor(s.meta()["order"] >= 1)
    assert torch.equal(S, torch.zeros_like(S))
    w = torch.randn(s.output_shape, generator=torch.Generator().manual_seed(13), dtype=torch.float64)
    (g,) = torch.autograd.grad((S[higher] * w[higher]).sum(), x, retain_graph=True)
    assert torch.equal(g, torch.zeros_like(g))
    (g_all,) = torch.autograd.grad((S * w).sum(), x)
    assert torch.isfinite(g_all).all()
    v = _signal(seed=14)
    _, Jv = jvp(s, (x.detach(),), (v,))
    assert torch.isfinite(Jv).all()
    assert torch.equal(Jv[higher], torch.zeros_like(Jv[higher]))
    if s.format == "time":  # zeroth order: derivative of a linear map = the map
        assert torch.allclose(Jv[0], s(v)[0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", AD_NAMES)
def test_dual_batch_jvp_equals_autodiff_forward_mode(name, dtype, monkeypatch):
    """``s.jvp(x, dx)`` (one pass over a dual batch, no autograd) gives the transform and the
    derivatives of ``torch.func.jvp`` along each of P = 3 tangents for a batch of 2 signals
    (float64: rel 1e-12; float32: 1e-5), also with tiny time chunks; ``features_jvp`` applies
    the chain rule of ``log1p(|S| / c)`` like autodiff."""
    import pnp.scattering.jtfs.core as core

    s = _ad_scattering(name)
    x = _signal(seed=30, batch=(2,), dtype=dtype)
    dx = _signal(seed=31, batch=(2, 3), dtype=dtype)
    S, dS = s.jvp(x, dx)
    assert S.shape == (2,) + s.output_shape and dS.shape == (2, 3) + s.output_shape and dS.dtype == dtype
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert rel_err(S, s(x)) < tol
    for p in range(3):
        _, ref = jvp(s, (x,), (dx[:, p],))
        assert rel_err(dS[:, p], ref) < tol, p
    monkeypatch.setattr(core, "CHUNK_ELEMENTS", 5)
    assert rel_err(s.jvp(x, dx)[1], dS) < tol
    monkeypatch.undo()
    c = 1e-3
    f = TimeFrequencyScattering(J=5, J_fr=2, Q=(4, 1), shape=N_AD, log1p_c=c, **AD_CONFIGS[name])
    F, dF = f.features_jvp(x, dx)
    assert rel_err(F, f.features(x)) < tol
    for p in range(3):
        assert rel_err(dF[:, p], jvp(f.features, (x,), (dx[:, p],))[1]) < tol


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_dual_batch_jvp_on_a_spin_paired_configuration(dtype):
    """A configuration wide enough for the spin-paired forward product (>= PAIR_MIN_COLUMNS
    first-order rows per second-order stage): the dual batch (general product) still gives the
    transform and the ``torch.func.jvp`` derivatives (float64: rel 1e-12; float32: 1e-5), and
    ``vmap`` over the paired forward equals the batched call without falling back to slow
    per-sample loops (no batching-rule warning)."""
    import warnings

    import pnp.scattering.jtfs.modulus as modulus

    s = TimeFrequencyScattering(J=8, J_fr=3, Q=(8, 1), shape=2048, T="global", F=2)
    assert any(st.W.shape[1] >= modulus.PAIR_MIN_COLUMNS and st.n_pairs > 0 for st in s.plan.stage2.values())
    x = _signal(2048, seed=33, batch=(2,), dtype=dtype)
    dx = _signal(2048, seed=34, batch=(2, 2), dtype=dtype)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    S, dS = s.jvp(x, dx)
    assert rel_err(S, s(x)) < tol
    for p in range(2):
        assert rel_err(dS[:, p], jvp(s, (x,), (dx[:, p],))[1]) < tol
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rel_err(vmap(s)(x), s(x)) < tol


def test_dual_batch_jvp_at_zero_and_bad_tangents():
    """At x = 0 the dual-batch derivatives of every modulus are exactly 0 (never NaN), like
    autodiff; ``jvp`` refuses tangents of the wrong shape, dtype or type naming ``dx``."""
    s = _ad_scattering("global-time")
    x = torch.zeros(1, N_AD, dtype=torch.float64)
    dx = _signal(seed=32, batch=(1, 2))
    higher = torch.as_tensor(s.meta()["order"] >= 1)
    _, dS = s.jvp(x, dx)
    assert torch.equal(dS[:, :, higher], torch.zeros_like(dS[:, :, higher]))
    assert torch.isfinite(dS).all()
    for bad in (dx[0], dx[:, :0], dx.float(), _signal(N_AD - 1, batch=(1, 2)), dx.numpy()):
        error = TypeError if isinstance(bad, np.ndarray) else ValueError  # not a tensor: a wrong type
        with pytest.raises(error, match=r"\bdx\b"):
            s.jvp(x, bad)
    with pytest.raises(ValueError, match=r"\bx\b.*float32 or float64"):
        s.jvp(x.half(), dx.half())


# ------------------------------------------------------------------------------------- modulus
@pytest.mark.parametrize("cdtype", [torch.complex64, torch.complex128])
def test_modulus_value_and_derivatives(cdtype):
    """``modulus(z) == |z|``; reverse- and forward-mode derivatives equal ``torch.abs``'s away from
    0 and are exactly 0 (not NaN, unlike ``hypot``'s) at ``z = 0``; works under ``vmap``."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(6, 7, dtype=cdtype, generator=g)
    z[0, :3] = 0
    z[2, 4] = 0
    zero = z == 0
    real = torch.float32 if cdtype == torch.complex64 else torch.float64
    tol = dict(rtol=1e-6, atol=1e-7) if real == torch.float32 else dict(rtol=1e-14, atol=1e-15)
    r = modulus(z)
    assert r.dtype == real
    assert torch.allclose(r, z.abs(), **tol)
    assert torch.equal(r[zero], torch.zeros_like(r[zero]))
    assert torch.allclose(vmap(modulus)(z), z.abs(), **tol)

    # reverse mode
    w = torch.randn(6, 7, dtype=real, generator=g)
    zr = z.clone().requires_grad_(True)
    (gm,) = torch.autograd.grad((modulus(zr) * w).sum(), zr)
    (ga,) = torch.autograd.grad((zr.abs() * w).sum(), zr)
    assert torch.isfinite(torch.view_as_real(gm)).all()
    assert torch.allclose(gm[~zero], ga[~zero], **tol)
    assert torch.equal(gm[zero], torch.zeros_like(gm[zero]))
    # the motivation: hypot's own derivative is NaN at the origin
    zh = z.clone().requires_grad_(True)
    (gh,) = torch.autograd.grad(torch.hypot(zh.real, zh.imag).sum(), zh)
    assert torch.isnan(torch.view_as_real(gh[zero])).any()

    # forward mode
    dz = torch.randn(6, 7, dtype=cdtype, generator=g)
    _, tm = jvp(modulus, (z,), (dz,))
    _, ta = jvp(torch.abs, (z,), (dz,))
    assert tm.dtype == real and torch.isfinite(tm).all()
    assert torch.allclose(tm[~zero], ta[~zero], **tol)
    assert torch.equal(tm[zero], torch.zeros_like(tm[zero]))
    # and the analytic formula Re(conj(z) dz) / |z|
    expected = (z.conj() * dz).real / z.abs()
    assert torch.allclose(tm[~zero], expected[~zero], **tol)


# ================================================================================= 3. invariants
def _am_exp_chirp(N, f0=0.01, f1=0.2, width=0.15, seed_phase=0.3):
    """Exponential chirp f0 -> f1 (cycles/sample) over N samples, amplitude-modulated at 4
    cycles per signal, under a Gaussian window centred in the signal (std ``width * N``)."""
    u = np.arange(N) / N
    phase = 2 * np.pi * f0 * N / np.log(f1 / f0) * ((f1 / f0) ** u - 1) + seed_phase
    am = 1 + 0.5 * np.cos(2 * np.pi * 4 * u)
    return np.sin(phase) * am * np.exp(-0.5 * ((u - 0.5) / width) ** 2)


def test_stability_to_small_time_shifts_local_T():
    """Local averaging T = 2**8 (output stride 256) on N = 2**12, J=8, Q=(8,1), J_fr=3, float64,
    a Gaussian-windowed AM exponential chirp (negligible at the boundaries). A circular shift by
    tau samples changes S by a relative L2 amount ~ c tau / T, linear in tau:

        measured rel(S(x(. - tau)), S(x)) = 1.05e-3, 2.11e-3, 4.23e-3, 8.48e-3 for tau = 1, 2, 4, 8,
        i.e. c = 0.269 ... 0.271.

    Asserted: 0.15 tau/T < change < 0.4 tau/T, and doubling tau multiplies it by 1.8 ... 2.2.
    """
    N, T = 2**12, 2**8
    s = TimeFrequencyScattering(J=8, J_fr=3, Q=(8, 1), shape=N, T=T)
    x = torch.tensor(_am_exp_chirp(N))
    S = s(x)
    taus = (1, 2, 4, 8)
    changes = [rel_err(s(torch.roll(x, tau)), S) for tau in taus]
    for tau, c in zip(taus, changes):
        assert 0.15 * tau / T < c < 0.4 * tau / T, (tau, c)
    for a, b in zip(changes, changes[1:]):
        assert 1.8 < b / a < 2.2, changes


def test_global_time_shift_invariance_of_compact_signal():
    """T='global': a compactly supported signal moved by tau samples gives nearly the same output.

    Boundary effects: kymatio 0.4 pads reflectively to N_padded = 2N here, so the padded
    (circular) signal holds x and its mirror image, with reflection points at n = 0, N/2, N-1;
    "well inside the window" therefore means away from those points. The test signal is a linear
    chirp under a Gaussian of std N/32 centred at N/4 (N = 2**12, J=8, Q=(8,1), J_fr=3, float64).

        measured rel change: 3.4e-5 / 2.4e-5 (tau = -16 / 16), 1.8e-4 / 6.0e-5 (-64 / 64),
        2.1e-4 / 1.7e-4 (-128 / 128) -- the residual is the overlap of the two copies through the
        longest wavelets.

    Asserted: < 1e-4 for |tau| = 16, < 1e-3 for |tau| <= 128.
    """
    N = 2**12
    n = np.arange(N)
    c, w = N // 4, N / 32
    x = np.sin(2 * np.pi * 0.05 * n + 2 * np.pi * 2e-5 * (n - c) ** 2) * np.exp(-0.5 * ((n - c) / w) ** 2)
    x = torch.tensor(x)
    s = TimeFrequencyScattering(J=8, J_fr=3, Q=(8, 1), shape=N, T="global")
    S = s(x)
    assert s.plan.N_padded == 2 * N
    for tau, bound in ((-16, 1e-4), (16, 1e-4), (-64, 1e-3), (64, 1e-3), (-128, 1e-3), (128, 1e-3)):
        change = rel_err(s(torch.roll(x, tau)), S)
        assert change < bound, (tau, change)


def _exp_chirp(N, f0=0.005, f1=0.2):
    u = np.arange(N) / N
    return np.sin(2 * np.pi * f0 * N / np.log(f1 / f0) * ((f1 / f0) ** u - 1)) * np.hanning(N)


def _spin_ratio(s, x) -> float:
    """Second-order energy in spin +1 channels over that in spin -1 channels."""
    meta = s.meta()
    S = s(x)
    order2 = meta["order"] == 2

    def energy(spin):
        return (S[torch.as_tensor(order2 & (meta["spin"] == spin))] ** 2).sum().item()

    return energy(1) / energy(-1)


def test_spin_discriminates_chirp_direction():
    """N = 2**13, J=8, Q=(8,1), J_fr=3, Hann-windowed exponential chirp 0.005 -> 0.2 cycles/sample
    ("up") and its time reversal ("down"), float64.

    Local averaging (T = 2**10): an upward chirp puts its second-order energy in spin +1 (the
    convention: spin = sign of the frequential wavelet's xi_fr), a downward one in spin -1.
    Measured E(+1)/E(-1) = 46.0 (up) and 0.032 = 1/31 (down). Asserted: > 10 and < 1/10.

    Global averaging (T='global') cannot tell the two apart: the reflect padding to 2N puts the
    time-reversed signal inside the padded window, and the global sum sees both (kymatio 0.4 does
    the same; the fixtures agree to 3e-8). Measured ratios 1.009 (up) and 0.991 (down).
    Asserted: within [1/1.05, 1.05] -- a documented limitation, see test below.
    """
    N = 2**13
    up = torch.tensor(_exp_chirp(N))
    down = torch.flip(up, [-1])
    local = TimeFrequencyScattering(J=8, J_fr=3, Q=(8, 1), shape=N, T=2**10)
    r_up, r_down = _spin_ratio(local, up), _spin_ratio(local, down)
    assert r_up > 10, r_up
    assert r_down < 0.1, r_down
    glob = TimeFrequencyScattering(J=8, J_fr=3, Q=(8, 1), shape=N, T="global")
    g_up, g_down = _spin_ratio(glob, up), _spin_ratio(glob, down)
    assert 1 / 1.05 < g_up < 1.05 and 1 / 1.05 < g_down < 1.05, (g_up, g_down)


def test_global_average_is_nearly_blind_to_time_reversal():
    """kymatio-0.4 behaviour (not a desired invariant): with T='global' the reflect-padded signal
    contains x and its mirror image, so S(flip(x)) ~ S(x). On the pnp_like_global fixture signals
    (AM chirp, shifted AM chirp, noise) measured rel change 2.5e-3, 1.9e-2, 1.6e-3. Asserted < 0.05.
    If this test starts failing, the padding (and kymatio parity) changed."""
    path = FIXTURE_DIR / "pnp_like_global.npz"
    if not path.exists():
        pytest.skip("pnp_like_global fixture missing")
    s = _fixture_scattering(path, "time")
    x = torch.from_numpy(_load_fixture(path)["x"]).double()
    S, S_flip = s(x), s(torch.flip(x, [-1]))
    for b in range(x.shape[0]):
        assert rel_err(S_flip[b], S[b]) < 0.05


LP_TIME_CONFIGS = [  # (N_padded, J, Q, T) -- the fixtures' and two more
    (8192, 8, (8, 1), 256),
    (16384, 9, (8, 2), 512),
    (16384, 10, (12, 1), 1024),
    (512, 5, (4, 1), 32),
    (8192, 6, (4, 2), 64),
    (8192, 8, (1, 1), 256),
]


@pytest.mark.parametrize("N_padded, J, Q, T", LP_TIME_CONFIGS, ids=lambda v: str(v).replace(" ", ""))
def test_littlewood_paley_time_bank(N_padded, J, Q, T):
    """LP sum of the first-order bank, sum_n |psi1_n^(f)|^2 + |phi^(f)|^2, on the band between the
    lowest and the highest centre frequency. kymatio 0.4 filters peak at 1 (no LP normalisation);
    adjacent geometric filters cross at |psi| = 1/sqrt(2), so the sum is ~1 there, with ripples up
    to 1.14; the dip is in the linearly spaced low band (spacing ~2.6 sigma). Measured [min, max]:
    Q1=8: [0.374, 1.128]; Q1=12: [0.464, 1.126]; Q1=4: [0.353, 1.136] (N=8192), [0.388, 1.136]
    (N=512); Q1=1: [0.872, 1.240]. Asserted: within [0.33, 1.26]. Also: wavelet peaks are in
    [0.958, 1] (measured; the low ones lose a little to the Morlet's zero-mean correction;
    asserted (0.94, 1]) and, unless they wrap past Nyquist, the wavelets are nearly analytic
    (negative-frequency energy share measured <= 6.6e-4; asserted < 1e-3)."""
    phi, psi1, _ = time_filter_bank(N_padded, J, Q, T)
    f = np.fft.fftfreq(N_padded)
    lp = sum(np.abs(p.hat) ** 2 for p in psi1) + np.abs(phi.hat) ** 2
    lo, hi = min(p.xi for p in psi1), max(p.xi for p in psi1)
    band = (f >= lo) & (f <= hi)
    assert band.sum() > 10
    assert 0.33 < lp[band].min() and lp[band].max() < 1.26, (lp[band].min(), lp[band].max())
    for p in psi1:
        peak = np.abs(p.hat).max()
        assert 0.94 < peak < 1.0 + 1e-9
        if p.xi + 4 * p.sigma < 0.5:  # not wrapped around Nyquist: (nearly) analytic
            assert (np.abs(p.hat[f < 0]) ** 2).sum() < 1e-3 * (np.abs(p.hat) ** 2).sum()
    assert abs(np.abs(phi.hat).max() - 1) < 1e-6


def _n_fr(J, Q1, J_fr, F_support):
    """The frequential padded length of the plan (kymatio 0.4's rule)."""
    return ((J + 1) * Q1 + 8 * min(F_support, 2**J_fr)) // 2**J_fr * 2**J_fr


LP_FREQ_CONFIGS = [  # (N_fr, J_fr, Q_fr, F, symmetry tolerance)  # N_fr: measured asymmetry
    pytest.param(_n_fr(8, 8, 3, 8), 3, 1, 8, 1e-4, id="small_local"),  # 136: 2.95e-5
    pytest.param(_n_fr(10, 12, 3, 2), 3, 1, 2, 1e-4, id="pnp_like_global"),  # 144: 3.05e-5
    pytest.param(_n_fr(9, 8, 4, 16), 4, 2, 16, 1e-12, id="meso_like"),  # 208: 6.7e-16
    pytest.param(_n_fr(5, 4, 2, 4), 2, 1, 4, 1e-4, id="ad_config"),  # 56: 1.6e-5
]


@pytest.mark.parametrize("N_fr, J_fr, Q_fr, F, sym_tol", LP_FREQ_CONFIGS)
def test_littlewood_paley_frequential_bank(N_fr, J_fr, Q_fr, F, sym_tol):
    """Frequential bank = spin-0 low-pass + up-spin wavelets + down-spin wavelets.

    * LP sum sum |psi_fr^(k)|^2 over |f| <= highest |xi_fr| (both signs): measured [min, max]
      Q_fr=1: [0.246, 1.233] (N_fr=144), [0.267, 1.234] (136), [0.239, 1.224] (56);
      Q_fr=2: [0.472, 1.164] (208). Asserted: within [0.2, 1.25].
    * Both signs are covered symmetrically: |LP(f) - LP(-f)| measured 6.7e-16 for Q_fr=2 and
      1.6e-5 ... 3.1e-5 for Q_fr=1, asserted 1e-12 / 1e-4. The Q_fr=1 asymmetry is kymatio's:
      ``morlet_1d`` periodises the Gaussians over the asymmetric period range [1-P, P), so the
      -xi filter is not the exact mirror of the +xi one; making it exact moves the output off
      kymatio 0.4 by 7.7e-6 on the spin -1 channels (small_local), vs 2.6e-8 as is.
    * Every down-spin filter mirrors its up-spin partner (same tolerance); the low-pass and the
      averaging phi_F are even (1e-15)."""
    phi_F, psis = frequential_filter_bank(N_fr, J_fr, Q_fr, F)
    K = (len(psis) - 1) // 2
    assert psis[0].spin == 0 and all(p.spin == 1 for p in psis[1 : 1 + K]) and all(p.spin == -1 for p in psis[1 + K :])
    mirror = (-np.arange(N_fr)) % N_fr
    f = np.fft.fftfreq(N_fr)
    lp = sum(np.abs(p.hat) ** 2 for p in psis)
    hi = max(abs(p.xi) for p in psis)
    band = np.abs(f) <= hi
    assert 0.2 < lp[band].min() and lp[band].max() < 1.25, (lp[band].min(), lp[band].max())
    assert np.abs(lp - lp[mirror]).max() < sym_tol
    for up, down in zip(psis[1 : 1 + K], psis[1 + K :]):
        assert down.xi == -up.xi and down.sigma == up.sigma and down.j == up.j
        assert np.abs(np.abs(down.hat) - np.abs(up.hat[mirror])).max() < sym_tol
    for even in (psis[0], phi_F):
        assert np.abs(even.hat - even.hat[mirror]).max() < 1e-15


# ============================================================================ 4. shapes / errors
SHAPE_CONFIGS = [
    dict(J=5, J_fr=2, Q=(4, 1), shape=256, T="global"),
    dict(J=5, J_fr=2, Q=(4, 1), shape=256, T="global", F=2, format="joint"),
    dict(J=5, J_fr=2, Q=4, shape=(256,), T=None, F=0),
    dict(J=5, J_fr=2, Q=(4, 2), shape=256, T=64, stride=16, F="global"),
    dict(J=5, J_fr=2, Q=(4, 1), shape=256, T=32, F=4, stride_fr=2, format="joint"),
    dict(J=4, J_fr=1, Q=(2, 1), shape=200, T=50, Q_fr=2),
]


@pytest.mark.parametrize("cfg", SHAPE_CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items() if k not in ("J", "J_fr", "shape")))
def test_output_shape_dtype_and_batch_dims(cfg):
    """``output_shape`` matches the output; leading batch dims (2, 3, N) work and equal the
    flat-batch call; float32 -> float32 and float64 -> float64 (agreeing to 1e-5); meta has one
    row per channel/path."""
    s = TimeFrequencyScattering(**cfg)
    N = s.N
    x64 = _signal(n=N, seed=20, batch=(2, 3))
    S64 = s(x64)
    assert S64.dtype == torch.float64
    assert tuple(S64.shape) == (2, 3, *s.output_shape)
    assert torch.allclose(S64.reshape(6, *s.output_shape), s(x64.reshape(6, N)), rtol=1e-12, atol=1e-14)
    assert torch.allclose(S64[1, 2], s(x64[1, 2]), rtol=1e-12, atol=1e-14)
    S32 = s(x64.float())
    assert S32.dtype == torch.float32 and S32.shape == S64.shape
    assert rel_err(S32, S64) < 1e-5
    assert len(s.meta()["order"]) == s.output_shape[0]


def test_config_round_trip_and_features():
    """``pnp.scattering.get(**config())`` (also through JSON) rebuilds an identical transform;
    ``features`` = flattened S, or ``log1p(|S| / c)`` flattened when ``log1p_c`` is set."""
    s = TimeFrequencyScattering(J=5, J_fr=2, Q=(4, 1), shape=256, T=32, F=2, format="joint", log1p_c=1e-3)
    cfg = s.config()
    assert cfg["name"] == "jtfs" and cfg["log1p_c"] == 1e-3
    x = _signal(seed=21, batch=(2,))
    S = s(x)
    for rebuilt in (pnp.scattering.get(**cfg), pnp.scattering.get(**json.loads(json.dumps(cfg)))):
        assert isinstance(rebuilt, TimeFrequencyScattering)
        assert rebuilt.config() == cfg
        assert torch.equal(rebuilt(x), S)
    feats = s.features(x)
    assert feats.shape == (2, int(np.prod(s.output_shape)))
    assert torch.allclose(feats, torch.log1p(S.abs() / 1e-3).reshape(2, -1), rtol=1e-14, atol=0)
    plain = TimeFrequencyScattering(J=5, J_fr=2, Q=(4, 1), shape=256, T="global")
    assert plain.config()["log1p_c"] is None
    assert torch.equal(plain.features(x), plain(x).reshape(2, -1))
    # signed zeroth order: |S| keeps log1p finite
    assert torch.isfinite(TimeFrequencyScattering(J=5, J_fr=2, Q=4, shape=256, log1p_c=1e-3).features(x)).all()


JOINT_CONFIGS = [dict(T=32, F=2), dict(T="global", F=None), dict(T=32, F=4, stride_fr=2), dict(T=64, F=4, stride=16)]


@pytest.mark.parametrize("kw", JOINT_CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("eps", [0.0, DEFAULT_EPS])
def test_time_and_joint_formats_agree(kw, eps):
    """Same transform, two layouts: for every joint path (order, n2, n_fr), the 'time' channels
    with the same (order, n2, n_fr) are the first rows of that path's frequential axis --
    exactly (1e-15) with ``eps = 0``; with the default ``eps`` within ``eps`` of the path's
    largest coefficient (each format skips the frequential rows negligible for *its* outputs,
    and the joint format has more of them)."""
    x = _signal(seed=23, batch=(2,))
    st = TimeFrequencyScattering(J=5, J_fr=2, Q=(4, 1), shape=256, eps=eps, **kw)
    sj = TimeFrequencyScattering(J=5, J_fr=2, Q=(4, 1), shape=256, format="joint", eps=eps, **kw)
    St, Sj = st(x), sj(x)
    mt, mj = st.meta(), sj.meta()
    n2_t, n2_j = np.nan_to_num(mt["n"][:, 1], nan=-1), np.nan_to_num(mj["n"][:, 1], nan=-1)
    covered = 0
    for p in range(Sj.shape[1]):
        idx = np.flatnonzero((mt["order"] == mj["order"][p]) & (mt["n_fr"] == mj["n_fr"][p]) & (n2_t == n2_j[p]))
        assert 1 <= len(idx) <= Sj.shape[2]
        tol = 1e-15 if eps == 0 else eps * float(St[:, idx].abs().max())
        assert torch.allclose(St[:, idx], Sj[:, p, : len(idx)], rtol=0, atol=tol)
        covered += len(idx)
    assert covered == St.shape[1] - 1  # every channel but the zeroth order


@pytest.mark.parametrize("kw", [dict(T=32, F=2, format="joint"), dict(T="global", F=None)], ids=["local", "global"])
def test_chunking_does_not_change_the_result(kw, monkeypatch):
    """The frequential stage is chunked (over rows for local T, over time for global T) to bound
    memory; tiny chunks give the same numbers (1e-14)."""
    import pnp.scattering.jtfs.core as core

    s = TimeFrequencyScattering(J=5, J_fr=2, Q=(4, 1), shape=256, **kw)
    x = _signal(seed=24, batch=(2,))
    S = s(x)
    for chunk in (1, 7, 300):
        monkeypatch.setattr(core, "CHUNK_ELEMENTS", chunk)
        assert torch.allclose(s(x), S, rtol=1e-14, atol=1e-15)


def test_eps_zero_agrees_with_default():
    """``eps=0`` (exact kymatio arithmetic) and the default ``eps=1e-5`` (skips negligible taps
    and frequential rows) agree within 1e-5 relative (both formats, local and global T)."""
    x = _signal(seed=22, batch=(2,))
    for kw in (dict(T="global", F=2, format="joint"), dict(T=32, F=None), dict(T=64, F=0)):
        exact = TimeFrequencyScattering(J=5, J_fr=2, Q=(4, 1), shape=256, eps=0, **kw)
        fast = TimeFrequencyScattering(J=5, J_fr=2, Q=(4, 1), shape=256, **kw)
        assert rel_err(fast(x), exact(x)) < 1e-5


def test_crop_rows_drops_exactly_the_rows_of_negligible_output_influence():
    """A frequential row goes when (its largest weight / max|W|) x (its largest weight in an
    output's average / that output's largest weight) <= eps; unread rows always go."""
    from pnp.scattering.jtfs.plan import FrequencyStage

    W = np.array([[1.0, 0.5], [1e-3, 1e-3], [1e-3, 0.0], [0.5, 0.5], [1.0, 1.0]], dtype=complex)
    A = np.array([[1.0, 1.0, 1e-3, 1e-6, 0.0], [0.0, 0.0, 0.0, 2e-6, 0.0]])  # output 1's peak is 2e-6
    stage = FrequencyStage(W, A, 1, np.zeros(5, dtype=np.int64), np.arange(5))
    # influence: row0 1, row1 1e-3, row2 1e-3 * 1e-3 = 1e-6, row3 0.5 * 1 (its weight in output 1
    # is that output's largest), row4 unread
    assert stage.crop_rows(1e-5).row_pos.tolist() == [0, 1, 3]
    assert stage.crop_rows(1e-7).row_pos.tolist() == [0, 1, 2, 3]
    assert stage.crop_rows(0.0).row_pos.tolist() == [0, 1, 2, 3]
    cropped = stage.crop_rows(1e-5)
    assert np.array_equal(cropped.W, W[[0, 1, 3]]) and np.array_equal(cropped.average, A[:, [0, 1, 3]])


def test_crop_rows_skips_the_far_rows_of_small_stages_of_the_pnp_configuration():
    """With F=2 the small second-order stages of the PNP configuration lose 20-35 % of their rows
    to the output-aware crop (the W-only crop kept them all), and every spin pair survives whole."""
    s = TimeFrequencyScattering(J=13, J_fr=3, Q=(12, 1), Q_fr=1, F=2, T="global", shape=2**16)
    stage = s.plan.stage2[s.plan.n2_list[0]]
    assert stage.W.shape[1] == 14
    assert 0.65 * 318 <= stage.W.shape[0] <= 0.8 * 318  # 318 rows before
    assert stage.n_real + 2 * stage.n_pairs == stage.W.shape[0]


BASE = dict(J=5, J_fr=2, Q=(4, 1), shape=256)


BAD_ARGS = [  # (overrides of BASE, the argument the message must name)
    (dict(J=0), "J"),
    (dict(J=2.5), "J", TypeError),  # a wrong type (kymatio: TypeError)
    (dict(J_fr=0), "J_fr"),
    (dict(Q=0), "Q"),
    (dict(Q=[4, 1]), "Q"),  # a list (kymatio refuses lists; from_config reads them as tuples)
    (dict(Q=2.5), "Q"),
    (dict(Q_fr=0), "Q_fr"),
    (dict(shape=16), "shape"),  # N < 2**J
    (dict(shape=(256, 2)), "shape"),
    (dict(shape=[256]), "shape"),
    (dict(Q_fr=[1]), "Q_fr"),
    (dict(T=257), "T"),  # T > N
    (dict(T=0), "T"),  # no averaging: no array output
    (dict(T=0, stride=4, out_type="list"), "stride"),
    (dict(T=-3), "T"),
    (dict(T="local"), "T"),
    (dict(F=(5 + 1) * 4 + 1), "F"),  # F > (J+1) Q1
    (dict(F="wide"), "F"),
    (dict(T=64, stride=3), "stride"),  # not a power of 2
    (dict(T="global", stride=4), "stride"),
    (dict(F=4, stride_fr=3), "stride_fr"),
    (dict(F="global", stride_fr=2), "stride_fr"),
    (dict(F=0, format="joint"), "format"),
    (dict(format="frequency"), "format"),
    (dict(out_type="tuple"), "out_type"),
    (dict(eps=1.0), "eps"),
    (dict(eps=-1e-9), "eps"),
    (dict(log1p_c=0), "log1p_c"),
    (dict(pad_mode="constant"), "pad_mode"),
    (dict(pad_mode=None), "pad_mode"),
]


@pytest.mark.parametrize(
    "overrides, arg, error",
    [pytest.param(o, a, *(e or (ValueError,)), id=",".join(f"{k}={v}" for k, v in o.items()))
     for o, a, *e in BAD_ARGS],
)
def test_bad_constructor_arguments_raise(overrides, arg, error):
    """Bad constructor arguments raise a ValueError (a TypeError for a wrong type) whose message
    names the argument."""
    with pytest.raises(error, match=rf"\b{arg}\b"):
        TimeFrequencyScattering(**{**BASE, **overrides})


@pytest.mark.parametrize("overrides, message", [
    (dict(Q=(4, 1, 1)), "Q must be an integer, 1-tuple or 2-tuple"),
    (dict(Q_fr=(1, 2)), "Q_fr must be an integer or 1-tuple"),
], ids=["Q", "Q_fr"])
def test_several_filter_banks_are_not_implemented(overrides, message):
    """As kymatio 0.4: a third order (``Q`` of 3) or several frequential filter banks
    (``Q_fr`` of 2) raise NotImplementedError naming the argument."""
    with pytest.raises(NotImplementedError, match=message):
        TimeFrequencyScattering(**{**BASE, **overrides})


def test_from_config_reads_lists_as_tuples():
    """The JSON / TOML form of a config (lists for ``Q`` and ``shape``) builds the transform that
    the tuples build; the constructor itself refuses the lists, as kymatio does."""
    cfg = dict(J=5, J_fr=2, Q=[4, 1], shape=[256], T="global")
    x = _signal(seed=60, batch=(2,))
    ref = TimeFrequencyScattering(J=5, J_fr=2, Q=(4, 1), shape=(256,), T="global")
    assert torch.equal(TimeFrequencyScattering.from_config(**cfg)(x), ref(x))
    assert torch.equal(pnp.scattering.get("jtfs", **cfg)(x), ref(x))
    with pytest.raises(ValueError, match=r"Q must be an integer or a tuple .*a list"):
        TimeFrequencyScattering(**cfg)


def test_bad_inputs_raise():
    """``forward`` refuses a wrong length (shape mismatch), complex and integer dtypes, and
    non-tensors, with a ValueError naming ``x``."""
    s = TimeFrequencyScattering(**BASE, T="global")
    for bad in (
        torch.zeros(255, dtype=torch.float64),
        torch.zeros(2, 512),
        torch.zeros(256, 2),
        torch.zeros(256, dtype=torch.complex64),
        torch.zeros(256, dtype=torch.int64),
        torch.zeros(256, dtype=torch.float16),
        np.zeros(256),
    ):
        with pytest.raises(TypeError if isinstance(bad, np.ndarray) else ValueError, match=r"\bx\b"):
            s(bad)


def test_plan_computes_no_frequential_row_that_no_output_reads():
    """With F=0 frequential unpadding keeps only the first rows of each path: the plan must not
    compute the others (an exact saving of up to 10x on the Mesostructures configuration)."""
    s = TimeFrequencyScattering(J=6, J_fr=3, Q=(4, 2), Q_fr=2, shape=512, T=64, F=0, eps=0)
    for stage in [s.plan.stage1, *s.plan.stage2.values()]:
        assert (np.abs(stage.average).max(axis=0) > 0).all()
        # no frequential averaging: each output channel reads exactly one computed row
        assert stage.W.shape[0] == stage.average.shape[0] == stage.average.shape[1]


# ================================================================================ 5. zero padding
def _chirps(N: int, sr: float) -> torch.Tensor:
    """Three AM chirps of the PNP set's kind, float64 (B, N)."""
    from pnp.synth.amchirp import AMChirp

    synth = AMChirp(sample_rate=sr, duration=N / sr)
    theta = torch.tensor([[512.0, 4.0, 0.5], [700.0, 9.0, 1.3], [1024.0, 16.0, 4.0]], dtype=torch.float64)
    return synth(theta)


@pytest.mark.parametrize("signal", ["random", "chirp"])
def test_zero_padding_makes_order_zero_the_sum_of_the_signal(signal):
    """With ``pad_mode='zero'`` and ``T='global'`` the zeroth-order coefficient is the plain sum
    of the N input samples (no other factor): within 1e-6 relative of ``x.sum()`` for random
    signals with a non-zero mean and for chirps (whose sum cancels to ~1e-13 against samples of
    order 1); the reflect-padded transform counts the mirrored samples and is far off."""
    N = 2**12
    if signal == "random":
        x = _signal(n=N, seed=40, batch=(3,)) + torch.tensor([[0.1], [-0.3], [2.0]], dtype=torch.float64)
    else:
        x = _chirps(N, 1024.0)
    kw = dict(J=8, J_fr=3, Q=(8, 1), shape=N, T="global", F=2)
    S0 = TimeFrequencyScattering(**kw, pad_mode="zero")(x)[:, 0, 0]
    total = x.sum(-1)
    assert torch.all((S0 - total).abs() <= 1e-6 * total.abs()), (S0, total)
    S0_reflect = TimeFrequencyScattering(**kw)(x)[:, 0, 0]
    assert torch.all((S0_reflect - total).abs() > 1e3 * (S0 - total).abs().clamp_min(1e-300))


def test_zero_and_reflect_padding_agree_on_a_compactly_supported_signal():
    """A signal that is exactly 0 over the first and last ``pad`` + 1 samples has zeros as
    its reflection too, so the two modes give the same transform up to round-off (1e-12
    relative in float64), in both formats and for local and global averaging; on a signal
    that reaches the edges they differ. (N = 2500 pads to 4096: 798 samples on each side.)"""
    N = 2500
    for kw in (dict(T="global", F=2, format="time"), dict(T=64, F=2, format="joint")):
        zero = TimeFrequencyScattering(J=6, J_fr=3, Q=(8, 1), shape=N, pad_mode="zero", **kw)
        reflect = TimeFrequencyScattering(J=6, J_fr=3, Q=(8, 1), shape=N, **kw)
        pad = max(zero.plan.pad_left, zero.plan.pad_right)
        assert 2 * (pad + 1) < N, "the test needs room for a compact support"
        x = _signal(n=N, seed=41, batch=(2,))
        x[:, : pad + 1] = 0
        x[:, N - pad - 1 :] = 0
        assert rel_err(zero(x), reflect(x)) < 1e-12
        edge = _signal(n=N, seed=42, batch=(2,))
        assert rel_err(zero(edge), reflect(edge)) > 1e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_zero_padding_dual_batch_jvp_and_features_jvp_equal_torch_func_jvp(dtype):
    """The dual-batch JVP (and ``features_jvp`` through log1p) of the zero-padded transform
    equal ``torch.func.jvp`` (float64: 1e-12; float32: 1e-5) on the PNP configuration's kind
    (T='global', F=2, order 0 kept)."""
    N = 2**10
    s = TimeFrequencyScattering(J=7, J_fr=3, Q=(6, 1), shape=N, T="global", F=2, pad_mode="zero", log1p_c=1e-3)
    x = _chirps(N, 512.0)[:2].to(dtype)
    dx = _signal(n=N, seed=43, batch=(2, 3), dtype=dtype)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    S, dS = s.jvp(x, dx)
    F, dF = s.features_jvp(x, dx)
    for p in range(3):
        assert rel_err(dS[:, p], jvp(s, (x,), (dx[:, p],))[1]) < tol
        assert rel_err(dF[:, p], jvp(s.features, (x,), (dx[:, p],))[1]) < tol
    assert rel_err(S, s(x)) < tol and rel_err(F, s.features(x)) < tol


def test_pad_mode_in_config_and_rebuilt():
    """``config()`` records ``pad_mode``; ``pnp.scattering.get(**config)`` rebuilds the same
    transform; the default is kymatio 0.4's 'reflect'."""
    x = _signal(seed=44, batch=(2,))
    for mode in ("reflect", "zero"):
        s = TimeFrequencyScattering(**BASE, T="global", pad_mode=mode)
        cfg = s.config()
        assert cfg["pad_mode"] == mode
        assert torch.equal(pnp.scattering.get(**json.loads(json.dumps(cfg)))(x), s(x))
    assert TimeFrequencyScattering(**BASE).pad_mode == "reflect"
    with pytest.raises(ValueError, match=r"pad_mode must be one of \('reflect', 'zero'\)"):
        TimeFrequencyScattering(**BASE, pad_mode="Zero")


@pytest.mark.parametrize("T", ["global", 64])
def test_mixed_precision_keeps_order_zero_in_the_input_precision(T):
    """``transform(x64, compute_dtype=float32)`` and ``jvp(x64, dx64, float32)`` return float32;
    the zeroth order (and its derivatives) equal the float64 ones to float32 rounding even
    where the chirp's sum cancels to ~1e-13, while the rest equals the float32 transform of the
    rounded input exactly."""
    N = 2**11
    s = TimeFrequencyScattering(J=7, J_fr=3, Q=(6, 1), shape=N, T=T, F=2, pad_mode="zero")
    x = _chirps(N, 1024.0)
    dx = _signal(n=N, seed=45, batch=(3, 2))
    S = s.transform(x, torch.float32)
    S64, S32 = s(x), s(x.float())
    assert S.dtype == torch.float32
    assert torch.allclose(S[:, 0].double(), S64[:, 0], rtol=1e-6, atol=0)
    assert torch.equal(S[:, 1:], S32[:, 1:])
    P, dP = s.jvp(x, dx, torch.float32)
    _, dP64 = s.jvp(x, dx)
    assert P.dtype == dP.dtype == torch.float32
    assert torch.allclose(dP[:, :, 0].double(), dP64[:, :, 0], rtol=1e-6, atol=0)
    assert torch.equal(dP[:, :, 1:], s.jvp(x.float(), dx.float())[1][:, :, 1:])
    with pytest.raises(ValueError, match="compute_dtype"):
        s.transform(x, torch.float16)


# =================================================================== 6. per-path outputs, T=0
def _coefs(paths) -> list[torch.Tensor]:
    return [p["coef"] for p in paths]


def test_list_and_dict_outputs_in_format_time_are_the_array_split_by_channel():
    """out_type 'list' / 'dict' (kymatio's), format 'time': the array's channels in output order,
    each with its meta; features() and jvp() are those of the array."""
    kw = dict(J=6, J_fr=2, Q=(4, 1), shape=512, T=64, F=2)
    arr = TimeFrequencyScattering(**kw)
    lst = TimeFrequencyScattering(**kw, out_type="list")
    dct = TimeFrequencyScattering(**kw, out_type="dict")
    x = torch.randn(3, 512, dtype=torch.float64)
    S = arr(x)
    paths = lst(x)
    meta = arr.meta()
    assert len(paths) == S.shape[-2] == len(meta["key"])
    for i, p in enumerate(paths):
        assert torch.equal(p["coef"], S[:, i]) and p["n"] == meta["key"][i]
        assert p["order"] == meta["order"][i] and (np.isnan(p["n_fr"]) or p["n_fr"] == meta["n_fr"][i])
    d = dct(x)
    assert list(d) == list(meta["key"]) and all(torch.equal(d[k], p["coef"]) for k, p in zip(d, paths))
    torch.testing.assert_close(lst.features(x), arr.features(x), rtol=0, atol=0)
    dx = torch.randn(3, 2, 512, dtype=torch.float64)
    torch.testing.assert_close(lst.features_jvp(x, dx)[1], arr.features_jvp(x, dx)[1], rtol=0, atol=0)
    assert pnp.scattering.get(**lst.config()).out_type == "list"


@pytest.mark.parametrize("kw", [dict(T=64, F=2), dict(T="global", F=None), dict(T=32, F=4, stride_fr=2)],
                         ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_joint_paths_are_the_array_paths_unpadded_after_the_zeroth_order(kw):
    """Format 'joint', out_type 'list' / 'dict' (kymatio 0.4): the zeroth order first (as in
    format 'time', 1e-12 with ``eps=0``), then each array path's first ``F'_p <= F'``
    frequential rows (kymatio's unpadding, ``F'_p`` below F' for some path; the row counts
    themselves are checked against kymatio in tests/test_kymatio_compat.py); ``features`` is
    the coefficients flattened in output order."""
    common = dict(J=6, J_fr=2, Q=(4, 1), shape=512, eps=0, **kw)
    arr = TimeFrequencyScattering(**common, format="joint")
    time0 = TimeFrequencyScattering(**common)
    lst = TimeFrequencyScattering(**common, format="joint", out_type="list")
    x = _signal(n=512, seed=50, batch=(2,))
    S, paths = arr(x), lst(x)
    assert len(paths) == S.shape[1] + 1 == len(lst.meta()["key"]) and paths[0]["n"] == () and paths[0]["order"] == 0
    assert torch.allclose(paths[0]["coef"], time0(x)[:, 0], rtol=1e-12, atol=1e-14)
    rows = [p["coef"].shape[-2] for p in paths[1:]]
    assert max(rows) <= S.shape[2] and min(rows) < S.shape[2]
    for i, p in enumerate(paths[1:]):
        assert p["n"] == arr.meta()["key"][i]
        assert torch.allclose(p["coef"], S[:, i, : rows[i]], rtol=1e-12, atol=1e-14)
    flat = torch.cat([c.reshape(2, -1) for c in _coefs(paths)], dim=1)
    assert torch.equal(lst.features(x), flat)
    with pytest.raises(ValueError, match="needs the array output"):
        _ = lst.output_shape


T0 = dict(J=5, J_fr=2, Q=(4, 1), shape=N_AD, T=0)


@pytest.mark.parametrize("fmt", ["time", "joint"])
def test_T0_paths_have_kymatio_lengths_and_order_zero_is_x(fmt):
    """T=0 (no time averaging): the zeroth order is ``x`` itself (exactly); first-order paths
    have the length of T=None (stride 2**J) and equal its coefficients (1e-12); a second-order
    path of wavelet scale 2**j2 has ``t`` samples with ``|t 2**j2 - N| < 2**(j2+1)`` (the
    signal at resolution 2**j2), so lengths differ; the values are kymatio 0.4's (see
    tests/test_kymatio_compat.py)."""
    s = TimeFrequencyScattering(**T0, F=2, format=fmt, out_type="list", eps=0)
    local = TimeFrequencyScattering(**{**T0, "T": None}, F=2, format=fmt, out_type="list", eps=0)
    x = _signal(seed=51, batch=(2,))
    paths, ref = s(x), local(x)
    assert [p["n"] for p in paths] == [p["n"] for p in ref]
    assert torch.equal(paths[0]["coef"], x)
    lengths = set()
    for p, r in zip(paths[1:], ref[1:]):
        t = p["coef"].shape[-1]
        if p["order"] == 1:
            assert torch.allclose(p["coef"], r["coef"], rtol=1e-12, atol=1e-14)
        else:
            j2 = p["j"][1]
            assert abs(t * 2**j2 - N_AD) < 2 ** (j2 + 1), (p["n"], t, j2)
            lengths.add(t)
    assert len(lengths) > 1
    with pytest.raises(ValueError, match="needs the array output"):
        s.transform(x)


def test_T0_refuses_the_array_and_a_stride():
    """T=0 with out_type='array' is kymatio's 'Cannot convert' error (here at construction);
    a stride needs local averaging."""
    with pytest.raises(ValueError, match=r"Cannot convert to out_type='array' with T=0.*'dict' or 'list'"):
        TimeFrequencyScattering(**T0)
    with pytest.raises(ValueError, match="stride=4 is incompatible with T=0"):
        TimeFrequencyScattering(**T0, stride=4, out_type="list")


def _t0_scattering(out_type="dict", fmt="time"):
    return TimeFrequencyScattering(**T0, F=2, format=fmt, out_type=out_type)


def _t0_loss(s, w_seed=52):
    """A scalar of every T=0 coefficient: sum over paths of <coef, w_path>."""
    def f(y):
        coefs = list(s(y).values())
        g = torch.Generator().manual_seed(w_seed)
        return sum((c * torch.randn(c.shape, generator=g, dtype=c.dtype)).sum() for c in coefs)
    return f


@pytest.mark.parametrize("fmt", ["time", "joint"])
def test_T0_reverse_and_forward_mode_match_finite_differences(fmt):
    """T=0 (dict output, autograd): ``backward`` and forward mode (``torch.func.jvp``,
    ``forward_ad``) give the directional derivative of a central finite difference
    (float64, rel 1e-6) and agree with each other (1e-10); x is left alone."""
    s = _t0_scattering(fmt=fmt)
    f = _t0_loss(s)
    x, v = _signal(seed=53), _signal(seed=54)
    xg = x.clone().requires_grad_(True)
    f(xg).backward()
    assert torch.equal(xg.detach(), x) and xg.grad is not None
    h = 1e-5
    with torch.no_grad():
        fd = (f(x + h * v) - f(x - h * v)) / (2 * h)
    ad = (xg.grad * v).sum()
    assert abs(fd - ad) <= 1e-6 * abs(ad)
    _, fwd = jvp(f, (x,), (v,))
    assert abs(fwd - ad) <= 1e-10 * abs(ad)
    with fwAD.dual_level():
        tangent = fwAD.unpack_dual(f(fwAD.make_dual(x, v))).tangent
    assert abs(tangent - ad) <= 1e-10 * abs(ad)


def test_T0_vmap_jacfwd_and_jacrev():
    """T=0 under ``torch.func``: ``vmap`` of the dict output (and of the list's coefficients)
    equals the batched call (1e-12); ``jacfwd`` = ``jacrev`` of a 3-direction slice (1e-10)."""
    s, lst = _t0_scattering(), _t0_scattering("list")
    X = _signal(seed=55, batch=(3,))
    batched = s(X)
    for k, c in vmap(s)(X).items():
        assert torch.allclose(c, batched[k], rtol=1e-12, atol=1e-14)
    for c, b in zip(vmap(lambda y: _coefs(lst(y)))(X), batched.values()):
        assert torch.allclose(c, b, rtol=1e-12, atol=1e-14)
    x0, V = X[0], _signal(seed=56, batch=(3,)).T
    P = torch.randn(4, s.features(x0).numel(), generator=torch.Generator().manual_seed(57), dtype=torch.float64)

    def sliced(a):
        return P @ s.features(x0 + V @ a)

    a = torch.zeros(3, dtype=torch.float64)
    assert rel_err(jacfwd(sliced)(a), jacrev(sliced)(a)) < 1e-10


@pytest.mark.parametrize("out_type", ["list", "dict"])
@pytest.mark.parametrize("fmt", ["time", "joint"])
def test_T0_dual_batch_jvp_equals_torch_func_jvp(out_type, fmt):
    """For out_type 'list' / 'dict' (here with T=0) ``jvp`` returns the flat coefficients of
    ``features`` (before compression) and their derivatives, from one dual-batch pass: equal to
    ``torch.func.jvp`` of ``features`` (float64, rel 1e-12), also through log1p."""
    s = TimeFrequencyScattering(**T0, F=2, format=fmt, out_type=out_type, log1p_c=1e-3)
    x = _signal(seed=58, batch=(2,))
    dx = _signal(seed=59, batch=(2, 3))
    S, dS = s.jvp(x, dx)
    flat = torch.cat([c.reshape(2, -1) for c in (_coefs(s(x)) if out_type == "list" else s(x).values())], dim=1)
    assert rel_err(S, flat) < 1e-12 and dS.shape == (2, 3, flat.shape[1])
    F, dF = s.features_jvp(x, dx)
    for p in range(3):
        assert rel_err(dF[:, p], jvp(s.features, (x,), (dx[:, p],))[1]) < 1e-12
    assert rel_err(F, s.features(x)) < 1e-12
