"""Names and numbers shared by every stage (bands, resolutions, ROI sizes)."""

from __future__ import annotations

#: Band labels of every image in the package, in this order (NAIP R,G,B,NIR; S2 B04,B03,B02,B08).
BANDS: tuple[str, ...] = ("red", "green", "blue", "nir")
#: Sentinel-2 L2A asset keys, in BANDS order.
S2_ASSETS: tuple[str, ...] = ("B04", "B03", "B02", "B08")
#: High-resolution (NAIP) grid spacing in metres.
HR_RES: float = 2.5
#: Low-resolution (Sentinel-2) grid spacing in metres.
LR_RES: float = 10.0
#: HR / LR scale factor.
FACTOR: int = 4
#: ROI side in HR pixels for the cross-sensor and the synthetic parts of the dataset.
CROSS_SENSOR_SIZE: int = 484
SYNTHETIC_SIZE: int = 1100
#: Attribute that records what produced an array.
PROVENANCE_ATTR: str = "sen2naip_xr_provenance"

#: Columns of a failure record, wherever failures are tabled (search ``Candidates.failures``, the store's
#: ``DatasetStore.failures()``, which adds the part ``kind`` and the ROI's group name ``roi`` in front).
FAILURE_COLUMNS: tuple[str, ...] = ("roi_id", "stage", "reason")
