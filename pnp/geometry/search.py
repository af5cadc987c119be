"""Exact, blocked brute-force nearest-neighbour search (Euclidean feature space, or the stored
Riemannian metric), for arrays in memory (numpy) or larger than memory (dask, read by blocks).

Euclidean distances are computed tile by tile as ``‖a‖² + ‖b‖² − 2 a·b`` in **float64** (the
float32 features are converted as they are read; products of float32 values are exact in float64,
so only the accumulation rounds), clipped at 0.  Ties are broken by the train index: the
neighbours of a query are its ``k`` smallest ``(distance², train index)`` pairs in lexicographic
order, so the result does not depend on the order in which train blocks are visited.

Tiles are ``b × b`` rows (``b`` from :func:`pnp.geometry.reading.block_rows`: 32 MiB of float64
rows, 16..1024) at fixed positions — multiples of ``b`` in the query and the train arrays — for
numpy and dask inputs alike, so the in-memory and the chunked paths run bit-identical
arithmetic and return identical neighbours and distances.  (A different ``block_size`` may change
distances by float64 rounding, i.e. only the order of near-exact ties.)

Memory (chunked path, dask queries and train): one *query group* of ``g`` rows held in float64
(``g·K·8 ≤ group_bytes``, default 128 MiB, a multiple of ``b`` rows), the read window of
:class:`pnp.geometry.reading.Rows` (≤ 32 MiB of whole store chunks, twice while dask
concatenates them), one train block in float64 (``b·K·8`` bytes, ≤ 32 MiB), one distance tile
and the running top-k (``b·(b+k)·16`` and ``g·k·16`` bytes) — about 300 MB whatever the store's
size; the train array is streamed once per query group, or, when there are several groups and
it holds at most ``train_cache_bytes`` (256 MiB), read once and kept.  With numpy inputs the same groups and
tiles are used (the arrays themselves are the caller's memory).

Optional backend (:func:`faiss_kneighbors`, ``backend="faiss"`` of
:class:`pnp.geometry.KNNRegressor`; ``pip install 'pnp[faiss]'``): faiss's exact flat index
proposes candidates in float32 and they are re-ranked here in float64 with the same tie rule, so
it returns the exact search's neighbours except where float32 rounding hides a near-tie; it holds
the train set in memory (float32).  The blocked search stays the default: deterministic
whatever the threads, bounded memory, no extra dependency.
"""

from __future__ import annotations

import math

import numpy as np

from pnp.checks import check_int

from .reading import TILE_BYTES, block_rows, check_matrix, is_lazy, read_rows

#: default memory of one query group, float64 bytes
GROUP_BYTES = 2**27
#: a lazy train set up to this size (float32 bytes) is read once and kept in memory
TRAIN_CACHE_BYTES = 2**28
#: placeholder index of the not-yet-filled top-k slots (loses every tie)
_NONE = np.iinfo(np.int64).max
#: k-NN search backends: pnp's exact blocked search, or faiss's flat index (optional extra)
BACKENDS = ("exact", "faiss")
FAISS_HINT = "backend='faiss' needs the optional dependency faiss-cpu: pip install 'pnp[faiss]'"


def _check_k(k, n_train: int, excluded: bool) -> int:
    what = "the number of training samples" + (", less the query itself" if excluded else "")
    return check_int(k, "k", 1, n_train - (1 if excluded else 0), note=f" ({what})")


def _ids(ids, n: int, name: str) -> np.ndarray | None:
    if ids is None:
        return None
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array of shape ({n},), got dtype {ids.dtype}")
    if ids.shape != (n,):
        raise ValueError(f"{name} must be an integer array of shape ({n},), got shape {ids.shape}")
    return ids.astype(np.int64)


def merge_topk(best_d: np.ndarray, best_i: np.ndarray, d: np.ndarray, idx: np.ndarray, k: int):
    """The ``k`` smallest ``(distance, index)`` pairs per row of ``[best | d]``.

    best_d, best_i : (q, k) float64 / int64 — the current top-k, sorted
    d : (q, t) float64 — new candidate distances; idx : (t,) int64 — their indices
    Returns (q, k) float64, (q, k) int64, sorted by distance then index.
    """
    q = d.shape[0]
    cd = np.concatenate([best_d, d], axis=1)
    ci = np.concatenate([best_i, np.broadcast_to(idx, d.shape)], axis=1)
    if cd.shape[1] > k:
        kth = np.partition(cd, k - 1, axis=1)[:, k - 1]
        rows, cols = np.nonzero(cd <= kth[:, None])  # >= k per row (all ties at the k-th value)
    else:
        rows, cols = np.nonzero(np.ones(cd.shape, dtype=bool))
    dd, ii = cd[rows, cols], ci[rows, cols]
    order = np.lexsort((ii, dd, rows))
    rows, dd, ii = rows[order], dd[order], ii[order]
    counts = np.bincount(rows, minlength=q)
    rank = np.arange(rows.size) - (np.cumsum(counts) - counts)[rows]
    keep = rank < k
    return dd[keep].reshape(q, k), ii[keep].reshape(q, k)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="tile", disable=not enabled, leave=False, dynamic_ncols=True)


