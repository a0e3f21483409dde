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


# -- the O(1)-per-pixel kernel against the definition it replaced (19x19 scipy min/max filters) -----------


def _scipy_definition(image, window):
    """The former kernel, kept as the definition: max == min per band over the window, or a NaN in it."""
    size = (1,) * (image.ndim - 2) + (window, window)
    nan = np.isnan(image)
    data = np.where(nan, np.float32(0), image)
    hi = ndimage.maximum_filter(data, size=size, mode="reflect")
    lo = ndimage.minimum_filter(data, size=size, mode="reflect")
    blank = np.all(hi == lo, axis=-3)
    if nan.any():
        blank |= ndimage.maximum_filter(nan.any(axis=-3), size=size[:-3] + size[-2:], mode="reflect")
    return blank


def _cases():
    rng = np.random.default_rng(7)
    rand = rng.random((2, 4, 90, 77), dtype=np.float32)  # random: nothing blank
    patches = (rng.integers(0, 3, (2, 4, 90, 77)) / 255).astype(np.float32)
    patches[0, :, 10:40, 5:30] = 0.25  # constant patches: one larger than the window, one on the border
    patches[0, :, 60:90, 50:77] = 0.0
    patches[1, :3, 20:60, 20:60] = 1.0  # RGB constant, NIR varies: not blank
    patches[1, :, 70:80, 0:77] = 0.5  # a 10-row band: thinner than the window
    nan = rand.copy()
    nan[0, 2, 45, 38] = np.nan
    nan[1, :, 0, 0] = np.nan  # a corner
    nan[1, 0, 89, 60:70] = np.nan
    zeros = np.zeros((2, 4, 90, 77), np.float32)
    zeros[1, 1, 44, 44] = -0.0  # -0.0 == 0.0, as max == min says
    zeros[1, 3, 3, 3] = 1e-30
    return {"random": rand, "constant-patch": patches, "nan": nan, "zeros": zeros}


@pytest.mark.parametrize("case", ["random", "constant-patch", "nan", "zeros"])
@pytest.mark.parametrize("window", [3, 5, 19])
def test_same_as_scipy_definition_numpy(case, window):
    img = _cases()[case]
    got = s2n.blank_mask(as_da(img), window).values
    want = _scipy_definition(img, window)
    np.testing.assert_array_equal(got, want)
    if case == "random":
        assert not want.any()
    if case in ("constant-patch", "nan"):
        assert want.any() and not want.all()


@pytest.mark.parametrize("case", ["constant-patch", "nan"])
@pytest.mark.parametrize("chunks", [{"y": 23, "x": 31}, {"y": 45, "x": 20, "band": 2}])
def test_same_as_scipy_definition_dask(case, chunks):
    img = _cases()[case]
    da = as_da(img).chunk(chunks)  # chunks smaller than twice the halo: the halos span blocks
    got = s2n.blank_mask(da, 19)
    assert got.chunks is not None
    np.testing.assert_array_equal(got.values, _scipy_definition(img, 19))
    np.testing.assert_array_equal(s2n.is_blank(da).values, _scipy_definition(img, 19).any(axis=(-2, -1)))


def test_large_window_and_thin_images():
    rng = np.random.default_rng(3)
    img = (rng.integers(0, 2, (4, 19, 300)) / 255).astype(np.float32)
    img[:, :, 100:200] = 0.5
    for window in (19, 1):
        np.testing.assert_array_equal(s2n.blank_mask(as_da(img), window).values, _scipy_definition(img, window))
