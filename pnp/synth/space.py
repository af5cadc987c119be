"""Parameter spaces: names, units, bounds and scales of a synthesizer's parameters θ.

A :class:`ParameterSpace` is an ordered list of :class:`Parameter` s.  Each parameter has closed
bounds ``[lo, hi]`` in *physical* units and a scale, ``"linear"`` or ``"log"``.  All the geometry
(normalisation, grids, bins) is done in the parameter's *scale space* ``s(θ)``: ``s(θ) = θ`` for a
linear parameter and ``s(θ) = log10 θ`` for a log-scaled one.

* ``normalize(θ) -> ν`` and ``denormalize(ν) -> θ`` map physical values to ``ν ∈ [-1, 1]``
  (affine in scale space).  They are differentiable torch ops, safe under ``torch.func.vmap`` /
  ``jacfwd`` (no ``.item()``, no branching on tensor values); numpy in gives numpy out.
* ``grid``, ``jittered_grid`` and ``uniform`` draw parameter sets; each returns a
  :class:`Samples` (``theta`` (S, P) float64 in physical units, ``bins`` (S, P) int32).
* :func:`pnp_split` (PNP's rule: validation = the central bins) and :func:`random_split` assign
  every sample to ``TRAIN`` / ``VAL`` / ``TEST`` (an int8 code array, see :class:`Split`).
* ``validate(θ)`` raises ``ValueError`` naming the parameter, the value and the bounds.
* ``describe()`` is a human-readable table; ``to_dict()`` / ``from_dict()`` are JSON-able.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from pnp.checks import check_int
from pnp.store.codes import SPLIT_NAMES, Split  # noqa: F401 - re-exported

SCALES = ("linear", "log")
#: the split codes (defined once, in :mod:`pnp.store.codes`)
TRAIN, VAL, TEST = Split.TRAIN, Split.VAL, Split.TEST


def _finite_float(value: Any, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return out


@dataclass(frozen=True)
class Parameter:
    """One synthesis parameter.

    Parameters
    ----------
    name : str
        Identifier (non-empty, unique within a space).
    lo, hi : float
        Closed bounds in physical units, ``lo < hi``; ``lo > 0`` for a log-scaled parameter.
    scale : {"linear", "log"}
        Spacing of grids / bins and of the normalisation (``log`` = base-10 logarithm).
    unit : str
        Physical unit, for display ("" for dimensionless).
    description : str
        One-line human description, for display.
    """

    name: str
    lo: float
    hi: float
    scale: str = "linear"
    unit: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"parameter name must be a non-empty string, got {self.name!r}")
        lo = _finite_float(self.lo, f"parameter {self.name!r}: lower bound")
        hi = _finite_float(self.hi, f"parameter {self.name!r}: upper bound")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)
        if self.scale not in SCALES:
            raise ValueError(
                f"parameter {self.name!r}: unknown scale {self.scale!r}; expected one of {SCALES}"
            )
        if not lo < hi:
            raise ValueError(f"parameter {self.name!r}: lower bound {lo!r} must be < upper bound {hi!r}")
        if self.scale == "log" and not lo > 0:
            raise ValueError(
                f"parameter {self.name!r}: a log-scaled parameter needs lower bound > 0, got {lo!r}"
            )

    # ------------------------------------------------------------- scale space
    @property
    def is_log(self) -> bool:
        return self.scale == "log"

    @property
    def s_lo(self) -> float:
        """Lower bound in scale space (``log10 lo`` for a log parameter)."""
        return math.log10(self.lo) if self.is_log else self.lo

    @property
    def s_hi(self) -> float:
        """Upper bound in scale space (``log10 hi`` for a log parameter)."""
        return math.log10(self.hi) if self.is_log else self.hi

    def bounds_str(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"[{self.lo:.6g}, {self.hi:.6g}]{unit}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "lo": self.lo,
            "hi": self.hi,
            "scale": self.scale,
            "unit": self.unit,
            "description": self.description,
        }


@dataclass
class Samples:
    """A set of parameter vectors with their integer bin coordinates.

    Attributes
    ----------
    theta : np.ndarray, (S, P) float64
        Parameter values in physical units.
    bins : np.ndarray, (S, P) int32
        Bin index of every value, ``0 <= bins[:, i] < counts[i]`` (for a regular grid: the
        grid index).
    counts : tuple of int, length P
        Number of bins per parameter.
    """

    theta: np.ndarray
    bins: np.ndarray
    counts: tuple[int, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return int(self.theta.shape[0])


class ParameterSpace:
    """An ordered set of :class:`Parameter` s describing a synthesizer's θ (see module docs).

    Parameters
    ----------
    parameters : sequence of Parameter (or dicts with Parameter's fields)
    name : str, optional
        Display name (e.g. the synth's name).
    """

    def __init__(self, parameters: Iterable[Parameter | dict], name: str = ""):
        params = []
        for p in parameters:
            if isinstance(p, dict):
                try:
                    p = Parameter(**p)
                except TypeError as err:
                    raise ValueError(f"bad parameter description {p!r}: {err}") from None
            if not isinstance(p, Parameter):
                raise ValueError(f"expected a Parameter or a dict, got {type(p).__name__}")
            params.append(p)
        if not params:
            raise ValueError("a ParameterSpace needs at least one parameter")
        names = [p.name for p in params]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate parameter names: {dup}")
        self.parameters: tuple[Parameter, ...] = tuple(params)
        self.name = str(name)

    # ----------------------------------------------------------------- basics
    def __len__(self) -> int:
        return len(self.parameters)

    def __iter__(self):
        return iter(self.parameters)

    def __getitem__(self, key: int | str) -> Parameter:
        if isinstance(key, str):
            return self.parameters[self.index(key)]
        return self.parameters[key]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParameterSpace) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        inner = ", ".join(f"{p.name}∈{p.bounds_str()} ({p.scale})" for p in self.parameters)
        return f"ParameterSpace({self.name!r}: {inner})"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    @property
    def dim(self) -> int:
        """Number of parameters P."""
        return len(self.parameters)

    def index(self, name: str) -> int:
        for i, p in enumerate(self.parameters):
            if p.name == name:
                return i
        raise ValueError(f"unknown parameter {name!r}; expected one of {self.names}")

    @property
    def lo(self) -> np.ndarray:
        """Lower bounds, (P,) float64, physical units."""
        return np.array([p.lo for p in self.parameters], dtype=np.float64)

    @property
    def hi(self) -> np.ndarray:
        """Upper bounds, (P,) float64, physical units."""
        return np.array([p.hi for p in self.parameters], dtype=np.float64)

    # --------------------------------------------------------- normalisation
    @staticmethod
    def _as_tensor(x: Any) -> tuple[torch.Tensor, bool]:
        """(tensor, was_numpy). Non-tensors become float64 tensors."""
        if isinstance(x, torch.Tensor):
            return x, False
        try:
            arr = np.array(x, dtype=np.float64)  # a writable copy
        except (TypeError, ValueError):
            raise ValueError(f"expected numbers, got {x!r}") from None
        return torch.from_numpy(arr), True

    def _check_last_dim(self, x: torch.Tensor, what: str) -> None:
        if x.dim() < 1 or x.shape[-1] != self.dim:
            raise ValueError(
                f"{what} must have shape (..., {self.dim}) for parameters {self.names}, "
                f"got shape {tuple(x.shape)}"
            )

    def to_scale(self, theta: Any) -> Any:
        """``s(θ)``: log10 for log-scaled parameters, identity otherwise. Shape (..., P)."""
        x, was_np = self._as_tensor(theta)
        self._check_last_dim(x, "theta")
        cols = [torch.log10(x[..., i]) if p.is_log else x[..., i] for i, p in enumerate(self.parameters)]
        out = torch.stack(cols, dim=-1)
        return out.numpy() if was_np else out

    def from_scale(self, z: Any) -> Any:
        """Inverse of :meth:`to_scale`: ``10**z`` for log-scaled parameters. Shape (..., P)."""
        x, was_np = self._as_tensor(z)
        self._check_last_dim(x, "z")
        cols = [torch.pow(10.0, x[..., i]) if p.is_log else x[..., i] for i, p in enumerate(self.parameters)]
        out = torch.stack(cols, dim=-1)
        return out.numpy() if was_np else out

    def normalize(self, theta: Any) -> Any:
        """Physical ``θ`` (..., P) → ``ν`` (..., P) with ``ν ∈ [-1, 1]`` inside the bounds.

        ``ν_i = 2 (s(θ_i) - s(lo_i)) / (s(hi_i) - s(lo_i)) - 1``.  Differentiable; follows the
        input's dtype/device (torch) or returns float64 numpy for non-tensor input.  No
        validation (values outside the bounds map outside [-1, 1]).
        """
        x, was_np = self._as_tensor(theta)
        self._check_last_dim(x, "theta")
        cols = []
        for i, p in enumerate(self.parameters):
            z = torch.log10(x[..., i]) if p.is_log else x[..., i]
            cols.append((z - p.s_lo) * (2.0 / (p.s_hi - p.s_lo)) - 1.0)
        out = torch.stack(cols, dim=-1)
        return out.numpy() if was_np else out

    def denormalize(self, nu: Any) -> Any:
        """``ν`` (..., P) → physical ``θ`` (..., P); the inverse of :meth:`normalize`."""
        x, was_np = self._as_tensor(nu)
        self._check_last_dim(x, "nu")
        cols = []
        for i, p in enumerate(self.parameters):
            z = (x[..., i] + 1.0) * (0.5 * (p.s_hi - p.s_lo)) + p.s_lo
            cols.append(torch.pow(10.0, z) if p.is_log else z)
        out = torch.stack(cols, dim=-1)
        return out.numpy() if was_np else out

    # ------------------------------------------------------------- validation
    def tolerance(self, dtype: torch.dtype | np.dtype | None = None) -> np.ndarray:
        """Per-parameter absolute slack (P,) accepted beyond the bounds (float round-off).

        ``8 eps(dtype) max(|lo|, |hi|) + 1e-12 (hi - lo)``; ``eps`` of float64 by default.
        """
        if dtype is None:
            eps = float(np.finfo(np.float64).eps)
        elif isinstance(dtype, torch.dtype):
            eps = float(torch.finfo(dtype).eps) if dtype.is_floating_point else float(np.finfo(np.float64).eps)
        else:
            dt = np.dtype(dtype)
            eps = float(np.finfo(dt).eps) if dt.kind == "f" else float(np.finfo(np.float64).eps)
        mag = np.maximum(np.abs(self.lo), np.abs(self.hi))
        return 8.0 * eps * mag + 1e-12 * (self.hi - self.lo)

    def validate(self, theta: Any) -> None:
        """Raise ``ValueError`` unless ``theta`` is a (P,) or (B, P) array of finite in-bound values.

        The message names the offending parameter, its value, its bounds (and the row for
        batched input).  A tolerance of a few ulps (see :meth:`tolerance`) is accepted at the
        bounds.  Works for torch tensors (any dtype/device; one host sync) and array-likes.
        Not for use inside ``torch.func`` transforms (it reads values).
        """
        if isinstance(theta, torch.Tensor):
            if theta.dim() not in (1, 2) or theta.shape[-1] != self.dim:
                raise ValueError(self._shape_msg(theta.shape))
            if not (theta.is_floating_point() or theta.dtype in (torch.int32, torch.int64)):
                raise ValueError(f"theta must be a real floating-point tensor, got dtype {theta.dtype}")
            tol = self.tolerance(theta.dtype)
            arr = theta.detach().to("cpu", torch.float64).numpy()
        else:
            try:
                arr = np.asarray(theta, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"theta must be numeric, got {theta!r}") from None
            if arr.ndim not in (1, 2) or arr.shape[-1] != self.dim:
                raise ValueError(self._shape_msg(arr.shape))
            tol = self.tolerance(getattr(theta, "dtype", None) if isinstance(theta, np.ndarray) else None)
        batched = arr.ndim == 2
        a2 = arr.reshape(-1, self.dim)
        finite = np.isfinite(a2)
        with np.errstate(invalid="ignore"):
            inside = (a2 >= self.lo - tol) & (a2 <= self.hi + tol)
        ok = finite & inside
        if ok.all():
            return
        row, col = np.argwhere(~ok)[0]
        p = self.parameters[col]
        value = float(a2[row, col])
        where = f" (row {row} of the batch)" if batched else ""
        if not finite[row, col]:
            raise ValueError(
                f"parameter {p.name!r} (index {col}) = {value!r} is not finite{where}; "
                f"bounds {p.bounds_str()}"
            )
        raise ValueError(
            f"parameter {p.name!r} (index {col}) = {value:.9g} is outside its bounds "
            f"{p.bounds_str()}{where}"
        )

    def _shape_msg(self, shape) -> str:
        return (
            f"theta must have shape ({self.dim},) or (B, {self.dim}) for parameters "
            f"({', '.join(self.names)}), got shape {tuple(shape)}"
        )

    def contains(self, theta: Any) -> np.ndarray:
        """Boolean mask (...,) of rows that are finite and inside the bounds (with tolerance)."""
        arr = np.asarray(theta.detach().cpu() if isinstance(theta, torch.Tensor) else theta, dtype=np.float64)
        if arr.ndim < 1 or arr.shape[-1] != self.dim:
            raise ValueError(self._shape_msg(arr.shape))
        tol = self.tolerance()
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(arr) & (arr >= self.lo - tol) & (arr <= self.hi + tol)
        return ok.all(axis=-1)

    # ---------------------------------------------------------------- sampling
    def _counts(self, counts: int | Sequence[int]) -> tuple[int, ...]:
        if isinstance(counts, (int, np.integer)):
            counts = [int(counts)] * self.dim
        counts = list(counts)
        if len(counts) != self.dim:
            raise ValueError(f"counts must have {self.dim} entries (one per parameter), got {len(counts)}")
        out = []
        for p, c in zip(self.parameters, counts):
            if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1:
                raise ValueError(f"count for parameter {p.name!r} must be an integer >= 1, got {c!r}")
            out.append(int(c))
        return tuple(out)

    def _z_to_theta(self, z: np.ndarray) -> np.ndarray:
        """Scale space (S, P) → physical (S, P), clipped into the bounds (round-off of 10**z)."""
        theta = np.empty_like(z)
        for i, p in enumerate(self.parameters):
            col = np.power(10.0, z[:, i]) if p.is_log else z[:, i]
            theta[:, i] = np.clip(col, p.lo, p.hi)
        return theta

    def _s_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.array([p.s_lo for p in self.parameters]),
            np.array([p.s_hi for p in self.parameters]),
        )

    @staticmethod
    def _full_bins(counts: tuple[int, ...]) -> np.ndarray:
        """All bin coordinates of the grid, (prod(counts), P) int32, first parameter slowest."""
        return np.indices(counts, dtype=np.int32).reshape(len(counts), -1).T.copy()

    def grid(self, counts: int | Sequence[int], centers: bool = False) -> Samples:
        """Regular grid: ``counts[i]`` values per parameter, evenly spaced in scale space.

        ``centers=False`` puts the values on ``linspace(s(lo), s(hi), counts)`` (bounds included;
        a count of 1 gives the midpoint); ``centers=True`` puts them at the centres of
        ``counts`` equal bins.  The Cartesian product is ordered with the first parameter
        slowest; ``bins`` is the grid index.  S = prod(counts).
        """
        counts = self._counts(counts)
        bins = self._full_bins(counts)
        a, b = self._s_bounds()
        c = np.asarray(counts, dtype=np.float64)
        if centers:
            frac = (bins + 0.5) / c
        else:
            denom = np.maximum(c - 1.0, 1.0)
            frac = np.where(c > 1, bins / denom, 0.5)
        z = a + frac * (b - a)
        return Samples(self._z_to_theta(z), bins, counts)

    def jittered_grid(self, counts: int | Sequence[int], seed: int = 0) -> Samples:
        """PNP's jittered grid: one sample per cell of a ``counts`` grid of equal bins.

        Every parameter's range is cut into ``counts[i]`` equal bins in scale space; each cell
        of the Cartesian product (first parameter slowest) gives one θ whose i-th value is
        uniform inside bin ``bins[:, i]`` (uniform in scale space, i.e. log-uniform for a log
        parameter).  Reproducible from ``seed`` (numpy ``default_rng``).  S = prod(counts).
        """
        counts = self._counts(counts)
        bins = self._full_bins(counts)
        rng = np.random.default_rng(seed)
        u = rng.random(bins.shape)
        a, b = self._s_bounds()
        z = a + (bins + u) / np.asarray(counts, dtype=np.float64) * (b - a)
        return Samples(self._z_to_theta(z), bins, counts)

    def uniform(self, n: int, seed: int = 0, counts: int | Sequence[int] = 10) -> Samples:
        """``n`` i.i.d. samples, uniform in scale space (log-uniform for log parameters).

        ``bins`` are the indices of the ``counts`` equal bins (scale space) the values fall in.
        """
        check_int(n, "n", 0)
        counts = self._counts(counts)
        rng = np.random.default_rng(seed)
        a, b = self._s_bounds()
        z = a + rng.random((int(n), self.dim)) * (b - a)
        theta = self._z_to_theta(z)
        return Samples(theta, self.bin_index(theta, counts), counts)

    def bin_index(self, theta: Any, counts: int | Sequence[int] = 10) -> np.ndarray:
        """Bin coordinates (S, P) int32 of θ (S, P) for ``counts`` equal bins in scale space.

        Values at the upper bound belong to the last bin.  θ is validated first.
        """
        counts = self._counts(counts)
        arr = np.asarray(theta.detach().cpu() if isinstance(theta, torch.Tensor) else theta, dtype=np.float64)
        self.validate(arr)
        arr = np.clip(arr.reshape(-1, self.dim), self.lo, self.hi)
        z = self.to_scale(arr)
        a, b = self._s_bounds()
        c = np.asarray(counts)
        idx = np.floor((z - a) / (b - a) * c).astype(np.int64)
        return np.clip(idx, 0, c - 1).astype(np.int32)

    # ---------------------------------------------------------------- display
    def describe(self) -> str:
        """Human-readable table of the parameters (index, name, unit, scale, bounds, meaning)."""
        header = ("#", "name", "unit", "scale", "lower", "upper", "description")
        rows = [
            (str(i), p.name, p.unit or "-", p.scale, f"{p.lo:.6g}", f"{p.hi:.6g}", p.description)
            for i, p in enumerate(self.parameters)
        ]
        widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
        fmt = lambda r: "  ".join(s.ljust(w) for s, w in zip(r, widths)).rstrip()  # noqa: E731
        title = f"parameter space{' ' + repr(self.name) if self.name else ''}: {self.dim} parameters"
        lines = [title, fmt(header), fmt(tuple("-" * w for w in widths)), *map(fmt, rows)]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description; :meth:`from_dict` rebuilds an equal space."""
        return {"name": self.name, "parameters": [p.to_dict() for p in self.parameters]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ParameterSpace":
        if not isinstance(d, dict) or "parameters" not in d:
            raise ValueError("expected a dict with a 'parameters' list (from ParameterSpace.to_dict())")
        return cls(d["parameters"], name=d.get("name", ""))


# --------------------------------------------------------------------------- splits
def _bins_of(samples_or_bins: Samples | np.ndarray) -> np.ndarray:
    bins = samples_or_bins.bins if isinstance(samples_or_bins, Samples) else samples_or_bins
    bins = np.asarray(bins)
    if bins.ndim != 2 or not np.issubdtype(bins.dtype, np.integer):
        raise ValueError(f"bins must be an integer array of shape (S, P), got {bins.dtype} {bins.shape}")
    return bins


def pnp_split(
    samples_or_bins: Samples | np.ndarray,
    n_test: int,
    val_bins: tuple[int, int] | Sequence[tuple[int, int]] = (2, 7),
    seed: int = 0,
) -> np.ndarray:
    """PNP's split rule → int8 codes (S,) (0 train, 1 val, 2 test; see :class:`Split`).

    Validation = the samples whose bins are *all* inside ``val_bins = (lo, hi)`` (inclusive;
    one pair for every parameter, or one pair per parameter) — the centre of the space.
    Test = a random subset (``seed``) of ``n_test`` of the remaining samples; train = the rest.
    On a full 10^P jittered grid with ``val_bins=(2, 7)`` the validation fold has 6^P samples.
    """
    bins = _bins_of(samples_or_bins)
    S, P = bins.shape
    vb = np.asarray(val_bins)
    if vb.shape == (2,):
        vb = np.tile(vb, (P, 1))
    if vb.shape != (P, 2) or not np.issubdtype(vb.dtype, np.integer) or np.any(vb[:, 0] > vb[:, 1]):
        raise ValueError(
            f"val_bins must be a pair (lo, hi) of integers with lo <= hi, or {P} such pairs; got {val_bins!r}"
        )
    is_val = np.all((bins >= vb[:, 0]) & (bins <= vb[:, 1]), axis=1)
    rest = np.flatnonzero(~is_val)
    if isinstance(n_test, bool) or not isinstance(n_test, (int, np.integer)) or not 0 <= n_test <= rest.size:
        raise ValueError(f"n_test must be an integer in [0, {rest.size}] (samples outside val), got {n_test!r}")
    codes = np.full(S, Split.TRAIN, dtype=np.int8)
    codes[is_val] = Split.VAL
    rng = np.random.default_rng(seed)
    codes[rng.choice(rest, size=int(n_test), replace=False)] = Split.TEST
    return codes


def random_split(n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> np.ndarray:
    """Plain random split of ``n`` samples → int8 codes (n,) (0 train, 1 val, 2 test).

    ``fractions = (train, val, test)`` must be >= 0 and sum to 1; fold sizes are
    ``round(n * f)`` for val and test, train takes the remainder.  Reproducible from ``seed``.
    """
    check_int(n, "n", 0)
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or np.any(~np.isfinite(f)) or np.any(f < 0) or abs(f.sum() - 1.0) > 1e-9:
        raise ValueError(f"fractions must be 3 non-negative numbers (train, val, test) summing to 1, got {fractions!r}")
    n_val, n_test = int(round(n * f[1])), int(round(n * f[2]))
    n_val = min(n_val, n)
    n_test = min(n_test, n - n_val)
    perm = np.random.default_rng(seed).permutation(int(n))
    codes = np.full(int(n), Split.TRAIN, dtype=np.int8)
    codes[perm[:n_val]] = Split.VAL
    codes[perm[n_val : n_val + n_test]] = Split.TEST
    return codes
