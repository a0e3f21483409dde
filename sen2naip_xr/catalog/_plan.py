"""How :func:`~sen2naip_xr.catalog.search_pairs` queries the catalog: tasks (one ROI, or one spatial group
of ROIs), run with bounded concurrency, merged in task order whatever order they finish in.

- ``per-roi``: a task is one ROI: one NAIP query, then (cross-sensor) one Sentinel-2 query per NAIP date
  window of that ROI, as the search always did.
- ``grouped``: a task is the ROIs whose centres share a ``group_deg`` cell (at most ``max_group_rois``):
  one paged NAIP query on their union, then (cross-sensor) one paged Sentinel-2 query on the union of
  those with a covering NAIP capture, restricted to the union of their NAIP date windows (a CQL2
  ``t_intersects`` filter OR-ing the merged windows; one query per merged window where the catalog
  does not support CQL2 filters). Items are assigned to ROIs locally (shapely STRtree), so the pairs
  are those of ``per-roi``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pystac
import shapely

from sen2naip_xr._safe import redact
from sen2naip_xr.catalog._config import PairingConfig, SearchConfig
from sen2naip_xr.catalog._search import items_table, search_counted
from sen2naip_xr.errors import CatalogError

__all__ = ["SearchStats", "plan_tasks", "run_search", "merged_windows", "window_filter"]

LOG = logging.getLogger("sen2naip_xr.catalog")


@dataclass
class SearchStats:
    """Counters of one :func:`~sen2naip_xr.catalog.search_pairs` run (``Candidates.stats``)."""

    strategy: str = "per-roi"
    """The strategy used."""
    tasks: int = 0
    """Queries' units of work: ROIs (``per-roi``) or spatial groups (``grouped``)."""
    requests: int = 0
    """Requests (result pages) sent to the STAC API; 0 for a local stac-geoparquet catalog."""
    queries: int = 0
    """Searches issued (each may take several pages)."""
    seconds: float = 0.0
    """Wall time of the search (pairing included)."""

    def per_roi(self, n_rois: int) -> float:
        """Requests per ROI."""
        return self.requests / n_rois if n_rois else 0.0


@dataclass
class TaskResult:
    index: int
    positions: np.ndarray
    naip: list[pystac.Item] = field(default_factory=list)
    s2: list[pystac.Item] = field(default_factory=list)
    failures: list[tuple[int, str, str]] = field(default_factory=list)  # (ROI position, stage, reason)
    requests: int = 0
    queries: int = 0
    pairs: int = 0


# ------------------------------------------------------------------------------------------------
# the plan
def plan_tasks(rois: pd.DataFrame, config: SearchConfig) -> list[np.ndarray]:
    """Positions (``iloc``) of the ROIs of each task, in a fixed order (the order of each task's first ROI)."""
    n = len(rois)
    if config.strategy == "per-roi":
        return [np.array([i]) for i in range(n)]
    if n == 0:
        return []
    cx, cy = _centres(rois)
    gx = np.floor(cx / config.group_deg).astype(np.int64)
    gy = np.floor(cy / config.group_deg).astype(np.int64)
    cells: dict[tuple[int, int], list[int]] = {}
    for i, key in enumerate(zip(gx.tolist(), gy.tolist(), strict=True)):
        cells.setdefault(key, []).append(i)
    tasks: list[np.ndarray] = []
    for members in cells.values():  # dicts keep insertion order: cells by their first ROI
        m = np.asarray(members)
        if len(m) > config.max_group_rois:  # split a full cell along its longer axis, in halves of ROIs
            tasks.extend(_split(m, cx, cy, config.max_group_rois))
        else:
            tasks.append(m)
    return sorted(tasks, key=lambda t: int(t.min()))


