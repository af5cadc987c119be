"""Dataset specs: the shipped specs, normalisation, layouts, clear errors (all at once), the generated\ndocs/specs.md and ``pnp spec check``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pnp.spec import DatasetSpec, Problem, SpecError, SpecTypeError, load_spec, loads_spec
from pnp.spec_docs import markdown
from pnp.spec_schema import Spec, declared

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
FIXTURES = ROOT / "tests" / "fixtures"

BASE = """
name = "t"
[synth]
name = "amchirp"
config = { duration = 0.25 }
[grid]
kind = "jittered"
counts = [4, 3, 2]
[representation]
name = "jtfs"
config = { J = 6, Q = [4, 1], J_fr = 2, F = 2, T = "global" }
"""


def spec_text(**tables: str) -> str:
    """BASE with whole tables replaced / added (``grid='kind = "regular"...'``)."""
    parts = BASE.split("\n[")
    head, rest = parts[0], {p.split("]")[0]: p.split("]", 1)[1] for p in parts[1:]}
    for k, v in tables.items():
        rest[k] = "\n" + v + "\n"
    return head + "".join(f"\n[{k}]{v}" for k, v in rest.items())


def test_shipped_specs_sizes_and_splits():
    demo = load_spec(DATA / "demo.toml")
    assert demo.n_samples == 216 and demo.store["jacobian"] and demo.compute["dtype"] == "float64"
    assert np.bincount(demo.layout().split, minlength=3).tolist() == [184, 8, 24]

    meso = load_spec(DATA / "amchirp_meso.toml")
    L = meso.layout()
    assert meso.fixed == {"f_c": 512.0} and meso.parametrization().free == ("f_m", "gamma")
    assert L.theta.shape == (400, 2) and L.counts == (20, 20)
    # a log grid, bounds included: f_m = 4 * 4**(i/19), gamma = 0.5 * 8**(j/19)
    np.testing.assert_allclose(np.unique(L.theta[:, 0]), 4.0 * 4.0 ** (np.arange(20) / 19), rtol=1e-12)
    np.testing.assert_allclose(np.unique(L.theta[:, 1]), 0.5 * 8.0 ** (np.arange(20) / 19), rtol=1e-12)
    rc = meso.representation_config()
    assert rc["shape"] == 2**15 and rc["J"] == 12 and rc["Q"] == [8, 2] and rc["F"] == 0 and rc["T"] == 2**13
    assert rc["J_fr"] == 5 and rc["Q_fr"] == 2 and rc["log1p_c"] is None

    dafx = load_spec(DATA / "amchirp_dafx.toml")
    assert dafx.n_samples == 16**3 and dafx.layout().theta.shape == (4096, 3)
    assert dafx.build_synth().n_samples == 4 * 8192

    # the same grid under time scattering and MSS: identical samples and splits, features only
    dl = dafx.layout()
    for other in ("amchirp_dafx_scattering1d", "amchirp_dafx_mss"):
        o = load_spec(DATA / f"{other}.toml")
        np.testing.assert_array_equal(o.layout().theta, dl.theta)
        np.testing.assert_array_equal(o.layout().split, dl.split)
        assert not o.store["jacobian"] and not dafx.store["jacobian"]

    # the PNP AM/FM-chirp set as the authors built it, and its local variant (same rule)
    for name, bins_per_param, (lo, hi), n_test in (("amchirp_pnp", 30, (8, 21), 2700), ("amchirp_pnp_local", 12, (3, 8), 173)):
        chirps = load_spec(DATA / f"{name}.toml")
        n, n_val = bins_per_param**3, (hi - lo + 1) ** 3
        split = chirps.layout().split
        assert chirps.n_samples == n
        assert np.bincount(split, minlength=3).tolist() == [n - n_val - n_test, n_val, n_test]
        bins = chirps.layout().bins
        assert np.all((bins[split == 1] >= lo) & (bins[split == 1] <= hi))
        assert np.all(np.any((bins[split != 1] < lo) | (bins[split != 1] > hi), axis=1))
        rc = chirps.representation_config()
        assert (rc["J"], rc["J_fr"], rc["Q"], rc["Q_fr"], rc["F"], rc["T"], rc["pad_mode"]) == (
            13, 3, [12, 1], 1, 2, "global", "zero")
        assert rc["shape"] == 2**15 and chirps.build_synth().sample_rate == 8192.0
        assert chirps.compute["dtype"] == "mixed" and chirps.store["audio"] and chirps.store["jacobian"]
        assert chirps.dtype == torch.float64 and chirps.representation_dtype == torch.float32
    assert load_spec(DATA / "amchirp_pnp.toml").layout().split.tolist().count(0) == 21_556

    ftm = load_spec(DATA / "ftm_pnp.toml")
    L = ftm.layout()
    assert L.theta.shape == (100_000, 5)
    assert np.bincount(L.split, minlength=3).tolist() == [100_000 - 7776 - 10_000, 7776, 10_000]
    assert ftm.compression == {"compression": "log1p", "c": 1e-3}
    rc = ftm.representation_config()
    assert (rc["J"], rc["J_fr"], rc["Q"], rc["Q_fr"], rc["F"], rc["T"]) == (13, 3, [12, 1], 1, 2, "global")
    assert rc["log1p_c"] == 1e-3 and rc["shape"] == 2**16
    assert rc["pad_mode"] == "zero" and ftm.compute["dtype"] == "mixed"
    # jittered: one sample per cell, inside its bin, log-uniform → ν inside [-1, 1]
    assert np.all(np.abs(L.nu) <= 1) and np.unique(L.bins, axis=0).shape[0] == 100_000


def test_demo_representation_builds():
    demo = load_spec(DATA / "demo.toml")
    rep = demo.build_representation()
    assert rep.config()["log1p_c"] == 1e-3 and rep.N == 4096


def test_length_agnostic_representations_get_no_shape():
    mss = loads_spec(spec_text(representation='name = "mss"\nconfig = { window_sizes = [64, 256] }'))
    cfg = mss.representation_config()
    assert "shape" not in cfg and cfg["window_sizes"] == [64, 256]
    x = mss.build_synth()(np.array([[700.0, 8.0, 1.0]]))
    K = mss.build_representation().features(x).shape[-1]
    assert K == mss.build_representation().n_features(x.shape[-1])
    bad = loads_spec(spec_text(representation='name = "mss"\nconfig = { shape = 512 }'))
    with pytest.raises(ValueError, match="representation.config.shape: 'mss' takes no shape"):
        bad.build_representation()


def test_normalised_defaults_hash_and_round_trip():
    s = loads_spec(BASE)
    d = s.to_dict()
    assert d["grid"] == {"kind": "jittered", "counts": [4, 3, 2], "seed": 0}
    assert d["split"] == {"rule": "none"}
    assert d["features"] == {"compression": "none", "c": None}
    assert d["compute"] == {"dtype": "float64", "batch_size": 1}
    assert d["store"] == {"chunk_size": 64, "jacobian": True, "audio": False, "codec": "blosc-zstd", "level": 5}
    assert np.all(s.layout().split == 0)
    again = DatasetSpec.from_dict(d)
    assert again.hash == s.hash and again.diff(s) == []
    np.testing.assert_array_equal(again.layout().theta, s.layout().theta)
    # the description is cosmetic: same hash, no diff
    other = loads_spec('description = "hello"\n' + BASE)
    assert other.hash == s.hash and other.diff(s) == []
    # so is the micro-batch size (memory only: a CPU run may be resumed on a GPU with bigger batches)
    other = loads_spec(spec_text(compute="batch_size = 16"))
    assert other.hash == s.hash and other.diff(s) == []
    assert loads_spec(spec_text(compute='dtype = "float32"')).diff(s)[0].startswith("compute.dtype")
    # a single count applies to every free parameter
    one = loads_spec(spec_text(grid='kind = "regular"\ncounts = 3'))
    assert one.n_samples == 27 and one.to_dict()["grid"] == {"kind": "regular", "counts": 3, "centers": False}


def test_diff_names_fields():
    a = loads_spec(BASE)
    b = loads_spec(spec_text(grid='kind = "jittered"\ncounts = [4, 3, 3]\nseed = 2', store="chunk_size = 8"))
    diff = a.diff(b)
    assert [d.split(" ")[0] for d in diff] == ["grid.counts", "grid.seed", "store.chunk_size"]
    assert "this: [4, 3, 2], other: [4, 3, 3]" in diff[0]


def test_random_grid_and_random_split():
    s = loads_spec(spec_text(grid='kind = "random"\nsize = 50\nseed = 3',
                             split='rule = "random"\nfractions = [0.6, 0.2, 0.2]'))
    L = s.layout()
    assert len(L) == 50 and L.counts == (10, 10, 10)
    assert np.bincount(L.split, minlength=3).tolist() == [30, 10, 10]


def test_fixed_parameters_reduce_the_grid():
    s = loads_spec(spec_text(synth='name = "amchirp"\nconfig = { duration = 0.25 }\nfixed = { gamma = 2.0 }',
                             grid='kind = "regular"\ncounts = [3, 2]'))
    L = s.layout()
    assert L.theta.shape == (6, 2) and s.parametrization().free == ("f_c", "f_m")
    np.testing.assert_allclose(sorted(set(L.theta[:, 1])), [4.0, 16.0])


@pytest.mark.parametrize(
    "tables, message",
    [
        ({"synth": 'name = "moog"'}, r"synth.name: unknown synth 'moog'; available: amchirp, arpeggio, ftm"),
        ({"synth": 'name = "amchirp"\nconfig = { duration = -1.0 }'}, r"synth.config: duration must be a finite number > 0"),
        ({"synth": 'name = "amchirp"\nconfig = { duration = "1.0" }'}, r"synth.config: duration must be a number, got '1.0'"),
        ({"synth": 'name = "amchirp"\nconfig = { duration = 100000.0 }'},
         r"synth.config.duration: 819,200,000 samples per sound \(at 8192 Hz\) is more than pnp handles"),
        ({"grid": 'kind = "jittered"\ncounts = [100000, 100000, 100000]'},
         r"grid.counts: 1,000,000,000,000,000 samples need .* GiB of memory for the grid alone"),
        ({"grid": 'kind = "random"\nsize = 1000000000000'}, r"grid.size: 1,000,000,000,000 samples need"),
        ({"store": 'chunk_size = 1000000000000'}, r"store.chunk_size must be an integer in \[1, 1048576\], got 1000000000000"),
        ({"synth": 'name = "amchirp"\nconfig = { duration = 0.25, x = ' + "[" * 20 + "]" * 20 + ' }'},
         r"synth.config.x\[0\].*is nested more than 16 levels deep"),
        ({"synth": 'name = "amchirp"\nconfig = { wobble = 1 }'}, r"synth.config: unknown config key\(s\) \['wobble'\]"),
        ({"synth": 'name = "amchirp"\nconfig = { duration = 0.25 }\nfixed = { f_c = 2000.0 }'},
         r"synth.fixed: fixed parameter 'f_c' = 2000.0 is outside its bounds \[512, 1024\] Hz"),
        ({"synth": 'name = "amchirp"\nfixed = { cutoff = 2.0 }'}, r"fixed parameter 'cutoff' is not a parameter"),
        ({"synth": 'config = { duration = 0.25 }'}, r"missing required field synth.name"),
        ({"grid": 'counts = [4, 3, 2]'}, r"missing required field grid.kind"),
        ({"grid": 'kind = "hexagonal"\ncounts = 3'}, r"grid.kind must be one of 'regular', 'jittered', 'random', got 'hexagonal'"),
        ({"grid": 'kind = "jittered"\ncounts = [4, 0, 2]'}, r"grid.counts\[1\] must be an integer >= 1, got 0"),
        ({"grid": 'kind = "jittered"\ncounts = [4, 3]'}, r"grid.counts has 2 entries but there are 3 free parameters"),
        ({"grid": 'kind = "jittered"'}, r"missing required field grid.counts"),
        ({"grid": 'kind = "random"\ncounts = 4'}, r"missing required field grid.size"),
        ({"grid": 'kind = "regular"\ncounts = 4\nseed = 1'},
         r"grid.seed does not apply to grid.kind = 'regular': it applies to kind = 'jittered' or 'random' only "
         r"\(allowed with 'regular': centers, counts, kind\)$"),
        ({"grid": 'kind = "jittered"\ncounts = 4\nstep = 1'}, r"unknown field\(s\) grid.step; allowed in \[grid\]"),
        ({"grid": 'kind = "jittered"\ncounts = 4', "split": 'rule = "pnp"\nval_bins = [1, 2]\nn_test = 1000'},
         r"split: n_test must be an integer in \[0, 56\]"),
        ({"split": 'rule = "pnp"\nval_bins = [1, 5]\nn_test = 1'}, r"split.val_bins \[1, 5\] for parameter 'f_c' must satisfy 0 <= lo <= hi <= 3"),
        ({"split": 'rule = "pnp"\nn_test = 1'}, r"missing required field split.val_bins"),
        ({"split": 'rule = "random"\nfractions = [0.5, 0.1, 0.1]'}, r"split.fractions must be >= 0 and sum to 1"),
        ({"split": 'rule = "none"\nn_test = 3'}, r"split.n_test does not apply to split.rule = 'none'"),
        ({"representation": 'name = "wavelets"'}, r"representation.name: unknown representation 'wavelets'"),
        ({"representation": 'name = "jtfs"\nconfig = { J = 6, Q = 4, J_fr = 2, log1p_c = 0.1 }'},
         r"representation.config.log1p_c is not allowed: set \[features\] compression"),
        ({"features": 'compression = "log1p"\nc = 0.0'}, r"features.c must be a finite number > 0, got 0.0"),
        ({"features": 'compression = "cuberoot"'}, r"features.compression must be one of 'none', 'log1p'"),
        ({"compute": 'dtype = "float16"'}, r"compute.dtype must be one of 'float64', 'mixed', 'float32', got 'float16'"),
        ({"compute": 'batch_size = 0'}, r"compute.batch_size must be an integer >= 1, got 0"),
        ({"store": 'chunk_size = -4'}, r"store.chunk_size must be an integer in \[1, 1048576\], got -4"),
        ({"store": 'chunk_size = 2.5'}, r"store.chunk_size must be an integer, got 2.5"),
        ({"store": 'jacobian = "yes"'}, r"store.jacobian must be true or false, got 'yes'"),
        ({"store": 'level = 12'}, r"store.level must be an integer in \[1, 9\], got 12"),
        ({"store": 'codec = "lz4"'}, r"store.codec must be one of 'blosc-zstd', 'zstd', 'none'"),
    ],
)
def test_bad_specs_give_clear_errors(tables, message):
    """One problem each, one line naming the field and what is allowed, prefixed with the file; a
    wrong type is a TypeError (and, for callers that catch ValueError, a ValueError too)."""
    with pytest.raises(ValueError, match=message) as info:
        loads_spec(spec_text(**tables), source="bad.toml")
    err = info.value
    assert isinstance(err, SpecError) and len(err.problems) >= 1 and "\n" not in err.problems[0].message
    assert all(line.startswith("bad.toml: ") for line in str(err).splitlines())
    assert len(str(err).splitlines()) == len(err.problems)
    assert isinstance(err, TypeError) == any(p.kind is TypeError for p in err.problems)


@pytest.mark.parametrize(
    "tables, message",
    [
        ({"store": "chunk_size = 2.5"}, "store.chunk_size must be an integer, got 2.5"),
        ({"store": 'jacobian = "yes"'}, "store.jacobian must be true or false, got 'yes'"),
        ({"compute": "batch_size = true"}, "compute.batch_size must be an integer, got True"),
        ({"grid": "kind = 3\ncounts = 3"}, "grid.kind must be a string, one of 'regular', 'jittered', 'random', got 3"),
        ({"grid": 'kind = "regular"\ncounts = "3"'}, "grid.counts must be an integer or an array of integers, got '3'"),
        ({"synth": "name = 3"}, "synth.name must be a string, one of 'amchirp', 'arpeggio', 'ftm', got 3"),
        ({"synth": 'name = "amchirp"\nfixed = { f_c = "a" }'}, "synth.fixed.f_c must be a number, got 'a'"),
        ({"synth": 'name = "amchirp"\nconfig = 3'}, "synth.config must be a table, got an integer (3)"),
        ({"synth": 'name = "amchirp"\nconfig = { d = 1979-05-27 }'},
         "synth.config.d: unsupported value datetime.date(1979, 5, 27) (date); use a string, number, boolean, array or "
         "table"),
        ({"split": 'rule = "pnp"\nval_bins = 3\nn_test = 1'}, "split.val_bins must be a pair [lo, hi] or a list of pairs, "
                                                             "got 3"),
        ({"split": 'rule = "random"\nfractions = "x"'}, "split.fractions must be 3 numbers [train, val, test], got 'x'"),
        ({"split": 'rule = "random"\nfractions = [0.5, "a", 0.5]'}, "split.fractions[1] must be a number, got 'a'"),
        ({"features": 'compression = "log1p"\nc = "x"'}, "features.c must be a number, got 'x'"),
        ({"representation": "name = 3"}, "representation.name must be a string, one of 'jtfs', 'mss', 'scattering1d', "
                                         "got 3"),
    ],
)
def test_wrong_types_raise_type_error(tables, message):
    """The exact one-line message, and a TypeError (a SpecTypeError, also a ValueError)."""
    with pytest.raises(TypeError) as info:
        loads_spec(spec_text(**tables), source="bad.toml")
    assert isinstance(info.value, SpecTypeError) and isinstance(info.value, ValueError)
    assert str(info.value) == f"bad.toml: {message}"
    assert [p.kind for p in info.value.problems] == [TypeError]


def test_bad_values_are_value_errors_only():
    with pytest.raises(SpecError) as info:
        loads_spec(spec_text(store="level = 12"), source="bad.toml")
    assert not isinstance(info.value, TypeError)
    assert str(info.value) == "bad.toml: store.level must be an integer in [1, 9], got 12"
    assert info.value.problems == (Problem("store.level", "store.level must be an integer in [1, 9], got 12"),)


def test_every_problem_is_reported_at_once_with_its_path():
    text = spec_text(
        synth='name = "amchirp"\nconfig = { duration = 0.25 }\nfixed = { f_c = 2000.0 }',
        grid='kind = "regular"\ncounts = [4, 0]\nseed = 1\nstep = 2',
        split='rule = "random"\nfractions = [0.5, 0.5, 0.5]\nn_test = 3',
        representation='name = "jtfs"\nconfig = { log1p_c = 0.1 }',
        features='compression = "none"\nc = 0.1',
        store='chunk_size = 0\njacobian = 1\ncodec = "lz4"',
    )
    with pytest.raises(SpecTypeError) as info:
        loads_spec(text, source="many.toml")
    err = info.value
    assert [p.path for p in err.problems] == [
        "grid", "grid.counts[1]", "grid.seed", "split.n_test", "split.fractions", "representation.config.log1p_c",
        "features.c", "store.chunk_size", "store.jacobian", "store.codec", "synth.fixed"]
    lines = str(err).splitlines()
    assert len(lines) == 11 and all(line.startswith("many.toml: ") for line in lines)
    assert lines[0] == "many.toml: unknown field(s) grid.step; allowed in [grid]: centers, counts, kind, seed, size"
    assert lines[4] == "many.toml: split.fractions must be >= 0 and sum to 1, got [0.5, 0.5, 0.5]"
    assert lines[-1] == ("many.toml: synth.fixed: fixed parameter 'f_c' = 2000.0 is outside its bounds [512, 1024] Hz")
    assert [p.kind for p in err.problems].count(TypeError) == 1  # store.jacobian = 1


def test_checks_that_need_the_synth_run_beside_the_schema_errors():
    """A grid that does not match the synth is reported with a bad [store] and a bad [split]."""
    text = spec_text(grid='kind = "jittered"\ncounts = [4, 3]', store="level = 0",
                     split='rule = "pnp"\nval_bins = [[0, 1], [0, 9]]')
    with pytest.raises(SpecError) as info:
        loads_spec(text, source="x.toml")
    assert [p.path for p in info.value.problems] == ["split.n_test", "store.level", "grid.counts"]
    assert str(info.value).splitlines()[0] == ("x.toml: missing required field split.n_test "
                                               "(required with split.rule = 'pnp')")
    # every bad validation range, one line each
    with pytest.raises(SpecError) as info:
        loads_spec(spec_text(split='rule = "pnp"\nval_bins = [[0, 4], [0, 1], [2, 2]]\nn_test = 1'))
    assert str(info.value).splitlines() == [
        "<string>: split.val_bins [0, 4] for parameter 'f_c' must satisfy 0 <= lo <= hi <= 3 (the grid has 4 bins)",
        "<string>: split.val_bins [2, 2] for parameter 'gamma' must satisfy 0 <= lo <= hi <= 1 (the grid has 2 bins)"]


def test_shipped_specs_normalise_as_before():
    """Every shipped spec normalises to exactly what the hand-written validator gave (key order
    included: it is the JSON stored in every store) and keeps its hash (tests/fixtures)."""
    expected = json.loads((FIXTURES / "spec_normalised.json").read_text())["specs"]
    shipped = sorted(p.relative_to(ROOT).as_posix() for p in DATA.rglob("*.toml"))
    assert shipped == sorted(expected)
    for name in shipped:
        spec = load_spec(ROOT / name)
        want = expected[name]
        assert json.dumps(spec.to_dict()) == json.dumps(want["normalised"]), name
        assert spec.hash == want["hash"] and spec.n_samples == want["n_samples"], name
        again = DatasetSpec.from_dict(spec.to_dict())  # what a store reads back
        assert json.dumps(again.to_dict()) == json.dumps(want["normalised"]) and again.diff(spec) == []


def test_docs_specs_md_is_generated_from_the_schema():
    """docs/specs.md is `python -m pnp.spec_docs`'s output, and names every declared field."""
    text = (ROOT / "docs" / "specs.md").read_text()
    assert text == markdown(), "docs/specs.md is stale: run python -m pnp.spec_docs > docs/specs.md"
    for d in declared(Spec):
        fields = declared(d.type) if d.is_table else [d]
        for f in fields:
            name = f"{d.name}.{f.name}" if d.is_table else d.name
            assert f"| `{name}` |" in text, name
    assert "| `store.level` | integer | `5` | 1 to 9 |" in text
    assert '| `grid.size` | integer | required with kind = "random" | >= 1; only with kind = "random" | samples |' in text


