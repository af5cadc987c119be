"""The ``pnp`` command: --version, pnp list, the shared option vocabulary, and the contract for
bad input (one line, exit 2, no traceback, nothing created; the full table is test_cli_inputs.py)."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import pytest

from pnp.cli import build_parser, catalogue, main
from pnp.cli.options import DEVICES


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"pnp {importlib.metadata.version('pnp')}"


def _heavy_modules_after(code: str) -> list[str]:
    probe = f"{code}; import sys; print(sorted({{'torch', 'numpy', 'dask', 'zarr'}} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1].replace("'", '"'))


def test_help_and_list_do_not_import_torch():
    """``pnp --help`` (every sub-command's parser) and ``pnp list`` answer without torch or numpy."""
    assert _heavy_modules_after("from pnp.cli import build_parser; build_parser()") == []
    for what in ("synths", "representations", "presets", "specs"):
        assert _heavy_modules_after(f"from pnp.cli import main; main(['list', '{what}'])") == [], what


def test_the_catalogue_is_the_library_s():
    """catalogue.json (what pnp list shows) equals what the library says now
    (regenerate with ``python -m pnp.cli.catalogue``)."""
    assert catalogue.build() == catalogue.load()


def test_list_synths_shows_units_bounds_and_config(capsys):
    assert main(["list", "synths"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "amchirp: The AM/FM chirp of the meso-dtfa repository (Vahidi et al.) and of the PNP papers (Han et al.)."
    assert "  sound: 32768 samples at 8192 Hz (4 s)" in out
    assert "    gamma  [0.5, 4] oct/s, log           chirp rate" in out
    assert "    tau    [0.07, 0.8] s, linear         decay time τ11 of the fundamental" in out
    assert any(line.startswith("  config (--synth-config KEY=VALUE): sample_rate=22050.0, n_samples=65536") for line in out)


def test_list_representations_presets_and_specs(capsys, tmp_path):
    assert main(["list", "representations"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "    J          int >= 1 (required): Number of octaves of the first- and second-order temporal wavelets " \
           "(max scale 2**J)." in out
    assert "    hop_ratio     float (default 0.25): Hop size as a fraction of the window, in (0, 1]; hop = " \
           "round(W * hop_ratio) must be >= 1 for every window size." in out
    assert main(["list", "presets"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "    amchirp jtfs: decimation 4; J=10, J_fr=5, Q=[8, 2], shape=[8192], T=2048, Q_fr=2, F=0, eps=1e-05, " \
           "pad_mode=reflect" in out
    assert main(["list", "specs", "--json"]) == 0
    specs = {s["name"]: s for s in json.loads(capsys.readouterr().out)}
    from pnp.spec import load_spec

    for s in specs.values():  # the TOML-only summary agrees with the spec loader
        spec = load_spec(s["path"])
        assert (s["sounds"], s["synth"], s["fixed"]) == (spec.n_samples, spec.synth_name, spec.fixed), s["name"]
    assert specs["amchirp_meso"]["free"] == ["f_m", "gamma"] and specs["demo"]["arrays"] == ["features", "Jacobians",
                                                                                             "metrics"]
    assert catalogue.shipped_specs(tmp_path) == []
    from pnp.cli.listing import format_specs

    assert format_specs([]) == "no dataset specs found (they ship in data/*.toml of a source checkout)"


def test_the_vocabulary_is_one_everywhere():
    """Every sub-command spells the shared options alike, with the same defaults and choices."""
    parser = build_parser()
    seen: dict[str, set] = {}
    for name, sub in _subparsers(parser):
        for action in sub._actions:
            for opt in action.option_strings:
                if opt in ("--device", "--seed", "--threads", "--quiet"):
                    seen.setdefault(opt, set()).add((action.default, tuple(action.choices or ())))
        opts = {o for a in sub._actions for o in a.option_strings if a.help != "==SUPPRESS=="}
        assert not opts & {"--no-progress", "--batch", "--config"}, name  # old spellings: hidden aliases only
        if name == "train":
            assert "--loader-workers" in opts and "--workers" not in opts
    assert seen == {"--device": {("auto", DEVICES)}, "--seed": {(0, ())}, "--threads": {(1, ())},
                    "--quiet": {(False, ())}}


def test_deprecated_spellings_still_parse_as_the_new_ones():
    parser = build_parser()
    a = parser.parse_args(["landscape", "--loss", "mss", "--batch", "4", "--no-progress", "--out", "x"])
    assert (a.batch_size, a.quiet) == (4, True)
    assert parser.parse_args(["synth", "ftm", "--config", "n_samples=8"]).synth_config == ["n_samples=8"]


def test_study_vocabulary_matches_the_study():
    from pnp.pipelines.study import DEFAULT_LOSSES, VARIANTS
    from pnp.vocabulary import STUDY_DEFAULT_LOSSES, STUDY_LOSSES

    assert (STUDY_LOSSES, STUDY_DEFAULT_LOSSES) == (tuple(VARIANTS), tuple(DEFAULT_LOSSES))


def _subparsers(parser):
    for action in parser._subparsers._group_actions:
        for name, sub in action.choices.items():
            if sub._subparsers is not None:
                yield from ((f"{name} {n}", s) for n, s in _subparsers(sub))
            else:
                yield name, sub


@pytest.mark.parametrize("argv, message", [
    (["landscape", "--loss", "jtfs", "--loss-config", "wobble=1"], "representation 'jtfs' has no option 'wobble'; allowed: J, J_fr, Q"),
    (["match", "--loss", "jtfs", "--loss-config", "wobble=1"], "representation 'jtfs' has no option 'wobble'; allowed: J, J_fr, Q"),
    (["chirp-pairs", "--loss-config", "wobble=1"], "representation 'jtfs' has no option 'wobble'; allowed: J, J_fr, Q"),
])
def test_bad_options_are_one_line_and_create_nothing(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()
