"""The read seam: one asset onto one ROI grid, with signing at read time and retries.

A reader is any callable ``reader(url, *, band, geobox, resampling, use_overviews, dtype, fill)``
returning ``(bands, y, x)`` pixels on ``geobox``. The default, :class:`OdcReader`, reads with rasterio's
public API the way odc-stac's rasterio reader does: it reprojects with GDAL's warper
(``rasterio.warp.reproject``) and, with ``use_overviews``, reads from the COG overview nearest to (not
coarser than) the target resolution. For the NAIP case,
an ``average`` onto a grid whose axes run along the file's (UTM NAD83 files onto UTM WGS 84 ROIs of
the same zone), it computes the same area-weighted mean itself from one windowed read, which is
2.5-4x faster than GDAL's warper (see ``BENCHMARKS.md``).

Read errors quote the signed URL (GDAL: ``'/vsicurl/...?...&sig=...' not recognized ...``): every
:class:`~sen2naip_xr.errors.AssetReadError` carries them redacted (:func:`sen2naip_xr._safe.redact`),
without the raw error chained to it.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sen2naip_xr._safe import redact
from sen2naip_xr.errors import AssetReadError, SigningError

__all__ = ["Reader", "OdcReader", "read_asset", "classify_error"]

_LOG = logging.getLogger("sen2naip_xr.load")


@runtime_checkable
class Reader(Protocol):
    """The seam through which the loaders read pixels: one band of one asset onto one ROI grid.

    The default is :class:`OdcReader` (rasterio, overview-aware, aligned windows). Pass any callable with
    this signature as ``reader=`` to :func:`~sen2naip_xr.load_naip` / ``load_s2`` / ``load_scl`` /
    ``load_pairs`` (or to the builders) to read from elsewhere, cache, count or fake reads in tests. It
    must be picklable (it travels to Dask workers) and should raise
    :class:`~sen2naip_xr.errors.AssetReadError` for a failed read (other exceptions are classified by
    :func:`classify_error`); the loaders retry it per :class:`~sen2naip_xr.RetryPolicy`.

    Parameters
    ----------
    url
        The signed href of the asset (``file://`` or a path for local files).
    band
        1-based band index in the file (0: every band, NAIP's 4-band COG).
    geobox
        The ROI's ``odc.geo.geobox.GeoBox`` (CRS, transform, shape) to read onto.
    resampling
        ``"average"``, ``"bilinear"``, ``"cubic"`` or ``"nearest"``.
    use_overviews
        Read from the COG overview nearest to (not coarser than) the grid's resolution.
    dtype
        dtype of the returned array.
    fill
        Value of pixels outside the asset.

    Returns
    -------
    numpy.ndarray
        ``(y, x)`` (one band) or ``(band, y, x)`` (``band=0``) on ``geobox``.
    """

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


#: Largest deviation (source pixels) of the ROI grid from an axis-aligned scale + offset of the
#: source grid for which the aligned path is used.
_ALIGN_TOL_PX = 0.01


#: Cell edges closer than this (source pixels) to a pixel edge are snapped to it, so that datum
#: round trips (NAD83 <-> WGS 84 moves points by ~0.1 mm) leak no sliver of a neighbouring pixel.
_SNAP_PX = 1e-3


#: Windows up to this many bytes (decoded) are read in one call, larger ones one block row at a time.
_WHOLE_WINDOW_BYTES = 8 * 2**20


def _cell_edges(start: float, step: float, n: int) -> np.ndarray:
    """The n + 1 cell edges ``start + k * step`` in source pixel units, snapped to pixel edges."""
    edges = start + step * np.arange(n + 1)
    near = np.abs(edges - np.round(edges)) < _SNAP_PX
    edges[near] = np.round(edges[near])
    return edges


def _overlap_weights(edges: np.ndarray, m: int) -> Any:
    """Sparse ``(n, m)`` float32 weights of n cells [edges[k], edges[k+1]) over source pixels 0..m-1:
    each row holds the overlap-area share of each pixel, so ``W @ pixels`` is the exact area-weighted mean."""
    from scipy import sparse

    n = len(edges) - 1
    first = np.floor(edges[:-1]).astype(np.int64)
    width = int(np.max(np.ceil(edges[1:]) - first))
    cols = first[:, None] + np.arange(width)[None, :]  # (n, width) candidate pixels
    w = np.minimum(cols + 1, edges[1:, None]) - np.maximum(cols, edges[:-1, None])
    keep = w > 0
    rows = np.broadcast_to(np.arange(n)[:, None], cols.shape)[keep]
    vals = (w / (edges[1:] - edges[:-1])[:, None])[keep].astype(np.float32)
    return sparse.csr_matrix((vals, (rows, cols[keep])), shape=(n, m))


@functools.lru_cache(maxsize=64)
def _transformer(src_crs: str, dst_crs: str) -> Any:
    from pyproj import Transformer

    return Transformer.from_crs(src_crs, dst_crs, always_xy=True)


def pick_overview(shrink: int, overviews: list[int]) -> int | None:
    """Index of the coarsest overview whose decimation factor is at most ``shrink`` (the number of source
    pixels per target pixel), or ``None`` to read the full-resolution image (no overview, or ``shrink`` finer
    than the first one)."""
    best = None
    for i, factor in enumerate(overviews):
        if factor > shrink:
            break
        best = i
    return best


def _read_shrink(src: Any, geobox: Any) -> int:
    """How many source pixels one target pixel spans (rounded down, at least 1), measured at the grid's
    centre in the file's CRS."""
    ny, nx = geobox.shape
    cols, rows = np.array([nx / 2, nx / 2 + 1, nx / 2]), np.array([ny / 2, ny / 2, ny / 2 + 1])
    gx, gy = geobox.transform * (cols, rows)
    gx, gy = _transformer(str(geobox.crs), src.crs.to_wkt()).transform(gx, gy)
    px, py = ~src.transform * (np.asarray(gx), np.asarray(gy))
    step_x = float(np.hypot(px[1] - px[0], py[1] - py[0]))
    step_y = float(np.hypot(px[2] - px[0], py[2] - py[0]))
    return max(1, int(min(step_x, step_y) + 1e-6))


def _warp_read(path: str, *, band: int, geobox: Any, resampling: str, use_overviews: bool, dtype: str,
               fill: float) -> np.ndarray:
    """GDAL's warper onto ``geobox`` from the file or its nearest overview (rasterio public API only).

    No-data: the file's declared value, else 0 (S2 DN 0 and SCL 0 are no data) except for whole-file
    ``uint8`` reads (NAIP, where 0 is a valid DN); target pixels outside the file get ``fill``.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    with rasterio.open(path, sharing=False) as src:
        bands = list(range(1, src.count + 1)) if band == 0 else [band]
        ovr = pick_overview(_read_shrink(src, geobox), src.overviews(bands[0])) if use_overviews else None
        declared = src.nodatavals[bands[0] - 1]
    nodata = declared if declared is not None else (0 if dtype != "uint8" or band != 0 else None)
    out = np.full((len(bands), *geobox.shape), fill, dtype=dtype)
    opts = {} if ovr is None else {"overview_level": ovr}
    with rasterio.Env(VSI_CACHE=False), rasterio.open(path, sharing=False, **opts) as src:
        reproject(rasterio.band(src, bands), out, src_nodata=nodata, dst_transform=geobox.transform,
                  dst_crs=geobox.crs.to_wkt(), dst_nodata=fill, resampling=Resampling[resampling])
    return out


def _aligned_average(path: str, *, band: int, geobox: Any, use_overviews: bool) -> np.ndarray | None:
    """The area-weighted mean of the source pixels under each cell of ``geobox``, from one windowed
    read, or ``None`` when this path does not apply (then GDAL's warper reads instead).

    It applies when the grid's cells map onto the file (or the overview odc-stac would pick) by an
    axis-aligned scale and offset to within ``_ALIGN_TOL_PX`` pixel, the grid lies inside the file
    and the file declares no nodata. The result is GDAL's ``average`` warp (exact overlap weights),
    computed by two sparse products per band.
    """
    import rasterio

    ny, nx = geobox.shape
    with rasterio.open(path, sharing=False) as src:
        if any(v is not None for v in src.nodatavals) or src.crs is None:
            return None
        # the grid's cell edges (5 x 5 samples) in the file's CRS
        cols, rows = np.meshgrid(np.linspace(0, nx, 5), np.linspace(0, ny, 5))
        gx, gy = geobox.transform * (cols.ravel(), rows.ravel())
        gx, gy = _transformer(str(geobox.crs), src.crs.to_wkt()).transform(gx, gy)
        bands = list(range(1, src.count + 1)) if band == 0 else [band]
        ovr = None
        if use_overviews:
            shrink = int(min(abs(geobox.resolution.x / src.transform.a), abs(geobox.resolution.y / src.transform.e)) + 1e-6)
            if shrink > 1:
                ovr = pick_overview(shrink, src.overviews(bands[0]))
        transform, height, width = src.transform, src.height, src.width
    if ovr is not None:
        with rasterio.open(path, sharing=False, overview_level=ovr) as src:
            transform, height, width = src.transform, src.height, src.width
    if transform.b != 0 or transform.d != 0:
        return None
    px, py = ~transform * (np.asarray(gx), np.asarray(gy))
    px, py = px.reshape(5, 5), py.reshape(5, 5)
    sx, sy = (px[0, -1] - px[0, 0]) / nx, (py[-1, 0] - py[0, 0]) / ny  # source pixels per cell
    fit_x = px[0, 0] + sx * cols
    fit_y = py[0, 0] + sy * rows
    if sx <= 0 or sy <= 0 or max(np.abs(px - fit_x).max(), np.abs(py - fit_y).max()) > _ALIGN_TOL_PX:
        return None
    ex, ey = _cell_edges(px[0, 0], sx, nx), _cell_edges(py[0, 0], sy, ny)
    c0, r0 = int(np.floor(ex[0])), int(np.floor(ey[0]))
    c1, r1 = int(np.ceil(ex[-1])), int(np.ceil(ey[-1]))
    if c0 < 0 or r0 < 0 or c1 > width or r1 > height:
        return None  # partly outside the file: the warper fills the rest
    from rasterio.windows import Window

    opts = {"overview_level": ovr} if ovr is not None else {}
    with rasterio.open(path, sharing=False, **opts) as src:
        # over HTTP, GDAL fetches a small window's tiles exactly, but a large one (a native NAIP
        # read) ~10 % beyond them: read large windows one block row at a time (measured: both then
        # fetch the tiles' bytes plus < 0.2 MB; see BENCHMARKS.md)
        pix = np.empty((len(bands), r1 - r0, c1 - c0), dtype=src.dtypes[0])
        bh = src.block_shapes[0][0] if pix.nbytes > _WHOLE_WINDOW_BYTES else r1 - r0
        cuts = [r0, *range((r0 // bh + 1) * bh, r1, bh), r1]
        for a, b in zip(cuts[:-1], cuts[1:], strict=False):
            pix[:, a - r0 : b - r0] = src.read(bands, window=Window(c0, a, c1 - c0, b - a))
    wy, wx = _overlap_weights(ey - r0, r1 - r0), _overlap_weights(ex - c0, c1 - c0)
    out = np.empty((len(bands), ny, nx), dtype=np.float32)
    for i, img in enumerate(pix):
        out[i] = (wx @ (wy @ img.astype(np.float32)).T).T
    return out


@dataclass(frozen=True)
class OdcReader:
    """The rasterio reader (GDAL's warper, odc-stac's semantics). ``band=0`` reads every band in one pass.

    With ``aligned_average`` (the default), an ``average`` read into a float dtype onto a grid whose
    axes run along the file's is computed from one windowed read with exact overlap weights (the
    warper's result to < 0.01 DN, 2.5-4x faster); ``False`` always uses GDAL's warper.
    """

    aligned_average: bool = True
    """Compute axis-aligned ``average`` reads from a windowed read instead of GDAL's warper."""

    def __call__(self, url, *, band, geobox, resampling, use_overviews, dtype, fill) -> np.ndarray:
        import rasterio.errors

        try:
            return self._read(url, band=band, geobox=geobox, resampling=resampling, use_overviews=use_overviews,
                              dtype=dtype, fill=fill)
        except rasterio.errors.RasterioError as exc:  # logged as odc-stac's reader does (the package redacts it)
            _LOG.error("Failed to load %s:%d due to rasterio error: '%s'", _gdal_path(url), band, exc)
            raise

    def _read(self, url, *, band, geobox, resampling, use_overviews, dtype, fill) -> np.ndarray:
        if self.aligned_average and resampling == "average" and np.dtype(dtype).kind == "f":
            pix = _aligned_average(_gdal_path(url), band=band, geobox=geobox, use_overviews=use_overviews)
            if pix is not None:
                return pix.astype(dtype, copy=False)
        return _warp_read(_gdal_path(url), band=band, geobox=geobox, resampling=resampling,
                          use_overviews=use_overviews, dtype=dtype, fill=fill)


_AUTH = re.compile(r"\b(401|403)\b|forbidden|authenticationfailed|signature", re.I)
_PERMANENT = re.compile(
    r"\b(400|404|405|410|416)\b|no such file|does not exist|not recognized as (being in )?(a )?supported|not found",
    re.I,
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
    safe_href = redact(href)  # an href signed at search time carries its token
    for attempt in range(1, retry.max_attempts + 1):
        try:
            url = rewrite(signer(href, refresh=refresh))
        except SigningError as exc:
            why = redact(exc)
            raise AssetReadError(f"signing {safe_href} failed: {why}", stage="sign", reason=why, href=safe_href) from None
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
                why = redact(exc)
                raise AssetReadError(
                    f"reading {safe_href} failed (not retried): {why}", stage="read", reason=why, href=safe_href
                ) from None
            refresh = kind == "auth"
            if attempt < retry.max_attempts:
                sleep(retry.delay(attempt))
    why = redact(last)
    raise AssetReadError(
        f"reading {safe_href} failed after {retry.max_attempts} attempts: {why}",
        stage="read",
        reason=f"{retry.max_attempts} attempts: {why}",
        href=safe_href,
    ) from None
