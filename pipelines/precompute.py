"""``pnp precompute``: features, Jacobians and metrics of a dataset spec into a zarr store, on dask.

:func:`precompute` is the pipeline (the CLI is a thin wrapper):

1. load and validate the spec; create the store (:mod:`pnp.store`) or reopen it — resuming is
   refused if the store was created from a different spec (the differing fields are named);
2. find the chunks that still hold pending samples (``status == 0``);
3. attach to a dask.distributed cluster (``scheduler`` address or ``scheduler_file``) or start
   an embedded ``LocalCluster`` (``LocalCUDACluster`` from dask-cuda for several GPUs when it is
   installed) and submit **one task per pending chunk** (:func:`pipelines._worker.run_chunk`:
   the synth/representation are built once per worker; each task writes its own chunk region,
   data first and ``status`` last);
4. follow the tasks with a progress bar (samples/s, ETA) and print a summary.

Fault tolerance comes from dask (tasks of a dead worker are rescheduled) and from the store's
write protocol (a chunk is done only once its status is written), so a killed run is completed
by running the same command again.  :func:`verify` checks a finished store.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping, TextIO

import numpy as np

from pnp import allocator
from pnp import store as pstore
from pnp.spec import DatasetSpec, load_spec

log = logging.getLogger(__name__)

#: dask configuration of the embedded cluster's workers (measured on the demo spec):
#:
#: * dask's default ``MALLOC_TRIM_THRESHOLD_=65536`` also freezes glibc's mmap threshold at
#:   128 kB, so every JTFS intermediate is mmap-ed and page-faulted afresh (2.7x more system
#:   time per sample): heap reuse up to 32 MB allocations and a large trim threshold instead,
#:   the settings of :mod:`pnp.allocator` (which the tasks also apply in-process, so workers of
#:   an existing cluster get them too);
#: * the worker's statistical profiler samples the computing thread's Python stack every 10 ms,
#:   which competes for the GIL with the many small torch calls of a JTFS Jacobian: off; the
#:   system / memory monitors poll less often (dashboard-only metrics; tasks last seconds).
#:
#: For ``dask worker`` processes, turn the profiler off in their dask configuration (README).
WORKER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": allocator.TRIM_THRESHOLD,
    "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": allocator.MMAP_THRESHOLD,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}


class ChunkError(ValueError):
    """A task failed with an exception (not a non-finite sample): the run stops, the store
    stays resumable."""


@dataclass
class Summary:
    """Outcome of a :func:`precompute` call."""

    store: str
    name: str
    n_samples: int
    done: int
    failed: int
    pending: int
    computed: int = 0
    failed_now: list[int] = field(default_factory=list)
    seconds: float = 0.0
    compute_seconds: float = 0.0
    store_bytes: int = 0
    peak_worker_memory: int | None = None
    workers: int | None = None
    devices: list[str] = field(default_factory=list)
    created: bool = False
    chunks: int = 0
    builds: int | None = None
    #: seconds from the first submit to the first / last finished chunk (warm-up excluded rate)
    first_result_seconds: float | None = None
    last_result_seconds: float | None = None
    first_chunk_samples: int = 0
    #: summed wall time / CPU time (of the computing threads) spent inside the tasks
    task_seconds: float = 0.0
    task_cpu_seconds: float = 0.0

    @property
    def steady_throughput(self) -> float | None:
        """Samples/s between the first and the last finished chunk (excludes worker start-up,
        imports and the engine build); None with fewer than two chunks."""
        if self.chunks < 2 or self.last_result_seconds is None or self.first_result_seconds is None:
            return None
        span = self.last_result_seconds - self.first_result_seconds
        return (self.computed - self.first_chunk_samples) / span if span > 0 else None

    @property
    def throughput(self) -> float:
        """Samples per second of wall time in this run (0 when nothing was computed)."""
        return self.computed / self.seconds if self.seconds > 0 and self.computed else 0.0

    @property
    def complete(self) -> bool:
        return self.pending == 0

    def report(self) -> str:
        lines = []
        if self.chunks:
            lines.append(
                f"computed {self.computed} samples ({self.chunks} chunks) in {self.seconds:.1f} s: "
                f"{self.throughput:.2f} samples/s"
                + (f" on {self.workers} worker(s)" if self.workers else "")
                + (f" [{', '.join(self.devices)}]" if self.devices else "")
            )
        if self.failed_now:
            shown = ", ".join(map(str, self.failed_now[:10])) + (" …" if len(self.failed_now) > 10 else "")
            lines.append(f"{len(self.failed_now)} sample(s) failed (non-finite features or Jacobian): {shown}")
        lines.append(
            f"store {self.store}: {self.done}/{self.n_samples} done, {self.failed} failed, {self.pending} pending"
            + (" (complete)" if self.complete else " (incomplete: run the same command again to resume)")
        )
        size = f"size {pstore.human_bytes(self.store_bytes)}"
        if self.n_samples:
            size += f" ({pstore.human_bytes(self.store_bytes / self.n_samples)}/sample)"
        if self.peak_worker_memory:
            size += f", peak worker memory {pstore.human_bytes(self.peak_worker_memory)}"
        lines.append(size)
        return "\n".join(lines)


# ------------------------------------------------------------------------------ arguments
def _positive(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _ncpu() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


# ------------------------------------------------------------------------------ store
def _n_coefs(synth, rep, param) -> int:
    """K, from one forward pass at the centre of the space (float32, CPU)."""
    import torch

    with torch.no_grad():
        nu = torch.zeros(1, param.dim, dtype=torch.float32)
        return int(rep.features(synth(param.theta(nu), validate=False)).shape[1])


def prepare_store(spec: DatasetSpec, path: str, device: str, storage_options: Mapping | None = None,
                  out: TextIO | None = None):
    """Create the store for ``spec`` or reopen it for resuming; returns ``(group, created)``.

    Refuses (``ValueError``) a store created from another spec, naming the differing fields;
    ``FileExistsError`` when ``path`` holds something that is not a pnp store.
    """
    path = pstore.normalise_path(path)
    overwrite = False
    if pstore.exists(path, storage_options):
        if not pstore.is_store(path, storage_options):
            raise FileExistsError(f"{path} exists and is not a pnp store; choose another --store path")
        group = pstore.open_group(path, "r+", storage_options)
        stored = dict(group.attrs).get("spec", {})
        diff = spec.diff(stored)
        if diff:
            raise ValueError(
                f"the store {path} was created from a different spec ({stored.get('name', '?')!r}); "
                f"differing fields: {'; '.join(diff)}. Use the original spec to resume, or another --store path"
            )
        marker = dict(group.attrs).get(pstore.MARKER, {})
        if marker.get("state") == "ready":
            pstore.validate_store(group, path)
            return group, False
        overwrite = True  # creation was interrupted: nothing computed yet, start again
        if out:
            print(f"store {path}: creation was interrupted, recreating it", file=out)
    synth = spec.build_synth()
    rep = spec.build_representation(synth)
    param = spec.parametrization(synth)
    K = _n_coefs(synth, rep, param)
    attrs = pstore.provenance(spec, synth, rep, param, K, device)
    n_time = synth.n_samples if spec.store["audio"] else None
    group = pstore.create_store(path, spec, attrs, K, n_time=n_time, storage_options=storage_options,
                                overwrite=overwrite)
    return group, True


# ------------------------------------------------------------------------------ cluster
def _client(workers, threads_per_worker, scheduler, scheduler_file, device, n_tasks):
    """(client, cluster or None, description, torch threads per task or None)."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler or scheduler_file:
        target = scheduler or scheduler_file
        try:
            if scheduler:
                client = Client(scheduler, timeout="30s")
            else:
                if not os.path.exists(scheduler_file):
                    raise FileNotFoundError(f"--scheduler-file {scheduler_file} does not exist")
                client = Client(scheduler_file=scheduler_file, timeout="30s")
        except (OSError, TimeoutError) as err:
            if isinstance(err, FileNotFoundError):
                raise
            raise ValueError(f"cannot connect to the dask scheduler at {target}: {err}") from None
        n = len(client.scheduler_info(n_workers=-1).get("workers", {})) if _accepts_n_workers(client) else \
            len(client.scheduler_info().get("workers", {}))
        return client, None, f"dask scheduler {client.scheduler.address} ({n} worker(s) now)", None

    import torch

    ncpu = _ncpu()
    silence = logging.ERROR
    if device.startswith("cuda"):
        n_gpus = max(1, torch.cuda.device_count())
        workers = workers or n_gpus
        try:
            from dask_cuda import LocalCUDACluster  # type: ignore[import-not-found]
        except ImportError:
            LocalCUDACluster = None
        if LocalCUDACluster is not None and n_gpus > 1:
            with dask.config.set(WORKER_CONFIG):
                cluster = LocalCUDACluster(n_workers=min(workers, n_gpus), threads_per_worker=threads_per_worker,
                                           dashboard_address=None, silence_logs=silence)
            desc = f"LocalCUDACluster: {min(workers, n_gpus)} worker(s), one GPU each"
            return Client(cluster), cluster, desc, 1
    else:
        workers = workers or max(1, min(ncpu, n_tasks))
    torch_threads = 1  # see pipelines._worker._torch_threads
    with dask.config.set(WORKER_CONFIG):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            dashboard_address=None,
            scheduler_port=0,
            silence_logs=silence,
        )
    desc = f"LocalCluster: {workers} worker process(es) x {threads_per_worker} thread(s)"
    return Client(cluster), cluster, desc, torch_threads


