"""The dataset-spec schema, declared once: one frozen dataclass per TOML table (``data/*.toml``).

Each field's annotation is its type, its dataclass default is its default (no default: required),
and its :class:`Rule` (``field(metadata=...)``) holds the rest: a one-line meaning, units, range,
allowed values, the values of the table's discriminator it applies to (``grid.seed`` only for
jittered and random grids) and extra checks.  :func:`validate` walks these declarations and
returns the normalised spec (defaults filled in) with **every** problem found, each a
:class:`Problem` with its field path (``grid.counts[1]``) and a one-line message;
:mod:`pnp.spec_docs` renders the same declarations as ``docs/specs.md``.

Why dataclasses, not pydantic v2 (``extra='forbid'``): the spec is plain TOML (strings, numbers,
booleans, arrays, tables), so a validator of ~150 lines covers every type it has, and it writes
the messages pnp's users already get ("store.level must be an integer in [1, 9], got 12",
"synth.name: unknown synth 'moog'; available: ...") where pydantic's ("Input should be less than
or equal to 9") would need a translation layer per error type; the rules that depend on another
field (``grid.kind``, ``split.rule``, ``features.compression``) are one declared discriminator
instead of model validators; and pnp gains no compiled dependency (pydantic-core) nor its import
time on ``pnp --help``.

Wrong types are :class:`Problem` s of kind ``TypeError``, bad values of kind ``ValueError``;
:func:`spec_error` turns a list of them into one exception (:class:`SpecTypeError`, which is
both a ``TypeError`` and a ``ValueError``, when any problem is a wrong type; else
:class:`SpecError`, a ``ValueError``) whose text is one line per problem.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import re
import types
import typing
from dataclasses import MISSING, dataclass, field
from typing import Any, Callable, ClassVar, Literal, Sequence, Union

#: largest ``store.chunk_size`` (samples per chunk = per dask task)
MAX_CHUNK_SIZE = 2**20
#: deepest nesting of tables / arrays accepted in a config value
MAX_DEPTH = 16

GRID_KINDS = ("regular", "jittered", "random")
SPLIT_RULES = ("none", "pnp", "random")
COMPRESSIONS = ("none", "log1p")
DTYPES = ("float64", "mixed", "float32")
CODECS = ("blosc-zstd", "zstd", "none")


# ------------------------------------------------------------------------------ problems
@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec: ``path`` (``"grid.counts[1]"``; ``""`` for the whole spec),
    a one-line ``message`` that names it, and ``kind`` (``TypeError`` or ``ValueError``)."""

    path: str
    message: str
    kind: type[Exception] = ValueError

    @property
    def table(self) -> str:
        """The top-level table (or field) the problem is in: ``"grid"`` for ``grid.counts[1]``."""
        return re.split(r"[.\[]", self.path, maxsplit=1)[0]


class SpecError(ValueError):
    """An invalid spec: every :class:`Problem` found (``problems``), one line each in ``str()``,
    each prefixed with ``source`` (the file name) when given."""

    def __init__(self, problems: Sequence[Problem], source: str | None = None):
        self.problems = tuple(problems)
        self.source = source
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        """One line per problem: ``"SOURCE: MESSAGE"`` (``"MESSAGE"`` without a source)."""
        prefix = f"{self.source}: " if self.source else ""
        return [prefix + p.message for p in self.problems]


class SpecTypeError(SpecError, TypeError):
    """A :class:`SpecError` with at least one wrong type (a ``TypeError`` and a ``ValueError``)."""


def spec_error(problems: Sequence[Problem], source: str | None = None) -> SpecError:
    """One exception for ``problems``: :class:`SpecTypeError` if any is a wrong type."""
    cls = SpecTypeError if any(p.kind is TypeError for p in problems) else SpecError
    return cls(problems, source)


# ------------------------------------------------------------------------------ declarations
#: :attr:`Rule.absent` of a field left out of the normalised spec where it does not apply
OMIT: Any = type("Omit", (), {"__repr__": lambda self: "OMIT"})()


