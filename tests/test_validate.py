"""Validation metrics (the paper's Table 2) against direct numpy formulas."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from sen2naip_xr import validate
from tests.conftest import raise_if_dask_computes


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    obs = rng.random((3, 4, 20, 20)).astype(np.float32) * 0.4 + 0.01
    sim = (obs * 1.1 + rng.normal(0, 0.01, obs.shape)).astype(np.float32)
    obs[1, :, :3, :3] = np.nan
    dims = ("img", "band", "y", "x")
    return xr.DataArray(sim, dims=dims), xr.DataArray(obs, dims=dims)


def test_metrics_equal_numpy_formulas(pair):
    sim, obs = pair
    s, o = sim.values.astype(np.float64), obs.values.astype(np.float64)
    for i in range(3):
        valid = np.isfinite(o[i, 0])
        for b in range(4):
            a, c = s[i, b][valid], o[i, b][valid]
            assert float(validate.pearson(sim, obs)[i, b]) == pytest.approx(np.corrcoef(a, c)[0, 1], rel=1e-5)
            assert float(validate.mae(sim, obs)[i, b]) == pytest.approx(np.abs(a - c).mean(), rel=1e-5)
            assert float(validate.rmse(sim, obs)[i, b]) == pytest.approx(np.sqrt(((a - c) ** 2).mean()), rel=1e-5)
            assert float(validate.pbias(sim, obs)[i, b]) == pytest.approx(100 * (a - c).sum() / c.sum(), rel=1e-4)
        va, vc = s[i][:, valid], o[i][:, valid]
        cos = (va * vc).sum(0) / np.sqrt((va**2).sum(0) * (vc**2).sum(0))
        angle = np.degrees(np.arccos(np.clip(cos, -1, 1))).mean()
        assert float(validate.spectral_angle(sim, obs)[i]) == pytest.approx(angle, rel=1e-4)


def test_identical_images_are_perfect(pair):
    _, obs = pair
    per = validate.compare(obs, obs)
    assert np.allclose(per.pearson, 1, atol=1e-6) and np.allclose(per.mae, 0) and np.allclose(per.pbias_pct, 0)
    assert np.allclose(per.sad_deg, 0, atol=0.05)


def test_table_ranks_a_closer_simulation_higher(pair):
    sim, obs = pair
    worse = sim * 1.5
    per = xr.concat([validate.compare(sim, obs), validate.compare(worse, obs)], dim="harmonizer")
    per = per.assign_coords(harmonizer=["close", "far"])
    table = validate.validation_table(per)
    assert list(table.harmonizer) == ["close", "far"]
    close, far = table.iloc[0], table.iloc[1]
    assert close.mae < far.mae and close.rmse < far.rmse and abs(close.pbias_pct) < abs(far.pbias_pct)
    assert close.n_images == 3


def test_lazy_on_dask(pair):
    sim, obs = pair
    with raise_if_dask_computes():
        per = validate.compare(sim.chunk({"img": 1}), obs.chunk({"img": 1}))
    np.testing.assert_allclose(per.compute().mae.values, validate.compare(sim, obs).mae.values, rtol=1e-6)


def test_grid_mismatch_is_an_error(pair):
    sim, obs = pair
    with pytest.raises(ValueError, match="same grid"):
        validate.mae(sim, obs.isel(y=slice(0, 10)))
