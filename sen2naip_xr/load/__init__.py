"""Load: lazy odc-stac cubes of NAIP and Sentinel-2 on ROI grids, cloud screening, robust reads.

Every ROI is one Dask chunk; its task signs hrefs when it runs, reads under the configured GDAL
options, retries transient HTTP failures and records (rather than raises) an ROI that keeps failing.

Seams: :class:`Signer` (how an href is signed) and :class:`Reader` (how a band is read onto an ROI grid)
are documented protocols; every loader and builder takes ``signer=`` and ``reader=``, so tests and other
deployments swap them without patching internals. :class:`RoiSpec` is the unit of work of a read task.
"""

from sen2naip_xr.load._bands import NAIP_RASTER_BANDS, s2_offset, with_naip_bands
from sen2naip_xr.load._cloud import CloudModel, cloud_fraction, cloud_mask, screen_clouds
from sen2naip_xr.load._config import DEFAULT_GDAL_ENV, SCL_BAD_CLASSES, CloudConfig, LoadConfig, RetryPolicy
from sen2naip_xr.load._cube import (
    PairCubes,
    RoiSpec,
    fetch_items,
    load_failures,
    load_naip,
    load_pairs,
    load_s2,
    load_scl,
    select_roi,
)
from sen2naip_xr.load._reader import OdcReader, Reader, classify_error, read_asset
from sen2naip_xr.load._signing import NoSigner, PlanetaryComputerSigner, Signer, strip_sas

__all__ = [
    "CloudConfig",
    "CloudModel",
    "DEFAULT_GDAL_ENV",
    "LoadConfig",
    "NAIP_RASTER_BANDS",
    "NoSigner",
    "OdcReader",
    "PairCubes",
    "PlanetaryComputerSigner",
    "Reader",
    "RoiSpec",
    "RetryPolicy",
    "SCL_BAD_CLASSES",
    "Signer",
    "classify_error",
    "cloud_fraction",
    "cloud_mask",
    "fetch_items",
    "load_failures",
    "load_naip",
    "load_pairs",
    "load_s2",
    "load_scl",
    "read_asset",
    "s2_offset",
    "screen_clouds",
    "select_roi",
    "strip_sas",
    "with_naip_bands",
]
