"""Registration and spectral agreement of two images: pure numpy kernels (no xarray, no dask).

* :func:`phase_shift` -- sub-pixel displacement by (half-whitened) phase correlation with a
  matrix-multiply upsampled DFT around the integer peak (Guizar-Sicairos et al. 2008);
* :func:`misalignment` -- QA1 of the cross-sensor builder: the median per-band shift, in pixels;
* :func:`spectral_angle` -- QA2 and the ``sad_deg`` validation metric: the mean spectral angle;
* :func:`shift_image` -- an image moved by a sub-pixel shift.

Fitting (:mod:`sen2naip_xr.fit`), the cross-sensor QA (:mod:`sen2naip_xr.pipeline`) and validation
(:mod:`sen2naip_xr.validate`) call them through :mod:`sen2naip_xr.ops.kernels`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["phase_shift", "misalignment", "spectral_angle", "shift_image"]


def _upsampled_dft(data: np.ndarray, region: int, upsample: int, offsets: tuple[float, float]) -> np.ndarray:
    """Cross-correlation upsampled by ``upsample`` on a ``region`` x ``region`` window at ``offsets``."""
    ny, nx = data.shape
    ky = np.fft.ifftshift(np.arange(ny)) - ny // 2
    kx = np.fft.ifftshift(np.arange(nx)) - nx // 2
    ry = np.arange(region) - offsets[0]
    rx = np.arange(region) - offsets[1]
    ker_y = np.exp(2j * np.pi / (ny * upsample) * np.outer(ry, ky))
    ker_x = np.exp(2j * np.pi / (nx * upsample) * np.outer(kx, rx))
    return ker_y @ data @ ker_x


def phase_shift(moving: np.ndarray, reference: np.ndarray, *, upsample: int = 20) -> tuple[float, float]:
    """(dy, dx) in pixels such that ``moving`` ~= ``reference`` shifted by (dy, dx) (content moves down/right).

    NaN pixels are replaced by the image mean. Precision 1 / ``upsample`` px.
    """
    a = np.nan_to_num(np.asarray(moving, np.float64), nan=float(np.nanmean(moving)))
    b = np.nan_to_num(np.asarray(reference, np.float64), nan=float(np.nanmean(reference)))
    win = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
    fa = np.fft.fft2((a - a.mean()) * win)
    fb = np.fft.fft2((b - b.mean()) * win)
    prod = fb * np.conj(fa)
    prod /= np.sqrt(np.maximum(np.abs(prod), 1e-12))
    corr = np.abs(np.fft.ifft2(prod))
    peak = np.array(np.unravel_index(int(np.argmax(corr)), corr.shape), dtype=np.float64)
    dims = np.array(corr.shape)
    peak[peak > dims // 2] -= dims[peak > dims // 2]
    region = int(np.ceil(upsample * 1.5))
    centre = np.fix(region / 2.0)
    offs = centre - peak * upsample
    up = np.abs(_upsampled_dft(prod, region, upsample, (offs[0], offs[1])))
    sub = np.array(np.unravel_index(int(np.argmax(up)), up.shape), dtype=np.float64) - centre
    shift = peak + sub / upsample
    # the peak is the shift that registers ``moving`` onto ``reference``: the displacement is its negative
    return float(-shift[0]) + 0.0, float(-shift[1]) + 0.0


def misalignment(lr_from_hr: np.ndarray, s2: np.ndarray) -> tuple[float, tuple[float, float]]:
    """QA1: length of the median per-band (dy, dx) of ``s2`` against ``lr_from_hr``, in 10 m pixels."""
    shifts = np.array([phase_shift(s2[b], lr_from_hr[b]) for b in range(s2.shape[0])])
    dy, dx = np.median(shifts, axis=0)
    return float(np.hypot(dy, dx)), (float(dy), float(dx))


def spectral_angle(a: np.ndarray, b: np.ndarray) -> float | np.ndarray:
    """Mean over pixels of the angle between the band vectors of ``a`` and ``b``, in degrees.

    Parameters
    ----------
    a, b
        Arrays ``(..., band, y, x)`` of the same shape. Pixels with NaN in either (or a zero vector) are
        skipped.

    Returns
    -------
    float or numpy.ndarray
        One angle per image: a float for ``(band, y, x)`` inputs, an array of the leading shape otherwise;
        NaN for an image with no valid pixel. This is QA2 of the cross-sensor builder and the ``sad_deg``
        metric of :mod:`sen2naip_xr.validate`.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    lead = a.shape[:-3]
    fa = a.reshape(-1, a.shape[-3], a.shape[-2] * a.shape[-1])
    fb = b.reshape(-1, b.shape[-3], b.shape[-2] * b.shape[-1])
    out = np.empty(fa.shape[0])
    for i, (x, y) in enumerate(zip(fa, fb, strict=True)):
        ok = np.isfinite(x).all(0) & np.isfinite(y).all(0)
        x, y = x[:, ok], y[:, ok]
        num = (x * y).sum(0)
        den = np.sqrt((x * x).sum(0) * (y * y).sum(0))
        with np.errstate(invalid="ignore", divide="ignore"):
            cos = np.clip(num / den, -1.0, 1.0)
        cos = cos[np.isfinite(cos)]
        out[i] = np.degrees(np.arccos(cos)).mean() if cos.size else np.nan
    return float(out[0]) if not lead else out.reshape(lead)


def shift_image(image: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """``(band, y, x)`` moved by ``shift`` = (dy, dx) pixels (cubic spline, edges repeated)."""
    from scipy import ndimage

    return np.stack([ndimage.shift(np.asarray(b, np.float64), shift, order=3, mode="nearest") for b in image])
