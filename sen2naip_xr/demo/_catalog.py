"""The embedded demo catalog: procedural NAIP scenes, Sentinel-2 scenes made from them by a *known*
degradation, written as COGs to a local folder and described by STAC items in Planetary Computer's layout.

The scenes are served by :class:`sen2naip_xr.catalog.OfflineCatalog`, the offline STAC backend of the
catalog stage, which answers ``search(...)`` like a pystac-client ``Client`` (collections, bbox/intersects,
datetime, the ``eo:cloud_cover`` CQL2 filter), so :func:`sen2naip_xr.search_pairs`,
:func:`sen2naip_xr.load_pairs` and the pipelines run on it through the same code as on a real STAC API.

The truth (``demo_truth``): for each cross-sensor ROI, with NAIP ``N`` as the loader reads it (2.5 m),

    S2 = blur_downsample(shift(N ** (1 / gamma_b), 4 * (dy, dx)), sigma_b) + noise_sd * n(0, 1)

written as uint16 DN ``round(S2 * 10000) + 1000`` (processing baseline 04.00), ``(dy, dx)`` the ROI's
shift in 10 m pixels, ``n`` the package's counter-based normal stream. Cloudy captures set SCL class 9
(and bright cloud reflectance) over blobs; one ROI is cloudy in every capture, one has a shift above
the QA threshold.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pystac

from sen2naip_xr import _rng
from sen2naip_xr._const import HR_RES, LR_RES, S2_ASSETS
from sen2naip_xr._safe import dumps_strict
from sen2naip_xr.catalog import OfflineCatalog
from sen2naip_xr.errors import InputError, StoreError

__all__ = ["DemoCatalog", "DemoTruth", "EmbeddedCatalog", "build_demo_catalog", "roi_table"]

#: The in-process STAC API the demo scenes are served by (:class:`sen2naip_xr.catalog.OfflineCatalog`).
EmbeddedCatalog = OfflineCatalog

EPSG = 32611
#: Upper-left corner of the demo region (UTM 11N, near San Diego; on the 10 m grid).
ORIGIN = (480_000.0, 3_660_000.0)
NAIP_GSD = 1.25  # file resolution: the COG's first overview is exactly the 2.5 m grid the loader reads
#: The procedural scenes (:func:`sen2naip_xr.scenes.make_scene`) are darker than NAIP; raised to this power
#: their band medians (about 0.36, 0.48, 0.37, 0.66) are those of typical NAIP DN / 255.
NAIP_BRIGHTNESS = 0.6
#: ... and carry per-pixel speckle and sharp texture that NAIP (0.6 m averaged to 2.5 m) does not: smoothed by
#: a Gaussian of this sd in file pixels (1.25 m). Without it, the S2 made with the realistic gammas differs from
#: the histogram-matched NAIP by a spectral angle of 2.5-5 degrees (the blur of a strong power law is not the
#: power of the blur) and QA2 (max 2 degrees) drops most demo pairs; with it, 0.5-1.5 degrees at 128 and 484 px.
NAIP_SMOOTH_PX = 6.0


def _naip_scene(n: int, seed: int) -> np.ndarray:
    """A procedural scene of ``n`` x ``n`` file pixels with NAIP's brightness and smoothness."""
    from scipy import ndimage

    from sen2naip_xr.scenes import make_scene

    scene = ndimage.gaussian_filter(make_scene(n, seed=seed), (0, NAIP_SMOOTH_PX, NAIP_SMOOTH_PX), mode="reflect")
    return np.clip(scene, 0, 1) ** NAIP_BRIGHTNESS
MARGIN_HR = 64  # HR pixels of NAIP around each ROI (the blur's support is 13 px)
_S2_DATES = ("2022-06-14T18:39:21.024000Z", "2022-06-15T18:29:19.024000Z")
_NAIP_DATE = "2022-06-14"
_SY_DATES = ("2014-07-02", "2020-06-20")


