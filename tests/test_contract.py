"""The xarray/Dask contract (issue 2): laziness, determinism, chunk alignment, georeferencing, provenance.

* Building a graph computes nothing (a counting scheduler that raises), for every public operator.
* The same seed gives the same bytes whatever the chunking (band, spatial and leading dims, HR chunks not
  a multiple of 4 included) and whatever the scheduler (synchronous, threads, distributed).
* LR chunks are HR chunks / 4; LR y/x are LR pixel centres; the rioxarray CRS and provenance are carried.
* Networks: the U-Net is loaded once per process; batching only changes float rounding.
"""

from __future__ import annotations

import json
from functools import partial

import dask
import dask.array as dsa
import numpy as np
import pytest
import xarray as xr

import sen2naip_xr as s2n
from sen2naip_xr._const import PROVENANCE_ATTR
from sen2naip_xr.config import HarmonizeConfig
from sen2naip_xr.harmonize import _torch

SIZE = 96
ORIGIN = (500_000.0, 3_650_000.0)  # example_image's upper-left corner (EPSG:32611)
NETS = dict(device="cpu")
#: identity, gamma and the two networks; batch_size=1 makes the U-Net's bytes independent of how the
#: leading dims are chunked (a batched forward pass rounds differently, see test_unet_batching)
DEGRADE_METHODS = ["identity", "gamma_mvn", "vae", "unet"]
DEGRADE_KW = dict(methods=DEGRADE_METHODS, noise="real", seed=3, device="cpu", batch_size=1)

#: HR chunkings of the (roi=3, band=4, y=96, x=96) input: leading, band and spatial dims, aligned or not
HR_CHUNKINGS = {
    "whole": {"roi": -1, "band": -1, "y": -1, "x": -1},
    "roi": {"roi": 1},
    "roi-band-yx": {"roi": 2, "band": 1, "y": 40, "x": 32},
    "unaligned": {"roi": 1, "band": 3, "y": 30, "x": 50},
    "tiny": {"y": 6, "x": 12},
}
#: LR chunkings of the (roi=3, band=4, y=24, x=24) blurred input
LR_CHUNKINGS = {
    "whole": {"roi": -1, "band": -1, "y": -1, "x": -1},
    "roi": {"roi": 1},
    "roi-band-yx": {"roi": 2, "band": 1, "y": 10, "x": 7},
    "rows": {"roi": 1, "band": 3, "y": 5},
}


# --------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rois() -> xr.DataArray:
    """Three NAIP-like ROIs (roi, band, y, x), 96x96, numpy-backed, georeferenced; ROI 0 has a blank patch."""
    da = xr.concat([s2n.example_image(size=SIZE, seed=s) for s in range(3)], dim="roi")
    da = da.assign_coords(roi=[10, 11, 12]).copy()
    da[0, :, 10:40, 20:50] = 0.5
    return da


@pytest.fixture(scope="module")
def lr(rois) -> xr.DataArray:
    return s2n.blur_downsample(rois)


@pytest.fixture(scope="module")
def reference() -> xr.DataArray:
    """A histogram-matching template of another size, broadcast over the ROIs."""
    return s2n.example_image(size=48, seed=7) ** 0.7


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None,
                            set_as_default=False) as c:
        yield c


@pytest.fixture(params=["synchronous", "threads", "distributed"])
def scheduler(request):
    """A dask ``scheduler=`` value for ``dask.config.set``."""
    if request.param == "distributed":
        return request.getfixturevalue("client").get
    return request.param


def _bytes_equal(a: xr.DataArray | xr.Dataset, b: xr.DataArray | xr.Dataset) -> None:
    """Same dims, dtype and bytes (NaN included); a precise failure message otherwise."""
    if isinstance(a, xr.DataTree):
        pairs = [(a[f"{n}/{n}"], b[f"{n}/{n}"]) for n in a.children]
    else:
        pairs = [(a[k], b[k]) for k in a.data_vars] if isinstance(a, xr.Dataset) else [(a, b)]
    for x, y in pairs:
        assert x.dims == y.dims and x.dtype == y.dtype
        xv, yv = np.asarray(x.values), np.asarray(y.values)
        if xv.tobytes() != yv.tobytes():
            diff = np.abs(xv.astype(np.float64) - yv.astype(np.float64))
            raise AssertionError(f"{x.name}: {np.sum(xv != yv)} elements differ, max |diff| {np.nanmax(diff):.3g}")


