"""``pnp precompute``: features, Jacobians and metrics of a dataset spec into a zarr store, on dask.

:func:`precompute` is the pipeline (the CLI is a thin wrapper):

1. load and validate the spec; create the store (:mod:`pnp.store`) or reopen it — resuming is
   refused if the store was created from a different spec (the differing fields are named);
2. find the chunks that still hold pending samples (``status == 0``);
3. attach to a dask.distributed cluster (``scheduler`` address or ``scheduler_file``) or start
   an embedded ``LocalCluster`` (``LocalCUDACluster`` from dask-cuda for several GPUs when it is
   installed) and submit **one task per pending chunk** (:func:`pnp.pipelines._worker.run_chunk`:
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
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, TextIO

import numpy as np

from pnp import allocator
from pnp import store as pstore
from pnp.faults import failpoint
from pnp.spec import DatasetSpec, load_spec
from pnp.store.compute import prepare_store  # noqa: F401 - part of this module's interface

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
def mark_dead_runs(path: str, storage_options: Mapping | None = None) -> int:
    """Mark the run records still 'running' as 'interrupted' (call under the writer lock: no
    other run is alive then).  Returns how many were marked."""
    group = pstore.open_group(path, "r", storage_options)
    runs = list(dict(group.attrs).get("runs", []))
    n = 0
    for r in runs:
        if isinstance(r, dict) and r.get("state") == "running":
            r["state"] = "interrupted"
            r["note"] = f"the process ended without recording its end (marked by the run of {pstore.now()})"
            n += 1
    if n:
        pstore.update_attrs(path, {"runs": runs}, storage_options)
    return n


def check_and_repair(path: str, storage_options: Mapping | None = None, say=print, progress: bool = False) -> int:
    """Scan a store being resumed (:func:`pnp.store.integrity.scan`) and repair what is found
    (damaged chunks become pending and are recomputed by this run).  Returns the number of
    problems repaired; raises ``ValueError`` for a store that cannot be used at all."""
    from pnp.store import integrity

    scan = integrity.scan(path, storage_options, progress=progress)
    if not scan.readable:
        raise ValueError("; ".join(str(p) for p in scan.problems))
    found = [p for p in scan.problems if not p.message.startswith("incomplete")]
    if not found:
        return 0
    for p in found:
        say(f"store check: {p}")
    outcome = integrity.repair(scan, storage_options)
    for line in outcome.lines():
        say(line.replace("run `pnp precompute` with the store's spec to recompute them", "recomputed by this run"))
    if outcome.unrepairable:
        raise ValueError(f"the store {path} has problems pnp cannot repair: "
                         + "; ".join(str(p) for p in outcome.unrepairable))
    return len(found)


# ------------------------------------------------------------------------------ cluster
def _client(workers, threads_per_worker, scheduler, scheduler_file, device, n_tasks, dashboard=False):
    """(client, cluster or None, description, torch threads per task or None)."""
    import dask
    from distributed import Client, LocalCluster

    from pnp.pipelines.cluster import dashboard_kwargs

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
            from dask_cuda import LocalCUDACluster
        except ImportError:
            LocalCUDACluster = None
        if LocalCUDACluster is not None and n_gpus > 1:
            with dask.config.set(WORKER_CONFIG):
                cluster = LocalCUDACluster(n_workers=min(workers, n_gpus), threads_per_worker=threads_per_worker,
                                           silence_logs=silence, **dashboard_kwargs(dashboard))
            desc = f"LocalCUDACluster: {min(workers, n_gpus)} worker(s), one GPU each"
            return Client(cluster), cluster, desc, 1
    else:
        workers = workers or max(1, min(ncpu, n_tasks))
    torch_threads = 1  # see pnp.pipelines._worker._torch_threads
    with dask.config.set(WORKER_CONFIG):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            scheduler_port=0,
            silence_logs=silence,
            **dashboard_kwargs(dashboard),
        )
    desc = f"LocalCluster: {workers} worker process(es) x {threads_per_worker} thread(s)"
    if dashboard:
        desc += f"; dashboard {cluster.dashboard_link}"
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
    dashboard: bool = False,
    check: bool = True,
    tune_malloc: bool | None = None,
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
    dashboard : serve dask's dashboard (embedded cluster only; default off)
    tune_malloc : apply :func:`pnp.allocator.tune_malloc` in every worker process (default: on
        for the embedded cluster, where it was measured 20–40 % faster, off on a cluster given by
        ``scheduler`` / ``scheduler_file`` / ``client``, whose workers are left as they are)
    check : when resuming, first scan the store (:func:`pnp.store.integrity.scan`) and recompute
        every chunk found damaged (default on; reads the whole store once)

    One writer per store: the run holds :class:`pnp.store.lock.WriterLock` from start to end, so
    a second run on the same store is refused at once naming the holder.

    Returns a :class:`Summary`.  Raises ``ValueError`` for bad arguments, a spec mismatch or a
    failing task (:class:`ChunkError`); ``FileNotFoundError`` for a missing spec or scheduler
    file; ``FileExistsError`` / ``PermissionError`` for unusable store paths.
    """
    t_start = time.perf_counter()
    stream: TextIO | None = sys.stdout if out == "stdout" else out  # type: ignore[assignment]
    say = (lambda msg: print(msg, file=stream, flush=True)) if stream is not None else (lambda msg: None)
    out = stream
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
    from pnp.store.compute import resolve_device

    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    # an embedded cluster runs here: resolve now (clear error if CUDA is missing); remote
    # workers resolve the device themselves (the client may well have no GPU)
    run_device = device if remote else resolve_device(device)
    path = pstore.normalise_path(store)
    from pnp.store.lock import WriterLock

    state = pstore.directory_state(path, storage_options)
    pstore.refuse_foreign(path, state)
    if state == "absent":
        pstore.make_directory(path, storage_options)
    lock = WriterLock(path, "pnp precompute")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lock.acquire()
    for w in caught:
        say(f"warning: {w.message}")
    try:
        malloc = (not remote) if tune_malloc is None else bool(tune_malloc)
        return _precompute_locked(spec, path, workers, threads_per_worker, scheduler, scheduler_file, run_device,
                                  limit, storage_options, client, progress, say, out, on_result, dashboard, check,
                                  t_start, malloc)
    except OSError as err:
        if not err.errno:
            raise  # pnp's own PermissionError / FileNotFoundError with their message
        raise pstore.StoreWriteError(f"cannot write the store at {path}: {err.strerror or err}; finished chunks "
                                     "are kept: fix the cause (disk space, permissions) and run the same command "
                                     "again to resume") from None
    finally:
        lock.release()


