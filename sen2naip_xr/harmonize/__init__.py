"""Harmonization: NAIP reflectance -> Sentinel-2-like reflectance, with the published SEN2NAIP models.

Methods (``harmonize(image, method=...)``):

* ``identity`` (alias ``raw``): the image itself.
* ``gamma_lognormal``: ``image ** (1/gamma)``, gamma the percentile of the published lognormal.
* ``gamma_mvn``: per-band gamma at a percentile of the published multivariate normal (its marginals);
  ``pooled=True`` gives the reference code's single pooled gamma.
* ``unet``: the published U-Net (EfficientNet-B1 encoder) predicts S2 reflectance; the image is then
  histogram-matched to the prediction. ``at="lr"`` (default) runs it on NAIP degraded to 10 m as the
  paper's Fig. 5A describes (16x less compute); ``at="hr"`` at 2.5 m as the reference code does.
* ``vae``: the published VAE maps the 120-bin band histograms of NAIP (at 10 m by default, ``at="hr"``
  as the reference) to S2 histograms; the image is histogram-matched to the decoded distribution.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import xarray as xr

from sen2naip_xr import _lift, _rng
from sen2naip_xr._validate import as_image, check_values
from sen2naip_xr.config import SEN2NAIP_SIGMA, DegradationModel, HarmonizeConfig, Method
from sen2naip_xr.errors import InputError, WeightsError
from sen2naip_xr.harmonize import _numpy
from sen2naip_xr.harmonize._torch import require_torch, resolve_device
from sen2naip_xr.ops import chain_provenance, provenance
from sen2naip_xr.ops import kernels as _ops
from sen2naip_xr.weights import WEIGHTS, noise_matrix, vae_state, weight_path

__all__ = ["harmonize", "gamma_values", "vae_distribution", "weight_path", "noise_matrix", "WEIGHTS", "require_torch", "resolve_device"]


def gamma_values(method: Literal["gamma_lognormal", "gamma_mvn"], percentile: float = 50.0, *,
                 pooled: bool = False, model: DegradationModel | None = None) -> np.ndarray:
    """The per-band (R, G, B, NIR) gammas that ``harmonize`` applies for a gamma method and percentile,
    from the published distributions or those of a fitted ``model``.

    Parameters
    ----------
    method
        ``"gamma_lognormal"`` or ``"gamma_mvn"``.
    percentile
        Percentile of the gamma distribution, in (0, 100).
    pooled
        gamma_mvn: one gamma pooled over the bands (the reference code's behaviour).
    model
        A fitted :class:`~sen2naip_xr.DegradationModel` (default: the published one).

    Returns
    -------
    numpy.ndarray
        float64 ``(4,)``: the gamma of each band.
    """
    cfg = HarmonizeConfig(method=method, percentile=percentile, pooled=pooled)
    model = model or DegradationModel()
    if cfg.method == "gamma_lognormal":
        return np.full(4, _numpy.gamma_lognormal(cfg.percentile, *model.lognormal))
    if cfg.method == "gamma_mvn":
        return _numpy.gamma_mvn(cfg.percentile, pooled=cfg.pooled, mean=model.mvn_mean, cov=model.mvn_cov)
    raise InputError(f"method={method!r} has no gamma; use 'gamma_lognormal' or 'gamma_mvn'")


def _checkpoint(path: str) -> str:
    if not Path(path).is_file():
        raise WeightsError(f"checkpoint={path!r} does not exist; pass a file written by sen2naip_xr.train")
    return str(Path(path).resolve())


@lru_cache(maxsize=8)
def _vae_checkpoint(path: str) -> dict:
    from sen2naip_xr import _torchfile

    try:
        state = dict(_torchfile.load(path))
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
        raise WeightsError(f"checkpoint={path!r} is not a VAE state dict ({exc}); write one with "
                           "sen2naip_xr.train.train_vae") from exc
    missing = {"encoder.1.weight", "encoder.3.weight", "decoder.0.weight", "decoder.2.weight"} - set(state)
    if missing:
        raise WeightsError(f"checkpoint={path!r} lacks VAE keys {sorted(missing)}")
    return state


def _to_10m(images: np.ndarray) -> np.ndarray:
    return _ops.blur_downsample(images, SEN2NAIP_SIGMA)


def network_input(images: np.ndarray, cfg: HarmonizeConfig) -> np.ndarray:
    """What a network harmonizer reads of ``(n, 4, H, W)`` images: NAIP at 10 m (``at="lr"``) or at 2.5 m.

    With :func:`network_forward` and :func:`network_finish` this splits a network harmonizer into the
    network's own work (a GPU task in the staged build) and the CPU work around it; the three chained are
    the harmonizer, bit for bit.
    """
    return _to_10m(images) if cfg.at == "lr" else images


def unet_path(cfg: HarmonizeConfig) -> str:
    """The U-Net checkpoint a variant uses (its own ``checkpoint`` or the published weights)."""
    return _checkpoint(cfg.checkpoint) if cfg.checkpoint else str(weight_path("unet", cfg.weights))


def vae_weights(cfg: HarmonizeConfig) -> dict:
    """The VAE state a variant uses (its own ``checkpoint`` or the published weights)."""
    return _vae_checkpoint(_checkpoint(cfg.checkpoint)) if cfg.checkpoint else vae_state(cfg.weights)


def network_forward(net_in: np.ndarray, cfg: HarmonizeConfig, *, batch_size: int | None = None) -> np.ndarray:
    """The network of a ``unet`` or ``vae`` variant on :func:`network_input` output ``(n, 4, h, w)``.

    U-Net: its prediction ``(n, 4, h, w)`` (batched by ``batch_size``, default ``cfg.batch_size``); VAE:
    the decoded, corrected CDF ``(n, 4, 120)`` of each image's band histograms.
    """
    if cfg.method == "unet":
        from sen2naip_xr.harmonize._torch import run_unet

        return run_unet(net_in, path=unet_path(cfg), device=cfg.device, batch_size=batch_size or cfg.batch_size)
    if cfg.method == "vae":
        return _vae_from_hist(_numpy.histc(net_in), cfg=cfg, state=vae_weights(cfg))["cdf"]
    raise InputError(f"method={cfg.method!r} has no network; network_forward takes 'unet' or 'vae'")


def network_finish(images: np.ndarray, out: np.ndarray, cfg: HarmonizeConfig) -> np.ndarray:
    """The CPU end of a network harmonizer: ``(n, 4, H, W)`` images matched to :func:`network_forward` output."""
    if cfg.method == "unet":
        return _ops.histogram_match(images, out)
    return _vae_match(images, out, cfg)


def _gammas(cfg: HarmonizeConfig, model: DegradationModel | None) -> np.ndarray:
    """The per-band gammas of a gamma variant: its own ``gamma`` or the model's at its percentile."""
    if cfg.gamma is not None:
        return np.broadcast_to(np.asarray(cfg.gamma, dtype=np.float64), (4,)).copy()
    return gamma_values(cfg.method, cfg.percentile, pooled=cfg.pooled, model=model)  # type: ignore[arg-type]


def harmonize_image(image: np.ndarray, cfg: HarmonizeConfig, *, model: DegradationModel | None = None,
                    net_out: np.ndarray | None = None) -> np.ndarray:
    """:func:`harmonize_with` of one ``(4, H, W)`` float32 image at the numpy level (no xarray, no checks).

    Identity and gamma variants are computed here; a network variant takes ``net_out``, this image's
    :func:`network_forward` output, and runs its CPU end (:func:`network_finish`). The same bytes as
    ``harmonize_with`` of a stack holding this image: every variant treats the images of a stack apart.
    """
    if cfg.method == "identity":
        return image
    if cfg.method.startswith("gamma"):
        return _numpy.apply_gamma(image, _gammas(cfg, model), quantize=cfg.quantize)
    if net_out is None:
        raise InputError(f"harmonize_image of a {cfg.method!r} variant needs net_out (its network_forward output)")
    return network_finish(image[None], net_out[None], cfg)[0]


def _unet_kernel(block: np.ndarray, *, cfg: HarmonizeConfig, path: str) -> np.ndarray:
    from sen2naip_xr.harmonize._torch import run_unet

    images = block.reshape((-1,) + block.shape[-3:])
    pred = run_unet(network_input(images, cfg), path=path, device=cfg.device, batch_size=cfg.batch_size)
    return network_finish(images, pred, cfg).reshape(block.shape)


def vae_distribution(images: np.ndarray, *, cfg: HarmonizeConfig, state: dict) -> dict[str, np.ndarray]:
    """Every intermediate of the VAE harmonizer for ``(n, 4, H, W)`` images, as numpy arrays.

    Keys: ``hist`` (n, 4, 120) input histograms (of the 10 m image when ``cfg.at == "lr"``), ``mu``,
    ``logvar``, ``z`` (n, 20), ``decoded`` (n, 4, 120) and ``cdf`` (n, 4, 120), the reference's corrected CDF.
    """
    return _vae_from_hist(_numpy.histc(network_input(images, cfg)), cfg=cfg, state=state)


def _vae_from_hist(hist: np.ndarray, *, cfg: HarmonizeConfig, state: dict) -> dict[str, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = hist / hist.sum(axis=-1, keepdims=True)
    mu, logvar = _numpy.vae_encode(norm, state)
    z = mu
    if cfg.sample:
        eps = _rng.normal(_rng.derive_key(cfg.seed, "vae-eps"), mu.shape[-1:]).astype(np.float32)
        z = mu + eps * np.exp(np.float32(0.5) * logvar)
    decoded = _numpy.vae_decode(z, state)
    return {"hist": hist, "mu": mu, "logvar": logvar, "z": z, "decoded": decoded,
            "cdf": _numpy.vae_cdf(decoded, hist)}


def _vae_kernel(block: np.ndarray, *, cfg: HarmonizeConfig, state: dict) -> np.ndarray:
    images = block.reshape((-1,) + block.shape[-3:])
    cdf = vae_distribution(images, cfg=cfg, state=state)["cdf"]
    return _vae_match(images, cdf, cfg).reshape(block.shape)


def _vae_match(images: np.ndarray, cdf: np.ndarray, cfg: HarmonizeConfig) -> np.ndarray:
    out = np.empty(images.shape, dtype=np.float32)
    for i, img in enumerate(images):
        if cfg.template == "legacy":
            fake = _numpy.legacy_fake(cdf[i], img.shape[-2:], cfg.seed)
            out[i] = _ops.histogram_match(img, fake)
            continue
        values, quantiles = _numpy.cdf_template(cdf[i])
        for b in range(img.shape[0]):
            if np.isnan(quantiles[b]).any():  # empty histogram or all-zero decoded band: as the reference
                out[i, b] = np.nan
                continue
            keep = np.diff(quantiles[b], prepend=0.0) > 0
            out[i, b] = _ops.match_band(img[b], values[b][keep], quantiles[b][keep])
    return out


def harmonize(
    image: xr.DataArray,
    method: Method = "identity",
    *,
    percentile: float = 50.0,
    pooled: bool = False,
    gamma: float | tuple[float, ...] | None = None,
    quantize: Literal["none", "u8"] = "none",
    at: Literal["lr", "hr"] = "lr",
    sample: bool = False,
    template: Literal["exact", "legacy"] = "exact",
    seed: int = 0,
    device: str = "auto",
    batch_size: int = 16,
    weights: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    model: DegradationModel | None = None,
) -> xr.DataArray:
    """Harmonize NAIP reflectance (dims ``(..., band, y, x)``, bands R,G,B,NIR in [0, 1]) to S2 reflectance.

    See the module docstring for the methods and :class:`~sen2naip_xr.config.HarmonizeConfig` for every
    option; ``model`` replaces the published gamma distributions by fitted ones. Dask inputs stay lazy: gamma is elementwise on any chunking; the networks get whole images,
    batched over the leading dims of each chunk. Images must be complete (no NaN) and in [0, 1]; for dask
    data that is checked when the tasks run.

    Parameters
    ----------
    image
        NAIP reflectance ``(..., band, y, x)``.
    method
        ``identity`` (``raw``), ``gamma_lognormal``, ``gamma_mvn``, ``unet`` or ``vae``.
    percentile, pooled, gamma, quantize, at, sample, template, seed, device, batch_size, weights, checkpoint
        The fields of :class:`~sen2naip_xr.HarmonizeConfig`, documented there.
    model
        A :class:`~sen2naip_xr.DegradationModel` whose gamma distributions replace the published ones.

    Returns
    -------
    xarray.DataArray
        Harmonized reflectance, float32, same dims, coordinates and chunks as ``image``.
    """
    cfg = HarmonizeConfig(method=method, percentile=percentile, pooled=pooled, gamma=gamma, quantize=quantize, at=at,
                          sample=sample, template=template, seed=seed, device=device, batch_size=batch_size,
                          weights=None if weights is None else str(weights),
                          checkpoint=None if checkpoint is None else str(checkpoint))
    return harmonize_with(image, cfg, model=model)


def harmonize_with(image: xr.DataArray, cfg: HarmonizeConfig, *, model: DegradationModel | None = None) -> xr.DataArray:
    """:func:`harmonize` driven by a :class:`~sen2naip_xr.config.HarmonizeConfig` (and a fitted model).

    Parameters
    ----------
    image
        NAIP reflectance ``(..., band, y, x)``.
    cfg
        The harmonization variant.
    model
        Gamma distributions (default: the published model).

    Returns
    -------
    xarray.DataArray
        As :func:`harmonize`.
    """
    image = as_image(image, bands=4)
    attrs = chain_provenance(image, provenance("harmonize", **cfg.to_dict()))
    if cfg.method == "identity":
        out = image.copy(deep=False)  # shares the data: nothing is computed or copied
        out.attrs = {**image.attrs, **attrs}
        return out
    image = check_values(image, arg="image")
    if cfg.method.startswith("gamma"):
        gam = _gammas(cfg, model)
        return _lift.pointwise(_numpy.apply_gamma, image, op=f"harmonize-{cfg.label}", token=(cfg, gam.tolist()),
                               attrs=attrs, gamma=gam, quantize=cfg.quantize)
    if cfg.method == "unet":
        require_torch()  # fail while building the graph, not inside a task
        path = unet_path(cfg)
        if cfg.at == "hr":
            image_ok = image
        else:
            image_ok = as_image(image, min_size=8)
        return _lift.per_image(_unet_kernel, image_ok, op=f"harmonize-unet-{cfg.at}", token=cfg, attrs=attrs,
                               cfg=cfg, path=path)
    state = vae_weights(cfg)
    if cfg.at == "lr":  # the histograms are taken at 10 m: at least 2x2 LR pixels
        image = as_image(image, min_size=8)
    return _lift.per_image(_vae_kernel, image, op=f"harmonize-vae-{cfg.at}", token=cfg, attrs=attrs, cfg=cfg,
                           state=state)
