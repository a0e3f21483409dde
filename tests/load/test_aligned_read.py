"""The aligned-average read path of OdcReader: GDAL's warper result from one windowed read, or a fallback."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from affine import Affine
from odc.geo.geobox import GeoBox
from rasterio.enums import ColorInterp, Resampling

from sen2naip_xr.load import OdcReader
from sen2naip_xr.load._reader import _aligned_average, _cell_edges, _overlap_weights

SHARED = (Path(__file__).resolve().parents[2] / ".." / "shared").resolve()
ORIGIN = (490123.37, 3650456.81)  # EPSG:26911, off the 2.5 m grid, as real NAIP files are


@pytest.fixture(scope="module")
def cog(tmp_path_factory) -> Path:
    """A 0.6 m, 4-band uint8 NAIP-like COG (NIR tagged alpha, overviews 2/4), 1200 x 1200 px."""
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (4, 1200, 1200), dtype=np.uint8)
    data[3, :100, :100] = 0  # NIR zeros: data, not a mask
    d = tmp_path_factory.mktemp("aligned")
    tmp, out = d / "tmp.tif", d / "naip.tif"
    prof = dict(driver="GTiff", width=1200, height=1200, count=4, dtype="uint8", crs="EPSG:26911",
                transform=Affine(0.6, 0, ORIGIN[0], 0, -0.6, ORIGIN[1]), tiled=True, blockxsize=256,
                blockysize=256, compress="deflate", photometric="RGB")
    with rasterio.open(tmp, "w", **prof) as dst:
        dst.write(data)
        dst.build_overviews([2, 4], Resampling.average)
    with rasterio.open(tmp, "r+") as dst:
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    rasterio.shutil.copy(tmp, out, driver="COG", compress="DEFLATE", blocksize=256, overviews="force_use_existing")
    return out


def _grid(x_min, y_max, n=200, res=2.5, epsg=32611) -> GeoBox:
    return GeoBox((n, n), Affine(res, 0, x_min, 0, -res, y_max), f"EPSG:{epsg}")


def _read(reader, path, geobox, use_overviews):
    return reader(str(path), band=0, geobox=geobox, resampling="average", use_overviews=use_overviews,
                  dtype="float32", fill=np.nan)


@pytest.mark.parametrize("use_overviews", [True, False])
@pytest.mark.parametrize("corner", [(490200.0, 3650400.0), (490300.0, 3650250.0)])
def test_aligned_average_is_the_warpers_result(cog, use_overviews, corner):
    grid = _grid(*corner)
    assert _aligned_average(str(cog), band=0, geobox=grid, use_overviews=use_overviews) is not None
    fast = _read(OdcReader(), cog, grid, use_overviews)
    warp = _read(OdcReader(aligned_average=False), cog, grid, use_overviews)
    assert fast.shape == warp.shape == (4, 200, 200) and fast.dtype == np.float32
    np.testing.assert_allclose(fast, warp, rtol=0, atol=0.01)  # DN; uint8 steps are 1


def test_aligned_average_real_naip_crop():
    tif = SHARED / "data/naip/m_3211605_ne_11_060_20200415.tif"
    with rasterio.open(tif) as src:
        b = src.bounds
    grid = _grid(np.ceil(b.left / 10) * 10 + 10, np.floor(b.top / 10) * 10 - 10, n=40)
    fast = _read(OdcReader(), tif, grid, True)
    warp = _read(OdcReader(aligned_average=False), tif, grid, True)
    np.testing.assert_allclose(fast, warp, rtol=0, atol=0.05)  # the warper approximates the transform


def test_fallbacks_to_the_warper(cog):
    # partly outside the file, another UTM zone (rotated axes), a nearest read: not this path
    assert _aligned_average(str(cog), band=0, geobox=_grid(490000.0, 3650400.0), use_overviews=True) is None
    assert _aligned_average(str(cog), band=0, geobox=_grid(1050000.0, 3650000.0, epsg=32610), use_overviews=True) is None
    out = _read(OdcReader(), cog, _grid(490000.0, 3650400.0), True)
    assert np.isnan(out[:, :, :40]).all() and not np.isnan(out[:, :, 60:]).any()
    near = OdcReader()(str(cog), band=0, geobox=_grid(490200.0, 3650400.0), resampling="nearest",
                       use_overviews=True, dtype="float32", fill=np.nan)
    assert np.array_equal(near, np.round(near))  # nearest: whole DN, not averages


def test_overlap_weights_are_area_shares():
    edges = _cell_edges(0.3, 4.1666, 5)
    w = _overlap_weights(edges, 22).toarray()
    np.testing.assert_allclose(w.sum(axis=1), 1, rtol=1e-6)
    assert w[0, 0] == pytest.approx(0.7 / 4.1666, rel=1e-6) and w[0, 5] == 0
    # edges within 1/1000 px of a pixel edge snap to it: no sliver of the neighbour
    assert _cell_edges(1.00004, 2.0, 2).tolist() == [1.0, 3.0, 5.0]
