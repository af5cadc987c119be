"""Bad inputs across every sub-command: exactly one line on stderr naming the option or file and
what is allowed, exit status 2, no traceback, and nothing created on disk.

The table runs in-process (``pnp.cli.main(argv)``); a few cases run as ``python -m pnp`` to check
the real process's stderr and exit status.  Placeholders: STORE (a tiny real store), SPEC (its
spec), MISSING (a path that does not exist), FILE (a regular file), UNDER (a path under FILE),
ADIR (an existing directory), NOAUDIO (a tiny store without audio), OUT (a new output path that
must not appear), TINY (small DTFA
synth settings: 1 s at 2048 Hz), RUN (a 1-epoch run on the store), WAV / SILENT / CORRUPT / M4A /
SHORT (a sound file, a silent one, a corrupt WAV, a text file named .m4a, a 10-sample WAV).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _stores import build_tiny_store, tiny_spec_text

from pnp.cli import main

TINY = "--synth-config sample_rate=2048 duration=1"
UNDER_FILE = "--out UNDER: FILE is a regular file, not a directory"
NO_S3FS = importlib.util.find_spec("s3fs") is None

CASES = [
    # -- the shared vocabulary: ranges and choices, enforced by the parser
    ("knn STORE --block-size 3 --out OUT", "pnp knn: error: --block-size must be an integer in [16, 1024], got 3"),
    ("knn STORE --block-size 2000 --out OUT", "--block-size must be an integer in [16, 1024], got 2000"),
    ("knn STORE --k 0 --out OUT", "pnp knn: error: --k must be an integer >= 1, got 0"),
    ("knn STORE --k five --out OUT", "--k must be an integer >= 1, got five"),
    ("knn STORE --split all --out OUT", "--split must be one of test, val, train, got all"),
    ("knn STORE --space riemann --out OUT", "--space must be one of features, metric, got riemann"),
    ("knn STORE --threads 0 --out OUT", "--threads must be an integer >= 1, got 0"),
    ("knn STORE --bogus --out OUT", "pnp knn: error: unrecognized arguments: --bogus (see pnp knn --help)"),
    ("knn STORE", "the following arguments are required: --out (see pnp knn --help)"),
    ("knn STORE --k", "pnp knn: error: --k: expected one argument"),
    ("embed STORE --method tsne --out OUT", "--method must be one of isomap, pca, umap, got tsne"),
    ("embed STORE --n-components 0 --out OUT", "--n-components must be an integer >= 1, got 0"),
    ("embed STORE --split everything --out OUT", "--split must be one of test, val, train, all, got everything"),
    ("embed STORE --seed -1 --out OUT", "--seed must be an integer >= 0, got -1"),
    ("train STORE --loss pnp --workers 2 --out OUT",
     "pnp train: error: --workers is not an option of this command (--workers means dask workers; the DataLoader's "
     "processes are --loader-workers)"),
    ("train STORE --loss hinge --out OUT", "--loss must be one of ploss, pnp, mss, jtfs, mrstft, specl2, scrapl, got hinge"),
    ("train STORE --loss scrapl --optimizer sgd --out OUT",
     "--optimizer must be one of adam, p-adam-saga, p-adam, p-saga, got sgd"),
    ("train STORE --loss scrapl --theta-is 0 --out OUT", "--theta-is must be an integer >= 1, got 0"),
    ("train STORE --loss pnp --device gpu --out OUT", "--device must be one of auto, cpu, cuda, got gpu"),
    ("train STORE --loss pnp --epochs 0 --out OUT", "--epochs must be an integer >= 1, got 0"),
    ("train STORE --loss pnp --lr 0 --out OUT", "--lr must be a finite number > 0, got 0"),
    ("train STORE --loss pnp --lr nan --out OUT", "--lr must be a finite number > 0, got nan"),
    ("train STORE --loss pnp --schedule lm --accelerator 1.5 --out OUT",
     "--accelerator must be a finite number in (0, 1], got 1.5"),
    ("train STORE --loss pnp --schedule lm --brake 0.5 --out OUT", "--brake must be a finite number >= 1, got 0.5"),
    ("train STORE --loss pnp --loader-workers -1 --out OUT", "--loader-workers must be an integer >= 0, got -1"),
    ("train STORE --loss pnp --batch-size 0 --out OUT", "--batch-size must be an integer >= 1, got 0"),
    ("evaluate MISSING --split holdout", "--split must be one of test, val, train, all, got holdout"),
    ("evaluate MISSING --batch-size 0", "--batch-size must be an integer >= 1, got 0"),
    ("store verify STORE --recompute -1", "pnp store verify: error: --recompute must be an integer >= 0, got -1"),
    ("store verify STORE --rtol 0", "--rtol must be a finite number > 0, got 0"),
    ("store verify STORE --device tpu", "--device must be one of auto, cpu, cuda, got tpu"),
    ("store frob STORE", "pnp store: error: ACTION must be one of info, verify, got frob"),
    ("precompute SPEC --store OUT --limit 0", "pnp precompute: error: --limit must be an integer >= 1, got 0"),
    ("precompute SPEC --store OUT --workers 0", "--workers must be an integer >= 1, got 0"),
    ("precompute SPEC --store OUT --threads-per-worker 0", "--threads-per-worker must be an integer >= 1, got 0"),
    ("precompute SPEC --store OUT --device tpu", "--device must be one of auto, cpu, cuda, got tpu"),
    ("landscape --loss jtfs --threads 0 --out OUT", "--threads must be an integer >= 1, got 0"),
    ("landscape --loss jtfs --batch-size 0 --out OUT", "--batch-size must be an integer >= 1, got 0"),
    ("landscape --loss jtfs --seed x --out OUT", "--seed must be an integer >= 0, got x"),
    ("landscape --loss jtfs --decimation 3 --out OUT", "--decimation must be a power of two >= 1, got 3"),
    ("landscape --loss cqt --out OUT", "--loss must be one of jtfs, mss, got cqt"),
    ("landscape --loss jtfs --preset huge --out OUT", "--preset must be one of fast, paper, got huge"),
    ("landscape --loss jtfs --synth drum --out OUT", "--synth must be one of amchirp, arpeggio, got drum"),
    ("landscape --loss jtfs --grid 1 --out OUT", "--grid must be an integer >= 2, got 1"),
    ("match --loss mss --init close --out OUT", "--init must be one of far, near, anywhere, grid, got close"),
    ("match --loss mss --optimizer sgd --out OUT", "--optimizer must be one of bold, adam, got sgd"),
    ("match --loss mss --synth drum --out OUT", "--synth must be one of amchirp, arpeggio, ftm, got drum"),
    ("match --loss mss --init-grid 0 --out OUT", "--init-grid must be an integer >= 1, got 0"),
    ("predict RUN WAV --level loud", "pnp predict: error: --level must be one of auto, asis, peak, got loud"),
    ("predict RUN WAV --align end", "--align must be one of auto, start, centre, loudest, got end"),
    ("predict RUN WAV --batch-size 0", "--batch-size must be an integer >= 1, got 0"),
    ("predict RUN WAV --device tpu", "--device must be one of auto, cpu, cuda, got tpu"),
    ("predict RUN", "the following arguments are required: AUDIO (see pnp predict --help)"),
    ("match --loss mss --n-inits 0 --out OUT", "--n-inits must be an integer >= 1, got 0"),
    ("match --loss mss --threshold -1 --out OUT", "--threshold must be a finite number > 0, got -1"),
    ("chirp-pairs --n-rates 1 --out OUT", "--n-rates must be an integer >= 2, got 1"),
    ("study pnp STORE --seeds 0 --out OUT", "--seeds must be an integer >= 1, got 0"),
    ("study pnp STORE --lr-plateau soon --out OUT", "--lr-plateau must be an integer >= 0 or none, got soon"),
    ("study pnp STORE --workers -1 --out OUT", "--workers must be an integer >= 0, got -1"),
    ("list things", "pnp list: error: WHAT must be one of synths, representations, presets, specs, got things"),
    ("synth amchirp --theta 600,8,2 --format mp3", "--format must be one of pcm16, float32, got mp3"),
    ("frobnicate", "pnp: error: COMMAND must be one of synth, precompute, store, landscape, match, chirp-pairs, "
                   "train, evaluate, predict, study, knn, embed, list"),
    # -- values checked once the inputs are read (still before any output is created)
    ("landscape --loss jtfs TINY --loss-config J=40 --out OUT",
     "shape must be at least 2**J = 1099511627776 samples for J = 40 octaves, got 512; use J <= 9"),
    ("landscape --loss jtfs TINY --loss-config wobble=1 --out OUT", "representation 'jtfs' has no option 'wobble'; allowed: J, J_fr, Q"),
    ("landscape --loss jtfs TINY --loss-config J --out OUT", "--loss-config entries must look like key=value, got 'J'"),
    ("landscape --loss mss --synth-config colour=red --out OUT", "unknown config key(s) ['colour'] for synth 'amchirp'"),
    ("landscape --loss mss TINY --target 20,1.49 --out OUT", "--target: f_m = 20 is outside the parameter space [4, 16]"),
    ("landscape --loss mss TINY --shift 2048 --out OUT", "--shift must be an integer in [0, 2047], got 2048"),
    ("landscape --loss mss TINY --shift 8 --random-shift 8:12 --out OUT", "mutually exclusive"),
    ("match --loss jtfs TINY --loss-config wobble=1 --out OUT", "representation 'jtfs' has no option 'wobble'; allowed: J, J_fr, Q"),
    ("match --loss mss TINY --shifts 4,4 --out OUT", "--shifts must not repeat a value"),
    ("chirp-pairs TINY --loss-config wobble=1 --out OUT", "representation 'jtfs' has no option 'wobble'; allowed: J, J_fr, Q"),
    # -- sound files (pnp predict, pnp match --target-audio): bad kinds are one-line errors
    ("predict RUN SILENT", "pnp predict: error: audio file SILENT: silent (peak -inf dBFS, below -120 dBFS)"),
    ("predict RUN CORRUPT", "audio file CORRUPT: not a readable WAV file (corrupt or truncated?)"),
    ("predict RUN M4A", "audio file M4A: unsupported format '.m4a'; pnp reads WAV, FLAC, OGG, MP3"),
    ("predict RUN SHORT", "audio file SHORT: too short (0.004883 s); the synth's sounds last 0.25 s"),
    ("predict RUN WAV MISSING", "audio file MISSING: no such file"),
    ("predict RUN ADIR", "audio file ADIR: is a directory, expected a sound file"),
    ("predict MISSING WAV", "no run directory"),
    ("predict ADIR WAV", "no best.pt in ADIR (not a training run, or no epoch finished yet)"),
    ("predict RUN WAV --weights final --out OUT.txt", "--out must be a .csv file path, got 'new_out.txt'"),
    ("predict RUN WAV --out ADIR", "--out ADIR: is a directory, expected a file path"),
    ("predict RUN WAV --out UNDER", "--out UNDER: FILE is a regular file, not a directory"),
    ("predict RUN WAV --resynth FILE", "--resynth FILE: exists and is not a directory"),
    ("match --loss mss TINY --target-audio SILENT --out OUT", "pnp match: error: audio file SILENT: silent"),
    ("match --loss mss TINY --target-audio CORRUPT --out OUT", "not a readable WAV file (corrupt or truncated?)"),
    ("match --loss mss TINY --target-audio M4A --out OUT", "unsupported format '.m4a'"),
    ("match --loss mss TINY --target-audio MISSING --out OUT", "audio file MISSING: no such file"),
    ("match --loss mss TINY --target-audio WAV --target 8,1.5 --out OUT",
     "--target and --target-audio are mutually exclusive: give one of them"),
    ("match --loss mss TINY --truth 8,1.5 --out OUT", "--truth applies to --target-audio only"),
    ("match --loss mss TINY --init-from RUN --out OUT", "--init-from applies to --target-audio only"),
    ("match --loss mss TINY --target-audio WAV --init far --out OUT",
     "--init far is measured from the truth: give --truth, or use --init anywhere or grid, or --init-from RUN_DIR"),
    ("match --loss mss TINY --target-audio WAV --truth 20,1.5 --out OUT",
     "--truth: f_m = 20 is outside the parameter space [4, 16]"),
    ("match --loss mss TINY --target-audio WAV --init grid --init-grid 2 --n-inits 5 --out OUT",
     "--init grid: 2**2 = 4 nodes, fewer than --n-inits 5; raise --init-grid or lower --n-inits"),
    ("match --loss mss TINY --target-audio WAV --init-from RUN --init grid --out OUT",
     "--init and --init-from are mutually exclusive"),
    ("match --loss mss TINY --target-audio WAV --init-from MISSING --out OUT", "no run directory"),
    ("match --loss mss --synth arpeggio TINY --target-audio WAV --init-from RUN --out OUT",
     "the run's encoder predicts amchirp parameters, not arpeggio"),
    ("match --loss mss --synth ftm --free omega,colour --out OUT",
     "--free must be comma-separated parameters of ftm (omega, tau, p, D, alpha), got 'omega,colour'"),
    ("match --loss mss --free f_m,f_m --out OUT", "--free must not repeat a parameter, got 'f_m,f_m'"),
    ("match --loss mss --fixed f_m=3 --out OUT",
     "--fixed entries must look like NAME=VALUE, NAME a parameter that is not free (f_c) and VALUE a finite number, "
     "got 'f_m=3'"),
    ("match --loss mss --fixed f_c=loud --out OUT", "VALUE a finite number, got 'f_c=loud'"),
    ("match --loss mss TINY --fixed f_c=5000 --out OUT", "fixed parameter f_c = 5000 is outside its bounds"),
    ("chirp-pairs TINY --loss-config J=40 --out OUT", "for J = 40 octaves, got 512; use J <= 9"),
    ("chirp-pairs TINY --shift 64 --reference 8,9 --out OUT", "--reference: gamma = 9 is outside"),
    ("train STORE --loss ploss --lam 1 --out OUT", "--lam and --damping apply to --loss pnp only, not ploss"),
    ("train STORE --loss pnp --lam -1 --out OUT", "--lam must be a finite number >= 0 (or max-eig-squared), got -1"),
    ("train STORE --loss pnp --steps-per-epoch 3 --out OUT", "--steps-per-epoch needs --order samples"),
    ("train STORE --loss pnp --epochs 2 --pretrain-epochs 2 --out OUT", "--pretrain-epochs must be < --epochs (2), got 2"),
    ("study pnp STORE --losses ploss,hinge --out OUT",
     "--losses must be one of ploss, pnp, pnp-pretrained, pnp-lm, mrstft, specl2, mss, jtfs, scrapl, scrapl-is, got hinge"),
    ("study pnp STORE --losses scrapl-is --theta-is 0 --out OUT", "--theta-is must be an integer >= 1, got 0"),
    ("study pnp STORE --losses scrapl-is --scrapl-is-seeds 0 --out OUT", "--scrapl-is-seeds must be an integer >= 1, got 0"),
    ("train STORE --loss pnp --optimizer p-adam --out OUT",
     "--optimizer p-adam (SCRAPL's path-wise optimiser) applies to --loss scrapl only, not pnp; use --optimizer adam"),
    ("train STORE --loss ploss --theta-is 4 --out OUT", "--theta-is applies to --loss scrapl only, not ploss"),
    ("train NOAUDIO --loss scrapl --out OUT", "has no audio (store.audio = true in its spec)"),
    ("study pnp STORE --epochs 2 --pretrain-epochs 2 --out OUT", "--pretrain-epochs must be an integer in [1, 1], got 2"),
    ("knn STORE --k 5000 --out OUT", "--k 5000 is larger than the train split"),
    ("embed STORE --max-samples 20 --n-neighbors 40 --out OUT", "--n-neighbors must be in [1, 19]"),
    ("synth piano --theta 1", "unknown synth 'piano'; available: amchirp, arpeggio, ftm"),
    ("synth amchirp --theta 600,8", "--theta needs 3 comma-separated values"),
    ("synth amchirp --theta 600,8,2 --synth-config sample_rate=1 --out OUT.wav", "the sound is silent"),
    ("precompute SPEC --store OUT --storage-options {bad", "--storage-options must be a JSON object"),
    # -- missing files and unwritable outputs
    ("knn MISSING --out OUT", "no store at"),
    ("knn STORE --compare MISSING --out OUT", "no store at"),
    ("embed MISSING --out OUT", "no store at"),
    ("store info MISSING", "no store at"),
    ("store verify MISSING", "pnp store: error: no store at"),
    ("evaluate MISSING", "no run directory"),
    ("train MISSING --loss ploss --out OUT", "no store at"),
    ("study pnp MISSING --workers 0 --out OUT", "no store at"),
    ("precompute MISSING --store OUT", "spec file not found"),
    ("precompute SPEC --store UNDER", "cannot create the store"),
    ("knn STORE --out UNDER", UNDER_FILE),
    ("embed STORE --out UNDER", UNDER_FILE),
    ("train STORE --loss ploss --out UNDER", UNDER_FILE),
    ("study pnp STORE --out UNDER", UNDER_FILE),
    ("landscape --loss mss --out UNDER", UNDER_FILE),
    ("match --loss mss --out UNDER", UNDER_FILE),
    ("chirp-pairs --out UNDER", UNDER_FILE),
    ("synth amchirp --theta 600,8,2 --out UNDER", UNDER_FILE),
    ("synth amchirp --theta 600,8,2 --plot UNDER", "--plot UNDER: FILE is a regular file, not a directory"),
    ("synth amchirp --theta 600,8,2 --out ADIR", "--out ADIR: is a directory, expected a file path"),
    ("knn STORE --out FILE", "--out FILE: exists and is not a directory"),
    pytest.param("precompute SPEC --store s3://pnp-test-bucket/x.zarr", "Install s3fs",
                 marks=pytest.mark.skipif(not NO_S3FS, reason="s3fs is installed"), id="precompute s3 without s3fs"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    """The placeholders' values (everything but OUT lives outside the test's working directory)."""
    d = tmp_path_factory.mktemp("inputs")
    store = build_tiny_store(d / "tiny.zarr", audio=True)
    no_audio = build_tiny_store(d / "tiny_no_audio.zarr", audio=False)
    spec = d / "tiny.toml"
    spec.write_text(tiny_spec_text(audio=True))
    (d / "a_file").write_text("x")
    (d / "a_dir").mkdir()
    return {"STORE": store, "SPEC": str(spec), "MISSING": str(d / "missing.zarr"), "FILE": str(d / "a_file"),
            "UNDER": str(d / "a_file" / "out"), "ADIR": str(d / "a_dir"), "ROOT": str(d), "NOAUDIO": no_audio, **_sounds(d, store)}


def _sounds(d: Path, store: str) -> dict[str, str]:
    """RUN (a 1-epoch run on the tiny store), WAV (a chirp), SILENT, CORRUPT, M4A, SHORT (10 samples)."""
    import numpy as np
    import soundfile as sf

    from pnp.pipelines.training import train

    run = train(store, loss="ploss", out=d / "run", epochs=1, batch_size=8, seed=0, progress=False).run_dir_
    tone = 0.5 * np.sin(np.arange(2048) / 3.0)
    sf.write(d / "chirp.wav", tone, 2048, subtype="FLOAT")
    sf.write(d / "silent.wav", np.zeros(2048), 2048)
    sf.write(d / "short.wav", tone[:10], 2048)
    (d / "corrupt.wav").write_bytes(b"RIFF" + bytes(40) + (d / "chirp.wav").read_bytes()[44:])
    (d / "song.m4a").write_text("not audio")
    names = {"RUN": run, "WAV": "chirp.wav", "SILENT": "silent.wav", "SHORT": "short.wav", "CORRUPT": "corrupt.wav",
             "M4A": "song.m4a"}
    return {k: v if k == "RUN" else str(d / v) for k, v in names.items()}


def _argv(case: str, inputs: dict[str, str]) -> list[str]:
    words = case.replace("TINY", TINY).split()
    return [w.replace("OUT", "new_out") if w.startswith("OUT") else inputs.get(w, w) for w in words]


def _tree(*roots: str | Path) -> set[str]:
    return {os.path.join(r, f) for root in roots for r, dirs, files in os.walk(root) for f in files + dirs}


@pytest.mark.parametrize("case, message", CASES, ids=[c[0] if isinstance(c, tuple) else c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_creates_nothing(case, message, inputs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # OUT resolves here
    before = _tree(tmp_path, inputs["ROOT"])
    assert main(_argv(case, inputs)) == 2
    err = capsys.readouterr().err
    for name in ("UNDER", "FILE", "ADIR", "SILENT", "CORRUPT", "M4A", "SHORT", "MISSING"):  # the paths given
        message = message.replace(name, inputs[name])
    assert message in err, err
    assert err.count("\n") == 1 and err.endswith("\n") and "Traceback" not in err
    assert _tree(tmp_path, inputs["ROOT"]) == before


def test_ctrl_c_is_exit_130_with_the_resume_hint(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr("pnp.cli.listing.run", interrupted)
    assert main(["list", "synths"]) == 130
    assert capsys.readouterr().err == "pnp list: interrupted\n"  # nothing to resume: no resume hint


@pytest.mark.parametrize("argv, message", [
    (["knn", "missing.zarr", "--block-size", "3", "--out", "o"], "pnp knn: error: --block-size must be an integer "
                                                                 "in [16, 1024], got 3"),
    (["train", "missing.zarr", "--loss", "ploss", "--out", "o"], "no store at"),
    (["landscape", "--loss", "jtfs", *TINY.split(), "--loss-config", "J=40", "--out", "o"], "use J <= 9"),
])
def test_a_real_process_prints_one_line_and_exits_2(argv, message, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pnp", *argv], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert message in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []
