"""Pairing: cross-sensor S2/NAIP pairs within a day, synthetic early/late NAIP captures per ROI."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pystac
import shapely

from sen2naip_xr._const import FAILURE_COLUMNS
from sen2naip_xr.catalog._config import PairingConfig, SearchConfig, check_kind
from sen2naip_xr.catalog._roi import check_rois
from sen2naip_xr.catalog._search import items_table, open_catalog
from sen2naip_xr.errors import InputError

__all__ = ["Candidates", "pair_cross_sensor", "pair_synthetic", "search_pairs", "FAILURE_COLUMNS"]

_ROI_KEEP = ["roi_id", "kind", "epsg", "x_min", "y_max", "size", "res"]


def covering(rois: pd.DataFrame, items: pd.DataFrame, full_cover: bool) -> pd.DataFrame:
    """(roi_id, item row) pairs where the item footprint covers (or intersects) the ROI square."""
    if rois.empty or items.empty:
        return pd.DataFrame({"roi_id": pd.Series([], dtype=object), "_item": pd.Series([], dtype="int64")})
    roi_geoms = shapely.from_wkt(rois["geometry"].to_numpy())
    item_geoms = shapely.from_wkt(items["geometry"].to_numpy())
    tree = shapely.STRtree(item_geoms)
    ri, ii = tree.query(roi_geoms, predicate="within" if full_cover else "intersects")
    return pd.DataFrame({"roi_id": rois["roi_id"].to_numpy()[ri], "_item": ii.astype("int64")})


def _prefixed(items: pd.DataFrame, prefix: str, keep: list[str]) -> pd.DataFrame:
    out = items[keep].copy()
    return out.rename(columns={"id": f"{prefix}_id", "datetime": f"{prefix}_datetime", "gsd": f"{prefix}_gsd"})


def _empty_like(rois: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=rois[c].dtype if c in rois else object) for c in columns})


def _naip_cols(naip: pd.DataFrame) -> list[str]:
    return ["id", "datetime", "naip:year", "naip:state", "gsd"]


def pair_cross_sensor(
    rois: pd.DataFrame,
    naip: pd.DataFrame,
    s2: pd.DataFrame,
    *,
    config: PairingConfig | None = None,
    require_full_cover: bool = True,
) -> pd.DataFrame:
    """Cross-sensor candidates: every S2/NAIP pair covering an ROI with ``|dt| <= max_days``.

    ``dt_days`` is S2 minus NAIP in UTC calendar days (NAIP items carry a date, not a time). Rows are
    sorted by ROI, then ``|dt_days|``, ``eo:cloud_cover``, the S2 and the NAIP id; an empty table (with all columns)
    means no pair was found.

    Parameters
    ----------
    rois
        ROIs (:func:`sample_rois`, ``rois_from_*``).
    naip, s2
        Item tables (:func:`items_table`) of NAIP and Sentinel-2.
    config
        Pairing rules (:class:`~sen2naip_xr.PairingConfig`).
    require_full_cover
        Keep an item for an ROI only when its footprint covers the whole ROI.

    Returns
    -------
    pandas.DataFrame
        One row per (ROI, NAIP, S2) candidate pair.
    """
    cfg = config or PairingConfig()
    check_rois(rois)
    s2_extra = [c for c in s2.columns if c not in ("collection", "epsg", "geometry")]
    cols = (
        _ROI_KEEP
        + ["naip_id", "naip_datetime", "naip:year", "naip:state", "naip_gsd"]
        + ["s2_id", "s2_datetime"] + [c for c in s2_extra if c not in ("id", "datetime")]
        + ["dt_days"]
    )
    a = covering(rois, naip, require_full_cover)
    b = covering(rois, s2, require_full_cover)
    if a.empty or b.empty:
        return _empty_like(rois, cols)
    a = a.join(_prefixed(naip, "naip", _naip_cols(naip)), on="_item").drop(columns="_item")
    b = b.join(_prefixed(s2, "s2", s2_extra), on="_item").drop(columns="_item")
    m = a.merge(b, on="roi_id")
    m["dt_days"] = (
        m["s2_datetime"].dt.tz_convert("UTC").dt.normalize() - m["naip_datetime"].dt.tz_convert("UTC").dt.normalize()
    ) / pd.Timedelta(days=1)
    m = m[m["dt_days"].abs() <= cfg.max_days]
    out = rois[_ROI_KEEP].merge(m, on="roi_id")
    out = out.assign(_adt=out["dt_days"].abs()).sort_values(
        ["roi_id", "_adt", "eo:cloud_cover", "s2_id", "naip_id"], kind="stable"
    )
    return out.drop(columns="_adt")[cols].reset_index(drop=True)


def pair_synthetic(
    rois: pd.DataFrame,
    naip: pd.DataFrame,
    *,
    config: PairingConfig | None = None,
    require_full_cover: bool = True,
) -> pd.DataFrame:
    """Synthetic candidates: the oldest (``role="early"``) and most recent (``role="late"``) NAIP
    capture covering each ROI, among captures from ``min_naip_year`` on. An ROI with a single capture
    gets only its ``early`` row.

    Parameters
    ----------
    rois
        ROIs of kind ``synthetic``.
    naip
        NAIP item table (:func:`items_table`).
    config
        Pairing rules (``min_naip_year``).
    require_full_cover
        Keep an item for an ROI only when its footprint covers the whole ROI.

    Returns
    -------
    pandas.DataFrame
        Up to two rows per ROI (roles ``early`` and ``late``).
    """
    cfg = config or PairingConfig()
    check_rois(rois)
    cols = _ROI_KEEP + ["role", "naip_id", "naip_datetime", "naip:year", "naip:state", "naip_gsd"]
    a = covering(rois, naip, require_full_cover)
    if a.empty:
        return _empty_like(rois, cols)
    a = a.join(_prefixed(naip, "naip", _naip_cols(naip)), on="_item").drop(columns="_item")
    a = a[a["naip:year"] >= cfg.min_naip_year].sort_values(["roi_id", "naip_datetime", "naip_id"], kind="stable")
    if a.empty:
        return _empty_like(rois, cols)
    g = a.groupby("roi_id", sort=True)
    early = g.head(1).assign(role="early")
    late = g.tail(1).assign(role="late")
    late = late[g["naip_id"].transform("size").loc[late.index] > 1]
    both = pd.concat([early, late], ignore_index=True)
    out = rois[_ROI_KEEP].merge(both, on="roi_id")
    out["_r"] = (out["role"] == "late").astype(int)
    return out.sort_values(["roi_id", "_r"], kind="stable")[cols].reset_index(drop=True)


@dataclass
class Candidates:
    """What :func:`search_pairs` found: the ROIs, the candidate table, the items, the failures."""

    kind: str
    """``cross-sensor`` or ``synthetic``."""
    rois: pd.DataFrame
    """The ROI table searched."""
    pairs: pd.DataFrame
    """One row per candidate (see :func:`pair_cross_sensor` / :func:`pair_synthetic`)."""
    items: dict[str, pystac.Item] = field(default_factory=dict)
    """Every item the pairs refer to, by id (what the loaders read)."""
    failures: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(FAILURE_COLUMNS)))
    """ROIs whose search failed: ``roi_id``, ``stage`` (``search-naip`` / ``search-s2``), ``reason``."""
    stats: Any = None
    """Counters of the search (:class:`~sen2naip_xr.catalog.SearchStats`: strategy, requests, queries,
    seconds); ``None`` for candidates built otherwise."""

    def summary(self) -> str:
        n_rois = len(self.rois)
        with_pairs = self.pairs["roi_id"].nunique() if len(self.pairs) else 0
        unit = "candidate pairs" if self.kind == "cross-sensor" else "NAIP captures (early/late)"
        lines = [
            f"{self.kind}: {len(self.pairs)} {unit} for {with_pairs} of {n_rois} ROIs",
            f"items: {sum(1 for i in self.items.values() if 'naip' in str(i.collection_id))} NAIP, "
            f"{sum(1 for i in self.items.values() if 'naip' not in str(i.collection_id))} Sentinel-2",
        ]
        if len(self.pairs) and self.kind == "cross-sensor":
            lines.append(
                f"|dt| days: {self.pairs['dt_days'].abs().value_counts().sort_index().to_dict()}; "
                f"median cloud cover {self.pairs['eo:cloud_cover'].median():.1f} %"
            )
        if len(self.pairs) == 0:
            lines.append("no candidates: widen datetime, raise max_cloud_cover / max_days, or add ROIs")
        if len(self.failures):
            lines.append(f"failed ROIs: {len(self.failures)} (see .failures)")
        if self.stats is not None and n_rois:
            lines.append(
                f"search: {self.stats.strategy}, {self.stats.requests} requests "
                f"({self.stats.per_roi(n_rois):.2f} per ROI), {self.stats.seconds:.1f} s"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Candidates {self.summary().splitlines()[0]}; .pairs, .rois, .items, .failures>"

    def _repr_html_(self) -> str:
        import html

        head = "".join(f"<li>{html.escape(line)}</li>" for line in self.summary().splitlines())
        table = self.pairs.head(5).to_html(max_cols=8, index=False, border=0) if len(self.pairs) else ""
        more = f"<p>first 5 of {len(self.pairs)} rows of <code>.pairs</code></p>" if len(self.pairs) > 5 else ""
        return f"<div><b>Candidates</b><ul>{head}</ul>{table}{more}</div>"


def search_pairs(
    rois: pd.DataFrame,
    *,
    kind: str = "cross-sensor",
    datetime: str | None = None,
    client: Any = None,
    config: SearchConfig | None = None,
    pairing: PairingConfig | None = None,
    progress: bool = True,
    catalog: Any = None,
) -> Candidates:
    """Search the catalog for the ROIs and pair the results.

    NAIP items intersecting the ROIs within ``datetime``; for cross-sensor, then Sentinel-2 items
    within ``max_days`` of the NAIP dates (so S2 is never searched over whole years). With
    ``config.strategy="grouped"`` (the default) nearby ROIs are searched together: one paged NAIP
    query per spatial group and one paged Sentinel-2 query covering all the group's NAIP date windows
    (a CQL2 filter), items assigned to ROIs locally; ``"per-roi"`` sends one NAIP query per ROI and one
    Sentinel-2 query per NAIP date. Up to ``config.concurrency`` queries run at once; 429/5xx answers
    are retried with backoff. The candidates are the same whatever the strategy, the concurrency and
    the order answers arrive in. A failing query marks its ROIs failed (``Candidates.failures``, one
    row per ROI) and the others go on.

    Parameters
    ----------
    rois
        ROI table (:func:`sample_rois`, :func:`rois_from_points`...).
    kind
        ``"cross-sensor"`` or ``"synthetic"``.
    datetime
        RFC 3339 interval of the NAIP captures, e.g. ``"2018-01-01/2022-12-31"``.
    client
        A pystac-client ``Client``, a :class:`GeoParquetCatalog` or anything with the same ``search``;
        opened from ``catalog`` (or ``config.catalog_url``) when ``None``.
    config, pairing
        Search and pairing settings.
    progress
        Show requests done, pairs found, failed ROIs and an ETA (a tqdm bar on a terminal, log lines
        of the ``sen2naip_xr.catalog`` logger otherwise).
    catalog
        A STAC API URL or a stac-geoparquet location (folder, ``file://``/``az://``/... URL, obstore
        store) to open instead of ``config.catalog_url``.

    Returns
    -------
    Candidates
        The pairs table, the items by id, the ROIs, the failures (one record per ROI whose search
        failed) and the search counters (``stats``).

    Examples
    --------
    >>> import sen2naip_xr as s2n                                    # doctest: +SKIP
    >>> rois = s2n.sample_rois(50, seed=0)                           # doctest: +SKIP
    >>> cands = s2n.search_pairs(rois, datetime="2018-01-01/2022-12-31")  # Planetary Computer
    >>> cands.pairs.head()                                           # doctest: +SKIP
    """
    from sen2naip_xr.catalog._plan import run_search

    kind = check_kind(kind)
    check_rois(rois)
    cfg = config or SearchConfig()
    pcfg = pairing or PairingConfig()
    if client is None:
        client = open_catalog(catalog, config=cfg)
    elif catalog is not None:
        raise InputError("pass either client= or catalog= to search_pairs, not both")
    t0 = time.perf_counter()
    results, stats = run_search(rois, client=client, kind=kind, datetime=datetime, config=cfg, pairing=pcfg,
                                progress=progress)
    naip_items: dict[str, pystac.Item] = {}
    s2_items: dict[str, pystac.Item] = {}
    failures: list[tuple[int, str, str]] = []
    for r in results:  # task order, never completion order
        for it in r.naip:
            naip_items.setdefault(it.id, it)
        for it in r.s2:
            s2_items.setdefault(it.id, it)
        failures.extend(r.failures)
    failures.sort(key=lambda f: (f[0], f[1]))
    fail_rows = [{"roi_id": rois["roi_id"].iloc[p], "stage": st, "reason": why} for p, st, why in failures]
    failed = {f["roi_id"] for f in fail_rows}
    ok = rois[~rois["roi_id"].isin(failed)]
    naip_t = items_table([naip_items[k] for k in sorted(naip_items)], kind="naip")
    if kind == "cross-sensor":
        s2_t = items_table([s2_items[k] for k in sorted(s2_items)], kind="s2")
        pairs = pair_cross_sensor(ok, naip_t, s2_t, config=pcfg, require_full_cover=cfg.require_full_cover)
        used = set(pairs["naip_id"]) | set(pairs["s2_id"])
    else:
        pairs = pair_synthetic(ok, naip_t, config=pcfg, require_full_cover=cfg.require_full_cover)
        used = set(pairs["naip_id"])
    every = {**naip_items, **s2_items}
    items = {k: every[k] for k in sorted(used)}
    stats.seconds = time.perf_counter() - t0
    return Candidates(
        kind=kind, rois=rois, pairs=pairs, items=items,
        failures=pd.DataFrame(fail_rows, columns=list(FAILURE_COLUMNS)), stats=stats,
    )
