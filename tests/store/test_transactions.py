"""Transactions and identity: concurrent builders, reruns with another ROI list / seed / config, root
attributes never silently replaced, --repair, a memory store on a cluster, and a cluster whose worker cannot
see the driver's folder (item 7) but builds into az:// fine."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

import sen2naip_xr as s2n
from sen2naip_xr.cli import main
from sen2naip_xr.pipeline import CrossSensorConfig, RunConfig, build_cross_sensor
from sen2naip_xr.store import DatasetStore

SYNC = RunConfig(scheduler="sync", progress=False)
CS = CrossSensorConfig(max_spectral_angle_deg=6.0)


@pytest.fixture(params=["local", "az"])
def out_url(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "race.zarr")
    return request.getfixturevalue("azurite").url("race.zarr")


def test_concurrent_builders_end_consistent_or_refused(out_url, tmp_path):
    """The issue's race: two `--catalog embedded` builds on one --out at the same time."""
    env = {**os.environ, "SEN2NAIP_XR_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-c", "import sys; from sen2naip_xr.cli import main; sys.exit(main(sys.argv[1:]))", "build", "cross-sensor", "--catalog", "embedded", "--rois", "4",
           "--out", out_url, "--scheduler", "sync", "--no-progress"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    codes = [p.returncode for p in procs]
    assert 0 in codes, results
    for code, (_, err) in zip(codes, results, strict=True):
        assert code == 0 or "another build" in err and "at the same time" in err, err[-2000:]
    st = DatasetStore(out_url)
    assert st.verify().empty
    # whatever the interleaving, a rerun ends with the content of one clean build
    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    clean = str(tmp_path / "clean.zarr")
    subprocess.run([*cmd[:-5], "--out", clean, "--scheduler", "sync", "--no-progress"], check=True,
                   capture_output=True, env=env, timeout=600)
    assert DatasetStore(out_url).digest() == DatasetStore(clean).digest()
    info = s2n.summarize(out_url)["parts"]["cross-sensor"]
    assert info["written"] + info["failed"] == 4


def test_the_loser_of_a_create_race_waits_for_the_winners_repository(tmp_path, monkeypatch):
    """Two builders create one store: the loser's create fails on a prefix the winner has begun to write
    ("repositories can only be created in clean prefixes", seen on az://) while the repository does not
    exist yet. It waits for the winner's repository and goes on; a prefix that never becomes one is a
    clear StoreError."""
    import icechunk

    from sen2naip_xr.store import _layout

    real = icechunk.Repository.create
    url = str(tmp_path / "race.zarr")

    def loser(storage, *a, **kw):  # the winner finishes its create 0.3 s after the loser's has failed
        threading.Timer(0.3, real, args=(storage, *a), kwargs=kw).start()
        raise icechunk.IcechunkError("repositories can only be created in clean prefixes")

    monkeypatch.setattr(icechunk.Repository, "create", loser)
    st = DatasetStore(url)
    st.init({"title": "t"})
    assert st.exists() and st.attrs()["title"] == "t"

    def never(storage, *a, **kw):
        raise icechunk.IcechunkError("repositories can only be created in clean prefixes")

    monkeypatch.setattr(icechunk.Repository, "create", never)
    monkeypatch.setattr(_layout, "CREATE_RACE_S", 0.3)
    with pytest.raises(s2n.StoreError, match="cannot be created .*clean prefixes.*holds objects but no repository.*"
                                             "empty folder or prefix.*rerun"):
        DatasetStore(tmp_path / "other.zarr").init({})


def test_rerun_with_other_rois_seed_or_config_is_refused_with_the_difference(tmp_path, cs_cands, signer):
    out = tmp_path / "s.zarr"
    build_cross_sensor(cs_cands, out, config=CS, run=SYNC, signer=signer)
    before = DatasetStore(out).digest()
    reversed_cands = dataclasses.replace(cs_cands, rois=cs_cands.rois.iloc[::-1].reset_index(drop=True))
    with pytest.raises(s2n.StoreError, match=r"another ROI list.*ROI_00001 holds"):
        build_cross_sensor(reversed_cands, out, config=CS, run=SYNC, signer=signer)
    with pytest.raises(s2n.StoreError, match=r"another config \(max_spectral_angle_deg: 6.0 -> 5.0\)"):
        build_cross_sensor(cs_cands, out, config=CrossSensorConfig(max_spectral_angle_deg=5.0), run=SYNC,
                           signer=signer)
    assert DatasetStore(out).digest() == before
    # the same ROIs and config: every finished one is skipped
    res = build_cross_sensor(cs_cands, out, config=CS, run=SYNC, signer=signer)
    assert len(res.skipped) == 5 and not res.written


def test_demo_truth_is_never_silently_replaced(tmp_path):
    st = DatasetStore(tmp_path / "s.zarr")
    st.init({"demo_truth": {"gamma": [1, 2]}})
    st.init({"demo_truth": {"gamma": [1, 2]}})  # the same: fine
    with pytest.raises(s2n.StoreError, match="demo_truth.*never replaced"):
        st.init({"demo_truth": {"gamma": [3, 4]}})
    assert DatasetStore(tmp_path / "s.zarr").attrs()["demo_truth"] == {"gamma": [1, 2]}


def test_repair_rewrites_exactly_the_damaged_rois(tmp_path, cs_cands, signer, capsys):
    out = tmp_path / "s.zarr"
    build_cross_sensor(cs_cands, out, config=CS, run=SYNC, signer=signer)
    reference = DatasetStore(out).digest()
    st = DatasetStore(out)
    # damage ROI_00002: flip a byte of each chunk object that only it references (its newest chunks)
    chunks = sorted((out / "chunks").iterdir(), key=lambda p: p.stat().st_mtime)
    target = {p for p in chunks if _owner(st, p) == "ROI_00002"}
    assert target
    for p in target:
        data = bytearray(p.read_bytes())
        data[len(data) // 2] ^= 0x55
        p.write_bytes(bytes(data))
    assert main(["inspect", str(out), "--verify"]) == 1
    assert "cross-sensor/ROI_00002" in capsys.readouterr().out
    with pytest.raises(s2n.StoreError, match="ROI_00002.*--repair"):
        s2n.cross_sensor_pairs(out)
    res = build_cross_sensor(cs_cands, out, config=CS, run=RunConfig(scheduler="sync", progress=False, repair=True),
                             signer=signer)
    assert res.repaired == ["ROI_00002"] and res.written == ["ROI_00002"]
    assert DatasetStore(out).verify().empty and DatasetStore(out).digest() == reference


def _owner(st: DatasetStore, chunk_file) -> str | None:
    """The ROI whose arrays reference ``chunk_file`` (found by damaging a copy would be slower)."""
    saved = chunk_file.read_bytes()
    chunk_file.write_bytes(saved[:-1] + bytes([saved[-1] ^ 1]))
    try:
        bad = DatasetStore(st.location).verify(("cross-sensor",))
    finally:
        chunk_file.write_bytes(saved)
    names = set(bad["roi"])
    return names.pop() if len(names) == 1 else None


def test_a_memory_store_refuses_a_cluster(cs_cands, signer):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster, Client(cluster) as client:
        with pytest.raises(s2n.StoreError, match="memory:// store.*--scheduler sync"):
            build_cross_sensor(cs_cands, "memory://on-a-cluster", config=CS, run=SYNC, signer=signer, client=client)


def test_two_builds_of_the_same_rois_on_one_cluster_keep_their_own_writes(tmp_path, cs_cands, sy_cands, signer):
    """Two users build the same ROIs into two stores on one shared cluster at the same time. Their tasks once
    had the same keys, so Dask gave one build the other's results: each store committed references to chunks
    written into the other store, and both builds reported success (3 of 4 stores failed verify)."""
    from distributed import Client

    from sen2naip_xr.pipeline import local_cluster

    out, runs = {}, [("cs", build_cross_sensor, cs_cands, CS),
                     ("sy", s2n.build_synthetic, sy_cands, s2n.SyntheticConfig(device="cpu", rois_per_task=1))]
    with local_cluster(1, memory_limit="3GiB") as cluster, Client(cluster) as client:
        def build(name, fn, cands, cfg):
            try:
                out[name] = fn(cands, tmp_path / f"{name}.zarr", config=cfg, run=RunConfig(progress=False),
                               signer=signer, client=client)
            except Exception as exc:  # noqa: BLE001 - reported below
                out[name] = exc

        for kind, fn, cands, cfg in runs:
            threads = [threading.Thread(target=build, args=(f"{kind}{i}", fn, cands, cfg)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    for kind, *_ in runs:
        stores = [DatasetStore(tmp_path / f"{kind}{i}.zarr") for i in range(2)]
        assert all(isinstance(out[f"{kind}{i}"], s2n.BuildResult) and out[f"{kind}{i}"].written for i in range(2)), out
        for st in stores:
            assert st.verify().empty, (kind, st.verify())
        assert stores[0].digest() == stores[1].digest()


def test_a_writer_refuses_the_writes_of_another_run(tmp_path):
    from tests.conftest import small_roi_groups

    a, b = DatasetStore(tmp_path / "a.zarr"), DatasetStore(tmp_path / "b.zarr")
    for st in (a, b):
        st.init({})
    wa, wb = a.writer("cross-sensor", config={}), b.writer("cross-sensor", config={})
    theirs = wb.sink()
    theirs.write_roi("cross-sensor", "ROI_00001", small_roi_groups(), {"roi_id": "r1"})
    with pytest.raises(s2n.StoreError, match="another run.*b.zarr.*nothing of it was merged"):
        wa.collect(theirs)
    with pytest.raises(s2n.StoreError, match="another run"):  # a second writer of the same store: still refused
        a.writer("cross-sensor", config={}).collect(wa.sink())
    wa.finish(1, "nothing")
    assert a.rois("cross-sensor") == [] and a.verify().empty
    wb.collect(theirs)  # its own writer takes it
    wb.finish(1, "one")
    assert b.rois("cross-sensor") == ["ROI_00001"] and b.verify().empty


@pytest.mark.slow
def test_a_worker_that_cannot_see_the_local_store_is_a_clear_error_and_az_works(tmp_path, cs_cands, signer, azurite):
    """A scheduler and a worker whose view of the store's parent folder is private (unshare --mount + tmpfs)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and util-linux unshare (a private mount namespace for the worker)")
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare --mount is not permitted here: {probe.stderr.decode()[-200:]}")
    from distributed import Client, LocalCluster

    private = tmp_path / "private"
    private.mkdir()
    with LocalCluster(n_workers=0, dashboard_address=":0", scheduler_port=0) as cluster, Client(cluster) as client:
        worker = subprocess.Popen(
            ["unshare", "--mount", "sh", "-c",
             f"mount -t tmpfs tmpfs {private} && exec {sys.executable} -m distributed.cli.dask_worker "
             f"{cluster.scheduler_address} --nthreads 1 --no-nanny --no-dashboard"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            client.wait_for_workers(1, timeout=120)
            run = RunConfig(progress=False)
            with pytest.raises(s2n.StoreError, match=r"cannot see.*object store URL.*shared file system"):
                build_cross_sensor(cs_cands, private / "s.zarr", config=CS, run=run, signer=signer, client=client)
            url = azurite.url("cluster.zarr")
            res = build_cross_sensor(cs_cands, url, config=CS, run=run, signer=signer, client=client)
            assert sorted(res.written) == ["ROI_00001", "ROI_00002", "ROI_00005"]
        finally:
            worker.terminate()
            worker.wait(30)
    ref = tmp_path / "ref.zarr"
    build_cross_sensor(cs_cands, ref, config=CS, run=SYNC, signer=signer)
    assert DatasetStore(url).digest() == DatasetStore(ref).digest()  # complete, read back by the driver
    assert DatasetStore(url).verify().empty


class _SlowWakeLoop(asyncio.SelectorEventLoop):
    """A loop whose cross-thread wake-up is slow, like icechunk's I/O thread waiting for the GIL after it."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def _write_to_self(self):
        time.sleep(self.delay)
        super()._write_to_self()


def _deliver_in_thread(loop: _SlowWakeLoop) -> threading.Thread:
    t = threading.Thread(target=loop.call_soon_threadsafe, args=(lambda: None,))
    t.start()
    time.sleep(0.05)  # inside call_soon_threadsafe now
    return t


def test_exit_waits_for_io_threads_still_handing_a_result_to_asyncio():
    """The CI abort: an icechunk thread still inside call_soon_threadsafe when the interpreter finalizes.
    The exit hook registered with the first store waits for such threads (bounded), and no longer."""
    from sen2naip_xr.store._layout import settle_io_threads

    assert settle_io_threads(timeout=0.3)  # nothing in flight: returns at once
    loop = _SlowWakeLoop(delay=0.5)
    try:
        t0 = time.monotonic()
        t = _deliver_in_thread(loop)
        assert settle_io_threads(timeout=5.0)
        assert time.monotonic() - t0 >= 0.5  # it waited for the hand-over to finish
        t.join()
        # bounded: a thread stuck there longer than the timeout does not hold the exit
        loop.delay = 2.0
        t = _deliver_in_thread(loop)
        t1 = time.monotonic()
        assert not settle_io_threads(timeout=0.3)
        assert time.monotonic() - t1 < 1.5
        t.join()
    finally:
        loop.close()


def test_opening_a_store_registers_the_exit_hook(tmp_path):
    code = ("import atexit, sen2naip_xr.store._layout as L; from sen2naip_xr.store import DatasetStore; "
            "calls = []; orig = atexit.register; "
            "atexit.register = lambda f, *a, **k: (calls.append(f), orig(f, *a, **k))[1]; "
            f"DatasetStore({str(tmp_path / 's.zarr')!r}).exists(); assert L.settle_io_threads in calls, calls")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