@dataclass(frozen=True)
class Rule:
    """What a field's annotation and default do not say (see the module docs).

    ``when``: values of the table's ``DISCRIMINATOR`` the field applies to (None: always);
    ``required_for``: values for which it has no default (its dataclass default applies to the
    others); ``absent``: its normalised value where it does not apply (``OMIT``: left out);
    ``choices``: allowed strings (a callable for a registry, ``noun`` names its items);
    ``check``: extra value checks, ``(value, path) -> [Problem]``;
    ``parse``: a custom validator for a compound type, ``(value, path) -> (value, [Problem])``;
    ``allowed_doc`` / ``type_doc``: what ``docs/specs.md`` shows instead of the derived text.
    """

    doc: str
    units: str = ""
    lo: float | None = None
    hi: float | None = None
    positive: bool = False
    item_names: tuple[str, ...] = ()
    choices: Callable[[], Sequence[str]] | None = None
    noun: str = ""
    pattern: str | None = None
    pattern_doc: str = ""
    when: tuple[str, ...] | None = None
    required_for: tuple[str, ...] = ()
    absent: Any = OMIT
    allowed_doc: str = ""
    type_doc: str = ""
    check: Callable[[Any, str], list[Problem]] | None = None
    parse: Callable[[Any, str], tuple[Any, list[Problem]]] | None = None


