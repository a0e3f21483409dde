"""The cross-sensor builder: S2/NAIP pairs -> load -> cloud screening -> NAIP_h -> QA -> store.

One task per ROI. It reads every candidate pair of its ROI (sorted by |dt|, then cloud cover), and
keeps the first that passes, in this order: load without error, cloud screening (SCL), no data,
blank NAIP, then QA on NAIP_h = NAIP histogram-matched to S2 (per band): QA1 (misalignment, S2
pixels; :mod:`sen2naip_xr.pipeline._qa`) <= ``max_misalignment_px`` and QA2 (mean spectral angle,
degrees) <= ``max_spectral_angle_deg``. It writes LR = S2 (4 x 121 x 121 at 10 m) and HR = NAIP_h
(4 x 484 x 484 at 2.5 m) with the paper's Table 1 metadata, or records why no pair qualified.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sen2naip_xr._const import HR_RES, LR_RES
from sen2naip_xr._safe import redact
from sen2naip_xr.errors import InputError, Sen2NaipError
from sen2naip_xr.pipeline._config import CrossSensorConfig, RunConfig
from sen2naip_xr.pipeline._runner import Runner
from sen2naip_xr.store._layout import DatasetStore, roi_name
from sen2naip_xr.store._metadata import georeferenced, hist_bin_coord, provenance_record, roi_metadata

__all__ = ["build_cross_sensor", "BuildResult", "Job", "plan_jobs"]

KIND = "cross-sensor"


@dataclass
class BuildResult:
    """What a build did."""

    store: Path
    """The store."""
    kind: str
    """``cross-sensor`` or ``synthetic``."""
    written: list[str] = field(default_factory=list)
    """ROIs written by this run."""
    failed: list[str] = field(default_factory=list)
    """ROIs recorded as failed by this run."""
    skipped: list[str] = field(default_factory=list)
    """ROIs already finished (written or failed) by an earlier run."""
    seconds: float = 0.0
    """Wall time."""

    def summary(self) -> str:
        return (f"{self.kind}: {len(self.written)} ROIs written, {len(self.failed)} failed, "
                f"{len(self.skipped)} already done, in {self.seconds:.1f} s -> {self.store}")

    def __repr__(self) -> str:
        return f"<BuildResult {self.summary()}>"

    def _repr_html_(self) -> str:
        import html

        def names(v: list[str]) -> str:
            return html.escape(", ".join(v[:10]) + (f" ... ({len(v)})" if len(v) > 10 else "")) or "-"

        rows = "".join(f"<tr><th>{k}</th><td>{names(v)}</td></tr>"
                       for k, v in (("written", self.written), ("failed", self.failed), ("already done", self.skipped)))
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


def _table(candidates: Any) -> tuple[pd.DataFrame, pd.DataFrame, dict, pd.DataFrame]:
    if not (hasattr(candidates, "pairs") and hasattr(candidates, "rois")):
        raise InputError(f"candidates={type(candidates).__name__} is not a Candidates; pass the result of "
                         "sen2naip_xr.search_pairs(rois, ...)")
    fails = getattr(candidates, "failures", None)
    return candidates.rois, candidates.pairs, dict(candidates.items), (fails if fails is not None else pd.DataFrame())


def plan_jobs(candidates: Any) -> tuple[list[Job], list[tuple[str, str, str, str]]]:
    """Jobs (ROIs with candidates) and failures known before any read (``name, roi_id, stage, reason``)."""
    rois, pairs, items, search_fail = _table(candidates)
    failed_search = dict(zip(search_fail.get("roi_id", []), zip(search_fail.get("stage", []),
                                                                search_fail.get("reason", []), strict=True), strict=True))
    groups = dict(tuple(pairs.groupby("roi_id", sort=False))) if len(pairs) else {}
    jobs, early = [], []
    for i, roi in enumerate(rois.to_dict("records")):
        name, rid = roi_name(i), roi["roi_id"]
        if rid in failed_search:
            early.append((name, rid, *failed_search[rid]))
        elif rid not in groups:
            early.append((name, rid, "search", "no candidate: no S2/NAIP pair covers the ROI within max_days "
                                               "(widen --datetime or raise --max-days / --max-cloud-cover)"))
        else:
            rows = groups[rid].reset_index(drop=True)
            ids = set(rows.get("naip_id", [])) | set(rows.get("s2_id", []))
            jobs.append(Job(name, roi, rows, {k: items[k] for k in ids if k in items}))
    return jobs, early


def _hrefs(items: dict, ids: list[str]) -> list[str]:
    out: list[str] = []
    for i in ids:
        it = items.get(i)
        if it is not None:
            out.extend(a.href for k, a in it.assets.items() if k in ("image", "B04", "B03", "B02", "B08", "SCL"))
    return out


def _cross_sensor_task(job: Job, store_path: str, cfg: CrossSensorConfig, load_cfg: Any, signer: Any,
                       reader: Any, prov: dict) -> dict:
    import dask
    import xarray as xr

    from sen2naip_xr.harmonize._numpy import histc
    from sen2naip_xr.load import cloud_fraction, load_failures, load_pairs
    from sen2naip_xr.ops import histogram_match, is_blank
    from sen2naip_xr.pipeline._qa import misalignment, shift_image, spectral_angle, to_10m

    store = DatasetStore(store_path)
    name, rid = job.name, job.roi["roi_id"]
    if store.is_complete(KIND, name) or store.is_failed(KIND, name):
        return {"name": name, "status": "skipped"}

    def fail(stage: str, reason: str) -> dict:
        reason = redact(reason)  # read errors quote signed URLs
        store.record_failure(KIND, name, rid, stage, reason)
        return {"name": name, "status": "failed", "stage": stage, "reason": reason}

    try:
        with dask.config.set(scheduler="sync"):
            cubes = load_pairs(job.rows, items=job.items, config=load_cfg, signer=signer, reader=reader)
            naip, s2, scl = dask.compute(*cubes)
    except Sen2NaipError as exc:
        return fail("load", str(exc))
    lf = load_failures(naip, s2, scl)
    if len(lf):
        return fail(str(lf["stage"].iloc[0]), str(lf["reason"].iloc[0]))
    frac = cloud_fraction(scl).values[0]
    reasons: list[tuple[str, str]] = []
    for t, pair in enumerate(job.rows.to_dict("records")):
        sid = pair["s2_id"]
        if frac[t] > cfg.max_cloud_fraction:
            reasons.append(("clouds", f"{sid}: {frac[t]:.1%} of the ROI flagged by SCL > {cfg.max_cloud_fraction:.1%}"))
            continue
        s2_t = np.asarray(s2.values[0, t], np.float32)
        naip_t = np.asarray(naip.values[0, t], np.float32)
        nodata = max(float(np.isnan(s2_t).mean()), float(np.isnan(naip_t).mean()))
        if nodata > cfg.max_nodata_fraction:
            reasons.append(("nodata", f"{sid}: {nodata:.1%} no-data pixels > {cfg.max_nodata_fraction:.1%}"))
            continue
        dims = ("band", "y", "x")
        if bool(is_blank(xr.DataArray(naip_t, dims=dims))):
            reasons.append(("blank", f"{pair['naip_id']}: blank NAIP (a constant 19x19 window)"))
            continue
        naip_h = histogram_match(xr.DataArray(naip_t, dims=dims), xr.DataArray(s2_t, dims=dims)).values
        lr_h = to_10m(naip_h, sigma=cfg.sigma)
        qa1, (dy, dx) = misalignment(lr_h, s2_t)
        qa2 = spectral_angle(shift_image(lr_h, (dy, dx)), s2_t)
        if not (qa1 <= cfg.max_misalignment_px and qa2 <= cfg.max_spectral_angle_deg):
            reasons.append(("qa", f"{sid}: QA1={qa1:.2f} px (max {cfg.max_misalignment_px}), "
                                  f"QA2={qa2:.2f} deg (max {cfg.max_spectral_angle_deg})"))
            continue
        roi = job.roi
        epsg = int(roi["epsg"])
        hist = histc(s2_t)
        lr_ds = georeferenced(s2_t, name="lr", x_min=roi["x_min"], y_max=roi["y_max"], res=LR_RES, epsg=epsg,
                              attrs={"long_name": "Sentinel-2 L2A reflectance (B04, B03, B02, B08)", "units": "1"})
        lr_ds["hist"] = xr.DataArray(hist, dims=("band", "bin"), coords={"bin": hist_bin_coord()},
                                     attrs={"long_name": "120-bin histogram of each band over [0, 1]",
                                            "units": "count"})
        hr_ds = georeferenced(naip_h.astype(np.float32), name="hr", x_min=roi["x_min"], y_max=roi["y_max"],
                              res=HR_RES, epsg=epsg,
                              attrs={"long_name": "NAIP histogram-matched to Sentinel-2 (NAIP_h)", "units": "1"})
        hr_ds["naip"] = xr.DataArray(naip_t, dims=("band", "y", "x"), coords={"band": hr_ds["hr"].band},
                                     attrs={"long_name": "NAIP reflectance before histogram matching (DN / 255); "
                                                         "what sen2naip-xr fit needs", "units": "1"})
        meta = roi_metadata(roi, name=name, pair=pair, s2_item=job.items.get(sid), naip_item=job.items.get(pair["naip_id"]),
                            qa={"QA_1": qa1, "QA_2": qa2, "shift_dy": dy, "shift_dx": dx,
                                "cloud_fraction": float(frac[t])})
        meta["provenance"] = provenance_record(prov, _hrefs(job.items, [sid, pair["naip_id"]]))
        store.write_roi(KIND, name, {"lr": lr_ds, "hr": hr_ds}, meta)
        return {"name": name, "status": "written", "QA_1": qa1, "QA_2": qa2}
    stages = sorted({s for s, _ in reasons})
    return fail("+".join(stages), "; ".join(r for _, r in reasons))


def _record_early(store: DatasetStore, kind: str, early: list) -> list[str]:
    out = []
    for name, rid, stage, reason in early:
        if name not in store.done(kind):
            store.record_failure(kind, name, rid, stage, reason)
            out.append(name)
    return out


def finish_part(store: DatasetStore, kind: str, n_rois: int, config: dict) -> None:
    """The part group's attributes: counts and config (the same whatever the history of the store)."""
    fails = store.failures(kind)
    store.set_attrs({
        "n_rois": int(n_rois), "n_written": len(store.rois(kind)), "n_failed": int(len(fails)),
        "failures_by_stage": {str(k): int(v) for k, v in fails["stage"].value_counts().sort_index().items()},
        "config": config,
    }, kind=kind)
    store.finish()


