"""The precompute store: schema, creation, opening and validation (zarr v3, one group).

Arrays (all chunked along ``sample`` only, ``chunk_size`` samples per chunk, compressed):

============  ==============================  ========  ==============================================
name          dims                            dtype     content
============  ==============================  ========  ==============================================
theta         (sample, param)                 float64   free parameters θ, physical units
nu            (sample, param)                 float32   θ normalised to [-1, 1] (ν)
bin           (sample, param)                 int32     bin / grid coordinates
split         (sample,)                       int8      0 train, 1 val, 2 test
status        (sample,)                       uint8     0 pending, 1 done, 2 failed
features      (sample, coef)                  float32   S = Φ(g(θ)) (with the spec's compression)
jacobian      (sample, coef, param)           float32   J = ∂S/∂ν              (if store.jacobian)
metric        (sample, param_i, param_j)      float64   M = JᵀJ                 (if store.jacobian)
eigvals       (sample, eig)                   float64   eigenvalues of M, ascending (if jacobian)
audio         (sample, time)                  float32   g(θ)                    (if store.audio)
============  ==============================  ========  ==============================================

``param`` runs over the *free* parameters (``attrs["params"]``); fixed ones are in
``attrs["fixed"]``.  Every array carries zarr v3 ``dimension_names``, so ``xarray.open_zarr``
reads the store as a labelled dataset (metadata are consolidated).  ``theta``, ``nu``, ``bin``
and ``split`` are written when the store is created; the computed arrays start as NaN (their
fill value) and ``status`` as 0 = pending (no chunk written).

Write protocol (see :func:`write_chunk`): a chunk's data arrays are written first and its
``status`` chunk last, each as one whole-chunk object write, so a sample is never marked done
before its data are stored, and a killed writer leaves the chunk pending.

Group attributes carry the provenance (:func:`provenance`): the normalised spec and its hash,
the synth config and parameter space, free / fixed parameters, the representation ``config()``,
the feature compression, the normaliser, library versions, git commit, device, host, creation
time, and one record per precompute run (``runs``).
"""

from __future__ import annotations

import datetime as _dt
import errno
import os
import platform
import socket
import subprocess
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from pnp.faults import failpoint
from pnp.store.codes import SPLIT_NAMES, STATUS_NAMES, Split, Status  # noqa: F401 - re-exported

#: ``status`` codes (the :class:`~pnp.store.codes.Status` table)
PENDING, DONE, FAILED = int(Status.PENDING), int(Status.DONE), int(Status.FAILED)
SCHEMA_VERSION = 1
#: group attribute marking a pnp store, with the schema version and the creation state
MARKER = "pnp_store"


@dataclass(frozen=True)
class ArraySpec:
    """One array of the schema: dimension names, dtype, fill value, description."""

    dims: tuple[str, ...]
    dtype: str
    fill: Any
    description: str


#: the schema: base arrays (always present), computed arrays and optional ones
BASE = {
    "theta": ArraySpec(("sample", "param"), "float64", np.nan, "free parameters, physical units"),
    "nu": ArraySpec(("sample", "param"), "float32", np.nan, "free parameters normalised to [-1, 1]"),
    "bin": ArraySpec(("sample", "param"), "int32", -1, "bin / grid coordinates"),
    "split": ArraySpec(("sample",), "int8", -1, "fold: 0 train, 1 val, 2 test"),
    "status": ArraySpec(("sample",), "uint8", PENDING, "0 pending, 1 done, 2 failed"),
    "features": ArraySpec(("sample", "coef"), "float32", np.nan, "features S = Phi(g(theta))"),
}
JACOBIAN = {
    "jacobian": ArraySpec(("sample", "coef", "param"), "float32", np.nan, "J = dS/dnu"),
    "metric": ArraySpec(("sample", "param_i", "param_j"), "float64", np.nan, "M = J^T J"),
    "eigvals": ArraySpec(("sample", "eig"), "float64", np.nan, "eigenvalues of M, ascending"),
}
AUDIO = {"audio": ArraySpec(("sample", "time"), "float32", np.nan, "synthesized audio g(theta)")}
#: arrays written by the precompute tasks (the others are written at creation)
COMPUTED = ("features", "jacobian", "metric", "eigvals", "audio")