def _open_for_run(spec, path, run_device, storage_options, out, say, check, progress):
    """Create or resume the store, scanning and repairing it on resume: ``(group, created)``."""
    group, created = prepare_store(spec, path, run_device, storage_options, out)
    if not created:
        dead = mark_dead_runs(path, storage_options)
        if dead:
            say(f"store {path}: {dead} earlier run(s) ended without recording it; marked interrupted")
        if check:
            check_and_repair(path, storage_options, say, progress)
            group = pstore.open_group(path, "r+", storage_options)
    return group, created


def _first_chunks(pending: list[int], ranges: list[tuple[int, int]], limit: int | None) -> list[int]:
    """The first pending chunks covering at least ``limit`` samples (all with ``limit=None``)."""
    if limit is None:
        return pending
    selected, total = [], 0
    for c in pending:
        if total >= limit:
            break
        selected.append(c)
        total += ranges[c][1] - ranges[c][0]
    return selected


def _precompute_locked(spec, path, workers, threads_per_worker, scheduler, scheduler_file, run_device, limit,
                       storage_options, client, progress, say, out, on_result, dashboard, check, t_start,
                       malloc: bool = True) -> Summary:
    """:func:`precompute` once the writer lock is held."""
    group, created = _open_for_run(spec, path, run_device, storage_options, out, say, check, progress)
    status = pstore.read_status(group)
    ranges = pstore.chunk_ranges(status.shape[0], pstore.chunk_size_of(group))
    pending = pstore.pending_chunks(group, status)
    say(f"{spec.name}: {spec.n_samples} samples x {group['theta'].shape[1]} free "
        f"parameters ({', '.join(group.attrs['params'])}), {group.attrs['n_coefs']} coefficients"
        f"{', with Jacobian' if spec.store['jacobian'] else ', features only'}; "
        f"store {path} ({'new' if created else 'resuming'}: {int(np.sum(status != pstore.PENDING))} done or failed, "
        f"{len(pending)} of {len(ranges)} chunks pending)")
    pending = _first_chunks(pending, ranges, limit)
    summary = Summary(store=path, name=spec.name, n_samples=int(status.shape[0]), done=0, failed=0, pending=0,
                      created=created)
    if not pending:
        _finish(summary, group, path, storage_options, t_start)
        say("nothing to compute: no pending chunk")
        say(summary.report())
        return summary
    own = client is None
    cluster = torch_threads = None
    if own:
        client, cluster, desc, torch_threads = _client(
            workers, threads_per_worker, scheduler, scheduler_file, run_device, len(pending), dashboard)
    else:
        desc = f"dask client {client}"
    say(desc)
    run = _Run(spec=spec, path=path, storage_options=storage_options, group=group, ranges=ranges, client=client,
               device=run_device, summary=summary, created=created,
               record={"started": pstore.now(), "host": socket.gethostname(), "cluster": desc,
                       "device": run_device, "state": "running", "chunks": len(pending)})
    run.index = _append_run(path, storage_options, run.record)
    try:
        run.submit(pending, torch_threads, malloc)
        run.collect(progress, on_result)
        failpoint("run-end")
        run.record["state"] = "finished"
    except BaseException as err:
        run.cancel(err)
        raise
    finally:
        run.record_end()
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
    _finish(summary, group, path, storage_options, t_start)
    say(summary.report())
    return summary


