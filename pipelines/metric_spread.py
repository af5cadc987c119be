"""The spread of the metric M = JᵀJ over a store: trace(M) quantiles and the zeroth order's share.

Orchestration only (the numbers come from :func:`pnp.jacobian.metric_trace_and_share`)::

    python -m pnp.pipelines.metric_spread data/stores/amchirp_pnp_local.zarr data/stores/amchirp_train.zarr \\
        --out docs/results/metric_spread.json --figure docs/figures/metric_spread.png

For every done sample of each store: trace(M) and the fraction of it carried by the zeroth-order
coefficient (the JTFS channel of ``meta()["order"] == 0``); printed and written as min / median /
p90 / max, with a histogram of log10 trace(M) per store (and, per store, trace(M) against the
chirp rate when the store has a ``gamma`` parameter).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

QUANTILES = {"min": 0.0, "median": 0.5, "p90": 0.9, "max": 1.0}


def spread(path: str) -> dict:
    """Trace quantiles and zeroth-order share of the done samples of the store at ``path``."""
    import torch
    from tqdm.auto import tqdm

    from pnp import store as pstore
    from pnp.jacobian import metric_trace_and_share

    st = pstore.open_store(path)
    spec = st.spec()
    if "jacobian" not in st:
        raise ValueError(f"{path}: the store has no Jacobian (store.jacobian = false)")
    rep = spec.build_representation()
    order = rep.meta()["order"] if hasattr(rep, "meta") else np.full(st.n_coefs, np.nan)
    zeroth = np.flatnonzero(np.asarray(order) == 0)
    done = st.status() == pstore.DONE
    traces, shares, thetas = [], [], []
    for a, b in tqdm(pstore.chunk_ranges(st.n_samples, st.chunk_size), desc=spec.name, unit="chunk"):
        sel = done[a:b]
        if not sel.any():
            continue
        J = torch.as_tensor(np.asarray(st.group["jacobian"][a:b])[sel])
        trace, share = metric_trace_and_share(J, torch.as_tensor(zeroth))
        traces.append(trace.numpy())
        shares.append(share.numpy())
        thetas.append(np.asarray(st.group["theta"][a:b])[sel])
    traces_all, shares_all, theta = np.concatenate(traces), np.concatenate(shares), np.concatenate(thetas)
    q = {k: float(np.quantile(traces_all, v)) for k, v in QUANTILES.items()}
    s = {k: float(np.quantile(shares_all, v)) for k, v in QUANTILES.items()}
    return {"store": path, "spec": spec.name, "samples": int(traces_all.size), "trace": q,
            "trace_ratio_max_min": q["max"] / q["min"], "order0_share": s, "params": st.params,
            "_trace": traces_all, "_theta": theta}


def figure(results: list[dict], path: str) -> None:
    from pnp.figures import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    lo = min(np.log10(r["_trace"]).min() for r in results)
    hi = max(np.log10(r["_trace"]).max() for r in results)
    bins = np.linspace(lo, hi, 60)
    for r in results:
        label = f"{r['spec']} ({r['samples']} sounds; max/min ×{r['trace_ratio_max_min']:.2g})"
        axes[0].hist(np.log10(r["_trace"]), bins=bins, alpha=0.6, label=label)
        if "gamma" in r["params"]:
            g = r["_theta"][:, r["params"].index("gamma")]
            axes[1].scatter(g, r["_trace"], s=4, alpha=0.5, label=r["spec"])
    axes[0].set_xlabel("log10 trace(M)  (M = JᵀJ, J w.r.t. ν ∈ [-1, 1])")
    axes[0].set_ylabel("sounds")
    axes[0].set_title("Spread of the metric over the store")
    axes[0].legend(fontsize=8)
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    axes[1].set_xticks([0.5, 1, 2, 4], ["0.5", "1", "2", "4"])
    axes[1].minorticks_off()
    axes[1].set_xlabel("chirp rate γ (oct/s)")
    axes[1].set_ylabel("trace(M)")
    axes[1].set_title("trace(M) against γ")
    axes[1].legend(fontsize=8, markerscale=3)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pnp.pipelines.metric_spread", description=__doc__.splitlines()[0])
    ap.add_argument("stores", nargs="+", metavar="STORE")
    ap.add_argument("--out", metavar="FILE.json", help="write the figures as JSON")
    ap.add_argument("--figure", metavar="FILE.png", help="draw the histogram")
    args = ap.parse_args(argv)
    from pnp.errors import run_reported

    return run_reported("python -m pnp.pipelines.metric_spread", lambda: _report(args))


def _report(args) -> int:
    from pnp.files import write_json

    results = [spread(p) for p in args.stores]
    for r in results:
        t, s = r["trace"], r["order0_share"]
        print(f"{r['spec']} ({r['samples']} done samples): trace(M) min {t['min']:.3g}, median {t['median']:.3g}, "
              f"p90 {t['p90']:.3g}, max {t['max']:.3g} (max/min ×{r['trace_ratio_max_min']:.3g}); zeroth-order share "
              f"median {100 * s['median']:.2g} %, p90 {100 * s['p90']:.2g} %, max {100 * s['max']:.2g} %")
    if args.out:
        cmd = "python -m pnp.pipelines.metric_spread " + " ".join(args.stores)
        write_json(args.out, {"command": cmd, "stores": [{k: v for k, v in r.items() if not k.startswith("_")} for r in results]})
    if args.figure:
        figure(results, args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
