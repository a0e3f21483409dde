"""Property-based tests of the numpy kernels (hypothesis): histogram matching, blur, noise."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sen2naip_xr.config import SEN2NAIP_SIGMA
from sen2naip_xr.ops import kernels, noise_table

SETTINGS = settings(max_examples=30, deadline=None)
REFLECTANCE = st.floats(0, 1, width=32, allow_nan=False)


def images(bands: int, size: tuple[int, int]):
    return hnp.arrays(np.float32, (bands, *size), elements=REFLECTANCE)


# --------------------------------------------------------------------------------------------------
# histogram matching
# --------------------------------------------------------------------------------------------------

@SETTINGS
@given(image=images(2, (7, 9)), reference=images(2, (5, 6)))
def test_histogram_matching_is_monotone(image, reference):
    """Pixel order is kept per band: a brighter source pixel is never mapped below a darker one."""
    out = kernels.histogram_match(image, reference)
    for b in range(image.shape[0]):
        order = np.argsort(image[b].ravel(), kind="stable")
        assert (np.diff(out[b].ravel()[order]) >= 0).all()


@SETTINGS
@given(image=images(2, (7, 9)), reference=images(2, (5, 6)))
def test_histogram_matching_is_idempotent(image, reference):
    once = kernels.histogram_match(image, reference)
    twice = kernels.histogram_match(once, reference)
    np.testing.assert_allclose(twice, once, atol=1e-6, rtol=0)


@SETTINGS
@given(image=images(1, (6, 6)), reference=images(1, (6, 6)))
def test_histogram_matching_takes_the_reference_values_when_sizes_match(image, reference):
    """Same pixel count, distinct values on both sides: the output is a permutation of the reference."""
    ramp = np.arange(image.size, dtype=np.float32).reshape(image.shape) * np.float32(1e-3)
    image, reference = image + ramp, reference + ramp  # distinct (ties would be interpolated between)
    if np.unique(image).size != image.size or np.unique(reference).size != reference.size:
        return
    out = kernels.histogram_match(image, reference)
    np.testing.assert_allclose(np.sort(out.ravel()), np.sort(reference.ravel()), atol=1e-6)


# --------------------------------------------------------------------------------------------------
# blur + downsample
# --------------------------------------------------------------------------------------------------

SIGMAS = st.lists(st.floats(0.5, 4.0), min_size=4, max_size=4).map(tuple)


@SETTINGS
@given(x=images(4, (32, 32)), y=images(4, (32, 32)), a=st.floats(-3, 3), b=st.floats(-3, 3), sigma=SIGMAS)
def test_blur_downsample_is_linear(x, y, a, b, sigma):
    lhs = kernels.blur_downsample((a * x.astype(np.float64) + b * y).astype(np.float32), sigma)
    rhs = a * kernels.blur_downsample(x, sigma).astype(np.float64) + b * kernels.blur_downsample(y, sigma)
    np.testing.assert_allclose(lhs, rhs, atol=2e-5 * (abs(a) + abs(b) + 1), rtol=0)


@SETTINGS
@given(x=images(4, (48, 48)), shift=st.integers(1, 3), sigma=SIGMAS)
def test_blur_downsample_is_shift_equivariant_away_from_edges(x, shift, sigma):
    """Moving the image by 4k HR pixels moves the LR image by k pixels, wherever the border is not read."""
    moved = np.roll(x, (4 * shift, 4 * shift), axis=(-2, -1))
    lr, lr_moved = kernels.blur_downsample(x, sigma), kernels.blur_downsample(moved, sigma)
    # the 14 taps reach 6 HR pixels (2 LR pixels) past a pixel's own 4: stay 2 LR pixels (+ shift) inside
    inner = slice(2 + shift, lr.shape[-1] - 2)
    src = slice(2, lr.shape[-1] - 2 - shift)
    np.testing.assert_allclose(lr_moved[:, inner, inner], lr[:, src, src], atol=1e-6, rtol=0)


@SETTINGS
@given(value=st.floats(0.0, 1.0, width=32), sigma=SIGMAS)
def test_blur_downsample_keeps_a_constant_image(value, sigma):
    x = np.full((4, 32, 32), value, np.float32)
    np.testing.assert_allclose(kernels.blur_downsample(x, sigma), value, atol=1e-6)


# --------------------------------------------------------------------------------------------------
# noise
# --------------------------------------------------------------------------------------------------

N = 4 * 64 * 64


@SETTINGS
@given(value=st.floats(0.01, 0.9), sigma=st.floats(0.001, 0.1), seed=st.integers(0, 2**31))
def test_gaussian_noise_moments(value, sigma, seed):
    """Mean 0 and sd sigma x band RMS (here the constant value), within sampling error."""
    lr = np.full((4, 64, 64), value, np.float32)
    noise = kernels.gaussian_noise(lr, kernels.band_rms(lr), sigma=sigma, key=kernels.noise_key(seed, "gaussian"))
    sd = sigma * value
    assert abs(noise.mean()) < 5 * sd / np.sqrt(N)
    assert abs(noise.std() / sd - 1) < 5 / np.sqrt(2 * N)


@SETTINGS
@given(value=st.floats(0.0, 0.49), seed=st.integers(0, 2**31))
def test_real_noise_moments_follow_the_matrix_row(value, seed):
    """Mean and variance of the sampled noise are those of the matrix row of the reflectance."""
    from sen2naip_xr.weights import noise_matrix

    lr = np.full((4, 64, 64), value, np.float32)
    noise = kernels.real_noise(lr, noise_table(), key=kernels.noise_key(seed, "real")).astype(np.float64)
    p = np.asarray(noise_matrix(), np.float64)[int(kernels.noise_rows(np.array([value], np.float32))[0])]
    p = p / p.sum()
    mean = float((p * kernels.REAL_NOISE_VALUES).sum())
    var = float((p * (kernels.REAL_NOISE_VALUES - mean) ** 2).sum())
    assert abs(noise.mean() - mean) < 5 * np.sqrt(var / N) + 1e-12
    m4 = float((p * (kernels.REAL_NOISE_VALUES - mean) ** 4).sum())  # heavy tails: use the real 4th moment
    assert abs(noise.var() - var) < 6 * np.sqrt(max(m4 - var**2, 0) / N) + 1e-12


@SETTINGS
@given(hr=images(4, (32, 32)), seed=st.integers(0, 2**31))
def test_the_chain_is_blur_then_noise(hr, seed):
    key = kernels.noise_key(seed, "real", "x")
    got = kernels.degrade_lr(hr, SEN2NAIP_SIGMA, noise="real", table=noise_table(), key=key)
    lr = kernels.blur_downsample(hr, SEN2NAIP_SIGMA)
    np.testing.assert_array_equal(got, lr + kernels.real_noise(lr, noise_table(), key=key))
