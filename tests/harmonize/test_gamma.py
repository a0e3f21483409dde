"""Gamma harmonizers: exact (deterministic) gammas, the reference's pooled LUT outputs, per-band default."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import sen2naip_xr as s2n
from sen2naip_xr.harmonize import _numpy
from tests.conftest import as_da

PERC = [10, 25, 50, 75, 90]


def test_exact_gammas_equal_meta(meta):
    exact = meta["gamma_exact"]
    for p in PERC:
        assert s2n.gamma_values("gamma_lognormal", p)[0] == pytest.approx(exact["gamma_lognormal"][str(p)], abs=1e-12)
        pooled = s2n.gamma_values("gamma_mvn", p, pooled=True)
        assert np.all(pooled == pooled[0])
        assert pooled[0] == pytest.approx(exact["gamma_multivariate_normal_pooled"][str(p)], abs=1e-12)


def test_reference_draws_lie_within_monte_carlo_spread(golden, meta):
    """The reference's 100k-draw gammas scatter around our exact values by their Monte-Carlo sd."""
    spread = meta["gamma_spread_over_50_numpy_seeds"]
    for k, p in enumerate(PERC):
        ours = s2n.gamma_values("gamma_mvn", p, pooled=True)[0]
        sd = spread["gamma_multivariate_normal"][str(p)]["std"]
        assert abs(golden["gamma_mvn_values"][k] - ours) < 5 * sd
    ours = s2n.gamma_values("gamma_lognormal", 50)[0]
    assert abs(golden["gamma_lognormal_values"][0] - ours) < 5 * spread["gamma_lognormal"]["50"]["std"]


def test_pooled_lut_outputs_with_the_reference_gamma(golden):
    """Given the gamma the reference drew, quantize='u8' reproduces its LUT output to 1e-7."""
    x = as_da(golden["input"])
    for key, values in [("gamma_mvn_lut", golden["gamma_mvn_values"]),
                        ("gamma_lognormal_lut", golden["gamma_lognormal_values"])]:
        method = "gamma_mvn" if "mvn" in key else "gamma_lognormal"
        for k, g in enumerate(values):
            out = s2n.harmonize(x, method, gamma=float(g), quantize="u8").values
            expected = golden[key][k][golden["input_u8"]]
            np.testing.assert_allclose(out, expected, atol=1e-7, rtol=0)
    if "gamma_mvn" in golden:  # full reference outputs (s256 only)
        out = s2n.harmonize(x, "gamma_mvn", gamma=float(golden["gamma_mvn_values"][2]), quantize="u8").values
        np.testing.assert_allclose(out, golden["gamma_mvn"][2], atol=1e-7, rtol=0)


def test_u8_quantisation_truncates_and_wraps_like_torch():
    x = np.array([0.5, 0.999, -0.1, 1.2, 1.0], np.float32)
    img = np.broadcast_to(x, (4, 1, 5)).copy()
    out = _numpy.apply_gamma(img, np.ones(4), quantize="u8")
    # u8 = trunc(x*255) with wrap: 127, 254, 231 (-25 wraps), 50 (306 wraps), 255
    np.testing.assert_allclose(out[0, 0], np.array([127, 254, 231, 50, 255]) / 255, atol=1e-7)


def test_default_is_per_band_marginal_quantile():
    g = s2n.gamma_values("gamma_mvn", 25)
    expected = _numpy.MVN_MEAN + np.sqrt(np.diag(_numpy.MVN_COV)) * stats.norm.ppf(0.25)
    np.testing.assert_allclose(g, expected, rtol=1e-12)
    assert len(set(np.round(g, 6))) == 4
    rng = np.random.default_rng(0)
    img = rng.random((4, 16, 16), dtype=np.float32)
    out = s2n.harmonize(as_da(img), "gamma_mvn", percentile=25).values
    for b in range(4):
        np.testing.assert_allclose(out[b], img[b] ** np.float32(1 / g[b]), rtol=2e-6)


def test_gamma_is_deterministic_and_monotone_in_percentile():
    img = as_da(np.random.default_rng(1).random((4, 32, 32), dtype=np.float32))
    a = s2n.harmonize(img, "gamma_lognormal", percentile=10).values
    b = s2n.harmonize(img, "gamma_lognormal", percentile=10).values
    c = s2n.harmonize(img, "gamma_lognormal", percentile=90).values
    np.testing.assert_array_equal(a, b)
    assert np.all(c >= a)  # higher gamma -> smaller exponent -> brighter