def spec_field(doc: str, default: Any = MISSING, **rule: Any) -> Any:
    """A dataclass field with its :class:`Rule` (list / dict defaults are copied per use)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata={"rule": Rule(doc, **rule)})
    return field(default=default, metadata={"rule": Rule(doc, **rule)})


def _synth_names() -> Sequence[str]:
    import pnp.synth as ps

    return ps.available()


def _representation_names() -> Sequence[str]:
    import pnp.scattering as sc

    return sc.names()


def _no_reserved_keys(config: dict[str, Any], path: str) -> list[Problem]:
    why = {"log1p_c": "set [features] compression = 'log1p' and c", "name": "use representation.name"}
    return [Problem(f"{path}.{k}", f"{path}.{k} is not allowed: {why[k]}") for k in why if k in config]


def _fractions_sum_to_one(fr: list[float], path: str) -> list[Problem]:
    if any(x < 0 for x in fr) or abs(sum(fr) - 1) > 1e-9:
        return [Problem(path, f"{path} must be >= 0 and sum to 1, got {fr!r}")]
    return []


def _val_bins(v: Any, path: str) -> tuple[Any, list[Problem]]:
    """``[lo, hi]`` or ``[[lo, hi], ...]`` (one pair per free parameter), integers >= 0."""
    shape = f"{path} must be a pair [lo, hi] or a list of pairs, got {v!r}"
    if not isinstance(v, list) or not v:
        return None, [Problem(path, shape, TypeError if not isinstance(v, list) else ValueError)]
    pairs = all(isinstance(x, list) for x in v)
    rows = v if pairs else [v]
    problems: list[Problem] = []
    if any(len(r) != 2 for r in rows):
        msg = f"{path} pairs must have 2 entries [lo, hi], got {v!r}" if pairs else shape
        problems.append(Problem(path, msg))
    out = [[_int(x, f"{path}[{i}][{j}]" if pairs else f"{path}[{j}]", problems, lo=0) for j, x in enumerate(r)]
           for i, r in enumerate(rows)]
    return (out if pairs else out[0]), problems


@dataclass(frozen=True, kw_only=True)
class SynthTable:
    """``[synth]``: the synthesizer g(θ) whose sounds the store holds."""

    name: str = spec_field("pnp.synth registry name", choices=_synth_names, noun="synth")
    config: dict[str, Any] = spec_field(
        "keyword arguments of the synth, `pnp.synth.get(name, **config)` (per synth: see below)", {})
    fixed: dict[str, float] = spec_field(
        "parameters held constant, name = value in the parameter's units (inside its bounds); the grid spans the "
        "others (the free parameters)", {}, units="the parameter's")


@dataclass(frozen=True, kw_only=True)
class GridTable:
    """``[grid]``: the samples, over the *free* parameters only (bins in each parameter's scale,
    log or linear)."""

    DISCRIMINATOR: ClassVar[str] = "kind"
    kind: Literal["regular", "jittered", "random"] = spec_field(
        "regular: a grid of bin bounds (or centres); jittered: one uniform draw per grid cell; random: `size` "
        "uniform draws, binned into `counts` bins for the split")
    size: int = spec_field("number of samples", lo=1, when=("random",), required_for=("random",), units="samples")
    counts: int | list[int] = spec_field(
        "bins per free parameter (in the order of the synth's parameters), or one integer for all", 10, lo=1,
        required_for=("regular", "jittered"), units="bins")
    seed: int = spec_field("seed of the draws", 0, lo=0, when=("jittered", "random"))
    centers: bool = spec_field("bin centres instead of bounds", False, when=("regular",))


@dataclass(frozen=True, kw_only=True)
class SplitTable:
    """``[split]``: the fold of every sample, stored as codes 0 train, 1 val, 2 test."""

    DISCRIMINATOR: ClassVar[str] = "rule"
    rule: Literal["none", "pnp", "random"] = spec_field(
        "none: all train; pnp: a block of bins is the validation fold, `n_test` samples outside it the test fold "
        "(the PNP papers' split); random: shuffled by `fractions`", "none")
    val_bins: list[int] | list[list[int]] = spec_field(
        "inclusive bin range(s) of the validation fold: one pair for every free parameter, or one pair each",
        when=("pnp",), required_for=("pnp",), parse=_val_bins, units="bin indices",
        type_doc="[lo, hi] or array of such pairs (integers)",
        allowed_doc="0 <= lo <= hi <= counts - 1")
    n_test: int = spec_field("test samples, drawn outside the validation fold", lo=0, when=("pnp",), units="samples",
                             required_for=("pnp",), allowed_doc=">= 0, at most the samples outside validation")
    fractions: list[float] = spec_field("train, val, test fractions", [0.8, 0.1, 0.1],
                                        item_names=("train", "val", "test"),
                                        when=("random",), check=_fractions_sum_to_one,
                                        allowed_doc="3 numbers >= 0 summing to 1")
    seed: int = spec_field("seed of the draws", 0, lo=0, when=("pnp", "random"))


@dataclass(frozen=True, kw_only=True)
class RepresentationTable:
    """``[representation]``: Φ, the features stored for every sound."""

    name: str = spec_field("pnp.scattering registry name", choices=_representation_names, noun="representation")
    config: dict[str, Any] = spec_field(
        "keyword arguments of the representation (per representation: see below); `shape` defaults to the synth's "
        "number of audio samples; no `log1p_c` (see [features]) nor `name`", {}, check=_no_reserved_keys)


@dataclass(frozen=True, kw_only=True)
class FeaturesTable:
    """``[features]``: the compression applied to the representation's coefficients S."""

    DISCRIMINATOR: ClassVar[str] = "compression"
    compression: Literal["none", "log1p"] = spec_field("none: S itself; log1p: log1p(|S| / c)", "none")
    c: float = spec_field("log1p constant (stored as null with compression = \"none\")", 1e-3, positive=True,
                          when=("log1p",), absent=None, units="those of S")


@dataclass(frozen=True, kw_only=True)
class ComputeTable:
    """``[compute]``: how the numbers are computed (not what)."""

    dtype: Literal["float64", "mixed", "float32"] = spec_field(
        "precision: float64; mixed: θ, ν, synth and audio tangents in float64, the representation in float32 "
        "(J within ~2e-3, M within ~5e-4 of float64 on the PNP sets); float32 (round-off in long chirps and in "
        "log1p(|S| / c) of faint coefficients reaches % in J)", "float64")
    batch_size: int = spec_field(
        "samples per Jacobian micro-batch: bounds the memory; may change when resuming (not compared)", 1, lo=1,
        units="samples")


