"""Dataset specs: which sounds, which representation, which grid, stored how (``data/*.toml``).

A spec is a TOML file with the tables ``[synth]``, ``[grid]``, ``[split]``, ``[representation]``,
``[features]``, ``[compute]`` and ``[store]`` (and ``name``, ``description``); the schema is
declared once in :mod:`pnp.spec_schema` (types, defaults, ranges, meanings) and documented in
``docs/specs.md`` (generated from it by ``python -m pnp.spec_docs``).  For example::

    name = "demo"
    [synth]
    name = "amchirp"
    config = { sample_rate = 4096.0, duration = 1.0 }
    [grid]
    kind = "jittered"
    counts = [6, 6, 6]
    [split]
    rule = "pnp"
    val_bins = [2, 3]
    n_test = 24
    [representation]
    name = "jtfs"
    config = { J = 9, Q = [8, 1], J_fr = 3, F = 2, T = "global" }

:func:`load_spec` parses and validates a file and returns a :class:`DatasetSpec`.  Every problem
is reported at once, one line each naming the field (``SOURCE: grid.counts[1] must be an integer
>= 1, got 0``): the schema's (unknown, missing, mistyped, out-of-range fields), then those that
need the synth (its config, fixed values outside their bounds, one count per free parameter, a
grid that does not fit in memory, sounds too long) and the layout (an impossible split).  The
exception is a :class:`~pnp.spec_schema.SpecError` (a ``ValueError``), a
:class:`~pnp.spec_schema.SpecTypeError` (also a ``TypeError``) when a field has the wrong type.
``DatasetSpec.to_dict()`` is the normalised, JSON-able spec (defaults filled in) stored in the
zarr store; :meth:`DatasetSpec.diff` names the fields where two specs differ (used to refuse
resuming a store with another spec).  The representation's own config is checked when it is built
(:meth:`DatasetSpec.build_representation`; ``pnp spec check`` does).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from dataclasses import dataclass
from typing import Any, Mapping, cast

import numpy as np

from pnp.spec_schema import (  # noqa: F401 - re-exported: the schema's constants and errors
    CODECS,
    COMPRESSIONS,
    COSMETIC,
    DTYPES,
    GRID_KINDS,
    MAX_CHUNK_SIZE,
    MAX_DEPTH,
    SPLIT_RULES,
    Problem,
    SpecError,
    SpecTypeError,
    spec_error,
    validate,
)

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef, unused-ignore]  # no-redef: mypy for Python >= 3.11 only


def _comparable(d: Mapping[str, Any]) -> dict[str, Any]:
    """``d`` flattened to dotted keys, without the cosmetic fields."""
    return {k: v for k, v in flatten(dict(d)).items() if k not in COSMETIC}


def _problem(path: str, err: Exception) -> SpecError:
    """A one-problem :class:`SpecError` at ``path`` for the library error ``err`` (its message
    prefixed with ``path``)."""
    kind = TypeError if isinstance(err, TypeError) and not isinstance(err, ValueError) else ValueError
    return spec_error([Problem(path, f"{path}: {err}", kind)])


def _takes_shape(name: str) -> bool:
    """Whether the representation registered as ``name`` is built for one input length."""
    import inspect

    import pnp.scattering as sc

    try:
        cls = sc._load(name)
    except ValueError:
        return True  # unknown names are reported by build_representation
    return "shape" in inspect.signature(cls.__init__).parameters


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts → {"a.b.c": leaf}; lists are leaves."""
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


@dataclass
class Layout:
    """The samples of a spec, in store order.

    Attributes
    ----------
    theta : (S, P) float64 — free parameters, physical units
    nu : (S, P) float64 — the same normalised to [-1, 1]
    bins : (S, P) int32 — bin coordinates (grid indices for a regular grid)
    split : (S,) int8 — 0 train, 1 val, 2 test
    counts : tuple of int — bins per free parameter
    """

    theta: np.ndarray
    nu: np.ndarray
    bins: np.ndarray
    split: np.ndarray
    counts: tuple[int, ...]

    def __len__(self) -> int:
        return int(self.theta.shape[0])


# ------------------------------------------------------------------------------ resources
#: longest sound, in samples: a representation holds several filtered copies of every sound of a
#: micro-batch and of each of its P tangents, so longer sounds do not fit a worker's memory
MAX_SOUND_SAMPLES = 2**24
#: bytes per sample of the layout built in memory (θ float64, ν and bins computed in float64,
#: the split): what a grid must fit, with the other arrays, in this machine's memory
LAYOUT_BYTES_PER_PARAM = 32


