"""Band metadata fixes and radiometry: NAIP ``raster:bands``, the S2 -1000 offset."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pystac

from sen2naip_xr.errors import InputError

__all__ = ["with_naip_bands", "s2_offset", "NAIP_RASTER_BANDS"]

#: What Planetary Computer's NAIP ``image`` asset lacks: four uint8 bands, no nodata (NIR may be
#: tagged alpha in the file; it is data).
NAIP_RASTER_BANDS: list[dict[str, Any]] = [
    {"data_type": "uint8", "spatial_resolution": None} for _ in range(4)
]


def with_naip_bands(item: pystac.Item, asset: str = "image") -> pystac.Item:
    """A copy of a NAIP item whose ``asset`` carries ``raster:bands`` (and STAC 1.1 ``bands``).

    Planetary Computer publishes only ``eo:bands`` on the NAIP ``image`` asset; odc-stac 0.5.3
    counts bands from ``raster:bands`` and raises ``KeyError: ('image', 2)`` without them.
    Existing ``raster:bands`` are kept.
    """
    if asset not in item.assets:
        raise InputError(
            f"NAIP item {item.id!r} has no asset {asset!r} (assets: {sorted(item.assets)}); "
            "pass naip_asset= the key of its 4-band COG"
        )
    out = item.clone()
    a = out.assets[asset]
    eo = a.extra_fields.get("eo:bands") or [{"common_name": c} for c in ("red", "green", "blue", "nir")]
    if not a.extra_fields.get("raster:bands"):
        a.extra_fields["raster:bands"] = [
            {"data_type": "uint8", **({"spatial_resolution": float(out.properties["gsd"])} if out.properties.get("gsd") else {})}
            for _ in eo
        ]
    if not a.extra_fields.get("bands"):
        a.extra_fields["bands"] = [
            {"name": b.get("name", b.get("common_name")), "eo:common_name": b.get("common_name"), "data_type": "uint8"}
            for b in eo
        ]
    if "https://stac-extensions.github.io/raster/v1.1.0/schema.json" not in out.stac_extensions:
        out.stac_extensions.append("https://stac-extensions.github.io/raster/v1.1.0/schema.json")
    return out


def s2_offset(properties: Mapping[str, Any]) -> float:
    """BOA offset of a Sentinel-2 L2A item: -1000 from processing baseline 04.00 on, else 0.

    Planetary Computer items carry no scale/offset; the offset is implied by
    ``s2:processing_baseline`` (ESA introduced it with baseline 04.00, 2022-01-25).
    """
    pb = properties.get("s2:processing_baseline")
    if pb is None:
        raise InputError(
            "a Sentinel-2 item lacks s2:processing_baseline, so its BOA offset is unknown; "
            "set the property (e.g. '04.00') on the item"
        )
    try:
        value = float(str(pb))
    except ValueError as exc:
        raise InputError(f"s2:processing_baseline={pb!r} is not a number like '04.00'") from exc
    return -1000.0 if value >= 4.0 else 0.0
