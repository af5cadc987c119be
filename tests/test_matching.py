"""pnp.matching and the landscape / match / chirp-pairs commands, on tiny configurations.

Tiny setting: AM chirp at 2048 Hz for 0.5 s (N = 1024, f_c = 512 Hz), a small JTFS
(J=6, Q=(4,1), J_fr=2, Q_fr=1, F=0, T=256) and a 3-scale MSS (windows 32, 64, 128).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pnp.cli import main
from pnp.matching import (
    bold_driver,
    compute_landscape,
    decimate,
    default_target,
    init_points,
    make_loss,
    make_problem,
)
from pnp.matching.descent import FAR_MIN, NEAR_RANGE
from pnp.pipelines.matching import run_matching

pytestmark = pytest.mark.filterwarnings("ignore:Signal support is too small")

SYNTH_CFG = {"sample_rate": 2048.0, "duration": 0.5}
JTFS_CFG = {"J": 6, "Q": (4, 1), "J_fr": 2, "Q_fr": 1, "T": 256, "F": 0}
MSS_CFG = {"window_sizes": (32, 64, 128)}
CLI_SYNTH = ["--synth-config", "sample_rate=2048", "duration=1"]  # N = 2048
CLI_JTFS = ["--loss-config", "J=6", "Q=[4,1]", "J_fr=2", "Q_fr=1", "T=256", "--decimation", "1"]
CLI_MSS = ["--loss-config", "window_sizes=[32,64,128]"]




def tiny(loss: str, dtype=torch.float64):
    return make_problem(
        "amchirp",
        loss,
        decimation=1 if loss == "jtfs" else None,
        synth_config=SYNTH_CFG,
        loss_config=JTFS_CFG if loss == "jtfs" else MSS_CFG,
        dtype=dtype,
    )


@pytest.fixture(scope="module")
def problems():
    return {"jtfs": tiny("jtfs"), "mss": tiny("mss")}


# ============================================================================ landscape
@pytest.mark.parametrize("loss", ["jtfs", "mss"])
@pytest.mark.parametrize("shift", [0, 64])
def test_landscape_gradient_equals_finite_differences(problems, loss, shift):
    p = problems[loss]
    land = compute_landscape(p, n=3, shift=shift, batch_size=4, progress=False)
    assert land.loss.shape == (3, 3) and land.grad_nu.shape == (3, 3, 2)
    if shift == 0:
        assert land.loss[1, 1] == pytest.approx(0.0, abs=1e-12 * land.loss.max())  # target node
    tgt = p.target_features(land.target)
    h = 1e-5
    for i, j in [(0, 0), (0, 2), (2, 1)]:
        nu = np.array([land.nu_axis[i], land.nu_axis[j]])
        # the loss of the landscape itself at this point
        L0, _ = p.evaluate(nu[None], tgt, shift, grad=False)
        assert L0[0] == pytest.approx(land.loss[i, j], rel=1e-10)
        fd = []
        for k in range(2):
            e = np.zeros(2)
            e[k] = h
            Lp, _ = p.evaluate((nu + e)[None], tgt, shift, grad=False)
            Lm, _ = p.evaluate((nu - e)[None], tgt, shift, grad=False)
            fd.append((Lp[0] - Lm[0]) / (2 * h))
        np.testing.assert_allclose(land.grad_nu[i, j], fd, rtol=2e-5, atol=1e-7 * np.abs(fd).max())
    # gradient in ln(theta) is the chain rule of the one in nu
    np.testing.assert_allclose(land.grad_log, land.grad_nu * p.dnu_dlog)


def test_landscape_random_shift_batching_and_saving(problems, tmp_path):
    p = problems["mss"]
    a = compute_landscape(p, n=3, random_shift=(3, 5), seed=1, batch_size=1, progress=False)
    b = compute_landscape(p, n=3, random_shift=(3, 5), seed=1, batch_size=9, progress=False)
    assert set(np.unique(a.shifts)) <= {8, 16, 32}
    np.testing.assert_array_equal(a.shifts, b.shifts)
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-12)
    np.testing.assert_allclose(a.grad_nu, b.grad_nu, rtol=1e-10, atol=1e-14)
    paths = a.save(str(tmp_path))
    z = np.load(paths["npz"])
    np.testing.assert_array_equal(z["loss"], a.loss)
    assert json.load(open(paths["json"]))["random_shift"] == [3, 5]
    with pytest.raises(ValueError, match="either a constant shift or a random shift"):
        compute_landscape(p, n=3, shift=4, random_shift=(3, 5), progress=False)
    with pytest.raises(ValueError, match="grid size"):
        compute_landscape(p, n=1, progress=False)


def test_float32_mss_gradient_is_finite_with_subnormal_tails():
    """Regression: subnormal chirp tails gave NaN gradients through the MSS's complex abs."""
    p = make_problem("amchirp", "mss")  # float32, paper MSS, N = 2**15
    tgt = p.target_features(default_target(p))
    L, g = p.evaluate(p.nu([[7.432690785206883, 1.4707373107730282]]), tgt, 0)
    assert np.isfinite(L).all() and np.isfinite(g).all() and np.abs(g).min() > 0


