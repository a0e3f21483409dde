"""Cloud screening per ROI from the Scene Classification layer, plus a user cloud-model hook."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr

from sen2naip_xr.errors import InputError
from sen2naip_xr.load._config import CloudConfig

__all__ = ["CloudModel", "cloud_mask", "cloud_fraction", "screen_clouds"]

#: A cloud model: S2 reflectance ``(band, y, x)`` float32 (bands R,G,B,NIR) -> bool ``(y, x)``, True = cloud.
CloudModel = Callable[[np.ndarray], np.ndarray]


def _model_kernel(x: np.ndarray, model: CloudModel) -> np.ndarray:
    lead = x.shape[:-3]
    flat = x.reshape((-1, *x.shape[-3:]))
    out = np.empty((flat.shape[0], *x.shape[-2:]), dtype=bool)
    for i, img in enumerate(flat):
        m = np.asarray(model(img))
        if m.shape != img.shape[-2:]:
            raise InputError(f"cloud model returned shape {m.shape}; it must return a (y, x) mask of {img.shape[-2:]}")
        out[i] = m.astype(bool)
    return out.reshape((*lead, *x.shape[-2:]))


def cloud_mask(
    scl: xr.DataArray,
    *,
    config: CloudConfig | None = None,
    s2: xr.DataArray | None = None,
    model: CloudModel | None = None,
) -> xr.DataArray:
    """Lazy bool mask ``(roi, time, y, x)``: SCL in ``config.bad_classes``, OR the model's clouds.

    ``model`` (with ``s2``, the reflectance cube of the same pairs) runs per image inside the Dask
    tasks; it sees float32 ``(band, y, x)`` reflectance and returns a ``(y, x)`` bool mask.

    Parameters
    ----------
    scl
        The SCL cube of :func:`load_scl` ``(roi, time, y, x)``.
    config
        Classes counted as unusable and the fraction allowed (:class:`~sen2naip_xr.CloudConfig`).
    s2, model
        An optional cloud model (a callable on S2 images) and the S2 cube it reads.

    Returns
    -------
    xarray.DataArray
        bool ``(roi, time, y, x)``, lazy.
    """
    cfg = config or CloudConfig()
    if not {"y", "x"} <= set(scl.dims) or "band" in scl.dims:
        raise InputError(f"scl has dims {scl.dims}; pass the SCL cube from load_scl / load_pairs(...).scl")
    mask = scl.isin(list(cfg.bad_classes))
    if model is not None:
        if s2 is None:
            raise InputError("model= needs s2= (the reflectance cube it looks at); pass load_pairs(...).s2")
        user = xr.apply_ufunc(
            _model_kernel, s2, input_core_dims=[["band", "y", "x"]], output_core_dims=[["y", "x"]],
            dask="parallelized", output_dtypes=[bool], kwargs={"model": model},
        )
        mask = mask | user.drop_vars([c for c in user.coords if c not in mask.coords], errors="ignore")
    return mask.rename("cloud_mask")


def cloud_fraction(
    scl: xr.DataArray,
    *,
    config: CloudConfig | None = None,
    s2: xr.DataArray | None = None,
    model: CloudModel | None = None,
) -> xr.DataArray:
    """Fraction of unusable pixels per ROI and capture, ``(roi, time)`` float.

    Parameters
    ----------
    scl
        The SCL cube of :func:`load_scl` ``(roi, time, y, x)``.
    config
        Classes counted as unusable and the fraction allowed (:class:`~sen2naip_xr.CloudConfig`).
    s2, model
        An optional cloud model (a callable on S2 images) and the S2 cube it reads.

    Returns
    -------
    xarray.DataArray
        float ``(roi, time)``, lazy.
    """
    return cloud_mask(scl, config=config, s2=s2, model=model).mean(("y", "x")).rename("cloud_fraction")


def screen_clouds(
    scl: xr.DataArray,
    *,
    config: CloudConfig | None = None,
    s2: xr.DataArray | None = None,
    model: CloudModel | None = None,
) -> xr.DataArray:
    """True where an ROI capture passes: unusable fraction <= ``config.max_fraction``.

    Empty ``time`` slots (no item) read as SCL 0 (no data) and fail.

    Parameters
    ----------
    scl
        The SCL cube of :func:`load_scl` ``(roi, time, y, x)``.
    config
        Classes counted as unusable and the fraction allowed (:class:`~sen2naip_xr.CloudConfig`).
    s2, model
        An optional cloud model (a callable on S2 images) and the S2 cube it reads.

    Returns
    -------
    xarray.DataArray
        bool ``(roi, time)``, lazy: True where the capture is usable.
    """
    cfg = config or CloudConfig()
    return (cloud_fraction(scl, config=cfg, s2=s2, model=model) <= cfg.max_fraction).rename("clear")
