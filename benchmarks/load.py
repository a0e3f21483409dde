"""Benchmark the load stage: odc-stac ROI reads beside plain rasterio, bytes read, graph build at scale.

    python benchmarks/load.py [--workdir DIR] [--repeats 3] [--rois 250 500 1000] [--quick]

Fixture: a NAIP-like COG written like Planetary Computer's NAIP (0.6 m, uint8, 4 bands, band 4 tagged
alpha, pixel-interleaved, DEFLATE, 512x512 tiles, internal overviews 2/4/8/16 averaged) in EPSG:26911,
6000 x 6000 px (3.6 km), its origin off the 2.5 m grid; its pixels are the procedural scene of
``sen2naip_xr.scenes`` at 2.4 m, upsampled 4x, plus per-pixel noise (sd 1.5 DN) so that it compresses
like real NAIP (zlib on the shared real 0.6 m crop: ~1.15x). It is written once into ``--workdir``.

1. **Speed**: ``load_naip`` (``file://`` hrefs) of 484 px (cross-sensor) and 1100 px (synthetic) ROIs on
   their 2.5 m grid in EPSG:32611, with and without overviews, with its default reader (``load``:
   axis-aligned averages from one windowed read) and with odc-stac's GDAL warper (``load-warp``:
   ``OdcReader(aligned_average=False)``), against ``rasterio.open(...).read(window=..., out_shape=...,
   resampling=average)`` of the same pixels: the ROI's bounds as a window in the same overview level
   (``overview_level=`` as odc-stac picks it, or ``OVERVIEW_LEVEL=NONE`` for native), converted to
   float32 / 255 as the loader returns them. All run in this process under the loader's GDAL options,
   in turn, single-threaded (the synchronous Dask scheduler); the median of ``--repeats`` runs over the
   same ROIs is reported, with each method's largest error against the exact area-weighted mean.
2. **Bytes**: the same reads through the test stack's HTTP asset server (``tests/stac/s2n_stac_stack.py``:
   Range requests, counting every byte it sends), each measurement under a fresh URL (a query string
   the server ignores) so GDAL's in-process ``/vsicurl/`` cache never serves a read; beside them, the
   compressed size of the tiles the ROI touches (the file's TileByteCounts), the least a reader needs.
3. **Graph build**: lazy cubes (no compute, no IO) for N synthetic ROIs (``load_naip``, 2 captures per
   ROI) and N cross-sensor ROIs (``load_pairs``: NAIP, S2 and SCL cubes, 2 pairs per ROI) from a pairs
   table and Planetary-Computer-layout items built in memory (every ROI its own items, the worst case);
   seconds and tasks (``len`` of the Dask graph) per N.

Prints a table and writes ``benchmarks/results/load.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pystac
import rasterio
import rasterio.shutil
import rasterio.warp
import rasterio.windows
from affine import Affine
from rasterio.enums import ColorInterp, Resampling

import sen2naip_xr as s2n
from sen2naip_xr.load import DEFAULT_GDAL_ENV, LoadConfig, NoSigner, OdcReader

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "stac"))
import s2n_stac_stack as stack  # noqa: E402  (the byte-counting asset server and PC item templates)
from _machine import cpu_and_memory  # noqa: E402  (benchmarks/ is on sys.path when a script runs)

NAIP_RES = 0.6
NAIP_SIZE = 6000
NAIP_ORIGIN = (490123.37, 3650456.81)  # EPSG:26911 upper-left corner, off the 2.5 m grid
NAIP_EPSG, ROI_EPSG = 26911, 32611
#: ROI upper-left corners (EPSG:32611, on the 10 m grid), inside the NAIP file
ROI_CORNERS = {
    484: [(490500.0, 3650000.0), (491900.0, 3649000.0), (490800.0, 3648500.0), (492300.0, 3648300.0)],
    1100: [(490300.0, 3650300.0), (490700.0, 3649900.0), (490500.0, 3650100.0), (490900.0, 3649700.0)],
}
S2_TILE = (490000.0, 3646000.0, 494000.0, 3651000.0)  # x0, y0, x1, y1 of the small S2 COGs (EPSG:32611)


def machine() -> str:
    return f"{cpu_and_memory()}, GDAL {rasterio.__gdal_version__}, rasterio {rasterio.__version__}"


# ------------------------------------------------------------------------------------------------
# fixtures
def write_naip_cog(path: Path, *, size: int = NAIP_SIZE, noise_sd: float = 1.5, seed: int = 1) -> None:
    """A Planetary-Computer-like NAIP COG (see the module docstring)."""
    from sen2naip_xr.scenes import make_scene

    rng = np.random.default_rng(seed)
    coarse = np.round(make_scene(size // 4, seed=seed) * 255).astype(np.int16)
    img = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)
    for b in range(4):  # band by band: ~150 MB of int16 at a time
        img[b] += np.round(rng.normal(0.0, noise_sd, img.shape[1:])).astype(np.int16)
    data = np.clip(img, 0, 255).astype(np.uint8)
    del img
    tmp = path.with_suffix(".tmp.tif")
    path.parent.mkdir(parents=True, exist_ok=True)
    prof = dict(driver="GTiff", width=size, height=size, count=4, dtype="uint8", crs=f"EPSG:{NAIP_EPSG}",
                transform=Affine(NAIP_RES, 0, NAIP_ORIGIN[0], 0, -NAIP_RES, NAIP_ORIGIN[1]), tiled=True,
                blockxsize=512, blockysize=512, compress="deflate", photometric="RGB", interleave="pixel",
                num_threads="ALL_CPUS")
    with rasterio.open(tmp, "w", **prof) as dst:
        dst.write(data)
        dst.build_overviews([2, 4, 8, 16], Resampling.average)  # before NIR is tagged alpha
    with rasterio.open(tmp, "r+") as dst:  # as real NAIP files do: band 4 (NIR) tagged alpha
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    rasterio.shutil.copy(tmp, path, driver="COG", compress="DEFLATE", blocksize=512,
                         overviews="force_use_existing", num_threads="ALL_CPUS")
    tmp.unlink()


def write_s2_cogs(root: Path) -> dict[str, Path]:
    """Small S2 L2A band COGs (10 m B04/B03/B02/B08, 20 m SCL) over the NAIP file (for the pairs cube)."""
    x0, y0, x1, y1 = S2_TILE
    out = {}
    for b, asset in enumerate(("B04", "B03", "B02", "B08", "SCL")):
        res = 20.0 if asset == "SCL" else 10.0
        w, h = int((x1 - x0) / res), int((y1 - y0) / res)
        xx, yy = stack.centres(x0, y1, res, w, h)
        data = stack.scl_classes(xx, yy, "a")[None] if asset == "SCL" else stack.s2_dn(xx, yy, b, 1)[None]
        out[asset] = root / f"s2_{asset}.tif"
        if not out[asset].exists():
            stack.write_cog(out[asset], data, crs=f"EPSG:{ROI_EPSG}", transform=Affine(res, 0, x0, 0, -res, y1), nodata=0)
    return out


def naip_item(item_id: str, href: str, date: str = "2020-04-15") -> pystac.Item:
    """A NAIP item in Planetary Computer's layout (only ``eo:bands`` on ``image``) for the fixture file."""
    it = copy.deepcopy(_NAIP_TPL)
    x0, y1 = NAIP_ORIGIN
    x1, y0 = x0 + NAIP_SIZE * NAIP_RES, y1 - NAIP_SIZE * NAIP_RES
    geom = stack.footprint(NAIP_EPSG, x0, y0, x1, y1)
    lons = [p[0] for p in geom["coordinates"][0]]
    lats = [p[1] for p in geom["coordinates"][0]]
    it.update(id=item_id, geometry=geom, bbox=[min(lons), min(lats), max(lons), max(lats)], links=[])
    it["properties"].update({
        "datetime": f"{date}T00:00:00Z", "naip:year": date[:4], "naip:state": "ca", "gsd": 0.6000000000000049,
        "proj:epsg": NAIP_EPSG, "proj:bbox": [x0, y0, x1, y1], "proj:shape": [NAIP_SIZE, NAIP_SIZE],
        "proj:transform": [NAIP_RES, 0.0, x0, 0.0, -NAIP_RES, y1, 0.0, 0.0, 1.0],
    })
    it["assets"]["image"]["href"] = href
    return pystac.Item.from_dict(it)


