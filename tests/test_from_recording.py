"""From a recording: pnp.audio (reading, mono, resampling, length, level, bad files), ``pnp predict``
(read-back identity with the encoder pass of ``pnp evaluate``, its outputs) and ``pnp match
--target-audio`` (recovery as ``pnp match``, ``--init-from``, grid init, Adam, the FTM drum), on
tiny settings: the tiny AM-chirp store of tests/_stores.py (0.25 s at 2048 Hz) and the tiny DTFA
settings of tests/test_matching.py (1 s at 2048 Hz, a small JTFS)."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch
from _stores import build_tiny_store

from pnp.audio import (
    condition,
    fit_length,
    read_audio,
    resample,
    resample_ratio,
    synth_alignment,
    synth_level,
    to_mono,
    write_audio,
)
from pnp.cli import main
from pnp.data import StoreDataset
from pnp.matching import grid_nodes, make_problem
from pnp.matching.descent import NEAR_RANGE, adam
from pnp.pipelines.matching import run_matching
from pnp.pipelines.predict import predict
from pnp.pipelines.training import train
from pnp.training.evaluate import score
from pnp.training.predict import FAR_RELATIVE

pytestmark = pytest.mark.filterwarnings("ignore:Signal support is too small")

CLI_SYNTH = ["--synth-config", "sample_rate=2048", "duration=1"]  # N = 2048, as tests/test_matching.py
CLI_JTFS = ["--loss-config", "J=6", "Q=[4,1]", "J_fr=2", "Q_fr=1", "T=256", "--decimation", "1"]
TARGET = (8.49, 1.49)  # (f_m, gamma), f_c = 512 Hz


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The tiny store (27 chirps, 0.25 s at 2048 Hz) and a 2-epoch P-loss run on it."""
    d = tmp_path_factory.mktemp("recording")
    store = build_tiny_store(d / "tiny.zarr", jacobian=False)
    trainer = train(store, loss="ploss", out=d / "run", epochs=2, batch_size=8, lr=1e-3, seed=0, progress=False)
    return {"store": store, "run": trainer.run_dir_}


def _wav(path, audio, rate, subtype="FLOAT") -> str:
    sf.write(str(path), np.asarray(audio), int(rate), subtype=subtype)
    return str(path)


# ============================================================================ pnp.audio
def test_resampling_is_polyphase_and_band_limited():
    t_in = np.arange(4096) / 4096.0
    y = resample(np.sin(2 * np.pi * 100.0 * t_in), 4096, 2048)
    assert y.shape == (2048,)
    t_out = np.arange(2048) / 2048.0
    # the same sine at the new rate, away from the ends (the filter's transient)
    np.testing.assert_allclose(y[64:-64], np.sin(2 * np.pi * 100.0 * t_out)[64:-64], atol=2e-3)
    # a tone above the new Nyquist frequency (1024 Hz) is removed
    gone = resample(np.sin(2 * np.pi * 1500.0 * t_in), 4096, 2048)
    assert np.sqrt(np.mean(gone[64:-64] ** 2)) < 1e-3
    # upsampling keeps the sine too; the ratio is reduced
    up = resample(np.sin(2 * np.pi * 100.0 * t_out), 2048, 3072)
    assert up.shape == (3072,)
    np.testing.assert_allclose(up[96:-96], np.sin(2 * np.pi * 100.0 * np.arange(3072) / 3072.0)[96:-96], atol=2e-3)
    assert resample_ratio(44100, 8192) == (2048, 11025) and resample_ratio(48000, 22050) == (147, 320)
    x = np.random.default_rng(0).standard_normal(100)
    assert resample(x, 2048, 2048) is not None and np.array_equal(resample(x, 2048, 2048), x)
    with pytest.raises(ValueError, match="cannot resample 100003 Hz to 8192 Hz"):
        resample_ratio(100003, 8192)


