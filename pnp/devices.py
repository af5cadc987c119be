"""Where tensors are computed: one rule for every part of pnp (precompute, training, evaluation).

``"auto"`` is CUDA when torch sees a CUDA device, else the CPU; ``"cuda"`` (or ``"cuda:N"``)
without one is a ``ValueError`` (never a silent fall-back to the CPU).
"""

from __future__ import annotations

from typing import Any

#: the device names pnp accepts (``"cuda:N"`` too, for one GPU among several)
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: Any) -> str:
    """The concrete device (``"cpu"``, ``"cuda"`` or ``"cuda:N"``) for ``device``.

    ``device``: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``.  Use
    ``torch.device(resolve_device(d))`` where a ``torch.device`` is needed.
    """
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"device must be a string ('auto', 'cpu' or 'cuda'), got {type(device).__name__}")
    if device not in DEVICES and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: CUDA is not available here (torch.cuda.is_available() is False); "
                         "use 'cpu' or 'auto'")
    return device