def s2_item(item_id: str, hrefs: dict[str, Path], dt: str = "2020-04-15T18:39:21.024000Z") -> pystac.Item:
    it = copy.deepcopy(_S2_TPL)
    x0, y0, x1, y1 = S2_TILE
    geom = stack.footprint(ROI_EPSG, x0, y0, x1, y1)
    lons = [p[0] for p in geom["coordinates"][0]]
    lats = [p[1] for p in geom["coordinates"][0]]
    it.update(id=item_id, geometry=geom, bbox=[min(lons), min(lats), max(lons), max(lats)], links=[])
    it["properties"].update({"datetime": dt, "proj:epsg": ROI_EPSG, "s2:processing_baseline": "04.00",
                             "eo:cloud_cover": 5.0, "s2:mgrs_tile": "11SMS"})
    for key, a in it["assets"].items():
        if "proj:transform" not in a:
            continue
        res = 20.0 if key == "SCL" else a["proj:transform"][0]
        a["href"] = hrefs[key].as_uri() if key in hrefs else f"file:///nonexistent/{key}.tif"
        a.update({"proj:bbox": [x0, y0, x1, y1], "proj:shape": [int((y1 - y0) / res), int((x1 - x0) / res)],
                  "proj:transform": [res, 0.0, x0, 0.0, -res, y1]})
    return pystac.Item.from_dict(it)


