"""The dataset's Zarr v3 layout and its crash-safe writes.

::

    <store>/                          root group: provenance, config, demo_truth (attrs)
      cross-sensor/                   group: counts, config of the last finished run (attrs)
        ROI_00001/                    group: the paper's Table 1 metadata (attrs)
          lr/   lr (band, y, x) + spatial_ref      Sentinel-2, 10 m
          hr/   hr (band, y, x) + spatial_ref      NAIP_h, 2.5 m
        _failures/ROI_00003/          group whose attrs are one failure record (roi_id, stage, reason)
      synthetic/
        ROI_00001/{early,late}/       hr + spatial_ref, hist (harmonizer, band, bin), optional lr
        _failures/...
      _staging/                       work in progress (emptied when a run finishes)

Every ROI (and every failure record) is written in ``_staging`` and moved into place with one
``os.rename``, its completion marker (the ``s2n:complete`` attribute) already inside: a reader or a
rerun sees a whole ROI or none. Everything here is a Zarr node, so ``xr.open_datatree`` reads the
store without warnings.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from sen2naip_xr._const import FAILURE_COLUMNS
from sen2naip_xr.errors import StoreError

__all__ = ["DatasetStore", "KINDS", "roi_name", "COMPLETE_ATTR", "FAILURE_COLUMNS"]

KINDS: tuple[str, ...] = ("cross-sensor", "synthetic")
#: Attribute of an ROI group that says it was written whole.
COMPLETE_ATTR = "s2n:complete"
#: Columns of the failures table.
_FAILURES = "_failures"
_STAGING = "_staging"


def roi_name(index: int) -> str:
    """``ROI_00001`` for the first ROI (1-based, as the published dataset)."""
    return f"ROI_{int(index) + 1:05d}"


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise StoreError(f"kind={kind!r} is not a part of the dataset; use one of {KINDS}")
    return kind


def _json_safe(value: Any) -> Any:
    """Attributes as plain JSON (no NaN, numpy scalars or tuples)."""
    return json.loads(json.dumps(value, default=_default, allow_nan=True).replace("NaN", "null"))


def _default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (pd.Timestamp,)):
        return o.isoformat()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def _write_group(meta: Path, attrs: Mapping[str, Any]) -> None:
    """A Zarr v3 group's ``zarr.json``, written to a temporary file and moved into place."""
    doc = {"attributes": _json_safe(dict(attrs)), "zarr_format": 3, "consolidated_metadata": None,
           "node_type": "group"}
    tmp = meta.with_name(f".s2n-{uuid.uuid4().hex}.tmp")
    try:
        meta.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=False))
        os.replace(tmp, meta)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(
            f"could not write {meta} ({exc.strerror}); pass an output folder you can write to, with free space"
        ) from exc


