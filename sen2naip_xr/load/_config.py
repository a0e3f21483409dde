"""Frozen settings of the load stage: reading, retries, GDAL environment, cloud screening."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from sen2naip_xr.config import ConfigBase
from sen2naip_xr.errors import InputError

#: GDAL settings every read runs under (on every Dask worker: they travel inside the tasks).
#: GDAL's own HTTP retry is off so that :class:`RetryPolicy` alone decides (and counts) retries.
DEFAULT_GDAL_ENV: dict[str, str] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MAX_RETRY": "0",
    "GDAL_HTTP_TIMEOUT": "30",
    "GDAL_HTTP_CONNECTTIMEOUT": "10",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF",
    "GDAL_HTTP_MULTIRANGE": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "VSI_CACHE": "FALSE",
}

#: Scene Classification (SCL) classes that screening counts as unusable:
#: 0 no data, 1 saturated/defective, 3 cloud shadow, 8 cloud medium prob., 9 cloud high prob., 10 thin cirrus.
SCL_BAD_CLASSES: tuple[int, ...] = (0, 1, 3, 8, 9, 10)


@dataclass(frozen=True)
class RetryPolicy(ConfigBase):
    """How a failing asset read is retried before its ROI is marked failed."""

    max_attempts: int = 4
    """Attempts per asset (the first read included)."""

    backoff_s: float = 0.5
    """Sleep before the second attempt; doubles after each failure."""

    max_backoff_s: float = 8.0
    """Upper bound of one sleep."""

    sign_retries: int = 3
    """Retries of the token service call inside one signing (Planetary Computer SDK default: 10,
    which offline means ~7 minutes of waiting)."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise InputError(f"max_attempts={self.max_attempts!r} must be >= 1 (1 = no retry)")
        if self.backoff_s < 0 or self.max_backoff_s < 0:
            raise InputError(f"backoff_s={self.backoff_s!r} / max_backoff_s={self.max_backoff_s!r} must be >= 0")

    def delay(self, attempt: int) -> float:
        """Seconds to sleep after failed attempt number ``attempt`` (1-based)."""
        return min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)



@dataclass(frozen=True)
class LoadConfig(ConfigBase):
    """How ROI cubes are read."""

    use_overviews: bool = True
    """Read NAIP from the COG overview nearest to (not coarser than) 2.5 m (2.4 m for 0.6 m NAIP,
    2 m for 1 m) instead of the native level: for 0.6 m NAIP 13x fewer bytes per 1100 px ROI and
    7x fewer per 484 px ROI (measured, BENCHMARKS.md). The pixels are then the area-weighted mean
    of the overview's (itself averaged from the native level), not of the native pixels."""

    naip_resampling: Literal["average", "bilinear", "cubic", "nearest"] = "average"
    """Resampling of NAIP onto the 2.5 m grid (averaging, as the paper's aggregation)."""

    s2_resampling: Literal["nearest", "bilinear", "cubic", "average"] = "nearest"
    """Resampling of Sentinel-2 onto the 10 m grid (ROIs are snapped to S2's grid: a plain copy)."""

    naip_asset: str = "image"
    """Asset key of the 4-band NAIP COG."""

    scl_asset: str = "SCL"
    """Asset key of the Scene Classification layer."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    """Retries of transient read failures."""

    gdal_env: MappingProxyType = field(default_factory=lambda: MappingProxyType(dict(DEFAULT_GDAL_ENV)))
    """GDAL configuration options every read runs under (they travel with the tasks, so every Dask
    worker gets them). Pass a dict; it is frozen on construction."""

    href_rewrite: tuple[tuple[str, str], ...] = ()
    """``(prefix, replacement)`` pairs applied to hrefs after signing (mirrors, caches, tests)."""

    def __post_init__(self) -> None:
        if not isinstance(self.gdal_env, MappingProxyType):
            if not isinstance(self.gdal_env, dict):
                raise InputError(f"gdal_env={self.gdal_env!r} must be a dict of GDAL option -> value")
            object.__setattr__(self, "gdal_env", MappingProxyType({str(k): str(v) for k, v in self.gdal_env.items()}))
        for pair in self.href_rewrite:
            if len(pair) != 2 or not all(isinstance(p, str) for p in pair):
                raise InputError(f"href_rewrite entry {pair!r} must be a (prefix, replacement) pair of strings")
        object.__setattr__(self, "href_rewrite", tuple(tuple(p) for p in self.href_rewrite))

    def rewrite(self, href: str) -> str:
        for old, new in self.href_rewrite:
            if href.startswith(old):
                return new + href[len(old):]
        return href


    def __reduce__(self):  # MappingProxyType does not pickle: rebuild from a dict
        return (_rebuild_load_config, (self.use_overviews, self.naip_resampling, self.s2_resampling,
                                       self.naip_asset, self.scl_asset, self.retry, dict(self.gdal_env),
                                       self.href_rewrite))


def _rebuild_load_config(*args) -> LoadConfig:
    return LoadConfig(*args)


@dataclass(frozen=True)
class CloudConfig(ConfigBase):
    """Cloud screening of S2 ROIs from the Scene Classification layer (and an optional model)."""

    bad_classes: tuple[int, ...] = SCL_BAD_CLASSES
    """SCL classes counted as unusable (see :data:`SCL_BAD_CLASSES`)."""

    max_fraction: float = 0.0
    """An ROI passes when its unusable fraction is <= this (0: not a single flagged pixel)."""

    def __post_init__(self) -> None:
        if not 0 <= self.max_fraction <= 1:
            raise InputError(f"max_fraction={self.max_fraction!r} is a fraction; use a value in [0, 1]")
        bad = [c for c in self.bad_classes if not 0 <= int(c) <= 11]
        if bad:
            raise InputError(f"bad_classes={self.bad_classes!r} holds {bad}, not SCL classes 0-11")

