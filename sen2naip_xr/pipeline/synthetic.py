"""The synthetic builder: ROIs -> early and late NAIP -> blank check -> diversity filter -> every harmonizer
-> blur/downsample/noise -> HR + per-method 120-bin histograms (+ optional LR) -> store.

Three stages (:mod:`sen2naip_xr.pipeline._stages`):

1. one task per ROI reads its early/late NAIP (4 x 1100 x 1100 at 2.5 m) once, drops images with a blank
   19 x 19 window and embeds the others (:mod:`sen2naip_xr.pipeline._diversity`); the pixels stay on the
   worker and the embeddings are stored (``synthetic/_embeddings``) so a rerun selects the same images;
2. the driver clusters the embeddings (MiniBatchKMeans, one image kept per cluster); then the networks
   (U-Net, VAE) run in their own tasks, batched across ROIs (``net_batch_size`` images, a fixed cut of the
   kept images), on a worker with a ``GPU`` resource when there is one (the model loaded once per worker);
3. one task per ``rois_per_task`` ROIs runs the other harmonizers and the CPU end of the networks
   (histogram matching), and per image blurs, downsamples and adds noise whose stream derives from (seed,
   ROI id, role, harmonizer) only, so results depend on neither the batch nor the worker; then writes.

Without a GPU worker, with the U-Net on CPU and ``keep_fraction=1`` (no filter to wait for), one task per
``rois_per_task`` ROIs runs all three, ROI after ROI, with the same functions (:func:`_roi_task`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sen2naip_xr import _rng
from sen2naip_xr._const import HR_RES
from sen2naip_xr._safe import redact
from sen2naip_xr.errors import Sen2NaipError
from sen2naip_xr.pipeline._common import (
    BuildResult,
    Job,
    check_candidates,
    collect,
    finish_run,
    plan,
    record_early,
    start_run,
)
from sen2naip_xr.pipeline._config import RunConfig, SyntheticConfig
from sen2naip_xr.pipeline._diversity import select_diverse
from sen2naip_xr.pipeline._runner import Runner
from sen2naip_xr.pipeline._stages import (
    Stages,
    network_variants,
    read_summary,
    read_task,
    roi_networks,
    staged_levels8,
    staged_network,
    staged_pixels,
)
from sen2naip_xr.store import (
    DatasetStore,
    RoiSink,
    StoreWriter,
    georeferenced,
    hist_bin_coord,
    provenance_record,
    roi_metadata,
)

__all__ = ["build_synthetic"]

KIND = "synthetic"
_EMB = "_embeddings"


def plan_synthetic(candidates: Any) -> tuple[list[Job], list[tuple[str, str, str, str]]]:
    check_candidates(candidates, KIND)
    return plan(candidates, id_columns=("naip_id",),
                no_candidate="no NAIP capture covers the ROI from min_naip_year on (widen --datetime or pick other ROIs)")


def load_captures(job: Job, load_cfg: Any, signer: Any, reader: Any) -> tuple[np.ndarray | None, str]:
    import dask

    from sen2naip_xr.load import load_failures, load_naip

    try:
        with dask.config.set(scheduler="sync"):
            naip = load_naip(job.rows, items=job.items, config=load_cfg, signer=signer, reader=reader).compute()
    except Sen2NaipError as exc:
        return None, redact(f"load | {exc}")
    lf = load_failures(naip)
    if len(lf):
        return None, redact(f"{lf['stage'].iloc[0]} | {lf['reason'].iloc[0]}")
    return np.asarray(naip.values[0], np.float32), ""


def embed_task(job: Job, cfg: SyntheticConfig, load_cfg: Any, signer: Any, reader: Any,
                loaded: tuple[np.ndarray | None, str] | None = None) -> dict:
    """Round 1: blank check and embedding of each capture of one ROI (``loaded``: what ``load_captures`` returned)."""
    import xarray as xr

    from sen2naip_xr.ops import is_blank
    from sen2naip_xr.pipeline._diversity import make_embedder

    out: dict[str, Any] = {"name": job.name, "roles": {}, "reasons": []}
    pix, err = load_captures(job, load_cfg, signer, reader) if loaded is None else loaded
    if pix is None:
        stage, _, reason = err.partition(" | ")
        out["reasons"].append((stage, reason))
        return out
    emb = make_embedder(cfg.embedder, weights=cfg.clip_weights, model=cfg.clip_model, device=cfg.device)
    for t, row in enumerate(job.rows.to_dict("records")):
        img = pix[t]
        if np.isnan(img).any() or bool(is_blank(xr.DataArray(img, dims=("band", "y", "x")), window=cfg.blank_window)):
            out["reasons"].append(("blank", f"{row['role']} {row['naip_id']}: blank or no-data "
                                            f"{cfg.blank_window}x{cfg.blank_window} window"))
            continue
        out["roles"][row["role"]] = emb(img[None])[0]
    return out


@contextlib.contextmanager
def one_torch_thread(active: bool):
    """The U-Net on one CPU thread: its float sums depend on the thread count, and Dask workers run with
    one (``OMP_NUM_THREADS=1``), so an in-process run gives the same bytes as a cluster."""
    if not active or find_spec("torch") is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def stream_keep(summary: dict) -> tuple[list[str], list[str]]:
    """What ``keep_fraction=1`` keeps of an ROI, from its read's summary: every usable image (its roles,
    sorted), and the notes on the images it dropped (blank, unreadable)."""
    return sorted(summary["roles"]), [r for _, r in summary["reasons"]]


def _roi_task(jobs: list[Job], todo: set[str], sink: RoiSink, cfg: SyntheticConfig, prov: dict, load_cfg: Any,
              signer: Any, reader: Any) -> dict:
    """Every stage of a group of ROIs in one task, one ROI after the other (``keep_fraction=1``, no GPU
    worker, the networks on a CPU: :meth:`Stages.whole_rois`): read, blank check and embedding (the
    summaries, for the driver), then for the ROIs in ``todo`` the networks on the ROI's kept images and
    :func:`_degrade_batch`, writing into ``sink``. The staged build's functions in one place: the same bytes."""
    variants = network_variants(cfg)
    out: dict[str, Any] = {"summaries": [], "statuses": [], "sink": sink}
    for job in jobs:
        capture = read_task(job, cfg, load_cfg, signer, reader, True)
        out["summaries"].append(read_summary(capture))
        keep, notes = stream_keep(capture)
        if keep and job.name in todo:
            staged = {"captures": {job.name: capture}, "net": roi_networks(capture, job, keep, variants)}
            out["statuses"] += _degrade_batch([job], {job.name: keep}, {job.name: notes}, sink, {}, cfg, prov, staged)
    return out


