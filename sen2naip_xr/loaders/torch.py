"""PyTorch datasets of (LR, HR) pairs read lazily from a SEN2NAIP store (torch lives only here).

The paper trains super-resolution networks on five configurations of the synthetic part:

* ``raw``: LR = NAIP bilinear-downsampled with antialias, no harmonization, no noise; HR = NAIP.
* ``statistical`` / ``variational`` / ``deterministic``: NAIP histogram-matched to the stored 120-bin
  histograms of a gamma (statistical), VAE (variational) or U-Net (deterministic) harmonizer; LR = that
  image through the degradation chain (:func:`sen2naip_xr.ops.kernels.degrade_lr`: blur, downsample, noise)
  of the model the store was built with (recorded in the synthetic part's ``config`` attrs), or of
  ``model=``; HR = the harmonized NAIP.
* ``all``: one of the four above, drawn per sample.

The cross-sensor part gives its real pairs (LR = Sentinel-2, HR = NAIP_h). Every random choice (method,
patch position, noise) derives from (seed, epoch, index), so a sample is the same in any worker, in any
order; :meth:`SRDataset.set_epoch` changes them between epochs. The dataset holds only the store's location
(a folder or a URL: ``az://``, ``s3://``, ``gs://``) and its storage options: each DataLoader worker opens the
store itself, lazily, and reads only the ROI it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from sen2naip_xr import _rng
from sen2naip_xr.config import DegradationModel, NoiseConfig
from sen2naip_xr.errors import InputError, MissingDependencyError, Sen2NaipError

try:
    import torch
    from torch.utils.data import Dataset
except ImportError as exc:  # pragma: no cover - exercised by the optional-torch test
    raise MissingDependencyError(
        'sen2naip_xr.loaders.torch needs torch; install it with: pip install "sen2naip-xr[torch]"'
    ) from exc

__all__ = ["SRDataset", "CONFIGURATIONS"]

CONFIGURATIONS: tuple[str, ...] = ("raw", "statistical", "variational", "deterministic", "all")
_FAMILY = {"statistical": "gamma", "variational": "vae", "deterministic": "unet"}


class SRDataset(Dataset):
    """(LR, HR) samples from a store written by ``sen2naip-xr build``.

    Parameters
    ----------
    store
        The store: a folder or a URL (``az://container/prefix``, ``s3://``, ``gs://``).
    part
        ``"synthetic"`` (one sample per ROI and role, early/late) or ``"cross-sensor"`` (real pairs).
    configuration
        For the synthetic part, one of :data:`CONFIGURATIONS`.
    split
        ``"train"``, ``"test"`` or None (both), from each ROI's deterministic 80/20 split.
    patch
        HR patch size in pixels (a multiple of 4) cropped at a seeded position, or None for whole images.
    seed
        Seed of every random choice.
    noise
        LR noise of the synthetic configurations (``"real"``, ``"gaussian"`` or ``"none"``).
    noise_sigma
        Relative sd of the ``"gaussian"`` noise (x band RMS).
    model
        The degradation model (blur sigmas, noise matrix) of the synthetic configurations: a
        :class:`~sen2naip_xr.DegradationModel` or the path of its JSON. Default: the model the store records
        (the one its build used; the published model for a store that records none).

    storage_options
        Options/credentials of the store's location (otherwise the storage client's environment variables).
    tag
        Read the version tagged ``tag`` (a fixed training set).
    Attributes
    ----------
    model : DegradationModel
        The model the LR images are made with.
    samples : list of (str, str)
        (ROI name, role) of each sample.
    """

    def __init__(self, store: Any, *, part: Literal["synthetic", "cross-sensor"] = "synthetic",
                 configuration: str = "all", split: str | None = "train", patch: int | None = None,
                 seed: int = 0, noise: str = "real", noise_sigma: float = 0.012,
                 model: DegradationModel | str | Path | None = None, storage_options: dict | None = None,
                 tag: str | None = None) -> None:
        from sen2naip_xr.store import existing_store

        st = existing_store(store, storage_options, tag=tag)
        self.store = st.url
        self.storage_options, self.tag = dict(storage_options or {}), tag
        self._snapshot = st.session().snapshot_id  # every worker reads the version listed here
        self._opened: tuple[int, Any] | None = None
        if part not in ("synthetic", "cross-sensor"):
            raise InputError(f"part={part!r} is not a part of the dataset; use 'synthetic' or 'cross-sensor'")
        if part == "synthetic" and configuration not in CONFIGURATIONS:
            raise InputError(f"configuration={configuration!r} is unknown; use one of {CONFIGURATIONS}")
        if patch is not None and (patch % 4 or patch < 8):
            raise InputError(f"patch={patch!r} must be a multiple of 4 and >= 8 (HR pixels), e.g. 256")
        if split not in ("train", "test", None):
            raise InputError(f"split={split!r} must be 'train', 'test' or None")
        self.part, self.configuration, self.split = part, configuration, split
        self.noise_config = NoiseConfig(model=noise, sigma=noise_sigma, seed=seed)  # type: ignore[arg-type]
        self.patch, self.seed, self.noise, self.epoch = patch, int(seed), self.noise_config.model, 0
        self.model = recorded_model(st) if model is None else DegradationModel.coerce(model)
        samples: list[tuple[str, str]] = []
        for name, entry in st.index(part).items():  # the ROI index: no listing of groups
            if entry.get("status") != "written" or (split is not None and entry.get("split") != split):
                continue
            if part == "synthetic":
                subs = entry.get("subgroups") or st.roi_groups(part, name)
                samples += [(name, role) for role in ("early", "late") if role in subs]
            else:
                samples.append((name, ""))
        if not samples:
            raise InputError(f"store={self.store!r} holds no finished {part} ROI in split={split!r}; "
                             "build it first (sen2naip-xr build ...) or pass split=None")
        self.samples = samples

    def loader(self, batch_size: int = 1, *, num_workers: int = 0, **kwargs: Any) -> Any:
        """A ``torch.utils.data.DataLoader`` over this dataset; its workers are started with ``spawn``
        (icechunk, which reads the store, does not survive ``fork``)."""
        from torch.utils.data import DataLoader

        if num_workers:
            kwargs.setdefault("multiprocessing_context", "spawn")
        return DataLoader(self, batch_size=batch_size, num_workers=num_workers, **kwargs)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_opened": None}

    def _store(self) -> Any:
        """The store, opened once per process (DataLoader workers open their own)."""
        import os

        from sen2naip_xr.store import DatasetStore

        if self._opened is None or self._opened[0] != os.getpid():
            self._opened = (os.getpid(), DatasetStore(self.store, storage_options=self.storage_options,
                                                      snapshot=self._snapshot))
        return self._opened[1]

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Draw other methods, patches and noise in the next epoch (call it from the training loop)."""
        self.epoch = int(epoch)

    def _key(self, index: int, what: str) -> int:
        return _rng.derive_key(self.seed, self.epoch, index, what)

    def __getitem__(self, index: int) -> dict[str, Any]:
        name, role = self.samples[index]
        st = self._store()
        if self.part == "cross-sensor":
            hr = st.load_dataset(f"{self.part}/{name}/hr")["hr"].values
            lr = st.load_dataset(f"{self.part}/{name}/lr")["lr"].values
            hr, lr = self._crop(index, hr, lr)
            return self._sample(lr, hr, name, "real")
        ds = st.load_dataset(f"{self.part}/{name}/{role}")  # no dask: fork-safe workers
        hr = ds["hr"].values
        method = self._method(index, [str(h) for h in ds["harmonizer"].values])
        hr, lr = self._degrade(index, hr, method, ds)
        hr, lr = self._crop(index, hr, lr)
        return self._sample(lr, hr, f"{name}/{role}", method)

    # ------------------------------------------------------------------------------------------------
    def _method(self, index: int, labels: list[str]) -> str:
        rng = np.random.default_rng(self._key(index, "method") >> 1)
        conf = self.configuration
        if conf == "all":
            conf = ["raw", "statistical", "variational", "deterministic"][int(rng.integers(4))]
        if conf == "raw":
            return "raw"
        family = [lab for lab in labels if lab.startswith(_FAMILY[conf])]
        if not family:
            raise InputError(f"configuration={conf!r} needs a {_FAMILY[conf]} harmonizer, but the store has {labels}")
        return family[int(rng.integers(len(family)))]

    def _degrade(self, index: int, hr: np.ndarray, method: str, ds: Any) -> tuple[np.ndarray, np.ndarray]:
        from sen2naip_xr.harmonize.kernels import BIN_CENTRES
        from sen2naip_xr.ops import kernels, noise_table

        if method == "raw":  # the paper's baseline: antialiased bilinear, no harmonization, no noise
            return hr, kernels.degrade_lr(hr, (1.0,) * hr.shape[0], mode="raw", noise="none")
        hist = np.asarray(ds["hist"].sel(harmonizer=method).values, np.float64)
        harmonized = np.empty_like(hr)
        for b in range(hr.shape[0]):
            q = np.cumsum(hist[b]) / max(hist[b].sum(), 1)
            keep = np.diff(q, prepend=0.0) > 0
            harmonized[b] = kernels.match_band(hr[b], BIN_CENTRES[keep], q[keep])
        noise = self.noise_config
        lr = kernels.degrade_lr(harmonized, self.model.sigma, noise=noise.model, noise_sigma=noise.sigma,
                                table=noise_table(self.model) if noise.model == "real" else None,
                                key=self._key(index, "noise"))
        return harmonized, lr.astype(np.float32)

    def _crop(self, index: int, hr: np.ndarray, lr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.patch is None:
            return hr, lr
        p, q = self.patch, self.patch // 4
        ny, nx = lr.shape[-2:]
        if q > min(ny, nx):
            raise InputError(f"patch={p} is larger than the images ({4 * ny}x{4 * nx} HR pixels)")
        rng = np.random.default_rng(self._key(index, "patch") >> 1)
        y0, x0 = int(rng.integers(ny - q + 1)), int(rng.integers(nx - q + 1))
        return hr[:, 4 * y0:4 * y0 + p, 4 * x0:4 * x0 + p], lr[:, y0:y0 + q, x0:x0 + q]

    @staticmethod
    def _sample(lr: np.ndarray, hr: np.ndarray, name: str, method: str) -> dict[str, Any]:
        return {"lr": torch.from_numpy(np.ascontiguousarray(lr, np.float32)),
                "hr": torch.from_numpy(np.ascontiguousarray(hr, np.float32)), "roi": name, "method": method}


def recorded_model(store: Any) -> DegradationModel:
    """The degradation model a store's synthetic part was built with (its ``config`` attrs record it).

    Parameters
    ----------
    store
        A :class:`~sen2naip_xr.DatasetStore`.

    Returns
    -------
    DegradationModel
        The recorded model, validated; the published model when the store records none (built before
        models were recorded, or with no synthetic part).
    """
    try:
        config = store.attrs("synthetic").get("config") or {}
    except Sen2NaipError:
        return DegradationModel()
    recorded = config.get("model") if isinstance(config, dict) else None
    if recorded is None:
        return DegradationModel()
    return DegradationModel.coerce(recorded, arg=f"the model recorded in {store.url!r}")

