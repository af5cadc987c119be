"""The joint time-frequency scattering algorithm, executing a :class:`~.plan.Plan` on tensors.

Pure tensor code: no ``.item()``, no branching on values, no in-place writes, so it runs under
reverse mode, forward mode, ``torch.func.vmap``, ``jacfwd`` and ``jacrev``. Shapes: ``x`` is
``(B, N)``; spectra are complex of the matching precision.
"""

from __future__ import annotations

import torch

from pnp.scattering.jtfs.modulus import matmul_modulus_sum, modulus
from pnp.scattering.jtfs.plan import Plan

#: complex values of the joint scalogram held at once per signal in the frequential stage
#: (bounds the memory of the second order, and of its Jacobian, independently of the signal length)
CHUNK_ELEMENTS = 2**18


def windowed_filter(Z: torch.Tensor, op: dict) -> torch.Tensor:
    """``(B, C, L_in)`` complex spectra -> ``(B, P, L_out)`` filtered, subsampled signals."""
    B = Z.shape[0]
    index, taps, L_in, L_out, real = op["index"], op["taps"], op["L_in"], op["L_out"], op["real"]
    W = taps.shape[-1]
    if index.dim() == 1:  # one filter shared by every channel
        g = Z.index_select(-1, index)
    else:  # one filter (and source channel) per output
        g = Z.reshape(B, -1).index_select(1, index.reshape(-1)).reshape(B, index.shape[0], W)
    P = g.shape[1]
    folded = (g * taps).reshape(B, P, W // L_out, L_out).sum(2) * (L_out / L_in)
    y = torch.fft.ifft(folded, dim=-1)
    return y.real if real else y


def frequency_stage(X: torch.Tensor, stage: dict, time_average, global_time: bool) -> torch.Tensor:
    """Frequential scattering along ``n1`` of ``X`` (B, n1, t), modulus, time averaging, then
    frequential averaging / unpadding: ``(B, R_out, t')``.

    ``time_average`` maps ``(B, r, t)`` real to ``(B, r, t')``; ``global_time`` says it is a sum
    over time, which lets the work be chunked over time instead of over rows.
    """
    W, A = stage["W"], stage["average"]
    X = X.to(W.dtype)
    R, L = W.shape[0], X.shape[-1]
    if global_time:
        U = matmul_modulus_sum(X, W, max(1, CHUNK_ELEMENTS // R)).unsqueeze(-1)
    else:
        step = max(1, CHUNK_ELEMENTS // L)
        U = torch.cat([time_average(modulus(torch.matmul(W[r : r + step], X))) for r in range(0, R, step)], dim=-2)
    return torch.matmul(A, U)


def scatter(x: torch.Tensor, plan: Plan, ops: dict) -> torch.Tensor:
    """JTFS of ``x`` (B, N), real, -> ``(B, C, T)`` (format 'time') or ``(B, P, F, T)`` ('joint').

    ``ops`` holds the plan's arrays as tensors of the right dtype/device (see the frontend).
    """
    B = x.shape[0]
    x_pad = x.index_select(-1, ops["pad_index"])
    X_hat = torch.fft.fft(x_pad, dim=-1).unsqueeze(1)  # (B, 1, N_padded)
    t0, t1 = plan.t_start, plan.t_end
    local = plan.average == "local"

    def time_out(y: torch.Tensor) -> torch.Tensor:
        """Unpad (local averaging) or sum over time (global)."""
        return y[..., t0:t1] if local else y.sum(-1, keepdim=True)

    outputs = []
    if plan.format == "time":
        if local:
            outputs.append(time_out(windowed_filter(X_hat, ops["zeroth"])))
        else:
            outputs.append(x_pad.sum(-1, keepdim=True).unsqueeze(1))

    # ---- first order: U1 = |x * psi1| at resolution k1, S1 = U1 * phi at resolution s
    U1_hat, S1 = {}, []
    for k1 in plan.first:
        U1 = modulus(windowed_filter(X_hat, ops["first"][k1]))
        U1_hat[k1] = torch.fft.fft(U1, dim=-1)
        S1.append(windowed_filter(U1_hat[k1], ops["lowpass1"][k1]))
    S1 = torch.cat(S1, dim=1)  # (B, n1, t) in n1 order: groups are consecutive n1 ranges
    if local:
        S1 = S1[..., t0:t1]
    outputs.append(frequency_stage(S1, ops["stage1"], lambda u: u, global_time=not local))

    # ---- second order: Y2 = U1 * psi2, grouped by (k1, k2), reassembled per n2
    by_res: dict[int, list[torch.Tensor]] = {}
    for g, op in zip(plan.second, ops["second"]):
        by_res.setdefault(g.k1 + g.k2, []).append(windowed_filter(U1_hat[g.k1], op))
    by_res = {r: torch.cat(v, dim=1) for r, v in by_res.items()}
    for n2 in plan.n2_list:
        Y2 = by_res[plan.n2_res[n2]].index_select(1, ops["n2_pairs"][n2])

        lp = ops["lowpass2"].get(n2)

        def time_average(u, lp=lp):
            return windowed_filter(torch.fft.fft(u, dim=-1), lp)[..., t0:t1]

        outputs.append(frequency_stage(Y2, ops["stage2"][n2], time_average, global_time=not local))

    S = torch.cat(outputs, dim=1)
    if plan.format == "joint":
        S = S.reshape(B, -1, plan.n_rows_joint, S.shape[-1])
    return S
