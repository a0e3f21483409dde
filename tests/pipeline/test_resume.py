"""Crash safety: SIGKILL of the whole job at several moments, then a rerun, gives the bytes of an
uninterrupted run; a worker killed mid-run changes nothing either."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from sen2naip_xr.pipeline import (
    CrossSensorConfig,
    RunConfig,
    SyntheticConfig,
    build_cross_sensor,
    build_synthetic,
)
from sen2naip_xr.store import DatasetStore

DRIVER = textwrap.dedent("""
    import sys
    import sen2naip_xr as s2n
    from sen2naip_xr.demo._catalog import build_demo_catalog
    from sen2naip_xr.load import NoSigner

    root, out, sched = sys.argv[1], sys.argv[2], sys.argv[3]
    cat = build_demo_catalog(root, n_cross_sensor=5, n_synthetic=3, cross_sensor_size=128, synthetic_size=256)
    run = s2n.RunConfig(scheduler=None if sched == "local" else sched, n_workers=2, progress=False)
    cs = s2n.search_pairs(cat.cross_sensor_rois, datetime=cat.datetime, client=cat.client, progress=False)
    sy = s2n.search_pairs(cat.synthetic_rois, kind="synthetic", datetime=cat.datetime, client=cat.client, progress=False)
    attrs = {"demo_truth": cat.truth.to_dict()}
    s2n.build_cross_sensor(cs, out, config=s2n.CrossSensorConfig(max_spectral_angle_deg=6.0), run=run,
                           signer=NoSigner(), root_attrs=attrs)
    s2n.build_synthetic(sy, out, config=s2n.SyntheticConfig(methods=("identity", "gamma_mvn", "vae"),
                        keep_fraction=0.75, device="cpu"), run=run, signer=NoSigner(), root_attrs=attrs)
    print("done")
""")


def _start(tmp_path, root, out, sched="sync"):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    return subprocess.Popen([sys.executable, str(script), str(root), str(out), sched], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _finish(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    assert "done" in out


@pytest.mark.slow
def test_sigkill_at_any_moment_then_rerun_gives_the_uninterrupted_bytes(tmp_path, demo_catalog):
    root = demo_catalog.root
    t0 = time.perf_counter()
    _finish(_start(tmp_path, root, tmp_path / "ref.zarr"))
    duration = time.perf_counter() - t0
    reference = DatasetStore(tmp_path / "ref.zarr").digest()
    interrupted = 0
    for k, (frac, sched) in enumerate(((0.35, "sync"), (0.6, "sync"), (0.85, "sync"), (0.7, "local"))):
        out = tmp_path / f"killed{k}.zarr"
        proc = _start(tmp_path, root, out, sched)
        time.sleep(frac * duration * (2.0 if sched == "local" else 1.0))
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and every worker at once
        proc.wait()
        syn = out / "synthetic" / "zarr.json"
        interrupted += not syn.exists() or "n_rois" not in DatasetStore(out).attrs("synthetic")
        _finish(_start(tmp_path, root, out))
        assert DatasetStore(out).digest() == reference, f"kill {k} at {frac:.0%} ({sched}) changed the store"
        assert not [p for p in (out / "_staging").iterdir() if p.name != "zarr.json"]
    assert interrupted >= 3  # the kills landed before the end of the job


class SlowReader:
    """The default reader, 0.3 s slower per asset: the run lasts long enough to kill a worker in it."""

    def __call__(self, url, **kw):
        from sen2naip_xr.load import OdcReader

        time.sleep(0.3)
        return OdcReader()(url, **kw)


@pytest.mark.slow
def test_killing_a_worker_mid_run_still_completes_with_the_same_bytes(tmp_path, cs_cands, sy_cands, signer):
    from distributed import Client, LocalCluster

    cfg = CrossSensorConfig(max_spectral_angle_deg=6.0)
    scfg = SyntheticConfig(methods=("identity", "gamma_mvn"), keep_fraction=0.75, device="cpu", rois_per_task=1)
    sync = RunConfig(scheduler="sync", progress=False)
    build_cross_sensor(cs_cands, tmp_path / "ref.zarr", config=cfg, run=sync, signer=signer)
    build_synthetic(sy_cands, tmp_path / "ref.zarr", config=scfg, run=sync, signer=signer)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        out = tmp_path / "killed.zarr"
        killed: list[int] = []

        def killer():
            part = out / "cross-sensor"
            while not any(p.name.startswith("ROI_") for p in part.glob("*")) if part.exists() else True:
                time.sleep(0.05)
            pid = next(iter(client.run(os.getpid).values()))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

        t = threading.Thread(target=killer, daemon=True)
        t.start()
        run = RunConfig(progress=False)
        build_cross_sensor(cs_cands, out, config=cfg, run=run, signer=signer, reader=SlowReader(), client=client)
        build_synthetic(sy_cands, out, config=scfg, run=run, signer=signer, reader=SlowReader(), client=client)
        t.join(5)
    assert killed, "no worker was killed"
    assert DatasetStore(out).digest() == DatasetStore(tmp_path / "ref.zarr").digest()


def test_resumed_unet_batches_give_the_same_bytes(tmp_path, sy_cands, signer):
    """The U-Net's floats depend on the batch it runs in and on torch's thread count: batches are fixed by
    the ROI list (an ROI redone after a crash is computed in its original batch) and it runs on one thread."""
    import shutil

    cfg = SyntheticConfig(methods=("identity", "unet"), device="cpu", rois_per_task=2, store_lr=True)
    sync = RunConfig(scheduler="sync", progress=False)
    out = tmp_path / "s.zarr"
    build_synthetic(sy_cands, out, config=cfg, run=sync, signer=signer)
    before = DatasetStore(out).digest()
    shutil.rmtree(out / "synthetic" / "ROI_00002")  # as if killed before its write; ROI_00001 shares its batch
    res = build_synthetic(sy_cands, out, config=cfg, run=sync, signer=signer)
    assert res.written == ["ROI_00002"]
    assert DatasetStore(out).digest() == before
    # and on a LocalCluster worker (one torch thread there, one in process: see _one_torch_thread)
    build_synthetic(sy_cands, tmp_path / "w.zarr", config=cfg, run=RunConfig(n_workers=1, progress=False),
                    signer=signer)
    assert DatasetStore(tmp_path / "w.zarr").digest() == before
