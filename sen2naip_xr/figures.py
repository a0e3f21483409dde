"""PNG figures (matplotlib, Agg backend): the degradation panel, the dataset preview and the analogues of the
paper's Fig. 4 (gamma densities), Fig. 6 (blur sigma sweep) and Fig. 9 (S2 beside the S2-like images).

Every figure reads on its own: a title naming the model, labelled axes with units, a band legend, text of at
least 9 pt, and a stated stretch. Images are shown in true colour (R, G, B), **each panel stretched to its
own 2nd-98th percentiles** (one pair of limits for the three bands, so colours keep their balance): a dark
S2-like image and a bright NAIP image are both readable, and their brightness is compared on the histograms
below them, which share one reflectance axis per row.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import xarray as xr

__all__ = ["degradation_figure", "gamma_density_figure", "sigma_sweep_figure", "comparison_figure",
           "dataset_preview", "STRETCH_NOTE"]

#: The stretch every image panel uses, as printed under the figures.
STRETCH_NOTE = "RGB; each panel stretched to its own 2-98th percentiles"
_BAND_COLORS = {"red": "tab:red", "green": "tab:green", "blue": "tab:blue", "nir": "tab:purple"}
_BAND_LABELS = ("R", "G", "B", "NIR")
_RC = {"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9,
       "legend.fontsize": 9, "figure.titlesize": 11}


def _stretch(img: np.ndarray) -> tuple[float, float]:
    """2nd-98th percentiles of the finite RGB values of one image (the panel's own stretch)."""
    vals = np.asarray(img)[:3].ravel()
    vals = vals[np.isfinite(vals)]
    if not vals.size:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(vals, (2, 98)))
    return (lo, hi) if hi > lo else (lo, lo + 1e-6)


def _rgb(img: np.ndarray) -> np.ndarray:
    lo, hi = _stretch(img)
    rgb = np.moveaxis(np.asarray(img, dtype=np.float64)[:3], 0, -1)
    return np.nan_to_num(np.clip((rgb - lo) / (hi - lo), 0, 1))


def _hist_top(images: list[np.ndarray]) -> float:
    """A shared reflectance axis for the histograms of a row: up to the 99.5th percentile of all bands."""
    vals = np.concatenate([np.asarray(a).ravel() for a in images])
    vals = vals[np.isfinite(vals)]
    return float(min(1.0, max(0.05, np.percentile(vals, 99.5) * 1.05))) if vals.size else 1.0


def _band_hist(ax, img: np.ndarray, top: float, *, bins: int = 60) -> None:
    for b, (color, name) in enumerate(zip(_BAND_COLORS.values(), _BAND_LABELS, strict=True)):
        if b >= img.shape[0]:
            break
        vals = np.asarray(img[b]).ravel()
        vals = vals[np.isfinite(vals)]
        ax.hist(vals, bins=bins, range=(0, top), histtype="step", color=color, label=name)
    ax.set_xlim(0, top)
    ax.set_yticks([])
    ax.set_xlabel("reflectance")


def _pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def _figure_style():
    plt = _pyplot()
    with plt.rc_context(_RC):
        yield plt


def _save(fig, path: str | Path, dpi: int = 110) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)
    return path


def _image_grid(plt, rows: list[list[tuple[str, np.ndarray]]], *, row_labels: list[str] | None, title: str,
                note: str, panel: float = 2.6):
    """Rows of RGB panels, each over its band histograms (shared reflectance axis per row)."""
    nrow, ncol = len(rows), max(len(r) for r in rows)
    same_columns = len({tuple(name for name, _ in r) for r in rows}) == 1  # column titles once, on top
    fig, axes = plt.subplots(2 * nrow, ncol, figsize=(panel * ncol + 0.6, (panel * 1.45 + 0.3) * nrow + 0.9),
                             squeeze=False, gridspec_kw={"height_ratios": [3, 1.1] * nrow}, layout="constrained")
    for i, row in enumerate(rows):
        top = _hist_top([img for _, img in row])
        for k in range(ncol):
            ax, axh = axes[2 * i, k], axes[2 * i + 1, k]
            if k >= len(row):
                ax.axis("off")
                axh.axis("off")
                continue
            name, img = row[k]
            ax.imshow(_rgb(img))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0 or not same_columns:
                ax.set_title(name)
            _band_hist(axh, img, top)
            if k == 0:
                axh.set_ylabel("pixels")
                if row_labels:
                    ax.set_ylabel(row_labels[i])
        if i == 0:
            axes[1, 0].legend(loc="upper right", frameon=False, ncol=2, handlelength=1.0, borderpad=0.1)
    fig.suptitle(title)
    fig.supxlabel(note, fontsize=9)
    return fig


