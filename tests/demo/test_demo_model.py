"""Issue 5's proof on known truth: the demo fits its own degradation back, and Table 2 ranks the harmonizers
as the truth says it should."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sen2naip_xr as s2n
from sen2naip_xr.cli import main


@pytest.mark.torch
def test_demo_recovers_its_truth_and_ranks_methods(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--size", "128", "--device", "cpu", "--scheduler", "sync",
                 "--no-progress", "--cross-sensor-rois", "6", "--synthetic-rois", "2"]) == 0
    truth = s2n.DatasetStore(out / "sen2naip.zarr").attrs()["demo_truth"]
    model = s2n.DegradationModel.load(out / "model.json")
    np.testing.assert_allclose(model.mvn_mean, truth["gamma"], atol=0.03)
    np.testing.assert_allclose(model.sigma, truth["sigma"], atol=0.3)
    for png in ("fig4_gamma_density.png", "fig6_sigma_sweep.png", "validation-fitted/fig9_comparison.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    published = pd.read_csv(out / "validation-published" / "validation.csv").set_index("harmonizer")
    fitted = pd.read_csv(out / "validation-fitted" / "validation.csv").set_index("harmonizer")
    mae_pub, mae_fit = published["mae"], fitted["mae"]
    # the demo truth is a mild gamma (about 1): with the fitted model the statistical harmonizer reproduces
    # S2 best of all, far better than with the published model, and without bias
    assert mae_fit.idxmin().startswith("gamma_mvn")
    assert mae_fit["gamma_mvn_p50"] < mae_fit["identity"] < mae_pub["gamma_mvn_p50"]
    assert abs(fitted.loc["gamma_mvn_p50", "pbias_pct"]) < 2.0
    # the published gammas (about 0.35) darken too much here: the closer a percentile's gamma to the truth,
    # the smaller its error, and raw NAIP beats them all
    assert mae_pub["gamma_mvn_p90"] < mae_pub["gamma_mvn_p50"] < mae_pub["gamma_mvn_p10"]
    assert mae_pub["identity"] < mae_pub["gamma_mvn_p90"]
    text = capsys.readouterr().out
    assert "Table 2" in text and "gamma_fitted" in text
