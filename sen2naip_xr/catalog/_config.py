"""Frozen settings of the catalog stage (search, pairing, ROI sampling)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sen2naip_xr._const import CROSS_SENSOR_SIZE, HR_RES, SYNTHETIC_SIZE
from sen2naip_xr.config import ConfigBase
from sen2naip_xr.errors import InputError

#: Planetary Computer's STAC API, the default catalog.
PLANETARY_COMPUTER_STAC = "https://planetarycomputer.microsoft.com/api/stac/v1"

Kind = Literal["cross-sensor", "synthetic"]
KINDS: tuple[str, ...] = ("cross-sensor", "synthetic")


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InputError(f"kind={kind!r} is not a dataset kind; use one of {KINDS}")
    return kind


def roi_size(kind: str) -> int:
    """ROI side in HR pixels for a dataset kind (484 cross-sensor, 1100 synthetic)."""
    return CROSS_SENSOR_SIZE if check_kind(kind) == "cross-sensor" else SYNTHETIC_SIZE


@dataclass(frozen=True)
class SearchConfig(ConfigBase):
    """Where and how to query a STAC API."""

    catalog_url: str = PLANETARY_COMPUTER_STAC
    """Root of the STAC API (any STAC API with item search; Planetary Computer by default)."""

    s2_collection: str = "sentinel-2-l2a"
    """Collection id of the Sentinel-2 L2A items."""

    naip_collection: str = "naip"
    """Collection id of the NAIP items."""

    max_cloud_cover: float | None = 100.0
    """Keep S2 items with ``eo:cloud_cover`` <= this (percent); ``None`` sends no cloud filter."""

    page_size: int = 100
    """Items per page requested from the API (``limit``); pystac-client follows ``next`` links."""

    max_items: int | None = None
    """Stop after this many items per query (``None``: all pages)."""

    sign: bool = True
    """Sign asset hrefs with ``planetary_computer.sign_inplace`` as the client modifier. Loading
    re-signs at read time anyway, so this only matters for hrefs used outside this package."""

    require_full_cover: bool = True
    """Keep an item for an ROI only when its footprint covers the whole ROI square."""

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise InputError(f"page_size={self.page_size!r} must be >= 1; use e.g. 100")
        if self.max_items is not None and self.max_items < 1:
            raise InputError(f"max_items={self.max_items!r} must be >= 1 or None (all pages)")
        if self.max_cloud_cover is not None and not 0 <= self.max_cloud_cover <= 100:
            raise InputError(
                f"max_cloud_cover={self.max_cloud_cover!r} is a percentage; use a value in [0, 100] or None"
            )



@dataclass(frozen=True)
class PairingConfig(ConfigBase):
    """Rules that turn search results into dataset candidates."""

    max_days: float = 1.0
    """Cross-sensor: keep S2/NAIP pairs with ``|S2 date - NAIP date| <= max_days`` (days)."""

    min_naip_year: int = 2011
    """Synthetic: the early/late NAIP captures are chosen among captures from this year on."""

    def __post_init__(self) -> None:
        if self.max_days < 0:
            raise InputError(f"max_days={self.max_days!r} must be >= 0 days; the paper uses 1")



@dataclass(frozen=True)
class RoiConfig(ConfigBase):
    """How ROIs are drawn and shaped."""

    kind: Kind = "cross-sensor"
    """Dataset kind: ``cross-sensor`` ROIs are 484 px, ``synthetic`` ROIs 1100 px (at 2.5 m)."""

    min_distance_m: float = 5000.0
    """Hard-core distance: ROI centres are at least this far apart (metres, equal-area plane)."""

    res: float = HR_RES
    """HR pixel size of the ROI grid (metres)."""

    snap_m: float = 10.0
    """ROI corners are snapped to multiples of this (metres), so the 2.5 m grid nests in S2's 10 m grid."""

    def __post_init__(self) -> None:
        check_kind(self.kind)
        if self.min_distance_m < 0:
            raise InputError(f"min_distance_m={self.min_distance_m!r} must be >= 0 metres")
        if self.res <= 0:
            raise InputError(f"res={self.res!r} must be a positive pixel size in metres, e.g. 2.5")

    @property
    def size(self) -> int:
        """ROI side in pixels."""
        return roi_size(self.kind)

