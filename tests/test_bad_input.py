"""Bad input (issue 2, point 6): each case is a clear error or a documented result, for every public function.

Errors are :class:`sen2naip_xr.InputError` (or ``WeightsError``) whose message names the argument, the bad
value and the fix. Structural problems (dtype, dims, band count, size) raise while the graph is built;
value problems (NaN, out of range) raise when a dask task runs, immediately for numpy data.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError

import dask.array as dsa
import numpy as np
import pytest
import xarray as xr
from skimage.exposure import match_histograms

import sen2naip_xr as s2n
from sen2naip_xr import InputError, MissingDependencyError, Sen2NaipError, WeightsError
from sen2naip_xr import weights as weights_mod

INSTALL = 'pip install --no-deps "opensr-degradation==1.0.1"'
BACKENDS = ["numpy", "dask"]


@pytest.fixture(scope="module")
def img() -> xr.DataArray:
    """A 32x32 NAIP-like image (band, y, x) in [0, 1]."""
    return s2n.example_image(size=32, seed=1)


def backend(da: xr.DataArray, kind: str) -> xr.DataArray:
    return da.chunk({da.dims[-2]: 16}) if kind == "dask" else da  # the y dim, whatever its name


def run(func: Callable, *args, **kwargs):
    """Call ``func`` and compute the result, so dask tasks run too."""
    out = func(*args, **kwargs)
    return out.compute() if hasattr(out, "compute") else out


@contextlib.contextmanager
def raises(*parts: str, cls: type[Exception] = InputError):
    """``pytest.raises(cls)`` that also checks every substring of the message."""
    with pytest.raises(cls) as info:
        yield info
    missing = [p for p in parts if p not in str(info.value)]
    assert not missing, f"message lacks {missing}: {info.value}"


def test_exception_tree():
    assert issubclass(InputError, Sen2NaipError) and issubclass(InputError, ValueError)
    assert issubclass(WeightsError, Sen2NaipError) and issubclass(MissingDependencyError, ImportError)


#: every public function taking an image, called with ``x`` as that image (``ref`` a good partner)
PUBLIC: dict[str, tuple[str, Callable]] = {
    "histogram_match": ("image", lambda x, ref: s2n.histogram_match(x, ref)),
    "histogram_match_reference": ("reference", lambda x, ref: s2n.histogram_match(ref, x)),
    "blank_mask": ("image", lambda x, ref: s2n.blank_mask(x, 5)),
    "is_blank": ("image", lambda x, ref: s2n.is_blank(x, 5)),
    "blur_downsample": ("image", lambda x, ref: s2n.blur_downsample(x)),
    "add_noise_real": ("lr", lambda x, ref: s2n.add_noise(x, "real")),
    "add_noise_gaussian": ("lr", lambda x, ref: s2n.add_noise(x, "gaussian")),
    "harmonize_identity": ("image", lambda x, ref: s2n.harmonize(x, "identity")),
    "harmonize_gamma_lognormal": ("image", lambda x, ref: s2n.harmonize(x, "gamma_lognormal")),
    "harmonize_gamma_mvn": ("image", lambda x, ref: s2n.harmonize(x, "gamma_mvn")),
    "harmonize_unet": ("image", lambda x, ref: s2n.harmonize(x, "unet", device="cpu")),
    "harmonize_vae": ("image", lambda x, ref: s2n.harmonize(x, "vae")),
    "degrade": ("image", lambda x, ref: s2n.degrade(x, ["identity", "gamma_mvn", "vae"], device="cpu")),
}
#: the functions that check values (NaN, range): every harmonizer but identity, and degrade through them
VALUE_CHECKED = ["harmonize_gamma_lognormal", "harmonize_gamma_mvn", "harmonize_unet", "harmonize_vae", "degrade"]


# --------------------------------------------------------------------------------------------------
# structural errors: raised while the graph is built, for every public function
# --------------------------------------------------------------------------------------------------


def _structural_cases(img: xr.DataArray) -> dict[str, tuple[object, Callable[[str], tuple[str, ...]]]]:
    """bad image -> expected message parts, given the argument's name."""
    return {
        "uint8": ((img * 255).astype("uint8"),
                  lambda a: (a, "dtype uint8", "floats in [0, 1]", f"{a}.astype('float32') / 255")),
        "uint16": ((img * 10000).astype("uint16"),
                   lambda a: (a, "dtype uint16", f"{a}.astype('float32') / 10000")),
        "int64": ((img * 255).astype("int64"), lambda a: (a, "dtype int64", ".astype('float32')")),
        "bool": (img > 0.3, lambda a: (a, "dtype bool", ".astype('float32')")),
        "band_dim_misnamed": (img.rename(band="bands"),
                              lambda a: (a, "dims ('bands', 'y', 'x')", "lacks ['band']", f"{a}.rename(")),
        "spatial_dims_misnamed": (img.rename(y="lat", x="lon"),
                                  lambda a: (a, "lacks ['y', 'x']", "'lat': 'y', 'lon': 'x'")),
        "band_dim_missing": (img.isel(band=0),
                             lambda a: (a, "dims ('y', 'x')", "lacks ['band']", f"{a}.expand_dims(band=")),
    }


