"""Pure numpy kernels of the degradation operators.

Every function here takes and returns ndarrays shaped ``(..., band, y, x)`` (or ``(..., y, x)``), imports
neither xarray nor dask, and is deterministic: random numbers come from :mod:`sen2naip_xr._rng`, a
counter-based generator indexed by array position, so a block computes the same bytes wherever it sits in a
chunked array. :mod:`sen2naip_xr._lift` is the one place that lifts these kernels onto xarray/Dask.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy import sparse

from sen2naip_xr import _rng

# --------------------------------------------------------------------------------------------------
# Histogram matching (semantics of skimage.exposure.match_histograms, per band)
# --------------------------------------------------------------------------------------------------

_LEVELS8 = np.arange(256, dtype=np.float32) / np.float32(255)


def levels8(flat: np.ndarray) -> np.ndarray | None:
    """Return integer levels k when every value of ``flat`` is exactly float32(k/255), else None.

    8-bit NAIP converted to reflectance takes at most 256 distinct values; counting them with bincount
    gives exactly what ``np.unique`` would, an order of magnitude faster than sorting.
    """
    if flat.dtype == np.uint8:
        return flat
    if flat.dtype != np.float32:
        return None
    k = flat * np.float32(255)
    np.rint(k, out=k)
    lo, hi = k.min(initial=np.inf), k.max(initial=-np.inf)
    if not (lo >= 0 and hi <= 255):  # also False when there is a NaN
        return None
    ki = k.astype(np.uint8)
    if not np.array_equal(_LEVELS8[ki], flat):
        return None
    return ki


def distribution(
    flat: np.ndarray, codes: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Distinct values and their counts of a 1-D array without NaN.

    When the values are 8-bit levels (``codes``, from :func:`levels8`, computed here when not given), also
    returns ``(codes, present)``: each pixel's level and the levels present, so a 256-entry lookup table
    maps pixels without sorting.
    """
    codes = levels8(flat) if codes is None else codes
    if codes is not None:
        counts = np.bincount(codes, minlength=256)
        present = np.flatnonzero(counts)
        values = _LEVELS8[present] if flat.dtype != np.uint8 else present
        return values, counts[present], (codes, present)
    s = np.sort(flat)
    if s.size == 0:
        return s, np.zeros(0, np.int64), None
    edges = np.flatnonzero(s[1:] != s[:-1]) + 1
    starts = np.concatenate(([0], edges))
    counts = np.diff(np.concatenate((starts, [s.size])))
    return s[starts], counts, None


def match_band(source: np.ndarray, template_values: np.ndarray, template_quantiles: np.ndarray) -> np.ndarray:
    """Map one band onto a template distribution given as sorted values and their cumulative quantiles.

    Exactly ``skimage.exposure._match_cumulative_cdf``: source quantiles are ``cumsum(counts)/n`` at each
    distinct source value, interpolated (float64) into the template quantile function. NaNs in ``source``
    take no part and stay NaN.
    """
    dtype = np.result_type(source.dtype, np.float32)
    flat = source.reshape(-1)
    if flat.size == 0 or template_values.size == 0:
        return np.full(source.shape, np.nan, dtype=dtype)
    codes = levels8(flat)  # None for NaN too: 8-bit data is complete
    if codes is None and flat.dtype.kind == "f":
        finite = ~np.isnan(flat)
        if not finite.all():
            out = np.full(source.shape, np.nan, dtype=dtype)
            out.reshape(-1)[finite] = match_band(flat[finite], template_values, template_quantiles)
            return out
    values, counts, coded = distribution(flat, codes)
    quantiles = np.cumsum(counts) / flat.size
    mapped = np.interp(quantiles, template_quantiles, template_values.astype(np.float64))
    if coded is not None:
        codes, present = coded
        lut = np.zeros(256, dtype=dtype)  # float64 -> dtype here or per pixel: the same rounding
        lut[present] = mapped
        return lut[codes].reshape(source.shape)
    if values.size <= 65536:
        return mapped[np.searchsorted(values, flat)].astype(dtype).reshape(source.shape)
    order = np.argsort(flat)
    res = np.empty(flat.size, dtype=np.float64)
    res[order] = np.repeat(mapped, counts)
    return res.astype(dtype).reshape(source.shape)