def test_padding_trimming_and_mono():
    x = np.arange(1.0, 7.0)  # 1 .. 6
    y, padded, trimmed, start = fit_length(x, 4, "start")
    assert y.tolist() == [1, 2, 3, 4] and (padded, trimmed, start) == (0, 2, 0)
    y, *rest = fit_length(x, 4, "centre")
    assert y.tolist() == [2, 3, 4, 5] and rest == [0, 2, 1]
    y, *rest = fit_length(np.array([0.0, 0.1, 3.0, -3.0, 0.2, 0.0]), 2, "loudest")
    assert y.tolist() == [3.0, -3.0] and rest == [0, 4, 2]
    y, *rest = fit_length(x, 9, "start")
    assert y.tolist() == [1, 2, 3, 4, 5, 6, 0, 0, 0] and rest == [3, 0, 0]
    y, *rest = fit_length(x, 9, "centre")
    assert y.tolist() == [0, 1, 2, 3, 4, 5, 6, 0, 0] and rest == [3, 0, -1]
    y, *rest = fit_length(x, 6, "loudest")
    assert y.tolist() == x.tolist() and rest == [0, 0, 0]
    stereo = np.array([[1.0, 3.0], [2.0, -2.0]])
    assert to_mono(stereo).tolist() == [2.0, 0.0] and to_mono(stereo[:, :1]).tolist() == [1.0, 2.0]
    import pnp.synth

    assert synth_level(pnp.synth.get("ftm")) == "peak" and synth_level(pnp.synth.get("amchirp")) == "asis"
    assert synth_alignment(pnp.synth.get("ftm")) == "start" and synth_alignment(pnp.synth.get("arpeggio")) == "centre"


def test_condition_states_every_adaptation(tmp_path):
    rng = np.random.default_rng(1)
    left = 0.3 * np.sin(2 * np.pi * 200.0 * np.arange(4096) / 4096.0)
    right = 0.1 * rng.standard_normal(4096)
    path = _wav(tmp_path / "st.wav", np.stack([left, right], axis=1), 4096)
    rec = read_audio(path)
    assert (rec.channels, rec.frames, rec.sample_rate, rec.format, rec.subtype) == (2, 4096, 4096, "WAV", "FLOAT")
    c = condition(rec, 2048.0, 512, level="peak", align="centre")
    mono = resample(to_mono(rec.audio), 4096, 2048)  # 2048 samples; the middle 512 are kept
    expected = mono[768:1280]
    np.testing.assert_allclose(c.audio, expected / np.abs(expected).max(), rtol=0, atol=1e-12)
    gain = 1.0 / np.abs(expected).max()
    assert c.steps == [
        "mixed 2 channels to mono (mean)",
        "resampled 4096 Hz -> 2048 Hz (resample_poly, up 1 / down 2, Kaiser beta 5)",
        "trimmed 1536 samples (0.75 s): kept the middle 0.25 s, samples 768 to 1279 (at the resampled rate)",
        f"peak-normalised (gain {20 * np.log10(gain):+.2f} dB)",
    ]
    r = c.report
    assert (r["channels_in"], r["sample_rate_in"], r["trimmed_samples"], r["padded_samples"], r["start_sample"]) == \
        (2, 4096, 1536, 0, 768)
    assert r["gain"] == pytest.approx(gain) and r["align"] == "centre" and r["resampled"] is True
    # a short file (FLAC, 16 bits) is zero-padded at the end (start) or on both sides (centre), as stated
    short = read_audio(_wav(tmp_path / "short.flac", left[:300], 2048, "PCM_16"))
    assert (short.format, short.subtype) == ("FLAC", "PCM_16")
    c = condition(short, 2048.0, 512, align="start")
    np.testing.assert_allclose(c.audio[:300], left[:300], atol=2**-15)
    assert not c.audio[300:].any()
    assert c.steps == ["zero-padded 212 samples at the end (0.1035 s)"]
    c = condition(short, 2048.0, 512, align="centre")
    assert not c.audio[:106].any() and not c.audio[406:].any()
    assert c.steps == ["zero-padded 212 samples (106 before, 106 after) (0.1035 s)"]
    # a file already in the synth's format is untouched (float32 WAV: exact)
    same = read_audio(_wav(tmp_path / "same.wav", left[:512].astype(np.float32), 2048))
    c = condition(same, 2048.0, 512)
    assert c.steps == [] and np.array_equal(c.audio, left[:512].astype(np.float32).astype(np.float64))


