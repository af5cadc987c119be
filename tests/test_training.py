"""The encoder, the training loop (ploss / pnp / LM schedule / resume), evaluate() and the
``pnp train`` / ``pnp evaluate`` CLIs, on a tiny real store (27 AM chirps, N = 512)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from _stores import build_tiny_store

from pnp.cli import main
from pnp.data import StoreDataset
from pnp.pipelines.training import CHECKPOINT, evaluate, train
from pnp.training import Encoder, LogScalogram, load_encoder
from pnp.training.trainer import load_torch

LR = 1e-3  # with Adam, batch 8 and seed 0..3 the epoch-2 mean training loss is 0.07-0.64x epoch 1's


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    d = tmp_path_factory.mktemp("training_stores")
    full = build_tiny_store(d / "tiny.zarr")
    feats = build_tiny_store(d / "features_only.zarr", jacobian=False, counts=(2, 2, 2), chunk_size=8)
    return {"full": full, "features": feats}


@pytest.fixture(scope="module")
def ploss_run(stores, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "ploss"
    return train(stores["full"], loss="ploss", out=out, epochs=2, batch_size=8, lr=LR, seed=0, progress=False)


def _state_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------ encoder
def test_scalogram_matches_direct_convolution():
    """|x ∗ ψ_f| sampled every `stride` samples and averaged over hop: the folded Fourier
    computation equals the full-rate analytic band-pass signal (float64, 1e-12)."""
    torch.manual_seed(0)
    for hop in (1, 4, 16):
        f = LogScalogram(512, J=5, Q=4, hop=hop).double()
        x = torch.randn(3, 512, dtype=torch.float64)
        L = f.length
        H = torch.zeros(f.n_filters, L, dtype=torch.float64)
        H[:, : L // 2] = f.filters
        y = torch.fft.ifft(torch.fft.fft(x, n=L)[:, None] * H).abs()[..., : f.n_frames * hop]
        ref = y.reshape(3, f.n_filters, f.n_frames, hop)[..., :: f.stride].mean(-1)
        out = f(x)
        assert out.shape == (3, f.n_filters, 512 // hop)
        torch.testing.assert_close(out, torch.log1p(ref / 1e-3), rtol=1e-12, atol=1e-12)
    # a tone excites the filter whose centre frequency is closest to it the most
    f = LogScalogram(4096, J=6, Q=8, hop=64)
    k = 7
    t = torch.arange(4096, dtype=torch.float32)
    tone = torch.sin(2 * torch.pi * float(f.xi[k]) * t)[None]
    assert int(f(tone)[0, :, 16:48].mean(-1).argmax()) == k


def test_encoder_output_shape_range_dtype(stores):
    ds = StoreDataset(stores["full"], split="train", fields=("nu",), input="audio")
    torch.manual_seed(0)
    enc = Encoder.from_store(ds)
    assert (enc.n_samples, enc.sample_rate, enc.n_params) == (512, 2048.0, 3)
    x = ds.get_batch(range(5))["audio"]
    enc.eval()
    out = enc(x)
    assert out.shape == (5, 3) and out.dtype == torch.float32
    assert bool((out.abs() < 1).all())
    # the same weights in float64 give the float32 numbers to round-off, in float64
    enc64 = Encoder(**enc.config()).double()
    enc64.load_state_dict(enc.state_dict())
    enc64.eval()
    out64 = enc64(x.double())
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), out, rtol=1e-4, atol=1e-5)
    # a 4 s / 8192 Hz encoder works too
    big = Encoder(32768, 8192.0, 3)
    assert big(torch.randn(2, 32768)).shape == (2, 3)
    with pytest.raises(ValueError, match="dtype"):
        enc(x.double())
    with pytest.raises(ValueError, match=r"shape \(B, 512\)"):
        enc(x[:, :100])
    with pytest.raises(ValueError, match="hop must be a power of two"):
        Encoder(512, 2048.0, 3, hop=3)
    with pytest.raises(ValueError, match="n_params"):
        Encoder(512, 2048.0, 0)
    with pytest.raises(ValueError, match="sample_rate"):
        Encoder(512, -1.0, 3)


def _torchvision_or_skip():
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError) as err:  # RuntimeError: a torchvision built for another torch
        pytest.skip(f"effnet-cqt needs a working torchvision (optional extra 'effnet'): {str(err).splitlines()[0]}")


def test_effnet_encoder_is_the_authors_head(stores):
    """EfficientNet-B0 on the log scalogram: (B, P) in (-1, 1); the last linear layer's bias is 0
    and frozen; in eval mode the head is tanh((net(z) − mean) / sqrt(var + eps) · sqrt(0.5)) with the
    running statistics;
    every other weight gets a gradient; the config rebuilds the same function."""
    _torchvision_or_skip()
    from pnp.training.encoder import EffNetEncoder, build_encoder, encoder_from_config

    ds = StoreDataset(stores["full"], split="train", fields=("nu",), input="audio")
    torch.manual_seed(0)
    enc = build_encoder("effnet-cqt", ds, hop=16)
    assert isinstance(enc, EffNetEncoder) and (enc.n_samples, enc.n_params) == (512, 3)
    x = ds.get_batch(range(4))["audio"]
    out = enc(x)
    assert out.shape == (4, 3) and out.dtype == torch.float32 and bool((out.abs() < 1).all())
    last = enc.net.classifier[-1]
    assert not last.bias.requires_grad and bool((last.bias == 0).all())
    out.square().sum().backward()
    missing = [n for n, p in enc.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert missing == []
    enc.eval()
    z = enc.stem(enc.norm(enc.frontend(x)[:, None]))
    bn = enc.out_norm
    head = (enc.net(z) - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * 0.5 ** 0.5
    torch.testing.assert_close(enc(x), torch.tanh(head), rtol=1e-5, atol=1e-6)
    again = encoder_from_config("effnet-cqt", enc.config())
    again.load_state_dict(enc.state_dict())
    again.eval()
    torch.testing.assert_close(again(x), enc(x), rtol=0, atol=0)


# ------------------------------------------------------------------------------ training
@pytest.mark.parametrize("loss", ["ploss", "pnp"])
def test_two_epochs_decrease_the_training_loss_and_write_the_run(stores, tmp_path, loss, ploss_run):
    if loss == "ploss":
        t = ploss_run
    else:
        t = train(stores["full"], loss=loss, out=tmp_path / loss, epochs=2, batch_size=8, lr=LR, seed=0,
                  progress=False)
    out = t.run_dir_
    h = t.history_
    assert [r["epoch"] for r in h] == [1, 2]
    assert h[1]["train_loss"] < h[0]["train_loss"]
    for name in ("config.json", "checkpoint.pt", "best.pt", "metrics.csv", "metrics.json", "loss_curves.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    with open(os.path.join(out, "loss_curves.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    csv_rows = open(os.path.join(out, "metrics.csv")).read().strip().splitlines()
    assert len(csv_rows) == 3 and csv_rows[0].startswith("epoch,train_loss,val_loss,val_ploss,val_pnp")
    assert [r["val_ploss"] for r in metrics["epochs"]] == [r["val_ploss"] for r in h]
    best = int(np.argmin([r["val_loss"] for r in h])) + 1
    assert metrics["best_epoch"] == best == load_torch(os.path.join(out, "best.pt"))["epoch"]
    assert load_torch(os.path.join(out, CHECKPOINT))["epoch"] == 2
    # the val P-loss is the MSE in ν of the final model on the val split; for pnp val_loss = val_pnp
    ds = StoreDataset(stores["full"], split="val", fields=("nu", "metric"), input="audio")
    b = ds.get_batch(range(len(ds)))
    t.model_.eval()
    with torch.no_grad():
        nu_hat = t.model_(b["audio"])
    d = (nu_hat - b["nu"]).double()
    assert h[-1]["val_ploss"] == pytest.approx(float((d**2).mean()), rel=1e-5)
    pnp = float(0.5 * torch.einsum("bi,bij,bj->b", d, b["metric"].double(), d).mean())
    assert h[-1]["val_pnp"] == pytest.approx(pnp, rel=1e-4)
    if loss == "pnp":
        assert h[-1]["val_loss"] == pytest.approx(h[-1]["val_pnp"])


def test_resume_equals_an_uninterrupted_run(stores, tmp_path):
    kw = dict(loss="pnp", batch_size=8, lr=LR, seed=3, schedule="lm", lam=1.0, progress=False)
    full = train(stores["full"], out=tmp_path / "full", epochs=2, **kw)
    part = train(stores["full"], out=tmp_path / "part", epochs=1, **kw)
    assert len(part.history_) == 1
    resumed = train(stores["full"], out=tmp_path / "part", epochs=2, resume=True, **kw)
    assert _state_equal(full.model_.state_dict(), resumed.model_.state_dict())
    a = load_torch(str(tmp_path / "full" / CHECKPOINT))
    b = load_torch(str(tmp_path / "part" / CHECKPOINT))
    assert a["schedule"]["lam"] == b["schedule"]["lam"]
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("seconds", "samples_per_s")} for r in rows]
    assert strip(full.history_) == strip(resumed.history_)
    # a different configuration is refused, naming what differs
    with pytest.raises(ValueError, match=r"lr \(checkpoint: 0.001, now: 0.01\)"):
        train(stores["full"], out=tmp_path / "part", epochs=3, resume=True, **{**kw, "lr": 1e-2})
    with pytest.raises(ValueError, match="no checkpoint.pt"):
        train(stores["full"], out=tmp_path / "nothing", epochs=2, resume=True, **kw)


def test_lm_brake_restores_the_best_weights(stores, tmp_path):
    """A huge learning rate makes epoch 2 worse than epoch 1 on validation: the LM schedule
    brakes (λ × 10) and the weights it leaves are epoch 1's, the ones in best.pt."""
    t = train(stores["full"], loss="pnp", out=tmp_path / "lm", epochs=2, batch_size=8, lr=50.0, seed=0,
              schedule="lm", lam=1.0, progress=False)
    h = t.history_
    assert [r["action"] for r in h] == ["accelerate", "brake"]
    assert h[1]["val_loss"] >= h[0]["val_loss"]
    assert (h[0]["lam"], h[1]["lam"]) == (1.0, 0.5)
    best = load_torch(str(tmp_path / "lm" / "best.pt"))
    assert best["epoch"] == 1
    ck = load_torch(str(tmp_path / "lm" / CHECKPOINT))
    assert ck["schedule"]["lam"] == pytest.approx(5.0)
    assert _state_equal(ck["model"], best["model"])
    assert _state_equal(t.model_.state_dict(), best["model"])


