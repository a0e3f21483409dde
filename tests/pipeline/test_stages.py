"""The staged synthetic build: each capture read once, network inference in its own (GPU) tasks."""

from __future__ import annotations

import logging
import threading
from collections import Counter

import numpy as np
import pytest

from sen2naip_xr.errors import InputError
from sen2naip_xr.pipeline import RunConfig, SyntheticConfig, build_synthetic
from sen2naip_xr.pipeline._stages import default_net_batch, roi_batches
from sen2naip_xr.store import DatasetStore

NETS = ("identity", "gamma_mvn", "unet", "vae")


class CountingReader:
    """The default reader, counting reads per asset URL (in this process)."""

    def __init__(self) -> None:
        self.calls: Counter = Counter()
        self.bytes = 0
        self._lock = threading.Lock()

    def __call__(self, url, **kw):
        from sen2naip_xr.load import OdcReader

        pix = OdcReader()(url, **kw)
        with self._lock:
            self.calls[url] += 1
            self.bytes += pix.nbytes
        return pix


@pytest.mark.parametrize("keep_fraction", [1.0, 0.9999])  # each ROI in one task; reads kept past the filter
def test_each_capture_is_read_once(tmp_path, sy_cands, signer, keep_fraction):
    reader = CountingReader()
    cfg = SyntheticConfig(methods=NETS, device="cpu", net_batch_size=2, keep_fraction=keep_fraction)
    res = build_synthetic(sy_cands, tmp_path / "s.zarr", config=cfg, run=RunConfig(scheduler="sync", progress=False),
                          signer=signer, reader=reader)
    assert res.written
    n_captures = len(sy_cands.pairs)
    assert len(reader.calls) == n_captures, reader.calls  # every capture was read ...
    assert set(reader.calls.values()) == {1}, reader.calls  # ... once, by the embedding round only


def _hetero_cluster():
    """One plain worker and one that declares a GPU resource (CPU-only machine: it runs torch on CPU)."""
    from distributed import Nanny, Scheduler, SpecCluster

    workers = {"cpu": {"cls": Nanny, "options": {"nthreads": 1, "memory_limit": "3GiB"}},
               "gpu": {"cls": Nanny, "options": {"nthreads": 1, "memory_limit": "3GiB", "resources": {"GPU": 1}}}}
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": ":0"}}
    return SpecCluster(workers=workers, scheduler=scheduler, silence_logs=logging.ERROR)


def test_network_tasks_run_on_the_gpu_worker_only_and_the_bytes_match(tmp_path, sy_cands, signer):
    from distributed import Client, get_task_stream

    cfg = SyntheticConfig(methods=NETS, device="cpu", net_batch_size=2, rois_per_task=1, store_lr=True)
    build_synthetic(sy_cands, tmp_path / "sync.zarr", config=cfg, run=RunConfig(scheduler="sync", progress=False),
                    signer=signer)
    with _hetero_cluster() as cluster, Client(cluster) as client:
        info = client.scheduler_info()["workers"]
        gpu = [a for a, w in info.items() if w.get("resources", {}).get("GPU")]
        assert len(gpu) == 1 and len(info) == 2
        with get_task_stream(client) as ts:
            res = build_synthetic(sy_cands, tmp_path / "dist.zarr", config=cfg, run=RunConfig(progress=False),
                                  signer=signer, client=client)
        placed = [(str(t["key"]), t["worker"]) for t in ts.data]
    assert res.written
    net = [(k, w) for k, w in placed if k.startswith("synthetic-net-")]
    other = [(k, w) for k, w in placed if not k.startswith("synthetic-net-")]
    n_images = sum(len(v) for v in sy_cands.pairs.groupby("roi_id").groups.values())
    assert len([k for k, _ in net if not k.startswith("synthetic-net-batch-size")]) >= max(2, n_images // 2 - 1)
    assert {w for _, w in net} == set(gpu), net
    kinds = {k.split("-")[1] for k, _ in other}
    assert {"read", "netin", "finish"} <= kinds, kinds
    assert gpu[0] not in {w for _, w in other}, [(k, w) for k, w in other if w == gpu[0]]
    assert DatasetStore(tmp_path / "dist.zarr").digest() == DatasetStore(tmp_path / "sync.zarr").digest()


def test_staged_networks_equal_the_in_process_harmonizers(tmp_path, sy_cands, signer):
    """The VAE is batch-independent: a staged build's VAE HR equals harmonize(..., "vae") on the stored NAIP
    to the byte; the U-Net equals it to its batch tolerance (batch composition, ~2e-7)."""
    import xarray as xr

    import sen2naip_xr as s2n

    cfg = SyntheticConfig(methods=("unet", "vae"), device="cpu", net_batch_size=3, store_lr=True, noise="none")
    out = tmp_path / "s.zarr"
    build_synthetic(sy_cands, out, config=cfg, run=RunConfig(scheduler="sync", progress=False), signer=signer)
    name = DatasetStore(out).rois("synthetic")[0]
    groups = s2n.open_roi(out, "synthetic", name)
    assert groups
    ds = groups[sorted(groups)[0]]
    img, lr = ds["hr"], ds["lr"]
    for label, method in (("vae", "vae"), ("unet", "unet")):
        want = s2n.blur_downsample(s2n.harmonize(xr.DataArray(img.values, dims=("band", "y", "x")), method,
                                                 device="cpu")).values
        got = lr.sel(harmonizer=label).values
        if method == "vae":
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, atol=1e-5)