def test_default_target_is_the_grid_centre_node():
    p = make_problem("amchirp", "mss")
    np.testing.assert_allclose(default_target(p, 20), [8.2972, 1.4938], atol=1e-4)
    assert p.fixed == {"f_c": 512.0}
    with pytest.raises(ValueError, match="outside the parameter space"):
        p.check_target([20.0, 1.0])


def test_decimation_is_exact():
    s = make_problem("amchirp", "mss", synth_config=SYNTH_CFG).synth
    # decimating a band-limited sound = sampling it at the lower rate
    n, D = 1024, 4
    t = torch.arange(n, dtype=torch.float64)
    x = torch.cos(2 * torch.pi * 7 * t / n) + 0.5 * torch.sin(2 * torch.pi * 60 * t / n)
    y = torch.cos(2 * torch.pi * 7 * t[::D] / n) + 0.5 * torch.sin(2 * torch.pi * 60 * t[::D] / n)
    torch.testing.assert_close(decimate(x[None], D)[0], y, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="decimation"):
        make_loss("jtfs", s, decimation=3)
    # a decimation that would cut the chirp's band is refused
    with pytest.raises(ValueError, match="would drop"):
        make_problem("amchirp", "jtfs", decimation=16)


# ============================================================================ bold driver
def test_bold_driver_never_accepts_a_loss_increase():
    rng = np.random.default_rng(0)
    w = np.array([3.0, 0.5])

    def rough(nu):  # non-convex, with NaN in a corner region
        loss = (w * nu**2).sum(1) + 0.3 * np.sin(9 * nu).sum(1) + 0.01 * rng.standard_normal(len(nu))
        loss = np.where(nu[:, 0] > 0.9, np.nan, loss)
        return loss, 2 * w * nu + 2.7 * np.cos(9 * nu)

    res = bold_driver(rough, rng.uniform(-1, 1, (6, 2)), iters=60, step0=0.5)
    assert np.all(np.diff(res.loss, axis=0) <= 0)
    prev = res.loss[:-1]
    np.testing.assert_array_equal(res.accepted, np.isfinite(res.trial_loss) & (res.trial_loss < prev))
    # the rule: x1.2 on acceptance, /2 otherwise; rejected steps are undone
    np.testing.assert_allclose(res.lr[1:], np.where(res.accepted, 1.2, 0.5) * res.lr[:-1])
    assert np.all(res.nu[1:][~res.accepted] == res.nu[:-1][~res.accepted])
    assert res.accepted.any() and (~res.accepted).any()
    assert np.all(np.abs(res.nu) <= 1.0)


def test_bold_driver_converges_on_a_quadratic():
    c = np.array([0.3, -0.2])
    A = np.array([[4.0, 1.0], [1.0, 0.5]])  # ill-conditioned, correlated

    def quad(nu):
        d = nu - c
        return np.einsum("bi,ij,bj->b", d, A, d), 2 * d @ A

    nu0 = init_points("far", 5, c, seed=3)
    res = bold_driver(quad, nu0, iters=150, target_nu=c)
    assert res.distance.shape == (151, 5)
    assert np.all(res.distance[-1] < 1e-3)
    assert np.all(np.diff(res.loss, axis=0) <= 0)
    # a fixed initial learning rate works too
    assert np.all(bold_driver(quad, nu0, iters=150, lr=10.0, target_nu=c).distance[-1] < 1e-3)
    with pytest.raises(ValueError, match="lr"):
        bold_driver(quad, nu0, iters=1, lr=-1.0)


def test_init_schemes():
    t = np.array([0.05, 0.05])
    far, near, anywhere = (init_points(s, 50, t, seed=0) for s in ("far", "near", "anywhere"))
    assert np.all(np.linalg.norm(far - t, axis=1) >= FAR_MIN)
    d = np.linalg.norm(near - t, axis=1)
    assert np.all((d >= NEAR_RANGE[0] - 1e-12) & (d <= NEAR_RANGE[1] + 1e-12))
    assert np.all(np.abs(anywhere) <= 1)
    np.testing.assert_array_equal(init_points("far", 5, t, seed=2), init_points("far", 5, t, seed=2))
    with pytest.raises(ValueError, match="init scheme"):
        init_points("close", 2, t)
    with pytest.raises(ValueError, match=">= 1"):
        init_points("far", 0, t)


def test_run_matching_records_every_step(problems):
    s = run_matching(problems["mss"], init="near", n_inits=2, iters=4, shifts=(0, 16), progress=False)
    assert s["shifts"] == [0, 16] and set(s["final_distance"]) == {"0", "16"}
    for r in s["runs"]:
        assert len(r["final_distance"]) == 2
        assert np.asarray(r["distance"]).shape == (2, 5) and np.asarray(r["accepted"]).shape == (2, 4)
        assert np.all(np.diff(np.asarray(r["loss"]), axis=1) <= 0)
        np.testing.assert_allclose(np.asarray(r["distance"])[:, -1], r["final_distance"])
    # the same initial points for every shift
    assert s["runs"][0]["initial_theta"] == s["runs"][1]["initial_theta"]