def _degrade_task(jobs: list[Job], keep: dict[str, list[str]], notes: dict[str, list[str]], sink: RoiSink,
                  done: dict[str, str], cfg: SyntheticConfig, prov: dict, staged: dict) -> dict:
    """Round 2 (a task): :func:`_degrade_batch` writing into ``sink``; returns the statuses and the sink."""
    return {"statuses": _degrade_batch(jobs, keep, notes, sink, done, cfg, prov, staged), "sink": sink}


def _degrade_batch(jobs: list[Job], keep: dict[str, list[str]], notes: dict[str, list[str]], store: RoiSink,
                   done: dict[str, str], cfg: SyntheticConfig, prov: dict, staged: dict) -> list[dict]:
    """Every harmonizer on each kept image of a batch of ROIs, then blur/downsample/noise and histograms,
    then write the ROIs not in ``done`` (name -> ``written``/``failed`` status of the ROIs finished earlier).

    ``staged`` (:mod:`sen2naip_xr.pipeline._stages`): the pixels the read stage kept and the network
    stage's outputs. One image and one harmonizer at a time, at the numpy level, as the kernel floor of
    ``benchmarks/build.py``: every harmonizer treats the images of a batch apart, so this is what
    ``harmonize_with`` of the batch's stack gives, without the stack's copies.
    """
    import xarray as xr

    from sen2naip_xr._validate import check_pixels
    from sen2naip_xr.degrade import build_config
    from sen2naip_xr.harmonize import harmonize_image
    from sen2naip_xr.harmonize.kernels import histc
    from sen2naip_xr.ops import kernels, noise_table

    results, images, where = [], [], []
    for job in jobs:
        if job.name in done:  # finished by an earlier run (the network batches kept it; nothing to do here)
            results.append({"name": job.name, "status": "skipped"})
            continue
        pix, err = staged_pixels(staged, job)
        if pix is None:
            stage, _, reason = err.partition(" | ")
            store.record_failure(KIND, job.name, job.roi["roi_id"], stage, reason)
            results.append({"name": job.name, "status": "failed"})
            continue
        for t, row in enumerate(job.rows.to_dict("records")):
            if row["role"] in keep[job.name]:
                images.append(pix[t])
                where.append((job, row))
    if not images:
        return results
    dcfg = build_config(list(cfg.methods), percentiles=cfg.percentiles, noise=cfg.noise, seed=cfg.seed,
                        device=cfg.device, model=cfg.model)
    table = noise_table(dcfg.model) if dcfg.noise.model == "real" else None
    labels = [v.label for v in dcfg.methods]
    hists = np.zeros((len(images), len(labels), 4, 120), np.float32)
    lrs: np.ndarray | None = None
    for i, (job, row) in enumerate(where):
        if not staged_levels8(staged, job):
            check_pixels(images[i], "image", 0.0, 1.0)  # 8-bit levels are in [0, 1] by construction
        for m, variant in enumerate(dcfg.methods):
            hr = harmonize_image(images[i], variant, model=dcfg.model,
                                 net_out=staged_network(staged, job, row["role"], variant))
            seed = _rng.derive_key(cfg.seed, job.roi["roi_id"], row["role"]) >> 1
            lr = kernels.degrade_lr(hr, dcfg.blur.sigma, mode=dcfg.blur.mode, noise=dcfg.noise.model,
                                    noise_sigma=dcfg.noise.sigma, table=table,
                                    key=kernels.noise_key(seed, dcfg.noise.model, variant.label))
            hists[i, m] = histc(lr)
            if cfg.store_lr:
                if lrs is None:
                    lrs = np.zeros((len(images), len(labels), *lr.shape), np.float32)
                lrs[i, m] = lr
            del hr
    by_roi: dict[str, dict[str, xr.Dataset]] = {}
    metas: dict[str, dict] = {}
    for i, (job, row) in enumerate(where):
        roi = job.roi
        ds = image_dataset(roi, images[i], hists[i], labels, None if lrs is None else lrs[i])
        ds.attrs.update({"naip_id": row["naip_id"], "naip_date": str(pd.Timestamp(row["naip_datetime"]).date()),
                         "role": row["role"]})
        by_roi.setdefault(job.name, {})[row["role"]] = ds
        meta = roi_metadata(roi, name=job.name)
        meta[f"naip_id_{row['role']}"] = row["naip_id"]
        meta[f"naip_date_{row['role']}"] = str(pd.Timestamp(row["naip_datetime"]).date())
        metas.setdefault(job.name, meta).update({k: v for k, v in meta.items() if k.startswith("naip_")})
    for job in jobs:
        if job.name not in by_roi:
            continue
        meta = metas[job.name]
        meta["harmonizers"] = labels
        meta["images_dropped"] = notes.get(job.name, [])
        meta["provenance"] = provenance_record(prov, [a.href for it in job.items.values() for k, a in it.assets.items()
                                                      if k == "image"])
        store.write_roi(KIND, job.name, by_roi[job.name], meta)
        results.append({"name": job.name, "status": "written"})
    return results