def _accepts_n_workers(client) -> bool:
    import inspect

    try:
        return "n_workers" in inspect.signature(client.scheduler_info).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def _append_run(path: str, storage_options, record: dict, index: int | None = None) -> int:
    group = pstore.open_group(path, "r", storage_options)
    runs = list(dict(group.attrs).get("runs", []))
    if index is None:
        runs.append(record)
        index = len(runs) - 1
    else:
        runs[index] = record
    pstore.update_attrs(path, {"runs": runs}, storage_options)
    return index


# ------------------------------------------------------------------------------ pipeline
def precompute(
    spec: DatasetSpec | str | os.PathLike,
    store: str | os.PathLike,
    workers: int | None = None,
    threads_per_worker: int = 1,
    scheduler: str | None = None,
    scheduler_file: str | None = None,
    device: str = "auto",
    limit: int | None = None,
    storage_options: Mapping | None = None,
    client=None,
    progress: bool = True,
    out: TextIO | None | str = "stdout",
    on_result=None,
) -> Summary:
    """Compute every pending sample of ``spec`` into ``store`` (see module docs).

    Parameters
    ----------
    spec : DatasetSpec or path of a TOML spec
    store : local path or fsspec URL of the zarr store (created if absent, resumed otherwise)
    workers, threads_per_worker : embedded LocalCluster size (default: one single-threaded
        worker per CPU core, or per GPU with ``device='cuda'``)
    scheduler, scheduler_file : attach to an existing dask cluster instead (mutually exclusive)
    device : 'auto' (cuda if available), 'cpu' or 'cuda' — resolved on each worker
    limit : compute only the first pending chunks covering ``limit`` samples
    storage_options : fsspec options for URL stores (credentials, endpoint)
    client : an existing ``distributed.Client`` to use (not closed afterwards)
    progress : show a tqdm progress bar (stderr)
    out : where to print the header and summary (default ``sys.stdout``; None: silent)
    on_result : optional callback ``f(result_dict, client)`` after each finished chunk

    Returns a :class:`Summary`.  Raises ``ValueError`` for bad arguments, a spec mismatch or a
    failing task (:class:`ChunkError`); ``FileNotFoundError`` for a missing spec or scheduler
    file; ``FileExistsError`` / ``PermissionError`` for unusable store paths.
    """
    t_start = time.perf_counter()
    out = sys.stdout if out == "stdout" else out
    say = (lambda msg: print(msg, file=out, flush=True)) if out is not None else (lambda msg: None)
    if not isinstance(spec, DatasetSpec):
        spec = load_spec(spec)
    workers = _positive(workers, "--workers")
    threads_per_worker = _positive(threads_per_worker, "--threads-per-worker") or 1
    limit = _positive(limit, "--limit")
    if scheduler and scheduler_file:
        raise ValueError("give either --scheduler or --scheduler-file, not both")
    if scheduler_file and not os.path.exists(scheduler_file):
        raise FileNotFoundError(f"--scheduler-file {scheduler_file} does not exist")
    remote = bool(scheduler or scheduler_file) or client is not None
    if remote and workers is not None and client is None:
        raise ValueError("--workers applies to the embedded LocalCluster only; size a remote cluster on its side")
    from pipelines._worker import resolve_device

    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    # an embedded cluster runs here: resolve now (clear error if CUDA is missing); remote
    # workers resolve the device themselves (the client may well have no GPU)
    run_device = device if remote else resolve_device(device)
    path = pstore.normalise_path(store)

    group, created = prepare_store(spec, path, run_device, storage_options, out)
    status = pstore.read_status(group)
    chunk_size = pstore.chunk_size_of(group)
    ranges = pstore.chunk_ranges(status.shape[0], chunk_size)
    pending = pstore.pending_chunks(group, status)
    say(f"{spec.name}: {spec.n_samples} samples x {group['theta'].shape[1]} free "
        f"parameters ({', '.join(group.attrs['params'])}), {group.attrs['n_coefs']} coefficients"
        f"{', with Jacobian' if spec.store['jacobian'] else ', features only'}; "
        f"store {path} ({'new' if created else 'resuming'}: {int(np.sum(status != pstore.PENDING))} done or failed, "
        f"{len(pending)} of {len(ranges)} chunks pending)")
    if limit is not None:
        selected, total = [], 0
        for c in pending:
            if total >= limit:
                break
            selected.append(c)
            total += ranges[c][1] - ranges[c][0]
        pending = selected
    summary = Summary(store=path, name=spec.name, n_samples=int(status.shape[0]), done=0, failed=0, pending=0,
                      created=created)
    if not pending:
        _finish(summary, group, path, storage_options, t_start)
        say("nothing to compute: no pending chunk")
        say(summary.report())
        return summary

    own = client is None
    cluster = None
    torch_threads = None
    if own:
        client, cluster, desc, torch_threads = _client(
            workers, threads_per_worker, scheduler, scheduler_file, run_device, len(pending))
    else:
        desc = f"dask client {client}"
    say(desc)
    run_record = {"started": pstore.now(), "host": socket.gethostname(), "cluster": desc, "device": run_device,
                  "state": "running", "chunks": len(pending)}
    run_index = _append_run(path, storage_options, run_record)
    n_todo = sum(ranges[c][1] - ranges[c][0] for c in pending)
    spec_dict, spec_hash = spec.to_dict(), spec.hash
    token = uuid.uuid4().hex[:8]
    futures = {}
    t_compute = time.perf_counter()
    pids: set[int] = set()
    try:
        from distributed import as_completed
        from tqdm.auto import tqdm

        from pipelines._worker import run_chunk

        for c in pending:
            fut = client.submit(run_chunk, path, dict(storage_options or {}) or None, spec_dict, spec_hash, c,
                                run_device, torch_threads, key=f"pnp-{spec.name}-chunk-{c}-{token}",
                                pure=False, retries=1)
            futures[fut] = c
        bar = tqdm(total=n_todo, unit="sample", desc=spec.name, disable=not progress, file=sys.stderr,
                   dynamic_ncols=True, smoothing=0.2)
        peak, devices, builds = 0, set(), {}
        try:
            for fut in as_completed(list(futures)):
                c = futures[fut]
                if fut.status != "finished":
                    try:
                        err = fut.exception()
                    except BaseException as exc:  # noqa: BLE001 - cancelled (e.g. scheduler lost)
                        err = exc
                    a, b = ranges[c]
                    text = " ".join(f"{type(err).__name__}: {err}".split())[:500]
                    raise ChunkError(
                        f"chunk {c} (samples {a}..{b - 1}) failed: {text}. "
                        "Finished chunks are kept; fix the cause and run the same command to resume"
                    )
                res = fut.result()
                now = time.perf_counter() - t_compute
                if summary.first_result_seconds is None:
                    summary.first_result_seconds = now
                    summary.first_chunk_samples = res["stop"] - res["start"]
                summary.last_result_seconds = now
                summary.computed += res["stop"] - res["start"]
                summary.task_seconds += float(res.get("seconds", 0.0))
                summary.task_cpu_seconds += float(res.get("cpu_seconds", 0.0))
                summary.chunks += 1
                summary.failed_now.extend(res["failed"])
                peak = max(peak, int(res.get("maxrss", 0)))
                devices.add(res.get("device", "?"))
                builds[res.get("pid")] = res.get("builds")
                pids.add(res.get("pid"))
                bar.update(res["stop"] - res["start"])
                if summary.failed_now:
                    bar.set_postfix(failed=len(summary.failed_now), refresh=False)
                if on_result is not None:
                    on_result(res, client)
        finally:
            bar.close()
        summary.peak_worker_memory = peak or None
        summary.devices = sorted(devices)
        summary.workers = len(pids)
        summary.builds = max((v for v in builds.values() if v is not None), default=None)
        summary.compute_seconds = time.perf_counter() - t_compute
        run_record["state"] = "finished"
    except BaseException as err:
        for fut in futures:
            fut.cancel()
        run_record["state"] = "interrupted" if isinstance(err, KeyboardInterrupt) else "error"
        if isinstance(err, ChunkError):
            run_record["error"] = str(err)
        raise
    finally:
        run_record.update(finished=pstore.now(), samples_computed=summary.computed,
                          samples_failed=len(summary.failed_now), devices=summary.devices)
        try:
            _append_run(path, storage_options, run_record, run_index)
            stored_device = dict(pstore.open_group(path, "r", storage_options).attrs).get("device")
            if summary.devices and (created or stored_device in ("auto", "cuda")) and \
                    stored_device != ", ".join(summary.devices):
                # the devices the workers actually used (remote workers resolve the device)
                pstore.update_attrs(path, {"device": ", ".join(summary.devices)}, storage_options)
        except Exception:  # noqa: BLE001 - never hide the real error
            log.warning("could not record the run in the store attributes", exc_info=True)
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
    _finish(summary, group, path, storage_options, t_start)
    say(summary.report())
    return summary