def _centres(rois: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    if {"lon", "lat"} <= set(rois.columns):
        return rois["lon"].to_numpy(dtype="float64"), rois["lat"].to_numpy(dtype="float64")
    c = shapely.centroid(shapely.from_wkt(rois["geometry"].to_numpy()))
    return shapely.get_x(c), shapely.get_y(c)


def _split(m: np.ndarray, cx: np.ndarray, cy: np.ndarray, cap: int) -> list[np.ndarray]:
    if len(m) <= cap:
        return [np.sort(m)]
    x, y = cx[m], cy[m]
    key = x if np.ptp(x) >= np.ptp(y) else y
    order = m[np.argsort(key, kind="stable")]
    half = len(order) // 2
    return _split(order[:half], cx, cy, cap) + _split(order[half:], cx, cy, cap)


# ------------------------------------------------------------------------------------------------
# date windows
def _pad(max_days: float) -> timedelta:
    return timedelta(days=float(np.ceil(max_days)))


def day_windows(days: pd.Series, max_days: float) -> list[str]:
    """RFC 3339 windows [d - max_days, d + max_days] (whole UTC days) around each distinct date."""
    out = []
    pad = _pad(max_days)
    for d in sorted(set(days.dt.tz_convert("UTC").dt.normalize())):
        start = (d - pad).strftime("%Y-%m-%dT00:00:00Z")
        end = (d + pad).strftime("%Y-%m-%dT23:59:59Z")
        out.append(f"{start}/{end}")
    return out


def merged_windows(days: pd.Series, max_days: float) -> list[tuple[str, str]]:
    """The windows of :func:`day_windows`, overlapping or touching ones merged: ``(start, end)`` strings."""
    pad = _pad(max_days)
    spans: list[list[pd.Timestamp]] = []
    for d in sorted(set(days.dt.tz_convert("UTC").dt.normalize())):
        a, b = d - pad, d + pad + timedelta(days=1)  # [a, b): whole days
        if spans and a <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], b)
        else:
            spans.append([a, b])
    return [(a.strftime("%Y-%m-%dT00:00:00Z"), (b - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
            for a, b in spans]


def window_filter(windows: list[tuple[str, str]]) -> dict[str, Any]:
    """CQL2-JSON: ``datetime`` within any of ``windows``."""
    parts = [{"op": "t_intersects", "args": [{"property": "datetime"}, {"interval": [a, b]}]} for a, b in windows]
    return parts[0] if len(parts) == 1 else {"op": "or", "args": parts}


def supports_filter(client: Any) -> bool:
    """Whether ``client`` takes CQL2-JSON ``t_intersects`` filters (a STAC API declaring the filter
    conformance class, or a stac-geoparquet catalog)."""
    if getattr(client, "is_local", False):
        return True
    conforms = getattr(client, "conforms_to", None)
    if conforms is None:
        return False
    try:
        from pystac_client.conformance import ConformanceClasses

        return bool(conforms(ConformanceClasses.FILTER))
    except Exception:
        return False


# ------------------------------------------------------------------------------------------------
# one task
def _sorted(items: list[pystac.Item]) -> list[pystac.Item]:
    seen: dict[str, pystac.Item] = {}
    for it in items:
        seen.setdefault(it.id, it)
    return [seen[k] for k in sorted(seen)]


def _area(geoms: np.ndarray) -> Any:
    return geoms[0] if len(geoms) == 1 else shapely.union_all(geoms)


def run_task(
    index: int,
    positions: np.ndarray,
    rois: pd.DataFrame,
    *,
    client: Any,
    kind: str,
    datetime: str | None,
    config: SearchConfig,
    pairing: PairingConfig,
    use_filter: bool,
    count_pairs: bool,
) -> TaskResult:
    """Search one task's ROIs (see the module docstring); failures are recorded, never raised."""
    from sen2naip_xr.catalog._pairing import covering, pair_cross_sensor, pair_synthetic

    cfg = config
    res = TaskResult(index, positions)
    sub = rois.iloc[positions]
    geoms = shapely.from_wkt(sub["geometry"].to_numpy())
    label = f"group of {len(positions)} ROIs: " if cfg.strategy == "grouped" else ""
    try:
        naip, n = search_counted(client, cfg.naip_collection, intersects=_area(geoms), datetime=datetime, config=cfg)
    except CatalogError as exc:
        res.failures = [(int(p), "search-naip", redact(label + str(exc))) for p in positions]
        return res
    res.requests += n
    res.queries += 1
    res.naip = _sorted(naip)
    if not res.naip:
        return res
    naip_t = items_table(res.naip, kind="naip")
    if kind == "cross-sensor":
        cov = covering(sub, naip_t, cfg.require_full_cover)
        if cov.empty:
            return res
        cov = cov.assign(_date=naip_t["datetime"].to_numpy()[cov["_item"].to_numpy()])
        s2: list[pystac.Item] = []
        if cfg.strategy == "per-roi":
            roi_geom = geoms[0]
            dates = pd.Series(pd.to_datetime(cov["_date"], utc=True))
            for window in day_windows(dates, pairing.max_days):
                try:
                    found, n = search_counted(client, cfg.s2_collection, intersects=roi_geom, datetime=window,
                                              max_cloud_cover=cfg.max_cloud_cover, config=cfg)
                except CatalogError as exc:
                    res.failures = [(int(positions[0]), "search-s2", redact(str(exc)))]
                    break
                res.requests += n
                res.queries += 1
                s2.extend(found)
        else:
            with_naip = sorted(set(cov["roi_id"]))
            mask = sub["roi_id"].isin(with_naip).to_numpy()
            area = _area(geoms[mask])
            windows = merged_windows(pd.Series(pd.to_datetime(cov["_date"], utc=True)), pairing.max_days)
            queries = (
                [(f"{windows[0][0]}/{windows[-1][1]}", window_filter(windows) if len(windows) > 1 else None)]
                if use_filter else [(f"{a}/{b}", None) for a, b in windows]
            )
            for span, flt in queries:
                try:
                    found, n = search_counted(client, cfg.s2_collection, intersects=area, datetime=span, filter=flt,
                                              max_cloud_cover=cfg.max_cloud_cover, config=cfg)
                except CatalogError as exc:
                    res.failures = [(int(p), "search-s2", redact(label + str(exc))) for p in positions[mask]]
                    break
                res.requests += n
                res.queries += 1
                s2.extend(found)
        res.s2 = _sorted(s2)
    if count_pairs:
        failed = {p for p, _, _ in res.failures}
        ok = sub[[int(p) not in failed for p in positions]]
        if kind == "cross-sensor":
            if res.s2:
                res.pairs = len(pair_cross_sensor(ok, naip_t, items_table(res.s2, kind="s2"), config=pairing,
                                                  require_full_cover=cfg.require_full_cover))
        else:
            res.pairs = len(pair_synthetic(ok, naip_t, config=pairing, require_full_cover=cfg.require_full_cover))
    return res


# ------------------------------------------------------------------------------------------------
# progress
def _interactive() -> bool:
    try:
        return bool(sys.stderr.isatty()) or "ipykernel" in sys.modules
    except (AttributeError, ValueError):
        return False


def _fmt_eta(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class Progress:
    """Requests done, pairs found, failed ROIs and an ETA: a tqdm bar on a terminal (or in Jupyter),
    log lines (logger ``sen2naip_xr.catalog``, INFO) every ``every_s`` seconds and at the end otherwise."""

    def __init__(self, total: int, desc: str, *, enabled: bool, every_s: float = 10.0) -> None:
        self.total, self.desc, self.enabled, self.every_s = total, desc, enabled, every_s
        self.done = self.requests = self.pairs = self.failed = 0
        self.t0 = time.monotonic()
        self._last = self.t0
        self.bar = None
        if enabled and _interactive():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="ROI")

    def line(self) -> str:
        el = time.monotonic() - self.t0
        eta = el / self.done * (self.total - self.done) if self.done else float("inf")
        return (f"{self.desc}: {self.done}/{self.total} ROIs, {self.requests} requests, {self.pairs} pairs, "
                f"{self.failed} failed ROIs, elapsed {_fmt_eta(el)}, ETA {_fmt_eta(eta)}")

    def update(self, r: TaskResult) -> None:
        self.done += len(r.positions)
        self.requests += r.requests
        self.pairs += r.pairs
        self.failed += len({p for p, _, _ in r.failures})
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix(requests=self.requests, pairs=self.pairs, failed=self.failed, refresh=False)
            self.bar.update(len(r.positions))
            return
        now = time.monotonic()
        if now - self._last >= self.every_s and self.done < self.total:
            self._last = now
            LOG.info(self.line())

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            LOG.info(self.line())


# ------------------------------------------------------------------------------------------------
# the run
def run_search(
    rois: pd.DataFrame,
    *,
    client: Any,
    kind: str,
    datetime: str | None,
    config: SearchConfig,
    pairing: PairingConfig,
    progress: bool,
    on_result: Callable[[TaskResult], None] | None = None,
) -> tuple[list[TaskResult], SearchStats]:
    """Run every task with at most ``config.concurrency`` in flight; results in task order."""
    t0 = time.perf_counter()
    tasks = plan_tasks(rois, config)
    use_filter = config.strategy == "grouped" and kind == "cross-sensor" and supports_filter(client)
    stats = SearchStats(strategy=config.strategy, tasks=len(tasks))
    bar = Progress(len(rois), f"search {kind} ({config.strategy})", enabled=progress)
    results: list[TaskResult | None] = [None] * len(tasks)
    kw = dict(rois=rois, client=client, kind=kind, datetime=datetime, config=config, pairing=pairing,
              use_filter=use_filter, count_pairs=progress)

    def done(r: TaskResult) -> None:
        results[r.index] = r
        bar.update(r)
        if on_result is not None:
            on_result(r)

    try:
        if config.concurrency == 1 or len(tasks) <= 1:
            for i, pos in enumerate(tasks):
                done(run_task(i, pos, **kw))
        else:
            lock = threading.Lock()
            with ThreadPoolExecutor(max_workers=min(config.concurrency, len(tasks)),
                                    thread_name_prefix="s2n-search") as pool:
                pending: set[Future] = set()
                it = iter(enumerate(tasks))
                try:
                    for i, pos in it:  # keep the queue short: submit as slots free up
                        pending.add(pool.submit(run_task, i, pos, **kw))
                        if len(pending) >= 2 * config.concurrency:
                            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                            for f in finished:
                                with lock:
                                    done(f.result())
                    while pending:
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for f in finished:
                            with lock:
                                done(f.result())
                except BaseException:
                    for f in pending:
                        f.cancel()
                    raise
    finally:
        bar.close()
    out = [r for r in results if r is not None]
    stats.requests = sum(r.requests for r in out)
    stats.queries = sum(r.queries for r in out)
    stats.seconds = time.perf_counter() - t0
    return out, stats
