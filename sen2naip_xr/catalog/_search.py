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

__all__ = ["open_catalog", "search_items", "items_table", "S2_COLUMNS", "NAIP_COLUMNS", "RETRY_STATUS"]

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


class _PoliteRetry:
    """Builds the urllib3 ``Retry`` of clients opened here: 429 and 5xx answers (and failed connections)
    are retried with exponential backoff and jitter, honouring ``Retry-After`` up to ``max_backoff_s``;
    POST (pystac-client's item search) is retried too."""

    @staticmethod
    def make(cfg: SearchConfig) -> Any:
        from urllib3 import Retry

        class Retry_(Retry):
            def get_retry_after(self, response: Any) -> float | None:
                after = super().get_retry_after(response)
                return None if after is None else min(float(after), float(cfg.max_backoff_s))

        return Retry_(
            total=cfg.max_retries, connect=cfg.max_retries, read=cfg.max_retries, status=cfg.max_retries,
            backoff_factor=cfg.backoff_s, backoff_max=cfg.max_backoff_s, backoff_jitter=cfg.backoff_s / 2,
            status_forcelist=RETRY_STATUS, allowed_methods=None, respect_retry_after_header=True,
            raise_on_status=False,
        )


#: HTTP statuses retried with backoff (``Retry-After`` honoured).
RETRY_STATUS: tuple[int, ...] = (429, 500, 502, 503, 504)


