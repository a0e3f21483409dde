"""PNG figures (matplotlib, Agg backend): what people would rather look at than read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr


def _rgb(img: np.ndarray, lo: float, hi: float) -> np.ndarray:
    rgb = np.moveaxis(np.asarray(img)[:3], 0, -1)
    return np.clip((rgb - lo) / (hi - lo), 0, 1)


def _stretch(arrays: list[np.ndarray]) -> tuple[float, float]:
    vals = np.concatenate([np.asarray(a)[:3].ravel() for a in arrays])
    vals = vals[np.isfinite(vals)]
    return float(np.percentile(vals, 1)), float(np.percentile(vals, 99))


def degradation_figure(naip: xr.DataArray, ds: xr.Dataset, path: str | Path, *, title: str = "") -> Path:
    """NAIP beside the S2-like LR image of every harmonizer (RGB, one stretch for all LR panels), each over
    its band histograms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [str(m) for m in ds.harmonizer.values]
    lrs = [ds.lr.sel(harmonizer=m).values for m in methods]
    lo, hi = _stretch(lrs)
    nlo, nhi = _stretch([naip.values])
    panels = [("NAIP (2.5 m)", naip.values, nlo, nhi, 1.0)] + [
        (f"{m} (10 m)", lr, lo, hi, 0.6) for m, lr in zip(methods, lrs, strict=True)]
    ncol = min(5, len(panels))
    nrow = -(-len(panels) // ncol)
    fig, axes = plt.subplots(2 * nrow, ncol, figsize=(2.9 * ncol, 5.4 * nrow), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1] * nrow})
    colors = ["tab:red", "tab:green", "tab:blue", "tab:purple"]
    for k, (name, img, vlo, vhi, top) in enumerate(panels):
        ax_img, ax_hist = axes[2 * (k // ncol), k % ncol], axes[2 * (k // ncol) + 1, k % ncol]
        ax_img.imshow(_rgb(img, vlo, vhi))
        ax_img.set_title(name, fontsize=9)
        for b, c in enumerate(colors):
            ax_hist.hist(img[b].ravel(), bins=120, range=(0, top), histtype="step", color=c)
        ax_hist.set_yticks([])
        ax_hist.tick_params(labelsize=7)
    for ax in axes[::2].ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    for k in range(len(panels), nrow * ncol):
        axes[2 * (k // ncol), k % ncol].axis("off")
        axes[2 * (k // ncol) + 1, k % ncol].axis("off")
    axes[1, 0].set_xlabel("reflectance (R, G, B, NIR)", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