def _finish(summary: Summary, group, path: str, storage_options, t_start: float) -> None:
    status = pstore.read_status(group)
    summary.done = int(np.sum(status == pstore.DONE))
    summary.failed = int(np.sum(status == pstore.FAILED))
    summary.pending = int(np.sum(status == pstore.PENDING))
    summary.seconds = time.perf_counter() - t_start
    summary.store_bytes = pstore.store_size(path, storage_options)


# ------------------------------------------------------------------------------ verify
@dataclass
class VerifyReport:
    """Outcome of :func:`verify`: ``ok`` is False when ``problems`` is not empty."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    max_errors: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def _relerr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample ‖a − b‖ / ‖b‖ over all axes but the first (float64)."""
    a = a.reshape(a.shape[0], -1).astype(np.float64)
    b = b.reshape(b.shape[0], -1).astype(np.float64)
    den = np.linalg.norm(b, axis=1)
    return np.linalg.norm(a - b, axis=1) / np.where(den > 0, den, 1.0)


def verify(
    store: str | os.PathLike,
    recompute: int = 0,
    seed: int = 0,
    device: str = "cpu",
    rtol: float | None = None,
    storage_options: Mapping | None = None,
) -> VerifyReport:
    """Check a store: schema, completeness, finiteness, layout and metric consistency, and
    ``recompute`` random done samples recomputed with the library and compared.

    The comparison is per sample, ``‖stored − recomputed‖ / ‖recomputed‖ <= rtol`` for the
    features, Jacobian and metric and ``|Δλ| <= rtol · max λ`` for the eigenvalues.  The default
    ``rtol`` suits float32 storage: 1e-5 for a float64 computation, 1e-4 for float32 (round-off
    of the computation itself, possibly on another device).
    """
    import dask.array as da

    rep = VerifyReport()
    recompute = int(recompute)
    if recompute < 0:
        raise ValueError(f"--recompute must be an integer >= 0, got {recompute}")
    st = pstore.open_store(store, storage_options)
    spec = st.spec()
    rtol = rtol if rtol is not None else (1e-5 if spec.compute["dtype"] == "float64" else 1e-4)  # mixed: float32 representation
    counts = st.counts()
    S = st.n_samples
    rep.lines.append(f"store {st.path}: {S} samples, {counts['done']} done, {counts['failed']} failed, "
                     f"{counts['pending']} pending")
    if counts["pending"]:
        rep.problems.append(f"incomplete: {counts['pending']} samples pending (run `pnp precompute` again)")
    status = st.status()
    if counts["failed"]:
        idx = np.flatnonzero(status == pstore.FAILED)
        rep.lines.append(f"failed samples (non-finite results, excluded): {', '.join(map(str, idx[:20]))}"
                         + (" …" if idx.size > 20 else ""))

    # layout: theta / nu / bin / split as the spec defines them
    layout = spec.layout()
    checks = {
        "theta": np.array_equal(np.asarray(st.group["theta"][:]), layout.theta),
        "nu": np.array_equal(np.asarray(st.group["nu"][:]), layout.nu.astype(np.float32)),
        "bin": np.array_equal(np.asarray(st.group["bin"][:]), layout.bins),
        "split": np.array_equal(np.asarray(st.group["split"][:]), layout.split),
    }
    bad = [k for k, v in checks.items() if not v]
    if bad:
        rep.problems.append(f"layout arrays differ from the spec's grid: {', '.join(bad)}")
    else:
        rep.lines.append("layout (theta, nu, bin, split) matches the spec")

    # finiteness of every done sample, chunk-parallel with dask
    done = status == pstore.DONE
    computed = [k for k in pstore.COMPUTED if k in st.arrays]
    finite = {}
    for name in computed:
        arr = st[name]
        finite[name] = da.isfinite(arr).all(axis=tuple(range(1, arr.ndim)))
    finite = dict(zip(finite, da.compute(*finite.values())))
    for name, ok in finite.items():
        nbad = int(np.sum(done & ~ok))
        if nbad:
            rep.problems.append(f"{name}: {nbad} done samples hold non-finite values")
    if not rep.problems or all("non-finite" not in p for p in rep.problems):
        rep.lines.append(f"finite: {', '.join(computed)} of all {int(done.sum())} done samples")

    # metric = JᵀJ and eigenvalues, on the stored values (chunk by chunk)
    if "jacobian" in st.arrays and done.any():
        worst_m, worst_e = 0.0, 0.0
        c = st.chunk_size
        for a, b in pstore.chunk_ranges(S, c):
            sel = done[a:b]
            if not sel.any():
                continue
            J = np.asarray(st.group["jacobian"][a:b])[sel].astype(np.float64)
            M = np.asarray(st.group["metric"][a:b])[sel]
            E = np.asarray(st.group["eigvals"][a:b])[sel]
            M_ref = np.einsum("bki,bkj->bij", J, J)
            worst_m = max(worst_m, float(_relerr(M, M_ref).max()))
            E_ref = np.linalg.eigvalsh(M)
            scale = np.maximum(np.abs(E_ref).max(axis=1), np.finfo(np.float64).tiny)
            worst_e = max(worst_e, float((np.abs(E - E_ref).max(axis=1) / scale).max()))
        rep.max_errors.update({"metric_vs_JtJ": worst_m, "eigvals_vs_eigh": worst_e})
        # J is stored in float32: M (from the unrounded J) matches JᵀJ to ~1e-7 relative
        if worst_m > 1e-5:
            rep.problems.append(f"metric differs from J^T J of the stored Jacobian (max relative error {worst_m:.2e})")
        if worst_e > 1e-8:
            rep.problems.append(f"eigvals differ from the eigenvalues of the stored metric (max {worst_e:.2e})")
        if worst_m <= 1e-5 and worst_e <= 1e-8:
            rep.lines.append(f"metric = J^T J (max rel. error {worst_m:.1e}), eigvals = eig(metric) ({worst_e:.1e})")

    # recompute random samples with the library
    if recompute:
        idx = np.flatnonzero(done)
        if idx.size == 0:
            rep.problems.append("--recompute: no done sample to recompute")
            return rep
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(idx, size=min(recompute, idx.size), replace=False))
        from pipelines._worker import build_engine, compute_block, resolve_device

        engine = build_engine(spec, resolve_device(device))
        theta = np.asarray(st.group["theta"].get_orthogonal_selection((pick, slice(None))))
        data, ok = compute_block(engine, theta)
        if not ok.all():
            rep.problems.append(f"recomputed samples {pick[~ok].tolist()} are not finite but stored as done")
        for name in computed:
            stored = np.asarray(st.group[name].get_orthogonal_selection((pick,) + (slice(None),) * (st[name].ndim - 1)))
            if name == "eigvals":
                scale = np.maximum(np.abs(data[name]).max(axis=1), np.finfo(np.float64).tiny)
                err = np.abs(stored - data[name]).max(axis=1) / scale
            else:
                err = _relerr(stored, data[name])
            worst = float(np.nanmax(err)) if err.size else 0.0
            rep.max_errors[f"recompute_{name}"] = worst
            if not worst <= rtol:
                rep.problems.append(f"{name}: recomputed samples differ from the store (max relative error "
                                    f"{worst:.2e} > rtol {rtol:g}; samples {pick[err > rtol].tolist()})")
        if all(rep.max_errors.get(f"recompute_{n}", 0.0) <= rtol for n in computed):
            errs = ", ".join(f"{n} {rep.max_errors[f'recompute_{n}']:.1e}" for n in computed)
            rep.lines.append(f"recomputed {pick.size} random done samples {pick.tolist()} on {engine.device}: "
                             f"max relative errors {errs} (rtol {rtol:g})")
    return rep
