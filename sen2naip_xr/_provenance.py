"""Provenance attributes: which operator made an array, with its parameters and the package version.

Every stage (load, ops, harmonize, degrade) records itself here, so the module sits in the base layer.
"""

from __future__ import annotations

from typing import Any

import xarray as xr

from sen2naip_xr._const import PROVENANCE_ATTR

__all__ = ["provenance", "chain_provenance"]


def provenance(operator: str, **params: Any) -> dict[str, str]:
    """Attrs recording which operator made an array, with its parameters and the package version.

    Parameters
    ----------
    operator
        Name of the operator (e.g. ``"blur_downsample"``).
    **params
        Its parameters (JSON-serialisable, or turned into text).

    Returns
    -------
    dict
        ``{"sen2naip_xr_provenance": JSON}`` to merge into the output's attrs.
    """
    from sen2naip_xr import __version__
    from sen2naip_xr._safe import dumps_strict

    return {PROVENANCE_ATTR: dumps_strict({"operator": operator, "version": __version__, **params}, sort_keys=True)}


def chain_provenance(da: xr.DataArray, new: dict[str, str]) -> dict[str, str]:
    """Append a provenance record (from :func:`provenance`) to the ones already on ``da``.

    Parameters
    ----------
    da
        The input of the operator; its ``sen2naip_xr_provenance`` attribute (a JSON list, oldest first, or
        text written by another tool, kept as a note) is read.
    new
        The operator's record, as returned by :func:`provenance`.

    Returns
    -------
    dict
        The attrs to set on the output: the JSON list with ``new`` appended.
    """
    import json

    from sen2naip_xr._safe import dumps_strict

    old = da.attrs.get(PROVENANCE_ATTR)
    records = []
    if old:
        try:
            parsed = json.loads(old)
        except (TypeError, ValueError):  # written by something else: kept, as text
            parsed = {"note": str(old)}
        records = parsed if isinstance(parsed, list) else [parsed]
    records.append(json.loads(new[PROVENANCE_ATTR]))
    return {PROVENANCE_ATTR: dumps_strict(records, sort_keys=True)}
