"""The LocalCluster a build starts: its workers' environment and Dask settings."""

from __future__ import annotations

import os

import dask
import distributed  # noqa: F401  -- its defaults in dask.config before the settings below

from sen2naip_xr import RunConfig
from sen2naip_xr.pipeline._runner import TICK_INTERVAL, WORKER_MALLOC, Runner


def _worker_settings(dask_worker=None) -> dict:
    return {"malloc": {k: os.environ.get(k) for k in WORKER_MALLOC},
            "profiling": "profile" in dask_worker.periodic_callbacks,
            "tick": dask.config.get("distributed.admin.tick.interval"),
            "user_env": os.environ.get("S2N_TEST_USER_ENV")}


def test_local_cluster_workers_have_the_malloc_settings_and_no_profiler(monkeypatch):
    # what an earlier LocalCluster with Dask's defaults leaves in the driver's environment (its Nannies set it)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    before = {k: dask.config.get(k) for k in ("distributed.worker.profile.enabled", "distributed.admin.tick.interval")}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": {"S2N_TEST_USER_ENV": "kept"}}):
        with Runner(RunConfig(n_workers=1, progress=False, memory_limit="2GiB")) as r:
            (got,) = r.client.run(_worker_settings).values()
            sched_tick = r.client.run_on_scheduler(lambda dask_scheduler=None: dask_scheduler._tick_interval)
    assert got == {"malloc": WORKER_MALLOC, "profiling": False, "tick": TICK_INTERVAL, "user_env": "kept"}
    assert sched_tick == 0.2  # the scheduler's watchdog too (seconds)
    assert {k: dask.config.get(k) for k in before} == before  # the driver's settings are untouched ...
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"  # ... and so is its environment


def test_worker_profile_turns_the_profiler_on():
    with Runner(RunConfig(n_workers=1, progress=False, memory_limit="2GiB", worker_profile=True)) as r:
        (got,) = r.client.run(_worker_settings).values()
    assert got["profiling"] is True
    assert got["malloc"] == WORKER_MALLOC