@pytest.mark.parametrize("case", ["uint8", "uint16", "int64", "bool", "band_dim_misnamed", "spatial_dims_misnamed",
                                  "band_dim_missing"])
@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("func", list(PUBLIC))
def test_structural_errors(img, func, kind, case, no_compute):
    arg, call = PUBLIC[func]
    bad, parts = _structural_cases(img)[case]
    with no_compute(), raises(*parts(arg)):  # raised before any dask computation
        call(backend(bad, kind), img)


@pytest.mark.parametrize("func", list(PUBLIC))
def test_not_an_image(img, func):
    arg, call = PUBLIC[func]
    with raises(arg, "is a list", "pass an xarray.DataArray with dims (..., band, y, x)"):
        call(img.values.tolist(), img)
    for two_d in (img.values[0], dsa.from_array(img.values[0])):
        with raises(arg, "shape (32, 32)", "at least 3 axes (band, y, x)"):
            call(two_d, img)


@pytest.mark.parametrize("kind", BACKENDS)
def test_plain_arrays_are_accepted_as_band_y_x(img, kind):
    """Documented: numpy/dask arrays get dims (dim_0, ..., band, y, x)."""
    arr = img.values[None] if kind == "numpy" else dsa.from_array(img.values[None], chunks=(1, 2, 16, 32))
    out = run(s2n.blur_downsample, arr)
    assert out.dims == ("dim_0", "band", "y", "x") and out.shape == (1, 4, 8, 8)
    np.testing.assert_array_equal(out.values[0], s2n.blur_downsample(img).values)


@pytest.mark.parametrize("kind", BACKENDS)
def test_float64_and_reordered_bands_are_normalised(img, kind):
    """Documented: floats become float32; a band coordinate holding the 4 bands in another order is reordered."""
    expected = s2n.harmonize(img, "gamma_mvn")
    shuffled = backend(img.astype("float64").isel(band=[3, 1, 0, 2]), kind)
    out = run(s2n.harmonize, shuffled, "gamma_mvn")
    assert out.dtype == np.float32 and list(out.band.values) == list(s2n.BANDS)
    np.testing.assert_array_equal(out.values, expected.values)
    assert run(s2n.blur_downsample, shuffled).dtype == np.float32


# --------------------------------------------------------------------------------------------------
# wrong band count
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BACKENDS)
def test_wrong_band_count(img, kind, no_compute):
    three = backend(img.isel(band=slice(0, 3)), kind)
    with no_compute():
        for func in ("harmonize_identity", "harmonize_gamma_mvn", "harmonize_unet", "harmonize_vae", "degrade"):
            with raises("image has 3 bands", "needs 4", "('red', 'green', 'blue', 'nir')", "image.sel(band="):
                PUBLIC[func][1](three, img)
        with raises("image has 3 bands", "sigma=(3.0, 2.9, 2.9, 3.4) has 4", "one sigma per band"):
            s2n.blur_downsample(three)
        with raises("reference has 4 bands but image has 3", "reference.sel(band=image.band)"):
            s2n.histogram_match(three, img)
        with raises("reference has 3 bands but image has 4", "same bands"):
            s2n.histogram_match(img, three)
        with raises("reference has dims ['t']", "drop or select them"):
            s2n.histogram_match(img, img.expand_dims(t=2))


