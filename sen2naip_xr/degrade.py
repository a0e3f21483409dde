"""The whole SEN2NAIP degradation model: harmonize -> blur + downsample -> noise, per method.

``degrade(naip)`` turns NAIP (2.5 m) into Sentinel-2-like images (10 m), one per harmonization variant,
lazily when the input is dask-backed. The result is an ``xr.DataTree`` shaped like a stored ROI: nodes ``hr``
and ``lr``, each a Dataset with its own grid (``spatial_ref`` and ``GeoTransform``), so rioxarray reads each
node as it is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Literal

import dask.array as dsa
import numpy as np
import xarray as xr
from xarray.indexes import PandasIndex

from sen2naip_xr._validate import as_image
from sen2naip_xr.config import (
    BlurConfig,
    DegradationConfig,
    DegradationModel,
    HarmonizeConfig,
    NoiseConfig,
)
from sen2naip_xr.errors import InputError
from sen2naip_xr.harmonize import harmonize_with
from sen2naip_xr.ops import degrade_lr, geotransform, provenance

__all__ = ["degrade", "degrade_with", "build_config", "DEFAULT_METHODS", "VARIANT_DIM", "HarmonizerIndex",
           "resolve_harmonizer"]

#: The four families of the paper, with gamma at the 50th percentile.
DEFAULT_METHODS: tuple[str, ...] = ("identity", "gamma_mvn", "unet", "vae")
#: Dim along which ``degrade`` stacks the harmonization variants. Not "method": ``.sel(method=...)``
#: is xarray's inexact-match keyword, so a dim of that name cannot be selected by keyword.
VARIANT_DIM = "harmonizer"


def build_config(
    methods: Sequence[str | HarmonizeConfig] = DEFAULT_METHODS,
    *,
    percentiles: Sequence[float] = (50,),
    pooled: bool = False,
    at: Literal["lr", "hr"] = "lr",
    sample: bool = False,
    noise: Literal["real", "gaussian", "none"] | None = "real",
    noise_sigma: float = 0.012,
    seed: int = 0,
    sigma: Sequence[float] | None = None,
    blur_mode: Literal["sen2naip", "raw"] = "sen2naip",
    device: str = "auto",
    batch_size: int = 16,
    weights: str | os.PathLike | None = None,
    model: DegradationModel | str | os.PathLike | None = None,
) -> DegradationConfig:
    """A :class:`DegradationConfig` from the keyword options of :func:`degrade` (the CLI uses it too).

    A gamma method given by name expands to one variant per entry of ``percentiles``. ``model`` (a
    :class:`DegradationModel` or the path of its JSON) gives the gamma distributions, the blur sigmas
    (unless ``sigma`` is passed) and the noise matrix; by default the published ones.

    Parameters
    ----------
    methods, percentiles, pooled, at, sample, noise, noise_sigma, seed, sigma, blur_mode, device, batch_size, weights, model
        As :func:`degrade` takes them.

    Returns
    -------
    DegradationConfig
        The validated configuration (an empty ``percentiles`` with a gamma method is an
        :class:`~sen2naip_xr.InputError` naming ``percentiles``).
    """
    model = DegradationModel.coerce(model)
    if isinstance(methods, str):
        methods = [methods]
    percentiles = tuple(percentiles) if not isinstance(percentiles, (int, float)) else (percentiles,)
    if not percentiles:
        raise InputError("percentiles=() is empty: gamma methods make one variant per percentile; pass e.g. "
                         "percentiles=(50,) (or drop the gamma methods)")
    variants: list[HarmonizeConfig] = []
    common = dict(pooled=pooled, at=at, sample=sample, seed=seed, device=device, batch_size=batch_size,
                  weights=None if weights is None else str(weights))
    for m in methods:
        if isinstance(m, HarmonizeConfig):
            variants.append(m)
            continue
        base = HarmonizeConfig(method=m, **common)  # type: ignore[arg-type]
        if base.method.startswith("gamma"):
            variants.extend(base.replace(percentile=p) for p in percentiles)
        else:
            variants.append(base)
    return DegradationConfig(
        methods=tuple(variants),
        blur=BlurConfig(sigma=model.sigma if sigma is None else sigma, mode=blur_mode),  # type: ignore[arg-type]
        noise=NoiseConfig(model=noise or "none", sigma=noise_sigma, seed=seed),
        model=model,
    )


def degrade(
    image: xr.DataArray,
    methods: Sequence[str | HarmonizeConfig] = DEFAULT_METHODS,
    *,
    percentiles: Sequence[float] = (50,),
    pooled: bool = False,
    at: Literal["lr", "hr"] = "lr",
    sample: bool = False,
    noise: Literal["real", "gaussian", "none"] | None = "real",
    noise_sigma: float = 0.012,
    seed: int = 0,
    sigma: Sequence[float] | None = None,
    blur_mode: Literal["sen2naip", "raw"] = "sen2naip",
    device: str = "auto",
    batch_size: int = 16,
    weights: str | os.PathLike | None = None,
    model: DegradationModel | str | os.PathLike | None = None,
    include_hr: bool = True,
) -> xr.DataTree:
    """Degrade NAIP into Sentinel-2-like images with every requested harmonization method.

    Parameters
    ----------
    image
        NAIP reflectance, dims ``(..., band, y, x)``, bands R,G,B,NIR in [0, 1], y/x divisible by 4.
    methods
        Names (``identity``/``raw``, ``gamma_lognormal``, ``gamma_mvn``, ``unet``, ``vae``) or
        :class:`HarmonizeConfig` objects. Gamma names expand over ``percentiles``.
    percentiles, pooled, at, sample, device, batch_size, weights
        Options of the harmonizers, the fields of :class:`HarmonizeConfig` (gamma percentiles, pooled gamma,
        the networks' resolution, VAE sampling, torch device and batch, folder of the published weights).
    noise, noise_sigma, seed
        LR noise model (``"real"`` matrix, ``"gaussian"`` with sd ``noise_sigma`` x band RMS, or ``"none"``)
        and the seed. Each method's noise stream derives from (seed, method label, position).
    blur_mode
        ``"sen2naip"`` (Gaussian + bilinear, the published model) or ``"raw"`` (antialiased bilinear).
    sigma, model
        Blur sigma per band (default: the model's, 3.0/2.9/2.9/3.4 published); ``model`` is a fitted
        :class:`DegradationModel` (or its JSON path) replacing the published gamma distributions, sigmas
        and noise matrix.
    include_hr
        Also return the harmonized HR images (one copy of the input per variant). The synthetic dataset
        stores only LR and histograms, so the pipeline turns this off.

    Returns
    -------
    xarray.DataTree
        Shaped like a stored ROI: node ``hr`` (when ``include_hr``) holds ``hr`` (harmonizer, ..., band, y, x),
        the harmonized NAIP at 2.5 m; node ``lr`` holds ``lr`` (harmonizer, ..., band, y, x), the blurred,
        downsampled and noisy S2-like images at 10 m. When the input has a rioxarray CRS each node has its own
        ``spatial_ref`` with its own ``GeoTransform`` (LR pixels 4x the HR size, same bounds), named by the
        image's ``grid_mapping`` attribute, so ``tree["lr"].rio.resolution()`` or
        ``tree["lr/lr"].sel(harmonizer="unet").rio.to_raster(...)`` work as on any rioxarray object.
        ``tree.attrs["config"]`` holds the configuration. Select a variant with
        ``.sel(harmonizer="gamma_mvn")`` (the percentile is added to the label only when there are several).

    Examples
    --------
    >>> tree = degrade(naip, ["identity", "gamma_mvn"])          # doctest: +SKIP
    >>> tree["lr/lr"].sel(harmonizer="gamma_mvn").rio.resolution() # doctest: +SKIP
    (10.0, -10.0)
    """
    cfg = build_config(methods, percentiles=percentiles, pooled=pooled, at=at, sample=sample, noise=noise,
                       noise_sigma=noise_sigma, seed=seed, sigma=sigma, blur_mode=blur_mode, device=device,
                       batch_size=batch_size, weights=weights, model=model)
    return degrade_with(image, cfg, include_hr=include_hr)


def degrade_with(image: xr.DataArray, cfg: DegradationConfig, *, include_hr: bool = True) -> xr.DataTree:
    """:func:`degrade` driven by a :class:`DegradationConfig`.

    Parameters
    ----------
    image
        NAIP reflectance, as :func:`degrade` takes it.
    cfg
        The whole model: variants, blur, noise and the :class:`DegradationModel`.
    include_hr
        Also return the harmonized HR images.

    Returns
    -------
    xarray.DataTree
        As :func:`degrade`.
    """
    image = as_image(image, bands=len(cfg.blur.sigma), min_size=8, divisible=cfg.blur.factor)
    hrs, lrs = [], []
    for variant in cfg.methods:
        hr = harmonize_with(image, variant, model=cfg.model)
        lr = degrade_lr(hr, cfg.blur, cfg.noise, stream=variant.label, model=cfg.model, weights=variant.weights)
        hrs.append(hr)
        lrs.append(lr)
    labels = [v.label for v in cfg.methods]
    nodes = {"lr": _node(lrs, "lr", labels, "Sentinel-2-like reflectance (10 m)")}
    if include_hr:
        nodes = {"hr": _node(hrs, "hr", labels, "harmonized NAIP reflectance (2.5 m)"), **nodes}
    attrs = provenance("degrade", config=cfg.to_dict())
    attrs["config"] = json.dumps(cfg.to_dict(), sort_keys=True)
    tree = xr.DataTree.from_dict(nodes)
    tree.attrs = attrs
    return tree


_COORD_ATTRS = {
    VARIANT_DIM: {"long_name": "harmonization method (and gamma percentile)"},
    "band": {"long_name": "spectral band (NAIP R, G, B, NIR; Sentinel-2 B04, B03, B02, B08)"},
    "x": {"standard_name": "projection_x_coordinate", "long_name": "x coordinate of the pixel centre", "units": "m"},
    "y": {"standard_name": "projection_y_coordinate", "long_name": "y coordinate of the pixel centre", "units": "m"},
}


def _node(images: list[xr.DataArray], name: str, labels: list[str], long_name: str) -> xr.Dataset:
    """One node of :func:`degrade`'s tree: the variants stacked along ``harmonizer``, georeferenced on their
    own grid (as :func:`~sen2naip_xr.ops.georeference` does for one array), string coordinates as variable-length strings (Zarr v3
    has no fixed-width string type), every variable with ``long_name`` (and ``units``)."""
    import pandas as pd

    first = images[0]
    data = (dsa.stack if isinstance(first.data, dsa.Array) else np.stack)([im.data for im in images])
    georef = "spatial_ref" in first.coords
    coords: dict[str, xr.Variable] = {}
    for k, v in first.coords.variables.items():
        values = v.values.astype(object) if v.dtype.kind == "U" else v.data
        extra = _COORD_ATTRS.get(k, {}) if georef or k not in ("x", "y") else {}
        coords[k] = xr.Variable(v.dims, values, {**v.attrs, **extra})
    attrs = {"long_name": long_name, "units": "1"}
    if georef:  # the node's own grid mapping (what ops.georeference gives one array)
        gt = geotransform(first["x"].values, first["y"].values) if "x" in coords and "y" in coords else None
        ref = coords["spatial_ref"]
        ref.attrs = {k: v for k, v in ref.attrs.items() if k != "GeoTransform"} | ({"GeoTransform": gt} if gt else {})
        attrs["grid_mapping"] = "spatial_ref"
    ds = xr.Dataset({name: ((VARIANT_DIM, *first.dims), data, attrs)}, coords=coords)
    index = HarmonizerIndex(pd.Index(labels, dtype=object), VARIANT_DIM)
    ds = ds.assign_coords(xr.Coordinates.from_xindex(index))
    ds[VARIANT_DIM].attrs.update(_COORD_ATTRS[VARIANT_DIM])
    return ds


def resolve_harmonizer(label: object, labels: Sequence[str]) -> object:
    """The ``harmonizer`` label that ``label`` names: itself, or a method name standing for its only variant
    (``"gamma_mvn"`` -> ``"gamma_mvn_p50"``, ``"raw"`` -> ``"identity"``). Raises ``KeyError`` naming the
    labels when it names none or several."""
    if not isinstance(label, str) or label in labels:
        return label
    name = "identity" if label == "raw" else label
    hits = [lab for lab in labels if lab == name or lab.startswith(name + "_p")]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise KeyError(f"harmonizer={label!r} names {len(hits)} variants {hits}; select one of them")
    raise KeyError(f"harmonizer={label!r} is not one of the labels {list(labels)}")


class HarmonizerIndex(PandasIndex):
    """The ``harmonizer`` index of :func:`degrade`'s nodes: a pandas index whose ``sel`` also takes a method
    name for its only variant (``sel(harmonizer="gamma_mvn")`` selects ``gamma_mvn_p50``) and whose
    ``KeyError`` names the labels."""

    def sel(self, labels, method=None, tolerance=None):  # type: ignore[override]
        known = [str(v) for v in self.index]
        out = {}
        for k, v in labels.items():
            if isinstance(v, str):
                v = resolve_harmonizer(v, known)
            elif isinstance(v, (list, tuple)):
                v = [resolve_harmonizer(i, known) for i in v]
            out[k] = v
        return super().sel(out, method=method, tolerance=tolerance)
