"""A real STAC API on loopback for the tests: PostgreSQL + PostGIS + pgstac + stac-fastapi-pgstac,
loaded with items in Planetary Computer's layout whose assets are COGs written here, served by a
Range-capable, fault-injecting HTTP server that also plays Planetary Computer's SAS token service.

The stack starts once per test process (:func:`get_stack`) and stops at exit. It never skips: if
something cannot start, every test that needs it errors with the reason.
"""

from __future__ import annotations

import atexit
import copy
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from pyproj import Transformer
from rasterio.enums import ColorInterp

REPO = Path(__file__).resolve().parents[2]
SHARED = (REPO / ".." / "shared").resolve()
PC = SHARED / "stac" / "pc"
PG_BIN = Path("/usr/lib/postgresql/15/bin")

NAIP_ACCOUNT, NAIP_CONTAINER = "naipeuwest", "naip"
S2_ACCOUNT, S2_CONTAINER = "sentinel2l2a01", "sentinel2-l2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ================================================================================================
# asset server: Range requests, faults, SAS tokens, byte counting
@dataclass
class Fault:
    kind: str  # "500", "503", "404", "403", "timeout", "truncate", "garbage" (200 with a body that is no GeoTIFF)
    remaining: int
    delay: float = 2.5


@dataclass
class AssetStats:
    requests: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    user_agents: set[str] = field(default_factory=set)
    queries: list[tuple[str, str]] = field(default_factory=list)
    token_requests: int = 0
    rejected: int = 0

    def total_bytes(self, contains: str = "") -> int:
        return sum(v for k, v in self.bytes.items() if contains in k)

    def total_requests(self, contains: str = "") -> int:
        return sum(v for k, v in self.requests.items() if contains in k)


