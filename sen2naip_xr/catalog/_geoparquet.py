"""A stac-geoparquet catalog searched locally (no API request), with the item-search interface of
pystac-client that :func:`~sen2naip_xr.catalog.search_items` uses.

Planetary Computer publishes each collection as stac-geoparquet (one ``<collection>.parquet``, a file or a
folder of files); the same layout in a local folder, a ``file://`` URL or an object store (``az://``,
``s3://``, ``gs://``, ``memory://`` through obstore, or an obstore store object) is searched here: the
``bbox`` columns, ``datetime`` and the CQL2 filter are pushed down to pyarrow, footprints are then tested
exactly with shapely, and matching rows become :class:`pystac.Item` objects (stac-geoparquet). Hrefs are
left unsigned: the loaders sign them at read time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pystac
import shapely
import shapely.geometry

from sen2naip_xr._safe import redact
from sen2naip_xr.errors import CatalogError, InputError

__all__ = ["GeoParquetCatalog", "is_geoparquet_location"]

_OBJECT_SCHEMES = ("az", "azure", "abfs", "abfss", "s3", "gs", "gcs", "memory", "http", "https")


def is_geoparquet_location(location: Any) -> bool:
    """True when ``location`` names a stac-geoparquet catalog rather than a STAC API.

    An obstore store object, a local folder, a ``file://`` URL or an object-store URL (``az://``,
    ``s3://``, ``gs://``, ``memory://``...) is a catalog; an ``http(s)://`` URL is a STAC API unless it
    ends in ``.parquet`` (a single collection file served over HTTP is not supported: use its folder).
    """
    if not isinstance(location, (str, Path)):
        return _is_obstore(location)
    text = str(location)
    scheme = urlsplit(text).scheme.lower()
    if scheme in ("http", "https"):
        return False
    if scheme == "file" or scheme == "":
        path = Path(urlsplit(text).path if scheme == "file" else text)
        return path.is_dir() or path.suffix == ".parquet"
    return scheme in _OBJECT_SCHEMES


def _is_obstore(obj: Any) -> bool:
    return type(obj).__module__.startswith("obstore") and hasattr(obj, "__class__") and "Store" in type(obj).__name__


class _ObstoreFile:
    """The file-like object pyarrow needs (``read``/``seek``/``tell``/``size``/``closed``) over obstore."""

    def __init__(self, store: Any, path: str) -> None:
        import obstore

        self._r = obstore.open_reader(store, path)
        self.closed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return bytes(self._r.read(size) if size is not None and size >= 0 else self._r.read())

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._r.seek(offset, whence)

    def tell(self) -> int:
        return self._r.tell()

    def size(self) -> int:
        return self._r.size

    def close(self) -> None:
        self.closed = True
        self._r.close()


def _parse_interval(datetime: str | None) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    if datetime is None:
        return None, None
    parts = str(datetime).split("/")
    if len(parts) == 1:
        parts = [parts[0], parts[0]]
    if len(parts) != 2:
        raise InputError(f"datetime={datetime!r} is not an RFC 3339 instant or START/END interval")

    def one(text: str, end: bool) -> pd.Timestamp | None:
        if text in ("", ".."):
            return None
        ts = pd.Timestamp(text)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        if end and len(text) <= 10:  # a bare date as the end: the whole day
            ts = ts + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
        return ts

    return one(parts[0], False), one(parts[1], True)


def _ts(value: Any) -> pa.Scalar:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return pa.scalar(ts.to_pydatetime(), type=pa.timestamp("us", tz="UTC"))


def _operand(arg: Any, names: set[str]) -> Any:
    if isinstance(arg, dict) and "property" in arg:
        name = arg["property"]
        if name not in names:
            raise CatalogError(
                f"filter property {name!r} is not a column of this stac-geoparquet collection "
                f"(columns: {sorted(names)[:20]}...); filter on an existing property"
            )
        return pc.field(name)
    if isinstance(arg, dict) and "timestamp" in arg:
        return _ts(arg["timestamp"])
    if isinstance(arg, dict) and "date" in arg:
        return _ts(arg["date"])
    if isinstance(arg, (int, float, str, bool)):
        return arg
    raise CatalogError(f"filter operand {arg!r} is not supported by the stac-geoparquet catalog")


_COMPARE = {"=": "__eq__", "<>": "__ne__", "<": "__lt__", "<=": "__le__", ">": "__gt__", ">=": "__ge__"}


def cql2_to_arrow(flt: dict[str, Any], names: set[str]) -> pc.Expression:
    """A pyarrow expression for the CQL2-JSON subset this package sends: ``and``/``or``/``not``,
    comparisons of a property with a literal or timestamp, and ``t_intersects``/``anyinteracts``
    of ``datetime`` with an ``interval``. Anything else raises :class:`CatalogError`."""
    if not isinstance(flt, dict) or "op" not in flt:
        raise CatalogError(f"filter={flt!r} is not CQL2-JSON (an object with 'op' and 'args')")
    op, args = str(flt["op"]).lower(), list(flt.get("args", []))
    if op in ("and", "or"):
        exprs = [cql2_to_arrow(a, names) for a in args]
        if not exprs:
            return pc.scalar(op == "and")
        out = exprs[0]
        for e in exprs[1:]:
            out = (out & e) if op == "and" else (out | e)
        return out
    if op == "not":
        return ~cql2_to_arrow(args[0], names)
    if op in _COMPARE:
        a, b = (_operand(x, names) for x in args)
        if not isinstance(a, pc.Expression):
            a, b, op = b, a, {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
        return getattr(a, _COMPARE[op])(b)
    if op in ("t_intersects", "anyinteracts"):
        prop, other = args
        field = _operand(prop, names)
        if isinstance(other, dict) and "interval" in other:
            lo, hi = other["interval"]
            expr = pc.scalar(True)
            if lo not in ("..", None):
                expr = expr & (field >= _ts(lo))
            if hi not in ("..", None):
                expr = expr & (field <= _ts(hi))
            return expr
        t = _operand(other, names)
        return field == t
    raise CatalogError(
        f"filter operator {flt['op']!r} is not supported by the stac-geoparquet catalog; it supports "
        "and/or/not, comparisons and t_intersects of datetime with an interval"
    )


class _Search:
    """The result of :meth:`GeoParquetCatalog.search`, with pystac-client's ``items``/``pages``."""

    def __init__(self, items: list[pystac.Item], limit: int | None) -> None:
        self._items = items
        self._limit = limit

    def items(self) -> Iterator[pystac.Item]:
        return iter(self._items)

    def pages(self) -> Iterator[pystac.ItemCollection]:
        yield pystac.ItemCollection(self._items)

    def matched(self) -> int:
        return len(self._items)


