"""Technical validation: how close S2-like images are to real Sentinel-2 (the paper's Table 2).

Each metric is computed per image (and band) over its valid pixels, then averaged over images, as the paper
does. Inputs are DataArrays ``(..., band, y, x)`` of the same shape (e.g. S2-like vs S2 at 10 m); NaN marks
pixels to ignore (clouds, nodata). Reductions are plain xarray reductions, so dask inputs stay lazy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from sen2naip_xr import _lift
from sen2naip_xr._validate import as_image
from sen2naip_xr.errors import InputError
from sen2naip_xr.ops import kernels

__all__ = ["pearson", "spectral_angle", "spectral_angle_rad", "pbias", "bias_ratio", "mae", "rmse", "METRICS",
           "PAPER_NAMES", "PAPER_TABLE2", "compare", "validation_table", "validate_store", "markdown_table"]

SPATIAL = ("y", "x")


def _pair(sim: xr.DataArray, obs: xr.DataArray) -> tuple[Any, Any]:
    sim, obs = as_image(sim, arg="sim"), as_image(obs, arg="obs")
    if sim.sizes["y"] != obs.sizes["y"] or sim.sizes["x"] != obs.sizes["x"]:
        raise InputError(f"sim is {sim.sizes['y']}x{sim.sizes['x']} but obs is {obs.sizes['y']}x{obs.sizes['x']}; "
                         "compare images on the same grid (e.g. S2-like LR against S2 at 10 m)")
    # compare on positions, not on coordinate values (S2-like and S2 grids may carry different coords)
    sim = sim.drop_vars([c for c in ("y", "x") if c in sim.coords])
    obs = obs.drop_vars([c for c in ("y", "x") if c in obs.coords])
    valid = sim.notnull() & obs.notnull()
    return sim.where(valid), obs.where(valid)


def pearson(sim: xr.DataArray, obs: xr.DataArray) -> xr.DataArray:
    """Pearson correlation per image and band, over valid pixels."""
    s, o = _pair(sim, obs)
    ds, do = s - s.mean(SPATIAL), o - o.mean(SPATIAL)
    return (ds * do).sum(SPATIAL) / np.sqrt((ds**2).sum(SPATIAL) * (do**2).sum(SPATIAL))


def spectral_angle(sim: xr.DataArray, obs: xr.DataArray) -> xr.DataArray:
    """Mean spectral angle (degrees) per image: the angle between the 4-band vectors of each pixel.

    The kernel is :func:`sen2naip_xr.ops.kernels.spectral_angle` (also QA2 of the cross-sensor builder),
    lifted per image; pixels invalid in either image are skipped.
    """
    s, o = _pair(sim, obs)
    return _lift.reduce_images(kernels.spectral_angle, s, o, op="spectral-angle")


def pbias(sim: xr.DataArray, obs: xr.DataArray) -> xr.DataArray:
    """Percent bias per image and band: 100 * sum(sim - obs) / sum(obs)."""
    s, o = _pair(sim, obs)
    return 100.0 * (s - o).sum(SPATIAL) / o.sum(SPATIAL)


def spectral_angle_rad(sim: xr.DataArray, obs: xr.DataArray) -> xr.DataArray:
    """Mean spectral angle per image in radians: the scale of the paper's Table 2 (raw NAIP: 0.389)."""
    return np.radians(spectral_angle(sim, obs))


def bias_ratio(sim: xr.DataArray, obs: xr.DataArray) -> xr.DataArray:
    """Ratio of reflectances per image and band, ``sum(sim) / sum(obs)``: 1 is unbiased. What the paper's
    Table 2 calls PBIAS (raw NAIP: 3.381, i.e. NAIP about 3.4 times brighter than Sentinel-2)."""
    s, o = _pair(sim, obs)
    return s.sum(SPATIAL) / o.sum(SPATIAL)


def mae(sim: xr.DataArray, obs: xr.DataArray) -> xr.DataArray:
    """Mean absolute error per image and band."""
    s, o = _pair(sim, obs)
    return abs(s - o).mean(SPATIAL)


def rmse(sim: xr.DataArray, obs: xr.DataArray) -> xr.DataArray:
    """Root mean square error per image and band."""
    s, o = _pair(sim, obs)
    return np.sqrt(((s - o) ** 2).mean(SPATIAL))


METRICS = {"pearson": pearson, "sad_deg": spectral_angle, "pbias_pct": pbias, "mae": mae, "rmse": rmse,
           "pbias_ratio": bias_ratio, "sad_rad": spectral_angle_rad}
#: The paper's Table 2 names of the columns computed with its definitions.
PAPER_NAMES = {"pbias_ratio": "PBIAS (paper: ratio of reflectances, 1 = unbiased)",
               "sad_rad": "SAD (paper: radians)"}
#: The paper's Table 2 (Aybar et al. 2024), for setting ours beside it: PBIAS as a ratio, SAD in radians.
PAPER_TABLE2 = {"identity": {"pbias_ratio": 3.381, "sad_rad": 0.389},
                "gamma_mvn_p10": {"pbias_ratio": 0.562}, "gamma_mvn_p50": {"pbias_ratio": 1.073},
                "gamma_mvn_p90": {"pbias_ratio": 1.743}, "unet": {"pbias_ratio": 1.063},
                "vae": {"pbias_ratio": 0.936}}


