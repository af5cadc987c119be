"""Dataset specs: the shipped specs, normalisation, layouts and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pnp.spec import DatasetSpec, load_spec, loads_spec

DATA = Path(__file__).resolve().parents[1] / "data"

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
        ({"grid": 'kind = "regular"\ncounts = 4\nseed = 1'}, r"grid.seed and grid.size do not apply to a regular grid"),
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
    with pytest.raises(ValueError, match=message):
        loads_spec(spec_text(**tables), source="bad.toml")


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
