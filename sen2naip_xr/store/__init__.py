"""Store: the dataset's Zarr v3 layout, atomic per-ROI writes, failures, Table-1 metadata, export."""

from sen2naip_xr.store._export import export
from sen2naip_xr.store._layout import COMPLETE_ATTR, KINDS, DatasetStore, roi_name
from sen2naip_xr.store._metadata import TABLE1_FIELDS, clean_href, roi_metadata, split_of
from sen2naip_xr.store._open import metadata_table, open_roi, open_store, summarize
from sen2naip_xr.store._pairs import cross_sensor_pairs

__all__ = ["COMPLETE_ATTR", "KINDS", "DatasetStore", "TABLE1_FIELDS", "clean_href", "cross_sensor_pairs", "export",
           "metadata_table",
           "open_roi", "open_store", "roi_metadata", "roi_name", "split_of", "summarize"]
