"""Reading a dataset store: one ROI, the metadata table, the failures, a summary."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from sen2naip_xr.errors import StoreError
from sen2naip_xr.store._layout import KINDS, DatasetStore

__all__ = ["open_store", "open_roi", "metadata_table", "summarize"]


def open_store(path: str | os.PathLike) -> xr.DataTree:
    """The whole store as a lazy :class:`xarray.DataTree` (``xr.open_datatree(path, engine="zarr")``)."""
    _existing(path)
    return xr.open_datatree(str(path), engine="zarr", consolidated=False, decode_coords="all")


def _existing(path: str | os.PathLike) -> DatasetStore:
    store = DatasetStore(path)
    if not (store.path / "zarr.json").exists():
        raise StoreError(f"store={str(path)!r} is not a sen2naip_xr store (no zarr.json); pass the folder that "
                         "`sen2naip-xr build` wrote")
    return store


def open_roi(path: str | os.PathLike, kind: str, roi: str | int, group: str | None = None) -> xr.Dataset | dict:
    """One ROI: the Dataset of ``group`` (``lr``/``hr`` or ``early``/``late``), or all of them as a dict.

    ``roi`` is a name (``ROI_00001``) or a 1-based number.
    """
    store = _existing(path)
    name = roi if isinstance(roi, str) else f"ROI_{int(roi):05d}"
    if not store.is_complete(kind, name):
        raise StoreError(f"roi={roi!r} is not a finished {kind} ROI of {str(path)!r}; finished: "
                         f"{store.rois(kind)[:5]}...")
    subs = [p.name for p in sorted(store.roi_path(kind, name).iterdir()) if (p / "zarr.json").exists()]
    out = {s: xr.open_zarr(str(store.path), group=f"{kind}/{name}/{s}", consolidated=False, decode_coords="all")
           for s in subs}
    if group is None:
        return out
    if group not in out:
        raise StoreError(f"group={group!r} is not in {kind}/{name}; it has {sorted(out)}")
    return out[group]


def metadata_table(path: str | os.PathLike, kind: str = "cross-sensor") -> pd.DataFrame:
    """One row per finished ROI with its Table-1 metadata (nested values kept as objects)."""
    store = _existing(path)
    rows = [store.attrs(f"{kind}/{n}") for n in store.rois(kind)]
    df = pd.DataFrame(rows)
    return df.drop(columns=[c for c in ("s2n:complete", "provenance") if c in df.columns])


def summarize(path: str | os.PathLike) -> dict[str, Any]:
    """Counts, failures by stage, splits and QA of a store, as plain JSON-able values."""
    store = _existing(path)
    root = store.attrs()
    out: dict[str, Any] = {"store": str(Path(path)), "version": root.get("version"),
                           "demo_truth": "demo_truth" in root, "parts": {}}
    for kind in KINDS:
        if not (store.path / kind / "zarr.json").exists():
            continue
        meta = metadata_table(path, kind)
        fails = store.failures(kind)
        part: dict[str, Any] = {
            "written": len(meta), "failed": len(fails),
            "failures_by_stage": {str(k): int(v) for k, v in fails["stage"].value_counts().sort_index().items()},
            "split": {str(k): int(v) for k, v in meta["split"].value_counts().sort_index().items()} if len(meta) else {},
            "in_progress": sorted(p.name for p in (store.path / "_staging").glob("*") if p.name != "zarr.json"),
        }
        if kind == "cross-sensor" and len(meta):
            part["QA_1_median_px"] = round(float(meta["QA_1"].median()), 4)
            part["QA_2_median_deg"] = round(float(meta["QA_2"].median()), 4)
        if kind == "synthetic" and len(meta) and "harmonizers" in meta:
            part["harmonizers"] = list(meta["harmonizers"].iloc[0])
        out["parts"][kind] = part
    return out
