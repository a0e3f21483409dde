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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sen2naip_xr._const import HR_RES, LR_RES
from sen2naip_xr._safe import redact
from sen2naip_xr.errors import Sen2NaipError
from sen2naip_xr.pipeline._common import (
    BuildResult,
    Job,
    check_candidates,
    collect,
    finish_run,
    plan,
    record_early,
    start_run,
)
from sen2naip_xr.pipeline._config import CrossSensorConfig, RunConfig
from sen2naip_xr.pipeline._runner import Runner
from sen2naip_xr.store import (
    DatasetStore,
    RoiSink,
    georeferenced,
    hist_bin_coord,
    provenance_record,
    roi_metadata,
)

__all__ = ["build_cross_sensor", "BuildResult", "Job", "plan_jobs"]

KIND = "cross-sensor"


def plan_jobs(candidates: Any) -> tuple[list[Job], list[tuple[str, str, str, str]]]:
    """Jobs (ROIs with candidates) and failures known before any read (``name, roi_id, stage, reason``)."""
    check_candidates(candidates, KIND)
    return plan(candidates, id_columns=("naip_id", "s2_id"),
                no_candidate="no candidate: no S2/NAIP pair covers the ROI within max_days "
                             "(widen --datetime or raise --max-days / --max-cloud-cover)")


def _hrefs(items: dict, ids: list[str]) -> list[str]:
    out: list[str] = []
    for i in ids:
        it = items.get(i)
        if it is not None:
            out.extend(a.href for k, a in it.assets.items() if k in ("image", "B04", "B03", "B02", "B08", "SCL"))
    return out


def roi_datasets(roi: Any, s2: np.ndarray, hist: np.ndarray, naip_h: np.ndarray, naip: np.ndarray) -> dict:
    """The stored groups of one cross-sensor ROI: ``lr`` (Sentinel-2 with its band ``hist``) and ``hr``
    (NAIP_h and the NAIP before matching), georeferenced on the ROI's grid."""
    import xarray as xr

    geo = dict(x_min=roi["x_min"], y_max=roi["y_max"], epsg=int(roi["epsg"]))
    lr_ds = georeferenced(s2, name="lr", res=LR_RES, **geo,
                          attrs={"long_name": "Sentinel-2 L2A reflectance (B04, B03, B02, B08)", "units": "1"})
    lr_ds["hist"] = xr.DataArray(hist, dims=("band", "bin"), coords={"bin": hist_bin_coord()},
                                 attrs={"long_name": "120-bin histogram of each band over [0, 1]", "units": "count"})
    hr_ds = georeferenced(naip_h.astype(np.float32), name="hr", res=HR_RES, **geo,
                          attrs={"long_name": "NAIP histogram-matched to Sentinel-2 (NAIP_h)", "units": "1"})
    hr_ds["naip"] = xr.DataArray(naip, dims=("band", "y", "x"), coords={"band": hr_ds["hr"].band},
                                 attrs={"long_name": "NAIP reflectance before histogram matching (DN / 255); "
                                                     "what sen2naip-xr fit needs", "units": "1"})
    return {"lr": lr_ds, "hr": hr_ds}


def _cross_sensor_task(job: Job, sink: RoiSink, cfg: CrossSensorConfig, load_cfg: Any, signer: Any,
                       reader: Any, prov: dict) -> dict:
    """One ROI: read its pairs, keep the first that passes, write it (or its failure) into ``sink``."""
    res = _cross_sensor_roi(job, sink, cfg, load_cfg, signer, reader, prov)
    res["sink"] = sink
    return res


