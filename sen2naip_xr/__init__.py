"""sen2naip_xr: SEN2NAIP-style Sentinel-2 super-resolution datasets as lazy xarray/Dask software.

The data's journey, one module per stage::

    catalog  -> load   -> ops          -> harmonize -> degrade / pipeline -> store -> cli / accessor
    (STAC)      (cubes)   (blur, noise,    (gamma,      (graph over ROIs)    (Zarr)
                           hist. match)     U-Net, VAE)

Quick start (offline)::

    import sen2naip_xr as s2n
    naip = s2n.example_image()                    # 4x1100x1100 NAIP-like DataArray
    ds = s2n.degrade(naip, methods=["identity", "gamma_mvn", "unet", "vae"], noise="real", seed=0)
    ds.lr.sel(method="unet").s2n.blank_mask()     # the accessor delegates to the free functions
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from sen2naip_xr.errors import (
    CatalogError,
    InputError,
    LoadError,
    MissingDependencyError,
    Sen2NaipError,
    StoreError,
    WeightsError,
)

try:
    __version__ = version("sen2naip-xr")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
    "__version__",
    "Sen2NaipError",
    "InputError",
    "WeightsError",
    "MissingDependencyError",
    "CatalogError",
    "LoadError",
    "StoreError",
]
