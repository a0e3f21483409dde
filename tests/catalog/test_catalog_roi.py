"""ROI sampling: hard-core distance, determinism, UTM squares on S2's 10 m grid, stable ids."""

import numpy as np
import pytest
from pyproj import Transformer

import sen2naip_xr as s2n
from sen2naip_xr.catalog import roi_geobox
from sen2naip_xr.errors import InputError


def test_hard_core_distance_and_determinism():
    a = s2n.sample_rois(300, seed=7)
    b = s2n.sample_rois(300, seed=7)
    assert a.equals(b)
    assert not a["roi_id"].equals(s2n.sample_rois(300, seed=8)["roi_id"])
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:5070", always_xy=True).transform(a["lon"].values, a["lat"].values)
    d = np.hypot(x[:, None] - x[None], y[:, None] - y[None]) + np.eye(len(x)) * 1e12
    assert d.min() >= 5000.0
    # prefix-stable: the first 50 of 300 are the 50 of 50
    assert s2n.sample_rois(50, seed=7)["roi_id"].tolist() == a["roi_id"].tolist()[:50]


def test_roi_squares_are_snapped_utm_grids():
    r = s2n.sample_rois(20, seed=1, kind="synthetic")
    assert set(r["size"]) == {1100} and set(r["res"]) == {2.5}
    assert (r["x_min"] % 10 == 0).all() and (r["y_max"] % 10 == 0).all()
    zone = (np.floor((r["lon"] + 180) / 6) + 1).astype(int)
    assert (r["epsg"] == 32600 + zone).all()
    assert r["roi_id"].str.fullmatch(r"sy-326\d\d-\d+-\d+").all()
    gb = roi_geobox(r.iloc[0])
    assert gb.shape == (1100, 1100) and gb.resolution.x == 2.5
    assert roi_geobox(r.iloc[0], res=10).shape == (275, 275)


def test_points_and_polygons():
    from shapely.geometry import box

    r = s2n.rois_from_points([-117.0], [33.0])
    assert r.loc[0, "roi_id"] == s2n.rois_from_points([-117.0], [33.0]).loc[0, "roi_id"]
    assert r.loc[0, "size"] == 484 and r.loc[0, "epsg"] == 32611
    p = s2n.rois_from_polygons([box(-117.01, 32.99, -116.99, 33.01)])
    assert p.loc[0, "epsg"] == 32611 and abs(p.loc[0, "lon"] + 117.0) < 1e-9


def test_region_bbox_and_clear_errors():
    r = s2n.sample_rois(5, seed=0, region=(-117.2, 32.8, -116.9, 33.1))
    assert r["lon"].between(-117.2, -116.9).all() and r["lat"].between(32.8, 33.1).all()
    with pytest.raises(s2n.CatalogError, match="min_distance_m"):
        s2n.sample_rois(50, seed=0, region=(-117.01, 32.99, -116.99, 33.01), max_draws=20_000)
    with pytest.raises(InputError, match="kind='x'"):
        s2n.sample_rois(1, kind="x")
    with pytest.raises(InputError, match="lon="):
        s2n.rois_from_points([200.0], [10.0])
    with pytest.raises(InputError, match="same ROI square"):
        s2n.rois_from_points([-117.0, -117.0], [33.0, 33.0])


def _square(cx: float, cy: float, side: float):
    """A lon/lat polygon of a ``side`` m square centred on (cx, cy) in the equal-area plane (EPSG:5070)."""
    import shapely

    inv = Transformer.from_crs("EPSG:5070", "EPSG:4326", always_xy=True)
    h = side / 2
    xs, ys = inv.transform([cx - h, cx + h, cx + h, cx - h], [cy - h, cy - h, cy + h, cy + h])
    return shapely.Polygon(zip(xs, ys, strict=True))


def _pairwise_m(rois) -> np.ndarray:
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:5070", always_xy=True).transform(rois["lon"].values,
                                                                                      rois["lat"].values)
    d = np.hypot(np.subtract.outer(x, x), np.subtract.outer(y, y))
    return d[np.triu_indices(len(x), 1)]


def test_min_distance_holds_for_every_pair_when_sampling_is_dense():
    """15 ROIs in a 25 km square: close to jamming, so the 5 km limit is what shapes the sample."""
    region = _square(-1_700_000.0, 1_400_000.0, 25_000.0)
    rois = s2n.sample_rois(15, seed=3, region=region)
    d = _pairwise_m(rois)
    assert d.size == 15 * 14 // 2
    assert (d >= 5000.0).all(), np.sort(d)[:5]
    assert d.min() < 5300.0  # the limit is reached, not avoided by a sparse sample


def test_a_planted_neighbour_4_km_away_is_rejected():
    """Two 50 m patches 4 km apart: no second ROI can be placed; 6 km apart: both are."""
    import shapely

    near = shapely.MultiPolygon([_square(-1_700_000.0, 1_400_000.0, 50.0), _square(-1_696_000.0, 1_400_000.0, 50.0)])
    with pytest.raises(s2n.CatalogError, match="placed only 1 of n=2"):
        s2n.sample_rois(2, seed=0, region=near, max_draws=20_000)
    far = shapely.MultiPolygon([_square(-1_700_000.0, 1_400_000.0, 50.0), _square(-1_694_000.0, 1_400_000.0, 50.0)])
    d = _pairwise_m(s2n.sample_rois(2, seed=0, region=far, max_draws=20_000))
    assert 5900.0 < d[0] < 6100.0
