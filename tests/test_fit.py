"""Fitting the degradation model on pairs made with a known truth (gamma per band, sigma, shift, noise)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

import sen2naip_xr as s2n
from sen2naip_xr.fit import fit_gamma, fit_model, fit_noise_matrix, register_shift
from sen2naip_xr.ops import _numpy as ops

SIGMA = np.array([2.2, 2.6, 2.4, 3.1])
GAMMA = np.array([0.45, 0.50, 0.55, 0.70])


@pytest.fixture(scope="module")
def truth_pairs():
    rng = np.random.default_rng(0)
    naips, s2s, gammas, shifts = [], [], [], []
    for i in range(8):
        x = s2n.example_image(256, seed=100 + i).values
        g = GAMMA + rng.normal(0, 0.03, 4)
        y = np.power(x, (1 / g)[:, None, None]).astype(np.float32)
        d = rng.uniform(-1.2, 1.2, 2)  # HR pixels
        y = ndimage.shift(y, (0, d[0], d[1]), order=3, mode="reflect")
        lr = ops.blur_downsample(y, tuple(SIGMA)) + rng.normal(0, 0.004, (4, 64, 64)).astype(np.float32)
        naips.append(x)
        s2s.append(lr)
        gammas.append(g)
        shifts.append(d / 4)
    dims = ("pair", "band", "y", "x")
    return (xr.DataArray(np.stack(naips), dims=dims), xr.DataArray(np.stack(s2s), dims=dims),
            np.array(gammas), np.array(shifts))


def test_fit_recovers_gamma_sigma_and_shift(truth_pairs):
    naip, s2, gammas, shifts = truth_pairs
    res = fit_model(naip, s2)
    np.testing.assert_allclose(res.gammas.to_numpy(), gammas, atol=0.01)
    np.testing.assert_allclose(res.model.sigma, SIGMA, atol=0.3)
    np.testing.assert_allclose(res.model.mvn_mean, gammas.mean(0), atol=0.01)
    np.testing.assert_allclose(-res.shifts, -shifts, atol=0.15)  # registration within 0.15 LR px
    curves = res.sigma_curves
    assert curves.dims == ("sigma", "band")
    for k in range(4):  # the MAE curve has its minimum at the fitted sigma and rises on both sides
        c = curves.isel(band=k).values
        i = int(np.argmin(c))
        assert c[0] > c[i] < c[-1]
    summary = res.summary()
    assert list(summary.band) == ["red", "green", "blue", "nir"] and (summary.ks_stat < 0.6).all()


def test_fitted_model_round_trips_and_drives_degrade(truth_pairs, tmp_path):
    naip, s2, _, _ = truth_pairs
    res = fit_model(naip, s2)
    path = tmp_path / "model.json"
    res.model.save(path)
    loaded = s2n.DegradationModel.load(path)
    assert loaded == res.model
    img = naip.isel(pair=0)
    ds = s2n.degrade(img, ["gamma_mvn"], noise="none", model=path)
    g = s2n.gamma_values("gamma_mvn", 50, model=loaded)
    np.testing.assert_allclose(g, loaded.mvn_mean, atol=1e-9)  # p50 of a normal is its mean
    expected = s2n.blur_downsample(img ** (1 / xr.DataArray(g.astype(np.float32), dims="band")), loaded.sigma)
    np.testing.assert_allclose(ds["lr/lr"].values[0], expected.values, atol=2e-6)


def test_gamma_of_a_gamma_corrected_copy_is_exact():
    x = s2n.example_image(64, seed=1)
    y = s2n.blur_downsample(x ** (1 / 0.4))
    g = fit_gamma(x.expand_dims(pair=1), y.expand_dims(pair=1))
    np.testing.assert_allclose(g.to_numpy(), 0.4, atol=2e-3)


def test_register_shift_sign_convention():
    rng = np.random.default_rng(3)
    ref = ndimage.gaussian_filter(rng.random((64, 64)), 2)
    moved = ndimage.shift(ref, (0.4, -0.7), order=3, mode="reflect")
    dy, dx = register_shift(ref, moved)
    assert dy == pytest.approx(-0.4, abs=0.1) and dx == pytest.approx(0.7, abs=0.1)


def test_noise_matrix_from_s2_alone_recovers_white_noise_level():
    rng = np.random.default_rng(4)
    smooth = ndimage.gaussian_filter(rng.random((6, 4, 96, 96)), (0, 0, 6, 6)) * 0.6
    noisy = (smooth + rng.normal(0, 0.003, smooth.shape)).astype(np.float32)
    matrix, counts = fit_noise_matrix(xr.DataArray(noisy, dims=("img", "band", "y", "x")))
    assert matrix.shape == (101, 101)
    np.testing.assert_allclose(matrix.sum(1), 1.0)
    rows = np.flatnonzero(counts >= 500)
    sd = np.sqrt(matrix[rows] @ ops.REAL_NOISE_VALUES**2 - (matrix[rows] @ ops.REAL_NOISE_VALUES) ** 2)
    np.testing.assert_allclose(np.median(sd), 0.003, rtol=0.2)
    model = s2n.DegradationModel(noise_matrix=matrix)
    lr = xr.DataArray(smooth[0].astype(np.float32), dims=("band", "y", "x"))
    d = s2n.add_noise(lr, matrix=model.noise_matrix, seed=1).values - lr.values
    assert 0.002 < d.std() < 0.004


def test_bad_inputs_are_clear():
    x = s2n.example_image(64, seed=1).expand_dims(pair=1)
    with pytest.raises(s2n.InputError, match="nested grids"):
        fit_model(x, x)
    with pytest.raises(s2n.InputError, match="readable model JSON"):
        s2n.DegradationModel.load("/nonexistent/model.json")
    with pytest.raises(s2n.InputError, match="101x101"):
        s2n.DegradationModel(noise_matrix=np.eye(3))


def test_fit_figures_are_pngs(truth_pairs, tmp_path):
    from sen2naip_xr.figures import comparison_figure, gamma_density_figure, sigma_sweep_figure

    naip, s2, _, _ = truth_pairs
    res = fit_model(naip, s2, noise=False)
    for func, name in [(gamma_density_figure, "fig4.png"), (sigma_sweep_figure, "fig6.png")]:
        out = func(res, tmp_path / name)
        assert out.read_bytes()[:4] == b"\x89PNG"
    sims = s2n.degrade(naip, ["identity", "gamma_mvn"], noise="none", model=res.model, include_hr=False)
    out = comparison_figure(s2, sims["lr/lr"], tmp_path / "fig9.png")
    assert out.stat().st_size > 10_000
