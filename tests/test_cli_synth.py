"""``pnp synth``: WAV/PNG output, --describe, and clean one-line errors (exit 2, no traceback)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.io import wavfile

import pnp.synth as ps
from pnp.cli import main


def test_ftm_wav_pcm16(tmp_path, capsys):
    out = tmp_path / "drum.wav"
    theta = [1000.0, 0.3, 0.01, 0.001, 0.5]
    rc = main(["synth", "ftm", "--theta", ",".join(map(str, theta)), "--out", str(out), "--synth-config", "n_samples=8192"])
    assert rc == 0
    sr, data = wavfile.read(out)
    assert sr == 22050 and data.dtype == np.int16 and data.shape == (8192,)
    expected = ps.get("ftm", n_samples=8192)(torch.tensor([theta], dtype=torch.float64))[0].numpy()
    assert np.abs(data / 32767.0 - expected).max() < 1.0 / 32767.0
    assert np.abs(data).max() == 32767  # peak-normalised drum
    text = capsys.readouterr().out
    assert "8192 samples at 22050 Hz" in text and f"wrote {out}" in text


def test_amchirp_float_wav_with_config_and_plot(tmp_path):
    out, png = tmp_path / "chirp.wav", tmp_path / "chirp.png"
    rc = main(
        ["synth", "amchirp", "--theta", "600,8,3", "--out", str(out), "--plot", str(png), "--format", "float32",
         "--synth-config", "duration=0.5", "shift=10"]
    )
    assert rc == 0
    sr, data = wavfile.read(out)
    assert sr == 8192 and data.dtype == np.float32 and data.shape == (4096,)
    expected = ps.get("amchirp", duration=0.5, shift=10)(torch.tensor([[600.0, 8.0, 3.0]], dtype=torch.float64))[0]
    np.testing.assert_allclose(data, expected.numpy(), atol=1e-6)
    assert np.all(data[:10] == 0)
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pcm16_normalises_loud_sounds(tmp_path, capsys):
    out = tmp_path / "loud.wav"
    assert main(["synth", "amchirp", "--theta", "600,8,3.9", "--out", str(out), "--synth-config", "duration=1"]) == 0
    sr, data = wavfile.read(out)
    assert sr == 8192 and data.shape == (8192,) and np.abs(data).max() == 32767
    assert "normalised by" in capsys.readouterr().out


def test_arpeggio_default_length(tmp_path):
    out = tmp_path / "arp.wav"
    assert main(["synth", "arpeggio", "--theta", "8,1.5", "--out", str(out)]) == 0
    sr, data = wavfile.read(out)
    assert sr == 8192 and data.shape == (4 * 8192,)


def test_describe(capsys):
    assert main(["synth", "ftm", "--describe"]) == 0
    text = capsys.readouterr().out
    for token in ("omega", "tau", "alpha", "rad/s", "log", "linear", "251.189", "6309.57", "0.07", "0.8"):
        assert token in text
    assert '"name": "ftm"' in text and "n_samples = 65536" in text
    assert main(["synth", "arpeggio", "--describe", "--synth-config", "duration=2"]) == 0
    text = capsys.readouterr().out
    assert "f_m" in text and "gamma" in text and "oct/s" in text and "n_samples = 16384" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["synth", "ftm", "--theta", "1000,0.3,0.01"], "--theta needs 5 comma-separated values"),
        (["synth", "ftm", "--theta", "1000,0.9,0.01,0.001,0.5"], "'tau' (index 1) = 0.9 is outside its bounds [0.07, 0.8] s"),
        (["synth", "amchirp", "--theta", "600,abc,1"], "value for parameter 'f_m' is not a number: 'abc'"),
        (["synth", "amchirp", "--theta", "600,nan,1"], "'f_m' is not finite"),
        (["synth", "piano", "--theta", "1"], "unknown synth 'piano'; available: amchirp, arpeggio, ftm"),
        (["synth", "ftm"], "--theta is required"),
        (["synth", "ftm", "--describe", "--synth-config", "colour=red"], "unknown config key(s) ['colour']"),
        (["synth", "ftm", "--describe", "--synth-config", "n_samples"], "key=value"),
        (["synth", "ftm", "--describe", "--synth-config", "n_samples=-3"], "n_samples must be an integer >= 1"),
    ],
)
def test_bad_input_exit_2_one_line(argv, message, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.err.startswith("pnp synth: error: ")
    assert len(captured.err.strip().splitlines()) == 1
    assert "Traceback" not in captured.err + captured.out


def test_unwritable_output_is_a_clean_error(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(["synth", "arpeggio", "--theta", "8,1", "--out", str(blocker / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert f"{blocker} is a regular file, not a directory" in err and "Traceback" not in err
    assert err.count("\n") == 1  # one line, before any sound is rendered


def test_missing_output_folders_are_created(tmp_path):
    out = tmp_path / "new" / "folder" / "arp.wav"
    assert main(["synth", "arpeggio", "--theta", "8,1", "--out", str(out)]) == 0
    rate, data = wavfile.read(out)
    assert rate == 8192 and data.shape == (32768,)


def test_subprocess_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pnp", "synth", "ftm", "--theta", "1000,0.3,0.01,0.001,2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "'alpha' (index 4) = 2 is outside its bounds [0, 1]" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
