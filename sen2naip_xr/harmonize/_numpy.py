"""Pure numpy kernels of the harmonizers: gamma correction and the VAE (numpy forward pass).

Gamma values are exact quantiles of the published distributions (no Monte-Carlo), so they are
deterministic. The VAE is four dense layers: numpy runs it from the state dict without torch.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import optimize, stats

from sen2naip_xr.config import PUBLISHED_LOGNORMAL, PUBLISHED_MVN_COV, PUBLISHED_MVN_MEAN

LOGNORMAL = dict(zip(("s", "loc", "scale"), PUBLISHED_LOGNORMAL, strict=True))
MVN_MEAN = np.array(PUBLISHED_MVN_MEAN)
MVN_COV = np.array(PUBLISHED_MVN_COV)
HIST_BINS = 120
VAE_ZERO_BELOW = 0.005


@lru_cache(maxsize=256)
def gamma_lognormal(percentile: float, s: float = LOGNORMAL["s"], loc: float = LOGNORMAL["loc"],
                    scale: float = LOGNORMAL["scale"]) -> float:
    """The ``percentile`` quantile of the published lognormal gamma model (one gamma for every band)."""
    return float(stats.lognorm.ppf(percentile / 100.0, s, loc=loc, scale=scale))


def gamma_mvn(percentile: float, *, pooled: bool = False, mean=MVN_MEAN, cov=MVN_COV) -> np.ndarray:
    """Per-band gammas at ``percentile`` of the multivariate normal model (its marginals).

    ``pooled=True`` returns the reference code's single gamma, repeated per band: the quantile of the
    equal-weight mixture of the four marginals (``np.percentile`` over all bands of the sample).
    """
    mean = np.asarray(mean, dtype=np.float64)
    sd = np.sqrt(np.diag(np.asarray(cov, dtype=np.float64)))
    q = percentile / 100.0
    if not pooled:
        return mean + sd * stats.norm.ppf(q)
    return np.full(mean.shape, _pooled(q, tuple(mean), tuple(sd)))


@lru_cache(maxsize=256)
def _pooled(q: float, mean: tuple, sd: tuple) -> float:
    m, s = np.asarray(mean), np.asarray(sd)

    def f(x: float) -> float:
        return float(np.mean(stats.norm.cdf((x - m) / s)) - q)

    lo, hi = float((m - 10 * s).min()), float((m + 10 * s).max())
    return float(optimize.brentq(f, lo, hi, xtol=1e-15))


def apply_gamma(image: np.ndarray, gamma: np.ndarray, *, quantize: str = "none",
                band_slice: slice = slice(None)) -> np.ndarray:
    """``image ** (1 / gamma)`` per band (axis -3); ``gamma`` holds one value per band of the full image.

    ``quantize="u8"`` reproduces the reference: ``(image * 255)`` truncated to uint8 with wrap-around, then
    a 256-entry float32 lookup table. Otherwise negative values are clipped to 0 (a power law is undefined
    there) and the power is taken in float32.
    """
    g = np.asarray(gamma, dtype=np.float64)[band_slice]
    shape = (1,) * (image.ndim - 3) + (g.size, 1, 1)
    if quantize == "u8":
        levels = np.arange(256, dtype=np.float32) / np.float32(255)
        luts = np.stack([levels ** np.float32(1.0 / gi) for gi in g])  # (band, 256)
        with np.errstate(invalid="ignore"):
            u8 = ((image * np.float32(255)).astype(np.int64) & 0xFF).astype(np.intp)
        band_idx = np.arange(g.size).reshape(shape)
        out = luts[band_idx, u8]
        if image.dtype.kind == "f":
            out[np.isnan(image)] = np.nan
        return out.astype(np.float32)
    expo = (1.0 / g).astype(np.float32).reshape(shape)
    return np.power(np.maximum(image, np.float32(0)), expo, dtype=np.float32)


# --------------------------------------------------------------------------------------------------
# VAE over 120-bin band histograms
# --------------------------------------------------------------------------------------------------


def histc(image: np.ndarray, bins: int = HIST_BINS) -> np.ndarray:
    """``torch.histc(band, bins, min=0, max=1)`` per band (axis -3): float32 counts, out-of-range dropped.

    Bin = ``int(float32(x) * bins)`` computed in float32 like torch's CPU kernel; 1.0 goes to the last bin.
    """
    lead = image.shape[:-2]
    flat = image.reshape(-1, image.shape[-2] * image.shape[-1]).astype(np.float32, copy=False)
    out = np.zeros((flat.shape[0], bins), dtype=np.float32)
    for i, row in enumerate(flat):
        v = row[(row >= 0) & (row <= 1)]
        pos = (v * np.float32(bins)).astype(np.int64)
        pos[pos == bins] = bins - 1
        out[i] = np.bincount(pos, minlength=bins)[:bins]
    return out.reshape(lead + (bins,))


def _linear(x: np.ndarray, state: dict, name: str) -> np.ndarray:
    """``x @ W.T + b`` one row (image) at a time: a batched matmul lets BLAS pick another kernel, hence
    other rounding, for another number of rows, and a result must not depend on its batch (chunking)."""
    w, b = state[f"{name}.weight"], state[f"{name}.bias"]
    out = np.empty(x.shape[:-1] + w.shape[:1], dtype=np.result_type(x, w))
    for i in range(x.shape[0]):
        out[i] = x[i: i + 1] @ w.T
    return out + b


def vae_encode(hist: np.ndarray, state: dict) -> tuple[np.ndarray, np.ndarray]:
    """Encoder of SimpleVAE: normalised histograms ``(n, 4, 120)`` -> (mu, log_var), each ``(n, 20)``."""
    x = hist.reshape(hist.shape[0], -1).astype(np.float32)
    h = np.maximum(_linear(x, state, "encoder.1"), 0)
    z = _linear(h, state, "encoder.3")
    half = z.shape[-1] // 2
    return z[:, :half], z[:, half:]


def vae_decode(z: np.ndarray, state: dict) -> np.ndarray:
    """Decoder of SimpleVAE: latent ``(n, 20)`` -> sigmoid "histograms" ``(n, 4, 120)`` (not normalised)."""
    h = np.maximum(_linear(z.astype(np.float32), state, "decoder.0"), 0)
    y = _linear(h, state, "decoder.2")
    y = 1.0 / (1.0 + np.exp(-y))
    return y.reshape(z.shape[0], 4, -1).astype(np.float32)


def vae_cdf(decoded: np.ndarray, image_hist: np.ndarray) -> np.ndarray:
    """The reference's corrected CDF (per band) from a decoded histogram and the input histogram.

    Zero below 0.005, cumulate and normalise; zero wherever the input CDF exceeds it ("NAIP is always
    brighter than S2"), renormalise by the last value and clamp to [0, 1]. As in the reference the result
    can be non-monotonic; a band whose last value is 0 gives NaN (reported by the caller).
    """
    d = decoded.astype(np.float32).copy()
    d[d < VAE_ZERO_BELOW] = 0
    cdf = np.cumsum(d, axis=-1, dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        cdf = cdf / cdf[..., -1:]
        img = np.cumsum(image_hist.astype(np.float32), axis=-1, dtype=np.float32)
        img = img / img[..., -1:]
        cdf[(img - cdf) > 0] = 0
        cdf = cdf / cdf[..., -1:]
    return np.clip(cdf, 0, 1)


def cdf_template(cdf: np.ndarray, bins: int = HIST_BINS) -> tuple[np.ndarray, np.ndarray]:
    """The exact distribution of the reference's fake image, as (values, cumulative quantiles) per band.

    The reference sets ``fake = max{j : u > cdf[j]} / bins`` (0 when none) for ``u ~ U[0, 1)``, so
    ``P(fake >= j/bins) = 1 - min_{j' >= j} cdf[j']``. Matching to this distribution is the limit of the
    reference's random template as its pixel count grows, without the sampling noise.
    """
    suffix_min = np.minimum.accumulate(cdf[..., ::-1], axis=-1)[..., ::-1].astype(np.float64)
    m = np.concatenate([np.zeros(cdf.shape[:-1] + (1,)), suffix_min[..., 1:]], axis=-1)  # m_0 := 0
    upper = np.concatenate([m[..., 1:], np.ones(cdf.shape[:-1] + (1,))], axis=-1)  # P(fake <= j)
    values = np.broadcast_to(np.arange(bins, dtype=np.float32) / np.float32(bins), upper.shape)
    return np.ascontiguousarray(values), upper


def legacy_fake(cdf: np.ndarray, shape: tuple[int, int], seed: int, bins: int = HIST_BINS) -> np.ndarray:
    """The reference's random fake image for one image's CDF ``(band, bins)``: ``np.random.seed(seed)`` draws."""
    u = np.random.RandomState(seed).rand(cdf.shape[0], *shape)
    fake = np.zeros(u.shape, dtype=np.float32)
    for b in range(cdf.shape[0]):
        for j in range(bins):
            fake[b][u[b] > cdf[b][j]] = np.float32(j / bins)
    return fake
