"""The static execution plan of the joint time-frequency scattering.

Everything that depends only on the configuration (not on the signal) is computed once here in
NumPy float64: which filter meets which resolution, the Fourier-support windows of every filter,
the frequential convolution matrices, the output channel list and its ``meta()``.

Two kinds of operators make up the whole transform:

* :class:`WindowedFilter` -- "multiply in the Fourier domain, then subsample by ``2**k``".
  Subsampling in time is periodization in frequency, so only the bins where the filter is
  non-negligible (``|h| > eps * max|h|``) are gathered, multiplied, folded onto the output
  length and inverse-FFT'd. Windows are aligned on multiples of the output length, so the
  gather copies whole blocks of ``L_out`` bins and the fold is a reshape + sum. With ``eps = 0`` this is exactly kymatio's ``cdgmm`` + ``subsample_fourier``
  + ``ifft``; the default ``eps`` drops only filter taps below ``eps`` of the peak.
* dense matrices along the log-frequency axis ``n1``: a zero-padded circular convolution of
  length ``N_fr`` followed by subsampling is ``W[m, n1] = h[(m 2**k - n1) mod N_fr]``, so
  frequential scattering, frequential averaging and frequential unpadding are matrix products.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from kymatio.scattering1d.filter_bank import gauss_1d

from pnp.scattering.jtfs.filter_bank import (
    SIGMA0,
    Filter,
    compute_border_indices,
    compute_padding,
    compute_temporal_support,
    frequential_filter_bank,
    level,
    time_filter_bank,
)

#: default relative threshold below which filter taps are skipped (see module docstring)
DEFAULT_EPS = 1e-5
#: spin pairs are formed when the down-spin weights are the up-spin's conjugates within
#: ``PAIR_TOL_EPS * eps`` of the largest weight (see :meth:`FrequencyStage.pair_spins`)
PAIR_TOL_EPS = 10


def fourier_window(h: np.ndarray, L_out: int, eps: float) -> tuple[int, int]:
    """Smallest circular window ``[start, start + width)`` of bins of ``h`` holding every
    ``|h| > eps * max|h|``, with ``start`` a multiple of ``L_out`` and ``width`` a multiple of
    ``L_out`` no larger than ``len(h)``. Returns ``(start, width)``."""
    L_in = h.shape[0]
    mag = np.abs(h)
    above = np.flatnonzero(mag > eps * mag.max()) if eps > 0 else np.arange(L_in)
    if above.size == 0 or above.size == L_in:
        return 0, L_in
    gaps = np.diff(np.concatenate([above, above[:1] + L_in]))
    i = int(np.argmax(gaps))
    start = int(above[(i + 1) % above.size])
    length = L_in - int(gaps[i]) + 1
    start_aligned = (start // L_out) * L_out
    width = int(math.ceil((start - start_aligned + length) / L_out)) * L_out
    if width >= L_in:
        return 0, L_in
    return start_aligned, width


@dataclass
class WindowedFilter:
    """Filter + subsample a stack of spectra: ``(B, C, L_in) -> (B, P, L_out)``.

    Each spectrum is seen as ``L_in / L_out`` blocks of ``L_out`` bins. Output ``p`` gathers the
    ``nb`` consecutive blocks (circularly) of its window in channel ``rows[p]``, multiplies
    them by its taps, sums the blocks (periodization onto ``L_out`` bins = subsampling by
    ``L_in / L_out`` in time) and inverse-FFTs (real part if ``real``).

    ``blocks`` (P, nb) int64 indexes blocks of the flattened ``(B, C * L_in / L_out, L_out)``
    input, i.e. ``rows[p] * L_in / L_out + block``; ``taps`` (P, nb, L_out) complex, with the
    ``L_out / L_in`` factor of the periodization folded in. ``shared``: one filter for every
    channel (``blocks`` (nb,), ``taps`` (nb, L_out), P = C). ``whole``: the windows are the
    whole spectrum of channel 0 (shared: of every channel), so no gather is needed.
    """

    L_in: int
    L_out: int
    blocks: np.ndarray
    taps: np.ndarray
    real: bool
    shared: bool = False
    whole: bool = False

    @classmethod
    def build(cls, rows, filters, L_in: int, L_out: int, eps: float, real: bool) -> "WindowedFilter":
        windows = [fourier_window(h, L_out, eps) for h in filters]
        width = max(w for _, w in windows)
        n_blocks, nb = L_in // L_out, width // L_out
        rows = np.asarray(rows, dtype=np.int64)
        first = np.array([s // L_out for s, _ in windows], dtype=np.int64)
        blocks = (first[:, None] + np.arange(nb)) % n_blocks + rows[:, None] * n_blocks
        bins = np.stack([(s + np.arange(width)) % L_in for s, _ in windows])
        taps = np.stack([h[b] for h, b in zip(filters, bins)]).astype(np.complex128) * (L_out / L_in)
        whole = nb == n_blocks and bool(np.all(first == 0)) and bool(np.all(rows == 0))
        return cls(L_in, L_out, blocks, taps.reshape(len(filters), nb, L_out), real, whole=whole)

    @classmethod
    def build_shared(cls, h: np.ndarray, L_in: int, L_out: int, eps: float, real: bool) -> "WindowedFilter":
        """One filter applied to every channel."""
        start, width = fourier_window(h, L_out, eps)
        n_blocks, nb = L_in // L_out, width // L_out
        blocks = (start // L_out + np.arange(nb)) % n_blocks
        bins = (start + np.arange(width)) % L_in
        taps = (h[bins].astype(np.complex128) * (L_out / L_in)).reshape(nb, L_out)
        return cls(L_in, L_out, blocks.astype(np.int64), taps, real, shared=True, whole=nb == n_blocks and start == 0)


def conv_matrix(h_time: np.ndarray, n_rows: int, stride: int, n_cols: int) -> np.ndarray:
    """``W[m, n] = h[(m * stride - n) mod len(h)]``: circular convolution then subsampling."""
    N = h_time.shape[0]
    m = np.arange(n_rows)[:, None] * stride
    n = np.arange(n_cols)[None, :]
    return h_time[(m - n) % N]


@dataclass
class FrequencyStage:
    """Frequential scattering of one stack ``(B, n1, t)`` and everything after its modulus.

    ``W`` (R, n1) complex: all frequential wavelets stacked (rows grouped by ``n_fr`` until
    :meth:`pair_spins` reorders them);
    ``average`` (R_out, R) real: frequential averaging, unpadding and channel selection.
    ``row_psi``/``row_pos`` (R,): the wavelet (index into the stage's filter list) and the
    subsampled frequential position of each row. After :meth:`pair_spins`, the rows are ordered
    ``[n_real real rows | n_pairs up-spin rows | their n_pairs down-spin mirrors | the rest]``
    (``average``'s columns follow), which lets the fused stage compute each spin pair from one
    real product (see :func:`~.modulus.matmul_modulus_sum`).
    """

    W: np.ndarray
    average: np.ndarray
    n_paths: int
    row_psi: np.ndarray
    row_pos: np.ndarray
    n_real: int = 0
    n_pairs: int = 0

    def crop_rows(self, eps: float) -> "FrequencyStage":
        """Drop the rows of ``W`` that no output reads (all-zero column of ``average``: rows that
        frequential unpadding discards, e.g. with ``F=0``; exact) and, if ``eps > 0``, the rows
        whose influence on every output is negligible: row ``r`` goes when
        ``max_k |W[r, k]| / max|W|`` times ``max_o |A[o, r]| / max_r' |A[o, r']|`` is at most
        ``eps`` (``A = average``). The second factor is the row's weight in the frequential
        average of an output relative to that output's largest weight: rows far outside the
        ``n1`` range of the input (where a wide frequential wavelet has only its tails) reach
        the outputs only through the far tails of the averaging Gaussian. With ``F=2`` this
        drops 20-31 % of the rows of the small second-order stages of the PNP configuration."""
        A = np.abs(self.average)
        keep = A.max(axis=0) > 0
        if eps > 0:
            mag = np.abs(self.W).max(axis=1)
            output_peak = A.max(axis=1, keepdims=True)
            weight = (A / np.where(output_peak > 0, output_peak, 1)).max(axis=0)
            keep &= mag / mag.max() * weight > eps
        return FrequencyStage(
            self.W[keep], self.average[:, keep], self.n_paths, self.row_psi[keep], self.row_pos[keep]
        )

    def pair_spins(self, psis: list[Filter], tol: float) -> "FrequencyStage":
        """Reorder the rows as ``[real | up | down | rest]`` (see the class docstring).

        A row is *real* if its wavelet has ``xi = 0`` and every imaginary part is within
        ``tol * max|W|`` of 0 (they are then set to 0). An up-spin row (``xi > 0``) and the
        down-spin row of the mirrored wavelet (``-xi``, same width) at the same position form a
        *pair* if the down row equals the conjugate of the up row within ``tol * max|W|`` (it
        is then set to exactly that conjugate: kymatio's mirrored Morlets differ from the
        conjugates only by their periodisation, below 2e-5 of the peak). ``tol = 0`` changes
        nothing but the order of the rows.
        """
        W, R = self.W.copy(), self.W.shape[0]
        bound = tol * np.abs(W).max() if R else 0.0
        where = {(int(p), int(m)): r for r, (p, m) in enumerate(zip(self.row_psi, self.row_pos))}
        mirror: dict[int, int] = {}
        k: int | None
        for i, a in enumerate(psis):
            for k, b in enumerate(psis):
                if a.xi > 0 and b.xi == -a.xi and b.sigma == a.sigma:
                    mirror[i] = k
        real = [r for r in range(R) if psis[self.row_psi[r]].xi == 0 and np.abs(W[r].imag).max() <= bound]
        up, down = [], []
        for r in range(R):
            k = mirror.get(int(self.row_psi[r]))
            d = where.get((k, int(self.row_pos[r]))) if k is not None else None
            if d is not None and np.abs(W[d] - W[r].conj()).max() <= bound:
                up.append(r)
                down.append(d)
        W[real] = W[real].real
        W[down] = W[up].conj()
        taken = set(real) | set(up) | set(down)
        order = np.array(real + up + down + [r for r in range(R) if r not in taken], dtype=np.int64)
        return FrequencyStage(
            W[order], self.average[:, order], self.n_paths, self.row_psi[order], self.row_pos[order], len(real), len(up)
        )


@dataclass
class SecondOrderGroup:
    """All (n1, n2) pairs whose ``U1`` sits at resolution ``k1`` and whose ``Y2`` is
    subsampled further by ``k2``: one :class:`WindowedFilter` over the ``U1`` group ``k1``."""

    k1: int
    k2: int
    pairs: list[tuple[int, int]]
    op: WindowedFilter


@dataclass
class Plan:
    """Everything :func:`pnp.scattering.jtfs.core.scatter_blocks` needs besides the signal.

    The outputs come as *blocks* ``(B, R, t)``: the zeroth order (if ``with_zeroth``), the first
    order, then one block per ``n2`` of :attr:`n2_list`. ``block_rows[b]`` lists the rows of each
    output path of block ``b`` (format 'time': one row per channel; 'joint': the path's
    frequential rows), in output order, one path per row of :attr:`meta`.
    """

    N: int
    N_padded: int
    pad_left: int
    pad_right: int
    average: str | bool  # 'local', 'global', or False (T=0: no time averaging)
    average_fr: str | bool
    format: str
    paths: bool  # outputs per path (out_type 'list' / 'dict', see build_plan)
    t_start: int  # first-order (and zeroth-order, local) time window [t_start, t_end)
    t_end: int
    zeroth: WindowedFilter | None
    first: dict[int, WindowedFilter]  # k1 -> psi1 group on X_hat
    first_n1: dict[int, list[int]]  # k1 -> n1 indices, in order
    lowpass1: dict[int, WindowedFilter]  # k1 -> phi on U1_hat group
    stage1: FrequencyStage
    second: list[SecondOrderGroup]
    n2_list: list[int]
    n2_res: dict[int, int]  # n2 -> log2 time resolution of its Y2 (k1 + k2 of all its groups)
    n2_pairs: dict[int, np.ndarray]  # n2 -> positions in the concatenated group outputs
    n2_window: dict[int, tuple[int, int]]  # n2 -> time window of its outputs (T=0: at resolution j2)
    lowpass2: dict[int, WindowedFilter]  # n2 -> time averaging (local) of |Y2_fr|
    stage2: dict[int, FrequencyStage]
    with_zeroth: bool
    block_rows: list[tuple[int, ...]]
    n_channels: int
    n_rows_joint: int
    meta: dict[str, np.ndarray] = field(repr=False)

    @property
    def stackable(self) -> bool:
        """Whether the outputs form one array: every path has the same time length (not T=0)
        and, in format 'joint', the same frequential rows (the padded ones of out_type 'array')."""
        return self.average is not False and (self.format == "time" or not self.paths)


def _padding(N: int, T: float):
    """kymatio 0.4's time padding: ``(N_padded, pad_left, pad_right)``."""
    phi_f = gauss_1d(N, SIGMA0 / T)
    min_to_pad = 3 * compute_temporal_support(phi_f.reshape(1, -1), criterion_amplitude=1e-3)
    J_max_support = int(np.floor(np.log2(3 * N - 2)))
    J_pad = min(int(np.ceil(np.log2(N + 2 * min_to_pad))), J_max_support)
    N_padded = 2**J_pad
    pad_left, pad_right = compute_padding(N_padded, N)
    return N_padded, pad_left, pad_right


def _frequential_padding(N_input_fr: int, J_fr: int, F) -> int:
    """kymatio 0.4's padded length of the log-frequency axis: ``N_input_fr`` plus at least
    ``8 min(F, 2**J_fr)`` rows, rounded down to a multiple of ``2**J_fr``."""
    min_to_pad_fr = 8 * min(F, 2**J_fr)
    return (N_input_fr + min_to_pad_fr) // 2**J_fr * 2**J_fr


def _frequential_average(psi: Filter, phi_F: Filter, k_fr: int, R_in: int, s_fr: int, n1_max: int, average_fr):
    """Frequential averaging of one path (``A`` (R_out, R_in)) and its ``n1`` stride."""
    if psi.spin != 0 and average_fr == "local":
        g = np.fft.ifft(level(phi_F.hat, k_fr)).real
        step = 2 ** (s_fr - k_fr)
        return conv_matrix(g, R_in // step, step, R_in), 2**s_fr
    if psi.spin != 0 and average_fr == "global":
        return np.ones((1, R_in)), n1_max
    # spin 0 (already a low-pass of width 2**J_fr), or no frequential averaging
    return np.eye(R_in), 2 ** max(psi.j, 0)


def _kept_rows(fmt: str, joint_rows: int | None, n_fr: int, A: np.ndarray, n1_max: int, n1_stride: int):
    """Frequential unpadding of one path: the rows kept and the output paths they form.

    Format 'time': one channel per ``n1`` in ``range(0, n1_max, n1_stride)``. Format 'joint':
    one path of ``joint_rows`` rows (out_type 'array': every padded row, the same for all paths)
    or, with ``joint_rows=None`` (out_type 'list' / 'dict'), of kymatio 0.4's unpadded
    ``1 + n1_max // n1_stride`` rows (at most the rows there are)."""
    if fmt == "time":
        keep = len(range(0, n1_max, n1_stride))
        return keep, [dict(n_fr=n_fr, n1=i * n1_stride, rows=1) for i in range(keep)]
    if joint_rows is None:
        keep = min(1 + n1_max // n1_stride, A.shape[0])
    elif A.shape[0] != joint_rows:
        raise ValueError(
            "format='joint' needs every path to have the same number of frequential "
            f"rows; this configuration gives {A.shape[0]} and {joint_rows}. Use "
            "format='time', or stride_fr <= 2**J_fr with local F."
        )
    else:
        keep = joint_rows
    return keep, [dict(n_fr=n_fr, n1=None, rows=keep)]


def _frequency_stage(
    psis: list[Filter],
    phi_F: Filter,
    N_fr: int,
    n1_max: int,
    s_fr: int,
    average_fr,
    fmt: str,
    joint_rows: int | None,
) -> tuple[FrequencyStage, list[dict]]:
    """Matrices of one frequential scattering + averaging + unpadding, and per-path info."""
    blocks_W, blocks_A, channels, row_psi, row_pos = [], [], [], [], []
    for n_fr, psi in enumerate(psis):
        k_fr = min(psi.j, s_fr) if average_fr == "local" else psi.j
        R_in = N_fr // 2**k_fr
        blocks_W.append(conv_matrix(np.fft.ifft(psi.hat), R_in, 2**k_fr, n1_max))
        row_psi.append(np.full(R_in, n_fr, dtype=np.int64))
        row_pos.append(np.arange(R_in, dtype=np.int64))
        A, n1_stride = _frequential_average(psi, phi_F, k_fr, R_in, s_fr, n1_max, average_fr)
        keep, paths = _kept_rows(fmt, joint_rows, n_fr, A, n1_max, n1_stride)
        blocks_A.append(A[:keep])
        channels += paths
    W = np.concatenate(blocks_W, axis=0)
    A_total = np.zeros((sum(a.shape[0] for a in blocks_A), W.shape[0]))
    r0 = c0 = 0
    for a in blocks_A:
        A_total[r0 : r0 + a.shape[0], c0 : c0 + a.shape[1]] = a
        r0 += a.shape[0]
        c0 += a.shape[1]
    stage = FrequencyStage(W, A_total, len(psis), np.concatenate(row_psi), np.concatenate(row_pos))
    return stage, channels


def _cropped(stage_and_channels, psis, eps):
    """Crop negligible or unread rows, then pair the spins (tolerance ``PAIR_TOL_EPS * eps``)."""
    stage, channels = stage_and_channels
    return stage.crop_rows(eps).pair_spins(psis, PAIR_TOL_EPS * eps), channels


def _k_time(j: int, s: int, average) -> int:
    """log2 resolution of a wavelet output of scale ``2**j``: at most the stride ``2**s`` with
    local averaging, else the wavelet's own (kymatio 0.4's width-first rule)."""
    return min(j, s) if average == "local" else j


def _first_order(psi1: list[Filter], phi: Filter, N_padded: int, s: int, average, T, J: int, eps: float):
    """psi1 on X_hat grouped by resolution ``k1``, then phi to the stride ``2**s``:
    ``(first, first_n1, lowpass1)``, keyed by ``k1``."""
    first_n1: dict[int, list[int]] = {}
    first, lowpass1 = {}, {}
    for n1, psi in enumerate(psi1):
        first_n1.setdefault(_k_time(psi.j, s, average), []).append(n1)
    for k1, n1s in first_n1.items():
        L1 = N_padded // 2**k1
        first[k1] = WindowedFilter.build([0] * len(n1s), [psi1[n].hat for n in n1s], N_padded, L1, eps, real=False)
        if s - k1 < 0:
            raise ValueError(f"T={T} is too small for J={J}: increase T or decrease J")
        lowpass1[k1] = WindowedFilter.build_shared(level(phi.hat, k1), L1, L1 // 2 ** (s - k1), eps, real=True)
    return first, first_n1, lowpass1


def _second_order_pairs(psi1: list[Filter], psi2: list[Filter], s: int, average, T, J: int):
    """The (n1, n2) pairs with ``j1 < j2`` grouped by ``(k1, k2)``, and each n2's resolution."""
    groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
    res2: dict[int, int] = {}
    for n2, p2 in enumerate(psi2):
        for n1, p1 in enumerate(psi1):
            if p2.j > p1.j:
                k1 = _k_time(p1.j, s, average)
                k2 = min(p2.j - k1, s) if average == "local" else p2.j - k1
                if res2.setdefault(n2, k1 + k2) != k1 + k2:
                    raise ValueError(
                        f"T={T} is too small for J={J} (second-order paths of n2={n2} would sit at "
                        "different time resolutions); increase T"
                    )
                groups.setdefault((k1, k2), []).append((n1, n2))
    return groups, res2


def _second_order_groups(groups, psi2: list[Filter], first_n1, N_padded: int, eps: float) -> list[SecondOrderGroup]:
    """One :class:`WindowedFilter` of psi2 over the ``U1`` group ``k1`` per ``(k1, k2)``."""
    second = []
    for (k1, k2), pairs in groups.items():
        L1 = N_padded // 2**k1
        local = {n1: i for i, n1 in enumerate(first_n1[k1])}
        op = WindowedFilter.build(
            [local[n1] for n1, _ in pairs], [level(psi2[n2].hat, k1) for _, n2 in pairs], L1, L1 // 2**k2, eps, real=False
        )
        second.append(SecondOrderGroup(k1, k2, pairs, op))
    return second


def _n2_positions(second: list[SecondOrderGroup], res2: dict[int, int], n2: int) -> np.ndarray:
    """Positions of the (n1, n2) pairs, in n1 order, in the concatenation of the group outputs
    at n2's resolution."""
    offset, pos = 0, []
    for g in second:
        if g.k1 + g.k2 != res2[n2]:
            continue
        pos += [(n1, offset + i) for i, (n1, m2) in enumerate(g.pairs) if m2 == n2]
        offset += len(g.pairs)
    pos.sort()
    if [n1 for n1, _ in pos] != list(range(len(pos))):  # pragma: no cover - design invariant
        raise RuntimeError("second-order n1 indices are not contiguous from 0")
    return np.array([p for _, p in pos], dtype=np.int64)


def _meta(paths: list[tuple], psi1: list[Filter], psi2: list[Filter], psis_fr: list[Filter], fmt: str) -> dict:
    """kymatio 0.4's meta keys for the output paths ``(order, n1, n2, n_fr)`` (None: undefined,
    NaN in the arrays), in output order."""

    def row(order, n1, n2, n_fr):
        def of(bank, n, attr):
            return np.nan if n is None else getattr(bank[n], attr)

        return dict(
            order=order,
            n=(np.nan if n1 is None else n1, np.nan if n2 is None else n2),
            **{a: (of(psi1, n1, a), of(psi2, n2, a)) for a in ("j", "xi", "sigma")},
            n_fr=np.nan if n_fr is None else n_fr,
            **{f"{a}_fr": of(psis_fr, n_fr, a) for a in ("j", "xi", "sigma")},
            spin=of(psis_fr, n_fr, "spin"),
            # kymatio's path key: format 'time' (n1, n_fr) / (n1, n2, n_fr), () for order 0;
            # format 'joint' (n_fr,) / (n2, n_fr)
            key=tuple(int(v) for v in ((n1, n2, n_fr) if fmt == "time" else (n2, n_fr)) if v is not None),
        )

    rows = [row(*p) for p in paths]
    meta = {
        key: np.array([r[key] for r in rows], dtype=float)
        for key in ("order", "n", "j", "xi", "sigma", "n_fr", "j_fr", "xi_fr", "sigma_fr", "spin")
    }
    meta["order"] = meta["order"].astype(int)
    meta["key"] = np.empty(len(rows), dtype=object)
    meta["key"][:] = [r["key"] for r in rows]
    return meta


@dataclass(frozen=True)
class _Layout:
    """The sizes and options :func:`build_plan` shares with the per-n2 stage builder."""

    T: float
    J: int
    average: str | bool
    s: int  # log2 of the time stride
    N_padded: int
    ind_start: dict  # resolution -> first sample of the signal (kymatio's border indices)
    ind_end: dict
    N_fr: int
    s_fr: int  # log2 of the frequential stride
    average_fr: str | bool
    fmt: str
    joint_rows: int | None
    eps: float


def _second_order_stages(second, res2, psis_fr, phi, phi_F, layout: _Layout):
    """Per n2: positions of its pairs, frequential stage and paths, time window and (local)
    time averaging."""
    s, ind_start, ind_end, eps = layout.s, layout.ind_start, layout.ind_end, layout.eps
    n2_list = sorted(res2)
    n2_pairs, n2_window, lowpass2, stage2, channels2 = {}, {}, {}, {}, {}
    for n2 in n2_list:
        n2_pairs[n2] = _n2_positions(second, res2, n2)
        stage2[n2], channels2[n2] = _cropped(
            _frequency_stage(psis_fr, phi_F, layout.N_fr, len(n2_pairs[n2]), layout.s_fr, layout.average_fr,
                             layout.fmt, layout.joint_rows),
            psis_fr,
            eps,
        )
        j2 = res2[n2]
        if layout.average == "local":
            L2 = layout.N_padded // 2**j2
            if s - j2 < 0:
                raise ValueError(f"T={layout.T} is too small for J={layout.J}: increase T or decrease J")
            lowpass2[n2] = WindowedFilter.build_shared(level(phi.hat, j2), L2, L2 // 2 ** (s - j2), eps, real=True)
            n2_window[n2] = (ind_start[s], ind_end[s])
        elif layout.average == "global":
            n2_window[n2] = (0, 1)
        else:  # T=0: unpadded at the resolution 2**j2 of Y2 (kymatio 0.4)
            n2_window[n2] = (ind_start[j2], ind_end[j2])
    return n2_list, n2_pairs, n2_window, lowpass2, stage2, channels2


def _output_blocks(with_zeroth: bool, channels1: list[dict], channels2: dict[int, list[dict]], n2_list: list[int]):
    """The output paths block by block (zeroth order, first order, each n2), in output order:
    dicts with ``order, n1, n2, n_fr`` (None where undefined) and ``rows``."""
    blocks = [[dict(order=0, n1=None, n_fr=None, n2=None, rows=1)]] if with_zeroth else []
    blocks.append([{**c, "order": 1, "n2": None} for c in channels1])
    blocks += [[{**c, "order": 2, "n2": n2} for c in channels2[n2]] for n2 in n2_list]
    return blocks


def build_plan(
    *,
    N: int,
    J: int,
    Q: tuple[int, int],
    T,
    average,
    log2_stride: int,
    J_fr: int,
    Q_fr: int,
    F,
    average_fr,
    log2_stride_fr: int,
    fmt: str,
    eps: float = DEFAULT_EPS,
    paths: bool = False,
) -> Plan:
    """Compile the transform for one configuration (arguments already validated/parsed).

    ``average`` is ``'local'``, ``'global'`` or ``False`` (T=0: the first order at the stride
    ``2**log2_stride``, the zeroth order and each ``n2`` of the second order unaveraged, at
    their own resolutions, as kymatio 0.4). ``paths``: outputs per path (out_type 'list' /
    'dict'): in format 'joint' the zeroth order is kept and each path's frequential axis is
    unpadded as kymatio 0.4 does (see :func:`_kept_rows`); format 'time' is unchanged.
    """
    s = log2_stride
    N_padded, pad_left, pad_right = _padding(N, T)
    phi, psi1, psi2 = time_filter_bank(N_padded, J, Q, T)
    ind_start, ind_end = compute_border_indices(phi.j, J, pad_left, pad_left + N)
    N_fr = _frequential_padding((J + 1) * Q[0], J_fr, F)
    phi_F, psis_fr = frequential_filter_bank(N_fr, J_fr, Q_fr, F)
    up_spins = [p for p in psis_fr if p.xi >= 0]
    joint_rows = None
    if fmt == "joint" and not paths:
        joint_rows = N_fr // 2**log2_stride_fr if average_fr == "local" else 1
    layout = _Layout(T=T, J=J, average=average, s=s, N_padded=N_padded, ind_start=ind_start, ind_end=ind_end,
                     N_fr=N_fr, s_fr=log2_stride_fr, average_fr=average_fr, fmt=fmt, joint_rows=joint_rows, eps=eps)

    zeroth = None
    if average == "local":
        zeroth = WindowedFilter.build_shared(phi.hat, N_padded, N_padded // 2**s, eps, real=True)
    first, first_n1, lowpass1 = _first_order(psi1, phi, N_padded, s, average, T, J, eps)
    stage1, channels1 = _cropped(
        _frequency_stage(up_spins, phi_F, N_fr, len(psi1), log2_stride_fr, average_fr, fmt, joint_rows), up_spins, eps
    )
    groups, res2 = _second_order_pairs(psi1, psi2, s, average, T, J)
    second = _second_order_groups(groups, psi2, first_n1, N_padded, eps)
    n2_list, n2_pairs, n2_window, lowpass2, stage2, channels2 = _second_order_stages(
        second, res2, psis_fr, phi, phi_F, layout
    )

    with_zeroth = fmt == "time" or paths
    blocks = _output_blocks(with_zeroth, channels1, channels2, n2_list)
    meta = _meta([(c["order"], c["n1"], c["n2"], c["n_fr"]) for b in blocks for c in b], psi1, psi2, psis_fr, fmt)
    t_start, t_end = (0, 1) if average == "global" else (ind_start[s], ind_end[s])
    return Plan(
        N=N, N_padded=N_padded, pad_left=pad_left, pad_right=pad_right, average=average, average_fr=average_fr,
        format=fmt, paths=paths, t_start=t_start, t_end=t_end, zeroth=zeroth, first=first, first_n1=first_n1,
        lowpass1=lowpass1, stage1=stage1, second=second, n2_list=n2_list, n2_res=res2, n2_pairs=n2_pairs,
        n2_window=n2_window, lowpass2=lowpass2, stage2=stage2, with_zeroth=with_zeroth,
        block_rows=[tuple(c["rows"] for c in block) for block in blocks], n_channels=len(meta["key"]),
        n_rows_joint=joint_rows or 0, meta=meta,
    )
