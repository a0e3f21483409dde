"""Catalog: STAC search (Planetary Computer by default), S2/NAIP pairing and ROI sampling.

Example (Planetary Computer)::

    import sen2naip_xr as s2n
    rois = s2n.sample_rois(100, seed=0, kind="cross-sensor")   # hard-core process over CONUS
    cands = s2n.search_pairs(rois, datetime="2019-01-01/2022-12-31")
    print(cands.summary())
    cands.pairs.to_parquet("pairs.parquet")

    # the same search with no API request, on Planetary Computer's stac-geoparquet exports
    # (one <collection>.parquet per collection, in a folder or an object store)
    cands = s2n.search_pairs(rois, datetime="2019-01-01/2022-12-31", catalog="az://items/pc",
                             config=s2n.SearchConfig(sign=False))
"""

from sen2naip_xr.catalog._config import PLANETARY_COMPUTER_STAC, PairingConfig, RoiConfig, SearchConfig
from sen2naip_xr.catalog._geoparquet import GeoParquetCatalog
from sen2naip_xr.catalog._offline import OfflineCatalog, named_catalogs, open_named_catalog, register_catalog
from sen2naip_xr.catalog._pairing import Candidates, pair_cross_sensor, pair_synthetic, search_pairs
from sen2naip_xr.catalog._plan import SearchStats
from sen2naip_xr.catalog._roi import (
    CONUS,
    ROI_COLUMNS,
    roi_geobox,
    rois_from_points,
    rois_from_polygons,
    sample_rois,
)
from sen2naip_xr.catalog._search import NAIP_COLUMNS, S2_COLUMNS, items_table, open_catalog, search_items

__all__ = [
    "CONUS",
    "Candidates",
    "GeoParquetCatalog",
    "NAIP_COLUMNS",
    "OfflineCatalog",
    "named_catalogs",
    "open_named_catalog",
    "register_catalog",
    "PLANETARY_COMPUTER_STAC",
    "PairingConfig",
    "ROI_COLUMNS",
    "RoiConfig",
    "S2_COLUMNS",
    "SearchConfig",
    "SearchStats",
    "items_table",
    "open_catalog",
    "pair_cross_sensor",
    "pair_synthetic",
    "rois_from_points",
    "rois_from_polygons",
    "roi_geobox",
    "sample_rois",
    "search_items",
    "search_pairs",
]
