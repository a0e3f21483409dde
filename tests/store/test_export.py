"""export(): the published SEN2NAIP layout as Cloud-Optimized GeoTIFFs (validated by rio-cogeo)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import xarray as xr
from rasterio.enums import ColorInterp
from rio_cogeo import cog_validate

from sen2naip_xr.cli import main
from sen2naip_xr.store import DatasetStore, export
from sen2naip_xr.store._metadata import georeferenced, hist_bin_coord, roi_metadata

ROI = {"roi_id": "cs-32611-500000-3650000", "epsg": 32611, "x_min": 500000.0, "y_max": 3650000.0, "size": 32,
       "res": 2.5}


def _check_cog(path, *, res: float, shape: tuple[int, int]) -> np.ndarray:
    ok, errors, _ = cog_validate(str(path))
    assert ok, errors
    with rasterio.open(path) as f:
        assert f.driver == "GTiff" and f.dtypes == ("uint16",) * 4 and (f.height, f.width) == shape
        assert f.nodata == 65535
        assert f.descriptions == ("Red", "Green", "Blue", "NIR")
        assert f.colorinterp == (ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined)
        assert f.scales == (1e-4,) * 4 and f.offsets == (0.0,) * 4
        assert f.crs.to_epsg() == 32611 and tuple(f.transform)[:6] == (res, 0.0, 500000.0, 0.0, -res, 3650000.0)
        assert f.tags()["roi_id"] == ROI["roi_id"] and f.profile["compress"] == "deflate"
        return f.read()


def _dn(values):
    return np.round(np.asarray(values, np.float64) * 10000.0).astype(np.uint16)  # DN = round(reflectance x 10000)


@pytest.fixture()
def store(tmp_path):
    st = DatasetStore(tmp_path / "s.zarr")
    st.init({"title": "test"})
    return st


def test_cross_sensor_export_is_the_published_layout_as_cogs(store, tmp_path):
    rng = np.random.default_rng(0)
    lr_px = rng.random((4, 64, 64), dtype=np.float32) * 0.5
    lr_px[2, 3, 4] = np.nan  # no data: written as the declared nodata, not as 0
    hr_px = rng.random((4, 256, 256), dtype=np.float32) * 0.5
    lr = georeferenced(lr_px, name="lr", x_min=500000.0, y_max=3650000.0, res=10.0, epsg=32611)
    lr["hist"] = xr.DataArray(np.ones((4, 120), np.float32), dims=("band", "bin"), coords={"bin": hist_bin_coord()})
    hr = georeferenced(hr_px, name="hr", x_min=500000.0, y_max=3650000.0, res=2.5, epsg=32611)
    store.write_roi("cross-sensor", "ROI_00001", {"lr": lr, "hr": hr},
                    roi_metadata(ROI, name="ROI_00001", qa={"QA_1": 0.25, "QA_2": float("nan")}))
    out = tmp_path / "pub"
    assert export(store.path, out) == [str(out / "cross-sensor" / "ROI_00001")]
    d = out / "cross-sensor" / "ROI_00001"
    assert sorted(p.name for p in d.iterdir()) == ["HR.tif", "LR.tif", "metadata.json"]
    assert sorted(p.name for p in out.iterdir()) == ["cross-sensor"]  # no temporary folder left
    got = _check_cog(d / "LR.tif", res=10.0, shape=(64, 64))
    assert got[2, 3, 4] == 65535
    expected = _dn(np.nan_to_num(lr_px))
    expected[2, 3, 4] = 65535
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(_check_cog(d / "HR.tif", res=2.5, shape=(256, 256)), _dn(hr_px))
    text = (d / "metadata.json").read_text()
    assert "NaN" not in text  # strict JSON
    meta = json.loads(text)
    assert meta["roi_id"] == ROI["roi_id"] and meta["QA_2"] is None and "s2n:complete" not in meta
    assert np.shape(meta["histograms"]) == (4, 120) and len(meta["histogram_bins"]) == 121
    assert meta["histogram_bins"][0] == 0.0 and meta["histogram_bins"][-1] == 1.0


def test_synthetic_export_has_early_and_late_with_histograms(store, tmp_path):
    rng = np.random.default_rng(1)
    labels = ["identity", "gamma_mvn_p50"]
    groups = {}
    for role in ("early", "late"):
        ds = georeferenced(rng.random((4, 128, 128), dtype=np.float32), name="hr", x_min=500000.0,
                           y_max=3650000.0, res=2.5, epsg=32611).assign_coords(harmonizer=labels)
        ds["hist"] = xr.DataArray(rng.random((2, 4, 120), dtype=np.float32), dims=("harmonizer", "band", "bin"),
                                  coords={"bin": hist_bin_coord()})
        ds["lr"] = xr.DataArray(rng.random((2, 4, 32, 32), dtype=np.float32), dims=("harmonizer", "band", "y_lr", "x_lr"))
        ds.attrs.update(naip_id=f"naip-{role}", role=role)
        groups[role] = ds
    store.write_roi("synthetic", "ROI_00001", groups, roi_metadata(ROI, name="ROI_00001"))
    assert main(["export", str(store.path), "--out", str(tmp_path / "pub")]) == 0
    d = tmp_path / "pub" / "synthetic" / "ROI_00001"
    assert sorted(p.name for p in d.iterdir()) == ["early", "late"]
    for role in ("early", "late"):
        assert sorted(p.name for p in (d / role).iterdir()) == [
            "HR.tif", "LR_gamma_mvn_p50.tif", "LR_identity.tif", "metadata.json"]
        np.testing.assert_array_equal(_check_cog(d / role / "HR.tif", res=2.5, shape=(128, 128)),
                                      _dn(groups[role].hr.values))
        lr = _check_cog(d / role / "LR_identity.tif", res=10.0, shape=(32, 32))
        np.testing.assert_array_equal(lr, _dn(groups[role].lr.values[0]))
        meta = json.loads((d / role / "metadata.json").read_text())
        assert meta["naip_id"] == f"naip-{role}" and sorted(meta["histograms"]) == sorted(labels)
        np.testing.assert_allclose(meta["histograms"]["identity"], groups[role].hist.values[0], rtol=1e-6)
