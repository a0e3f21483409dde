"""Dataset build benchmark (issue 4): ROIs per minute, 2 vs 1 workers, worker memory vs ROI count, graph build.

Runs offline on the embedded demo catalog (procedural NAIP COGs, S2 made from them), on LocalClusters
started here. Prints a table and writes ``benchmarks/results/build.json``.

    .venv/bin/python benchmarks/build.py            # the numbers of BENCHMARKS.md
    .venv/bin/python benchmarks/build.py --quick    # small sizes (CI smoke run)

Measures
--------
* the kernel floor (issue 11): per pipeline, the build's wall and CPU seconds per ROI on one worker and,
  in the same run, the sum of that ROI's kernels timed alone (read, blank check, embedding, each harmonizer,
  blur/downsample, noise, histograms, write -- of the datasets the builder stores: georeferenced, with
  their coordinates and the ROI's metadata; the cross-sensor QA), target build <= 1.3x floor,
  ``--repeats`` times (the median run reported, every run listed); and the bytes read from files per ROI
  and the reads per capture, by a counting reader;
* ``rois_per_min``: finished ROIs (written or failed) per minute of ``build_*`` wall time, cluster start
  and each worker's one-off imports and model loads excluded; cross-sensor at 484 px, synthetic at
  1100 px with the four harmonizer families;
* speedup of a LocalCluster with 2 workers (1 thread each) over 1 worker (targets: >= 1.6x in issue 4,
  >= 1.7x in issue 11 where the machine allows), ``--repeats`` pairs alternating, each between two
  measurements of the machine's own 2-process ceilings: a pure-Python loop (CPU only), and the pipeline's
  kernels of a few ROIs (``KernelCeiling``: the same work without Dask, so also the memory bus and cache
  two workers share) in 2 processes at once vs 1;
* peak RSS of the workers (sampled every 20 ms in each worker) for 10 and for 100 cross-sensor ROIs
  (target: growth < 20 %);
* planning the tasks of 10,000 ROIs (``plan_jobs``: the driver's graph) and, for comparison, the load
  stage's lazy Dask graph of the same 10,000 ROIs (target < 30 s);
* with a CUDA device and torch: the batched U-Net harmonizer's throughput (images/s) per batch size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

import sen2naip_xr as s2n
from sen2naip_xr.demo import embedded_catalog as build_demo_catalog
from sen2naip_xr.load import NoSigner
from sen2naip_xr.pipeline.cross_sensor import plan_jobs


def _burn(_: int) -> float:
    t0 = time.perf_counter()
    x = 0
    for i in range(10_000_000):
        x += i
    return time.perf_counter() - t0


def bench_cpu() -> dict:
    """How much parallel CPU the machine gives: a pure-Python loop in 1 and in 2 processes."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_burn, [0, 0])  # warm up
        one = pool.apply(_burn, (0,))  # one of the two processes alone (as the pair below: same kind of process)
        t0 = time.perf_counter()
        pool.map(_burn, [0, 0])
        two = time.perf_counter() - t0
    return {"one_process_s": round(one, 2), "two_processes_s": round(two, 2),
            "parallel_speedup_ceiling": round(2 * one / two, 2)}


def _kernels_alone(kind: str, cands, cfg, folder: str) -> float:
    """In a process of :class:`KernelCeiling`: the kernel floor of ``kind`` over ``cands`` (one worker's work
    without Dask: read, kernels, write into a fresh store under ``folder``); its wall seconds."""
    import uuid

    import torch

    torch.set_num_threads(1)  # as on a Dask worker (OMP_NUM_THREADS=1)
    tmp = Path(folder) / uuid.uuid4().hex
    tmp.mkdir(parents=True)
    t0 = time.perf_counter()
    (floor_synthetic if kind == "synthetic" else floor_cross_sensor)(cands, cfg, tmp, None)
    seconds = time.perf_counter() - t0
    shutil.rmtree(tmp, ignore_errors=True)
    return seconds