class AssetServer:
    """Serves ``root`` over HTTP/1.1 on 127.0.0.1.

    ``/files/<path>`` serves ``root/<path>`` openly. ``/blob/<account>/<container>/<path>`` plays
    Azure blob storage: it needs a ``sig`` issued by the token endpoint ``/api/sas/v1/token/<account>/<container>``
    (Planetary Computer's ``PC_SDK_SAS_URL`` API) that has not been revoked. Faults queued with
    :meth:`fail` hit the next requests whose path ends with the given suffix.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.stats = AssetStats()
        self.faults: dict[str, list[Fault]] = {}
        self.valid_sigs: set[str] = set()
        self.token_ttl_s = 3600.0
        self._n_tokens = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def do_HEAD(self):
                server._serve(self, head=True)

            def do_GET(self):
                server._serve(self, head=False)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.sas_url = f"{self.url}/api/sas/v1/token"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    # -- control ---------------------------------------------------------------------------------
    def fail(self, suffix: str, kind: str, times: int = 1, delay: float = 2.5) -> None:
        with self._lock:
            self.faults.setdefault(suffix, []).append(Fault(kind, times, delay))

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.stats = AssetStats()

    def revoke_tokens(self) -> None:
        """Every token issued so far stops working (as if expired)."""
        with self._lock:
            self.valid_sigs.clear()

    def blob_rewrite(self) -> tuple[tuple[str, str], ...]:
        return tuple(
            (f"https://{acc}.blob.core.windows.net/", f"{self.url}/blob/{acc}/")
            for acc in (NAIP_ACCOUNT, S2_ACCOUNT)
        )

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- serving ---------------------------------------------------------------------------------
    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for suffix, faults in self.faults.items():
                if path.endswith(suffix):
                    for f in faults:
                        if f.remaining > 0:
                            f.remaining -= 1
                            return f
        return None

    def _token(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self._n_tokens += 1
            self.stats.token_requests += 1
            sig = f"tok{self._n_tokens}"
            self.valid_sigs.add(sig)
        now = datetime.now(UTC)
        expiry = now + timedelta(seconds=self.token_ttl_s)
        st, se = now.strftime("%Y-%m-%dT%H:%M:%SZ"), expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
        body = json.dumps({"msft:expiry": se, "token": f"st={st}&se={se}&sp=rl&sv=2021-06-08&sr=c&sig={sig}"}).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _error(self, h: BaseHTTPRequestHandler, code: int) -> None:
        body = f"<Error><Code>{code}</Code></Error>".encode()
        h.send_response(code)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _serve(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        parts = urlsplit(h.path)
        path, query = parts.path, parts.query
        if path.startswith("/api/sas/v1/token/"):
            return self._token(h)
        with self._lock:
            self.stats.requests[path] = self.stats.requests.get(path, 0) + 1
            self.stats.user_agents.add(h.headers.get("User-Agent", ""))
            self.stats.queries.append((path, query))
        if path.startswith("/blob/"):
            sig = parse_qs(query).get("sig", [""])[0]
            if sig not in self.valid_sigs:
                with self._lock:
                    self.stats.rejected += 1
                return self._error(h, 403)
            rel = path[len("/blob/"):]
        elif path.startswith("/files/"):
            rel = path[len("/files/"):]
        else:
            return self._error(h, 404)
        fault = self._take_fault(path)
        if fault is not None and fault.kind in ("500", "502", "503", "404", "403"):
            return self._error(h, int(fault.kind))
        if fault is not None and fault.kind == "timeout":
            time.sleep(fault.delay)
        if fault is not None and fault.kind == "garbage":  # e.g. a proxy's HTML page instead of the file
            body = b"<html><body>not a GeoTIFF</body></html>\n" * 64
            h.send_response(200)
            h.send_header("Content-Type", "text/html")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if not head:
                h.wfile.write(body)
            return None
        f = (self.root / rel).resolve()
        if not str(f).startswith(str(self.root.resolve())) or not f.is_file():
            return self._error(h, 404)
        size = f.stat().st_size
        rng = h.headers.get("Range")
        start, end, status = 0, size - 1, 200
        if rng:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if not m:
                return self._error(h, 416)
            a, b = m.groups()
            if a == "":
                start, end = max(size - int(b), 0), size - 1
            else:
                start, end = int(a), min(int(b) if b else size - 1, size - 1)
            if start >= size:
                return self._error(h, 416)
            status = 206
        n = end - start + 1
        h.send_response(status)
        h.send_header("Content-Type", "image/tiff")
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("Content-Length", str(n))
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        h.end_headers()
        if head:
            return
        with open(f, "rb") as fh:
            fh.seek(start)
            data = fh.read(n)
        if fault is not None and fault.kind == "truncate":
            data = data[: max(n // 2, 1)]
            h.close_connection = True
        h.wfile.write(data)
        with self._lock:
            self.stats.bytes[path] = self.stats.bytes.get(path, 0) + len(data)
        if fault is not None and fault.kind == "truncate":
            h.wfile.flush()
            h.connection.shutdown(socket.SHUT_RDWR)


# ================================================================================================
# synthetic but realistic rasters: values are functions of world coordinates, so tests know every pixel
def naip_value(x: np.ndarray, y: np.ndarray, band: int, salt: int) -> np.ndarray:
    """uint8 NAIP value of the 10 m block holding world point (x, y): 3..252."""
    bx, by = np.floor(x / 10.0).astype(np.int64), np.floor(y / 10.0).astype(np.int64)
    return ((bx * 7 + by * 11 + band * 50 + salt * 13) % 250 + 3).astype(np.uint8)


def s2_dn(x: np.ndarray, y: np.ndarray, band: int, salt: int) -> np.ndarray:
    """uint16 S2 DN of the 10 m pixel holding (x, y): 1001..3000-ish."""
    bx, by = np.floor(x / 10.0).astype(np.int64), np.floor(y / 10.0).astype(np.int64)
    return ((bx * 13 + by * 7 + band * 101 + salt * 37) % 1900 + 1001).astype(np.uint16)


def centres(x0: float, y1: float, res: float, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    xs = x0 + res * (np.arange(w) + 0.5)
    ys = y1 - res * (np.arange(h) + 0.5)
    return np.meshgrid(xs, ys)


def write_cog(path: Path, data: np.ndarray, *, crs: str, transform: Affine, nodata=None,
              colorinterp=None, overviews: bool = True, blocksize: int = 256) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.tif")
    count, h, w = data.shape
    prof = dict(driver="GTiff", width=w, height=h, count=count, dtype=data.dtype.name, crs=crs, transform=transform,
                nodata=nodata, tiled=True, blockxsize=blocksize, blockysize=blocksize, compress="deflate")
    if colorinterp is not None:
        prof.update(photometric="RGB")
    with rasterio.open(tmp, "w", **prof) as dst:
        dst.write(data)
        if overviews:  # built before NIR is tagged alpha, so GDAL does not mask RGB by it
            dst.build_overviews([2, 4, 8], rasterio.enums.Resampling.average)
    if colorinterp is not None:  # as real NAIP files do: band 4 (NIR) tagged alpha
        with rasterio.open(tmp, "r+") as dst:
            dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    rasterio.shutil.copy(tmp, path, driver="COG", compress="deflate", blocksize=blocksize, overviews="force_use_existing")
    tmp.unlink()


# ================================================================================================
# the scenario: UTM 11N near San Diego; ROI corners on the 10 m grid
def _ll(epsg: int, x: float, y: float) -> tuple[float, float]:
    return Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True).transform(x, y)


def footprint(epsg: int, x0: float, y0: float, x1: float, y1: float) -> dict:
    ring = [_ll(epsg, x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))]
    return {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}


#: Cross-sensor ROIs (UTM 11N corners; 484 px x 2.5 m = 1210 m). R4 has no NAIP.
CS_ROIS = {"R1": (491000.0, 3649000.0), "R2": (494000.0, 3649000.0), "R3": (491000.0, 3646000.0), "R4": (494000.0, 3646000.0)}
#: Synthetic ROI (1100 px x 2.5 m = 2750 m).
SY_ROIS = {"S1": (490500.0, 3649500.0)}
S2_TILE = (490000.0, 3643000.0, 496000.0, 3650000.0)  # x0, y0, x1, y1 (10 m)

#: NAIP captures: name -> (extent x0, y0, x1, y1 in EPSG:26911, date, salt, state). 1 m.
NAIP = {
    "n1": ((490900.0, 3647700.0, 492300.0, 3649100.0), "2022-05-15", 1, "ca"),  # R1
    "n2": ((493900.0, 3647700.0, 495300.0, 3649100.0), "2022-05-15", 2, "ca"),  # R2 (fault target)
    "n3": ((490900.0, 3644700.0, 492300.0, 3646100.0), "2019-08-01", 3, "ca"),  # R3
    "sy2010": ((490400.0, 3646600.0, 493400.0, 3649600.0), "2010-05-01", 4, "ca"),  # S1 + R1, too old
    "sy2012": ((490400.0, 3646600.0, 493400.0, 3649600.0), "2012-07-01", 5, "ca"),  # S1 early
    "sy2016": ((490400.0, 3646600.0, 493400.0, 3649600.0), "2016-06-01", 6, "ca"),
    "sy2018": ((490400.0, 3646600.0, 493400.0, 3649600.0), "2018-06-20", 7, "ca"),  # S1 late
}
#: Sentinel-2 captures: name -> (datetime, baseline, cloud cover, salt, platform)
S2 = {
    "a": ("2022-05-15T18:39:21.024000Z", "04.00", 5.0, 1, "Sentinel-2A"),  # pairs R1, R2 (dt 0)
    "b": ("2022-05-16T18:29:19.024000Z", "04.00", 40.0, 2, "Sentinel-2B"),  # pairs R1, R2 (dt 1), cloudy SCL on R1
    "c": ("2022-05-18T18:39:21.024000Z", "04.00", 1.0, 3, "Sentinel-2A"),  # dt 3: never paired
    "d": ("2019-08-02T18:39:21.024000Z", "02.13", 12.5, 4, "Sentinel-2A"),  # pairs R3 (dt 1), no offset
}


def scl_classes(x: np.ndarray, y: np.ndarray, name: str) -> np.ndarray:
    """SCL (20 m): vegetation (4) everywhere; clouds (9) on R1's left half in capture b;
    two 20 m shadow pixels (3) in R1 in capture a."""
    out = np.full(x.shape, 4, dtype=np.uint8)
    r1x, r1y = CS_ROIS["R1"]
    if name == "b":
        out[(x >= r1x) & (x < r1x + 600) & (y <= r1y) & (y > r1y - 1210)] = 9
    if name == "a":
        out[(np.abs(x - (r1x + 110)) < 10) & (np.abs(y - (r1y - 110)) < 10)] = 3
        out[(np.abs(x - (r1x + 130)) < 10) & (np.abs(y - (r1y - 110)) < 10)] = 3
    return out


#: S2 pixels set to 0 (no data) in capture a's B04: 10 m cells (col, row) counted from R1's corner
S2_NODATA_CELLS = ((3, 5), (4, 5))


def _naip_href(name: str) -> str:
    date = NAIP[name][1].replace("-", "")
    year = date[:4]
    return (f"https://{NAIP_ACCOUNT}.blob.core.windows.net/{NAIP_CONTAINER}/v002/ca/{year}/ca_100cm_{year}/"
            f"32117/m_3211700_{name}_11_100_{date}.tif")


def _s2_base(name: str) -> str:
    d = S2[name][0]
    ymd = d[:10].replace("-", "")
    return (f"https://{S2_ACCOUNT}.blob.core.windows.net/{S2_CONTAINER}/11/S/MS/{d[:4]}/{d[5:7]}/{d[8:10]}/"
            f"S2X_MSIL2A_{ymd}_N0400_R070_T11SMS_{name}.SAFE/GRANULE/IMG_DATA")


def _local(href: str, root: Path) -> Path:
    for acc in (NAIP_ACCOUNT, S2_ACCOUNT):
        pre = f"https://{acc}.blob.core.windows.net/"
        if href.startswith(pre):
            return root / acc / href[len(pre):]
    raise ValueError(href)


def write_rasters(root: Path) -> None:
    for name, ((x0, y0, x1, y1), _, salt, _) in NAIP.items():
        w, h = int(x1 - x0), int(y1 - y0)
        xx, yy = centres(x0, y1, 1.0, w, h)
        data = np.stack([naip_value(xx, yy, b, salt) for b in range(4)])
        if name == "n1":  # NIR == 0 on a 40 m square of R1 (a tagged-alpha band must stay data)
            rx, ry = CS_ROIS["R1"]
            data[3][(xx >= rx) & (xx < rx + 40) & (yy <= ry) & (yy > ry - 40)] = 0
        write_cog(_local(_naip_href(name), root), data, crs="EPSG:26911",
                  transform=Affine(1.0, 0, x0, 0, -1.0, y1), colorinterp="rgba")
    x0, y0, x1, y1 = S2_TILE
    for name, (_, _, _, salt, _) in S2.items():
        w, h = int((x1 - x0) / 10), int((y1 - y0) / 10)
        xx, yy = centres(x0, y1, 10.0, w, h)
        base = _s2_base(name)
        for b, asset in enumerate(("B04", "B03", "B02", "B08")):
            dn = s2_dn(xx, yy, b, salt)[None]
            if name == "a" and asset == "B04":
                rx, ry = CS_ROIS["R1"]
                for cx, cy in S2_NODATA_CELLS:
                    dn[0, int((y1 - ry) / 10) + cy, int((rx - x0) / 10) + cx] = 0
            write_cog(_local(f"{base}/{asset}_10m.tif", root), dn, crs="EPSG:32611",
                      transform=Affine(10.0, 0, x0, 0, -10.0, y1), nodata=0)
        xx2, yy2 = centres(x0, y1, 20.0, w // 2, h // 2)
        write_cog(_local(f"{base}/SCL_20m.tif", root), scl_classes(xx2, yy2, name)[None], crs="EPSG:32611",
                  transform=Affine(20.0, 0, x0, 0, -20.0, y1), nodata=0)


# ================================================================================================
# STAC items in Planetary Computer's layout (templates: ../shared/stac/pc)
def _load_pc(name: str) -> dict:
    return json.loads((PC / name).read_text())


def _place(item: dict, epsg: int, x0: float, y0: float, x1: float, y1: float) -> None:
    """Set an item's geometry (the projected box as lon/lat) and its bbox."""
    geom = footprint(epsg, x0, y0, x1, y1)
    item["geometry"] = geom
    lons = [p[0] for p in geom["coordinates"][0]]
    lats = [p[1] for p in geom["coordinates"][0]]
    item["bbox"] = [min(lons), min(lats), max(lons), max(lats)]


