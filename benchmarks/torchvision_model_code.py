"""Load torchvision's model code without its compiled extension, for CPU-only benchmarks.

PyPI's torchvision wheels for Linux are linked against the CUDA build of torch
(``libtorch_cuda.so``, ``libc10_cuda.so``); with the CPU wheel of the pinned torch
(``pip install "torch==2.13.*"`` gives ``2.13.0+cpu`` here) its ``_C`` extension cannot load, and
``import torchvision`` 0.28 then fails while registering fake kernels for ``torchvision::nms`` /
``qnms``.  EfficientNet-B0 uses none of torchvision's compiled operators, so the model itself is
plain PyTorch.  :func:`enable` makes ``import torchvision`` skip the extension and declares the
two operator schemas that its import registers fake kernels for; after it, torchvision's detection
operators raise on use, and its models work.

This is for measurements only (``benchmarks/training.py --torchvision-model-code``); the library
itself imports torchvision unchanged and refuses a broken one in one line.
"""

from __future__ import annotations

import torch

_SCHEMAS = ("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
            "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_state: dict[str, object] = {}


def enable() -> None:
    """Call before the first ``import torchvision``; idempotent."""
    if _state:
        return
    original = torch.ops.load_library

    def load_library(path):
        if "torchvision" in str(path):
            raise OSError("torchvision's compiled extension is skipped (CUDA-linked wheel, CPU torch)")
        return original(path)

    torch.ops.load_library = load_library
    lib = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        lib.define(schema)
    _state["lib"] = lib
