"""k-nearest-neighbour regression of the synthesis parameters from a representation.

:class:`KNNRegressor` (scikit-learn conventions) is fitted on the train split and predicts the
normalised parameters ν ∈ [-1, 1] of queries as the mean ν of their ``k`` nearest train samples.
ν is affine in the parameter's *scale* (``ParameterSpace.to_scale``: log10 θ for log-scaled
parameters, θ for linear ones), so the prediction is the neighbours' geometric mean θ for log
parameters and their arithmetic mean for linear ones.

Two neighbourhoods (``space``):

* ``"features"`` — Euclidean distance between feature vectors S (``backend="exact"``, the
  default: pnp's blocked brute force, :func:`pnp.geometry.search.kneighbors`; ``"faiss"``:
  faiss's flat index re-ranked in float64, :func:`pnp.geometry.search.faiss_kneighbors`, with
  ``pip install 'pnp[faiss]'``); this is the blind regressor: only the query's features are used.
* ``"metric"`` — the Riemannian (PNP) distance d²(i, j) = (ν_i − ν_j)ᵀ M(ν_j) (ν_i − ν_j) with the
  stored metric M = JᵀJ of the train sample j, the local linearisation of ‖S_i − S_j‖².  It uses
  the query's **ν**, so it is *not* a blind regressor: it evaluates how well the stored metric
  reproduces the representation's neighbourhoods.  Compare its neighbours with the feature-space
  ones through :func:`pnp.geometry.search.overlap` (``neighbour_overlap`` in the reports).

:func:`knn_scores` turns the neighbours into the report of the DAFx'22 evaluation: per parameter
the R² and the mean absolute error of the predicted ν, and the ratio

    ratio_i = exp(mean_{j ∈ N(i)} ln θ_j) / θ_i

(the neighbours' geometric mean over the query's θ), summarised by the median and interquartile
range of log2 ratio_i.  The ratio is defined for θ > 0 only: for a parameter with some θ ≤ 0
among the queries or their neighbours (e.g. a linear parameter whose range starts at 0) its
ratios are NaN and a warning is issued; R² and MAE are still reported.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.validation import check_is_fitted

from pnp.checks import check_bool, check_choice, check_features, check_int, check_optional_int, check_targets

from .search import BACKENDS, GROUP_BYTES, faiss_kneighbors, import_faiss, kneighbors, metric_kneighbors

SPACES = ("features", "metric")


class KNNRegressor(RegressorMixin, BaseEstimator):
    """k-NN regression of ν from features (or under the stored metric); a scikit-learn
    estimator (``clone``, ``get_params`` / ``set_params``; unfitted calls raise
    ``sklearn.exceptions.NotFittedError``).

    Parameters
    ----------
    k : int >= 1 — neighbours per query (at most the number of train samples)
    space : "features" | "metric" — see the module docs
    backend : "exact" | "faiss" — feature-space search: pnp's blocked exact search (default) or
        faiss's flat index re-ranked in float64 (optional extra ``pip install 'pnp[faiss]'``;
        ``space="features"`` only)
    block_size : int >= 1, optional — rows per distance tile (default: from the feature size)
    group_bytes : int >= 1 — float64 bytes of one block of queries held in memory (chunked path)
    progress : bool — show a tqdm bar over the distance tiles

    Parameters are checked by ``fit``: ``TypeError`` for a wrong type, ``ValueError`` for a value
    out of range.
    """

    def __init__(self, k: int = 5, space: str = "features", backend: str = "exact", block_size: int | None = None,
                 group_bytes: int = GROUP_BYTES, progress: bool = False):
        self.k = k
        self.space = space
        self.backend = backend
        self.block_size = block_size
        self.group_bytes = group_bytes
        self.progress = progress

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # ν has one column per free parameter
        return tags

    def _validate_params(self) -> None:
        check_int(self.k, "k")
        check_choice(self.space, "space", SPACES)
        check_choice(self.backend, "backend", BACKENDS)
        check_optional_int(self.block_size, "block_size")
        check_int(self.group_bytes, "group_bytes")
        check_bool(self.progress, "progress")
        if self.backend == "faiss":
            if self.space != "features":
                raise ValueError(f"backend='faiss' searches the feature space only: use space='features' or "
                                 f"backend='exact', got space={self.space!r}")
            import_faiss()

    def fit(self, X, y, theta=None, metric=None, ids=None) -> "KNNRegressor":
        """Store the train set (nothing is copied or read: dask arrays stay lazy; each
        :meth:`kneighbors` call streams it, or, with ``backend="faiss"``, reads it into an index).

        X : (n, K) features (numpy or dask) for ``space="features"``; (n, P) ν for ``"metric"``
        y : (n, P) normalised targets ν (float); (n,) for a single target (``predict`` is then 1-D)
        theta : (n, P) physical θ, optional (needed for the DAFx ratios)
        metric : (n, P, P) stored metric M of the train samples (``space="metric"`` only)
        ids : (n,) int sample identities, optional (a query is never its own neighbour)
        """
        self._validate_params()
        X, n, d = check_features(X, "X")
        y, self._y_1d = check_targets(y, n)
        check_int(self.k, "k", 1, n, note=f" (the number of training samples, n_samples = {n})")
        if theta is not None:
            theta = np.asarray(theta, dtype=np.float64)
            if theta.shape != y.shape:
                raise ValueError(f"theta must have the shape of y {y.shape}, got {theta.shape}")
        if self.space == "metric":
            if metric is None:
                raise ValueError("space='metric' needs the stored metric of the train samples (metric=...)")
            if d != y.shape[1]:
                raise ValueError(f"space='metric': X must be the train ν of shape (n, {y.shape[1]}), got (n, {d})")
            metric = np.asarray(metric, dtype=np.float64)
            if metric.shape != (n, d, d):
                raise ValueError(f"metric must have shape ({n}, {d}, {d}), got {metric.shape}")
        elif metric is not None:
            raise ValueError("metric is only used with space='metric'")
        self.X_, self.y_, self.theta_, self.metric_ = X, y, theta, metric
        self.ids_ = None if ids is None else np.asarray(ids, dtype=np.int64)
        self.n_samples_fit_, self.n_features_in_ = n, d
        return self

    def _check_fitted(self) -> None:
        check_is_fitted(self, "X_")

    def kneighbors(self, X, ids=None):
        """(dist (q, k) float64, ind (q, k) int64 positions in the train set), nearest first."""
        self._check_fitted()
        kw = dict(block_size=self.block_size, query_ids=ids, train_ids=self.ids_, progress=self.progress)
        X, _, _ = check_features(X, "X", n_cols=self.n_features_in_, owner=type(self).__name__)
        if self.space == "metric":
            return metric_kneighbors(X, self.X_, self.metric_, self.k, **kw)
        if self.backend == "faiss":
            return faiss_kneighbors(X, self.X_, self.k, **kw)
        return kneighbors(X, self.X_, self.k, group_bytes=self.group_bytes, **kw)

    def predict_from_neighbours(self, ind: np.ndarray) -> np.ndarray:
        """Mean ν (q, P) float64 of the train samples ``ind`` (q, k)."""
        self._check_fitted()
        return self.y_[np.asarray(ind)].mean(axis=1)

    def predict(self, X, ids=None) -> np.ndarray:
        """Predicted ν (q, P) float64 for the queries ``X`` ((q,) if ``fit`` was given 1-D targets)."""
        pred = self.predict_from_neighbours(self.kneighbors(X, ids)[1])
        return pred[:, 0] if getattr(self, "_y_1d", False) else pred

    def score(self, X, y, ids=None) -> float:
        """Mean over parameters of the R² of the predicted ν (``sklearn.metrics.r2_score`` per
        column; a constant column, whose R² is undefined, is left out)."""
        return float(np.nanmean(_r2_columns(y, self.predict(X, ids))))


def _r2_columns(y, pred) -> np.ndarray:
    """``sklearn.metrics.r2_score`` per column (P,) float64, NaN where y is constant (undefined)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = r2_score(np.asarray(y, np.float64), np.asarray(pred, np.float64), multioutput="raw_values",
                       force_finite=False)
    return np.where(np.isfinite(out), out, np.nan)


