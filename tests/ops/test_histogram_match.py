"""histogram_match: skimage.exposure.match_histograms semantics, per band, to atol 1e-6."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.exposure import match_histograms

import sen2naip_xr as s2n
from sen2naip_xr.ops import _numpy
from tests.conftest import as_da


def _sk(image, reference):
    return match_histograms(image, reference, channel_axis=0)


def test_unet_hm_parity(golden):
    """The reference's unet_hm is match_histograms(input, unet_raw): reproduced exactly."""
    out = s2n.histogram_match(as_da(golden["input"]), as_da(golden["unet_raw"]))
    np.testing.assert_allclose(out.values, golden["unet_hm"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("case", ["8bit_to_continuous", "continuous_to_8bit", "ties", "small_template",
                                  "low_cardinality", "high_cardinality"])
def test_matches_skimage(case):
    rng = np.random.default_rng(7)
    shape = (4, 120, 140)
    u8 = (np.round(rng.random(shape) ** 2 * 255) / 255).astype(np.float32)
    cont = rng.gamma(2.0, 0.05, shape).astype(np.float32)
    if case == "8bit_to_continuous":
        img, ref = u8, cont
    elif case == "continuous_to_8bit":
        img, ref = cont, u8
    elif case == "ties":
        img = cont.copy()
        img[:, :40, :40] = 0.3  # a flat roof: a big tie
        img[:, 50:60, :] = 0.0
        ref = cont[:, ::-1].copy()
        ref[:, :10] = 0.1
    elif case == "small_template":
        img, ref = u8, cont[:, :31, :17].copy()
    elif case == "low_cardinality":
        img = (rng.integers(0, 900, shape) / 900).astype(np.float32)  # not 8-bit, few distinct values
        ref = cont
    else:
        img, ref = cont, (cont * 1.3 + 0.01).astype(np.float32)
    out = s2n.histogram_match(as_da(img), as_da(ref)).values
    np.testing.assert_allclose(out, _sk(img, ref), atol=1e-6, rtol=0)
    assert out.dtype == np.float32


def test_constant_bands_follow_skimage():
    rng = np.random.default_rng(3)
    img = rng.random((4, 50, 50), dtype=np.float32)
    img[1] = 0.25  # constant source band -> the template's maximum (quantile 1)
    ref = rng.random((4, 40, 40), dtype=np.float32)
    ref[2] = 0.6  # constant template band -> everything becomes 0.6
    out = s2n.histogram_match(as_da(img), as_da(ref)).values
    np.testing.assert_allclose(out, _sk(img, ref), atol=1e-6)
    assert np.all(out[1] == ref[1].max())
    assert np.all(out[2] == np.float32(0.6))


def test_eight_bit_fast_path_detects_levels_exactly():
    levels = np.arange(256, dtype=np.float32) / np.float32(255)
    assert _numpy.levels8(levels) is not None
    nudged = levels.copy()
    nudged[10] = np.nextafter(nudged[10], np.float32(1))
    assert _numpy.levels8(nudged) is None  # one value off the 8-bit lattice: general path
    assert _numpy.levels8(np.array([-1 / 255], np.float32)) is None


def test_leading_dims_and_broadcast_reference():
    rng = np.random.default_rng(5)
    img = rng.random((3, 4, 30, 30), dtype=np.float32)
    ref = rng.random((4, 20, 20), dtype=np.float32) ** 3
    out = s2n.histogram_match(as_da(img), as_da(ref)).values
    for i in range(3):
        np.testing.assert_allclose(out[i], _sk(img[i], ref), atol=1e-6)


def test_nan_pixels_are_excluded_and_stay_nan():
    rng = np.random.default_rng(9)
    img = rng.random((4, 40, 40), dtype=np.float32)
    ref = rng.random((4, 40, 40), dtype=np.float32) ** 2
    img_nan = img.copy()
    img_nan[:, :5, :5] = np.nan
    out = s2n.histogram_match(as_da(img_nan), as_da(ref)).values
    assert np.isnan(out[:, :5, :5]).all()
    valid = ~np.isnan(img_nan[0])
    for b in range(4):
        expected = match_histograms(img[b][valid], ref[b].ravel())
        np.testing.assert_allclose(out[b][valid], expected, atol=1e-6)