def _records(attrs: dict) -> list[dict]:
    parsed = json.loads(attrs[PROVENANCE_ATTR])
    return parsed if isinstance(parsed, list) else [parsed]


# --------------------------------------------------------------------------------------------------
# 1. building a graph computes nothing
# --------------------------------------------------------------------------------------------------

def _harmonize_op(hr, lr, ref, *, method):
    return s2n.harmonize(hr, method, device="cpu")


LAZY_OPS = {
    "histogram_match": lambda hr, lr, ref: s2n.histogram_match(hr, ref),
    "blank_mask": lambda hr, lr, ref: s2n.blank_mask(hr),
    "is_blank": lambda hr, lr, ref: s2n.is_blank(hr),
    "blur_downsample": lambda hr, lr, ref: s2n.blur_downsample(hr),
    "blur_downsample_raw": lambda hr, lr, ref: s2n.blur_downsample(hr, mode="raw"),
    "add_noise_real": lambda hr, lr, ref: s2n.add_noise(lr, "real", seed=1),
    "add_noise_gaussian": lambda hr, lr, ref: s2n.add_noise(lr, "gaussian", seed=1),
    **{f"harmonize_{m}": partial(_harmonize_op, method=m)
       for m in ("identity", "gamma_lognormal", "gamma_mvn", "unet", "vae")},
    "harmonize_unet_hr": lambda hr, lr, ref: s2n.harmonize(hr, "unet", at="hr", device="cpu"),
    "harmonize_vae_sample_legacy": lambda hr, lr, ref: s2n.harmonize(hr, "vae", sample=True, template="legacy"),
    "degrade": lambda hr, lr, ref: s2n.degrade(hr, device="cpu"),
    "degrade_gaussian_raw": lambda hr, lr, ref: s2n.degrade(hr, ["gamma_lognormal", "vae"], noise="gaussian",
                                                            blur_mode="raw", percentiles=(10, 90)),
}


@pytest.mark.parametrize("op", list(LAZY_OPS))
def test_building_a_graph_computes_nothing(op, rois, lr, reference, no_compute):
    if "unet" in op or op == "degrade":
        pytest.importorskip("torch")  # the U-Net (degrade's default methods include it)
    hr = rois.chunk({"roi": 1, "y": 48})
    lr_d = lr.chunk({"roi": 1})
    ref = reference.chunk({"y": 24})
    before = _torch.load_unet.cache_info()
    with no_compute() as counter:
        out = LAZY_OPS[op](hr, lr_d, ref)
    assert counter.total_computes == 0
    if isinstance(out, xr.DataTree):
        arrays = [out[f"{n}/{n}"] for n in out.children]
    else:
        arrays = list(out.data_vars.values()) if isinstance(out, xr.Dataset) else [out]
    for arr in arrays:
        assert isinstance(arr.data, dsa.Array), f"{op} returned a numpy-backed {arr.name}"
    after = _torch.load_unet.cache_info()
    assert after.hits + after.misses == before.hits + before.misses, "the U-Net ran while building the graph"
    with pytest.raises(RuntimeError, match="too many dask computations"), no_compute():
        arrays[0].values  # noqa: B018  (the guard does catch a compute)


# --------------------------------------------------------------------------------------------------
# 2. same seed -> same bytes whatever the chunking and the scheduler
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunks", list(LR_CHUNKINGS.values()), ids=list(LR_CHUNKINGS))
@pytest.mark.parametrize("model", ["real", "gaussian"])
def test_noise_is_chunk_invariant(lr, chunks, model):
    expected = s2n.add_noise(lr, model, seed=5, stream="x")
    with dask.config.set(scheduler="synchronous"):
        got = s2n.add_noise(lr.chunk(chunks), model, seed=5, stream="x").compute()
    _bytes_equal(got, expected)
    assert not np.array_equal(expected.values, lr.values)  # noise was added


