"""Load stage without the stack: NAIP band fix, S2 offset, reader seam, laziness, real rasters."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pystac
import pytest

import sen2naip_xr as s2n
from sen2naip_xr.load import NoSigner, s2_offset, select_roi, with_naip_bands

SHARED = (Path(__file__).resolve().parents[2] / ".." / "shared").resolve()


def _pc_naip():
    return pystac.Item.from_dict(json.loads((SHARED / "stac/pc/item-naip-pa_m_4108053_se_17_1_20150725_20151201.json").read_text()))


def test_odc_stac_needs_the_naip_band_fix():
    import odc.stac

    with pytest.raises(KeyError):
        odc.stac.load([_pc_naip()], bands=["red", "green", "blue", "nir"], chunks={})
    ds = odc.stac.load([with_naip_bands(_pc_naip())], bands=["red", "green", "blue", "nir"], chunks={})
    assert list(ds.data_vars) == ["red", "green", "blue", "nir"] and ds["red"].dtype == np.uint8


def test_s2_offset_from_baseline():
    assert s2_offset({"s2:processing_baseline": "04.00"}) == -1000.0
    assert s2_offset({"s2:processing_baseline": "05.09"}) == -1000.0
    assert s2_offset({"s2:processing_baseline": "02.14"}) == 0.0
    with pytest.raises(s2n.InputError, match="s2:processing_baseline"):
        s2_offset({})


def _real_naip_table():
    import rasterio
    from pyproj import Transformer

    tif = SHARED / "data/naip/m_3211605_ne_11_060_20200415.tif"
    with rasterio.open(tif) as src:
        b = src.bounds
    x0, y1 = np.ceil(b.left / 10) * 10 + 10, np.floor(b.top / 10) * 10 - 10
    lon, lat = Transformer.from_crs(26911, 4326, always_xy=True).transform([b.left, b.right], [b.bottom, b.top])
    item = pystac.Item("real-naip", {"type": "Polygon", "coordinates": [[[lon[0], lat[0]], [lon[1], lat[0]], [lon[1], lat[1]], [lon[0], lat[1]], [lon[0], lat[0]]]]},
                       [lon[0], lat[0], lon[1], lat[1]], pd.Timestamp("2020-04-15", tz="UTC").to_pydatetime(),
                       {"gsd": 0.6, "proj:epsg": 26911})
    item.add_asset("image", pystac.Asset(tif.as_uri(), media_type="image/tiff; application=geotiff",
                                         roles=["data"], extra_fields={"eo:bands": [{"common_name": c} for c in ("red", "green", "blue", "nir")]}))
    # a 40 x 40 px (100 m) ROI inside the crop, UTM 11N (WGS 84)
    table = pd.DataFrame({"roi_id": ["real"], "epsg": [32611], "x_min": [x0], "y_max": [y1], "size": [40], "res": [2.5], "naip_id": ["real-naip"]})
    return table, item, tif


def test_real_naip_crop_loads_with_nir_as_data():
    import rasterio
    from rasterio.enums import ColorInterp

    table, item, tif = _real_naip_table()
    with rasterio.open(tif) as src:
        assert src.colorinterp[3] == ColorInterp.alpha
        raw = src.read()
    naip = s2n.load_naip(table, items=[item], signer=NoSigner()).compute()
    assert s2n.load_failures(naip).empty and not naip.isnull().any()
    assert naip.shape == (1, 1, 4, 40, 40)
    # averages of uint8 / 255 stay within the crop's range, band by band (NIR included)
    for b in range(4):
        v = naip.isel(band=b).values
        assert raw[b].min() / 255 - 1e-6 <= v.min() and v.max() <= raw[b].max() / 255 + 1e-6
    assert abs(float(naip.sel(band="nir").mean()) - raw[3].mean() / 255) < 0.05
    one = select_roi(naip, 0)
    assert one.rio.crs.to_epsg() == 32611 and float(one.x[0]) == table.x_min[0] + 1.25


class CountingReader:
    """A fake reader (the seam): records each URL and returns a constant."""

    def __init__(self):
        self.calls = []

    def __call__(self, url, *, band, geobox, resampling, use_overviews, dtype, fill):
        self.calls.append((url, band, use_overviews))
        n = 4 if band == 0 else 1
        return np.full((n, *geobox.shape), 51.0, dtype=dtype)


def test_reader_seam_laziness_and_each_url_once():
    table, item, _ = _real_naip_table()
    table = pd.concat([table, table.assign(roi_id="other", x_min=table.x_min + 100)], ignore_index=True)
    rd = CountingReader()
    lazy = s2n.load_naip(table, items=[item], signer=NoSigner(), reader=rd)
    assert rd.calls == []  # building reads nothing
    out = lazy.compute()
    assert len(rd.calls) == 2 and all(c[1] == 0 and c[2] is True for c in rd.calls)
    assert np.all(out.values == np.float32(51.0) / np.float32(255.0))
    data_keys = set(lazy.data.__dask_graph__())
    err_keys = set(lazy["load_error"].data.__dask_graph__())
    assert len(data_keys) == 2 * 2 and len(data_keys | err_keys) == 3 * 2  # read (shared) + data + error per ROI


def test_retry_policy_with_injected_failures():
    from sen2naip_xr.load import RetryPolicy, read_asset

    calls, sleeps = [], []

    def flaky(url, **kw):
        calls.append(url)
        if len(calls) < 3:
            raise OSError("HTTP response code: 503")
        return np.zeros((1, 2, 2), "float32")

    out = read_asset("x.tif", signer=NoSigner(), reader=flaky, retry=RetryPolicy(max_attempts=4, backoff_s=0.1), sleep=sleeps.append)
    assert out.shape == (1, 2, 2) and len(calls) == 3 and sleeps == [0.1, 0.2]
    with pytest.raises(s2n.AssetReadError) as ei:
        read_asset("y.tif", signer=NoSigner(), reader=lambda u, **k: (_ for _ in ()).throw(OSError("HTTP response code: 404")),
                   retry=RetryPolicy(), sleep=sleeps.append)
    assert ei.value.stage == "read" and "not retried" in str(ei.value)


def test_bad_inputs_name_the_argument():
    with pytest.raises(s2n.InputError, match="naip_id"):
        s2n.load_naip(pd.DataFrame({"roi_id": ["a"]}), items=[])
    with pytest.raises(s2n.InputError, match="max_fraction"):
        s2n.CloudConfig(max_fraction=2)
    with pytest.raises(s2n.InputError, match="max_attempts"):
        s2n.RetryPolicy(max_attempts=0)


def test_reader_and_signer_are_documented_protocols():
    """The IO seams are runtime-checkable protocols with numpydoc docs; the defaults satisfy them."""
    from sen2naip_xr.load import NoSigner, OdcReader, Reader, Signer

    assert isinstance(NoSigner(), Signer) and isinstance(OdcReader(), Reader)
    assert "Parameters" in Reader.__doc__ and "refresh" in Signer.__doc__


def test_roi_spec_is_frozen_and_tokenizes_by_value():
    import dataclasses

    from dask.base import tokenize

    from sen2naip_xr.load import RoiSpec

    a = RoiSpec("r1", 32611, 0.0, 100.0, 484, 2.5, (None,))
    assert tokenize(a) == tokenize(RoiSpec("r1", 32611, 0.0, 100.0, 484, 2.5, (None,)))
    assert tokenize(a) != tokenize(dataclasses.replace(a, x_min=10.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.size = 1  # type: ignore[misc]


def test_a_corrupt_file_is_not_retried(tmp_path):
    """GDAL's 'not recognized as being in a supported file format' is permanent: retrying cannot help (a TIFF
    whose directory cannot be read stays transient: a truncated HTTP response reads like that)."""
    import rasterio

    from sen2naip_xr.errors import AssetReadError
    from sen2naip_xr.load._reader import classify_error, read_asset

    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"<html>an error page served as the COG</html>" * 10)
    with pytest.raises(rasterio.errors.RasterioIOError) as info:
        rasterio.open(bad)
    assert classify_error(info.value) == "permanent"
    calls = []

    def reader(url, **kw):
        calls.append(url)
        return rasterio.open(url).read()

    class Retry:
        max_attempts, backoff_s, max_backoff_s = 4, 0.0, 0.0

    with pytest.raises(AssetReadError):
        read_asset(str(bad), signer=lambda h, refresh=False: h, reader=reader, retry=Retry(), sleep=lambda s: None)
    assert len(calls) == 1
