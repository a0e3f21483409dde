"""The PyTorch (LR, HR) dataset over a store: configurations, determinism, workers, patches, laziness."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import sen2naip_xr as s2n
from sen2naip_xr.harmonize._numpy import histc
from sen2naip_xr.store._layout import DatasetStore

torch = pytest.importorskip("torch")  # the [torch] extra; `make install` installs it

LABELS = ["identity", "gamma_mvn_p25", "gamma_mvn_p75", "unet", "vae"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "ds.zarr"
    st = DatasetStore(path)
    st.init({"test": True})
    for i in range(4):
        groups = {}
        for role in ("early", "late"):
            naip = s2n.example_image(64, seed=10 * i + (role == "late"))
            deg = s2n.degrade(naip, ["identity", "gamma_mvn", "unet", "vae"], percentiles=(25, 75), device="cpu",
                              include_hr=False)
            hist = np.stack([histc(deg["lr/lr"].sel(harmonizer=h).values) for h in LABELS])
            ds = naip.drop_vars("spatial_ref").to_dataset(name="hr").assign_coords(harmonizer=LABELS)
            ds["hist"] = xr.DataArray(hist, dims=("harmonizer", "band", "bin"))
            groups[role] = ds
        st.write_roi("synthetic", f"ROI_{i + 1:05d}", groups, {"split": "train" if i < 3 else "test"})
        naip = s2n.example_image(64, seed=100 + i)
        cs = {"hr": naip.drop_vars("spatial_ref").to_dataset(name="hr"),
              "lr": s2n.blur_downsample(naip).drop_vars("spatial_ref").to_dataset(name="lr")}
        st.write_roi("cross-sensor", f"ROI_{i + 1:05d}", cs, {"split": "train" if i < 3 else "test"})
    return path


def test_configurations_pick_their_family(store):
    from sen2naip_xr.loaders.torch import SRDataset

    for conf, prefix in [("statistical", "gamma"), ("variational", "vae"), ("deterministic", "unet"),
                         ("raw", "raw")]:
        ds = SRDataset(store, configuration=conf, seed=1)
        assert len(ds) == 6  # 3 train ROIs x early/late
        s = ds[0]
        assert s["method"].startswith(prefix)
        assert s["lr"].shape == (4, 16, 16) and s["hr"].shape == (4, 64, 64)
        assert s["lr"].dtype == torch.float32
    methods = {SRDataset(store, configuration="all", seed=s)[0]["method"].split("_")[0] for s in range(12)}
    assert {"raw", "gamma", "vae", "unet"} <= methods


def test_samples_are_deterministic_and_epochs_differ(store):
    from sen2naip_xr.loaders.torch import SRDataset

    a, b = SRDataset(store, seed=3, patch=32), SRDataset(store, seed=3, patch=32)
    for i in range(len(a)):
        torch.testing.assert_close(a[i]["lr"], b[i]["lr"], rtol=0, atol=0)
        torch.testing.assert_close(a[i]["hr"], b[i]["hr"], rtol=0, atol=0)
    b.set_epoch(1)
    assert any(not torch.equal(a[i]["lr"], b[i]["lr"]) for i in range(len(a)))


def test_dataloader_workers_give_the_same_batches(store):
    from torch.utils.data import DataLoader

    from sen2naip_xr.loaders.torch import SRDataset

    ds = SRDataset(store, configuration="all", seed=5, patch=32)
    one = [b["lr"] for b in DataLoader(ds, batch_size=2, num_workers=0)]
    two = [b["lr"] for b in ds.loader(batch_size=2, num_workers=2)]  # spawned workers
    assert len(one) == 3
    for x, y in zip(one, two, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    # forked workers cannot use icechunk's I/O threads: a clear error, not a hang
    with pytest.raises(Exception, match="spawn"):
        list(DataLoader(ds, batch_size=2, num_workers=1, multiprocessing_context="fork", timeout=60))


def test_harmonized_hr_follows_the_stored_histogram(store):
    from sen2naip_xr.loaders.torch import SRDataset

    s = SRDataset(store, configuration="variational", seed=0)[0]
    lr = s["lr"].numpy()
    means = lr.mean(axis=(1, 2))
    raw = SRDataset(store, configuration="raw", seed=0)[0]["lr"].numpy().mean(axis=(1, 2))
    assert not np.allclose(means, raw, atol=0.01)  # harmonized, not raw NAIP


def test_cross_sensor_pairs_and_split(store):
    from sen2naip_xr.loaders.torch import SRDataset

    ds = SRDataset(store, part="cross-sensor", split="test", patch=16)
    assert len(ds) == 1
    s = ds[0]
    assert s["method"] == "real" and s["lr"].shape == (4, 4, 4) and s["hr"].shape == (4, 16, 16)


def test_bad_arguments(store):
    from sen2naip_xr.loaders.torch import SRDataset

    with pytest.raises(s2n.InputError, match="configuration='fancy'"):
        SRDataset(store, configuration="fancy")
    with pytest.raises(s2n.InputError, match="patch=30"):
        SRDataset(store, patch=30)
    with pytest.raises(s2n.StoreError, match="not a sen2naip_xr store"):
        SRDataset(store.parent / "missing.zarr")
    empty = DatasetStore(store.parent / "empty.zarr")
    empty.init({})
    with pytest.raises(s2n.InputError, match="holds no finished"):
        SRDataset(empty.path)