def build_cross_sensor(
    candidates: Any,
    output: str | Path,
    *,
    config: CrossSensorConfig | None = None,
    run: RunConfig | None = None,
    load: Any = None,
    signer: Any = None,
    reader: Any = None,
    root_attrs: dict | None = None,
    client: Any = None,
) -> BuildResult:
    """Build (or resume) the cross-sensor part of a dataset store from :func:`sen2naip_xr.search_pairs` output.

    Parameters
    ----------
    candidates
        ``Candidates`` of kind ``cross-sensor`` (ROIs, pairs, items, search failures).
    output
        The Zarr store folder; ROIs already written or recorded as failed are skipped.
    config, run
        :class:`CrossSensorConfig` (QA thresholds, screening) and :class:`RunConfig` (scheduler).
    load, signer, reader
        The load stage's :class:`~sen2naip_xr.load.LoadConfig` and IO seams.
    root_attrs
        Extra root attributes (e.g. the demo's ``demo_truth``).
    client
        An existing ``distributed.Client`` (overrides ``run.scheduler``).

    Examples
    --------
    >>> import sen2naip_xr as s2n                                                   # doctest: +SKIP
    >>> cands = s2n.search_pairs(s2n.sample_rois(20, seed=0), datetime="2020-01-01/2022-12-31")
    >>> s2n.build_cross_sensor(cands, "sen2naip.zarr").summary()                   # doctest: +SKIP
    """
    cfg = config or CrossSensorConfig()
    rcfg = run or RunConfig()
    t0 = time.perf_counter()
    if not (hasattr(candidates, "pairs") and hasattr(candidates, "rois")):
        raise InputError(f"candidates={type(candidates).__name__} is not a Candidates; pass the result of "
                         f"sen2naip_xr.search_pairs(rois, kind={KIND!r}, ...)")
    if getattr(candidates, "kind", KIND) != KIND:
        raise InputError(f"candidates are of kind {candidates.kind!r}; use build_synthetic for them, or search with "
                         "kind='cross-sensor'")
    jobs, early = plan_jobs(candidates)
    store = DatasetStore(output)
    store.init({**(store_root_attrs(root_attrs))})
    store.clear_staging()
    if rcfg.retry_failed:
        store.forget_failures(KIND)
    prov = {"kind": KIND, "cross_sensor": cfg.to_dict(), "load": repr(load) if load is not None else "default"}
    result = BuildResult(store.path, KIND)
    result.failed += _record_early(store, KIND, early)
    done = store.done(KIND)
    result.skipped = [j.name for j in jobs if j.name in done]
    todo = [j for j in jobs if j.name not in done]
    with Runner(rcfg, client=client) as runner:
        tasks = ((f"cross-sensor-{j.name}-{j.roi['roi_id']}", (j, str(store.path), cfg, load, signer, reader, prov))
                 for j in todo)
        for res in runner.run(_cross_sensor_task, tasks, desc="cross-sensor", total=len(todo)):
            {"written": result.written, "failed": result.failed, "skipped": result.skipped}[res["status"]].append(res["name"])
    finish_part(store, KIND, len(candidates.rois), cfg.to_dict())
    result.seconds = time.perf_counter() - t0
    return result


def store_root_attrs(extra: dict | None) -> dict:
    """Root attributes: what the store is, the package version, plus ``extra`` (e.g. ``demo_truth``)."""
    from sen2naip_xr import __version__

    return {"title": "SEN2NAIP-style Sentinel-2 super-resolution dataset", "producer": "sen2naip_xr",
            "version": __version__, "layout": "cross-sensor/ROI_xxxxx/{lr,hr}; synthetic/ROI_xxxxx/{early,late}",
            "reference": "Aybar et al. 2024, SEN2NAIP, Scientific Data", **(extra or {})}
