"""``pnp study pnp``: the PNP training study — every loss × seed under one protocol, resumable.

Orchestration only: each run is :class:`pnp.training.Trainer` then
:func:`pnp.pipelines.training.evaluate` (the last epoch's weights, as the PNP authors test); the
statistics come from :mod:`pnp.training.stats`. Runs are dask tasks on the embedded
LocalCluster (``workers`` processes × 1 thread) or on a given ``distributed.Client``.

Layout of ``out``::

    protocol.json              the protocol (compared when the study is run again)
    runs/<loss>-seed<k>/       one training run each (pnp train's run directory + evaluation)
    study.json                 protocol, runs, summary, paired tests (shape in the README)
    study.md                   the table (mean ± sd over seeds, paired p-values)
    figures/                   test_metrics.png, validation.png, lambda.png

Running the same command again skips the finished runs, resumes an interrupted one from its
last checkpoint (bit-identical on CPU) and starts the others; a different protocol is refused.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Mapping

import numpy as np

from pnp.vocabulary import STUDY_DEFAULT_LOSSES

#: study losses → Trainer options (``spectral``: the smaller spectral batch size)
VARIANTS: dict[str, dict[str, Any]] = {  # keys: pnp.vocabulary.STUDY_LOSSES (tests/test_cli.py checks)
    "ploss": {"loss": "ploss"},
    "pnp": {"loss": "pnp", "schedule": "adaptive"},
    "pnp-pretrained": {"loss": "pnp", "schedule": "adaptive", "pretrain": True},
    "pnp-lm": {"loss": "pnp", "schedule": "lm", "lam": 1.0},
    "mrstft": {"loss": "mrstft", "spectral": True},
    "specl2": {"loss": "specl2", "spectral": True},
    "mss": {"loss": "mss", "spectral": True},
    "jtfs": {"loss": "jtfs", "spectral": True},
    # SCRAPL: one random path of the store's JTFS per step, SGD behind 𝒫-Adam + 𝒫-SAGA (its prescription)
    "scrapl": {"loss": "scrapl", "spectral": True},
    # the same, with the path probabilities set by θ-IS on the first ``Protocol.theta_is`` training sounds
    "scrapl-is": {"loss": "scrapl", "spectral": True, "theta_is": True},
}
#: the default selection (defined with the names, in :mod:`pnp.vocabulary`, for ``pnp study --help``)
DEFAULT_LOSSES = STUDY_DEFAULT_LOSSES
#: the slowest losses first, so that two workers finish together (measured step costs)
COST_RANK = ("scrapl-is", "jtfs", "scrapl", "mrstft", "mss", "specl2", "pnp-pretrained", "pnp", "pnp-lm", "ploss")
#: test metrics of the study (the authors'), each per sound
METRICS = ("jtfs_distance", "mrstft", "ploss")
PROTOCOL, STUDY_JSON, STUDY_MD, RUNS, FIGURES = "protocol.json", "study.json", "study.md", "runs", "figures"


@dataclass
class Protocol:
    """What every run of a study shares (see the README's PNP study section)."""

    store: str
    losses: list[str]
    seeds: list[int]
    epochs: int
    samples_per_epoch: int | None = None
    batch_size: int = 256
    spectral_batch_size: int = 64
    lr: float = 1e-3
    lr_plateau: int | None = 3
    pretrain_epochs: int | None = None
    encoder_kind: str = "scalogram"
    encoder: dict[str, Any] = field(default_factory=dict)
    order: str = "samples"
    #: compute each training sound's scalogram once (the authors precompute their CQTs)
    cache_frontend: bool = True
    #: per-loss overrides of ``epochs`` / ``seeds`` / ``samples_per_epoch`` (e.g. a smaller budget
    #: for JTFS in the loop)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    weights: str = "final"
    #: test on the first ``test_samples`` sounds of the test split only (None: all of them)
    test_samples: int | None = None
    #: training sounds of the θ-IS warm-up of the ``scrapl-is`` runs
    theta_is: int = 1

    def seeds_of(self, loss: str) -> list[int]:
        return list(self.overrides.get(loss, {}).get("seeds", self.seeds))

    def epochs_of(self, loss: str) -> int:
        return int(self.overrides.get(loss, {}).get("epochs", self.epochs))

    def samples_of(self, loss: str) -> int | None:
        return self.overrides.get(loss, {}).get("samples_per_epoch", self.samples_per_epoch)

    def runs(self) -> list[tuple[str, int]]:
        return [(loss, seed) for loss in self.losses for seed in self.seeds_of(loss)]

    def trainer_options(self, loss: str, seed: int) -> dict[str, Any]:
        """The :class:`pnp.training.Trainer` keyword arguments of run (loss, seed)."""
        v = dict(VARIANTS[loss])
        batch = self.spectral_batch_size if v.pop("spectral", False) else self.batch_size
        epochs = self.epochs_of(loss)
        pretrain = v.pop("pretrain", False)
        theta_is = v.pop("theta_is", False)
        samples = self.samples_of(loss)
        steps = None if samples is None else max(1, samples // batch)
        opts = dict(v, epochs=epochs, batch_size=batch, lr=self.lr, lr_plateau=self.lr_plateau, seed=seed,
                    steps_per_epoch=steps, order=self.order, encoder_kind=self.encoder_kind,
                    encoder=dict(self.encoder), cache_frontend=self.cache_frontend, progress=False)
        if theta_is:
            opts["theta_is"] = self.theta_is
        if pretrain:
            opts["pretrain_epochs"] = self.pretrain_epochs if self.pretrain_epochs is not None else epochs // 2
        return opts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_dir(out: str, loss: str, seed: int) -> str:
    return os.path.join(out, RUNS, f"{loss}-seed{seed}")


def _finished(path: str, weights: str, test_samples: int | None = None) -> dict[str, Any] | None:
    """The evaluation of a finished run (None if it has not finished or was tested otherwise)."""
    ev = os.path.join(path, "evaluation.json")
    if not os.path.exists(ev):
        return None
    with open(ev) as f:
        result = json.load(f)
    ok = result.get("weights") == weights and result.get("max_samples") == test_samples
    return result if ok else None


def run_one(out: str, store: str, loss: str, seed: int, options: Mapping[str, Any], weights: str = "final",
            test_samples: int | None = None, threads: int = 1) -> dict[str, Any]:
    """One run of the study (a dask task): train (resuming from its checkpoint if any), evaluate
    on the test split; returns its record. A finished run is returned as it is."""
    import torch

    from pnp.pipelines.training import CHECKPOINT, evaluate, fit_run
    from pnp.training import Trainer

    torch.set_num_threads(threads)
    path = run_dir(out, loss, seed)
    done = _finished(path, weights, test_samples)
    t0 = time.perf_counter()
    if done is None:
        trainer = Trainer(**options)
        fit_run(trainer, store, path, resume=os.path.exists(os.path.join(path, CHECKPOINT)))
        done = evaluate(path, split="test", progress=False, weights=weights, max_samples=test_samples)
    return {"loss": loss, "seed": seed, "run_dir": path, "wall_s_this_call": time.perf_counter() - t0}


def _check(protocol: Protocol) -> None:
    """Refuse unknown losses, bad seeds and stores that lack what a loss needs (one line each)."""
    from pnp import store as pstore

    unknown = [l for l in protocol.losses if l not in VARIANTS]
    if unknown:
        raise ValueError(f"--losses: unknown loss {unknown[0]!r}; choose among {', '.join(VARIANTS)}")
    if not protocol.losses:
        raise ValueError("--losses: give at least one loss")
    if len(set(protocol.losses)) != len(protocol.losses):
        raise ValueError("--losses: a loss is listed twice")
    if not protocol.seeds:
        raise ValueError("--seeds must be an integer >= 1")
    st = pstore.open_store(protocol.store)
    if "audio" not in st:
        raise ValueError(f"the store {protocol.store} has no audio (store.audio = true in its spec): the encoders read it")
    scrapl = [l for l in protocol.losses if VARIANTS[l]["loss"] == "scrapl"]
    if scrapl and st.spec().representation_name != "jtfs":
        raise ValueError(f"--losses {scrapl[0]} samples paths of the store's JTFS, but the store {protocol.store} holds "
                         f"{st.spec().representation_name!r} features")
    needs_metric = [l for l in protocol.losses if VARIANTS[l]["loss"] == "pnp"]
    if needs_metric and "metric" not in st:
        raise ValueError(f"--losses {needs_metric[0]} needs the metric M, but the store {protocol.store} is "
                         "features-only (store.jacobian = false)")
    if st.counts()["pending"]:
        raise ValueError(f"the store {protocol.store} is incomplete ({st.counts()['pending']} samples pending); "
                         "finish it with pnp precompute first")


def _write_protocol(out: str, protocol: Protocol) -> None:
    from pnp.files import write_json

    path = os.path.join(out, PROTOCOL)
    new = protocol.to_dict()
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        # a field added to Protocol after the study was written reads as its default
        defaults = {f.name: f.default for f in fields(Protocol) if f.default is not MISSING}
        diff = [k for k in sorted(set(old) | set(new)) if k not in ("losses", "seeds", "overrides")
                and json.dumps(old.get(k, defaults.get(k)), sort_keys=True) != json.dumps(new.get(k), sort_keys=True)]
        if diff:
            raise ValueError(f"{out} holds a study with another protocol (differs in {', '.join(diff)}); "
                             "use the same options or another --out")
    os.makedirs(out, exist_ok=True)
    write_json(path, new)


def study(protocol: Protocol, out: str, workers: int = 2, client: Any = None, progress: bool = True,
          scheduler_file: str | None = None, report_only: bool = False) -> dict[str, Any]:
    """Run (or resume) every run of ``protocol`` into ``out``, then write the study's JSON, table
    and figures; returns the ``study.json`` dict. ``workers`` = 0 runs in this process;
    ``scheduler_file`` attaches to a running dask.distributed cluster instead of the embedded
    LocalCluster (``out`` and the store must then be on a filesystem every worker sees).
    ``report_only``: train nothing, summarise the runs finished so far (``missing_runs`` lists
    the others)."""
    if scheduler_file is not None and not report_only:
        if not os.path.exists(scheduler_file):
            raise ValueError(f"--scheduler-file {scheduler_file} does not exist")
        from distributed import Client

        client = Client(scheduler_file=scheduler_file)
    from tqdm.auto import tqdm

    _check(protocol)
    out = os.path.abspath(out)
    _write_protocol(out, protocol)
    if report_only:
        return aggregate(protocol, out)
    todo = [(l, s) for l, s in protocol.runs()
            if _finished(run_dir(out, l, s), protocol.weights, protocol.test_samples) is None]
    total = len(protocol.runs())
    bar = tqdm(total=total, initial=total - len(todo), unit="run", desc="pnp study", disable=not progress,
               dynamic_ncols=True)
    todo.sort(key=lambda run: COST_RANK.index(run[0]))
    args = [(out, protocol.store, l, s, protocol.trainer_options(l, s), protocol.weights, protocol.test_samples)
            for l, s in todo]
    if workers == 0 and client is None:  # in this process, one run after the other
        for a in args:
            run_one(*a)
            bar.update(1)
    else:
        _run_on_dask(args, workers, client, bar)
    bar.close()
    return aggregate(protocol, out)


def _run_on_dask(args: list[tuple], workers: int, client: Any, bar) -> None:
    """Submit the runs (longest first) and update ``bar`` as they finish."""
    from distributed import Client, LocalCluster, as_completed

    from pnp.pipelines.cluster import dashboard_kwargs

    own = client is None
    if own:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, **dashboard_kwargs(False))
        client = Client(cluster)
    try:
        futures = [client.submit(run_one, *a, key=f"study-{a[2]}-seed{a[3]}", pure=False, priority=len(args) - i)
                   for i, a in enumerate(args)]
        for fut in as_completed(futures):
            try:
                fut.result()
            except Exception as err:  # noqa: BLE001 - name the run, keep the others' results
                raise ValueError(f"run {fut.key} failed: {type(err).__name__}: {err}; run the same command again "
                                 "to resume") from None
            bar.update(1)
    finally:
        if own:
            client.close()
            cluster.close()


# ------------------------------------------------------------------------------ aggregation
def _load_run(out: str, loss: str, seed: int) -> dict[str, Any]:
    path = run_dir(out, loss, seed)
    with open(os.path.join(path, "evaluation.json")) as f:
        ev = json.load(f)
    with open(os.path.join(path, "metrics.json")) as f:
        metrics = json.load(f)
    with np.load(os.path.join(path, "predictions_test.npz")) as d:
        per_sound = {m: d[m] for m in ("jtfs_distance", "mrstft", "ploss")} | {"index": d["index"]}
    history = metrics["epochs"]
    with open(os.path.join(path, "config.json")) as f:
        theta_is = json.load(f).get("theta_is") is not None
    return {"ev": ev, "history": history, "schedule": metrics.get("schedule"), "per_sound": per_sound,
            # training time: the epochs' and a θ-IS warm-up's (rows written before it was recorded: 0)
            "wall_s": float(sum(r["seconds"] + r.get("theta_is_seconds", 0.0) for r in history)),
            # a θ-IS run whose rows predate theta_is_seconds: its warm-up is missing from wall_s
            "theta_is_time_missing": theta_is and not any("theta_is_seconds" in r for r in history)}


def aggregate(protocol: Protocol, out: str) -> dict[str, Any]:
    """``study.json``, ``study.md`` and the figures from the finished runs in ``out``."""
    from pnp.files import write_json
    from pnp.store import open_store
    from pnp.training.stats import paired_wilcoxon, seed_mean, summary

    runs, loaded, missing = [], {}, []
    for loss, seed in protocol.runs():
        if _finished(run_dir(out, loss, seed), protocol.weights, protocol.test_samples) is None:
            missing.append(f"{loss}-seed{seed}")
            continue
        r = _load_run(out, loss, seed)
        loaded[(loss, seed)] = r
        sched = r["schedule"] if VARIANTS[loss]["loss"] == "pnp" else None
        runs.append({
            "loss": loss, "seed": seed,
            "schedule": None if sched is None else {k: sched.get(k) for k in ("name", "lam0", "accelerator", "brake", "restore")},
            "epochs_run": len(r["history"]), "wall_s": r["wall_s"],
            **({"theta_is_time_missing": True} if r["theta_is_time_missing"] else {}),
            "test": {"jtfs_distance": r["ev"]["jtfs_distance"], "mrstft": r["ev"]["mrstft"], "ploss": r["ev"]["ploss"],
                     "mae_nu": r["ev"]["mae_nu"]},
        })
    params = list(runs[0]["test"]["mae_nu"]) if runs else []
    losses = [l for l in protocol.losses if any(r["loss"] == l for r in runs)]
    summ: dict[str, dict[str, Any]] = {}
    for loss in losses:
        mine = [r for r in runs if r["loss"] == loss]
        summ[loss] = {m: summary([r["test"][m] for r in mine]) for m in METRICS}
        summ[loss]["mae_nu"] = {p: summary([r["test"]["mae_nu"][p] for r in mine]) for p in params}
        summ[loss]["wall_s"] = summary([r["wall_s"] for r in mine])
    pooled = {loss: {m: seed_mean([loaded[(loss, s)]["per_sound"][m] for s in protocol.seeds_of(loss)
                                   if (loss, s) in loaded]) for m in METRICS} for loss in losses}
    paired = []
    for a, b in itertools.combinations(losses, 2):
        for m in METRICS:
            paired.append({"a": a, "b": b, "metric": m, **paired_wilcoxon(pooled[a][m], pooled[b][m])})
    st = open_store(protocol.store)
    report = {
        "protocol": {**protocol.to_dict(), "store_spec": st.spec().to_dict(),
                     "steps_per_epoch": {l: protocol.trainer_options(l, 0)["steps_per_epoch"] for l in protocol.losses},
                     "batch_sizes": {l: protocol.trainer_options(l, 0)["batch_size"] for l in protocol.losses},
                     "optimiser": f"Adam lr {protocol.lr:g}" + (f", ReduceLROnPlateau(patience={protocol.lr_plateau}) on "
                                                              "the validation loss" if protocol.lr_plateau is not None else "")
                     + ("; scrapl: SGD (same lr, no momentum) behind 𝒫-Adam + 𝒫-SAGA" if any(
                         VARIANTS[l]["loss"] == "scrapl" for l in protocol.losses) else "")
                     + (f"; scrapl-is: θ-IS path probabilities from {protocol.theta_is} training sound(s)"
                        if "scrapl-is" in protocol.losses else ""),
                     "test_weights": protocol.weights,
                     "paired_test": "two-sided Wilcoxon signed-rank over the test sounds; per sound, each loss's metric "
                                    "averaged over its seeds (seeds pooled by averaging)"},
        "runs": runs,
        "summary": summ,
        "paired": paired,
    }
    if missing:  # an interrupted study: what is summarised so far
        report["missing_runs"] = missing
    write_json(os.path.join(out, STUDY_JSON), report)
    with open(os.path.join(out, STUDY_MD), "w") as f:
        f.write(table(report) + "\n")
    figures(report, loaded, protocol, os.path.join(out, FIGURES))
    return report


def _fmt(s: Mapping[str, Any]) -> str:
    if s["mean"] is None:
        return "—"
    return f"{s['mean']:.4g}" + (f" ± {s['sd']:.2g}" if s["sd"] is not None else "")


def table(report: Mapping[str, Any]) -> str:
    """Markdown: one row per loss (mean ± sd over seeds), then the paired p-values vs each loss."""
    losses = list(report["summary"])
    params = list(next(iter(report["summary"].values()))["mae_nu"]) if losses else []
    head = ["loss", "seeds", "JTFS distance", "MRSTFT", "P-loss", *[f"MAE ν {p}" for p in params], "train time (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for loss in losses:
        s = report["summary"][loss]
        cells = [loss, str(s["jtfs_distance"]["n"]), _fmt(s["jtfs_distance"]), _fmt(s["mrstft"]), _fmt(s["ploss"]),
                 *[_fmt(s["mae_nu"][p]) for p in params], _fmt(s["wall_s"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Paired Wilcoxon p-values (per-sound metric averaged over seeds; a < b when the median "
              "difference a − b is negative):", "",
              "| a | b | JTFS distance | MRSTFT | P-loss |", "|---|---|---|---|---|"]
    by_pair: dict[tuple[str, str], dict[str, Any]] = {}
    for p in report["paired"]:
        by_pair.setdefault((p["a"], p["b"]), {})[p["metric"]] = p
    for (a, b), ms in by_pair.items():
        cells = []
        for m in METRICS:
            p = ms[m]
            cells.append("—" if p["p_value"] is None else f"{p['p_value']:.2g} ({'a' if p['median_difference'] < 0 else 'b'} lower)")
        lines.append(f"| {a} | {b} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figures(report: Mapping[str, Any], loaded: Mapping[tuple[str, int], Any], protocol: Protocol, folder: str) -> None:
    """test_metrics.png (every seed shown), validation.png (curves), lambda.png (PNP runs),
    cost.png (test accuracy against training time, per loss)."""
    from pnp.figures import pyplot

    losses = list(report["summary"])
    if not losses:  # nothing finished yet (--report-only early on)
        return
    plt = pyplot()
    colours = {l: plt.get_cmap("tab10")(i % 10) for i, l in enumerate(losses)}
    _test_metrics_figure(plt, report, losses, colours, protocol, folder)
    _validation_figure(plt, loaded, losses, colours, protocol, folder)
    pnp_losses = [l for l in losses if VARIANTS[l]["loss"] == "pnp"]
    if pnp_losses:
        _lambda_figure(plt, loaded, pnp_losses, colours, protocol, folder)
    _cost_figure(plt, report, losses, colours, protocol, folder)


_LABELS = {"jtfs_distance": "JTFS distance ‖Φg(θ̂) − Φg(θ)‖₂", "mrstft": "MRSTFT distance (auraloss)",
           "ploss": "P-loss: mean (ν̂ − ν)²"}


def _tidy(ax) -> None:
    """Whole epochs on x; y on a log scale with decade labels when the values span more than a
    factor 20, else linear with plain numbers."""
    from matplotlib.ticker import MaxNLocator, NullFormatter

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    lo, hi = ax.dataLim.y0, ax.dataLim.y1
    if lo > 0 and hi / lo > 20:
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())
    else:
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)


def _test_metrics_figure(plt, report, losses, colours, protocol: Protocol, folder: str) -> None:
    from pnp.figures import save_figure

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, m in zip(axes, METRICS):
        for i, loss in enumerate(losses):
            vals = [r["test"][m] for r in report["runs"] if r["loss"] == loss]
            ax.scatter(np.full(len(vals), i) + np.linspace(-0.12, 0.12, len(vals)), vals, color=colours[loss], s=18,
                       label="one seed" if (i == 0) else None)
            ax.hlines(np.mean(vals), i - 0.3, i + 0.3, color="k", lw=1.5, label="mean over seeds" if i == 0 else None)
        ax.set_xticks(range(len(losses)), losses, rotation=30, ha="right")
        ax.set_title(_LABELS[m], fontsize=10)
        ax.set_ylabel("test value (lower is better)")
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"PNP study on {os.path.basename(protocol.store)}: test metrics per loss (dots: seeds; bar: mean)")
    fig.tight_layout()
    save_figure(fig, os.path.join(folder, "test_metrics.png"), dpi=110)


def _validation_figure(plt, loaded, losses, colours, protocol: Protocol, folder: str) -> None:
    from pnp.figures import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for loss in losses:
        for k, seed in enumerate(s for s in protocol.seeds_of(loss) if (loss, s) in loaded):
            h = loaded[(loss, seed)]["history"]
            ep = [r["epoch"] for r in h]
            axes[0].plot(ep, [r["val_ploss"] for r in h], color=colours[loss], alpha=0.6, lw=1, marker="o", ms=3,
                         label=loss if k == 0 else None)
            if h and h[0].get("val_pnp") is not None:
                axes[1].plot(ep, [r["val_pnp"] for r in h], color=colours[loss], alpha=0.6, lw=1, marker="o", ms=3,
                             label=loss if k == 0 else None)
    for ax, what in zip(axes, ("validation P-loss (MSE in ν)", "validation PNP loss ½ΔᵀMΔ (λ = 0)")):
        _tidy(ax)
        ax.set_xlabel("epoch")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="one line per seed")
    fig.tight_layout()
    save_figure(fig, os.path.join(folder, "validation.png"), dpi=110)


def _lambda_figure(plt, loaded, pnp_losses, colours, protocol: Protocol, folder: str) -> None:
    from matplotlib.ticker import MaxNLocator

    from pnp.figures import save_figure

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for loss in pnp_losses:
        for k, seed in enumerate(s for s in protocol.seeds_of(loss) if (loss, s) in loaded):
            h = [r for r in loaded[(loss, seed)]["history"] if r["action"] != "pretrain"]
            ax.plot([r["epoch"] for r in h], [max(r["lam"], 1e-300) for r in h], color=colours[loss], alpha=0.7,
                    lw=1, label=loss if k == 0 else None)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("damping λ used in the epoch")
    ax.set_title("λ of the PNP runs (one line per seed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, os.path.join(folder, "lambda.png"), dpi=110)


def _cost_figure(plt, report, losses, colours, protocol: Protocol, folder: str) -> None:
    """Per loss, the test metric's mean ± sd over seeds against the mean training time of a run."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    from pnp.figures import save_figure

    def n_steps(loss: str) -> int | None:
        per_epoch = protocol.trainer_options(loss, 0)["steps_per_epoch"]  # None: one pass over the split
        return None if per_epoch is None else protocol.epochs_of(loss) * per_epoch

    steps = {loss: n_steps(loss) for loss in losses}
    counts = [v for v in steps.values() if v is not None]
    usual = max(set(counts), key=counts.count) if counts else None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, m in zip(axes, ("jtfs_distance", "mrstft")):
        for loss in losses:
            s = report["summary"][loss]
            x, y, sd = s["wall_s"]["mean"], s[m]["mean"], s[m]["sd"]
            ax.errorbar([x], [y], yerr=None if sd is None else [sd], fmt="o", color=colours[loss], capsize=3,
                        label=f"{loss} ({s[m]['n']} seed{'s' if s[m]['n'] != 1 else ''})")
            n = steps[loss]
            note = f" ({n} step{'s' if n != 1 else ''})" if n is not None and n != usual else ""
            if any(r.get("theta_is_time_missing") for r in report["runs"] if r["loss"] == loss):
                note += "\n(θ-IS time not in x)"
            ax.annotate(loss + note, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax.set_xscale("log")
        lo, hi = ax.get_xlim()
        ax.set_xlim(lo, hi * 1.8)  # room for the labels of the right-most points
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("training time of one run (s, one CPU thread; log scale"
                      + (f"; {usual} steps unless noted)" if usual is not None else ")"))
        ax.set_ylabel(f"test {_LABELS[m]}")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Accuracy against cost on {os.path.basename(protocol.store)} (mean ± sd over seeds; "
                 "lower is better; the store's precompute is shared by every run)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, os.path.join(folder, "cost.png"), dpi=110)
