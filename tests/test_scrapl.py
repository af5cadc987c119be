"""SCRAPL's random-path JTFS loss (pnp.loss.RandomPathJTFS) and its path-wise optimisers
(pnp.training.PathwiseSGD), against the scrapl-loss package (``SCRAPLLoss``, through its bundled
kymatio 0.4) and against pnp's own full JTFS.

The package runs in a child process: it imports ``kymatio``, which must resolve to its bundled
kymatio 0.4 while this process holds kymatio 0.3 (pnp's filter-design dependency), so the child
puts ``scrapl/kymatio`` first on ``sys.path`` (as tests/test_kymatio_compat.py does).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from _peer import BUNDLED_KYMATIO

from pnp.loss.scrapl import RandomPathJTFS, check_probabilities
from pnp.training.pathwise import PathwiseSGD

SKIP_REASON = "scrapl-loss (dev extra) is not installed: the SCRAPL package is not available"
HAVE_SCRAPL = importlib.util.find_spec("scrapl") is not None

#: small JTFS configurations (N = 2048; 28 and 99 paths): T='global' (the package does not unpad its paths in
#: time, kymatio's full transform does: with T local the two differ in the padding, see
#: docs/training.md); local F with log1p and p=2, the default F with p=1
CONFIGS = {
    "log1p-p2": dict(shape=2048, J=6, Q1=8, Q2=1, J_fr=2, Q_fr=1, T="global", F=2, p=2, use_rho_log1p=True),
    "linear-p1": dict(shape=2048, J=6, Q1=6, Q2=2, J_fr=2, Q_fr=2, T="global", F=None, p=1, use_rho_log1p=False),
}

PEER = BUNDLED_KYMATIO + r"""
logging.disable(logging.INFO)
import torch
torch.set_num_threads(1)
from scrapl import SCRAPLLoss
job = json.loads(open(sys.argv[1]).read())
data = np.load(sys.argv[2])
out = {}
for name, cfg in job["configs"].items():
    loss = SCRAPLLoss(**cfg, use_p_adam=False, use_p_saga=False, grad_mult=1.0)
    loss.jtfs.double()  # kymatio's filters in float64, for a float64 reference
    out[f"{name}/keys"] = np.array(loss.scrapl_keys)
    x = torch.from_numpy(data["x"]).unsqueeze(1)
    y = torch.from_numpy(data["y"]).unsqueeze(1)
    for k in range(loss.n_paths):
        xk = x.clone().requires_grad_()
        d = loss.calc_dist(xk, y, k)[0]
        out[f"{name}/dist/{k}"] = d.detach().numpy()
        out[f"{name}/grad/{k}"] = torch.autograd.grad(d, xk)[0][:, 0].numpy()
    out[f"{name}/seeded"] = np.array([loss.sample_path(s) for s in range(job["seeds"])])
    torch.save(torch.from_numpy(data["probs_" + name]), sys.argv[3] + ".probs.pt")
    loss.load_probs(sys.argv[3] + ".probs.pt")
    out[f"{name}/seeded_probs"] = np.array([loss.sample_path(s) for s in range(job["seeds"])])