def naip_items() -> list[dict]:
    tpl = _load_pc("item-naip-pa_m_4108053_se_17_1_20150725_20151201.json")
    out = []
    for name, ((x0, y0, x1, y1), date, _, state) in NAIP.items():
        it = copy.deepcopy(tpl)
        ymd = date.replace("-", "")
        it["id"] = f"{state}_m_3211700_{name}_11_1_{ymd}_{ymd[:4]}1201"
        _place(it, 26911, x0, y0, x1, y1)
        p = it["properties"]
        p.update({
            "datetime": f"{date}T00:00:00Z", "naip:year": date[:4], "naip:state": state,
            "gsd": 1.0000000000000049 if name == "n1" else 1.0,  # PC's float noise
            "proj:epsg": 26911, "proj:bbox": [x0, y0, x1, y1], "proj:shape": [int(y1 - y0), int(x1 - x0)],
            "proj:transform": [1.0, 0.0, x0, 0.0, -1.0, y1, 0.0, 0.0, 1.0],
        })
        it["assets"]["image"]["href"] = _naip_href(name)
        assert "raster:bands" not in it["assets"]["image"]  # PC layout: only eo:bands
        for k in ("metadata", "thumbnail"):
            it["assets"][k]["href"] = _naip_href(name).replace(".tif", ".txt" if k == "metadata" else ".200.jpg")
        it["links"] = []
        out.append(it)
    return out


