"""The public seam to the numpy kernels of :mod:`sen2naip_xr.ops` for the later stages.

Kernels take and return ndarrays ``(..., band, y, x)`` and import neither xarray nor dask. Stages that
work on numpy arrays (the builders' tasks, fitting, training, the torch loaders) call them here rather
than reaching into the private ``ops._numpy``; :mod:`sen2naip_xr.ops` lifts the same kernels onto
xarray/Dask.

* :func:`degrade_lr` -- **the** degradation chain, harmonized HR -> LR (blur + downsample, then noise);
  :func:`noise_key` -- the key of a noise stream.
* :func:`blur_downsample`, :func:`real_noise`, :func:`gaussian_noise`, :func:`band_rms`,
  :func:`noise_cdf_table`, :data:`REAL_NOISE_EDGES`, :data:`REAL_NOISE_VALUES` -- its parts.
* :func:`phase_shift`, :func:`misalignment`, :func:`spectral_angle`, :func:`shift_image` -- registration and
  spectral agreement of two images (QA of the cross-sensor builder, fitting, validation).
* :func:`match_band`, :func:`histogram_match`, :func:`template_distribution`, :func:`distribution` --
  histogram matching.
"""

from sen2naip_xr.ops._numpy import (
    REAL_NOISE_EDGES,
    REAL_NOISE_VALUES,
    band_rms,
    blur_downsample,
    degrade_lr,
    distribution,
    gaussian_noise,
    histogram_match,
    levels8,
    match_band,
    noise_cdf_table,
    noise_key,
    noise_rows,
    real_noise,
    template_distribution,
)
from sen2naip_xr.ops._registration import misalignment, phase_shift, shift_image, spectral_angle

__all__ = ["REAL_NOISE_EDGES", "REAL_NOISE_VALUES", "band_rms", "levels8", "blur_downsample", "degrade_lr", "distribution",
           "gaussian_noise", "histogram_match", "match_band", "misalignment", "noise_cdf_table", "noise_key", "noise_rows",
           "phase_shift", "real_noise", "shift_image", "spectral_angle", "template_distribution"]
