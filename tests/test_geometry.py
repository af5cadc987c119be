"""pnp.geometry (k-NN regression, manifold embeddings, chunked reading) and ``pnp knn`` / ``pnp embed``.

Synthetic stores are written with ``pnp.store.create_store`` + ``write_chunk`` from features that
are known functions of ν (no representation is run); one tiny real store checks the CLI end to end.
"""

from __future__ import annotations

import json
import math
import re
import sys
import warnings

import numpy as np
import pytest

from pnp import store as pstore
from pnp.cli import main
from pnp.geometry import (
    Embedding,
    KNNRegressor,
    embedding_quality,
    kneighbors,
    knn_scores,
    log2_ratios,
    metric_kneighbors,
    overlap,
    pairwise_distances,
)
from pnp.geometry.search import merge_topk
from pnp.spec import loads_spec
from pnp.store import open_store

SPEC = """
name = "geom_{name}"
[synth]
name = "amchirp"
config = {{ sample_rate = 2048.0, duration = 0.25 }}
fixed = {{ f_c = 600.0 }}
[grid]
kind = "jittered"
counts = [{n1}, {n2}]
seed = {seed}
[split]
rule = "random"
fractions = [0.7, 0.1, 0.2]
seed = 0
[representation]
name = "mss"
[features]
compression = "none"
[store]
chunk_size = {chunk}
jacobian = {jacobian}
"""

RNG = np.random.default_rng(0)
A_SMOOTH = RNG.standard_normal((12, 6)) / 3.0
A_LINEAR = RNG.standard_normal((9, 2))


def smooth(nu: np.ndarray) -> np.ndarray:
    """A smooth, injective function of ν (n, 2) → (n, 12)."""
    n1, n2 = nu[:, 0], nu[:, 1]
    phi = np.stack([n1, n2, np.sin(np.pi * n1), 0.5 * np.cos(np.pi * n2), n1 * n2, np.tanh(2 * n2)], axis=1)
    return phi @ A_SMOOTH.T


def swiss_roll(nu: np.ndarray) -> np.ndarray:
    """ν1 → angle along a roll (1.5π..4.5π), ν2 → height: (n, 2) → (n, 3)."""
    t = 1.5 * np.pi * (1.0 + (nu[:, 0] + 1.0))
    return np.stack([t * np.cos(t), 8.0 * nu[:, 1], t * np.sin(t)], axis=1)


def make_store(path, fn, counts=(32, 32), chunk=64, seed=0, jacobian=False, name="s"):
    """A synthetic store whose features are ``fn(ν)``; with ``jacobian`` (``fn`` linear: ν @ A.T),
    J = A and the metric AᵀA."""
    spec = loads_spec(SPEC.format(name=name, n1=counts[0], n2=counts[1], seed=seed, chunk=chunk,
                                  jacobian=str(jacobian).lower()), source="test_geometry")
    synth = spec.build_synth()
    param = spec.parametrization(synth)
    nu_all = spec.layout().nu.astype(np.float32).astype(np.float64)  # as stored
    K = fn(nu_all[:1]).shape[1]
    attrs = pstore.provenance(spec, synth, spec.build_representation(synth), param, K, "cpu")
    group = pstore.create_store(str(path), spec, attrs, K)
    for c, (a, b) in enumerate(pstore.chunk_ranges(nu_all.shape[0], chunk)):
        nu = nu_all[a:b]
        data = {"features": fn(nu)}
        if jacobian:
            J = np.broadcast_to(A_LINEAR, (b - a,) + A_LINEAR.shape)
            M = np.einsum("nki,nkj->nij", J.astype(np.float32).astype(np.float64), J.astype(np.float32).astype(np.float64))
            data.update(jacobian=J, metric=M, eigvals=np.linalg.eigvalsh(M))
        pstore.write_chunk(group, c, data, np.ones(b - a, np.uint8))
    return str(path)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    d = tmp_path_factory.mktemp("geometry")
    return {
        "smooth": make_store(d / "smooth.zarr", smooth, name="smooth"),
        "linear": make_store(d / "linear.zarr", lambda nu: nu @ A_LINEAR.T, jacobian=True, name="linear"),
        "roll": make_store(d / "roll.zarr", swiss_roll, name="roll"),
        "other_grid": make_store(d / "other.zarr", smooth, seed=1, name="other"),
        "dir": d,
    }


def split_arrays(path):
    sd = open_store(path)
    tr, te = sd.indices("train"), sd.indices("test")
    return sd, tr, te