class KernelCeiling:
    """The machine's 2-process ceiling for a pipeline's own work: its kernels (the floor of a few ROIs) in one
    process alone, then in two processes at once; ``2 * alone / together``.

    The pure-Python loop of :func:`bench_cpu` shares nothing between the processes; these kernels (GDAL
    reads, numpy over 5-20 MB arrays, a convolutional network, the store's writes) also share the memory
    bus and the last-level cache, as two Dask workers on this machine do. Two spawned one-process pools with
    the workers' environment, warmed once per pipeline (imports, model loads), idle between measurements.
    """

    def __init__(self, folder: Path) -> None:
        import multiprocessing as mp

        from sen2naip_xr.pipeline._runner import WORKER_MALLOC

        self.folder = str(folder)
        ctx = mp.get_context("spawn")
        with mock.patch.dict(os.environ, {**WORKER_MALLOC, "OMP_NUM_THREADS": "1"}):  # the spawned processes'
            self.pools = [ctx.Pool(1), ctx.Pool(1)]
        self.warm: set[str] = set()

    def __enter__(self) -> KernelCeiling:
        return self

    def __exit__(self, *exc) -> None:
        for p in self.pools:
            p.terminate()
            p.join()

    def __call__(self, kind: str, cands, cfg) -> dict:
        args = (kind, cands, cfg, self.folder)
        if kind not in self.warm:
            for r in [p.apply_async(_kernels_alone, args) for p in self.pools]:
                r.get()
            self.warm.add(kind)
        alone = self.pools[0].apply(_kernels_alone, args)
        t0 = time.perf_counter()
        for r in [p.apply_async(_kernels_alone, args) for p in self.pools]:
            r.get()
        together = time.perf_counter() - t0
        return {"alone_s": round(alone, 2), "two_at_once_s": round(together, 2),
                "ceiling": round(2 * alone / together, 2)}


def _cluster(n_workers: int):
    from distributed import Client

    from sen2naip_xr.pipeline import local_cluster

    cluster = local_cluster(n_workers, memory_limit="6GiB")  # the workers RunConfig's LocalCluster starts
    return cluster, Client(cluster)


def _start_rss_sampler(dask_worker=None) -> None:
    """In a worker: a thread that records the process's peak RSS every 20 ms (ru_maxrss would carry the
    parent's peak across the spawn)."""
    import threading

    import psutil

    w = dask_worker
    w._s2n_peak_rss = 0  # type: ignore[attr-defined]
    proc = psutil.Process()

    def sample() -> None:
        while True:
            w._s2n_peak_rss = max(w._s2n_peak_rss, proc.memory_info().rss)  # type: ignore[attr-defined]
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()


def _peak_rss_mib(client) -> float:
    def peak(dask_worker=None) -> float:
        return dask_worker._s2n_peak_rss / 2**20  # type: ignore[union-attr]

    return max(client.run(peak).values())


def _warm(kind: str, px: int = 64) -> None:
    """What a worker does once (the first ROI of a worker pays it): imports, model loads, the store's write
    path (zarr, icechunk and its I/O runtime, the codecs: ~0.15 s of imports and set-up in each worker's
    first task, paid by the 1-worker build once and by the 2-worker build in parallel, so a fixed cost in
    both) and, at the ROIs' size ``px``, one pass of the pipeline's kernels, which grows the process's heap
    to its working set (first touches of fresh memory cost ~2.5 ms per MB on this VM, and 2 workers pay them
    twice). Not timed."""
    import odc.stac  # noqa: F401
    import rasterio  # noqa: F401
    import xarray as xr

    import sen2naip_xr as s2n
    from sen2naip_xr.store import georeferenced

    scene = s2n.scenes.make_scene(px, 0)
    img = xr.DataArray(scene, dims=("band", "y", "x"))
    s2n.histogram_match(img, img)
    if kind == "synthetic":
        s2n.degrade(img, device="cpu", batch_size=1).load()
    store = s2n.DatasetStore("memory://warm")  # in this process only: nothing of it reaches the timed build
    store.init({})
    sink = store.writer(kind, config={}).sink()
    sink.write_roi(kind, "ROI_00001", {"hr": georeferenced(scene, name="hr", x_min=0.0, y_max=0.0, res=2.5,
                                                           epsg=32611)}, {"roi_id": "warm"})