def template_distribution(template: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and cumulative quantiles of one template band (NaNs ignored)."""
    flat = template.reshape(-1)
    if flat.dtype.kind == "f":
        flat = flat[~np.isnan(flat)]
    values, counts, _ = distribution(flat)
    return values, np.cumsum(counts) / max(flat.size, 1)


def histogram_match(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per band (axis -3), match ``image``'s histogram to ``reference``'s; leading axes are independent.

    ``image`` is ``(..., band, y, x)``; ``reference`` is ``(..., band, y', x')`` with the same leading shape
    (its spatial size may differ, e.g. a 10 m template for a 2.5 m image).
    """
    lead = image.shape[:-2]
    img = image.reshape((-1,) + image.shape[-2:])
    ref = np.broadcast_to(reference, lead + reference.shape[-2:]).reshape((-1,) + reference.shape[-2:])
    out = np.empty(img.shape, dtype=np.result_type(image.dtype, np.float32))
    for i in range(img.shape[0]):
        values, quantiles = template_distribution(ref[i])
        out[i] = match_band(img[i], values, quantiles)
    return out.reshape(image.shape)


def histogram_match_to_distribution(
    image: np.ndarray, values: np.ndarray, quantiles: np.ndarray
) -> np.ndarray:
    """Match each band of ``image`` (..., band, y, x) to a per-band template distribution.

    ``values`` and ``quantiles`` are ``(..., band, k)``: the template's distinct values and cumulative
    probabilities (entries with zero probability may repeat a quantile; they are harmless to interp).
    """
    lead = image.shape[:-2]
    img = image.reshape((-1,) + image.shape[-2:])
    vals = np.broadcast_to(values, lead + values.shape[-1:]).reshape(-1, values.shape[-1])
    qs = np.broadcast_to(quantiles, lead + quantiles.shape[-1:]).reshape(-1, quantiles.shape[-1])
    out = np.empty(img.shape, dtype=np.result_type(image.dtype, np.float32))
    for i in range(img.shape[0]):
        out[i] = match_band(img[i], vals[i], qs[i])
    return out.reshape(image.shape)


# --------------------------------------------------------------------------------------------------
# Blank check
# --------------------------------------------------------------------------------------------------


def _window_any(d: np.ndarray, axis: int, lo: int, hi: int, n: int) -> np.ndarray:
    """``out[i] = any(d[i + lo : i + hi + 1])`` along ``axis`` for ``i`` in ``range(n)``, False outside ``d``.

    Zero padding truncates the window at the array's ends; the window OR is built by doubling (``log2``
    passes of one vectorised ``|`` each), so the cost per element does not grow with the window.
    """
    m = d.shape[axis]
    before, after = -lo, n - 1 + hi - (m - 1)
    pad = [(0, 0)] * d.ndim
    pad[axis] = (max(before, 0), max(after, 0))
    cur = np.pad(d, pad) if before > 0 or after > 0 else d

    def cut(a: int | None, b: int | None) -> tuple[slice, ...]:
        s = [slice(None)] * d.ndim
        s[axis] = slice(a, b)
        return tuple(s)

    if before < 0 or after < 0:
        cur = cur[cut(max(-before, 0), cur.shape[axis] - max(-after, 0))]
    length, span = hi - lo + 1, 1
    while 2 * span <= length:
        cur = cur[cut(None, -span)] | cur[cut(span, None)]
        span *= 2
    if span < length:
        rest = length - span
        cur = cur[cut(None, -rest)] | cur[cut(rest, None)]
    return cur


def _blank_one(img: np.ndarray, window: int) -> np.ndarray:
    """:func:`blank_mask` of one ``(band, y, x)`` image."""
    _, h, w = img.shape
    half = window // 2
    nan = None
    if img.dtype.kind == "f" and np.isnan(img.min(initial=np.inf)):  # one cheap pass finds any NaN
        nan = np.isnan(img).any(axis=0)
    if window == 1:  # every 1x1 window is constant
        return nan if nan is not None else np.ones((h, w), bool)
    # a window is constant iff no two horizontal or vertical neighbours inside it differ
    dh = np.zeros((h, max(w - 1, 0)), bool)
    dv = np.zeros((max(h - 1, 0), w), bool)
    for band in img:
        dh |= band[:, 1:] != band[:, :-1]
        dv |= band[1:] != band[:-1]
    # pairs (x, x + 1) inside the window [x - half, x + half]: x in [x - half, x + half - 1]
    busy = _window_any(_window_any(dh, 0, -half, half, h), 1, -half, half - 1, w)
    busy |= _window_any(_window_any(dv, 0, -half, half - 1, h), 1, -half, half, w)
    blank = ~busy
    if nan is not None:
        blank |= _window_any(_window_any(nan, 0, -half, half, h), 1, -half, half, w)
    return blank


def blank_mask(image: np.ndarray, window: int = 19) -> np.ndarray:
    """True where every band is constant (zero variance) over the ``window`` x ``window`` neighbourhood,
    or where any band has a NaN (nodata) in it.

    Zero variance is tested exactly as ``max == min`` (no floating-point variance), computed as "no two
    horizontal or vertical neighbours in the window differ" (the window is connected): one comparison per
    neighbour pair and band, then a sliding OR per axis, O(1) per pixel whatever the window. The window is
    truncated at the image border (what scipy's ``maximum_filter(mode="reflect")`` gives too, since the
    mirrored pixels lie in the window), so a pixel's result depends only on pixels within ``window // 2``
    of it inside the image; a block with a mirrored (or real) halo of ``window // 2`` gives the same result.
    """
    lead = image.shape[:-3]
    flat = image.reshape((-1,) + image.shape[-3:])
    out = np.empty((flat.shape[0],) + image.shape[-2:], bool)
    for i, img in enumerate(flat):
        out[i] = _blank_one(img, window)
    return out.reshape(lead + image.shape[-2:])


# --------------------------------------------------------------------------------------------------
# Blur + downsample: separable stride-4 FIR filters with the padding folded into sparse matrices
# --------------------------------------------------------------------------------------------------


def gaussian_taps(sigma: float, ksize: int = 13) -> np.ndarray:
    """torchvision GaussianBlur's 1-D kernel: ``linspace(-r, r, ksize)``, ``exp(-x^2/2s^2)``, normalised (float32)."""
    half = (ksize - 1) * 0.5
    x = np.linspace(-half, half, ksize, dtype=np.float32)
    pdf = np.exp(-0.5 * (x / np.float32(sigma)) ** 2)
    return (pdf / pdf.sum()).astype(np.float32)


def sen2naip_taps(sigma: float, factor: int = 4, ksize: int = 13) -> tuple[np.ndarray, int]:
    """Fused Gaussian blur + bilinear 1/factor (align_corners=False, no antialias) taps and their origin.

    Bilinear at scale 1/4 samples source coordinate ``4i + 1.5``: the mean of blurred rows ``4i+1`` and
    ``4i+2``. Folding that 2-tap mean into the 13-tap Gaussian gives 14 taps on source rows
    ``factor*i + origin + t``.
    """
    k1 = gaussian_taps(sigma, ksize).astype(np.float64)
    centre = (factor - 1) / 2.0  # 1.5 for factor 4
    lo = int(np.floor(centre))
    frac = centre - lo
    taps = np.zeros(ksize + 1, dtype=np.float64)
    taps[:-1] += (1 - frac) * k1
    taps[1:] += frac * k1
    origin = lo - (ksize - 1) // 2
    return taps, origin


def antialias_taps(factor: int = 4) -> tuple[np.ndarray, int]:
    """torch ``interpolate(bilinear, antialias=True)`` taps for a 1/factor downsample (triangle of width factor)."""
    centre = (factor - 1) / 2.0  # source coordinate of output 0: (i + 0.5) * factor - 0.5
    pos = np.arange(int(np.floor(centre - factor)) + 1, int(np.ceil(centre + factor)))
    w = np.maximum(0.0, 1.0 - np.abs(pos - centre) / factor)
    keep = w > 0
    return w[keep], int(pos[keep][0])


def fir_matrix(
    taps: np.ndarray,
    origin: int,
    *,
    factor: int,
    n_global: int,
    out_start: int,
    out_stop: int,
    in_start: int,
    in_size: int,
    boundary: str,
) -> sparse.csr_array:
    """Sparse (n_out x in_size) matrix of a stride-``factor`` FIR filter over one block of an axis.

    Output ``i`` (global index) reads global source positions ``factor*i + origin + t``. ``boundary``
    ``"reflect"`` mirrors without repeating the edge (torch/numpy reflect); ``"truncate"`` drops taps outside
    the axis and renormalises (torch antialias). Global positions are shifted by ``in_start`` into the
    block, which must hold every position read.
    """
    n_out = out_stop - out_start
    i = np.arange(out_start, out_stop)
    src = factor * i[:, None] + origin + np.arange(taps.size)[None, :]
    w = np.broadcast_to(taps, src.shape).astype(np.float64)
    if boundary == "reflect":
        period = 2 * (n_global - 1)
        if period > 0:
            src = np.abs(src) % period
            src = np.where(src >= n_global, period - src, src)
        else:
            src = np.zeros_like(src)
    elif boundary == "truncate":
        inside = (src >= 0) & (src < n_global)
        w = np.where(inside, w, 0.0)
        w = w / w.sum(axis=1, keepdims=True)
        src = np.clip(src, 0, n_global - 1)
    else:  # pragma: no cover - validated by callers
        raise ValueError(boundary)
    local = src - in_start
    if local.min(initial=0) < 0 or local.max(initial=0) >= in_size:
        raise ValueError("block does not hold every source position the filter reads")
    rows = np.repeat(np.arange(n_out), taps.size)
    mat = sparse.coo_array((w.ravel(), (rows, local.ravel())), shape=(n_out, in_size))
    mat.sum_duplicates()
    return mat.tocsr().astype(np.float32)


@lru_cache(maxsize=256)
def _cached_matrix(key: tuple) -> sparse.csr_array:
    taps, origin, factor, n_global, out_start, out_stop, in_start, in_size, boundary = key
    return fir_matrix(
        np.asarray(taps),
        origin,
        factor=factor,
        n_global=n_global,
        out_start=out_start,
        out_stop=out_stop,
        in_start=in_start,
        in_size=in_size,
        boundary=boundary,
    )


def filter_taps(mode: str, sigma: Sequence[float], factor: int) -> list[tuple[tuple[float, ...], int, str]]:
    """Per band ``(taps, origin, boundary)`` for ``mode`` "sen2naip" (blur + bilinear) or "raw" (antialias)."""
    return _filter_taps(mode, tuple(float(s) for s in sigma), int(factor))


@lru_cache(maxsize=64)
def _filter_taps(mode: str, sigma: tuple[float, ...], factor: int) -> list[tuple[tuple[float, ...], int, str]]:
    out = []
    for s in sigma:
        if mode == "sen2naip":
            taps, origin = sen2naip_taps(float(s), factor)
            out.append((tuple(taps.tolist()), origin, "reflect"))
        else:
            taps, origin = antialias_taps(factor)
            out.append((tuple(taps.tolist()), origin, "truncate"))
    return out


def blur_downsample(
    image: np.ndarray,
    sigma: Sequence[float],
    *,
    factor: int = 4,
    mode: str = "sen2naip",
    global_shape: tuple[int, int] | None = None,
    in_offset: tuple[int, int] = (0, 0),
    out_start: tuple[int, int] = (0, 0),
    out_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Blur each band (axis -3) with its Gaussian and downsample by ``factor`` in one fused pass.

    Only the source rows and columns that the bilinear downsample reads are ever computed. For a block of a
    larger array, ``global_shape`` is the full (y, x) size, ``in_offset`` the block's global start (halo
    included) and ``out_start`` / ``out_shape`` the LR window to produce.
    """
    gy, gx = global_shape or image.shape[-2:]
    oy, ox = out_shape or (gy // factor, gx // factor)
    specs = filter_taps(mode, sigma, factor)
    if image.shape[-3] != len(specs):
        raise ValueError(f"image has {image.shape[-3]} bands but {len(specs)} sigmas")
    lead = image.shape[:-3]
    data = image.reshape((-1,) + image.shape[-3:])
    out = np.empty(data.shape[:2] + (oy, ox), dtype=np.float32)
    h, w = data.shape[-2:]
    for b, (taps, origin, boundary) in enumerate(specs):
        my = _cached_matrix((taps, origin, factor, gy, out_start[0], out_start[0] + oy, in_offset[0], h, boundary))
        mx = _cached_matrix((taps, origin, factor, gx, out_start[1], out_start[1] + ox, in_offset[1], w, boundary))
        for n in range(data.shape[0]):
            band = np.ascontiguousarray(data[n, b], dtype=np.float32)
            rows = my @ band  # (oy, w)
            out[n, b] = (mx @ rows.T).T
    return out.reshape(lead + out.shape[1:])


# --------------------------------------------------------------------------------------------------
# Noise
# --------------------------------------------------------------------------------------------------

#: Support of the reflectance-to-noise matrix: ``np.arange(-0.0101, 0.0101, 0.0002)`` (101 values).
REAL_NOISE_VALUES = np.arange(-0.0101, 0.0101, 0.0002)
#: Row edges: ``np.digitize(v, np.arange(0, 0.5, 0.005))`` gives the row 0..100.
REAL_NOISE_EDGES = np.arange(0, 0.5, 0.005)


_EDGES_PADDED = np.concatenate(([-np.inf], REAL_NOISE_EDGES, [np.inf]))  # [r] = edge r-1, [r+1] = edge r
_CELLS = 1024


def noise_rows(v: np.ndarray) -> np.ndarray:
    """``np.digitize(v, REAL_NOISE_EDGES)`` (rows 0..100), computed arithmetically and corrected exactly."""
    v64 = v.astype(np.float64)
    r = np.floor(v64 * 200.0)
    np.clip(r, -1, 100, out=r)
    r = np.nan_to_num(r, nan=-1).astype(np.intp) + 1
    r -= _EDGES_PADDED[r] > v64
    r += _EDGES_PADDED[r + 1] <= v64
    return r


def noise_cdf_table(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-CDF tables of the reflectance-to-noise matrix.

    Returns the flattened per-row CDFs ``(rows * cols,)`` (last entry of each row exactly 1) and, for each
    row and each of 1024 equal cells of [0, 1], the first column whose CDF exceeds the cell's start: a
    draw ``u`` then needs only a short forward scan from its cell's start instead of a binary search.
    """
    p = np.asarray(matrix, dtype=np.float64)
    cdf = np.cumsum(p, axis=1)
    cdf /= cdf[:, -1:]
    cdf[:, -1] = 1.0
    grid = np.arange(_CELLS + 1) / _CELLS
    starts = np.stack([np.searchsorted(row, grid, side="right") for row in cdf])
    return cdf.ravel(), starts.ravel()


def real_noise(
    lr: np.ndarray,
    table: tuple[np.ndarray, np.ndarray],
    *,
    key: int,
    offset: Sequence[int] | None = None,
    global_shape: Sequence[int] | None = None,
) -> np.ndarray:
    """Noise sampled per pixel from the reflectance-to-noise matrix (vectorised inverse CDF).

    Row ``np.digitize(v, REAL_NOISE_EDGES)``; a uniform ``u`` from the counter RNG picks the first support
    value whose CDF exceeds ``u`` (the distribution of ``np.random.choice(values, p=P[row])``).
    ``offset``/``global_shape`` place a block in its full array so the uniforms depend on position only.
    NaN pixels get NaN noise.
    """
    cdf, starts = table
    n_cols = REAL_NOISE_VALUES.size
    u = _rng.uniform(key, lr.shape, offset=offset, global_shape=global_shape).ravel()
    rows = noise_rows(lr).ravel()
    base = rows * n_cols
    pos = base + starts[rows * (_CELLS + 1) + (u * _CELLS).astype(np.intp)]
    np.minimum(pos, base + n_cols - 1, out=pos)
    active = np.flatnonzero(cdf[pos] <= u)
    while active.size:  # at most a few steps: a cell spans few columns
        pos[active] += 1
        active = active[cdf[pos[active]] <= u[active]]
    out = REAL_NOISE_VALUES[pos - base].astype(np.float32).reshape(lr.shape)
    if lr.dtype.kind == "f":
        out[np.isnan(lr)] = np.nan
    return out


def band_rms(lr: np.ndarray) -> np.ndarray:
    """Root mean square of each image band over (y, x), float64, shape ``(..., band, 1, 1)``; NaNs ignored.

    Each band is reduced on its own contiguous copy, so the value is the same whatever block holds it.
    """
    flat = np.ascontiguousarray(lr, dtype=np.float64).reshape(-1, lr.shape[-2] * lr.shape[-1])
    rms = np.array([np.sqrt(np.nanmean(row * row)) if row.size else np.nan for row in flat])
    return rms.reshape(lr.shape[:-2] + (1, 1))


def gaussian_noise(
    lr: np.ndarray,
    rms: np.ndarray,
    *,
    sigma: float,
    key: int,
    offset: Sequence[int] | None = None,
    global_shape: Sequence[int] | None = None,
) -> np.ndarray:
    """Gaussian noise with sd ``sigma * rms`` (rms per band, broadcast ``(..., band, 1, 1)``)."""
    z = _rng.normal(key, lr.shape, offset=offset, global_shape=global_shape)
    out = (z * (sigma * rms)).astype(np.float32)
    if lr.dtype.kind == "f":
        out[np.isnan(lr)] = np.nan
    return out


# --------------------------------------------------------------------------------------------------
# The degradation chain: harmonized HR -> LR (blur + downsample, then noise)
# --------------------------------------------------------------------------------------------------


def noise_key(seed: int, model: str, stream: str = "") -> int:
    """Key of the noise stream of (``seed``, noise ``model``, ``stream``).

    :func:`sen2naip_xr.add_noise`, :func:`sen2naip_xr.degrade` and the synthetic builder derive their
    noise keys here, so the same (seed, model, stream) gives the same noise in all of them.

    Parameters
    ----------
    seed
        The user's seed.
    model
        The noise model (``"real"`` or ``"gaussian"``).
    stream
        A label separating independent streams (e.g. the harmonizer's).

    Returns
    -------
    int
        The 64-bit key of the counter-based generator (:mod:`sen2naip_xr._rng`).
    """
    return _rng.derive_key(int(seed), "noise", str(model), str(stream))


def degrade_lr(
    hr: np.ndarray,
    sigma: Sequence[float],
    *,
    factor: int = 4,
    mode: str = "sen2naip",
    noise: str = "real",
    noise_sigma: float = 0.012,
    table: tuple[np.ndarray, np.ndarray] | None = None,
    key: int = 0,
    global_shape: tuple[int, int] | None = None,
    in_offset: tuple[int, int] = (0, 0),
    out_start: tuple[int, int] = (0, 0),
    out_shape: tuple[int, int] | None = None,
    lead_offset: Sequence[int] | None = None,
    lr_global_shape: Sequence[int] | None = None,
) -> np.ndarray:
    """The SEN2NAIP degradation chain on harmonized HR ``(..., band, y, x)``: LR = blur_downsample + noise.

    The one implementation of the chain: :func:`sen2naip_xr.degrade` lifts it onto xarray/Dask, the
    synthetic builder runs it per image and :class:`sen2naip_xr.loaders.torch.SRDataset` per sample.

    Parameters
    ----------
    hr
        Harmonized HR reflectance (a block of a larger array when the placement arguments are given).
    sigma, factor, mode
        Blur + downsample, as in :func:`blur_downsample`.
    noise, noise_sigma, table
        ``"real"`` (sampled from ``table``, see :func:`noise_cdf_table`), ``"gaussian"`` (sd ``noise_sigma``
        x band RMS; needs whole images) or ``"none"``.
    key
        Noise stream (:func:`noise_key`); the noise of a pixel depends on ``key`` and its LR position only.
    global_shape, in_offset, out_start, out_shape
        Placement of an HR block in its image, as in :func:`blur_downsample`.
    lead_offset, lr_global_shape
        Placement of the LR block in the full LR array: the offsets of the axes before (y, x) and the full
        LR shape (default: the block is the whole array).

    Returns
    -------
    numpy.ndarray
        float32 LR ``(..., band, y // factor, x // factor)`` (or ``out_shape``).
    """
    lr = blur_downsample(hr, sigma, factor=factor, mode=mode, global_shape=global_shape, in_offset=in_offset,
                         out_start=out_start, out_shape=out_shape)
    if noise == "none":
        return lr
    offset = (*(tuple(lead_offset) if lead_offset is not None else (0,) * (lr.ndim - 2)), *out_start)
    gshape = tuple(lr_global_shape) if lr_global_shape is not None else lr.shape
    if noise == "real":
        if table is None:
            raise ValueError("noise='real' needs table= (noise_cdf_table of the model's noise matrix)")
        return lr + real_noise(lr, table, key=key, offset=offset, global_shape=gshape)
    if noise == "gaussian":
        return lr + gaussian_noise(lr, band_rms(lr), sigma=noise_sigma, key=key, offset=offset, global_shape=gshape)
    raise ValueError(f"noise={noise!r}: use 'real', 'gaussian' or 'none'")