@pytest.mark.parametrize("model", ["real", "gaussian"])
def test_noise_is_scheduler_invariant(lr, scheduler, model):
    expected = s2n.add_noise(lr, model, seed=5)
    with dask.config.set(scheduler=scheduler):
        got = s2n.add_noise(lr.chunk(LR_CHUNKINGS["roi-band-yx"]), model, seed=5).compute()
    _bytes_equal(got, expected)


@pytest.mark.parametrize("chunks", list(HR_CHUNKINGS.values()), ids=list(HR_CHUNKINGS))
def test_blur_histogram_blank_are_chunk_invariant(rois, reference, chunks):
    hr = rois.chunk(chunks)
    with dask.config.set(scheduler="synchronous"):
        _bytes_equal(s2n.blur_downsample(hr).compute(), s2n.blur_downsample(rois))
        _bytes_equal(s2n.blur_downsample(hr, mode="raw").compute(), s2n.blur_downsample(rois, mode="raw"))
        _bytes_equal(s2n.histogram_match(hr, reference.chunk({"y": 20})).compute(),
                     s2n.histogram_match(rois, reference))
        mask = s2n.blank_mask(hr).compute()
        _bytes_equal(mask, s2n.blank_mask(rois))
    assert mask.isel(roi=0).sum() > 0 and mask.isel(roi=slice(1, None)).sum() == 0  # the patch is found


def test_blur_histogram_blank_are_scheduler_invariant(rois, reference, scheduler):
    hr = rois.chunk(HR_CHUNKINGS["unaligned"])
    with dask.config.set(scheduler=scheduler):
        _bytes_equal(s2n.blur_downsample(hr).compute(), s2n.blur_downsample(rois))
        _bytes_equal(s2n.histogram_match(hr, reference).compute(), s2n.histogram_match(rois, reference))
        _bytes_equal(s2n.blank_mask(hr).compute(), s2n.blank_mask(rois))


@pytest.fixture(scope="module")
def degraded(rois) -> xr.Dataset:
    """The numpy result every dask run must reproduce byte for byte."""
    return s2n.degrade(rois, **DEGRADE_KW)


@pytest.mark.torch
@pytest.mark.parametrize("chunks", [HR_CHUNKINGS[k] for k in ("roi", "roi-band-yx", "unaligned")],
                         ids=["roi", "roi-band-yx", "unaligned"])
def test_degrade_is_chunk_invariant(rois, degraded, chunks):
    with dask.config.set(scheduler="synchronous"):
        got = s2n.degrade(rois.chunk(chunks), **DEGRADE_KW).compute()
    _bytes_equal(got, degraded)
    assert list(got["lr/lr"].harmonizer.values) == ["identity", "gamma_mvn_p50", "vae", "unet"]


@pytest.mark.torch
@pytest.mark.parametrize("scheduler", ["threads", "distributed"], indirect=True)
def test_degrade_is_scheduler_invariant(rois, degraded, scheduler):
    with dask.config.set(scheduler=scheduler):
        got = s2n.degrade(rois.chunk(HR_CHUNKINGS["roi-band-yx"]), **DEGRADE_KW).compute()
    _bytes_equal(got, degraded)


def test_seeds_give_different_noise(lr):
    for model in ("real", "gaussian"):
        a, b = s2n.add_noise(lr, model, seed=0).values, s2n.add_noise(lr, model, seed=1).values
        assert np.mean(a == b) < 0.5, model
        c = s2n.add_noise(lr, model, seed=0, stream="other").values
        assert np.mean(a == c) < 0.5, model


def test_harmonizer_variants_get_their_own_noise_stream(rois):
    """identity and gamma=1 give the same HR image; their LR noise must still be independent."""
    variants = ["identity", HarmonizeConfig(method="gamma_mvn", gamma=1.0)]
    ds = s2n.degrade(rois, variants, noise="real", seed=0)
    hr_a, hr_b = ds["hr/hr"].isel(harmonizer=0), ds["hr/hr"].isel(harmonizer=1)
    np.testing.assert_array_equal(hr_a.values, hr_b.values)  # precondition: same HR
    clean = s2n.blur_downsample(hr_a)
    noise_a = (ds["lr/lr"].isel(harmonizer=0) - clean).values
    noise_b = (ds["lr/lr"].isel(harmonizer=1) - clean).values
    assert np.mean(noise_a == noise_b) < 0.5
    for i, label in enumerate(ds["lr/lr"].harmonizer.values):  # the stream is the variant's label
        expected = s2n.add_noise(s2n.blur_downsample(hr_a), "real", seed=0, stream=str(label))
        np.testing.assert_array_equal(ds["lr/lr"].isel(harmonizer=i).values, expected.values)