def _sqnorms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


def _exclude(d: np.ndarray, qids: np.ndarray | None, tids: np.ndarray | None) -> None:
    if qids is not None and tids is not None:
        d[qids[:, None] == tids[None, :]] = np.inf


def _group_rows(n_query: int, n_features: int, b: int, group_bytes: int) -> int:
    g = max(b, (check_int(group_bytes, "group_bytes") // (8 * n_features)) // b * b)
    return min(g, max(b, math.ceil(n_query / b) * b))


def kneighbors(queries, train, k: int, *, block_size: int | None = None, query_ids=None, train_ids=None,
               group_bytes: int = GROUP_BYTES, train_cache_bytes: int | None = None, progress: bool = False,
               desc: str = "k-NN"):
    """Exact Euclidean k nearest neighbours of every query among the train rows.

    Parameters
    ----------
    queries : (nq, K) float array, numpy or dask
    train : (nt, K) float array, numpy or dask (same K)
    k : int in [1, nt] (``nt − 1`` when a query may be excluded, see ids)
    query_ids, train_ids : (nq,), (nt,) int, optional — sample identities; a train row with the
        query's own id is never its neighbour (leave-one-out when queries = train)
    block_size : rows per tile (default from K), group_bytes : float64 bytes of a query group
    train_cache_bytes : a lazy ``train`` of at most this many bytes (in its dtype; default
        :data:`TRAIN_CACHE_BYTES`) is read once and kept in memory instead of being streamed
        once per query group

    Returns
    -------
    dist : (nq, k) float64 — Euclidean distances, ascending
    ind : (nq, k) int64 — positions in ``train`` (ties broken by the smaller position)
    """
    nq, K = check_matrix(queries, "queries")
    nt, _ = check_matrix(train, "train", n_cols=K)
    qids, tids = _ids(query_ids, nq, "query_ids"), _ids(train_ids, nt, "train_ids")
    excluded = qids is not None and tids is not None and np.intersect1d(qids, tids).size > 0
    k = _check_k(k, nt, excluded)
    b = block_rows(K, block_size)
    g = _group_rows(nq, K, b, group_bytes)
    tblocks = [(a, min(a + b, nt)) for a in range(0, nt, b)]
    cache = TRAIN_CACHE_BYTES if train_cache_bytes is None else train_cache_bytes
    if is_lazy(train) and math.ceil(nq / g) > 1 and nt * K * np.dtype(train.dtype).itemsize <= cache:
        train = np.concatenate([read_rows(train, t0, t1, "train", tids) for t0, t1 in tblocks])
    out_d = np.empty((nq, k), dtype=np.float64)
    out_i = np.empty((nq, k), dtype=np.int64)
    with _progress(math.ceil(nq / g) * len(tblocks), desc, progress) as bar:
        for g0 in range(0, nq, g):
            g1 = min(g0 + g, nq)
            Q = None  # the previous group is released before the next one is read
            Q = read_rows(queries, g0, g1, "queries", qids, dtype=np.float64)
            qtiles = [(a, min(a + b, g1 - g0)) for a in range(0, g1 - g0, b)]
            qnorm = [_sqnorms(Q[a:c]) for a, c in qtiles]
            best_d = np.full((g1 - g0, k), np.inf)
            best_i = np.full((g1 - g0, k), _NONE, dtype=np.int64)
            for t0, t1 in tblocks:
                B = read_rows(train, t0, t1, "train", tids, dtype=np.float64)
                bn = _sqnorms(B)
                pos = np.arange(t0, t1, dtype=np.int64)
                for (a, c), an in zip(qtiles, qnorm):
                    d = an[:, None] + bn[None, :]
                    d -= 2.0 * (Q[a:c] @ B.T)
                    np.maximum(d, 0.0, out=d)
                    _exclude(d, None if qids is None else qids[g0 + a:g0 + c], None if tids is None else tids[t0:t1])
                    best_d[a:c], best_i[a:c] = merge_topk(best_d[a:c], best_i[a:c], d, pos, k)
                bar.update(1)
            out_d[g0:g1], out_i[g0:g1] = best_d, best_i
    return np.sqrt(out_d), out_i


def import_faiss():
    """The ``faiss`` module, or a ``ValueError`` saying how to install it (:data:`FAISS_HINT`)."""
    try:
        import faiss
    except ImportError:
        raise ValueError(FAISS_HINT) from None
    return faiss


def _faiss_index(train, nt: int, K: int, b: int, tids: np.ndarray | None):
    """A faiss flat (exact, float32) L2 index of the train rows, filled block by block."""
    faiss = import_faiss()
    index = faiss.IndexFlatL2(K)
    for t0 in range(0, nt, b):
        index.add(np.ascontiguousarray(read_rows(train, t0, min(t0 + b, nt), "train", tids, dtype=np.float32)))
    return index


def _own_ids(cand: np.ndarray, tids: np.ndarray | None, qids: np.ndarray | None) -> np.ndarray:
    """(q, c) bool: the candidates ``cand`` (q, c) that carry their query's id."""
    if tids is None or qids is None:
        return np.zeros(cand.shape, dtype=bool)
    return tids[cand] == qids[:, None]


def _rerank(Q: np.ndarray, T: np.ndarray, cand: np.ndarray, banned: np.ndarray, k: int):
    """The ``k`` nearest of the candidates ``cand`` (q, c) int64 of the queries ``Q`` (q, K)
    float64, ``T`` (q, c, K) their float32 rows, by exact float64 squared distances (the
    formula of :func:`kneighbors`) then index; ``banned`` (q, c) bool candidates never chosen."""
    T64 = T.astype(np.float64)
    d = _sqnorms(Q)[:, None] + np.einsum("qcj,qcj->qc", T64, T64) - 2.0 * np.einsum("qj,qcj->qc", Q, T64)
    np.maximum(d, 0.0, out=d)
    d[banned] = np.inf
    order = np.lexsort((cand, d))[:, :k]
    return np.take_along_axis(d, order, axis=1), np.take_along_axis(cand, order, axis=1)


def faiss_kneighbors(queries, train, k: int, *, block_size: int | None = None, query_ids=None, train_ids=None,
                     progress: bool = False, desc: str = "k-NN (faiss)"):
    """Euclidean k nearest neighbours proposed by faiss's exact flat index, re-ranked in float64.

    Same arguments and results as :func:`kneighbors` (no ``group_bytes``): dist (nq, k) float64,
    ind (nq, k) int64.  faiss (``pip install 'pnp[faiss]'``) compares the rows in float32 and
    returns ``2 k`` candidates per query (more when a query may meet its own id); their exact
    float64 distances, computed as in :func:`kneighbors`, pick the ``k`` nearest, ties broken by
    the smaller train position.  The result is the exact search's unless float32 rounding keeps a
    true neighbour out of the candidates (near-ties of many rows).  The index stores the train
    rows in float32 (exact for float32 features, as stores hold; float64 train rows are rounded).
    Memory: the whole train set inside the index (nt × K × 4 bytes), one block of queries and a
    32 MiB tile of their candidates' rows.
    """
    nq, K = check_matrix(queries, "queries")
    nt, _ = check_matrix(train, "train", n_cols=K)
    qids, tids = _ids(query_ids, nq, "query_ids"), _ids(train_ids, nt, "train_ids")
    excluded = qids is not None and tids is not None and np.intersect1d(qids, tids).size > 0
    k = _check_k(k, nt, excluded)
    same_id = int(np.unique(tids, return_counts=True)[1].max()) if excluded and tids is not None else 0
    c = min(nt, 2 * k + same_id)
    b = block_rows(K, block_size)
    index = _faiss_index(train, nt, K, b, tids)
    r = max(1, TILE_BYTES // (8 * c * K))  # queries per re-ranking block
    out_d = np.empty((nq, k), dtype=np.float64)
    out_i = np.empty((nq, k), dtype=np.int64)
    with _progress(math.ceil(nq / b), desc, progress) as bar:
        for q0 in range(0, nq, b):
            q1 = min(q0 + b, nq)
            Q = read_rows(queries, q0, q1, "queries", qids, dtype=np.float64)
            cand = index.search(np.ascontiguousarray(Q, dtype=np.float32), c)[1].astype(np.int64)
            banned = _own_ids(cand, tids, None if qids is None else qids[q0:q1])
            for a in range(0, q1 - q0, r):
                e = min(a + r, q1 - q0)
                T = index.reconstruct_batch(cand[a:e].ravel()).reshape(e - a, c, K)
                out_d[q0 + a:q0 + e], out_i[q0 + a:q0 + e] = _rerank(Q[a:e], T, cand[a:e], banned[a:e], k)
            bar.update(1)
    return np.sqrt(out_d), out_i


def metric_kneighbors(nu_queries, nu_train, metric_train, k: int, *, block_size: int | None = None,
                      query_ids=None, train_ids=None, progress: bool = False, desc: str = "k-NN (metric)"):
    """k nearest neighbours under the stored Riemannian metric of the *train* samples.

    d²(i, j) = (ν_i − ν_j)ᵀ M_j (ν_i − ν_j), M_j = J_jᵀ J_j (the metric at the train sample),
    the local linearisation of ‖S_i − S_j‖².  It uses the query's ν.

    nu_queries : (nq, P), nu_train : (nt, P), metric_train : (nt, P, P) — float, in memory
    Returns dist (nq, k) float64 (sqrt of d², ascending), ind (nq, k) int64 (positions in train).
    """
    nuq = np.asarray(nu_queries, dtype=np.float64)
    nut = np.asarray(nu_train, dtype=np.float64)
    M = np.asarray(metric_train, dtype=np.float64)
    if nuq.ndim != 2 or nut.ndim != 2 or nuq.shape[1] != nut.shape[1]:
        raise ValueError(f"nu_queries and nu_train must be (n, P) arrays with the same P, got {nuq.shape}, {nut.shape}")
    nq, P = nuq.shape
    nt = nut.shape[0]
    if M.shape != (nt, P, P):
        raise ValueError(f"metric_train must have shape ({nt}, {P}, {P}), got {M.shape}")
    for name, a in (("nu_queries", nuq), ("nu_train", nut), ("metric_train", M)):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} has non-finite values")
    qids, tids = _ids(query_ids, nq, "query_ids"), _ids(train_ids, nt, "train_ids")
    excluded = qids is not None and tids is not None and np.intersect1d(qids, tids).size > 0
    k = _check_k(k, nt, excluded)
    b = block_rows(4 * P * P, block_size)  # (b, b, P) difference tiles
    b = min(b, 512) if block_size is None else b
    out_d = np.empty((nq, k))
    out_i = np.empty((nq, k), dtype=np.int64)
    tblocks = [(a, min(a + b, nt)) for a in range(0, nt, b)]
    with _progress(math.ceil(nq / b) * len(tblocks), desc, progress) as bar:
        for q0 in range(0, nq, b):
            q1 = min(q0 + b, nq)
            best_d = np.full((q1 - q0, k), np.inf)
            best_i = np.full((q1 - q0, k), _NONE, dtype=np.int64)
            for t0, t1 in tblocks:
                diff = nuq[q0:q1, None, :] - nut[None, t0:t1, :]               # (q, t, P)
                Md = np.einsum("tpr,qtr->qtp", M[t0:t1], diff)
                d = np.einsum("qtp,qtp->qt", diff, Md)
                np.maximum(d, 0.0, out=d)
                _exclude(d, None if qids is None else qids[q0:q1], None if tids is None else tids[t0:t1])
                best_d, best_i = merge_topk(best_d, best_i, d, np.arange(t0, t1, dtype=np.int64), k)
                bar.update(1)
            out_d[q0:q1], out_i[q0:q1] = best_d, best_i
    return np.sqrt(out_d), out_i


def pairwise_distances(x, *, block_size: int | None = None, progress: bool = False) -> np.ndarray:
    """Dense (n, n) float64 Euclidean distances between the rows of ``x`` (numpy or dask),
    by the same float64 tiles as :func:`kneighbors` (memory: the n² result + two row blocks)."""
    n, K = check_matrix(x, "x")
    b = block_rows(K, block_size)
    blocks = [(a, min(a + b, n)) for a in range(0, n, b)]
    out = np.empty((n, n))
    with _progress(len(blocks) * (len(blocks) + 1) // 2, "distances", progress) as bar:
        for i, (a0, a1) in enumerate(blocks):
            A = read_rows(x, a0, a1, "x").astype(np.float64)
            an = _sqnorms(A)
            for c0, c1 in blocks[i:]:
                B = A if c0 == a0 else read_rows(x, c0, c1, "x").astype(np.float64)
                d = an[:, None] + _sqnorms(B)[None, :]
                d -= 2.0 * (A @ B.T)
                np.maximum(d, 0.0, out=d)
                out[a0:a1, c0:c1] = d
                out[c0:c1, a0:a1] = d.T
                bar.update(1)
    np.fill_diagonal(out, 0.0)
    return np.sqrt(out)


def overlap(ind_a: np.ndarray, ind_b: np.ndarray) -> float:
    """Mean fraction of the neighbours in ``ind_a`` (q, k) that are also in ``ind_b`` (q, k')."""
    ind_a, ind_b = np.asarray(ind_a), np.asarray(ind_b)
    if ind_a.ndim != 2 or ind_b.ndim != 2 or ind_a.shape[0] != ind_b.shape[0]:
        raise ValueError(f"neighbour arrays must be (q, k) with the same q, got {ind_a.shape}, {ind_b.shape}")
    if ind_a.size == 0:
        return float("nan")
    return float((ind_a[:, :, None] == ind_b[:, None, :]).any(axis=2).mean())
