"""The embedded demo catalog: PC-layout items, a STAC-like search, and Sentinel-2 that follows demo_truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

import sen2naip_xr as s2n
from sen2naip_xr import _rng
from sen2naip_xr.demo._catalog import MARGIN_HR, EmbeddedCatalog, _read_25, _s2_patch, build_demo_catalog
from sen2naip_xr.load import NoSigner


@pytest.fixture(scope="module")
def cat(tmp_path_factory):
    return build_demo_catalog(tmp_path_factory.mktemp("cat"), n_cross_sensor=4, n_synthetic=3,
                              cross_sensor_size=96, synthetic_size=128, seed=3)


def test_items_follow_planetary_computer_layout(cat):
    naip = [i for i in cat.client.items if i.collection_id == "naip"]
    s2 = [i for i in cat.client.items if i.collection_id == "sentinel-2-l2a"]
    assert len(naip) == 4 + 2 * 3 and len(s2) == 2
    a = naip[0].assets["image"].to_dict()
    assert "eo:bands" in a and "raster:bands" not in a  # as Planetary Computer publishes NAIP
    assert {"B04", "B03", "B02", "B08", "SCL"} <= set(s2[0].assets)
    p = s2[0].properties
    assert p["s2:processing_baseline"] == "04.00" and "s2:mean_solar_zenith" in p and "view:incidence_angle" in p


def test_search_filters_like_a_stac_api(cat):
    client = cat.client
    assert len(s2n.search_items(client, "sentinel-2-l2a", datetime="2022-06-14/2022-06-14")) == 1
    assert len(s2n.search_items(client, "naip", datetime="2014-01-01/2014-12-31")) == 3
    assert len(s2n.search_items(client, "naip", bbox=(0, 0, 1, 1))) == 0
    cc = sorted(i.properties["eo:cloud_cover"] for i in s2n.search_items(client, "sentinel-2-l2a"))
    assert len(s2n.search_items(client, "sentinel-2-l2a", max_cloud_cover=cc[0])) == 1
    with pytest.raises(s2n.InputError, match="filter="):
        EmbeddedCatalog([]).search(filter={"op": "=", "args": [{"property": "gsd"}, 1]})


def test_s2_follows_demo_truth(cat):
    """S2 = blur_downsample(shift(NAIP ** (1/gamma)), sigma) + noise, as the loader reads both (to one DN)."""
    cands = s2n.search_pairs(cat.cross_sensor_rois, datetime=cat.datetime, client=cat.client, progress=False)
    naip, s2, scl = (c.compute() for c in s2n.load_pairs(cands, signer=NoSigner()))
    truth = cat.truth
    for i, row in cat.cross_sensor_rois.iterrows():
        rid = row["roi_id"]
        href = cands.items[naip.item_id.values[i, 0]].assets["image"].href
        n_hr = 96 + 2 * MARGIN_HR
        ext = _read_25(href, row["x_min"] - MARGIN_HR * 2.5, row["y_max"] + MARGIN_HR * 2.5, n_hr)
        np.testing.assert_array_equal(ext[:, MARGIN_HR:-MARGIN_HR, MARGIN_HR:-MARGIN_HR], naip.values[i, 0])
        for t in range(2):
            sid = str(s2.item_id.values[i, t])
            if rid in truth.cloudy[sid]:
                assert (scl.values[i, t] == 9).mean() > 0.3
                continue
            assert (scl.values[i, t] == 4).all()
            key = _rng.derive_key(3, "demo-s2-noise", sid, rid)
            exp = _s2_patch(ext, truth, truth.shifts[rid], key)[:, 16:-16, 16:-16]
            np.testing.assert_allclose(s2.values[i, t], exp, rtol=0, atol=0.5e-4 + 1e-6)  # uint16 DN rounding
    assert truth.shifts[cat.cross_sensor_rois.roi_id[3]] == (0.0, 1.6)


def test_catalog_is_reused_and_truth_is_json(cat, tmp_path):
    again = build_demo_catalog(cat.root, n_cross_sensor=4, n_synthetic=3, cross_sensor_size=96,
                               synthetic_size=128, seed=3)
    assert [i.id for i in again.client.items] == [i.id for i in cat.client.items]
    d = json.loads(json.dumps(cat.truth.to_dict()))
    assert d["gamma"] == list(cat.truth.gamma) and len(d["shifts"]) == 4 and d["blank"]
    with pytest.raises(s2n.InputError, match="cross_sensor_size=90"):
        build_demo_catalog(tmp_path, cross_sensor_size=90)


@pytest.mark.torch
def test_demo_command_builds_both_parts_with_truth(tmp_path, capsys):
    from sen2naip_xr.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--size", "128", "--device", "cpu", "--scheduler", "sync",
                 "--no-progress", "--cross-sensor-rois", "5", "--synthetic-rois", "3"]) == 0
    tree = s2n.open_store(out / "sen2naip.zarr")
    truth = tree.attrs["demo_truth"]
    assert truth["sigma"] == [3.2, 2.8, 2.6, 3.6] and "formula" in truth
    assert set(tree["cross-sensor"].attrs["failures_by_stage"]) >= {"clouds", "qa"}
    assert tree["synthetic"].attrs["n_written"] >= 1
    text = capsys.readouterr().out
    assert "cross-sensor" in text and "synthetic" in text and "wrote" in text
    info = s2n.summarize(out / "sen2naip.zarr")
    assert info["demo_truth"] and info["parts"]["synthetic"]["harmonizers"][:2] == ["identity", "gamma_mvn_p50"]


def test_relative_output_folders_work(tmp_path, monkeypatch):
    """`make demo` passes --out demo-output: hrefs must be absolute for odc-stac, and new scenes reset the store."""
    from sen2naip_xr.demo import run_dataset_demo

    monkeypatch.chdir(tmp_path)
    cat = build_demo_catalog("rel", n_cross_sensor=2, n_synthetic=0, cross_sensor_size=96)
    assert all(a.href.startswith("/") for i in cat.client.items for a in i.assets.values())
    cands = s2n.search_pairs(cat.cross_sensor_rois, datetime=cat.datetime, client=cat.client, progress=False)
    assert s2n.load_failures(*(c.compute() for c in s2n.load_pairs(cands, signer=NoSigner()))).empty
    kw = dict(cross_sensor_size=96, synthetic_size=96, n_cross_sensor=2, n_synthetic=1, device="cpu",
              scheduler="sync", progress=False, methods=("identity",))
    run_dataset_demo("out", **kw)
    first = s2n.DatasetStore("out/sen2naip.zarr").digest()
    run_dataset_demo("out", **kw)  # same scenes: resumed, unchanged
    assert s2n.DatasetStore("out/sen2naip.zarr").digest() == first
    run_dataset_demo("out", **{**kw, "n_cross_sensor": 3})  # new scenes: a new store
    assert len(s2n.metadata_table("out/sen2naip.zarr")) + len(s2n.DatasetStore("out/sen2naip.zarr").failures("cross-sensor")) == 3
