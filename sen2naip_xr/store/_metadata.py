"""Per-ROI metadata (the paper's Table 1), the train/test split, georeferenced groups, provenance."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from sen2naip_xr import _rng
from sen2naip_xr._const import BANDS, HR_RES, LR_RES
from sen2naip_xr._safe import clean_url, dumps_strict, redact_tree

__all__ = ["split_of", "clean_href", "georeferenced", "roi_metadata", "provenance_record", "TABLE1_FIELDS"]

#: Table 1 of the paper: the metadata every cross-sensor ROI carries (synthetic ROIs: the NAIP ones).
TABLE1_FIELDS: tuple[str, ...] = (
    "roi_id", "split", "s2_id", "s2_date", "s2_processing_baseline", "s2_view_zenith", "s2_view_azimuth",
    "s2_sun_zenith", "s2_sun_azimuth", "naip_id", "naip_date", "proj:epsg", "proj:geometry", "proj:centroid",
    "proj:transform", "QA_1", "QA_2",
)


def split_of(roi_id: str, *, train_fraction: float = 0.8) -> str:
    """``"train"`` or ``"test"``: a hash of the ROI id, so 80/20 whatever the run, the order or the workers."""
    u = (_rng.derive_key(0, "split", roi_id) >> 11) / 2**53
    return "train" if u < train_fraction else "test"


def clean_href(href: str) -> str:
    """``href`` without a SAS token or any other credential, ``?`` query or ``;`` matrix parameters
    alike (:func:`sen2naip_xr._safe.clean_url`); other parameters keep their text and order."""
    return clean_url(href)


def georeferenced(data: np.ndarray, *, name: str, x_min: float, y_max: float, res: float, epsg: int,
                  attrs: Mapping[str, Any] | None = None) -> xr.Dataset:
    """A ``(band, y, x)`` array as a Dataset with pixel-centre coordinates and a CF ``spatial_ref``: what
    ``rio.write_crs(...).rio.write_transform(...)`` writes, with the CRS part made once per EPSG code."""
    from affine import Affine

    n_y, n_x = data.shape[-2:]
    x = x_min + res * (np.arange(n_x) + 0.5)
    y = y_max - res * (np.arange(n_y) + 0.5)
    transform = Affine(float(res), 0.0, float(x_min), 0.0, -float(res), float(y_max))
    ref = {**_grid_mapping(int(epsg)), "GeoTransform": " ".join(str(v) for v in transform.to_gdal())}
    ds = xr.Dataset({name: xr.Variable(("band", "y", "x"), data, attrs=dict(attrs or {}))},
                    coords={"band": list(BANDS), "y": y, "x": x, "spatial_ref": xr.Variable((), 0, attrs=ref)})
    ds[name].encoding["grid_mapping"] = "spatial_ref"
    return ds


@functools.lru_cache(maxsize=128)
def _grid_mapping(epsg: int) -> dict[str, Any]:
    """The CF grid-mapping attributes rioxarray writes for ``EPSG:<epsg>`` (without the GeoTransform)."""
    import rioxarray  # noqa: F401

    one = xr.DataArray(np.zeros((1, 1), np.uint8), dims=("y", "x"), coords={"y": [0.5], "x": [0.5]})
    attrs = dict(one.rio.write_crs(f"EPSG:{epsg}").coords["spatial_ref"].attrs)
    attrs.pop("GeoTransform", None)
    return attrs


def _date(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return None
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ") if pd.Timestamp(value).tzinfo \
        else pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(v) else v


def roi_metadata(roi: Mapping[str, Any], *, name: str, pair: Mapping[str, Any] | None = None,
                 s2_item: Any = None, naip_item: Any = None, qa: Mapping[str, float] | None = None,
                 size: int | None = None) -> dict[str, Any]:
    """Table 1 of the paper for one ROI: ids, dates, angles, projection and QA.

    ``roi`` is a row of the ROI/pairs table, ``pair`` the chosen candidate (cross-sensor), ``qa`` the
    QA values; ``proj:*`` describe the HR (2.5 m) grid.
    """
    from pyproj import Transformer

    epsg = int(roi["epsg"])
    side = int(size or roi["size"]) * float(roi.get("res", HR_RES))
    x0, y1 = float(roi["x_min"]), float(roi["y_max"])
    ring = [[x0, y1], [x0 + side, y1], [x0 + side, y1 - side], [x0, y1 - side], [x0, y1]]
    lon, lat = Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True).transform(x0 + side / 2, y1 - side / 2)
    meta: dict[str, Any] = {
        "roi": name,
        "roi_id": str(roi["roi_id"]),
        "split": split_of(str(roi["roi_id"])),
        "proj:epsg": epsg,
        "proj:geometry": {"type": "Polygon", "coordinates": [ring]},
        "proj:centroid": {"lat": round(float(lat), 7), "lon": round(float(lon), 7)},
        "proj:transform": [float(roi.get("res", HR_RES)), 0.0, x0, 0.0, -float(roi.get("res", HR_RES)), y1],
        "lr_transform": [LR_RES, 0.0, x0, 0.0, -LR_RES, y1],
    }
    if pair is not None:
        p = dict(pair)
        props = dict(getattr(s2_item, "properties", {}) or {})
        meta.update({
            "s2_id": p.get("s2_id"),
            "s2_date": _date(p.get("s2_datetime")),
            "s2_processing_baseline": p.get("s2:processing_baseline") or props.get("s2:processing_baseline"),
            "s2_view_zenith": _num(props.get("view:incidence_angle", p.get("view:incidence_angle"))),
            "s2_view_azimuth": _num(props.get("view:azimuth", p.get("view:azimuth"))),
            "s2_sun_zenith": _num(p.get("s2:mean_solar_zenith", props.get("s2:mean_solar_zenith"))),
            "s2_sun_azimuth": _num(p.get("s2:mean_solar_azimuth", props.get("s2:mean_solar_azimuth"))),
            "s2_cloud_cover": _num(p.get("eo:cloud_cover")),
            "dt_days": _num(p.get("dt_days")),
        })
    if naip_item is not None or (pair is not None and "naip_id" in pair):
        p = dict(pair or {})
        meta["naip_id"] = p.get("naip_id") or getattr(naip_item, "id", None)
        meta["naip_date"] = _date(p.get("naip_datetime") or getattr(naip_item, "datetime", None))
    if qa is not None:
        meta.update({k: (None if v is None or not np.isfinite(v) else round(float(v), 6)) for k, v in qa.items()})
    return meta


def provenance_record(config: Mapping[str, Any], hrefs: Sequence[str]) -> str:
    """Strict JSON: package and version, the build configuration (its strings redacted: storage
    options or a catalog URL may carry credentials) and the asset hrefs read (no SAS token)."""
    from sen2naip_xr import __version__

    return dumps_strict({"package": "sen2naip_xr", "version": __version__, "config": redact_tree(dict(config)),
                         "hrefs": sorted({clean_href(h) for h in hrefs})}, sort_keys=True)


def hist_bin_coord(bins: int = 120) -> xr.Variable:
    """The ``bin`` coordinate of the stored histograms: reflectance at the centre of each of ``bins`` equal
    bins over [0, 1] (``torch.histc(x, bins, min=0, max=1)``), with the bin width in the attributes."""
    centres = (np.arange(bins, dtype=np.float64) + 0.5) / bins
    return xr.Variable(("bin",), centres, attrs={
        "long_name": f"reflectance at the bin centre ({bins} equal bins over [0, 1])", "units": "1",
        "bin_width": 1.0 / bins})
