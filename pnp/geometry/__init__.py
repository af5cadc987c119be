"""Geometry of a representation: how well a store's features reflect the synthesis parameters.

* :mod:`~pnp.geometry.reading` — chunked access to a store (dask features, θ / ν / metric by split);
* :mod:`~pnp.geometry.search` — exact blocked k-NN search (features or stored metric), numpy or dask;
* :mod:`~pnp.geometry.knn` — :class:`KNNRegressor` and the DAFx'22 k-NN scores (R², MAE, log2 ratios);
* :mod:`~pnp.geometry.embedding` — :class:`Embedding` (Isomap / PCA / UMAP) and its quality;
* :mod:`~pnp.geometry.plots` — figures.

The ``pnp knn`` / ``pnp embed`` commands (:mod:`pnp.pipelines.evaluate`) run them on stores.
"""

from .embedding import METHODS, Embedding, embedding_quality, linear_r2
from .knn import SPACES, KNNRegressor, KNNScores, knn_scores, log2_ratios, r2
from .reading import StoreData, block_rows, open_store_data, same_grid
from .search import kneighbors, metric_kneighbors, overlap, pairwise_distances

__all__ = [
    "METHODS", "SPACES", "Embedding", "KNNRegressor", "KNNScores", "StoreData", "block_rows", "embedding_quality",
    "kneighbors", "knn_scores", "linear_r2", "log2_ratios", "metric_kneighbors", "open_store_data", "overlap",
    "pairwise_distances", "r2", "same_grid",
]