def _roi_px(cands) -> int:
    """The ROIs' width in NAIP pixels (2.5 m)."""
    return int(cands.rois["size"].iloc[0])


def _worker_cpu_s(client) -> float:
    """User + system CPU seconds of the worker processes so far."""
    def cpu() -> float:
        import psutil

        t = psutil.Process().cpu_times()
        return t.user + t.system

    return sum(client.run(cpu).values())


def _time_build(kind: str, cands, out: Path, n_workers: int, cfg, reader=None,
                cpu: dict | None = None) -> tuple[float, float, int]:
    cluster, client = _cluster(n_workers)
    try:
        client.run(_start_rss_sampler)
        client.run(_warm, kind, _roi_px(cands))
        build = s2n.build_cross_sensor if kind == "cross-sensor" else s2n.build_synthetic
        c0 = _worker_cpu_s(client)
        t0 = time.perf_counter()
        res = build(cands, out, config=cfg, run=s2n.RunConfig(progress=False), signer=NoSigner(), client=client,
                    reader=reader)
        seconds = time.perf_counter() - t0
        if cpu is not None:
            cpu["workers_s"] = _worker_cpu_s(client) - c0
        n = len(res.written) + len(res.failed)
        return seconds, _peak_rss_mib(client), n
    finally:
        client.close()
        cluster.close()


def _candidates(folder: Path, counts: tuple[int, int], sizes: tuple[int, int]):
    """Cross-sensor and synthetic candidates of an embedded demo catalog of ``counts`` ROIs of ``sizes`` px."""
    cat = build_demo_catalog(folder, n_cross_sensor=counts[0], n_synthetic=counts[1],
                             cross_sensor_size=sizes[0], synthetic_size=sizes[1])
    cs = s2n.search_pairs(cat.cross_sensor_rois, datetime=cat.datetime, client=cat.client, progress=False)
    sy = s2n.search_pairs(cat.synthetic_rois, kind="synthetic", datetime=cat.datetime, client=cat.client,
                          progress=False)
    return cs, sy


def bench_throughput(tmp: Path, quick: bool, repeats: int) -> dict:
    """2 workers vs 1, ``repeats`` times alternately, each pair between two measurements of the machine's
    ceilings (the loop's and the pipeline's own kernels': :class:`KernelCeiling`)."""
    import icechunk  # noqa: F401  -- the driver's one-off imports, not the first build's
    import zarr  # noqa: F401

    cs_size, sy_size = (128, 256) if quick else (484, 1100)
    cs, sy = _candidates(tmp / "cat-throughput", (4, 2) if quick else (24, 16), (cs_size, sy_size))
    few = _candidates(tmp / "cat-ceiling", (2, 1) if quick else (4, 2), (cs_size, sy_size))
    out: dict = {}
    with KernelCeiling(tmp / "ceiling") as kernel_ceiling:
        for kind, cands, cfg, small in (
                ("cross-sensor", cs, s2n.CrossSensorConfig(), few[0]),
                ("synthetic", sy, s2n.SyntheticConfig(device="cpu", rois_per_task=1), few[1])):
            runs = []
            for rep in range(repeats):
                run: dict = {"ceiling_before": {"loop": bench_cpu()["parallel_speedup_ceiling"],
                                                "kernels": kernel_ceiling(kind, small, cfg)["ceiling"]}}
                for nw in (1, 2):
                    store = tmp / f"{kind}-{rep}-{nw}.zarr"
                    seconds, rss, n = _time_build(kind, cands, store, nw, cfg)
                    run[nw] = {"seconds": round(seconds, 2), "rois": n, "rois_per_min": round(60 * n / seconds, 1),
                               "peak_worker_rss_mib": round(rss, 1)}
                run["ceiling_after"] = {"loop": bench_cpu()["parallel_speedup_ceiling"],
                                        "kernels": kernel_ceiling(kind, small, cfg)["ceiling"]}
                run["speedup_2_vs_1"] = round(run[1]["seconds"] / run[2]["seconds"], 2)
                run["kernel_ceiling"] = round(float(np.mean([run["ceiling_before"]["kernels"],
                                                             run["ceiling_after"]["kernels"]])), 2)
                run["of_kernel_ceiling"] = round(run["speedup_2_vs_1"] / run["kernel_ceiling"], 2)
                runs.append(run)
                print(f"  {kind} run {rep + 1}/{repeats}: {run[1]['rois_per_min']} -> {run[2]['rois_per_min']} ROIs/min"
                      f" = {run['speedup_2_vs_1']}x; ceilings before/after: loop {run['ceiling_before']['loop']}x / "
                      f"{run['ceiling_after']['loop']}x, kernels {run['ceiling_before']['kernels']}x / "
                      f"{run['ceiling_after']['kernels']}x", flush=True)
            digests = {s2n.DatasetStore(tmp / f"{kind}-{rep}-{nw}.zarr").digest()
                       for rep in range(repeats) for nw in (1, 2)}
            out[kind] = {"roi_px": cs_size if kind == "cross-sensor" else sy_size, "runs": runs,
                         "speedup_2_vs_1_median": round(float(np.median([r["speedup_2_vs_1"] for r in runs])), 2),
                         "kernel_ceiling_median": round(float(np.median([r["kernel_ceiling"] for r in runs])), 2),
                         "of_kernel_ceiling_median": round(float(np.median([r["of_kernel_ceiling"] for r in runs])), 2),
                         "identical_bytes_all_runs": len(digests) == 1}
    return out


