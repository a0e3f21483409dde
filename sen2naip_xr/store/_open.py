"""Reading a dataset store (a path or a URL, any version): one ROI, the metadata table, the failures, a summary."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pandas as pd
import xarray as xr

from sen2naip_xr.errors import StoreError
from sen2naip_xr.store._layout import KINDS, DatasetStore
from sen2naip_xr.store._location import Location

__all__ = ["open_store", "open_roi", "metadata_table", "summarize"]

StoreLike = str | os.PathLike | Location | DatasetStore


def existing_store(store: StoreLike, storage_options: Mapping[str, Any] | None = None, *, tag: str | None = None,
              snapshot: str | None = None) -> DatasetStore:
    """An existing store (a :class:`StoreError` naming the location otherwise)."""
    if isinstance(store, DatasetStore):
        st = store
    else:
        st = DatasetStore(store, storage_options=storage_options, tag=tag, snapshot=snapshot)
    if not st.exists():
        raise StoreError(f"store={st.url!r} is not a sen2naip_xr store (no repository there); pass the location that "
                         "`sen2naip-xr build` wrote")
    st.session()
    return st


def open_store(store: StoreLike, *, storage_options: Mapping[str, Any] | None = None, tag: str | None = None,
               snapshot: str | None = None) -> xr.DataTree:
    """The whole store as a lazy :class:`xarray.DataTree`, at the latest version or at ``tag``/``snapshot``.

    Examples
    --------
    >>> tree = open_store("az://datasets/sen2naip.zarr", tag="v1")   # doctest: +SKIP
    """
    st = existing_store(store, storage_options, tag=tag, snapshot=snapshot)
    try:
        return xr.open_datatree(st.session().store, engine="zarr", consolidated=False, decode_coords="all",
                                zarr_format=3)
    except Exception as exc:  # noqa: BLE001 - a damaged node: the fix, not a codec traceback
        from sen2naip_xr.store._layout import damage_message

        raise StoreError(damage_message(st.url, "the store tree", exc)) from exc


def open_roi(store: StoreLike, kind: str, roi: str | int, group: str | None = None, *,
             storage_options: Mapping[str, Any] | None = None, tag: str | None = None,
             snapshot: str | None = None) -> xr.Dataset | dict:
    """One ROI: the Dataset of ``group`` (``lr``/``hr`` or ``early``/``late``), or all of them as a dict.

    ``roi`` is a name (``ROI_00001``) or a 1-based number. Arrays are read now (a damaged chunk raises a
    :class:`StoreError` naming the ROI and the fix).
    """
    st = existing_store(store, storage_options, tag=tag, snapshot=snapshot)
    name = roi if isinstance(roi, str) else f"ROI_{int(roi):05d}"
    if not st.is_complete(kind, name):
        raise StoreError(f"roi={roi!r} is not a finished {kind} ROI of {st.url!r}; finished: {st.rois(kind)[:5]}...")
    subs = st.roi_groups(kind, name)
    if group is not None and group not in subs:
        raise StoreError(f"group={group!r} is not in {kind}/{name}; it has {sorted(subs)}")
    out = {s: st.load_dataset(f"{kind}/{name}/{s}") for s in subs if group is None or s == group}
    return out if group is None else out[group]


def metadata_table(store: StoreLike, kind: str = "cross-sensor", *,
                   storage_options: Mapping[str, Any] | None = None, tag: str | None = None,
                   snapshot: str | None = None) -> pd.DataFrame:
    """One row per finished ROI with its Table-1 metadata (nested values kept as objects)."""
    st = existing_store(store, storage_options, tag=tag, snapshot=snapshot)
    rows = []
    for n in st.rois(kind):
        try:
            rows.append(st.attrs(f"{kind}/{n}"))
        except StoreError as exc:
            raise StoreError(f"{kind}/{n}: {exc}") from exc
    df = pd.DataFrame(rows)
    return df.drop(columns=[c for c in ("s2n:complete", "provenance") if c in df.columns])


def summarize(store: StoreLike, *, storage_options: Mapping[str, Any] | None = None, tag: str | None = None,
              snapshot: str | None = None) -> dict[str, Any]:
    """Counts, failures by stage, splits and QA of a store, as plain JSON-able values (from the ROI index)."""
    st = existing_store(store, storage_options, tag=tag, snapshot=snapshot)
    root = st.attrs()
    out: dict[str, Any] = {"store": st.url, "version": root.get("version"), "demo_truth": "demo_truth" in root,
                           "parts": {}}
    if tag or snapshot:
        out["at"] = {"tag": tag, "snapshot": snapshot or st.session().snapshot_id}
    for kind in KINDS:
        if not st.has_group(kind):
            continue
        cols = ["status", "split", "stage", "QA_1", "QA_2", "harmonizers"]
        index = pd.DataFrame.from_dict(st.index(kind), orient="index")
        index = index.reindex(columns=sorted(set(cols) | set(index.columns)))
        written = index[index["status"] == "written"]
        failed = index[index["status"] == "failed"]
        part: dict[str, Any] = {
            "written": len(written), "failed": len(failed),
            "failures_by_stage": {str(k): int(v) for k, v in failed["stage"].value_counts().sort_index().items()},
            "split": ({str(k): int(v) for k, v in written["split"].value_counts().sort_index().items()}
                      if len(written) else {}),
        }
        if kind == "cross-sensor" and len(written):
            part["QA_1_median_px"] = round(float(pd.to_numeric(written["QA_1"]).median()), 4)
            part["QA_2_median_deg"] = round(float(pd.to_numeric(written["QA_2"]).median()), 4)
        if kind == "synthetic" and len(written) and "harmonizers" in written:
            part["harmonizers"] = list(written["harmonizers"].iloc[0] or [])
        out["parts"][kind] = part
    return out