# ------------------------------------------------------------------------------ evaluation
def test_evaluate_equals_a_direct_computation(stores, ploss_run):
    res = evaluate(ploss_run.run_dir_, split="test", progress=False)
    model, config, _ = load_encoder(os.path.join(ploss_run.run_dir_, "best.pt"))
    ds = StoreDataset(stores["full"], split="test", fields=("nu", "theta", "metric", "features"), input="audio",
                      dtype=torch.float64)
    b = ds.get_batch(range(len(ds)))
    with torch.no_grad():
        nu_hat = model(b["audio"].float()).double()
    err = (nu_hat - b["nu"]).numpy()
    assert res["n"] == len(ds) and res["params"] == ["f_c", "f_m", "gamma"]
    np.testing.assert_allclose([res["mae_nu"][p] for p in res["params"]], np.abs(err).mean(0), rtol=1e-6)
    assert res["ploss"] == pytest.approx(float(np.mean(err**2)), rel=1e-6)
    d = torch.as_tensor(err)
    assert res["pnp_loss"] == pytest.approx(float(0.5 * torch.einsum("bi,bij,bj->b", d, b["metric"], d).mean()), rel=1e-6)
    # JTFS distance of sample 0: its own synth + representation in float64 vs the stored features
    spec = ds.spec
    synth = spec.build_synth()
    param = spec.parametrization(synth)
    rep = spec.build_representation(synth)
    with torch.no_grad():
        feats = rep.features(synth(param.theta(nu_hat[:1])))
    d0 = float(torch.linalg.vector_norm(feats - b["features"][:1]))
    npz = np.load(os.path.join(ploss_run.run_dir_, "predictions_test.npz"))
    assert npz["jtfs_distance"][0] == pytest.approx(d0, rel=1e-5)
    assert res["jtfs_distance"] == pytest.approx(float(npz["jtfs_distance"].mean()))
    assert res["mss_distance"] > 0
    saved = json.load(open(os.path.join(ploss_run.run_dir_, "evaluation.json")))
    assert saved["mae_nu"] == res["mae_nu"]


