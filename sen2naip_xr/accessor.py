"""The ``.s2n`` accessor: each method is a one-line delegation to the free function of the same name."""

from __future__ import annotations

from typing import Any

import xarray as xr

import sen2naip_xr.degrade as _degrade
import sen2naip_xr.harmonize as _harmonize
import sen2naip_xr.ops as _ops


@xr.register_dataarray_accessor("s2n")
class S2NAccessor:
    """``image.s2n.<operator>(...)`` == ``sen2naip_xr.<operator>(image, ...)``. Does no IO and no compute."""

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    def histogram_match(self, reference: xr.DataArray) -> xr.DataArray:
        return _ops.histogram_match(self._obj, reference)

    def blank_mask(self, window: int = 19) -> xr.DataArray:
        return _ops.blank_mask(self._obj, window)

    def is_blank(self, window: int = 19, **kwargs: Any) -> xr.DataArray:
        return _ops.is_blank(self._obj, window, **kwargs)

    def blur_downsample(self, *args: Any, **kwargs: Any) -> xr.DataArray:
        return _ops.blur_downsample(self._obj, *args, **kwargs)

    def add_noise(self, *args: Any, **kwargs: Any) -> xr.DataArray:
        return _ops.add_noise(self._obj, *args, **kwargs)

    def harmonize(self, *args: Any, **kwargs: Any) -> xr.DataArray:
        return _harmonize.harmonize(self._obj, *args, **kwargs)

    def degrade(self, *args: Any, **kwargs: Any) -> xr.DataTree:
        return _degrade.degrade(self._obj, *args, **kwargs)
