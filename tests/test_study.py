"""The PNP authors' protocol: the adaptive damping schedule, λ₀ = max-eig², P-loss pretraining,
the MRSTFT / specl2 baselines, i.i.d. epochs, final-weight evaluation, and ``pnp study`` (resume
after a kill, study.json, bad input) on a tiny real store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from _stores import build_tiny_store

from pnp.cli import main
from pnp.data import SampleShuffleSampler, StoreDataset
from pnp.loss import AdaptiveDamping, AudioSpectralLoss, max_eig_squared
from pnp.loss.audio import specl2_distance
from pnp.pipelines.training import CHECKPOINT, train
from pnp.training.trainer import load_torch


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    # 1 s at 2048 Hz: longer than half of auraloss's largest FFT (2048)
    return build_tiny_store(tmp_path_factory.mktemp("study_store") / "tiny.zarr", audio=True, counts=(3, 3, 4),
                            duration=1.0)


# ------------------------------------------------------------------------------ schedule
def test_adaptive_schedule_accelerates_on_improvement_only_never_exceeds_lam0_never_restores():
    model = torch.nn.Linear(2, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    s = AdaptiveDamping(lam=100.0)
    assert (s.accelerator, s.brake, s.ceiling) == (0.05, 1.0, 100.0)
    assert s.step(5.0, model=model) == "accelerate" and s.lam == pytest.approx(5.0)
    with torch.no_grad():
        model.weight.add_(1.0)  # training moved the weights: a brake must not restore them
    assert s.step(6.0, model=model) == "brake" and s.lam == pytest.approx(5.0)
    assert torch.equal(model.weight, before["weight"] + 1.0)
    assert s.step(float("nan")) == "brake" and s.lam == pytest.approx(5.0)
    assert s.step(4.0) == "accelerate" and s.lam == pytest.approx(0.25)
    braking = AdaptiveDamping(lam=10.0, accelerator=0.5, brake=4.0)
    for value in (1.0, 2.0, 2.0, 2.0):
        braking.step(value)
        assert braking.lam <= 10.0
    assert braking.lam == 10.0  # 5 -> 20 -> capped at λ₀
    state = s.state_dict()
    t = AdaptiveDamping(lam=100.0)
    t.load_state_dict(state)
    assert (t.lam, t.best_loss, t.n_steps) == (s.lam, s.best_loss, s.n_steps)
    for bad in (dict(lam=0.0), dict(lam=1.0, accelerator=0.0), dict(lam=1.0, brake=0.5), dict(lam=2.0, ceiling=1.0)):
        with pytest.raises(ValueError):
            AdaptiveDamping(**bad)


def test_max_eig_squared_is_the_square_of_the_largest_stored_eigenvalue_of_the_train_split(store, tmp_path):
    ds = StoreDataset(store, split="train", fields=("eigvals",), dtype=torch.float64)
    e = ds.get_batch(np.arange(len(ds)))["eigvals"].numpy()
    assert max_eig_squared(e) == float(e.max()) ** 2
    assert max_eig_squared(np.array([[1.0, np.nan], [3.0, 2.0]])) == 9.0
    with pytest.raises(ValueError, match="max-eig-squared"):
        max_eig_squared(np.full((2, 2), np.nan))
    t = train(store, loss="pnp", schedule="adaptive", out=tmp_path / "pnp", epochs=2, batch_size=8, seed=0,
              progress=False)
    assert t.schedule_["lam0"] == float(e.max()) ** 2 and t.schedule_["restore"] is False
    assert t.history_[0]["lam"] == float(e.max()) ** 2
    with open(tmp_path / "pnp" / "metrics.json") as f:
        assert json.load(f)["schedule"]["name"] == "adaptive"


# ------------------------------------------------------------------------------ protocol
def test_pretrain_epochs_switch_the_loss_exactly_once_and_restart_the_optimizer(store, tmp_path):
    t = train(store, loss="pnp", schedule="adaptive", out=tmp_path / "pre", epochs=4, batch_size=8, seed=0,
              progress=False, pretrain_epochs=2, lr_plateau=1)
    actions = [r["action"] for r in t.history_]
    assert actions[:2] == ["pretrain", "pretrain"] and all(a in ("accelerate", "brake") for a in actions[2:])
    # the P-loss phase validates with the P-loss; the PNP phase with the undamped PNP loss
    for r in t.history_[:2]:
        assert r["val_loss"] == pytest.approx(r["val_ploss"])
    for r in t.history_[2:]:
        assert r["val_loss"] == pytest.approx(r["val_pnp"])
    assert t.best_epoch_ >= 3  # best-epoch tracking starts afresh at the switch
    ploss = train(store, loss="ploss", out=tmp_path / "p", epochs=2, batch_size=8, seed=0, progress=False,
                  lr_plateau=1)
    assert [r["train_loss"] for r in ploss.history_] == [r["train_loss"] for r in t.history_[:2]]
    with pytest.raises(ValueError, match="pretrain_epochs"):
        train(store, loss="pnp", out=tmp_path / "bad", epochs=2, pretrain_epochs=2, progress=False)


def test_sample_shuffle_sampler_draws_iid_epochs_of_the_given_size():
    s = SampleShuffleSampler(list(range(10)), seed=3, samples_per_epoch=25)
    s.set_epoch(0)
    a = s.order()
    assert len(a) == len(s) == 25
    assert sorted(a[:10]) == list(range(10)) and sorted(a[10:20]) == list(range(10))  # whole passes
    s.set_epoch(1)
    assert not np.array_equal(s.order(), a)
    s.set_epoch(0)
    assert np.array_equal(s.order(), a)
    assert len(SampleShuffleSampler(list(range(7)))) == 7


def test_steps_per_epoch_sets_the_number_of_batches(store, tmp_path):
    t = train(store, loss="ploss", out=tmp_path / "steps", epochs=1, batch_size=4, seed=0, progress=False,
              order="samples", steps_per_epoch=3)
    assert t.history_[0]["samples_per_s"] * t.history_[0]["seconds"] == pytest.approx(12)
    with pytest.raises(ValueError, match="order='samples'"):
        train(store, loss="ploss", out=tmp_path / "x", epochs=1, steps_per_epoch=3, progress=False)


# ------------------------------------------------------------------------------ baselines
def test_mrstft_loss_equals_auraloss(store):
    from auraloss.freq import MultiResolutionSTFTLoss

    loss = AudioSpectralLoss.from_store(store, distance="mrstft")
    ds = StoreDataset(store, split="train", fields=("nu",), input="audio", dtype=torch.float32)
    b = ds.get_batch(np.arange(6))
    nu_hat = (b["nu"] * 0.8).requires_grad_(True)
    ours = loss(nu_hat, audio=b["audio"])
    ref = MultiResolutionSTFTLoss()(loss.render(nu_hat)[:, None], b["audio"][:, None])
    assert abs(float(ours.detach()) - float(ref.detach())) <= 1e-6 * abs(float(ref.detach()))
    ours.backward()
    assert torch.isfinite(nu_hat.grad).all() and nu_hat.grad.abs().sum() > 0


def test_specl2_is_the_mean_over_six_scales_of_the_batch_l2_of_linear_magnitudes():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(3, 4096, generator=g, dtype=torch.float64), torch.randn(3, 4096, generator=g, dtype=torch.float64)
    ref = 0.0
    for n in (2048, 1024, 512, 256, 128, 64):
        w = torch.hann_window(n, dtype=torch.float64)
        X = torch.stft(x, n, hop_length=n // 4, window=w, return_complex=True).abs()
        Y = torch.stft(y, n, hop_length=n // 4, window=w, return_complex=True).abs()
        ref += float(torch.sqrt(((X - Y) ** 2).sum()))
    assert float(specl2_distance(x, y)) == pytest.approx(ref / 6, rel=1e-12)
    assert float(specl2_distance(x, x)) == 0.0
    z = x.clone().requires_grad_(True)
    specl2_distance(z, y).backward()
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("loss", ["mrstft", "specl2"])
def test_spectral_baselines_train_and_evaluate_with_final_weights(store, tmp_path, loss, capsys):
    out = tmp_path / loss
    t = train(store, loss=loss, out=out, epochs=2, batch_size=8, seed=0, progress=False)
    assert len(t.history_) == 2 and all(np.isfinite(r["val_loss"]) for r in t.history_)
    from pnp.pipelines.training import evaluate

    final = evaluate(out, weights="final", progress=False)
    ck = load_torch(os.path.join(out, CHECKPOINT))
    assert final["weights"] == "final" and final["best_epoch"] == ck["epoch"] == 2
    assert final["mrstft"] > 0 and final["jtfs_distance"] > 0
    with np.load(out / "predictions_test.npz") as d:
        assert d["mrstft"].shape == d["ploss"].shape == (final["n"],)
        assert float(d["mrstft"].mean()) == pytest.approx(final["mrstft"])
        assert float(d["ploss"].mean()) == pytest.approx(final["ploss"])
        head = d["index"][:3]
    # a fixed subset of the test split: its first sounds, same per-sound values
    sub = evaluate(out, weights="final", progress=False, max_samples=3, write=False)
    assert sub["n"] == 3 and sub["max_samples"] == 3
    ds = StoreDataset(store, split="test", fields=("nu",), limit=3)
    assert np.array_equal(ds.indices, head)
    with pytest.raises(ValueError, match="limit"):
        StoreDataset(store, split="test", fields=("nu",), limit=0)


# ------------------------------------------------------------------------------ errors
def test_bad_protocol_inputs_are_one_line(store, tmp_path, capsys):
    feats = build_tiny_store(tmp_path / "feats.zarr", jacobian=False, audio=True, counts=(2, 2, 2), chunk_size=8,
                             duration=1.0)
    cases = [
        (["train", store, "--loss", "nope", "--out", str(tmp_path / "a")], "--loss must be one of"),
        (["train", store, "--loss", "pnp", "--schedule", "fast", "--out", str(tmp_path / "a")], "--schedule must be one of"),
        (["train", feats, "--loss", "pnp", "--out", str(tmp_path / "a")], "needs the metric"),
        (["train", store, "--loss", "ploss", "--accelerator", "0.1", "--out", str(tmp_path / "a")], "--accelerator applies"),
        (["train", store, "--loss", "pnp", "--schedule", "adaptive", "--accelerator", "2", "--out", str(tmp_path / "a")],
         "--accelerator must be"),
        (["train", store, "--loss", "pnp", "--pretrain-epochs", "3", "--epochs", "2", "--out", str(tmp_path / "a")],
         "--pretrain-epochs must be < --epochs"),
        (["study", "pnp", store, "--losses", "ploss,nope", "--out", str(tmp_path / "s")], "--losses must be one of"),
        (["study", "pnp", store, "--seeds", "0", "--out", str(tmp_path / "s")], "--seeds must be an integer >= 1"),
        (["study", "pnp", feats, "--losses", "pnp", "--out", str(tmp_path / "s")], "needs the metric M"),
        (["study", "pnp", store, "--encoder", "vgg", "--out", str(tmp_path / "s")], "--encoder must be one of"),
    ]
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError):  # RuntimeError: a torchvision built for another torch
        cases.append((["train", store, "--loss", "ploss", "--encoder", "effnet-cqt", "--out", str(tmp_path / "a")],
                      "needs torchvision"))
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "a").exists()


# ------------------------------------------------------------------------------ the study
def test_a_study_written_before_a_protocol_field_existed_resumes_with_its_default(tmp_path):
    from pnp.pipelines.study import PROTOCOL, Protocol, _write_protocol

    protocol = Protocol(store="s.zarr", losses=["ploss"], seeds=[0], epochs=2)
    old = protocol.to_dict()
    del old["theta_is"]  # protocol.json of a study from before Protocol.theta_is
    (tmp_path / PROTOCOL).write_text(json.dumps(old))
    _write_protocol(str(tmp_path), protocol)  # same protocol: accepted
    assert json.loads((tmp_path / PROTOCOL).read_text())["theta_is"] == 1
    with pytest.raises(ValueError, match="differs in theta_is"):
        _write_protocol(str(tmp_path), Protocol(store="s.zarr", losses=["ploss"], seeds=[0], epochs=2, theta_is=4))


def test_a_runs_training_time_counts_its_theta_is_warmup_and_flags_runs_that_did_not_record_it(tmp_path):
    from pnp.pipelines.study import _load_run, run_dir

    path = run_dir(str(tmp_path), "scrapl-is", 0)
    os.makedirs(path)
    np.savez(os.path.join(path, "predictions_test.npz"), jtfs_distance=[1.0], mrstft=[1.0], ploss=[1.0], index=[0])
    for name, obj in (("evaluation.json", {}), ("config.json", {"loss": "scrapl", "theta_is": 1})):
        with open(os.path.join(path, name), "w") as f:
            json.dump(obj, f)

    def load(rows):
        with open(os.path.join(path, "metrics.json"), "w") as f:
            json.dump({"epochs": rows}, f)
        r = _load_run(str(tmp_path), "scrapl-is", 0)
        return r["wall_s"], r["theta_is_time_missing"]

    assert load([{"seconds": 2.0, "theta_is_seconds": 30.0}, {"seconds": 3.0, "theta_is_seconds": 0.0}]) == (35.0, False)
    assert load([{"seconds": 2.0}, {"seconds": 3.0}]) == (5.0, True)  # rows from before theta_is_seconds


def test_figures_of_a_study_with_no_finished_run_write_nothing(tmp_path):
    from pnp.pipelines.study import Protocol, figures

    figures({"summary": {}, "runs": [], "paired": []}, {}, Protocol(store="s.zarr", losses=["ploss"], seeds=[0],
                                                                    epochs=2), str(tmp_path / "figures"))
    assert not (tmp_path / "figures").exists()


def test_scrapl_is_runs_measure_theta_is_on_the_protocols_sounds_and_plain_scrapl_does_not():
    from pnp.pipelines.study import Protocol

    protocol = Protocol(store="s.zarr", losses=["scrapl", "scrapl-is"], seeds=[0, 1], epochs=4, theta_is=3,
                        spectral_batch_size=8, batch_size=16, samples_per_epoch=32)
    with_is, plain = protocol.trainer_options("scrapl-is", 1), protocol.trainer_options("scrapl", 1)
    assert with_is["theta_is"] == 3 and "theta_is" not in plain
    assert {k: v for k, v in with_is.items() if k != "theta_is"} == plain  # otherwise the same run
    assert (plain["loss"], plain["batch_size"], plain["steps_per_epoch"], plain["seed"]) == ("scrapl", 8, 4, 1)


STUDY = ["--losses", "ploss,pnp,specl2", "--seeds", "2", "--epochs", "3", "--batch-size", "8",
         "--spectral-batch-size", "8", "--lr-plateau", "1", "--quiet"]


def _study_cmd(store, out, workers="0"):
    return [sys.executable, "-m", "pnp", "study", "pnp", store, "--out", str(out), "--workers", workers, *STUDY]


def test_study_writes_study_json_and_resumes_after_a_kill(store, tmp_path):
    ref = tmp_path / "ref"
    assert main(["study", "pnp", store, "--out", str(ref), "--workers", "0", *STUDY]) == 0
    with open(ref / "study.json") as f:
        report = json.load(f)
    assert set(report) == {"protocol", "runs", "summary", "paired"}
    assert report["protocol"]["epochs"] == 3 and report["protocol"]["seeds"] == [0, 1]
    assert len(report["runs"]) == 6
    run = next(r for r in report["runs"] if r["loss"] == "pnp")
    assert run["schedule"]["name"] == "adaptive" and run["schedule"]["accelerator"] == 0.05
    assert run["schedule"]["restore"] is False and set(run["test"]) == {"jtfs_distance", "mrstft", "ploss", "mae_nu"}
    assert next(r for r in report["runs"] if r["loss"] == "ploss")["schedule"] is None
    s = report["summary"]["ploss"]["jtfs_distance"]
    vals = [r["test"]["jtfs_distance"] for r in report["runs"] if r["loss"] == "ploss"]
    assert s["n"] == 2 and s["mean"] == pytest.approx(np.mean(vals)) and s["sd"] == pytest.approx(np.std(vals, ddof=1))
    assert {(p["a"], p["b"], p["metric"]) for p in report["paired"]} == {
        (a, b, m) for a, b in (("ploss", "pnp"), ("ploss", "specl2"), ("pnp", "specl2"))
        for m in ("jtfs_distance", "mrstft", "ploss")}
    for name in ("test_metrics.png", "validation.png", "lambda.png", "cost.png"):
        assert (ref / "figures" / name).stat().st_size > 1000

    # kill a fresh study during its third run (slowest losses first: specl2 x 2, then pnp-seed0);
    # the same command then finishes it
    out = tmp_path / "killed"
    proc = subprocess.Popen(_study_cmd(store, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    victim = out / "runs" / "pnp-seed0" / CHECKPOINT
    deadline = time.time() + 300
    while not victim.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert victim.exists(), "the study did not reach its third run"
    finished = out / "runs" / "specl2-seed0" / "evaluation.json"
    stamp = finished.stat().st_mtime_ns
    assert load_torch(str(victim))["epoch"] < 3  # interrupted before its last epoch
    subprocess.run(_study_cmd(store, out), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert finished.stat().st_mtime_ns == stamp  # a finished run is not redone
    for loss, seed in (("pnp", 0), ("pnp", 1), ("ploss", 0)):
        a = load_torch(str(ref / "runs" / f"{loss}-seed{seed}" / CHECKPOINT))["model"]
        b = load_torch(str(out / "runs" / f"{loss}-seed{seed}" / CHECKPOINT))["model"]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), (loss, seed)
    # another protocol in the same directory is refused
    assert main(["study", "pnp", store, "--out", str(out), "--workers", "0", *STUDY[:-1], "--lr", "0.01"]) == 2


def test_frontend_cache_gives_the_same_training(store, tmp_path):
    """Caching the weight-free scalograms of the training sounds changes no number."""
    a = train(store, loss="pnp", schedule="adaptive", out=tmp_path / "a", epochs=2, batch_size=8, seed=1,
              progress=False, order="samples")
    b = train(store, loss="pnp", schedule="adaptive", out=tmp_path / "b", epochs=2, batch_size=8, seed=1,
              progress=False, order="samples", cache_frontend=True)
    assert [r["train_loss"] for r in a.history_] == [r["train_loss"] for r in b.history_]
    sa, sb = a.model_.state_dict(), b.model_.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