@dataclass
class _Run:
    """One precompute run on an opened store: its dask futures, the summary they fill, and its
    record in the store's ``runs`` attribute."""

    spec: Any
    path: str
    storage_options: Any
    group: Any
    ranges: list
    client: Any
    device: str
    summary: Summary
    created: bool
    record: dict
    index: int | None = None
    futures: dict = field(default_factory=dict)
    pids: set = field(default_factory=set)
    builds: dict = field(default_factory=dict)
    devices: set = field(default_factory=set)
    peak: int = 0
    t_compute: float = 0.0

    def submit(self, chunks: list[int], torch_threads, malloc: bool) -> None:
        """One task per chunk (:func:`pnp.pipelines._worker.run_chunk`), one retry each."""
        from pnp.pipelines._worker import run_chunk

        token = uuid.uuid4().hex[:8]
        spec_dict, spec_hash = self.spec.to_dict(), self.spec.hash
        options = dict(self.storage_options or {}) or None
        self.t_compute = time.perf_counter()
        for c in chunks:
            fut = self.client.submit(run_chunk, self.path, options, spec_dict, spec_hash, c, self.device, torch_threads,
                                     malloc, key=f"pnp-{self.spec.name}-chunk-{c}-{token}", pure=False, retries=1)
            self.futures[fut] = c

    def collect(self, progress: bool, on_result) -> None:
        """Wait for every task, in completion order, with a progress bar (samples/s, ETA)."""
        from distributed import as_completed
        from tqdm.auto import tqdm

        n_todo = sum(self.ranges[c][1] - self.ranges[c][0] for c in self.futures.values())
        bar = tqdm(total=n_todo, unit="sample", desc=self.spec.name, disable=not progress, file=sys.stderr,
                   dynamic_ncols=True, smoothing=0.2)
        try:
            for fut in as_completed(list(self.futures)):
                res = self._result(fut, self.futures[fut])
                self._count(res)
                failpoint("chunk-done")
                bar.update(res["stop"] - res["start"])
                if self.summary.failed_now:
                    bar.set_postfix(failed=len(self.summary.failed_now), refresh=False)
                if on_result is not None:
                    on_result(res, self.client)
        finally:
            bar.close()
        s = self.summary
        s.peak_worker_memory = self.peak or None
        s.devices = sorted(self.devices)
        s.workers = len(self.pids)
        s.builds = max((v for v in self.builds.values() if v is not None), default=None)
        s.compute_seconds = time.perf_counter() - self.t_compute

    def _result(self, fut, c: int) -> dict:
        """The task's result; for a task lost after its chunk was written (data, then status),
        the result read back from the store; otherwise a :class:`ChunkError`."""
        if fut.status == "finished":
            return fut.result()
        a, b = self.ranges[c]
        written = pstore.read_status(self.group)[a:b]
        if np.all(written != pstore.PENDING):
            return {"start": a, "stop": b, "failed": [a + int(i) for i in np.flatnonzero(written == pstore.FAILED)],
                    "pid": None}
        raise ChunkError(f"chunk {c} (samples {a}..{b - 1}) failed: {_task_failure(fut)}. "
                         "Finished chunks are kept; fix the cause and run the same command again to resume")

    def _count(self, res: dict) -> None:
        s = self.summary
        now = time.perf_counter() - self.t_compute
        if s.first_result_seconds is None:
            s.first_result_seconds = now
            s.first_chunk_samples = res["stop"] - res["start"]
        s.last_result_seconds = now
        s.computed += res["stop"] - res["start"]
        s.task_seconds += float(res.get("seconds", 0.0))
        s.task_cpu_seconds += float(res.get("cpu_seconds", 0.0))
        s.chunks += 1
        s.failed_now.extend(res["failed"])
        self.peak = max(self.peak, int(res.get("maxrss", 0)))
        if res.get("device"):
            self.devices.add(res["device"])
        if res.get("pid") is not None:
            self.builds[res["pid"]] = res.get("builds")
            self.pids.add(res["pid"])

    def cancel(self, err: BaseException) -> None:
        for fut in self.futures:
            fut.cancel()
        self.record["state"] = "interrupted" if isinstance(err, KeyboardInterrupt) else "error"
        if isinstance(err, ChunkError):
            self.record["error"] = str(err)

    def record_end(self) -> None:
        """Write the run's record, and the devices the workers used (remote workers resolve the
        device themselves); never hides the run's own error."""
        s = self.summary
        self.record.update(finished=pstore.now(), samples_computed=s.computed, samples_failed=len(s.failed_now),
                           devices=s.devices)
        try:
            _append_run(self.path, self.storage_options, self.record, self.index)
            stored = dict(pstore.open_group(self.path, "r", self.storage_options).attrs).get("device")
            if s.devices and (self.created or stored in ("auto", "cuda")) and stored != ", ".join(s.devices):
                pstore.update_attrs(self.path, {"device": ", ".join(s.devices)}, self.storage_options)
        except Exception:  # noqa: BLE001 - never hide the real error
            log.warning("could not record the run in the store attributes", exc_info=True)