@dataclass(frozen=True, kw_only=True)
class StoreTable:
    """``[store]``: how the zarr store is laid out on disk."""

    chunk_size: int = spec_field("samples per zarr chunk = per dask task", 64, lo=1, hi=MAX_CHUNK_SIZE,
                                 units="samples")
    jacobian: bool = spec_field("also store J = dS/dν, the metric M = JᵀJ and its eigenvalues", True)
    audio: bool = spec_field("also store the synthesized audio", False)
    codec: Literal["blosc-zstd", "zstd", "none"] = spec_field("compressor of every array", "blosc-zstd")
    level: int = spec_field("compression level", 5, lo=1, hi=9)


@dataclass(frozen=True, kw_only=True)
class Spec:
    """A dataset spec: which sounds, which representation, which grid, stored how."""

    name: str = spec_field("identifier of the data set", pattern=r"[A-Za-z0-9_.\-]+",
                           pattern_doc="a non-empty string of letters, digits, '_', '.', '-'")
    description: str = spec_field("free text (not compared when resuming)", "")
    synth: SynthTable = spec_field("the synthesizer")
    grid: GridTable = spec_field("the samples")
    split: SplitTable = spec_field("train / val / test folds", {})
    representation: RepresentationTable = spec_field("the features")
    features: FeaturesTable = spec_field("feature compression", {})
    compute: ComputeTable = spec_field("computation", {})
    store: StoreTable = spec_field("store layout", {})


#: spec fields that do not change the stored numbers beyond round-off (ignored when comparing on
#: resume and in the hash): the description, and the micro-batch size, which only bounds memory
#: (so a store started on a CPU can be finished on a GPU with larger batches)
COSMETIC = ("description", "compute.batch_size")


# ------------------------------------------------------------------------------ declared fields
@dataclass(frozen=True)
class Declared:
    """One declared field: name, annotation (resolved), rule, default (``MISSING``: required)."""

    name: str
    type: Any
    rule: Rule
    default: Any

    @property
    def is_table(self) -> bool:
        return dataclasses.is_dataclass(self.type)