@pytest.mark.parametrize("kind", BACKENDS)
def test_any_band_count_is_fine_where_bands_are_independent(img, kind):
    """Documented: blank check, noise and blur with matching sigmas work band by band, on any number of bands."""
    three = backend(img.isel(band=slice(0, 3)), kind)
    assert run(s2n.blank_mask, three).shape == (32, 32)
    assert run(s2n.add_noise, three).shape == (3, 32, 32)
    assert run(s2n.add_noise, three, "gaussian").shape == (3, 32, 32)
    out = run(s2n.blur_downsample, three, sigma=(3.0, 2.9, 2.9))
    np.testing.assert_array_equal(out.values, s2n.blur_downsample(img).values[:3])


# --------------------------------------------------------------------------------------------------
# values: out of range, NaN (checked inside the tasks for dask data)
# --------------------------------------------------------------------------------------------------


def _value_cases(img: xr.DataArray) -> dict[str, tuple[xr.DataArray, tuple[str, ...]]]:
    nan = img.copy()
    nan[:, 3:5, 7:9] = np.nan
    return {
        "above_1": (img * 2, ("image has values in [", "outside [0.0, 1.0]", "DN/255", "image.clip(0.0, 1.0)")),
        "negative": (img - 0.5, ("image has values in [", "outside [0.0, 1.0]", "image.clip(0.0, 1.0)")),
        "percent": (img * 100, ("outside [0.0, 1.0]", "DN/255")),
        "nan": (nan, ("image contains NaN (nodata)", "image.fillna(0)", "sen2naip_xr.is_blank")),
        "all_nan": (xr.full_like(img, np.nan), ("image contains NaN (nodata)", "image.fillna(0)")),
    }


@pytest.mark.parametrize("case", ["above_1", "negative", "percent", "nan", "all_nan"])
@pytest.mark.parametrize("func", VALUE_CHECKED)
def test_value_errors_numpy(img, func, case):
    bad, parts = _value_cases(img)[case]
    if case in ("above_1", "negative"):  # the value found is named
        parts += (f"[{float(bad.min()):.4g}, {float(bad.max()):.4g}]",)
    with raises(*parts):
        run(PUBLIC[func][1], bad, img)


@pytest.mark.parametrize("case", ["above_1", "nan"])
@pytest.mark.parametrize("func", VALUE_CHECKED)
def test_value_errors_dask_raise_at_compute(img, func, case, no_compute):
    if "unet" in func:
        pytest.importorskip("torch")
    bad, parts = _value_cases(img)[case]
    with no_compute():
        out = PUBLIC[func][1](backend(bad, "dask"), img)  # building the graph is fine
    with raises(*parts):
        out.compute()


def test_value_checks_see_every_block(img):
    """A NaN in one chunk only (of 4) is found."""
    bad = img.copy()
    bad[2, 30, 30] = np.nan
    with raises("contains NaN"):
        s2n.harmonize(bad.chunk({"y": 16, "x": 16, "band": 1}), "gamma_mvn").compute()


@pytest.mark.parametrize("kind", BACKENDS)
def test_identity_passes_the_image_through_unchecked(img, kind):
    """Documented ("identity: the image itself"): a zero-cost pass-through, values are not checked."""
    bad, _ = _value_cases(img)["above_1"]
    out = run(s2n.harmonize, backend(bad, kind), "identity")
    np.testing.assert_array_equal(out.values, bad.values)
    ds = run(s2n.degrade, backend(bad, kind), ["identity"], noise="none")
    assert float(ds["lr/lr"].max()) > 1


@pytest.mark.parametrize("kind", BACKENDS)
def test_out_of_range_is_fine_for_the_linear_operators(img, kind):
    """Documented: blur, noise and histogram matching do not check the range (S2 reflectance may exceed 1)."""
    x = backend(img * 2 - 0.2, kind)
    np.testing.assert_allclose(run(s2n.blur_downsample, x).values,
                               2 * s2n.blur_downsample(img).values - 0.2, atol=1e-5)
    assert np.isfinite(run(s2n.add_noise, x).values).all()
    assert np.isfinite(run(s2n.add_noise, x, "gaussian").values).all()
    matched = run(s2n.histogram_match, x, img).values
    assert matched.min() >= img.values.min() and matched.max() <= img.values.max()


