"""Training losses and damping schedules: PNPLoss against the explicit quadratic form and its
closed-form gradient, ParameterLoss, SpectralLoss on the tiny AM-chirp spec, λ schedules."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from _stores import tiny_spec_text
from torch import nn

from pnp.loss import (
    ConstantDamping,
    DecayDamping,
    LevenbergMarquardt,
    ParameterLoss,
    PNPLoss,
    SpectralLoss,
    make_schedule,
)
from pnp.spec import loads_spec

B, P = 5, 3


def spd(b: int, p: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(b, p + 2, p, generator=g, dtype=torch.float64)
    M = A.transpose(1, 2) @ A
    return 0.5 * (M + M.transpose(1, 2))


@pytest.fixture()
def batch():
    g = torch.Generator().manual_seed(1)
    nu = torch.rand(B, P, generator=g, dtype=torch.float64) * 2 - 1
    nu_hat = torch.rand(B, P, generator=g, dtype=torch.float64) * 2 - 1
    return nu_hat, nu, spd(B, P)


def damping_matrices(M: torch.Tensor, Mbar: torch.Tensor) -> dict[str, torch.Tensor]:
    return {
        "identity": torch.eye(P, dtype=M.dtype).expand(B, P, P),
        "diag": torch.stack([torch.diag(torch.diag(m)) for m in M]),
        "mean": Mbar.expand(B, P, P),
    }


def explicit(nu_hat, nu, A) -> torch.Tensor:
    total = 0.0
    for b in range(nu_hat.shape[0]):
        d = nu_hat[b] - nu[b]
        total = total + d @ A[b] @ d
    return total / (2 * nu_hat.shape[0])


# ------------------------------------------------------------------------------ PNPLoss
@pytest.mark.parametrize("damping", ["identity", "diag", "mean"])
@pytest.mark.parametrize("lam", [0.0, 0.3, 2.0])
def test_pnp_loss_is_the_quadratic_form_and_its_gradient(batch, damping, lam):
    nu_hat, nu, M = batch
    Mbar = spd(1, P, seed=7)[0]
    loss = PNPLoss(damping, mean_metric=Mbar if damping == "mean" else None)
    A = M + lam * damping_matrices(M, Mbar)[damping]
    x = nu_hat.clone().requires_grad_()
    value = loss(x, nu, M, lam)
    torch.testing.assert_close(value, explicit(nu_hat, nu, A), rtol=1e-12, atol=0)
    (grad,) = torch.autograd.grad(value, x)
    closed = torch.einsum("bij,bj->bi", A, nu_hat - nu) / B
    torch.testing.assert_close(grad, closed, rtol=1e-12, atol=1e-15)
    # λ as a 0-d tensor gives the same
    torch.testing.assert_close(loss(nu_hat, nu, M, torch.tensor(lam, dtype=torch.float64)), value.detach())


def test_lam_zero_ignores_the_damping(batch):
    nu_hat, nu, M = batch
    plain = explicit(nu_hat, nu, M)
    for loss in (PNPLoss("identity"), PNPLoss("diag"), PNPLoss("mean", mean_metric=1e6 * torch.eye(P))):
        torch.testing.assert_close(loss(nu_hat, nu, M), plain, rtol=1e-12, atol=0)
        torch.testing.assert_close(loss(nu_hat, nu, M, 0), plain, rtol=1e-12, atol=0)
    # the damping adds λ · ½ mean ‖d‖² with D = I
    d2 = 0.5 * ((nu_hat - nu) ** 2).sum(1).mean()
    torch.testing.assert_close(PNPLoss()(nu_hat, nu, M, 4.0), plain + 4.0 * d2, rtol=1e-12, atol=0)


def test_pnp_loss_under_torch_func(batch):
    nu_hat, nu, M = batch
    loss = PNPLoss("diag")
    lam = 0.7
    A = M + lam * torch.diag_embed(torch.diagonal(M, dim1=-2, dim2=-1))
    closed = torch.einsum("bij,bj->bi", A, nu_hat - nu) / B
    jf = torch.func.jacfwd(lambda x: loss(x, nu, M, lam))(nu_hat)
    torch.testing.assert_close(jf, closed, rtol=1e-12, atol=1e-15)
    gr = torch.func.grad(lambda x: loss(x, nu, M, lam))(nu_hat)
    torch.testing.assert_close(gr, closed, rtol=1e-12, atol=1e-15)
    # vmap over an ensemble of predictions (E, B, P) → (E,)
    ens = torch.stack([nu_hat, -nu_hat, 0.5 * nu_hat, nu])
    out = torch.func.vmap(lambda x: loss(x, nu, M, lam))(ens)
    ref = torch.stack([loss(e, nu, M, lam) for e in ens])
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-15)
    assert out[-1] == 0
    # per-sample losses by vmap over the batch (B, 1, P)
    per = torch.func.vmap(lambda x, y, m: loss(x, y, m, lam))(nu_hat[:, None], nu[:, None], M[:, None])
    torch.testing.assert_close(per.mean(), loss(nu_hat, nu, M, lam), rtol=1e-12, atol=0)


def test_pnp_loss_follows_nu_hat_dtype(batch):
    nu_hat, nu, M = batch
    out = PNPLoss("mean", mean_metric=torch.eye(P))(nu_hat.float(), nu, M, 0.5)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), explicit(nu_hat, nu, M + 0.5 * torch.eye(P, dtype=torch.float64)),
                               rtol=1e-5, atol=0)


def test_pnp_loss_errors(batch):
    nu_hat, nu, M = batch
    loss = PNPLoss()
    with pytest.raises(ValueError, match=r"M must have shape \(B, P, P\) = \(5, 3, 3\).*got \(5, 3\)"):
        loss(nu_hat, nu, M[:, 0])
    with pytest.raises(ValueError, match=r"nu must have the shape of nu_hat \(5, 3\), got \(5, 2\)"):
        loss(nu_hat, nu[:, :2], M)
    with pytest.raises(ValueError, match=r"nu_hat must have shape \(B, P\).*got \(3,\)"):
        loss(nu_hat[0], nu[0], M[0])
    with pytest.raises(ValueError, match="nu_hat must be a floating torch.Tensor"):
        loss(nu_hat.numpy(), nu, M)
    with pytest.raises(ValueError, match=r"lam must be a finite number >= 0, got -0\.1"):
        loss(nu_hat, nu, M, -0.1)
    with pytest.raises(ValueError, match="lam must be a finite number >= 0"):
        loss(nu_hat, nu, M, torch.tensor(-1.0))
    with pytest.raises(ValueError, match="lam must be a finite number >= 0"):
        loss(nu_hat, nu, M, float("nan"))
    with pytest.raises(ValueError, match="lam must be a number >= 0 or a 0-d floating tensor"):
        loss(nu_hat, nu, M, torch.ones(2))
    with pytest.raises(ValueError, match=r"damping='mean' needs mean_metric.*mean_metric\(\)"):
        PNPLoss("mean")
    with pytest.raises(ValueError, match="mean_metric applies to damping='mean' only"):
        PNPLoss("identity", mean_metric=torch.eye(P))
    with pytest.raises(ValueError, match="damping must be one of 'identity', 'diag', 'mean', got 'full'"):
        PNPLoss("full")
    with pytest.raises(ValueError, match=r"mean_metric must be a real \(P, P\) matrix, got shape \(3,\)"):
        PNPLoss("mean", mean_metric=torch.ones(3))
    with pytest.raises(ValueError, match="mean_metric has shape \\(2, 2\\) but nu_hat has P = 3"):
        PNPLoss("mean", mean_metric=torch.eye(2))(nu_hat, nu, M, 1.0)


# ------------------------------------------------------------------------------ ParameterLoss
def test_parameter_loss_and_its_relation_to_pnp(batch):
    nu_hat, nu, _ = batch
    p = ParameterLoss()(nu_hat, nu)
    torch.testing.assert_close(p, torch.nn.functional.mse_loss(nu_hat, nu), rtol=1e-14, atol=0)
    torch.testing.assert_close(p, ((nu_hat - nu) ** 2).sum() / (B * P), rtol=1e-14, atol=0)
    eye = torch.eye(P, dtype=torch.float64).expand(B, P, P)
    torch.testing.assert_close(PNPLoss()(nu_hat, nu, eye), P / 2 * p, rtol=1e-14, atol=0)
    with pytest.raises(ValueError, match=r"nu must have the shape of nu_hat \(5, 3\), got \(3, 5\)"):
        ParameterLoss()(nu_hat, nu.T)


# ------------------------------------------------------------------------------ SpectralLoss
@pytest.fixture(scope="module")
def tiny_spec():
    return loads_spec(tiny_spec_text(), source="tiny")


@pytest.fixture(scope="module")
def spectral(tiny_spec):
    return SpectralLoss.from_store(tiny_spec)


def test_spectral_loss_values_and_gradient(spectral):
    g = torch.Generator().manual_seed(3)
    nu = torch.rand(3, 3, generator=g, dtype=torch.float64) * 1.6 - 0.8
    assert spectral(nu.clone(), nu).item() == 0.0
    nu_hat = (nu + 0.15 * torch.randn(3, 3, generator=g, dtype=torch.float64)).clamp(-1, 1).requires_grad_()
    value = spectral(nu_hat, nu)
    # against the definition
    with torch.no_grad():
        ref = (spectral.features(nu_hat) - spectral.features(nu)).square().sum(1).mean() / spectral.features(nu).shape[1]
    torch.testing.assert_close(value.detach(), ref, rtol=1e-12, atol=0)
    assert value.item() > 1e-3
    (grad,) = torch.autograd.grad(value, nu_hat)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    # directional derivative vs central differences (float64)
    v = torch.randn(3, 3, generator=g, dtype=torch.float64)
    eps = 1e-6
    with torch.no_grad():
        fd = (spectral(nu_hat + eps * v, nu) - spectral(nu_hat - eps * v, nu)) / (2 * eps)
    torch.testing.assert_close((grad * v).sum(), fd, rtol=1e-5, atol=1e-9)
    # the target-features path equals the ν path
    with torch.no_grad():
        target = spectral.features(nu)
    torch.testing.assert_close(spectral(nu_hat, target=target), value, rtol=0, atol=0)
    torch.testing.assert_close(spectral(nu_hat, nu=nu * 0, target=target), value, rtol=0, atol=0)


def test_spectral_loss_l1_float32_and_tanh_bounds(tiny_spec):
    loss = SpectralLoss.from_store(tiny_spec, distance="l1")
    nu = torch.tensor([[0.2, -0.3, 0.5]], dtype=torch.float32)
    nu_hat = torch.tensor([[1.0, -1.0, 1.0]], dtype=torch.float32, requires_grad=True)  # corners: tanh saturation
    value = loss(nu_hat, nu)
    assert value.dtype == torch.float32
    with torch.no_grad():
        ref = (loss.features(nu_hat) - loss.features(nu)).abs().mean()
    torch.testing.assert_close(value.detach(), ref)
    value.backward()
    assert torch.isfinite(nu_hat.grad).all() and nu_hat.grad.abs().sum() > 0


def test_spectral_loss_from_store_choices_and_errors(tiny_spec, spectral):
    import pnp.scattering as sc

    assert spectral.representation.name == "jtfs" and spectral.parametrization.free == ("f_c", "f_m", "gamma")
    assert spectral.representation.config() == tiny_spec.build_representation().config()
    mss = SpectralLoss.from_store(tiny_spec, "mss")
    assert mss.representation.name == "mss" and mss.representation.log1p_c == 1e-3
    assert mss.representation.window_sizes == (32, 64, 128, 256, 512)  # those that fit in N = 512
    assert SpectralLoss.from_store(tiny_spec, "jtfs").representation.name == "jtfs"
    own = sc.get("mss", window_sizes=[64, 128])
    assert SpectralLoss.from_store(tiny_spec, own).representation is own
    mss_spec = loads_spec(tiny_spec_text().replace('name = "jtfs"', 'name = "mss"').replace(
        'config = { J = 6, Q = [4, 1], J_fr = 2, Q_fr = 1, F = 1, T = "global" }', "config = { window_sizes = [64, 128] }"))
    with pytest.raises(ValueError, match="the store's representation is 'mss', not JTFS"):
        SpectralLoss.from_store(mss_spec, "jtfs")
    with pytest.raises(ValueError, match="representation must be one of 'store', 'mss', 'jtfs'"):
        SpectralLoss.from_store(tiny_spec, "cqt")
    with pytest.raises(ValueError, match="distance must be one of 'l2', 'l1', got 'l3'"):
        SpectralLoss.from_store(tiny_spec, distance="l3")
    with pytest.raises(TypeError, match="store_or_spec must be"):
        SpectralLoss.from_store(42)
    nu = torch.zeros(2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="give the target parameters nu"):
        spectral(nu)
    with pytest.raises(ValueError, match=r"parameter 'f_m'\) = 1\.5 is outside \[-1, 1\]"):
        spectral(torch.tensor([[0.0, 1.5, 0.0]], dtype=torch.float64), nu[:1])
    with pytest.raises(ValueError, match=r"target must be a tensor of shape \(B, K\) with B = 2"):
        spectral(nu, target=torch.zeros(3, 10))
    with pytest.raises(ValueError, match="target has K = 10 features, the representation gives"):
        spectral(nu, target=torch.zeros(2, 10))
    with pytest.raises(ValueError, match=r"nu_hat must have P = 3 columns"):
        spectral(nu[:, :2], nu[:, :2])


# ------------------------------------------------------------------------------ schedules
def test_constant_and_decay_sequences():
    c = ConstantDamping(0.3)
    assert [c.step(x) for x in (1.0, 2.0, float("nan"))] == ["constant"] * 3 and c.lam == 0.3
    d = DecayDamping(lam=1.0, factor=0.5, every=2, minimum=0.1)
    events, lams = [], []
    for _ in range(8):
        events.append(d.step(0.0))
        lams.append(d.lam)
    assert events == ["constant", "decay"] * 4
    assert lams == [1.0, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125, 0.1]
    e = DecayDamping(lam=1.0, factor=0.5)
    e.load_state_dict(d.state_dict())
    assert e.lam == 0.1 and e.n_steps == 8
    assert isinstance(make_schedule("lm", lam=2.0), LevenbergMarquardt)
    for kwargs, msg in [
        (dict(lam=-1.0), "lam must be a finite number >= 0"),
        (dict(factor=0.0), r"factor must be a finite number > 0 and <= 1, got 0\.0"),
        (dict(factor=1.5), "factor must be a finite number > 0 and <= 1"),
        (dict(every=0), "every must be an integer >= 1, got 0"),
        (dict(lam=0.05, minimum=0.1), r"lam must be a finite number >= 0\.1, got 0\.05"),
    ]:
        with pytest.raises(ValueError, match=msg):
            DecayDamping(**kwargs)
    with pytest.raises(ValueError, match="lam must be a finite number >= 0"):
        ConstantDamping(float("inf"))
    with pytest.raises(ValueError, match="damping schedule must be one of 'constant', 'decay', 'lm'"):
        make_schedule("cosine")
    with pytest.raises(ValueError, match="is not a DecayDamping state"):
        DecayDamping().load_state_dict(ConstantDamping().state_dict())


def _model_and_optimizer():
    torch.manual_seed(0)
    model = nn.Linear(3, 2).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(8, 3, dtype=torch.float64)
    model(x).square().mean().backward()
    opt.step()  # momentum buffers exist
    return model, opt, x


def test_levenberg_marquardt_accelerates_brakes_and_restores():
    model, opt, x = _model_and_optimizer()
    lm = LevenbergMarquardt(lam=1.0, accelerator=0.5, brake=10.0, ceiling=20.0)
    assert lm.step(torch.tensor(2.0), model, opt) == "accelerate" and lm.lam == 0.5 and lm.best_loss == 2.0
    assert lm.step(1.0, model, opt) == "accelerate" and lm.lam == 0.25 and lm.best_loss == 1.0
    best = copy.deepcopy(model.state_dict())
    best_momentum = [opt.state[p]["momentum_buffer"].clone() for p in model.parameters()]
    # train further: weights and optimizer state change
    opt.zero_grad()
    model(x).sum().backward()
    opt.step()
    with torch.no_grad():
        model.weight.add_(1.0)
    assert not torch.equal(model.weight, best["weight"])
    weight_object = model.weight
    assert lm.step(1.5, model, opt) == "brake" and lm.lam == 2.5 and lm.best_loss == 1.0
    assert model.weight is weight_object  # loaded in place
    for name, value in model.state_dict().items():
        assert torch.equal(value, best[name]), name  # bit for bit
    for p, m in zip(model.parameters(), best_momentum):
        assert torch.equal(opt.state[p]["momentum_buffer"], m)
    # non-finite losses never improve; λ stops at the ceiling
    assert lm.step(float("nan"), model, opt) == "brake" and lm.lam == 20.0
    assert lm.step(float("inf")) == "brake" and lm.lam == 20.0
    # the stored best state is not an alias of the model: braking again restores the same numbers
    with torch.no_grad():
        model.bias.mul_(3.0)
    lm.step(5.0, model, opt)
    assert torch.equal(model.bias, best["bias"])
    assert lm.step(0.5, model, opt) == "accelerate" and lm.lam == 10.0 and lm.best_loss == 0.5


def test_levenberg_marquardt_state_dict_round_trip_and_validation():
    model, opt, _ = _model_and_optimizer()
    lm = LevenbergMarquardt(lam=3.0, accelerator=0.25, brake=4.0, ceiling=100.0)
    lm.step(1.0, model, opt)
    lm.step(2.0, model, opt)
    state = lm.state_dict()
    with torch.no_grad():
        model.weight.zero_()  # the saved state is a copy
    other = LevenbergMarquardt()
    other.load_state_dict(state)
    assert (other.lam, other.best_loss, other.n_steps) == (3.0, 1.0, 2)
    assert (other.accelerator, other.brake, other.ceiling) == (0.5, 10.0, 1e4)  # hyper-parameters are __init__'s
    assert not torch.equal(other.best_state["model"]["weight"], model.weight)
    for k, v in lm.best_state["model"].items():
        assert torch.equal(other.best_state["model"][k], v)
    assert other.step(1.5, model) == "brake"
    assert torch.equal(model.weight, lm.best_state["model"]["weight"])
    first = LevenbergMarquardt(lam=1.0)
    assert first.step(float("nan"), model) == "brake" and first.lam == 10.0 and first.best_state is None
    for kwargs, msg in [
        (dict(accelerator=0.0), "accelerator must be a finite number > 0 and <= 1, got 0.0"),
        (dict(accelerator=2.0), "accelerator must be a finite number > 0 and <= 1"),
        (dict(brake=0.5), r"brake must be a finite number >= 1, got 0\.5"),
        (dict(lam=10.0, ceiling=5.0), r"lam must be a finite number >= 0 and <= 5, got 10\.0"),
        (dict(lam=-1.0), "lam must be a finite number >= 0"),
        (dict(ceiling=math.nan), "ceiling must be a finite number >= 0"),
    ]:
        with pytest.raises(ValueError, match=msg):
            LevenbergMarquardt(**kwargs)
    with pytest.raises(ValueError, match="val_loss must be a scalar"):
        LevenbergMarquardt().step(torch.ones(3))
    with pytest.raises(ValueError, match="val_loss must be a number"):
        LevenbergMarquardt().step("low")
