"""Both builders end to end against the real local STAC API (pgstac + stac-fastapi) and its
fault-injecting, token-checking asset server: exact pixels in the store, failures with their stage."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

import sen2naip_xr as s2n
from sen2naip_xr.load import CloudConfig  # noqa: F401  (documents where max_cloud_fraction comes from)
from sen2naip_xr.pipeline import (
    CrossSensorConfig,
    RunConfig,
    SyntheticConfig,
    build_cross_sensor,
    build_synthetic,
)
from sen2naip_xr.store import DatasetStore

pytestmark = pytest.mark.network

R1, R2, R3, R4 = (f"cs-32611-{x:.0f}-{y:.0f}" for x, y in ((491000, 3649000), (494000, 3649000),
                                                           (491000, 3646000), (494000, 3646000)))


@pytest.fixture(scope="module")
def stac_cands(stac_stack):
    m = s2n_stac_stack()
    client = s2n.open_catalog(stac_stack.url)
    cs = s2n.search_pairs(m.scenario_rois(), datetime="2010-01-01/2023-12-31", client=client, progress=False)
    sy = s2n.search_pairs(m.scenario_rois("synthetic"), kind="synthetic", datetime="2010-01-01/2023-12-31",
                          client=client, progress=False)
    return cs, sy


def s2n_stac_stack():
    import s2n_stac_stack as m

    return m


def test_cross_sensor_against_the_stac_api(stac_stack, stac_cands, tmp_path):
    m = s2n_stac_stack()
    stac_stack.assets.clear()
    stac_stack.assets.fail("m_3211700_n2_11_100_20220515.tif", "404", times=100)  # R2's NAIP is gone
    cs, _ = stac_cands
    # the scenario's S2 is not a degraded NAIP: open the QA gates, keep the screening (2 shadow pixels pass)
    cfg = CrossSensorConfig(max_misalignment_px=100, max_spectral_angle_deg=180, max_cloud_fraction=0.001,
                            max_nodata_fraction=0.001)
    res = build_cross_sensor(cs, tmp_path / "s.zarr", config=cfg, run=RunConfig(n_workers=2, progress=False),
                             load=stac_stack.load_config())
    stac_stack.assets.clear()
    store = DatasetStore(tmp_path / "s.zarr")
    names = dict(zip(cs.rois.roi_id, (f"ROI_{i + 1:05d}" for i in range(len(cs.rois))), strict=True))
    assert store.rois("cross-sensor") == sorted([names[R1], names[R3]]) == sorted(res.written)
    fails = store.failures("cross-sensor").set_index("roi_id")
    assert fails.loc[R2, "stage"] == "naip:read" and "404" in fails.loc[R2, "reason"]
    assert fails.loc[R4, "stage"] == "search"
    # R1: capture a (dt 0, 8 shadow pixels <= 0.1 %) is kept; its B04 no-data pixels (0.01 %) pass too
    meta = store.attrs(f"cross-sensor/{names[R1]}")
    assert meta["s2_id"].endswith("_a") and meta["s2_processing_baseline"] == "04.00"
    assert meta["s2_sun_azimuth"] == 131.0 and meta["naip_date"].startswith("2022-05-15")
    assert "sig=" not in json.dumps(meta["provenance"])
    lr = store.open_dataset(f"cross-sensor/{names[R3]}/lr")
    hr = store.open_dataset(f"cross-sensor/{names[R3]}/hr")
    exp_s2 = m.expected_s2("d", *m.CS_ROIS["R3"])
    np.testing.assert_array_equal(lr.lr.values, exp_s2)
    naip = xr.DataArray(m.expected_naip("n3", *m.CS_ROIS["R3"]), dims=("band", "y", "x"))
    exp_hr = s2n.histogram_match(naip, xr.DataArray(exp_s2, dims=("band", "y", "x"))).values
    np.testing.assert_allclose(hr.hr.values, exp_hr, atol=2e-3)  # NAD83 -> WGS 84 moves NAIP by 1e-4 m
    assert lr.rio.crs.to_epsg() == 32611 and tuple(lr.rio.transform())[:6] == (10, 0, 491000, 0, -10, 3646000)


def test_synthetic_against_the_stac_api(stac_stack, stac_cands, tmp_path):
    m = s2n_stac_stack()
    stac_stack.assets.clear()
    stac_stack.assets.fail("m_3211700_sy2012_11_100_20120701.tif", "503", times=1)  # one transient error: retried
    _, sy = stac_cands
    cfg = SyntheticConfig(methods=("identity", "gamma_mvn"), device="cpu", store_lr=True)
    res = build_synthetic(sy, tmp_path / "s.zarr", config=cfg, run=RunConfig(scheduler="sync", progress=False),
                          load=stac_stack.load_config())
    assert res.written == ["ROI_00001"]
    g = s2n.open_roi(tmp_path / "s.zarr", "synthetic", "ROI_00001")
    assert sorted(g) == ["early", "late"]
    x0, y1 = m.SY_ROIS["S1"]
    np.testing.assert_allclose(g["early"].hr.values, m.expected_naip("sy2012", x0, y1, 1100), atol=1e-4)
    np.testing.assert_allclose(g["late"].hr.values, m.expected_naip("sy2018", x0, y1, 1100), atol=1e-4)
    assert g["early"].attrs["naip_id"].startswith("ca_m_3211700_sy2012")
    assert g["early"].hist.shape == (2, 4, 120) and g["early"].lr.shape == (2, 4, 275, 275)
    # identity + noise: the histogram counts every LR pixel inside [0, 1]
    assert float(g["early"].hist.sel(harmonizer="identity").sum()) > 0.99 * 4 * 275 * 275