def bench_memory(tmp: Path, quick: bool) -> dict:
    counts = (4, 12) if quick else (10, 100)
    size = 128 if quick else 484
    cat = build_demo_catalog(tmp / "cat-memory", n_cross_sensor=counts[1], n_synthetic=0, cross_sensor_size=size)
    out = {}
    for n in counts:
        rois = cat.cross_sensor_rois.iloc[:n]
        cands = s2n.search_pairs(rois, datetime=cat.datetime, client=cat.client, progress=False)
        seconds, rss, done = _time_build("cross-sensor", cands, tmp / f"mem-{n}.zarr", 2, s2n.CrossSensorConfig())
        out[n] = {"peak_worker_rss_mib": round(rss, 1), "seconds": round(seconds, 2), "rois": done}
    out["growth_pct"] = round(100 * (out[counts[1]]["peak_worker_rss_mib"] / out[counts[0]]["peak_worker_rss_mib"] - 1), 1)
    out["roi_px"] = size
    return out


def bench_graph(tmp: Path, quick: bool) -> dict:
    """10,000 ROIs: replicate the demo's candidate rows under new ROI ids (no pixel is read)."""
    n = 1000 if quick else 10_000
    cat = build_demo_catalog(tmp / "cat-graph", n_cross_sensor=2, n_synthetic=0, cross_sensor_size=128)
    cands = s2n.search_pairs(cat.cross_sensor_rois, datetime=cat.datetime, client=cat.client, progress=False)
    base_roi, base_pairs = cands.rois.iloc[[0]], cands.pairs[cands.pairs.roi_id == cands.rois.roi_id.iloc[0]]
    ids = [f"cs-32611-{i}" for i in range(n)]
    rois = pd.concat([base_roi] * n, ignore_index=True).assign(roi_id=ids)
    pairs = pd.concat([base_pairs.assign(roi_id=r) for r in ids], ignore_index=True)
    big = type(cands)(kind="cross-sensor", rois=rois, pairs=pairs, items=cands.items)
    t0 = time.perf_counter()
    jobs, early = plan_jobs(big)
    tasks = [(f"cross-sensor-{j.name}-{j.roi['roi_id']}", j) for j in jobs]
    plan_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    cubes = s2n.load_pairs(pairs, items=cands.items, signer=NoSigner())
    n_tasks = sum(len(c.data.__dask_graph__()) for c in cubes)
    load_s = time.perf_counter() - t0
    return {"rois": n, "plan_jobs_s": round(plan_s, 2), "tasks": len(tasks) + len(early),
            "load_graph_s": round(load_s, 2), "load_graph_tasks": n_tasks}


