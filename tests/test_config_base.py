"""One config base, one tokenizer; CLI flags generated from the config fields (issue 10, point 4)."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import pkgutil

import pytest
from dask.base import tokenize

import sen2naip_xr as s2n
from sen2naip_xr.catalog import PairingConfig, SearchConfig
from sen2naip_xr.config import ConfigBase
from sen2naip_xr.pipeline import CrossSensorConfig, RunConfig, SyntheticConfig


def _config_classes() -> list[type]:
    """Every frozen dataclass of the package named *Config (and RetryPolicy)."""
    out = []
    for info in pkgutil.walk_packages(s2n.__path__, "sen2naip_xr."):
        if info.name.endswith(("loaders.torch", "harmonize._torch", "demo")) or ".demo." in info.name:
            continue
        mod = importlib.import_module(info.name)
        for obj in vars(mod).values():
            if (isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == mod.__name__
                    and (obj.__name__.endswith("Config") or obj.__name__ in ("RetryPolicy", "DegradationModel"))):
                out.append(obj)
    return out


def test_every_config_uses_the_one_base_and_its_tokenizer():
    classes = _config_classes()
    assert len(classes) >= 12, classes
    for cls in classes:
        assert issubclass(cls, ConfigBase), cls
        assert cls.__dataclass_params__.frozen, cls  # type: ignore[attr-defined]
        assert "__dask_tokenize__" not in vars(cls), f"{cls.__name__} defines its own tokenizer"
        assert cls.__dask_tokenize__ is ConfigBase.__dask_tokenize__


@pytest.mark.parametrize("make", [
    lambda **k: s2n.LoadConfig(**k), lambda **k: SearchConfig(**k), lambda **k: SyntheticConfig(**k),
    lambda **k: s2n.DegradationConfig(**k),
])
def test_tokens_follow_values_not_identity(make):
    assert tokenize(make()) == tokenize(make())


def test_tokens_differ_when_a_value_differs():
    assert tokenize(s2n.LoadConfig(gdal_env={"A": "1"})) != tokenize(s2n.LoadConfig(gdal_env={"A": "2"}))
    assert tokenize(SyntheticConfig(keep_fraction=0.5)) != tokenize(SyntheticConfig())
    assert tokenize(s2n.DegradationModel(sigma=(2.0,) * 4)) != tokenize(s2n.DegradationModel())
    assert tokenize(SearchConfig()) != tokenize(PairingConfig())


def test_field_docs_are_read_from_the_class_body():
    docs = SyntheticConfig.field_docs()
    assert set(docs) == {f.name for f in dataclasses.fields(SyntheticConfig)}
    assert docs["keep_fraction"].startswith("Diversity filter")


def _parse(cls, argv, **kw):
    p = argparse.ArgumentParser()
    cls.add_arguments(p, **kw)
    return p, p.parse_args(argv)


def test_no_flag_given_means_the_dataclass_default():
    for cls in (RunConfig, SearchConfig, PairingConfig, CrossSensorConfig, SyntheticConfig):
        _, args = _parse(cls, [])
        assert vars(args) == {} and cls.from_args(args) == cls()


def test_generated_flags_fill_the_config():
    _, args = _parse(SyntheticConfig, ["--methods", "identity", "vae", "--percentiles", "10", "90", "--store-lr",
                                       "--keep-fraction", "0.5", "--noise", "none", "--rois-per-task", "2"])
    cfg = SyntheticConfig.from_args(args, seed=7)
    assert cfg == SyntheticConfig(methods=("identity", "vae"), percentiles=(10.0, 90.0), store_lr=True,
                                  keep_fraction=0.5, noise="none", rois_per_task=2, seed=7)
    _, args = _parse(RunConfig, ["--workers", "3", "--no-progress"], flags={"n_workers": "--workers"})
    assert RunConfig.from_args(args) == RunConfig(n_workers=3, progress=False)
    p, _ = _parse(SyntheticConfig, [])
    with pytest.raises(SystemExit):
        p.parse_args(["--noise", "loud"])  # Literal -> choices


def test_help_shows_the_field_doc_and_default():
    p, _ = _parse(SyntheticConfig, [])
    text = p.format_help()
    assert "Diversity filter" in text and "(default: 1.0)" in text and "(default: identity gamma_mvn unet vae)" in text


def test_model_flag_is_read_once_into_a_model(tmp_path):
    path = tmp_path / "m.json"
    s2n.DegradationModel(sigma=(2.0,) * 4).save(path)
    _, args = _parse(CrossSensorConfig, ["--max-qa1", "0.5", "--model", str(path)],
                     flags={"max_misalignment_px": "--max-qa1"})
    cfg = CrossSensorConfig.from_args(args)
    assert cfg.max_misalignment_px == 0.5 and cfg.model.sigma == (2.0,) * 4


def test_build_cli_offers_every_config_field():
    """`sen2naip-xr build synthetic --help` lists a flag for every SyntheticConfig and RunConfig field."""
    from sen2naip_xr.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    build = sub.choices["build"]
    kinds = next(a for a in build._actions if isinstance(a, argparse._SubParsersAction))
    dests = {a.dest for a in kinds.choices["synthetic"]._actions}
    fields = {f.name for cls in (SyntheticConfig, RunConfig) for f in dataclasses.fields(cls)}
    assert fields <= dests
    args = kinds.choices["synthetic"].parse_args(["--out", "x.zarr"])
    assert SyntheticConfig.from_args(args) == SyntheticConfig()  # the CLI restates no default