# the path-wise optimisers on a scripted sequence of (path, gradients)
for variant, (p_adam, p_saga) in job["variants"].items():
    loss = SCRAPLLoss(**job["configs"]["log1p-p2"] | {"use_rho_log1p": False}, use_p_adam=p_adam, use_p_saga=p_saga,
                      grad_mult=job["grad_mult"])
    w1 = torch.nn.Parameter(torch.from_numpy(data["w1"]).clone())
    w2 = torch.nn.Parameter(torch.from_numpy(data["w2"]).clone())
    loss.attach_params([w1, w2])
    opt = torch.optim.SGD([w1, w2], lr=job["lr"], momentum=0.0, weight_decay=job["weight_decay"])
    x0 = torch.from_numpy(data["x"][:1]).float().unsqueeze(1)
    loss.train()
    for step, k in enumerate(job["script"]):
        opt.zero_grad()
        value = loss(x0, x0, path_idx=int(k))
        total = value * 0 + (w1 * torch.from_numpy(data["g1"][step])).sum() + (w2 * torch.from_numpy(data["g2"][step])).sum()
        total.backward()
        out[f"{variant}/grad1/{step}"], out[f"{variant}/grad2/{step}"] = w1.grad.numpy().copy(), w2.grad.numpy().copy()
        opt.step()
        out[f"{variant}/w1/{step}"], out[f"{variant}/w2/{step}"] = w1.detach().numpy().copy(), w2.detach().numpy().copy()
    for i in (0, 1):
        if p_adam:
            out[f"{variant}/m/{i}"], out[f"{variant}/v/{i}"] = loss.p_adam_m[i].numpy(), loss.p_adam_v[i].numpy()
            out[f"{variant}/t/{i}"] = np.array([loss.p_adam_t[i][k] for k in range(loss.n_paths)])
        if p_saga:
            out[f"{variant}/memory/{i}"] = loss.prev_path_grads[i].numpy()
np.savez(sys.argv[3], **out)
"""
#: the path-wise variants (p_adam, p_saga) and a scripted sequence of paths (repeats, revisits)
VARIANTS = {"p-adam-saga": (True, True), "p-adam": (True, False), "p-saga": (False, True)}
SCRIPT = [3, 7, 3, 0, 27, 7, 7, 12, 3, 0, 5, 27]
LR, WEIGHT_DECAY, GRAD_MULT, SEEDS = 0.05, 0.01, 1e3, 20


def _ours(name: str, **kw) -> RandomPathJTFS:
    c = {**CONFIGS[name], **kw}
    return RandomPathJTFS(J=c.pop("J"), J_fr=c.pop("J_fr"), Q=(c.pop("Q1"), c.pop("Q2")), **c)


def _data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(2048) / 2048
    chirp = np.sin(2 * np.pi * (40 * t + 200 * t**2)) * (1 + 0.5 * np.sin(2 * np.pi * 6 * t))
    noise = rng.standard_normal((4, 2048))
    x = np.stack([chirp + 0.1 * noise[0], noise[1], 0.5 * chirp + 0.3 * noise[2]])
    y = np.stack([np.roll(chirp, 64) + 0.1 * noise[3], rng.standard_normal(2048), chirp + 0.1 * noise[0]])
    out = {"x": x, "y": y, "w1": rng.standard_normal((3, 4)).astype(np.float32),
           "w2": rng.standard_normal(5).astype(np.float32),
           "g1": rng.standard_normal((len(SCRIPT), 3, 4)).astype(np.float32) * 1e-4,
           "g2": rng.standard_normal((len(SCRIPT), 5)).astype(np.float32) * 1e-4}
    for name in CONFIGS:
        n = _ours(name).n_paths
        p = rng.uniform(0.1, 1.0, n)
        out["probs_" + name] = p / p.sum()
    return out


@pytest.fixture(scope="module")
def peer(tmp_path_factory):
    """SCRAPLLoss's numbers for :data:`CONFIGS` and the scripted optimiser steps (child process)."""
    if not HAVE_SCRAPL:
        pytest.skip(SKIP_REASON)
    tmp = tmp_path_factory.mktemp("scrapl")
    data = _data()
    np.savez(tmp / "data.npz", **data)
    job = {"configs": CONFIGS, "variants": VARIANTS, "script": SCRIPT, "lr": LR, "weight_decay": WEIGHT_DECAY,
           "grad_mult": GRAD_MULT, "seeds": SEEDS}
    (tmp / "job.json").write_text(json.dumps(job))
    subprocess.run([sys.executable, "-c", PEER, str(tmp / "job.json"), str(tmp / "data.npz"), str(tmp / "out.npz")],
                   check=True, timeout=300)
    with np.load(tmp / "out.npz") as d:
        return data, {k: d[k] for k in d.files}


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("name", CONFIGS)
def test_paths_are_the_packages_in_its_order(peer, name):
    """Path k is the key (n2, n_fr) at position k of SCRAPLLoss.scrapl_keys (kymatio 0.4's sorted
    second-order keys, format 'joint')."""
    _, ref = peer
    ours = _ours(name)
    assert ours.keys == [tuple(int(v) for v in k) for k in ref[f"{name}/keys"]]
    assert [ours.path_index(k) for k in ours.keys] == list(range(ours.n_paths))