@pytest.mark.parametrize("kind", BACKENDS)
def test_nan_in_histogram_match_stays_nan_and_is_excluded(img, kind):
    rng = np.random.default_rng(0)
    image = img.copy()
    holes = rng.random(img.shape) < 0.1
    image.values[holes] = np.nan
    ref = s2n.example_image(size=24, seed=5) ** 0.6
    ref_holes = rng.random(ref.shape) < 0.2
    ref.values[ref_holes] = np.nan
    out = run(s2n.histogram_match, backend(image, kind), backend(ref, kind)).values
    np.testing.assert_array_equal(np.isnan(out), holes)
    for b in range(4):  # finite pixels match the finite reference pixels, as skimage does without the NaNs
        src = image.values[b][~holes[b]]
        expected = match_histograms(src, ref.values[b][~ref_holes[b]])
        np.testing.assert_allclose(out[b][~holes[b]], expected, atol=1e-6)


@pytest.mark.parametrize("model", ["real", "gaussian"])
@pytest.mark.parametrize("kind", BACKENDS)
def test_nan_in_add_noise_stays_nan(img, kind, model):
    lr = s2n.blur_downsample(s2n.example_image(size=64, seed=2))
    holes = np.zeros(lr.shape, bool)
    holes[1, 3:6, 2] = holes[3, 0, 0] = True
    bad = lr.where(~holes)
    out = run(s2n.add_noise, backend(bad, kind), model, seed=1).values
    np.testing.assert_array_equal(np.isnan(out), holes)
    if model == "real":  # per-pixel noise: the other pixels are untouched by the NaNs
        np.testing.assert_array_equal(out[~holes], s2n.add_noise(lr, model, seed=1).values[~holes])


def _reflect(s: int, n: int) -> int:
    return -s if s < 0 else (2 * (n - 1) - s if s > n - 1 else s)


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("where", [(40, 52), (2, 95), (47, 48)])
def test_nan_in_blur_spreads_only_within_the_14_tap_support(kind, where):
    """LR pixel i reads HR rows 4i-5 .. 4i+8 (13-tap Gaussian folded into the bilinear 2-tap mean), reflected."""
    hr = s2n.example_image(size=96, seed=3)
    r, c = where
    bad = hr.copy()
    bad[1, r, c] = np.nan
    out = run(s2n.blur_downsample, bad.chunk({"y": 40, "x": 48}) if kind == "dask" else bad).values

    def reads(i: int, p: int) -> bool:
        return p in {_reflect(s, 96) for s in range(4 * i - 5, 4 * i + 9)}

    expected = np.zeros((24, 24), bool)
    rows = [i for i in range(24) if reads(i, r)]
    cols = [j for j in range(24) if reads(j, c)]
    expected[np.ix_(rows, cols)] = True
    np.testing.assert_array_equal(np.isnan(out[1]), expected)
    assert not np.isnan(out[[0, 2, 3]]).any()  # bands are blurred independently
    assert 2 <= len(rows) <= 4 and 2 <= len(cols) <= 4


@pytest.mark.parametrize("kind", BACKENDS)
def test_nan_counts_as_blank(img, kind):
    bad = img.copy()
    bad[2, 16, 16] = np.nan
    mask = run(s2n.blank_mask, backend(bad, kind), 5).values
    assert mask[14:19, 14:19].all() and mask.sum() == 25
    assert bool(run(s2n.is_blank, backend(bad, kind), 5))
    assert not bool(s2n.is_blank(img, 5))


# --------------------------------------------------------------------------------------------------
# sizes: not divisible by 4, smaller than the kernel or the window
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BACKENDS)
def test_sizes_not_divisible_by_4(img, kind, no_compute):
    with no_compute():
        with raises("image has {'y': 30} pixels, not divisible by 4", "image.isel(y=slice(0, 28))"):
            s2n.blur_downsample(backend(img.isel(y=slice(0, 30)), kind))
        with raises("{'y': 31, 'x': 29}", "image.isel(y=slice(0, 28), x=slice(0, 28))"):
            s2n.degrade(backend(img.isel(y=slice(0, 31), x=slice(0, 29)), kind), ["identity"])
        with raises("{'x': 30}", "not divisible by 4"):
            s2n.blur_downsample(backend(img.isel(x=slice(0, 30)), kind), mode="raw")


