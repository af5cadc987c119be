"""Low-dimensional manifold embedding of a representation, and its quality.

:class:`Embedding` (scikit-learn conventions: parameters in ``__init__``, ``fit`` /
``transform`` / ``fit_transform``) embeds feature vectors (n, K) — numpy or dask — into
``n_components`` dimensions with

* ``"isomap"`` (default; ``n_neighbors = 40``, 3 components as in DAFx'22):
  :class:`sklearn.manifold.Isomap` (geodesic distances on the k-NN graph by Dijkstra, kernel PCA
  of −½ D², new samples placed through their ``n_neighbors`` nearest fitted samples) on a
  *precomputed* sparse k-NN graph: pnp computes the graph and the new samples' neighbours with
  the exact blocked search of :mod:`pnp.geometry.search`, so the features are never held whole
  (scikit-learn's own neighbour search would hold the fitted rows in memory): memory ≈ the
  geodesic distance matrix and kernel of the fitted samples (≈ 3 × n_fit² × 8 bytes: 400 MB for
  4096).  The coordinates are ``Isomap``'s on the float64 rows (1.6e-14 relative in
  ``benchmarks/embedding.py``; on float32 rows scikit-learn computes in float32, 2e-6).  A
  disconnected graph is joined (with a warning) by linking every component to its closest sample
  outside it, repeated until connected; scikit-learn cannot complete a sparse precomputed graph
  (and, from the full data, links every pair of components instead; the same edge for two
  components).  The kernel PCA's ARPACK start vector is drawn by scikit-learn, unseeded:
  coordinates repeat to ~1e-14 relative, not bit for bit; signs are fixed (``svd_flip``).
* ``"pca"``: exact principal components (float64), from the blocked covariance (K × K) when
  K ≤ n_fit and from the blocked Gram matrix (n_fit × n_fit) otherwise — memory ≈ min(K, n_fit)²
  × 8 bytes, the fitted rows read by blocks; each component's sign is fixed so that its
  largest-magnitude loading is positive (:func:`sklearn.utils.extmath.svd_flip`, as
  :class:`sklearn.decomposition.PCA`).  The coordinates are ``PCA``'s exact solvers' (full,
  arpack, covariance_eigh) on float64 rows (tested; 3e-14 relative in ``benchmarks/embedding.py``,
  in comparable time); ``PCA`` itself is not used because it needs the fitted rows in memory and
  computes in their dtype — the same numbers would take them in float64, n_fit × K × 8 bytes
  (1.6 GB for 4096 × 49,320) — and its default (randomized) solver for these sizes is approximate.
* ``"umap"`` (optional extra: ``pip install 'pnp[umap]'``, imported lazily): ``umap.UMAP`` on the
  fitted samples *loaded in memory* (n_fit × K × 4 bytes); transform by blocks.

The fit uses a random subsample of ``max_samples`` rows (seeded by ``random_state``; all rows
when ``None`` or when there are fewer); :meth:`fit_transform` returns the fitted embedding for
those rows and transforms the others block by block.  Numpy and dask inputs run the same tiles
and give identical neighbours, geodesic distances and PCA coordinates (Isomap coordinates to
ARPACK's rounding, above).

Quality (:meth:`Embedding.quality`): :func:`sklearn.manifold.trustworthiness` (on at most
``trust_samples`` rows, drawn at random — the report says so — with exact float64 distances from
the blocked search, n² × 8 bytes), and, per parameter, the R² (:func:`sklearn.metrics.r2_score`)
of the least-squares affine fit (:class:`sklearn.linear_model.LinearRegression`) from the
embedding coordinates to the normalised parameter ν.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from pnp.checks import check_bool, check_choice, check_features, check_int, check_optional_int

from .reading import Rows, block_rows, check_matrix, read_rows
from .search import kneighbors, pairwise_distances

METHODS = ("isomap", "pca", "umap")
UMAP_HINT = "method 'umap' needs the optional dependency umap-learn: pip install 'pnp[umap]'"


def _take(X, rows: np.ndarray):
    """A lazy selection of the rows of X (read block by block); X itself for every row."""
    if rows.size == X.shape[0] and np.array_equal(rows, np.arange(X.shape[0])):
        return X
    return X[rows] if isinstance(X, Rows) else Rows(X, rows)


def _csr(dist: np.ndarray, ind: np.ndarray, n_cols: int):
    """Sparse (q, n_cols) CSR distance graph of k neighbours per row: ``dist``, ``ind`` (q, k),
    each row sorted by distance as scikit-learn's precomputed graphs expect (a zero distance
    stays an explicit entry, i.e. an edge)."""
    import scipy.sparse as sp

    q, k = ind.shape
    return sp.csr_matrix((dist.ravel(), ind.ravel(), np.arange(0, q * k + 1, k)), shape=(q, n_cols))


def _neighbour_graph(Xf, k: int, block_size: int | None, progress: bool):
    """Exact k-NN distance graph (n, n) CSR of the rows of Xf (each row's k nearest others, ties
    by index) and its number of connected components.  A disconnected graph is joined in rounds:
    every component gets an edge to its closest sample outside it, until one component is left."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    n = Xf.shape[0]
    ids = np.arange(n)
    dist, ind = kneighbors(Xf, Xf, k, block_size=block_size, query_ids=ids, train_ids=ids, progress=progress,
                           desc="isomap graph")
    graph = _csr(dist, ind, n)
    n_comp, labels = connected_components(graph, directed=False)
    first = int(n_comp)
    rows, cols, vals = [np.repeat(ids, k)], [ind.ravel()], [dist.ravel()]
    while n_comp > 1:
        for c in range(n_comp):
            inside, outside = np.flatnonzero(labels == c), np.flatnonzero(labels != c)
            d, j = kneighbors(_take(Xf, inside), _take(Xf, outside), 1, block_size=block_size)
            best = int(np.argmin(d[:, 0]))
            rows.append(inside[[best]])
            cols.append(outside[j[[best], 0]])
            vals.append(d[[best], 0])
        r, c_, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        order = np.lexsort((v, r))  # by row, then distance
        indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n))])
        graph = sp.csr_matrix((v[order], c_[order], indptr), shape=(n, n))
        n_comp, labels = connected_components(graph, directed=False)
    return graph, first