@dataclass(frozen=True)
class DemoTruth:
    """The degradation that made the demo's Sentinel-2 scenes from its NAIP scenes."""

    gamma: tuple[float, ...] = (0.33, 0.33, 0.35, 0.46)
    """Per-band gamma (R, G, B, NIR): S2 = NAIP ** (1 / gamma). The published model's median (gamma_mvn at
    p50: 0.332, 0.326, 0.353, 0.457), so that, as on real data, Sentinel-2 is about 3.5 times darker than
    NAIP and the published harmonizers bring NAIP to it."""
    sigma: tuple[float, ...] = (3.2, 2.8, 2.6, 3.6)
    """Per-band Gaussian blur sigma in 2.5 m pixels (then bilinear 1/4, ``sen2naip_xr.blur_downsample``)."""
    noise_sd: float = 0.001
    """Sd of the additive Gaussian noise, in reflectance, independent per pixel and band."""
    shifts: dict[str, tuple[float, float]] = field(default_factory=dict)
    """ROI id -> (dy, dx) shift of S2 against NAIP, in 10 m pixels (positive: content moves down/right)."""
    cloudy: dict[str, list[str]] = field(default_factory=dict)
    """S2 item id -> ROI ids it has clouds over (SCL 9)."""
    blank: list[str] = field(default_factory=list)
    """NAIP item ids with a blank (no-data) area."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shifts"] = {k: list(v) for k, v in sorted(self.shifts.items())}
        d["formula"] = ("S2 = blur_downsample(shift(NAIP ** (1/gamma), 4*(dy, dx)), sigma) + noise_sd*N(0,1); "
                        "DN = round(S2*10000) + 1000 (baseline 04.00)")
        return d


# ------------------------------------------------------------------------------------------------
# ROI tables of any size (the demo and the tests use small ROIs)
def roi_table(corners: list[tuple[float, float]], *, size: int, kind: str, epsg: int = EPSG) -> pd.DataFrame:
    """An ROI table (the columns of :func:`sen2naip_xr.sample_rois`) for upper-left corners in ``epsg``."""
    from pyproj import Transformer
    from shapely.geometry import Polygon

    from sen2naip_xr.catalog import ROI_COLUMNS

    inv = Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True)
    side = size * HR_RES
    rows = []
    for x0, y1 in corners:
        ring = [inv.transform(x, y) for x, y in ((x0, y1), (x0 + side, y1), (x0 + side, y1 - side), (x0, y1 - side))]
        lon, lat = inv.transform(x0 + side / 2, y1 - side / 2)
        lons, lats = [p[0] for p in ring], [p[1] for p in ring]
        rows.append({
            "roi_id": f"{'cs' if kind == 'cross-sensor' else 'sy'}-{epsg}-{x0:.0f}-{y1:.0f}", "kind": kind,
            "lon": lon, "lat": lat, "epsg": epsg, "x_min": x0, "y_max": y1, "size": size, "res": HR_RES,
            "west": min(lons), "south": min(lats), "east": max(lons), "north": max(lats),
            "geometry": Polygon(ring).wkt,
        })
    return pd.DataFrame(rows, columns=list(ROI_COLUMNS))


# ------------------------------------------------------------------------------------------------
# rasters
def _write_cog(path: Path, data: np.ndarray, *, transform, nodata=None, alpha_nir: bool = False,
               overviews: tuple[int, ...] = (2, 4)) -> None:
    import rasterio
    import rasterio.shutil
    from rasterio.enums import ColorInterp, Resampling

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.tif")
    count, h, w = data.shape
    prof = dict(driver="GTiff", width=w, height=h, count=count, dtype=data.dtype.name, crs=f"EPSG:{EPSG}",
                transform=transform, nodata=nodata, tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    if alpha_nir:
        prof["photometric"] = "RGB"
    with rasterio.open(tmp, "w", **prof) as dst:
        dst.write(data)
        if overviews:
            dst.build_overviews(list(overviews), Resampling.average)
    if alpha_nir:  # as real NAIP files do: band 4 (NIR) tagged alpha
        with rasterio.open(tmp, "r+") as dst:
            dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    rasterio.shutil.copy(tmp, path, driver="COG", compress="deflate", blocksize=256, overviews="force_use_existing")
    tmp.unlink()


def _read_25(path: Path, x0: float, y1: float, n: int) -> np.ndarray:
    """NAIP on the 2.5 m grid at (x0, y1), n x n, read the way the load stage reads it."""
    from affine import Affine
    from odc.geo.geobox import GeoBox

    from sen2naip_xr.load import OdcReader

    gbox = GeoBox((n, n), Affine(HR_RES, 0.0, x0, 0.0, -HR_RES, y1), f"EPSG:{EPSG}")
    pix = OdcReader()(str(path), band=0, geobox=gbox, resampling="average", use_overviews=True, dtype="float32",
                      fill=np.nan)
    return pix / np.float32(255.0)


def _blob(rng: np.random.Generator, shape: tuple[int, int], frac: float) -> np.ndarray:
    """A smooth random mask covering about ``frac`` of the image."""
    from scipy import ndimage

    f = ndimage.gaussian_filter(rng.standard_normal(shape), max(shape) / 8, mode="wrap")
    return f > np.quantile(f, 1 - frac)


def _s2_patch(naip: np.ndarray, truth: DemoTruth, shift: tuple[float, float], key: int) -> np.ndarray:
    """Reflectance at 10 m of an HR NAIP patch (with margin) under the truth; margin cropped by the caller."""
    import xarray as xr
    from scipy import ndimage

    from sen2naip_xr.ops import blur_downsample

    g = np.clip(naip, 0, None) ** (1.0 / np.asarray(truth.gamma, np.float32)[:, None, None])
    dy, dx = shift
    g = np.stack([ndimage.shift(b, (4 * dy, 4 * dx), order=3, mode="nearest") for b in g]).astype(np.float32)
    lr = blur_downsample(xr.DataArray(g, dims=("band", "y", "x")), sigma=truth.sigma).values
    return lr + np.float32(truth.noise_sd) * _rng.normal(key, lr.shape).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# items in Planetary Computer's layout
def _footprint(x0: float, y0: float, x1: float, y1: float) -> dict:
    from pyproj import Transformer

    inv = Transformer.from_crs(f"EPSG:{EPSG}", "EPSG:4326", always_xy=True)
    ring = [list(inv.transform(x, y)) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))]
    return {"type": "Polygon", "coordinates": [ring]}


def _bbox(geom: dict) -> list[float]:
    ring = geom["coordinates"][0]
    return [min(p[0] for p in ring), min(p[1] for p in ring), max(p[0] for p in ring), max(p[1] for p in ring)]


_EO = "https://stac-extensions.github.io/eo/v1.0.0/schema.json"
_PROJ = "https://stac-extensions.github.io/projection/v1.0.0/schema.json"
_VIEW = "https://stac-extensions.github.io/view/v1.0.0/schema.json"


def _naip_item(item_id: str, href: Path, date: str, bounds: tuple[float, float, float, float]) -> pystac.Item:
    x0, y0, x1, y1 = bounds
    geom = _footprint(x0, y0, x1, y1)
    props = {
        "gsd": NAIP_GSD, "naip:year": date[:4], "naip:state": "ca", "proj:epsg": EPSG,
        "proj:bbox": [x0, y0, x1, y1], "proj:shape": [round((y1 - y0) / NAIP_GSD), round((x1 - x0) / NAIP_GSD)],
        "proj:transform": [NAIP_GSD, 0.0, x0, 0.0, -NAIP_GSD, y1, 0.0, 0.0, 1.0],
    }
    it = pystac.Item(item_id, geom, _bbox(geom), datetime.fromisoformat(f"{date}T00:00:00+00:00"), props,
                     stac_extensions=[_EO, _PROJ], collection="naip")
    it.add_asset("image", pystac.Asset(str(href), media_type="image/tiff; application=geotiff; profile=cloud-optimized",
                                       roles=["data"], title="RGBIR COG tile", extra_fields={"eo:bands": [
                                           {"name": "Red", "common_name": "red"}, {"name": "Green", "common_name": "green"},
                                           {"name": "Blue", "common_name": "blue"},
                                           {"name": "NIR", "common_name": "nir", "description": "near-infrared"}]}))
    return it


def _s2_item(item_id: str, folder: Path, dt: str, cloud: float, bounds, k: int) -> pystac.Item:
    x0, y0, x1, y1 = bounds
    geom = _footprint(x0, y0, x1, y1)
    props = {
        "platform": "Sentinel-2A" if k % 2 == 0 else "Sentinel-2B", "proj:epsg": EPSG, "instruments": ["msi"],
        "s2:mgrs_tile": "11SMS", "constellation": "Sentinel 2", "eo:cloud_cover": cloud,
        "s2:product_type": "S2MSI2A", "s2:processing_baseline": "04.00",
        "s2:mean_solar_zenith": 22.5 + k, "s2:mean_solar_azimuth": 128.0 + 3 * k,
        "view:incidence_angle": 4.2 + k, "view:azimuth": 104.0 - 2 * k,
        "s2:product_uri": f"{item_id.split('_R0')[0]}_N0400.SAFE",
    }
    it = pystac.Item(item_id, geom, _bbox(geom), datetime.fromisoformat(dt.replace("Z", "+00:00")), props,
                     stac_extensions=[_EO, _PROJ, _VIEW], collection="sentinel-2-l2a")
    for asset, common in zip(S2_ASSETS, ("red", "green", "blue", "nir"), strict=True):
        it.add_asset(asset, pystac.Asset(str(folder / f"{asset}_10m.tif"),
                                         media_type="image/tiff; application=geotiff; profile=cloud-optimized",
                                         roles=["data"], extra_fields={
                                             "gsd": 10.0, "proj:bbox": [x0, y0, x1, y1],
                                             "proj:shape": [round((y1 - y0) / 10), round((x1 - x0) / 10)],
                                             "proj:transform": [10.0, 0.0, x0, 0.0, -10.0, y1],
                                             "eo:bands": [{"name": asset, "common_name": common}]}))
    it.add_asset("SCL", pystac.Asset(str(folder / "SCL_20m.tif"),
                                     media_type="image/tiff; application=geotiff; profile=cloud-optimized",
                                     roles=["data"], title="Scene classfication map (SCL)", extra_fields={
                                         "gsd": 20.0, "proj:bbox": [x0, y0, x1, y1],
                                         "proj:shape": [round((y1 - y0) / 20), round((x1 - x0) / 20)],
                                         "proj:transform": [20.0, 0.0, x0, 0.0, -20.0, y1]}))
    return it


# ------------------------------------------------------------------------------------------------
@dataclass
class DemoCatalog:
    """What :func:`build_demo_catalog` made."""

    client: EmbeddedCatalog
    """The in-process STAC API (pass as ``client=`` to :func:`sen2naip_xr.search_pairs`)."""
    cross_sensor_rois: pd.DataFrame
    """ROI table of the cross-sensor part."""
    synthetic_rois: pd.DataFrame
    """ROI table of the synthetic part."""
    truth: DemoTruth
    """The known degradation."""
    datetime: str
    """A search interval covering every capture."""
    root: Path
    """Folder of the COGs and ``items.json``."""
    reused: bool = False
    """True when the scenes were already there (same parameters) and were not written again."""

    def rois(self, kind: str) -> pd.DataFrame:
        """The ROI table of ``kind`` (``"cross-sensor"`` or ``"synthetic"``)."""
        if kind not in ("cross-sensor", "synthetic"):
            raise InputError(f"kind={kind!r} must be 'cross-sensor' or 'synthetic'")
        return self.cross_sensor_rois if kind == "cross-sensor" else self.synthetic_rois

    def root_attrs(self, kind: str) -> dict[str, Any]:
        """Attributes for the store's root: the known degradation (``demo_truth``) of the cross-sensor part."""
        return {"demo_truth": self.truth.to_dict()} if kind == "cross-sensor" else {}