# --------------------------------------------------------------------------------------------------
# 3. chunk alignment, LR grid, CRS, provenance
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cy, cx", [(40, 32), (48, 96), (16, 8 * 4)])
def test_lr_chunks_are_hr_chunks_over_4(rois, cy, cx):
    hr = rois.chunk({"roi": 1, "y": cy, "x": cx})
    out = s2n.blur_downsample(hr)
    assert out.chunks[-2] == tuple(c // 4 for c in hr.chunks[-2])
    assert out.chunks[-1] == tuple(c // 4 for c in hr.chunks[-1])
    assert out.chunks[:2] == hr.chunks[:2]
    ds = s2n.degrade(hr, ["identity", "gamma_mvn"], seed=0)
    assert ds["lr/lr"].chunks[-2:] == out.chunks[-2:]
    assert ds["hr/hr"].chunks[-2:] == hr.chunks[-2:]


@pytest.mark.parametrize("cy, cx", [(30, 50), (6, 7), (42, 26)])
def test_unaligned_hr_chunks_are_realigned(rois, cy, cx):
    hr = rois.chunk({"y": cy, "x": cx})
    out = s2n.blur_downsample(hr)
    for axis, c in ((-2, cy), (-1, cx)):
        lr_chunks = out.chunks[axis]
        assert sum(lr_chunks) == SIZE // 4
        assert len(lr_chunks) > 1, "the input's spatial chunking was given up"
        assert all(n >= 4 for n in lr_chunks), "a block too small for the 8-pixel halo"
        assert len(set(lr_chunks[:-1])) == 1, "uneven LR chunks"
        assert abs(lr_chunks[0] * 4 - c) < 16, "realigned HR chunks should stay near the requested size"
    _bytes_equal(out.compute(), s2n.blur_downsample(rois))


@pytest.mark.parametrize("chunked", [False, True])
def test_lr_grid_is_lr_pixel_centres_and_crs_is_carried(chunked):
    hr = s2n.example_image(size=SIZE, seed=2, chunks={"y": 40} if chunked else None)
    assert hr.rio.crs.to_epsg() == 32611
    out = s2n.blur_downsample(hr)
    n = SIZE // 4
    np.testing.assert_allclose(out.x.values, ORIGIN[0] + 10.0 * (np.arange(n) + 0.5))
    np.testing.assert_allclose(out.y.values, ORIGIN[1] - 10.0 * (np.arange(n) + 0.5))
    assert out.rio.crs.to_epsg() == 32611
    assert tuple(out.rio.transform())[:6] == (10.0, 0.0, ORIGIN[0], 0.0, -10.0, ORIGIN[1])
    noisy = s2n.add_noise(out, seed=0)
    assert noisy.rio.crs.to_epsg() == 32611
    np.testing.assert_array_equal(noisy.x.values, out.x.values)

    ds = s2n.degrade(hr, ["identity", "gamma_mvn"], seed=0)
    np.testing.assert_allclose(ds["lr/x"].values, out.x.values)
    np.testing.assert_allclose(ds["lr/y"].values, out.y.values)
    np.testing.assert_array_equal(ds["hr/x"].values, hr.x.values)
    assert ds["lr/lr"].rio.crs.to_epsg() == 32611
    assert ds["hr/hr"].rio.crs.to_epsg() == 32611
    for method in ("gamma_mvn", "vae"):
        assert s2n.harmonize(hr, method).rio.crs.to_epsg() == 32611
    assert s2n.histogram_match(hr, hr ** 0.5).rio.crs.to_epsg() == 32611


def test_provenance_attrs(rois, reference):
    hr = rois.chunk({"roi": 1})
    version = s2n.__version__
    cases = {
        "histogram_match": s2n.histogram_match(hr, reference),
        "blank_mask": s2n.blank_mask(hr, 5),
        "is_blank": s2n.is_blank(hr, 5, max_fraction=0.1),
        "blur_downsample": s2n.blur_downsample(hr, mode="raw"),
        "harmonize": s2n.harmonize(hr, "gamma_mvn", percentile=25),
    }
    for operator, out in cases.items():
        last = _records(out.attrs)[-1]
        assert last["operator"] == operator and last["version"] == version, last
    assert _records(cases["blank_mask"].attrs)[-1]["window"] == 5
    assert _records(cases["is_blank"].attrs)[-1]["max_fraction"] == 0.1
    assert _records(cases["blur_downsample"].attrs)[-1]["mode"] == "raw"
    assert _records(cases["harmonize"].attrs)[-1]["percentile"] == 25
    assert _records(cases["harmonize"].attrs)[-1]["method"] == "gamma_mvn"

    # records chain, oldest first, and other attrs survive
    noisy = s2n.add_noise(s2n.blur_downsample(hr), "gaussian", seed=9, sigma=0.02, stream="s")
    recs = _records(noisy.attrs)
    assert [r["operator"] for r in recs] == ["blur_downsample", "add_noise"]
    assert recs[-1]["seed"] == 9 and recs[-1]["sigma"] == 0.02 and recs[-1]["model"] == "gaussian"
    assert recs[-1]["stream"] == "s"
    assert noisy.attrs["scene_seed"] == rois.attrs["scene_seed"]

    ds = s2n.degrade(hr, ["identity", "vae"], seed=4, noise="gaussian")
    rec = _records(ds.attrs)[-1]
    assert rec["operator"] == "degrade" and rec["version"] == version
    assert [m["method"] for m in rec["config"]["methods"]] == ["identity", "vae"]
    assert rec["config"]["noise"] == {"model": "gaussian", "seed": 4, "sigma": 0.012}
    assert json.loads(ds.attrs["config"]) == rec["config"]


# --------------------------------------------------------------------------------------------------
# 4. networks: loaded once per process, batching changes only float rounding
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def four_rois() -> xr.DataArray:
    return xr.concat([s2n.example_image(size=SIZE, seed=s) for s in range(4)], dim="roi")


@pytest.mark.torch
def test_unet_is_loaded_once_per_process(four_rois):
    _torch.load_unet.cache_clear()
    with dask.config.set(scheduler="threads", num_workers=2):
        s2n.harmonize(four_rois.chunk({"roi": 1}), "unet", **NETS).compute()
    info = _torch.load_unet.cache_info()
    assert (info.misses, info.hits) == (1, 3), info  # 4 tasks in 2 threads, one load
    s2n.harmonize(four_rois, "unet", at="hr", **NETS)  # numpy: runs now, same model
    assert _torch.load_unet.cache_info().misses == 1


@pytest.mark.torch
@pytest.mark.parametrize("at", ["lr", "hr"])
def test_unet_batching(four_rois, at):
    one = s2n.harmonize(four_rois, "unet", at=at, batch_size=1, **NETS)
    four = s2n.harmonize(four_rois, "unet", at=at, batch_size=4, **NETS)
    np.testing.assert_allclose(four.values, one.values, atol=1e-5, rtol=0)
    # one image at a time is also what a chunk of one ROI computes: bytes equal whatever the chunking
    with dask.config.set(scheduler="synchronous"):
        chunked = s2n.harmonize(four_rois.chunk({"roi": 1, "y": 40}), "unet", at=at, batch_size=1, **NETS)
        _bytes_equal(chunked.compute(), one)
        batched = s2n.harmonize(four_rois.chunk({"roi": 3}), "unet", at=at, batch_size=4, **NETS).compute()
    np.testing.assert_allclose(batched.values, one.values, atol=1e-5, rtol=0)
    assert not np.allclose(one.values, four_rois.values, atol=1e-3)  # the network changed the image


def test_vae_is_batch_invariant(four_rois):
    """numpy VAE: one image at a time and any leading-dim chunking give the same bytes."""
    whole = s2n.harmonize(four_rois, "vae")
    single = xr.concat([s2n.harmonize(four_rois.isel(roi=i), "vae") for i in range(4)], dim="roi")
    _bytes_equal(single.transpose(*whole.dims), whole)
    with dask.config.set(scheduler="synchronous"):
        _bytes_equal(s2n.harmonize(four_rois.chunk({"roi": 3}), "vae").compute(), whole)