# ------------------------------------------------------------------------------ CLI
def _one_line_error(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


def test_cli_errors(stores, tmp_path, capsys):
    out = str(tmp_path / "run")
    _one_line_error(capsys, ["train", stores["full"], "--loss", "l2", "--out", out], "--loss", "ploss, pnp, mss, jtfs")
    _one_line_error(capsys, ["train", str(tmp_path / "missing.zarr"), "--loss", "ploss", "--out", out], "no store")
    _one_line_error(capsys, ["train", stores["features"], "--loss", "pnp", "--out", out], "store.jacobian = true")
    _one_line_error(capsys, ["train", stores["full"], "--loss", "ploss", "--epochs", "0", "--out", out], "--epochs")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("x")
    _one_line_error(capsys, ["train", stores["full"], "--loss", "ploss", "--out", str(tmp_path / "busy")], "not empty")
    _one_line_error(capsys, ["evaluate", str(tmp_path / "busy")], "best.pt")
    assert not os.path.exists(out)  # nothing half-written


def test_cli_train_then_evaluate_compare(stores, tmp_path, capsys, ploss_run):
    out = str(tmp_path / "pnp")
    argv = ["train", stores["full"], "--loss", "pnp", "--epochs", "1", "--batch-size", "8", "--out", out, "--no-progress"]
    assert main(argv) == 0
    assert "1 epochs, best epoch 1" in capsys.readouterr().out
    _one_line_error(capsys, argv, "already holds a training run", "--resume")
    assert main(["evaluate", out, "--compare", ploss_run.run_dir_, "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "pnp" in table and "ploss" in table and "MAE in nu, gamma" in table and "JTFS distance" in table
    assert json.load(open(os.path.join(out, "evaluation.json")))["loss"] == "pnp"
