"""The offline STAC backend: an in-process STAC API over a list of items, and the named catalogs.

:class:`OfflineCatalog` answers ``search(...)`` like a pystac-client ``Client`` (collections,
bbox/intersects, datetime, the ``eo:cloud_cover`` CQL2 filter), so :func:`sen2naip_xr.search_pairs` and the
pipelines run on it through the same code as on a STAC API (``client=``).

Named catalogs (``--catalog embedded`` on the command line) are resolved through a registry:
:func:`register_catalog` maps a name to a factory; the package registers ``"embedded"``, served by
:func:`sen2naip_xr.demo.embedded_catalog` (imported only when that name is opened), so the catalog stage and
the command line never import the demo.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

import pandas as pd
import pystac

from sen2naip_xr.errors import InputError

__all__ = ["OfflineCatalog", "register_catalog", "named_catalogs", "open_named_catalog"]


class _Search:
    def __init__(self, items: list[pystac.Item]) -> None:
        self._items = items

    def items(self):
        return iter(self._items)

    def item_collection(self) -> pystac.ItemCollection:
        return pystac.ItemCollection(self._items)


def _interval(text: str | None) -> tuple[pd.Timestamp, pd.Timestamp]:
    if not text:
        return pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
    a, _, b = str(text).partition("/")
    b = b or a

    def ts(v: str, end: bool) -> pd.Timestamp:
        if v in ("", ".."):
            return (pd.Timestamp.max if end else pd.Timestamp.min).tz_localize("UTC")
        t = pd.Timestamp(v)
        t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
        if end and len(v) <= 10:  # a bare date ends at the end of that day
            t = t + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
        return t

    return ts(a, False), ts(b, True)


class OfflineCatalog:
    """A STAC API in process: ``search`` with the arguments :func:`sen2naip_xr.search_items` sends.

    Accepts a list of :class:`pystac.Item` (or a :class:`pystac.ItemCollection`), e.g. a collection
    exported from a STAC API for offline work.
    """

    def __init__(self, items: Any) -> None:
        self.items = list(items)

    def search(self, *, collections=None, bbox=None, intersects=None, datetime=None, filter=None,  # noqa: A002
               filter_lang=None, limit=None, max_items=None, **_: Any) -> _Search:
        import shapely
        import shapely.geometry

        area = None
        if intersects is not None:
            area = shapely.geometry.shape(intersects if isinstance(intersects, dict) else intersects.__geo_interface__)
        elif bbox is not None:
            area = shapely.geometry.box(*bbox)
        lo, hi = _interval(datetime)
        max_cc = None
        if filter:
            if filter.get("op") != "<=" or filter["args"][0].get("property") != "eo:cloud_cover":
                raise InputError(f"filter={filter!r} is not supported by the offline catalog; only eo:cloud_cover <= x")
            max_cc = float(filter["args"][1])
        out = []
        for it in self.items:
            if collections and it.collection_id not in collections:
                continue
            t = pd.Timestamp(it.datetime).tz_convert("UTC")
            if not lo <= t <= hi:
                continue
            if area is not None and not shapely.geometry.shape(it.geometry).intersects(area):
                continue
            if max_cc is not None and float(it.properties.get("eo:cloud_cover", 0)) > max_cc:
                continue
            out.append(it)
            if max_items and len(out) >= max_items:
                break
        return _Search(out)



#: name -> factory, or "module:function" imported when the name is first opened.
_REGISTRY: dict[str, Callable[..., Any] | str] = {"embedded": "sen2naip_xr.demo:embedded_catalog"}


def register_catalog(name: str, factory: Callable[..., Any]) -> None:
    """Make ``name`` usable as ``--catalog name`` and in :func:`open_named_catalog`.

    ``factory(folder, *, kind, n, seed)`` returns an object with ``client`` (a STAC API: an
    :class:`OfflineCatalog`), ``rois(kind)`` (an ROI table), ``datetime`` (a search interval) and
    ``root_attrs(kind)`` (attributes for the store's root).
    """
    if not isinstance(name, str) or not name or "://" in name:
        raise InputError(f"name={name!r} must be a plain word (URLs are opened as STAC APIs), e.g. 'embedded'")
    _REGISTRY[name] = factory


def named_catalogs() -> list[str]:
    """The names :func:`open_named_catalog` knows."""
    return sorted(_REGISTRY)


def open_named_catalog(name: str, folder: str | os.PathLike, **kwargs: Any) -> Any:
    """Open the named catalog ``name``, writing what it needs (e.g. the demo's scenes) under ``folder``."""
    factory = _REGISTRY.get(name)
    if factory is None:
        raise InputError(f"catalog={name!r} is neither a STAC API URL nor a named catalog {named_catalogs()}; "
                         "pass e.g. https://planetarycomputer.microsoft.com/api/stac/v1 or 'embedded'")
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
        _REGISTRY[name] = factory
    return factory(folder, **kwargs)
