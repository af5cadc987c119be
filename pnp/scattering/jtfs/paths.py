"""Sub-plans of single second-order joint paths: the part of a JTFS :class:`~.plan.Plan` that one
path ``(n2, n_fr)`` reads, and its executor.

A second-order joint path (format 'joint', kymatio 0.4's key ``(n2, n_fr)``) is
``|(|x * psi1_{n1}| * psi2_{n2}) *_fr psi_fr_{n_fr}|`` for every ``n1`` with ``j1 < j2``, then
time averaging and frequential averaging / unpadding. Computing it alone needs only

* the first-order wavelets ``psi1_{n1}`` with ``j1 < j2`` (not the whole first order),
* the second-order wavelet ``psi2_{n2}`` on those ``U1`` (not the other ``n2``),
* the frequential rows of the wavelet ``psi_fr_{n_fr}`` (not the other ``n_fr``),

and nothing of the zeroth and first-order outputs. :func:`time_subplan` (per ``n2``, shared by
its paths) and :func:`path_plan` cut those rows out of the full plan's operators, unchanged, so a
path computed here has the numbers of the same path in the full transform (up to the order of
floating-point sums) at a fraction of its cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pnp.scattering.jtfs.core import frequency_stage, windowed_filter
from pnp.scattering.jtfs.modulus import modulus
from pnp.scattering.jtfs.plan import FrequencyStage, Plan, WindowedFilter


@dataclass
class TimeSubplan:
    """The time part of the paths of one ``n2``: per first-order resolution ``k1``, the
    first-order wavelets that ``psi2_{n2}`` meets (``first[k1]``, on ``X_hat``) and ``psi2_{n2}``
    on their ``U1`` (``second[k1]``); ``order`` puts the concatenated second-order rows (in
    ``k1`` order) in ``n1`` order ``0 .. n1_max - 1``."""

    n2: int
    k1s: list[int]
    first: dict[int, WindowedFilter]
    second: dict[int, WindowedFilter]
    order: np.ndarray

    @property
    def n1_max(self) -> int:
        return int(self.order.size)


@dataclass
class PathPlan:
    """One second-order joint path: its :class:`TimeSubplan` and the rows of its ``n2``'s
    frequential stage that belong to the frequential wavelet ``n_fr`` (``stage``: ``W`` those
    rows, ``average`` the path's output rows over them)."""

    n2: int
    n_fr: int
    time: TimeSubplan
    stage: FrequencyStage

    @property
    def key(self) -> tuple[int, int]:
        return (self.n2, self.n_fr)


def second_order_keys(plan: Plan) -> list[tuple[int, int]]:
    """The second-order joint path keys ``(n2, n_fr)`` of a format-'joint' plan, sorted (kymatio
    0.4's ``meta()`` order, which is ``SCRAPLLoss``'s path order)."""
    if plan.format != "joint":
        raise ValueError(f"single paths need a JTFS of format 'joint' (paths (n2, n_fr)), got format {plan.format!r}")
    meta = plan.meta
    return sorted((int(k[0]), int(k[1])) for k, o in zip(meta["key"], meta["order"]) if o == 2)


def _subset(op: WindowedFilter, keep: list[int], rows: list[int] | None = None) -> WindowedFilter:
    """The outputs ``keep`` of ``op``; ``rows``: their new source channels (the channel of each
    output moves from its old row to ``rows[i]``)."""
    blocks = op.blocks[keep]
    whole = op.whole
    if rows is not None:
        n_blocks = op.L_in // op.L_out
        blocks = blocks % n_blocks + np.asarray(rows, dtype=np.int64)[:, None] * n_blocks
        whole = whole and not any(rows)
    return WindowedFilter(op.L_in, op.L_out, blocks, op.taps[keep], op.real, shared=False, whole=whole)


def time_subplan(plan: Plan, n2: int) -> TimeSubplan:
    """The first- and second-order operators of ``n2``'s paths, cut out of ``plan``'s."""
    if n2 not in plan.n2_res:
        raise ValueError(f"n2={n2} has no second-order paths in this plan; it has n2 in {plan.n2_list}")
    k1s, first, second, n1_of_rows = [], {}, {}, []
    for g, group in ((g, g.op) for g in plan.second):
        mine = [i for i, (_, m2) in enumerate(g.pairs) if m2 == n2]
        if not mine:
            continue
        n1s = [g.pairs[i][0] for i in mine]
        all_n1 = plan.first_n1[g.k1]
        kept = [i for i, n1 in enumerate(all_n1) if n1 in set(n1s)]  # U1 of the group that n2 meets
        local = {all_n1[i]: new for new, i in enumerate(kept)}
        k1s.append(g.k1)
        first[g.k1] = _subset(plan.first[g.k1], kept)
        second[g.k1] = _subset(group, mine, [local[n1] for n1 in n1s])
        n1_of_rows += n1s
    order = np.argsort(n1_of_rows, kind="stable")
    if [n1_of_rows[i] for i in order] != list(range(len(order))):  # pragma: no cover - design invariant
        raise RuntimeError("second-order n1 indices are not contiguous from 0")
    return TimeSubplan(n2=n2, k1s=k1s, first=first, second=second, order=order.astype(np.int64))


def _block_of(plan: Plan, n2: int) -> int:
    return (1 if plan.with_zeroth else 0) + 1 + plan.n2_list.index(n2)


def path_plan(plan: Plan, n2: int, n_fr: int, time: TimeSubplan | None = None) -> PathPlan:
    """The sub-plan of the joint path ``(n2, n_fr)`` (``time``: its ``n2``'s
    :func:`time_subplan`, built if not given)."""
    keys = second_order_keys(plan)
    if (n2, n_fr) not in keys:
        raise ValueError(f"(n2, n_fr)=({n2}, {n_fr}) is not a second-order path of this JTFS ({len(keys)} paths)")
    meta = plan.meta
    in_block = [int(k[1]) for k, o in zip(meta["key"], meta["order"]) if o == 2 and int(k[0]) == n2]
    pos = in_block.index(n_fr)
    rows = plan.block_rows[_block_of(plan, n2)]
    out = np.arange(sum(rows[:pos]), sum(rows[: pos + 1]))
    full = plan.stage2[n2]
    sel = np.flatnonzero(full.row_psi == n_fr)
    stage = FrequencyStage(full.W[sel], full.average[out][:, sel], 1, full.row_psi[sel], full.row_pos[sel],
                           n_real=int(np.count_nonzero(sel < full.n_real)), n_pairs=0)
    return PathPlan(n2=n2, n_fr=n_fr, time=time if time is not None else time_subplan(plan, n2), stage=stage)


def path_tensors(path: PathPlan, to_wf, to_stage) -> dict:
    """The operators of a path as tensors (``to_wf`` / ``to_stage``: the frontend's converters,
    bound to a dtype and device)."""
    t = path.time
    return dict(
        k1s=list(t.k1s),
        first={k: to_wf(op) for k, op in t.first.items()},
        second={k: to_wf(op) for k, op in t.second.items()},
        order=torch.as_tensor(t.order, device=to_stage(path.stage)["average"].device),
        stage=to_stage(path.stage),
    )


def scatter_path(x: torch.Tensor, plan: Plan, ops: dict, path_ops: dict, n2: int) -> torch.Tensor:
    """The joint path ``(n2, n_fr)`` of ``x`` (B, N), real: ``(B, F', T')``, the path's rows of
    the full transform's output (format 'joint'), with the full transform's numbers.

    ``ops``: the full transform's tensors (padding, time averaging; see the frontend);
    ``path_ops``: :func:`path_tensors` of the path. Pure tensor code, differentiable in reverse
    and forward mode and under ``torch.func`` (as :func:`~.core.scatter_blocks`)."""
    from pnp.scattering.jtfs.core import _second_order_time

    if ops["pad_index"] is None:
        x_pad = torch.nn.functional.pad(x, (plan.pad_left, plan.pad_right))
    else:
        x_pad = x.index_select(-1, ops["pad_index"])
    X_hat = torch.fft.fft(x_pad.to(ops["dtype"]), dim=-1).unsqueeze(1)  # (B, 1, N_padded)
    parts = []
    for k1 in path_ops["k1s"]:
        U1 = modulus(windowed_filter(X_hat, path_ops["first"][k1]))
        parts.append(windowed_filter(torch.fft.fft(U1, dim=-1), path_ops["second"][k1]))
    Y2 = torch.cat(parts, dim=1).index_select(1, path_ops["order"])  # (B, n1_max, t2)
    return frequency_stage(Y2, path_ops["stage"], _second_order_time(plan, ops, n2), plan.average == "global")
