"""Run the Mesostructures experiments of the README and write docs/results + docs/figures.

Orchestration only: every number comes from :mod:`pnp.matching`.  Steps (run one or several;
each writes JSON under ``--results`` and the ``figures`` step draws PNGs under ``--figures``)::

    python -m pnp.pipelines.experiments landscapes   # amchirp, MSS & JTFS, shift 0 / 1024 / random 2**[8,12]
    python -m pnp.pipelines.experiments match        # far & near inits, shifts 0 and 1024, both losses
    python -m pnp.pipelines.experiments sweep        # 'anywhere' inits, shifts 0 .. 16384, both losses
    python -m pnp.pipelines.experiments pairs        # chirp pairs (Fig. 1)
    python -m pnp.pipelines.experiments presets      # fast vs paper JTFS preset agreement
    python -m pnp.pipelines.experiments arpeggio     # arpeggio landscapes (shift 1024)
    python -m pnp.pipelines.experiments figures      # figures + docs/results/table.json

Options: ``--losses jtfs,mss`` restricts the losses; ``--threads`` (default 1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from pnp.files import atomic_write

SYNTH = "amchirp"
N_INITS = 5
ITERS = 100
#: iterations of the shift sweep (reduced from the paper's 100 to fit the time budget on 2 shared cores)
SWEEP_ITERS = 50
MATCH_SHIFTS = [0, 1024]
SWEEP_SHIFTS = [0, 4, 8, 128, 1024, 4096, 8192, 16384]
LANDSCAPE_MODES = {"shift0": dict(shift=0), "shift1024": dict(shift=1024), "random8-12": dict(random_shift=(8, 12))}
MODE_LABELS = {"shift0": "no shift", "shift1024": "shift 1024", "random8-12": "random shift $2^n$, n in [8, 12]"}
STEPS = ("landscapes", "match", "sweep", "pairs", "presets", "arpeggio", "figures")


def _write(path: str, obj) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(obj, f)

    atomic_write(path, write)
    print(f"wrote {path}", flush=True)


def step_landscapes(res: str, losses, synth: str = SYNTH, modes=LANDSCAPE_MODES) -> None:
    from pnp.matching import compute_landscape, make_problem

    for loss in losses:
        problem = make_problem(synth, loss)
        for mode, kw in modes.items():
            land = compute_landscape(problem, n=20, **kw)
            print(f"landscape {synth} {loss} {mode}: {land.seconds:.1f} s", flush=True)
            _write(os.path.join(res, "landscapes", f"{synth}_{loss}_{mode}.json"), land.to_dict())


def _match(res: str, losses, inits, shifts, tag: str = "", iters: int = ITERS) -> None:
    from pnp.matching import make_problem
    from pnp.pipelines.matching import run_matching

    for loss in losses:
        problem = make_problem(SYNTH, loss)
        for init in inits:
            t0 = time.perf_counter()
            s = run_matching(problem, init=init, n_inits=N_INITS, iters=iters, shifts=shifts, seed=0)
            print(f"match {loss} {init} shifts {shifts}: {time.perf_counter() - t0:.0f} s; converged {s['converged_fraction']}", flush=True)
            _write(os.path.join(res, "match", f"{SYNTH}_{loss}_{init}{tag}.json"), s)


def step_pairs(res: str) -> None:
    from pnp.pipelines.matching import chirp_pairs

    _write(os.path.join(res, "chirp_pairs.json"), chirp_pairs(SYNTH, shift=2**11, n_rates=25))


def step_presets(res: str, n: int = 12) -> None:
    """Loss and gradient of the 'fast' JTFS preset against the paper's on random points."""
    from pnp.matching import default_target, make_problem

    rng = np.random.default_rng(0)
    nu = rng.uniform(-1, 1, (n, 2))
    out = {"n_points": n, "nu": nu.tolist(), "shifts": {}}
    for shift in (0, 1024):
        vals = {}
        for preset in ("fast", "paper"):
            p = make_problem(SYNTH, "jtfs", preset=preset)
            t0 = time.perf_counter()
            L, g = p.evaluate(nu, p.target_features(default_target(p)), shift, batch_size=4)
            vals[preset] = (L, g, (time.perf_counter() - t0) / n)
        (Lf, gf, tf), (Lp, gp, tp) = vals["fast"], vals["paper"]
        assert gf is not None and gp is not None  # evaluate(grad=True) returns the gradients
        cos = np.sum(gf * gp, 1) / (np.linalg.norm(gf, axis=1) * np.linalg.norm(gp, axis=1))
        out["shifts"][str(shift)] = {
            "loss_fast": Lf.tolist(),
            "loss_paper": Lp.tolist(),
            "loss_correlation": float(np.corrcoef(Lf, Lp)[0, 1]),
            "loss_ratio_median": float(np.median(Lf / Lp)),
            "gradient_cosine": cos.tolist(),
            "gradient_cosine_min": float(cos.min()),
            "seconds_per_point_fast": tf,
            "seconds_per_point_paper": tp,
        }
        print(f"presets shift {shift}: corr {out['shifts'][str(shift)]['loss_correlation']:.5f}, min grad cos {cos.min():.4f}, "
              f"s/pt fast {tf:.2f} paper {tp:.2f}", flush=True)
    _write(os.path.join(res, "preset_agreement.json"), out)