def degradation_figure(naip: xr.DataArray, ds: xr.Dataset, path: str | Path, *, title: str = "",
                       model: str = "published model") -> Path:
    """NAIP beside the S2-like LR image of every harmonizer, each over its band histograms.

    ``ds`` holds ``lr`` (harmonizer, band, y, x), e.g. ``degrade(...)["lr"].ds``; ``model`` names the
    degradation model in the title.
    """
    methods = [str(m) for m in ds.harmonizer.values]
    panels = [("NAIP (2.5 m)", np.asarray(naip.values))] + [
        (f"{m} (10 m)", np.asarray(ds["lr"].sel(harmonizer=m).values)) for m in methods]
    ncol = min(5, len(panels))
    rows = [panels[i:i + ncol] for i in range(0, len(panels), ncol)]
    with _figure_style() as plt:
        fig = _image_grid(plt, rows, row_labels=None,
                          title=(title or "NAIP degraded to Sentinel-2-like images") + f" ({model})",
                          note=f"{STRETCH_NOTE}; histograms: reflectance per band, one axis per row")
        return _save(fig, path)


def _density_axes(ax, g: np.ndarray, color: str, fitted: tuple[float, float], published: tuple[float, float]):
    """Fig. 4 for one band: the optimal gammas (histogram, or a rug when there are few), the fitted and the
    published normals, on an axis that shows all three. Returns the artists for the legend."""
    from scipy import stats

    (mean, sd), (pm, ps) = fitted, published
    sd = max(sd, 1e-6)
    lo = min(g.min(), pm - 3.5 * ps, mean - 3.5 * sd)
    hi = max(g.max(), pm + 3.5 * ps, mean + 3.5 * sd)
    pad = 0.05 * (hi - lo)
    # the fitted curve may be far narrower than the axis (pairs made with one known gamma): sample it densely
    grid = np.unique(np.concatenate([np.linspace(lo - pad, hi + pad, 400), mean + sd * np.linspace(-4, 4, 161)]))
    pub_pdf = stats.norm.pdf(grid, pm, ps)
    fit_pdf = stats.norm.pdf(grid, mean, sd)
    ymax = 1.3 * float(pub_pdf.max())
    if len(g) >= 10:
        width = max((hi - lo) / 40, float(np.ptp(g)) / max(5, int(np.sqrt(len(g)))))
        edges = np.arange(g.min(), g.max() + width, width)
        counts, _, data = ax.hist(g, bins=edges if len(edges) > 1 else 5, density=True, color=color, alpha=0.35)
        ymax = max(ymax, 1.1 * float(np.max(counts)))
        data = data[0]
    else:
        (data,) = ax.plot(g, np.zeros_like(g), "|", color=color, ms=22, mew=2.5, clip_on=False)
    ymax = max(ymax, min(1.1 * float(fit_pdf.max()), 3 * ymax))
    (pub,) = ax.plot(grid, pub_pdf, color="0.4", ls="--")
    (fit,) = ax.plot(grid, fit_pdf, color="k", lw=1.5)
    if fit_pdf.max() > ymax:
        ax.text(0.97, 0.96, f"fitted peak\n{fit_pdf.max():.0f}: off scale", transform=ax.transAxes, ha="right",
                va="top", fontsize=9, bbox={"facecolor": "white", "edgecolor": "0.7", "pad": 2})
    ax.set_xlim(grid[0], grid[-1])
    ax.set_ylim(0, ymax)
    ax.set_xlabel("gamma (S2 = NAIP ** (1 / gamma))")
    return data, fit, pub


def gamma_density_figure(fit, path: str | Path, *, published=None, model: str = "fitted model") -> Path:
    """The paper's Fig. 4: per band, the optimal gamma of each pair, the fitted normal and the published one,
    with the KS statistic of the fit. With fewer than 10 pairs the gammas are a rug (a histogram of so few
    values says nothing); the axis always shows the published curve, and a fitted curve too narrow for it is
    said to be off scale."""
    from sen2naip_xr.config import DegradationModel

    published = published or DegradationModel()
    with _figure_style() as plt:
        fig, axes = plt.subplots(1, 4, figsize=(14, 4.3))
        n = 0
        for k, (band, ax) in enumerate(zip(fit.gammas.columns, axes, strict=True)):
            g = fit.gammas[band].dropna().to_numpy(dtype=np.float64)
            n = max(n, len(g))
            fitted = (float(fit.model.mvn_mean[k]), float(np.sqrt(fit.model.mvn_cov[k][k])))
            pub = (float(published.mvn_mean[k]), float(np.sqrt(published.mvn_cov[k][k])))
            handles = _density_axes(ax, g, _BAND_COLORS.get(str(band), "gray"), fitted, pub)
            ax.set_title(f"{band}: fitted N({fitted[0]:.3f}, {fitted[1]:.4f})\npublished N({pub[0]:.3f}, "
                         f"{pub[1]:.3f}); KS = {fit.ks[band]['statistic']:.2f}")
        axes[0].set_ylabel("probability density")
        kind = "histogram" if n >= 10 else "one tick per pair"
        if n < 10:  # a neutral legend entry for the coloured ticks of the four bands
            from matplotlib.lines import Line2D

            handles = (Line2D([], [], marker="|", color="0.3", ls="", ms=14, mew=2.5), *handles[1:])
        fig.legend(handles, [f"optimal gamma of each pair ({kind}, n={n})", f"fitted normal ({model})",
                             "published model's marginal normal"], loc="lower center", ncol=3, frameon=False)
        fig.suptitle(f"Fig. 4 analogue: optimal gamma per band, {model} vs the published model")
        fig.tight_layout(rect=(0, 0.07, 1, 1))
        return _save(fig, path)


