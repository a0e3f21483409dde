"""Dense catalogs for search-at-scale tests and benchmarks: many NAIP items over a region (a grid of
quarter-quad footprints, several flight years, flight dates varying across the region) and Sentinel-2
tiles around them (an acquisition every 2 days through each flight season), in Planetary Computer's
item layout (templates: ../shared/stac/pc). Search only: no rasters are written for these items.

:func:`load` upserts them into a running test stack (:mod:`s2n_stac_stack`) under collection ids of
your choice (copies of PC's collections), so tests can use ``naip-dense`` / ``sentinel-2-l2a-dense``
beside the scenario collections without changing what other tests see.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import s2n_stac_stack as stack

#: Default region: northern Vermont (lon/lat), like the case measured in issue 12.
VERMONT = (-73.3, 44.0, -71.3, 45.0)


@dataclass(frozen=True)
class Dense:
    """The layout of a dense catalog."""

    region: tuple[float, float, float, float] = VERMONT
    years: tuple[int, ...] = (2014, 2016, 2018, 2020)
    quad_deg: float = 0.0625  # NAIP quarter quads: 3.75 arc-minutes
    overlap_deg: float = 0.004  # footprints overlap their neighbours by ~300 m, as PC's do
    flight_days: int = 12  # NAIP flight dates within a year vary over this many days (by column block)
    s2_tile_deg: float = 1.0
    s2_overlap_deg: float = 0.1
    s2_every_days: int = 2
    naip_collection: str = "naip"
    s2_collection: str = "sentinel-2-l2a"
    seed: int = 0

    def season_start(self, year: int) -> date:
        return date(year, 6, 20)


def _box(w: float, s: float, e: float, n: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def naip_items(d: Dense) -> list[dict]:
    tpl = json.loads((stack.PC / "item-naip-pa_m_4108053_se_17_1_20150725_20151201.json").read_text())
    w0, s0, e0, n0 = d.region
    nx = int(np.ceil((e0 - w0) / d.quad_deg))
    ny = int(np.ceil((n0 - s0) / d.quad_deg))
    out = []
    for year in d.years:
        for i in range(nx):
            for j in range(ny):
                w, s = w0 + i * d.quad_deg, s0 + j * d.quad_deg
                e, n = w + d.quad_deg, s + d.quad_deg
                day = d.season_start(year) + timedelta(days=(i // 4) * 3 % d.flight_days)
                ymd = day.strftime("%Y%m%d")
                qq = f"{int(n0 * 10) % 100:02d}{i:03d}{j:03d}"
                it = copy.deepcopy(tpl)
                it["id"] = f"vt_m_{qq}_{year}_{ymd}_{year + 1}0101"
                it["collection"] = d.naip_collection
                geom = _box(w - d.overlap_deg, s - d.overlap_deg, e + d.overlap_deg, n + d.overlap_deg)
                it["geometry"] = geom
                it["bbox"] = [w - d.overlap_deg, s - d.overlap_deg, e + d.overlap_deg, n + d.overlap_deg]
                p = it["properties"]
                p.update({"datetime": f"{day.isoformat()}T00:00:00Z", "naip:year": str(year), "naip:state": "vt",
                          "gsd": 0.6 if year >= 2018 else 1.0, "proj:epsg": 26918})
                href = (f"https://{stack.NAIP_ACCOUNT}.blob.core.windows.net/{stack.NAIP_CONTAINER}/v002/vt/{year}/"
                        f"vt_060cm_{year}/{qq[:5]}/m_{qq}_{ymd}.tif")
                it["assets"]["image"]["href"] = href
                for k in ("metadata", "thumbnail"):
                    it["assets"][k]["href"] = href.replace(".tif", ".txt" if k == "metadata" else ".200.jpg")
                for k in ("tilejson", "rendered_preview"):
                    it["assets"].pop(k, None)
                it["links"] = []
                out.append(it)
    return out


def s2_items(d: Dense) -> list[dict]:
    tpl = json.loads(
        (stack.PC / "item-sentinel-2-l2a-S2B_MSIL2A_20220612T182919_R027_T24XWR_20220613T123251.json").read_text()
    )
    rng = np.random.default_rng(d.seed)
    w0, s0, e0, n0 = d.region
    nx = int(np.ceil((e0 - w0) / d.s2_tile_deg))
    ny = int(np.ceil((n0 - s0) / d.s2_tile_deg))
    out = []
    for year in d.years:
        start = d.season_start(year) - timedelta(days=4)
        n_days = d.flight_days + 8
        for k in range(0, n_days, d.s2_every_days):
            day = start + timedelta(days=k)
            for i in range(nx):
                for j in range(ny):
                    w, s = w0 + i * d.s2_tile_deg, s0 + j * d.s2_tile_deg
                    e, n = w + d.s2_tile_deg + d.s2_overlap_deg, s + d.s2_tile_deg + d.s2_overlap_deg
                    w, s = w - d.s2_overlap_deg, s - d.s2_overlap_deg
                    tile = f"18T{chr(ord('A') + i)}{chr(ord('A') + j)}Q"[:5]
                    stamp = f"{day.strftime('%Y%m%d')}T153{i}{j}1"
                    platform = "Sentinel-2A" if k % 4 == 0 else "Sentinel-2B"
                    it = copy.deepcopy(tpl)
                    it["id"] = f"S2{platform[-1]}_MSIL2A_{stamp}_R011_T{tile}_{stamp[:8]}T000000"
                    it["collection"] = d.s2_collection
                    it["geometry"] = _box(w, s, e, n)
                    it["bbox"] = [w, s, e, n]
                    p = it["properties"]
                    p.update({
                        "datetime": f"{day.isoformat()}T15:3{i}:{10 + j:02d}.024000Z", "platform": platform,
                        "s2:mgrs_tile": tile, "eo:cloud_cover": float(np.round(rng.uniform(0, 100), 3)),
                        "s2:processing_baseline": "05.00" if year >= 2022 else "02.12", "proj:epsg": 32618,
                    })
                    for a in it["assets"].values():
                        if "href" in a and ".blob.core.windows.net" in a["href"]:
                            a["href"] = a["href"].replace("24/X/WR", f"18/T/{tile[3:]}").replace("T24XWR", f"T{tile}")
                    for key in ("tilejson", "rendered_preview"):
                        it["assets"].pop(key, None)
                    it["links"] = []
                    out.append(it)
    return out


def collections(d: Dense) -> list[dict]:
    out = []
    for name, cid in (("collection-naip.json", d.naip_collection), ("collection-sentinel-2-l2a.json", d.s2_collection)):
        c = json.loads((stack.PC / name).read_text())
        c["id"] = cid
        c["links"] = [lk for lk in c.get("links", []) if lk.get("rel") == "license"]
        out.append(c)
    return out


def load(st: stack.Stack, d: Dense) -> tuple[list[dict], list[dict]]:
    """Upsert the dense collections and items into the running stack; returns (naip, s2) item dicts."""
    from pypgstac.db import PgstacDB
    from pypgstac.load import Loader, Methods

    naip, s2 = naip_items(d), s2_items(d)
    db = PgstacDB(dsn=st.dsn)
    try:
        loader = Loader(db)
        loader.load_collections(iter(collections(d)), insert_mode=Methods.upsert)
        loader.load_items(iter(naip + s2), insert_mode=Methods.upsert)
    finally:
        db.close()
    return naip, s2


def write_geoparquet(folder, items_by_collection: dict[str, list[dict]]) -> None:
    """One ``<collection>.parquet`` per collection, as Planetary Computer publishes them."""
    from pathlib import Path

    import stac_geoparquet.arrow as sga

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for cid, items in items_by_collection.items():
        table = sga.parse_stac_items_to_arrow(items).read_all()
        sga.to_parquet(table, folder / f"{cid}.parquet")


def unload(st: stack.Stack, d: Dense) -> None:
    """Delete the dense collections (and their items) from the stack again."""
    import psycopg

    with psycopg.connect(st.dsn, autocommit=True) as conn:
        for cid in (d.naip_collection, d.s2_collection):
            conn.execute("SELECT pgstac.delete_collection(%s)", [cid])
