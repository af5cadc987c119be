"""Evaluate stores' geometry: k-NN regression and manifold embeddings (``pnp knn`` / ``pnp embed``).

Orchestration only — every number comes from :mod:`pnp.geometry`.  Opens the stores, checks
that stores compared with ``--compare`` describe the same grid (same θ, same split), runs the
estimators, prints the tables and writes the outputs (all computed first, then written, each file
atomically)::

    run_knn([STORE, OTHER...], OUT, k=5, space="features", split="test")
        OUT/report.json, OUT/knn.png, OUT/neighbours.npz       (the first store)
        OUT/compare/<label>/{report.json, knn.png, neighbours.npz}  (each other store)
        OUT/compare.json, OUT/compare.png                      (with --compare)
    run_embed([STORE, OTHER...], OUT, method="isomap", n_neighbors=40, n_components=3, max_samples=4096)
        OUT/report.json, OUT/embedding.npz, OUT/embedding.png  (+ the same compare layout)

With several stores, only the samples done in every store are used, so that the rows match.

``python -m pnp.pipelines.evaluate dafx`` runs both on the complete DAFx'22 stores
(``data/stores/amchirp_dafx_{jtfs,f4,scattering1d,mss}.zarr``) and copies the comparison to
``docs/figures/dafx_{knn,embed}.png`` and ``docs/results/dafx_{knn,embed}.json``.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Sequence

import numpy as np

from pnp.files import atomic_write, write_json
from pnp.geometry.reading import block_rows

KNN_SPLITS = ("test", "val", "train")
EMBED_SPLITS = ("all", "train", "val", "test")


# ------------------------------------------------------------------------------ helpers
def _write_npz(path: str, **arrays) -> None:
    atomic_write(path, lambda tmp: np.savez(tmp, **arrays))


def _choice(value: str, option: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{option} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _positive(value, option: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{option} must be an integer >= {low}, got {value!r}")
    return int(value)


def _threads(threads: int | None):
    """Limit the BLAS / OpenMP threads (on a shared machine, 2 OpenBLAS threads spin-wait whenever
    another process holds a core: 1 thread is faster and steadier there)."""
    from contextlib import nullcontext

    from threadpoolctl import threadpool_limits

    if threads is None:
        return nullcontext()
    _positive(threads, "--threads")
    return threadpool_limits(limits=int(threads))


def labels_for(stores) -> list[str]:
    """Short unique labels: the representation names, else the store names, else numbered."""
    for cand in ([s.representation_config.get("name", "") for s in stores], [s.name for s in stores]):
        if all(cand) and len(set(cand)) == len(cand):
            return cand
    return [f"{i}:{s.name or os.path.basename(s.path)}" for i, s in enumerate(stores)]


def open_stores(paths: Sequence[str]):
    """Open the stores; with several, check that they describe the same grid and return the mask
    (S,) of samples done in all of them."""
    from pnp.geometry.reading import same_grid
    from pnp.store import open_store

    if not paths:
        raise ValueError("at least one store is needed")
    stores = [open_store(p) for p in paths]
    if len(stores) > 1:
        try:
            same_grid(stores)
        except ValueError as err:
            raise ValueError(f"--compare: {err}") from None
    done = np.logical_and.reduce([s.done for s in stores])
    for st in stores:  # an unfinished store is used, with a warning on the console
        counts = st.counts()
        pending, failed = counts["pending"], counts["failed"]
        if pending or failed:
            print(f"warning: {st.path}: {pending} of {st.n_samples} samples are pending and {failed} failed; they are "
                  "left out (samples_left_out in report.json); run `pnp precompute` to complete the store",
                  file=sys.stderr, flush=True)
    return stores, done


def _indices(store, done: np.ndarray, split: str) -> np.ndarray:
    return np.flatnonzero(store.in_split(split) & done).astype(np.int64)


def _fmt(v, spec: str = ".4f") -> str:
    return "—" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _provenance(store) -> dict[str, Any]:
    a = store.attrs
    return {"store": store.path, "name": store.name, "representation": store.representation_config,
            "n_coefs": store.n_features, "compression": a.get("compression"), "params": store.params,
            "fixed": a.get("fixed", {}), "spec_hash": a.get("spec_hash")}


def _excluded(store, done: np.ndarray) -> int:
    return int(store.n_samples - done.sum())


# ------------------------------------------------------------------------------ k-NN
def knn_store(store, done: np.ndarray, k: int, space: str, split: str, block_size=None, progress=True):
    """k-NN evaluation of one opened store → (report dict, arrays dict for neighbours.npz)."""
    from pnp.geometry import KNNRegressor, knn_scores, overlap

    train = _indices(store, done, "train")
    query = _indices(store, done, split)
    t0 = time.perf_counter()
    nu_tr, th_tr = store.nu(train), store.theta(train)
    kw = dict(k=k, block_size=block_size, progress=progress)
    if space == "metric":
        est = KNNRegressor(space="metric", **kw).fit(nu_tr, nu_tr, theta=th_tr, metric=store.metric(train), ids=train)
        dist, ind = est.kneighbors(store.nu(query), ids=query)
        feat = KNNRegressor(space="features", **kw).fit(store.features(train), nu_tr, ids=train)
        ind_f = feat.kneighbors(store.features(query), ids=query)[1]
    else:
        est = KNNRegressor(space="features", **kw).fit(store.features(train), nu_tr, theta=th_tr, ids=train)
        dist, ind = est.kneighbors(store.features(query), ids=query)
    scores = knn_scores(ind, nu_tr, th_tr, store.nu(query), store.theta(query), store.params)
    seconds = time.perf_counter() - t0
    K = store.n_features
    b = block_rows(K, block_size)
    report = {
        **_provenance(store),
        "k": k, "space": space, "split": split, "n_train": int(train.size), "n_query": int(query.size),
        "samples_left_out": _excluded(store, done),
        **scores.summary(),
        "prediction": "mean of the k neighbours' nu (= geometric-mean theta for log parameters)",
        "ratio": "log2( exp(mean over the k neighbours of ln theta) / theta ), NaN where theta <= 0",
        "leave_one_out": split == "train",
        "block_size": b,
        "seconds": round(seconds, 3),
    }
    if space == "metric":
        report["neighbour_overlap"] = overlap(ind, ind_f)
        report["metric_note"] = ("neighbours under d^2 = (nu_i - nu_j)^T M(nu_j) (nu_i - nu_j), which uses the query's nu: "
                                 "not a blind regressor; neighbour_overlap = fraction of them also feature-space neighbours")
    arrays = {"query": query, "neighbours": train[ind], "distances": dist, "pred_nu": scores.pred_nu,
              "nu": store.nu(query), "theta": store.theta(query), "log2_ratio": scores.log2_ratio,
              "params": np.array(store.params)}
    return report, arrays


def knn_table(report: dict) -> str:
    head = (f"k-NN {report['name']} ({report['representation'].get('name')}, K={report['n_coefs']}): "
            f"k={report['k']}, {report['space']} space, {report['n_query']} {report['split']} queries, "
            f"{report['n_train']} train samples, {report['seconds']:.1f} s")
    rows = []
    for p in report["params"]:
        lo, hi = report["log2_ratio_iqr"][p]
        rows.append([p, _fmt(report["r2"][p]), _fmt(report["mae_nu"][p]), _fmt(report["log2_ratio_median"][p], "+.4f"),
                     f"[{_fmt(lo, '+.4f')}, {_fmt(hi, '+.4f')}]"])
    out = head + "\n" + _table(["param", "R²", "MAE ν", "log2 ratio median", "log2 ratio IQR"], rows)
    if "neighbour_overlap" in report:
        out += f"\nneighbour overlap with the feature space: {report['neighbour_overlap']:.3f}"
    return out


def knn_compare_table(reports: Sequence[dict], labels: Sequence[str]) -> str:
    rows = []
    for p in reports[0]["params"]:
        rows.append([p, "R²"] + [_fmt(r["r2"][p]) for r in reports])
        rows.append(["", "MAE ν"] + [_fmt(r["mae_nu"][p]) for r in reports])
        rows.append(["", "log2 ratio median"] + [_fmt(r["log2_ratio_median"][p], "+.4f") for r in reports])
        rows.append(["", "log2 ratio IQR"] + [f"[{_fmt(r['log2_ratio_iqr'][p][0], '+.3f')}, "
                                              f"{_fmt(r['log2_ratio_iqr'][p][1], '+.3f')}]" for r in reports])
    rows.append(["mean", "R²"] + [_fmt(r["r2_mean"]) for r in reports])
    if "neighbour_overlap" in reports[0]:
        rows.append(["", "neighbour overlap"] + [_fmt(r["neighbour_overlap"], ".3f") for r in reports])
    rows.append(["", "K"] + [str(r["n_coefs"]) for r in reports])
    rows.append(["", "time (s)"] + [f"{r['seconds']:.1f}" for r in reports])
    r0 = reports[0]
    head = (f"k-NN comparison: k={r0['k']}, {r0['space']} space, {r0['n_query']} {r0['split']} queries, "
            f"{r0['n_train']} train samples")
    return head + "\n" + _table(["param", "measure", *labels], rows)


def run_knn(stores: Sequence[str], out: str, k: int = 5, space: str = "features", split: str = "test",
            block_size: int | None = None, threads: int | None = 1, progress: bool = True, verbose: bool = True) -> dict:
    """k-NN evaluation of ``stores[0]`` (and side by side of the others); see the module docs.
    ``threads``: BLAS threads (None: the library's default).  Returns ``{"reports", "labels"}``."""
    from pnp.geometry.plots import plot_log2_ratios

    _positive(k, "--k")
    if threads is not None:
        _positive(threads, "--threads")
    _choice(space, "--space", ("features", "metric"))
    _choice(split, "--split", KNN_SPLITS)
    if block_size is not None:
        _positive(block_size, "--block-size")
    opened, done = open_stores(stores)
    labels = labels_for(opened)
    for st in opened:  # every check before any computation
        n_train = _indices(st, done, "train").size
        n_query = _indices(st, done, split).size
        top = n_train - (1 if split == "train" else 0)
        if n_query == 0:
            raise ValueError(f"{st.path}: the {split} split has no computed sample; choose another --split")
        if k > top:
            raise ValueError(f"--k {k} is larger than the train split of {st.path} ({n_train} samples"
                             f"{', less the query itself' if split == 'train' else ''}); choose --k in [1, {top}]")
        if space == "metric" and not st.has_metric:
            st.metric(np.arange(0))  # raises the clear "no metric array" error
    with _threads(threads):
        results = [knn_store(st, done, k, space, split, block_size, progress) for st in opened]
    reports = [r for r, _ in results]
    for (rep, _arrays), label in zip(results, labels):
        rep["label"] = label
    # outputs
    title = lambda r: (f"{r['name']}: k={k}, {space} space, {r['n_query']} {split} queries")  # noqa: E731
    shown = [f"{p.name} ({p.unit})" if p.unit else p.name for p in opened[0].space.parameters]
    for i, ((rep, arrays), label) in enumerate(zip(results, labels)):
        d = out if i == 0 else os.path.join(out, "compare", label)
        _write_npz(os.path.join(d, "neighbours.npz"), **arrays)
        plot_log2_ratios([arrays["log2_ratio"]], [label], shown, os.path.join(d, "knn.png"), title(rep))
        write_json(os.path.join(d, "report.json"), rep)
    if verbose:
        for rep in reports:
            print(knn_table(rep), flush=True)
    if len(opened) > 1:
        table = knn_compare_table(reports, labels)
        plot_log2_ratios([a["log2_ratio"] for _, a in results], labels, shown,
                         os.path.join(out, "compare.png"), f"k-NN log2 ratios, k={k}, {space} space, {split} split")
        write_json(os.path.join(out, "compare.json"), {"labels": labels, "reports": dict(zip(labels, reports)),
                                                        "table": table})
        if verbose:
            print(table, flush=True)
    return {"reports": reports, "labels": labels}


# ------------------------------------------------------------------------------ embedding
def embed_store(store, done: np.ndarray, method: str, n_neighbors: int, n_components: int, max_samples, split: str,
                seed: int, trust_samples: int, trust_neighbors: int, block_size=None, progress=True):
    """Embedding of one opened store → (report dict, arrays dict for embedding.npz)."""
    from pnp.geometry import Embedding

    idx = _indices(store, done, split)
    X = store.features(idx)
    emb = Embedding(method=method, n_neighbors=n_neighbors, n_components=n_components, max_samples=max_samples,
                    random_state=seed, block_size=block_size, progress=progress)
    t0 = time.perf_counter()
    coords = emb.fit_transform(X)
    t1 = time.perf_counter()
    nu = store.nu(idx)
    quality = emb.quality(X, coords, nu, store.params, trust_samples=trust_samples, trust_neighbors=trust_neighbors)
    t2 = time.perf_counter()
    fit = np.zeros(idx.size, bool)
    fit[emb.fit_rows_] = True
    report = {
        **_provenance(store),
        "method": method, "n_neighbors": n_neighbors if method != "pca" else None, "n_components": n_components,
        "max_samples": max_samples, "split": split, "n_samples": int(idx.size), "n_fit": int(emb.fit_rows_.size),
        "seed": seed, "samples_left_out": _excluded(store, done),
        **quality,
        "linear_r2_mean": float(np.nanmean([v for v in quality["linear_r2"].values() if v is not None] or [np.nan])),
        "seconds_embedding": round(t1 - t0, 3), "seconds_quality": round(t2 - t1, 3),
    }
    if method == "pca":
        report["explained_variance"] = emb.explained_variance_.tolist()
    if method == "isomap":
        report["graph_components"] = emb.graph_components_  # before joining (1 = connected)
    arrays = {"coords": coords, "indices": idx, "nu": nu, "theta": store.theta(idx), "fit": fit,
              "params": np.array(store.params)}
    return report, arrays


def embed_table(report: dict) -> str:
    head = (f"{report['method']} embedding of {report['name']} ({report['representation'].get('name')}, "
            f"K={report['n_coefs']}): {report['n_samples']} samples ({report['n_fit']} fitted), "
            f"{report['n_components']} components, {report['seconds_embedding']:.1f} s")
    sub = " (subsample)" if report["trustworthiness_subsampled"] else ""
    rows = [["trustworthiness" + sub, _fmt(report["trustworthiness"])]]
    rows += [[f"linear R² {p}", _fmt(v)] for p, v in report["linear_r2"].items()]
    return head + "\n" + _table(["measure", "value"], rows)


def embed_compare_table(reports: Sequence[dict], labels: Sequence[str]) -> str:
    rows = [["trustworthiness"] + [_fmt(r["trustworthiness"]) for r in reports]]
    for p in reports[0]["params"]:
        rows.append([f"linear R² {p}"] + [_fmt(r["linear_r2"][p]) for r in reports])
    rows.append(["linear R² mean"] + [_fmt(r["linear_r2_mean"]) for r in reports])
    rows.append(["K"] + [str(r["n_coefs"]) for r in reports])
    rows.append(["time (s)"] + [f"{r['seconds_embedding']:.1f}" for r in reports])
    r0 = reports[0]
    nn = f", n_neighbors={r0['n_neighbors']}" if r0["n_neighbors"] else ""
    head = (f"{r0['method']} comparison{nn}, {r0['n_components']} components, {r0['n_samples']} samples "
            f"({r0['n_fit']} fitted); trustworthiness on {r0['trustworthiness_samples']} samples, "
            f"{r0['trustworthiness_neighbors']} neighbours")
    return head + "\n" + _table(["measure", *labels], rows)


def run_embed(stores: Sequence[str], out: str, method: str = "isomap", n_neighbors: int = 40, n_components: int = 3,
              max_samples: int | None = 4096, split: str = "all", seed: int = 0, trust_samples: int = 4096,
              trust_neighbors: int = 5, block_size: int | None = None, threads: int | None = 1,
              progress: bool = True, verbose: bool = True) -> dict:
    """Embedding of ``stores[0]`` (and side by side of the others); see the module docs.
    ``threads``: BLAS threads (None: the library's default)."""
    _check_embed_options(method, n_neighbors, n_components, max_samples, split, seed, trust_samples,
                         trust_neighbors, block_size, threads)
    opened, done = open_stores(stores)
    labels = labels_for(opened)
    for st in opened:
        _check_embed_sizes(st, done, method, n_neighbors, n_components, max_samples, split, trust_samples,
                           trust_neighbors)
    with _threads(threads):
        results = [embed_store(st, done, method, n_neighbors, n_components, max_samples, split, seed, trust_samples,
                               trust_neighbors, block_size, progress) for st in opened]
    reports = [r for r, _ in results]
    for rep, label in zip(reports, labels):
        rep["label"] = label
    _write_embeddings(out, opened[0].space, method, results, labels, verbose)
    return {"reports": reports, "labels": labels}


def _check_embed_options(method, n_neighbors, n_components, max_samples, split, seed, trust_samples,
                         trust_neighbors, block_size, threads) -> None:
    """Each option of :func:`run_embed` in its range (one line naming the option), before any store is read."""
    from pnp.geometry.embedding import METHODS, import_umap

    _choice(method, "--method", METHODS)
    if threads is not None:
        _positive(threads, "--threads")
    if method == "umap":
        import_umap()
    _positive(n_neighbors, "--n-neighbors")
    _positive(n_components, "--n-components")
    if max_samples is not None:
        _positive(max_samples, "--max-samples", low=2)
    _choice(split, "--split", EMBED_SPLITS)
    _positive(seed, "--seed", low=0)
    _positive(trust_samples, "--trust-samples", low=3)
    _positive(trust_neighbors, "--trust-neighbors")
    if block_size is not None:
        _positive(block_size, "--block-size")


def _check_embed_sizes(st, done, method, n_neighbors, n_components, max_samples, split, trust_samples,
                       trust_neighbors) -> None:
    """The options that depend on the store's computed samples and features."""
    n = _indices(st, done, split).size
    n_fit = n if max_samples is None else min(n, max_samples)
    m = min(n, trust_samples)
    if n_fit < 3:
        raise ValueError(f"{st.path}: the {split} split has {n} computed sample(s); an embedding needs at least 3")
    if method != "pca" and n_neighbors > n_fit - 1:
        raise ValueError(f"--n-neighbors must be in [1, {n_fit - 1}] (fitted samples - 1), got {n_neighbors}")
    if n_components > min(n_fit - (0 if method == "pca" else 1), st.n_features):
        raise ValueError(f"--n-components must be in [1, {min(n_fit - 1, st.n_features)}], got {n_components}")
    if not trust_neighbors < m / 2:
        raise ValueError(f"--trust-neighbors must be < {m / 2:g} (half the {m} samples trustworthiness is "
                         f"computed on), got {trust_neighbors}")


def _write_embeddings(out: str, space, method: str, results: list, labels: list[str], verbose: bool) -> None:
    """Each store's embedding.npz / .png / report.json (the first in ``out``, the others in
    ``out/compare/LABEL``), and with several stores compare.png / compare.json."""
    from pnp.geometry.plots import plot_embedding

    reports = [r for r, _ in results]
    log_scale = [p.is_log for p in space.parameters]
    shown = [f"{p.name} ({p.unit})" if p.unit else p.name for p in space.parameters]
    for i, ((rep, arrays), label) in enumerate(zip(results, labels)):
        d = out if i == 0 else os.path.join(out, "compare", label)
        _write_npz(os.path.join(d, "embedding.npz"), **arrays)
        plot_embedding([arrays["coords"]], [arrays["theta"]], [label], shown, log_scale,
                       os.path.join(d, "embedding.png"),
                       f"{method} of {rep['name']} ({label}, K={rep['n_coefs']}): trustworthiness "
                       f"{rep['trustworthiness']:.4f}")
        write_json(os.path.join(d, "report.json"), rep)
    if verbose:
        for rep in reports:
            print(embed_table(rep), flush=True)
    if len(results) > 1:
        table = embed_compare_table(reports, labels)
        plot_embedding([a["coords"] for _, a in results], [a["theta"] for _, a in results], labels,
                       shown, log_scale, os.path.join(out, "compare.png"),
                       f"{method} embeddings, coloured by each parameter")
        write_json(os.path.join(out, "compare.json"), {"labels": labels, "reports": dict(zip(labels, reports)),
                                                        "table": table})
        if verbose:
            print(table, flush=True)


# ------------------------------------------------------------------------------ the DAFx'22 comparison
DAFX_STORES = ("data/stores/amchirp_dafx_jtfs.zarr", "data/stores/amchirp_dafx_f4.zarr",
               "data/stores/amchirp_dafx_scattering1d.zarr", "data/stores/amchirp_dafx_mss.zarr")


def run_dafx(stores: Sequence[str] = DAFX_STORES, runs: str = "runs/dafx", figures: str = "docs/figures",
             results: str = "docs/results", threads: int | None = 1, progress: bool = True) -> None:
    """k-NN (k = 5, test split) and Isomap (40 neighbours, 3 components, all samples) of the DAFx'22
    grid under each representation, side by side; only complete stores are used (the others are
    named).  Copies the comparison figures and JSON to ``figures/dafx_{knn,embed}.png`` and
    ``results/dafx_{knn,embed}.json``."""
    import shutil

    from pnp.store import open_store

    ready = []
    for path in stores:
        try:
            st = open_store(path)
        except (FileNotFoundError, ValueError) as err:
            print(f"skipping {path}: {err}", flush=True)
            continue
        if not st.done.all():
            print(f"skipping {path}: {int(st.done.sum())}/{st.n_samples} samples done", flush=True)
            continue
        ready.append(path)
    if not ready:
        raise ValueError("no complete DAFx store; run pnp precompute data/amchirp_dafx*.toml first")
    os.makedirs(figures, exist_ok=True)
    os.makedirs(results, exist_ok=True)
    for kind, run in (("knn", run_knn), ("embed", run_embed)):
        out = os.path.join(runs, kind)
        run(ready, out, threads=threads, progress=progress)
        single = len(ready) == 1
        shutil.copyfile(os.path.join(out, "knn.png" if single and kind == "knn" else
                                     "embedding.png" if single else "compare.png"),
                        os.path.join(figures, f"dafx_{kind}.png"))
        shutil.copyfile(os.path.join(out, "report.json" if single else "compare.json"),
                        os.path.join(results, f"dafx_{kind}.json"))
        print(f"wrote {os.path.join(figures, f'dafx_{kind}.png')} and {os.path.join(results, f'dafx_{kind}.json')}",
              flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m pnp.pipelines.evaluate",
                                description="the DAFx'22 comparison of representations (k-NN and Isomap)")
    p.add_argument("step", choices=["dafx"])
    p.add_argument("--stores", nargs="+", default=list(DAFX_STORES))
    p.add_argument("--runs", default="runs/dafx")
    p.add_argument("--figures", default="docs/figures")
    p.add_argument("--results", default="docs/results")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    from pnp.errors import run_reported

    def body() -> int:
        run_dafx(args.stores, args.runs, args.figures, args.results, threads=args.threads, progress=not args.quiet)
        return 0

    return run_reported(p.prog, body)


if __name__ == "__main__":
    raise SystemExit(main())
