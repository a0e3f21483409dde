"""The public seam to the numpy kernels of :mod:`sen2naip_xr.harmonize` for the later stages.

* :func:`histc` -- ``torch.histc`` per band (120 bins over [0, 1]): the histograms the synthetic dataset
  stores and the VAE reads;
* :func:`apply_gamma`, :func:`gamma_lognormal`, :func:`gamma_mvn` -- the gamma harmonizers;
* :data:`HIST_BINS`, :data:`BIN_CENTRES` -- the histogram's bins.
"""

import numpy as np

from sen2naip_xr.harmonize._numpy import HIST_BINS, apply_gamma, gamma_lognormal, gamma_mvn, histc

#: Centres of the :data:`HIST_BINS` bins of :func:`histc` over [0, 1] (float32).
BIN_CENTRES = (np.arange(HIST_BINS, dtype=np.float32) + np.float32(0.5)) / np.float32(HIST_BINS)

__all__ = ["BIN_CENTRES", "HIST_BINS", "apply_gamma", "gamma_lognormal", "gamma_mvn", "histc"]
