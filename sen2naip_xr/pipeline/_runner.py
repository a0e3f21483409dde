"""Where the per-ROI tasks run: a LocalCluster by default, any scheduler address, or in process.

The driver submits at most ``max_in_flight`` tasks at a time and keeps only their small status dicts,
so memory stays bounded however many ROIs there are: each task reads its ROI, computes, writes it to
the store itself and returns. Task keys name the ROI and end with a token of the run: two builds of the
same ROIs on one shared cluster (into two stores, by two users at once) must not share tasks, since a
task writes into its own run's store. A task that a dying worker lost is recomputed elsewhere with the
same result (writes are atomic, see :mod:`sen2naip_xr.store`).
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from importlib.util import find_spec
from typing import Any

from sen2naip_xr.pipeline._config import RunConfig

__all__ = ["Runner", "local_cluster"]


#: glibc settings of the LocalCluster workers: arrays up to 256 MiB (a batch of 1100 px images) come from the
#: heap and freed memory stays there for the next ROI. Dask's default (``MALLOC_TRIM_THRESHOLD_=65536``) hands
#: it back to the OS at once, so every ROI faults its pages in again: measured 2x slower on the power law of
#: a 6-image stack, and far worse on VMs that return freed pages to the host (page reporting).
WORKER_MALLOC = {"MALLOC_TRIM_THRESHOLD_": str(256 * 2**20), "MALLOC_MMAP_THRESHOLD_": str(256 * 2**20)}


#: Dask's event-loop watchdog on the scheduler, the nannies and the workers (it logs a loop blocked for
#: over ``distributed.admin.tick.limit``, 3 s): every 200 ms instead of every 20 ms. A build runs few tasks of
#: 0.1-1 s; at 20 ms these wake-ups cost an idle 2-worker LocalCluster 7% of a core in the driver and 2.5% per
#: worker, 2% and 0.9% at 200 ms (measured), CPU that two busy workers on two cores take from each other.
TICK_INTERVAL = "200ms"


def local_cluster(n_workers: int, *, threads_per_worker: int = 1, memory_limit: str = "4GiB",
                  worker_profile: bool = False) -> Any:
    """The LocalCluster of a build (``RunConfig(scheduler=None)``, the demo, the benchmarks): worker processes
    with :data:`WORKER_MALLOC` in their environment (other ``pre-spawn-environ`` variables are kept), the
    event-loop watchdog every :data:`TICK_INTERVAL` and, unless ``worker_profile``, without Dask's
    statistical profiler (it walks every thread's stack every 10 ms on the worker's event loop: 0.35-0.45 s
    of CPU per worker in an 11 s synthetic build on 2 workers, taken from the other worker on a machine with
    no spare core; the dashboard's Profile page needs it).

    A Nanny takes a ``pre-spawn-environ`` variable from this process's environment when it is set there,
    and sets its own values there when it spawns: after any earlier LocalCluster with Dask's defaults,
    ``MALLOC_TRIM_THRESHOLD_=65536`` would win. So the environment holds :data:`WORKER_MALLOC` while the
    cluster starts, and is put back as it was afterwards."""
    from unittest import mock

    import dask
    from distributed import LocalCluster

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    with dask.config.set({"distributed.nanny.pre-spawn-environ": {**env, **WORKER_MALLOC},
                          "distributed.worker.profile.enabled": bool(worker_profile),
                          "distributed.admin.tick.interval": TICK_INTERVAL}), \
            mock.patch.dict(os.environ, WORKER_MALLOC):
        return LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                            memory_limit=memory_limit, dashboard_address=":0", silence_logs=logging.ERROR)


class Runner:
    """Context manager running per-ROI tasks on Dask distributed (or in process with ``scheduler="sync"``)."""

    def __init__(self, config: RunConfig | None = None, *, client: Any = None) -> None:
        self.config = config or RunConfig()
        self.client = client
        self.token = uuid.uuid4().hex[:10]  # ends every task key of this run (see the module's docstring)
        self._own: list[Any] = []

    # -------------------------------------------------------------------------------------------
    def __enter__(self) -> Runner:
        cfg = self.config
        if self.client is not None or cfg.scheduler == "sync":
            return self
        from distributed import Client

        if cfg.scheduler is None:
            cluster = local_cluster(cfg.n_workers, threads_per_worker=cfg.threads_per_worker,
                                    memory_limit=cfg.memory_limit, worker_profile=cfg.worker_profile)
            self._own.append(cluster)
            self.client = Client(cluster)
        else:
            self.client = Client(cfg.scheduler)
        self._own.insert(0, self.client)
        if cfg.progress:
            link = self.client.dashboard_link
            hint = "" if find_spec("bokeh") else " (pip install bokeh to serve it)"
            print(f"dask dashboard: {link}{hint}; workers: {len(self.client.scheduler_info()['workers'])}",
                  file=sys.stderr)
        return self

    def __exit__(self, *exc: Any) -> None:
        for obj in self._own:
            try:
                obj.close()
            except Exception:  # pragma: no cover - closing a dead cluster
                pass
        self._own.clear()

    # -------------------------------------------------------------------------------------------
    @property
    def n_workers(self) -> int:
        if self.client is None:
            return 1
        return max(1, len(self.client.scheduler_info()["workers"]))

    def gpu_resources(self) -> dict[str, float] | None:
        """``{"GPU": 1}`` when some worker offers a ``GPU`` resource (network tasks then go there)."""
        if self.client is None:
            return None
        workers = self.client.scheduler_info()["workers"].values()
        return {"GPU": 1} if any(w.get("resources", {}).get("GPU") for w in workers) else None

    def run(self, fn: Callable[..., Any], jobs: Iterable[tuple[str, tuple]], *, desc: str,
            total: int | None = None, resources: dict[str, float] | None = None) -> Iterator[Any]:
        """Run ``fn(*args)`` for every ``(key, args)`` of ``jobs``; yield results as they finish."""
        from sen2naip_xr._progress import progress

        jobs = iter(jobs)
        bar = progress(total=total, desc=desc, enabled=self.config.progress, file=sys.stderr)
        try:
            if self.client is None:
                for _, args in jobs:
                    yield fn(*args)
                    bar.update()
                return
            from distributed import as_completed

            window = self.config.max_in_flight or 2 * sum(
                w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values()
            )
            pending = as_completed()
            n = 0
            for key, args in jobs:
                pending.add(self.client.submit(fn, *args, key=f"{key}-{self.token}", pure=False, resources=resources,
                                               retries=1))
                n += 1
                if n >= window:
                    fut = next(pending)
                    yield fut.result()
                    fut.release()
                    bar.update()
                    n -= 1
            for fut in pending:
                yield fut.result()
                fut.release()
                bar.update()
        finally:
            bar.close()
