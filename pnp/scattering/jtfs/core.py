"""The joint time-frequency scattering algorithm, executing a :class:`~.plan.Plan` on tensors.

Pure tensor code: no ``.item()``, no branching on values, no in-place writes, so it runs under
reverse mode, forward mode, ``torch.func.vmap``, ``jacfwd`` and ``jacrev``. Shapes: ``x`` is
``(B, N)``; spectra are complex of the matching precision.
"""

from __future__ import annotations

from typing import Any

import torch

from pnp.scattering.jtfs.modulus import dual_matmul_modulus_sum, dual_modulus
from pnp.scattering.jtfs.plan import Plan

#: complex values of the joint scalogram held at once per signal in the frequential stage
#: (bounds the memory of the second order, and of its Jacobian, independently of the signal length)
CHUNK_ELEMENTS = 2**18


def windowed_filter(Z: torch.Tensor, op: dict) -> torch.Tensor:
    """``(B, C, L_in)`` complex spectra -> ``(B, P, L_out)`` filtered, subsampled signals
    (see :class:`~.plan.WindowedFilter`)."""
    B, C = Z.shape[:2]
    blocks, taps, L_out = op["blocks"], op["taps"], op["L_out"]
    nb = taps.shape[-2]
    if op["shared"]:  # one filter for every channel
        g = Z.reshape(B, C, -1, L_out)
        if not op["whole"]:
            g = g.index_select(2, blocks)
    elif op["whole"]:  # every output filters all of channel 0: broadcast, no copy
        g = Z[:, :1].reshape(B, 1, nb, L_out)
    else:  # one window (and source channel) per output, gathered as whole blocks
        g = Z.reshape(B, -1, L_out).index_select(1, blocks.reshape(-1)).reshape(B, -1, nb, L_out)
    product = g * taps  # (B, P, nb, L_out)
    folded = product.sum(2) if nb > 1 else product.squeeze(2)
    y = torch.fft.ifft(folded, dim=-1)
    return y.real if op["real"] else y


