"""Parameter spaces: bounds, scales, (de)normalisation, sampling, splits, validation, provenance."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from pnp.synth import TEST, TRAIN, VAL, Parameter, ParameterSpace, Split, pnp_split, random_split
from pnp.synth.ftm import ftm_space


@pytest.fixture
def space() -> ParameterSpace:
    return ParameterSpace(
        [
            Parameter("freq", 100.0, 10000.0, "log", "Hz", "a frequency"),
            Parameter("decay", 0.1, 0.9, "linear", "s"),
            Parameter("ratio", 0.0, 1.0),
        ],
        name="toy",
    )


# ----------------------------------------------------------------------------- constructor
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="a", lo=1.0, hi=1.0), "lower bound 1.0 must be < upper bound 1.0"),
        (dict(name="a", lo=2.0, hi=1.0), "must be <"),
        (dict(name="a", lo=0.0, hi=1.0, scale="log"), "log-scaled parameter needs lower bound > 0"),
        (dict(name="a", lo=-1.0, hi=1.0, scale="log"), "lower bound > 0"),
        (dict(name="a", lo=0.0, hi=1.0, scale="mel"), "unknown scale 'mel'"),
        (dict(name="a", lo=float("nan"), hi=1.0), "must be finite"),
        (dict(name="a", lo=0.0, hi="x"), "must be a number"),
        (dict(name="", lo=0.0, hi=1.0), "non-empty"),
    ],
)
def test_bad_parameter_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Parameter(**kwargs)


def test_bad_space_raises():
    with pytest.raises(ValueError, match="duplicate"):
        ParameterSpace([Parameter("a", 0, 1), Parameter("a", 0, 2)])
    with pytest.raises(ValueError, match="at least one"):
        ParameterSpace([])
    with pytest.raises(ValueError, match="unknown scale"):
        ParameterSpace([{"name": "a", "lo": 0, "hi": 1, "scale": "exp"}])


# --------------------------------------------------------------------------- normalisation
def test_normalize_bounds_and_log_midpoint(space):
    theta = torch.tensor([[100.0, 0.1, 0.0], [10000.0, 0.9, 1.0], [1000.0, 0.5, 0.25]], dtype=torch.float64)
    nu = space.normalize(theta)
    expected = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], [0.0, 0.0, -0.5]], dtype=torch.float64)
    torch.testing.assert_close(nu, expected, atol=1e-14, rtol=0)


def test_normalize_round_trip_torch_numpy(space):
    s = space.uniform(500, seed=3)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 2e-5)):
        theta = torch.as_tensor(s.theta, dtype=dtype)
        nu = space.normalize(theta)
        assert nu.dtype == dtype and nu.shape == (500, 3)
        assert float(nu.abs().max()) <= 1.0 + 1e-6
        back = space.denormalize(nu)
        rel = ((back - theta).abs() / theta.abs().clamp(min=1e-3)).max()
        assert float(rel) < tol
    nu_np = space.normalize(s.theta)
    assert isinstance(nu_np, np.ndarray) and nu_np.dtype == np.float64
    np.testing.assert_allclose(space.denormalize(nu_np), s.theta, rtol=1e-12, atol=1e-14)
    # denormalize(normalize) also holds the other way round, for any ν
    nu = torch.linspace(-1, 1, 7, dtype=torch.float64)[:, None].repeat(1, 3)
    torch.testing.assert_close(space.normalize(space.denormalize(nu)), nu, atol=1e-13, rtol=0)


def test_normalize_is_differentiable_and_vmap_safe(space):
    theta = torch.tensor([300.0, 0.4, 0.7], dtype=torch.float64, requires_grad=True)
    J = torch.func.jacfwd(space.normalize)(theta)
    Jr = torch.func.jacrev(space.normalize)(theta)
    expected = torch.diag(
        torch.tensor([2 / (300.0 * math.log(10) * 2.0), 2 / 0.8, 2.0], dtype=torch.float64)
    )
    torch.testing.assert_close(J, expected, atol=1e-14, rtol=1e-12)
    torch.testing.assert_close(Jr, expected, atol=1e-14, rtol=1e-12)
    batch = torch.tensor([[300.0, 0.4, 0.7], [5000.0, 0.2, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(torch.func.vmap(space.normalize)(batch), space.normalize(batch))
    # the Jacobian of denormalize is the inverse of normalize's
    Jd = torch.func.jacfwd(space.denormalize)(space.normalize(theta.detach()))
    torch.testing.assert_close(Jd @ J, torch.eye(3, dtype=torch.float64), atol=1e-12, rtol=0)
    assert torch.autograd.gradcheck(space.normalize, (theta,))


def test_normalize_shape_error(space):
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3\)"):
        space.normalize(torch.zeros(4, 2))


# ------------------------------------------------------------------------------ validation
def test_validate_out_of_bounds_message(space):
    with pytest.raises(ValueError) as err:
        space.validate(np.array([[200.0, 0.5, 0.5], [200.0, 0.95, 0.5]]))
    msg = str(err.value)
    assert "'decay'" in msg and "0.95" in msg and "[0.1, 0.9] s" in msg and "row 1" in msg
    with pytest.raises(ValueError, match=r"'freq' \(index 0\) = 50 is outside its bounds \[100, 10000\] Hz"):
        space.validate(torch.tensor([50.0, 0.5, 0.5]))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_validate_non_finite(space, bad):
    with pytest.raises(ValueError, match=r"'ratio' \(index 2\) = .* is not finite.*bounds \[0, 1\]"):
        space.validate(torch.tensor([[200.0, 0.5, bad]]))


@pytest.mark.parametrize("shape", [(3, 2), (2,), (4,), (2, 3, 3), ()])
def test_validate_bad_shape(space, shape):
    with pytest.raises(ValueError, match=r"shape \(3,\) or \(B, 3\).*freq, decay, ratio"):
        space.validate(np.zeros(shape))


def test_validate_tolerance_at_bounds(space):
    # a few ulps beyond the bounds are accepted, a real excess is not
    space.validate(np.array([100.0 * (1 - 4e-16), 0.9 * (1 + 4e-16), 1.0 + 1e-15]))
    with pytest.raises(ValueError):
        space.validate(np.array([100.0, 0.9 * (1 + 1e-9), 0.5]))
    # float32 round-off of the bounds (e.g. via denormalize(±1)) is accepted
    nu = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]], dtype=torch.float32)
    space.validate(space.denormalize(nu))
    space.validate(torch.tensor(space.hi, dtype=torch.float32))
    ftm = ftm_space()
    ftm.validate(torch.tensor(np.stack([ftm.lo, ftm.hi]), dtype=torch.float32))


def test_contains(space):
    ok = space.contains(np.array([[200.0, 0.5, 0.5], [200.0, 0.5, 1.5], [np.nan, 0.5, 0.5]]))
    assert ok.tolist() == [True, False, False]


# --------------------------------------------------------------------------------- display
def test_describe_and_dict_round_trip(space):
    text = space.describe()
    for token in ("freq", "decay", "ratio", "Hz", "log", "linear", "100", "10000", "0.9"):
        assert token in text
    assert len(text.splitlines()) == 3 + 3
    d = json.loads(json.dumps(space.to_dict()))
    again = ParameterSpace.from_dict(d)
    assert again == space and again.names == ("freq", "decay", "ratio")
    assert again[0].scale == "log" and again["decay"].unit == "s"
    with pytest.raises(ValueError):
        ParameterSpace.from_dict({"nope": 1})


# ---------------------------------------------------------------------------------- grids
def test_regular_grid(space):
    g = space.grid([5, 3, 2])
    assert g.theta.shape == (30, 3) and g.bins.shape == (30, 3)
    assert g.theta.dtype == np.float64 and g.bins.dtype == np.int32
    freqs = np.unique(g.theta[:, 0])
    np.testing.assert_allclose(freqs, [100, 10**2.5, 1000, 10**3.5, 10000], rtol=1e-12)
    np.testing.assert_allclose(np.unique(g.theta[:, 1]), [0.1, 0.5, 0.9], rtol=1e-12)
    # first parameter slowest; bins are the grid indices
    assert g.bins[:6].tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1], [0, 2, 0], [0, 2, 1]]
    np.testing.assert_allclose(g.theta[g.bins[:, 0] == 3, 0], 10**3.5)
    c = space.grid(4, centers=True)
    np.testing.assert_allclose(np.unique(c.theta[:, 2]), [0.125, 0.375, 0.625, 0.875])
    np.testing.assert_allclose(np.unique(c.theta[:, 0]), 10 ** (2 + 0.5 * (np.arange(4) + 0.5)), rtol=1e-12)
    with pytest.raises(ValueError, match="counts must have 3 entries"):
        space.grid([2, 2])
    with pytest.raises(ValueError, match="integer >= 1"):
        space.grid([2, 0, 2])


def test_jittered_grid_reproducible_and_inside_bins(space):
    counts = (10, 4, 6)
    a = space.jittered_grid(counts, seed=7)
    b = space.jittered_grid(counts, seed=7)
    c = space.jittered_grid(counts, seed=8)
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.bins, b.bins)
    assert not np.allclose(a.theta, c.theta)
    assert len(a) == 240 and a.counts == counts
    # every cell exactly once
    assert len({tuple(r) for r in a.bins.tolist()}) == 240
    # every value inside its bin, in the parameter's scale
    z = space.to_scale(a.theta)
    lo = np.array([2.0, 0.1, 0.0])
    width = (np.array([4.0, 0.9, 1.0]) - lo) / np.array(counts)
    edges_lo = lo + a.bins * width
    assert np.all(z >= edges_lo - 1e-12) and np.all(z <= edges_lo + width + 1e-12)
    # and the bins agree with bin_index
    np.testing.assert_array_equal(space.bin_index(a.theta, counts), a.bins)
    space.validate(a.theta)
    # jitter is uniform inside the bins: fractional positions fill [0, 1)
    frac = (z - edges_lo) / width
    assert 0.4 < frac.mean() < 0.6 and frac.min() < 0.05 and frac.max() > 0.95


def test_uniform_sampling(space):
    a = space.uniform(4000, seed=1, counts=5)
    np.testing.assert_array_equal(a.theta, space.uniform(4000, seed=1, counts=5).theta)
    space.validate(a.theta)
    z = space.to_scale(a.theta)
    # uniform in scale space: log10(freq) has mean 3 and std 2/sqrt(12)
    assert abs(z[:, 0].mean() - 3.0) < 0.05 and abs(z[:, 0].std() - 2 / math.sqrt(12)) < 0.03
    np.testing.assert_array_equal(a.bins, space.bin_index(a.theta, 5))
    assert a.bins.min() == 0 and a.bins.max() == 4 and a.bins.dtype == np.int32
    expected = np.floor((z[:, 1] - 0.1) / 0.8 * 5).astype(int)
    np.testing.assert_array_equal(a.bins[:, 1], expected)
    # the upper bound belongs to the last bin
    assert space.bin_index(np.array([[10000.0, 0.9, 1.0]]), 5).tolist() == [[4, 4, 4]]


# ---------------------------------------------------------------------------------- splits
def test_pnp_split_on_full_ftm_grid():
    space = ftm_space()
    s = space.jittered_grid(10, seed=0)
    assert len(s) == 10**5
    codes = pnp_split(s, n_test=10_000, val_bins=(2, 7), seed=0)
    assert codes.dtype == np.int8 and codes.shape == (10**5,)
    assert (codes == VAL).sum() == 6**5
    assert (codes == TEST).sum() == 10_000
    assert (codes == TRAIN).sum() == 10**5 - 6**5 - 10_000
    central = np.all((s.bins >= 2) & (s.bins <= 7), axis=1)
    np.testing.assert_array_equal(codes == VAL, central)
    np.testing.assert_array_equal(codes, pnp_split(s.bins, 10_000, (2, 7), seed=0))
    assert not np.array_equal(codes, pnp_split(s.bins, 10_000, (2, 7), seed=1))
    assert int(Split.TEST) == 2 and Split(1).name == "VAL"


def test_pnp_split_per_parameter_bins_and_errors(space):
    s = space.jittered_grid(10, seed=0)
    codes = pnp_split(s, n_test=50, val_bins=[(2, 7), (0, 9), (4, 5)])
    assert (codes == VAL).sum() == 6 * 10 * 2 and (codes == TEST).sum() == 50
    with pytest.raises(ValueError, match="n_test"):
        pnp_split(s, n_test=10**3)
    with pytest.raises(ValueError, match="val_bins"):
        pnp_split(s, n_test=1, val_bins=(7, 2))


def test_random_split():
    codes = random_split(1000, (0.7, 0.2, 0.1), seed=4)
    assert codes.dtype == np.int8
    assert np.bincount(codes, minlength=3).tolist() == [700, 200, 100]
    np.testing.assert_array_equal(codes, random_split(1000, (0.7, 0.2, 0.1), seed=4))
    assert not np.array_equal(codes, random_split(1000, (0.7, 0.2, 0.1), seed=5))
    with pytest.raises(ValueError, match="sum"):
        random_split(10, (0.5, 0.2, 0.2))