_NAIP_TPL = json.loads((stack.PC / "item-naip-pa_m_4108053_se_17_1_20150725_20151201.json").read_text())
_S2_TPL = json.loads((stack.PC / "item-sentinel-2-l2a-S2B_MSIL2A_20220612T182919_R027_T24XWR_20220613T123251.json").read_text())


def roi_table(size: int, corners: list[tuple[float, float]], naip_ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame({
        "roi_id": [f"r{size}-{i}" for i in range(len(corners))], "epsg": ROI_EPSG,
        "x_min": [c[0] for c in corners], "y_max": [c[1] for c in corners], "size": size, "res": 2.5,
        "naip_id": naip_ids,
    })


# ------------------------------------------------------------------------------------------------
# overview choice, the rasterio baseline, the exact reference
def overview_index(path: str, use_overviews: bool) -> int | None:
    """The overview odc-stac reads: the coarsest not coarser than 2.5 m (its ``pick_overview``)."""
    if not use_overviews:
        return None
    with rasterio.open(path) as src:
        shrink = int(2.5 / abs(src.transform.a) + 1e-6)
        idx = None
        for i, f in enumerate(src.overviews(1)):
            if f <= shrink:
                idx = i
        return idx


def overview_factor(path: str, ovr: int | None) -> int:
    if ovr is None:
        return 1
    with rasterio.open(path) as src:
        return int(src.overviews(1)[ovr])


def rasterio_read(path: str, x_min: float, y_max: float, size: int, ovr: int | None) -> np.ndarray:
    """The baseline: one windowed, resampled read of the ROI's bounds, as the loader returns it."""
    opts = {"overview_level": ovr} if ovr is not None else {"OVERVIEW_LEVEL": "NONE"}
    with rasterio.Env(**DEFAULT_GDAL_ENV), rasterio.open(path, **opts) as src:
        side = size * 2.5
        bounds = rasterio.warp.transform_bounds(f"EPSG:{ROI_EPSG}", src.crs, x_min, y_max - side, x_min + side, y_max)
        win = rasterio.windows.from_bounds(*bounds, transform=src.transform)
        pix = src.read(window=win, out_shape=(src.count, size, size), resampling=Resampling.average)
    return pix.astype(np.float32) / np.float32(255.0)


def _weights(lo: float, step: float, n: int, first: int, m: int):
    """Sparse (n, m) overlap weights of n cells [lo + k*step, lo + (k+1)*step) on unit pixels first..first+m."""
    from scipy import sparse

    edges = lo + step * np.arange(n + 1)
    rows, cols, vals = [], [], []
    for k in range(n):
        a, b = edges[k], edges[k + 1]
        for i in range(int(np.floor(a)), int(np.ceil(b))):
            w = min(i + 1, b) - max(i, a)
            if w > 0:
                rows.append(k), cols.append(i - first), vals.append(w / (b - a))
    return sparse.csr_matrix((vals, (rows, cols)), shape=(n, m))


def exact_error(path: str, x_min: float, y_max: float, size: int, ovr: int | None, pix: np.ndarray) -> float:
    """Max |pix - exact area-weighted mean of the source pixels| (DN) over every pixel of the ROI.

    The ROI's 2.5 m cells are mapped onto the source grid (EPSG:32611 -> 26911 moves points by < 1 mm
    here, so the mapping is taken as the identity); each cell's mean weights the source pixels it
    overlaps by the overlap area (separable: ``Wy @ band @ Wx.T`` with sparse weights).
    """
    opts = {"overview_level": ovr} if ovr is not None else {"OVERVIEW_LEVEL": "NONE"}
    with rasterio.open(path, **opts) as src:
        sx0, sy0 = ~src.transform * (x_min, y_max)
        step = 2.5 / abs(src.transform.a)
        j0, i0 = int(np.floor(sx0)), int(np.floor(sy0))
        m = int(np.ceil(size * step)) + 2
        img = src.read(window=rasterio.windows.Window(j0, i0, m, m)).astype(np.float64)
    wy, wx = _weights(sy0, step, size, i0, m), _weights(sx0, step, size, j0, m)
    exact = np.stack([(wx @ (wy @ band).T).T for band in img])
    return float(np.max(np.abs(pix.astype(np.float64) * 255.0 - exact)))


#: The loader's readers: the default (axis-aligned averages from one windowed read) and odc-stac's
#: GDAL warper (``OdcReader(aligned_average=False)``, the loader before that path existed).
READERS = {"load": OdcReader(), "load-warp": OdcReader(aligned_average=False)}
METHODS = (*READERS, "rasterio")


def tile_bytes(path: str, x_min: float, y_max: float, size: int, ovr: int | None) -> int:
    """Compressed bytes of the tiles the ROI touches (the file's TileByteCounts): the least any
    reader of that level must fetch, headers aside."""
    opts = {"overview_level": ovr} if ovr is not None else {"OVERVIEW_LEVEL": "NONE"}
    with rasterio.open(path, **opts) as src:
        bh, bw = src.block_shapes[0]
        c0, r0 = ~src.transform * (x_min, y_max)
        c1, r1 = ~src.transform * (x_min + size * 2.5, y_max - size * 2.5)
        return sum(int(src.get_tag_item(f"BLOCK_SIZE_{i}_{j}", "TIFF", bidx=1))
                   for j in range(int(r0) // bh, (int(np.ceil(r1)) - 1) // bh + 1)
                   for i in range(int(c0) // bw, (int(np.ceil(c1)) - 1) // bw + 1))


def odc_cube(table: pd.DataFrame, items: list[pystac.Item], use_overviews: bool, reader: OdcReader):
    return s2n.load_naip(table, items=items, signer=NoSigner(), reader=reader,
                         config=LoadConfig(use_overviews=use_overviews))


# ------------------------------------------------------------------------------------------------
# 1. speed
def bench_speed(naip: Path, sizes: list[int], n_rois: int, repeats: int) -> list[dict]:
    rows = []
    item = naip_item("bench-naip", naip.as_uri())
    for size in sizes:
        corners = ROI_CORNERS[size][:n_rois]
        table = roi_table(size, corners, ["bench-naip"] * len(corners))
        for use_ovr in (True, False):
            ovr = overview_index(str(naip), use_ovr)
            cubes = {name: odc_cube(table, [item], use_ovr, rd) for name, rd in READERS.items()}
            runs = {name: (lambda cube=cube: cube.compute(scheduler="synchronous").values[:, 0]) for name, cube in cubes.items()}
            runs["rasterio"] = lambda corners=corners, ovr=ovr, size=size: np.stack(
                [rasterio_read(str(naip), x, y, size, ovr) for x, y in corners])
            first = {name: run() for name, run in runs.items()}  # warm-up (page cache, GDAL/PROJ set-up)
            err = {name: exact_error(str(naip), *corners[0], size, ovr, pix[0]) for name, pix in first.items()}
            times: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(repeats):  # alternate, so all see the same machine noise
                for name, run in runs.items():
                    t0 = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - t0)
            sec = {name: statistics.median(t) / len(corners) for name, t in times.items()}
            row = {"size": size, "overviews": use_ovr, "overview_factor": overview_factor(str(naip), ovr),
                   "n_rois": len(corners)}
            for name in runs:
                row[f"{name}_s_per_roi"] = sec[name]
                row[f"{name}_max_error_dn"] = err[name]
            row["ratio"] = sec["load"] / sec["rasterio"]
            row["ratio_warp"] = sec["load-warp"] / sec["rasterio"]
            rows.append(row)
            print(f"  speed {size:5d} px overviews={use_ovr!s:5}: "
                  + ", ".join(f"{n} {sec[n] * 1e3:.1f} ms (err {err[n]:.3f} DN)" for n in runs)
                  + f"; load/rasterio {row['ratio']:.2f}, load-warp/rasterio {row['ratio_warp']:.2f}", flush=True)
    return rows


# ------------------------------------------------------------------------------------------------
# 2. bytes
def bench_bytes(naip: Path, sizes: list[int], n_rois: int) -> list[dict]:
    server = stack.AssetServer(naip.parent)
    rows = []
    counter = 0
    path = f"/files/{naip.name}"
    try:
        for size in sizes:
            corners = ROI_CORNERS[size][:n_rois]
            for use_ovr in (True, False):
                ovr = overview_index(str(naip), use_ovr)
                per: dict[str, list[tuple[int, int]]] = {name: [] for name in METHODS}
                for x, y in corners:
                    for name in METHODS:
                        counter += 1
                        url = f"{server.url}{path}?m={counter}"  # a fresh URL: nothing from GDAL's cache
                        server.clear()
                        if name == "rasterio":
                            rasterio_read(url, x, y, size, ovr)
                        else:
                            table = roi_table(size, [(x, y)], ["bench-naip"])
                            cube = odc_cube(table, [naip_item("bench-naip", url)], use_ovr, READERS[name])
                            cube.compute(scheduler="synchronous")
                        per[name].append((server.stats.total_bytes(path), server.stats.total_requests(path)))
                raw = (size * 2.5 / NAIP_RES) ** 2 * 4  # the ROI's native pixels, uncompressed
                row = {"size": size, "overviews": use_ovr, "n_rois": len(corners), "native_uncompressed_bytes": raw,
                       "tile_bytes": statistics.mean(tile_bytes(str(naip), x, y, size, ovr) for x, y in corners)}
                for name in METHODS:
                    row[f"{name}_bytes"] = statistics.mean(b for b, _ in per[name])
                    row[f"{name}_requests"] = statistics.mean(r for _, r in per[name])
                rows.append(row)
                print(f"  bytes {size:5d} px overviews={use_ovr!s:5}: "
                      + ", ".join(f"{n} {row[n + '_bytes'] / 1e6:.2f} MB ({row[n + '_requests']:.0f} req)" for n in METHODS)
                      + f"; tiles touched {row['tile_bytes'] / 1e6:.2f} MB; native pixels {raw / 1e6:.1f} MB uncompressed",
                      flush=True)
    finally:
        server.stop()
    return rows


# ------------------------------------------------------------------------------------------------
# 3. graph build
def synthetic_tables(n: int, naip: Path, s2: dict[str, Path]) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    """N synthetic ROIs (2 NAIP captures each) and N cross-sensor ROIs (1 NAIP x 2 S2 each), own items each."""
    href = naip.as_uri()
    xs = 490300.0 + 10.0 * (np.arange(n) % 40)
    ys = 3650300.0 - 10.0 * (np.arange(n) // 40 % 40)
    sy_rows, cs_rows, sy_items, cs_items = [], [], {}, {}
    for i in range(n):
        base = {"epsg": ROI_EPSG, "x_min": xs[i], "y_max": ys[i], "res": 2.5}
        early, late = f"ca_m_sy{i:05d}_e_11_060_20120701", f"ca_m_sy{i:05d}_l_11_060_20200415"
        sy_items[early], sy_items[late] = naip_item(early, href, "2012-07-01"), naip_item(late, href, "2020-04-15")
        sy_rows += [{"roi_id": f"sy-{i}", **base, "size": 1100, "role": "early", "naip_id": early},
                    {"roi_id": f"sy-{i}", **base, "size": 1100, "role": "late", "naip_id": late}]
        nid, s2a, s2b = f"ca_m_cs{i:05d}_11_060_20200415", f"S2A_MSIL2A_cs{i:05d}_a", f"S2B_MSIL2A_cs{i:05d}_b"
        cs_items[nid] = naip_item(nid, href)
        cs_items[s2a] = s2_item(s2a, s2, "2020-04-15T18:39:21.024000Z")
        cs_items[s2b] = s2_item(s2b, s2, "2020-04-16T18:29:19.024000Z")
        for sid, dt in ((s2a, 0.0), (s2b, 1.0)):
            cs_rows.append({"roi_id": f"cs-{i}", **base, "size": 484, "naip_id": nid, "s2_id": sid, "dt_days": dt})
    return pd.DataFrame(sy_rows), pd.DataFrame(cs_rows), sy_items, cs_items


def graph_len(*arrays) -> int:
    graph: dict = {}
    for a in arrays:
        graph.update(dict(a.__dask_graph__()))
    return len(graph)


def bench_graph(naip: Path, s2: dict[str, Path], counts: list[int], repeats: int) -> list[dict]:
    rows = []
    for n in counts:
        sy, cs, sy_items, cs_items = synthetic_tables(n, naip, s2)
        t_sy, t_cs = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            cube = s2n.load_naip(sy, items=sy_items, signer=NoSigner())
            t_sy.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            cubes = s2n.load_pairs(cs, items=cs_items, signer=NoSigner())
            t_cs.append(time.perf_counter() - t0)
        row = {
            "n_rois": n, "synthetic_items": len(sy_items), "cross_sensor_items": len(cs_items),
            "synthetic_s": statistics.median(t_sy), "synthetic_tasks_data": len(cube.data.__dask_graph__()),
            "synthetic_tasks": graph_len(cube),
            "cross_sensor_s": statistics.median(t_cs),
            "cross_sensor_tasks_data": graph_len(*(c.data for c in cubes)),
            "cross_sensor_tasks": graph_len(*cubes),
            "shape_synthetic": list(cube.shape), "shape_naip_cs": list(cubes.naip.shape),
        }
        rows.append(row)
        print(f"  graph {n:5d} ROIs: synthetic {row['synthetic_s']:6.2f} s, {row['synthetic_tasks']} tasks "
              f"({row['synthetic_tasks'] / n:.1f}/ROI); cross-sensor (3 cubes) {row['cross_sensor_s']:6.2f} s, "
              f"{row['cross_sensor_tasks']} tasks ({row['cross_sensor_tasks'] / n:.1f}/ROI)", flush=True)
    # the cubes are real: one ROI of the largest of each computes
    one = cube.isel(roi=[n - 1]).compute()
    pair = [c.isel(roi=[n - 1]).compute() for c in cubes]
    assert s2n.load_failures(one, *pair).empty and not np.isnan(one.values).any() and not np.isnan(pair[1].values).any()
    return rows


# ------------------------------------------------------------------------------------------------
def table(speed: list[dict], nbytes: list[dict], graph: list[dict]) -> str:
    lines = ["", "ROI read, ms per ROI (median); error: max |pixel - exact area-weighted mean| in DN",
             f"{'ROI':>7} {'read':>6} {'load':>7} {'load-warp':>10} {'rasterio':>9} {'load/rio':>9} "
             f"{'warp/rio':>9} {'err load':>9} {'err warp':>9} {'err rio':>8}"]
    for r in speed:
        lines.append(f"{r['size']:>4} px {('x' + str(r['overview_factor'])) if r['overviews'] else 'native':>6} "
                     f"{r['load_s_per_roi'] * 1e3:7.1f} {r['load-warp_s_per_roi'] * 1e3:10.1f} "
                     f"{r['rasterio_s_per_roi'] * 1e3:9.1f} {r['ratio']:9.2f} {r['ratio_warp']:9.2f} "
                     f"{r['load_max_error_dn']:9.3f} {r['load-warp_max_error_dn']:9.3f} {r['rasterio_max_error_dn']:8.3f}")
    lines += ["", "MB read per ROI over HTTP (requests) from the 0.6 m NAIP COG",
              f"{'ROI':>7} {'overviews':>9} {'load':>14} {'load-warp':>14} {'rasterio':>14} {'tiles':>8} {'native raw':>11}"]
    for r in nbytes:
        cells = " ".join(f"{r[n + '_bytes'] / 1e6:8.2f} ({r[n + '_requests']:3.0f})" for n in METHODS)
        lines.append(f"{r['size']:>4} px {'yes' if r['overviews'] else 'no':>9} {cells} {r['tile_bytes'] / 1e6:8.2f} "
                     f"{r['native_uncompressed_bytes'] / 1e6:11.1f}")
    lines += ["", "Lazy cubes (graph build, no IO)",
              f"{'ROIs':>6} {'synthetic s':>12} {'tasks':>7} {'cross-sensor s':>15} {'tasks':>7}"]
    for r in graph:
        lines.append(f"{r['n_rois']:>6} {r['synthetic_s']:12.2f} {r['synthetic_tasks']:7d} "
                     f"{r['cross_sensor_s']:15.2f} {r['cross_sensor_tasks']:7d}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "sen2naip_xr-bench-load",
                    help="where the fixture COGs are written (kept and reused)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rois", type=int, nargs="+", default=[250, 500, 1000], help="ROI counts of the graph build")
    ap.add_argument("--speed-rois", type=int, default=2, help="ROIs per size in the speed and bytes runs (max 4)")
    ap.add_argument("--quick", action="store_true", help="1 repeat, 1 ROI per size, 50/100 ROIs")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "load.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.speed_rois, args.rois = 1, 1, [50, 100]
    naip = args.workdir / "naip_060cm.tif"
    if not naip.exists():
        t0 = time.perf_counter()
        write_naip_cog(naip)
        print(f"wrote {naip} in {time.perf_counter() - t0:.0f} s")
    s2 = write_s2_cogs(args.workdir)
    with rasterio.open(naip) as src:
        fixture = {"path": str(naip), "file_bytes": naip.stat().st_size, "shape": [src.count, src.height, src.width],
                   "res": NAIP_RES, "overviews": src.overviews(1), "block": src.block_shapes[0],
                   "compress": src.compression.name if src.compression else None}
    print(f"machine: {machine()}")
    print(f"fixture: {fixture['shape']} uint8 at {NAIP_RES} m, {fixture['file_bytes'] / 1e6:.0f} MB "
          f"({np.prod(fixture['shape']) / fixture['file_bytes']:.2f}x compression), overviews {fixture['overviews']}")
    sizes = [484, 1100]
    speed = bench_speed(naip, sizes, args.speed_rois, args.repeats)
    nbytes = bench_bytes(naip, sizes, args.speed_rois)
    graph = bench_graph(naip, s2, args.rois, args.repeats)
    print(table(speed, nbytes, graph))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M:%S"), "sen2naip_xr": s2n.__version__,
        "fixture": fixture, "speed": speed, "bytes": nbytes, "graph": graph,
    }, indent=2, default=float))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