def s2_items() -> list[dict]:
    tpl = _load_pc("item-sentinel-2-l2a-S2B_MSIL2A_20220612T182919_R027_T24XWR_20220613T123251.json")
    x0, y0, x1, y1 = S2_TILE
    out = []
    for name, (dt, baseline, cloud, _, platform) in S2.items():
        it = copy.deepcopy(tpl)
        stamp = dt[:19].replace("-", "").replace(":", "")
        it["id"] = f"S2{platform[-1]}_MSIL2A_{stamp}_R070_T11SMS_{name}"
        _place(it, 32611, x0, y0, x1, y1)
        p = it["properties"]
        p.update({
            "datetime": dt, "platform": platform, "proj:epsg": 32611, "s2:mgrs_tile": "11SMS",
            "s2:processing_baseline": baseline, "eo:cloud_cover": cloud,
            "s2:mean_solar_azimuth": 130.0 + len(name), "s2:mean_solar_zenith": 25.5,
        })
        base = _s2_base(name)
        for key, a in it["assets"].items():
            if key in ("B04", "B03", "B02", "B08"):
                a["href"] = f"{base}/{key}_10m.tif"
                a.update({"proj:bbox": [x0, y0, x1, y1], "proj:shape": [int((y1 - y0) / 10), int((x1 - x0) / 10)],
                          "proj:transform": [10.0, 0.0, x0, 0.0, -10.0, y1]})
            elif key == "SCL":
                a["href"] = f"{base}/SCL_20m.tif"
                a.update({"proj:bbox": [x0, y0, x1, y1], "proj:shape": [int((y1 - y0) / 20), int((x1 - x0) / 20)],
                          "proj:transform": [20.0, 0.0, x0, 0.0, -20.0, y1]})
            elif "proj:transform" in a:  # other bands: same tile grid, files not written (never read)
                res = a["proj:transform"][0]
                a["href"] = f"{base}/{key}.tif"
                a.update({"proj:bbox": [x0, y0, x1, y1], "proj:shape": [int((y1 - y0) / res), int((x1 - x0) / res)],
                          "proj:transform": [res, 0.0, x0, 0.0, -res, y1]})
        it["links"] = []
        out.append(it)
    return out


