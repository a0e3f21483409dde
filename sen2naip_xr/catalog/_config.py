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
Strategy = Literal["grouped", "per-roi"]
STRATEGIES: tuple[str, ...] = ("grouped", "per-roi")


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InputError(f"kind={kind!r} is not a dataset kind; use one of {KINDS}")
    return kind


def roi_size(kind: str) -> int:
    """ROI side in HR pixels for a dataset kind (484 cross-sensor, 1100 synthetic)."""
    return CROSS_SENSOR_SIZE if check_kind(kind) == "cross-sensor" else SYNTHETIC_SIZE


@dataclass(frozen=True)
class SearchConfig(ConfigBase):
    """Where and how to query a STAC API (or a stac-geoparquet catalog)."""

    catalog_url: str = PLANETARY_COMPUTER_STAC
    """Root of the STAC API (any STAC API with item search; Planetary Computer by default), or a
    stac-geoparquet catalog: a folder or object-store URL (``file://``, ``az://``, ``s3://``,
    ``gs://``, ``memory://``) holding one ``<collection>.parquet`` (file or folder) per collection."""

    s2_collection: str = "sentinel-2-l2a"
    """Collection id of the Sentinel-2 L2A items."""

    naip_collection: str = "naip"
    """Collection id of the NAIP items."""

    max_cloud_cover: float | None = 100.0
    """Keep S2 items with ``eo:cloud_cover`` <= this (percent); ``None`` sends no cloud filter."""

    page_size: int = 100
    """Items per page requested from the API (``limit``); pystac-client follows ``next`` links."""

    max_items: int | None = None
    """Stop after this many items per query (``None``: all pages). A ``grouped`` query serves many ROIs,
    so a cap changes the candidates: the two strategies agree only without one."""

    sign: bool = True
    """Sign asset hrefs with ``planetary_computer.sign_inplace`` as the client modifier. Loading
    re-signs at read time anyway, so this only matters for hrefs used outside this package."""

    require_full_cover: bool = True
    """Keep an item for an ROI only when its footprint covers the whole ROI square."""

    strategy: Strategy = "grouped"
    """``grouped``: ROIs are searched per spatial group (one paged NAIP query per group, and for
    cross-sensor one paged Sentinel-2 query per group covering all its NAIP dates), items are assigned
    to ROIs locally. ``per-roi``: one NAIP query per ROI, then one Sentinel-2 query per NAIP date of
    that ROI (the behaviour before groups; kept for comparisons). Both give the same candidates."""

    concurrency: int = 8
    """Queries in flight at once (threads). 1 runs them one after the other; the candidates are the
    same whatever this value and whatever order the answers arrive in."""

    group_deg: float = 0.5
    """``grouped``: ROIs whose centres fall in the same cell of this many degrees (lon/lat grid) form
    a group (fewer, larger groups: fewer requests, more items per request)."""

    max_group_rois: int = 200
    """``grouped``: at most this many ROIs per group (a fuller cell is split), which bounds the size of
    the query geometry sent to the API."""

    max_retries: int = 5
    """Retries of a request answered 429 or 5xx (or failing to connect) before its ROIs are recorded
    as failed. Only for clients opened here (:func:`open_catalog`)."""

    backoff_s: float = 0.5
    """First retry delay (seconds); it doubles at each retry (with jitter) up to ``max_backoff_s``.
    A ``Retry-After`` header of the answer is honoured instead, up to ``max_backoff_s``."""

    max_backoff_s: float = 60.0
    """Longest wait before a retry (seconds), ``Retry-After`` included."""

    timeout_s: float = 120.0
    """Timeout of one HTTP request (seconds)."""

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise InputError(f"strategy={self.strategy!r} is not a search strategy; use one of {STRATEGIES}")
        if not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise InputError(f"concurrency={self.concurrency!r} must be an integer >= 1; use e.g. 8")
        if not self.group_deg > 0:
            raise InputError(f"group_deg={self.group_deg!r} must be > 0 degrees; use e.g. 0.5")
        if not isinstance(self.max_group_rois, int) or self.max_group_rois < 1:
            raise InputError(f"max_group_rois={self.max_group_rois!r} must be an integer >= 1; use e.g. 200")
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise InputError(f"max_retries={self.max_retries!r} must be an integer >= 0; use e.g. 5")
        for name in ("backoff_s", "max_backoff_s", "timeout_s"):
            v = getattr(self, name)
            if not v >= 0 or (name == "timeout_s" and v == 0):
                raise InputError(f"{name}={v!r} must be a positive number of seconds")
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

