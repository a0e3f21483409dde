"""The read seam: one asset onto one ROI grid, with signing at read time and retries.

A reader is any callable ``reader(url, *, band, geobox, resampling, use_overviews, dtype, fill)``
returning ``(bands, y, x)`` pixels on ``geobox``. The default, :class:`OdcReader`, is odc-stac's
rasterio reader (``odc.loader.RioReader``): it reprojects with GDAL and, with ``use_overviews``,
reads from the COG overview nearest to (not coarser than) the target resolution.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sen2naip_xr.errors import AssetReadError, SigningError

__all__ = ["Reader", "OdcReader", "read_asset", "classify_error"]


@runtime_checkable
class Reader(Protocol):
    def __call__(
        self,
        url: str,
        *,
        band: int,
        geobox: Any,
        resampling: str,
        use_overviews: bool,
        dtype: str,
        fill: float,
    ) -> np.ndarray: ...


def _gdal_path(url: str) -> str:
    return url[len("file://"):] if url.startswith("file://") else url


@dataclass(frozen=True)
class OdcReader:
    """odc-stac's rasterio reader. ``band=0`` reads every band of the file in one pass."""

    def __call__(self, url, *, band, geobox, resampling, use_overviews, dtype, fill) -> np.ndarray:
        from odc.loader import RasterBandMetadata, RasterLoadParams, RasterSource, RioReader
        from odc.loader._rio import LocalContext

        dims = ("band", "y", "x") if band == 0 else ()
        src = RasterSource(_gdal_path(url), band=band, meta=RasterBandMetadata(dtype, None, dims=dims))
        cfg = RasterLoadParams(
            dtype=dtype,
            fill_value=fill,
            src_nodata_fallback=0 if dtype != "uint8" or band != 0 else None,
            use_overviews=use_overviews,
            resampling=resampling,
            fail_on_error=True,
        )
        roi, pix = RioReader(src, LocalContext()).read(cfg, geobox)
        if pix.ndim == 2:
            pix = pix[None]
        out = np.full((pix.shape[0], *geobox.shape), fill, dtype=dtype)
        out[(slice(None), *roi)] = pix
        return out


_AUTH = re.compile(r"\b(401|403)\b|forbidden|authenticationfailed|signature", re.I)
_PERMANENT = re.compile(
    r"\b(400|404|405|410|416)\b|no such file|does not exist|not recognized as (a )?supported|not found", re.I
)


def classify_error(exc: BaseException) -> str:
    """``"auth"`` (re-sign and retry), ``"permanent"`` (give up now) or ``"transient"`` (retry)."""
    msg = str(exc)
    if _AUTH.search(msg):
        return "auth"
    if _PERMANENT.search(msg):
        return "permanent"
    return "transient"


def read_asset(
    href: str,
    *,
    signer: Callable[..., str],
    reader: Callable[..., np.ndarray],
    retry: Any,
    rewrite: Callable[[str], str] = lambda h: h,
    sleep: Callable[[float], None] = time.sleep,
    **read_kw: Any,
) -> np.ndarray:
    """Sign ``href`` now, read it, retry transient failures with exponential backoff.

    HTTP 401/403 re-signs with a fresh token before the next attempt; 404-like errors fail at once.
    Raises :class:`~sen2naip_xr.errors.AssetReadError` with ``stage`` (``sign`` or ``read``).
    """
    refresh = False
    last: BaseException | None = None
    for attempt in range(1, retry.max_attempts + 1):
        try:
            url = rewrite(signer(href, refresh=refresh))
        except SigningError as exc:
            raise AssetReadError(f"signing {href} failed: {exc}", stage="sign", reason=str(exc), href=href) from exc
        try:
            if attempt == 1:
                return reader(url, **read_kw)
            # GDAL remembers failed HTTP responses per URL: read this one past its cache
            import rasterio

            with rasterio.Env(CPL_VSIL_CURL_NON_CACHED=f"/vsicurl/{url}"):
                return reader(url, **read_kw)
        except Exception as exc:  # rasterio, GDAL/curl, decoding: classified below
            last = exc
            kind = classify_error(exc)
            if kind == "permanent":
                raise AssetReadError(
                    f"reading {href} failed (not retried): {exc}", stage="read", reason=str(exc), href=href
                ) from exc
            refresh = kind == "auth"
            if attempt < retry.max_attempts:
                sleep(retry.delay(attempt))
    raise AssetReadError(
        f"reading {href} failed after {retry.max_attempts} attempts: {last}",
        stage="read",
        reason=f"{retry.max_attempts} attempts: {last}",
        href=href,
    ) from last
