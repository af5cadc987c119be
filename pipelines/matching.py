"""The Mesostructures experiments: sound matching and chirp pairs (workflows on :mod:`pnp.matching`).

* :func:`run_matching` — bold-driver sound matching from several initialisations, for one or
  several time shifts of the predicted sound (the same initial points for every shift);
  returns a JSON-able summary with every trajectory (paper Figs. 4, 6 and 7).
* :func:`chirp_pairs` — distance between a time-displaced reference chirp and chirps whose
  chirp rate varies, under MSS and JTFS (paper Fig. 1).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from pnp.matching.descent import FAR_MIN, NEAR_RANGE, bold_driver, init_points
from pnp.matching.landscape import default_target
from pnp.matching.problem import MatchingProblem, check_shift, make_problem

#: ν-distance below which a run counts as converged (≈ one step of the 20-point grid, 2/19)
CONVERGED = 0.1


def _octave_distance(problem: MatchingProblem, nu_a: np.ndarray, nu_b: np.ndarray) -> np.ndarray:
    """Euclidean distance between log2 of the free parameters (octaves)."""
    a = np.log2(problem.theta_free(nu_a))
    b = np.log2(problem.theta_free(nu_b))
    return np.linalg.norm(a - b, axis=-1)


def run_matching(
    problem: MatchingProblem,
    target: Any = None,
    init: str = "far",
    n_inits: int = 5,
    iters: int = 100,
    shifts: Sequence[int] = (0,),
    seed: int = 0,
    lr: float | None = None,
    step0: float = 0.1,
    batch_size: int | None = None,
    threshold: float = CONVERGED,
    progress: bool = True,
) -> dict[str, Any]:
    """Match ``target`` (free physical parameters, default: the grid centre) from ``n_inits``
    initial points of scheme ``init`` for each shift in ``shifts`` (samples, applied to the
    predicted sound).  Returns a JSON-able dict (see the README / ``pnp match --help``)."""
    target = default_target(problem, 20) if target is None else problem.check_target(target)
    target_nu = problem.nu(target)
    shifts = [check_shift(s, problem.n_samples, "shift") for s in shifts]
    if not shifts:
        raise ValueError("need at least one shift")
    if isinstance(iters, bool) or not isinstance(iters, (int, np.integer)) or iters < 1:
        raise ValueError(f"iters must be an integer >= 1, got {iters!r}")
    nu0 = init_points(init, n_inits, target_nu, seed)
    tgt = problem.target_features(target)
    runs = [_match_one_shift(problem, tgt, target_nu, nu0, shift, iters, lr, step0, batch_size, threshold, progress)
            for shift in shifts]
    summary: dict[str, Any] = {
        "command": "match",
        **problem.config(),
        "target": target.tolist(),
        "target_nu": target_nu.tolist(),
        "init": init,
        "init_rule": {
            "far": f"uniform in the box with nu-distance >= {FAR_MIN}",
            "near": f"nu-distance uniform in [{NEAR_RANGE[0]}, {NEAR_RANGE[1]}], random direction",
            "anywhere": "uniform in the box [-1, 1]^2",
        }[init],
        "n_inits": int(n_inits),
        "iters": int(iters),
        "seed": seed,
        "lr": "auto: first step of length %g in nu units" % step0 if lr is None else lr,
        "bold_driver": "accept iff loss decreases; lr x1.2 on accept, /2 and undo otherwise",
        "distance": "Euclidean distance in nu = space.normalize(theta) (log scale, box [-1, 1]^2)",
        "threshold": threshold,
        "shifts": shifts,
        "runs": runs,
    }
    if len(shifts) == 1:
        summary["final_distance"] = runs[0]["final_distance"]
        summary["converged_fraction"] = runs[0]["converged_fraction"]
    else:
        summary["final_distance"] = {str(r["shift"]): r["final_distance"] for r in runs}
        summary["converged_fraction"] = {str(r["shift"]): r["converged_fraction"] for r in runs}
    return summary


def _match_one_shift(problem: MatchingProblem, tgt, target_nu: np.ndarray, nu0: np.ndarray, shift: int, iters: int,
                     lr, step0: float, batch_size, threshold: float, progress: bool) -> dict[str, Any]:
    """Bold-driver descent from every initial point ``nu0`` (n, P) for one shift: its record."""
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=iters, desc=f"match {problem.loss.name} shift={shift}", unit="it", leave=False)

    def fn(nu: np.ndarray):
        return problem.evaluate(nu, tgt, shift, grad=True, batch_size=batch_size)

    t0 = time.perf_counter()
    try:
        res = bold_driver(fn, nu0, iters=iters, lr=lr, step0=step0, target_nu=target_nu, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    assert res.distance is not None  # bold_driver was given target_nu
    final = res.distance[-1]
    return {
        "shift": shift,
        "seconds": seconds,
        "initial_theta": problem.theta_free(res.nu[0]).tolist(),
        "final_theta": problem.theta_free(res.nu[-1]).tolist(),
        "initial_distance": res.distance[0].tolist(),
        "final_distance": final.tolist(),
        "final_distance_octaves": _octave_distance(problem, res.nu[-1], target_nu).tolist(),
        "converged_fraction": float(np.mean(final < threshold)),
        "distance": res.distance.T.tolist(),  # per init: T+1 values
        "loss": res.loss.T.tolist(),
        "lr": res.lr.T.tolist(),
        "accepted": res.accepted.T.astype(int).tolist(),
    }


def chirp_pairs(
    synth: str = "amchirp",
    reference: Any = None,
    shift: int = 2**11,
    n_rates: int = 25,
    preset: str = "fast",
    decimation: int | None = None,
    synth_config: dict[str, Any] | None = None,
    loss_configs: dict[str, dict[str, Any]] | None = None,
    batch_size: int = 8,
    progress: bool = False,
) -> dict[str, Any]:
    """Distances ``‖Φ S_τ x_ref - Φ x(γ)‖₂`` under MSS and JTFS as γ sweeps the chirp-rate
    range (log-spaced, ``n_rates`` values plus the reference's γ), for the reference displaced
    by ``shift`` samples and aligned (``shift = 0``).  ``reference``: free physical parameters
    (f_m, γ) (default: the 20-point grid centre).  ``progress``: a bar over the 4 sweeps' sounds.
    Returns a JSON-able dict."""
    if isinstance(n_rates, bool) or not isinstance(n_rates, (int, np.integer)) or n_rates < 2:
        raise ValueError(f"--n-rates must be an integer >= 2, got {n_rates!r}")
    out: dict[str, Any] = {"command": "chirp-pairs", "synth": synth, "shift": None, "losses": {}}
    loss_configs = loss_configs or {}
    bar = None
    for loss in ("mss", "jtfs"):
        problem = make_problem(
            synth,
            loss,
            preset=preset,
            decimation=decimation if loss == "jtfs" else None,
            synth_config=synth_config,
            loss_config=loss_configs.get(loss),
        )
        ref = default_target(problem, 20) if reference is None else problem.check_target(reference, "reference")
        shift = check_shift(shift, problem.n_samples, "shift")
        k = problem.free.index("gamma")
        p = problem.space.parameters[k]
        gammas = np.unique(np.append(np.geomspace(p.lo, p.hi, n_rates), ref[k]))
        pts = np.repeat(ref[None], gammas.size, axis=0)
        pts[:, k] = gammas
        nu = problem.nu(pts)
        curves = {}
        if progress and bar is None:
            from tqdm.auto import tqdm

            bar = tqdm(total=4 * gammas.size, desc="chirp-pairs", unit="sound", leave=False)
        for name, tau in (("displaced", shift), ("aligned", 0)):
            tgt = problem.target_features(ref, shift=tau)
            loss_vals, _ = problem.evaluate(nu, tgt, 0, grad=False, batch_size=batch_size, progress=bar)
            d = np.sqrt(np.maximum(loss_vals, 0.0))
            dev = np.abs(np.log2(gammas / ref[k]))
            rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
            curves[name] = {
                "distance": d.tolist(),
                "argmin_gamma": float(gammas[np.argmin(d)]),
                "spearman_vs_rate_mismatch": float(np.corrcoef(rank(d), rank(dev))[0, 1]),
            }
        out["losses"][loss] = {"config": problem.config(), **curves}
        out["gammas"] = gammas.tolist()
        out["reference"] = ref.tolist()
        out["shift"] = shift
    if bar is not None:
        bar.close()
    return out