def _bad_files(d) -> dict[str, tuple[str, str]]:
    """name → (path, message) of every kind of bad input."""
    good = np.sin(np.arange(2048) / 5.0) * 0.5
    b = open(_wav(d / "good.wav", good, 2048), "rb").read()
    (d / "corrupt.wav").write_bytes(b"RIFF" + b"\0" * 40 + b[44:])
    (d / "truncated.wav").write_bytes(b[: len(b) // 2])
    (d / "song.m4a").write_text("not audio")
    (d / "adir.wav").mkdir()
    nan = good.copy()
    nan[10] = np.nan
    return {
        "silent": (_wav(d / "silent.wav", np.zeros(2048), 2048, "PCM_16"), "silent (peak -inf dBFS, below -120 dBFS)"),
        "cancelling": (_wav(d / "cancel.wav", np.stack([good, -good], 1), 2048),
                       "silent after mixing its 2 channels to mono"),
        "nan": (_wav(d / "nan.wav", nan, 2048), "holds non-finite samples (NaN or infinity)"),
        "empty": (_wav(d / "empty.wav", np.zeros(0), 2048), "holds no samples"),
        "corrupt": (str(d / "corrupt.wav"), "not a readable WAV file (corrupt or truncated?)"),
        "truncated": (str(d / "truncated.wav"), "truncated (its header declares 8192 bytes of samples, the file holds"),
        "unsupported": (str(d / "song.m4a"), "unsupported format '.m4a'; pnp reads WAV, FLAC, OGG, MP3"),
        "directory": (str(d / "adir.wav"), "is a directory, expected a sound file"),
        "too short": (_wav(d / "click.wav", good[:20], 2048), "too short (0.009766 s); the synth's sounds last 0.25 s "
                      "and at least 0.0625 of that (0.01562 s) is needed"),
        "silent where kept": (_wav(d / "late.wav", np.concatenate([np.zeros(2048), good]), 2048),
                              "silent in the part kept"),
    }


def test_bad_audio_files_are_one_line_errors(tmp_path):
    for name, (path, message) in _bad_files(tmp_path).items():
        with pytest.raises(ValueError) as err:
            condition(read_audio(path), 2048.0, 512, align="start")
        text = str(err.value)
        assert message in text and path in text and "\n" not in text, (name, text)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_audio(tmp_path / "missing.wav")


# ============================================================================ pnp predict
def test_predict_reads_back_what_evaluate_scores(run, tmp_path, capsys):
    """Sounds rendered by the store's synth, written as float32 WAVs and read back: the same ν̂
    as the encoder pass of pnp evaluate (score()) to float32 round-off, θ̂ = θ(ν̂), and the
    JTFS distance of pnp evaluate to the WAV's float32 rounding."""
    best = os.path.join(run["run"], "best.pt")
    result, arr = score(best, split="test", progress=False)
    ds = StoreDataset(run["store"], split="test", fields=("theta", "nu"), input="audio", dtype=torch.float64)
    audio = ds.get_batch(range(len(ds)))["audio"].numpy()
    wavs = [str(tmp_path / f"s{i}.wav") for i in range(len(ds))]
    for w, x in zip(wavs, audio):
        write_audio(w, x, 2048)
    out = tmp_path / "pred" / "p.csv"
    res = predict(run["run"], wavs, out=out, resynth=tmp_path / "wav", batch_size=3, progress=False)
    nu_hat = np.array([[r["nu_hat"][p] for p in res["params"]] for r in res["files"]])
    np.testing.assert_allclose(nu_hat, arr["nu_hat"], rtol=0, atol=1e-6)
    param = ds.parametrization
    theta = param.theta(torch.as_tensor(nu_hat)).numpy()
    assert res["params"] == ["f_c", "f_m", "gamma"] and res["level"] == "asis" and res["align"] == "centre"
    for r, t in zip(res["files"], theta):
        assert r["steps"] == [] and r["padded_samples"] == 0 and r["trimmed_samples"] == 0
        np.testing.assert_allclose([r["theta_hat"][p] for p in ("f_c", "f_m", "gamma")], t, rtol=1e-12)
    np.testing.assert_allclose([r["jtfs_distance"] for r in res["files"]], arr["jtfs"], rtol=1e-3)
    np.testing.assert_allclose([r["mss_distance"] for r in res["files"]], arr["mss"], rtol=1e-3)
    assert all((r["note"] != "") == (r["jtfs_relative"] > FAR_RELATIVE) for r in res["files"])
    # the resynthesis WAVs are g(θ̂)
    synth = ds.synth
    with torch.no_grad():
        x_hat = synth(torch.as_tensor(theta), validate=False).numpy()
    for k, w in enumerate(wavs):
        y, rate = sf.read(tmp_path / "wav" / os.path.basename(w), dtype="float64")
        assert rate == 2048 and np.array_equal(y, x_hat[k].astype(np.float32).astype(np.float64))
    # CSV, JSON and one figure per file
    rows = list(csv.DictReader(open(out)))
    assert [os.path.basename(r["file"]) for r in rows] == [os.path.basename(w) for w in wavs]
    assert set(rows[0]) >= {"nu_f_c", "theta_f_c [Hz]", "theta_gamma [oct/s]", "jtfs_distance", "mrstft", "note"}
    np.testing.assert_allclose([float(r["nu_f_m"]) for r in rows], nu_hat[:, 1], rtol=1e-6)
    js = json.load(open(tmp_path / "pred" / "p.json"))
    assert js["conditioning"]["resampler"].startswith("scipy.signal.resample_poly") and len(js["files"]) == len(wavs)
    assert all((tmp_path / "pred" / "p_figures" / f"s{i}.png").stat().st_size > 10_000 for i in range(len(wavs)))
    # the CLI prints the table
    assert main(["predict", run["run"], wavs[0], "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "1 file(s) -> amchirp at 2048 Hz, 512 samples (level asis, align centre; cpu)" in text
    assert "f_c [Hz]" in text and "s0.wav" in text


def test_predict_adapts_other_formats_and_flags_a_poor_fit(run, tmp_path, capsys):
    import pnp.synth

    long_chirp = pnp.synth.get("amchirp", sample_rate=4096.0, duration=1.0)
    with torch.no_grad():
        x = long_chirp(torch.tensor([600.0, 8.0, 2.0], dtype=torch.float64)).numpy()
    stereo = _wav(tmp_path / "chirp.wav", np.stack([x, x], axis=1), 4096)
    hum = _wav(tmp_path / "hum.wav", 0.5 * np.sin(2 * np.pi * 50.0 * np.arange(512) / 2048.0), 2048)
    out = tmp_path / "p.csv"
    assert main(["predict", run["run"], stereo, hum, "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert ("chirp.wav: mixed 2 channels to mono (mean); resampled 4096 Hz -> 2048 Hz (resample_poly, up 1 / down 2, "
            "Kaiser beta 5); trimmed 1536 samples (0.75 s): kept the middle 0.25 s, samples 768 to 1279") in text
    rows = list(csv.DictReader(open(out)))
    assert (rows[0]["sample_rate_in"], rows[0]["channels_in"], rows[0]["trimmed_samples"], rows[0]["start_sample"]) == \
        ("4096", "2", "1536", "768")
    assert float(rows[0]["jtfs_relative"]) < FAR_RELATIVE and rows[0]["note"] == ""
    # a 50 Hz hum is no chirp: its resynthesis misses most of its JTFS, and the note says so
    assert float(rows[1]["jtfs_relative"]) > FAR_RELATIVE and "the input may not be a sound of this synth" in rows[1]["note"]
    assert "note: hum.wav: poor resynthesis (relative JTFS distance" in text


# ============================================================================ pnp match --target-audio
def test_match_target_audio_recovers_the_chirp_as_match_does(tmp_path, capsys):
    """A chirp rendered by pnp synth as a float32 WAV: JTFS descent from 5 far initialisations
    ends within 0.1 of θ* in ν, as pnp match with the synthetic target does, from the same points."""
    wav = str(tmp_path / "chirp.wav")
    assert main(["synth", "amchirp", "--theta", f"512,{TARGET[0]},{TARGET[1]}", *CLI_SYNTH, "--format", "float32",
                 "--out", wav]) == 0
    common = ["match", "--loss", "jtfs", "--init", "far", "--n-inits", "5", "--iters", "100", "--quiet", *CLI_SYNTH,
              *CLI_JTFS]
    target = ",".join(map(str, TARGET))
    assert main([*common, "--target-audio", wav, "--truth", target, "--out", str(tmp_path / "audio")]) == 0
    assert main([*common, "--target", target, "--out", str(tmp_path / "synthetic")]) == 0
    a = json.load(open(tmp_path / "audio" / "summary.json"))
    s = json.load(open(tmp_path / "synthetic" / "summary.json"))
    assert len(a["final_distance"]) == 5 and max(a["final_distance"]) < 0.1 and max(s["final_distance"]) < 0.1
    assert a["runs"][0]["initial_theta"] == s["runs"][0]["initial_theta"] and min(a["runs"][0]["initial_distance"]) >= 1
    assert a["target"] is None and a["truth"] == list(TARGET) and s["target"] == list(TARGET)
    assert a["best"]["theta"] == pytest.approx(dict(zip(("f_m", "gamma"), TARGET)), rel=1e-3)
    assert a["best"]["theta_full"]["f_c"] == 512.0 and a["target_audio"]["steps"] == []
    y, rate = sf.read(tmp_path / "audio" / "resynthesis.wav")
    x, _ = sf.read(wav)
    assert rate == 2048 and np.max(np.abs(y - x)) < 1e-2 * np.max(np.abs(x))
    assert (tmp_path / "audio" / "match.png").stat().st_size > 10_000
    text = capsys.readouterr().out
    assert "100% within 0.1" in text and "lowest final loss" in text


def test_match_init_from_starts_at_the_encoder_prediction(run, tmp_path):
    wav = str(tmp_path / "chirp.wav")
    assert main(["synth", "amchirp", "--theta", f"512,{TARGET[0]},{TARGET[1]}", *CLI_SYNTH, "--format", "float32",
                 "--out", wav]) == 0
    argv = ["match", "--loss", "mss", "--loss-config", "window_sizes=[32,64,128]", *CLI_SYNTH, "--target-audio", wav,
            "--init-from", run["run"], "--n-inits", "3", "--iters", "2", "--quiet", "--out", str(tmp_path / "m")]
    assert main(argv) == 0
    s = json.load(open(tmp_path / "m" / "summary.json"))
    # the prediction pnp predict makes of the same file (conditioned for the run's store: 0.25 s)
    p = predict(run["run"], [wav], progress=False)["files"][0]
    assert s["init"] == "predicted" and s["init_from"]["theta_hat"] == pytest.approx(p["theta_hat"], rel=1e-12)
    start = np.clip([p["theta_hat"]["f_m"], p["theta_hat"]["gamma"]], [4.0, 0.5], [16.0, 4.0])
    np.testing.assert_allclose(s["runs"][0]["initial_theta"][0], start, rtol=1e-12)
    nu0 = np.asarray(s["runs"][0]["nu"])[:, 0]  # (inits, P) at iteration 0
    d = np.linalg.norm(nu0[1:] - nu0[0], axis=1)
    assert np.all((d >= NEAR_RANGE[0] - 1e-12) & (d <= NEAR_RANGE[1] + 1e-12))
    assert s["final_distance"] is None and s["init_from"]["held_fixed"] == {"f_c": 512.0}


def test_grid_init_takes_the_lowest_loss_nodes_and_adam_descends(tmp_path):
    problem = make_problem("amchirp", "mss", synth_config={"sample_rate": 2048.0, "duration": 1.0},
                           loss_config={"window_sizes": (32, 64, 128)})
    from pnp.audio import Conditioned

    with torch.no_grad():
        x = problem.render(torch.as_tensor(problem.nu(np.array(TARGET))[None], dtype=torch.float32))[0].double().numpy()
    tgt = Conditioned(x, 2048.0, {"path": "rendered"}, [])
    s = run_matching(problem, target_audio=tgt, init="grid", init_grid=4, n_inits=3, iters=30, optimizer="adam",
                     progress=False, truth=np.array(TARGET))
    nodes = grid_nodes(4, 2)
    loss, _ = problem.evaluate(nodes, problem.audio_features(x), grad=False)
    np.testing.assert_allclose(np.asarray(s["runs"][0]["nu"])[:, 0], nodes[np.argsort(loss)[:3]])
    assert s["init"] == "grid" and s["optimizer"] == "adam" and len(s["final_distance"]) == 3
    assert s["best"]["loss"] < float(np.sort(loss)[0])  # Adam lowered the best node's loss
    # Adam on a quadratic reaches the minimum, within the box
    c = np.array([[0.3, -0.2]])
    res = adam(lambda nu: (((nu - c) ** 2).sum(1), 2 * (nu - c)), np.array([[-0.9, 0.9], [0.9, -0.9]]), iters=300,
               lr=0.02, target_nu=c[0])
    assert np.all(res.distance[-1] < 1e-3) and np.all(np.abs(res.nu) <= 1)


def test_ftm_matching_of_a_rendered_drum(tmp_path):
    """The FTM drum (all five parameters free): the WAV of g(θ*) read back has Φ g(θ*) as its
    features to float32 round-off, and θ* is a zero of the loss."""
    problem = make_problem("ftm", "mss", synth_config={"sample_rate": 8192.0, "n_samples": 1024},
                           loss_config={"window_sizes": (32, 64, 128)})
    assert problem.free == ("omega", "tau", "p", "D", "alpha")
    truth = np.array([1000.0, 0.3, 1e-3, 1e-3, 0.6])
    with torch.no_grad():
        x = problem.synth(torch.as_tensor(truth[None]))[0].numpy()
    wav = str(tmp_path / "drum.wav")
    write_audio(wav, x, 8192)
    cond = condition(read_audio(wav), 8192.0, 1024, level=synth_level(problem.synth))
    assert cond.steps == []  # already peak 1: the FTM synth peak-normalises
    f_audio, f_theta = problem.audio_features(cond.audio), problem.target_features(truth)
    torch.testing.assert_close(f_audio, f_theta, rtol=1e-4, atol=1e-4 * float(f_theta.abs().max()))
    s = run_matching(problem, target_audio=cond, truth=truth, start=problem.nu(truth), n_inits=2, iters=2,
                     progress=False)
    L0 = np.asarray(s["runs"][0]["loss"])[:, 0]
    assert L0[0] < 1e-8 * float((f_theta**2).sum()) < L0[1]  # the truth is a zero, a near point is not
    assert s["final_distance"][0] < 1e-3 and s["init"] == "predicted"