def test_net_batch_size_option():
    assert default_net_batch("cpu") == 2
    assert SyntheticConfig(net_batch_size=16).net_batch_size == 16
    for bad in (0, -1, 2.5, True, "8"):
        with pytest.raises(InputError, match="net_batch_size"):
            SyntheticConfig(net_batch_size=bad)


def test_network_batches_hold_whole_rois_up_to_the_size():
    """Batches keep the images' order, never exceed the size, and split an ROI only when it alone exceeds it."""
    from types import SimpleNamespace

    jobs = [SimpleNamespace(name=n) for n in "abcdef"]
    keep = {"a": ["early", "late"], "b": ["late"], "c": [], "d": ["early", "late"], "e": ["early"],
            "f": ["early", "late"]}

    def names(batches):
        return [[f"{j.name}/{r}" for j, r in b] for b in batches]  # (a generator)

    assert names(roi_batches(jobs, keep, 2)) == [["a/early", "a/late"], ["b/late"], ["d/early", "d/late"],
                                                 ["e/early"], ["f/early", "f/late"]]
    assert names(roi_batches(jobs, keep, 3)) == [["a/early", "a/late", "b/late"], ["d/early", "d/late", "e/early"],
                                                 ["f/early", "f/late"]]
    assert names(roi_batches(jobs, keep, 1)) == [["a/early"], ["a/late"], ["b/late"], ["d/early"], ["d/late"],
                                                 ["e/early"], ["f/early"], ["f/late"]]
    assert names(roi_batches(jobs, keep, 64)) == [[f"{n}/{r}" for n in "abcdef" for r in keep[n]]]
    assert list(roi_batches(jobs, {n: [] for n in "abcdef"}, 2)) == []


def test_held_pixels_round_trip_exactly():
    """The read stage holds 8-bit NAIP as uint8 levels: unpacked, the same float32 bytes; other data as is."""
    from sen2naip_xr.ops._numpy import _LEVELS8
    from sen2naip_xr.pipeline._stages import _pack, _unpack

    levels = np.random.default_rng(0).integers(0, 256, (2, 4, 30, 40)).astype(np.uint8)
    naip = _LEVELS8[levels]
    packed = _pack(naip)
    assert packed.dtype == np.uint8 and np.array_equal(packed, levels)
    assert _unpack(packed).dtype == np.float32 and np.array_equal(_unpack(packed), naip)
    other = naip.copy()
    other[1, 2, 3, 4] = 0.1234
    assert _pack(other) is other and _unpack(other) is other


