"""Every check of a store, as a report (never raised), and the repair that makes it resumable.

:func:`scan` reads the whole store once, chunk by chunk, and reports each problem with the array,
the chunk and the samples it concerns:

* the group: opens, carries the pnp marker, matches the schema (:func:`pnp.store.validate_store`);
* each array's own ``zarr.json`` against the consolidated copy that readers use;
* ``status``: every chunk decodes, every code is pending / done / failed;
* the layout arrays (``theta``, ``nu``, ``bin``, ``split``): decode, and equal the spec's grid;
* for every chunk holding done samples, every computed array: the chunk decodes (its ``crc32c``
  checksum, on stores that have it), and every done sample holds finite values (a missing chunk
  reads as the NaN fill value); then ``metric = JᵀJ`` of the stored Jacobian and ``eigvals`` =
  the eigenvalues of the stored metric (on finite values only: a non-finite metric is a reported
  problem, never an exception).

:func:`repair` (under the writer lock) fixes what can be fixed without computing: an array's
``zarr.json`` is rewritten from the consolidated copy, the layout arrays from the spec, and every
chunk with a data problem is marked pending (its status chunk rewritten to 0), so that the next
``pnp precompute`` recomputes exactly those chunks; the repaired and resumed store equals an
uninterrupted run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from pnp import store as pstore
from pnp.store.codes import status_counts

#: what :func:`repair` does about a problem
RECOMPUTE, METADATA, LAYOUT, NONE = "recompute", "metadata", "layout", "none"
#: relative tolerances of the consistency checks (J is stored in float32; M was computed from the
#: unrounded J, so it matches JᵀJ of the stored J to ~1e-7)
METRIC_RTOL, EIG_RTOL = 1e-5, 1e-8


@dataclass
class Problem:
    """One problem: what is wrong, where (array, chunks, samples), and what repair does."""

    message: str
    array: str | None = None
    chunks: tuple[int, ...] = ()
    samples: tuple[int, int] | None = None  # [first, last]
    repair: str = NONE

    def __str__(self) -> str:
        where = []
        if self.array:
            where.append(f"array {self.array!r}")
        if self.chunks:
            where.append(f"chunk {self.chunks[0]}" if len(self.chunks) == 1 else
                         f"chunks {', '.join(map(str, self.chunks[:10]))}" + (" …" if len(self.chunks) > 10 else ""))
        if self.samples:
            where.append(f"samples {self.samples[0]}..{self.samples[1]}")
        return (", ".join(where) + ": " if where else "") + self.message


@dataclass
class IntegrityReport:
    """Outcome of :func:`scan`: ``ok`` when there is no problem."""

    path: str
    lines: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    max_errors: dict[str, float] = field(default_factory=dict)
    #: False when the store could not be opened or departs from the schema (nothing else checked)
    readable: bool = True

    @property
    def ok(self) -> bool:
        return not self.problems

    def chunks_to_recompute(self) -> list[int]:
        return sorted({c for p in self.problems if p.repair == RECOMPUTE for c in p.chunks})

    def add(self, message: str, array: str | None = None, chunk: int | None = None,
            rng: tuple[int, int] | None = None, repair: str = NONE) -> None:
        self.problems.append(Problem(message, array, () if chunk is None else (int(chunk),),
                                     None if rng is None else (int(rng[0]), int(rng[1]) - 1), repair))


def _reason(err: BaseException) -> str:
    return " ".join(f"{type(err).__name__}: {err}".split())[:200]


def _read(group, name: str, a: int, b: int):
    """(values, None) or (None, reason)."""
    try:
        return np.asarray(group[name][a:b]), None
    except Exception as err:  # noqa: BLE001 - the failure is the finding
        return None, _reason(err)


def scan(path: str | os.PathLike, storage_options: Mapping | None = None, progress: bool = False,
         layout: bool = True) -> IntegrityReport:
    """Check the store at ``path`` (see the module docs); never raises for a damaged store.

    ``layout=False`` skips the comparison of the layout arrays with the spec's grid (which builds
    the grid).  ``progress`` shows a bar over the chunks (stderr).

    The scan reads the zarr group itself, chunk by chunk and tolerating every failure (the
    failure is the finding), where :class:`pnp.store.Store` refuses damaged data.
    """
    path = pstore.normalise_path(path)
    rep = IntegrityReport(path)
    group = _open_for_scan(path, storage_options, rep)
    if group is None:
        return rep
    for text in pstore.array_metadata_problems(group, path, storage_options):
        rep.add(text.split(": ", 1)[1], text.split("'")[1], repair=METADATA)
    keys = set(group.array_keys())
    unprotected = sorted(n for n in keys if not pstore.has_checksums(group[n]))
    if unprotected:
        rep.lines.append(f"no crc32c checksums on {', '.join(unprotected)} (a store made before pnp added them): "
                         "damaged chunks that still decode cannot be detected")
    else:
        rep.lines.append("every array carries crc32c checksums")
    ranges = pstore.chunk_ranges(int(group["status"].shape[0]), pstore.chunk_size_of(group))
    status, usable = _scan_status(group, ranges, rep)
    _scan_layout(group, ranges, layout, rep)
    _scan_computed(group, ranges, status == pstore.DONE, usable, progress, rep)
    return rep


def _open_for_scan(path: str, storage_options: Mapping | None, rep: IntegrityReport):
    """The validated group, or None with the reason in ``rep``."""
    try:
        group = pstore.open_group(path, "r", storage_options)
        pstore.validate_store(group, path)
        return group
    except Exception as err:  # noqa: BLE001 - a damaged store is reported, never raised
        rep.readable = False
        text = str(err) if isinstance(err, (ValueError, OSError)) else f"{type(err).__name__}: {err}"
        rep.add(f"cannot be used: {text}")
        return None


def _scan_status(group, ranges: list[tuple[int, int]], rep: IntegrityReport) -> tuple[np.ndarray, np.ndarray]:
    """``status`` (S,) read chunk by chunk (unreadable chunks read as pending), and (chunks,)
    bool: whether each status chunk is usable; the counts go into ``rep``."""
    S = ranges[-1][1] if ranges else 0
    status = np.zeros(S, dtype=np.uint8)
    usable = np.ones(len(ranges), dtype=bool)
    for i, (a, b) in enumerate(ranges):
        values, failure = _read(group, "status", a, b)
        if failure:
            rep.add(f"cannot be read ({failure})", "status", i, (a, b), RECOMPUTE)
            usable[i] = False
            continue
        status[a:b] = values
        unknown = np.flatnonzero(values > pstore.FAILED)
        if unknown.size:
            rep.add(f"{unknown.size} unknown status code(s) {sorted(set(values[unknown].tolist()))[:5]}", "status", i,
                    (a, b), RECOMPUTE)
            usable[i] = False
    counts = status_counts(status)
    c = pstore.chunk_size_of(group)
    rep.lines.append(f"store {rep.path}: {S} samples, {counts['done']} done, {counts['failed']} failed, "
                     f"{counts['pending']} pending ({len(ranges)} chunks of {c})")
    if counts["pending"]:
        rep.add(f"incomplete: {counts['pending']} samples pending (run `pnp precompute` again)")
    if counts["failed"]:
        idx = np.flatnonzero(status == pstore.FAILED)
        rep.lines.append(f"failed samples (non-finite results, excluded): {', '.join(map(str, idx[:20]))}"
                         + (" …" if idx.size > 20 else ""))
    return status, usable


def _read_layout(group, ranges: list[tuple[int, int]], rep: IntegrityReport) -> tuple[list[str], dict[str, np.ndarray]]:
    """The layout arrays the store holds, and those read whole without failure."""
    base = [n for n in pstore.LAYOUT if n in set(group.array_keys())]
    got: dict[str, np.ndarray] = {}
    for name in base:
        parts, bad = [], False
        for i, (a, b) in enumerate(ranges):
            part, failure = _read(group, name, a, b)
            if failure:
                rep.add(f"cannot be read ({failure})", name, i, (a, b), LAYOUT)
                bad = True
            else:
                parts.append(part)
        if not bad:
            got[name] = np.concatenate(parts) if parts else np.asarray(group[name][:0])
    return base, got


def _scan_layout(group, ranges: list[tuple[int, int]], layout: bool, rep: IntegrityReport) -> None:
    """θ, ν, bin and split against the spec's grid: lost rows are repaired from it, rows that
    differ (another pnp version's grid?) are reported and never overwritten."""
    base, got = _read_layout(group, ranges, rep)
    if not layout or not got:
        return
    attrs = dict(group.attrs)
    try:
        from pnp.spec import DatasetSpec

        lay = DatasetSpec.from_dict(attrs["spec"], source=attrs.get("spec_source")).layout()
        want = {"theta": lay.theta, "nu": lay.nu.astype(np.float32), "bin": lay.bins, "split": lay.split}
        differ = [n for n in got if not np.array_equal(got[n], want[n])]
    except Exception as err:  # noqa: BLE001
        rep.add(f"the spec's grid cannot be rebuilt to compare the layout ({_reason(err)})")
        differ = []
    S, c = int(group["status"].shape[0]), pstore.chunk_size_of(group)
    for name in differ:
        rows = np.flatnonzero((got[name] != want[name]).reshape(S, -1).any(axis=1))
        unfilled = _unfilled_rows(name, got[name])
        if unfilled.size:  # fill values where the layout was lost: rewritten from the spec
            rep.problems.append(_rows_problem(f"{unfilled.size} row(s) hold no layout value (missing chunk?)",
                                              name, sorted({int(r) // c for r in unfilled}), unfilled, LAYOUT))
        rest = np.setdiff1d(rows, unfilled)
        if rest.size:  # valid but different values: another pnp version's grid? never overwritten
            rep.problems.append(_rows_problem(
                f"{rest.size} row(s) differ from the spec's grid as this pnp builds it (a store from another "
                "pnp version?); not repaired", name, sorted({int(r) // c for r in rest}), rest, NONE))
    if not differ and len(got) == len(base):
        rep.lines.append("layout (theta, nu, bin, split) matches the spec")


def _scan_computed(group, ranges, done: np.ndarray, usable: np.ndarray, progress: bool,
                   rep: IntegrityReport) -> None:
    """Every chunk with done samples: its computed arrays decode and are finite, M = JᵀJ and the
    eigenvalues are those of M (worst relative errors in ``rep.max_errors``)."""
    from tqdm.auto import tqdm

    computed = [k for k in pstore.COMPUTED if k in set(group.array_keys())]
    worst_m = worst_e = 0.0
    for i in tqdm(range(len(ranges)), desc="verify", unit="chunk", disable=not progress, leave=False):
        a, b = ranges[i]
        if usable[i] and done[a:b].any():
            stored = _read_done_rows(group, computed, i, (a, b), done[a:b], rep)
            err_m, err_e = _check_metric(stored, i, (a, b), rep)
            worst_m, worst_e = max(worst_m, err_m), max(worst_e, err_e)
    if "jacobian" in computed:
        rep.max_errors.update({"metric_vs_JtJ": worst_m, "eigvals_vs_eigh": worst_e})
    if not any(p.repair == RECOMPUTE and p.array in computed for p in rep.problems):
        rep.lines.append(f"every done sample's {', '.join(computed)} decode and are finite"
                         + (f"; metric = JᵀJ (max rel. error {worst_m:.1e}), eigvals = eig(metric) ({worst_e:.1e})"
                            if "jacobian" in computed and done.any() else ""))


def _read_done_rows(group, computed: list[str], i: int, rows: tuple[int, int], sel: np.ndarray,
                    rep: IntegrityReport) -> dict[str, np.ndarray]:
    """The done rows of chunk ``i`` of each computed array that decodes and is finite there."""
    a, b = rows
    stored: dict[str, np.ndarray] = {}
    for name in computed:
        v, failure = _read(group, name, a, b)
        if failure or v is None:
            rep.add(f"cannot be read ({failure})", name, i, rows, RECOMPUTE)
            continue
        finite = np.isfinite(v.reshape(v.shape[0], -1)).all(axis=1)
        nonfinite = np.flatnonzero(sel & ~finite)
        if nonfinite.size:
            rep.add(f"{nonfinite.size} done sample(s) hold non-finite values or no data (missing chunk?): "
                    f"{', '.join(str(a + int(k)) for k in nonfinite[:8])}", name, i, rows, RECOMPUTE)
            continue
        stored[name] = v[sel]
    return stored


def _check_metric(stored: dict[str, np.ndarray], i: int, rows: tuple[int, int],
                  rep: IntegrityReport) -> tuple[float, float]:
    """Relative errors of the stored metric vs JᵀJ and of the eigenvalues vs ``eigvalsh`` (0 if absent)."""
    if "jacobian" not in stored or "metric" not in stored:
        return 0.0, 0.0
    J = stored["jacobian"].astype(np.float64)
    M = stored["metric"]
    err_m = float(_relerr(M, np.einsum("bki,bkj->bij", J, J)).max())
    if not err_m <= METRIC_RTOL:
        rep.add(f"metric differs from JᵀJ of the stored Jacobian (relative error {err_m:.2e})", "metric", i, rows,
                RECOMPUTE)
        return err_m, 0.0
    if "eigvals" not in stored:
        return err_m, 0.0
    E_ref = np.linalg.eigvalsh(M)
    scale = np.maximum(np.abs(E_ref).max(axis=1), np.finfo(np.float64).tiny)
    err_e = float((np.abs(stored["eigvals"] - E_ref).max(axis=1) / scale).max())
    if not err_e <= EIG_RTOL:
        rep.add(f"eigvals differ from the eigenvalues of the stored metric ({err_e:.2e})", "eigvals", i, rows,
                RECOMPUTE)
    return err_m, err_e


def _unfilled_rows(name: str, values: np.ndarray) -> np.ndarray:
    """Rows of a layout array that hold its fill value (NaN for θ / ν, -1 for bin / split)."""
    flat = values.reshape(values.shape[0], -1)
    if name in ("theta", "nu"):
        return np.flatnonzero(~np.isfinite(flat).all(axis=1))
    return np.flatnonzero((flat < 0).any(axis=1) if name == "bin" else ~np.isin(flat, (0, 1, 2)).all(axis=1))


def _rows_problem(message: str, array: str, chunks: list[int], rows: np.ndarray, repair: str) -> Problem:
    return Problem(message, array, tuple(chunks), (int(rows.min()), int(rows.max())) if rows.size else None, repair)


def _relerr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample ‖a − b‖ / ‖b‖ over all axes but the first (float64)."""
    a = a.reshape(a.shape[0], -1).astype(np.float64)
    b = b.reshape(b.shape[0], -1).astype(np.float64)
    den = np.linalg.norm(b, axis=1)
    return np.linalg.norm(a - b, axis=1) / np.where(den > 0, den, 1.0)


@dataclass
class RepairOutcome:
    """What :func:`repair` changed."""

    chunks_marked_pending: list[int] = field(default_factory=list)
    metadata_rewritten: list[str] = field(default_factory=list)
    layout_rewritten: list[str] = field(default_factory=list)
    unrepairable: list[Problem] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        if self.metadata_rewritten:
            out.append(f"repair: rewrote the zarr.json of {', '.join(self.metadata_rewritten)} from the consolidated "
                       "metadata")
        if self.layout_rewritten:
            out.append(f"repair: rewrote {', '.join(self.layout_rewritten)} from the spec's grid")
        if self.chunks_marked_pending:
            cs = self.chunks_marked_pending
            out.append(f"repair: marked {len(cs)} chunk(s) pending ({', '.join(map(str, cs[:20]))}"
                       f"{' …' if len(cs) > 20 else ''}): run `pnp precompute` with the store's spec to recompute them")
        for p in self.unrepairable:
            out.append(f"repair: cannot repair: {p}")
        return out


def _write_bytes(path: str, key: str, data: bytes, storage_options: Mapping | None) -> None:
    if pstore.is_url(path):
        fs, root = pstore._fs(path, storage_options)
        fs.pipe(f"{root}/{key}", data)
        return
    full = os.path.join(path, key)
    os.makedirs(os.path.dirname(full), exist_ok=True)  # the array's directory may be gone
    tmp = full + f".{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, full)


def repair(report: IntegrityReport, storage_options: Mapping | None = None) -> RepairOutcome:
    """Apply the repairs of ``report`` (a :func:`scan` of the store, taken under the writer lock,
    which the caller holds).  Never computes: recompute problems become pending chunks."""
    out = RepairOutcome()
    if not report.readable:
        out.unrepairable = list(report.problems)
        return out
    path = report.path
    group = pstore.open_group(path, "r+", storage_options)
    cons = group.metadata.consolidated_metadata
    for name in sorted({p.array for p in report.problems if p.repair == METADATA and p.array}):
        from zarr.core.buffer import default_buffer_prototype

        data = cons.metadata[name].to_buffer_dict(default_buffer_prototype())["zarr.json"].to_bytes()
        _write_bytes(path, f"{name}/zarr.json", data, storage_options)
        out.metadata_rewritten.append(name)
    layout_arrays = sorted({p.array for p in report.problems if p.repair == LAYOUT and p.array})
    if layout_arrays:
        from pnp.spec import DatasetSpec

        attrs = dict(group.attrs)
        lay = DatasetSpec.from_dict(attrs["spec"], source=attrs.get("spec_source")).layout()
        want = {"theta": lay.theta.astype(np.float64), "nu": lay.nu.astype(np.float32),
                "bin": lay.bins.astype(np.int32), "split": lay.split.astype(np.int8)}
        for name in layout_arrays:
            group[name][:] = want[name]
            out.layout_rewritten.append(name)
    chunks = report.chunks_to_recompute()
    S = int(group["status"].shape[0])
    c = pstore.chunk_size_of(group)
    for i in chunks:
        a, b = i * c, min(i * c + c, S)
        group["status"][a:b] = np.zeros(b - a, dtype=np.uint8)  # a whole-chunk write: the old chunk is not read
    out.chunks_marked_pending = chunks
    out.unrepairable = [p for p in report.problems if p.repair == NONE and not p.message.startswith("incomplete")]
    return out


def recompute_samples(path: str, scan: IntegrityReport, k: int, seed: int = 0, device: str = "cpu",
                      rtol: float | None = None, storage_options: Mapping | None = None, progress: bool = False
                      ) -> tuple[list[str], list[str], dict[str, float]]:
    """Recompute ``k`` random done samples of healthy chunks with the library and compare them
    with the store: ``(lines, problems, max_errors)``.

    ``progress`` shows a bar over the micro-batches (the spec's ``compute.batch_size``).
    Per sample ``‖stored − recomputed‖ / ‖recomputed‖ <= rtol`` for the features, Jacobian and
    metric, ``|Δλ| <= rtol · max λ`` for the eigenvalues.  The default ``rtol`` suits float32
    storage: 1e-5 for a float64 computation, 1e-4 for float32 or mixed.
    """
    from pnp.spec import DatasetSpec
    from pnp.store.compute import build_engine, compute_block, resolve_device

    lines: list[str] = []
    problems: list[str] = []
    errors: dict[str, float] = {}
    group = pstore.open_group(path, "r", storage_options)
    attrs = dict(group.attrs)
    spec = DatasetSpec.from_dict(attrs["spec"], source=attrs.get("spec_source"))
    rtol = rtol if rtol is not None else (1e-5 if spec.compute["dtype"] == "float64" else 1e-4)
    status = pstore.read_status(group)
    c = pstore.chunk_size_of(group)
    bad = scan.chunks_to_recompute()
    done = np.flatnonzero((status == pstore.DONE) & ~np.isin(np.arange(status.size) // c, bad))
    if done.size == 0:
        return lines, ["recompute: no healthy done sample to recompute"], errors
    pick = np.sort(np.random.default_rng(seed).choice(done, size=min(k, done.size), replace=False))
    engine = build_engine(spec, resolve_device(device))
    theta = np.asarray(group["theta"].get_orthogonal_selection((pick, slice(None))))
    from tqdm.auto import tqdm

    step = max(1, engine.batch_size)
    parts = [compute_block(engine, theta[i : i + step])
             for i in tqdm(range(0, theta.shape[0], step), desc="recompute", unit="batch", disable=not progress,
                           leave=False)]
    data = {name: np.concatenate([d[name] for d, _ in parts]) for name in parts[0][0]}
    ok = np.concatenate([o for _, o in parts])
    if not ok.all():
        problems.append(f"recomputed samples {pick[~ok].tolist()} are not finite but stored as done")
    computed = [n for n in pstore.COMPUTED if n in group.array_keys()]
    for name in computed:
        nd = group[name].ndim
        stored = np.asarray(group[name].get_orthogonal_selection((pick,) + (slice(None),) * (nd - 1)))
        if name == "eigvals":
            scale = np.maximum(np.abs(data[name]).max(axis=1), np.finfo(np.float64).tiny)
            err = np.abs(stored - data[name]).max(axis=1) / scale
        else:
            err = _relerr(stored, data[name])
        worst = float(np.nanmax(err)) if err.size else 0.0
        errors[f"recompute_{name}"] = worst
        if not worst <= rtol:
            problems.append(f"array {name!r}: recomputed samples differ from the store (max relative error "
                            f"{worst:.2e} > rtol {rtol:g}; samples {pick[~(err <= rtol)].tolist()})")
    if all(errors.get(f"recompute_{n}", 0.0) <= rtol for n in computed):
        errs = ", ".join(f"{n} {errors[f'recompute_{n}']:.1e}" for n in computed)
        lines.append(f"recomputed {pick.size} random done samples {pick.tolist()} on {engine.device}: "
                     f"max relative errors {errs} (rtol {rtol:g})")
    return lines, problems, errors