def _task_failure(fut) -> str:
    """dask's reason for a task that did not finish, in one line."""
    try:
        err = fut.exception()
    except BaseException as exc:  # noqa: BLE001 - cancelled (e.g. scheduler lost)
        err = exc
    if err is None:
        return f"the task ended as {fut.status!r} without an exception (its worker was lost)"
    text = " ".join(f"{type(err).__name__}: {err}".split())[:500]
    return text


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
    """Outcome of :func:`verify`: ``ok`` is False when ``problems`` is not empty.

    ``problems`` are one line each (array, chunk, samples, what is wrong); ``integrity`` is the
    :class:`pnp.store.integrity.IntegrityReport` behind them; ``repair`` what ``repair=True``
    changed (None otherwise)."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    max_errors: dict[str, float] = field(default_factory=dict)
    integrity: Any = None
    repair: Any = None

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(
    store: str | os.PathLike,
    recompute: int = 0,
    seed: int = 0,
    device: str = "cpu",
    rtol: float | None = None,
    storage_options: Mapping | None = None,
    repair: bool = False,
    progress: bool = False,
) -> VerifyReport:
    """Check a store (:func:`pnp.store.integrity.scan`: metadata, status codes, every chunk of
    every done sample, finiteness, layout, ``metric = JᵀJ``, eigenvalues) and recompute
    ``recompute`` random done samples with the library.  Never raises for a damaged store: every
    problem is a line of the report.

    The recomputation compares per sample ``‖stored − recomputed‖ / ‖recomputed‖ <= rtol`` for the
    features, Jacobian and metric and ``|Δλ| <= rtol · max λ`` for the eigenvalues.  The default
    ``rtol`` suits float32 storage: 1e-5 for a float64 computation, 1e-4 for float32 or mixed.

    ``repair=True`` takes the writer lock and applies :func:`pnp.store.integrity.repair` after the
    checks (chunks with a problem become pending: the next ``pnp precompute`` recomputes them).
    Raises ``ValueError`` only for bad arguments (and :class:`pnp.store.lock.StoreBusyError` when
    another process writes the store and ``repair`` is asked).
    """
    from pnp.store import integrity
    from pnp.store.lock import WriterLock

    recompute = int(recompute)
    if recompute < 0:
        raise ValueError(f"--recompute must be an integer >= 0, got {recompute}")
    if rtol is not None and not rtol > 0:
        raise ValueError(f"--rtol must be a number > 0, got {rtol}")
    rep = VerifyReport()
    path = pstore.normalise_path(store)
    lock = None
    if repair:
        state = pstore.directory_state(path, storage_options)
        if state == "absent":
            raise FileNotFoundError(f"no store at {path}")
        pstore.refuse_foreign(path, state)  # never lock (write into) a directory pnp did not write
        lock = WriterLock(path, "pnp store verify --repair").acquire()
    try:
        scan = integrity.scan(path, storage_options, progress=progress)
        rep.integrity = scan
        rep.lines.extend(scan.lines)
        rep.problems.extend(str(p) for p in scan.problems)
        rep.max_errors.update(scan.max_errors)
        if scan.readable and recompute:
            lines, problems, errors = integrity.recompute_samples(path, scan, recompute, seed, device, rtol,
                                                                  storage_options, progress=progress)
            rep.lines.extend(lines)
            rep.problems.extend(problems)
            rep.max_errors.update(errors)
        if repair:
            rep.repair = integrity.repair(scan, storage_options)
            rep.lines.extend(rep.repair.lines())
    finally:
        if lock is not None:
            lock.release()
    return rep
