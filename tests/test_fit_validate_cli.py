"""`sen2naip-xr fit` and `sen2naip-xr validate` on a store whose S2 images follow a known degradation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import ndimage

import sen2naip_xr as s2n
from sen2naip_xr.cli import main
from sen2naip_xr.ops import _numpy as ops
from sen2naip_xr.store import cross_sensor_pairs
from sen2naip_xr.store._layout import DatasetStore

GAMMA = np.array([0.36, 0.34, 0.38, 0.47])  # near the published MVN mean: S2 is much darker than NAIP
SIGMA = np.array([3.2, 2.8, 2.6, 3.6])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("fitstore") / "ds.zarr"
    st = DatasetStore(path)
    st.init({"demo_truth": {"gamma": GAMMA.tolist(), "sigma": SIGMA.tolist()}})
    rng = np.random.default_rng(1)
    for i in range(8):
        naip = s2n.example_image(128, seed=300 + i)
        y = np.power(naip.values, (1 / GAMMA)[:, None, None]).astype(np.float32)
        y = ndimage.shift(y, (0, *rng.uniform(-1, 1, 2)), order=3, mode="reflect")
        s2 = ops.blur_downsample(y, tuple(SIGMA)) + rng.normal(0, 0.003, (4, 32, 32)).astype(np.float32)
        s2_da = xr.DataArray(s2, dims=("band", "y", "x"), coords={"band": list(s2n.BANDS)})
        naip_h = s2n.histogram_match(naip, s2_da)
        hr = naip_h.drop_vars("spatial_ref").to_dataset(name="hr")
        hr["naip"] = naip.drop_vars("spatial_ref")
        st.write_roi("cross-sensor", f"ROI_{i + 1:05d}", {"hr": hr, "lr": s2_da.to_dataset(name="lr")},
                     {"roi_id": f"roi-{i}", "split": "train" if i < 6 else "test"})
    return path


def test_pairs_reader(store):
    pairs = cross_sensor_pairs(store, split="train")
    assert pairs.sizes["roi"] == 6 and pairs.naip.shape == (6, 4, 128, 128) and pairs.s2.shape == (6, 4, 32, 32)
    assert set(pairs.split.values) == {"train"}
    with pytest.raises(s2n.StoreError, match="no finished cross-sensor ROI"):
        cross_sensor_pairs(store, split="nope")


def test_fit_cli_recovers_the_known_truth(store, tmp_path, capsys):
    out = tmp_path / "model.json"
    assert main(["fit", str(store), "--out", str(out)]) == 0
    model = s2n.DegradationModel.load(out)
    np.testing.assert_allclose(model.mvn_mean, GAMMA, atol=0.03)
    np.testing.assert_allclose(model.sigma, SIGMA, atol=0.3)
    assert model.noise_matrix is not None
    for png in ("fig4_gamma_density.png", "fig6_sigma_sweep.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
    assert "gamma_mean" in capsys.readouterr().out


def test_validate_cli_ranks_methods_sensibly(store, tmp_path, capsys):
    model = tmp_path / "model.json"
    assert main(["fit", str(store), "--out", str(model)]) == 0
    out = tmp_path / "val"
    assert main(["validate", str(store), "--out", str(out), "--split", "all", "--model", str(model),
                 "--methods", "identity", "gamma_mvn", "--percentiles", "10", "50", "90", "--device", "cpu"]) == 0
    table = pd.read_csv(out / "validation.csv").set_index("harmonizer")
    assert (out / "validation.md").read_text().count("|") > 20
    assert (out / "fig9_comparison.png").read_bytes()[:4] == b"\x89PNG"
    # with the fitted model, p50 (the truth's centre) beats the tails, and every gamma beats raw NAIP
    assert table.loc["gamma_mvn_p50", "mae"] < table.loc["gamma_mvn_p10", "mae"]
    assert table.loc["gamma_mvn_p50", "mae"] < table.loc["gamma_mvn_p90", "mae"]
    assert table.loc["gamma_mvn_p50", "mae"] < table.loc["identity", "mae"]
    assert abs(table.loc["gamma_mvn_p50", "pbias_pct"]) < abs(table.loc["identity", "pbias_pct"])
    assert table.loc["gamma_mvn_p50", "pearson"] > 0.95
    assert "gamma_mvn_p50" in capsys.readouterr().out


def test_fit_on_a_store_without_cross_sensor_part_is_clear(tmp_path, capsys):
    st = DatasetStore(tmp_path / "empty.zarr")
    st.init({}, kinds=("synthetic",))
    assert main(["fit", str(tmp_path / "empty.zarr"), "--out", str(tmp_path / "m.json")]) == 2
    assert "cross-sensor" in capsys.readouterr().err