def _read_group(meta: Path, store: Path) -> dict[str, Any]:
    try:
        doc = json.loads(meta.read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(f"store={str(store)!r} has an unreadable {meta.name} ({exc}); pass a new folder") from exc
    if doc.get("zarr_format") != 3 or doc.get("node_type") != "group":
        raise StoreError(f"output={str(store)!r} is not a Zarr v3 group (a Zarr v2 store or an array?); "
                         "pass a new folder")
    return dict(doc.get("attributes", {}))


def _zarr_ready(ds: xr.Dataset) -> xr.Dataset:
    """String coordinates as variable-length strings (Zarr v3 has no spec for fixed-width unicode)."""
    return ds.assign_coords({k: v.astype(object) for k, v in ds.coords.items() if v.dtype.kind == "U"})


class DatasetStore:
    """A SEN2NAIP dataset store on a local (or mounted) file system.

    ``DatasetStore(path)`` opens or creates it; nothing is written until :meth:`init`.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).absolute()  # tasks may run in workers with another working directory

    # -------------------------------------------------------------------------------------------
    def init(self, attrs: Mapping[str, Any] | None = None, *, kinds: tuple[str, ...] = KINDS) -> None:
        """Create the root and part groups (idempotent); merge ``attrs`` into the root's attributes.

        Group metadata is written with :func:`_write_group` (temporary file + ``os.replace``), so a job
        killed at any moment leaves either the old or the new ``zarr.json``, never half of one.
        """
        meta = self.path / "zarr.json"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"output={str(self.path)!r} cannot be created ({exc.strerror}); pass a folder you can write to"
            ) from exc
        if meta.exists():
            old = _read_group(meta, self.path)
        else:
            foreign = [p.name for p in self.path.iterdir() if not p.name.startswith(".s2n-")]
            if foreign:
                raise StoreError(
                    f"output={str(self.path)!r} is a non-empty folder that is not a sen2naip_xr store "
                    f"(it holds {sorted(foreign)[:3]}); pass a new or empty folder"
                )
            old = {}
        if attrs is not None or not meta.exists():  # merged: both builders may write to the same store
            _write_group(meta, {**old, **dict(attrs or {})})
        for group in (*kinds, *(f"{k}/{_FAILURES}" for k in kinds), _STAGING):
            if not (self.path / group / "zarr.json").exists():
                _write_group(self.path / group / "zarr.json", {})

    def clear_staging(self) -> None:
        """Remove what a killed run left half-written."""
        if (self.path / _STAGING).is_dir():
            self.finish()

    def _stage(self) -> Path:
        staging = self.path / _STAGING
        if not staging.is_dir():
            raise StoreError(f"store={str(self.path)!r} has no staging group; call init() (the builders do) first")
        return staging / uuid.uuid4().hex

    def _publish(self, tmp: Path, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # a finished twin (another worker ran the same task): keep the first
            shutil.rmtree(tmp, ignore_errors=True)
            return
        try:
            os.rename(tmp, final)
        except OSError as exc:
            if final.exists():
                shutil.rmtree(tmp, ignore_errors=True)
                return
            raise StoreError(f"could not move {tmp} to {final}: {exc.strerror}") from exc

    # -------------------------------------------------------------------------------------------
    def roi_path(self, kind: str, name: str) -> Path:
        return self.path / _check_kind(kind) / name

    def is_complete(self, kind: str, name: str) -> bool:
        meta = self.roi_path(kind, name) / "zarr.json"
        if not meta.exists():
            return False
        try:
            return bool(json.loads(meta.read_text()).get("attributes", {}).get(COMPLETE_ATTR))
        except (OSError, ValueError):
            return False

    def is_failed(self, kind: str, name: str) -> bool:
        return (self.path / kind / _FAILURES / name / "zarr.json").exists()

    def done(self, kind: str) -> set[str]:
        """Names of ROIs that are written or recorded as failed."""
        part = self.path / _check_kind(kind)
        out = {p.name for p in part.glob("ROI_*") if self.is_complete(kind, p.name)}
        out |= {p.name for p in (part / _FAILURES).glob("ROI_*") if (p / "zarr.json").exists()}
        return out

    def write_roi(self, kind: str, name: str, groups: Mapping[str, xr.Dataset], attrs: Mapping[str, Any]) -> Path:
        """Write one ROI atomically: its ``groups`` (e.g. ``lr``/``hr``) and the ROI group's ``attrs``."""
        import zarr

        final = self.roi_path(kind, name)
        if self.is_complete(kind, name):
            return final
        tmp = self._stage()
        try:
            for sub, ds in groups.items():
                ds = _zarr_ready(ds)
                for v in ds.data_vars:  # CF grid_mapping as an attribute: explicit encodings below would drop it
                    gm = ds[v].encoding.pop("grid_mapping", None)
                    if gm:
                        ds[v].attrs["grid_mapping"] = gm
                enc = {v: {"chunks": ds[v].shape} for v in ds.data_vars if ds[v].ndim}
                ds.to_zarr(str(tmp), group=sub, mode="w", zarr_format=3, consolidated=False, encoding=enc)
            zarr.open_group(str(tmp), mode="a", zarr_format=3).attrs.put(
                _json_safe({**dict(attrs), COMPLETE_ATTR: True})
            )
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise StoreError(
                f"writing {kind}/{name} to output={str(self.path)!r} failed ({exc.strerror or exc}); "
                "free disk space or pass another output folder, then rerun: finished ROIs are kept"
            ) from exc
        self._publish(tmp, final)
        return final

    def record_failure(self, kind: str, name: str, roi_id: str, stage: str, reason: str) -> None:
        """Record (atomically) that ROI ``name`` was not written, at which ``stage`` and why."""
        import zarr

        if self.is_failed(kind, name) or self.is_complete(kind, name):
            return
        tmp = self._stage()
        try:
            zarr.open_group(str(tmp), mode="w", zarr_format=3).attrs.put(
                _json_safe({"roi": name, "roi_id": roi_id, "stage": stage, "reason": str(reason)[:2000]})
            )
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise StoreError(f"recording the failure of {kind}/{name} failed ({exc.strerror}); free disk space") from exc
        self._publish(tmp, self.path / kind / _FAILURES / name)

    def forget_failures(self, kind: str) -> None:
        """Drop the failure records of ``kind`` (``--retry-failed``: those ROIs are tried again)."""
        for p in (self.path / _check_kind(kind) / _FAILURES).glob("ROI_*"):
            shutil.rmtree(p, ignore_errors=True)

    def failures(self, kind: str | None = None) -> pd.DataFrame:
        """The failures table: ``kind``, ``roi``, ``roi_id``, ``stage``, ``reason`` (sorted by ROI)."""
        rows = []
        for k in (kind,) if kind else KINDS:
            for p in sorted((self.path / k / _FAILURES).glob("ROI_*")):
                meta = p / "zarr.json"
                if meta.exists():
                    rows.append({"kind": k, **json.loads(meta.read_text())["attributes"]})
        return pd.DataFrame(rows, columns=["kind", "roi", *FAILURE_COLUMNS])

    def rois(self, kind: str) -> list[str]:
        """Names of the finished ROIs of ``kind``, sorted."""
        part = self.path / _check_kind(kind)
        return sorted(p.name for p in part.glob("ROI_*") if self.is_complete(kind, p.name))

    def set_attrs(self, attrs: Mapping[str, Any], kind: str | None = None) -> None:
        """Replace the attributes of the root (or of a part) group (atomically)."""
        path = self.path if kind is None else self.path / _check_kind(kind)
        _write_group(path / "zarr.json", dict(attrs))

    def attrs(self, kind: str | None = None) -> dict[str, Any]:
        path = self.path if kind is None else self.path / kind
        meta = path / "zarr.json"
        if not meta.exists():
            raise StoreError(f"store={str(self.path)!r} has no {kind or 'root'} group; is it a sen2naip_xr store?")
        return json.loads(meta.read_text()).get("attributes", {})

    def finish(self) -> None:
        """End of a run: empty the staging group (what is left there belongs to no finished ROI)."""
        for p in (self.path / _STAGING).iterdir():
            if p.name != "zarr.json":
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()

    def digest(self, *, exclude: tuple[str, ...] = (_STAGING,)) -> str:
        """sha256 over every file's relative path and bytes (staging excluded): equal digests, equal stores."""
        import hashlib

        h = hashlib.sha256()
        for p in sorted(self.path.rglob("*")):
            rel = p.relative_to(self.path)
            if p.is_file() and rel.parts[0] not in exclude:
                h.update(str(rel).encode() + b"\0" + p.read_bytes() + b"\0")
        return h.hexdigest()
