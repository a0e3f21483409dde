"""The synthetic build's stages: each capture read once, the networks in their own (GPU) tasks.

::

    read (any worker)  ->  driver: diversity filter  ->  network inputs (any worker, beside the pixels)
        ->  networks (a GPU worker when there is one, batched across ROIs)  ->  finish (any worker)

* **read**: one task per ROI loads its captures, checks them for blank windows and embeds them; the
  pixels stay on that worker (a Dask future, 8-bit NAIP held as its uint8 levels: 4.8 MB per 1100 px
  image; Dask spills them to the worker's disk above its memory target) and only the embeddings go to the
  driver. Nothing is read again in the later stages.
* **networks**: the kept images, in a fixed order, are cut into batches of at most ``net_batch_size``
  images (default: from the GPU's memory, 2 on CPU) that do not split an ROI (:func:`roi_batches`); one
  task per batch runs the U-Net (its 10 m inputs; on a CPU one image at a time inside the task, the
  fastest there) and the VAE encoder/decoder (band histograms) of every network variant. With a worker
  that declares a ``GPU`` resource, these tasks ask for ``resources={"GPU": 1}`` and every other task is
  restricted to the other workers, so the GPU worker does network work only.
* **finish**: per ROI, the identity and gamma variants, histogram matching to the network outputs, blur,
  downsample, noise, histograms and the write (the synthetic builder's ``_degrade_task``).

The batches depend only on the ROI list, the kept images and the batch size, so a run in process
(``scheduler="sync"``) and on any cluster write the same bytes. Without a Dask client every "future" is
the value itself.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from sen2naip_xr.errors import InputError

__all__ = ["Stages", "default_net_batch", "NETWORKS"]

NETWORKS = ("unet", "vae")
#: GPU memory budgeted per 10 m image of an 1100 px ROI in one U-Net batch (activations, fp32, generous).
_BYTES_PER_IMAGE = 256 * 2**20
#: On a CPU the U-Net runs one image at a time (the fastest there); small tasks spread over the workers.
_CPU_BATCH = 2
_MAX_BATCH = 64


def default_net_batch(device: str = "auto") -> int:
    """Images per network task: a quarter of the CUDA device's memory over ~256 MiB per image (1-64), or 2 on CPU."""
    try:
        import torch
    except ImportError:
        return _CPU_BATCH
    if device == "cpu" or not torch.cuda.is_available():
        return _CPU_BATCH
    dev = torch.device("cuda" if device == "auto" else device)
    total = torch.cuda.get_device_properties(dev).total_memory
    return int(np.clip(total // 4 // _BYTES_PER_IMAGE, 1, _MAX_BATCH))


# ------------------------------------------------------------------------------------------------------
# Task functions (module level: pickled by reference)
# ------------------------------------------------------------------------------------------------------


def _pack(pix: np.ndarray) -> np.ndarray:
    """8-bit NAIP reflectance (values k/255) as its uint8 levels (lossless, 4x smaller), else as is.

    One image at a time: the temporaries stay small enough for the allocator to reuse them.
    """
    from sen2naip_xr.ops.kernels import levels8

    out = np.empty(pix.shape, np.uint8)
    for t in range(pix.shape[0]):
        codes = levels8(pix[t].reshape(-1))
        if codes is None:
            return pix
        out[t] = codes.reshape(pix.shape[1:])
    return out


def _unpack(pix: np.ndarray) -> np.ndarray:
    """The float32 reflectance of :func:`_pack` output: ``float32(k) / float32(255)``, as ``_LEVELS8[k]``."""
    if pix.dtype != np.uint8:
        return pix
    out = pix.astype(np.float32)
    out /= np.float32(255)
    return out


def read_task(job: Any, cfg: Any, load_cfg: Any, signer: Any, reader: Any, embed: bool) -> dict:
    """Read one ROI's captures once; blank check and embedding (``embed``) as the builder's round 1."""
    from sen2naip_xr.pipeline.synthetic import embed_task, load_captures

    pix, err = load_captures(job, load_cfg, signer, reader)
    out = embed_task(job, cfg, load_cfg, signer, reader, loaded=(pix, err)) if embed else {
        "name": job.name, "roles": {}, "reasons": []}
    out["pixels"] = None if pix is None else _pack(pix)
    out["error"] = err
    return out


def _summary(capture: dict) -> dict:
    """What the driver needs of a read: no pixels."""
    return {k: v for k, v in capture.items() if k != "pixels"}


def net_input_task(capture: dict, t: int, ats: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The network inputs of capture ``t``: ``{"lr": NAIP at 10 m, "hr": NAIP}`` for the ``at`` values used."""
    from sen2naip_xr.config import HarmonizeConfig
    from sen2naip_xr.harmonize import network_input

    if capture["pixels"] is None:  # the read failed (the finish task records why)
        return None
    img = _unpack(capture["pixels"][t])[None]
    return {at: network_input(img, HarmonizeConfig(method="unet", at=at))[0] for at in ats}  # type: ignore[arg-type]


def net_task(inputs: list[dict[str, np.ndarray] | None], variants: list[Any]) -> dict[str, list]:
    """Every network variant on one batch of images: ``{label: [output of image i]}`` (None for an unread one)."""
    from sen2naip_xr.harmonize import network_forward
    from sen2naip_xr.pipeline.synthetic import one_torch_thread

    out: dict[str, list] = {}
    ok = [i for i, x in enumerate(inputs) if x is not None]
    for v in variants:
        out[v.label] = [None] * len(inputs)
        if not ok:
            continue
        stack = np.stack([inputs[i][v.at] for i in ok])  # type: ignore[index]
        cpu = v.method == "unet" and _device(v.device) == "cpu"
        with one_torch_thread(cpu):  # same float sums in process and on a one-thread Dask worker
            # on a CPU one image at a time is the fastest (batch 8: 1.65x the time per image, 275 px inputs)
            res = network_forward(stack, v, batch_size=1 if cpu else len(stack))
        for k, i in enumerate(ok):
            out[v.label][i] = res[k]
    return out


def _device(device: str) -> str:
    from sen2naip_xr.harmonize import resolve_device

    return resolve_device(device)


def _net_batch_size(device: str) -> int:
    return default_net_batch(device)


def staged_pixels(staged: dict, job: Any) -> tuple[np.ndarray | None, str]:
    """The pixels the read stage kept for ``job`` (as ``load_captures`` returns them)."""
    cap = staged["captures"][job.name]
    return (None, cap["error"]) if cap["pixels"] is None else (_unpack(cap["pixels"]), "")


def staged_levels8(staged: dict, job: Any) -> bool:
    """Whether the read stage kept ``job``'s pixels as 8-bit levels (so they are in [0, 1], without NaN)."""
    cap = staged["captures"][job.name]
    return cap["pixels"] is not None and cap["pixels"].dtype == np.uint8


def staged_network(staged: dict, job: Any, role: str, variant: Any) -> np.ndarray | None:
    """The network stage's output of ``variant`` for one image (None for a variant without a network)."""
    if variant.method not in NETWORKS:
        return None
    batch, i = staged["net"][(job.name, role)]
    return batch[variant.label][i]


def roi_batches(jobs: list, keep: dict[str, list[str]], size: int) -> list[list[tuple[Any, str]]]:
    """The kept images ``(job, role)`` of ``jobs``, in order, cut into batches of at most ``size`` images
    that do not split an ROI (an ROI with more than ``size`` images fills batches of its own).

    Depends on nothing but its arguments (the same batches in every run). An ROI's images are read by one
    task, so a batch of whole ROIs takes its inputs from few workers (on a CPU cluster, batches of 2: one
    worker), and an ROI's finish task waits for one batch.
    """
    batches: list[list[tuple[Any, str]]] = []
    cur: list[tuple[Any, str]] = []
    for j in jobs:
        imgs = [(j, r) for r in keep[j.name]]
        if cur and len(cur) + len(imgs) > size:
            batches.append(cur)
            cur = []
        while len(imgs) > size:
            batches.append(imgs[:size])
            imgs = imgs[size:]
        cur += imgs
    if cur:
        batches.append(cur)
    return batches


# ------------------------------------------------------------------------------------------------------
# The driver side
# ------------------------------------------------------------------------------------------------------


class Stages:
    """Submits the stage tasks to a ``distributed`` client, or runs them in process (``client=None``)."""

    def __init__(self, client: Any, cfg: Any, load_cfg: Any, signer: Any, reader: Any, *,
                 progress: bool = False) -> None:
        self.client, self.cfg = client, cfg
        self.io = (load_cfg, signer, reader)
        self.progress = progress
        self.captures: dict[str, Any] = {}  # ROI name -> future (or value) of its read
        self.gpu: dict[str, float] | None = None
        self.cpu_workers: list[str] | None = None
        if client is not None:
            workers = client.scheduler_info()["workers"]
            gpus = [a for a, w in workers.items() if w.get("resources", {}).get("GPU")]
            others = [a for a in workers if a not in gpus]
            if gpus:
                self.gpu = {"GPU": 1}
                self.cpu_workers = others or None

    # -- submitting -------------------------------------------------------------------------------
    def submit(self, fn: Callable, *args: Any, key: str, net: bool = False) -> Any:
        if self.client is None:
            return fn(*args)
        kw: dict[str, Any] = {"key": key, "pure": False, "retries": 1}
        if net:
            kw["resources"] = self.gpu
        elif self.cpu_workers:
            kw.update(workers=self.cpu_workers, allow_other_workers=False)
        return self.client.submit(fn, *args, **kw)

    def _results(self, futures: list, desc: str) -> Iterator[Any]:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(futures), desc=desc, disable=not self.progress, file=sys.stderr)
        try:
            if self.client is None:
                for res in futures:
                    bar.update()
                    yield res
                return
            from distributed import as_completed

            for fut in as_completed(futures):
                res = fut.result()
                fut.release()
                bar.update()
                yield res
        finally:
            bar.close()

    # -- stage 1 ----------------------------------------------------------------------------------
    def read(self, jobs: list, *, embed: bool) -> Iterator[dict]:
        """Read each job's captures once (kept for :meth:`degrade`); yield ``embed_task``-like summaries."""
        small = []
        for j in jobs:
            if j.name in self.captures:
                continue
            key = f"synthetic-read-{j.name}-{j.roi['roi_id']}"
            cap = self.submit(read_task, j, self.cfg, *self.io, embed, key=key)
            self.captures[j.name] = cap
            small.append(self.submit(_summary, cap, key=f"{key}-summary"))
        yield from self._results(small, "synthetic: read + blank check + embed")

    def net_batch_size(self, variants: list) -> int:
        """The configured batch size, or the default of the device the network tasks run on."""
        if self.cfg.net_batch_size:
            return int(self.cfg.net_batch_size)
        if not any(v.method == "unet" for v in variants):
            return _MAX_BATCH  # the VAE's dense layers: batching costs nothing
        if self.client is None:
            return _net_batch_size(self.cfg.device)
        fut = self.submit(_net_batch_size, self.cfg.device, key="synthetic-net-batch-size", net=True)
        return int(fut.result())

    # -- stages 2 and 3 ---------------------------------------------------------------------------
    def degrade(self, eligible: list, todo: set[str], keep: dict,
                finish: Callable[[list, dict], tuple[Callable, tuple]]) -> Iterator[Any]:
        """Networks over the kept images of ``eligible`` ROIs (fixed batches), then finish the ``todo`` ROIs.

        ``finish(group, staged)`` gives the finish task of a group of ROIs as ``(function, args)``: the
        builder's task, fed the ``staged`` inputs (``{"captures": ..., "net": ...}``) of the group.
        """
        from sen2naip_xr.degrade import build_config

        cfg = self.cfg
        dcfg = build_config(list(cfg.methods), percentiles=cfg.percentiles, noise=cfg.noise, seed=cfg.seed,
                            device=cfg.device, model=cfg.model)
        variants = [v for v in dcfg.methods if v.method in NETWORKS]
        net: dict[tuple[str, str], tuple[Any, int]] = {}
        if variants and any(keep[j.name] for j in eligible):
            size = self.net_batch_size(variants)
            batches = roi_batches(eligible, keep, size)
            batches = [b for b in batches if any(j.name in todo for j, _ in b)]
            need = {j.name: j for b in batches for j, _ in b}
            list(self.read([j for j in need.values() if j.name not in self.captures], embed=False))
            ats = tuple(sorted({v.at for v in variants}))
            for b in batches:
                ins = []
                for j, role in b:
                    t = list(j.rows["role"]).index(role)
                    ins.append(self.submit(net_input_task, self.captures[j.name], t, ats,
                                           key=f"synthetic-netin-{j.name}-{role}"))
                first, last = b[0], b[-1]
                out = self.submit(net_task, ins, variants, key=f"synthetic-net-{first[0].name}-{first[1]}-"
                                                               f"{last[0].name}-{last[1]}", net=True)
                for i, (j, role) in enumerate(b):
                    net[(j.name, role)] = (out, i)
        rest = [j for j in eligible if j.name in todo]
        list(self.read([j for j in rest if j.name not in self.captures], embed=False))
        size = cfg.rois_per_task
        groups = [rest[i:i + size] for i in range(0, len(rest), size)]
        futs = []
        for g in groups:
            staged = {"captures": {j.name: self.captures[j.name] for j in g},
                      "net": {k: v for k, v in net.items() if k[0] in {j.name for j in g}}}
            fn, args = finish(g, staged)
            futs.append(self.submit(fn, *args, key=f"synthetic-finish-{g[0].name}-{g[-1].name}"))
        del net
        self.captures.clear()  # the finish tasks hold what they need
        yield from self._results(futs, "synthetic: harmonize + degrade + write")


def check_net_batch(value: Any) -> None:
    """``net_batch_size``: None (from the device) or a positive integer."""
    if value is not None and not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0):
        raise InputError(f"net_batch_size={value!r} must be a positive integer (images per network task) or "
                         "None (chosen from the GPU's memory; 2 on CPU)")
