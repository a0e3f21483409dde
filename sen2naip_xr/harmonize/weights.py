"""Moved to :mod:`sen2naip_xr.weights` (the registry sits below ``ops``, which reads the noise matrix).

Kept so ``from sen2naip_xr.harmonize.weights import ...`` still works; new code imports
:mod:`sen2naip_xr.weights`.
"""

from sen2naip_xr.weights import WEIGHTS, noise_matrix, vae_state, weight_path

__all__ = ["WEIGHTS", "noise_matrix", "vae_state", "weight_path"]
