"""Degradation operators on xarray: histogram matching, blank check, blur + downsample, noise.

Each function validates its input, then lifts a pure numpy kernel (:mod:`sen2naip_xr.ops._numpy`) onto
xarray/Dask through :mod:`sen2naip_xr._lift`. Nothing is computed for dask-backed inputs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr

from sen2naip_xr import _lift
from sen2naip_xr._provenance import chain_provenance, provenance
from sen2naip_xr._validate import as_image
from sen2naip_xr.config import SEN2NAIP_SIGMA, BlurConfig, DegradationModel, NoiseConfig
from sen2naip_xr.errors import InputError
from sen2naip_xr.ops import _numpy

__all__ = ["histogram_match", "blank_mask", "is_blank", "blur_downsample", "add_noise", "degrade_lr", "noise_table",
           "provenance", "chain_provenance"]


def histogram_match(image: xr.DataArray, reference: xr.DataArray) -> xr.DataArray:
    """Match each band of ``image`` to the histogram of the same band of ``reference``.

    The semantics of ``skimage.exposure.match_histograms(image, reference, channel_axis=band)``: ties and
    constant bands are handled the same way, to within 1e-6 (tested), but 8-bit data (NAIP, values k/255)
    are counted with ``bincount`` instead of sorted. Each image (every index of the leading dims) is
    matched on its own; ``reference`` may have a different spatial size and broadcasts over leading dims it
    lacks. NaN pixels take no part in either histogram and stay NaN.

    Parameters
    ----------
    image, reference
        DataArrays with dims ``(..., band, y, x)`` and the same number of bands.

    Returns
    -------
    xarray.DataArray
        ``image`` matched band by band, same dims, coordinates and chunks; lazy for dask inputs.
    """
    image = as_image(image)
    reference = as_image(reference, arg="reference")
    if reference.sizes["band"] != image.sizes["band"]:
        raise InputError(
            f"reference has {reference.sizes['band']} bands but image has {image.sizes['band']}; "
            "pass a reference with the same bands (e.g. reference.sel(band=image.band))"
        )
    return _lift.per_image(_numpy.histogram_match, image, reference, op="histogram-match",
                           token=("histogram_match",), attrs=chain_provenance(image, provenance("histogram_match")))


def blank_mask(image: xr.DataArray, window: int = 19) -> xr.DataArray:
    """Boolean mask (dims ``(..., y, x)``): True where every band is constant over a ``window`` square.

    Zero variance is tested exactly (max == min); NaN counts as blank. The window is truncated at image
    borders. SEN2NAIP uses 19x19 to reject NAIP scenes with nodata fill or saturated blocks.

    Parameters
    ----------
    image
        Reflectance ``(..., band, y, x)``.
    window
        Side of the square window, a positive odd number of pixels (SEN2NAIP: 19).

    Returns
    -------
    xarray.DataArray
        bool ``(..., y, x)``, True where the window around the pixel is blank.
    """
    image = as_image(image)
    if int(window) != window or window < 1 or window % 2 == 0:
        raise InputError(f"window={window!r} must be a positive odd integer, e.g. 19")
    window = int(window)
    if min(image.sizes["y"], image.sizes["x"]) < window:
        raise InputError(
            f"image is {image.sizes['y']}x{image.sizes['x']} pixels, smaller than window={window}; "
            "pass a smaller window or a larger image"
        )
    half = window // 2
    lead_dims = [d for d in image.dims if d not in ("band", "y", "x")]

    def kernel(block: np.ndarray) -> np.ndarray:
        return _numpy.blank_mask(block, window)

    if _lift.is_dask(image):
        arr = image.data.rechunk({image.ndim - 3: -1})
        depth = {image.ndim - 2: half, image.ndim - 1: half}
        mask = arr.map_overlap(
            lambda b: np.broadcast_to(kernel(b)[..., None, :, :], b.shape), depth=depth, boundary="reflect",
            dtype=bool, meta=np.empty((0,) * image.ndim, bool),
            name=f"s2n-blank-mask-{window}-" + _lift.tokenize(arr),
        )
        data = mask[..., 0, :, :]  # the mask is the same for every band: keep one
    else:
        data = kernel(np.asarray(image.data))
    coords = {k: v for k, v in image.coords.items() if "band" not in v.dims}
    return xr.DataArray(data, dims=lead_dims + ["y", "x"], coords=coords, name="blank",
                        attrs=provenance("blank_mask", window=window))


def is_blank(image: xr.DataArray, window: int = 19, *, max_fraction: float = 0.0) -> xr.DataArray:
    """True for each image (leading dims) whose blank fraction (see :func:`blank_mask`) exceeds ``max_fraction``.

    The default 0.0 rejects an image with any 19x19 constant patch, as SEN2NAIP's blank check does.

    Parameters
    ----------
    image
        Reflectance ``(..., band, y, x)``.
    window
        Window of :func:`blank_mask`.
    max_fraction
        Largest blank fraction an image may have, in [0, 1).

    Returns
    -------
    xarray.DataArray
        bool ``(...)``: True for each image to reject.
    """
    if not (0.0 <= max_fraction < 1.0):
        raise InputError(f"max_fraction={max_fraction!r} must lie in [0, 1), e.g. 0.0 (reject any blank patch)")
    frac = blank_mask(image, window).mean(("y", "x"))
    out = frac > max_fraction
    out.name = "is_blank"
    out.attrs = provenance("is_blank", window=window, max_fraction=max_fraction)
    return out


def _downsample_kernel(block, params, *, global_shape, in_offset, out_start, out_shape, factor, mode):
    return _numpy.blur_downsample(block, params, factor=factor, mode=mode, global_shape=global_shape,
                                  in_offset=in_offset, out_start=out_start, out_shape=out_shape)


def blur_downsample(
    image: xr.DataArray,
    sigma: Sequence[float] = SEN2NAIP_SIGMA,
    factor: int = 4,
    mode: Literal["sen2naip", "raw"] = "sen2naip",
) -> xr.DataArray:
    """Blur each band with its Gaussian, then bilinear-downsample by ``factor``: NAIP 2.5 m -> S2 10 m.

    ``mode="sen2naip"`` (default) is the published model: a 13-tap Gaussian per band (sigma 3.0/2.9/2.9/3.4
    for R/G/B/NIR, torch-style reflect padding), then bilinear 1/4 with ``align_corners=False`` and no
    antialias. The two are fused: only the source rows/columns the downsample reads are filtered.
    ``mode="raw"`` is the paper's baseline: bilinear with antialias (torch ``antialias=True``), no blur.

    Dask inputs keep their chunking: HR chunks are aligned to multiples of 4, a halo of 8 pixels is shared
    between neighbours, and LR chunks are the HR chunks / 4. ``y``/``x`` coordinates become the LR pixel
    centres; other coordinates and attrs are carried, and a rioxarray CRS (``spatial_ref``) is carried with
    the LR grid's own ``GeoTransform`` (pixels ``factor`` times larger, same bounds), so ``rio.resolution()``,
    ``rio.bounds()`` and ``rio.to_raster()`` see the 10 m grid.

    Parameters
    ----------
    image
        Reflectance ``(..., band, y, x)``, y/x divisible by ``factor``, one sigma per band.
    sigma
        Gaussian sigma per band, in HR pixels (>= 0.01; ignored by ``mode="raw"``).
    factor
        Downsampling factor; SEN2NAIP uses 4 (2.5 m -> 10 m).
    mode
        ``"sen2naip"`` or ``"raw"`` (see above).

    Returns
    -------
    xarray.DataArray
        float32 ``(..., band, y / factor, x / factor)``.
    """
    cfg = BlurConfig(sigma=sigma, factor=factor, mode=mode)  # type: ignore[arg-type]  # validated there
    image = as_image(image, min_size=8, divisible=cfg.factor)
    if image.sizes["band"] != len(cfg.sigma):
        raise InputError(
            f"image has {image.sizes['band']} bands but sigma={cfg.sigma} has {len(cfg.sigma)}; pass one "
            "sigma per band"
        )
    out = _lift.downsample(_downsample_kernel, image, factor=cfg.factor, op=f"blur-downsample-{cfg.mode}",
                           token=cfg, band_params=list(cfg.sigma), mode=cfg.mode,
                           attrs=chain_provenance(image, provenance("blur_downsample", **cfg.to_dict())))
    return _fix_transform(out, image, cfg.factor)


def _fix_transform(out: xr.DataArray, image: xr.DataArray, factor: int) -> xr.DataArray:
    """Carry a rioxarray CRS to the LR grid, with the CF ``GeoTransform`` of the LR pixel centres."""
    if "spatial_ref" not in image.coords:
        return out
    return georeference(out, spatial_ref=image.coords["spatial_ref"].variable)


def geotransform(x, y) -> str | None:
    """The CF/GDAL ``GeoTransform`` text of a grid with pixel centres ``x``, ``y`` (None if a side has < 2)."""
    x, y = np.asarray(x), np.asarray(y)
    if x.size < 2 or y.size < 2:
        return None
    dx, dy = float(x[1] - x[0]), float(y[1] - y[0])
    return " ".join(repr(float(v)) for v in (x[0] - dx / 2, dx, 0.0, y[0] - dy / 2, 0.0, dy))


def georeference(da: xr.DataArray, *, spatial_ref: xr.Variable | None = None) -> xr.DataArray:
    """Give ``da`` its own CF grid mapping: a ``spatial_ref`` whose ``GeoTransform`` is that of its own
    ``y``/``x`` pixel centres, named by a ``grid_mapping`` attribute (not only an encoding, so that
    ``to_zarr`` writes ``spatial_ref`` as a coordinate and ``xr.open_zarr`` decodes it with its defaults).

    What ``rio.write_transform`` would write, without its round trip through rasterio. ``spatial_ref``
    replaces the array's own (e.g. the CRS of the image an LR array was made from). Arrays without one are
    returned unchanged.
    """
    ref = spatial_ref if spatial_ref is not None else (
        da.coords["spatial_ref"].variable if "spatial_ref" in da.coords else None)
    if ref is None:
        return da
    attrs = {k: v for k, v in ref.attrs.items() if k != "GeoTransform"}
    gt = geotransform(da["x"].values, da["y"].values) if "x" in da.coords and "y" in da.coords else None
    if gt is not None:
        attrs["GeoTransform"] = gt
    # one constructor call from Variables: assign_coords would re-align every coordinate (slow per call)
    coords = {**da.coords.variables, "spatial_ref": xr.Variable((), ref.values, attrs)}
    out = xr.DataArray(da.data, dims=da.dims, coords=coords, name=da.name,
                       attrs={**da.attrs, "grid_mapping": "spatial_ref"})
    out.encoding = {k: v for k, v in da.encoding.items() if k != "grid_mapping"}
    return out


def add_noise(
    lr: xr.DataArray,
    model: Literal["real", "gaussian", "none"] = "real",
    *,
    seed: int = 0,
    sigma: float = 0.012,
    stream: str = "",
    weights: str | os.PathLike | None = None,
    matrix: Any = None,
) -> xr.DataArray:
    """Add sensor noise to an LR (10 m) image.

    ``model="real"`` samples each pixel's noise from the published reflectance-to-noise matrix
    (``model_noise.pt``: 101 reflectance rows x 101 noise values) by a vectorised inverse CDF.
    ``model="gaussian"`` draws N(0, ``sigma`` x RMS of the band) (the paper's sigma 0.012; the reference code
    uses 0.025). Random numbers derive from (``seed``, ``stream``, element position), so results are the
    same bytes whatever the chunking or scheduler; pass a different ``stream`` (e.g. the method label) for
    independent noise on several variants. ``matrix`` replaces the published 101x101 matrix (e.g. a fitted
    one, :class:`~sen2naip_xr.config.DegradationModel`).

    Parameters
    ----------
    lr
        LR reflectance ``(..., band, y, x)``.
    model
        ``"real"``, ``"gaussian"`` or ``"none"`` (returns ``lr`` unchanged).
    seed, stream
        The noise stream: noise derives from (seed, model, stream, position).
    sigma
        Relative sd of the Gaussian model (x band RMS), finite and >= 0.
    weights
        Folder of the published model files (see :func:`sen2naip_xr.weight_path`).
    matrix
        A 101x101 reflectance-to-noise matrix replacing the published one.

    Returns
    -------
    xarray.DataArray
        ``lr`` plus noise, float32, same dims and chunks.
    """
    cfg = NoiseConfig(model=model, sigma=sigma, seed=seed)
    lr = as_image(lr, arg="lr")
    if cfg.model == "none":
        return georeference(lr)
    key = _numpy.noise_key(cfg.seed, cfg.model, stream)
    attrs = chain_provenance(lr, provenance("add_noise", **cfg.to_dict(), stream=stream))
    if cfg.model == "real":
        table = noise_table(matrix, weights=weights)

        def real(block, *, offset, global_shape):
            return block + _numpy.real_noise(block, table, key=key, offset=offset, global_shape=global_shape)

        return georeference(_lift.positional(real, lr, op="noise-real", token=(cfg, stream, key, table[0].tobytes()),
                                             attrs=attrs))

    def gaussian(block, *, offset, global_shape):
        rms = _numpy.band_rms(block)
        return block + _numpy.gaussian_noise(block, rms, sigma=cfg.sigma, key=key, offset=offset,
                                             global_shape=global_shape)

    return georeference(_lift.positional(gaussian, lr, op="noise-gaussian", token=(cfg, stream, key),
                                         whole_images=True, attrs=attrs))


def _table(matrix: tuple | None, weights: str | None) -> tuple[np.ndarray, np.ndarray]:
    from sen2naip_xr.weights import noise_matrix

    return _numpy.noise_cdf_table(noise_matrix(weights) if matrix is None else np.asarray(matrix, np.float64))


_TABLES: dict[Any, tuple[np.ndarray, np.ndarray]] = {}


def noise_table(model: DegradationModel | Any = None, *, weights: str | os.PathLike | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """The inverse-CDF tables of a reflectance-to-noise matrix (cached per matrix).

    Parameters
    ----------
    model
        A :class:`~sen2naip_xr.DegradationModel` (its ``noise_matrix``; None in it means the published
        one), a 101x101 matrix, or None for the published ``model_noise.pt``.
    weights
        Folder of the published model files (see :func:`sen2naip_xr.weight_path`).

    Returns
    -------
    tuple of numpy.ndarray
        What :func:`sen2naip_xr.ops._numpy.noise_cdf_table` returns, for the ``table=`` of the chain kernel.
    """
    matrix = model.noise_matrix if isinstance(model, DegradationModel) else model
    if matrix is not None and not isinstance(matrix, tuple):
        matrix = tuple(tuple(float(v) for v in row) for row in np.asarray(matrix, np.float64))
    key = (matrix, None if weights is None else str(weights))
    if key not in _TABLES:
        if len(_TABLES) > 16:
            _TABLES.clear()
        _TABLES[key] = _table(*key)
    return _TABLES[key]


def _chain_kernel(block, params, *, factor, mode, noise, noise_sigma, table, key, **place):
    return _numpy.degrade_lr(block, params, factor=factor, mode=mode, noise=noise, noise_sigma=noise_sigma,
                             table=table, key=key, **place)


def degrade_lr(
    hr: xr.DataArray,
    blur: BlurConfig | None = None,
    noise: NoiseConfig | None = None,
    *,
    stream: str = "",
    model: DegradationModel | None = None,
    weights: str | os.PathLike | None = None,
) -> xr.DataArray:
    """Harmonized HR (2.5 m) -> LR (10 m): blur + bilinear downsample, then noise, in one kernel.

    The xarray/Dask face of the one degradation chain (:func:`sen2naip_xr.ops._numpy.degrade_lr`), which
    the synthetic builder and :class:`~sen2naip_xr.loaders.torch.SRDataset` run on numpy arrays. The result
    equals ``add_noise(blur_downsample(hr, ...), ...)`` byte for byte, in one pass over the data.

    Parameters
    ----------
    hr
        Harmonized reflectance, dims ``(..., band, y, x)``, y/x divisible by 4.
    blur
        Sigmas, factor and mode (default: :class:`~sen2naip_xr.BlurConfig`, the published sigmas).
    noise
        Noise model, relative sd and seed (default: :class:`~sen2naip_xr.NoiseConfig`, real noise, seed 0).
    stream
        Noise stream label (e.g. the harmonizer's): noise derives from (seed, model, stream, position).
    model
        Its ``noise_matrix`` replaces the published one (``noise.model="real"``).
    weights
        Folder of the published model files.

    Returns
    -------
    xarray.DataArray
        float32 ``(..., band, y / 4, x / 4)``, chunked like ``hr`` / 4, with LR pixel-centre coordinates and
        the CRS carried.
    """
    blur = blur or BlurConfig()
    noise = noise or NoiseConfig()
    hr = as_image(hr, min_size=8, divisible=blur.factor)
    if hr.sizes["band"] != len(blur.sigma):
        raise InputError(f"image has {hr.sizes['band']} bands but sigma={blur.sigma} has {len(blur.sigma)}; pass "
                         "one sigma per band")
    table = noise_table(model, weights=weights) if noise.model == "real" else None
    key = _numpy.noise_key(noise.seed, noise.model, stream)
    attrs = chain_provenance(hr, provenance("degrade_lr", blur=blur.to_dict(), noise=noise.to_dict(), stream=stream))
    out = _lift.downsample(_chain_kernel, hr, factor=blur.factor, op=f"degrade-lr-{blur.mode}-{noise.model}",
                           token=(blur, noise, stream, key, None if table is None else table[0].tobytes()),
                           band_params=list(blur.sigma), positional=True,
                           whole_images=noise.model == "gaussian", attrs=attrs, mode=blur.mode, noise=noise.model,
                           noise_sigma=noise.sigma, table=table, key=key)
    return _fix_transform(out, hr, blur.factor)
