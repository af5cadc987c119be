"""The Mesostructures experiments: sound matching and chirp pairs (workflows on :mod:`pnp.matching`).

* :func:`run_matching` — sound matching (bold driver or Adam) from several initialisations, for
  one or several time shifts of the predicted sound (the same initial points for every shift),
  of a synthetic target θ* or of a sound (``pnp match --target-audio``); returns a JSON-able
  summary with every trajectory (paper Figs. 4, 6 and 7);
* :func:`predicted_start` — a trained encoder's prediction as the starting point (``--init-from``);
* :func:`save_matching` — ``summary.json``, ``match.png`` and ``resynthesis.wav``.
* :func:`chirp_pairs` — distance between a time-displaced reference chirp and chirps whose
  chirp rate varies, under MSS and JTFS (paper Fig. 1).
"""

from __future__ import annotations

import os
import time
from typing import Any, Sequence

import numpy as np
import torch

from pnp.matching.descent import ADAM_LR, FAR_MIN, NEAR_RANGE, adam, bold_driver, grid_nodes, init_points
from pnp.matching.landscape import default_target
from pnp.matching.problem import MatchingProblem, check_shift, make_problem

#: ν-distance below which a run counts as converged (≈ one step of the 20-point grid, 2/19)
CONVERGED = 0.1
#: step rules of :func:`run_matching`
OPTIMIZERS = ("bold", "adam")
#: how each initialisation rule draws its points (as the summary states it)
INIT_RULES = {
    "far": f"uniform in the box with nu-distance >= {FAR_MIN}",
    "near": f"nu-distance uniform in [{NEAR_RANGE[0]}, {NEAR_RANGE[1]}], random direction",
    "anywhere": "uniform in the box [-1, 1]^P",
    "grid": "the lowest-loss nodes of a {grid}-point per parameter grid (cell centres of the box)",
    "predicted": f"an encoder's prediction, then points at nu-distance in [{NEAR_RANGE[0]}, {NEAR_RANGE[1]}] of it",
}


