"""Geometry of a representation: how well a store's features reflect the synthesis parameters.

* :mod:`~pnp.geometry.reading` — chunked reads of a store's features (lazy row selections), grid comparison;
* :mod:`~pnp.geometry.search` — exact blocked k-NN search (features or stored metric), numpy or dask;
  optional faiss backend;
* :mod:`~pnp.geometry.knn` — :class:`KNNRegressor` and the DAFx'22 k-NN scores (R², MAE, log2 ratios);
* :mod:`~pnp.geometry.embedding` — :class:`Embedding` (Isomap / PCA / UMAP) and its quality;
* :mod:`~pnp.geometry.plots` — figures.

The ``pnp knn`` / ``pnp embed`` commands (:mod:`pnp.pipelines.evaluate`) run them on stores.
"""

from .embedding import METHODS, Embedding, embedding_quality
from .knn import SPACES, KNNRegressor, KNNScores, knn_scores, log2_ratios
from .reading import block_rows, feature_rows, same_grid
from .search import BACKENDS, faiss_kneighbors, kneighbors, metric_kneighbors, overlap, pairwise_distances

__all__ = [
    "BACKENDS", "METHODS", "SPACES", "Embedding", "KNNRegressor", "KNNScores", "block_rows", "embedding_quality",
    "faiss_kneighbors", "kneighbors", "knn_scores", "log2_ratios", "metric_kneighbors", "feature_rows", "overlap",
    "pairwise_distances", "same_grid",
]