# --------------------------------------------------------------------------------------------------
# Kernel floor: the same ROIs' kernels timed alone, in this process, one thread
# --------------------------------------------------------------------------------------------------


class CountingReader:
    """The default reader, logging per call the asset window (URL and ROI grid), the decoded bytes and the
    bytes the process read from files meanwhile (``/proc/self/io`` ``rchar``: GDAL's reads of the COG), to
    a file (any process)."""

    def __init__(self, log: str) -> None:
        self.log = log

    def __call__(self, url, *, geobox, **kw):
        from sen2naip_xr.load import OdcReader

        before = _rchar()
        pix = OdcReader()(url, geobox=geobox, **kw)
        read = _rchar() - before
        window = f"{url}|{tuple(geobox.shape)}|{tuple(geobox.affine)[:6]}"  # one capture of one ROI
        with open(self.log, "a") as f:
            f.write(f"{window}\t{pix.nbytes}\t{read}\n")
        return pix


def _rchar() -> int:
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _read_log(log: Path) -> dict:
    rows = [line.split("\t") for line in log.read_text().splitlines()] if log.exists() else []
    per_window: dict[str, int] = {}
    for window, _, _ in rows:
        per_window[window] = per_window.get(window, 0) + 1
    return {"reads": len(rows), "windows": len(per_window), "decoded_bytes": sum(int(r[1]) for r in rows),
            "file_bytes": sum(int(r[2]) for r in rows), "max_reads_per_window": max(per_window.values(), default=0)}