def _rows64(X, a: int, c: int) -> np.ndarray:
    return read_rows(X, a, c, "X").astype(np.float64)


def _covariance_components(X, blocks, mean: np.ndarray, C: int):
    """Top ``C`` eigenpairs of the blocked scatter matrix Σ (x − mean)(x − mean)ᵀ (K, K) float64:
    eigenvalues (C,) descending, components (C, K)."""
    from scipy.linalg import eigh

    K = mean.size
    cov = np.zeros((K, K))
    for a, c in blocks:
        B = _rows64(X, a, c) - mean
        cov += B.T @ B
    w, V = eigh(cov, subset_by_index=[K - C, K - 1])
    return w[::-1], V[:, ::-1].T


def _gram_components(X, blocks, mean: np.ndarray, C: int):
    """The same from the blocked Gram matrix (n, n) of the centred rows (for K > n): eigenvalues
    (C,) descending and components (C, K) = Uᵀ (X − mean) / √w."""
    from scipy.linalg import eigh

    n = X.shape[0]
    G = np.zeros((n, n))
    for i, (a, c) in enumerate(blocks):
        A = _rows64(X, a, c) - mean
        for a2, c2 in blocks[i:]:
            B = A if a2 == a else _rows64(X, a2, c2) - mean
            t = A @ B.T
            G[a:c, a2:c2] = t
            G[a2:c2, a:c] = t.T
    w, U = eigh(G, subset_by_index=[n - C, n - 1])
    w, U = w[::-1], U[:, ::-1]
    if not np.all(w > 1e-12 * max(w[0], 1e-300)):
        raise ValueError(f"the fitted features have rank < n_components = {C}")
    comps = np.zeros((C, mean.size))
    for a, c in blocks:
        comps += U[a:c].T @ (_rows64(X, a, c) - mean)
    return w, comps / np.sqrt(w)[:, None]


