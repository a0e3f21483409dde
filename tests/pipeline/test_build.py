"""Both builders end to end on the embedded catalog: what is kept, what is dropped and why, and the
same bytes in process, on 1 and on 2 LocalCluster workers."""

from __future__ import annotations

import json
import re

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
from sen2naip_xr.store import TABLE1_FIELDS, DatasetStore

SMALL_QA = dict(max_spectral_angle_deg=6.0)  # small ROIs: noisier spectral angle (see _qa.py)
FAST_METHODS = ("identity", "gamma_mvn", "vae")

SYNC = RunConfig(scheduler="sync", progress=False)


def _build(out, cs, sy, run=SYNC, signer=None):
    a = build_cross_sensor(cs, out, config=CrossSensorConfig(**SMALL_QA), run=run, signer=signer)
    b = build_synthetic(sy, out, config=SyntheticConfig(methods=FAST_METHODS, keep_fraction=0.75, device="cpu"),
                        run=run, signer=signer)
    return a, b


def test_cross_sensor_keeps_good_pairs_and_records_why_others_fail(tmp_path, cs_cands, demo_catalog, signer):
    res = build_cross_sensor(cs_cands, tmp_path / "s.zarr", config=CrossSensorConfig(**SMALL_QA), run=SYNC,
                             signer=signer)
    store = DatasetStore(tmp_path / "s.zarr")
    assert store.rois("cross-sensor") == ["ROI_00001", "ROI_00002", "ROI_00005"] == sorted(res.written)
    fails = store.failures("cross-sensor").set_index("roi")
    assert fails.loc["ROI_00003", "stage"] == "clouds"  # cloudy in both captures
    assert fails.loc["ROI_00004", "stage"] == "qa"  # shifted by 1.6 px: QA1 above the 1 px limit
    qa1 = float(re.search(r"QA1=([\d.]+) px", fails.loc["ROI_00004", "reason"]).group(1))
    assert 1.3 < qa1 < 1.8
    truth = demo_catalog.truth
    for name in store.rois("cross-sensor"):
        meta = store.attrs(f"cross-sensor/{name}")
        assert set(TABLE1_FIELDS) <= set(meta)
        dy, dx = truth.shifts[meta["roi_id"]]
        assert abs(meta["shift_dy"] - dy) < 0.1 and abs(meta["shift_dx"] - dx) < 0.1  # QA1 recovers the truth
        assert meta["QA_1"] == pytest.approx(np.hypot(meta["shift_dy"], meta["shift_dx"]), abs=1e-5)
        lr = store.open_dataset(f"cross-sensor/{name}/lr")
        hr = store.open_dataset(f"cross-sensor/{name}/hr")
        assert lr.lr.shape == (4, 32, 32) and hr.hr.shape == (4, 128, 128)
        assert lr.rio.crs.to_epsg() == 32611 and hr.rio.transform().a == 2.5 and lr.rio.transform().a == 10.0
        assert "?" not in "".join(json.loads(meta["provenance"])["hrefs"])
    # ROI_00002 is cloudy in the first capture: the second (dt = 1 day) was used
    assert store.attrs("cross-sensor/ROI_00002")["s2_id"].endswith("demo1")


def test_synthetic_blank_check_diversity_and_histograms(tmp_path, sy_cands, signer):
    cfg = SyntheticConfig(methods=FAST_METHODS, keep_fraction=0.75, store_lr=True, device="cpu")
    build_synthetic(sy_cands, tmp_path / "s.zarr", config=cfg, run=SYNC, signer=signer)
    store = DatasetStore(tmp_path / "s.zarr")
    tree = s2n.open_store(store.path)
    emb = tree["synthetic/_embeddings"].to_dataset()
    assert "ROI_00003/late" not in list(emb.image.values)  # the blank capture is never embedded
    kept = sum(len([g for g in ("early", "late") if g in tree[f"synthetic/{n}"].children]) for n in store.rois("synthetic"))
    assert kept == 4  # ceil(0.75 * 5 usable images) clusters, one image each
    for n in store.rois("synthetic"):  # every image is stored or said why not
        roles = [g for g in ("early", "late") if g in tree[f"synthetic/{n}"].children]
        notes = store.attrs(f"synthetic/{n}")["images_dropped"]
        assert len(roles) + len(notes) == 2 and all(("blank" in x) or ("diversity" in x) for x in notes)
    name = store.rois("synthetic")[0]
    g = tree[f"synthetic/{name}/early"].to_dataset()
    assert g.hr.shape == (4, 256, 256) and g.hist.shape == (3, 4, 120) and g.lr.shape == (3, 4, 64, 64)
    counts = g.hist.sum("bin").values  # torch.histc semantics: values outside [0, 1] (noise) are dropped
    assert (counts <= 64 * 64).all() and (counts > 0.9 * 64 * 64).all()
    from sen2naip_xr.harmonize._numpy import histc

    np.testing.assert_array_equal(histc(g.lr.values), g.hist.values)


def test_same_bytes_in_process_and_on_one_or_two_workers(tmp_path, cs_cands, sy_cands, signer):
    digests = []
    for i, run in enumerate((SYNC, RunConfig(n_workers=1, progress=False), RunConfig(n_workers=2, progress=False))):
        _build(tmp_path / f"s{i}.zarr", cs_cands, sy_cands, run, signer)
        digests.append(DatasetStore(tmp_path / f"s{i}.zarr").digest())
    assert digests[0] == digests[1] == digests[2]


def test_rerun_skips_finished_rois(tmp_path, cs_cands, sy_cands, signer):
    _build(tmp_path / "s.zarr", cs_cands, sy_cands, signer=signer)
    before = DatasetStore(tmp_path / "s.zarr").digest()
    a, b = _build(tmp_path / "s.zarr", cs_cands, sy_cands, signer=signer)
    assert not a.written and not a.failed and len(a.skipped) == 5  # written or failed: both final
    assert not b.written and DatasetStore(tmp_path / "s.zarr").digest() == before


def test_bad_candidates_are_clear_errors(tmp_path, sy_cands):
    with pytest.raises(s2n.InputError, match="build_synthetic"):
        build_cross_sensor(sy_cands, tmp_path / "x.zarr", run=SYNC)
    with pytest.raises(s2n.InputError, match="search_pairs"):
        build_cross_sensor([1, 2], tmp_path / "x.zarr", run=SYNC)
