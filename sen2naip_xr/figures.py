"""PNG figures (matplotlib, Agg backend): what people would rather look at than read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr


def _rgb(img: np.ndarray, lo: float, hi: float) -> np.ndarray:
    rgb = np.moveaxis(np.asarray(img)[:3], 0, -1)
    return np.clip((rgb - lo) / (hi - lo), 0, 1)


def _stretch(arrays: list[np.ndarray]) -> tuple[float, float]:
    """One RGB stretch (1st-99th percentile of the finite values) for several images."""
    vals = np.concatenate([np.asarray(a)[:3].ravel() for a in arrays])
    vals = vals[np.isfinite(vals)]
    return (float(np.percentile(vals, 1)), float(np.percentile(vals, 99))) if vals.size else (0.0, 1.0)


def _pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path, dpi: int = 110) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)
    return path


def degradation_figure(naip: xr.DataArray, ds: xr.Dataset, path: str | Path, *, title: str = "") -> Path:
    """NAIP beside the S2-like LR image of every harmonizer (RGB, one stretch for all LR panels), each over
    its band histograms."""
    plt = _pyplot()

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
    return _save(fig, path)


_BAND_COLORS = {"red": "tab:red", "green": "tab:green", "blue": "tab:blue", "nir": "tab:purple"}


def gamma_density_figure(fit, path: str | Path, *, published=None) -> Path:
    """The paper's Fig. 4: density of the optimal gamma per band, the fitted normal and its KS statistic."""
    plt = _pyplot()
    from scipy import stats

    from sen2naip_xr.config import DegradationModel

    published = published or DegradationModel()
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2), sharey=False)
    for k, (band, ax) in enumerate(zip(fit.gammas.columns, axes, strict=True)):
        g = fit.gammas[band].dropna().to_numpy()
        mean, sd = fit.model.mvn_mean[k], float(np.sqrt(fit.model.mvn_cov[k][k]))
        grid = np.linspace(min(g.min(), mean - 4 * sd) - 0.02, max(g.max(), mean + 4 * sd) + 0.02, 200)
        ax.hist(g, bins=max(5, len(g) // 3), density=True, color=_BAND_COLORS.get(band, "gray"), alpha=0.4,
                label=f"optimal gamma (n={len(g)})")
        ax.plot(grid, stats.norm.pdf(grid, mean, sd), color="k", label=f"fitted N({mean:.3f}, {sd:.3f})")
        pm, ps = published.mvn_mean[k], float(np.sqrt(published.mvn_cov[k][k]))
        ax.plot(grid, stats.norm.pdf(grid, pm, ps), color="gray", ls="--", label="published marginal")
        ax.set_title(f"{band}: KS = {fit.ks[band]['statistic']:.3f}", fontsize=9)
        ax.set_xlabel("gamma", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def sigma_sweep_figure(fit, path: str | Path, *, truth=None) -> Path:
    """The paper's Fig. 6: MAE between blurred NAIP and S2 against the Gaussian sigma, per band."""
    plt = _pyplot()

    from sen2naip_xr.config import SEN2NAIP_SIGMA

    curves = fit.sigma_curves
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for k, band in enumerate(curves.band.values):
        c = curves.sel(band=band)
        color = _BAND_COLORS.get(str(band), "gray")
        ax.plot(c.sigma, c, color=color, label=f"{band}: sigma = {fit.model.sigma[k]:.1f}")
        ax.axvline(fit.model.sigma[k], color=color, ls=":", lw=1)
        if truth is not None:
            ax.plot([truth[k]], [float(c.min())], marker="*", color=color, ms=10)
    ax.plot([], [], ls=":", color="k", label="fitted minimum")
    ax.plot(SEN2NAIP_SIGMA, [float(curves.min())] * 4, "kx", label="published sigmas")
    if truth is not None:
        ax.plot([], [], "k*", ls="", label="known truth")
    ax.set_xlabel("Gaussian sigma (2.5 m pixels)")
    ax.set_ylabel("MAE vs Sentinel-2")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def comparison_figure(s2: xr.DataArray, s2like: xr.DataArray, path: str | Path, *, max_rows: int = 3,
                      image_dim: str = "pair", by: str = "harmonizer") -> Path:
    """The paper's Fig. 9: real S2 beside the S2-like image of every harmonizer, with band histograms.

    ``s2`` is ``(image_dim, band, y, x)``; ``s2like`` is ``(by, image_dim, band, y, x)`` on the same grid.
    """
    plt = _pyplot()

    labels = [str(v) for v in s2like[by].values]
    n = min(max_rows, s2.sizes[image_dim])
    ncol = len(labels) + 1
    fig, axes = plt.subplots(2 * n, ncol, figsize=(2.5 * ncol, 3.6 * n), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1] * n})
    for i in range(n):
        obs = s2.isel({image_dim: i}).values
        sims = [s2like.sel({by: lab}).isel({image_dim: i}).values for lab in labels]
        lo, hi = _stretch([obs])
        for k, (name, img) in enumerate([("Sentinel-2", obs)] + list(zip(labels, sims, strict=True))):
            ax, axh = axes[2 * i, k], axes[2 * i + 1, k]
            ax.imshow(_rgb(img, lo, hi))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=9)
            for b, c in enumerate(_BAND_COLORS.values()):
                vals = img[b].ravel()
                axh.hist(vals[np.isfinite(vals)], bins=60, range=(0, 0.6), histtype="step", color=c)
            axh.set_yticks([])
            axh.tick_params(labelsize=6)
    fig.tight_layout()
    return _save(fig, path, dpi=100)


def dataset_preview(panels: list[tuple[str, np.ndarray]], path: str | Path, *, title: str = "") -> Path:
    """RGB panels in a row (each ``(band, y, x)``), one stretch (1-99 %) for all; NaN shown black.

    The dataset demo's preview: one cross-sensor ROI as NAIP, NAIP_h, the S2-like image of each harmonizer
    and S2.
    """
    plt = _pyplot()
    lo, hi = _stretch([p for _, p in panels])
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.0), squeeze=False)
    for ax, (name, img) in zip(axes[0], panels, strict=True):
        ax.imshow(np.nan_to_num(_rgb(img, lo, hi)))
        ax.set_title(name, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path, dpi=100)