def schema(jacobian: bool = True, audio: bool = False) -> dict[str, ArraySpec]:
    """The arrays of a store with these options, name → :class:`ArraySpec`."""
    out = dict(BASE)
    if jacobian:
        out.update(JACOBIAN)
    if audio:
        out.update(AUDIO)
    return out


def shapes(n_samples: int, n_params: int, n_coefs: int, n_time: int | None = None) -> dict[str, int]:
    """Dimension sizes by name."""
    d = {"sample": n_samples, "param": n_params, "param_i": n_params, "param_j": n_params, "eig": n_params,
         "coef": n_coefs}
    if n_time is not None:
        d["time"] = n_time
    return d


# ------------------------------------------------------------------------------ paths
def is_url(path: str) -> bool:
    """True for fsspec URLs (``s3://…``, ``gs://…``, ``memory://…``); local paths otherwise."""
    return "://" in str(path)


def normalise_path(path: str | os.PathLike) -> str:
    """Absolute local path (workers may run elsewhere), URLs unchanged."""
    p = os.fspath(path)
    if not p:
        raise ValueError("the store path must not be empty")
    if is_url(p):
        return p.rstrip("/")
    return os.path.abspath(os.path.expanduser(p))


def _os_error(err: OSError, path: str, action: str) -> Exception:
    msg = f"cannot {action} the store at {path}: {err.strerror or err}"
    if isinstance(err, PermissionError) or err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionError(msg)
    return ValueError(msg)


def _zarr():
    import zarr

    return zarr


def _codecs(codec: str, level: int) -> list:
    """The bytes-to-bytes codecs of every array: the compressor, then zarr v3's ``crc32c``
    checksum (of the compressed bytes), so that a damaged chunk is an error at every read."""
    from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

    if codec == "blosc-zstd":
        return [BloscCodec(cname="zstd", clevel=level, shuffle="shuffle"), Crc32cCodec()]
    if codec == "zstd":
        return [ZstdCodec(level=level), Crc32cCodec()]
    if codec == "none":
        return [Crc32cCodec()]
    raise ValueError(f"store codec must be one of 'blosc-zstd', 'zstd', 'none', got {codec!r}")


def has_checksums(array) -> bool:
    """Whether the zarr array's chunks carry the ``crc32c`` codec (stores made before it do not)."""
    return any(type(c).__name__ == "Crc32cCodec" for c in array.metadata.codecs)


def exists(path: str, storage_options: Mapping | None = None) -> bool:
    """Whether anything exists at ``path`` (a local file/directory or a zarr group at a URL)."""
    if not is_url(path):
        return os.path.exists(path)
    import fsspec

    fs, root = fsspec.core.url_to_fs(path, **dict(storage_options or {}))
    return bool(fs.exists(root))


def is_store(path: str, storage_options: Mapping | None = None) -> bool:
    """Whether ``path`` holds a zarr group with the pnp marker."""
    try:
        g = open_group(path, "r", storage_options)
    except (FileNotFoundError, ValueError):
        return False
    return MARKER in g.attrs


def open_group(path: str, mode: str = "r", storage_options: Mapping | None = None):
    """Open the zarr v3 group at ``path`` (``mode`` 'r' or 'r+'); clear errors when missing."""
    zarr = _zarr()
    path = normalise_path(path)
    if not is_url(path) and not os.path.exists(path):
        raise FileNotFoundError(f"no store at {path}")
    kwargs: dict[str, Any] = {"mode": mode, "zarr_format": 3}
    if is_url(path) and storage_options:
        kwargs["storage_options"] = dict(storage_options)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)  # consolidated metadata (v3)
            return zarr.open_group(path, **kwargs)
    except FileNotFoundError:
        if not is_url(path) and os.path.exists(path):
            raise ValueError(f"{path} is not a zarr v3 group (no readable zarr.json)") from None
        raise FileNotFoundError(f"no zarr store at {path}") from None
    except OSError as err:
        raise _os_error(err, path, "open") from None
    except ImportError as err:  # fsspec's protocol packages (s3fs, gcsfs, …) are optional
        protocol = path.split("://", 1)[0]
        raise ValueError(f"{protocol}:// stores need an fsspec filesystem package that is not installed "
                         f"({' '.join(str(err).split())[:200]}); for S3: pip install 'pnp[s3]'") from None
    except Exception as err:  # zarr raises its own errors for non-groups / wrong formats
        raise ValueError(f"{path} is not a zarr v3 group ({type(err).__name__}: {err})") from None


