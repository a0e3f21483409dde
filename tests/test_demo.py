"""The offline demo (``sen2naip-xr demo``): Zarr store + PNG, readable back."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import xarray as xr

from sen2naip_xr.cli import main


@pytest.mark.torch
def test_demo_writes_store_and_png(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "out"), "--size", "220", "--device", "cpu"]) == 0
    store = tmp_path / "out" / "degradation.zarr"
    png = tmp_path / "out" / "degradation.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with warnings.catch_warnings():  # plain xarray, default arguments, no warning, the CRS decoded
        warnings.simplefilter("error")
        tree = xr.open_datatree(store, engine="zarr")
        lr = xr.open_zarr(store, group="lr")
    assert set(tree.children) == {"hr", "lr", "naip"}
    assert tree["hr/hr"].shape == (9, 4, 220, 220) and tree["lr/lr"].shape == (9, 4, 55, 55)
    assert tree["naip/naip"].attrs["long_name"].startswith("input NAIP")
    assert set(tree["lr/harmonizer"].values) >= {"identity", "gamma_mvn_p50", "unet", "vae"}
    assert np.isfinite(tree["lr/lr"].values).all()
    assert "spatial_ref" in lr.coords and lr.lr.rio.resolution() == (10.0, -10.0)
    assert tree["hr/hr"].rio.crs.to_epsg() == 32611 and tree["hr/hr"].rio.resolution() == (2.5, -2.5)
    for node in ("hr", "lr", "naip"):
        for name, var in tree[node].ds.variables.items():  # every variable documented
            if name not in ("spatial_ref",):
                assert "long_name" in var.attrs, (node, name)
    out = capsys.readouterr().out
    assert "gamma_lognormal_p90" in out and "wrote" in out


@pytest.mark.torch
def test_demo_rerun_is_identical(tmp_path):
    for name in ("a", "b"):
        assert main(["demo", "--out", str(tmp_path / name), "--size", "96", "--device", "cpu"]) == 0
    a = xr.open_zarr(tmp_path / "a" / "degradation.zarr", group="lr")
    b = xr.open_zarr(tmp_path / "b" / "degradation.zarr", group="lr")
    np.testing.assert_array_equal(a.lr.values, b.lr.values)


def test_demo_unwritable_output_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["demo", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "writable" in err


def test_console_script_help():
    res = subprocess.run([sys.executable, "-m", "sen2naip_xr.cli", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "demo" in res.stdout
