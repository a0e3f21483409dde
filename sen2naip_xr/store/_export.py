"""``export``: the published SEN2NAIP layout, as Cloud-Optimized GeoTIFFs with ``metadata.json``.

::

    <out>/cross-sensor/ROI_xxxxx/LR.tif           Sentinel-2 (10 m)
                                 HR.tif           NAIP_h (2.5 m)
                                 metadata.json    Table 1 metadata + the LR band histograms
    <out>/synthetic/ROI_xxxxx/{early,late}/HR.tif            NAIP (2.5 m)
                                           metadata.json     metadata + per-harmonizer 120-bin histograms
                                           LR_<harmonizer>.tif   (only when the store has the LR arrays)

Rasters are written by GDAL's COG driver (through rasterio): uint16 DN = round(reflectance x 10000) with
scale 1e-4 and offset 0 per band (so ``DN * scale + offset`` is reflectance), nodata 65535 (NaN pixels;
valid DN are clipped to 0..65534), band descriptions Red, Green, Blue, NIR, colour interpretation
red/green/blue/undefined, deflate with the horizontal predictor, 256 px tiles and overviews.

Each ROI is read through the public readers (:func:`~sen2naip_xr.store.open_roi`,
:func:`~sen2naip_xr.store.metadata_table`), written into a local temporary folder, and that folder is then
placed at its destination (:func:`_place`), so a reader of ``<out>`` never sees a half-written ROI.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from sen2naip_xr._const import BANDS, FACTOR
from sen2naip_xr._safe import dumps_strict
from sen2naip_xr.errors import StoreError
from sen2naip_xr.store._layout import KINDS
from sen2naip_xr.store._location import parse_location
from sen2naip_xr.store._open import existing_store, open_roi

__all__ = ["export", "write_cog", "NODATA", "SCALE", "BAND_DESCRIPTIONS"]

#: DN of NaN (no data) pixels; valid DN are clipped to 0..NODATA-1.
NODATA = 65535
#: reflectance = DN * SCALE (offset 0).
SCALE = 1e-4
#: Band descriptions of every exported raster, in :data:`~sen2naip_xr.BANDS` order.
BAND_DESCRIPTIONS = ("Red", "Green", "Blue", "NIR")
_COG_OPTIONS = {"COMPRESS": "DEFLATE", "PREDICTOR": "2", "BLOCKSIZE": "256", "OVERVIEWS": "AUTO",
                "OVERVIEW_RESAMPLING": "AVERAGE"}


def _to_dn(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    dn = np.clip(np.round(np.nan_to_num(values, nan=0.0) * 10000.0), 0, NODATA - 1).astype(np.uint16)
    dn[np.isnan(values)] = NODATA
    return dn


def write_cog(values: np.ndarray, path: str | os.PathLike, *, crs: Any, transform: Any,
              tags: dict[str, Any] | None = None) -> Path:
    """Write reflectance ``values`` (band, y, x; R, G, B, NIR) as a uint16 COG at ``path``.

    ``crs`` and ``transform`` (an affine) georeference it; ``tags`` become dataset tags (strings).
    """
    import rasterio
    import rasterio.shutil
    from rasterio.enums import ColorInterp

    path = Path(path)
    dn = _to_dn(values)
    if dn.ndim != 3 or dn.shape[0] != len(BANDS):
        raise StoreError(f"an exported image must be ({len(BANDS)}, y, x), got {dn.shape}")
    src = path.with_name(f".{path.name}.src.tif")
    profile = dict(driver="GTiff", width=dn.shape[2], height=dn.shape[1], count=dn.shape[0], dtype="uint16",
                   crs=crs, transform=transform, nodata=NODATA, photometric="RGB", tiled=True,
                   blockxsize=256, blockysize=256)
    try:
        with rasterio.open(src, "w", **profile) as dst:
            dst.write(dn)
            dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined]
            dst.descriptions = BAND_DESCRIPTIONS
            dst.scales = (SCALE,) * len(BANDS)
            dst.offsets = (0.0,) * len(BANDS)
            dst.update_tags(**{k: str(v) for k, v in (tags or {}).items() if v is not None})
            for i, name in enumerate(BAND_DESCRIPTIONS, 1):
                dst.update_tags(i, band=name, units="reflectance x 10000")
        rasterio.shutil.copy(src, path, driver="COG", **_COG_OPTIONS)
    finally:
        src.unlink(missing_ok=True)
    return path


def _grid(ds: xr.Dataset) -> tuple[Any, Any]:
    import rioxarray  # noqa: F401  (registers .rio)

    return ds.rio.crs, ds.rio.transform(recalc=True)


def _tags(meta: dict[str, Any], **extra: Any) -> dict[str, Any]:
    keep = ("roi", "roi_id", "split", "s2_id", "s2_date", "naip_id", "naip_date")
    return {**{k: meta[k] for k in keep if k in meta and not isinstance(meta[k], (dict, list))}, **extra}


def _write_json(path: Path, value: Any) -> None:
    path.write_text(dumps_strict(value, indent=1, sort_keys=True))


def _cross_sensor(groups: dict, meta: dict, folder: Path) -> None:
    lr, hr = groups["lr"], groups["hr"]
    crs, transform = _grid(lr)
    write_cog(lr["lr"].values, folder / "LR.tif", crs=crs, transform=transform,
              tags=_tags(meta, image="Sentinel-2 L2A (10 m)"))
    crs, transform = _grid(hr)
    write_cog(hr["hr"].values, folder / "HR.tif", crs=crs, transform=transform,
              tags=_tags(meta, image="NAIP histogram-matched to Sentinel-2 (2.5 m)"))
    out = dict(meta)
    if "hist" in lr:
        out["histograms"] = lr["hist"].values.tolist()
        out["histogram_bins"] = _bin_edges(lr)
    _write_json(folder / "metadata.json", out)


def _synthetic(groups: dict, meta: dict, folder: Path) -> None:
    from affine import Affine

    for role, ds in groups.items():
        sub = folder / str(role)
        sub.mkdir(parents=True)
        crs, transform = _grid(ds)
        write_cog(ds["hr"].values, sub / "HR.tif", crs=crs, transform=transform,
                  tags=_tags(meta, image=f"NAIP, {role} capture (2.5 m)", naip_id=ds.attrs.get("naip_id")))
        labels = [str(h) for h in ds["harmonizer"].values] if "harmonizer" in ds.coords else []
        if "lr" in ds:
            for h in labels:
                write_cog(ds["lr"].sel(harmonizer=h).values, sub / f"LR_{h}.tif", crs=crs,
                          transform=transform * Affine.scale(FACTOR),
                          tags=_tags(meta, image=f"S2-like, harmonizer {h} (10 m)"))
        out = {**meta, **ds.attrs}
        if "hist" in ds:
            out["histograms"] = {h: ds["hist"].sel(harmonizer=h).values.tolist() for h in labels}
            out["histogram_bins"] = _bin_edges(ds)
        _write_json(sub / "metadata.json", out)


def _bin_edges(ds: xr.Dataset) -> list[float] | None:
    """Edges of the histogram bins, from the ``bin`` coordinate (centres, ``bin_width``)."""
    if "bin" not in ds.coords or "bin_width" not in ds["bin"].attrs:
        return None
    centres, width = np.asarray(ds["bin"].values, np.float64), float(ds["bin"].attrs["bin_width"])
    return np.concatenate([centres - width / 2, centres[-1:] + width / 2]).round(12).tolist()


def _place(tmp_folder: Path, dest: Path) -> None:
    """Move a finished ROI folder into place (replacing an earlier export of it)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.move(str(tmp_folder), str(dest))


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
        if not store.has_group(kind):
            continue
        finished = store.rois(kind)
        names = finished if rois is None else [r for r in rois if r in set(finished)]
        for name in names:
            meta = store.attrs(f"{kind}/{name}")
            for internal in ("s2n:complete", "provenance"):
                meta.pop(internal, None)
            dest = out / kind / name
            try:
                with tempfile.TemporaryDirectory(prefix=".s2n-export-", dir=out) as tmp:
                    folder = Path(tmp) / name
                    folder.mkdir()
                    groups = open_roi(store, kind, name)
                    (_cross_sensor if kind == "cross-sensor" else _synthetic)(groups, meta, folder)
                    _place(folder, dest)
            except OSError as exc:
                raise StoreError(f"exporting {kind}/{name} to {str(dest)!r} failed ({exc.strerror}); "
                                 "free disk space or pass another --out") from exc
            written.append(dest)
    return written
