"""The synthetic build's stages: each capture read once, the networks in their own (GPU) tasks.

::

    read (any worker)  ->  driver: diversity filter  ->  network inputs (any worker, beside the pixels)
        ->  networks (a GPU worker when there is one, batched across ROIs)  ->  finish (any worker)

With ``keep_fraction=1`` (the default: every usable image is kept) there is no filter to wait for: each
batch of ROIs goes on to its networks and finish as soon as it and the ROIs before it are read, and those
tasks run before the reads still queued, so reading, networks and finishing overlap. With
``keep_fraction < 1`` (or embeddings stored by an earlier run) every read ends before the filter.

* **read**: one task per ROI loads its captures, checks them for blank windows and embeds them; the
  pixels stay on that worker (a Dask future, 8-bit NAIP held as its uint8 levels: 4.8 MB per 1100 px
  image; Dask spills them to the worker's disk above its memory target) until the ROI's finish task has
  run, and only the embeddings go to the driver. Nothing is read again in the later stages.
* **networks**: the kept images, in a fixed order, are cut into batches of at most ``net_batch_size``
  images (default: from the GPU's memory, 2 on CPU) that do not split an ROI (:func:`roi_batches`); one
  task per batch runs the U-Net (its 10 m inputs; on a CPU one image at a time inside the task, the
  fastest there) and the VAE encoder/decoder (band histograms) of every network variant. With a worker
  that declares a ``GPU`` resource, these tasks ask for ``resources={"GPU": 1}`` and every other task is
  restricted to the other workers, so the GPU worker does network work only; it is sent the networks'
  inputs, made by one small task per image beside the pixels. Without one, the network task makes them
  itself, beside the pixels of its ROI.
* **finish**: per ROI, the identity and gamma variants, histogram matching to the network outputs, blur,
  downsample, noise, histograms and the write (the synthetic builder's ``_degrade_task``).

The batches depend only on the ROI list, the kept images and the batch size, so a run in process
(``scheduler="sync"``) and on any cluster write the same bytes. Without a Dask client every "future" is
the value itself.

Where nothing is gained by batching (no GPU worker, the U-Net on CPU: :meth:`Stages.whole_rois`) and no
filter waits for every read (``keep_fraction=1``), the builder runs the stages of each ROI in one task
instead (``synthetic._roi_task``: :func:`read_task`, :func:`roi_networks`, the finish), with the same bytes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from sen2naip_xr.errors import InputError

__all__ = ["Stages", "default_net_batch", "NETWORKS", "network_variants", "roi_networks", "read_task", "read_summary"]

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


def read_summary(capture: dict) -> dict:
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


def net_pixels_task(captures: list[dict], ts: list[int], ats: tuple[str, ...], variants: list[Any]) -> dict[str, list]:
    """:func:`net_task` on the inputs of image ``ts[i]`` of ``captures[i]``, made in this task (a cluster
    without GPU workers, where the network task runs beside the pixels anyway)."""
    return net_task([net_input_task(c, t, ats) for c, t in zip(captures, ts, strict=True)], variants)


def network_variants(cfg: Any) -> list[Any]:
    """The harmonizer variants of a :class:`~sen2naip_xr.SyntheticConfig` that run a network (U-Net, VAE)."""
    from sen2naip_xr.degrade import build_config

    dcfg = build_config(list(cfg.methods), percentiles=cfg.percentiles, noise=cfg.noise, seed=cfg.seed,
                        device=cfg.device, model=cfg.model)
    return [v for v in dcfg.methods if v.method in NETWORKS]


def roi_networks(capture: dict, job: Any, roles: list[str], variants: list[Any]) -> dict[tuple[str, str], tuple[dict, int]]:
    """The outputs of the network ``variants`` for the kept images (``roles``) of one ROI, made here in one
    batch, as :func:`staged_network` reads them (``{(name, role): (batch, i)}``); empty without variants."""
    if not variants:
        return {}
    ats = tuple(sorted({v.at for v in variants}))
    order = list(job.rows["role"])
    batch = net_pixels_task([capture] * len(roles), [order.index(r) for r in roles], ats, variants)
    return {(job.name, r): (batch, i) for i, r in enumerate(roles)}


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


def roi_batches(jobs: Iterable, keep: dict[str, list[str]], size: int) -> Iterator[list[tuple[Any, str]]]:
    """The kept images ``(job, role)`` of ``jobs``, in order, cut into batches of at most ``size`` images
    that do not split an ROI (an ROI with more than ``size`` images fills batches of its own).

    Depends on nothing but its arguments (the same batches in every run). An ROI's images are read by one
    task, so a batch of whole ROIs takes its inputs from few workers (on a CPU cluster, batches of 2: one
    worker), and an ROI's finish task waits for one batch. A generator that yields each batch as soon as
    it is closed (full, or the next ROI does not fit), before it takes the next job: ``jobs`` may be an
    iterator of ROIs as their reads come in.
    """
    cur: list[tuple[Any, str]] = []
    for j in jobs:
        imgs = [(j, r) for r in keep[j.name]]
        if cur and len(cur) + len(imgs) > size:
            yield cur
            cur = []
        while len(imgs) > size:
            yield imgs[:size]
            imgs = imgs[size:]
        cur += imgs
        if len(cur) == size:  # full: whatever comes next would close it
            yield cur
            cur = []
    if cur:
        yield cur


# ------------------------------------------------------------------------------------------------------
# The driver side
# ------------------------------------------------------------------------------------------------------


class Stages:
    """Submits the stage tasks to a ``distributed`` client, or runs them in process (``client=None``)."""

    def __init__(self, client: Any, cfg: Any, load_cfg: Any, signer: Any, reader: Any, *, token: str,
                 progress: bool = False) -> None:
        self.client, self.cfg = client, cfg
        self.io = (load_cfg, signer, reader)
        self.progress = progress
        self.token = token  # the run's (Runner.token): ends every task key, so another build has its own
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
    def submit(self, fn: Callable, *args: Any, key: str, net: bool = False, priority: float = 0) -> Any:
        """``priority``: the later stages' tasks run before reads still queued (an ROI goes on through its
        stages while others wait to be read: pixels are held shorter, the network tasks are fed early)."""
        if self.client is None:
            return fn(*args)
        kw: dict[str, Any] = {"key": f"{key}-{self.token}", "pure": False, "retries": 1, "priority": priority}
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
    def _submit_reads(self, jobs: list, *, embed: bool) -> list:
        """Submit the reads of the jobs not read yet (kept in ``self.captures``); their summaries' futures.

        The reads run in ``jobs`` order (priorities from 0 down to -1: Dask breaks ties in no fixed order),
        which is the order the later stages take the ROIs in; a summary goes before every task its worker
        has queued (it is tiny, and the driver waits on it to submit the ROI's next stages).
        """
        small = []
        for pos, j in enumerate(jobs):
            if j.name in self.captures:
                continue
            key = f"synthetic-read-{j.name}-{j.roi['roi_id']}"
            cap = self.submit(read_task, j, self.cfg, *self.io, embed, key=key, priority=-pos / len(jobs))
            self.captures[j.name] = cap
            small.append(self.submit(read_summary, cap, key=f"{key}-summary", priority=3))
        return small

    def read(self, jobs: list, *, embed: bool) -> Iterator[dict]:
        """Read each job's captures once (kept for :meth:`degrade`); yield ``embed_task``-like summaries."""
        yield from self._results(self._submit_reads(jobs, embed=embed), "synthetic: read + blank check + embed")

    def whole_rois(self) -> bool:
        """Whether each ROI can go through every stage in one task: there is no GPU worker and the U-Net (if
        any) runs on a CPU where the network tasks would run (in process, or on a worker: ``device="auto"``
        is resolved there). On a CPU the networks take one image at a time and treat the images of a batch
        apart, so batches across ROIs buy nothing, and one task per ROI saves the stages' round trips through
        the scheduler and the driver, the pixels' transfers between workers and the tail of a chain of
        three tasks per ROI (measured: a worker idle 0.5-0.7 s of a 9 s build while the other finished the
        last ROI's stages)."""
        if self.gpu is not None:
            return False
        if not any(v.method == "unet" for v in network_variants(self.cfg)):
            return True
        if self.client is None:
            return _device(self.cfg.device) == "cpu"
        return self.submit(_device, self.cfg.device, key="synthetic-net-device", net=True).result() == "cpu"

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
    def degrade(self, jobs: list, todo: set[str], keep: dict,
                finish: Callable[[list, dict], tuple[Callable, tuple]],
                arrivals: Iterable[str] | None = None) -> Iterator[Any]:
        """Networks over the kept images of ``jobs`` (fixed batches: :func:`roi_batches`), then finish the
        ``todo`` ROIs.

        ``finish(group, staged)`` gives the finish task of a group of ROIs as ``(function, args)``: the
        builder's task, fed the ``staged`` inputs (``{"captures": ..., "net": ...}``) of the group.
        ``arrivals``: names of ROIs whose ``keep`` entry has just become known (their reads done), in any
        order; a batch, then a group's finish, is submitted as soon as every ROI up to it in ``jobs`` order
        has arrived, so these stages start while other ROIs are still being read. None: every ``keep``
        entry is known. The batches and groups are the same either way.
        """
        cfg = self.cfg
        variants = network_variants(cfg)
        ats = tuple(sorted({v.at for v in variants}))
        size = self.net_batch_size(variants) if variants else 0
        net: dict[tuple[str, str], tuple[Any, int]] = {}
        futs: list = []

        def submit_batch(b: list[tuple[Any, str]]) -> None:
            if not any(j.name in todo for j, _ in b):
                return  # finished by an earlier run: the batch is only kept for the others' composition
            self._submit_reads([j for j, _ in b], embed=False)  # a resumed run reads what it lacks (no wait)
            first, last = b[0], b[-1]
            key = f"synthetic-net-{first[0].name}-{first[1]}-{last[0].name}-{last[1]}"
            caps = [self.captures[j.name] for j, _ in b]
            ts = [list(j.rows["role"]).index(role) for j, role in b]
            if self.gpu is None:  # the network task makes its inputs beside the pixels: no task per image
                out = self.submit(net_pixels_task, caps, ts, ats, variants, key=key, net=True, priority=2)
            else:  # the GPU worker gets the small inputs, made where the pixels are
                ins = [self.submit(net_input_task, c, t, ats, key=f"synthetic-netin-{j.name}-{role}", priority=2)
                       for c, t, (j, role) in zip(caps, ts, b, strict=True)]
                out = self.submit(net_task, ins, variants, key=key, net=True, priority=2)
            for i, (j, role) in enumerate(b):
                net[(j.name, role)] = (out, i)

        def submit_finish(g: list) -> None:
            self._submit_reads(g, embed=False)
            names = {j.name for j in g}
            staged = {"captures": {j.name: self.captures[j.name] for j in g},  # the group's network outputs move here
                      "net": {k: net.pop(k) for k in [k for k in net if k[0] in names]}}
            fn, args = finish(g, staged)
            futs.append(self.submit(fn, *args, key=f"synthetic-finish-{g[0].name}-{g[-1].name}", priority=1))
            for n in names:  # its tasks hold the pixels now: Dask frees them once the finish is done
                self.captures.pop(n, None)

        def in_order() -> Iterator[Any]:  # the jobs in order, each once every job before it has arrived
            known: set[str] = set()
            pos = 0
            for name in (arrivals if arrivals is not None else [j.name for j in jobs]):
                known.add(name)
                while pos < len(jobs) and jobs[pos].name in known:
                    if not keep[jobs[pos].name]:
                        self.captures.pop(jobs[pos].name, None)  # nothing kept: its pixels are not needed
                    yield jobs[pos]
                    pos += 1

        ready: list = []  # todo ROIs whose networks are all submitted, in order

        def finish_full_groups() -> None:
            while len(ready) >= cfg.rois_per_task:
                submit_finish(ready[:cfg.rois_per_task])
                del ready[:cfg.rois_per_task]

        if variants:
            for b in roi_batches(in_order(), keep, size):
                submit_batch(b)
                for j, role in b:
                    if role == keep[j.name][-1]:  # the ROI's last batch
                        if j.name in todo:
                            ready.append(j)
                        else:
                            self.captures.pop(j.name, None)  # done earlier: read for its batch only
                finish_full_groups()
        else:
            for j in in_order():
                if keep[j.name] and j.name in todo:
                    ready.append(j)
                    finish_full_groups()
        if ready:  # fewer than rois_per_task left: the last group
            submit_finish(ready)
        self.captures.clear()  # the finish tasks hold what they need
        yield from self._results(futs, "synthetic: harmonize + degrade + write")


def check_net_batch(value: Any) -> None:
    """``net_batch_size``: None (from the device) or a positive integer."""
    if value is not None and not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0):
        raise InputError(f"net_batch_size={value!r} must be a positive integer (images per network task) or "
                         "None (chosen from the GPU's memory; 2 on CPU)")