def open_catalog(
    url: Any = None,
    *,
    config: SearchConfig | None = None,
    request_modifier: Callable[[Any], Any] | None = None,
    headers: Mapping[str, str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Any:
    """Open a STAC API with pystac-client, or a stac-geoparquet catalog.

    ``url`` (or ``config.catalog_url``, Planetary Computer by default) may be any STAC API. With
    ``config.sign`` the client's modifier is :func:`planetary_computer.sign_inplace`, as Planetary
    Computer's own examples do (hrefs outside ``*.blob.core.windows.net`` are left untouched). Requests
    answered 429 or 5xx are retried (``config.max_retries``, exponential backoff from
    ``config.backoff_s``, ``Retry-After`` honoured); the connection pool holds ``config.concurrency``
    connections.

    A folder, a ``file://`` or object-store URL (``az://``, ``s3://``, ``gs://``, ``memory://``; with
    ``storage_options`` for :func:`obstore.store.from_url`) or an obstore store holding one
    ``<collection>.parquet`` per collection (Planetary Computer's stac-geoparquet layout) opens a
    :class:`~sen2naip_xr.catalog.GeoParquetCatalog`, searched locally without any API request; its
    hrefs stay unsigned (loading signs at read time).

    Parameters
    ----------
    url
        Root of the STAC API, or a stac-geoparquet location (default: ``config.catalog_url``, the
        Planetary Computer).
    config
        :class:`~sen2naip_xr.SearchConfig` (signing, retries, timeout, connection pool size).
    request_modifier, headers
        Passed to ``pystac_client.Client.open``.
    storage_options
        Options of :func:`obstore.store.from_url` for an object-store URL.

    Returns
    -------
    pystac_client.Client or GeoParquetCatalog
        The opened client (:class:`~sen2naip_xr.CatalogError` when a STAC API cannot be opened).
    """
    import pystac_client
    from requests.adapters import HTTPAdapter

    from sen2naip_xr.catalog._geoparquet import GeoParquetCatalog, is_geoparquet_location

    cfg = config or SearchConfig()
    url = url if url is not None else cfg.catalog_url
    if is_geoparquet_location(url):
        return GeoParquetCatalog(url, storage_options=dict(storage_options or {}))
    if not isinstance(url, str) or not url.startswith(("http://", "https://", "file://", "/")):
        raise InputError(
            f"catalog={url!r} is not a STAC API URL nor a stac-geoparquet folder; pass e.g. "
            f"{SearchConfig().catalog_url!r} or a folder holding <collection>.parquet files"
        )
    modifier = None
    if cfg.sign:
        import planetary_computer

        modifier = planetary_computer.sign_inplace
    try:
        io = pystac_client.stac_api_io.StacApiIO(max_retries=None)
        adapter = HTTPAdapter(max_retries=_PoliteRetry.make(cfg), pool_maxsize=max(10, cfg.concurrency))
        io.session.mount("http://", adapter)
        io.session.mount("https://", adapter)
        return pystac_client.Client.open(  # Client.open hands these to the StacApiIO given
            url, modifier=modifier, stac_io=io, headers=dict(headers or {}), request_modifier=request_modifier,
            timeout=cfg.timeout_s,
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
    filter: dict[str, Any] | None = None,  # noqa: A002 (the STAC API's name)
    config: SearchConfig | None = None,
) -> list[pystac.Item]:
    """All items of ``collection`` matching the query, following ``next`` links page by page.

    ``bbox`` is ``(west, south, east, north)`` in degrees, ``intersects`` a GeoJSON dict or shapely
    geometry, ``datetime`` an RFC 3339 interval (``"2020-01-01/2020-12-31"``), ``max_cloud_cover``
    a percentage (sent as a CQL2 filter on ``eo:cloud_cover``), ``filter`` a further CQL2-JSON filter
    (and-ed with the cloud filter). Page size and an item cap come from ``config``. ``client`` is a
    pystac-client ``Client`` or a :class:`~sen2naip_xr.catalog.GeoParquetCatalog`.

    Parameters
    ----------
    client
        A ``pystac_client.Client`` or :class:`~sen2naip_xr.catalog.GeoParquetCatalog` (:func:`open_catalog`).
    collection
        Collection id.
    bbox, intersects, datetime
        The spatial and temporal filters of the search.
    max_cloud_cover
        ``eo:cloud_cover`` upper bound (percent), or None.
    filter
        A further CQL2-JSON filter, or None.
    config
        Page size and item limit (:class:`~sen2naip_xr.SearchConfig`).

    Returns
    -------
    list of pystac.Item
        Every matching item.
    """
    return search_counted(client, collection, bbox=bbox, intersects=intersects, datetime=datetime,
                          max_cloud_cover=max_cloud_cover, filter=filter, config=config)[0]


def search_counted(
    client: Any,
    collection: str,
    *,
    bbox: Sequence[float] | None = None,
    intersects: Any = None,
    datetime: str | None = None,
    max_cloud_cover: float | None = None,
    filter: dict[str, Any] | None = None,  # noqa: A002
    config: SearchConfig | None = None,
) -> tuple[list[pystac.Item], int]:
    """:func:`search_items` and the number of requests (pages) it took (0 for a local catalog)."""
    cfg = config or SearchConfig()
    if bbox is not None:
        bbox = tuple(float(v) for v in bbox)
        if len(bbox) != 4 or not (bbox[0] < bbox[2] and bbox[1] < bbox[3]):
            raise InputError(f"bbox={bbox!r} is not (west, south, east, north) with west < east, south < north")
    if intersects is not None and not isinstance(intersects, dict):
        intersects = intersects.__geo_interface__
    flt = _cloud_filter(max_cloud_cover)
    if filter is not None:
        flt = filter if flt is None else {"op": "and", "args": [flt, filter]}
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
        items: list[pystac.Item] = []
        pages = 0
        if hasattr(search, "pages"):
            for page in search.pages():
                pages += 1
                items.extend(page.items)
        else:  # an in-process catalog with only ``items()``
            items = list(search.items())
        if getattr(client, "is_local", False):
            return items, 0
        return items, max(pages, 1)  # an empty answer is one request too
    except Exception as exc:
        where = f"bbox={bbox}" if bbox is not None else "intersects=<geometry>" if intersects is not None else "everywhere"
        raise CatalogError(redact(
            f"search of collection={collection!r} ({where}, datetime={datetime!r}) failed: "
            f"{type(exc).__name__}: {exc}"
        )[:2000]) from exc


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
