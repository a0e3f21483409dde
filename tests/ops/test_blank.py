"""blank_mask / is_blank: zero variance over a 19x19 window, exactly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import sen2naip_xr as s2n
from tests.conftest import as_da


def _brute_force(img, window):
    half = window // 2
    h, w = img.shape[-2:]
    out = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            patch = img[:, max(0, y - half):y + half + 1, max(0, x - half):x + half + 1]
            out[y, x] = all(np.ptp(patch[b]) == 0 for b in range(img.shape[0]))
    return out


@pytest.mark.parametrize("window", [3, 19])
def test_matches_brute_force(window):
    rng = np.random.default_rng(0)
    img = (rng.integers(0, 4, (4, 48, 52)) / 255).astype(np.float32)
    img[:, 5:30, 10:40] = 0.0  # nodata fill
    img[:3, 35:48, 0:25] = 1.0  # saturated in RGB only: NIR varies -> not blank
    mask = s2n.blank_mask(as_da(img), window).values
    np.testing.assert_array_equal(mask, _brute_force(img, window))
    assert mask[17, 25] and not mask[40, 10]


def test_is_blank_threshold_and_leading_dims():
    rng = np.random.default_rng(1)
    img = rng.random((2, 4, 64, 64), dtype=np.float32)
    img[1, :, :30, :30] = 0
    flags = s2n.is_blank(as_da(img)).values
    assert flags.tolist() == [False, True]
    frac = float(s2n.blank_mask(as_da(img[1])).mean())
    assert frac == pytest.approx(ndimage.binary_erosion(np.pad(np.ones((30, 30)), ((0, 34), (0, 34))),
                                                        np.ones((19, 19)), border_value=1).mean(), abs=0.02)
    assert s2n.is_blank(as_da(img), max_fraction=0.5).values.tolist() == [False, False]


def test_nan_counts_as_blank():
    rng = np.random.default_rng(2)
    img = rng.random((4, 40, 40), dtype=np.float32)
    img[2, 20, 20] = np.nan
    mask = s2n.blank_mask(as_da(img)).values
    assert mask[20, 20] and mask[11, 11] and not mask[0, 0]