QUERYABLES = {
    "$schema": "https://json-schema.org/draft/2019-09/schema",
    "type": "object",
    "properties": {
        "eo:cloud_cover": {"type": "number", "minimum": 0, "maximum": 100},
        "s2:processing_baseline": {"type": "string"},
        "s2:mgrs_tile": {"type": "string"},
        "naip:year": {"type": "string"},
        "naip:state": {"type": "string"},
        "gsd": {"type": "number"},
    },
}


# ================================================================================================
# the stack
@dataclass
class Stack:
    url: str
    assets: AssetServer
    tmp: Path
    naip: list[dict]
    s2: list[dict]
    procs: list[subprocess.Popen]
    pgdata: Path
    log: Path
    dsn: str = ""  # the pgstac database (for loading more collections, e.g. s2n_dense.load)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata),
                        "-m", "fast", "-w", "stop"], capture_output=True)
        self.assets.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def load_config(self, **kw):
        from sen2naip_xr.load import LoadConfig, RetryPolicy

        env = {"GDAL_HTTP_TIMEOUT": "2", "GDAL_HTTP_CONNECTTIMEOUT": "2", "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
               "GDAL_HTTP_MAX_RETRY": "0", "VSI_CACHE": "FALSE"}
        env.update(kw.pop("gdal_env", {}))
        kw.setdefault("retry", RetryPolicy(max_attempts=3, backoff_s=0.05, max_backoff_s=0.2, sign_retries=0))
        return LoadConfig(href_rewrite=self.assets.blob_rewrite(), gdal_env=env, **kw)