def _clock(times: dict, name: str, fn, *args, **kw):
    """Run ``fn``, adding its wall time to ``times[name]`` and its CPU time to ``times["cpu"]``."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn(*args, **kw)
    times[name] = times.get(name, 0.0) + time.perf_counter() - t0
    times["cpu"] = times.get("cpu", 0.0) + time.process_time() - c0
    return out


def floor_synthetic(cands, cfg, tmp: Path, reader) -> dict:
    """Per ROI, each kernel of the synthetic build timed alone (numpy level), summed; mean over ROIs."""

    from sen2naip_xr.degrade import build_config
    from sen2naip_xr.harmonize import _numpy as hnp
    from sen2naip_xr.harmonize import gamma_values, network_finish, network_forward, network_input
    from sen2naip_xr.ops import _numpy as onp
    from sen2naip_xr.pipeline._diversity import ThumbnailEmbedder
    from sen2naip_xr.pipeline.synthetic import load_captures, plan_synthetic
    from sen2naip_xr.store import DatasetStore

    dcfg = build_config(list(cfg.methods), percentiles=cfg.percentiles, noise=cfg.noise, seed=cfg.seed,
                        device=cfg.device, model=cfg.model)
    from sen2naip_xr.weights import noise_matrix

    table = onp.noise_cdf_table(noise_matrix() if dcfg.model.noise_matrix is None
                                else np.asarray(dcfg.model.noise_matrix, np.float64))
    embed = ThumbnailEmbedder()
    store = DatasetStore(tmp / "floor-synthetic.zarr")
    store.init({})
    writer = store.writer("synthetic", config={})
    jobs, _ = plan_synthetic(cands)
    per_roi = []
    for job in jobs:
        t: dict[str, float] = {}
        pix, err = _clock(t, "read", load_captures, job, None, NoSigner(), reader)
        if pix is None:
            continue
        kept = []
        for img in pix:
            if not _clock(t, "blank check", onp.blank_mask, img, cfg.blank_window).any():
                kept.append(img)
            _clock(t, "embedding", embed, img[None])
        groups = {}
        for k, img in enumerate(kept):
            hists = []
            net_in = {}  # the networks' 10 m input, made once per image as the build does
            for v in dcfg.methods:
                name = f"harmonize {v.label}"
                if v.method == "identity":
                    hr = img
                elif v.method.startswith("gamma"):
                    gam = gamma_values(v.method, v.percentile, pooled=v.pooled, model=dcfg.model)
                    hr = _clock(t, name, hnp.apply_gamma, img, gam, quantize=v.quantize)
                else:
                    if v.at not in net_in:
                        net_in[v.at] = _clock(t, "network input (10 m)", network_input, img[None], v)
                    out = _clock(t, name, network_forward, net_in[v.at], v, batch_size=1)
                    hr = _clock(t, name, network_finish, img[None], out, v)[0]
                lr = _clock(t, "blur/downsample", onp.blur_downsample, hr, dcfg.blur.sigma)
                key = 12345 + k
                lr = lr + _clock(t, "noise", onp.real_noise, lr, table, key=key)
                hists.append(_clock(t, "histograms", hnp.histc, lr))
            groups[f"img{k}"] = (img, np.stack(hists))
        if groups:
            _clock(t, "write", _write_synthetic, writer, job, groups, [v.label for v in dcfg.methods])
        per_roi.append(t)
    _commit(writer, per_roi)
    return _mean_times(per_roi)


def floor_cross_sensor(cands, cfg, tmp: Path, reader) -> dict:
    """Per ROI, each kernel of the cross-sensor build timed alone, summed; mean over ROIs (first pair)."""
    import dask

    from sen2naip_xr.harmonize import _numpy as hnp
    from sen2naip_xr.load import load_pairs
    from sen2naip_xr.ops import _numpy as onp
    from sen2naip_xr.pipeline._qa import misalignment, shift_image, spectral_angle, to_10m
    from sen2naip_xr.store import DatasetStore

    store = DatasetStore(tmp / "floor-cross.zarr")
    store.init({})
    writer = store.writer("cross-sensor", config={})
    jobs, _ = plan_jobs(cands)
    per_roi = []
    for job in jobs:
        t: dict[str, float] = {}

        def read(job=job):
            with dask.config.set(scheduler="sync"):
                return dask.compute(*load_pairs(job.rows, items=job.items, signer=NoSigner(), reader=reader))

        naip, s2, scl = _clock(t, "read", read)
        naip_t = np.asarray(naip.values[0, 0], np.float32)
        s2_t = np.asarray(s2.values[0, 0], np.float32)
        _clock(t, "cloud fraction", lambda scl=scl: (np.isin(scl.values, [3, 8, 9, 10])).mean())
        _clock(t, "blank check", onp.blank_mask, naip_t, 19)
        naip_h = _clock(t, "histogram match", onp.histogram_match, naip_t, s2_t)
        lr_h = _clock(t, "QA (blur, shift, angle)", to_10m, naip_h, sigma=cfg.sigma)
        qa1, sh = _clock(t, "QA (blur, shift, angle)", misalignment, lr_h, s2_t)
        _clock(t, "QA (blur, shift, angle)", lambda a, b, c: spectral_angle(shift_image(a, b), c), lr_h, sh, s2_t)
        hist = _clock(t, "histograms", hnp.histc, s2_t)
        _clock(t, "write", _write_cross_sensor, writer, job, s2_t, hist, naip_h, naip_t)
        per_roi.append(t)
    _commit(writer, per_roi)
    return _mean_times(per_roi)


def _write(writer, kind: str, name: str, groups: dict, attrs: dict) -> None:
    """One ROI written as the builders write it: into a sink, merged into the run (committed once at the end,
    see :func:`_commit`)."""
    sink = writer.sink()
    sink.write_roi(kind, name, groups, attrs)
    writer.collect(sink)


def _write_cross_sensor(writer, job, s2_t, hist, naip_h, naip_t) -> None:
    """The write of a cross-sensor ROI: the builder's datasets (``roi_datasets``) and the ROI's metadata,
    made and written."""
    from sen2naip_xr.pipeline.cross_sensor import roi_datasets
    from sen2naip_xr.store import roi_metadata

    _write(writer, "cross-sensor", job.name, roi_datasets(job.roi, s2_t, hist, naip_h, naip_t),
           roi_metadata(job.roi, name=job.name))


def _write_synthetic(writer, job, images: dict, labels: list[str]) -> None:
    """The write of a synthetic ROI: the builder's group of each image (``image_dataset``) and the ROI's
    metadata, made and written."""
    from sen2naip_xr.pipeline.synthetic import image_dataset
    from sen2naip_xr.store import roi_metadata

    groups = {key: image_dataset(job.roi, img, hists, labels) for key, (img, hists) in images.items()}
    _write(writer, "synthetic", job.name, groups, roi_metadata(job.roi, name=job.name))


def _commit(writer, per_roi: list[dict]) -> None:
    """The run's commit, its wall and CPU time shared out over the ROIs' ``write``."""
    t: dict[str, float] = {}
    _clock(t, "write", writer.commit, "floor")
    for r in per_roi:
        r["write"] = r.get("write", 0.0) + t["write"] / max(len(per_roi), 1)
        r["cpu"] = r.get("cpu", 0.0) + t["cpu"] / max(len(per_roi), 1)


def _mean_times(per_roi: list[dict]) -> dict:
    names = sorted({k for t in per_roi for k in t} - {"cpu"})
    n = max(len(per_roi), 1)
    mean = {k: round(sum(t.get(k, 0.0) for t in per_roi) / n, 4) for k in names}
    return {"rois": len(per_roi), "kernels_s": mean, "floor_s": round(sum(mean.values()), 4),
            "floor_cpu_s": round(sum(t.get("cpu", 0.0) for t in per_roi) / n, 4)}


def bench_floor(tmp: Path, quick: bool, repeats: int) -> dict:
    """Build on one worker vs the sum of its kernels timed alone (same ROIs, same run), bytes read per ROI;
    ``repeats`` times (build, then floor), the run with the median wall ratio reported, every run's ratios
    listed."""
    import torch

    cs_size, sy_size = (128, 256) if quick else (484, 1100)
    cs, sy = _candidates(tmp / "cat-floor", (3, 2) if quick else (16, 8), (cs_size, sy_size))
    out = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as on a Dask worker (OMP_NUM_THREADS=1)
    try:
        for kind, cands, cfg, px in (("cross-sensor", cs, s2n.CrossSensorConfig(), cs_size),
                                     ("synthetic", sy, s2n.SyntheticConfig(device="cpu"), sy_size)):
            runs = []
            for rep in range(repeats):
                run_dir = tmp / f"floor-{kind}-{rep}"
                run_dir.mkdir()
                log = run_dir / "reads.log"
                cpu: dict = {}
                seconds, _, n = _time_build(kind, cands, run_dir / "build.zarr", 1, cfg,
                                            reader=CountingReader(str(log)), cpu=cpu)
                reads = _read_log(log)
                fl = (floor_synthetic if kind == "synthetic" else floor_cross_sensor)(
                    cands, cfg, run_dir, CountingReader(str(run_dir / "floor-reads.log")))
                per_roi = seconds / max(n, 1)
                runs.append({"roi_px": px, "rois": n, "build_s_per_roi": round(per_roi, 4), **fl,
                             "build_over_floor": round(per_roi / fl["floor_s"], 2),
                             "build_cpu_s_per_roi": round(cpu["workers_s"] / max(n, 1), 4),
                             "build_over_floor_cpu": round(cpu["workers_s"] / max(n, 1) / fl["floor_cpu_s"], 2),
                             "asset_windows_read": reads["windows"],
                             "max_reads_per_window": reads["max_reads_per_window"],
                             "file_mb_read_per_roi": round(reads["file_bytes"] / max(n, 1) / 1e6, 2),
                             "decoded_mb_per_roi": round(reads["decoded_bytes"] / max(n, 1) / 1e6, 2)})
                print(f"  {kind} run {rep + 1}/{repeats}: build/floor {runs[-1]['build_over_floor']}x wall, "
                      f"{runs[-1]['build_over_floor_cpu']}x CPU", flush=True)
            median = sorted(runs, key=lambda r: r["build_over_floor"])[len(runs) // 2]
            out[kind] = {**median, "runs": [{k: r[k] for k in ("build_s_per_roi", "floor_s", "build_over_floor",
                                                               "build_cpu_s_per_roi", "floor_cpu_s",
                                                               "build_over_floor_cpu")} for r in runs]}
    finally:
        torch.set_num_threads(threads)
    return out


def bench_gpu() -> dict | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    import xarray as xr

    out = {"device": torch.cuda.get_device_name(0)}
    imgs = xr.DataArray(np.stack([s2n.scenes.make_scene(1100, i) for i in range(64)]), dims=("image", "band", "y", "x"))
    for bs in (1, 8, 32, 64):
        s2n.harmonize(imgs.isel(image=slice(0, bs)), "unet", device="cuda", batch_size=bs)  # warm up, load once
        t0 = time.perf_counter()
        s2n.harmonize(imgs, "unet", device="cuda", batch_size=bs)
        torch.cuda.synchronize()
        out[f"batch_{bs}_images_per_s"] = round(64 / (time.perf_counter() - t0), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "build.json"))
    ap.add_argument("--repeats", type=int, default=None,
                    help="builds per pipeline and worker count, alternating (default 3; 1 with --quick)")
    ap.add_argument("--only", choices=["floor", "throughput", "memory", "graph", "gpu"], action="append")
    args = ap.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    tmp = Path(tempfile.mkdtemp(prefix="s2n-bench-"))
    only = set(args.only or ["floor", "throughput", "memory", "graph", "gpu"])
    res: dict = {"machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
                            f"{__import__('os').cpu_count()} cores", "version": s2n.__version__, "quick": args.quick}
    try:
        res["cpu"] = bench_cpu()
        print(f"cpu: 2 processes do {res['cpu']['parallel_speedup_ceiling']}x the work of 1 "
              "(the ceiling of any 2-worker speedup on this machine)")
        if "floor" in only:
            res["floor"] = bench_floor(tmp, args.quick, repeats)
            for kind, f in res["floor"].items():
                print(f"{kind} ({f['roi_px']} px, {f['rois']} ROIs, 1 worker, the median of {len(f['runs'])} run(s)): build {f['build_s_per_roi']:.3f} s/ROI, "
                      f"floor {f['floor_s']:.3f} s/ROI -> {f['build_over_floor']}x (target <= 1.3x); CPU time "
                      f"{f['build_cpu_s_per_roi']:.3f} vs {f['floor_cpu_s']:.3f} s/ROI -> {f['build_over_floor_cpu']}x; "
                      f"{f['file_mb_read_per_roi']} MB read from files per ROI, at most "
                      f"{f['max_reads_per_window']} read(s) per asset window (one capture of one ROI)")
                for k, v in sorted(f["kernels_s"].items(), key=lambda kv: -kv[1]):
                    print(f"    {k:<28}{1e3 * v:9.1f} ms")
        if "graph" in only:
            res["graph"] = bench_graph(tmp, args.quick)
            g = res["graph"]
            print(f"graph: {g['rois']} ROIs planned in {g['plan_jobs_s']} s; load_pairs graph "
                  f"({g['load_graph_tasks']} tasks) in {g['load_graph_s']} s")
        if "throughput" in only:
            res["throughput"] = bench_throughput(tmp, args.quick, repeats)
            print(f"{'pipeline':<14}{'ROI px':>7}{'runs':>6}{'2 vs 1 workers':>16}{'kernel ceiling':>16}"
                  f"{'of ceiling':>12}{'same bytes':>12}   (medians)")
            for kind, r in res["throughput"].items():
                print(f"{kind:<14}{r['roi_px']:>7}{len(r['runs']):>6}{r['speedup_2_vs_1_median']:>15}x"
                      f"{r['kernel_ceiling_median']:>15}x{r['of_kernel_ceiling_median']:>12}"
                      f"{str(r['identical_bytes_all_runs']):>12}")
        if "memory" in only:
            res["memory"] = bench_memory(tmp, args.quick)
            m = res["memory"]
            a, b = [k for k in m if isinstance(k, int)]
            print(f"peak worker RSS: {a} ROIs {m[a]['peak_worker_rss_mib']} MiB, {b} ROIs "
                  f"{m[b]['peak_worker_rss_mib']} MiB (growth {m['growth_pct']} %)")
        if "gpu" in only:
            res["gpu"] = bench_gpu()
            print(f"gpu: {res['gpu'] or 'no CUDA device: not measured'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
