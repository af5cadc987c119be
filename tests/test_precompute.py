"""The precompute pipeline end to end on a tiny spec: values vs the library, no-op re-runs,
a SIGKILLed run resumed to an identical store, a killed worker, a separate scheduler and
workers, non-finite samples, --limit, info / verify, and clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from _stores import assert_same_store

import pnp.synth as ps
from pnp import store as pstore
from pnp.cli import main
from pnp.jacobian import eigenvalues, features_and_jacobian, metric
from pnp.pipelines.precompute import WORKER_CONFIG, precompute, verify
from pnp.spec import load_spec
from pnp.synth.amchirp import AMChirp

# 48 samples of (f_m, gamma) with f_c fixed, 12 chunks of 4; ~0.15 s per sample in float64
TINY = """
name = "tiny"
[synth]
name = "{synth}"
config = {{ sample_rate = 8192.0, duration = 0.25 }}
fixed = {{ f_c = 700.0 }}
[grid]
kind = "jittered"
counts = [8, 6]
seed = {seed}
[split]
rule = "pnp"
val_bins = [[3, 4], [2, 3]]
n_test = 6
[representation]
name = "jtfs"
config = {{ J = 6, Q = [4, 1], J_fr = 2, Q_fr = 1, F = 2, T = "global" }}
[features]
compression = "log1p"
c = 1e-3
[compute]
dtype = "float64"
batch_size = 2
[store]
chunk_size = 4
"""
N, CHUNKS = 48, 12




@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("precompute")
    (d / "tiny.toml").write_text(TINY.format(synth="amchirp", seed=1))
    (d / "tiny_seed2.toml").write_text(TINY.format(synth="amchirp", seed=2))
    return d


@pytest.fixture(scope="module")
def reference(workdir):
    """An uninterrupted run with the embedded LocalCluster (1 worker process)."""
    path = workdir / "reference.zarr"
    summary = precompute(workdir / "tiny.toml", path, workers=1, progress=False, out=None)
    return path, summary


def snapshot(path: Path) -> dict:
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in path.rglob("*") if p.is_file()}


# ------------------------------------------------------------------------------ basic run
def test_store_values_equal_direct_library_computation(reference, workdir):
    path, summary = reference
    assert summary.complete and summary.done == N and summary.failed == 0 and summary.computed == N
    assert summary.chunks == CHUNKS and summary.workers == 1 and summary.devices == ["cpu"]
    assert summary.builds == 1  # synth + representation built once per worker, not per task
    assert summary.peak_worker_memory and summary.store_bytes > 0 and summary.throughput > 0
    spec = load_spec(workdir / "tiny.toml")
    st = pstore.open_store(path)
    assert st.counts() == {"pending": 0, "done": N, "failed": 0}
    np.testing.assert_array_equal(st["theta"].compute(), spec.layout().theta)
    np.testing.assert_array_equal(st["split"].compute(), spec.layout().split)
    # random samples recomputed directly with pnp.jacobian
    synth = ps.get("amchirp", sample_rate=8192.0, duration=0.25)
    rep = spec.build_representation(synth)
    idx = np.sort(np.random.default_rng(0).choice(N, 5, replace=False))
    theta = spec.layout().theta[idx]
    nu = torch.tensor(spec.parametrization(synth).nu(theta), dtype=torch.float64)
    S, J = features_and_jacobian(synth, rep, nu, fixed={"f_c": 700.0}, batch_size=2)
    M = metric(J)
    E = eigenvalues(M)
    np.testing.assert_allclose(st["features"][idx].compute(), S.float().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(st["jacobian"][idx].compute(), J.float().numpy(), rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(st["metric"][idx].compute(), M.numpy(), rtol=1e-9)
    np.testing.assert_allclose(st["eigvals"][idx].compute(), E.numpy(), rtol=1e-9)
    assert st.attrs["params"] == ["f_m", "gamma"] and st.attrs["fixed"] == {"f_c": 700.0}
    run = st.attrs["runs"][0]
    assert run["state"] == "finished" and run["samples_computed"] == N


def test_rerun_is_a_noop(reference, workdir, capsys):
    path, _ = reference
    before = snapshot(path)
    t0 = time.perf_counter()
    rc = main(["precompute", str(workdir / "tiny.toml"), "--store", str(path), "--no-progress"])
    assert rc == 0
    assert time.perf_counter() - t0 < 20  # no cluster started, nothing computed
    out = capsys.readouterr().out
    assert "nothing to compute" in out and f"{N}/{N} done" in out
    assert snapshot(path) == before  # not a byte rewritten


def test_info_and_verify(reference, workdir, capsys):
    path, _ = reference
    assert main(["store", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{N} samples x 2 free parameters (f_m, gamma)" in out
    assert "train 38, val 4, test 6" in out and f"{N} done, 0 failed, 0 pending" in out
    assert "fixed       f_c = 700" in out and "log1p(|S| / c) with c = 0.001" in out and "torch" in out
    assert main(["store", "verify", str(path), "--recompute", "2"]) == 0
    out = capsys.readouterr().out
    assert "recomputed 2 random done samples" in out and "verify: OK" in out
    # a tampered store fails verification
    import shutil

    bad = workdir / "tampered.zarr"
    shutil.copytree(path, bad)
    g = pstore.open_group(str(bad), "r+")
    m = g["metric"][0:4]
    m[1, 0, 0] *= 1.01
    g["metric"][0:4] = m
    f = g["features"][4:8]
    f[2, 5] = np.nan
    g["features"][4:8] = f
    assert main(["store", "verify", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM: array 'features', chunk 1, samples 4..7: 1 done sample(s) hold non-finite values" in out
    assert "PROBLEM: array 'metric', chunk 0, samples 0..3: metric differs from JᵀJ" in out
    assert "verify: FAILED (2 problem(s))" in out


# ------------------------------------------------------------------------------ fault tolerance
def test_killed_run_resumes_to_an_identical_store(reference, workdir):
    ref_path, _ = reference
    path = workdir / "killed.zarr"
    cmd = [sys.executable, "-m", "pnp", "precompute", str(workdir / "tiny.toml"), "--store", str(path),
           "--workers", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done_at_kill = 0
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if pstore.is_store(str(path)):
                g = pstore.open_group(str(path))
                if dict(g.attrs)["pnp_store"]["state"] == "ready":
                    done_at_kill = int(np.sum(pstore.read_status(g) != pstore.PENDING))
                    if done_at_kill >= 8:
                        break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI, its scheduler and its worker processes
        proc.wait()
    assert 8 <= done_at_kill < N, f"run not caught mid-way ({done_at_kill} samples done)"
    g = pstore.open_group(str(path))
    status = pstore.read_status(g)
    assert 0 < np.sum(status == pstore.DONE) < N
    # every chunk is all-pending or all-done: never half-marked
    for a, b in pstore.chunk_ranges(N, 4):
        assert len(set(status[a:b].tolist())) == 1
    # done samples hold their data already
    assert np.all(np.isfinite(g["features"][:][status == pstore.DONE]))
    summary = precompute(workdir / "tiny.toml", path, workers=1, progress=False, out=None)
    assert summary.complete and summary.computed == N - int(np.sum(status == pstore.DONE))
    assert_same_store(ref_path, path)


def test_killed_worker_still_completes_the_store(reference, workdir):
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set(WORKER_CONFIG):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=50)
    client = Client(cluster)
    killed = []

    def kill_other_worker(result, client):
        if killed:
            return
        pids = client.run(os.getpid)  # address -> pid, one per worker process
        victim = next(pid for pid in pids.values() if pid != result["pid"])
        os.kill(victim, signal.SIGKILL)  # the other worker is mid-chunk
        killed.append(victim)

    try:
        path = workdir / "worker_killed.zarr"
        summary = precompute(workdir / "tiny.toml", path, client=client, progress=False, out=None,
                             on_result=kill_other_worker)
    finally:
        client.close()
        cluster.close()
    assert killed and summary.complete and summary.done == N and summary.computed == N
    assert summary.workers >= 2  # the tasks of the dead worker ran elsewhere / on its replacement
    assert_same_store(reference[0], path)


def test_separate_scheduler_and_worker_processes(reference, workdir, capsys):
    sched_file = workdir / "scheduler.json"
    env = dict(os.environ, PNP_TORCH_THREADS="1")
    dask_exe = Path(sys.executable).parent / "dask"
    if not dask_exe.exists():
        pytest.skip("the dask command line is not installed next to this Python")
    dask_cli = [str(dask_exe)]
    sched = subprocess.Popen(dask_cli + ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                         "--scheduler-file", str(sched_file)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    worker = None
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        assert sched_file.exists(), "dask scheduler did not start"
        worker = subprocess.Popen(dask_cli + ["worker", "--scheduler-file", str(sched_file), "--nthreads", "1",
                                              "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                  start_new_session=True)
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        path = workdir / "remote.zarr"
        # resume through --scheduler-file after a partial run through --scheduler ADDRESS
        rc = main(["precompute", str(workdir / "tiny.toml"), "--store", str(path), "--scheduler", address,
                   "--limit", "10", "--no-progress"])
        out = capsys.readouterr().out
        assert rc == 0 and f"dask scheduler {address}" in out and "12/48 done" in out
        rc = main(["precompute", str(workdir / "tiny.toml"), "--store", str(path), "--scheduler-file",
                   str(sched_file), "--no-progress"])
        out = capsys.readouterr().out
        assert rc == 0 and "computed 36 samples" in out and "(complete)" in out
    finally:
        for p in (worker, sched):
            if p is not None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in (worker, sched):
            if p is not None:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
    assert_same_store(reference[0], path)


# ------------------------------------------------------------------------------ failed samples
class NaNChirp(AMChirp):
    """The AM chirp, but NaN audio for f_m > 10 Hz (a synth that blows up somewhere)."""

    name = "nanchirp"

    def render(self, theta):
        y = super().render(theta)
        return torch.where(theta[:, 1:2] > 10.0, torch.full_like(y, float("nan")), y)


@pytest.fixture()
def inprocess_client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                           silence_logs=50)
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_nonfinite_samples_are_marked_failed(workdir, inprocess_client, monkeypatch):
    monkeypatch.setitem(ps.SYNTHS, "nanchirp", NaNChirp)
    spec_path = workdir / "nan.toml"
    spec_path.write_text(TINY.format(synth="nanchirp", seed=1))
    path = workdir / "nan.zarr"
    summary = precompute(spec_path, path, client=inprocess_client, progress=False, out=None)
    theta = load_spec(spec_path).layout().theta
    expect_failed = np.flatnonzero(theta[:, 0] > 10.0)
    assert 0 < expect_failed.size < N
    assert sorted(summary.failed_now) == expect_failed.tolist()
    assert summary.failed == expect_failed.size and summary.done == N - expect_failed.size and summary.complete
    st = pstore.open_store(path)
    status = st.status()
    assert np.all(status[expect_failed] == pstore.FAILED)
    assert np.all(status[np.setdiff1d(np.arange(N), expect_failed)] == pstore.DONE)
    feats = st["features"].compute()
    assert np.all(np.isnan(feats[expect_failed])) and np.all(np.isnan(st["jacobian"].compute()[expect_failed]))
    assert np.all(np.isfinite(feats[status == pstore.DONE]))
    report = verify(path)
    assert report.ok and any("failed samples" in line for line in report.lines)
    assert "sample(s) failed" in summary.report()


def test_limit_then_resume_on_an_fsspec_url(workdir, inprocess_client, capsys):
    """--limit, then resume; the store is an fsspec URL (memory://, shared by the in-process
    worker) as s3:// or gs:// stores would be."""
    import uuid

    url = f"memory://pnp-test-{uuid.uuid4().hex[:8]}/limited.zarr"
    s1 = precompute(workdir / "tiny.toml", url, client=inprocess_client, limit=5, progress=False, out=None)
    assert s1.computed == 8 and s1.chunks == 2 and s1.pending == N - 8 and not s1.complete
    assert "incomplete" in s1.report() and s1.store_bytes > 0
    s2 = precompute(workdir / "tiny.toml", url, client=inprocess_client, limit=100, progress=False, out=None)
    assert s2.computed == N - 8 and s2.complete
    assert main(["store", "info", url]) == 0
    assert f"{N} done, 0 failed, 0 pending" in capsys.readouterr().out