class Embedding(TransformerMixin, BaseEstimator):
    """Manifold embedding of feature vectors (see the module docs); a scikit-learn transformer
    (``clone``, ``get_params`` / ``set_params``; unfitted calls raise ``NotFittedError``).

    Parameters
    ----------
    method : "isomap" | "pca" | "umap"
    n_neighbors : int >= 1 — neighbourhood size (Isomap, UMAP)
    n_components : int >= 1 — embedding dimension
    max_samples : int >= 2, optional — fit on at most this many random rows, transform the rest
    random_state : int >= 0 — seed of the subsample and of UMAP
    block_size : int >= 1, optional — rows per distance tile / transform block
    progress : bool — tqdm bars

    Parameters are checked by ``fit``: ``TypeError`` for a wrong type, ``ValueError`` for a value
    out of range.

    Attributes (after ``fit``): ``fit_rows_`` (n_fit,) int64 rows used for the fit,
    ``embedding_`` (n_fit, n_components) float64 their coordinates; Isomap: ``estimator_`` (the
    fitted :class:`sklearn.manifold.Isomap`: ``dist_matrix_`` geodesic distances,
    ``kernel_pca_``), ``graph_components_`` (components of the k-NN graph before joining); PCA:
    ``mean_``, ``components_``, ``explained_variance_``; UMAP: ``estimator_`` (``umap.UMAP``).
    """

    def __init__(self, method: str = "isomap", n_neighbors: int = 40, n_components: int = 3,
                 max_samples: int | None = None, random_state: int = 0, block_size: int | None = None,
                 progress: bool = False):
        self.method = method
        self.n_neighbors = n_neighbors
        self.n_components = n_components
        self.max_samples = max_samples
        self.random_state = random_state
        self.block_size = block_size
        self.progress = progress

    # ------------------------------------------------------------------ validation
    def _validate_params(self) -> None:
        check_choice(self.method, "method", METHODS)
        check_int(self.n_neighbors, "n_neighbors")
        check_int(self.n_components, "n_components")
        check_optional_int(self.max_samples, "max_samples", low=2)
        check_int(self.random_state, "random_state", low=0)
        check_optional_int(self.block_size, "block_size")
        check_bool(self.progress, "progress")
        if self.method == "umap":
            import_umap()

    def _fit_rows(self, n: int) -> np.ndarray:
        if self.max_samples is None or n <= self.max_samples:
            return np.arange(n, dtype=np.int64)
        rng = np.random.default_rng(self.random_state)
        return np.sort(rng.choice(n, size=int(self.max_samples), replace=False)).astype(np.int64)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None) -> "Embedding":
        """Fit on (a subsample of) X (n, K), numpy or dask; ``y`` is ignored (scikit-learn's
        transformer convention)."""
        self._fit(X)
        return self

    def _fit(self, X):
        self._validate_params()
        X, n, K = check_features(X, "X", min_samples=2)
        rows = self._fit_rows(n)
        n_fit = rows.size
        top = min(n_fit, K) if self.method == "pca" else min(n_fit - 1, K)
        check_int(self.n_components, "n_components", 1, top,
                  note=f" for {n_fit} fitted samples of {K} features (n_samples = {n_fit}, n_features = {K})")
        if self.method in ("isomap", "umap"):
            check_int(self.n_neighbors, "n_neighbors", 1, n_fit - 1, note=" (fitted samples - 1)")
        Xf = _take(X, rows)
        self.fit_rows_, self.n_features_in_, self.n_samples_seen_ = rows, K, n
        getattr(self, f"_fit_{self.method}")(Xf)
        return X

    def _fit_isomap(self, Xf) -> None:
        from sklearn.manifold import Isomap

        graph, self.graph_components_ = _neighbour_graph(Xf, self.n_neighbors, self.block_size, self.progress)
        if self.graph_components_ > 1:
            warnings.warn(f"the {self.n_neighbors}-nearest-neighbour graph of the {Xf.shape[0]} fitted samples has "
                          f"{self.graph_components_} connected components; each was joined to its closest sample "
                          "outside it (a larger n_neighbors avoids this)", stacklevel=4)
        # radius = inf: scikit-learn takes the given graph's edges as they are (joins included)
        iso = Isomap(n_neighbors=None, radius=np.inf, n_components=self.n_components, metric="precomputed",
                     path_method="D")
        self.embedding_ = np.asarray(iso.fit_transform(graph), dtype=np.float64)
        self.estimator_, self.X_fit_ = iso, Xf

    def _fit_pca(self, Xf) -> None:
        from sklearn.utils.extmath import svd_flip

        n, K = Xf.shape
        b = block_rows(K, self.block_size)
        blocks = [(a, min(a + b, n)) for a in range(0, n, b)]
        mean = sum(_rows64(Xf, a, c).sum(axis=0) for a, c in blocks) / n
        top = _covariance_components if K <= n else _gram_components
        w, comps = top(Xf, blocks, mean, self.n_components)
        _, comps = svd_flip(None, comps, u_based_decision=False)  # largest-magnitude loading positive
        self.mean_, self.components_ = mean, comps
        self.explained_variance_ = w / max(n - 1, 1)
        self.embedding_ = self._transform_pca(Xf)

    def _fit_umap(self, Xf) -> None:
        umap = import_umap()
        n, K = Xf.shape
        b = block_rows(K, self.block_size)
        data = np.concatenate([read_rows(Xf, a, min(a + b, n), "X") for a in range(0, n, b)]).astype(np.float32)
        est = umap.UMAP(n_neighbors=self.n_neighbors, n_components=self.n_components, random_state=self.random_state)
        self.embedding_ = np.asarray(est.fit_transform(data), dtype=np.float64)
        self.estimator_ = est

    # ------------------------------------------------------------------ transform
    def _check_fitted(self) -> None:
        check_is_fitted(self, "embedding_")

    def transform(self, X) -> np.ndarray:
        """Coordinates (n, n_components) float64 of new rows X (n, K), numpy or dask, by blocks."""
        self._check_fitted()
        X, _, _ = check_features(X, "X", n_cols=self.n_features_in_, owner=type(self).__name__)
        return getattr(self, f"_transform_{self.method}")(X)

    def _blocks(self, n: int, b: int | None = None):
        from tqdm.auto import tqdm

        b = b or block_rows(self.n_features_in_, self.block_size)
        starts = range(0, n, b)
        return tqdm([(a, min(a + b, n)) for a in starts], desc=f"{self.method} transform", unit="block",
                    disable=not self.progress, leave=False, dynamic_ncols=True)

    def _transform_isomap(self, X) -> np.ndarray:
        n_fit, k = self.embedding_.shape[0], self.n_neighbors
        dist, ind = kneighbors(X, self.X_fit_, k, block_size=self.block_size, progress=self.progress,
                               desc="isomap neighbours")
        out = np.empty((X.shape[0], self.n_components))
        # scikit-learn holds the geodesic distances of a block to the fitted samples, (block, n_fit)
        for a, c in self._blocks(X.shape[0], b=max(1, min(1024, 2**22 // n_fit))):
            out[a:c] = self.estimator_.transform(_csr(dist[a:c], ind[a:c], n_fit))
        return out

    def _transform_pca(self, X) -> np.ndarray:
        out = np.empty((X.shape[0], self.n_components))
        for a, c in self._blocks(X.shape[0]):
            out[a:c] = (read_rows(X, a, c, "X").astype(np.float64) - self.mean_) @ self.components_.T
        return out

    def _transform_umap(self, X) -> np.ndarray:
        out = np.empty((X.shape[0], self.n_components))
        for a, c in self._blocks(X.shape[0]):
            out[a:c] = self.estimator_.transform(read_rows(X, a, c, "X").astype(np.float32))
        return out

    def fit_transform(self, X, y=None) -> np.ndarray:
        """Fit on (a subsample of) X, then coordinates (n, n_components) of every row: the fitted
        embedding for the fitted rows, :meth:`transform` for the others (``y`` is ignored)."""
        X = self._fit(X)
        n = X.shape[0]
        out = np.empty((n, self.n_components))
        out[self.fit_rows_] = self.embedding_
        rest = np.setdiff1d(np.arange(n), self.fit_rows_)
        if rest.size:
            out[rest] = self.transform(_take(X, rest))
        return out

    # ------------------------------------------------------------------ quality
    def quality(self, X, coords: np.ndarray, nu: np.ndarray, names: Sequence[str] | None = None,
                trust_samples: int = 4096, trust_neighbors: int = 5) -> dict:
        """Trustworthiness and per-parameter linear R² of an embedding (JSON-able dict).

        X : (n, K) features (numpy or dask); coords : (n, C) their embedding; nu : (n, P) the
        normalised parameters.  Trustworthiness uses ``min(n, trust_samples)`` random rows
        (seed ``random_state``) and ``trust_neighbors`` neighbours.
        """
        return embedding_quality(X, coords, nu, names, trust_samples=trust_samples, trust_neighbors=trust_neighbors,
                                 random_state=self.random_state, block_size=self.block_size, progress=self.progress)


def embedding_quality(X, coords, nu, names=None, trust_samples: int = 4096, trust_neighbors: int = 5,
                      random_state: int = 0, block_size: int | None = None, progress: bool = False) -> dict:
    """See :meth:`Embedding.quality`."""
    from sklearn.linear_model import LinearRegression
    from sklearn.manifold import trustworthiness
    from sklearn.metrics import r2_score

    n, _ = check_matrix(X, "X")
    coords, nu = np.asarray(coords, np.float64), np.asarray(nu, np.float64)
    if coords.ndim != 2 or coords.shape[0] != n or nu.ndim != 2 or nu.shape[0] != n:
        raise ValueError(f"coords and nu must be (n, C) and (n, P) arrays with n = {n}, got {coords.shape}, {nu.shape}")
    names = list(names) if names is not None else [str(i) for i in range(nu.shape[1])]
    m = min(n, check_int(trust_samples, "trust_samples", low=3))
    check_int(trust_neighbors, "trust_neighbors", 1, (m - 1) // 2, note=f" (below half the {m} samples it is "
                                                                      "computed on)")
    rows = (np.arange(n) if m == n else
            np.sort(np.random.default_rng(random_state).choice(n, size=m, replace=False)))
    D = pairwise_distances(_take(X, rows), block_size=block_size, progress=progress)
    tw = float(trustworthiness(D, coords[rows], n_neighbors=int(trust_neighbors), metric="precomputed"))
    with np.errstate(divide="ignore", invalid="ignore"):  # a constant parameter: undefined (None)
        lr = r2_score(nu, LinearRegression().fit(coords, nu).predict(coords), multioutput="raw_values",
                      force_finite=False)
    return {
        "trustworthiness": tw,
        "trustworthiness_samples": m,
        "trustworthiness_subsampled": bool(m < n),
        "trustworthiness_neighbors": int(trust_neighbors),
        "linear_r2": {p: (float(v) if np.isfinite(v) else None) for p, v in zip(names, lr)},
    }


def import_umap():
    try:
        import umap  # noqa: F401
    except ImportError:
        raise ValueError(UMAP_HINT) from None
    return umap
