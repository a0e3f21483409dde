"""Input checks shared by every operator: each failure names the argument, the value and the fix."""

from __future__ import annotations

from typing import Any

import dask.array as dsa
import numpy as np
import xarray as xr

from sen2naip_xr._const import BANDS
from sen2naip_xr.errors import InputError

CORE = ("band", "y", "x")


def as_image(image: Any, *, arg: str = "image", bands: int | None = None, min_size: int = 1,
             divisible: int | None = None) -> xr.DataArray:
    """Return ``image`` as a float DataArray ending with dims (band, y, x), or raise :class:`InputError`.

    numpy/dask arrays are accepted and given dims ``(dim_0, ..., band, y, x)``. Dims are moved to the end
    by name. A band coordinate holding exactly :data:`BANDS` in another order is reordered.
    """
    if isinstance(image, (np.ndarray, dsa.Array)):
        if image.ndim < 3:
            raise InputError(f"{arg} has shape {image.shape}; it needs at least 3 axes (band, y, x)")
        lead = [f"dim_{i}" for i in range(image.ndim - 3)]
        image = xr.DataArray(image, dims=lead + list(CORE))
    if not isinstance(image, xr.DataArray):
        raise InputError(f"{arg} is a {type(image).__name__}; pass an xarray.DataArray with dims (..., band, y, x)")
    missing = [d for d in CORE if d not in image.dims]
    if missing:
        raise InputError(
            f"{arg} has dims {tuple(image.dims)} and lacks {missing}; rename its dims, e.g. "
            f"{arg}.rename({{'bands': 'band', 'lat': 'y', 'lon': 'x'}}), or add one with "
            f"{arg}.expand_dims(band=[...])"
        )
    if tuple(image.dims[-3:]) != CORE:
        image = image.transpose(..., *CORE)
    if image.dtype.kind not in "f":
        hint = f"{arg}.astype('float32') / 255" if image.dtype == np.uint8 else f"{arg}.astype('float32') / 10000"
        raise InputError(
            f"{arg} has dtype {image.dtype}; the operators take reflectance as floats in [0, 1]: convert with "
            f"{hint} (NAIP is DN/255; Sentinel-2 L2A is (DN + offset)/10000)"
        )
    if image.dtype != np.float32:
        image = image.astype(np.float32)
    if bands is not None and image.sizes["band"] != bands:
        raise InputError(
            f"{arg} has {image.sizes['band']} bands; this operation needs {bands} in the order {BANDS}: "
            f"select them, e.g. {arg}.sel(band=list({BANDS!r}))"
        )
    if "band" in image.coords and image.sizes["band"] == len(BANDS):
        labels = [str(v) for v in image.coords["band"].values]
        if sorted(labels) == sorted(BANDS) and tuple(labels) != BANDS:
            image = image.sel(band=list(BANDS))
    small = {d: image.sizes[d] for d in ("y", "x") if image.sizes[d] < min_size}
    if small:
        raise InputError(
            f"{arg} is {image.sizes['y']}x{image.sizes['x']} pixels; this operation needs at least "
            f"{min_size}x{min_size} (the filter reads {min_size // 2} pixels on each side): use larger ROIs"
        )
    if divisible:
        bad = {d: image.sizes[d] for d in ("y", "x") if image.sizes[d] % divisible}
        if bad:
            fix = ", ".join(f"{d}=slice(0, {n - n % divisible})" for d, n in bad.items())
            raise InputError(
                f"{arg} has {bad} pixels, not divisible by {divisible}; crop it so LR pixels line up with "
                f"HR pixels, e.g. {arg}.isel({fix})"
            )
    return image


def check_pixels(block: np.ndarray, arg: str, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """:func:`check_values` of a numpy block (the kernel it runs per block)."""
    if np.isnan(block).any():
        raise InputError(
            f"{arg} contains NaN (nodata); the harmonizers need complete images: fill it "
            f"({arg}.fillna(0)) or drop the affected ROI (see sen2naip_xr.is_blank)"
        )
    mn, mx = (float(block.min()), float(block.max())) if block.size else (lo, hi)
    if mn < lo or mx > hi:
        raise InputError(
            f"{arg} has values in [{mn:.4g}, {mx:.4g}], outside [{lo}, {hi}]: NAIP reflectance must be DN/255; "
            f"clip it ({arg}.clip({lo}, {hi})) if the excursion is a resampling artefact"
        )
    return block


def check_values(image: xr.DataArray, *, arg: str = "image", lo: float = 0.0, hi: float = 1.0) -> xr.DataArray:
    """Reject NaN and values outside [lo, hi]: now for numpy data, inside the tasks for dask data."""
    if isinstance(image.data, dsa.Array):
        data = image.data.map_blocks(check_pixels, arg, lo, hi, dtype=image.dtype,  # type: ignore[arg-type]
                                     name=f"s2n-check-{arg}-" + dsa.core.tokenize(image.data, lo, hi))
        return image.copy(data=data)
    check_pixels(np.asarray(image.data), arg, lo, hi)
    return image
