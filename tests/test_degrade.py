"""degrade(): the whole model, against the reference's pipe.forward, and the Dataset it returns."""

from __future__ import annotations

import json

import numpy as np
import pytest

import sen2naip_xr as s2n
from sen2naip_xr.config import HarmonizeConfig
from tests.conftest import as_da, assert_unet_hm_close


@pytest.mark.torch
def test_pipe_lr_parity(golden):
    """identity + gamma_multivariate_normal (the gamma the reference drew, u8 LUT) + unet at 2.5 m, no noise."""
    methods = [
        "identity",
        HarmonizeConfig(method="gamma_mvn", gamma=float(golden["pipe_gamma_value"][0]), quantize="u8"),
        HarmonizeConfig(method="unet", at="hr", device="cpu"),
    ]
    ds = s2n.degrade(as_da(golden["input"]), methods, noise="none")
    assert ds["lr/lr"].shape == golden["pipe_lr"].shape
    np.testing.assert_allclose(ds["lr/lr"].values[:2], golden["pipe_lr"][:2], atol=1e-6, rtol=0)
    np.testing.assert_allclose(ds["lr/lr"].values[2], golden["pipe_lr"][2], atol=1e-5, rtol=0)
    np.testing.assert_array_equal(ds["hr/hr"].values[0], golden["input"])
    assert_unet_hm_close(ds["hr/hr"].values[2], golden["unet_hm"])


@pytest.mark.torch
def test_dataset_layout_and_provenance():
    naip = s2n.example_image(size=128, seed=3)
    ds = s2n.degrade(naip, ["identity", "gamma_lognormal", "gamma_mvn", "unet", "vae"], percentiles=(25, 75),
                     seed=1, device="cpu")
    labels = ["identity", "gamma_lognormal_p25", "gamma_lognormal_p75", "gamma_mvn_p25", "gamma_mvn_p75",
              "unet", "vae"]
    assert ds["lr/harmonizer"].values.tolist() == labels and ds["hr/harmonizer"].values.tolist() == labels
    assert ds["hr/hr"].dims == ("harmonizer", "band", "y", "x") and ds["hr/hr"].shape == (7, 4, 128, 128)
    assert ds["lr/lr"].dims == ("harmonizer", "band", "y", "x") and ds["lr/lr"].shape == (7, 4, 32, 32)
    np.testing.assert_allclose(ds["lr/x"].values, naip.x.values.reshape(32, 4).mean(1))
    cfg = json.loads(ds.attrs["config"])
    assert [m["method"] for m in cfg["methods"]] == ["identity"] + ["gamma_lognormal"] * 2 + ["gamma_mvn"] * 2 + [
        "unet", "vae"]
    assert cfg["noise"] == {"model": "real", "seed": 1, "sigma": 0.012}
    assert ds["lr/lr"].sel(harmonizer="unet").shape == (4, 32, 32)
    assert np.isfinite(ds["lr/lr"].values).all()


def test_lr_noise_is_added_after_downsampling():
    naip = s2n.example_image(size=96, seed=4)
    clean = s2n.degrade(naip, ["identity"], noise="none")
    noisy = s2n.degrade(naip, ["identity"], noise="real", seed=2)
    np.testing.assert_array_equal(clean["hr/hr"].values, noisy["hr/hr"].values)
    d = (noisy["lr/lr"] - clean["lr/lr"]).values
    assert 0.001 < d.std() < 0.005
    gauss = s2n.degrade(naip, ["identity"], noise="gaussian", noise_sigma=0.012, seed=2)
    rms = np.sqrt((clean["lr/lr"].values[0].astype(np.float64) ** 2).mean(axis=(1, 2)))
    np.testing.assert_allclose((gauss["lr/lr"] - clean["lr/lr"]).values[0].std(axis=(1, 2)) / rms, 0.012, rtol=0.1)


def test_same_seed_same_bytes_and_other_seed_differs():
    naip = s2n.example_image(size=64, seed=5)
    a = s2n.degrade(naip, ["identity", "vae"], seed=7)
    b = s2n.degrade(naip, ["identity", "vae"], seed=7)
    c = s2n.degrade(naip, ["identity", "vae"], seed=8)
    np.testing.assert_array_equal(a["lr/lr"].values, b["lr/lr"].values)
    assert not np.array_equal(a["lr/lr"].values, c["lr/lr"].values)
    # each variant draws its own noise: the identity noise is not the vae noise
    na = a["lr/lr"].values - s2n.degrade(naip, ["identity", "vae"], noise="none")["lr/lr"].values
    assert not np.allclose(na[0], na[1])


@pytest.mark.parametrize("blur_mode", ["sen2naip", "raw"])
def test_blur_mode_and_sigma_are_passed_through(blur_mode):
    naip = s2n.example_image(size=64, seed=6)
    ds = s2n.degrade(naip, ["identity"], noise="none", blur_mode=blur_mode, sigma=(1.0, 1.0, 1.0, 1.0))
    expected = s2n.blur_downsample(naip, (1.0, 1.0, 1.0, 1.0), mode=blur_mode)
    np.testing.assert_array_equal(ds["lr/lr"].values[0], expected.values)


def test_include_hr_false_returns_the_same_lr_only():
    naip = s2n.example_image(size=64, seed=8)
    full = s2n.degrade(naip, ["identity", "gamma_mvn"], seed=3)
    lr_only = s2n.degrade(naip, ["identity", "gamma_mvn"], seed=3, include_hr=False)
    assert list(lr_only.children) == ["lr"] and list(full.children) == ["hr", "lr"]
    np.testing.assert_array_equal(full["lr/lr"].values, lr_only["lr/lr"].values)


def test_degrade_accepts_arrays_with_foreign_provenance_text():
    """Provenance written by another tool (plain text) is kept as a note, not a JSON error."""
    naip = s2n.example_image(size=32, seed=9)
    naip.attrs["sen2naip_xr_provenance"] = "made by hand"
    ds = s2n.degrade(naip, ["identity"], noise="none")
    lr = s2n.blur_downsample(naip)
    records = json.loads(lr.attrs["sen2naip_xr_provenance"])
    assert records[0] == {"note": "made by hand"} and records[-1]["operator"] == "blur_downsample"
    assert ds["lr/lr"].shape == (1, 4, 8, 8)