def image_dataset(roi: Any, hr: np.ndarray, hists: np.ndarray, labels: list[str],
                  lrs: np.ndarray | None = None) -> Any:
    """The stored group of one synthetic image: its georeferenced ``hr``, the ``hist`` of the S2-like image
    of each harmonizer (``labels``) and, when kept, their ``lr``."""
    import xarray as xr

    ds = georeferenced(hr, name="hr", x_min=roi["x_min"], y_max=roi["y_max"], res=HR_RES, epsg=int(roi["epsg"]),
                       attrs={"long_name": "NAIP reflectance (2.5 m)", "units": "1"})
    ds = ds.assign_coords(harmonizer=labels)
    ds["hist"] = xr.DataArray(hists, dims=("harmonizer", "band", "bin"), coords={"bin": hist_bin_coord()},
                              attrs={"long_name": "120-bin histogram over [0, 1] of each band of the S2-like "
                                                  "image of each harmonizer (d_sim->real)", "units": "count"})
    ds["harmonizer"].attrs.update(long_name="harmonization method (and gamma percentile)")
    if lrs is not None:
        ds["lr"] = xr.DataArray(lrs, dims=("harmonizer", "band", "y_lr", "x_lr"),
                                attrs={"long_name": "S2-like reflectance (10 m) of each harmonizer"})
    return ds