# ============================================================================ CLI
def test_cli_landscape_match_and_chirp_pairs(tmp_path, capsys):
    out = tmp_path / "land"
    assert main(["landscape", "--loss", "jtfs", "--grid", "3", "--shift", "--out", str(out), "--quiet", *CLI_SYNTH, *CLI_JTFS]) == 0
    text = capsys.readouterr().out
    assert "(3x3 = 9 points, with gradients):" in text and " s\n" in text
    z = np.load(out / "landscape.npz")
    assert z["loss"].shape == (3, 3) and np.all(z["shifts"] == 1024)
    assert (out / "landscape.png").stat().st_size > 10_000

    out = tmp_path / "match"
    args = ["match", "--loss", "mss", "--target", "8.49,1.49", "--init", "anywhere", "--n-inits", "2", "--iters", "3"]
    assert main([*args, "--out", str(out), "--quiet", *CLI_SYNTH, *CLI_MSS]) == 0
    s = json.load(open(out / "summary.json"))
    assert len(s["final_distance"]) == 2 and s["target"] == [8.49, 1.49]
    assert len(s["runs"][0]["distance"][0]) == 4
    assert (out / "match.png").stat().st_size > 10_000
    assert main([*args, "--shifts", "4,8", "--out", str(out), "--quiet", *CLI_SYNTH, *CLI_MSS]) == 0
    s = json.load(open(out / "summary.json"))
    assert set(s["final_distance"]) == {"4", "8"} and all(len(v) == 2 for v in s["final_distance"].values())

    out = tmp_path / "pairs"
    assert main(["chirp-pairs", "--n-rates", "3", "--shift", "64", "--out", str(out), "--quiet", *CLI_SYNTH, *CLI_JTFS]) == 0
    r = json.load(open(out / "summary.json"))
    assert set(r["losses"]) == {"mss", "jtfs"} and len(r["gammas"]) == 4  # 3 rates + the reference's
    assert "JTFS: displaced by 64 samples" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["landscape", "--loss", "jtfs", "--synth", "drum"], "--synth must be one of amchirp, arpeggio"),
        (["landscape", "--loss", "cqt"], "--loss must be one of jtfs, mss"),
        (["landscape", "--loss", "mss", "--grid", "1"], "--grid must be an integer >= 2"),
        (["landscape", "--loss", "mss", "--grid", "ten"], "--grid must be an integer >= 2"),
        (["landscape", "--loss", "mss", "--target", "8.49"], "--target must be 2 comma-separated numbers"),
        (["landscape", "--loss", "mss", "--target", "8.49,x"], "--target must be 2 comma-separated numbers"),
        (["landscape", "--loss", "mss", "--target", "20,1.49"], "--target: f_m = 20 is outside the parameter space [4, 16]"),
        (["landscape", "--loss", "mss", "--shift", "8", "--random-shift", "8:12"], "mutually exclusive"),
        (["landscape", "--loss", "mss", "--shift=-4"], "--shift must be an integer in [0, 2047]"),
        (["landscape", "--loss", "mss", "--shift", "2048"], "--shift must be an integer in [0, 2047]"),
        (["landscape", "--loss", "mss", "--random-shift", "12"], "--random-shift must look like A:B"),
        (["landscape", "--loss", "mss", "--random-shift", "8:12"], "--random-shift A:B needs 0 <= A <= B <= 10"),
        (["landscape", "--loss", "jtfs", "--preset", "huge"], "--preset must be one of fast, paper"),
        (["landscape", "--loss", "jtfs", "--decimation", "3"], "--decimation must be a power of two"),
        (["match", "--loss", "mss", "--n-inits", "0"], "--n-inits must be an integer >= 1"),
        (["match", "--loss", "mss", "--iters", "0"], "--iters must be an integer >= 1"),
        (["match", "--loss", "mss", "--init", "close"], "--init must be one of far, near, anywhere"),
        (["match", "--loss", "mss", "--shift", "8", "--shifts", "4,8"], "mutually exclusive"),
        (["match", "--loss", "mss", "--shifts", "4,-8"], "--shifts must be an integer in [0, 2047]"),
        (["match", "--loss", "mss", "--lr", "0"], "--lr must be a finite number > 0"),
        (["chirp-pairs", "--n-rates", "1"], "--n-rates must be an integer >= 2"),
        (["chirp-pairs", "--reference", "8,9", "--shift", "64"], "--reference: gamma = 9 is outside"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, argv, message):
    assert main([*argv, "--out", str(tmp_path / "o"), "--quiet", *CLI_SYNTH]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
