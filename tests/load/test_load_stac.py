"""Loading ROI cubes from the local STAC API: exact pixels, offset, SCL screening, signing, retries."""

import numpy as np
import pytest

import sen2naip_xr as s2n

pytestmark = pytest.mark.network

R1, R2, R3 = "cs-32611-491000-3649000", "cs-32611-494000-3649000", "cs-32611-491000-3646000"


@pytest.fixture(scope="module")
def cands(stac_stack):
    import s2n_stac_stack as m

    return s2n.search_pairs(m.scenario_rois(), datetime="2010-01-01/2023-12-31",
                            client=s2n.open_catalog(stac_stack.url), progress=False)


@pytest.mark.parametrize("overviews", [True, False])
def test_naip_exact_pixels_and_bytes(stac_stack, assets, cands, overviews):
    import s2n_stac_stack as m

    naip = s2n.load_naip(cands, config=stac_stack.load_config(use_overviews=overviews)).compute()
    assert naip.dims == ("roi", "time", "band", "y", "x") and naip.dtype == np.float32
    assert list(naip["band"].values) == ["red", "green", "blue", "nir"]
    for roi, name in ((R1, "n1"), (R2, "n2"), (R3, "n3")):
        got = naip.sel(roi=roi).isel(time=0).values
        exp = m.expected_naip(name, *m.CS_ROIS[{"n1": "R1", "n2": "R2", "n3": "R3"}[name]])
        # NAD83 (file) -> WGS 84 (ROI) moves points by 1e-4 m: far below one uint8 step (1/255)
        np.testing.assert_allclose(got, exp, rtol=0, atol=1e-4)
    # NIR tagged alpha with zeros: still data, RGB untouched there
    assert (naip.sel(roi=R1, band="nir").isel(time=0).values[:15, :15] == 0).all()
    assert naip.sel(roi=R3).isel(time=1).isnull().all()  # R3 has one pair: padded slot
    assert s2n.load_failures(naip).empty
    nbytes = assets.stats.total_bytes("m_3211700_n1")
    assert nbytes > 0
    naip_bytes[overviews] = nbytes
    if len(naip_bytes) == 2:
        assert naip_bytes[True] < naip_bytes[False]  # 1 m fixture: the 2 m overview


naip_bytes: dict = {}


def test_s2_reflectance_offset_nodata_and_scl(stac_stack, assets, cands):
    import s2n_stac_stack as m

    cubes = s2n.load_pairs(cands, config=stac_stack.load_config())
    s2, scl = cubes.s2.compute(), cubes.scl.compute()
    assert s2.shape[1:] == (2, 4, 121, 121) and scl.dtype == np.uint8
    np.testing.assert_array_equal(s2.sel(roi=R1).isel(time=0).values, m.expected_s2("a", *m.CS_ROIS["R1"]))
    np.testing.assert_array_equal(s2.sel(roi=R1).isel(time=1).values, m.expected_s2("b", *m.CS_ROIS["R1"]))
    np.testing.assert_array_equal(s2.sel(roi=R3).isel(time=0).values, m.expected_s2("d", *m.CS_ROIS["R3"]))
    # the offset: same DN formula, baseline 04.00 -> -0.1 reflectance vs 02.13
    assert float(s2.sel(roi=R1, band="red").isel(time=0, y=0, x=0)) == np.float32((m.s2_dn(np.array(491005.0), np.array(3648995.0), 0, 1) - 1000.0) / 10000.0)
    assert np.isnan(s2.sel(roi=R1, band="red").isel(time=0).values[5, 3:5]).all()
    frac = s2n.cloud_fraction(scl).sel(roi=R1).values
    assert frac[0] == pytest.approx(8 / 121**2)  # two 20 m shadow pixels = 8 px at 10 m
    assert frac[1] == pytest.approx(60 * 120 / 121**2)  # clouds: 30 x 60 SCL pixels of 20 m
    clear = s2n.screen_clouds(scl, config=s2n.CloudConfig(max_fraction=0.001))
    assert clear.sel(roi=R1).values.tolist() == [True, False]  # b: clouds over R1
    assert clear.sel(roi=R2).values.tolist() == [True, True]
    assert clear.sel(roi=R3).values.tolist() == [True, False]  # one pair; the padded slot fails
    # the user model hook: flags bright red pixels
    model_mask = s2n.cloud_mask(scl, s2=s2, model=lambda img: img[0] > 0.19).sel(roi=R2).isel(time=0).values
    assert model_mask.sum() == int((m.expected_s2("a", *m.CS_ROIS["R2"])[0] > 0.19).sum())