def _embeddings(store: DatasetStore, names: list[str], embedder: str) -> tuple[dict, dict] | None:
    """The stored embeddings (and why images were dropped) of this ROI list and embedder, or None."""
    ds = store.read_aux(KIND, _EMB)
    if ds is None or ds.attrs.get("embedder") != embedder or ds.attrs.get("rois") != names:
        return None
    out: dict[str, dict[str, np.ndarray]] = {n: {} for n in names}
    for key, vec in zip(ds["image"].values, ds["embedding"].values, strict=True):
        n, _, role = str(key).partition("/")
        out[n][role] = vec
    return out, dict(ds.attrs.get("dropped", {}))


def _save_embeddings(writer: StoreWriter, names: list[str], embedder: str, emb: dict, dropped: dict) -> None:
    import xarray as xr

    keys = [f"{n}/{r}" for n in names for r in sorted(emb.get(n, {}))]
    vecs = np.stack([emb[k.split("/")[0]][k.split("/")[1]] for k in keys]) if keys else np.zeros((0, 0))
    ds = xr.Dataset({"embedding": (("image", "feature"), vecs)}, coords={"image": np.array(keys, dtype=object)},
                    attrs={"embedder": embedder, "rois": names, "dropped": dropped})
    writer.write_dataset(f"{KIND}/{_EMB}", ds)
    writer.commit(f"{KIND}: embeddings of {len(keys)} image(s)")