# ----------------------------------------------------------------------------- figures / table
def _round(obj, digits: int = 6):
    """Floats rounded to ``digits`` significant digits (smaller JSON), recursively."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, list):
        return [_round(v, digits) for v in obj]
    if isinstance(obj, dict):
        return {k: _round(v, digits) for k, v in obj.items()}
    return obj


#: what these experiments write under ``res`` (the other JSON there belongs to other scripts)
OWN_RESULTS = ("landscapes", "match", "chirp_pairs.json", "preset_agreement.json", "table.json")


def compact(res: str) -> None:
    """Rewrite the JSON these experiments wrote under ``res`` (:data:`OWN_RESULTS`) with floats
    rounded to 6 significant digits; benchmark results and other files are left alone."""
    for root, _, files in os.walk(res):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), res)
            if name.endswith(".json") and rel.split(os.sep)[0] in OWN_RESULTS:
                path = os.path.join(root, name)
                with open(path) as f:
                    obj = json.load(f)
                def write(tmp: str, obj=obj, table=name == "table.json") -> None:
                    with open(tmp, "w") as f:
                        if table:
                            json.dump(_round(obj, 4), f, indent=1)
                        else:
                            json.dump(_round(obj), f, separators=(",", ":"))

                atomic_write(path, write)


def _load(path: str):
    with open(path) as f:
        return json.load(f)


def _fraction(final, thr):
    return float(np.mean(np.asarray(final) < thr))


def step_figures(res: str, figs: str) -> None:
    """Every figure of docs/figures from the results in ``res``, and ``res/table.json``."""
    os.makedirs(figs, exist_ok=True)
    table: dict = {"landscapes": _landscape_figures(res, figs)}
    thr, table["match"] = _match_figures(res, figs)
    table["sweep"] = _sweep_figure(res, figs, thr)
    table.update(_pairs_and_presets(res, figs))
    table["threshold"] = thr
    _write(os.path.join(res, "table.json"), table)
    compact(res)


def _landscape_figures(res: str, figs: str) -> dict:
    from pnp.matching import Landscape
    from pnp.matching.landscape import landscape_stats
    from pnp.matching.plots import plot_landscape, plot_landscape_grid

    stats, lands = {}, []
    for synth in (SYNTH, "arpeggio"):
        for loss in ("mss", "jtfs"):
            for mode in LANDSCAPE_MODES:
                path = os.path.join(res, "landscapes", f"{synth}_{loss}_{mode}.json")
                if not os.path.exists(path):
                    continue
                land = Landscape.from_dict(_load(path))
                key = f"{synth}_{loss}_{mode}"
                stats[key] = {"seconds": land.seconds, **landscape_stats(land)}
                if synth == SYNTH:
                    lands.append((f"{loss.upper()}, {MODE_LABELS[mode]}", land))
                if (synth, loss, mode) in ((SYNTH, "mss", "shift0"), (SYNTH, "jtfs", "shift1024")) or synth == "arpeggio":
                    plot_landscape(land, os.path.join(figs, f"landscape_{key}.png"))
    if lands:
        order = {f"{l.upper()}, {MODE_LABELS[m]}": i for i, (l, m) in enumerate(
            [(l, m) for l in ("mss", "jtfs") for m in LANDSCAPE_MODES])}
        lands.sort(key=lambda t: order.get(t[0], 99))
        plot_landscape_grid(lands, os.path.join(figs, "landscapes_amchirp.png"), ncols=3)
    return stats


def _match_figures(res: str, figs: str) -> tuple[float, dict]:
    """Descent curves per shift, one series per loss and init scheme; (threshold, table rows)."""
    from pnp.matching.plots import plot_descent

    thr, runs, rows = 0.1, {}, {}
    for loss in ("mss", "jtfs"):
        for init in ("far", "near", "anywhere"):
            path = os.path.join(res, "match", f"{SYNTH}_{loss}_{init}.json")
            if os.path.exists(path):
                s = _load(path)
                thr = s["threshold"]
                for r in s["runs"]:
                    runs[(loss, init, r["shift"])] = r
    for (loss, init, shift), r in sorted(runs.items()):
        fd = r["final_distance"]
        rows[f"{loss}_{init}_shift{shift}"] = {
            "converged_fraction": _fraction(fd, thr), "within_0.05": _fraction(fd, 0.05),
            "within_0.25": _fraction(fd, 0.25), "final_distance": fd, "median_final_distance": float(np.median(fd)),
            "initial_distance": r["initial_distance"], "seconds": r["seconds"],
        }
    for shift in MATCH_SHIFTS:
        series = [(f"{loss.upper()} {init}", np.asarray(runs[(loss, init, shift)]["distance"]))
                  for loss in ("mss", "jtfs") for init in ("far", "near", "anywhere") if (loss, init, shift) in runs]
        if series:
            plot_descent(series, os.path.join(figs, f"match_amchirp_shift{shift}.png"),
                         title=f"{SYNTH}: parameter distance during gradient descent, shift {shift} samples", threshold=thr)
    return thr, rows


def _sweep_figure(res: str, figs: str, thr: float) -> dict:
    from pnp.matching.plots import plot_shift_sweep

    rows, sweeps = {}, []
    for loss in ("mss", "jtfs"):
        path = os.path.join(res, "match", f"{SYNTH}_{loss}_anywhere.json")
        if os.path.exists(path):
            s = _load(path)
            sweeps.append((loss.upper(), s))
            rows[loss] = {str(r["shift"]): _fraction(r["final_distance"], thr) for r in s["runs"]}
    if sweeps:
        plot_shift_sweep(sweeps, os.path.join(figs, "shift_sweep_amchirp.png"),
                         title=f"{SYNTH}: final distance after {SWEEP_ITERS} iterations vs time shift ({N_INITS} 'anywhere' inits)")
    return rows


def _pairs_and_presets(res: str, figs: str) -> dict:
    from pnp.matching.plots import plot_chirp_pairs

    out: dict = {}
    path = os.path.join(res, "chirp_pairs.json")
    if os.path.exists(path):
        pairs = _load(path)
        plot_chirp_pairs(pairs, os.path.join(figs, "chirp_pairs.png"))
        out["chirp_pairs"] = {
            loss: {k: {kk: v for kk, v in r[k].items() if kk != "distance"} for k in ("displaced", "aligned")}
            for loss, r in pairs["losses"].items()
        }
    path = os.path.join(res, "preset_agreement.json")
    if os.path.exists(path):
        out["presets"] = {k: {kk: v for kk, v in d.items() if not kk.startswith(("loss_fast", "loss_paper", "gradient_cosine"))}
                          | {"gradient_cosine_min": d["gradient_cosine_min"]} for k, d in _load(path)["shifts"].items()}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("steps", nargs="+", choices=STEPS)
    ap.add_argument("--results", default="docs/results")
    ap.add_argument("--figures", default="docs/figures")
    ap.add_argument("--losses", default="mss,jtfs")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_intermixed_args(argv)
    from pnp.errors import run_reported

    return run_reported("python -m pnp.pipelines.experiments", lambda: _run_steps(args))


def _run_steps(args) -> int:
    import torch

    torch.set_num_threads(args.threads)
    losses = [s for s in args.losses.split(",") if s]
    for step in args.steps:
        t0 = time.perf_counter()
        if step == "landscapes":
            step_landscapes(args.results, losses)
        elif step == "match":
            _match(args.results, losses, ("far", "near"), MATCH_SHIFTS)
        elif step == "sweep":
            _match(args.results, losses, ("anywhere",), SWEEP_SHIFTS, iters=SWEEP_ITERS)
        elif step == "pairs":
            step_pairs(args.results)
        elif step == "presets":
            step_presets(args.results)
        elif step == "arpeggio":
            step_landscapes(args.results, losses, synth="arpeggio", modes={"shift1024": dict(shift=1024)})
        elif step == "figures":
            step_figures(args.results, args.figures)
        print(f"step {step}: {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