def test_signing_happens_at_read_time_with_fresh_tokens(stac_stack, assets, cands):
    before = assets.stats.token_requests
    lazy = s2n.load_naip(cands, config=stac_stack.load_config())
    assert assets.stats.token_requests == before  # building the graph signs nothing
    assets.revoke_tokens()  # the search-time tokens (and any cached) are now stale
    from planetary_computer import sas

    sas.TOKEN_CACHE.clear()
    naip = lazy.compute()
    assert s2n.load_failures(naip).empty and not naip.isel(time=0).isnull().any()
    assert assets.stats.token_requests > before
    signed = [q for p, q in assets.stats.queries if p.startswith("/blob/")]
    assert signed and all("sig=tok" in q for q in signed)


def test_expired_token_is_refreshed_after_403(stac_stack, assets, cands):
    from planetary_computer import sas

    s2n.load_naip(cands.pairs.iloc[1:2], items=cands.items, config=stac_stack.load_config()).compute()
    assert len(sas.TOKEN_CACHE) == 1
    assets.revoke_tokens()  # cached token still "valid" for the SDK, rejected by storage
    cfg = stac_stack.load_config(use_overviews=False)  # other byte ranges than GDAL has cached
    naip = s2n.load_naip(cands.pairs.iloc[1:2], items=cands.items, config=cfg).compute()
    assert s2n.load_failures(naip).empty and assets.stats.rejected >= 1


@pytest.mark.parametrize("kind", ["503", "500", "truncate", "timeout"])
def test_transient_errors_are_retried(stac_stack, assets, cands, kind):
    assets.fail("m_3211700_n2_11_100_20220515.tif", kind, times=1, delay=3.0)
    naip = s2n.load_naip(cands.pairs.iloc[3:4], items=cands.items, config=stac_stack.load_config()).compute()
    assert s2n.load_failures(naip).empty
    assert not naip.isel(time=0).isnull().any()


def test_failing_asset_marks_its_roi_and_others_go_on(stac_stack, assets, cands):
    assets.fail("m_3211700_n2_11_100_20220515.tif", "503", times=100)
    naip = s2n.load_naip(cands, config=stac_stack.load_config()).compute()
    fails = s2n.load_failures(naip)
    assert fails["roi_id"].tolist() == [R2] and fails["stage"].tolist() == ["naip:read"]
    assert "3 attempts" in fails.loc[0, "reason"] and "503" in fails.loc[0, "reason"]
    assert naip.sel(roi=R2).isnull().all() and not naip.sel(roi=R1).isel(time=0).isnull().any()
    assets.clear()
    assets.fail("m_3211700_n2_11_100_20220515.tif", "404", times=100)
    naip = s2n.load_naip(cands.pairs.iloc[3:4], items=cands.items, config=stac_stack.load_config()).compute()
    assert s2n.load_failures(naip)["stage"].tolist() == ["naip:read"]
    assert assets.stats.total_requests("m_3211700_n2") <= 2  # 404 is not retried


def test_gdal_settings_reach_every_worker(stac_stack, assets, cands):
    from distributed import Client, LocalCluster

    cfg = stac_stack.load_config(gdal_env={"GDAL_HTTP_USERAGENT": "sen2naip-xr-test/worker"})
    lazy = s2n.load_naip(cands, config=cfg)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc, Client(lc):
        naip = lazy.compute()
    assert s2n.load_failures(naip).empty
    assert assets.stats.user_agents == {"sen2naip-xr-test/worker"}