def _run(cmd: list[str], log: Path, **kw) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    with open(log, "a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n{r.stdout}{r.stderr}\n")
    if r.returncode:
        raise RuntimeError(f"{cmd[0]} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    import requests

    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the STAC API exited with {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the STAC API at {url} did not answer in {timeout} s: {log.read_text()[-3000:]}")


def start_stack() -> Stack:
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(f"PostgreSQL 15 is not installed ({PG_BIN}); run `bash scripts/install-test-services.sh`")
    if not PC.is_dir():
        raise RuntimeError(f"the shared folder {PC} is missing (CI provides ../shared beside the clone)")
    import psycopg
    from pypgstac.db import PgstacDB
    from pypgstac.load import Loader, Methods
    from pypgstac.migrate import Migrate

    tmp = Path(tempfile.mkdtemp(prefix="s2n-stac-"))
    tmp.chmod(0o755)
    log = tmp / "stack.log"
    pgdata = tmp / "pg"
    pgdata.mkdir()
    shutil.chown(pgdata, "postgres", "postgres") if os.geteuid() == 0 else None
    root = tmp / "assets"
    write_rasters(root)
    assets = AssetServer(root)
    procs: list[subprocess.Popen] = []
    stack = Stack("", assets, tmp, naip_items(), s2_items(), procs, pgdata, log)
    try:
        pg_port = free_port()
        pre = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        _run([*pre, str(PG_BIN / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust", "-E", "UTF8"], log)
        _run([*pre, str(PG_BIN / "pg_ctl"), "-D", str(pgdata), "-w", "-l", str(pgdata / "server.log"), "start", "-o",
              f"-c listen_addresses=127.0.0.1 -p {pg_port} -k {pgdata} -c fsync=off"], log)
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{pg_port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE pgstac")
        dsn = f"postgresql://postgres:x@127.0.0.1:{pg_port}/pgstac"
        stack.dsn = dsn
        db = PgstacDB(dsn=dsn)
        Migrate(db).run_migration()
        loader = Loader(db)
        cols = [_load_pc("collection-naip.json"), _load_pc("collection-sentinel-2-l2a.json")]
        for c in cols:
            c["links"] = [lk for lk in c.get("links", []) if lk.get("rel") == "license"]
        loader.load_collections(iter(cols), insert_mode=Methods.upsert)
        db.connect().execute(
            "SELECT upsert_queryables(%s::jsonb, %s::text[], %s::text[], %s)",
            [json.dumps(QUERYABLES), None, None, False],
        )
        db.connect().execute("UPDATE pgstac.pgstac_settings SET value='on' WHERE name='context'")
        db.connect().commit()
        loader.load_items(iter(stack.naip + stack.s2), insert_mode=Methods.upsert)
        db.close()
        api_port = free_port()
        env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(pg_port), "PGUSER": "postgres", "PGPASSWORD": "x",
               "PGDATABASE": "pgstac", "POSTGRES_USER": "postgres", "POSTGRES_PASS": "x",
               "POSTGRES_HOST_READER": "127.0.0.1", "POSTGRES_HOST_WRITER": "127.0.0.1",
               "POSTGRES_PORT": str(pg_port), "POSTGRES_DBNAME": "pgstac"}
        fh = open(tmp / "api.log", "w")  # noqa: SIM115 (lives as long as the process)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "stac_fastapi.pgstac.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(api_port), "--log-level", "warning"],
            env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=tmp,
        ))
        stack.url = f"http://127.0.0.1:{api_port}"
        _wait_http(stack.url + "/collections", procs[0], tmp / "api.log")
    except Exception:
        detail = log.read_text()[-3000:] if log.exists() else ""
        stack.stop()
        raise RuntimeError(f"the STAC test stack could not start; log tail:\n{detail}") from None
    return stack


_STACK: Stack | None = None
_ERROR: BaseException | None = None


def get_stack() -> Stack:
    """The process-wide stack, started on first use (errors, never skips, when it cannot start)."""
    global _STACK, _ERROR
    if _ERROR is not None:
        raise RuntimeError(f"the STAC test stack failed to start earlier: {_ERROR}")
    if _STACK is None:
        os.environ["PC_SDK_SAS_URL"] = "placeholder"
        try:
            _STACK = start_stack()
        except BaseException as exc:
            _ERROR = exc
            raise
        atexit.register(_STACK.stop)
        os.environ["PC_SDK_SAS_URL"] = _STACK.assets.sas_url
        from planetary_computer import sas
        from planetary_computer.settings import Settings

        Settings.get.cache_clear()
        sas.TOKEN_CACHE.clear()
    return _STACK


def scenario_rois(kind: str = "cross-sensor"):
    """The scenario's ROIs, built as users do (rois_from_points on their centres)."""
    from sen2naip_xr.catalog import rois_from_points

    table = CS_ROIS if kind == "cross-sensor" else SY_ROIS
    side = (484 if kind == "cross-sensor" else 1100) * 2.5
    lon, lat = zip(*(_ll(32611, x + side / 2, y - side / 2) for x, y in table.values()), strict=True)
    return rois_from_points(lon, lat, kind=kind)


def expected_naip(name: str, x_min: float, y_max: float, size: int = 484) -> np.ndarray:
    """Float32 (band, y, x) the loader must return for NAIP capture ``name`` on an ROI grid."""
    xx, yy = centres(x_min, y_max, 2.5, size, size)
    salt = NAIP[name][2]
    out = np.stack([naip_value(xx, yy, b, salt) for b in range(4)]).astype(np.float32)
    if name == "n1":
        rx, ry = CS_ROIS["R1"]
        out[3][(xx >= rx) & (xx < rx + 40) & (yy <= ry) & (yy > ry - 40)] = 0
    return out / np.float32(255.0)


def expected_s2(name: str, x_min: float, y_max: float, size: int = 121) -> np.ndarray:
    xx, yy = centres(x_min, y_max, 10.0, size, size)
    salt, baseline = S2[name][3], S2[name][1]
    off = np.float32(-1000.0 if float(baseline) >= 4 else 0.0)
    out = np.stack([s2_dn(xx, yy, b, salt) for b in range(4)]).astype(np.float32)
    if name == "a" and (x_min, y_max) == CS_ROIS["R1"]:
        for cx, cy in S2_NODATA_CELLS:
            out[0, cy, cx] = np.nan
    return (out + off) / np.float32(10000.0)
