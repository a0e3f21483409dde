"""Store: the dataset's Zarr v3 layout, atomic per-ROI writes, failures, Table-1 metadata, export."""

from sen2naip_xr.store._layout import COMPLETE_ATTR, KINDS, DatasetStore, roi_name
from sen2naip_xr.store._metadata import TABLE1_FIELDS, clean_href, roi_metadata, split_of

__all__ = ["COMPLETE_ATTR", "KINDS", "DatasetStore", "TABLE1_FIELDS", "clean_href", "roi_metadata", "roi_name",
           "split_of"]
