"""What both builders share: the result, job planning, opening a store for a run, early failures, the
task-result loop and finishing a part. Only public :class:`~sen2naip_xr.store.DatasetStore` methods."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sen2naip_xr.errors import InputError, StoreError
from sen2naip_xr.pipeline._config import RunConfig
from sen2naip_xr.store import DatasetStore, StoreWriter, roi_name

__all__ = ["BuildResult", "Job", "check_candidates", "plan", "start_run", "record_early", "collect", "finish_run",
           "store_root_attrs"]


@dataclass
class BuildResult:
    """What a build did."""

    store: str
    """The store's location (a URL without credentials)."""
    kind: str
    """``cross-sensor`` or ``synthetic``."""
    written: list[str] = field(default_factory=list)
    """ROIs written by this run."""
    failed: list[str] = field(default_factory=list)
    """ROIs recorded as failed by this run."""
    skipped: list[str] = field(default_factory=list)
    """ROIs already finished (written or failed) by an earlier run."""
    repaired: list[str] = field(default_factory=list)
    """Damaged ROIs found by ``repair`` and rewritten (or recorded as failed) by this run."""
    snapshot: str | None = None
    """The store version (icechunk snapshot id) this run ended with."""
    seconds: float = 0.0
    """Wall time."""

    def summary(self) -> str:
        rep = f", {len(self.repaired)} repaired" if self.repaired else ""
        return (f"{self.kind}: {len(self.written)} ROIs written, {len(self.failed)} failed, "
                f"{len(self.skipped)} already done{rep}, in {self.seconds:.1f} s -> {self.store}"
                + (f" (version {self.snapshot})" if self.snapshot else ""))

    def __repr__(self) -> str:
        return f"<BuildResult {self.summary()}>"

    def _repr_html_(self) -> str:
        import html

        def names(v: list[str]) -> str:
            return html.escape(", ".join(v[:10]) + (f" ... ({len(v)})" if len(v) > 10 else "")) or "-"

        rows = "".join(f"<tr><th>{k}</th><td>{names(v)}</td></tr>"
                       for k, v in (("written", self.written), ("failed", self.failed), ("already done", self.skipped),
                                    ("repaired", self.repaired)))
        return (f"<div><b>BuildResult</b> {html.escape(self.kind)} -> <code>{html.escape(str(self.store))}</code>, "
                f"{self.seconds:.1f} s<table>{rows}</table></div>")


@dataclass(frozen=True)
class Job:
    """One ROI's work: its row, its candidate rows and the items they refer to."""

    name: str
    roi: dict
    rows: pd.DataFrame
    items: dict

    def __dask_tokenize__(self) -> tuple:
        return (self.name, self.roi.get("roi_id"), tuple(self.rows.get("s2_id", self.rows.get("naip_id", []))))


def check_candidates(candidates: Any, kind: str) -> None:
    other = "build_synthetic" if kind == "cross-sensor" else "build_cross_sensor"
    if not (hasattr(candidates, "pairs") and hasattr(candidates, "rois")):
        raise InputError(f"candidates={type(candidates).__name__} is not a Candidates; pass the result of "
                         f"sen2naip_xr.search_pairs(rois, kind={kind!r}, ...)")
    if getattr(candidates, "kind", kind) != kind:
        raise InputError(f"candidates are of kind {candidates.kind!r}; use {other} for them, or search with "
                         f"kind={kind!r}")


def plan(candidates: Any, *, id_columns: tuple[str, ...], no_candidate: str) -> tuple[list[Job], list[tuple]]:
    """Jobs (ROIs with candidates) and failures known before any read (``name, roi_id, stage, reason``)."""
    rois, pairs, items = candidates.rois, candidates.pairs, dict(candidates.items)
    fails = getattr(candidates, "failures", None)
    failed = {} if fails is None or not len(fails) else dict(
        zip(fails["roi_id"], zip(fails["stage"], fails["reason"], strict=True), strict=True))
    groups = dict(tuple(pairs.groupby("roi_id", sort=False))) if len(pairs) else {}
    jobs, early = [], []
    for i, roi in enumerate(rois.to_dict("records")):
        name, rid = roi_name(i), roi["roi_id"]
        if rid in failed:
            early.append((name, rid, *failed[rid]))
        elif rid not in groups:
            early.append((name, rid, "search", no_candidate))
        else:
            rows = groups[rid].reset_index(drop=True)
            ids = set().union(*(set(rows[c]) for c in id_columns if c in rows))
            jobs.append(Job(name, roi, rows, {k: items[k] for k in ids if k in items}))
    return jobs, early


