"""Fit the degradation model from cross-sensor pairs (NAIP at 2.5 m, Sentinel-2 at 10 m on the same grid).

* **gamma**: per pair and band, the gamma for which the gamma-corrected NAIP has the mean reflectance of S2
  (blur, downsampling and zero-mean noise keep the mean, so this is insensitive to them and to small
  misregistration); then a multivariate normal over the 4-vector of gammas and a KS statistic per band
  (empirical gammas against the fitted normal marginal).
* **blur sigma**: per band, an MAE sweep over sigma: NAIP ** (1/gamma) is registered to S2 (sub-pixel phase
  correlation, shift applied at 2.5 m), blurred and downsampled with each sigma, and compared with S2.
* **noise matrix**: from the S2 images alone. The noise of a pixel is estimated as its residual from the mean
  of its 4 neighbours, scaled by 1/sqrt(1.25) (for white noise, var(x - mean4) = 1.25 var(noise)), in
  homogeneous areas only (local gradient below the 20th percentile); residuals are histogrammed per
  reflectance row on the published support, so the result drops into the published model's place.

:func:`fit_model` runs all three and returns a :class:`FitResult` whose ``model`` is a
:class:`~sen2naip_xr.config.DegradationModel` both pipelines accept (``degrade(..., model=...)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage, optimize, stats

from sen2naip_xr._const import BANDS
from sen2naip_xr._validate import as_image
from sen2naip_xr.config import DegradationModel
from sen2naip_xr.errors import InputError
from sen2naip_xr.ops import kernels as _ops

__all__ = ["fit_gamma", "fit_sigma", "fit_noise_matrix", "fit_model", "FitResult", "register_shift",
           "DEFAULT_SIGMAS"]

#: Sigma grid of the blur sweep, in HR pixels.
DEFAULT_SIGMAS = np.round(np.arange(1.0, 5.001, 0.1), 2)


def _pairs(naip: xr.DataArray, s2: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    """Both stacks as numpy ``(pair, band, y, x)``, checked to be NAIP at 4x the S2 grid."""
    naip, s2 = as_image(naip, arg="naip", bands=4), as_image(s2, arg="s2", bands=4)
    a, b = np.asarray(naip.values, np.float32), np.asarray(s2.values, np.float32)
    a = a.reshape((-1,) + a.shape[-3:])
    b = b.reshape((-1,) + b.shape[-3:])
    if a.shape[0] != b.shape[0] or a.shape[-2] != 4 * b.shape[-2] or a.shape[-1] != 4 * b.shape[-1]:
        raise InputError(
            f"naip {a.shape} and s2 {b.shape} are not pairs on nested grids: pass the same number of images "
            "with naip at 2.5 m exactly 4x the 10 m s2 size (e.g. 484 and 121)"
        )
    if a.shape[0] == 0:
        raise InputError("naip and s2 hold no pairs; fitting needs at least one (better dozens)")
    return a, b


def _solve_gamma(values: np.ndarray, weights: np.ndarray, target: float) -> float:
    """The gamma with weighted mean of ``values ** (1/gamma)`` equal to ``target`` (NaN when impossible)."""
    v = np.clip(values.astype(np.float64), 0, None)

    def f(g: float) -> float:
        return float(np.sum(weights * v ** (1.0 / g)) - target)

    lo, hi = 0.02, 20.0
    if not np.isfinite(target) or f(lo) > 0 or f(hi) < 0:
        return float("nan")
    return float(optimize.brentq(f, lo, hi, xtol=1e-7))


def fit_gamma(naip: xr.DataArray, s2: xr.DataArray) -> pd.DataFrame:
    """Optimal gamma per pair and band: ``mean(naip ** (1/gamma)) == mean(s2)`` over S2's valid pixels.

    Returns a table with one row per pair and columns ``red``, ``green``, ``blue``, ``nir``.
    """
    a, b = _pairs(naip, s2)
    rows = []
    for p in range(a.shape[0]):
        row = {}
        for k, band in enumerate(BANDS):
            lr = b[p, k]
            valid = np.isfinite(lr)
            hr = a[p, k].reshape(lr.shape[0], 4, lr.shape[1], 4).transpose(0, 2, 1, 3)[valid].ravel()
            hr = hr[np.isfinite(hr)]
            if hr.size == 0:
                row[band] = float("nan")
                continue
            values, counts, _ = _ops.distribution(hr) if hr.dtype == np.float32 else (hr, np.ones(hr.size), None)
            row[band] = _solve_gamma(np.asarray(values), counts / counts.sum(), float(lr[valid].mean()))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(BANDS))


def register_shift(reference: np.ndarray, moving: np.ndarray, *, border: int = 6) -> tuple[float, float]:
    """Sub-pixel (dy, dx) that, applied to ``moving`` (``scipy.ndimage.shift``), aligns it with ``reference``.

    Both are 2-D images on the same grid (NaN filled with the mean). The start is the QA1 phase correlation
    (:func:`sen2naip_xr.ops.kernels.phase_shift`); it is refined by minimising the mean squared difference
    of the standardised images, with ``moving`` shifted by cubic splines, over the interior (``border``
    pixels left out): about 0.01 px on textured images, where FFT sub-pixel peaks are biased by the edges.
    """
    def standard(img: np.ndarray) -> np.ndarray:
        img = np.where(np.isfinite(img), img, np.nanmean(img)).astype(np.float64)
        return (img - img.mean()) / (img.std() + 1e-12)

    r, m = standard(reference), standard(moving)
    start = -np.asarray(_ops.phase_shift(m, r))  # its displacement of moving; we want the shift that undoes it
    inner = (slice(border, -border or None), slice(border, -border or None))

    def cost(shift: np.ndarray) -> float:
        return float(np.mean((ndimage.shift(m, shift, order=3, mode="nearest")[inner] - r[inner]) ** 2))

    res = optimize.minimize(cost, start, method="Nelder-Mead", options={"xatol": 1e-3, "fatol": 1e-12})
    return float(res.x[0]), float(res.x[1])


def _gamma_corrected(a: np.ndarray, gammas: np.ndarray) -> np.ndarray:
    g = np.asarray(gammas, np.float64).reshape(a.shape[0], 4, 1, 1)
    return np.power(np.clip(a, 0, None), (1.0 / g).astype(np.float32), dtype=np.float32)


def fit_sigma(naip: xr.DataArray, s2: xr.DataArray, gammas: pd.DataFrame | np.ndarray | None = None, *,
              sigmas: Sequence[float] | np.ndarray = DEFAULT_SIGMAS, border: int = 4,
              register: bool = True) -> tuple[np.ndarray, xr.DataArray, np.ndarray]:
    """Blur sigma per band by an MAE sweep.

    Returns ``(best sigma per band, MAE curves (sigma, band), shifts (pair, 2) in 10 m pixels)``. ``gammas``
    (pair x band, e.g. from :func:`fit_gamma`) are applied first; ``register`` aligns each pair by phase
    correlation at sigma 3 before the sweep; ``border`` LR pixels are left out of the MAE.
    """
    a, b = _pairs(naip, s2)
    if gammas is not None:
        g = np.asarray(gammas, np.float64).reshape(a.shape[0], 4)
        g = np.where(np.isfinite(g), g, 1.0)
        a = _gamma_corrected(a, g)
    shifts = np.zeros((a.shape[0], 2))
    if register:
        probe = _ops.blur_downsample(a, (3.0,) * 4)
        for p in range(a.shape[0]):
            shifts[p] = register_shift(np.nansum(b[p], axis=0), probe[p].sum(axis=0))
            a[p] = ndimage.shift(a[p], (0, 4 * shifts[p, 0], 4 * shifts[p, 1]), order=3, mode="reflect")
    sl = (slice(None), slice(None), slice(border, -border or None), slice(border, -border or None))
    curves = np.zeros((len(sigmas), 4))
    for i, s in enumerate(sigmas):
        pred = _ops.blur_downsample(a, (float(s),) * 4)
        err = np.abs(pred[sl] - b[sl])
        curves[i] = np.nanmean(err, axis=(0, 2, 3))
    best = np.asarray(sigmas, np.float64)[np.argmin(curves, axis=0)]
    curve = xr.DataArray(curves, dims=("sigma", "band"), coords={"sigma": np.asarray(sigmas, np.float64),
                                                                  "band": list(BANDS)}, name="mae")
    return best, curve, shifts


def fit_noise_matrix(s2: xr.DataArray, *, min_per_row: int = 200, quantile: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Reflectance-to-noise matrix estimated from S2 images alone (see the module docstring).

    Returns ``(matrix (101, 101), samples per row (101,))``. Rows with fewer than ``min_per_row`` samples take
    the distribution of the nearest populated row.
    """
    s = as_image(s2, arg="s2")
    x = np.asarray(s.values, np.float64).reshape((-1,) + s.shape[-2:])
    resid, level = [], []
    for img in x:
        if not np.isfinite(img).any():
            continue
        fill = np.where(np.isfinite(img), img, np.nanmean(img))
        mean4 = ndimage.correlate(fill, np.array([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]]), mode="reflect")
        grad = ndimage.gaussian_gradient_magnitude(fill, 1.0, mode="reflect")
        r = (fill - mean4) / np.sqrt(1.25)
        ok = np.isfinite(img) & (grad <= np.quantile(grad[np.isfinite(img)], quantile))
        ok[[0, -1], :] = False
        ok[:, [0, -1]] = False
        resid.append(r[ok])
        level.append(mean4[ok])
    if not resid:
        raise InputError("s2 has no valid pixel; the noise matrix needs cloud-free S2 images")
    r, v = np.concatenate(resid), np.concatenate(level)
    rows = np.digitize(v, _ops.REAL_NOISE_EDGES)
    cols = np.clip(np.rint((r + 0.0101) / 0.0002).astype(np.intp), 0, 100)
    counts = np.zeros((101, 101))
    np.add.at(counts, (rows, cols), 1)
    n = counts.sum(axis=1)
    populated = np.flatnonzero(n >= min_per_row)
    if populated.size == 0:
        populated = np.array([int(np.argmax(n))])
    matrix = np.empty_like(counts)
    for row in range(101):
        src = row if n[row] >= min_per_row else populated[np.argmin(np.abs(populated - row))]
        matrix[row] = counts[src] / counts[src].sum()
    return matrix, n


