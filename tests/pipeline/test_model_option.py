"""Both builders accept a fitted model (sen2naip-xr fit) in place of the published one."""

from __future__ import annotations

import numpy as np
import pytest

import sen2naip_xr as s2n
from sen2naip_xr.pipeline import (
    CrossSensorConfig,
    RunConfig,
    SyntheticConfig,
    build_cross_sensor,
    build_synthetic,
)

SYNC = RunConfig(scheduler="sync", progress=False)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.json"
    matrix = np.zeros((101, 101))
    matrix[:, 100] = 1.0  # every pixel gets the largest noise value: easy to see
    s2n.DegradationModel(mvn_mean=(0.9, 0.9, 0.9, 0.9), mvn_cov=np.eye(4) * 1e-6, sigma=(2.0, 2.0, 2.0, 2.0),
                         noise_matrix=matrix, source="test").save(path)
    return path


def _hist(store, name):
    ds = s2n.DatasetStore(store).open_dataset(f"synthetic/{name}/early")
    return ds.hist.sel(harmonizer="gamma_mvn_p50").values


def test_synthetic_uses_the_fitted_gamma_sigma_and_noise(sy_cands, tmp_path, model_path):
    base = SyntheticConfig(methods=("gamma_mvn",), store_lr=True, device="cpu")
    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    build_synthetic(sy_cands, a, config=base, run=SYNC, signer=s2n.load.NoSigner())
    build_synthetic(sy_cands, b, config=base.replace(model=str(model_path)), run=SYNC, signer=s2n.load.NoSigner())
    name = s2n.DatasetStore(a).rois("synthetic")[0]
    assert not np.array_equal(_hist(a, name), _hist(b, name))
    lr_a = s2n.DatasetStore(a).open_dataset(f"synthetic/{name}/early").lr.values
    lr_b = s2n.DatasetStore(b).open_dataset(f"synthetic/{name}/early").lr.values
    assert lr_b.mean() > lr_a.mean() + 0.05  # gamma 0.9 is far brighter than the published ~0.35


def test_cross_sensor_uses_the_fitted_sigma_for_qa(cs_cands, tmp_path, model_path):
    out_a, out_b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    build_cross_sensor(cs_cands, out_a, config=CrossSensorConfig(), run=SYNC, signer=s2n.load.NoSigner())
    build_cross_sensor(cs_cands, out_b, config=CrossSensorConfig(model=str(model_path)), run=SYNC,
                       signer=s2n.load.NoSigner())
    qa_a = s2n.metadata_table(out_a, "cross-sensor").set_index("roi")["QA_2"]
    qa_b = s2n.metadata_table(out_b, "cross-sensor").set_index("roi")["QA_2"]
    common = qa_a.index.intersection(qa_b.index)
    assert len(common) and not np.allclose(qa_a[common], qa_b[common])


def test_an_unreadable_model_fails_when_configured(tmp_path):
    with pytest.raises(s2n.InputError, match="readable model JSON"):
        SyntheticConfig(model=str(tmp_path / "missing.json"))
    with pytest.raises(s2n.InputError, match="readable model JSON"):
        CrossSensorConfig(model=str(tmp_path / "missing.json"))