# ------------------------------------------------------------------------------ provenance
def _git_commit() -> str | None:
    """HEAD of the pnp source checkout (None outside git), with ``-dirty`` for local changes."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        )
        return head.stdout.strip() + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    """Versions of Python and of the libraries that shape the stored numbers."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("pnp", "torch", "numpy", "scipy", "kymatio", "zarr", "numcodecs", "dask", "distributed"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def now() -> str:
    """Current UTC time, ISO 8601."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def provenance(spec, synth, representation, parametrization, n_coefs: int, device: str) -> dict[str, Any]:
    """Group attributes of a new store (JSON-able).  See the module docs."""
    comp = spec.compression
    return {
        MARKER: {"schema": SCHEMA_VERSION, "state": "creating"},
        "name": spec.name,
        "description": spec.to_dict()["description"],
        "spec": spec.to_dict(),
        "spec_hash": spec.hash,
        "spec_source": os.path.abspath(spec.source) if spec.source and os.path.exists(spec.source) else spec.source,
        "synth": synth.config(),
        "parameter_space": synth.space.to_dict(),
        "params": list(parametrization.free),
        "fixed": dict(parametrization.fixed),
        "representation": representation.config(),
        "n_coefs": int(n_coefs),
        "compression": {
            "kind": comp["compression"],
            "c": comp["c"],
            "formula": "log1p(|S| / c)" if comp["compression"] == "log1p" else "S",
        },
        "normalizer": parametrization.to_dict(),
        "compute": spec.compute,
        "counts": list(spec.layout().counts),
        "chunk_size": spec.store["chunk_size"],
        "status_codes": {n: i for i, n in enumerate(STATUS_NAMES)},
        "split_codes": {n: i for i, n in enumerate(SPLIT_NAMES)},
        "versions": versions(),
        "git_commit": _git_commit(),
        "device": device,
        "host": socket.gethostname(),
        "created": now(),
        "runs": [],
    }


# ------------------------------------------------------------------------------ create
#: a file written first into a new store directory and removed last: while it exists, the
#: creation is unfinished (and everything pnp wrote there may be removed to start it again)
CREATION_MARKER = ".pnp-creating"
#: every array name any store may hold (what a restarted creation may remove)
ALL_ARRAYS = tuple(BASE) + tuple(JACOBIAN) + tuple(AUDIO)


def own_entries() -> frozenset[str]:
    """Names that pnp writes at the top of a store directory (nothing else is ever removed)."""
    from pnp.store.lock import HOLDER_FILE, LOCK_FILE

    return frozenset(("zarr.json", CREATION_MARKER, LOCK_FILE, HOLDER_FILE) + ALL_ARRAYS)


def _fs(path: str, storage_options: Mapping | None = None):
    import fsspec

    return fsspec.core.url_to_fs(path, **dict(storage_options or {}))


def _entries(path: str, storage_options: Mapping | None = None) -> set[str]:
    if not is_url(path):
        return set(os.listdir(path))
    fs, root = _fs(path, storage_options)
    return {str(p).rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(root, detail=False)}


def directory_state(path: str, storage_options: Mapping | None = None) -> str:
    """What is at ``path``, for a writer:

    ``'absent'``; ``'empty'`` (nothing, or only pnp's lock files); ``'creating'`` (an unfinished
    creation: the creation marker, or the pnp group marked 'creating'); ``'ready'`` (a pnp store);
    ``'damaged'`` (the group metadata ``zarr.json`` cannot be read); ``'foreign'`` (anything else:
    pnp neither writes into nor empties it).
    """
    from pnp.store.lock import HOLDER_FILE, LOCK_FILE

    path = normalise_path(path)
    if not exists(path, storage_options):
        return "absent"
    if not is_url(path) and not os.path.isdir(path):
        return "foreign"
    try:
        names = _entries(path, storage_options)
    except OSError as err:
        raise _os_error(err, path, "read") from None
    names = {n for n in names if not n.startswith(HOLDER_FILE)}  # also a dead writer's temporary record
    if "zarr.json" in names:
        try:
            group = open_group(path, "r", storage_options)
            marker = dict(group.attrs).get(MARKER)
        except ValueError:
            return "creating" if CREATION_MARKER in names else "damaged"
        if not isinstance(marker, dict):  # a group without pnp's attributes: pnp's only while creating
            return "creating" if CREATION_MARKER in names else "foreign"
        return "ready" if marker.get("state") == "ready" else "creating"
    if CREATION_MARKER in names:
        return "creating"
    return "empty" if names <= {LOCK_FILE} else "foreign"


def refuse_foreign(path: str, state: str) -> None:
    """``FileExistsError`` for a :func:`directory_state` that no writer may touch."""
    if state == "damaged":
        raise FileExistsError(f"{path}: the store's group metadata (zarr.json) cannot be read; pnp does not "
                              "overwrite it: move it away or choose another store path")
    if state == "foreign" and not is_url(path) and not os.path.isdir(path):
        raise FileExistsError(f"{path} exists and is not a directory (not a pnp store); choose another store path")
    if state == "foreign":
        raise FileExistsError(f"{path} holds files that pnp did not write (not a pnp store); pnp never writes into or "
                              "empties such a directory: choose another store path")


def _remove_own(path: str, storage_options: Mapping | None = None) -> None:
    """Remove what an unfinished creation wrote (the group's zarr.json first, then the arrays
    pnp names), never other files; the creation marker stays."""
    import shutil

    names = _entries(path, storage_options)
    targets = ["zarr.json"] + [n for n in ALL_ARRAYS if n in names]
    for i, name in enumerate(n for n in targets if n in names):
        if i == 1:
            failpoint("wipe")
        if is_url(path):
            fs, root = _fs(path, storage_options)
            fs.rm(f"{root}/{name}", recursive=True)
        else:
            full = os.path.join(path, name)
            if os.path.isdir(full):
                shutil.rmtree(full)
            else:
                os.remove(full)


def _write_marker(path: str, payload: Mapping[str, Any], storage_options: Mapping | None = None) -> None:
    import json

    data = json.dumps(dict(payload)).encode()
    if is_url(path):
        fs, root = _fs(path, storage_options)
        fs.pipe(f"{root}/{CREATION_MARKER}", data)
    else:
        with open(os.path.join(path, CREATION_MARKER), "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def _remove_marker(path: str, storage_options: Mapping | None = None) -> None:
    if is_url(path):
        fs, root = _fs(path, storage_options)
        if fs.exists(f"{root}/{CREATION_MARKER}"):
            fs.rm(f"{root}/{CREATION_MARKER}")
    else:
        try:
            os.remove(os.path.join(path, CREATION_MARKER))
        except FileNotFoundError:
            pass


def make_directory(path: str, storage_options: Mapping | None = None) -> None:
    """Create the (empty) store directory ``path`` and its parents; a no-op if it exists."""
    path = normalise_path(path)
    try:
        if is_url(path):
            fs, root = _fs(path, storage_options)
            fs.makedirs(root, exist_ok=True)
        else:
            os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise _os_error(err, path, "create") from None


def finish_creation(path: str, storage_options: Mapping | None = None) -> None:
    """Remove a creation marker left by a creation killed after the store was ready."""
    _remove_marker(normalise_path(path), storage_options)


def create_store(
    path: str,
    spec,
    attrs: Mapping[str, Any],
    n_coefs: int,
    n_time: int | None = None,
    storage_options: Mapping | None = None,
    overwrite: bool = False,
):
    """Create the store for ``spec`` at ``path`` and write its layout (θ, ν, bins, split).

    Creation is resumable from any kill point and removes only what pnp wrote: the directory is
    made (if absent), then the creation marker :data:`CREATION_MARKER` is written before anything
    else; an unfinished creation (``directory_state == 'creating'``) is started again after
    removing the group metadata and pnp's array directories only; the group's marker attribute
    goes from 'creating' to 'ready' once every array and the layout are written, and the creation
    marker is removed last.  ``overwrite`` is kept for compatibility: an unfinished creation is
    always restarted, a ready store never overwritten.  The caller holds the writer lock
    (:class:`pnp.store.lock.WriterLock`) when other processes may write.

    Raises ``FileExistsError`` if ``path`` holds a ready store, damaged metadata or files pnp did
    not write; ``PermissionError`` / ``ValueError`` if it cannot be written.  Returns the group.
    """
    zarr = _zarr()
    path = normalise_path(path)
    state = directory_state(path, storage_options)
    if state == "ready":
        raise FileExistsError(f"{path} already holds a pnp store; choose another store path")
    refuse_foreign(path, state)
    if not is_url(path):
        parent = os.path.dirname(path)
        if state == "absent" and os.path.isdir(parent) and not os.access(parent, os.W_OK):
            raise PermissionError(f"cannot create the store at {path}: directory {parent} is not writable")
    layout = spec.layout()
    st = spec.store
    S, P = layout.theta.shape
    arrays = schema(jacobian=st["jacobian"], audio=st["audio"])
    if st["audio"] and n_time is None:
        raise ValueError("n_time is required when the spec stores audio")
    sizes = shapes(S, P, int(n_coefs), n_time)
    compressors = _codecs(st["codec"], st["level"])
    kwargs: dict[str, Any] = {"mode": "a", "zarr_format": 3}  # no zarr.json here (wiped or never written)
    if is_url(path) and storage_options:
        kwargs["storage_options"] = dict(storage_options)
    attrs = dict(attrs)
    attrs[MARKER] = {"schema": SCHEMA_VERSION, "state": "creating"}
    attrs["arrays"] = {n: {"dims": list(a.dims), "dtype": a.dtype, "description": a.description} for n, a in arrays.items()}
    try:
        make_directory(path, storage_options)
        failpoint("directory-created")
        _write_marker(path, {"spec_hash": attrs.get("spec_hash"), "started": now(), "host": socket.gethostname(),
                             "pid": os.getpid()}, storage_options)
        failpoint("marker-written")
        if state == "creating":
            _remove_own(path, storage_options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            group = zarr.open_group(path, **kwargs)
        failpoint("group-created")
        group.attrs.update(attrs)
        _create_arrays(group, arrays, sizes, min(st["chunk_size"], max(S, 1)), compressors)
        failpoint("arrays-created")
        _write_layout(group, layout)
        failpoint("split-written")
        attrs[MARKER] = {"schema": SCHEMA_VERSION, "state": "ready"}
        group.attrs[MARKER] = attrs[MARKER]
        consolidate(path, storage_options)
        failpoint("ready")
        _remove_marker(path, storage_options)
    except OSError as err:
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise _os_error(err, path, "create") from None
        raise StoreWriteError(f"cannot create the store at {path}: {err.strerror or err}; fix the cause (disk space, "
                              "filesystem) and run the same command again to resume (the creation restarts)") from None
    return open_group(path, "r+", storage_options)


def _create_arrays(group, arrays: Mapping[str, ArraySpec], sizes: Mapping[str, int], chunk: int,
                   compressors: list) -> None:
    """Every array of the schema, chunked by ``chunk`` samples, with its dims, fill and codecs."""
    for name, a in arrays.items():
        shape = tuple(sizes[d] for d in a.dims)
        group.create_array(name, shape=shape, chunks=(chunk,) + shape[1:], dtype=a.dtype, fill_value=a.fill,
                           dimension_names=a.dims, compressors=compressors,
                           attributes={"description": a.description})


def _write_layout(group, layout) -> None:
    """θ, ν, bins and split codes of the spec's grid, written whole."""
    group["theta"][:] = layout.theta.astype(np.float64)
    group["nu"][:] = layout.nu.astype(np.float32)
    group["bin"][:] = layout.bins.astype(np.int32)
    group["split"][:] = layout.split.astype(np.int8)


