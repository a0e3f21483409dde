"""The dataset preview: one cross-sensor ROI as NAIP, NAIP_h, the S2-like image of each harmonizer, and S2."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _rgb(img: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((np.moveaxis(np.asarray(img)[:3], 0, -1) - lo) / (hi - lo), 0, 1)


def dataset_preview(panels: list[tuple[str, np.ndarray]], path: str | Path, *, title: str = "") -> Path:
    """RGB panels in a row (each ``(band, y, x)``), one stretch (1-99 %) for all; NaN shown black."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vals = np.concatenate([np.asarray(p)[:3].ravel() for _, p in panels])
    vals = vals[np.isfinite(vals)]
    lo, hi = (float(np.percentile(vals, 1)), float(np.percentile(vals, 99))) if vals.size else (0.0, 1.0)
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.0), squeeze=False)
    for ax, (name, img) in zip(axes[0], panels, strict=True):
        ax.imshow(np.nan_to_num(_rgb(img, lo, hi)))
        ax.set_title(name, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
