"""Diversity filter of the synthetic part: image embeddings, MiniBatchKMeans, one image kept per cluster.

An embedder is any callable ``(n, 4, H, W)`` float32 reflectance -> ``(n, d)`` float embeddings with a
``name``. Two are provided:

* :class:`ThumbnailEmbedder` (default, offline, downloads nothing): an 8 x 8 thumbnail of each band, the
  band quantiles, NDVI statistics and edge density, i.e. colour, layout and texture;
* :class:`ClipEmbedder`: an open-clip image encoder from a checkpoint file the user provides
  (``pip install open-clip-torch``); the model is loaded once per process.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from sen2naip_xr.errors import InputError, MissingDependencyError

__all__ = ["ThumbnailEmbedder", "ClipEmbedder", "make_embedder", "select_diverse"]


@dataclass(frozen=True)
class ThumbnailEmbedder:
    """Offline embedding: thumbnail (8 x 8 per band), quantiles, NDVI and edge statistics (292 values)."""

    grid: int = 8
    """Thumbnail side (block means)."""
    name: str = "thumbnail"

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, np.float32)
        n, b, h, w = images.shape
        g = self.grid
        hh, ww = h // g * g, w // g * g
        thumb = images[:, :, :hh, :ww].reshape(n, b, g, hh // g, g, ww // g).mean(axis=(3, 5)).reshape(n, -1)
        q = np.quantile(images.reshape(n, b, -1), [0.1, 0.5, 0.9], axis=-1).transpose(1, 2, 0).reshape(n, -1)
        red, nir = images[:, 0], images[:, 3]
        ndvi = (nir - red) / np.maximum(nir + red, 1e-3)
        nd = np.stack([ndvi.mean(axis=(1, 2)), ndvi.std(axis=(1, 2))], axis=1)
        gy = np.abs(np.diff(images, axis=2)).mean(axis=(2, 3))
        gx = np.abs(np.diff(images, axis=3)).mean(axis=(2, 3))
        return np.concatenate([thumb, q, nd, gy + gx], axis=1).astype(np.float64)


_CLIP_CACHE: dict[tuple, Any] = {}
_CLIP_LOCK = threading.Lock()


@dataclass(frozen=True)
class ClipEmbedder:
    """open-clip image embeddings of the RGB bands, from a local checkpoint (nothing is downloaded)."""

    weights: str
    """Path of the checkpoint (``open_clip.create_model_and_transforms(model, pretrained=weights)``)."""
    model: str = "ViT-B-32"
    """Architecture name."""
    device: str = "cpu"
    """Torch device."""
    name: str = "clip"

    def _load(self) -> tuple[Any, Any]:
        key = (self.model, self.weights, self.device)
        with _CLIP_LOCK:
            if key not in _CLIP_CACHE:
                try:
                    import open_clip
                    import torch  # noqa: F401  (open-clip needs it: say so before anything uses it)
                except ImportError as exc:
                    raise MissingDependencyError(
                        f"embedder='clip' needs open-clip and torch ({exc.name} is missing): "
                        "pip install open-clip-torch (or use embedder='thumbnail')"
                    ) from exc
                model, _, preprocess = open_clip.create_model_and_transforms(self.model, pretrained=self.weights,
                                                                             device=self.device)
                model.eval()
                _CLIP_CACHE[key] = (model, preprocess)
        return _CLIP_CACHE[key]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        model, preprocess = self._load()  # first: its install hint comes before any torch import
        import torch
        from PIL import Image

        rgb = (np.clip(np.asarray(images)[:, :3], 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1)
        batch = torch.stack([preprocess(Image.fromarray(im)) for im in rgb]).to(self.device)
        with torch.no_grad():
            feats = model.encode_image(batch).float()
        feats = feats / feats.norm(dim=-1, keepdim=True)
        return feats.cpu().numpy().astype(np.float64)


def make_embedder(kind: str = "thumbnail", *, weights: str | None = None, model: str = "ViT-B-32",
                  device: str = "cpu") -> Any:
    """The embedder named ``kind`` (``thumbnail`` or ``clip``)."""
    if kind == "thumbnail":
        return ThumbnailEmbedder()
    if kind == "clip":
        if not weights:
            raise InputError("embedder='clip' needs weights= a local open-clip checkpoint; or use 'thumbnail'")
        return ClipEmbedder(weights=str(weights), model=model, device="cpu" if device == "auto" else device)
    raise InputError(f"embedder={kind!r} is not supported; use 'thumbnail' or 'clip'")


def select_diverse(embeddings: np.ndarray, *, keep_fraction: float, seed: int = 0) -> np.ndarray:
    """Bool mask of the images kept: ``ceil(keep_fraction * n)`` MiniBatchKMeans clusters of the standardised
    embeddings, and in each the image nearest its centre (lowest index on ties); a cluster left empty by
    the clustering keeps the image nearest its centre among those not kept, so exactly that many are kept."""
    emb = np.asarray(embeddings, np.float64)
    n = emb.shape[0]
    k = max(1, math.ceil(keep_fraction * n)) if n else 0
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    if k >= n:
        keep[:] = True
        return keep
    from sklearn.cluster import MiniBatchKMeans

    sd = emb.std(axis=0)
    z = (emb - emb.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    km = MiniBatchKMeans(n_clusters=k, random_state=int(seed) % 2**32, n_init=3, batch_size=1024).fit(z)
    dist = np.linalg.norm(z - km.cluster_centers_[km.labels_], axis=1)
    for c in np.unique(km.labels_):
        members = np.flatnonzero(km.labels_ == c)
        keep[members[np.argmin(dist[members])]] = True
    # MiniBatchKMeans may leave a cluster empty: its centre then keeps the nearest image not kept yet, so
    # exactly k images are kept whatever the clustering did
    for c in sorted(set(range(k)) - set(np.unique(km.labels_).tolist())):
        order = np.argsort(np.linalg.norm(z - km.cluster_centers_[c], axis=1), kind="stable")
        keep[next(i for i in order if not keep[i])] = True
    return keep
