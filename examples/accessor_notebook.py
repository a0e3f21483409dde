# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # The `.s2n` accessor on a built dataset
#
# A jupytext notebook (`jupytext --to ipynb examples/accessor_notebook.py`), also a plain script:
# `python examples/accessor_notebook.py --out /tmp/nb`. It builds a small cross-sensor store offline from
# the embedded demo catalog, opens one ROI lazily, and uses the accessor to degrade the stored NAIP_h
# into S2-like images, next to the real Sentinel-2 of the same ROI.

# %%
import sys
from pathlib import Path

import numpy as np

import sen2naip_xr as s2n
from sen2naip_xr.demo import embedded_catalog
from sen2naip_xr.load import NoSigner

out = Path(sys.argv[sys.argv.index("--out") + 1]) if "--out" in sys.argv else Path("notebook-output")

# %% [markdown]
# ## A small store (5 ROIs of 128 px, in this process)

# %%
cat = embedded_catalog(out / "catalog", n_cross_sensor=5, n_synthetic=0, cross_sensor_size=128)
cands = s2n.search_pairs(cat.cross_sensor_rois, datetime=cat.datetime, client=cat.client, progress=False)
store = out / "dataset.zarr"
s2n.build_cross_sensor(cands, store, config=s2n.CrossSensorConfig(max_spectral_angle_deg=6.0),
                       run=s2n.RunConfig(scheduler="sync", progress=False), signer=NoSigner())
s2n.metadata_table(store)[["roi", "split", "QA_1", "QA_2", "shift_dy", "shift_dx"]]

# %% [markdown]
# ## One ROI, lazily: NAIP_h (2.5 m) and Sentinel-2 (10 m) with their CRS

# %%
roi = s2n.open_roi(store, "cross-sensor", 1)
hr, lr = roi["hr"].hr, roi["lr"].lr
print(hr.rio.crs, hr.rio.resolution(), lr.rio.resolution())

# %% [markdown]
# ## The accessor: every operator of the degradation model, one line each

# %%
# NAIP_h is NAIP matched to S2, whose dark pixels may be slightly negative (L2A's -1000 DN offset + noise):
# clip to [0, 1] before the harmonizers, which take reflectance in [0, 1]
sim = hr.clip(0, 1).s2n.degrade(["identity", "gamma_mvn"], noise="gaussian", seed=0)  # == s2n.degrade(...): a DataTree
print(sim["lr/lr"].rio.resolution(), sim["lr/lr"].rio.bounds() == lr.rio.bounds())  # its own 10 m grid
blurred = hr.s2n.blur_downsample()                                               # SEN2NAIP sigmas, x1/4
matched = blurred.s2n.histogram_match(lr.drop_vars("spatial_ref"))               # per band, skimage semantics
print("blank?", bool(hr.s2n.is_blank()))
for h in sim["lr/lr"].harmonizer.values:
    err = float(np.sqrt(((sim["lr/lr"].sel(harmonizer=h).values - lr.values) ** 2).mean()))
    print(f"{h:>14}: RMSE against the real S2 = {err:.4f}")
print("identity + blur, histogram-matched: RMSE", float(np.sqrt(((matched.values - lr.values) ** 2).mean())))