def compare(sim: xr.DataArray, obs: xr.DataArray, *, image_dims: Sequence[str] | None = None) -> xr.Dataset:
    """Every metric per image (band-averaged where per band), lazily: a Dataset of ``(image dims...)``.

    Parameters
    ----------
    sim, obs
        Simulated and observed images ``(..., band, y, x)`` on the same grid; NaN pixels are ignored.
    image_dims
        The dims that index images (default: all leading dims).

    Returns
    -------
    xarray.Dataset
        One variable per metric (:data:`METRICS`), dims ``image_dims``.
    """
    out = {}
    for name, func in METRICS.items():
        v = func(sim, obs)
        out[name] = v.mean("band") if "band" in v.dims else v
    ds = xr.Dataset(out)
    if image_dims is not None:
        extra = [d for d in ds.dims if d not in image_dims]
        if extra:
            raise InputError(f"image_dims={list(image_dims)} misses dims {extra} of the inputs")
    return ds


def validation_table(per_image: xr.Dataset, *, by: str = "harmonizer") -> pd.DataFrame:
    """Table-2-style summary: each metric averaged over images (mean and sd), one row per ``by`` value.

    Parameters
    ----------
    per_image
        The result of :func:`compare` with a ``by`` coordinate.
    by
        The dim to group rows by.

    Returns
    -------
    pandas.DataFrame
        Mean and sd of each metric per ``by`` value.
    """
    per_image = per_image.compute()
    if by not in per_image.dims:
        per_image = per_image.expand_dims({by: ["all"]})
    rows = []
    for label in per_image[by].values:
        one = per_image.sel({by: label})
        row: dict[str, object] = {by: str(label), "n_images": int(np.isfinite(one["mae"]).sum())}
        for name in METRICS:
            vals = np.asarray(one[name].values, dtype=np.float64).ravel()
            vals = vals[np.isfinite(vals)]
            row[name] = float(vals.mean()) if vals.size else np.nan
            row[f"{name}_sd"] = float(vals.std()) if vals.size else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def validate_store(store, out, *, methods: Sequence[str] = ("identity", "gamma_lognormal", "gamma_mvn", "unet", "vae"),
                   percentiles: Sequence[float] = (10, 25, 50, 75, 90), split: str | None = "test", model=None,
                   seed: int = 0, noise: str = "real", device: str = "auto") -> pd.DataFrame:
    """Table 2 of the paper for a store: degrade the raw NAIP of every cross-sensor ROI of ``split`` with
    every method and percentile, compare with its Sentinel-2 image, and write ``validation.md``,
    ``validation.csv`` and ``fig9_comparison.png`` to ``out``. Returns the table.

    Parameters
    ----------
    store
        A store with a cross-sensor part.
    out
        Output folder.
    methods, percentiles, seed, noise, device
        As :func:`sen2naip_xr.degrade` takes them.
    split
        ``"test"``, ``"train"`` or None (all ROIs).
    model
        A :class:`~sen2naip_xr.DegradationModel` or the path of its JSON (default: the published model).

    Returns
    -------
    pandas.DataFrame
        The table, one row per harmonizer variant.
    """
    from pathlib import Path

    from sen2naip_xr.degrade import degrade
    from sen2naip_xr.figures import comparison_figure
    from sen2naip_xr.store import cross_sensor_pairs

    pairs = cross_sensor_pairs(store, split=split)
    ds = degrade(pairs.naip, list(methods), percentiles=percentiles, noise=noise, seed=seed, model=model,  # type: ignore[arg-type]
                 device=device, include_hr=False)
    sim = ds["lr/lr"]
    obs = pairs.s2.rename(y_lr="y", x_lr="x")
    table = validation_table(compare(sim, obs))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "validation.csv", index=False)
    (out / "validation.md").write_text(markdown_table(table, title=f"Validation on {len(pairs.roi)} cross-sensor "
                                                                   f"ROIs (split={split}, noise={noise})"))
    name = "published model" if model is None else (
        f"fitted model {Path(model).name}" if isinstance(model, (str, Path)) else "fitted model")
    comparison_figure(obs.rename(roi="pair"), sim.rename(roi="pair"), out / "fig9_comparison.png", model=name)
    return table


def markdown_table(table: pd.DataFrame, *, title: str = "") -> str:
    """The Table-2-style summary as Markdown (mean +- sd per metric), the paper's values beside ours where
    the paper reports the same variant, and a legend naming the definitions."""
    head = ["harmonizer", "n"] + list(METRICS) + ["paper PBIAS (ratio)", "paper SAD (rad)"]
    lines = ([f"## {title}", ""] if title else []) + ["| " + " | ".join(head) + " |",
                                                       "|" + "---|" * len(head)]
    for _, row in table.iterrows():
        label = str(row.iloc[0])
        cells = [label, str(int(row["n_images"]))]
        cells += [f"{row[m]:.4f} ± {row[m + '_sd']:.4f}" for m in METRICS]
        paper = PAPER_TABLE2.get("identity" if label == "raw" else label, {})
        cells += [f"{paper[k]:.3f}" if k in paper else "-" for k in ("pbias_ratio", "sad_rad")]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Definitions: `pbias_pct` = 100 x (sum(S2-like) - sum(S2)) / sum(S2) (0 = unbiased); "
              "`pbias_ratio` = sum(S2-like) / sum(S2) (1 = unbiased), what the paper's Table 2 reports as PBIAS; "
              "`sad_deg` and `sad_rad` are the mean spectral angle in degrees and in radians (the paper's scale). "
              "Each metric is computed per image, then averaged (mean ± sd over images)."]
    n = int(table["n_images"].min()) if len(table) else 0
    if n < 5:
        lines += ["", f"Only {n} image(s) per row: the means are those of so few images and the sd is not a "
                      "population estimate; set them beside the paper's (thousands of images) with care."]
    return "\n".join(lines) + "\n"