def test_top_level_errors(tmp_path):
    with pytest.raises(ValueError, match=r"unknown field\(s\) grd; allowed in the top level"):
        loads_spec(BASE + '\n[grd]\nkind = "regular"\n')
    with pytest.raises(ValueError, match="missing required field name"):
        loads_spec(BASE.replace('name = "t"', ""))
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        loads_spec(BASE.replace('name = "t"', 'name = "a b"'))
    with pytest.raises(ValueError, match=r"missing required field representation"):
        loads_spec(BASE.split("[representation]")[0])
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed")
    with pytest.raises(ValueError, match=r"bad.toml: invalid TOML"):
        load_spec(bad)
    bad.write_text("a = " + "[" * 5000 + "]" * 5000)  # deeper than Python's recursion limit
    with pytest.raises(ValueError, match=r"bad.toml: invalid TOML: tables or arrays nested too deeply"):
        load_spec(bad)
    with pytest.raises(FileNotFoundError, match="spec file not found"):
        load_spec(tmp_path / "nope.toml")
    with pytest.raises(ValueError, match="is a directory"):
        load_spec(tmp_path)
    # the representation config is checked when the representation is built
    s = loads_spec(spec_text(representation='name = "jtfs"\nconfig = { J = 6, Q = 4, J_fr = 2, shape = 999 }'))
    with pytest.raises(ValueError, match=r"representation.config.shape = 999 differs from the synth's n_samples = 2048"):
        s.build_representation()
    s = loads_spec(spec_text(representation='name = "jtfs"\nconfig = { J = 6, Q = 4, J_fr = 2, wiggle = 1 }'))
    with pytest.raises(ValueError, match=r"representation.config: .*wiggle"):
        s.build_representation()
    s = loads_spec(spec_text(representation='name = "jtfs"\nconfig = { J = 0, Q = 4, J_fr = 2 }'))
    with pytest.raises(ValueError, match=r"representation: J must be an integer >= 1, got 0"):
        s.build_representation()