@pytest.mark.parametrize("kind", BACKENDS)
def test_sizes_not_divisible_by_4_are_fine_without_downsampling(img, kind):
    """Documented: histogram matching, blank check, noise and the harmonizers take any size."""
    odd = backend(img.isel(y=slice(0, 30), x=slice(0, 27)), kind)
    for func in ("histogram_match", "blank_mask", "add_noise_gaussian", "harmonize_gamma_mvn", "harmonize_vae"):
        out = run(PUBLIC[func][1], odd, img)
        assert out.sizes["y"] == 30 and out.sizes["x"] == 27, func


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.torch
def test_images_smaller_than_the_kernel(img, kind, no_compute):
    tiny = backend(img.isel(y=slice(0, 4), x=slice(0, 4)), kind)
    with no_compute():
        for call in (lambda: s2n.blur_downsample(tiny), lambda: s2n.degrade(tiny, ["identity"]),
                     lambda: s2n.harmonize(tiny, "unet", device="cpu"), lambda: s2n.harmonize(tiny, "vae")):
            with raises("image is 4x4 pixels", "at least 8x8", "use larger ROIs"):
                call()
        with raises("image is 32x32 pixels, smaller than window=33", "pass a smaller window or a larger image"):
            s2n.blank_mask(backend(img, kind), 33)
        with raises("smaller than window=19"):
            s2n.is_blank(tiny)


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.torch
def test_the_smallest_images(img, kind):
    """Documented: 8x8 is the smallest blur input (torch's reflect pad of 6 needs 7); 1x1 harmonizes at 2.5 m."""
    small = img.isel(y=slice(0, 8), x=slice(0, 8))
    out = run(s2n.blur_downsample, backend(small, kind))
    assert out.shape == (4, 2, 2) and np.isfinite(out.values).all()
    assert small.values.min() <= out.values.min() and out.values.max() <= small.values.max()
    ds = run(s2n.degrade, backend(small, kind), ["identity", "unet", "vae"], device="cpu")
    assert ds["lr/lr"].shape == (3, 4, 2, 2) and np.isfinite(ds["lr/lr"].values).all()
    one = backend(img.isel(y=slice(0, 1), x=slice(0, 1)), kind)
    for method in ("unet", "vae"):
        assert np.isfinite(run(s2n.harmonize, one, method, at="hr", device="cpu").values).all()


# --------------------------------------------------------------------------------------------------
# constant images
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BACKENDS)
def test_constant_images_in_histogram_match_follow_skimage(img, kind):
    const = xr.full_like(img, 0.3)
    ref = s2n.example_image(size=24, seed=5)
    for image, reference in ((const, ref), (img, xr.full_like(ref, 0.7)), (const, xr.full_like(ref, 0.7))):
        out = run(s2n.histogram_match, backend(image, kind), backend(reference, kind)).values
        expected = match_histograms(image.values, reference.values, channel_axis=0)
        np.testing.assert_allclose(out, expected, atol=1e-6)
    assert np.all(run(s2n.histogram_match, const, ref).values == ref.values.max(axis=(1, 2))[:, None, None])


