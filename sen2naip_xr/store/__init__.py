"""Store: the dataset's Zarr v3 layout on icechunk, per-ROI transactional writes, failures, Table-1 metadata,
verification, export. Locations are URLs (``_location.py``)."""

from sen2naip_xr.store._export import export
from sen2naip_xr.store._layout import COMPLETE_ATTR, KINDS, DatasetStore, RoiSink, StoreWriter, roi_name
from sen2naip_xr.store._location import Location, parse_location, parse_storage_options
from sen2naip_xr.store._metadata import (
           TABLE1_FIELDS,
           clean_href,
           georeferenced,
           hist_bin_coord,
           provenance_record,
           roi_metadata,
           split_of,
)
from sen2naip_xr.store._open import existing_store, metadata_table, open_roi, open_store, summarize
from sen2naip_xr.store._pairs import cross_sensor_pairs

__all__ = ["COMPLETE_ATTR", "KINDS", "DatasetStore", "Location", "RoiSink", "StoreWriter", "TABLE1_FIELDS", "clean_href",
           "cross_sensor_pairs", "existing_store", "export", "georeferenced", "hist_bin_coord", "metadata_table", "open_roi", "open_store",
           "parse_location", "parse_storage_options", "provenance_record", "roi_metadata", "roi_name", "split_of", "summarize"]