@functools.lru_cache(maxsize=None)
def declared(cls: type) -> tuple[Declared, ...]:
    """The fields of schema dataclass ``cls``, in declaration order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        out.append(Declared(f.name, hints[f.name], f.metadata["rule"], default))
    return tuple(out)


def applies(d: Declared, choice: str | None) -> bool:
    """Whether field ``d`` applies for discriminator value ``choice`` (None: unknown → yes)."""
    return d.rule.when is None or choice is None or choice in d.rule.when


# ------------------------------------------------------------------------------ validation
def validate(raw: Any) -> tuple[dict[str, Any], list[Problem]]:
    """Check ``raw`` (TOML / JSON data) against :class:`Spec`: ``(normalised, problems)``.

    ``normalised`` has the defaults filled in (complete only where ``problems`` is empty)."""
    problems: list[Problem] = []
    if not isinstance(raw, dict):
        problems.append(Problem("", f"the spec must be a table, got {_type_name(raw)} ({raw!r})", TypeError))
        return {}, problems
    return _table(Spec, raw, "", problems), problems


def _table(cls: type, raw: dict[str, Any], path: str, problems: list[Problem]) -> dict[str, Any]:
    fields = declared(cls)
    _unknown(raw, [d.name for d in fields], path, problems)
    disc = getattr(cls, "DISCRIMINATOR", None)
    choice: str | None = None
    out: dict[str, Any] = {}
    for d in fields:
        where = f"{path}.{d.name}" if path else d.name
        if not applies(d, choice):
            if d.name in raw and not (d.rule.absent is not OMIT and raw[d.name] is d.rule.absent):
                problems.append(_not_applicable(d, fields, path, disc, choice))
            elif d.rule.absent is not OMIT:  # also given as itself: a normalised spec read back
                out[d.name] = d.rule.absent
            continue
        if d.name not in raw:
            if d.default is MISSING or (choice is not None and choice in d.rule.required_for):
                when = f" (required with {path}.{disc} = {choice!r})" if d.rule.required_for else ""
                if d.rule.required_for and choice is None:
                    continue  # the discriminator is missing or wrong: reported already
                problems.append(Problem(where, f"missing required field {where}{when}"))
                continue
            value: Any = copy.deepcopy(d.default)
        else:
            value = raw[d.name]
        n_before = len(problems)
        result = _value(d, value, where, problems)
        if len(problems) == n_before:
            out[d.name] = result
            if d.name == disc:
                choice = result
        elif d.name == disc:
            choice = None
    return out


def _unknown(raw: dict[str, Any], allowed: list[str], path: str, problems: list[Problem]) -> None:
    unknown = sorted(set(map(str, raw)) - set(allowed))
    if unknown:
        prefix = f"{path}." if path else ""
        where = f"[{path}]" if path else "the top level"
        problems.append(Problem(path, f"unknown field(s) {', '.join(prefix + u for u in unknown)}; "
                                      f"allowed in {where}: {', '.join(sorted(allowed))}"))


def _not_applicable(d: Declared, fields: Sequence[Declared], path: str, disc: str | None, choice: str | None) -> Problem:
    assert d.rule.when is not None and disc is not None
    where = f"{path}.{d.name}"
    others = " or ".join(map(repr, d.rule.when))
    allowed = sorted(f.name for f in fields if applies(f, choice))
    return Problem(where, f"{where} does not apply to {path}.{disc} = {choice!r}: it applies to {disc} = {others} "
                          f"only (allowed with {choice!r}: {', '.join(allowed)})")


def _value(d: Declared, v: Any, path: str, problems: list[Problem]) -> Any:
    """Validate one field value (problems appended), returning its normalised form."""
    rule, tp = d.rule, d.type
    if d.is_table:
        if not isinstance(v, dict):
            problems.append(Problem(path, f"[{path}] must be a table, got {_type_name(v)} ({v!r})", TypeError))
            return None
        return _table(tp, v, path, problems)
    if rule.parse is not None:
        value, found = rule.parse(v, path)
        problems.extend(found)
    else:
        value = _typed(tp, rule, v, path, problems)
    if rule.check is not None and value is not None and not problems_at(problems, path):
        problems.extend(rule.check(value, path))
    return value


def problems_at(problems: list[Problem], path: str) -> bool:
    """Whether a problem was found at ``path`` or below it."""
    return any(p.path == path or p.path.startswith((path + ".", path + "[")) for p in problems)


def _typed(tp: Any, rule: Rule, v: Any, path: str, problems: list[Problem]) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is bool:
        if not isinstance(v, bool):
            problems.append(Problem(path, f"{path} must be true or false, got {v!r}", TypeError))
        return v
    if tp is int:
        return _int(v, path, problems, rule.lo, rule.hi)
    if tp is float:
        return _float(v, path, problems, rule.positive)
    if tp is str or origin is Literal:
        return _string(v, path, problems, rule, tuple(args) if origin is Literal else None)
    if origin in (Union, types.UnionType):  # T | list[T]: one value or a non-empty array of them
        if isinstance(v, list):
            return _list(args[1], rule, v, path, problems)
        if isinstance(v, bool) or not isinstance(v, int):
            problems.append(Problem(path, f"{path} must be an integer or an array of integers, got {v!r}", TypeError))
            return None
        return _int(v, path, problems, rule.lo, rule.hi)
    if origin is list:
        return _list(tp, rule, v, path, problems)
    if origin is dict:
        return _dict(args[1], v, path, problems)
    raise TypeError(f"pnp.spec_schema: no validator for {tp!r} ({path})")  # pragma: no cover - a schema bug


def _int(v: Any, path: str, problems: list[Problem], lo: float | None = None, hi: float | None = None) -> Any:
    if isinstance(v, bool) or not isinstance(v, int):
        problems.append(Problem(path, f"{path} must be an integer, got {v!r}", TypeError))
    elif (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f">= {_number(lo)}" if hi is None else f"in [{_number(lo)}, {_number(hi)}]"
        problems.append(Problem(path, f"{path} must be an integer {rng}, got {v!r}"))
    return v


def _float(v: Any, path: str, problems: list[Problem], positive: bool = False) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        problems.append(Problem(path, f"{path} must be a number, got {v!r}", TypeError))
        return v
    v = float(v)
    if not math.isfinite(v) or (positive and v <= 0):
        problems.append(Problem(path, f"{path} must be a finite number{' > 0' if positive else ''}, got {v!r}"))
    return v


def _string(v: Any, path: str, problems: list[Problem], rule: Rule, literal: tuple[str, ...] | None) -> Any:
    choices = literal or (tuple(rule.choices()) if rule.choices else None)
    if rule.pattern and not (isinstance(v, str) and re.fullmatch(rule.pattern, v)):
        problems.append(Problem(path, f"{path} must be {rule.pattern_doc}, got {v!r}",
                                ValueError if isinstance(v, str) else TypeError))
    elif not isinstance(v, str):
        allowed = f", one of {', '.join(map(repr, choices))}" if choices else ""
        problems.append(Problem(path, f"{path} must be a string{allowed}, got {v!r}", TypeError))
    elif choices and v not in choices:
        if rule.noun:
            msg = f"{path}: unknown {rule.noun} {v!r}; available: {', '.join(choices)}"
        else:
            msg = f"{path} must be one of {', '.join(map(repr, choices))}, got {v!r}"
        problems.append(Problem(path, msg))
    return v


def _list(tp: Any, rule: Rule, v: Any, path: str, problems: list[Problem]) -> Any:
    item = typing.get_args(tp)[0]
    n = len(rule.item_names) or None
    what = f"{n} {_plural(item)} [{', '.join(rule.item_names)}]" if n else f"an array of {_plural(item)}"
    if not isinstance(v, list):
        problems.append(Problem(path, f"{path} must be {what}, got {v!r}", TypeError))
        return None
    if n is not None and len(v) != n:
        problems.append(Problem(path, f"{path} must be {what}, got {v!r}"))
        return None
    if not v:
        problems.append(Problem(path, f"{path} must not be empty"))
        return None
    if item is int:
        return [_int(x, f"{path}[{i}]", problems, rule.lo, rule.hi) for i, x in enumerate(v)]
    return [_float(x, f"{path}[{i}]", problems) for i, x in enumerate(v)]


def _dict(item: Any, v: Any, path: str, problems: list[Problem]) -> Any:
    if not isinstance(v, dict):
        problems.append(Problem(path, f"{path} must be a table, got {_type_name(v)} ({v!r})", TypeError))
        return None
    if item is float:
        return {str(k): _float(x, f"{path}.{k}", problems) for k, x in v.items()}
    return _plain(v, path, problems)


def _plain(v: Any, path: str, problems: list[Problem], depth: int = 0) -> Any:
    """A config value as plain TOML data (no dates), lists for tuples, nested at most
    :data:`MAX_DEPTH` levels."""
    if isinstance(v, (dict, list, tuple)) and depth >= MAX_DEPTH:
        problems.append(Problem(path, f"{path} is nested more than {MAX_DEPTH} levels deep"))
        return None
    if isinstance(v, dict):
        return {str(k): _plain(x, f"{path}.{k}", problems, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x, f"{path}[{i}]", problems, depth + 1) for i, x in enumerate(v)]
    if isinstance(v, float) and not math.isfinite(v):
        problems.append(Problem(path, f"{path} must be finite, got {v!r}"))
    elif not (v is None or isinstance(v, (bool, int, float, str))):
        problems.append(Problem(path, f"{path}: unsupported value {v!r} ({type(v).__name__}); use a string, number, "
                                      "boolean, array or table", TypeError))
    return v


def _number(x: float | None) -> str:
    """``x`` as a message shows it: ``1048576``, ``0.5``."""
    return str(int(x)) if x is not None and float(x).is_integer() else f"{x:g}"


def _type_name(v: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "a table"}.get(type(v), type(v).__name__)


def _plural(tp: Any) -> str:
    return {int: "integers", float: "numbers"}.get(tp, "values")
