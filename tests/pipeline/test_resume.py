"""Crash safety, on a local folder and on Azurite: SIGKILL of the whole job at random *events* (after the
N-th ROI merged, or the N-th commit), then a rerun, gives the content of an uninterrupted run; a worker
killed mid-run changes nothing either."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap

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
    import os, signal, sys
    import sen2naip_xr as s2n
    from sen2naip_xr.demo._catalog import build_demo_catalog
    from sen2naip_xr.load import NoSigner


    def main():
        root, out, sched, kill_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
        cat = build_demo_catalog(root, n_cross_sensor=5, n_synthetic=3, cross_sensor_size=128, synthetic_size=256)
        run = s2n.RunConfig(scheduler=None if sched == "local" else sched, n_workers=2, progress=False,
                            commit_every=1)
        cs = s2n.search_pairs(cat.cross_sensor_rois, datetime=cat.datetime, client=cat.client, progress=False)
        sy = s2n.search_pairs(cat.synthetic_rois, kind="synthetic", datetime=cat.datetime, client=cat.client,
                              progress=False)
        attrs = {"demo_truth": cat.truth.to_dict()}
        events = []

        def on_event(event, info):
            events.append(event)
            if len(events) == kill_at:  # the driver and every worker at once, at a known point of the run
                os.killpg(os.getpgid(0), signal.SIGKILL)

        s2n.build_cross_sensor(cs, out, config=s2n.CrossSensorConfig(max_spectral_angle_deg=6.0), run=run,
                               signer=NoSigner(), root_attrs=attrs, on_event=on_event)
        s2n.build_synthetic(sy, out, config=s2n.SyntheticConfig(methods=("identity", "gamma_mvn"),
                            keep_fraction=0.75, device="cpu"), run=run, signer=NoSigner(), root_attrs=attrs,
                            on_event=on_event)
        print("done", len(events))


    if __name__ == "__main__":  # LocalCluster workers are spawned: they import this file
        main()
""")



def _run(tmp_path, root, out, sched="sync", kill_at=0, timeout=300):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    proc = subprocess.Popen([sys.executable, str(script), str(root), str(out), sched, str(kill_at)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    stdout, stderr = proc.communicate(timeout=timeout)
    return proc.returncode, stdout, stderr


def _location(where, tmp_path, azurite, name):
    return str(tmp_path / f"{name}.zarr") if where == "local" else azurite.url(f"{name}.zarr")


@pytest.fixture(params=["local", "az"])
def where(request):
    if request.param == "az":
        request.getfixturevalue("azurite")
    return request.param


@pytest.mark.slow
def test_sigkill_at_random_events_then_rerun_gives_the_uninterrupted_store(tmp_path, demo_catalog, where, request):
    azurite = request.getfixturevalue("azurite") if where == "az" else None
    root = demo_catalog.root
    ref = _location(where, tmp_path, azurite, "ref")
    rc, out, err = _run(tmp_path, root, ref)
    assert rc == 0, err[-3000:]
    n_events = int(out.split()[-1])
    reference = DatasetStore(ref).digest()
    points = sorted(random.Random(8).sample(range(2, n_events), 3))
    for k, (at, sched) in enumerate(zip(points, ("sync", "local", "sync"), strict=True)):
        out_k = _location(where, tmp_path, azurite, f"killed{k}")
        rc, _, err = _run(tmp_path, root, out_k, sched, kill_at=at)
        assert rc == -signal.SIGKILL, f"not killed at event {at}: {err[-2000:]}"
        rc, _, err = _run(tmp_path, root, out_k)  # the rerun
        assert rc == 0, err[-3000:]
        assert DatasetStore(out_k).digest() == reference, f"kill at event {at}/{n_events} ({sched}) changed the store"
        assert DatasetStore(out_k).verify().empty


class SlowReader:
    """The default reader, 0.3 s slower per asset: the run lasts long enough to kill a worker in it."""

    def __call__(self, url, **kw):
        import time

        from sen2naip_xr.load import OdcReader

        time.sleep(0.3)
        return OdcReader()(url, **kw)


@pytest.mark.slow
def test_killing_a_worker_mid_run_still_completes_with_the_same_content(tmp_path, cs_cands, sy_cands, signer, where,
                                                                         request):
    from distributed import Client, LocalCluster

    azurite = request.getfixturevalue("azurite") if where == "az" else None
    cfg = CrossSensorConfig(max_spectral_angle_deg=6.0)
    scfg = SyntheticConfig(methods=("identity", "gamma_mvn"), keep_fraction=0.75, device="cpu", rois_per_task=1)
    sync = RunConfig(scheduler="sync", progress=False)
    ref = tmp_path / "ref.zarr"
    build_cross_sensor(cs_cands, ref, config=cfg, run=sync, signer=signer)
    build_synthetic(sy_cands, ref, config=scfg, run=sync, signer=signer)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        out = _location(where, tmp_path, azurite, "killed")
        killed: list[int] = []

        def on_event(event, info):  # the first ROI merged by the driver: kill a worker now
            if event == "written" and not killed:
                pid = next(iter(client.run(os.getpid).values()))
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        run = RunConfig(progress=False, commit_every=1)
        build_cross_sensor(cs_cands, out, config=cfg, run=run, signer=signer, reader=SlowReader(), client=client,
                           on_event=on_event)
        build_synthetic(sy_cands, out, config=scfg, run=run, signer=signer, reader=SlowReader(), client=client)
    assert killed, "no worker was killed"
    assert DatasetStore(out).digest() == DatasetStore(ref).digest()


def test_resumed_unet_batches_give_the_same_bytes(tmp_path, sy_cands, signer):
    """The U-Net's floats depend on the batch it runs in and on torch's thread count: batches are fixed by
    the ROI list (an ROI redone after a crash is computed in its original batch) and it runs on one thread."""
    cfg = SyntheticConfig(methods=("identity", "unet"), device="cpu", rois_per_task=2, store_lr=True)
    sync = RunConfig(scheduler="sync", progress=False)
    out = tmp_path / "s.zarr"
    build_synthetic(sy_cands, out, config=cfg, run=sync, signer=signer)
    before = DatasetStore(out).digest()
    # as if killed before its write; ROI_00001 shares its batch
    DatasetStore(out).remove_rois("synthetic", ["ROI_00002"], message="test: remove")
    res = build_synthetic(sy_cands, out, config=cfg, run=sync, signer=signer)
    assert res.written == ["ROI_00002"]
    assert DatasetStore(out).digest() == before
    # and on a LocalCluster worker (one torch thread there, one in process: see one_torch_thread)
    build_synthetic(sy_cands, tmp_path / "w.zarr", config=cfg, run=RunConfig(n_workers=1, progress=False),
                    signer=signer)
    assert DatasetStore(tmp_path / "w.zarr").digest() == before
