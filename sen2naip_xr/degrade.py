"""The whole SEN2NAIP degradation model: harmonize -> blur + downsample -> noise, per method.

``degrade(naip)`` turns NAIP (2.5 m) into a Dataset of Sentinel-2-like images (10 m), one per
harmonization variant, lazily when the input is dask-backed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Literal

import xarray as xr

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
from sen2naip_xr.ops import degrade_lr, provenance

__all__ = ["degrade", "degrade_with", "build_config", "DEFAULT_METHODS", "LR_DIMS", "VARIANT_DIM"]

#: The four families of the paper, with gamma at the 50th percentile.
DEFAULT_METHODS: tuple[str, ...] = ("identity", "gamma_mvn", "unet", "vae")
#: Dim along which ``degrade`` stacks the harmonization variants. Not "method": ``.sel(method=...)``
#: is xarray's inexact-match keyword, so a dim of that name cannot be selected by keyword.
VARIANT_DIM = "harmonizer"
#: Names of the LR spatial dims in the Dataset ``degrade`` returns (HR keeps ``y``/``x``).
LR_DIMS = {"y": "y_lr", "x": "x_lr"}


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
) -> xr.Dataset:
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
    xarray.Dataset
        ``hr`` (harmonizer, ..., band, y, x): harmonized NAIP at 2.5 m (when ``include_hr``); ``lr`` (harmonizer, ..., band, y_lr, x_lr):
        blurred, downsampled and noisy S2-like images at 10 m. ``attrs["config"]`` holds the configuration.
    """
    cfg = build_config(methods, percentiles=percentiles, pooled=pooled, at=at, sample=sample, noise=noise,
                       noise_sigma=noise_sigma, seed=seed, sigma=sigma, blur_mode=blur_mode, device=device,
                       batch_size=batch_size, weights=weights, model=model)
    return degrade_with(image, cfg, include_hr=include_hr)


def degrade_with(image: xr.DataArray, cfg: DegradationConfig, *, include_hr: bool = True) -> xr.Dataset:
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
    xarray.Dataset
        As :func:`degrade`.
    """
    image = as_image(image, bands=len(cfg.blur.sigma), min_size=8, divisible=cfg.blur.factor)
    hrs, lrs = [], []
    for variant in cfg.methods:
        hr = harmonize_with(image, variant, model=cfg.model)
        lr = degrade_lr(hr, cfg.blur, cfg.noise, stream=variant.label, model=cfg.model, weights=variant.weights)
        hrs.append(hr)
        lrs.append(lr.rename(LR_DIMS))
    labels = [v.label for v in cfg.methods]
    lr_all = xr.concat(lrs, dim=VARIANT_DIM, combine_attrs="drop").assign_coords({VARIANT_DIM: labels})
    lr_all.attrs = {"long_name": "Sentinel-2-like reflectance (10 m)"}
    out = {"lr": lr_all}
    if include_hr:
        hr_all = xr.concat(hrs, dim=VARIANT_DIM, combine_attrs="drop").assign_coords({VARIANT_DIM: labels})
        hr_all.attrs = {"long_name": "harmonized NAIP reflectance (2.5 m)"}
        out = {"hr": hr_all, "lr": lr_all}
    attrs = provenance("degrade", config=cfg.to_dict())
    attrs["config"] = json.dumps(cfg.to_dict(), sort_keys=True)
    return xr.Dataset(out, attrs=attrs)
