"""``export``: the published SEN2NAIP layout, per ROI ``LR.tif``, ``HR.tif`` and ``metadata.json``.

Cross-sensor: ``<out>/cross-sensor/ROI_xxxxx/{LR.tif, HR.tif, metadata.json}``. Synthetic:
``<out>/synthetic/ROI_xxxxx/{early,late}/{HR.tif, metadata.json}`` (the metadata holds the per-harmonizer
histograms; ``LR_<harmonizer>.tif`` too when the store has the LR arrays). Rasters are uint16 DN =
round(reflectance * 10000) (GDAL scale 1e-4), deflate-compressed, georeferenced, like the published files.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from sen2naip_xr._safe import dumps_strict
from sen2naip_xr.errors import StoreError
from sen2naip_xr.store._layout import KINDS
from sen2naip_xr.store._location import parse_location
from sen2naip_xr.store._open import existing_store, open_roi

__all__ = ["export"]


def _tif(da: xr.DataArray, path: Path) -> None:
    crs = da.rio.crs
    dn = np.clip(np.round(np.nan_to_num(da.values, nan=0.0) * 10000.0), 0, 65535).astype(np.uint16)
    out = da.copy(data=dn)
    out.attrs = {"scale_factor": 1e-4, "add_offset": 0.0, "long_name": "reflectance x 10000"}
    out.encoding = {}
    out = out.rio.write_crs(crs)
    out.rio.to_raster(path, driver="GTiff", compress="deflate", tiled=True, dtype="uint16")


def export(store_path: Any, out: str | os.PathLike, *, kinds: tuple[str, ...] = KINDS,
           rois: list[str] | None = None, storage_options: Mapping[str, Any] | None = None,
           out_options: Mapping[str, Any] | None = None, tag: str | None = None) -> list[str]:
    """Write the published layout of ``kinds`` (every finished ROI, or ``rois``) under ``out``, a folder or a
    URL (``az://``, ``s3://``, ``gs://``: written with obstore); returns the ROI folders (paths or URLs).

    The store is read through the public readers, at its latest version or at ``tag``.
    """
    target = parse_location(out, out_options)
    if target.is_local:
        return [str(p) for p in _export_to(store_path, target.path, kinds, rois, storage_options, tag)]
    import obstore

    remote = target.obstore()
    with tempfile.TemporaryDirectory(prefix="s2n-export-") as tmp:
        folders = _export_to(store_path, Path(tmp), kinds, rois, storage_options, tag)
        for f in sorted(Path(tmp).rglob("*")):
            if f.is_file():
                try:
                    obstore.put(remote, f.relative_to(tmp).as_posix(), f.read_bytes())
                except Exception as exc:  # noqa: BLE001 - the object store's own error, with the fix
                    from sen2naip_xr._safe import redact

                    raise StoreError(f"export to {target.url!r} failed ({redact(exc)[:300]}); check --out and its "
                                     "credentials") from exc
        return [f"{target.url}/{p.relative_to(tmp).as_posix()}" for p in folders]


def _export_to(store_path: Any, out: Path, kinds: tuple[str, ...], rois: list[str] | None,
               storage_options: Mapping[str, Any] | None, tag: str | None) -> list[Path]:
    import rioxarray  # noqa: F401

    store = existing_store(store_path, storage_options, tag=tag)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"--out {str(out)!r} cannot be created ({exc.strerror}); pass a writable folder") from exc
    written = []
    for kind in kinds:
        finished = store.rois(kind)
        names = finished if rois is None else [r for r in rois if r in set(finished)]
        for name in names:
            meta = store.attrs(f"{kind}/{name}")
            meta.pop("s2n:complete", None)
            groups = open_roi(store, kind, name)
            folder = out / kind / name
            try:
                if kind == "cross-sensor":
                    folder.mkdir(parents=True, exist_ok=True)
                    _tif(groups["lr"]["lr"], folder / "LR.tif")
                    _tif(groups["hr"]["hr"], folder / "HR.tif")
                    meta["histograms"] = groups["lr"]["hist"].values.tolist()
                    (folder / "metadata.json").write_text(dumps_strict(meta, indent=1, sort_keys=True))
                else:
                    for role, ds in groups.items():
                        sub = folder / str(role)
                        sub.mkdir(parents=True, exist_ok=True)
                        _tif(ds["hr"], sub / "HR.tif")
                        if "lr" in ds:
                            for h in ds.harmonizer.values:
                                lr = ds["lr"].sel(harmonizer=h).rename(y_lr="y", x_lr="x")
                                lr = lr.assign_coords(
                                    x=ds.x.values.reshape(-1, 4).mean(1), y=ds.y.values.reshape(-1, 4).mean(1)
                                ).rio.write_crs(ds.rio.crs)
                                _tif(lr, sub / f"LR_{h}.tif")
                        m = {**meta, **ds.attrs, "histograms": {str(h): ds["hist"].sel(harmonizer=h).values.tolist()
                                                                for h in ds.harmonizer.values}}
                        (sub / "metadata.json").write_text(dumps_strict(m, indent=1, sort_keys=True))
            except OSError as exc:
                raise StoreError(f"exporting {kind}/{name} to {str(folder)!r} failed ({exc.strerror}); "
                                 "free disk space or pass another --out") from exc
            written.append(folder)
    return written
