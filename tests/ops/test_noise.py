"""add_noise: the published reflectance-to-noise matrix (statistically, against the reference's draws)
and Gaussian noise scaled by band RMS."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import sen2naip_xr as s2n
from sen2naip_xr.ops import _numpy
from sen2naip_xr.weights import noise_matrix
from tests.conftest import as_da

VALUES = _numpy.REAL_NOISE_VALUES
EDGES = _numpy.REAL_NOISE_EDGES


def test_support_and_edges_match_reference(noise_stats):
    np.testing.assert_array_equal(VALUES, noise_stats["real_noise_values"])
    np.testing.assert_array_equal(EDGES, noise_stats["real_refl_edges"])
    P = noise_matrix()
    np.testing.assert_allclose(P @ VALUES, noise_stats["real_theory_mean"], atol=1e-15)


def _synthetic_rows(n_per_row: int, seed: int) -> np.ndarray:
    """Reflectances covering every row of the matrix, n_per_row each (the noise_stats.npz recipe)."""
    rng = np.random.default_rng(seed)
    vals = []
    for k in range(101):
        lo, hi = (-0.02, -1e-6) if k == 0 else (0.495, 1.0) if k == 100 else (EDGES[k - 1], EDGES[k])
        vals.append(rng.uniform(lo, hi, n_per_row))
    return np.concatenate(vals).astype(np.float32).reshape(4, 101, n_per_row // 4)


def _counts(lr: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    rows = np.digitize(lr, EDGES)
    idx = np.rint((noisy.astype(np.float64) - lr.astype(np.float64) + 0.0101) / 0.0002).astype(int)
    cnt = np.zeros((101, 101), np.int64)
    np.add.at(cnt, (rows.ravel(), idx.ravel()), 1)
    return cnt


def test_real_noise_values_are_on_the_support():
    lr = _synthetic_rows(400, 0)
    noise = s2n.add_noise(as_da(lr), seed=3).values - lr
    idx = np.rint((noise.astype(np.float64) + 0.0101) / 0.0002).astype(int)
    assert idx.min() >= 0 and idx.max() <= 100
    np.testing.assert_allclose(noise, VALUES[idx], atol=6e-8)  # float32 add/subtract round-off only (1 ulp at 1.0)


def test_real_noise_follows_the_matrix_per_row(noise_stats):
    """Chi-square goodness of fit per row against P[r], with the reference's own draws as a control."""
    lr = _synthetic_rows(4000, 42)
    ours = _counts(lr, s2n.add_noise(as_da(lr), seed=11).values)
    P = noise_matrix()
    ref = noise_stats["real_synth_counts"]
    p_ours, p_ref, p_homog = [], [], []
    for r in range(101):
        expected = P[r] * ours[r].sum()
        keep = expected >= 5
        obs = np.append(ours[r][keep], ours[r][~keep].sum())
        exp = np.append(expected[keep], expected[~keep].sum())
        if exp[-1] == 0:
            obs, exp = obs[:-1], exp[:-1]
        exp = exp * obs.sum() / exp.sum()
        p_ours.append(stats.chisquare(obs, exp).pvalue)
        exp_ref = P[r] * ref[r].sum()
        obs_ref = np.append(ref[r][keep], ref[r][~keep].sum())
        exp_ref2 = np.append(exp_ref[keep], exp_ref[~keep].sum())
        if exp_ref2[-1] == 0:
            obs_ref, exp_ref2 = obs_ref[:-1], exp_ref2[:-1]
        p_ref.append(stats.chisquare(obs_ref, exp_ref2 * obs_ref.sum() / exp_ref2.sum()).pvalue)
        table = np.stack([ours[r][keep], ref[r][keep]])
        table = table[:, table.sum(0) > 0]
        p_homog.append(stats.chi2_contingency(table).pvalue)
    # 101 tests each: Bonferroni at 1e-3 overall; and the p-values look uniform like the reference's
    assert min(p_ours) > 1e-3 / 101, min(p_ours)
    assert min(p_homog) > 1e-3 / 101, min(p_homog)
    assert stats.kstest(p_ours, "uniform").pvalue > 1e-3
    assert min(p_ref) > 1e-3 / 101  # sanity: the control passes the same test