def store_root_attrs(extra: dict | None) -> dict:
    """Root attributes: what the store is, the package version, plus ``extra`` (e.g. ``demo_truth``)."""
    from sen2naip_xr import __version__

    return {"title": "SEN2NAIP-style Sentinel-2 super-resolution dataset", "producer": "sen2naip_xr",
            "version": __version__, "layout": "cross-sensor/ROI_xxxxx/{lr,hr}; synthetic/ROI_xxxxx/{early,late}",
            "reference": "Aybar et al. 2024, SEN2NAIP, Scientific Data", **(extra or {})}


def start_run(store: DatasetStore, kind: str, *, names: dict[str, str], config: dict, run: RunConfig, runner: Any,
              root_attrs: dict | None, on_event: Callable[[str, dict], None] | None,
              result: Any, tag: str | None = None) -> StoreWriter:
    """Open ``store`` for a run of ``kind``: create it, check that the workers can reach it and that it
    holds the same ROIs/config (``names``: name -> roi_id), repair/forget what was asked; the writer."""
    if store.location.scheme == "memory" and runner.client is not None:
        raise StoreError(f"store {store.url!r} is a memory:// store: it lives in this process, so a Dask cluster "
                         "cannot write to it; use --scheduler sync (RunConfig(scheduler='sync')) or a folder / "
                         "object store URL")
    store.init(store_root_attrs(root_attrs))
    if tag and tag in store.repo.list_tags():
        raise StoreError(f"--tag {tag!r} already names a version of {store.url!r} (tags are immutable); pick a new "
                         "name, or list them with `sen2naip-xr inspect STORE --history`")
    store.check_workers_see(runner.client)
    store.check_identity(kind, names, config)
    if run.repair:
        bad = store.verify((kind,))
        damaged = sorted(set(bad["roi"]) - {"*"})
        if damaged:
            store.remove_rois(kind, damaged, message=f"repair {kind}: remove {len(damaged)} damaged ROI(s)")
        result.repaired = damaged
    if run.retry_failed:
        fails = store.failures(kind)
        store.remove_rois(kind, list(fails["roi"]), message=f"{kind}: forget {len(fails)} failure(s) to retry them")
    run_meta = {"run": uuid.uuid4().hex[:12], "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return store.writer(kind, config=config, run_meta=run_meta, commit_every=run.commit_every, on_event=on_event)


def record_early(writer: StoreWriter, kind: str, early: list[tuple], done: set[str]) -> list[str]:
    """Failures known before any read (search), recorded by the driver."""
    sink = writer.sink()
    out = []
    for name, rid, stage, reason in early:
        if name not in done:
            sink.record_failure(kind, name, rid, stage, reason)
            out.append(name)
    writer.collect(sink)
    return out


def collect(writer: StoreWriter, results: Iterable[dict], result: BuildResult) -> Iterator[dict]:
    """Merge each task's sink into the writer and sort its ROIs into ``result``; yields the statuses."""
    for res in results:
        sink = res.pop("sink", None)
        if sink is not None:
            writer.collect(sink)
        for st in res.get("statuses", [res]):
            if st.get("status") in ("written", "failed", "skipped"):
                {"written": result.written, "failed": result.failed,
                 "skipped": result.skipped}[st["status"]].append(st["name"])
            yield st


def finish_run(writer: StoreWriter, result: BuildResult, n_rois: int, *, tag: str | None, t0: float) -> BuildResult:
    """Commit the last batch and the part's attributes; tag the version; fill ``result``."""
    result.snapshot = writer.finish(n_rois, f"build {writer.kind}: {len(result.written)} written, "
                                            f"{len(result.failed)} failed, {len(result.skipped)} already done")
    if tag:
        writer.store.create_tag(tag, result.snapshot)
    result.seconds = time.perf_counter() - t0
    return result