def _octave_distance(problem: MatchingProblem, nu_a: np.ndarray, nu_b: np.ndarray) -> np.ndarray:
    """Euclidean distance between log2 of the log-scaled free parameters (octaves; the linear
    ones, e.g. the drum's tau and alpha, are left out)."""
    logs = [i for i, p in enumerate(problem.space.parameters) if p.is_log]
    a = np.log2(problem.theta_free(nu_a)[..., logs])
    b = np.log2(problem.theta_free(np.broadcast_to(nu_b, np.shape(nu_a)))[..., logs])
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
    *,
    target_audio: Any = None,
    truth: Any = None,
    start: Any = None,
    optimizer: str = "bold",
    init_grid: int = 3,
) -> dict[str, Any]:
    """Match ``target`` (free physical parameters, default: the grid centre) — or the sound
    ``target_audio`` (a :class:`pnp.audio.Conditioned` in the synth's format), whose ``truth``
    (free physical parameters) may be known — from ``n_inits`` initial points for each shift in
    ``shifts`` (samples, applied to the predicted sound).

    Initial points: ``start`` (ν (P,), e.g. an encoder's prediction) and ``n_inits - 1`` points
    ``near`` it; otherwise scheme ``init``: ``far`` / ``near`` (from the target or the truth),
    ``anywhere`` (uniform), ``grid`` (the ``n_inits`` lowest-loss nodes of an ``init_grid``-point
    per parameter grid).  ``optimizer``: ``"bold"`` (bold driver; ``lr`` / ``step0``) or
    ``"adam"`` (``lr``, default :data:`ADAM_LR`).  Returns a JSON-able dict (see the README /
    ``pnp match --help``); the ν-distances (``final_distance``) are None without a target or truth.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    if isinstance(iters, bool) or not isinstance(iters, (int, np.integer)) or iters < 1:
        raise ValueError(f"iters must be an integer >= 1, got {iters!r}")
    if target_audio is not None:
        if target is not None:
            raise ValueError("give a target (parameters) or target audio, not both")
        tgt = problem.audio_features(target_audio.audio)
        reference = None if truth is None else problem.check_target(truth, "truth")
    else:
        if truth is not None:
            raise ValueError("truth applies to target audio (a synthetic target is its own truth)")
        reference = default_target(problem, 20) if target is None else problem.check_target(target)
        tgt = problem.target_features(reference)
    ref_nu = None if reference is None else problem.nu(reference)
    shifts = [check_shift(s, problem.n_samples, "shift") for s in shifts]
    if not shifts:
        raise ValueError("need at least one shift")
    nu0, init_used = _initial_points(problem, tgt, init, n_inits, ref_nu, seed, start, init_grid, batch_size)
    runs = [_match_one_shift(problem, tgt, ref_nu, nu0, shift, iters, lr, step0, batch_size, threshold, progress,
                             optimizer) for shift in shifts]
    summary = _summary(problem, target_audio, reference, ref_nu, init_used, n_inits, iters, seed, lr, step0,
                       optimizer, threshold, shifts, runs, init_grid)
    return summary


def _initial_points(problem: MatchingProblem, tgt, init: str, n_inits: int, ref_nu, seed: int, start, init_grid: int,
                    batch_size) -> tuple[np.ndarray, str]:
    """The initial points (n_inits, P) and the name of the rule that drew them."""
    if isinstance(n_inits, bool) or not isinstance(n_inits, (int, np.integer)) or n_inits < 1:
        raise ValueError(f"number of initialisations must be an integer >= 1, got {n_inits!r}")
    P = len(problem.free)
    if start is not None:
        first = np.clip(np.asarray(start, dtype=np.float64).reshape(1, P), -1.0, 1.0)
        rest = init_points("near", n_inits - 1, first[0], seed) if n_inits > 1 else np.zeros((0, P))
        return np.concatenate([first, rest]), "predicted"
    if init == "grid":
        nodes = grid_nodes(init_grid, P)
        if len(nodes) < n_inits:
            raise ValueError(f"init grid: {init_grid}**{P} = {len(nodes)} nodes, fewer than the {n_inits} "
                             "initialisations; use a larger grid or fewer initialisations")
        loss, _ = problem.evaluate(nodes, tgt, 0, grad=False, batch_size=batch_size)
        return nodes[np.argsort(loss, kind="stable")[:n_inits]], "grid"
    if init in ("far", "near") and ref_nu is None:
        raise ValueError(f"init {init!r} draws points at a distance from the truth: give the truth, or use the "
                         "anywhere or grid initialisation (or an encoder's prediction)")
    return init_points(init, n_inits, ref_nu if ref_nu is not None else np.zeros(P), seed), init


def _summary(problem, target_audio, reference, ref_nu, init, n_inits, iters, seed, lr, step0, optimizer, threshold,
             shifts, runs, init_grid) -> dict[str, Any]:
    """The JSON-able summary of :func:`run_matching`."""
    if optimizer == "adam":
        lr_text: Any = lr if lr is not None else ADAM_LR
    else:
        lr_text = "auto: first step of length %g in nu units" % step0 if lr is None else lr
    summary: dict[str, Any] = {
        "command": "match",
        **problem.config(),
        "target": None if target_audio is not None else reference.tolist(),
        "target_audio": None if target_audio is None else dict(target_audio.report),
        "truth": None if target_audio is None or reference is None else reference.tolist(),
        "target_nu": None if ref_nu is None else ref_nu.tolist(),
        "init": init,
        "init_rule": INIT_RULES[init].format(grid=init_grid),
        "n_inits": int(n_inits),
        "iters": int(iters),
        "seed": seed,
        "optimizer": optimizer,
        "lr": lr_text,
        "bold_driver": "accept iff loss decreases; lr x1.2 on accept, /2 and undo otherwise",
        "adam": f"projected Adam, betas (0.9, 0.999), eps 1e-8, fixed lr (default {ADAM_LR})",
        "distance": "Euclidean distance in nu = space.normalize(theta) (log scale, box [-1, 1]^P)",
        "threshold": threshold,
        "shifts": shifts,
        "runs": runs,
    }
    keys = ("final_distance", "converged_fraction", "final_loss", "best")
    for key in keys:
        summary[key] = runs[0][key] if len(shifts) == 1 else {str(r["shift"]): r[key] for r in runs}
    return summary


def _match_one_shift(problem: MatchingProblem, tgt, target_nu, nu0: np.ndarray, shift: int, iters: int,
                     lr, step0: float, batch_size, threshold: float, progress: bool,
                     optimizer: str = "bold") -> dict[str, Any]:
    """Descent from every initial point ``nu0`` (n, P) for one shift: its record (the distances
    are None when ``target_nu`` is None)."""
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=iters, desc=f"match {problem.loss.name} shift={shift}", unit="it", leave=False)

    def fn(nu: np.ndarray):
        return problem.evaluate(nu, tgt, shift, grad=True, batch_size=batch_size)

    t0 = time.perf_counter()
    try:
        if optimizer == "adam":
            res = adam(fn, nu0, iters=iters, lr=ADAM_LR if lr is None else lr, target_nu=target_nu, progress=bar)
        else:
            res = bold_driver(fn, nu0, iters=iters, lr=lr, step0=step0, target_nu=target_nu, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    return {"shift": shift, "seconds": seconds, **_trajectory_record(problem, res, target_nu, threshold)}


def _trajectory_record(problem: MatchingProblem, res, target_nu, threshold: float) -> dict[str, Any]:
    """θ, losses and (with ``target_nu``) ν-distances of a :class:`~pnp.matching.descent.DescentResult`."""
    final_loss = res.loss[-1]
    best = int(np.nanargmin(np.where(np.isfinite(final_loss), final_loss, np.inf)))
    nu_final = res.nu[-1]
    full = problem.full_theta(torch.as_tensor(nu_final[best : best + 1]))[0].numpy()
    d = res.distance
    return {
        "initial_theta": problem.theta_free(res.nu[0]).tolist(),
        "final_theta": problem.theta_free(nu_final).tolist(),
        "final_nu": nu_final.tolist(),
        "initial_distance": None if d is None else d[0].tolist(),
        "final_distance": None if d is None else d[-1].tolist(),
        "final_distance_octaves": None if d is None else _octave_distance(problem, nu_final, target_nu).tolist(),
        "converged_fraction": None if d is None else float(np.mean(d[-1] < threshold)),
        "final_loss": final_loss.tolist(),
        "best": {"init": best, "loss": float(final_loss[best]), "nu": nu_final[best].tolist(),
                 "theta": dict(zip(problem.free, problem.theta_free(nu_final[best]).tolist())),
                 "theta_full": dict(zip(problem.synth.space.names, full.astype(float).tolist())),
                 "distance": None if d is None else float(d[-1][best])},
        "distance": None if d is None else d.T.tolist(),  # per init: T+1 values
        "nu": np.transpose(res.nu, (1, 0, 2)).tolist(),  # per init: (T+1, P)
        "loss": res.loss.T.tolist(),
        "lr": res.lr.T.tolist(),
        "accepted": res.accepted.T.astype(int).tolist(),
    }


def predicted_start(run_dir: str, audio_path: str, problem: MatchingProblem, weights: str = "best",
                    device: str = "cpu") -> tuple[np.ndarray, dict[str, Any]]:
    """The encoder prediction of a run (``pnp train``) for the sound file ``audio_path``, as a
    starting point ν (P,) of ``problem``'s free parameters (clipped to the box), and its record.

    The file is conditioned for the run's store (its rate, length, level and alignment, which
    may differ from the problem's); the run's synth must be the problem's.  Parameters the run
    predicts but the problem holds fixed keep the problem's values (the record lists both)."""
    from pnp.audio import load
    from pnp.pipelines.predict import load_predictor, resolve_conditioning

    predictor = load_predictor(run_dir, weights, device)
    if predictor.synth.name != problem.synth.name:
        raise ValueError(f"--init-from {run_dir}: the run's encoder predicts {predictor.synth.name} parameters, not "
                         f"{problem.synth.name}")
    level, align = resolve_conditioning("auto", "auto", predictor.synth)
    cond = load(audio_path, predictor.sample_rate, predictor.n_samples, level, align)
    res = predictor.predict(cond.audio[None])
    names = list(predictor.param.space.names)
    theta_hat = res["theta_hat"][0]
    free = np.array([theta_hat[names.index(n)] for n in problem.free])
    free = np.clip(free, problem.space.lo, problem.space.hi)
    nu = problem.nu(free)
    record = {"run_dir": os.path.abspath(run_dir), "weights": weights, "theta_hat": dict(zip(names, theta_hat.tolist())),
              "nu_start": nu.tolist(), "conditioning": cond.steps,
              "held_fixed": {n: problem.fixed[n] for n in problem.fixed if n in names}}
    return nu, record


def save_matching(out: str, problem: MatchingProblem, summary: dict[str, Any], target_audio: Any = None) -> list[str]:
    """Write ``summary.json``, ``match.png`` (synthetic target: ν-distance over iterations; a
    target sound: loss and parameters over iterations, target vs resynthesis scalograms) and
    ``resynthesis.wav`` (g(θ̂) of the lowest-loss initialisation of the first shift, unshifted;
    float32) into ``out``; returns the paths written."""
    from pnp.audio import write_audio
    from pnp.files import write_json
    from pnp.matching.plots import plot_audio_match, plot_match_summary

    best = summary["runs"][0]["best"]
    with torch.no_grad():
        x_hat = problem.render(torch.as_tensor([best["nu"]], dtype=problem.dtype))[0].double().numpy()
    paths = [os.path.join(out, name) for name in ("summary.json", "match.png", "resynthesis.wav")]
    write_json(paths[0], summary)
    if target_audio is None:
        plot_match_summary(summary, paths[1])
    else:
        plot_audio_match(summary, target_audio.audio, x_hat, problem.synth.sample_rate, paths[1])
    write_audio(paths[2], x_hat, problem.synth.sample_rate)
    return paths


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
