"""degrade() returns a tree shaped like a stored ROI, each node on its own grid, read by plain rioxarray,
rasterio and xarray (Zarr) as they are."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401
import xarray as xr

import sen2naip_xr as s2n

SIZE = 64
ORIGIN = (500000.0, 3650000.0)  # example_image's upper-left corner (EPSG:32611)
BOUNDS = (ORIGIN[0], ORIGIN[1] - 2.5 * SIZE, ORIGIN[0] + 2.5 * SIZE, ORIGIN[1])


@pytest.fixture(params=["numpy", "dask"])
def naip(request) -> xr.DataArray:
    return s2n.example_image(size=SIZE, seed=1, chunks={"y": 32} if request.param == "dask" else None)


def _check_grid(da: xr.DataArray, res: float, tmp_path, name: str) -> None:
    assert da.rio.crs.to_epsg() == 32611
    assert da.rio.resolution() == (res, -res)
    assert da.rio.bounds() == pytest.approx(BOUNDS)
    assert da.attrs["grid_mapping"] == "spatial_ref"
    gt = [float(v) for v in da.spatial_ref.attrs["GeoTransform"].split()]
    assert gt == [ORIGIN[0], res, 0.0, ORIGIN[1], 0.0, -res]
    path = tmp_path / f"{name}.tif"
    da.rio.to_raster(path)
    with rasterio.open(path) as f:
        assert tuple(f.transform)[:6] == (res, 0.0, ORIGIN[0], 0.0, -res, ORIGIN[1])
        assert f.crs.to_epsg() == 32611 and f.bounds == pytest.approx(BOUNDS)


def test_degrade_tree_nodes_are_georeferenced_on_their_own_grids(naip, tmp_path):
    tree = s2n.degrade(naip, ["identity", "gamma_mvn"], seed=0)
    assert isinstance(tree, xr.DataTree) and set(tree.children) == {"hr", "lr"}
    hr, lr = tree["hr/hr"], tree["lr/lr"]
    assert hr.dims == ("harmonizer", "band", "y", "x") and lr.dims == ("harmonizer", "band", "y", "x")
    assert lr.shape[-2:] == (SIZE // 4, SIZE // 4)
    # the nodes do not share one spatial_ref: each has its own GeoTransform
    assert tree["hr"].ds.spatial_ref.attrs["GeoTransform"] != tree["lr"].ds.spatial_ref.attrs["GeoTransform"]
    _check_grid(hr.sel(harmonizer="identity").compute(), 2.5, tmp_path, "hr")
    _check_grid(lr.sel(harmonizer="gamma_mvn").compute(), 10.0, tmp_path, "lr")
    assert tree["lr"].ds.rio.resolution() == (10.0, -10.0)
    assert tree["hr"].ds.rio.resolution() == (2.5, -2.5)
    assert lr.attrs["units"] == "1" and "10 m" in lr.attrs["long_name"]


def test_blur_downsample_and_add_noise_are_georeferenced(naip, tmp_path):
    lr = s2n.blur_downsample(naip)
    _check_grid(lr.compute(), 10.0, tmp_path, "blur")
    for model in ("real", "gaussian", "none"):
        _check_grid(s2n.add_noise(lr, model, seed=0).compute(), 10.0, tmp_path, f"noise-{model}")


def test_harmonizer_selects_by_method_name_or_names_the_labels():
    naip = s2n.example_image(size=32, seed=2)
    tree = s2n.degrade(naip, ["identity", "gamma_mvn", "gamma_lognormal"], percentiles=(50,), noise="none")
    lr = tree["lr/lr"]
    assert str(lr.sel(harmonizer="gamma_mvn").harmonizer.values) == "gamma_mvn_p50"
    assert str(lr.sel(harmonizer="raw").harmonizer.values) == "identity"
    assert tree.sel(harmonizer="gamma_mvn")["hr/hr"].sizes == {"band": 4, "y": 32, "x": 32}
    assert list(lr.sel(harmonizer=["gamma_mvn", "identity"]).harmonizer.values) == ["gamma_mvn_p50", "identity"]
    with pytest.raises(KeyError, match=r"'unet' is not one of the labels \['identity', 'gamma_mvn_p50'"):
        lr.sel(harmonizer="unet")
    two = s2n.degrade(naip, ["gamma_mvn"], percentiles=(10, 90), noise="none")["lr/lr"]
    with pytest.raises(KeyError, match=r"names 2 variants \['gamma_mvn_p10', 'gamma_mvn_p90'\]"):
        two.sel(harmonizer="gamma_mvn")


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_degrade_tree_round_trips_through_zarr_with_default_arguments(naip, tmp_path, zarr_format):
    """CF grid mapping: ``spatial_ref`` is written as a coordinate and the images name it in ``grid_mapping``,
    so xr.open_zarr / open_datatree decode the CRS with their defaults. No fixed-width strings are written."""
    tree = s2n.degrade(naip, ["identity", "gamma_mvn"], seed=0)
    path = tmp_path / "degraded.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if zarr_format == 3:  # zarr notes that consolidated metadata is not in the v3 spec yet: we write it
            warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        tree.to_zarr(path, zarr_format=zarr_format)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = xr.open_datatree(path, engine="zarr")
        lr = xr.open_zarr(path, group="lr")
    assert "spatial_ref" in lr.coords and list(lr.data_vars) == ["lr"]
    assert lr.lr.rio.crs.to_epsg() == 32611 and lr.rio.resolution() == (10.0, -10.0)
    assert back["hr/hr"].rio.resolution() == (2.5, -2.5) and back["hr/hr"].rio.bounds() == pytest.approx(BOUNDS)
    np.testing.assert_array_equal(back["lr/lr"].values, tree["lr/lr"].values)
