"""One chain and one validated model (issue 10, points 1 and 2)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

import sen2naip_xr as s2n
from sen2naip_xr.ops import kernels, noise_table

PACKAGE = Path(s2n.__file__).parent


# --------------------------------------------------------------------------------------------------
# 1. one chain
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("noise", ["real", "gaussian", "none"])
def test_degrade_is_the_chain_kernel(noise):
    naip = s2n.example_image(size=64, seed=2)
    ds = s2n.degrade(naip, ["identity"], noise=noise, seed=5, include_hr=False)
    want = kernels.degrade_lr(naip.values, s2n.config.SEN2NAIP_SIGMA, noise=noise, noise_sigma=0.012,
                              table=noise_table() if noise == "real" else None,
                              key=kernels.noise_key(5, noise, "identity"))
    np.testing.assert_array_equal(ds["lr/lr"].values[0], want)


@pytest.mark.parametrize("noise", ["real", "gaussian"])
def test_chain_is_chunk_invariant_and_equals_its_parts(noise):
    cube = s2n.example_image(size=96, seed=1).expand_dims(roi=3)
    cube = cube + s2n.example_image(size=96, seed=2).expand_dims(roi=3) * 0  # one image per roi is enough
    cfg = s2n.NoiseConfig(model=noise, seed=3)
    whole = s2n.ops.degrade_lr(cube, noise=cfg, stream="s")
    chunked = s2n.ops.degrade_lr(cube.chunk({"roi": 1, "band": 2, "y": 40, "x": 48}), noise=cfg, stream="s")
    assert chunked.chunks[-1] == (12, 12)
    np.testing.assert_array_equal(whole.values, chunked.values)
    parts = s2n.add_noise(s2n.blur_downsample(cube), noise, seed=3, stream="s")
    np.testing.assert_array_equal(whole.values, parts.values)


def test_degrade_uses_the_model_sigma_and_matrix():
    naip = s2n.example_image(size=64, seed=4)
    matrix = np.zeros((101, 101))
    matrix[:, 0] = 1.0
    model = s2n.DegradationModel(sigma=(1.2, 1.3, 1.4, 1.5), noise_matrix=matrix)
    ds = s2n.degrade(naip, ["identity"], noise="real", model=model, include_hr=False)
    clean = kernels.degrade_lr(naip.values, (1.2, 1.3, 1.4, 1.5), noise="none")
    np.testing.assert_allclose(ds["lr/lr"].values[0] - clean, kernels.REAL_NOISE_VALUES[0], atol=1e-6)


def _calls(tree: ast.AST) -> set[str]:
    return {n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
            for n in ast.walk(tree) if isinstance(n, ast.Call)}


def test_no_copy_of_the_chain_is_left():
    """Noise is drawn only inside ops (the chain kernel and add_noise); nobody else composes the chain."""
    noise_fns = {"real_noise", "gaussian_noise", "add_noise"}
    allowed = {PACKAGE / "ops" / "_numpy.py", PACKAGE / "ops" / "__init__.py", PACKAGE / "accessor.py"}  # delegates
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if p not in allowed and _calls(ast.parse(p.read_text())) & noise_fns]
    assert offenders == []


# --------------------------------------------------------------------------------------------------
# 2. one validated model, bad arguments named with their fix
# --------------------------------------------------------------------------------------------------

BAD_MODELS = {
    "nan_gamma_mean": (dict(mvn_mean=(np.nan, 0.33, 0.35, 0.45)), ["model.mvn_mean", "non-finite", "fit"]),
    "negative_gamma_mean": (dict(mvn_mean=(-0.3, 0.33, 0.35, 0.45)), ["model.mvn_mean", "positive"]),
    "non_pd_cov": (dict(mvn_cov=np.ones((4, 4))), ["model.mvn_cov", "not positive definite", "ridge"]),
    "asymmetric_cov": (dict(mvn_cov=np.eye(4) + np.triu(np.ones((4, 4)), 1) * 0.1), ["model.mvn_cov", "symmetric"]),
    "cov_shape": (dict(mvn_cov=np.eye(3)), ["model.mvn_cov", "4x4"]),
    "nan_cov": (dict(mvn_cov=np.diag([np.nan, 1, 1, 1])), ["model.mvn_cov", "non-finite"]),
    "nan_noise_matrix": (dict(noise_matrix=np.full((101, 101), np.nan)), ["model.noise_matrix", "NaN", "101x101"]),
    "noise_matrix_shape": (dict(noise_matrix=np.eye(3)), ["model.noise_matrix", "3x3", "101x101"]),
    "noise_matrix_rows": (dict(noise_matrix=np.full((101, 101), 0.5)), ["model.noise_matrix", "sums to", "not 1"]),
    "noise_matrix_negative": (dict(noise_matrix=np.eye(101) * 2 - np.roll(np.eye(101), 1, axis=1)),
                              ["model.noise_matrix", "negative"]),
    "inf_sigma": (dict(sigma=(np.inf, 2.9, 2.9, 3.4)), ["model.sigma", "non-finite", "(3.0, 2.9, 2.9, 3.4)"]),
    "zero_sigma": (dict(sigma=(0.0, 2.9, 2.9, 3.4)), ["model.sigma", "positive"]),
    "sigma_bands": (dict(sigma=(3.0, 2.9)), ["model.sigma", "2 bands", "mvn_mean has 4"]),
    "lognormal_len": (dict(lognormal=(0.1, 0.2)), ["model.lognormal", "(s, loc, scale)"]),
    "lognormal_scale": (dict(lognormal=(0.1, 0.0, -1.0)), ["model.lognormal", "scale > 0"]),
}


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_bad_models_are_rejected_when_built_and_when_loaded(case, tmp_path):
    kwargs, parts = BAD_MODELS[case]
    with pytest.raises(s2n.InputError) as info:
        s2n.DegradationModel(**kwargs)
    missing = [p for p in parts if p not in str(info.value)]
    assert not missing, f"{info.value} lacks {missing}"
    # the same model written by hand as JSON is rejected by load, with the same field named
    data = s2n.DegradationModel().to_dict()
    data.update({k: np.asarray(v).tolist() for k, v in kwargs.items()})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))  # NaN/inf as the non-standard tokens Python writes
    with pytest.raises(s2n.InputError) as info:
        s2n.DegradationModel.load(path)
    assert parts[0] in str(info.value)


BAD_DEGRADE = {
    "tiny_sigma": (dict(sigma=(1e-300,) * 4), ["sigma=", "positive", ">= 0.01"]),
    "inf_sigma": (dict(sigma=(np.inf,) * 4), ["sigma=", "non-finite"]),
    "inf_noise_sigma": (dict(noise="gaussian", noise_sigma=np.inf), ["noise_sigma=inf", "finite", "0.012"]),
    "nan_noise_sigma": (dict(noise="gaussian", noise_sigma=np.nan), ["noise_sigma=nan", "finite"]),
    "empty_percentiles": (dict(methods=["gamma_mvn"], percentiles=[]), ["percentiles=", "empty", "(50,)"]),
}


@pytest.mark.parametrize("case", sorted(BAD_DEGRADE))
def test_bad_degrade_arguments_name_the_argument(case):
    kwargs, parts = BAD_DEGRADE[case]
    naip = s2n.example_image(size=32, seed=0)
    with pytest.raises(s2n.InputError) as info:
        s2n.degrade(naip, **kwargs)
    missing = [p for p in parts if p not in str(info.value)]
    assert not missing, f"{info.value} lacks {missing}"
    assert "methods=" not in str(info.value)  # percentiles=[] used to blame methods=[]


def test_model_is_loaded_once_and_passed_as_an_object(tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    s2n.DegradationModel(sigma=(2.0,) * 4).save(path)
    cfg = s2n.CrossSensorConfig(model=path)
    assert isinstance(cfg.model, s2n.DegradationModel)
    path.unlink()  # the path is never read again
    assert cfg.sigma == (2.0,) * 4
    assert s2n.SyntheticConfig(model=cfg.model).model is cfg.model


def test_model_json_round_trip_is_strict():
    m = s2n.DegradationModel(sigma=(2.0, 2.1, 2.2, 2.3), source="x")
    assert s2n.DegradationModel.from_json(m.to_json()) == m
    with pytest.raises(s2n.InputError, match="unknown keys"):
        s2n.DegradationModel.from_dict({**m.to_dict(), "extra": 1})