class GeoParquetCatalog:
    """A stac-geoparquet catalog: ``location`` holds one ``<collection>.parquet`` per collection.

    Parameters
    ----------
    location
        A local folder, a ``file://`` URL, an object-store URL understood by
        :func:`obstore.store.from_url` (``az://container/prefix``, ``s3://bucket/prefix``,
        ``gs://...``, ``memory:///``) or an obstore store object (its root is the catalog).
    storage_options
        Options of :func:`obstore.store.from_url` (credentials, ``use_emulator``...) for URLs.

    Notes
    -----
    Searches make no API request (``requests == 0``): :attr:`is_local` is True. Item hrefs are left as
    published (unsigned); loading signs them at read time.
    """

    is_local = True

    def __init__(self, location: Any, *, storage_options: dict[str, Any] | None = None) -> None:
        self.location = location
        self._store: Any = None
        self._prefix = ""
        self._root: Path | None = None
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], Any] = {}
        if isinstance(location, (str, Path)):
            text = str(location)
            parts = urlsplit(text)
            scheme = parts.scheme.lower()
            if scheme in ("", "file"):
                root = Path(parts.path if scheme == "file" else text)
                if root.suffix == ".parquet":
                    root = root.parent
                if not root.is_dir():
                    raise InputError(
                        f"catalog={text!r} is not a folder of stac-geoparquet files; pass a folder holding "
                        "<collection>.parquet files (e.g. naip.parquet, sentinel-2-l2a.parquet) or a STAC API URL"
                    )
                self._root = root
            else:
                import obstore.store

                try:
                    self._store = obstore.store.from_url(text, **(storage_options or {}))
                except Exception as exc:
                    raise InputError(
                        f"catalog={redact(text)!r} could not be opened as an object store: {redact(exc)}; "
                        "pass storage_options (credentials, endpoint) or a local folder"
                    ) from exc
        elif _is_obstore(location):
            self._store = location
        else:
            raise InputError(
                f"catalog={location!r} is not a stac-geoparquet location; pass a folder, a file:// or "
                "object-store URL, or an obstore store"
            )

    def __repr__(self) -> str:
        return f"GeoParquetCatalog({redact(str(self.location))!r})"

    # -- files ---------------------------------------------------------------------------------------
    def _cached(self, key: tuple[str, str], make: Any) -> Any:
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        value = make()
        with self._lock:
            self._cache[key] = value
        return value

    def _sources(self, collection: str) -> list[Any]:
        return self._cached(("sources", collection), lambda: self._find_sources(collection))

    def _find_sources(self, collection: str) -> list[Any]:
        name = f"{collection}.parquet"
        if self._root is not None:
            path = self._root / name
            if path.is_file():
                return [str(path)]
            if path.is_dir():
                return sorted(str(p) for p in path.rglob("*.parquet") if p.is_file())
            raise CatalogError(
                f"collection={collection!r} has no {name} in the stac-geoparquet catalog {str(self._root)!r}; "
                f"it holds {sorted(p.name for p in self._root.glob('*.parquet'))}"
            )
        import obstore

        keys: list[str] = []
        try:
            obstore.head(self._store, name)
            keys = [name]
        except Exception:
            for batch in obstore.list(self._store, name + "/"):
                keys.extend(m["path"] for m in batch if m["path"].endswith(".parquet"))
        if not keys:
            raise CatalogError(
                f"collection={collection!r} has no {name} (file or folder) in the stac-geoparquet catalog "
                f"{redact(str(self.location))!r}; check the catalog URL and the collection id"
            )
        return [("obstore", k) for k in sorted(keys)]

    def _read(self, source: Any, columns: list[str] | None, flt: pc.Expression | None) -> pa.Table:
        if isinstance(source, tuple):
            fh = _ObstoreFile(self._store, source[1])
            try:
                return pq.read_table(pa.PythonFile(fh, mode="r"), columns=columns, filters=flt)
            finally:
                fh.close()
        return pq.read_table(source, columns=columns, filters=flt)

    def _schema_names(self, collection: str) -> set[str]:
        return self._cached(("schema", collection), lambda: self._read_schema_names(collection))

    def _read_schema_names(self, collection: str) -> set[str]:
        src = self._sources(collection)[0]
        if isinstance(src, tuple):
            fh = _ObstoreFile(self._store, src[1])
            try:
                return set(pq.read_schema(pa.PythonFile(fh, mode="r")).names)
            finally:
                fh.close()
        return set(pq.read_schema(src).names)

    # -- search --------------------------------------------------------------------------------------
    def search(
        self,
        *,
        collections: Sequence[str] | str,
        bbox: Sequence[float] | None = None,
        intersects: Any = None,
        datetime: str | None = None,
        filter: dict[str, Any] | None = None,  # noqa: A002 (pystac-client's name)
        filter_lang: str | None = None,
        limit: int | None = None,
        max_items: int | None = None,
        **unused: Any,
    ) -> _Search:
        """Items of ``collections`` whose footprint intersects ``bbox``/``intersects``, within
        ``datetime`` and matching ``filter`` (CQL2-JSON), as pystac-client's ``Client.search``."""
        if unused:
            raise CatalogError(f"search options {sorted(unused)} are not supported by the stac-geoparquet catalog")
        if filter is not None and filter_lang not in (None, "cql2-json"):
            raise CatalogError(f"filter_lang={filter_lang!r}: the stac-geoparquet catalog takes cql2-json filters")
        cols = [collections] if isinstance(collections, str) else list(collections)
        geom = None
        if intersects is not None:
            geom = shapely.geometry.shape(intersects if isinstance(intersects, dict) else intersects.__geo_interface__)
        elif bbox is not None:
            geom = shapely.box(*[float(v) for v in bbox])
        lo, hi = _parse_interval(datetime)
        out: list[pystac.Item] = []
        for collection in cols:
            names = self._schema_names(collection)
            expr = pc.scalar(True)
            if geom is not None:
                w, s, e, n = geom.bounds
                b = "bbox"
                expr = expr & (pc.field(b, "xmin") <= e) & (pc.field(b, "xmax") >= w)
                expr = expr & (pc.field(b, "ymin") <= n) & (pc.field(b, "ymax") >= s)
            if lo is not None:
                expr = expr & (pc.field("datetime") >= _ts(lo))
            if hi is not None:
                expr = expr & (pc.field("datetime") <= _ts(hi))
            if filter is not None:
                expr = expr & cql2_to_arrow(filter, names)
            try:
                tables = [self._read(src, None, expr) for src in self._sources(collection)]
            except CatalogError:
                raise
            except Exception as exc:
                raise CatalogError(
                    f"stac-geoparquet collection={collection!r} of {redact(str(self.location))!r} could not "
                    f"be read: {redact(exc)}"
                ) from exc
            tables = [t for t in tables if t.num_rows]
            if not tables:
                continue
            table = pa.concat_tables(tables, promote_options="permissive")
            if geom is not None:
                fp = shapely.from_wkb(np.asarray(table.column("geometry").to_pylist(), dtype=object))
                keep = shapely.intersects(fp, geom)
                table = table.filter(pa.array(keep))
            table = table.sort_by([("datetime", "descending"), ("id", "ascending")])
            from stac_geoparquet.arrow import stac_table_to_items

            for d in stac_table_to_items(table):
                d.setdefault("collection", collection)
                out.append(pystac.Item.from_dict(d, preserve_dict=False))
        if max_items is not None:
            out = out[: int(max_items)]
        return _Search(out, limit)
