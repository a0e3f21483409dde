"""Frozen settings of the dataset builders and of the runner (the API and the CLI fill them alike)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sen2naip_xr.config import METHODS, ConfigBase, DegradationModel, canonical_method
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


def _model(value: Any) -> DegradationModel:
    """A model field: a path is read and validated here, once (fails here, not in a task)."""
    return DegradationModel.coerce(value)


@dataclass(frozen=True)
class CrossSensorConfig(ConfigBase):
    """The cross-sensor builder: cloud screening, histogram matching, QA filter."""

    max_misalignment_px: float = 1.0
    """Drop a pair whose QA1 (S2 vs NAIP_h at 10 m, in S2 pixels) exceeds this (paper: 1)."""
    max_spectral_angle_deg: float = 2.0
    """Drop a pair whose QA2 (mean spectral angle, degrees) exceeds this (paper: 2)."""
    max_cloud_fraction: float = 0.0
    """A capture passes cloud screening when its SCL-flagged fraction is <= this."""
    max_nodata_fraction: float = 0.0
    """A capture whose S2 or NAIP no-data fraction exceeds this is skipped."""
    model: DegradationModel = field(default_factory=DegradationModel)
    """The degradation model whose blur sigmas bring NAIP_h to 10 m for QA1/QA2: a
    :class:`~sen2naip_xr.DegradationModel` or the path of a fitted model JSON (``sen2naip-xr fit``), read
    and validated once, here; default: the published model."""

    @property
    def sigma(self) -> tuple[float, ...]:
        """Blur sigmas of the QA step (the model's)."""
        return self.model.sigma

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", _model(self.model))
        _positive("max_misalignment_px", self.max_misalignment_px)
        _positive("max_spectral_angle_deg", self.max_spectral_angle_deg)
        for name in ("max_cloud_fraction", "max_nodata_fraction"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 <= v <= 1):
                raise InputError(f"{name}={v!r} is a fraction; use a value in [0, 1]")


@dataclass(frozen=True)
class SyntheticConfig(ConfigBase):
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
    """ROIs per finish task (matching, blur, noise, histograms, write); the networks have their own tasks.
    Without a GPU worker, with the U-Net on CPU and ``keep_fraction=1``: ROIs per task that runs every stage."""
    net_batch_size: int | None = None
    """Images per network task (U-Net and VAE, batched across ROIs, on a ``GPU`` worker when there is
    one); ``None``: from the GPU's memory (1-64), 2 on CPU (where the U-Net runs one image at a time
    inside the task). On a GPU the U-Net's float results depend on the batch by ~2e-7: fix it for the
    same bytes on machines with other GPUs."""
    device: str = "auto"
    """Torch device of the U-Net (``auto``: CUDA when present)."""
    model: DegradationModel = field(default_factory=DegradationModel)
    """The degradation model (gamma distributions, blur sigmas, noise matrix): a
    :class:`~sen2naip_xr.DegradationModel` or the path of a fitted model JSON (``sen2naip-xr fit``), read and
    validated once, here; default: the published model. The store records it (the part's ``config`` attrs),
    and :class:`~sen2naip_xr.loaders.torch.SRDataset` degrades with it."""

    def __post_init__(self) -> None:
        methods = (self.methods,) if isinstance(self.methods, str) else tuple(self.methods)
        object.__setattr__(self, "methods", methods)
        object.__setattr__(self, "percentiles", tuple(float(p) for p in self.percentiles))
        bad = [m for m in methods if canonical_method(m) not in METHODS]
        if bad or not methods:
            raise InputError(f"methods={list(methods)!r} holds {bad or 'nothing'}; use names from {list(METHODS)}")
        if not self.percentiles and any(canonical_method(m).startswith("gamma") for m in methods):
            raise InputError("percentiles=() is empty: gamma methods make one variant per percentile; pass e.g. "
                             "percentiles=(50,) (or drop the gamma methods)")
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
        object.__setattr__(self, "model", _model(self.model))
        from sen2naip_xr.pipeline._stages import check_net_batch

        check_net_batch(self.net_batch_size)


@dataclass(frozen=True)
class RunConfig(ConfigBase):
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
    worker_profile: bool = False
    """Run Dask's statistical profiler in the LocalCluster workers (the dashboard's Profile page); off by
    default: it costs each worker about 4% of a core."""
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