def machine_memory() -> int | None:
    """Physical memory of this machine in bytes (None where unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return None


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def grid_size(grid: Mapping[str, Any], n_params: int) -> int:
    """Samples of the normalised ``[grid]`` table over ``n_params`` free parameters."""
    if grid["kind"] == "random":
        return int(grid["size"])
    counts = grid["counts"] if isinstance(grid["counts"], list) else [grid["counts"]] * n_params
    return math.prod(int(c) for c in counts)


def resource_problems(data: Mapping[str, Any], n_params: int, n_time: int, sample_rate: float,
                      memory: int | None = None, grid: bool = True) -> list[Problem]:
    """A grid whose layout does not fit in memory (when ``grid``) and sounds too long for a
    representation, as :class:`~pnp.spec_schema.Problem` s naming the field and the size."""
    problems = []
    memory = machine_memory() if memory is None else memory
    n = grid_size(data["grid"], n_params) if grid else 0
    need = n * max(n_params, 1) * LAYOUT_BYTES_PER_PARAM
    if memory and need > memory // 2:
        field = "grid.size" if data["grid"]["kind"] == "random" else "grid.counts"
        problems.append(Problem(field, f"{field}: {n:,} samples need {_gib(need)} of memory for the grid alone, more "
                                       f"than half of this machine's {_gib(memory)}; use a smaller grid"))
    if n_time > MAX_SOUND_SAMPLES:
        problems.append(Problem("synth.config.duration", (
            f"synth.config.duration: {n_time:,} samples per sound (at {sample_rate:g} Hz) is more than pnp handles "
            f"({MAX_SOUND_SAMPLES:,} = {MAX_SOUND_SAMPLES / sample_rate:.0f} s at this rate); use shorter sounds")))
    return problems


def check_resources(data: Mapping[str, Any], n_params: int, n_time: int, sample_rate: float,
                    memory: int | None = None) -> None:
    """Refuse, before anything is allocated, a grid whose layout does not fit in memory and
    sounds too long for a representation (:class:`~pnp.spec_schema.SpecError` naming the field
    and the size)."""
    problems = resource_problems(data, n_params, n_time, sample_rate, memory)
    if problems:
        raise spec_error(problems)


def _count_problems(grid: Mapping[str, Any], param) -> list[Problem]:
    counts = grid.get("counts")
    if isinstance(counts, list) and len(counts) != param.dim:
        return [Problem("grid.counts", (
            f"grid.counts has {len(counts)} entries but there are {param.dim} free parameters "
            f"({', '.join(param.free)}); give one count per free parameter or a single integer"))]
    return []


# ------------------------------------------------------------------------------ the spec
class DatasetSpec:
    """A validated dataset spec (see module docs).  Build with :func:`load_spec` or
    :meth:`from_dict`; ``to_dict()`` is the normalised JSON-able form.  Raises
    :class:`~pnp.spec_schema.SpecError` listing every problem of ``data``."""

    def __init__(self, data: dict[str, Any], source: str | None = None):
        self.source = source
        self._data, problems = validate(data)
        self._layout: Layout | None = None
        problems += self._consistency_problems({p.table for p in problems})
        if problems:
            raise spec_error(problems)

    def _consistency_problems(self, bad: set[str]) -> list[Problem]:
        """What needs the synth and the layout (skipping what rests on a table with problems)."""
        if "synth" in bad or "synth" not in self._data:
            return []
        try:
            synth = self.build_synth()
            param = self.parametrization(synth)
        except SpecError as err:
            return list(err.problems)
        grid_ok = "grid" not in bad
        problems = _count_problems(self._data["grid"], param) if grid_ok else []
        problems += resource_problems(self._data, param.dim, int(synth.n_samples), float(synth.sample_rate),
                                      grid=grid_ok and not problems)
        if not problems and not bad & {"grid", "split"}:
            try:
                self.layout(param)
            except SpecError as err:
                problems += err.problems
        return problems

    # ---------------------------------------------------------------- accessors
    def to_dict(self) -> dict[str, Any]:
        """Normalised spec (defaults filled in), JSON-able; ``DatasetSpec.from_dict`` inverts it."""
        return copy.deepcopy(self._data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> "DatasetSpec":
        return cls(copy.deepcopy(dict(data)), source=source)

    @property
    def name(self) -> str:
        return self._data["name"]

    @property
    def synth_name(self) -> str:
        return self._data["synth"]["name"]

    @property
    def fixed(self) -> dict[str, float]:
        return dict(self._data["synth"]["fixed"])

    @property
    def grid(self) -> dict[str, Any]:
        return copy.deepcopy(self._data["grid"])

    @property
    def split(self) -> dict[str, Any]:
        return copy.deepcopy(self._data["split"])

    @property
    def representation_name(self) -> str:
        return self._data["representation"]["name"]

    @property
    def compression(self) -> dict[str, Any]:
        return dict(self._data["features"])

    @property
    def compute(self) -> dict[str, Any]:
        return dict(self._data["compute"])

    @property
    def store(self) -> dict[str, Any]:
        return dict(self._data["store"])

    @property
    def dtype(self):
        """torch dtype of ν, θ and the synth (float64 for ``compute.dtype = "mixed"``)."""
        import torch

        name = self._data["compute"]["dtype"]
        return torch.float64 if name == "mixed" else getattr(torch, name)

    @property
    def representation_dtype(self):
        """torch dtype of the representation (float32 for ``compute.dtype = "mixed"``)."""
        import torch

        name = self._data["compute"]["dtype"]
        return torch.float32 if name == "mixed" else getattr(torch, name)

    @property
    def n_samples(self) -> int:
        return len(self.layout())

    @property
    def hash(self) -> str:
        """sha256 of the normalised spec without cosmetic fields (hex, 16 characters)."""
        return hashlib.sha256(json.dumps(_comparable(self._data), sort_keys=True).encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"DatasetSpec({self.name!r}, {self.synth_name}, {self.n_samples} samples, {self.representation_name})"

    # ---------------------------------------------------------------- builders
    def build_synth(self):
        """The synth (``pnp.synth.get(name, **config)``); errors prefixed ``synth.config``."""
        import pnp.synth as ps

        s = self._data["synth"]
        try:
            return ps.get(s["name"], **s["config"])
        except (ValueError, TypeError) as err:
            raise _problem("synth.config", err) from None

    def parametrization(self, synth=None):
        """:class:`~pnp.jacobian.Parametrization` of the free parameters (``synth.fixed``)."""
        from pnp.jacobian import Parametrization

        synth = synth or self.build_synth()
        try:
            return Parametrization(synth.space, self._data["synth"]["fixed"])
        except ValueError as err:
            raise _problem("synth.fixed", err) from None

    def representation_config(self, synth=None) -> dict[str, Any]:
        """Keyword arguments of the representation: the spec's config, ``shape`` defaulting to
        the synth's n_samples, ``log1p_c`` from ``[features]``."""
        synth = synth or self.build_synth()
        name = self._data["representation"]["name"]
        cfg = dict(self._data["representation"]["config"])
        n = synth.n_samples
        where = "representation.config.shape"
        if not _takes_shape(name):
            if "shape" in cfg:
                raise spec_error([Problem(where, f"{where}: {name!r} takes no shape (it adapts to the input length); "
                                                 "leave it out")])
        elif "shape" in cfg:
            shape = cfg["shape"]
            value = shape[0] if isinstance(shape, list) and len(shape) == 1 else shape
            if value != n:
                raise spec_error([Problem(where, f"{where} = {shape!r} differs from the synth's n_samples = {n}; "
                                                 f"leave shape out to use {n}")])
        else:
            cfg["shape"] = n
        feats = self._data["features"]
        cfg["log1p_c"] = feats["c"] if feats["compression"] == "log1p" else None
        return cfg

    def build_representation(self, synth=None):
        """The representation; errors prefixed ``representation``."""
        import pnp.scattering as sc

        cfg = self.representation_config(synth)
        try:
            return sc.get(self._data["representation"]["name"], **cfg)
        except TypeError as err:  # unknown keyword
            raise _problem("representation.config", ValueError(str(err))) from None
        except ValueError as err:
            raise _problem("representation", err) from None

    # ---------------------------------------------------------------- layout
    def layout(self, param=None) -> Layout:
        """The samples (θ, ν, bins, split), computed once (deterministic from the seeds);
        ``param``: the spec's :meth:`parametrization` where already built."""
        if self._layout is not None:
            return self._layout
        param = param or self.parametrization()
        samples = self._samples(param.free_space)
        codes = self._split_codes(samples, param)
        self._layout = Layout(
            theta=samples.theta,
            nu=np.asarray(param.nu(samples.theta), dtype=np.float64),
            bins=samples.bins.astype(np.int32),
            split=codes.astype(np.int8),
            counts=tuple(samples.counts),
        )
        return self._layout

    def _samples(self, space):
        g = self._data["grid"]
        try:
            if g["kind"] == "regular":
                return space.grid(g["counts"], centers=g["centers"])
            if g["kind"] == "jittered":
                return space.jittered_grid(g["counts"], seed=g["seed"])
            return space.uniform(g["size"], seed=g["seed"], counts=g["counts"])
        except ValueError as err:
            raise _problem("grid", err) from None

    def _split_codes(self, samples, param) -> np.ndarray:
        from pnp.synth.space import pnp_split, random_split

        sp = self._data["split"]
        if sp["rule"] == "none":
            return np.zeros(len(samples), dtype=np.int8)
        if sp["rule"] == "random":
            return random_split(len(samples), sp["fractions"], seed=sp["seed"])
        val_bins = _val_bin_ranges(sp["val_bins"], samples.counts, param.free)
        try:
            return pnp_split(samples, sp["n_test"], val_bins=val_bins, seed=sp["seed"])
        except ValueError as err:
            raise _problem("split", err) from None

    # ---------------------------------------------------------------- comparison
    def diff(self, other: "DatasetSpec | Mapping[str, Any]") -> list[str]:
        """Dotted names of the fields that differ from ``other`` (cosmetic fields ignored),
        each as ``"field (this: X, other: Y)"``; empty when the specs are equivalent."""
        o = other.to_dict() if isinstance(other, DatasetSpec) else dict(other)
        a, b = _comparable(self._data), _comparable(o)
        out = []
        for key in sorted(set(a) | set(b)):
            va, vb = a.get(key, "<absent>"), b.get(key, "<absent>")
            if va != vb or type(va) is bool and type(vb) is not bool or type(vb) is bool and type(va) is not bool:
                out.append(f"{key} (this: {json.dumps(va)}, other: {json.dumps(vb)})")
        return out