@pytest.mark.parametrize("name", CONFIGS)
def test_path_distance_and_gradient_equal_the_packages(peer, name):
    """For every path k and the same signals: SCRAPLLoss.calc_dist(x, y, k) and its gradient in x
    (float64, kymatio 0.4's filters) equal pnp's exact plan (eps=0) within 1e-4 relative (measured
    <= 1.1e-6 for the distance, 3.9e-6 for the gradient). With pnp's default eps (filter taps
    below 1e-5 of the peak skipped) log1p magnifies the change on the nearly empty padded rows:
    measured <= 2e-4 (distance) and 1.2e-3 (gradient), bounded here by 1e-3 and 1e-2.

    The signals are chirps plus noise: on a noise-free band-limited chirp some wavelet outputs
    are numerically zero, where the modulus has no derivative (|d|z|/dz| = 1 at any z != 0) and
    the two implementations' gradients, as finite differences, depend on round-off."""
    data, ref = peer
    x, y = torch.from_numpy(data["x"]), torch.from_numpy(data["y"])
    worst = {}
    for label, ours in (("exact", _ours(name, eps=0)), ("default eps", _ours(name))):
        errs = [0.0, 0.0]
        for k in range(ours.n_paths):
            xk = x.clone().requires_grad_()
            d = ours.distance(xk, y, k)
            (g,) = torch.autograd.grad(d, xk)
            errs = [max(errs[0], abs(d.item() - float(ref[f"{name}/dist/{k}"])) / abs(float(ref[f"{name}/dist/{k}"]))),
                    max(errs[1], _rel(g.numpy(), ref[f"{name}/grad/{k}"]))]
        worst[label] = errs
    assert max(worst["exact"]) <= 1e-4, worst
    assert worst["default eps"][0] <= 1e-3 and worst["default eps"][1] <= 1e-2, worst
    print(f"{name}: worst relative error (distance, gradient): {worst}")


@pytest.mark.parametrize("name", CONFIGS)
def test_seeded_sampling_draws_the_packages_paths(peer, name):
    """sample_path(seed) draws the package's path for the same seed, uniform and with given
    probabilities (the same torch.multinomial on a seeded CPU generator)."""
    data, ref = peer
    ours = _ours(name)
    assert [ours.sample_path(seed=s) for s in range(SEEDS)] == ref[f"{name}/seeded"].tolist()
    ours.set_probabilities(data["probs_" + name])
    assert [ours.sample_path(seed=s) for s in range(SEEDS)] == ref[f"{name}/seeded_probs"].tolist()


