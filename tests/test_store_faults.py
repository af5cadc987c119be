"""Fault injection on a precompute store: SIGKILL at every phase, concurrent writers, the
corruption kinds, a full disk, stale run records — each must end detected, refused or repaired,
and resume to a store identical (decoded, and chunk file by chunk file) to an uninterrupted run.

Kills use the failpoints of :mod:`pnp.faults` (``PNP_FAILPOINT``) in a ``pnp precompute``
subprocess started in its own session, so that its whole process group (CLI, scheduler,
workers) dies at once; the resumes run in-process on a threaded dask cluster."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _stores import assert_same_store

from pnp import store as pstore
from pnp.cli import main
from pnp.data import StoreDataset
from pnp.pipelines.precompute import precompute
from pnp.store import integrity
from pnp.store.lock import HOLDER_FILE, LOCK_FILE, StoreBusyError, WriterLock

# 12 samples of (f_m, gamma), 3 chunks of 4; ~0.1 s per sample
SPEC = """
name = "faults"
[synth]
name = "amchirp"
config = { sample_rate = 8192.0, duration = 0.25 }
fixed = { f_c = 700.0 }
[grid]
kind = "jittered"
counts = [4, 3]
seed = 3
[split]
rule = "pnp"
val_bins = [1, 2]
n_test = 2
[representation]
name = "jtfs"
config = { J = 6, Q = [4, 1], J_fr = 2, Q_fr = 1, F = 2, T = "global" }
[features]
compression = "log1p"
c = 1e-3
[compute]
dtype = "float64"
batch_size = 2
[store]
chunk_size = 4
"""
N, CHUNKS = 12, 3
#: files that legitimately differ between two runs of the same spec (the group's attributes
#: hold the run records and times; the lock file is pnp's)
VOLATILE_FILES = {"zarr.json", LOCK_FILE}


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0",
                           scheduler_kwargs={"dashboard": False}, silence_logs=50)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("faults")
    (d / "spec.toml").write_text(SPEC)
    return d


@pytest.fixture(scope="module")
def reference(work, client):
    path = work / "reference.zarr"
    summary = precompute(work / "spec.toml", path, client=client, progress=False, out=None)
    assert summary.complete and summary.done == N
    return path


def files(path: Path) -> dict[str, bytes]:
    """Every file of a store but the volatile ones, relative path → bytes."""
    out = {}
    for p in sorted(path.rglob("*")):
        rel = str(p.relative_to(path))
        if p.is_file() and rel not in VOLATILE_FILES:
            out[rel] = p.read_bytes()
    return out


def assert_identical(ref: Path, path: Path) -> None:
    """Decoded arrays and attributes equal, and every chunk file byte for byte."""
    assert_same_store(ref, path)
    fa, fb = files(ref), files(path)
    assert sorted(fa) == sorted(fb)
    assert [k for k in fa if fa[k] != fb[k]] == []


def run_cli(work: Path, store: Path, failpoint: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PNP_FAILPOINT", None)
    if failpoint:
        env["PNP_FAILPOINT"] = failpoint
    cmd = [sys.executable, "-m", "pnp", "precompute", str(work / "spec.toml"), "--store", str(store), "--workers", "1",
           "--no-progress"]
    return subprocess.run(cmd, env=env, start_new_session=True, capture_output=True, text=True, timeout=timeout)


def resume(work: Path, store: Path, client) -> None:
    summary = precompute(work / "spec.toml", store, client=client, progress=False, out=None)
    assert summary.complete and summary.done == N


# ------------------------------------------------------------------------------ kills
KILL_POINTS = ["directory-created", "marker-written", "group-created", "arrays-created", "split-written", "ready",
               "data-before-status@1", "chunk-done@1", "chunk-done@2", "run-end"]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_at_every_phase_resumes_identically(point, work, reference, client):
    store = work / f"kill-{point.replace('@', '-')}.zarr"
    proc = run_cli(work, store, point)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-2000:])
    state = pstore.directory_state(str(store))
    assert state in ("empty", "creating", "ready"), state  # never 'foreign': the next run may continue
    resume(work, store, client)
    assert not (store / pstore.CREATION_MARKER).exists() and not (store / HOLDER_FILE).exists()
    assert_identical(reference, store)
    runs = dict(pstore.open_group(str(store)).attrs)["runs"]
    assert all(r["state"] != "running" for r in runs)  # the killed run's record is marked interrupted
    if point.startswith(("chunk-done", "data-before-status")):
        assert [r["state"] for r in runs] == ["interrupted", "finished"]
    if point == "run-end":  # every chunk was written: the resume has nothing to compute
        assert [r["state"] for r in runs] == ["interrupted"]


def test_kill_during_the_wipe_of_an_interrupted_creation(work, reference, client):
    store = work / "wipe.zarr"
    assert run_cli(work, store, "arrays-created").returncode == -signal.SIGKILL
    (store / "notes.txt").write_text("a user's file")  # pnp must not remove what it did not write
    proc = run_cli(work, store, "wipe")
    assert proc.returncode == -signal.SIGKILL
    assert pstore.directory_state(str(store)) == "creating"
    resume(work, store, client)
    assert (store / "notes.txt").read_text() == "a user's file"
    (store / "notes.txt").unlink()
    assert_identical(reference, store)


def test_a_directory_pnp_did_not_write_is_refused_and_left_alone(work, capsys):
    d = work / "foreign"
    d.mkdir()
    (d / "data.bin").write_bytes(b"x" * 10)
    assert main(["precompute", str(work / "spec.toml"), "--store", str(d), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "holds files that pnp did not write" in err and "\n" not in err
    assert sorted(p.name for p in d.iterdir()) == ["data.bin"]
    empty = work / "empty_dir"
    empty.mkdir()  # an empty directory is fine
    assert pstore.directory_state(str(empty)) == "empty"


def test_ctrl_c_is_one_line_and_the_store_resumes(work, reference, client):
    store = work / "ctrl-c.zarr"
    env = dict(os.environ)
    env["PNP_FAILPOINT"] = "chunk-done@1:sleep=120"  # the driver waits after its first chunk: Ctrl-C lands mid-run
    ready = work / "ctrl-c.ready"
    env["PNP_FAILPOINT_READY"] = str(ready)
    cmd = [sys.executable, "-m", "pnp", "precompute", str(work / "spec.toml"), "--store", str(store), "--workers", "1",
           "--no-progress"]
    # a test runner started in the background (CI) ignores SIGINT, and so would the child: restore
    # the default disposition so that Python turns the signal into KeyboardInterrupt, as in a terminal
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 180
        while time.time() < deadline and not ready.exists() and proc.poll() is None:
            time.sleep(0.05)
        assert ready.exists(), "the run never reached its first finished chunk"
        os.kill(proc.pid, signal.SIGINT)  # Ctrl-C reaches the CLI while it is held after its first chunk
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("pnp precompute:")]
    assert lines == ["pnp precompute: interrupted; what was finished is kept: run the same command again to resume"]
    assert "Traceback" not in err
    runs = dict(pstore.open_group(str(store)).attrs)["runs"]
    assert runs[-1]["state"] == "interrupted" and not (store / HOLDER_FILE).exists()
    resume(work, store, client)
    assert_identical(reference, store)


# ------------------------------------------------------------------------------ one writer
def test_a_second_writer_is_refused_and_the_first_completes(work, reference, client, capsys):
    store = work / "concurrent.zarr"
    env = dict(os.environ)
    env["PNP_FAILPOINT"] = "chunk-done@1:sleep=5"  # keeps the first writer busy while the others try
    cmd = [sys.executable, "-m", "pnp", "precompute", str(work / "spec.toml"), "--store", str(store), "--workers", "1",
           "--no-progress"]
    first = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (store / HOLDER_FILE).exists():
            time.sleep(0.05)
        holder = json.loads((store / HOLDER_FILE).read_text())
        assert holder["pid"] == first.pid and holder["command"] == "pnp precompute"
        assert main(["precompute", str(work / "spec.toml"), "--store", str(store), "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert f"in use by pnp precompute (pid {first.pid} on host" in err and "\n" not in err
        assert main(["store", "verify", str(store), "--repair"]) == 2
        assert f"pid {first.pid}" in capsys.readouterr().err
        assert first.wait(timeout=180) == 0
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert_identical(reference, store)
    assert [r["state"] for r in dict(pstore.open_group(str(store)).attrs)["runs"]] == ["finished"]


def test_a_dead_holders_lock_is_taken_over_with_a_warning(work, reference):
    store = work / "stale.zarr"
    shutil.copytree(reference, store)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # a pid that no longer runs
    (store / HOLDER_FILE).write_text(json.dumps({"host": os.uname().nodename, "pid": proc.pid,
                                                 "started": "2026-01-01T00:00:00+00:00", "command": "pnp precompute"}))
    with pytest.warns(UserWarning, match=f"taking over the writer lock from pnp precompute \\(pid {proc.pid}.*no longer running"):
        lock = WriterLock(str(store)).acquire()
    assert lock.took_over["pid"] == proc.pid
    lock.release()
    assert not (store / HOLDER_FILE).exists()
    with WriterLock(str(store)):
        with pytest.raises(StoreBusyError, match="is in use by"):
            WriterLock(str(store)).acquire()  # flock: a second holder, even in one process


# ------------------------------------------------------------------------------ corruptions
def _chunk_file(store: Path, name: str, chunk: int) -> Path:
    nd = pstore.open_group(str(store))[name].ndim
    return store / name / "c" / str(chunk) / Path(*["0"] * (nd - 1))


def _flip(p: Path, byte: int = 7) -> None:
    b = bytearray(p.read_bytes())
    b[byte % len(b)] ^= 0x10
    p.write_bytes(bytes(b))


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: max(1, p.stat().st_size // 2)])


def _write(store: Path, name: str, chunk: int, fn) -> None:
    g = pstore.open_group(str(store), "r+")
    a, b = chunk * 4, min(chunk * 4 + 4, N)
    v = np.asarray(g[name][a:b])
    g[name][a:b] = fn(v)


def _garble_meta(store: Path, name: str) -> None:
    (store / name / "zarr.json").write_text('{"zarr_format": 3, "node_type": "arr')


CORRUPTIONS = {
    "features-deleted": lambda s: _chunk_file(s, "features", 1).unlink(),
    "features-truncated": lambda s: _truncate(_chunk_file(s, "features", 1)),
    "features-bitflip": lambda s: _flip(_chunk_file(s, "features", 1)),
    "jacobian-deleted": lambda s: _chunk_file(s, "jacobian", 0).unlink(),
    "jacobian-truncated": lambda s: _truncate(_chunk_file(s, "jacobian", 2)),
    "jacobian-bitflip": lambda s: _flip(_chunk_file(s, "jacobian", 2), 40),
    "metric-deleted": lambda s: _chunk_file(s, "metric", 2).unlink(),
    "metric-truncated": lambda s: _truncate(_chunk_file(s, "metric", 0)),
    "metric-bitflip": lambda s: _flip(_chunk_file(s, "metric", 1), 20),
    "eigvals-bitflip": lambda s: _flip(_chunk_file(s, "eigvals", 1), 11),
    "status-bitflip": lambda s: _flip(_chunk_file(s, "status", 1), 3),
    "status-unknown-code": lambda s: _write(s, "status", 2, lambda v: np.where(np.arange(v.size) == 1, 7, v)),
    "metric-nan": lambda s: _write(s, "metric", 1, lambda v: np.where(np.arange(v.shape[0])[:, None, None] == 2,
                                                                      np.nan, v)),
    "metric-not-JtJ": lambda s: _write(s, "metric", 0, lambda v: v * np.array([1.0, 1.02, 1.0, 1.0])[:, None, None]),
    "theta-bitflip": lambda s: _flip(_chunk_file(s, "theta", 0), 9),
    "theta-deleted": lambda s: _chunk_file(s, "theta", 1).unlink(),
    "nu-deleted": lambda s: _chunk_file(s, "nu", 0).unlink(),
    "bin-deleted": lambda s: _chunk_file(s, "bin", 2).unlink(),
    "split-deleted": lambda s: _chunk_file(s, "split", 1).unlink(),
    "features-directory-deleted": lambda s: shutil.rmtree(s / "features"),
    "features-meta-garbled": lambda s: _garble_meta(s, "features"),
    "metric-meta-garbled": lambda s: _garble_meta(s, "metric"),
}
#: corruptions a reader cannot see without recomputing (values decode and are finite)
READER_BLIND = {"metric-not-JtJ"}
#: the arrays the k-NN / embedding reader uses (it never reads the Jacobian, eigenvalues or bins)
GEOMETRY_READS = {"features", "metric", "theta", "nu", "split", "status"}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_every_corruption_is_reported_refused_and_repaired(kind, work, reference, client, capsys):
    store = work / f"corrupt-{kind}.zarr"
    shutil.copytree(reference, store)
    CORRUPTIONS[kind](store)
    # verify: a line per problem, exit 1, never a traceback
    assert main(["store", "verify", str(store), "--no-progress"]) == 1
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "verify: FAILED" in out.out
    problems = [line for line in out.out.splitlines() if line.startswith("PROBLEM: ")]
    assert problems
    # readers refuse (or cannot see it without recomputing)
    if kind not in READER_BLIND:
        with pytest.raises(pstore.StoreDataError, match="array '"):
            ds = StoreDataset(str(store), split="all",
                              fields=("features", "jacobian", "metric", "eigvals", "theta", "nu", "bin"))
            ds.get_batch(range(len(ds)))
    if kind.split("-")[0] in GEOMETRY_READS and kind not in READER_BLIND:
        with pytest.raises(pstore.StoreDataError, match="array '"):
            from pnp.store import open_store

            sd = open_store(str(store))
            sd.indices("all"), sd.theta(), sd.nu(), sd.metric(np.flatnonzero(sd.done))
            from pnp.geometry.reading import read_rows

            idx = np.flatnonzero(sd.done)
            read_rows(sd.features(idx), 0, idx.size, "features", ids=idx)
    # repair, resume, identical
    assert main(["store", "verify", str(store), "--repair", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "repair: " in out
    resume(work, store, client)
    assert main(["store", "verify", str(store), "--no-progress"]) == 0
    capsys.readouterr()
    assert_identical(reference, store)


def test_precompute_finds_and_recomputes_damaged_chunks_itself(work, reference, client):
    store = work / "self-repair.zarr"
    shutil.copytree(reference, store)
    _flip(_chunk_file(store, "jacobian", 1), 33)
    import io

    out = io.StringIO()
    summary = precompute(work / "spec.toml", store, client=client, progress=False, out=out)
    assert summary.computed == 4 and summary.complete
    assert "store check: array 'jacobian', chunk 1, samples 4..7: cannot be read" in out.getvalue()
    assert "repair: marked 1 chunk(s) pending (1): recomputed by this run" in out.getvalue()
    assert_identical(reference, store)


def test_scan_of_a_healthy_store_is_clean_and_names_checksums(reference):
    rep = integrity.scan(str(reference))
    assert rep.ok and rep.readable and "every array carries crc32c checksums" in rep.lines
    g = pstore.open_group(str(reference))
    assert all(pstore.has_checksums(g[n]) for n in g.array_keys())


# ------------------------------------------------------------------------------ disk full
def test_disk_full_is_one_line_and_the_store_resumes_elsewhere(work, reference, client, capsys):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = work / "tiny_fs"
    mnt.mkdir(exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        store = mnt / "full.zarr"
        code = main(["precompute", str(work / "spec.toml"), "--store", str(store), "--workers", "1", "--no-progress"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert "No space left on device" in err[0] and "run the same command again to resume" in err[0]
        assert "chunk" in err[0]  # the tmpfs holds the created store, not every chunk
        moved = work / "moved.zarr"
        shutil.copytree(store, moved)
        # a read-only filesystem: one line too, and nothing changes
        r = subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True, text=True)
        if r.returncode == 0:
            before = files(store)
            code = main(["precompute", str(work / "spec.toml"), "--store", str(store), "--workers", "1",
                         "--no-progress"])
            err = capsys.readouterr().err.strip().splitlines()
            assert code == 2 and len(err) == 1 and "Read-only file system" in err[0], err
            assert files(store) == before
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
    resume(work, moved, client)
    assert_identical(reference, moved)


# ------------------------------------------------------------------------------ unfinished stores
def test_knn_and_embed_on_an_unfinished_store_warn_with_the_count(work, reference, capsys):
    store = work / "unfinished.zarr"
    shutil.copytree(reference, store)
    g = pstore.open_group(str(store), "r+")
    g["status"][8:12] = np.zeros(4, dtype=np.uint8)  # the last chunk back to pending
    assert main(["knn", str(store), "--k", "1", "--split", "train", "--quiet", "--out", str(work / "knn_out")]) == 0
    err = capsys.readouterr().err
    assert f"warning: {store}: 4 of {N} samples are pending and 0 failed; they are left out" in err
    assert json.loads((work / "knn_out" / "report.json").read_text())["samples_left_out"] == 4


def test_damaged_attributes_and_schema_are_reported_not_raised(work, reference, capsys):
    store = work / "bad-attrs.zarr"
    shutil.copytree(reference, store)
    meta = json.loads((store / "zarr.json").read_text())
    meta["attributes"]["params"] = None
    meta["consolidated_metadata"]["metadata"]["status"]["fill_value"] = 1  # a missing chunk would read as done
    (store / "zarr.json").write_text(json.dumps(meta))
    assert main(["store", "verify", str(store), "--no-progress"]) == 1
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "attribute 'params' must be a JSON list" in out.out
    assert main(["store", "info", str(store)]) == 2
    err = capsys.readouterr().err.strip()
    assert "attribute 'params' must be a JSON list" in err and "\n" not in err
    meta["attributes"]["params"] = ["f_m", "gamma"]
    (store / "zarr.json").write_text(json.dumps(meta))
    assert main(["store", "verify", str(store), "--no-progress"]) == 1
    assert "status: fill value 1, expected 0" in capsys.readouterr().out
    with pytest.raises(ValueError, match="status: fill value 1, expected 0"):
        StoreDataset(str(store), split="all", fields=("nu",))


def test_repair_never_writes_into_a_directory_pnp_did_not_write(work, capsys):
    d = work / "not-a-store"
    d.mkdir()
    (d / "notes.txt").write_text("x")
    assert main(["store", "verify", str(d), "--repair", "--no-progress"]) == 2
    assert "pnp did not write" in capsys.readouterr().err
    assert sorted(p.name for p in d.iterdir()) == ["notes.txt"]


def test_a_changed_grid_is_reported_and_never_overwritten(work, reference, client):
    store = work / "other-grid.zarr"
    shutil.copytree(reference, store)
    g = pstore.open_group(str(store), "r+")
    theta = g["theta"][:]
    theta[3, 0] *= 1.001  # a valid value that is not this pnp's grid
    g["theta"][:] = theta
    rep = integrity.scan(str(store))
    assert any("differ from the spec's grid" in str(p) and p.repair == integrity.NONE for p in rep.problems)
    with pytest.raises(ValueError, match="cannot repair"):
        precompute(work / "spec.toml", store, client=client, progress=False, out=None)
    assert np.array_equal(pstore.open_group(str(store))["theta"][:], theta)
