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
    """Everything :func:`pnp.scattering.jtfs.core.scatter` needs besides the signal."""

    N: int
    N_padded: int
    pad_left: int
    pad_right: int
    average: str
    average_fr: str
    format: str
    t_start: int
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
    lowpass2: dict[int, WindowedFilter]  # n2 -> time averaging (local) of |Y2_fr|
    stage2: dict[int, FrequencyStage]
    n_channels: int
    n_rows_joint: int
    meta: dict[str, np.ndarray] = field(repr=False)


def _padding(N: int, T: float):
    """kymatio 0.4's time padding: ``(N_padded, pad_left, pad_right)``."""
    phi_f = gauss_1d(N, SIGMA0 / T)
    min_to_pad = 3 * compute_temporal_support(phi_f.reshape(1, -1), criterion_amplitude=1e-3)
    J_max_support = int(np.floor(np.log2(3 * N - 2)))
    J_pad = min(int(np.ceil(np.log2(N + 2 * min_to_pad))), J_max_support)
    N_padded = 2**J_pad
    pad_left, pad_right = compute_padding(N_padded, N)
    return N_padded, pad_left, pad_right


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
    """Matrices of one frequential scattering + averaging + unpadding, and per-channel info."""
    blocks_W, blocks_A, channels, row_psi, row_pos = [], [], [], [], []
    for n_fr, psi in enumerate(psis):
        k_fr = min(psi.j, s_fr) if average_fr == "local" else psi.j
        R_in = N_fr // 2**k_fr
        h = np.fft.ifft(psi.hat)
        blocks_W.append(conv_matrix(h, R_in, 2**k_fr, n1_max))
        row_psi.append(np.full(R_in, n_fr, dtype=np.int64))
        row_pos.append(np.arange(R_in, dtype=np.int64))
        if psi.spin != 0 and average_fr == "local":
            g = np.fft.ifft(level(phi_F.hat, k_fr)).real
            step = 2 ** (s_fr - k_fr)
            A = conv_matrix(g, R_in // step, step, R_in)
            n1_stride = 2**s_fr
        elif psi.spin != 0 and average_fr == "global":
            A = np.ones((1, R_in))
            n1_stride = n1_max
        else:  # spin 0 (already a low-pass of width 2**J_fr), or no frequential averaging
            A = np.eye(R_in)
            n1_stride = 2 ** max(psi.j, 0)
        if fmt == "time":
            keep = len(range(0, n1_max, n1_stride))
            A = A[:keep]
            channels += [dict(n_fr=n_fr, n1=i * n1_stride) for i in range(keep)]
        else:
            if A.shape[0] != joint_rows:
                raise ValueError(
                    "format='joint' needs every path to have the same number of frequential "
                    f"rows; this configuration gives {A.shape[0]} and {joint_rows}. Use "
                    "format='time', or stride_fr <= 2**J_fr with local F."
                )
            channels.append(dict(n_fr=n_fr, n1=None))
        blocks_A.append(A)
    W = np.concatenate(blocks_W, axis=0)
    R_total = W.shape[0]
    A_total = np.zeros((sum(a.shape[0] for a in blocks_A), R_total))
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


def build_plan(
    *,
    N: int,
    J: int,
    Q: tuple[int, int],
    T,
    average: str,
    log2_stride: int,
    J_fr: int,
    Q_fr: int,
    F,
    average_fr,
    log2_stride_fr: int,
    fmt: str,
    eps: float = DEFAULT_EPS,
) -> Plan:
    """Compile the transform for one configuration (arguments already validated/parsed)."""
    s = log2_stride
    N_padded, pad_left, pad_right = _padding(N, T)
    phi, psi1, psi2 = time_filter_bank(N_padded, J, Q, T)
    ind_start, ind_end = compute_border_indices(phi.j, J, pad_left, pad_left + N)

    # ---- frequential filter bank
    n1_max = len(psi1)
    N_input_fr = (J + 1) * Q[0]
    min_to_pad_fr = 8 * min(F, 2**J_fr)
    N_fr = (N_input_fr + min_to_pad_fr) // 2**J_fr * 2**J_fr
    phi_F, psis_fr = frequential_filter_bank(N_fr, J_fr, Q_fr, F)
    up_spins = [p for p in psis_fr if p.xi >= 0]

    def k_time(j):
        return min(j, s) if average == "local" else j

    # ---- zeroth order
    zeroth = None
    if average == "local":
        zeroth = WindowedFilter.build_shared(phi.hat, N_padded, N_padded // 2**s, eps, real=True)

    # ---- first order: psi1 on X_hat, grouped by resolution k1; then phi
    first_n1: dict[int, list[int]]
    first, first_n1, lowpass1 = {}, {}, {}
    for n1, psi in enumerate(psi1):
        first_n1.setdefault(k_time(psi.j), []).append(n1)
    for k1, n1s in first_n1.items():
        L1 = N_padded // 2**k1
        first[k1] = WindowedFilter.build([0] * len(n1s), [psi1[n].hat for n in n1s], N_padded, L1, eps, real=False)
        if s - k1 < 0:
            raise ValueError(f"T={T} is too small for J={J}: increase T or decrease J")
        lowpass1[k1] = WindowedFilter.build_shared(level(phi.hat, k1), L1, L1 // 2 ** (s - k1), eps, real=True)

    joint_rows = None
    if fmt == "joint":
        joint_rows = N_fr // 2**log2_stride_fr if average_fr == "local" else 1
    stage1, channels1 = _cropped(
        _frequency_stage(up_spins, phi_F, N_fr, n1_max, log2_stride_fr, average_fr, fmt, joint_rows), up_spins, eps
    )

    # ---- second order: (n1, n2) pairs with j1 < j2, grouped by (k1, k2)
    groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
    res2: dict[int, int] = {}
    for n2, p2 in enumerate(psi2):
        for n1, p1 in enumerate(psi1):
            if p2.j > p1.j:
                k1 = k_time(p1.j)
                k2 = min(p2.j - k1, s) if average == "local" else p2.j - k1
                if res2.setdefault(n2, k1 + k2) != k1 + k2:
                    raise ValueError(
                        f"T={T} is too small for J={J} (second-order paths of n2={n2} would sit at "
                        "different time resolutions); increase T"
                    )
                groups.setdefault((k1, k2), []).append((n1, n2))
    second = []
    for (k1, k2), pairs in groups.items():
        L1 = N_padded // 2**k1
        local = {n1: i for i, n1 in enumerate(first_n1[k1])}
        op = WindowedFilter.build(
            [local[n1] for n1, _ in pairs],
            [level(psi2[n2].hat, k1) for _, n2 in pairs],
            L1,
            L1 // 2**k2,
            eps,
            real=False,
        )
        second.append(SecondOrderGroup(k1, k2, pairs, op))
    # positions of each (n1, n2) in the concatenation of group outputs, per resolution
    n2_list = sorted(res2)
    n2_pairs, lowpass2, stage2 = {}, {}, {}
    channels2 = {}
    for n2 in n2_list:
        offset = 0
        pos = []
        for g in second:
            if g.k1 + g.k2 != res2[n2]:
                continue
            for i, (n1, m2) in enumerate(g.pairs):
                if m2 == n2:
                    pos.append((n1, offset + i))
            offset += len(g.pairs)
        pos.sort()
        n2_pairs[n2] = np.array([p for _, p in pos], dtype=np.int64)
        n1_count = len(pos)
        if [n1 for n1, _ in pos] != list(range(n1_count)):  # pragma: no cover - design invariant
            raise RuntimeError("second-order n1 indices are not contiguous from 0")
        stage2[n2], channels2[n2] = _cropped(
            _frequency_stage(psis_fr, phi_F, N_fr, n1_count, log2_stride_fr, average_fr, fmt, joint_rows), psis_fr, eps
        )
        if average == "local":
            j2 = res2[n2]
            L2 = N_padded // 2**j2
            if s - j2 < 0:
                raise ValueError(f"T={T} is too small for J={J}: increase T or decrease J")
            lowpass2[n2] = WindowedFilter.build_shared(level(phi.hat, j2), L2, L2 // 2 ** (s - j2), eps, real=True)

    # ---- channel list and meta (in output order)
    def row(order, n1, n2, n_fr):
        j1 = psi1[n1].j if n1 is not None else np.nan
        return dict(
            order=order,
            n=(np.nan if n1 is None else n1, np.nan if n2 is None else n2),
            j=(j1, psi2[n2].j if n2 is not None else np.nan),
            xi=(psi1[n1].xi if n1 is not None else np.nan, psi2[n2].xi if n2 is not None else np.nan),
            sigma=(psi1[n1].sigma if n1 is not None else np.nan, psi2[n2].sigma if n2 is not None else np.nan),
            n_fr=np.nan if n_fr is None else n_fr,
            j_fr=np.nan if n_fr is None else psis_fr[n_fr].j,
            xi_fr=np.nan if n_fr is None else psis_fr[n_fr].xi,
            sigma_fr=np.nan if n_fr is None else psis_fr[n_fr].sigma,
            spin=np.nan if n_fr is None else psis_fr[n_fr].spin,
            # kymatio's path key: format 'time' (n1, n_fr) / (n1, n2, n_fr), () for order 0;
            # format 'joint' (n_fr,) / (n2, n_fr)
            key=(tuple(int(v) for v in (n1, n2, n_fr) if v is not None) if fmt == "time"
                 else tuple(int(v) for v in (n2, n_fr) if v is not None)),
        )

    rows = []
    if fmt == "time":
        rows.append(row(0, None, None, None))
    for c in channels1:
        rows.append(row(1, c["n1"], None, c["n_fr"]))
    for n2 in n2_list:
        for c in channels2[n2]:
            rows.append(row(2, c["n1"], n2, c["n_fr"]))
    meta = {
        key: np.array([r[key] for r in rows], dtype=float)
        for key in ("order", "n", "j", "xi", "sigma", "n_fr", "j_fr", "xi_fr", "sigma_fr", "spin")
    }
    meta["order"] = meta["order"].astype(int)
    meta["key"] = np.empty(len(rows), dtype=object)
    meta["key"][:] = [r["key"] for r in rows]

    return Plan(
        N=N,
        N_padded=N_padded,
        pad_left=pad_left,
        pad_right=pad_right,
        average=average,
        average_fr=average_fr,
        format=fmt,
        t_start=ind_start[s] if average == "local" else 0,
        t_end=ind_end[s] if average == "local" else 1,
        zeroth=zeroth,
        first=first,
        first_n1=first_n1,
        lowpass1=lowpass1,
        stage1=stage1,
        second=second,
        n2_list=n2_list,
        n2_res=res2,
        n2_pairs=n2_pairs,
        lowpass2=lowpass2,
        stage2=stage2,
        n_channels=len(rows),
        n_rows_joint=joint_rows or 0,
        meta=meta,
    )
