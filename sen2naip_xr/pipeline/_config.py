"""Frozen settings of the dataset builders and of the runner (the API and the CLI fill them alike)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Literal

from sen2naip_xr.config import METHODS
from sen2naip_xr.errors import InputError

__all__ = ["CrossSensorConfig", "SyntheticConfig", "RunConfig"]


def _positive(name: str, value: Any, *, integer: bool = False, zero: bool = False) -> None:
    try:
        ok = (value >= 0 if zero else value > 0) and (not integer or int(value) == value)
    except TypeError:
        ok = False
    if not ok:
        kind = "an integer" if integer else "a number"
        raise InputError(f"{name}={value!r} must be {kind} {'>= 0' if zero else '> 0'}")


class _Config:
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def __dask_tokenize__(self) -> tuple:
        return (type(self).__name__, json.dumps(self.to_dict(), sort_keys=True, default=str))

    def replace(self, **changes: Any):
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def _check_model(model: str | None) -> None:
    """A model path must hold a readable fitted model (fails here, not in a task)."""
    if model is not None:
        from sen2naip_xr.config import DegradationModel

        DegradationModel.load(model)


@dataclass(frozen=True)
class CrossSensorConfig(_Config):
    """The cross-sensor builder: cloud screening, histogram matching, QA filter."""

    max_misalignment_px: float = 1.0
    """Drop a pair whose QA1 (S2 vs NAIP_h at 10 m, in S2 pixels) exceeds this (paper: 1)."""
    max_spectral_angle_deg: float = 2.0
    """Drop a pair whose QA2 (mean spectral angle, degrees) exceeds this (paper: 2)."""
    max_cloud_fraction: float = 0.0
    """A capture passes cloud screening when its SCL-flagged fraction is <= this."""
    max_nodata_fraction: float = 0.0
    """A capture whose S2 or NAIP no-data fraction exceeds this is skipped."""
    model: str | None = None
    """A fitted model JSON (``sen2naip-xr fit``): its blur sigmas bring NAIP_h to 10 m for QA1/QA2;
    default: the published sigmas."""

    @property
    def sigma(self) -> tuple[float, ...]:
        """Blur sigmas of the QA step (the model's, or the published ones)."""
        from sen2naip_xr.config import SEN2NAIP_SIGMA, DegradationModel

        return DegradationModel.load(self.model).sigma if self.model else SEN2NAIP_SIGMA

    def __post_init__(self) -> None:
        _check_model(self.model)
        _positive("max_misalignment_px", self.max_misalignment_px)
        _positive("max_spectral_angle_deg", self.max_spectral_angle_deg)
        for name in ("max_cloud_fraction", "max_nodata_fraction"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 <= v <= 1):
                raise InputError(f"{name}={v!r} is a fraction; use a value in [0, 1]")


@dataclass(frozen=True)
class SyntheticConfig(_Config):
    """The synthetic builder: blank check, diversity filter, degradation with every harmonizer."""

    methods: tuple[str, ...] = ("identity", "gamma_mvn", "unet", "vae")
    """Harmonizers (gamma methods expand over ``percentiles``)."""
    percentiles: tuple[float, ...] = (50.0,)
    """Percentiles of the gamma methods."""
    noise: Literal["real", "gaussian", "none"] = "real"
    """LR noise model."""
    seed: int = 0
    """Seed; each image's noise stream derives from (seed, ROI id, role, harmonizer)."""
    store_lr: bool = False
    """Also store the LR arrays of every harmonizer (the published dataset keeps only HR + histograms)."""
    blank_window: int = 19
    """Window of the blank check: an image with a constant window (or NaN) is dropped."""
    keep_fraction: float = 1.0
    """Diversity filter: images are clustered into ``ceil(keep_fraction * n)`` clusters (MiniBatchKMeans
    on embeddings) and one image is kept per cluster; 1 keeps every image."""
    embedder: Literal["thumbnail", "clip"] = "thumbnail"
    """``"thumbnail"``: offline statistics + thumbnail embedding; ``"clip"``: open-clip with ``clip_weights``."""
    clip_model: str = "ViT-B-32"
    """open-clip architecture name (``embedder="clip"``)."""
    clip_weights: str | None = None
    """Path of the open-clip checkpoint (nothing is downloaded)."""
    rois_per_task: int = 4
    """ROIs per harmonizer task: the networks run batched over their images (one model load per worker)."""
    device: str = "auto"
    """Torch device of the U-Net (``auto``: CUDA when present)."""
    model: str | None = None
    """A fitted model JSON (``sen2naip-xr fit``) used in place of the published gamma distributions, blur
    sigmas and noise matrix; default: the published model."""

    def __post_init__(self) -> None:
        methods = (self.methods,) if isinstance(self.methods, str) else tuple(self.methods)
        object.__setattr__(self, "methods", methods)
        object.__setattr__(self, "percentiles", tuple(float(p) for p in self.percentiles))
        from sen2naip_xr.config import _ALIASES

        bad = [m for m in methods if _ALIASES.get(m, m) not in METHODS]
        if bad or not methods:
            raise InputError(f"methods={list(methods)!r} holds {bad or 'nothing'}; use names from {list(METHODS)}")
        if self.noise not in ("real", "gaussian", "none"):
            raise InputError(f"noise={self.noise!r} is not supported; use 'real', 'gaussian' or 'none'")
        _positive("blank_window", self.blank_window, integer=True)
        if not 0 < self.keep_fraction <= 1:
            raise InputError(f"keep_fraction={self.keep_fraction!r} must lie in (0, 1]; 1 keeps every image")
        if self.embedder not in ("thumbnail", "clip"):
            raise InputError(f"embedder={self.embedder!r} is not supported; use 'thumbnail' or 'clip'")
        if self.embedder == "clip" and not self.clip_weights:
            raise InputError("embedder='clip' needs clip_weights= the path of an open-clip checkpoint "
                             "(nothing is downloaded); or use embedder='thumbnail'")
        _positive("rois_per_task", self.rois_per_task, integer=True)
        _check_model(self.model)


@dataclass(frozen=True)
class RunConfig(_Config):
    """Where and how the tasks run."""

    scheduler: str | None = None
    """``None``: a LocalCluster; ``"sync"``: in this process, one ROI after another (debugging, tests);
    otherwise the address of a running scheduler (``tcp://host:8786``)."""
    n_workers: int = 2
    """LocalCluster workers (processes)."""
    threads_per_worker: int = 1
    """Threads per LocalCluster worker."""
    memory_limit: str = "4GiB"
    """Memory limit per LocalCluster worker (the nanny restarts a worker above it)."""
    max_in_flight: int | None = None
    """Tasks submitted at once (default: 2 per worker thread): bounds the driver's and workers' memory."""
    progress: bool = True
    """Show a progress bar and print the dashboard address."""
    retry_failed: bool = False
    """Try again the ROIs recorded as failed by an earlier run (default: a failure record is final)."""
    repair: bool = False
    """First verify every finished ROI (every chunk's checksum) and rewrite exactly the damaged ones."""
    commit_every: int = 256
    """ROIs per store commit (the driver merges the workers' forked sessions and commits in batches)."""

    def __post_init__(self) -> None:
        _positive("n_workers", self.n_workers, integer=True)
        _positive("threads_per_worker", self.threads_per_worker, integer=True)
        _positive("commit_every", self.commit_every, integer=True)
        if self.max_in_flight is not None:
            _positive("max_in_flight", self.max_in_flight, integer=True)
        if self.scheduler not in (None, "sync") and "://" not in str(self.scheduler) and ":" not in str(self.scheduler):
            raise InputError(f"scheduler={self.scheduler!r} is not an address; pass e.g. tcp://127.0.0.1:8786, "
                             "'sync', or nothing for a LocalCluster")