def test_streamed_build_writes_what_the_filtered_build_writes(tmp_path, sy_cands, signer):
    """keep_fraction=1 keeps every usable image, so each ROI goes on to the networks and its finish once it
    is read (no barrier); a keep_fraction that also keeps every image here goes through the diversity
    filter's barrier: the same ROIs, the same arrays, the same images dropped."""
    import sen2naip_xr as s2n

    run = RunConfig(scheduler="sync", progress=False)
    out = {}
    for name, frac in (("stream", 1.0), ("barrier", 0.9999)):
        cfg = SyntheticConfig(methods=NETS, device="cpu", store_lr=True, keep_fraction=frac)
        res = build_synthetic(sy_cands, tmp_path / f"{name}.zarr", config=cfg, run=run, signer=signer)
        out[name] = (tmp_path / f"{name}.zarr", res)
    (a, ra), (b, rb) = out["stream"], out["barrier"]
    assert ra.written and sorted(ra.written) == sorted(rb.written) and sorted(ra.failed) == sorted(rb.failed)
    for roi in ra.written:
        ga, gb = s2n.open_roi(a, "synthetic", roi), s2n.open_roi(b, "synthetic", roi)
        assert sorted(ga) == sorted(gb)
        for key in ga:
            for var in ("hr", "hist", "lr"):
                np.testing.assert_array_equal(ga[key][var].values, gb[key][var].values)
    ia, ib = DatasetStore(a).index("synthetic"), DatasetStore(b).index("synthetic")
    assert {n: e["status"] for n, e in ia.items()} == {n: e["status"] for n, e in ib.items()}


def _started_keys_same_bytes(cluster, cfg, tmp_path, sy_cands, signer) -> list[str]:
    """Build on ``cluster`` and in process: the bytes must match; the keys of the cluster's tasks in the order
    they started."""
    from distributed import Client, get_task_stream

    with Client(cluster) as client, get_task_stream(client) as ts:
        res = build_synthetic(sy_cands, tmp_path / "s.zarr", config=cfg, run=RunConfig(progress=False),
                              signer=signer, client=client)
    assert res.written
    build_synthetic(sy_cands, tmp_path / "sync.zarr", config=cfg, run=RunConfig(scheduler="sync", progress=False),
                    signer=signer)
    assert DatasetStore(tmp_path / "s.zarr").digest() == DatasetStore(tmp_path / "sync.zarr").digest()
    return [str(t["key"]) for t in sorted(ts.data, key=lambda t: t["startstops"][0]["start"])]


def test_cpu_cluster_runs_each_roi_in_one_task_in_order_same_bytes(tmp_path, sy_cands, signer):
    """Without a GPU worker, with the U-Net on CPU and keep_fraction=1, each group of ``rois_per_task`` ROIs
    goes through every stage in one task (no read, network or finish tasks), the groups in plan order,
    with the bytes of an in-process run."""
    from sen2naip_xr.pipeline import local_cluster
    from sen2naip_xr.pipeline.synthetic import plan_synthetic

    cfg = SyntheticConfig(methods=("identity", "unet", "vae"), device="cpu", rois_per_task=2)
    with local_cluster(1, memory_limit="3GiB") as cluster:
        started = _started_keys_same_bytes(cluster, cfg, tmp_path, sy_cands, signer)
    started = [k for k in started if not k.startswith("synthetic-net-device-")]
    names = [j.name for j in plan_synthetic(sy_cands)[0]]
    assert len(names) == 3
    want = [f"synthetic-roi-{names[0]}-{names[1]}-", f"synthetic-roi-{names[2]}-{names[2]}-"]
    assert len(started) == 2 and all(k.startswith(w) for k, w in zip(started, want, strict=True)), started


def test_staged_reads_run_in_roi_order_same_bytes(tmp_path, sy_cands, signer):
    """Dask breaks equal priorities in no fixed order; the streamed stages take the ROIs in plan order, so
    the reads run in that order (one worker, which declares a GPU: the staged build), with the bytes of an
    in-process run (which runs each ROI in one task)."""
    from distributed import LocalCluster

    from sen2naip_xr.pipeline.synthetic import plan_synthetic

    cfg = SyntheticConfig(methods=("identity", "unet"), device="cpu", rois_per_task=1)
    with LocalCluster(n_workers=1, threads_per_worker=1, resources={"GPU": 1}, memory_limit="3GiB",
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster:
        started = _started_keys_same_bytes(cluster, cfg, tmp_path, sy_cands, signer)
    assert [k for k in started if k.startswith("synthetic-netin-")]  # the GPU worker is sent inputs
    reads = [k for k in started if k.startswith("synthetic-read-") and "-summary-" not in k]
    names = [j.name for j in plan_synthetic(sy_cands)[0]]
    assert len(names) > 2
    assert reads == [next(k for k in reads if k.startswith(f"synthetic-read-{n}-")) for n in names]
