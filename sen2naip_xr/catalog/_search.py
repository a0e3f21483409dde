"""STAC search with pystac-client (Planetary Computer by default) and tidy item tables."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pystac

from sen2naip_xr._safe import redact
from sen2naip_xr.catalog._config import SearchConfig
from sen2naip_xr.errors import CatalogError, InputError

__all__ = ["open_catalog", "search_items", "items_table", "S2_COLUMNS", "NAIP_COLUMNS"]

#: Item-table columns of Sentinel-2 L2A items (Planetary Computer property names); any ``view:*``
#: properties present are appended.
S2_COLUMNS: tuple[str, ...] = (
    "id", "collection", "datetime", "platform", "s2:mgrs_tile", "s2:processing_baseline",
    "eo:cloud_cover", "s2:mean_solar_azimuth", "s2:mean_solar_zenith", "epsg", "geometry",
)
#: Item-table columns of NAIP items (``naip:year`` as an int, ``gsd`` rounded to mm).
NAIP_COLUMNS: tuple[str, ...] = (
    "id", "collection", "datetime", "naip:year", "naip:state", "gsd", "epsg", "geometry",
)


def open_catalog(
    url: str | None = None,
    *,
    config: SearchConfig | None = None,
    request_modifier: Callable[[Any], Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """Open a STAC API with pystac-client.

    ``url`` (or ``config.catalog_url``, Planetary Computer by default) may be any STAC API. With
    ``config.sign`` the client's modifier is :func:`planetary_computer.sign_inplace`, as Planetary
    Computer's own examples do (hrefs outside ``*.blob.core.windows.net`` are left untouched).

    Parameters
    ----------
    url
        Root of the STAC API (default: ``config.catalog_url``, the Planetary Computer).
    config
        :class:`~sen2naip_xr.SearchConfig` (signing of hrefs).
    request_modifier, headers
        Passed to ``pystac_client.Client.open``.

    Returns
    -------
    pystac_client.Client
        The opened client (:class:`~sen2naip_xr.CatalogError` when it cannot be opened).
    """
    import pystac_client

    cfg = config or SearchConfig()
    url = url or cfg.catalog_url
    if not isinstance(url, str) or not url.startswith(("http://", "https://", "file://", "/")):
        raise InputError(f"catalog={url!r} is not a STAC API URL; pass e.g. {SearchConfig().catalog_url!r}")
    modifier = None
    if cfg.sign:
        import planetary_computer

        modifier = planetary_computer.sign_inplace
    try:
        return pystac_client.Client.open(
            url, modifier=modifier, request_modifier=request_modifier, headers=dict(headers or {})
        )
    except Exception as exc:  # pystac_client raises APIError, requests errors, JSON errors...
        raise CatalogError(redact(f"catalog={url!r} could not be opened as a STAC API: {exc}")) from exc


def _cloud_filter(max_cloud_cover: float | None) -> dict[str, Any] | None:
    if max_cloud_cover is None:
        return None
    return {"op": "<=", "args": [{"property": "eo:cloud_cover"}, float(max_cloud_cover)]}


def search_items(
    client: Any,
    collection: str,
    *,
    bbox: Sequence[float] | None = None,
    intersects: Any = None,
    datetime: str | None = None,
    max_cloud_cover: float | None = None,
    config: SearchConfig | None = None,
) -> list[pystac.Item]:
    """All items of ``collection`` matching the query, following ``next`` links page by page.

    ``bbox`` is ``(west, south, east, north)`` in degrees, ``intersects`` a GeoJSON dict or shapely
    geometry, ``datetime`` an RFC 3339 interval (``"2020-01-01/2020-12-31"``), ``max_cloud_cover``
    a percentage (sent as a CQL2 filter on ``eo:cloud_cover``). Page size and an item cap come from
    ``config``.

    Parameters
    ----------
    client
        A ``pystac_client.Client`` (:func:`open_catalog`).
    collection
        Collection id.
    bbox, intersects, datetime
        The spatial and temporal filters of the search.
    max_cloud_cover
        ``eo:cloud_cover`` upper bound (percent), or None.
    config
        Page size and item limit (:class:`~sen2naip_xr.SearchConfig`).

    Returns
    -------
    list of pystac.Item
        Every matching item.
    """
    cfg = config or SearchConfig()
    if bbox is not None:
        bbox = tuple(float(v) for v in bbox)
        if len(bbox) != 4 or not (bbox[0] < bbox[2] and bbox[1] < bbox[3]):
            raise InputError(f"bbox={bbox!r} is not (west, south, east, north) with west < east, south < north")
    if intersects is not None and not isinstance(intersects, dict):
        intersects = intersects.__geo_interface__
    flt = _cloud_filter(max_cloud_cover)
    try:
        search = client.search(
            collections=[collection],
            bbox=bbox,
            intersects=intersects,
            datetime=datetime,
            filter=flt,
            filter_lang="cql2-json" if flt else None,
            limit=cfg.page_size,
            max_items=cfg.max_items,
        )
        return list(search.items())
    except Exception as exc:
        raise CatalogError(
            redact(f"search of collection={collection!r} (bbox={bbox}, datetime={datetime!r}) failed: {exc}")
        ) from exc


def _epsg(props: Mapping[str, Any]) -> float:
    if props.get("proj:epsg") is not None:
        return float(props["proj:epsg"])
    code = props.get("proj:code")
    if isinstance(code, str) and code.upper().startswith("EPSG:"):
        return float(code.split(":", 1)[1])
    return np.nan


def items_table(items: Iterable[pystac.Item], *, kind: str | None = None) -> pd.DataFrame:
    """A tidy table, one row per item.

    ``kind`` is ``"s2"`` (columns :data:`S2_COLUMNS` plus ``view:*``), ``"naip"``
    (:data:`NAIP_COLUMNS`) or ``None`` to guess from the first item's collection.

    Parameters
    ----------
    items
        pystac items (NAIP or Sentinel-2).
    kind
        ``"naip"`` or ``"s2"`` to pick the columns (default: from each item's collection).

    Returns
    -------
    pandas.DataFrame
        One row per item: id, datetime, footprint and the properties pairing needs.
    """
    import shapely.geometry

    items = list(items)
    if kind is None:
        kind = "naip" if items and "naip" in str(items[0].collection_id) else "s2"
    if kind not in ("s2", "naip"):
        raise InputError(f"kind={kind!r} is not an item kind; use 's2' or 'naip'")
    cols = list(S2_COLUMNS if kind == "s2" else NAIP_COLUMNS)
    view_cols = sorted({k for it in items for k in it.properties if k.startswith("view:")})
    if kind == "s2":
        cols = cols[:-2] + view_cols + cols[-2:]
    rows = []
    for it in items:
        p = it.properties
        row: dict[str, Any] = {
            "id": it.id,
            "collection": it.collection_id,
            "datetime": pd.Timestamp(it.datetime) if it.datetime else pd.NaT,
            "epsg": _epsg(p),
            "geometry": shapely.geometry.shape(it.geometry).wkt if it.geometry else None,
        }
        if kind == "naip":
            year = p.get("naip:year")
            row["naip:year"] = int(year) if year not in (None, "") else (it.datetime.year if it.datetime else -1)
            row["naip:state"] = p.get("naip:state")
            row["gsd"] = round(float(p["gsd"]), 3) if p.get("gsd") is not None else np.nan
        else:
            for c in cols:
                if c not in row:
                    row[c] = p.get(c)
        rows.append(row)
    df = pd.DataFrame(rows, columns=cols)
    df["datetime"] = pd.to_datetime(df["datetime"], utc=True)
    if kind == "naip":
        df["naip:year"] = df["naip:year"].astype("int64")
    else:
        for c in ("eo:cloud_cover", "s2:mean_solar_azimuth", "s2:mean_solar_zenith", *view_cols):
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    return df