def _cross_sensor_corners(n: int, size: int, step: float) -> list[tuple[float, float]]:
    """Upper-left corners of the cross-sensor ROIs, on a row ``step`` metres apart.

    The train/test split is a hash of the ROI id (:func:`sen2naip_xr.store.split_of`), so with a handful of
    ROIs every one may land in ``train``. With 4 or more ROIs, the last is placed at the first free position
    whose id hashes to ``test`` (the positions skipped stay empty), so ``sen2naip-xr validate`` with its
    default ``--split test`` has an ROI to work on (ROIs 3 and 4 are made to fail: not those).
    """
    from sen2naip_xr.store import split_of

    x_org, y_org = ORIGIN
    corners: list[tuple[float, float]] = []
    k = 0
    for i in range(n):
        want_test = n >= 4 and i == n - 1
        for _ in range(500):
            corner = (x_org + 200 + k * step, y_org - 200)
            k += 1
            rid = roi_table([corner], size=size, kind="cross-sensor")["roi_id"].iloc[0]
            if not want_test or split_of(rid) == "test":
                break
        corners.append(corner)
    return corners


def _params_key(**kw: Any) -> str:
    return hashlib.sha256(json.dumps(kw, sort_keys=True, default=str).encode()).hexdigest()[:16]


def build_demo_catalog(
    root: str | Path,
    *,
    n_cross_sensor: int = 6,
    n_synthetic: int = 5,
    cross_sensor_size: int = 484,
    synthetic_size: int = 1100,
    seed: int = 0,
    truth: DemoTruth | None = None,
) -> DemoCatalog:
    """Write the demo scenes under ``root`` (reused when already there with the same parameters).

    Cross-sensor ROI 2 is cloudy in both S2 captures (it fails cloud screening), ROI 1 only in the
    first (the second is used), ROI 3 is shifted by 1.6 px (QA1 rejects it), the others by up to
    0.35 px. Synthetic ROI 2's late capture has a blank stripe (the blank check drops it).
    """
    root = Path(root).resolve()  # absolute hrefs: odc-stac cannot parse relative ones
    for name, v in (("n_cross_sensor", n_cross_sensor), ("n_synthetic", n_synthetic)):
        if not isinstance(v, int) or v < 0:
            raise InputError(f"{name}={v!r} must be a non-negative integer")
    for name, v in (("cross_sensor_size", cross_sensor_size), ("synthetic_size", synthetic_size)):
        if not isinstance(v, int) or v < 32 or v % 4:
            raise InputError(f"{name}={v!r} must be a multiple of 4 >= 32 (HR pixels), e.g. 484")
    base = truth or DemoTruth()
    key = _params_key(n_cross_sensor=n_cross_sensor, n_synthetic=n_synthetic, cs=cross_sensor_size,
                      sy=synthetic_size, seed=seed, truth=asdict(base), version=7, root=str(root))
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"root={str(root)!r} cannot be created ({exc.strerror}); pass a writable folder") from exc
    manifest = root / "items.json"
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if saved.get("key") == key:
            return _from_manifest(root, saved, reused=True)

    rng = np.random.default_rng(seed)
    from scipy import ndimage


    # cross-sensor ROIs on a row, far enough apart for their margins
    cs_side = cross_sensor_size * HR_RES
    step = np.ceil((cs_side + 2 * MARGIN_HR * HR_RES + 100) / 10) * 10
    x_org, y_org = ORIGIN
    cs_corners = _cross_sensor_corners(n_cross_sensor, cross_sensor_size, step)
    cs_rois = roi_table(cs_corners, size=cross_sensor_size, kind="cross-sensor")
    sy_side = synthetic_size * HR_RES
    sy_step = np.ceil((sy_side + 100) / 10) * 10
    sy_corners = [(x_org + 200 + i * sy_step, y_org - 400 - cs_side - 2 * MARGIN_HR * HR_RES) for i in range(n_synthetic)]
    sy_rois = roi_table(sy_corners, size=synthetic_size, kind="synthetic")

    shifts: dict[str, tuple[float, float]] = {}
    for i, rid in enumerate(cs_rois["roi_id"]):
        shifts[rid] = (0.0, 1.6) if i == 3 else tuple(float(v) for v in np.round(rng.uniform(-0.35, 0.35, 2), 3))  # type: ignore[assignment]
    s2_ids = [f"S2{'AB'[k]}_MSIL2A_{d[:19].replace('-', '').replace(':', '')}_R070_T11SMS_demo{k}"
              for k, d in enumerate(_S2_DATES)]
    cloudy = {s2_ids[0]: [r for i, r in enumerate(cs_rois["roi_id"]) if i in (1, 2)],
              s2_ids[1]: [r for i, r in enumerate(cs_rois["roi_id"]) if i == 2]}
    items: list[pystac.Item] = []
    blank: list[str] = []

    # S2 tile: covers the cross-sensor row; zero (no data) outside the NAIP footprints
    if n_cross_sensor:
        tx0, ty1 = x_org, y_org
        tx1 = cs_corners[-1][0] + cs_side + MARGIN_HR * HR_RES + 200
        ty0 = y_org - 400 - cs_side - 2 * MARGIN_HR * HR_RES
        tw, th = round((tx1 - tx0) / LR_RES), round((ty1 - ty0) / LR_RES)
        tiles = np.zeros((len(s2_ids), 4, th, tw), np.uint16)
        scl = np.zeros((len(s2_ids), th // 2, tw // 2), np.uint8)
    m_lr = MARGIN_HR // 4
    for i, row in cs_rois.iterrows():
        rid = row["roi_id"]
        x0, y1 = row["x_min"] - MARGIN_HR * HR_RES, row["y_max"] + MARGIN_HR * HR_RES
        n_hr = cross_sensor_size + 2 * MARGIN_HR
        n_file = round(n_hr * HR_RES / NAIP_GSD)
        scene = _naip_scene(n_file, seed * 1000 + int(i))
        dn = np.round(scene * 255).astype(np.uint8)
        nid = f"ca_m_3211{700 + int(i):03d}_nw_11_060_{_NAIP_DATE.replace('-', '')}_20221201"
        href = root / "naip" / f"m_3211{700 + int(i):03d}_nw_11_060_{_NAIP_DATE.replace('-', '')}.tif"
        from affine import Affine

        _write_cog(href, dn, transform=Affine(NAIP_GSD, 0, x0, 0, -NAIP_GSD, y1), alpha_nir=True)
        items.append(_naip_item(nid, href, _NAIP_DATE, (x0, y1 - n_hr * HR_RES, x0 + n_hr * HR_RES, y1)))
        naip25 = _read_25(href, x0, y1, n_hr)
        col, r0 = round((row["x_min"] - tx0) / LR_RES), round((ty1 - row["y_max"]) / LR_RES)
        n_lr = cross_sensor_size // 4
        for k, sid in enumerate(s2_ids):
            refl = _s2_patch(naip25, base, shifts[rid], _rng.derive_key(seed, "demo-s2-noise", sid, rid))
            refl = refl[:, m_lr:m_lr + n_lr, m_lr:m_lr + n_lr]
            sc = np.full((n_lr // 2 + 1, n_lr // 2 + 1), 4, np.uint8)  # vegetation
            if rid in cloudy[sid]:
                cloud = _blob(np.random.default_rng([seed, i, k]), (n_lr, n_lr), 0.5 if k == 0 else 0.8)
                refl = np.where(cloud[None], np.float32(0.62), refl)
                sc = np.where(ndimage.zoom(cloud.astype(np.uint8), 0.5, order=0, grid_mode=True,
                                           mode="nearest")[: sc.shape[0], : sc.shape[1]] > 0, 9, 4).astype(np.uint8)
                sc = np.pad(sc, ((0, n_lr // 2 + 1 - sc.shape[0]), (0, n_lr // 2 + 1 - sc.shape[1])), mode="edge")
            tiles[k, :, r0:r0 + n_lr, col:col + n_lr] = np.clip(np.round(refl * 10000) + 1000, 1, 65535).astype(np.uint16)
            scl[k, r0 // 2:r0 // 2 + sc.shape[0], col // 2:col // 2 + sc.shape[1]] = sc
    if n_cross_sensor:
        from affine import Affine

        for k, sid in enumerate(s2_ids):
            folder = root / "sentinel-2-l2a" / sid
            for b, asset in enumerate(S2_ASSETS):
                _write_cog(folder / f"{asset}_10m.tif", tiles[k, b][None], transform=Affine(10, 0, tx0, 0, -10, ty1),
                           nodata=0, overviews=())
            _write_cog(folder / "SCL_20m.tif", scl[k][None], transform=Affine(20, 0, tx0, 0, -20, ty1), nodata=0,
                       overviews=())
            cc = round(100.0 * float((scl[k] == 9).sum()) / max(1, int((scl[k] > 0).sum())), 3)
            items.append(_s2_item(sid, folder, _S2_DATES[k], cc, (tx0, ty0, tx1, ty1), k))

    # synthetic: two NAIP captures per ROI (early, late), each its own scene
    for i, row in sy_rois.iterrows():
        for role, date in zip(("early", "late"), _SY_DATES, strict=True):
            n_file = round(synthetic_size * HR_RES / NAIP_GSD)
            scene = _naip_scene(n_file, seed * 1000 + 500 + 2 * int(i) + (role == "late"))
            dn = np.round(scene * 255).astype(np.uint8)
            ymd = date.replace("-", "")
            nid = f"ca_m_3211{800 + int(i):03d}_se_11_060_{ymd}_{ymd[:4]}1201"
            if i == 2 and role == "late":  # a blank stripe, as at the edge of a NAIP quarter quad
                dn[:, :, : n_file // 5] = 0
                blank.append(nid)
            href = root / "naip" / f"m_3211{800 + int(i):03d}_se_11_060_{ymd}.tif"
            from affine import Affine

            x0, y1 = row["x_min"], row["y_max"]
            _write_cog(href, dn, transform=Affine(NAIP_GSD, 0, x0, 0, -NAIP_GSD, y1), alpha_nir=True)
            items.append(_naip_item(nid, href, date, (x0, y1 - synthetic_size * HR_RES, x0 + synthetic_size * HR_RES, y1)))

    truth_out = DemoTruth(gamma=base.gamma, sigma=base.sigma, noise_sd=base.noise_sd, shifts=shifts,
                          cloudy=cloudy, blank=blank)
    saved = {"key": key, "items": [it.to_dict(transform_hrefs=False) for it in items],
             "cross_sensor_rois": cs_rois.to_dict(orient="list"), "synthetic_rois": sy_rois.to_dict(orient="list"),
             "truth": truth_out.to_dict(), "datetime": "2010-01-01/2023-12-31"}
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text(dumps_strict(saved))
    tmp.replace(manifest)
    return _from_manifest(root, saved, reused=False)


def _from_manifest(root: Path, saved: dict, *, reused: bool) -> DemoCatalog:
    t = saved["truth"]
    truth = DemoTruth(gamma=tuple(t["gamma"]), sigma=tuple(t["sigma"]), noise_sd=t["noise_sd"],
                      shifts={k: tuple(v) for k, v in t["shifts"].items()}, cloudy=t["cloudy"], blank=t["blank"])
    items = [pystac.Item.from_dict(d) for d in saved["items"]]
    return DemoCatalog(
        client=EmbeddedCatalog(items),
        cross_sensor_rois=pd.DataFrame(saved["cross_sensor_rois"]),
        synthetic_rois=pd.DataFrame(saved["synthetic_rois"]),
        truth=truth, datetime=saved["datetime"], root=root, reused=reused,
    )