def _val_bin_ranges(val_bins: list, counts: tuple[int, ...], free: tuple[str, ...]) -> list[tuple[int, int]]:
    """``split.val_bins`` as one ``(lo, hi)`` per free parameter, checked against the bins
    (:class:`~pnp.spec_schema.SpecError` listing every bad range)."""
    vb = np.asarray(val_bins)
    vb2 = np.tile(vb, (len(free), 1)) if vb.shape == (2,) else vb
    if vb2.shape != (len(free), 2):
        raise spec_error([Problem("split.val_bins", (
            f"split.val_bins must be one pair [lo, hi] or {len(free)} pairs (one per free parameter), "
            f"got {val_bins!r}"))])
    problems = [Problem("split.val_bins", f"split.val_bins [{lo}, {hi}] for parameter {name!r} must satisfy "
                                          f"0 <= lo <= hi <= {c - 1} (the grid has {c} bins)")
                for (lo, hi), c, name in zip(vb2, counts, free) if not 0 <= lo <= hi <= c - 1]
    if problems:
        raise spec_error(problems)
    return [cast(tuple[int, int], tuple(map(int, r))) for r in vb2]


# ------------------------------------------------------------------------------ files
def _parsed(text_or_file: Any, source: str) -> dict[str, Any]:
    try:
        if isinstance(text_or_file, str):
            return tomllib.loads(text_or_file)
        return tomllib.load(text_or_file)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{source}: invalid TOML: {err}") from None
    except RecursionError:
        raise ValueError(f"{source}: invalid TOML: tables or arrays nested too deeply") from None


def _from_raw(raw: dict[str, Any], source: str) -> DatasetSpec:
    try:
        return DatasetSpec(raw, source=source)
    except SpecError as err:
        raise spec_error(err.problems, source) from None
    except ValueError as err:  # pragma: no cover - every spec problem is a SpecError
        raise ValueError(f"{source}: {err}") from None


def load_spec(path: str | os.PathLike) -> DatasetSpec:
    """Read and validate a TOML spec.  ``FileNotFoundError`` if missing; ``ValueError`` (prefixed
    with the file name) for invalid TOML; :class:`~pnp.spec_schema.SpecError` (one line per
    problem, each prefixed with the file name) for an invalid spec."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"spec file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a directory, expected a TOML spec file")
    try:
        with open(path, "rb") as fh:
            raw = _parsed(fh, path)
    except OSError as err:
        raise ValueError(f"{path}: cannot read: {err.strerror or err}") from None
    return _from_raw(raw, path)


def loads_spec(text: str, source: str = "<string>") -> DatasetSpec:
    """Like :func:`load_spec` for TOML text."""
    return _from_raw(_parsed(text, source), source)