def _rows(matrix: np.ndarray) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row) for row in np.asarray(matrix))


@dataclass(frozen=True)
class FitResult:
    """Everything :func:`fit_model` estimated, plus the model it makes."""

    model: DegradationModel
    """The fitted model (gamma MVN, sigma per band, noise matrix)."""
    gammas: pd.DataFrame
    """Optimal gamma per pair (rows) and band (columns)."""
    ks: dict
    """KS statistic (and p-value) per band: empirical gammas against the fitted normal marginal."""
    sigma_curves: xr.DataArray
    """MAE per sigma and band (the paper's Fig. 6)."""
    shifts: np.ndarray
    """Registration shift per pair, in 10 m pixels."""
    noise_counts: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(101))
    """Residual samples per reflectance row of the noise matrix."""

    def summary(self) -> pd.DataFrame:
        """One row per band: gamma mean and sd, KS statistic, fitted sigma."""
        return pd.DataFrame({
            "band": list(BANDS),
            "gamma_mean": self.model.mvn_mean,
            "gamma_sd": np.sqrt(np.diag(np.asarray(self.model.mvn_cov))),
            "ks_stat": [self.ks[b]["statistic"] for b in BANDS],
            "sigma": self.model.sigma,
        })


def fit_model(naip: xr.DataArray, s2: xr.DataArray, *, sigmas: Sequence[float] | np.ndarray = DEFAULT_SIGMAS,
              noise: bool = True, source: str = "fitted") -> FitResult:
    """Fit gamma (MVN), blur sigma and the noise matrix from cross-sensor pairs; see the module docstring.

    Parameters
    ----------
    naip, s2
        Pairs on nested grids: NAIP ``(..., band, y, x)`` at 2.5 m and S2 ``(..., band, y/4, x/4)`` at 10 m.
    sigmas
        The sigma grid of the blur sweep.
    noise
        Also fit the noise matrix (else the model keeps the published one).
    source
        Recorded in the model's ``source``.

    Returns
    -------
    FitResult
        The fitted :class:`~sen2naip_xr.DegradationModel` (validated) and the evidence behind it.
    """
    gammas = fit_gamma(naip, s2)
    good = gammas.dropna()
    if len(good) == 0:
        raise InputError("no pair gave a finite gamma: check that naip and s2 overlap and hold valid pixels")
    g = good.to_numpy()
    mean = g.mean(axis=0)
    cov = np.cov(g, rowvar=False) if len(g) > 1 else np.diag(np.full(4, 1e-6))
    cov = np.atleast_2d(cov) + np.eye(4) * 1e-10
    ks = {}
    for k, band in enumerate(BANDS):
        sd = float(np.sqrt(cov[k, k]))
        res = stats.kstest(g[:, k], "norm", args=(mean[k], sd))
        ks[band] = {"statistic": float(res.statistic), "pvalue": float(res.pvalue), "n": int(len(g))}
    best, curves, shifts = fit_sigma(naip, s2, gammas, sigmas=sigmas)
    matrix, counts = fit_noise_matrix(s2) if noise else (None, np.zeros(101))
    model = DegradationModel(mvn_mean=tuple(mean), mvn_cov=_rows(cov), sigma=tuple(best),
                             noise_matrix=None if matrix is None else _rows(matrix), source=source)
    return FitResult(model=model, gammas=gammas, ks=ks, sigma_curves=curves, shifts=shifts, noise_counts=counts)