def test_features_only_store_with_audio(workdir, inprocess_client):
    """store.jacobian = false (features only, for MSS / time-scattering stores) and store.audio."""
    spec_path = workdir / "features_only.toml"
    spec_path.write_text(TINY.format(synth="amchirp", seed=1).replace("chunk_size = 4", "chunk_size = 16\njacobian = false\naudio = true"))
    path = workdir / "features_only.zarr"
    summary = precompute(spec_path, path, client=inprocess_client, progress=False, out=None)
    assert summary.complete and summary.chunks == 3
    st = pstore.open_store(path)
    assert "jacobian" not in st and "metric" not in st and st["audio"].shape == (N, 2048)
    spec = load_spec(spec_path)
    synth = spec.build_synth()
    param = spec.parametrization(synth)
    nu = torch.tensor(param.nu(spec.layout().theta[:3]), dtype=torch.float64)
    with torch.no_grad():
        x = synth(param.theta(nu))
        S = spec.build_representation(synth).features(x)
    np.testing.assert_allclose(st["audio"][:3].compute(), x.float().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(st["features"][:3].compute(), S.float().numpy(), rtol=1e-6, atol=1e-6)
    assert verify(path, recompute=1).ok


def test_mixed_precision_store_records_its_dtype_and_refuses_another(workdir, inprocess_client, capsys):
    """compute.dtype = "mixed": the stored features / Jacobian are those of
    ``features_and_jacobian(..., representation_dtype=float32)`` on float64 ν; the store's spec
    provenance says "mixed"; resuming it with a float64 spec is refused naming the field."""
    spec_path = workdir / "mixed.toml"
    spec_path.write_text(TINY.format(synth="amchirp", seed=1).replace('dtype = "float64"', 'dtype = "mixed"'))
    path = workdir / "mixed.zarr"
    summary = precompute(spec_path, path, client=inprocess_client, limit=4, progress=False, out=None)
    assert summary.computed == 4
    st = pstore.open_store(path)
    assert st.spec().compute["dtype"] == "mixed"
    spec = load_spec(spec_path)
    synth = spec.build_synth()
    param = spec.parametrization(synth)
    nu = torch.tensor(param.nu(spec.layout().theta[:4]), dtype=torch.float64)
    S, J = features_and_jacobian(synth, spec.build_representation(synth), nu, parametrization=param,
                                 representation_dtype=torch.float32)
    assert S.dtype == J.dtype == torch.float32
    np.testing.assert_array_equal(st["features"][:4].compute(), S.numpy())
    np.testing.assert_array_equal(st["jacobian"][:4].compute(), J.numpy())
    float64 = workdir / "float64_on_mixed.toml"
    float64.write_text(spec_path.read_text().replace('dtype = "mixed"', 'dtype = "float64"'))
    err = _err(capsys, ["precompute", str(float64), "--store", str(path)])
    assert "created from a different spec" in err and 'compute.dtype (this: "float64", other: "mixed")' in err


# ------------------------------------------------------------------------------ errors
def _err(capsys, argv) -> str:
    rc = main(argv)
    captured = capsys.readouterr()
    assert rc == 2, captured
    err = captured.err.strip()
    assert err.startswith("pnp precompute: error:") and "\n" not in err and "Traceback" not in err
    return err


def test_clear_errors(reference, workdir, capsys, tmp_path):
    ref_path, _ = reference
    spec = str(workdir / "tiny.toml")
    before = snapshot(ref_path)
    err = _err(capsys, ["precompute", str(workdir / "tiny_seed2.toml"), "--store", str(ref_path)])
    assert "created from a different spec" in err and "grid.seed (this: 2, other: 1)" in err
    assert snapshot(ref_path) == before  # refused before touching anything
    err = _err(capsys, ["precompute", str(tmp_path / "nope.toml"), "--store", str(tmp_path / "x.zarr")])
    assert "spec file not found" in err
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.format(synth="amchirp", seed=1).replace("chunk_size = 4", "chunk_size = 0"))
    err = _err(capsys, ["precompute", str(bad), "--store", str(tmp_path / "x.zarr")])
    assert "store.chunk_size must be an integer in [1, 1048576], got 0" in err
    (tmp_path / "afile").write_text("x")
    err = _err(capsys, ["precompute", spec, "--store", str(tmp_path / "afile" / "s.zarr")])
    assert "cannot create the store" in err
    (tmp_path / "somedir").mkdir()
    (tmp_path / "somedir" / "notes.txt").write_text("x")
    err = _err(capsys, ["precompute", spec, "--store", str(tmp_path / "somedir")])
    assert "holds files that pnp did not write (not a pnp store)" in err
    err = _err(capsys, ["precompute", spec, "--store", str(tmp_path / "y.zarr"), "--limit", "0"])
    assert "--limit must be an integer >= 1, got 0" in err
    err = _err(capsys, ["precompute", spec, "--store", str(tmp_path / "y.zarr"), "--workers", "2",
                        "--scheduler", "tcp://127.0.0.1:1"])
    assert "--workers applies to the embedded LocalCluster only" in err
    err = _err(capsys, ["precompute", spec, "--store", str(tmp_path / "y.zarr"), "--scheduler-file",
                        str(tmp_path / "missing.json")])
    assert "does not exist" in err
    if not torch.cuda.is_available():
        err = _err(capsys, ["precompute", spec, "--store", str(tmp_path / "y.zarr"), "--device", "cuda"])
        assert "CUDA is not available" in err
    assert not (tmp_path / "y.zarr").exists()  # none of the refused runs created a store
    assert main(["precompute", spec, "--store", "z.zarr", "--scheduler", "a", "--scheduler-file", "b"]) == 2  # argparse
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(ValueError, match="either --scheduler or --scheduler-file"):
        precompute(spec, tmp_path / "z.zarr", scheduler="tcp://x:1", scheduler_file="f.json")
    rc = main(["store", "info", str(tmp_path / "missing.zarr")])
    assert rc == 2 and "no store at" in capsys.readouterr().err
