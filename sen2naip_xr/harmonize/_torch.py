"""The TorchScript U-Net: the one part of the package that needs torch (imported lazily, with a hint).

The model is loaded once per process and device (``lru_cache``), runs batched under ``inference_mode``,
on CUDA when present (``device="auto"``).
"""

from __future__ import annotations

import threading
import warnings
from functools import lru_cache
from typing import Any

import numpy as np

from sen2naip_xr.errors import InputError, MissingDependencyError

_LOAD_LOCK = threading.Lock()  # lru_cache alone lets concurrent first calls (threaded dask) each load
TORCH_HINT = 'pip install "sen2naip-xr[torch]"  (CPU-only: pip install torch --index-url <your CPU wheel index>)'


def require_torch() -> Any:
    """The ``torch`` module, or :class:`~sen2naip_xr.MissingDependencyError` with the install command.

    Returns
    -------
    module
        ``torch``, imported on first use (the package never imports it at import time).
    """
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised by a test that hides torch
        raise MissingDependencyError(
            f"the U-Net harmonizer needs torch, which is not installed; install it with: {TORCH_HINT}"
        ) from exc
    return torch


def resolve_device(device: str) -> str:
    """The torch device to run on: ``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``.

    Parameters
    ----------
    device
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; a CUDA device without a visible GPU is an
        :class:`~sen2naip_xr.InputError`.

    Returns
    -------
    str
        The device name for ``torch.device``.
    """
    torch = require_torch()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device={device!r} but torch sees no CUDA device; use device='cpu' or 'auto'")
    try:
        torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"device={device!r} is not a torch device; use 'auto', 'cpu' or 'cuda[:N]'") from exc
    return device


@lru_cache(maxsize=8)
def load_unet(path: str, device: str) -> Any:
    """The TorchScript U-Net on ``device``, in eval mode; loaded once per (path, device) per process."""
    torch = require_torch()
    with warnings.catch_warnings():  # the published weights are TorchScript; torch >= 2.9 deprecates the loader
        warnings.simplefilter("ignore", DeprecationWarning)
        model = torch.jit.load(path, map_location=device)
    model.eval()
    return model


def reference_pad(n: int, multiple: int = 32) -> int:
    """The reference's zero padding: ``32 - n % 32`` (a whole 32 when ``n`` is already a multiple)."""
    return multiple - n % multiple


def run_unet(images: np.ndarray, *, path: str, device: str = "auto", batch_size: int = 16) -> np.ndarray:
    """Run the U-Net on ``(n, 4, H, W)`` float32 reflectance; returns ``(n, 4, H, W)`` float32.

    Each axis is zero-padded at the end by ``32 - size % 32`` as the reference does (per axis, where the
    reference used the width for both), and the output cropped back.
    """
    torch = require_torch()
    dev = resolve_device(device)
    with _LOAD_LOCK:
        model = load_unet(path, dev)
    n, _, h, w = images.shape
    ph, pw = reference_pad(h), reference_pad(w)
    out = np.empty(images.shape, dtype=np.float32)
    # the profiling executor re-specialises the traced graph for every new input size (ROI sizes vary): the
    # plain interpreter is as fast here and has no warm-up
    with torch.inference_mode(), torch.jit.optimized_execution(False):
        for start in range(0, n, batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size], dtype=np.float32))
            batch = torch.nn.functional.pad(batch.to(dev, non_blocking=True), (0, pw, 0, ph))
            res = model(batch)[:, :, :h, :w]
            out[start:start + batch_size] = res.float().cpu().numpy()
    return out
