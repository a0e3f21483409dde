"""Quality of a cross-sensor pair: QA1 (misalignment, 10 m pixels) and QA2 (mean spectral angle, degrees).

The kernels live in :mod:`sen2naip_xr.ops.kernels` (fitting and validation use them too); this module
brings NAIP_h to 10 m with the QA sigmas.

QA1 method: NAIP_h (NAIP histogram-matched to S2) is brought to 10 m with the package's blur +
bilinear 1/4 (:func:`sen2naip_xr.blur_downsample`, the SEN2NAIP sigmas), then each band is registered
to the same S2 band by phase correlation (normalised cross-power spectrum of Hann-windowed, mean-removed
images) with sub-pixel refinement by a matrix-multiply upsampled DFT around the integer peak
(Guizar-Sicairos et al. 2008,
``upsample`` = 20, i.e. 0.05 px). The shift vector is the median over the
bands; QA1 is its length in S2 pixels. The cross-power spectrum is whitened by ``|.| ** 0.5`` rather than
fully (pure phase correlation): on blurred imagery full whitening amplifies high-frequency noise and biases
sub-pixel shifts toward 0 (0.1 px on the demo scenes); the half-whitened estimate is within 0.05 px.

QA2 is the mean spectral angle between S2 and NAIP_h at 10 m after NAIP_h is moved by the QA1 shift, so
it measures spectral, not spatial, disagreement (edges of a misaligned pair would dominate otherwise).
"""

from __future__ import annotations

import numpy as np

from sen2naip_xr.ops.kernels import misalignment, phase_shift, shift_image, spectral_angle

__all__ = ["phase_shift", "misalignment", "spectral_angle", "to_10m", "shift_image"]


def to_10m(hr: np.ndarray, sigma=(3.0, 2.9, 2.9, 3.4)) -> np.ndarray:
    """HR ``(band, y, x)`` brought to 10 m by the SEN2NAIP blur + bilinear 1/4."""
    import xarray as xr

    from sen2naip_xr.ops import blur_downsample

    return blur_downsample(xr.DataArray(np.asarray(hr, np.float32), dims=("band", "y", "x")), sigma=sigma).values