def frequency_stage(X: torch.Tensor, stage: dict, time_average, global_time: bool, width: int = 1) -> torch.Tensor:
    """Frequential scattering along ``n1`` of ``X`` (B, n1, t), modulus, time averaging, then
    frequential averaging / unpadding: ``(B, R_out, t')``.

    ``time_average`` maps ``(B, r, t)`` real to ``(B, r, t')``; ``global_time`` says it is a sum
    over time, which lets the work be chunked over time instead of over rows. ``width`` > 1:
    ``X`` is a dual batch (see :func:`scatter`).
    """
    W, A = stage["W"], stage["average"]
    X = X.to(W.dtype)
    R, L = W.shape[0], X.shape[-1]
    if global_time:
        U = dual_matmul_modulus_sum(X, W, max(1, CHUNK_ELEMENTS // R), width, stage["layout"]).unsqueeze(-1)
    else:
        step = max(1, CHUNK_ELEMENTS // L)
        U = torch.cat([time_average(dual_modulus(torch.matmul(W[r : r + step], X), width)) for r in range(0, R, step)], dim=-2)
    return torch.matmul(A, U)


def _zeroth_order(x: torch.Tensor, x_pad: torch.Tensor, X_hat: torch.Tensor, plan: Plan, ops: dict) -> torch.Tensor:
    """``(B, 1, t)``: ``x * phi`` unpadded (local averaging), the sum of the padded signal
    (global), or ``x`` itself (T=0). Linear in x: formed in x's precision, then rounded."""
    dtype = ops["dtype"]
    if plan.average == "local":
        X0 = X_hat if x_pad.dtype == dtype else torch.fft.fft(x_pad, dim=-1).unsqueeze(1)
        S0 = windowed_filter(X0, ops["zeroth"])[..., plan.t_start : plan.t_end]
    elif plan.average == "global":
        S0 = x_pad.sum(-1, keepdim=True).unsqueeze(1)
    else:
        S0 = x.unsqueeze(1)
    return S0.to(dtype)


def _second_order_time(plan: Plan, ops: dict, n2: int):
    """The map ``(B, r, t) -> (B, r, t')`` after the modulus of n2's frequential stage: time
    averaging by phi then unpadding (local), unpadding at n2's resolution (T=0); global
    averaging is fused into the stage instead (see :func:`frequency_stage`)."""
    t0, t1 = plan.n2_window[n2]
    if plan.average != "local":
        return lambda u: u[..., t0:t1]
    lp = ops["lowpass2"][n2]
    return lambda u: windowed_filter(torch.fft.fft(u, dim=-1), lp)[..., t0:t1]


def scatter_blocks(x: torch.Tensor, plan: Plan, ops: dict, width: int = 1) -> list[torch.Tensor]:
    """JTFS of ``x`` (B, N), real, as the plan's output blocks (see :class:`~.plan.Plan`):
    ``(B, R, t)`` for the zeroth order (if the plan keeps it), the first order, then each n2;
    ``t`` differs between blocks with T=0 only.

    ``ops`` holds the plan's arrays as tensors of the computation's dtype ``ops["dtype"]`` and
    device (see the frontend). ``x`` may be of a higher precision than ``ops["dtype"]`` (mixed
    precision): the zeroth order is then formed in x's precision and rounded, the rest is
    computed from x rounded to ``ops["dtype"]``.

    ``width`` > 1 computes forward-mode derivatives alongside the transform on a *dual batch*:
    the B rows of ``x`` are then ``B / width`` groups of one primal signal followed by its
    ``width - 1`` tangents, and so are the rows of the output (the JTFS of each primal, then its
    directional derivatives). Linear stages treat the tangents as more signals; only the
    modulus and the fused frequential stage apply the chain rule (:func:`dual_modulus`,
    :func:`dual_matmul_modulus_sum`). Same numbers as ``torch.func.jvp``, and faster than ``vmap(jvp)`` through the transform (the
    fused stage computes the primal once instead of once per tangent, and there is no vmap
    overhead; measured in docs/representations.md).
    """
    if ops["pad_index"] is None:  # zero padding
        x_pad = torch.nn.functional.pad(x, (plan.pad_left, plan.pad_right))
    else:  # reflection, as an index gather
        x_pad = x.index_select(-1, ops["pad_index"])
    global_time = plan.average == "global"
    X_hat = torch.fft.fft(x_pad.to(ops["dtype"]), dim=-1).unsqueeze(1)  # (B, 1, N_padded)
    blocks = [_zeroth_order(x, x_pad, X_hat, plan, ops)] if plan.with_zeroth else []

    # ---- first order: U1 = |x * psi1| at resolution k1, S1 = U1 * phi at resolution s
    S1: list[torch.Tensor] | torch.Tensor  # the per-resolution blocks, then their concatenation
    U1_hat, S1 = {}, []
    for k1 in plan.first:
        U1 = dual_modulus(windowed_filter(X_hat, ops["first"][k1]), width)
        U1_hat[k1] = torch.fft.fft(U1, dim=-1)
        S1.append(windowed_filter(U1_hat[k1], ops["lowpass1"][k1]))
    S1 = torch.cat(S1, dim=1)  # (B, n1, t) in n1 order: groups are consecutive n1 ranges
    if not global_time:
        S1 = S1[..., plan.t_start : plan.t_end]
    blocks.append(frequency_stage(S1, ops["stage1"], lambda u: u, global_time, width))

    # ---- second order: Y2 = U1 * psi2, grouped by (k1, k2), reassembled per n2
    by_res: dict[int, Any] = {}  # a list of blocks per resolution, then their concatenation
    for g, op in zip(plan.second, ops["second"]):
        by_res.setdefault(g.k1 + g.k2, []).append(windowed_filter(U1_hat[g.k1], op))
    by_res = {r: torch.cat(v, dim=1) for r, v in by_res.items()}
    for n2 in plan.n2_list:
        where = ops["n2_pairs"][n2]  # a slice (view) when the pairs are already in n1 order
        Y2 = by_res[plan.n2_res[n2]][:, where] if isinstance(where, slice) else by_res[plan.n2_res[n2]].index_select(1, where)
        blocks.append(frequency_stage(Y2, ops["stage2"][n2], _second_order_time(plan, ops, n2), global_time, width))
    return blocks


def scatter(x: torch.Tensor, plan: Plan, ops: dict, width: int = 1) -> torch.Tensor:
    """JTFS of ``x`` (B, N), real, -> ``(B, C, T)`` (format 'time') or ``(B, P, F, T)`` ('joint'):
    the blocks of :func:`scatter_blocks` (same arguments) stacked; needs ``plan.stackable``."""
    S = torch.cat(scatter_blocks(x, plan, ops, width), dim=1)
    if plan.format == "joint":
        S = S.reshape(x.shape[0], -1, plan.n_rows_joint, S.shape[-1])
    return S
