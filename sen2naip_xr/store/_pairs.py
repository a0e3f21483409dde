"""Read the cross-sensor part of a store back as stacked pairs (for fitting, validation and figures)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from sen2naip_xr.errors import StoreError
from sen2naip_xr.store._layout import DatasetStore

__all__ = ["cross_sensor_pairs"]


def cross_sensor_pairs(store: str | Path, *, split: str | None = None, limit: int | None = None) -> xr.Dataset:
    """The finished cross-sensor ROIs of ``store`` stacked along ``roi``.

    Returns a Dataset with ``naip`` (raw NAIP, 2.5 m), ``naip_h`` (NAIP histogram-matched to S2) with dims
    (roi, band, y, x) and ``s2`` (roi, band, y_lr, x_lr); ``roi`` coordinates ``roi_id`` and ``split``.
    ``split`` keeps only ``"train"`` or ``"test"`` ROIs.
    """
    st = DatasetStore(store)
    if not (Path(store) / "cross-sensor").is_dir():
        raise StoreError(f"store={str(store)!r} has no cross-sensor part; build it with `sen2naip-xr build cross-sensor`")
    names, metas = [], []
    for name in st.rois("cross-sensor"):
        meta = json.loads((st.roi_path("cross-sensor", name) / "zarr.json").read_text()).get("attributes", {})
        if split is None or meta.get("split") == split:
            names.append(name)
            metas.append(meta)
        if limit and len(names) >= limit:
            break
    if not names:
        raise StoreError(f"store={str(store)!r} has no finished cross-sensor ROI with split={split!r}; pass "
                         "split=None (`--split all` on the command line) to use every ROI")
    naip, naip_h, s2 = [], [], []
    for name in names:
        root = st.roi_path("cross-sensor", name)
        hr = xr.open_zarr(root / "hr", consolidated=False, chunks=None)
        lr = xr.open_zarr(root / "lr", consolidated=False, chunks=None)
        if "naip" not in hr:
            raise StoreError(f"{root}/hr has no raw 'naip' variable (a store from an older build); rebuild it")
        naip.append(hr["naip"].values)
        naip_h.append(hr["hr"].values)
        s2.append(lr["lr"].values)
    table = pd.DataFrame(metas)
    coords = {"roi": names, "roi_id": ("roi", table.get("roi_id", pd.Series(names)).astype(str).to_numpy()),
              "split": ("roi", table.get("split", pd.Series([""] * len(names))).astype(str).to_numpy()),
              "band": ["red", "green", "blue", "nir"]}
    return xr.Dataset(
        {"naip": (("roi", "band", "y", "x"), np.stack(naip)),
         "naip_h": (("roi", "band", "y", "x"), np.stack(naip_h)),
         "s2": (("roi", "band", "y_lr", "x_lr"), np.stack(s2))},
        coords=coords, attrs={"store": str(store)},
    )