def _cross_sensor_roi(job: Job, store: RoiSink, cfg: CrossSensorConfig, load_cfg: Any, signer: Any,
                      reader: Any, prov: dict) -> dict:
    import dask
    import xarray as xr

    from sen2naip_xr.harmonize.kernels import histc
    from sen2naip_xr.load import cloud_fraction, load_failures, load_pairs
    from sen2naip_xr.ops import histogram_match, is_blank
    from sen2naip_xr.pipeline._qa import misalignment, shift_image, spectral_angle, to_10m

    name, rid = job.name, job.roi["roi_id"]

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
        groups = roi_datasets(roi, s2_t, histc(s2_t), naip_h, naip_t)
        meta = roi_metadata(roi, name=name, pair=pair, s2_item=job.items.get(sid), naip_item=job.items.get(pair["naip_id"]),
                            qa={"QA_1": qa1, "QA_2": qa2, "shift_dy": dy, "shift_dx": dx,
                                "cloud_fraction": float(frac[t])})
        meta["provenance"] = provenance_record(prov, _hrefs(job.items, [sid, pair["naip_id"]]))
        store.write_roi(KIND, name, groups, meta)
        return {"name": name, "status": "written", "QA_1": qa1, "QA_2": qa2}
    stages = sorted({s for s, _ in reasons})
    return fail("+".join(stages), "; ".join(r for _, r in reasons))


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
    storage_options: dict | None = None,
    tag: str | None = None,
    on_event: Callable[[str, dict], None] | None = None,
) -> BuildResult:
    """Build (or resume) the cross-sensor part of a dataset store from :func:`sen2naip_xr.search_pairs` output.

    Parameters
    ----------
    candidates
        ``Candidates`` of kind ``cross-sensor`` (ROIs, pairs, items, search failures).
    output
        The store: a folder or a URL (``az://container/prefix``, ``s3://``, ``gs://``, ``memory://``); ROIs
        already written or recorded as failed (with the same ROI id and config) are skipped.
    config, run
        :class:`CrossSensorConfig` (QA thresholds, screening) and :class:`RunConfig` (scheduler).
    load, signer, reader
        The load stage's :class:`~sen2naip_xr.load.LoadConfig` and IO seams.
    root_attrs
        Extra root attributes (e.g. the demo's ``demo_truth``).
    client
        An existing ``distributed.Client`` (overrides ``run.scheduler``).
    storage_options
        Credentials and options of the store's location (see :mod:`sen2naip_xr.store`); never recorded.
    tag
        Tag the version this run ends with (e.g. ``"v1"``).
    on_event
        ``on_event(event, info)`` after each ROI (``written``/``failed``), commit and the run's end.

    Examples
    --------
    >>> import sen2naip_xr as s2n                                                   # doctest: +SKIP
    >>> cands = s2n.search_pairs(s2n.sample_rois(20, seed=0), datetime="2020-01-01/2022-12-31")
    >>> s2n.build_cross_sensor(cands, "sen2naip.zarr").summary()                   # doctest: +SKIP
    """
    cfg = config or CrossSensorConfig()
    rcfg = run or RunConfig()
    t0 = time.perf_counter()
    jobs, early = plan_jobs(candidates)
    store = DatasetStore(output, storage_options=storage_options)
    prov = {"kind": KIND, "cross_sensor": cfg.to_dict(), "load": repr(load) if load is not None else "default"}
    result = BuildResult(store.url, KIND)
    names = {j.name: str(j.roi["roi_id"]) for j in jobs} | {e[0]: str(e[1]) for e in early}
    with Runner(rcfg, client=client) as runner:
        writer = start_run(store, KIND, names=names, config=cfg.to_dict(), run=rcfg, runner=runner,
                           root_attrs=root_attrs, on_event=on_event, result=result, tag=tag)
        result.failed += record_early(writer, KIND, early, store.done(KIND))
        done = store.done(KIND)
        result.skipped = [j.name for j in jobs if j.name in done]
        todo = [j for j in jobs if j.name not in done]
        tasks = ((f"cross-sensor-{j.name}-{j.roi['roi_id']}", (j, writer.sink(), cfg, load, signer, reader, prov))
                 for j in todo)
        for _ in collect(writer, runner.run(_cross_sensor_task, tasks, desc="cross-sensor", total=len(todo)), result):
            pass
        return finish_run(writer, result, len(candidates.rois), tag=tag, t0=t0)