@pytest.mark.parametrize("value", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.torch
def test_constant_images_through_degrade_are_finite(img, kind, value):
    const = xr.full_like(img, value)
    ds = run(s2n.degrade, backend(const, kind), ["identity", "gamma_lognormal", "gamma_mvn", "unet", "vae"],
             device="cpu", seed=0)
    assert np.isfinite(ds["hr/hr"].values).all() and np.isfinite(ds["lr/lr"].values).all()
    clean = run(s2n.blur_downsample, backend(const, kind)).values
    np.testing.assert_allclose(clean, value, atol=1e-6)  # the blur of a constant is the constant


@pytest.mark.parametrize("kind", BACKENDS)
def test_constant_images_are_blank(img, kind):
    const = backend(xr.full_like(img, 0.3), kind)
    assert run(s2n.blank_mask, const).values.all()
    assert bool(run(s2n.is_blank, const))
    assert bool(run(s2n.is_blank, const, max_fraction=0.99))
    assert not bool(run(s2n.is_blank, backend(img, kind)))


# --------------------------------------------------------------------------------------------------
# bad configuration values
# --------------------------------------------------------------------------------------------------


#: name -> (call(img, lr), message parts)
CONFIG_CASES: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "noise_x": (lambda img, lr: s2n.add_noise(lr, "x"), ("noise='x' is not supported", "'real', 'gaussian', 'none'")),
    "degrade_noise_x": (lambda img, lr: s2n.degrade(img, noise="x"), ("noise='x'", "'real', 'gaussian', 'none'")),
    "noise_sigma_negative": (lambda img, lr: s2n.add_noise(lr, "gaussian", sigma=-1), ("sigma=-1", ">= 0", "0.012")),
    "seed_float": (lambda img, lr: s2n.add_noise(lr, seed=1.5), ("seed=1.5", "must be an integer")),
    "seed_str": (lambda img, lr: s2n.degrade(img, ["identity"], seed="a"), ("seed='a'", "must be an integer")),
    "percentile_0": (lambda img, lr: s2n.harmonize(img, "gamma_mvn", percentile=0), ("percentile=0", "(0, 100)", "50")),
    "percentile_100": (lambda img, lr: s2n.gamma_values("gamma_lognormal", 100), ("percentile=100", "(0, 100)")),
    "degrade_percentiles_0": (lambda img, lr: s2n.degrade(img, ["gamma_mvn"], percentiles=(0,)),
                              ("percentile=0", "(0, 100)")),
    "gamma_values_identity": (lambda img, lr: s2n.gamma_values("identity"),
                              ("method='identity' has no gamma", "'gamma_lognormal' or 'gamma_mvn'")),
    "gamma_negative": (lambda img, lr: s2n.harmonize(img, "gamma_mvn", gamma=-1), ("gamma=-1", "one positive number")),
    "gamma_three": (lambda img, lr: s2n.harmonize(img, "gamma_mvn", gamma=(1, 2, 3)), ("gamma=(1, 2, 3)", "or four")),
    "sigma_negative": (lambda img, lr: s2n.blur_downsample(img, sigma=(-1, 2.9, 2.9, 3.4)),
                       ("sigma=(-1.0, 2.9, 2.9, 3.4)", "positive", "e.g. (3.0, 2.9, 2.9, 3.4)")),
    "degrade_sigma_negative": (lambda img, lr: s2n.degrade(img, sigma=(-1, 2.9, 2.9, 3.4)), ("sigma=(-1.0", "positive")),
    "sigma_zero_nan": (lambda img, lr: s2n.blur_downsample(img, sigma=(0, np.nan, 2.9, 3.4)), ("sigma=(0.0, nan", "positive")),
    "sigma_scalar": (lambda img, lr: s2n.blur_downsample(img, sigma=3.0), ("sigma=3.0", "one per band", "(3.0, 2.9, 2.9, 3.4)")),
    "sigma_empty": (lambda img, lr: s2n.blur_downsample(img, sigma=()), ("sigma=()", "one per band")),
    "sigma_three": (lambda img, lr: s2n.blur_downsample(img, sigma=(3, 3, 3)), ("sigma=(3.0, 3.0, 3.0) has 3", "4 bands")),
    "factor_2": (lambda img, lr: s2n.blur_downsample(img, factor=2), ("factor=2", "factor=4")),
    "mode_x": (lambda img, lr: s2n.blur_downsample(img, mode="x"), ("mode='x'", "'sen2naip', 'raw'")),
    "degrade_blur_mode_x": (lambda img, lr: s2n.degrade(img, blur_mode="x"), ("mode='x'", "'sen2naip', 'raw'")),
    "method_foo": (lambda img, lr: s2n.harmonize(img, "foo"), ("method='foo' is not supported", "'identity'", "'vae'")),
    "degrade_method_foo": (lambda img, lr: s2n.degrade(img, ["identity", "foo"]), ("method='foo'", "'gamma_mvn'")),
    "window_4": (lambda img, lr: s2n.blank_mask(img, 4), ("window=4", "positive odd integer", "e.g. 19")),
    "window_0": (lambda img, lr: s2n.blank_mask(img, 0), ("window=0", "positive odd integer")),
    "window_float": (lambda img, lr: s2n.blank_mask(img, 2.5), ("window=2.5", "positive odd integer")),
    "is_blank_window_4": (lambda img, lr: s2n.is_blank(img, 4), ("window=4", "positive odd integer")),
    "max_fraction_1": (lambda img, lr: s2n.is_blank(img, max_fraction=1), ("max_fraction=1", "[0, 1)")),
    "device_foo": (lambda img, lr: s2n.harmonize(img, "unet", device="foo"), ("device='foo'", "'auto', 'cpu' or 'cuda[:N]'")),
    "batch_size_0": (lambda img, lr: s2n.harmonize(img, "unet", batch_size=0), ("batch_size=0", ">= 1")),
    "quantize_u16": (lambda img, lr: s2n.harmonize(img, "gamma_mvn", quantize="u16"), ("quantize='u16'", "'none', 'u8'")),
    "at_mr": (lambda img, lr: s2n.harmonize(img, "unet", at="mr"), ("at='mr'", "'lr', 'hr'")),
    "template_x": (lambda img, lr: s2n.harmonize(img, "vae", template="x"), ("template='x'", "'exact', 'legacy'")),
    "duplicated_alias": (lambda img, lr: s2n.degrade(img, ["identity", "raw"]),
                         ("methods lists ['identity'] more than once", "unique")),
    "duplicated_percentile": (lambda img, lr: s2n.degrade(img, ["gamma_mvn"], percentiles=(50, 50.0)),
                              ("['gamma_mvn_p50'] more than once",)),
    "duplicated_method": (lambda img, lr: s2n.degrade(img, ["vae", "unet", "vae"]), ("['vae'] more than once",)),
    "no_methods": (lambda img, lr: s2n.degrade(img, []), ("methods=[] is empty", "identity, gamma_lognormal")),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_config_values(img, case, no_compute):
    if case == "device_foo":
        pytest.importorskip("torch")  # the device is checked by torch
    call, parts = CONFIG_CASES[case]
    lr = s2n.blur_downsample(img)
    with no_compute(), raises(*parts):
        call(img, lr)


def test_config_errors_are_the_same_from_the_dataclasses():
    with raises("noise='x'"):
        s2n.NoiseConfig(model="x")
    with raises("percentile=0"):
        s2n.HarmonizeConfig(method="gamma_mvn", percentile=0)
    with raises("sigma=(-1.0"):
        s2n.BlurConfig(sigma=(-1, 1, 1, 1))
    with raises("more than once"):
        s2n.DegradationConfig(methods=(s2n.HarmonizeConfig(), s2n.HarmonizeConfig(method="raw")))
    with raises("seed=2.5"):
        s2n.HarmonizeConfig(method="vae", seed=2.5)


@pytest.mark.parametrize("kind", BACKENDS)
def test_cuda_without_cuda(img, kind):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    for device in ("cuda", "cuda:1"):
        with raises(f"device='{device}'", "no CUDA device", "device='cpu' or 'auto'"):
            run(s2n.harmonize, backend(img, kind), "unet", device=device)
    with raises("device='cuda'", "no CUDA device"):
        run(s2n.degrade, backend(img, kind), ["unet"], device="cuda")


# --------------------------------------------------------------------------------------------------
# weights
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def no_weights_env(monkeypatch):
    monkeypatch.delenv(weights_mod.ENV_VAR, raising=False)


@pytest.mark.torch
@pytest.mark.usefixtures("no_weights_env")
def test_weights_missing_from_a_folder(img, tmp_path):
    for model, name in (("unet", "model_unet.pt"), ("vae", "model_vae.pt"), ("noise", "model_noise.pt")):
        with raises(f"{name} not found in {tmp_path}", "argument weights", INSTALL, cls=WeightsError):
            s2n.weight_path(model, tmp_path)
    with raises("model_unet.pt not found", INSTALL, cls=WeightsError):
        s2n.harmonize(img.chunk(), "unet", weights=tmp_path)  # while building the graph
    with raises("model_vae.pt not found", INSTALL, cls=WeightsError):
        s2n.harmonize(img, "vae", weights=tmp_path)
    with raises("model_noise.pt not found", INSTALL, cls=WeightsError):
        s2n.add_noise(s2n.blur_downsample(img), weights=tmp_path)
    with raises(f"not found in {tmp_path}", INSTALL, cls=WeightsError):
        s2n.degrade(img, ["identity", "vae"], weights=tmp_path)
    with raises("model='foo' is unknown", "'noise', 'unet', 'vae'", cls=WeightsError):
        s2n.weight_path("foo")


@pytest.mark.usefixtures("no_weights_env")
@pytest.mark.parametrize("damage", ["flipped_byte", "truncated"])
def test_corrupted_weights(img, tmp_path, damage):
    good = s2n.weight_path("noise")
    bad = tmp_path / good.name
    data = bytearray(good.read_bytes())
    if damage == "flipped_byte":
        data[len(data) // 2] ^= 0xFF  # same size: only the checksum can tell
    else:
        data = data[:1000]
    bad.write_bytes(bytes(data))
    # a reinstall needs --force-reinstall, so the hint is that command with the same --no-deps pin
    parts = (str(bad), "is corrupt", "sha256", weights_mod.WEIGHTS["noise"].sha256, "pip install --force-reinstall",
             '--no-deps "opensr-degradation==1.0.1"')
    with raises(*parts, cls=WeightsError):
        s2n.weight_path("noise", tmp_path)
    with raises("is corrupt", cls=WeightsError):
        s2n.add_noise(s2n.blur_downsample(img), weights=tmp_path)
    assert s2n.weight_path("noise", tmp_path, verify=False) == bad  # documented escape hatch


@pytest.fixture(scope="module")
def weights_copy(tmp_path_factory):
    """A good copy of the three published files."""
    folder = tmp_path_factory.mktemp("weights")
    for f in s2n.weight_path("unet").parent.glob("model_*.pt"):
        shutil.copy2(f, folder / f.name)
    return folder


@pytest.mark.torch
def test_weights_from_the_environment_variable(img, weights_copy, monkeypatch):
    monkeypatch.setenv(weights_mod.ENV_VAR, str(weights_copy))
    for model in ("unet", "vae", "noise"):
        assert s2n.weight_path(model) == weights_copy / weights_mod.WEIGHTS[model].name
    lr = s2n.blur_downsample(img)
    monkeypatch.delenv(weights_mod.ENV_VAR)
    expected_noise = s2n.add_noise(lr, seed=4).values
    expected_vae = s2n.harmonize(img, "vae").values
    monkeypatch.setenv(weights_mod.ENV_VAR, str(weights_copy))
    np.testing.assert_array_equal(s2n.add_noise(lr, seed=4).values, expected_noise)
    np.testing.assert_array_equal(s2n.harmonize(img, "vae").values, expected_vae)
    assert np.isfinite(s2n.harmonize(img, "unet", device="cpu").values).all()


def test_weights_environment_variable_pointing_nowhere(tmp_path, monkeypatch):
    monkeypatch.setenv(weights_mod.ENV_VAR, str(tmp_path / "missing"))
    with raises("model_unet.pt not found", "$SEN2NAIP_XR_WEIGHTS", INSTALL, cls=WeightsError):
        s2n.weight_path("unet")


def test_weights_without_the_distribution(monkeypatch, no_weights_env):
    def not_installed(name):
        raise PackageNotFoundError(name)

    monkeypatch.setattr(weights_mod, "distribution", not_installed)
    with raises("opensr-degradation is not installed", "$SEN2NAIP_XR_WEIGHTS is unset", INSTALL,
                "model_unet.pt, model_vae.pt, model_noise.pt", cls=WeightsError):
        s2n.weight_path("vae")


# --------------------------------------------------------------------------------------------------
# the embedded example
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 5, 6, 16, 21])
def test_small_example_images(size):
    """Documented: any positive size works (tiny scenes have fewer features), values are k/255."""
    da = s2n.example_image(size=size, seed=4)
    assert da.shape == (4, size, size) and da.dtype == np.float32
    levels = da.values * 255
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-4)
    assert 0 <= float(da.min()) and float(da.max()) <= 1


@pytest.mark.parametrize("size", [0, -4, 2.5])
def test_bad_example_image_size(size):
    with raises(f"size={size!r}", "positive integer", "e.g. 1100"):
        s2n.example_image(size=size)
