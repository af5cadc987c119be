"""Tiny real precompute stores for tests (shared by several test modules).

``from _stores import build_tiny_store`` works under ``python -m pytest`` from the repository
root: ``tests/`` has no ``__init__.py``, so pytest puts it on ``sys.path`` (rootdir conftest).

The store is computed in-process with the precompute worker functions
(:func:`pnp.pipelines.precompute.prepare_store` + :func:`pnp.pipelines._worker.process_chunk`), i.e.
exactly the code a dask worker runs, without starting a cluster: a few seconds on one core.
"""

from __future__ import annotations

import os

TINY_SPEC = """
name = "tiny_amchirp"
description = "tests: {n} jittered AM chirps, {duration} s at 2048 Hz, small JTFS"
[synth]
name = "amchirp"
config = {{ sample_rate = 2048.0, duration = {duration} }}
[grid]
kind = "jittered"
counts = [{counts}]
seed = {seed}
[split]
rule = "random"
fractions = [0.6, 0.2, 0.2]
seed = {seed}
[representation]
name = "jtfs"
config = {{ J = 6, Q = [4, 1], J_fr = 2, Q_fr = 1, F = 1, T = "global" }}
[features]
compression = "log1p"
c = 1e-3
[compute]
dtype = "float64"
batch_size = 4
[store]
chunk_size = {chunk_size}
jacobian = {jacobian}
audio = {audio}
"""


def tiny_spec_text(*, jacobian: bool = True, audio: bool = False, counts=(3, 3, 3), chunk_size: int = 4,
                   seed: int = 0, duration: float = 0.25) -> str:
    """TOML text of the tiny AM-chirp spec (27 samples by default, 7 chunks of 4, the last of 3;
    ``duration`` seconds at 2048 Hz, 0.25 s = 512 samples by default)."""
    counts = tuple(int(c) for c in counts)
    n = 1
    for c in counts:
        n *= c
    return TINY_SPEC.format(
        n=n, counts=", ".join(map(str, counts)), seed=seed, chunk_size=chunk_size, duration=float(duration),
        jacobian=str(bool(jacobian)).lower(), audio=str(bool(audio)).lower(),
    )


def build_tiny_store(path, *, jacobian: bool = True, audio: bool = False, counts=(3, 3, 3),
                     chunk_size: int = 4, seed: int = 0, duration: float = 0.25) -> str:
    """Precompute the tiny AM-chirp store at ``path`` and return its absolute path.

    All three chirp parameters are free (``counts`` bins each, jittered grid), split 60/20/20 at
    random, JTFS ``J=6, Q=(4, 1), J_fr=2, F=1, T='global'`` on N = 512 samples with the log1p
    compression, computed in float64 (``duration`` s at 2048 Hz); ``jacobian`` / ``audio`` are the
    spec's ``store`` options.
    An existing store of the same spec at ``path`` is completed (pending chunks) and reused.
    """
    from pnp import store as pstore
    from pnp.pipelines.precompute import prepare_store
    from pnp.spec import loads_spec
    from pnp.store.compute import build_engine, process_chunk

    spec = loads_spec(tiny_spec_text(jacobian=jacobian, audio=audio, counts=counts, chunk_size=chunk_size,
                                     seed=seed, duration=duration), source="tests/_stores.py")
    path = pstore.normalise_path(os.fspath(path))
    group, _ = prepare_store(spec, path, "cpu")
    todo = pstore.pending_chunks(group)
    if todo:
        engine = build_engine(spec, "cpu")
        for chunk in todo:
            process_chunk(group, chunk, engine)
    pstore.consolidate(path)
    return path


#: store attributes that legitimately differ between two runs of the same spec
VOLATILE_ATTRS = {"runs", "created", "host", "git_commit"}


def assert_same_store(a, b) -> None:
    """The stores at ``a`` and ``b`` hold the same arrays (decoded, NaN = NaN) and the same
    attributes but the volatile ones."""
    import numpy as np

    from pnp import store as pstore

    ga, gb = pstore.open_group(str(a)), pstore.open_group(str(b))
    assert set(ga.array_keys()) == set(gb.array_keys())
    for name in ga.array_keys():
        x, y = ga[name][:], gb[name][:]
        assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True), name
    da = {k: v for k, v in ga.attrs.items() if k not in VOLATILE_ATTRS}
    db = {k: v for k, v in gb.attrs.items() if k not in VOLATILE_ATTRS}
    assert da == db
