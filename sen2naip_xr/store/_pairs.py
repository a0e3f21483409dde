"""Read the cross-sensor part of a store back as stacked pairs (for fitting, validation and figures)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from sen2naip_xr.errors import StoreError

__all__ = ["cross_sensor_pairs"]


def cross_sensor_pairs(store: Any, *, split: str | None = None, limit: int | None = None,
                       storage_options: Mapping[str, Any] | None = None) -> xr.Dataset:
    """The finished cross-sensor ROIs of ``store`` (a path or URL) stacked along ``roi``.

    Returns a Dataset with ``naip`` (raw NAIP, 2.5 m), ``naip_h`` (NAIP histogram-matched to S2) with dims
    (roi, band, y, x) and ``s2`` (roi, band, y_lr, x_lr); ``roi`` coordinates ``roi_id`` and ``split``.
    ``split`` keeps only ``"train"`` or ``"test"`` ROIs.
    """
    from sen2naip_xr.store._open import existing_store

    st = existing_store(store, storage_options)
    if not st.has_group("cross-sensor"):
        raise StoreError(f"store={st.url!r} has no cross-sensor part; build it with `sen2naip-xr build cross-sensor`")
    index = st.index("cross-sensor")
    names, metas = [], []
    for name, entry in index.items():
        if entry.get("status") != "written":
            continue
        if split is None or entry.get("split") == split:
            names.append(name)
            metas.append({"roi_id": entry.get("roi_id"), "split": entry.get("split")})
        if limit and len(names) >= limit:
            break
    if not names:
        raise StoreError(f"store={st.url!r} has no finished cross-sensor ROI with split={split!r}; pass "
                         "split=None (`--split all` on the command line) to use every ROI")
    naip, naip_h, s2 = [], [], []
    for name in names:
        hr = st.load_dataset(f"cross-sensor/{name}/hr")
        lr = st.load_dataset(f"cross-sensor/{name}/lr")
        if "naip" not in hr:
            raise StoreError(f"{st.url}/cross-sensor/{name}/hr has no raw 'naip' variable (a store from an older "
                             "build); rebuild it")
        naip.append(hr["naip"].values)
        naip_h.append(hr["hr"].values)
        s2.append(lr["lr"].values)
    table = pd.DataFrame(metas)
    coords = {"roi": names, "roi_id": ("roi", table["roi_id"].astype(str).to_numpy()),
              "split": ("roi", table["split"].astype(str).to_numpy()),
              "band": ["red", "green", "blue", "nir"]}
    return xr.Dataset(
        {"naip": (("roi", "band", "y", "x"), np.stack(naip)),
         "naip_h": (("roi", "band", "y", "x"), np.stack(naip_h)),
         "s2": (("roi", "band", "y_lr", "x_lr"), np.stack(s2))},
        coords=coords, attrs={"store": st.url},
    )
