"""Bad inputs across every sub-command: exactly one line on stderr naming the option or file and
what is allowed, exit status 2, no traceback, and nothing created on disk.

The table runs in-process (``pnp.cli.main(argv)``); a few cases run as ``python -m pnp`` to check
the real process's stderr and exit status.  Placeholders: STORE (a tiny real store), SPEC (its
spec), MISSING (a path that does not exist), FILE (a regular file), UNDER (a path under FILE),
ADIR (an existing directory), OUT (a new output path that must not appear), TINY (small DTFA
synth settings: 1 s at 2048 Hz).
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
    ("train STORE --loss hinge --out OUT", "--loss must be one of ploss, pnp, mss, jtfs, mrstft, specl2, got hinge"),
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
    ("match --loss mss --init close --out OUT", "--init must be one of far, near, anywhere, got close"),
    ("match --loss mss --n-inits 0 --out OUT", "--n-inits must be an integer >= 1, got 0"),
    ("match --loss mss --threshold -1 --out OUT", "--threshold must be a finite number > 0, got -1"),
    ("chirp-pairs --n-rates 1 --out OUT", "--n-rates must be an integer >= 2, got 1"),
    ("study pnp STORE --seeds 0 --out OUT", "--seeds must be an integer >= 1, got 0"),
    ("study pnp STORE --lr-plateau soon --out OUT", "--lr-plateau must be an integer >= 0 or none, got soon"),
    ("study pnp STORE --workers -1 --out OUT", "--workers must be an integer >= 0, got -1"),
    ("list things", "pnp list: error: WHAT must be one of synths, representations, presets, specs, got things"),
    ("synth amchirp --theta 600,8,2 --format mp3", "--format must be one of pcm16, float32, got mp3"),
    ("frobnicate", "pnp: error: COMMAND must be one of synth, precompute, store, landscape, match, chirp-pairs, "
                   "train, evaluate, study, knn, embed, list"),
    # -- values checked once the inputs are read (still before any output is created)
    ("landscape --loss jtfs TINY --loss-config J=40 --out OUT",
     "shape must be at least 2**J = 1099511627776 samples for J = 40 octaves, got 512; use J <= 9"),
    ("landscape --loss jtfs TINY --loss-config wobble=1 --out OUT", "unexpected keyword argument 'wobble'"),
    ("landscape --loss jtfs TINY --loss-config J --out OUT", "--loss-config entries must look like key=value, got 'J'"),
    ("landscape --loss mss --synth-config colour=red --out OUT", "unknown config key(s) ['colour'] for synth 'amchirp'"),
    ("landscape --loss mss TINY --target 20,1.49 --out OUT", "--target: f_m = 20 is outside the parameter space [4, 16]"),
    ("landscape --loss mss TINY --shift 2048 --out OUT", "--shift must be an integer in [0, 2047], got 2048"),
    ("landscape --loss mss TINY --shift 8 --random-shift 8:12 --out OUT", "mutually exclusive"),
    ("match --loss jtfs TINY --loss-config wobble=1 --out OUT", "unexpected keyword argument 'wobble'"),
    ("match --loss mss TINY --shifts 4,4 --out OUT", "--shifts must not repeat a value"),
    ("chirp-pairs TINY --loss-config wobble=1 --out OUT", "unexpected keyword argument 'wobble'"),
    ("chirp-pairs TINY --loss-config J=40 --out OUT", "for J = 40 octaves, got 512; use J <= 9"),
    ("chirp-pairs TINY --shift 64 --reference 8,9 --out OUT", "--reference: gamma = 9 is outside"),
    ("train STORE --loss ploss --lam 1 --out OUT", "--lam and --damping apply to --loss pnp only, not ploss"),
    ("train STORE --loss pnp --lam -1 --out OUT", "--lam must be a finite number >= 0 (or max-eig-squared), got -1"),
    ("train STORE --loss pnp --steps-per-epoch 3 --out OUT", "--steps-per-epoch needs --order samples"),
    ("train STORE --loss pnp --epochs 2 --pretrain-epochs 2 --out OUT", "--pretrain-epochs must be < --epochs (2), got 2"),
    ("study pnp STORE --losses ploss,hinge --out OUT",
     "--losses must be one of ploss, pnp, pnp-pretrained, pnp-lm, mrstft, specl2, mss, jtfs, got hinge"),
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
    spec = d / "tiny.toml"
    spec.write_text(tiny_spec_text(audio=True))
    (d / "a_file").write_text("x")
    (d / "a_dir").mkdir()
    return {"STORE": store, "SPEC": str(spec), "MISSING": str(d / "missing.zarr"), "FILE": str(d / "a_file"),
            "UNDER": str(d / "a_file" / "out"), "ADIR": str(d / "a_dir"), "ROOT": str(d)}


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
    for name in ("UNDER", "FILE", "ADIR"):  # the message names the paths given
        message = message.replace(name, inputs[name])
    assert message in err, err
    assert err.count("\n") == 1 and err.endswith("\n") and "Traceback" not in err
    assert _tree(tmp_path, inputs["ROOT"]) == before


def test_ctrl_c_is_exit_130_with_the_resume_hint(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr("pnp.cli.listing.run", interrupted)
    assert main(["list", "synths"]) == 130
    assert capsys.readouterr().err == ("pnp list: interrupted; what was finished is kept: run the same command again "
                                       "to resume\n")


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
