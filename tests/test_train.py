"""Training the networks from pairs; checkpoints plug into the inference path."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import sen2naip_xr as s2n
from sen2naip_xr.train import train_unet, train_vae

torch = pytest.importorskip("torch")  # the [torch] extra is installed by `make install`; CI has it


@pytest.fixture(scope="module")
def pairs():
    naips, s2s = [], []
    for i in range(4):
        x = s2n.example_image(64, seed=200 + i)
        naips.append(x.values)
        s2s.append(s2n.blur_downsample(x ** (1 / 0.5), (2.5,) * 4).values)
    dims = ("pair", "band", "y", "x")
    return xr.DataArray(np.stack(naips), dims=dims), xr.DataArray(np.stack(s2s), dims=dims)


def test_small_unet_trains_and_plugs_into_harmonize(pairs, tmp_path):
    naip, s2 = pairs
    res = train_unet(naip, s2, tmp_path / "unet.pt", arch="small", epochs=15, lr=3e-3, device="cpu",
                     progress=False)
    assert res.losses[-1] < res.losses[0]
    again = train_unet(naip, s2, tmp_path / "unet2.pt", arch="small", epochs=15, lr=3e-3, device="cpu",
                       progress=False)
    assert again.losses == res.losses  # deterministic for a seed on CPU
    img = naip.isel(pair=0)
    out = s2n.harmonize(img, "unet", checkpoint=res.checkpoint, device="cpu")
    assert out.shape == img.shape and np.isfinite(out.values).all()
    assert not np.allclose(out.values, s2n.harmonize(img, "unet", device="cpu").values)
    big = s2n.example_image(96, seed=9)  # a scripted model runs at any size
    assert s2n.harmonize(big, "unet", checkpoint=res.checkpoint, device="cpu").shape == big.shape


@pytest.mark.slow
def test_published_unet_fine_tunes(pairs, tmp_path):
    naip, s2 = pairs
    res = train_unet(naip, s2, tmp_path / "unet_ft.pt", arch="published", epochs=2, lr=1e-4, batch_size=2,
                     device="cpu", progress=False)
    assert len(res.losses) == 2 and np.isfinite(res.losses).all()
    out = s2n.harmonize(naip.isel(pair=0), "unet", checkpoint=res.checkpoint, device="cpu")
    assert np.isfinite(out.values).all()


def test_vae_trains_and_plugs_into_the_numpy_vae(pairs, tmp_path):
    naip, s2 = pairs
    res = train_vae(naip, s2, tmp_path / "vae.pt", epochs=30, device="cpu", progress=False)
    assert res.losses[-1] < res.losses[0]
    img = naip.isel(pair=0)
    out = s2n.harmonize(img, "vae", checkpoint=res.checkpoint)
    assert np.isfinite(out.values).all()
    assert not np.array_equal(out.values, s2n.harmonize(img, "vae").values)


def test_bad_checkpoint_is_a_clear_error(tmp_path, pairs):
    naip, _ = pairs
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a zip")
    with pytest.raises(s2n.WeightsError, match="not a VAE state dict"):
        s2n.harmonize(naip.isel(pair=0), "vae", checkpoint=bad)
    with pytest.raises(s2n.WeightsError, match="does not exist"):
        s2n.harmonize(naip.isel(pair=0), "unet", checkpoint=tmp_path / "missing.pt")
