"""Dataset specs: which sounds, which representation, which grid, stored how (``data/*.toml``).

A spec is a TOML file with these tables (``*`` = required; defaults in brackets)::

    name* = "demo"                         # identifier, [A-Za-z0-9_.-]+
    description = "..."                    # free text (not compared on resume)

    [synth]
    name* = "amchirp"                      # pnp.synth registry name (ftm, amchirp, arpeggio)
    config = { duration = 1.0 }            # keyword arguments of the synth [{}]
    fixed = { f_c = 512.0 }                # parameters held constant, physical units [{}]

    [grid]                                 # spans the *free* parameters only
    kind* = "jittered"                     # regular | jittered | random
    counts = [6, 6, 6]                     # per free parameter, or one integer for all
                                           # (regular/jittered: required; random: bins [10])
    size = 1000                            # random only (required there)
    seed = 0                               # jittered / random [0]
    centers = false                        # regular only: bin centres instead of bounds [false]

    [split]                                # train / val / test codes (0 / 1 / 2)
    rule = "pnp"                           # none (all train) | pnp | random ["none"]
    val_bins = [2, 7]                      # pnp: inclusive bin range(s) of the validation fold
    n_test = 100                           # pnp: test samples drawn outside validation
    fractions = [0.8, 0.1, 0.1]            # random: train, val, test
    seed = 0                               # [0]

    [representation]
    name* = "jtfs"                         # pnp.scattering registry name (jtfs, mss, scattering1d)
    config = { J = 8, Q = [8, 1], ... }    # keyword arguments; ``shape`` defaults to the
                                           # synth's n_samples; no ``log1p_c`` (see features)

    [features]
    compression = "log1p"                  # none | log1p  (log1p(|S| / c)) ["none"]
    c = 1e-3                               # log1p constant [1e-3]

    [compute]
    dtype = "float64"                      # float64 | mixed | float32: precision of the
                                           # computation [float64; float32 round-off in long
                                           # chirps and in log1p(|S|/c) of faint coefficients
                                           # reaches % in J]; mixed: θ, ν, synth and audio
                                           # tangents in float64, the representation in float32
                                           # (J within ~2e-3, M within ~5e-4 of float64 on the
                                           # PNP sets; docs in pnp.jacobian.features_and_jacobian)
    batch_size = 1                         # samples per Jacobian micro-batch [1]; bounds the
                                           # memory, may change when resuming (1 is the fastest
                                           # on CPU: each sample is already 1 + P signals)

    [store]
    chunk_size = 64                        # samples per zarr chunk = per dask task [64]
    jacobian = true                        # false: features only (no jacobian/metric/eigvals)
    audio = false                          # also store the synthesized audio [false]
    codec = "blosc-zstd"                   # blosc-zstd | zstd | none ["blosc-zstd"]
    level = 5                              # compression level 1..9 [5]

:func:`load_spec` parses and validates a file (unknown tables/keys, missing keys, wrong types,
out-of-range values, unknown synth/representation, fixed values outside their bounds, an
impossible split: each is a ``ValueError`` naming the field and what is allowed) and returns a
:class:`DatasetSpec`.  ``DatasetSpec.to_dict()`` is the normalised, JSON-able spec (defaults
filled in) stored in the zarr store; :meth:`DatasetSpec.diff` names the fields where two specs
differ (used to refuse resuming a store with another spec).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping, cast

import numpy as np

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef, unused-ignore]  # no-redef: mypy for Python >= 3.11 only

GRID_KINDS = ("regular", "jittered", "random")
SPLIT_RULES = ("none", "pnp", "random")
COMPRESSIONS = ("none", "log1p")
DTYPES = ("float64", "mixed", "float32")
CODECS = ("blosc-zstd", "zstd", "none")

_TOP = {"name", "description", "synth", "grid", "split", "representation", "features", "compute", "store"}
_TABLE_KEYS = {
    "synth": {"name", "config", "fixed"},
    "grid": {"kind", "counts", "size", "seed", "centers"},
    "split": {"rule", "val_bins", "n_test", "fractions", "seed"},
    "representation": {"name", "config"},
    "features": {"compression", "c"},
    "compute": {"dtype", "batch_size"},
    "store": {"chunk_size", "jacobian", "audio", "codec", "level"},
}
#: spec fields that do not change the stored numbers beyond round-off (ignored when comparing on
#: resume and in the hash): the description, and the micro-batch size, which only bounds memory
#: (so a store started on a CPU can be finished on a GPU with larger batches)
COSMETIC = ("description", "compute.batch_size")


def _comparable(d: Mapping[str, Any]) -> dict[str, Any]:
    """``d`` flattened to dotted keys, without the cosmetic fields."""
    return {k: v for k, v in flatten(dict(d)).items() if k not in COSMETIC}


# ------------------------------------------------------------------------------ helpers
def _type_name(v: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "a table"}.get(type(v), type(v).__name__)


def _int(v: Any, where: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{where} must be an integer, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{where} must be an integer {rng}, got {v!r}")
    return v


def _float(v: Any, where: str, positive: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{where} must be a number, got {v!r}")
    v = float(v)
    if not math.isfinite(v) or (positive and v <= 0):
        raise ValueError(f"{where} must be a finite number{' > 0' if positive else ''}, got {v!r}")
    return v


def _bool(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{where} must be true or false, got {v!r}")
    return v


def _choice(v: Any, where: str, choices: tuple[str, ...]) -> str:
    if v not in choices:
        raise ValueError(f"{where} must be one of {', '.join(map(repr, choices))}, got {v!r}")
    return v


def _table(v: Any, where: str) -> dict:
    if not isinstance(v, dict):
        raise ValueError(f"{where} must be a table, got {_type_name(v)} ({v!r})")
    return v


#: deepest nesting of tables / arrays accepted in a config value
MAX_DEPTH = 16


def _jsonable(v: Any, where: str, depth: int = 0) -> Any:
    """Check a config value is plain TOML data (no dates), lists instead of tuples, nested at
    most :data:`MAX_DEPTH` levels."""
    if isinstance(v, (dict, list, tuple)) and depth >= MAX_DEPTH:
        raise ValueError(f"{where} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(v, dict):
        return {str(k): _jsonable(x, f"{where}.{k}", depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x, f"{where}[{i}]", depth + 1) for i, x in enumerate(v)]
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"{where} must be finite, got {v!r}")
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise ValueError(f"{where}: unsupported value {v!r} ({type(v).__name__})")


def _known(table: Mapping, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ValueError(
            f"unknown field(s) {', '.join(prefix + u for u in unknown)}; allowed in "
            f"{'[' + where + ']' if where else 'the top level'}: {', '.join(sorted(allowed))}"
        )


def _require(table: Mapping, key: str, where: str) -> Any:
    if key not in table:
        raise ValueError(f"missing required field {where + '.' if where else ''}{key}")
    return table[key]


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
#: largest ``store.chunk_size`` (samples per chunk = per dask task)
MAX_CHUNK_SIZE = 2**20
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


def check_resources(data: Mapping[str, Any], n_params: int, n_time: int, sample_rate: float,
                    memory: int | None = None) -> None:
    """Refuse, before anything is allocated, a grid whose layout does not fit in memory and
    sounds too long for a representation (``ValueError`` naming the field and the size)."""
    g = data["grid"]
    counts = g["counts"] if isinstance(g["counts"], list) else [g["counts"]] * n_params
    n = int(g["size"]) if g["kind"] == "random" else math.prod(int(c) for c in counts)
    memory = machine_memory() if memory is None else memory
    need = n * max(n_params, 1) * LAYOUT_BYTES_PER_PARAM
    if memory and need > memory // 2:
        field = "grid.size" if g["kind"] == "random" else "grid.counts"
        raise ValueError(f"{field}: {n:,} samples need {_gib(need)} of memory for the grid alone, more than half of "
                         f"this machine's {_gib(memory)}; use a smaller grid")
    if n_time > MAX_SOUND_SAMPLES:
        raise ValueError(f"synth.config.duration: {n_time:,} samples per sound (at {sample_rate:g} Hz) is more than "
                         f"pnp handles ({MAX_SOUND_SAMPLES:,} = {MAX_SOUND_SAMPLES / sample_rate:.0f} s at this rate); "
                         "use shorter sounds")


# ------------------------------------------------------------------------------ the spec
class DatasetSpec:
    """A validated dataset spec (see module docs).  Build with :func:`load_spec` or
    :meth:`from_dict`; ``to_dict()`` is the normalised JSON-able form."""

    def __init__(self, data: dict[str, Any], source: str | None = None):
        self.source = source
        self._data = _normalise(data)
        self._layout: Layout | None = None
        # validate what can be validated without building the representation
        synth = self.build_synth()
        param = self.parametrization(synth)
        counts = self._data["grid"].get("counts")
        if isinstance(counts, list) and len(counts) != param.dim:
            raise ValueError(
                f"grid.counts has {len(counts)} entries but there are {param.dim} free parameters "
                f"({', '.join(param.free)}); give one count per free parameter or a single integer"
            )
        check_resources(self._data, param.dim, int(synth.n_samples), float(synth.sample_rate))
        self.layout()

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
        """The synth (``pnp.synth.get(name, **config)``); ``ValueError`` prefixed ``synth``."""
        import pnp.synth as ps

        s = self._data["synth"]
        try:
            return ps.get(s["name"], **s["config"])
        except ValueError as err:
            raise ValueError(f"synth.config: {err}") from None

    def parametrization(self, synth=None):
        """:class:`~pnp.jacobian.Parametrization` of the free parameters (``synth.fixed``)."""
        from pnp.jacobian import Parametrization

        synth = synth or self.build_synth()
        try:
            return Parametrization(synth.space, self._data["synth"]["fixed"])
        except ValueError as err:
            raise ValueError(f"synth.fixed: {err}") from None

    def representation_config(self, synth=None) -> dict[str, Any]:
        """Keyword arguments of the representation: the spec's config, ``shape`` defaulting to
        the synth's n_samples, ``log1p_c`` from ``[features]``."""
        synth = synth or self.build_synth()
        cfg = dict(self._data["representation"]["config"])
        n = synth.n_samples
        if not _takes_shape(self._data["representation"]["name"]):
            if "shape" in cfg:
                raise ValueError(
                    f"representation.config.shape: {self._data['representation']['name']!r} takes no shape "
                    "(it adapts to the input length); leave it out"
                )
        elif "shape" in cfg:
            shape = cfg["shape"]
            value = shape[0] if isinstance(shape, list) and len(shape) == 1 else shape
            if value != n:
                raise ValueError(
                    f"representation.config.shape = {shape!r} differs from the synth's n_samples = {n}; "
                    f"leave shape out to use {n}"
                )
        else:
            cfg["shape"] = n
        feats = self._data["features"]
        cfg["log1p_c"] = feats["c"] if feats["compression"] == "log1p" else None
        return cfg

    def build_representation(self, synth=None):
        """The representation; ``ValueError`` prefixed ``representation``."""
        import pnp.scattering as sc

        cfg = self.representation_config(synth)
        try:
            return sc.get(self._data["representation"]["name"], **cfg)
        except TypeError as err:  # unknown keyword
            raise ValueError(f"representation.config: {err}") from None
        except ValueError as err:
            raise ValueError(f"representation: {err}") from None

    def layout(self) -> Layout:
        """The samples (θ, ν, bins, split), computed once (deterministic from the seeds)."""
        if self._layout is not None:
            return self._layout
        from pnp.synth.space import pnp_split, random_split

        param = self.parametrization()
        space = param.free_space
        g = self._data["grid"]
        try:
            if g["kind"] == "regular":
                samples = space.grid(g["counts"], centers=g["centers"])
            elif g["kind"] == "jittered":
                samples = space.jittered_grid(g["counts"], seed=g["seed"])
            else:
                samples = space.uniform(g["size"], seed=g["seed"], counts=g["counts"])
        except ValueError as err:
            raise ValueError(f"grid: {err}") from None
        n = len(samples)
        sp = self._data["split"]
        if sp["rule"] == "none":
            codes = np.zeros(n, dtype=np.int8)
        elif sp["rule"] == "random":
            codes = random_split(n, sp["fractions"], seed=sp["seed"])
        else:
            vb = np.asarray(sp["val_bins"])
            vb2 = np.tile(vb, (param.dim, 1)) if vb.shape == (2,) else vb
            if vb2.shape != (param.dim, 2):
                raise ValueError(
                    f"split.val_bins must be one pair [lo, hi] or {param.dim} pairs (one per free parameter), "
                    f"got {sp['val_bins']!r}"
                )
            for (lo, hi), c, name in zip(vb2, samples.counts, param.free):
                if not 0 <= lo <= hi <= c - 1:
                    raise ValueError(
                        f"split.val_bins [{lo}, {hi}] for parameter {name!r} must satisfy 0 <= lo <= hi <= {c - 1} "
                        f"(the grid has {c} bins)"
                    )
            try:
                codes = pnp_split(samples, sp["n_test"], val_bins=[cast(tuple[int, int], tuple(map(int, r))) for r in vb2], seed=sp["seed"])
            except ValueError as err:
                raise ValueError(f"split: {err}") from None
        self._layout = Layout(
            theta=samples.theta,
            nu=np.asarray(param.nu(samples.theta), dtype=np.float64),
            bins=samples.bins.astype(np.int32),
            split=codes.astype(np.int8),
            counts=tuple(samples.counts),
        )
        return self._layout

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