def sigma_sweep_figure(fit, path: str | Path, *, truth=None, model: str = "fitted model") -> Path:
    """The paper's Fig. 6: MAE between blurred NAIP and S2 against the Gaussian sigma, per band, with the
    fitted minimum, the published sigmas and (``truth``) the known ones."""
    from sen2naip_xr.config import SEN2NAIP_SIGMA

    curves = fit.sigma_curves
    with _figure_style() as plt:
        fig, ax = plt.subplots(figsize=(7.5, 4.6))
        for k, band in enumerate(curves.band.values):
            c = curves.sel(band=band)
            color = _BAND_COLORS.get(str(band), "gray")
            ax.plot(c.sigma, c, color=color, label=f"{band}: fitted sigma {fit.model.sigma[k]:.1f}")
            ax.axvline(fit.model.sigma[k], color=color, ls=":", lw=1)
            ax.plot([SEN2NAIP_SIGMA[k]], [float(c.interp(sigma=SEN2NAIP_SIGMA[k]))], "x", color=color, ms=9, mew=2)
            if truth is not None:
                ax.plot([truth[k]], [float(c.interp(sigma=truth[k]))], marker="*", color=color, ms=12, ls="")
        ax.plot([], [], ls=":", color="k", label="fitted minimum")
        ax.plot([], [], "kx", ls="", ms=9, mew=2, label="published sigma (3.0, 2.9, 2.9, 3.4)")
        if truth is not None:
            ax.plot([], [], "k*", ls="", ms=12, label="known truth")
        ax.set_xlabel("Gaussian blur sigma (2.5 m pixels)")
        ax.set_ylabel("MAE vs Sentinel-2 (reflectance)")
        ax.set_title(f"Fig. 6 analogue: blur sigma sweep, {model}")
        ax.legend(frameon=False)
        fig.tight_layout()
        return _save(fig, path)


def comparison_figure(s2: xr.DataArray, s2like: xr.DataArray, path: str | Path, *, max_rows: int = 3,
                      image_dim: str = "pair", by: str = "harmonizer", model: str = "published model") -> Path:
    """The paper's Fig. 9: real S2 beside the S2-like image of every harmonizer, with band histograms.

    ``s2`` is ``(image_dim, band, y, x)``; ``s2like`` is ``(by, image_dim, band, y, x)`` on the same grid;
    ``model`` names the degradation model in the title.
    """
    labels = [str(v) for v in s2like[by].values]
    n = min(max_rows, s2.sizes[image_dim])
    rows, names = [], []
    for i in range(n):
        obs = np.asarray(s2.isel({image_dim: i}).values)
        sims = [np.asarray(s2like.sel({by: lab}).isel({image_dim: i}).values) for lab in labels]
        rows.append([("Sentinel-2", obs)] + list(zip(labels, sims, strict=True)))
        coord = s2[image_dim].values[i] if image_dim in s2.coords else i
        names.append(f"{image_dim} {coord}")
    with _figure_style() as plt:
        fig = _image_grid(plt, rows, row_labels=names, panel=2.4,
                          title=f"Fig. 9 analogue: Sentinel-2 and the S2-like images, {model}",
                          note=f"{STRETCH_NOTE} (compare brightness on the histograms, one axis per row)")
        return _save(fig, path, dpi=100)


def dataset_preview(panels: list[tuple[str, np.ndarray]], path: str | Path, *, title: str = "",
                    model: str = "published model") -> Path:
    """RGB panels in a row (each ``(band, y, x)``) over their band histograms; NaN shown black.

    The dataset demo's preview: one cross-sensor ROI as NAIP, NAIP_h, the S2-like image of each harmonizer
    (``model``) and S2.
    """
    with _figure_style() as plt:
        fig = _image_grid(plt, [[(name, np.asarray(img)) for name, img in panels]], row_labels=None, panel=2.4,
                          title=(title or "one cross-sensor ROI") + f" (S2-like: {model})",
                          note=f"{STRETCH_NOTE}; histograms: reflectance per band on one axis")
        return _save(fig, path, dpi=100)