def consolidate(path: str, storage_options: Mapping | None = None) -> None:
    """Consolidate the metadata (so ``xarray.open_zarr(path)`` opens it in one read)."""
    zarr = _zarr()
    group = open_group(path, "r+", storage_options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        zarr.consolidate_metadata(group.store, path=group.path or None, zarr_format=3)


def update_attrs(path: str, updates: Mapping[str, Any], storage_options: Mapping | None = None) -> None:
    """Update group attributes (driver only; workers never touch attributes) and re-consolidate."""
    group = open_group(path, "r+", storage_options)
    group.attrs.update(dict(updates))
    consolidate(normalise_path(path), storage_options)


# ------------------------------------------------------------------------------ chunks
def chunk_ranges(n_samples: int, chunk_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the sample chunks."""
    return [(s, min(s + chunk_size, n_samples)) for s in range(0, n_samples, chunk_size)]


def chunk_size_of(group) -> int:
    return int(group["status"].chunks[0])


def read_status(group, strict: bool = False, where: str = "") -> np.ndarray:
    """``status`` (S,) uint8.

    ``strict=False`` (the writer's view): a status chunk that cannot be decoded reads as
    pending, so that it is recomputed.  ``strict=True`` (the readers' view): it is a
    :class:`StoreDataError` naming the chunk, and so are unknown status codes.
    """
    arr = group["status"]
    try:
        out = np.asarray(arr[:], dtype=np.uint8)
    except Exception:  # noqa: BLE001 - fall back chunk by chunk
        out = np.zeros(arr.shape[0], dtype=np.uint8)
        for start, stop in chunk_ranges(arr.shape[0], arr.chunks[0]):
            try:
                out[start:stop] = arr[start:stop]
            except Exception:  # noqa: BLE001
                if strict:
                    read_block(arr, "status", start, stop, where)
                out[start:stop] = PENDING
    if strict:
        check_status_codes(out, where)
    return out


def pending_chunks(group, status: np.ndarray | None = None) -> list[int]:
    """Indices of the chunks that still hold pending samples."""
    status = read_status(group) if status is None else status
    c = chunk_size_of(group)
    return [i for i, (a, b) in enumerate(chunk_ranges(status.shape[0], c)) if np.any(status[a:b] == PENDING)]


def write_chunk(group, chunk: int, data: Mapping[str, np.ndarray], status: np.ndarray) -> None:
    """Write chunk ``chunk`` of every computed array in ``data``, then its ``status``.

    ``data`` maps array names (``features``, ``jacobian``, …) to arrays whose first axis is the
    chunk's samples; every computed array of the store must be present.  ``status`` holds
    ``DONE`` / ``FAILED`` per sample.  The status chunk is written only after every data chunk
    has been stored: a sample is never marked done without its data.
    """
    c = chunk_size_of(group)
    n = group["status"].shape[0]
    start, stop = chunk * c, min(chunk * c + c, n)
    if not 0 <= start < n:
        raise ValueError(f"chunk must be in [0, {len(chunk_ranges(n, c)) - 1}], got {chunk}")
    present = [k for k in COMPUTED if k in group.array_keys()]
    missing = sorted(set(present) - set(data))
    extra = sorted(set(data) - set(present))
    if missing or extra:
        raise ValueError(f"write_chunk needs exactly the arrays {present}; missing {missing}, unexpected {extra}")
    status = np.asarray(status, dtype=np.uint8)
    if status.shape != (stop - start,) or not np.all(np.isin(status, (DONE, FAILED))):
        raise ValueError(f"status must be ({stop - start},) codes DONE=1 / FAILED=2, got {status!r}")
    for name in present:
        arr = group[name]
        value = np.asarray(data[name])
        if value.shape != (stop - start,) + tuple(arr.shape[1:]):
            raise ValueError(f"{name}: expected shape {(stop - start,) + tuple(arr.shape[1:])}, got {value.shape}")
        arr[start:stop] = value.astype(arr.dtype, copy=False)
    failpoint("data-before-status")
    group["status"][start:stop] = status


class StoreWriteError(ValueError):
    """The store cannot be written (disk full, read-only filesystem, permissions): the run
    stops, what was finished is kept, and the same command resumes."""


class StoreDataError(ValueError):
    """Stored data that must not be used: a chunk that cannot be read or decoded (a failed
    checksum, a truncated or missing file), or a done sample without finite data."""


#: arrays written whole at creation: every row must hold a valid value
LAYOUT = ("theta", "nu", "bin", "split")


def check_layout_rows(name: str, values: np.ndarray, start: int, where: str = "") -> None:
    """Raise :class:`StoreDataError` if rows of a layout array hold fill values or invalid codes
    (a missing chunk reads as the fill value): θ and ν must be finite, bins >= 0, split codes
    0 / 1 / 2.  ``start`` is the sample id of the first row."""
    if name not in LAYOUT or values.size == 0:
        return
    flat = values.reshape(values.shape[0], -1)
    if name in ("theta", "nu"):
        bad = ~np.isfinite(flat).all(axis=1)
    elif name == "bin":
        bad = (flat < 0).any(axis=1)
    else:
        bad = ~np.isin(flat, (0, 1, 2)).all(axis=1)
    rows = np.flatnonzero(bad)
    if rows.size:
        shown = ", ".join(str(start + int(r)) for r in rows[:10]) + (" …" if rows.size > 10 else "")
        raise StoreDataError(f"{where + ': ' if where else ''}array {name!r}: {rows.size} sample(s) hold no valid "
                             f"layout value (samples {shown}; a missing or damaged chunk); {REPAIR_HINT}")


#: the remedy for damaged data, for library and command-line users alike
REPAIR_HINT = ("repair the store (pnp.store.integrity.scan + repair; at the command line `pnp store verify "
               "--repair STORE`), then run the precompute of its spec again to recompute what was lost")


def read_block(array, name: str, start: int, stop: int, where: str = "") -> np.ndarray:
    """Rows ``start:stop`` of the zarr ``array`` (named ``name``) as numpy; any read or decode
    failure is a :class:`StoreDataError` naming the array and the chunk(s)."""
    try:
        return np.asarray(array[start:stop])
    except Exception as err:  # noqa: BLE001 - zarr / numcodecs raise many kinds
        c = int(array.chunks[0])
        first, last = start // c, max(start, stop - 1) // c
        chunks = f"chunk {first}" if first == last else f"chunks {first}..{last}"
        reason = " ".join(f"{type(err).__name__}: {err}".split())[:300]
        raise StoreDataError(f"{where + ': ' if where else ''}array {name!r}, {chunks} (samples {start}..{stop - 1}) "
                             f"cannot be read ({reason}); {REPAIR_HINT}") from None


def check_done_finite(values: np.ndarray, done: np.ndarray, name: str, ids: np.ndarray, where: str = "") -> None:
    """Raise :class:`StoreDataError` if a done row of ``values`` (n, ...) is not finite
    (a missing chunk reads as the NaN fill value).  ``ids`` (n,) are the rows' sample ids."""
    if values.dtype.kind != "f" or not done.any():
        return
    finite = np.isfinite(values.reshape(values.shape[0], -1)).all(axis=1)
    bad = np.flatnonzero(done & ~finite)
    if bad.size:
        shown = ", ".join(str(int(ids[i])) for i in bad[:10]) + (" …" if bad.size > 10 else "")
        raise StoreDataError(f"{where + ': ' if where else ''}array {name!r}: {bad.size} sample(s) marked done hold no "
                             f"finite data (samples {shown}; a missing or damaged chunk); {REPAIR_HINT}")


# ------------------------------------------------------------------------------ validate
def _same_fill(got: Any, want: Any) -> bool:
    try:
        g, w = float(np.asarray(got)), float(want)
    except (TypeError, ValueError):
        return False
    return (np.isnan(g) and np.isnan(w)) or g == w


def validate_store(group, path: str = "") -> None:
    """Raise ``ValueError`` listing every way the group departs from the schema."""
    attrs = dict(group.attrs)
    where = path or "the store"
    marker = attrs.get(MARKER)
    if not isinstance(marker, dict):
        raise ValueError(f"{where} is not a pnp store (no '{MARKER}' attribute)")
    if marker.get("schema") != SCHEMA_VERSION:
        raise ValueError(f"{where} has store schema {marker.get('schema')!r}; this pnp reads schema {SCHEMA_VERSION}")
    if marker.get("state") != "ready":
        raise ValueError(f"{where}: store creation was interrupted (state {marker.get('state')!r}); "
                         "re-run `pnp precompute` with the same spec to recreate it")
    problems = []
    types = {"spec": dict, "params": list, "n_coefs": int, "representation": dict, "synth": dict, "normalizer": dict,
             "compression": dict}
    for key, kind in types.items():
        if key not in attrs:
            problems.append(f"attribute {key!r} missing")
        elif not isinstance(attrs[key], kind) or isinstance(attrs[key], bool):
            problems.append(f"attribute {key!r} must be a JSON {kind.__name__}, got {type(attrs[key]).__name__}")
    if not problems and not isinstance(attrs["spec"].get("store", {}), dict):
        problems.append("attribute 'spec' has a 'store' entry that is not a table")
    if problems:
        raise ValueError(f"{where} is not a valid pnp store: " + "; ".join(problems))
    spec = attrs["spec"]
    st = spec.get("store", {})
    keys = set(group.array_keys())
    expected = schema(jacobian=st.get("jacobian", True), audio=st.get("audio", False))
    n = group["status"].shape[0] if "status" in keys else None
    P, K = len(attrs["params"]), int(attrs["n_coefs"])
    for name, a in expected.items():
        if name not in keys:
            problems.append(f"array {name!r} missing")
            continue
        arr = group[name]
        dims = tuple(arr.metadata.dimension_names or ())
        if dims != a.dims:
            problems.append(f"{name}: dimension names {dims}, expected {a.dims}")
        if str(arr.dtype) != a.dtype:
            problems.append(f"{name}: dtype {arr.dtype}, expected {a.dtype}")
        elif not _same_fill(arr.metadata.fill_value, a.fill):
            got = np.asarray(arr.metadata.fill_value).item()
            problems.append(f"{name}: fill value {got!r}, expected {a.fill!r}")
        sizes = shapes(n or 0, P, K, arr.shape[-1] if name == "audio" else None)
        want = tuple(sizes[d] for d in a.dims)
        if tuple(arr.shape) != want:
            problems.append(f"{name}: shape {tuple(arr.shape)}, expected {want}")
        if n is not None and arr.chunks[0] != group["status"].chunks[0]:
            problems.append(f"{name}: chunked by {arr.chunks[0]} samples, status by {group['status'].chunks[0]}")
    if problems:
        raise ValueError(f"{where} is not a valid pnp store: " + "; ".join(problems))


def array_metadata_problems(group, path: str, storage_options: Mapping | None = None) -> list[str]:
    """Each array's own ``zarr.json`` against the group's consolidated copy (what readers use):
    one line per array whose file is missing, unreadable or different."""
    zarr = _zarr()
    cons = group.metadata.consolidated_metadata
    if cons is None:
        return []
    problems = []
    kwargs: dict[str, Any] = {"mode": "r", "zarr_format": 3}
    if is_url(path) and storage_options:
        kwargs["storage_options"] = dict(storage_options)
    for name in sorted(cons.metadata):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=UserWarning)
                own = zarr.open_array(f"{path.rstrip('/')}/{name}", **kwargs)
            if own.metadata.to_dict() != cons.metadata[name].to_dict():
                problems.append(f"array {name!r}: its zarr.json differs from the consolidated metadata")
        except Exception as err:  # noqa: BLE001 - any failure to read it is the finding
            reason = " ".join(f"{type(err).__name__}: {err}".split())[:200]
            problems.append(f"array {name!r}: its zarr.json cannot be read ({reason})")
    return problems


def check_status_codes(status: np.ndarray, where: str = "") -> None:
    """Raise :class:`StoreDataError` for status values other than pending / done / failed."""
    bad = np.flatnonzero(status > FAILED)
    if bad.size:
        shown = ", ".join(map(str, bad[:10])) + (" …" if bad.size > 10 else "")
        raise StoreDataError(f"{where + ': ' if where else ''}array 'status': {bad.size} sample(s) hold unknown status "
                             f"codes {sorted(set(status[bad].tolist()))[:5]} (samples {shown}); {REPAIR_HINT}")


def store_size(path: str, storage_options: Mapping | None = None) -> int:
    """Bytes used by the store (local: files on disk; URLs: ``fsspec`` ``du``)."""
    path = normalise_path(path)
    if is_url(path):
        import fsspec

        fs, root = fsspec.core.url_to_fs(path, **dict(storage_options or {}))
        return int(fs.du(root))
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, f))
            except OSError:
                pass
    return total


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} TB"  # pragma: no cover


# the reader (imported last: it uses the functions above)
from pnp.store.reader import FIELDS, Store, missing_array_hint, open_store  # noqa: E402,F401