# ------------------------------------------------------------------------------ normalisation
def _normalise(raw: Any) -> dict[str, Any]:
    """Validate the raw TOML/JSON data and fill in defaults (see module docs)."""
    d = _table(raw, "the spec")
    _known(d, _TOP, "")
    out: dict[str, Any] = {}

    name = _require(d, "name", "")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
        raise ValueError(f"name must be a non-empty string of letters, digits, '_', '.', '-', got {name!r}")
    out["name"] = name
    desc = d.get("description", "")
    if not isinstance(desc, str):
        raise ValueError(f"description must be a string, got {desc!r}")
    out["description"] = desc

    # [synth]
    s = _table(_require(d, "synth", ""), "[synth]")
    _known(s, _TABLE_KEYS["synth"], "synth")
    sname = _require(s, "name", "synth")
    if not isinstance(sname, str):
        raise ValueError(f"synth.name must be a string, got {sname!r}")
    import pnp.synth as ps

    if sname not in ps.SYNTHS:
        raise ValueError(f"synth.name: unknown synth {sname!r}; available: {', '.join(ps.available())}")
    fixed = _table(s.get("fixed", {}), "synth.fixed")
    out["synth"] = {
        "name": sname,
        "config": _jsonable(_table(s.get("config", {}), "synth.config"), "synth.config"),
        "fixed": {str(k): _float(v, f"synth.fixed.{k}") for k, v in fixed.items()},
    }

    # [grid]
    g = _table(_require(d, "grid", ""), "[grid]")
    _known(g, _TABLE_KEYS["grid"], "grid")
    kind = _choice(_require(g, "kind", "grid"), "grid.kind", GRID_KINDS)
    grid: dict[str, Any] = {"kind": kind}
    if kind in ("regular", "jittered"):
        counts = _require(g, "counts", "grid")
    else:
        counts = g.get("counts", 10)
        grid["size"] = _int(_require(g, "size", "grid"), "grid.size", lo=1)
    if isinstance(counts, list):
        if not counts:
            raise ValueError("grid.counts must not be empty")
        grid["counts"] = [_int(c, f"grid.counts[{i}]", lo=1) for i, c in enumerate(counts)]
    else:
        grid["counts"] = _int(counts, "grid.counts", lo=1)
    if kind == "regular":
        if "seed" in g or "size" in g:
            raise ValueError("grid.seed and grid.size do not apply to a regular grid (kind = 'regular')")
        grid["centers"] = _bool(g.get("centers", False), "grid.centers")
    else:
        if "centers" in g:
            raise ValueError(f"grid.centers applies to kind = 'regular' only, not {kind!r}")
        if kind == "jittered" and "size" in g:
            raise ValueError("grid.size applies to kind = 'random' only; a jittered grid has prod(counts) samples")
        grid["seed"] = _int(g.get("seed", 0), "grid.seed", lo=0)
    out["grid"] = grid

    # [split]
    sp = _table(d.get("split", {}), "[split]")
    _known(sp, _TABLE_KEYS["split"], "split")
    rule = _choice(sp.get("rule", "none"), "split.rule", SPLIT_RULES)
    split: dict[str, Any] = {"rule": rule}
    allowed = {"none": {"rule"}, "pnp": {"rule", "val_bins", "n_test", "seed"},
               "random": {"rule", "fractions", "seed"}}[rule]
    extra = sorted(set(sp) - allowed)
    if extra:
        raise ValueError(f"split.{extra[0]} does not apply to split.rule = {rule!r} (allowed: {', '.join(sorted(allowed))})")
    if rule == "pnp":
        vb = _require(sp, "val_bins", "split")
        if not isinstance(vb, list) or not vb:
            raise ValueError(f"split.val_bins must be a pair [lo, hi] or a list of pairs, got {vb!r}")
        if all(isinstance(x, list) for x in vb):
            split["val_bins"] = [[_int(x, "split.val_bins", lo=0) for x in pair] for pair in vb]
            if any(len(p) != 2 for p in split["val_bins"]):
                raise ValueError(f"split.val_bins pairs must have 2 entries [lo, hi], got {vb!r}")
        else:
            split["val_bins"] = [_int(x, "split.val_bins", lo=0) for x in vb]
            if len(split["val_bins"]) != 2:
                raise ValueError(f"split.val_bins must be a pair [lo, hi] or a list of pairs, got {vb!r}")
        split["n_test"] = _int(_require(sp, "n_test", "split"), "split.n_test", lo=0)
        split["seed"] = _int(sp.get("seed", 0), "split.seed", lo=0)
    elif rule == "random":
        fr = sp.get("fractions", [0.8, 0.1, 0.1])
        if not isinstance(fr, list) or len(fr) != 3:
            raise ValueError(f"split.fractions must be 3 numbers [train, val, test], got {fr!r}")
        fr = [_float(x, "split.fractions") for x in fr]
        if any(x < 0 for x in fr) or abs(sum(fr) - 1) > 1e-9:
            raise ValueError(f"split.fractions must be >= 0 and sum to 1, got {fr!r}")
        split["fractions"] = fr
        split["seed"] = _int(sp.get("seed", 0), "split.seed", lo=0)
    out["split"] = split

    # [representation]
    r = _table(_require(d, "representation", ""), "[representation]")
    _known(r, _TABLE_KEYS["representation"], "representation")
    rname = _require(r, "name", "representation")
    import pnp.scattering as sc

    if rname not in sc.names():
        raise ValueError(f"representation.name: unknown representation {rname!r}; available: {', '.join(sc.names())}")
    rcfg = _jsonable(_table(r.get("config", {}), "representation.config"), "representation.config")
    if "log1p_c" in rcfg:
        raise ValueError("representation.config.log1p_c is not allowed: set [features] compression = 'log1p' and c")
    if "name" in rcfg:
        raise ValueError("representation.config.name is not allowed: use representation.name")
    out["representation"] = {"name": rname, "config": rcfg}

    # [features]
    f = _table(d.get("features", {}), "[features]")
    _known(f, _TABLE_KEYS["features"], "features")
    comp = _choice(f.get("compression", "none"), "features.compression", COMPRESSIONS)
    if comp == "none" and f.get("c") is not None:
        raise ValueError("features.c applies to compression = 'log1p' only")
    out["features"] = {"compression": comp, "c": _float(f.get("c", 1e-3), "features.c", positive=True) if comp == "log1p" else None}

    # [compute]
    c = _table(d.get("compute", {}), "[compute]")
    _known(c, _TABLE_KEYS["compute"], "compute")
    out["compute"] = {
        "dtype": _choice(c.get("dtype", "float64"), "compute.dtype", DTYPES),
        "batch_size": _int(c.get("batch_size", 1), "compute.batch_size", lo=1),
    }

    # [store]
    st = _table(d.get("store", {}), "[store]")
    _known(st, _TABLE_KEYS["store"], "store")
    out["store"] = {
        "chunk_size": _int(st.get("chunk_size", 64), "store.chunk_size", lo=1, hi=MAX_CHUNK_SIZE),
        "jacobian": _bool(st.get("jacobian", True), "store.jacobian"),
        "audio": _bool(st.get("audio", False), "store.audio"),
        "codec": _choice(st.get("codec", "blosc-zstd"), "store.codec", CODECS),
        "level": _int(st.get("level", 5), "store.level", lo=1, hi=9),
    }
    return out


def load_spec(path: str | os.PathLike) -> DatasetSpec:
    """Read and validate a TOML spec.  ``FileNotFoundError`` if missing; ``ValueError`` (prefixed
    with the file name) for invalid TOML or an invalid spec."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"spec file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a directory, expected a TOML spec file")
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: invalid TOML: {err}") from None
    except RecursionError:
        raise ValueError(f"{path}: invalid TOML: tables or arrays nested too deeply") from None
    except OSError as err:
        raise ValueError(f"{path}: cannot read: {err.strerror or err}") from None
    try:
        return DatasetSpec(raw, source=path)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def loads_spec(text: str, source: str = "<string>") -> DatasetSpec:
    """Like :func:`load_spec` for TOML text."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{source}: invalid TOML: {err}") from None
    except RecursionError:
        raise ValueError(f"{source}: invalid TOML: tables or arrays nested too deeply") from None
    try:
        return DatasetSpec(raw, source=source)
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None
