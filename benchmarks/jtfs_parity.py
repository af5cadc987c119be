"""Parity of pnp's JTFS with kymatio 0.4.0.dev0 on full-size configurations (prints, dev-only).

    python benchmarks/jtfs_parity.py [--configs pnp meso fixtures] [--batch 2]

kymatio 0.4 is not on PyPI; this script imports it from the ``scrapl-loss`` package's bundled
copy (``pip install scrapl-loss==0.1.0``) and uses its NumPy frontend in float64, the way the
test fixtures were made. For each configuration and format it prints the relative L2 error
``||S_pnp - S_kymatio|| / ||S_kymatio||`` of pnp in float64 and float32 (the tests require
<= 1e-4), plus whether ``meta()`` describes the same channels.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from _peer import BUNDLED_KYMATIO

CONFIGS = {
    "pnp": dict(J=13, J_fr=3, Q=(12, 1), Q_fr=1, F=2, T="global", shape=(2**16,)),
    "meso": dict(J=12, J_fr=5, Q=(8, 2), Q_fr=2, F=0, T=2**13, shape=(2**15,)),
}


KYMATIO_CHILD = BUNDLED_KYMATIO + """
from kymatio.scattering1d.frontend.numpy_frontend import TimeFrequencyScatteringNumPy
job = np.load(sys.argv[1])
config = json.loads(str(job["config"]))
config["Q"], config["shape"] = tuple(config["Q"]), tuple(config["shape"])
s = TimeFrequencyScatteringNumPy(**config, format=str(job["format"]), out_type="array")
t0 = time.perf_counter()
S = s(job["x"].astype(np.float64))
seconds = time.perf_counter() - t0
m = s.meta()
n = np.array([[np.nan if isinstance(v, range) else v for v in row] for row in m["n"]], dtype=float)
np.savez(sys.argv[2], S=S, order=m["order"], n=n, n_fr=m["n_fr"], seconds=seconds)
"""


def kymatio_reference(config: dict, fmt: str, x: np.ndarray) -> dict | None:
    """kymatio 0.4 (NumPy frontend, float64) in a child process: its package is also named
    ``kymatio`` and cannot share a process with the kymatio 0.3 that pnp imports."""
    import importlib.util
    import subprocess
    import tempfile

    if importlib.util.find_spec("scrapl") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        job, out = Path(tmp, "job.npz"), Path(tmp, "out.npz")
        np.savez(job, x=x, config=json.dumps(config), format=fmt)
        subprocess.run([sys.executable, "-c", KYMATIO_CHILD, str(job), str(out)], check=True)
        return dict(np.load(out))


def test_signals(N: int, batch: int) -> np.ndarray:
    """AM chirps (pnp's amchirp synth, cropped/padded to N) and white noise, float32."""
    import torch

    import pnp.synth

    synth = pnp.synth.get("amchirp")
    theta = torch.tensor([[512.0, 8.0, 1.5], [700.0, 5.0, 3.0]], dtype=torch.float64)
    x = synth(theta).numpy()
    x = np.pad(x, ((0, 0), (0, max(0, N - x.shape[1]))))[:, :N]
    noise = np.random.default_rng(0).standard_normal((1, N))
    return np.concatenate([x, noise])[:batch].astype(np.float32)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["pnp", "meso"], choices=[*CONFIGS, "fixtures"])
    parser.add_argument("--batch", type=int, default=2, help="signals per configuration (max 3)")
    args = parser.parse_args(argv)
    import importlib.util

    if importlib.util.find_spec("scrapl") is None:
        print("kymatio 0.4 is not importable (pip install scrapl-loss==0.1.0); nothing to compare")
        return 0
    import torch

    from pnp.scattering.jtfs import TimeFrequencyScattering

    jobs = [(name, CONFIGS[name], None) for name in args.configs if name != "fixtures"]
    if "fixtures" in args.configs:
        for path in sorted(Path(__file__).parents[1].glob("tests/fixtures/jtfs/*.npz")):
            d = np.load(path)
            jobs.append((path.stem, json.loads(str(d["config"])), d["x"]))
    print(f"{'config':>18} {'format':>6} {'shape':>22} {'err f64':>9} {'err f32':>9} {'meta':>5} {'kymatio s':>9} {'pnp s':>7}")
    for name, config, x in jobs:
        config = {**config, "Q": list(config["Q"]), "shape": list(config["shape"])}
        if x is None:
            x = test_signals(config["shape"][0], args.batch)
        for fmt in ("time", "joint"):
            if fmt == "joint" and config.get("F") == 0:
                continue
            km = kymatio_reference(config, fmt, x)
            ref, t_ky = km["S"], float(km["seconds"])
            ours = TimeFrequencyScattering.from_config(**config, format=fmt)
            errs, t_pnp = [], float("nan")
            for dtype in (torch.float64, torch.float32):
                t0 = time.perf_counter()
                S = ours(torch.as_tensor(x, dtype=dtype)).double().numpy()
                if dtype == torch.float64:
                    t_pnp = time.perf_counter() - t0
                errs.append(np.linalg.norm(S - ref) / np.linalg.norm(ref) if S.shape == ref.shape else np.inf)
            pm = ours.meta()
            if fmt == "time":
                key = lambda m, i: tuple(np.nan_to_num(np.r_[m["order"][i], m["n"][i].astype(float), m["n_fr"][i]], nan=-1))
                same = sorted(key(pm, i) for i in range(len(pm["order"]))) == [key(km, i) for i in range(len(km["order"]))]
            else:
                same = np.array_equal(np.nan_to_num(pm["n_fr"], nan=-1), np.nan_to_num(km["n_fr"], nan=-1))
            print(f"{name:>18} {fmt:>6} {str(ref.shape):>22} {errs[0]:9.1e} {errs[1]:9.1e} {str(same):>5} "
                  f"{t_ky:9.2f} {t_pnp:7.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