def test_real_noise_on_lr484_matches_reference_moments(noise_stats):
    golden = np.load(str(__import__("tests.conftest", fromlist=["REFERENCE"]).REFERENCE / "golden_s484.npz"))
    lr = golden["blur_ds"]
    draws = np.stack([s2n.add_noise(as_da(lr), seed=s).values - lr for s in range(30)])
    rows = np.digitize(lr, EDGES)
    theory_mean, theory_std = noise_stats["real_theory_mean"], noise_stats["real_theory_std"]
    for r in np.unique(rows):
        d = draws[:, rows == r].astype(np.float64)
        n = d.size
        if n < 200:
            continue
        z = (d.mean() - theory_mean[r]) / (theory_std[r] / np.sqrt(n))
        assert abs(z) < 5, (r, z)
        assert 0.85 < d.std() / theory_std[r] < 1.15, (r, d.std(), theory_std[r])
        ref_std = noise_stats["real_lr484_std"][r]
        assert 0.8 < d.std() / ref_std < 1.25
    # per-pixel spread over 30 draws agrees with the reference's per-pixel spread on average
    ratio = draws.std(0).mean() / noise_stats["real_lr484_pixel_std"].mean()
    assert ratio == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize("name", ["s256", "s484"])
def test_gaussian_noise_sd_is_sigma_times_band_rms(name, noise_stats, shared):
    lr = np.load(shared / "reference" / f"golden_{name}.npz")["blur_ds"]
    rms = noise_stats[f"gauss_{name}_rms"]
    np.testing.assert_allclose(_numpy.band_rms(lr).ravel(), rms, rtol=1e-6)
    draws = np.stack([s2n.add_noise(as_da(lr), "gaussian", seed=s, sigma=0.025).values - lr for s in range(50)])
    emp_std = draws.astype(np.float64).std(axis=(0, 2, 3))
    np.testing.assert_allclose(emp_std / noise_stats[f"gauss_{name}_expected_std"], 1.0, atol=0.01)
    np.testing.assert_allclose(emp_std, noise_stats[f"gauss_{name}_emp_std"], rtol=0.01)
    assert np.all(np.abs(draws.mean(axis=(0, 2, 3))) < 4 * emp_std / np.sqrt(draws[:, 0].size))
    # the paper's sigma is the default
    d = s2n.add_noise(as_da(lr), "gaussian", seed=1).values - lr
    np.testing.assert_allclose(d.std(axis=(1, 2)) / rms, 0.012, rtol=0.03)


def test_noise_none_returns_input_and_streams_differ():
    lr = _synthetic_rows(400, 1)
    np.testing.assert_array_equal(s2n.add_noise(as_da(lr), "none").values, lr)
    a = s2n.add_noise(as_da(lr), seed=5, stream="unet").values
    b = s2n.add_noise(as_da(lr), seed=5, stream="vae").values
    c = s2n.add_noise(as_da(lr), seed=5, stream="unet").values
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_fast_row_lookup_equals_digitize():
    rng = np.random.default_rng(4)
    e32 = EDGES.astype(np.float32)
    v = np.concatenate([rng.uniform(-0.1, 1.2, 50_000).astype(np.float32), e32, np.nextafter(e32, -1),
                        np.nextafter(e32, 1), np.array([0, -0.0, 0.495, 0.49499997, 1e9, -1e9], np.float32)])
    np.testing.assert_array_equal(_numpy.noise_rows(v), np.digitize(v, EDGES))


def test_cell_table_sampler_equals_plain_inverse_cdf():
    """The 1024-cell scan gives exactly the first column whose CDF exceeds u (a binary search's answer)."""
    from sen2naip_xr import _rng

    lr = np.random.default_rng(5).uniform(-0.02, 0.7, (4, 60, 70)).astype(np.float32)
    table = _numpy.noise_cdf_table(noise_matrix())
    out = _numpy.real_noise(lr, table, key=99)
    cdf = table[0].reshape(101, 101)
    u = _rng.uniform(99, lr.shape)
    rows = np.digitize(lr, EDGES)
    expected = np.array([np.searchsorted(cdf[r], x, side="right") for r, x in zip(rows.ravel(), u.ravel(), strict=True)])
    np.testing.assert_array_equal(out.ravel(), VALUES[expected].astype(np.float32))
