"""kymatio 0.4's own JTFS tests, run against pnp's kymatio-compatible class.

The test file is read from the installed ``scrapl-loss`` wheel (which bundles kymatio 0.4 and its
tests; a dev-only dependency, never vendored here): its import block is replaced by bindings of
kymatio's names (``kymatio.TimeFrequencyScattering``, ``TimeFrequencyScatteringBase``,
``TimeFrequencyScatteringTorch``) to :class:`pnp.scattering.jtfs.kymatio_compat.TimeFrequencyScattering`;
every assertion runs unchanged.  The tests of the torch frontend's public behaviour are run; the
others test kymatio internals (its backends, filter construction, core generators) or other
frontends (NumPy, TensorFlow, JAX).  Skipped, with the reason, when scrapl-loss is absent.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from pnp.scattering.jtfs.kymatio_compat import TimeFrequencyScattering

#: (test function, arguments): the torch frontend's public behaviour
PUBLIC = [("test_Q", ("torch",)), ("test_check_runtime_args", ()), ("test_jtfs_torch_tf_frontends", ("torch",)),
          ("test_F", ("torch",))]


def kymatio_test_file() -> Path | None:
    spec = importlib.util.find_spec("scrapl")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "kymatio/tests/scattering1d/test_timefrequency_scattering.py"
    return path if path.exists() else None


@pytest.fixture(scope="module")
def kymatio_tests():
    path = kymatio_test_file()
    if path is None:
        pytest.skip("scrapl-loss (dev extra) is not installed: kymatio 0.4's test file is not available")
    source = path.read_text(encoding="utf-8")
    body = source[source.index("\nbackends = ["):]  # everything after kymatio's import block, unchanged
    module = types.ModuleType("kymatio_jtfs_tests_on_pnp")
    module.__dict__.update(
        np=np, pytest=pytest, torch=torch, tf=None, jnp=None, device_put=None,
        TimeFrequencyScattering=TimeFrequencyScattering,
        TimeFrequencyScatteringBase=TimeFrequencyScattering,
        TimeFrequencyScatteringTorch=TimeFrequencyScattering,
    )
    exec(compile(body, str(path), "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("name, args", PUBLIC, ids=[f"{n}{list(a)}" for n, a in PUBLIC])
def test_kymatio_public_behaviour(kymatio_tests, name, args):
    getattr(kymatio_tests, name)(*args)


def test_one_import_changes():
    """A kymatio-style call: the 'torch' frontend only, kymatio's attributes and meta keys."""
    S = TimeFrequencyScattering(J=6, J_fr=2, Q=(4, 1), shape=(512,), T="global", F=4, frontend="torch")
    S.build()
    assert S._check_runtime_args() is None and S.Q_fr == (1,) and S.F == 4 and S.stride_fr == 4
    x = torch.randn(2, 512)
    torch.testing.assert_close(S.scattering(x), S(x), rtol=0, atol=0)
    meta = S.meta()
    for key in ("order", "n", "j", "xi", "sigma", "n_fr", "j_fr", "xi_fr", "sigma_fr", "spin", "key"):
        assert len(meta[key]) == S(x).shape[-2], key
    assert meta["key"][0] == () and all(len(k) == o + 1 for k, o in zip(meta["key"][1:], meta["order"][1:]))
    with pytest.raises(ValueError, match="frontend must be 'torch'"):
        TimeFrequencyScattering(J=6, J_fr=2, Q=4, shape=512, frontend="numpy")


KYMATIO_META = """
import json, os, sys, importlib.util
import numpy as np
spec = importlib.util.find_spec("scrapl")
sys.path.insert(0, os.path.join(list(spec.submodule_search_locations)[0], "kymatio"))
from kymatio.scattering1d.frontend.numpy_frontend import TimeFrequencyScatteringNumPy
config, fmt, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
config["Q"], config["shape"] = tuple(config["Q"]), tuple(config["shape"])
m = TimeFrequencyScatteringNumPy(**config, format=fmt, out_type="array").meta()
keys = [list(k) for k in m["key"]]
np.savez(out, keys=json.dumps(keys), **{k: np.asarray(m[k], dtype=float) for k in
         ("xi", "sigma", "j", "xi_fr", "sigma_fr", "j_fr", "spin", "order")})
"""
FIXTURE_DIR = Path(__file__).resolve().parent / "fixtures" / "jtfs"


def _our_order_as_kymatio(meta: dict, fmt: str) -> np.ndarray:
    """Permutation of our (output-order) meta into kymatio's (sorted by path key)."""
    if fmt == "joint":
        return np.arange(len(meta["order"]))
    return np.array(sorted(range(len(meta["key"])), key=lambda i: (len(meta["key"][i]), meta["key"][i])))


@pytest.mark.parametrize("fmt", ["time", "joint"])
@pytest.mark.parametrize("fixture", sorted(FIXTURE_DIR.glob("*.npz")), ids=lambda p: p.stem)
def test_meta_values_equal_kymatio(fixture, fmt, tmp_path):
    """Every meta key of kymatio 0.4 (xi, sigma, j, xi_fr, sigma_fr, j_fr, spin, order, key) has
    kymatio's values, computed live by kymatio 0.4 (scrapl-loss's copy, in a child process: it is
    also named kymatio) on the fixture configurations."""
    if kymatio_test_file() is None:
        pytest.skip("scrapl-loss (dev extra) is not installed: kymatio 0.4 is not available")
    with np.load(fixture) as d:
        config = json.loads(str(d["config"]))
    if fmt == "joint" and config.get("F") == 0:
        pytest.skip("format='joint' needs frequential averaging")
    out = tmp_path / "meta.npz"
    subprocess.run([sys.executable, "-c", KYMATIO_META, json.dumps(config), fmt, str(out)], check=True, timeout=300)
    ref = dict(np.load(out))
    ours = TimeFrequencyScattering(**config, format=fmt).meta()
    perm = _our_order_as_kymatio(ours, fmt)
    ref_keys = [tuple(k) for k in json.loads(str(ref.pop("keys")))]
    if fmt == "joint":  # kymatio lists the zeroth-order key although format='joint' drops that path
        ref_keys = [k for k in ref_keys if k != ()]
    assert [ours["key"][i] for i in perm] == ref_keys
    for name, value in ref.items():
        np.testing.assert_allclose(np.asarray(ours[name], dtype=float)[perm], value, rtol=1e-12, atol=0,
                                   equal_nan=True, err_msg=name)