def log2_ratios(ind: np.ndarray, theta_train: np.ndarray, theta_query: np.ndarray,
                names: Sequence[str] | None = None) -> np.ndarray:
    """DAFx'22 ratios: log2( exp(mean_j ln θ_j) / θ_i ) (q, P) float64 for neighbours ``ind``.

    A parameter with any θ ≤ 0 among the queries or the train samples gets NaN (with a warning).
    """
    theta_train = np.asarray(theta_train, dtype=np.float64)
    theta_query = np.asarray(theta_query, dtype=np.float64)
    P = theta_query.shape[1]
    names = list(names) if names is not None else [str(i) for i in range(P)]
    out = np.full((theta_query.shape[0], P), np.nan)
    for p in range(P):
        if np.any(theta_train[:, p] <= 0) or np.any(theta_query[:, p] <= 0):
            warnings.warn(f"parameter {names[p]!r} takes values <= 0: the DAFx ratio exp(mean log theta)/theta "
                          "is undefined, reported as NaN", stacklevel=2)
            continue
        lt = np.log(theta_train[:, p])
        out[:, p] = (lt[ind].mean(axis=1) - np.log(theta_query[:, p])) / math.log(2.0)
    return out


@dataclass
class KNNScores:
    """Per-query results and per-parameter summary of a k-NN evaluation.

    names : P parameter names; pred_nu (q, P); log2_ratio (q, P); r2, mae_nu, median (P,);
    iqr (P, 2) — the 25th and 75th percentiles of log2 ratio.
    """

    names: list[str]
    pred_nu: np.ndarray
    log2_ratio: np.ndarray
    r2: np.ndarray
    mae_nu: np.ndarray
    median: np.ndarray
    iqr: np.ndarray

    def summary(self) -> dict:
        """JSON-able dict keyed by parameter name (NaN → None)."""
        f = lambda v: None if not np.isfinite(v) else float(v)  # noqa: E731
        return {
            "r2": {n: f(v) for n, v in zip(self.names, self.r2)},
            "mae_nu": {n: f(v) for n, v in zip(self.names, self.mae_nu)},
            "log2_ratio_median": {n: f(v) for n, v in zip(self.names, self.median)},
            "log2_ratio_iqr": {n: [f(a), f(b)] for n, (a, b) in zip(self.names, self.iqr)},
            "r2_mean": f(np.nanmean(self.r2)) if np.isfinite(self.r2).any() else None,
        }


def knn_scores(ind: np.ndarray, nu_train, theta_train, nu_query, theta_query, names: Sequence[str]) -> KNNScores:
    """Scores of the neighbours ``ind`` (q, k) (positions in the train arrays):
    R² and MAE of the mean neighbour ν against the query ν, DAFx log2 ratios, median and IQR."""
    nu_train, nu_query = np.asarray(nu_train, np.float64), np.asarray(nu_query, np.float64)
    ind = np.asarray(ind)
    if ind.ndim != 2 or ind.shape[0] != nu_query.shape[0]:
        raise ValueError(f"ind must be (q, k) with q = {nu_query.shape[0]}, got {ind.shape}")
    pred = nu_train[ind].mean(axis=1)
    lr = log2_ratios(ind, theta_train, theta_query, names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        med = np.nanmedian(lr, axis=0) if lr.size else np.full(lr.shape[1], np.nan)
        q = np.nanpercentile(lr, [25, 75], axis=0).T if lr.size else np.full((lr.shape[1], 2), np.nan)
    return KNNScores(names=list(names), pred_nu=pred, log2_ratio=lr, r2=_r2_columns(nu_query, pred),
                     mae_nu=np.abs(pred - nu_query).mean(axis=0), median=med, iqr=q)