@pytest.mark.parametrize("variant", VARIANTS)
def test_pathwise_optimisers_equal_the_packages_on_a_scripted_run(peer, variant):
    """𝒫-Adam / 𝒫-SAGA / both, on the same scripted (path, gradient) sequence (revisits and
    repeats; grad_mult 1e3, SGD with weight decay): after every step the processed gradients and
    the weights equal the package's (hooks + SGD) within float32 round-off, and so do the final
    states: per-path moments m, v and clocks t, and SAGA's gradient memory."""
    data, ref = peer
    ours = _ours("log1p-p2", use_rho_log1p=False, grad_mult=GRAD_MULT)
    w1, w2 = (torch.nn.Parameter(torch.from_numpy(data[n]).clone()) for n in ("w1", "w2"))
    p_adam, p_saga = VARIANTS[variant]
    opt = PathwiseSGD([w1, w2], ours, lr=LR, p_adam=p_adam, p_saga=p_saga, weight_decay=WEIGHT_DECAY)
    x0 = torch.from_numpy(data["x"][:1]).float()
    for step, k in enumerate(SCRIPT):
        opt.zero_grad()
        value = ours(x0, x0, path=k)
        total = value * 0 + (w1 * torch.from_numpy(data["g1"][step])).sum() + (w2 * torch.from_numpy(data["g2"][step])).sum()
        total.backward()
        opt.step()
        for i, w in ((1, w1), (2, w2)):
            np.testing.assert_allclose(w.grad.numpy(), ref[f"{variant}/grad{i}/{step}"], rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(w.detach().numpy(), ref[f"{variant}/w{i}/{step}"], rtol=1e-5, atol=1e-7)
    for i, w in ((0, w1), (1, w2)):
        state = opt.state[w]
        if p_adam:
            np.testing.assert_allclose(state["m"].numpy(), ref[f"{variant}/m/{i}"], rtol=1e-5, atol=1e-9)
            np.testing.assert_allclose(state["v"].numpy(), ref[f"{variant}/v/{i}"], rtol=1e-5, atol=1e-12)
            assert state["t"].numpy().tolist() == ref[f"{variant}/t/{i}"].tolist()
        if p_saga:
            np.testing.assert_allclose(state["memory"].numpy(), ref[f"{variant}/memory/{i}"], rtol=1e-5, atol=1e-7)


#: a tiny encoder (x -> θ̂ (B, 2) from two signal statistics) and synth (θ̂ -> a sine of amplitude θ̂0
#: and frequency 100 + 300 θ̂1 Hz at 2048 Hz, plus a fixed tone), defined once for both processes
MODEL = r"""
import math
def make_model(torch, N):
    A = torch.nn.Parameter(torch.tensor([[0.5, -0.3], [0.2, 0.8]]))
    b = torch.nn.Parameter(torch.tensor([0.1, -0.2]))
    t = torch.arange(N) / 2048.0
    def theta_fn(x):
        x = x.reshape(x.shape[0], -1)
        return torch.sigmoid(torch.stack([x.abs().mean(-1), x.square().mean(-1).sqrt()], -1) @ A.T + b)
    def synth(theta):
        f = 100 + 300 * theta[:, 1:2]
        return theta[:, 0:1] * torch.sin(2 * math.pi * f * t) + 0.05 * torch.sin(2 * math.pi * 37 * t)
    return [A, b], theta_fn, synth
"""
THETA_IS_PEER = BUNDLED_KYMATIO + r"""
logging.disable(logging.INFO)
import torch
torch.set_num_threads(1)
from scrapl import SCRAPLLoss
job = json.loads(open(sys.argv[1]).read())
exec(job["model"])
params, theta_fn, synth = make_model(torch, 2048)
loss = SCRAPLLoss(**job["config"], n_theta=2, min_prob_frac=job["min_prob_frac"])
x = torch.from_numpy(np.load(sys.argv[2])).float().unsqueeze(1)
torch.manual_seed(job["seed"])
loss.warmup_lc_hvp(theta_fn=theta_fn, synth_fn=lambda th: synth(th).unsqueeze(1), theta_fn_kwargs=[{"x": x}],
                   params=params, save_dir=None, n_iter=20)
np.savez(sys.argv[3], probs=loss.probs.numpy(), curvatures=loss.all_log_vals.exp().numpy().T)
"""


@pytest.fixture(scope="module")
def theta_is_peer(tmp_path_factory):
    """SCRAPLLoss.warmup_lc_hvp's curvatures and probabilities (θ-IS) for the tiny model (child)."""
    if not HAVE_SCRAPL:
        pytest.skip(SKIP_REASON)
    tmp = tmp_path_factory.mktemp("theta_is")
    ns: dict = {}
    exec(MODEL, ns)
    _, _, synth = ns["make_model"](torch, 2048)
    g = torch.Generator().manual_seed(5)
    x = (synth(torch.tensor([[0.7, 0.3], [0.4, 0.6], [0.9, 0.1]])) + 0.01 * torch.randn(3, 2048, generator=g)).detach()
    np.save(tmp / "x.npy", x.numpy())
    job = {"model": MODEL, "config": CONFIGS["log1p-p2"], "min_prob_frac": 0.0, "seed": 7}
    (tmp / "job.json").write_text(json.dumps(job))
    subprocess.run([sys.executable, "-c", THETA_IS_PEER, str(tmp / "job.json"), str(tmp / "x.npy"), str(tmp / "out.npz")],
                   check=True, timeout=300, stdout=subprocess.DEVNULL)  # its progress bars
    with np.load(tmp / "out.npz") as d:
        return x, job, d["curvatures"], d["probs"]


def test_theta_is_equals_the_packages_warmup(theta_is_peer):
    """θ-IS on the same encoder, synth, batch and power-iteration starts (the same seed): pnp's
    curvatures (pnp.loss.theta_is.path_curvatures, on pnp's single-path JTFS) equal
    SCRAPLLoss.warmup_lc_hvp's, and the probabilities follow its rule: from the package's own
    curvatures exactly, from pnp's within the curvatures' agreement. (min_prob_frac = 0, the
    package's default: with min_prob_frac > 0 its warmup stops on its own check, the
    probabilities summing to 1.1 after the second path, so the floor is tested on its own
    below.)"""
    from pnp.loss.theta_is import path_curvatures, probabilities

    x, job, ref_curv, ref_probs = theta_is_peer
    ns: dict = {}
    exec(MODEL, ns)
    params, theta_fn, synth = ns["make_model"](torch, 2048)
    d = _ours("log1p-p2", eps=0)
    curv = path_curvatures(theta_fn, synth, d, x, params, generator=torch.Generator().manual_seed(job["seed"]))
    np.testing.assert_allclose(probabilities(ref_curv, job["min_prob_frac"]), ref_probs, rtol=1e-6)
    worst = float(np.max(np.abs(curv - ref_curv) / ref_curv))
    print(f"θ-IS: worst relative curvature difference {worst:.2e}")
    assert worst < 2e-2  # measured 6.3e-3: float32 Hessian-vector products of two JTFS implementations
    np.testing.assert_allclose(probabilities(curv, job["min_prob_frac"]), ref_probs, rtol=2e-2)


def test_theta_is_probabilities_rule():
    """Per parameter the curvatures normalised over the paths, scaled by 1 - min_prob_frac plus
    the floor min_prob_frac / P, averaged over the parameters: sums to 1, floor respected,
    proportional to the curvatures for one parameter; zero curvatures are clamped to eps."""
    from pnp.loss.theta_is import probabilities

    c = np.array([[1.0, 4.0], [3.0, 0.0], [4.0, 4.0]])
    p = probabilities(c, min_prob_frac=0.3)
    floor = 0.3 / 3
    expected = ((1 - 0.3) * np.stack([c[:, 0] / 8, np.maximum(c[:, 1], 1e-12) / (8 + 1e-12)], 1) + floor).mean(1)
    np.testing.assert_allclose(p, expected, rtol=1e-12)
    assert p.sum() == pytest.approx(1.0) and p.min() >= floor
    np.testing.assert_allclose(probabilities(c[:, :1]), c[:, 0] / 8, rtol=1e-12)
    with pytest.raises(ValueError, match=r"min_prob_frac must be in \[0, 1\), got 1"):
        probabilities(c, min_prob_frac=1)
    with pytest.raises(ValueError, match="curvatures must be finite and >= 0"):
        probabilities(-c)


# ------------------------------------------------------------------ pnp-internal checks (no package)
def test_uniform_expectation_of_the_path_gradient_is_the_full_jtfs_gradient():
    """Averaging the per-path gradients over all paths (the expectation under uniform sampling)
    gives the gradient of the full path-averaged JTFS distance computed from pnp's full transform
    (every path at once), to float64 round-off: the sub-plans are the full plan's paths."""
    torch.manual_seed(0)
    for name in CONFIGS:
        d = _ours(name, eps=0)
        x = torch.randn(2, 2048, dtype=torch.float64, requires_grad=True)
        y = torch.randn(2, 2048, dtype=torch.float64)
        mean = sum(torch.autograd.grad(d.distance(x, y, k), x)[0] for k in range(d.n_paths)) / d.n_paths
        (full,) = torch.autograd.grad(d.expected_distance(x, y), x)
        assert _rel(mean.numpy(), full.numpy()) < 1e-12
        with torch.no_grad():
            values = torch.stack([d.distance(x, y, k) for k in range(d.n_paths)])
            full_value = d.expected_distance(x, y)
        assert abs(float(values.mean() - full_value)) < 1e-12 * float(values.mean())


def test_paths_equal_the_full_transform_with_local_time_averaging():
    """With T local (time averaging, unpadding) and F local, each path's coefficients equal the
    full transform's joint-array rows of that key (float64, default eps)."""
    d = RandomPathJTFS(J=6, J_fr=3, Q=(8, 2), shape=2048, T=256, Q_fr=2, F=4)
    x = torch.randn(2, 2048, dtype=torch.float64)
    S = d.jtfs(x)
    keys = [tuple(int(v) for v in k) for k in d.jtfs.meta()["key"]]
    for k in range(0, d.n_paths, 7):
        assert _rel(d.coefficients(x, k).numpy(), S[:, keys.index(d.keys[k])].numpy()) < 1e-13


def test_assigned_and_validation_paths():
    """assigned_distance averages each sound's own path distance; validation_paths are fixed by
    the store index (seeded draws) and follow the sampling probabilities."""
    d = _ours("log1p-p2")
    x, y = torch.randn(4, 2048), torch.randn(4, 2048)
    paths = [5, 2, 5, 9]
    each = [float(d.path_distances(x[i : i + 1], y[i : i + 1], k)[0]) for i, k in enumerate(paths)]
    assert float(d.assigned_distance(x, y, paths)) == pytest.approx(np.mean(each), rel=1e-6)
    assert d.validation_paths([3, 11, 3]) == [d.sample_path(seed=3), d.sample_path(seed=11), d.sample_path(seed=3)]
    probs = np.zeros(d.n_paths)
    probs[[4, 6]] = 0.5
    d.set_probabilities(probs)
    assert set(d.validation_paths(range(40))) == {4, 6}


def test_pathwise_state_resumes_bit_identically():
    """Training steps k+1.. after load_state_dict(state_dict()) at step k give the weights of an
    uninterrupted run (the state — moments, clocks, SAGA memory, step count, paths seen — is the
    optimiser's, so a checkpoint holds it)."""
    d = _ours("log1p-p2")

    def run(n, resume_at=None):
        torch.manual_seed(1)
        w = torch.nn.Parameter(torch.randn(6))
        opt = PathwiseSGD([w], d, lr=0.1)
        g = torch.Generator().manual_seed(2)
        for step in range(n):
            if step == resume_at:
                saved = opt.state_dict()
                w2 = torch.nn.Parameter(w.detach().clone())
                opt = PathwiseSGD([w2], d, lr=0.1)
                opt.load_state_dict(saved)
                w = w2
            d.last_path = int(torch.randint(0, d.n_paths, (1,), generator=g))
            w.grad = torch.randn(6, generator=g)
            opt.step()
        return w.detach()

    assert torch.equal(run(15), run(15, resume_at=7))


@pytest.mark.parametrize("make, message", [
    (lambda: RandomPathJTFS(J=6, J_fr=2, Q=(8, 1), shape=2048, F="global"), "format='joint' needs every path"),
    (lambda: _ours("log1p-p2", p=0), "p (the order of the path norm) must be an integer >= 1, got 0"),
    (lambda: _ours("log1p-p2", log1p_eps=0), "log1p_eps must be a finite number > 0, got 0"),
    (lambda: _ours("log1p-p2", grad_mult=float("nan")), "grad_mult must be a finite number > 0, got nan"),
    (lambda: _ours("log1p-p2").distance(torch.zeros(1, 2048), torch.zeros(1, 2048), 28),
     "path must be an integer in [0, 27] (the JTFS has 28 paths), got 28"),
    (lambda: _ours("log1p-p2")(torch.zeros(1, 1000), torch.zeros(1, 1000)),
     "x must have shape (B, N) or (B, C, N) with N = 2048, got (1, 1000)"),
    (lambda: check_probabilities(np.full(28, 0.5), 28), "probs must sum to 1 (within 1e-6), got a sum of 14"),
    (lambda: check_probabilities(np.ones(3) / 3, 28), "probs must have shape (28,) (one probability per path), got (3,)"),
    (lambda: PathwiseSGD([torch.nn.Parameter(torch.zeros(1))], _ours("linear-p1", grad_mult=1.0), lr=0.1),
     "𝒫-Adam without use_rho_log1p needs grad_mult > 1"),
    (lambda: PathwiseSGD([torch.nn.Parameter(torch.zeros(1))], _ours("log1p-p2"), lr=0.1).step(),
     "PathwiseSGD.step: the SCRAPL loss has sampled no path yet"),
])
def test_bad_arguments_are_one_clear_error(make, message):
    with pytest.raises(ValueError) as err:
        make()
    assert message in str(err.value)


# ------------------------------------------------------------------ training (pnp train --loss scrapl)
@pytest.fixture(scope="module")
def audio_store(tmp_path_factory):
    from _stores import build_tiny_store

    return build_tiny_store(tmp_path_factory.mktemp("scrapl_store") / "tiny.zarr", audio=True)


def _fit(store, epochs, checkpoint=None, **kw):
    import copy

    from pnp.training import Trainer

    saved = []  # deep copies: a checkpoint dict holds the live tensors (a run directory saves it at once)
    trainer = Trainer(loss="scrapl", epochs=epochs, batch_size=4, lr=1e-3, seed=0, progress=False, **kw)
    trainer.fit(store, callbacks=[lambda end: saved.append(copy.deepcopy(end.checkpoint()))], checkpoint=checkpoint)
    return trainer, saved


def test_training_with_scrapl_runs_sgd_behind_p_adam_saga_and_resumes_bit_identically(audio_store):
    """loss='scrapl' trains with its prescribed optimiser (PathwiseSGD, 𝒫-Adam + 𝒫-SAGA: one step
    per batch in its state); the loss is the store's JTFS with its log1p compression; a run
    resumed from its epoch-1 checkpoint ends with the weights of an uninterrupted 2-epoch run
    (the path-wise state and the path draws, from torch's RNG, are in the checkpoint)."""
    from pnp.training.trainer import Objective

    whole, saved = _fit(audio_store, 2)
    assert whole.config_["optimizer"] == "p-adam-saga" and whole.config_["scrapl"] == {}
    steps = [ck["optimizer"]["pathwise"]["steps"] for ck in saved]
    assert steps == [steps[0], 2 * steps[0]] and steps[0] >= 1
    resumed, _ = _fit(audio_store, 2, checkpoint=saved[0])
    for a, b in zip(whole.model_.state_dict().values(), resumed.model_.state_dict().values()):
        assert torch.equal(a, b)
    from pnp.data import StoreDataset

    d = Objective("scrapl", StoreDataset(audio_store, split="val", fields=("nu",), input="audio")).spectral.distance
    assert (d.use_rho_log1p, d.log1p_eps, d.grad_mult, d.p) == (True, 1e-3, 1.0, 2)
    assert all(np.isfinite(r["train_loss"]) and np.isfinite(r["val_loss"]) for r in whole.history_)


def test_scrapl_validation_is_each_sounds_fixed_path(audio_store):
    """val_loss of a SCRAPL run is deterministic: the mean over the validation sounds of their
    distance on the path fixed by their store index (RandomPathJTFS.validation_paths)."""
    from pnp.data import StoreDataset
    from pnp.training.trainer import Objective, Trainer

    trainer, _ = _fit(audio_store, 1)
    ds = StoreDataset(audio_store, split="val", fields=("nu",), input="audio")
    objective = Objective("scrapl", ds)
    batch = ds.get_batch(list(range(len(ds))))
    loss = objective.spectral
    with torch.no_grad():
        nu_hat = trainer.model_.eval()(batch["audio"])
        expected = loss.distance.assigned_distance(loss.render(nu_hat), batch["audio"],
                                                   loss.distance.validation_paths(batch["index"]))
    loader = [ds.get_batch(list(range(len(ds))))]
    first = Trainer.validate(trainer.model_, objective, loader, torch.device("cpu"))
    again = Trainer.validate(trainer.model_, objective, loader, torch.device("cpu"))
    assert first["val_loss"] == again["val_loss"] == pytest.approx(float(expected), rel=1e-6)


def test_theta_is_in_training_is_measured_once_and_kept_in_the_checkpoint(audio_store):
    """theta_is=N measures the θ-IS probabilities on N training sounds when the SCRAPL phase
    starts (here after one P-loss epoch), samples the paths by them, and keeps them in the
    checkpoint: a resumed run restores them instead of measuring again."""
    kw = dict(theta_is=2, encoder={"channels": [4], "hidden": 8}, pretrain_epochs=1)
    trainer, saved = _fit(audio_store, 2, **kw)
    assert "scrapl_probs" not in saved[0]  # still pretraining at the end of epoch 1
    probs = np.array(saved[1]["scrapl_probs"])
    assert probs.shape == (28,) and probs.sum() == pytest.approx(1.0) and probs.std() > 0
    # its cost is recorded in the row of the epoch it preceded, apart from the epoch's own seconds
    assert [r["theta_is_seconds"] > 0 for r in saved[1]["history"]] == [False, True]
    resumed, saved_again = _fit(audio_store, 3, checkpoint=saved[1], **kw)
    assert saved_again[-1]["scrapl_probs"] == saved[1]["scrapl_probs"]
    assert saved_again[-1]["history"][-1]["theta_is_seconds"] == 0.0  # not measured again


@pytest.mark.parametrize("kw, message", [
    (dict(loss="pnp", optimizer="p-adam-saga"),
     "optimizer 'p-adam-saga' (SCRAPL's path-wise optimiser) applies to loss='scrapl' only, not 'pnp'"),
    (dict(loss="scrapl", optimizer="rmsprop"), "optimizer must be one of 'adam', 'p-adam-saga', 'p-adam', 'p-saga'"),
    (dict(loss="scrapl", scrapl={"q": 3}), "scrapl: unknown option(s) ['q']; allowed: p, use_rho_log1p, log1p_eps"),
    (dict(loss="mss", theta_is=4), "scrapl and theta_is apply to loss='scrapl' only, not 'mss'"),
    (dict(loss="scrapl", theta_is=0), "theta_is must be an integer >= 1, got 0"),
])
def test_trainer_refuses_bad_scrapl_options(kw, message):
    from pnp.training import Trainer

    with pytest.raises(ValueError) as err:
        Trainer(**kw)
    assert message in str(err.value)


def test_scrapl_needs_a_store_with_audio(tmp_path):
    from _stores import build_tiny_store

    from pnp.training import Trainer

    store = build_tiny_store(tmp_path / "no_audio.zarr", audio=False)
    with pytest.raises(ValueError, match=r"loss='scrapl' compares the rendered sound with the stored one, but the "
                                         r"store .* has no audio \(store.audio = true in its spec\)"):
        Trainer(loss="scrapl", epochs=1, progress=False).fit(store)
