"""ROIs: a hard-core point process over the contiguous US, or the user's own points/polygons.

An ROI is a square in the local UTM zone (WGS 84, EPSG:326xx / 327xx) whose corners are snapped to
10 m, so its 2.5 m grid nests exactly in Sentinel-2's 10 m grid. Its id is derived from that grid
(``cs-32611-500000-3650000``), so the same square always gets the same id, whatever the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import shapely
import shapely.geometry
from pyproj import Transformer
from shapely.geometry import Polygon, box
from shapely.geometry.base import BaseGeometry

from sen2naip_xr.catalog._config import RoiConfig
from sen2naip_xr.errors import CatalogError, InputError

__all__ = ["CONUS", "ROI_COLUMNS", "sample_rois", "rois_from_points", "rois_from_polygons", "roi_geobox"]

#: A coarse outline of the contiguous US (lon, lat; ~80 vertices, a few km accurate). Pass your own
#: ``region=`` to :func:`sample_rois` for an exact boundary.
CONUS: Polygon = Polygon(
    [
        (-124.7, 48.4), (-123.0, 49.0), (-95.15, 49.0), (-89.6, 48.0), (-84.8, 46.5), (-83.5, 46.1),
        (-82.5, 43.0), (-83.1, 42.0), (-79.0, 42.5), (-79.0, 43.3), (-76.5, 44.2), (-74.7, 45.0),
        (-71.5, 45.0), (-70.7, 45.4), (-69.2, 47.4), (-67.8, 47.1), (-67.8, 45.7), (-67.0, 44.8),
        (-70.0, 43.7), (-70.6, 42.7), (-70.0, 41.7), (-71.9, 41.3), (-73.9, 40.6), (-74.9, 38.9),
        (-75.9, 37.2), (-76.0, 36.9), (-75.5, 35.2), (-77.9, 33.9), (-79.2, 33.2), (-80.9, 32.0),
        (-81.4, 30.7), (-80.6, 28.5), (-80.0, 26.7), (-80.4, 25.2), (-81.1, 25.1), (-81.8, 26.1),
        (-82.7, 27.9), (-82.8, 29.2), (-84.0, 30.0), (-85.4, 29.7), (-86.5, 30.4), (-88.0, 30.3),
        (-89.6, 30.2), (-89.4, 29.0), (-90.5, 29.1), (-91.9, 29.6), (-93.8, 29.7), (-94.8, 29.3),
        (-96.7, 28.3), (-97.2, 27.6), (-97.4, 26.0), (-99.1, 26.4), (-99.5, 27.5), (-100.3, 28.2),
        (-101.4, 29.8), (-102.4, 29.8), (-103.2, 29.0), (-104.5, 29.6), (-106.5, 31.8), (-108.2, 31.8),
        (-108.2, 31.33), (-111.1, 31.33), (-114.8, 32.5), (-114.7, 32.7), (-117.1, 32.5), (-117.3, 33.1),
        (-118.5, 34.0), (-120.6, 34.6), (-121.9, 36.6), (-122.5, 37.8), (-123.7, 39.0), (-124.4, 40.4),
        (-124.2, 42.0), (-124.5, 43.0), (-123.9, 46.2), (-124.7, 48.4),
    ]
)

#: Columns of every ROI table, in order.
ROI_COLUMNS: tuple[str, ...] = (
    "roi_id", "kind", "lon", "lat", "epsg", "x_min", "y_max", "size", "res",
    "west", "south", "east", "north", "geometry",
)

_EQUAL_AREA = "EPSG:5070"  # CONUS Albers: distances for the hard-core process
_BATCH = 1024  # candidates drawn per round; fixed, so sample_rois(k) is a prefix of sample_rois(n > k)


def _as_region(region: Any) -> BaseGeometry:
    if region is None:
        return CONUS
    if isinstance(region, BaseGeometry):
        geom = region
    elif isinstance(region, dict):
        geom = shapely.geometry.shape(region)
    elif isinstance(region, Sequence) and len(region) == 4:
        from sen2naip_xr.catalog._bbox import check_bbox

        geom = box(*check_bbox(region, arg="region"))
    else:
        raise InputError(
            f"region={region!r} is not a region; pass None (contiguous US), a (west, south, east, north) "
            "bbox in degrees, a shapely geometry or a GeoJSON geometry dict"
        )
    if geom.is_empty or geom.area == 0:
        raise InputError(f"region={region!r} has no area; pass a polygon or a bbox")
    return geom


def sample_rois(
    n: int,
    *,
    seed: int = 0,
    region: Any = None,
    config: RoiConfig | None = None,
    kind: str | None = None,
    max_draws: int = 1_000_000,
) -> pd.DataFrame:
    """Draw ``n`` ROIs by a hard-core point process (simple sequential inhibition).

    Candidate centres are uniform in the region on an equal-area plane (CONUS Albers); a candidate
    closer than ``config.min_distance_m`` to an accepted centre is rejected. The result depends only
    on ``seed`` (and the region and config), and the first ``k`` ROIs of ``n`` are those of ``k``.

    Parameters
    ----------
    n
        Number of ROIs.
    seed
        Seed of the random generator.
    region
        ``None`` for the contiguous US (:data:`CONUS`), a ``(west, south, east, north)`` bbox in
        degrees, a shapely geometry or a GeoJSON geometry dict (lon/lat).
    config, kind
        ROI shape and spacing; ``kind`` overrides ``config.kind`` when given.
    max_draws
        Give up (with :class:`~sen2naip_xr.errors.CatalogError`) after this many candidates.

    Returns
    -------
    pandas.DataFrame
        One row per ROI, columns :data:`ROI_COLUMNS`.
    """
    cfg = config or RoiConfig()
    if kind is not None:
        cfg = replace(cfg, kind=kind)  # type: ignore[arg-type]  # checked by RoiConfig
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise InputError(f"n={n!r} must be a non-negative integer number of ROIs")
    geom = _as_region(region)
    to_ea = Transformer.from_crs("EPSG:4326", _EQUAL_AREA, always_xy=True)
    to_ll = Transformer.from_crs(_EQUAL_AREA, "EPSG:4326", always_xy=True)
    geom_ea = shapely.transform(geom, lambda c: np.column_stack(to_ea.transform(c[:, 0], c[:, 1])))
    shapely.prepare(geom_ea)
    minx, miny, maxx, maxy = geom_ea.bounds

    rng = np.random.default_rng(seed)
    r = float(cfg.min_distance_m)
    cell = max(r, 1.0)
    grid: dict[tuple[int, int], list[int]] = {}
    xs: list[float] = []
    ys: list[float] = []
    draws = 0
    while len(xs) < n:
        if draws >= max_draws:
            raise CatalogError(
                f"sample_rois placed only {len(xs)} of n={n} ROIs {r:.0f} m apart in the region after "
                f"{draws} draws; lower n or config.min_distance_m, or pass a larger region"
            )
        cand = rng.random((_BATCH, 2))
        cx = minx + cand[:, 0] * (maxx - minx)
        cy = miny + cand[:, 1] * (maxy - miny)
        draws += _BATCH
        inside = shapely.contains_xy(geom_ea, cx, cy)
        for x, y in zip(cx[inside], cy[inside], strict=True):
            gx, gy = int(x // cell), int(y // cell)
            ok = True
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    for j in grid.get((gx + dx, gy + dy), ()):
                        if (xs[j] - x) ** 2 + (ys[j] - y) ** 2 < r * r:
                            ok = False
                            break
                    if not ok:
                        break
                if not ok:
                    break
            if ok:
                grid.setdefault((gx, gy), []).append(len(xs))
                xs.append(float(x))
                ys.append(float(y))
                if len(xs) == n:
                    break
    lon, lat = to_ll.transform(np.asarray(xs), np.asarray(ys))
    return rois_from_points(np.atleast_1d(lon), np.atleast_1d(lat), config=cfg)


def rois_from_points(
    lon: Iterable[float],
    lat: Iterable[float],
    *,
    config: RoiConfig | None = None,
    kind: str | None = None,
) -> pd.DataFrame:
    """One ROI centred (to the 10 m snap) on each lon/lat point, in the point's UTM zone.

    Parameters
    ----------
    lon, lat
        Centres in degrees.
    config, kind
        ROI shape (``kind`` overrides ``config.kind``).

    Returns
    -------
    pandas.DataFrame
        One row per point, columns :data:`ROI_COLUMNS`.
    """
    cfg = config or RoiConfig()
    if kind is not None:
        cfg = replace(cfg, kind=kind)  # type: ignore[arg-type]  # checked by RoiConfig
    lon_a = np.asarray(list(lon), dtype="float64").ravel()
    lat_a = np.asarray(list(lat), dtype="float64").ravel()
    if lon_a.shape != lat_a.shape:
        raise InputError(f"lon has {lon_a.size} values but lat has {lat_a.size}; pass one lat per lon")
    bad = ~((-180 <= lon_a) & (lon_a <= 180) & (-80 <= lat_a) & (lat_a <= 84))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"point {i} (lon={lon_a[i]!r}, lat={lat_a[i]!r}) is outside UTM coverage; pass degrees, "
            "lon in [-180, 180] and lat in [-80, 84]"
        )
    size, res, snap = cfg.size, float(cfg.res), float(cfg.snap_m)
    side = size * res
    zone = np.floor((lon_a + 180.0) / 6.0).astype(int) % 60 + 1
    epsg = np.where(lat_a >= 0, 32600, 32700) + zone
    x_min = np.empty_like(lon_a)
    y_max = np.empty_like(lon_a)
    corners: list[np.ndarray] = [np.empty((lon_a.size, 2)) for _ in range(4)]
    for code in np.unique(epsg):
        sel = epsg == code
        fwd = Transformer.from_crs("EPSG:4326", f"EPSG:{code}", always_xy=True)
        inv = Transformer.from_crs(f"EPSG:{code}", "EPSG:4326", always_xy=True)
        x, y = fwd.transform(lon_a[sel], lat_a[sel])
        x0 = np.round((np.asarray(x) - side / 2) / snap) * snap
        y1 = np.round((np.asarray(y) + side / 2) / snap) * snap
        x_min[sel], y_max[sel] = x0, y1
        for k, (cx, cy) in enumerate(((x0, y1), (x0 + side, y1), (x0 + side, y1 - side), (x0, y1 - side))):
            clon, clat = inv.transform(cx, cy)
            corners[k][sel, 0], corners[k][sel, 1] = clon, clat
    prefix = "cs" if cfg.kind == "cross-sensor" else "sy"
    ids = [f"{prefix}-{e}-{x:.0f}-{y:.0f}" for e, x, y in zip(epsg, x_min, y_max, strict=True)]
    dup = pd.Index(ids)[pd.Index(ids).duplicated()]
    if len(dup):
        raise InputError(
            f"points give the same ROI square more than once ({sorted(set(dup))[:3]}...); pass points at "
            f"least {side:.0f} m apart or drop the duplicates"
        )
    cs = np.stack(corners, axis=1)  # (n, 4, 2)
    polys = [Polygon(c) for c in cs]
    return pd.DataFrame(
        {
            "roi_id": ids,
            "kind": cfg.kind,
            "lon": lon_a,
            "lat": lat_a,
            "epsg": epsg.astype("int64"),
            "x_min": x_min,
            "y_max": y_max,
            "size": np.full(lon_a.size, size, dtype="int64"),
            "res": np.full(lon_a.size, res),
            "west": cs[:, :, 0].min(axis=1),
            "south": cs[:, :, 1].min(axis=1),
            "east": cs[:, :, 0].max(axis=1),
            "north": cs[:, :, 1].max(axis=1),
            "geometry": [p.wkt for p in polys],
        },
        columns=list(ROI_COLUMNS),
    )


def rois_from_polygons(
    polygons: Iterable[Any], *, config: RoiConfig | None = None, kind: str | None = None
) -> pd.DataFrame:
    """One ROI per polygon (shapely or GeoJSON dict, lon/lat), centred on a point inside it.

    Parameters
    ----------
    polygons
        Shapely geometries or GeoJSON dicts in lon/lat.
    config, kind
        ROI shape (``kind`` overrides ``config.kind``).

    Returns
    -------
    pandas.DataFrame
        One row per polygon, columns :data:`ROI_COLUMNS`.
    """
    pts = []
    for i, p in enumerate(polygons):
        g = p if isinstance(p, BaseGeometry) else shapely.geometry.shape(p) if isinstance(p, dict) else None
        if g is None or g.is_empty:
            raise InputError(f"polygons[{i}]={p!r} is not a geometry; pass shapely polygons or GeoJSON dicts")
        pt = g.representative_point()
        pts.append((pt.x, pt.y))
    if not pts:
        return rois_from_points([], [], config=config, kind=kind)
    lon, lat = zip(*pts, strict=True)
    return rois_from_points(lon, lat, config=config, kind=kind)


def check_rois(rois: pd.DataFrame, name: str = "rois") -> pd.DataFrame:
    """Raise a clear error when a table lacks the ROI columns."""
    if not isinstance(rois, pd.DataFrame):
        raise InputError(f"{name} is a {type(rois).__name__}; pass the DataFrame from sample_rois/rois_from_points")
    missing = [c for c in ("roi_id", "epsg", "x_min", "y_max", "size", "res") if c not in rois.columns]
    if missing:
        raise InputError(
            f"{name} lacks the ROI columns {missing}; build it with sample_rois, rois_from_points or rois_from_polygons"
        )
    return rois


def roi_geobox(row: Any, *, res: float | None = None) -> Any:
    """The odc-geo GeoBox of an ROI row, at its own resolution or at ``res`` (same extent)."""
    from affine import Affine
    from odc.geo.geobox import GeoBox

    side = float(row["size"]) * float(row["res"])
    r = float(row["res"]) if res is None else float(res)
    n = int(round(side / r))
    if abs(n * r - side) > 1e-6:
        raise InputError(f"res={r!r} does not divide the ROI side {side} m; use a divisor, e.g. 2.5 or 10")
    return GeoBox((n, n), Affine(r, 0.0, float(row["x_min"]), 0.0, -r, float(row["y_max"])), f"EPSG:{int(row['epsg'])}")