def build_synthetic(
    candidates: Any,
    output: str | Path,
    *,
    config: SyntheticConfig | None = None,
    run: RunConfig | None = None,
    load: Any = None,
    signer: Any = None,
    reader: Any = None,
    root_attrs: dict | None = None,
    client: Any = None,
    storage_options: dict | None = None,
    tag: str | None = None,
    on_event: Callable[[str, dict], None] | None = None,
) -> BuildResult:
    """Build (or resume) the synthetic part of a dataset store from ``search_pairs(..., kind="synthetic")``.

    Same arguments as :func:`sen2naip_xr.build_cross_sensor`, with a :class:`SyntheticConfig`.
    """
    cfg = config or SyntheticConfig()
    rcfg = run or RunConfig()
    t0 = time.perf_counter()
    jobs, early = plan_synthetic(candidates)
    store = DatasetStore(output, storage_options=storage_options)
    result = BuildResult(store.url, KIND)
    names = [j.name for j in jobs]
    ids = {j.name: str(j.roi["roi_id"]) for j in jobs} | {e[0]: str(e[1]) for e in early}
    emb_name = cfg.embedder if cfg.embedder == "thumbnail" else f"clip:{cfg.clip_model}:{cfg.clip_weights}"
    prov = {"kind": KIND, "synthetic": cfg.to_dict(), "load": repr(load) if load is not None else "default"}
    with Runner(rcfg, client=client) as runner:
        writer = start_run(store, KIND, names=ids, config=cfg.to_dict(), run=rcfg, runner=runner,
                           root_attrs=root_attrs, on_event=on_event, result=result, tag=tag)
        result.failed += record_early(writer, KIND, early, store.done(KIND))
        stages = Stages(runner.client, cfg, load, signer, reader, token=runner.token, progress=rcfg.progress)
        cached = _embeddings(store, names, emb_name)
        # keep_fraction 1 keeps every usable image: no filter to wait for, each ROI goes on once it is read
        stream = cached is None and cfg.keep_fraction >= 1
        emb: dict[str, dict] = {}
        reasons: dict[str, list] = {}
        keep: dict[str, list[str]] = {n: [] for n in names}
        notes: dict[str, list[str]] = {n: [] for n in names}

        def arrived(res: dict) -> str:  # a read's summary
            emb[res["name"]] = res["roles"]
            reasons[res["name"]] = res["reasons"]
            if stream:
                keep[res["name"]], notes[res["name"]] = stream_keep(res)
            return res["name"]

        def after_reads(done: set[str]) -> dict:  # ROIs with no usable image are final failures
            sink = writer.sink()
            for j in jobs:
                if not emb.get(j.name) and reasons.get(j.name) and j.name not in done:
                    rs = reasons[j.name]
                    sink.record_failure(KIND, j.name, j.roi["roi_id"], "+".join(sorted({s for s, _ in rs})),
                                        "; ".join(r for _, r in rs))
                    result.failed.append(j.name)
            writer.collect(sink)
            dropped = {n: [r for _, r in rs] for n, rs in reasons.items() if rs}
            _save_embeddings(writer, names, emb_name, emb, dropped)
            return dropped

        def left_to_do(done: set[str]) -> set[str]:  # the ROIs an earlier run finished are skipped
            result.skipped = [j.name for j in jobs if j.name in done and j.name not in result.failed]
            return {j.name for j in jobs if j.name not in done}

        if stream and stages.whole_rois():  # one task per group of ROIs runs every stage
            done = set(store.index(KIND))
            todo = left_to_do(done)
            groups = [jobs[i: i + cfg.rois_per_task] for i in range(0, len(jobs), cfg.rois_per_task)]
            tasks = ((f"synthetic-roi-{g[0].name}-{g[-1].name}", (g, todo & {j.name for j in g}, writer.sink(), cfg,
                                                                   prov, load, signer, reader)) for g in groups)

            def finished() -> Iterator[dict]:
                for res in runner.run(_roi_task, tasks, desc="synthetic", total=len(groups)):
                    for summary in res.pop("summaries"):
                        arrived(summary)
                    yield res
                after_reads(done)

            for _ in collect(writer, finished(), result):
                pass
            return finish_run(writer, result, len(candidates.rois), tag=tag, t0=t0)
        if stream:
            index = store.index(KIND)

            def arrivals() -> Iterator[str]:  # the pixels stay on the workers for the later stages
                for res in stages.read(jobs, embed=True):
                    yield arrived(res)
                after_reads(set(index))  # (the driver's commit overlaps the workers' network and finish tasks)
        else:
            if cached is not None:
                emb, dropped = cached
            else:
                for res in stages.read(jobs, embed=True):  # the pixels stay on the workers for the later stages
                    arrived(res)
                dropped = after_reads(store.done(KIND))
            keys = [(n, r) for n in names for r in sorted(emb.get(n, {}))]
            mask = select_diverse(
                np.stack([emb[n][r] for n, r in keys]) if keys else np.zeros((0, 1)),
                keep_fraction=cfg.keep_fraction, seed=cfg.seed)
            notes.update({n: list(dropped.get(n, [])) for n in names})
            for (n, r), k in zip(keys, mask, strict=True):
                if k:
                    keep[n].append(r)
                else:
                    notes[n].append(f"{r}: not kept by the diversity filter")
            done = store.done(KIND)
            sink = writer.sink()
            for j in jobs:
                if j.name not in done and emb.get(j.name) and not keep[j.name]:
                    sink.record_failure(KIND, j.name, j.roi["roi_id"], "diversity",
                                        "not kept by the diversity filter: another image represents its cluster(s)")
                    result.failed.append(j.name)
            writer.collect(sink)
            writer.commit()
            index = store.index(KIND)
        # network batches over every ROI with kept images (not only those left to do): the same in every run
        todo = left_to_do(set(index))

        def finish(group: list[Job], staged: dict) -> tuple:  # the finish task: round 2 fed the staged inputs
            return _degrade_task, (group, {j.name: keep[j.name] for j in group}, {j.name: notes[j.name] for j in group},
                                   writer.sink(), {j.name: index[j.name]["status"] for j in group if j.name in index},
                                   cfg, prov, staged)

        for _ in collect(writer, stages.degrade(jobs, todo, keep, finish, arrivals() if stream else None), result):
            pass
        result.skipped = list(dict.fromkeys(result.skipped))  # finished before this run: listed once
        return finish_run(writer, result, len(candidates.rois), tag=tag, t0=t0)
