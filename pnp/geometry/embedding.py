"""Low-dimensional manifold embedding of a representation, and its quality.

:class:`Embedding` (scikit-learn conventions: parameters in ``__init__``, ``fit`` /
``transform`` / ``fit_transform``) embeds feature vectors (n, K) — numpy or dask — into
``n_components`` dimensions with

* ``"isomap"`` (default; ``n_neighbors = 40``, 3 components as in DAFx'22): Isomap as
  scikit-learn computes it — geodesic distances on the k-NN graph (Dijkstra), then kernel PCA of
  −½ D² (:class:`~sklearn.decomposition.KernelPCA`, seeded by ``random_state``); new samples are
  placed through their ``n_neighbors`` nearest fitted samples.  The graph and the neighbours come
  from the exact blocked search of :mod:`pnp.geometry.search`, so the features are never held
  whole: memory ≈ the geodesic distance matrix and kernel of the fitted samples (≈ 3 × n_fit² × 8
  bytes: 400 MB for 4096).  A disconnected graph is joined (with a warning) by linking every
  component to its closest sample outside it, repeated until connected (scikit-learn links every
  pair of components instead).
* ``"pca"``: exact principal components (float64), from the blocked covariance (K × K) when
  K ≤ n_fit and from the blocked Gram matrix (n_fit × n_fit) otherwise — memory ≈ min(K, n_fit)²
  × 8 bytes; each component's sign is fixed so that its largest-magnitude loading is positive.
* ``"umap"`` (optional extra: ``pip install 'pnp[umap]'``, imported lazily): ``umap.UMAP`` on the
  fitted samples *loaded in memory* (n_fit × K × 4 bytes); transform by blocks.

The fit uses a random subsample of ``max_samples`` rows (seeded by ``random_state``; all rows
when ``None`` or when there are fewer); :meth:`fit_transform` returns the fitted embedding for
those rows and transforms the others block by block.  Numpy and dask inputs run the same tiles
and give identical coordinates.

Quality (:meth:`Embedding.quality`): :func:`sklearn.manifold.trustworthiness` (on at most
``trust_samples`` rows, drawn at random — the report says so — with exact float64 distances from
the blocked search, n² × 8 bytes), and, per parameter, the R² of a linear least-squares fit from
the embedding coordinates to the normalised parameter ν.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .reading import Rows, block_rows, check_matrix, read_rows
from .search import kneighbors, pairwise_distances

METHODS = ("isomap", "pca", "umap")
UMAP_HINT = "method 'umap' needs the optional dependency umap-learn: pip install 'pnp[umap]'"


def _int(value, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _take(X, rows: np.ndarray):
    """A lazy selection of the rows of X (read block by block); X itself for every row."""
    if rows.size == X.shape[0] and np.array_equal(rows, np.arange(X.shape[0])):
        return X
    return X[rows] if isinstance(X, Rows) else Rows(X, rows)


class Embedding(TransformerMixin, BaseEstimator):
    """Manifold embedding of feature vectors (see the module docs); a scikit-learn transformer
    (``clone``, ``get_params`` / ``set_params``; unfitted calls raise ``NotFittedError``).

    Parameters
    ----------
    method : "isomap" | "pca" | "umap"
    n_neighbors : int >= 1 — neighbourhood size (Isomap, UMAP)
    n_components : int >= 1 — embedding dimension
    max_samples : int >= 2, optional — fit on at most this many random rows, transform the rest
    random_state : int — seed of the subsample, ARPACK's start vector and UMAP
    block_size : int, optional — rows per distance tile / transform block
    progress : bool — tqdm bars

    Attributes (after ``fit``): ``fit_rows_`` (n_fit,) int64 rows used for the fit,
    ``embedding_`` (n_fit, n_components) float64 their coordinates; Isomap: ``dist_matrix_``
    (geodesic distances), ``kernel_pca_``, ``graph_components_`` (components of the k-NN graph
    before joining); PCA: ``mean_``, ``components_``, ``explained_variance_``; UMAP: ``estimator_``.
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
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {self.method!r}")
        _int(self.n_neighbors, "n_neighbors")
        _int(self.n_components, "n_components")
        if self.max_samples is not None:
            _int(self.max_samples, "max_samples", low=2)
        _int(self.random_state, "random_state", low=0)
        if self.method == "umap":
            _import_umap()

    def _fit_rows(self, n: int) -> np.ndarray:
        if self.max_samples is None or n <= self.max_samples:
            return np.arange(n, dtype=np.int64)
        rng = np.random.default_rng(self.random_state)
        return np.sort(rng.choice(n, size=int(self.max_samples), replace=False)).astype(np.int64)

    # ------------------------------------------------------------------ fit
    def fit(self, X) -> "Embedding":
        """Fit on (a subsample of) X (n, K), numpy or dask."""
        self._fit(X)
        return self

    def _fit(self, X) -> None:
        self._validate_params()
        n, K = check_matrix(X, "X")
        rows = self._fit_rows(n)
        n_fit = rows.size
        if self.n_components > min(n_fit, K) or (self.method != "pca" and self.n_components >= n_fit):
            raise ValueError(f"n_components must be an integer in [1, {min(n_fit - 1, K)}] for {n_fit} fitted "
                             f"samples of {K} features, got {self.n_components}")
        if self.method in ("isomap", "umap") and self.n_neighbors > n_fit - 1:
            raise ValueError(f"n_neighbors must be an integer in [1, {n_fit - 1}] (fitted samples - 1), "
                             f"got {self.n_neighbors}")
        Xf = _take(X, rows)
        self.fit_rows_, self.n_features_in_, self.n_samples_seen_ = rows, K, n
        getattr(self, f"_fit_{self.method}")(Xf)

    def _fit_isomap(self, Xf) -> None:
        import scipy.sparse as sp
        from scipy.sparse.csgraph import connected_components, shortest_path
        from sklearn.decomposition import KernelPCA

        n, k = Xf.shape[0], self.n_neighbors
        ids = np.arange(n)
        dist, ind = kneighbors(Xf, Xf, k, block_size=self.block_size, query_ids=ids, train_ids=ids,
                               progress=self.progress, desc="isomap graph")
        rows, cols, vals = [np.repeat(ids, k)], [ind.ravel()], [dist.ravel()]
        graph = sp.csr_matrix((vals[0], (rows[0], cols[0])), shape=(n, n))  # explicit zeros are edges
        n_comp, labels = connected_components(graph, directed=False)
        self.graph_components_ = int(n_comp)
        while n_comp > 1:  # join every component to its closest sample outside it (Boruvka rounds)
            for c in range(n_comp):
                inside, outside = np.flatnonzero(labels == c), np.flatnonzero(labels != c)
                d, j = kneighbors(_take(Xf, inside), _take(Xf, outside), 1, block_size=self.block_size)
                best = int(np.argmin(d[:, 0]))
                rows.append(inside[[best]])
                cols.append(outside[j[[best], 0]])
                vals.append(d[[best], 0])
            graph = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
            n_comp, labels = connected_components(graph, directed=False)
        if self.graph_components_ > 1:
            warnings.warn(f"the {k}-nearest-neighbour graph of the {n} fitted samples has {self.graph_components_} "
                          "connected components; each was joined to its closest sample outside it (a larger "
                          "n_neighbors avoids this)", stacklevel=4)
        self.dist_matrix_ = shortest_path(graph, method="D", directed=False)
        kpca = KernelPCA(n_components=self.n_components, kernel="precomputed", eigen_solver="auto",
                         random_state=self.random_state)
        self.embedding_ = np.asarray(kpca.fit_transform(-0.5 * self.dist_matrix_ ** 2), dtype=np.float64)
        self.kernel_pca_, self.X_fit_ = kpca, Xf

    def _fit_pca(self, Xf) -> None:
        from scipy.linalg import eigh

        n, K = Xf.shape
        b = block_rows(K, self.block_size)
        blocks = [(a, min(a + b, n)) for a in range(0, n, b)]
        total = np.zeros(K)
        for a, c in blocks:
            total += read_rows(Xf, a, c, "X").astype(np.float64).sum(axis=0)
        mean = total / n
        C = self.n_components
        if K <= n:  # covariance (K, K)
            cov = np.zeros((K, K))
            for a, c in blocks:
                B = read_rows(Xf, a, c, "X").astype(np.float64) - mean
                cov += B.T @ B
            w, V = eigh(cov, subset_by_index=[K - C, K - 1])
            comps = V[:, ::-1].T
        else:  # Gram (n, n) of the centred rows
            G = np.zeros((n, n))
            for i, (a, c) in enumerate(blocks):
                A = read_rows(Xf, a, c, "X").astype(np.float64) - mean
                for a2, c2 in blocks[i:]:
                    B = A if a2 == a else read_rows(Xf, a2, c2, "X").astype(np.float64) - mean
                    t = A @ B.T
                    G[a:c, a2:c2] = t
                    G[a2:c2, a:c] = t.T
            w, U = eigh(G, subset_by_index=[n - C, n - 1])
            w, U = w[::-1], U[:, ::-1]
            if not np.all(w > 1e-12 * max(w[0], 1e-300)):
                raise ValueError(f"the fitted features have rank < n_components = {C}")
            comps = np.zeros((C, K))
            for a, c in blocks:
                comps += U[a:c].T @ (read_rows(Xf, a, c, "X").astype(np.float64) - mean)
            comps /= np.sqrt(w)[:, None]
        w = np.sort(w)[::-1] if K <= n else w
        big = np.argmax(np.abs(comps), axis=1)
        comps *= np.sign(comps[np.arange(C), big])[:, None]
        self.mean_, self.components_ = mean, comps
        self.explained_variance_ = np.asarray(w, dtype=np.float64) / max(n - 1, 1)
        self.embedding_ = self._transform_pca(Xf)

    def _fit_umap(self, Xf) -> None:
        umap = _import_umap()
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
        check_matrix(X, "X", n_cols=self.n_features_in_)
        return getattr(self, f"_transform_{self.method}")(X)

    def _blocks(self, n: int, b: int | None = None):
        from tqdm.auto import tqdm

        b = b or block_rows(self.n_features_in_, self.block_size)
        starts = range(0, n, b)
        return tqdm([(a, min(a + b, n)) for a in starts], desc=f"{self.method} transform", unit="block",
                    disable=not self.progress, leave=False, dynamic_ncols=True)

    def _transform_isomap(self, X) -> np.ndarray:
        n_fit = self.embedding_.shape[0]
        dist, ind = kneighbors(X, self.X_fit_, self.n_neighbors, block_size=self.block_size, progress=self.progress,
                               desc="isomap neighbours")
        out = np.empty((X.shape[0], self.n_components))
        # geodesic distances to the fitted samples through each new sample's neighbours, (block, n_fit)
        for a, c in self._blocks(X.shape[0], b=max(1, min(1024, 2**22 // n_fit))):
            geo = np.full((c - a, n_fit), np.inf)
            for j in range(self.n_neighbors):
                np.minimum(geo, self.dist_matrix_[ind[a:c, j]] + dist[a:c, j, None], out=geo)
            out[a:c] = self.kernel_pca_.transform(-0.5 * geo ** 2)
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

    def fit_transform(self, X) -> np.ndarray:
        """Fit on (a subsample of) X, then coordinates (n, n_components) of every row: the fitted
        embedding for the fitted rows, :meth:`transform` for the others."""
        self._fit(X)
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


def linear_r2(coords: np.ndarray, nu: np.ndarray) -> np.ndarray:
    """R² (P,) float64 of the least-squares affine fit coords (n, C) → nu[:, p], per parameter
    (``sklearn.linear_model.LinearRegression`` and ``sklearn.metrics.r2_score``); NaN for a
    constant parameter."""
    from sklearn.linear_model import LinearRegression

    from .knn import r2

    coords, nu = np.asarray(coords, np.float64), np.asarray(nu, np.float64)
    return r2(nu, LinearRegression().fit(coords, nu).predict(coords))


def embedding_quality(X, coords, nu, names=None, trust_samples: int = 4096, trust_neighbors: int = 5,
                      random_state: int = 0, block_size: int | None = None, progress: bool = False) -> dict:
    """See :meth:`Embedding.quality`."""
    from sklearn.manifold import trustworthiness

    n, _ = check_matrix(X, "X")
    coords, nu = np.asarray(coords, np.float64), np.asarray(nu, np.float64)
    if coords.ndim != 2 or coords.shape[0] != n or nu.ndim != 2 or nu.shape[0] != n:
        raise ValueError(f"coords and nu must be (n, C) and (n, P) arrays with n = {n}, got {coords.shape}, {nu.shape}")
    names = list(names) if names is not None else [str(i) for i in range(nu.shape[1])]
    _int(trust_samples, "trust_samples", low=3)
    m = min(n, int(trust_samples))
    _int(trust_neighbors, "trust_neighbors")
    if not trust_neighbors < m / 2:
        raise ValueError(f"trust_neighbors must be < {m / 2:g} (half the {m} samples it is computed on), "
                         f"got {trust_neighbors}")
    rows = (np.arange(n) if m == n else
            np.sort(np.random.default_rng(random_state).choice(n, size=m, replace=False)))
    D = pairwise_distances(_take(X, rows), block_size=block_size, progress=progress)
    tw = float(trustworthiness(D, coords[rows], n_neighbors=int(trust_neighbors), metric="precomputed"))
    lr = linear_r2(coords, nu)
    return {
        "trustworthiness": tw,
        "trustworthiness_samples": m,
        "trustworthiness_subsampled": bool(m < n),
        "trustworthiness_neighbors": int(trust_neighbors),
        "linear_r2": {p: (float(v) if np.isfinite(v) else None) for p, v in zip(names, lr)},
    }


def _import_umap():
    try:
        import umap  # noqa: F401
    except ImportError:
        raise ValueError(UMAP_HINT) from None
    return umap