# ------------------------------------------------------------------------------ search
def test_merge_topk_is_lexicographic_in_distance_then_index():
    rng = np.random.default_rng(1)
    d = rng.integers(0, 4, size=(50, 300)).astype(np.float64)  # many exact ties
    best_d, best_i = np.full((50, 6), np.inf), np.full((50, 6), np.iinfo(np.int64).max)
    for a in range(0, 300, 37):  # blocks in order
        best_d, best_i = merge_topk(best_d, best_i, d[:, a:a + 37], np.arange(a, min(a + 37, 300)), 6)
    ref = np.lexsort((np.broadcast_to(np.arange(300), d.shape), d), axis=1)[:, :6]
    np.testing.assert_array_equal(best_i, ref)
    np.testing.assert_array_equal(best_d, np.take_along_axis(d, ref, axis=1))


def test_kneighbors_exact_against_scipy_and_tie_breaking():
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(2)
    X = rng.standard_normal((700, 40)).astype(np.float32)
    Q = rng.standard_normal((90, 40)).astype(np.float32)
    dist, ind = kneighbors(Q, X, 7, block_size=64)
    ref = cdist(Q.astype(np.float64), X.astype(np.float64))
    order = np.argsort(ref, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(ind, order)
    np.testing.assert_allclose(dist, np.take_along_axis(ref, order, axis=1), rtol=1e-12, atol=1e-12)
    # duplicated train rows: ties are broken by the smaller index
    dup = np.repeat(X[:30], 3, axis=0)
    _, ind = kneighbors(X[:30], dup, 3, block_size=16)
    np.testing.assert_array_equal(ind, np.arange(90).reshape(30, 3))
    # leave-one-out: a query is never its own neighbour
    ids = np.arange(700)
    _, ind = kneighbors(X, X, 1, query_ids=ids, train_ids=ids)
    assert not np.any(ind[:, 0] == ids)
    np.testing.assert_array_equal(ind[:, 0], np.argsort(cdist(X, X) + np.diag(np.full(700, np.inf)), 1)[:, 0])
    # dense pairwise distances by the same tiles
    np.testing.assert_allclose(pairwise_distances(X[:100], block_size=32), cdist(X[:100], X[:100]), atol=1e-10)


# ------------------------------------------------------------------------------ k-NN
def test_knn_recovers_theta_of_a_smooth_store(stores):
    from sklearn.neighbors import KNeighborsRegressor

    sd, tr, te = split_arrays(stores["smooth"])
    est = KNNRegressor(k=5).fit(sd.features(tr), sd.nu(tr), theta=sd.theta(tr), ids=tr)
    dist, ind = est.kneighbors(sd.features(te))
    sc = knn_scores(ind, sd.nu(tr), sd.theta(tr), sd.nu(te), sd.theta(te), sd.params)
    assert sc.names == ["f_m", "gamma"]
    assert np.all(sc.r2 > 0.99), sc.r2
    assert np.all(np.abs(sc.median) < 0.02) and np.all(sc.iqr[:, 1] - sc.iqr[:, 0] < 0.1), (sc.median, sc.iqr)
    # the same prediction as scikit-learn's k-NN regressor on the float64 features
    Xtr, Xte = (np.asarray(sd.features(i).compute(), np.float64) for i in (tr, te))
    ref = KNeighborsRegressor(n_neighbors=5, algorithm="brute").fit(Xtr, sd.nu(tr))
    np.testing.assert_allclose(sc.pred_nu, ref.predict(Xte), atol=1e-12)
    assert math.isclose(est.score(sd.features(te), sd.nu(te)), float(np.mean(sc.r2)))
    # predicted nu is the neighbours' mean nu = geometric mean theta for these log parameters
    gm = np.exp(np.log(sd.theta(tr))[ind].mean(axis=1))
    np.testing.assert_allclose(sd.space.normalize(gm), sc.pred_nu, atol=1e-6)
    np.testing.assert_allclose(sc.log2_ratio, np.log2(gm / sd.theta(te)), atol=1e-12)


def test_ratios_are_one_when_neighbours_share_theta_and_known_otherwise():
    rng = np.random.default_rng(3)
    theta_u = np.exp(rng.uniform(0, 3, size=(40, 2)))
    nu_u = rng.uniform(-1, 1, size=(40, 2))
    feats_u = rng.standard_normal((40, 5)).astype(np.float32)
    k = 4  # every θ appears k times in the train set, with identical features
    est = KNNRegressor(k=k).fit(np.repeat(feats_u, k, 0), np.repeat(nu_u, k, 0), theta=np.repeat(theta_u, k, 0))
    _, ind = est.kneighbors(feats_u)
    np.testing.assert_array_equal(ind // k, np.repeat(np.arange(40)[:, None], k, 1))
    sc = knn_scores(ind, est.y_, est.theta_, nu_u, theta_u, ["a", "b"])
    np.testing.assert_allclose(sc.log2_ratio, 0.0, atol=1e-12)
    np.testing.assert_allclose(sc.r2, 1.0, atol=1e-12)
    assert np.all(sc.mae_nu < 1e-12) and np.allclose(sc.median, 0) and np.allclose(sc.iqr, 0)
    # known ratios: geometric mean of (4, 8) over 2 = 2**1.5; of (2, 8) over 4 = 1
    tt = np.array([[1.0], [2.0], [4.0], [8.0]])
    lr = log2_ratios(np.array([[2, 3], [1, 3]]), tt, np.array([[2.0], [4.0]]))
    np.testing.assert_allclose(lr[:, 0], [1.5, 0.0], atol=1e-12)
    # theta <= 0: NaN with a warning (R² and MAE are still defined)
    with pytest.warns(UserWarning, match="undefined"):
        lr = log2_ratios(np.array([[0, 1]]), np.array([[0.0], [1.0]]), np.array([[0.5]]), ["alpha"])
    assert np.isnan(lr).all()


def test_chunked_and_in_memory_paths_are_identical(stores, monkeypatch):
    from pnp.geometry import search
    from pnp.store import reader

    sd, tr, te = split_arrays(stores["smooth"])
    Xtr, Xte = sd.features(tr), sd.features(te)  # lazy selections of the dask array, read by blocks
    raw = np.asarray(sd.group["features"][:])  # the zarr array, read whole
    mtr, mte = raw[tr], raw[te]  # in memory
    monkeypatch.setattr(reader, "WINDOW_BYTES", 1)  # one store chunk per read
    np.testing.assert_array_equal(np.asarray(Xtr[5:700]), mtr[5:700])
    np.testing.assert_array_equal(Xte[np.array([0, 3, 100])].compute(), mte[[0, 3, 100]])
    # small tiles and query groups so that the chunked path reads many blocks and groups, with the
    # train set streamed block by block once per group, or read once and cached
    kw = dict(k=5, block_size=32, group_bytes=32 * 12 * 8 * 3)
    d2, i2 = KNNRegressor(**kw).fit(mtr, sd.nu(tr)).kneighbors(mte)
    for cache in (0, 2**20):
        monkeypatch.setattr(search, "TRAIN_CACHE_BYTES", cache)
        d1, i1 = KNNRegressor(**kw).fit(Xtr, sd.nu(tr)).kneighbors(Xte)
        assert np.array_equal(d1, d2) and np.array_equal(i1, i2)
    for method in ("isomap", "pca"):
        e1 = Embedding(method, n_neighbors=10, max_samples=600, block_size=64)
        e2 = Embedding(method, n_neighbors=10, max_samples=600, block_size=64)
        c1, c2 = e1.fit_transform(sd.features()), e2.fit_transform(sd.features().compute())
        assert e1.fit_rows_.size == 600 and c1.shape == (1024, 3)
        if method == "pca":
            assert np.array_equal(c1, c2)
        else:  # the same graph and geodesics; scikit-learn's ARPACK start vector is not seeded
            assert np.array_equal(e1.estimator_.dist_matrix_, e2.estimator_.dist_matrix_)
            np.testing.assert_allclose(c1, c2, rtol=0, atol=1e-12 * np.abs(c2).max())


def test_metric_space_reproduces_feature_neighbourhoods_of_a_linear_store(stores):
    sd, tr, te = split_arrays(stores["linear"])
    nu_tr = sd.nu(tr)
    metric = KNNRegressor(k=5, space="metric").fit(nu_tr, nu_tr, theta=sd.theta(tr), metric=sd.metric(tr))
    _, ind_m = metric.kneighbors(sd.nu(te))
    _, ind_f = KNNRegressor(k=5).fit(sd.features(tr), nu_tr).kneighbors(sd.features(te))
    # features = A ν, metric = AᵀA: both distances are ‖A(ν_i − ν_j)‖ (up to float32 storage)
    assert overlap(ind_m, ind_f) > 0.99
    d_m, _ = metric_kneighbors(sd.nu(te), nu_tr, sd.metric(tr), 5)
    ref = np.linalg.norm((sd.nu(te)[:, None, :] - nu_tr[ind_m]) @ A_LINEAR.T, axis=-1)
    np.testing.assert_allclose(d_m, ref, rtol=1e-5)
    # a features-only store has no metric: clear error
    with pytest.raises(ValueError, match="jacobian = false"):
        open_store(stores["smooth"]).metric()


# ------------------------------------------------------------------------------ embeddings
def test_isomap_unrolls_a_swiss_roll_store(stores):
    sd = open_store(stores["roll"])
    X, nu = sd.features(), sd.nu()
    iso = Embedding("isomap", n_neighbors=10, n_components=2)
    coords = iso.fit_transform(X)
    q = iso.quality(X, coords, nu, sd.params, trust_samples=800)
    assert q["trustworthiness"] > 0.97 and q["trustworthiness_subsampled"] and q["trustworthiness_samples"] == 800
    assert q["linear_r2"]["f_m"] > 0.97 and q["linear_r2"]["gamma"] > 0.97, q
    pca = Embedding("pca", n_components=2)
    qp = pca.quality(X, pca.fit_transform(X), nu, sd.params, trust_samples=800)
    assert qp["linear_r2"]["f_m"] < q["linear_r2"]["f_m"] - 0.1  # the roll is not linearly unrolled
    # trustworthiness against scikit-learn on the full data
    from sklearn.manifold import trustworthiness

    full = iso.quality(X, coords, nu, sd.params, trust_samples=5000)
    assert math.isclose(full["trustworthiness"], trustworthiness(X.compute(), coords, n_neighbors=5), rel_tol=1e-9)


@pytest.mark.filterwarnings("ignore::scipy.sparse.SparseEfficiencyWarning")  # scikit-learn's completion
def test_isomap_matches_scikit_learn_and_joins_a_disconnected_graph():
    from sklearn.datasets import make_swiss_roll
    from sklearn.manifold import Isomap

    X, _ = make_swiss_roll(600, random_state=0)
    new, _ = make_swiss_roll(50, random_state=1)
    ours = Embedding("isomap", n_neighbors=10, n_components=2, block_size=128).fit(X)
    ref = Isomap(n_neighbors=10, n_components=2, eigen_solver="dense").fit(X)
    signs = np.sign(np.sum(ours.embedding_ * ref.embedding_, axis=0))
    scale = np.abs(ref.embedding_).max()
    np.testing.assert_allclose(ours.embedding_, ref.embedding_ * signs, atol=1e-8 * scale)
    np.testing.assert_allclose(ours.transform(new), ref.transform(new) * signs, atol=1e-8 * scale)
    assert ours.graph_components_ == 1
    # two far-apart blobs: the 5-NN graph has 2 components, joined by their closest pair
    rng = np.random.default_rng(5)
    blobs = np.concatenate([rng.standard_normal((60, 3)), rng.standard_normal((60, 3)) + 50.0])
    emb = Embedding("isomap", n_neighbors=5, n_components=2)
    with pytest.warns(UserWarning, match="2 connected components"):
        coords = emb.fit_transform(blobs)
    assert emb.graph_components_ == 2 and np.isfinite(coords).all() and np.isfinite(emb.estimator_.dist_matrix_).all()
    assert abs(coords[:60, 0].mean() - coords[60:, 0].mean()) > 40  # the blobs stay apart
    # with two components, the one joining edge is the closest pair, as scikit-learn's completion
    with pytest.warns(UserWarning, match="connected components"):
        ref = Isomap(n_neighbors=5, n_components=2, eigen_solver="dense").fit(blobs)
    signs = np.sign(np.sum(emb.embedding_ * ref.embedding_, axis=0))
    np.testing.assert_allclose(emb.embedding_, ref.embedding_ * signs, atol=1e-9 * np.abs(ref.embedding_).max())


def _reference_isomap(X: np.ndarray, new: np.ndarray, k: int, C: int):
    """pnp's Isomap before it used scikit-learn's (commit ddb5827), in a few lines: exact k-NN graph
    (self excluded, ties by index), components joined in rounds by each one's closest outside
    sample, Dijkstra geodesics, KernelPCA of −½ D² (seed 0); new rows placed through their k
    nearest fitted rows.  Returns (fitted coordinates, coordinates of ``new``)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components, shortest_path
    from scipy.spatial.distance import cdist
    from sklearn.decomposition import KernelPCA

    n = X.shape[0]
    D = cdist(X, X) + np.diag(np.full(n, np.inf))
    ind = np.argsort(D, axis=1, kind="stable")[:, :k]
    rows, cols = list(np.repeat(np.arange(n), k)), list(ind.ravel())
    n_comp, labels = connected_components(sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)))
    while n_comp > 1:
        for c in range(n_comp):
            inside, outside = np.flatnonzero(labels == c), np.flatnonzero(labels != c)
            sub = D[np.ix_(inside, outside)]
            i, j = np.unravel_index(np.argmin(sub), sub.shape)
            rows.append(inside[i])
            cols.append(outside[j])
        n_comp, labels = connected_components(sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)))
    graph = sp.csr_matrix((D[rows, cols], (rows, cols)), shape=(n, n))
    geo = shortest_path(graph, method="D", directed=False)
    kpca = KernelPCA(C, kernel="precomputed", random_state=0)
    fitted = kpca.fit_transform(-0.5 * geo ** 2)
    Dn = cdist(new, X)
    nn = np.argsort(Dn, axis=1, kind="stable")[:, :k]
    geo_new = np.min(geo[nn] + np.take_along_axis(Dn, nn, axis=1)[:, :, None], axis=1)
    return fitted, kpca.transform(-0.5 * geo_new ** 2)


def test_isomap_gives_the_coordinates_of_pnps_previous_implementation():
    """The reference is the previous implementation (above); signs are aligned per axis."""
    from sklearn.datasets import make_swiss_roll

    rng = np.random.default_rng(7)
    roll, _ = make_swiss_roll(500, random_state=3)
    # three blobs on a line: the 6-NN graph has 3 components, joined A-B and B-C (scikit-learn's own
    # completion, from the full data, would also link A-C)
    blobs = np.concatenate([rng.standard_normal((50, 4)) + [40.0 * i, 0, 0, 0] for i in range(3)])
    for X, k, C in ((roll, 10, 2), (blobs, 6, 3)):
        new = X[rng.choice(X.shape[0], 40, replace=False)] + 0.1 * rng.standard_normal((40, X.shape[1]))
        ref_fit, ref_new = _reference_isomap(X, new, k, C)
        emb = Embedding("isomap", n_neighbors=k, n_components=C, block_size=64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the blobs' graph is disconnected
            emb.fit(X)
        signs = np.sign(np.sum(emb.embedding_ * ref_fit, axis=0))
        scale = np.abs(ref_fit).max()
        np.testing.assert_allclose(emb.embedding_, ref_fit * signs, rtol=0, atol=1e-10 * scale)
        np.testing.assert_allclose(emb.transform(new), ref_new * signs, rtol=0, atol=1e-10 * scale)


def test_pca_matches_scikit_learn_and_transform_matches_fit():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(4)
    for n, K in ((300, 20), (40, 90)):  # covariance and Gram branches
        X = (rng.standard_normal((n, K)) * np.linspace(3, 0.1, K)).astype(np.float32)
        emb = Embedding("pca", n_components=3, block_size=16)
        coords = emb.fit_transform(X)
        ref = PCA(3).fit(X.astype(np.float64))
        signs = np.sign(np.sum(ref.components_ * emb.components_, axis=1))
        np.testing.assert_allclose(emb.components_, ref.components_ * signs[:, None], atol=1e-9)
        np.testing.assert_allclose(coords, ref.transform(X.astype(np.float64)) * signs, atol=1e-8)
        np.testing.assert_allclose(emb.explained_variance_, ref.explained_variance_, rtol=1e-9)
    # subsample fit: fitted rows keep their embedding, the others are transformed, and a linear
    # embedding of 2 parameters is recovered exactly by the linear fit
    nu = rng.uniform(-1, 1, (500, 2))
    X = nu @ rng.standard_normal((2, 6))
    emb = Embedding("pca", n_components=2, max_samples=100)
    coords = emb.fit_transform(X)
    np.testing.assert_allclose(coords, emb.transform(X), atol=1e-12)
    q = emb.quality(X, coords, nu, ["a", "b"])
    np.testing.assert_allclose([q["linear_r2"]["a"], q["linear_r2"]["b"]], 1.0, atol=1e-12)


def test_umap_plumbing_with_a_stand_in_module(monkeypatch):
    """umap-learn is an optional extra (not installed here): a stand-in module checks the calls."""
    import types

    calls = {}

    class UMAP:
        def __init__(self, n_neighbors, n_components, random_state):
            calls["init"] = (n_neighbors, n_components, random_state)

        def fit_transform(self, X):
            calls["fit"] = X.shape
            return X[:, :2] * 2.0

        def transform(self, X):
            assert X.dtype == np.float32
            return X[:, :2] * 2.0

    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=UMAP))
    X = np.random.default_rng(6).standard_normal((300, 5)).astype(np.float32)
    emb = Embedding("umap", n_neighbors=7, n_components=2, max_samples=100, random_state=3, block_size=32)
    coords = emb.fit_transform(X)
    assert calls == {"init": (7, 2, 3), "fit": (100, 5)}
    np.testing.assert_array_equal(coords, X[:, :2].astype(np.float64) * 2.0)


# ------------------------------------------------------------------------------ CLI
def test_cli_knn_and_embed_with_compare(stores, tmp_path, capsys):
    a, b = stores["smooth"], stores["roll"]
    out = tmp_path / "knn"
    assert main(["knn", a, "--k", "3", "--compare", b, "--out", str(out), "--quiet"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert set(rep["r2"]) == {"f_m", "gamma"} and set(rep["log2_ratio_median"]) == {"f_m", "gamma"}
    assert rep["k"] == 3 and rep["space"] == "features" and rep["split"] == "test" and rep["n_query"] == 205
    assert rep["r2"]["f_m"] > 0.99 and rep["seconds"] > 0 and rep["representation"]["name"] == "mss"
    assert (out / "knn.png").stat().st_size > 0 and (out / "compare.png").stat().st_size > 0
    cmp = json.loads((out / "compare.json").read_text())
    assert cmp["labels"] == ["geom_smooth", "geom_roll"]
    npz = np.load(out / "neighbours.npz")
    assert npz["neighbours"].shape == (205, 3) and np.all(open_store(a).split_codes[npz["neighbours"]] == 0)
    printed = capsys.readouterr().out
    assert "log2 ratio median" in printed and "geom_roll" in printed
    # the metric space on a store with Jacobians reports the neighbour overlap
    out_m = tmp_path / "knn_metric"
    assert main(["knn", stores["linear"], "--space", "metric", "--out", str(out_m), "--quiet"]) == 0
    assert json.loads((out_m / "report.json").read_text())["neighbour_overlap"] > 0.99
    # embed
    out_e = tmp_path / "embed"
    assert main(["embed", b, "--n-neighbors", "10", "--n-components", "2", "--max-samples", "700",
                 "--compare", a, "--out", str(out_e), "--quiet"]) == 0
    rep = json.loads((out_e / "report.json").read_text())
    assert rep["method"] == "isomap" and rep["n_fit"] == 700 and rep["n_samples"] == 1024
    assert rep["trustworthiness"] > 0.97 and set(rep["linear_r2"]) == {"f_m", "gamma"}
    emb = np.load(out_e / "embedding.npz")
    assert emb["coords"].shape == (1024, 2) and emb["fit"].sum() == 700
    np.testing.assert_array_equal(emb["theta"], open_store(b).theta())
    assert (out_e / "embedding.png").exists() and (out_e / "compare.json").exists()
    assert (out_e / "compare" / "geom_smooth" / "report.json").exists()


def test_cli_on_a_tiny_real_store(tmp_path, capsys):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from _stores import build_tiny_store

    path = build_tiny_store(tmp_path / "tiny.zarr", jacobian=True)
    assert main(["knn", path, "--k", "2", "--space", "metric", "--out", str(tmp_path / "k"), "--quiet"]) == 0
    rep = json.loads((tmp_path / "k" / "report.json").read_text())
    assert set(rep["r2"]) == {"f_c", "f_m", "gamma"} and 0 <= rep["neighbour_overlap"] <= 1
    assert main(["embed", path, "--method", "pca", "--out", str(tmp_path / "e"), "--quiet"]) == 0
    rep = json.loads((tmp_path / "e" / "report.json").read_text())
    assert rep["n_samples"] == 27 and 0 < rep["trustworthiness"] <= 1


def test_bad_options_give_clear_errors(stores, tmp_path, capsys, monkeypatch):
    a = stores["smooth"]

    def fails(argv, match):
        out = tmp_path / "never"
        assert main(argv + ["--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and match in err, err
        assert not out.exists()  # nothing half-written

    fails(["knn", a, "--k", "5000"], "--k 5000 is larger than the train split")
    fails(["knn", a, "--space", "riemann"], "--space must be one of features, metric")
    fails(["knn", a, "--split", "nope"], "--split must be one of test, val, train")
    fails(["knn", a, "--space", "metric"], "has no 'metric' array")
    fails(["knn", a, "--compare", stores["other_grid"]], "describe different grids")
    fails(["knn", str(tmp_path / "missing.zarr")], "no store at")
    fails(["embed", a, "--method", "tsne"], "--method must be one of isomap, pca, umap")
    fails(["embed", a, "--n-neighbors", "0"], "--n-neighbors must be an integer >= 1")
    fails(["embed", a, "--max-samples", "20", "--n-neighbors", "40"], "--n-neighbors must be in [1, 19]")
    monkeypatch.setitem(sys.modules, "umap", None)  # umap-learn not importable
    fails(["embed", a, "--method", "umap"], "pip install 'pnp[umap]'")
    with pytest.raises(ValueError, match="k must be an integer in \\[1, 3\\]"):
        KNNRegressor(k=4).fit(np.zeros((3, 2)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="method must be one of"):
        Embedding("tsne").fit(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="not fitted"):
        KNNRegressor().predict(np.zeros((1, 2)))


def test_estimators_follow_scikit_learn_conventions():
    """clone, get/set_params, NotFittedError, and R² equal to sklearn.metrics'."""
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from sklearn.metrics import r2_score

    est = KNNRegressor(k=3, space="features")
    twin = clone(est)
    assert twin is not est and twin.get_params() == est.get_params()
    assert twin.set_params(k=2).k == 2 and est.k == 3
    emb = clone(Embedding("pca", n_components=2, random_state=4))
    assert emb.get_params()["random_state"] == 4 and emb.get_params()["method"] == "pca"
    with pytest.raises(NotFittedError):
        KNNRegressor().kneighbors(np.zeros((1, 2)))
    with pytest.raises(NotFittedError):
        Embedding("pca").transform(np.zeros((1, 2)))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    y = X[:, :2] @ rng.normal(size=(2, 3)) + 0.3 * rng.normal(size=(40, 3))
    fitted = clone(est).fit(X, y)
    pred = fitted.predict(X[:7])
    ind = fitted.kneighbors(X[:7])[1]
    sc = knn_scores(ind, y, np.exp(y), y[:7], np.exp(y[:7]), ["a", "b", "c"])
    np.testing.assert_allclose(sc.r2, r2_score(y[:7], pred, multioutput="raw_values"), rtol=1e-12)
    assert math.isclose(fitted.score(X[:7], y[:7]), r2_score(y[:7], pred), rel_tol=1e-12)
    # a constant column: R² undefined, NaN (None in the summary), left out of the mean
    yc = np.c_[y[:, :1], np.ones(40)]
    sc = knn_scores(ind, yc, np.exp(yc), yc[:7], np.exp(yc[:7]), ["a", "const"])
    assert np.isnan(sc.r2[1]) and sc.summary()["r2"]["const"] is None
    assert math.isclose(sc.summary()["r2_mean"], sc.r2[0])
    # linear R² of an embedding: the least-squares affine fit, scored by r2_score
    q = embedding_quality(X, X[:, :2], np.c_[y, np.ones(40)], ["a", "b", "c", "const"], trust_neighbors=3)
    ls = np.linalg.lstsq(np.c_[X[:, :2], np.ones(40)], y, rcond=None)[0]
    np.testing.assert_allclose([q["linear_r2"][p] for p in "abc"],
                               r2_score(y, np.c_[X[:, :2], np.ones(40)] @ ls, multioutput="raw_values"), rtol=1e-10)
    assert q["linear_r2"]["const"] is None
    bad = np.ones((10, 3), np.float32)
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match="row 4 has non-finite values"):
        kneighbors(bad[:2], bad, 2)


def test_estimator_parameters_are_checked_at_fit_with_typed_errors():
    """Wrong types raise TypeError, bad values ValueError, both naming the parameter (at fit, so that
    clone / set_params never validate)."""
    X, y = np.zeros((10, 2)), np.zeros((10, 1))
    knn = [({"k": 2.5}, TypeError, "k must be an integer >= 1, got float 2.5"),
           ({"k": True}, TypeError, "k must be an integer >= 1, got bool True"),
           ({"k": 0}, ValueError, "k must be an integer >= 1, got 0"),
           ({"k": 11}, ValueError, "k must be an integer in [1, 10] (the number of training samples, n_samples = 10), got 11"),
           ({"space": 1}, TypeError, "space must be one of 'features', 'metric', got int 1"),
           ({"space": "riemann"}, ValueError, "space must be one of 'features', 'metric', got 'riemann'"),
           ({"backend": "annoy"}, ValueError, "backend must be one of 'exact', 'faiss', got 'annoy'"),
           ({"block_size": "64"}, TypeError, "block_size must be None or an integer >= 1, got str '64'"),
           ({"block_size": 0}, ValueError, "block_size must be None or an integer >= 1, got 0"),
           ({"group_bytes": 1.0}, TypeError, "group_bytes must be an integer >= 1, got float 1.0"),
           ({"progress": "yes"}, TypeError, "progress must be True or False, got str 'yes'"),
           ({"space": "metric", "backend": "faiss"}, ValueError, "backend='faiss' searches the feature space only")]
    for params, err, msg in knn:
        est = KNNRegressor(**params)  # accepted as given
        with pytest.raises(err) as info:
            est.fit(X, y)
        assert str(info.value).startswith(msg), (params, str(info.value))
    emb = [({"method": None}, TypeError, "method must be one of 'isomap', 'pca', 'umap', got NoneType None"),
           ({"n_neighbors": 4.0}, TypeError, "n_neighbors must be an integer >= 1, got float 4.0"),
           ({"n_neighbors": 10}, ValueError, "n_neighbors must be an integer in [1, 9] (fitted samples - 1), got 10"),
           ({"n_components": np.float64(2)}, TypeError, "n_components must be an integer >= 1, got float64 2.0"),
           ({"n_components": 5, "method": "pca"}, ValueError,
            "n_components must be an integer in [1, 4] for 10 fitted samples of 4 features (n_samples = 10, n_features = 4), got 5"),
           ({"max_samples": 1}, ValueError, "max_samples must be None or an integer >= 2, got 1"),
           ({"max_samples": "all"}, TypeError, "max_samples must be None or an integer >= 2, got str 'all'"),
           ({"random_state": -1}, ValueError, "random_state must be an integer >= 0, got -1"),
           ({"random_state": None}, TypeError, "random_state must be an integer >= 0, got NoneType None"),
           ({"block_size": 2.0}, TypeError, "block_size must be None or an integer >= 1, got float 2.0"),
           ({"progress": 1}, TypeError, "progress must be True or False, got int 1")]
    for params, err, msg in emb:
        with pytest.raises(err) as info:
            Embedding(**params).fit(np.random.default_rng(0).standard_normal((10, 4)))
        assert str(info.value).startswith(msg), (params, str(info.value))
    for kw, err, msg in (({"trust_samples": 2}, ValueError, "trust_samples must be an integer >= 3, got 2"),
                         ({"trust_neighbors": 5}, ValueError, "trust_neighbors must be an integer in [1, 4] (below "
                                                              "half the 10 samples"),
                         ({"trust_neighbors": 1.5}, TypeError, "trust_neighbors must be an integer in [1, 4]")):
        with pytest.raises(err, match=re.escape(msg)):
            embedding_quality(X, X, y, **kw)
    with pytest.raises(TypeError, match=re.escape("train_ids must be an integer array of shape (10,), got dtype float64")):
        kneighbors(X, X, 2, train_ids=np.zeros(10))


def test_faiss_backend_missing_gives_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # faiss not importable
    with pytest.raises(ValueError) as info:
        KNNRegressor(k=2, backend="faiss").fit(np.zeros((5, 2)), np.zeros((5, 1)))
    assert str(info.value) == "backend='faiss' needs the optional dependency faiss-cpu: pip install 'pnp[faiss]'"


def test_faiss_backend_finds_the_exact_neighbours(stores):
    """faiss's float32 flat index, re-ranked in float64: the exact search's neighbours and distances,
    except where the exact k-th and (k+1)-th distances nearly tie."""
    pytest.importorskip("faiss", reason="faiss is an optional extra: pip install 'pnp[faiss]'")
    from pnp.geometry import faiss_kneighbors

    sd, tr, te = split_arrays(stores["smooth"])
    exact = KNNRegressor(k=5).fit(sd.features(tr), sd.nu(tr), ids=tr)
    fast = KNNRegressor(k=5, backend="faiss").fit(sd.features(tr), sd.nu(tr), ids=tr)
    for queries, ids in ((sd.features(te), te), (sd.features(tr), tr)):  # test split; train leave-one-out
        d1, i1 = exact.kneighbors(queries, ids=ids)
        d2, i2 = fast.kneighbors(queries, ids=ids)
        d6 = exact.set_params(k=6).kneighbors(queries, ids=ids)[0]
        exact.set_params(k=5)
        tie = d6[:, 5] - d6[:, 4] <= 1e-6 * d6[:, 5]
        assert tie.mean() < 0.05
        np.testing.assert_array_equal(i2[~tie], i1[~tie])
        np.testing.assert_allclose(d2, d1, rtol=1e-9, atol=1e-12)
        if ids is tr:
            assert not np.any(tr[i2] == tr[:, None])  # never its own neighbour
    # ties: duplicated rows are ranked by the smaller position, as in the exact search
    rng = np.random.default_rng(2)
    X = rng.standard_normal((200, 30)).astype(np.float32)
    dup = np.repeat(X[:40], 3, axis=0)
    np.testing.assert_array_equal(faiss_kneighbors(X[:40], dup, 3, block_size=16)[1], np.arange(120).reshape(40, 3))
    Q = rng.standard_normal((64, 30)).astype(np.float32)
    d1, i1 = kneighbors(Q, X, 7)
    d2, i2 = faiss_kneighbors(Q, X, 7, block_size=16)
    np.testing.assert_array_equal(i2, i1)
    np.testing.assert_allclose(d2, d1, rtol=1e-12)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("estimator", [KNNRegressor(k=3), Embedding("pca", n_components=2),
                                       Embedding("isomap", n_neighbors=3, n_components=2)],
                         ids=["knn", "pca", "isomap"])
def test_estimators_pass_scikit_learns_own_checks(estimator):
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(estimator, on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert len(results) > 40 and not failed, failed


def test_knn_with_one_target_predicts_one_column_and_refuses_no_target():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 5)), rng.standard_normal(40)
    est = KNNRegressor(k=4).fit(X, y)
    pred = est.predict(X[:7])
    two = KNNRegressor(k=4).fit(X, y[:, None]).predict(X[:7])
    assert pred.shape == (7,) and two.shape == (7, 1) and np.array_equal(pred, two[:, 0])
    with pytest.raises(ValueError, match="requires y to be passed"):
        KNNRegressor(k=4).fit(X, None)
    with pytest.raises(ValueError, match="X has 4 features, but KNNRegressor is expecting 5 features"):
        est.predict(X[:, :4])