# ------------------------------------------------------------------------------ pnp spec check
def _check(capsys, *argv: str) -> tuple[int, str, str]:
    from pnp.cli import main

    rc = main(["spec", "check", *argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _raw_bytes(S: int, P: int, K: int, N: int | None, jacobian: bool) -> int:
    """Bytes of the store's arrays by hand: θ f64, ν f32, bin i32, split i8, status u8, features
    f32 (S, K); J f32 (S, K, P), M f64 (S, P, P), eigenvalues f64 (S, P); audio f32 (S, N)."""
    n = S * P * (8 + 4 + 4) + S * (1 + 1) + S * K * 4
    if jacobian:
        n += S * K * P * 4 + S * P * P * 8 + S * P * 8
    return n + (S * N * 4 if N else 0)


def test_spec_check_numbers_follow_from_the_spec(capsys, tmp_path):
    spec_path = tmp_path / "t.toml"
    spec_path.write_text(spec_text(split='rule = "pnp"\nval_bins = [1, 1]\nn_test = 5', store="chunk_size = 5"))
    rc, out, err = _check(capsys, str(spec_path), "--json", "--quiet", "--device", "cpu")
    assert rc == 0 and err == ""
    got = json.loads(out)
    spec = load_spec(spec_path)
    assert got["n_samples"] == 4 * 3 * 2 == spec.n_samples and got["params"] == ["f_c", "f_m", "gamma"]
    assert sum(got["split_counts"].values()) == got["n_samples"]
    assert got["split_counts"] == {"train": 24 - 1 - 5, "val": 1, "test": 5}  # val: the one cell (1, 1, 1)
    x = spec.build_synth()(spec.layout().theta[:1])
    K = spec.build_representation().features(x).shape[-1]
    assert got["n_coefs"] == K and got["n_time"] == x.shape[-1] == 2048
    assert got["chunk_size"] == 5 and got["n_chunks"] == 5  # ceil(24 / 5)
    assert got["arrays"]["jacobian"] == {"shape": [24, K, 3], "dtype": "float32"}
    assert got["raw_bytes"] == _raw_bytes(24, 3, K, None, jacobian=True)
    assert got["timed_samples"] == 1 and got["device"] == "cpu" and got["seconds_per_sample"] > 0
    assert got["precompute_seconds"] == pytest.approx(24 * got["seconds_per_sample"], rel=1e-12)
    assert 0 < got["disk_bytes"] < got["raw_bytes"] + got["n_chunks"] * 4 * len(got["arrays"])
    # the human-readable report shows the same numbers
    rc, out, err = _check(capsys, str(spec_path), "--device", "cpu")
    assert rc == 0 and err.startswith("computing 1 warm-up + 1 timed sample(s)")
    lines = out.splitlines()
    assert lines[0] == f"spec {spec_path}: valid ('t', hash {spec.hash})"
    assert "  grid        jittered 4 x 3 x 2 = 24 samples (f_c, f_m, gamma)" in lines
    assert "  splits      train 18, val 1, test 5 (rule 'pnp')" in lines
    assert f"  features    K = {K:,} coefficients per sample (jtfs, compression none)" in lines
    assert any(line.startswith("  store       5 chunks of 5 samples; arrays theta(24, 3) float64") for line in lines)
    assert any(line.startswith("  precompute  ") and "projected on one worker: 24 samples x " in line
               and "a projection from 1 timed sample(s) on cpu" in line for line in lines)


def test_spec_check_without_compression_or_timing(capsys, tmp_path):
    """codec = "none": the size on disk is the raw size plus a crc32c per chunk and array;
    --time-samples 0: K from a forward pass, no time and no on-disk size."""
    spec_path = tmp_path / "t.toml"
    spec_path.write_text(spec_text(grid='kind = "regular"\ncounts = 2', store='codec = "none"\nchunk_size = 3\naudio = true'))
    rc, out, _ = _check(capsys, str(spec_path), "--json", "--quiet", "--device", "cpu", "--time-samples", "2")
    got = json.loads(out)
    assert rc == 0 and got["n_samples"] == 8 and got["n_chunks"] == 3 and len(got["arrays"]) == 10
    assert got["raw_bytes"] == _raw_bytes(8, 3, got["n_coefs"], 2048, jacobian=True)
    assert got["disk_bytes"] == got["raw_bytes"] + 3 * 4 * 10
    rc, out, _ = _check(capsys, str(spec_path), "--json", "--quiet", "--device", "cpu", "--time-samples", "0")
    fast = json.loads(out)
    assert fast["n_coefs"] == got["n_coefs"] and fast["raw_bytes"] == got["raw_bytes"]
    assert fast["timed_samples"] == 0 and fast["disk_bytes"] is None and fast["precompute_seconds"] is None


def test_projected_size_matches_a_real_store(tmp_path):
    """The projected size on disk is within 10 % of the chunk files of the same store computed."""
    import os

    from _stores import build_tiny_store, tiny_spec_text

    from pnp.store.projection import project

    path = build_tiny_store(tmp_path / "s.zarr", audio=True)
    chunks = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files
                 if f"{os.sep}c" in os.path.relpath(d, path) or os.path.basename(d) == "c")
    p = project(loads_spec(tiny_spec_text(audio=True)), "cpu", timed_samples=2)
    assert p.disk_bytes == pytest.approx(chunks, rel=0.1)
    assert p.raw_bytes == _raw_bytes(27, 3, p.n_coefs, 512, jacobian=True)


def test_spec_check_reports_every_problem_one_line_each(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(spec_text(grid='kind = "regular"\ncounts = [3, 0]\nseed = 1', store='level = 10\njacobian = "no"',
                             synth='name = "amchirp"\nfixed = { f_c = 5000.0 }'))
    rc, out, err = _check(capsys, str(bad))
    assert rc == 2 and out == "" and "Traceback" not in err
    assert err.splitlines() == [f"pnp spec: error: {bad}: {m}" for m in (
        "grid.counts[1] must be an integer >= 1, got 0",
        "grid.seed does not apply to grid.kind = 'regular': it applies to kind = 'jittered' or 'random' only "
        "(allowed with 'regular': centers, counts, kind)",
        "store.jacobian must be true or false, got 'no'",
        "store.level must be an integer in [1, 9], got 10",
        "synth.fixed: fixed parameter 'f_c' = 5000.0 is outside its bounds [512, 1024] Hz",
    )]
    # the representation's own config: checked when it is built
    bad.write_text(spec_text(representation='name = "jtfs"\nconfig = { J = 0, Q = 4, J_fr = 2 }'))
    rc, out, err = _check(capsys, str(bad), "--quiet")
    assert rc == 2 and out == ""
    assert err.splitlines() == [f"pnp spec: error: {bad}: representation: J must be an integer >= 1, got 0"]
    for argv, message in (([str(tmp_path / "nope.toml")], "spec file not found"),
                          ([str(bad), "--time-samples", "-1"], "--time-samples must be an integer >= 0, got -1"),
                          ([str(tmp_path)], "is a directory, expected a TOML spec file")):
        rc, out, err = _check(capsys, *argv)
        assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1 and message in err, err


def test_projection_refuses_a_bad_sample_count():
    from pnp.store.projection import project

    spec = loads_spec(BASE)
    with pytest.raises(TypeError, match="timed_samples must be an integer >= 0, got True"):
        project(spec, "cpu", timed_samples=True)
    with pytest.raises(ValueError, match="timed_samples must be an integer >= 0, got -1"):
        project(spec, "cpu", timed_samples=-1)
