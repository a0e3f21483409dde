"""One degradation chain: SRDataset degrades with the model the store was built with (issue 10, point 1)."""

from __future__ import annotations

import numpy as np
import pytest

import sen2naip_xr as s2n
from sen2naip_xr.harmonize.kernels import BIN_CENTRES
from sen2naip_xr.ops import kernels
from sen2naip_xr.pipeline import RunConfig, SyntheticConfig, build_synthetic

pytest.importorskip("torch")
from sen2naip_xr.loaders.torch import SRDataset, recorded_model  # noqa: E402

SYNC = RunConfig(scheduler="sync", progress=False)
SIGMA = (1.5, 1.6, 1.7, 2.2)  # not the published (3.0, 2.9, 2.9, 3.4)


@pytest.fixture(scope="module")
def fitted():
    matrix = np.zeros((101, 101))
    matrix[:, 100] = 1.0  # every pixel gets the largest noise value, REAL_NOISE_VALUES[100]
    return s2n.DegradationModel(sigma=SIGMA, noise_matrix=matrix, source="test-fitted")


@pytest.fixture(scope="module")
def store(sy_cands, tmp_path_factory, fitted):
    path = tmp_path_factory.mktemp("chain") / "ds.zarr"
    cfg = SyntheticConfig(methods=("gamma_mvn",), device="cpu", model=fitted)
    build_synthetic(sy_cands, path, config=cfg, run=SYNC, signer=s2n.load.NoSigner())
    return path




def test_the_store_records_the_validated_model(store, fitted):
    st = s2n.DatasetStore(store)
    assert recorded_model(st) == fitted
    assert st.attrs("synthetic")["config"]["model"]["sigma"] == list(SIGMA)


def test_srdataset_degrades_with_the_recorded_model(store, fitted):
    ds = SRDataset(store, configuration="statistical", split=None, noise="none")
    assert ds.model == fitted
    hr = ds[0]["hr"].numpy()
    lr = ds[0]["lr"].numpy()
    np.testing.assert_array_equal(lr, kernels.degrade_lr(hr, SIGMA, noise="none"))
    published = kernels.degrade_lr(hr, s2n.config.SEN2NAIP_SIGMA, noise="none")
    assert np.abs(lr - published).max() > 1e-3  # the sigma matters: a hard-coded one would be caught


def test_srdataset_adds_the_recorded_noise_matrix(store):
    clean = SRDataset(store, configuration="statistical", split=None, noise="none")[0]["lr"].numpy()
    noisy = SRDataset(store, configuration="statistical", split=None, noise="real")[0]["lr"].numpy()
    np.testing.assert_allclose(noisy - clean, kernels.REAL_NOISE_VALUES[100], atol=1e-6)


def test_model_overrides_the_recorded_one(store, tmp_path):
    published = SRDataset(store, configuration="statistical", split=None, noise="none", model=s2n.DegradationModel())
    sample = published[0]
    np.testing.assert_array_equal(sample["lr"].numpy(),
                                  kernels.degrade_lr(sample["hr"].numpy(), s2n.config.SEN2NAIP_SIGMA, noise="none"))
    path = tmp_path / "m.json"
    s2n.DegradationModel(sigma=(2.0,) * 4).save(path)
    assert SRDataset(store, configuration="statistical", split=None, model=path).model.sigma == (2.0,) * 4
    with pytest.raises(s2n.InputError, match="readable model JSON"):
        SRDataset(store, split=None, model=tmp_path / "missing.json")


def test_harmonized_hr_matches_the_stored_histogram(store):
    """The HR of a sample is the stored NAIP matched to the stored histogram of the drawn harmonizer."""
    from sen2naip_xr.store import open_roi

    ds = SRDataset(store, configuration="statistical", split=None, noise="none")
    name, role = ds.samples[0]
    stored = open_roi(store, "synthetic", name, role)
    hist = stored.hist.sel(harmonizer="gamma_mvn_p50").values.astype(np.float64)
    hr = ds[0]["hr"].numpy()
    for b in range(4):
        q = np.cumsum(hist[b]) / hist[b].sum()
        keep = np.diff(q, prepend=0.0) > 0
        np.testing.assert_array_equal(hr[b], kernels.match_band(stored.hr.values[b], BIN_CENTRES[keep], q[keep]))
