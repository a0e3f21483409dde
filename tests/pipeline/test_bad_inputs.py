"""A corpus of bad inputs: each has a clear outcome (a failure record naming the stage and the reason,
or an error naming the argument, the value and the fix), and nothing already written is lost."""

from __future__ import annotations

import copy
import dataclasses
import errno
import hashlib
import shutil

import numpy as np
import pytest
import rasterio
import xarray as xr

import sen2naip_xr as s2n
from sen2naip_xr.cli import main
from sen2naip_xr.pipeline import (
    CrossSensorConfig,
    RunConfig,
    SyntheticConfig,
    build_cross_sensor,
    build_synthetic,
)
from sen2naip_xr.store import DatasetStore

SYNC = RunConfig(scheduler="sync", progress=False)
CFG = CrossSensorConfig(max_spectral_angle_deg=6.0)
TARGET = "ROI_00005"  # the ROI each data case breaks (its NAIP item is its own)


def _roi_digest(out, name) -> str:
    """sha256 of one cross-sensor ROI's attributes and arrays, read through the store."""
    st = DatasetStore(out)
    h = hashlib.sha256(repr(sorted(st.attrs(f"cross-sensor/{name}").items())).encode())
    for sub in st.roi_groups("cross-sensor", name):
        for v, da in sorted(st.load_dataset(f"cross-sensor/{name}/{sub}").variables.items()):
            h.update(v.encode() + np.ascontiguousarray(da.values).tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def base(tmp_path_factory, cs_cands):
    """A store with ROI_00001 and ROI_00002 already written (the first two ROIs only)."""
    path = tmp_path_factory.mktemp("base") / "s.zarr"
    first = cs_cands.rois.iloc[:2]
    sub = dataclasses.replace(cs_cands, rois=first, pairs=cs_cands.pairs[cs_cands.pairs.roi_id.isin(first.roi_id)])
    build_cross_sensor(sub, path, config=CFG, run=SYNC, signer=s2n.load.NoSigner())
    assert DatasetStore(path).rois("cross-sensor") == ["ROI_00001", "ROI_00002"]
    return path


def _naip_item(cands):
    rid = cands.rois.iloc[4]["roi_id"]
    nid = cands.pairs.loc[cands.pairs.roi_id == rid, "naip_id"].iloc[0]
    return rid, nid, cands.items[nid]


def _with_naip_href(cands, make):
    rid, nid, item = _naip_item(cands)
    new = item.clone()
    new.assets["image"].href = str(make(item.assets["image"].href))
    return dataclasses.replace(cands, items={**cands.items, nid: new})


def _corrupt(tmp):
    def make(href):
        p = tmp / "corrupt.tif"
        data = bytearray(open(href, "rb").read())
        data[200:4000] = b"\x00garbage" * ((4000 - 200) // 8)
        p.write_bytes(bytes(data))
        return p
    return make


def _truncated(tmp):
    def make(href):
        p = tmp / "truncated.tif"
        data = open(href, "rb").read()
        p.write_bytes(data[: len(data) // 12])  # inside the 2.5 m overview the loader reads
        return p
    return make


def _missing(tmp):
    return lambda href: tmp / "does-not-exist.tif"


def _rewritten(tmp, *, zeros=False, crs=None):
    def make(href):
        p = tmp / ("blank.tif" if zeros else "wrong-crs.tif")
        with rasterio.open(href) as src:
            prof, data = src.profile, src.read()
        prof.update(driver="GTiff")
        if crs:
            prof["crs"] = crs
        with rasterio.open(p, "w", **prof) as dst:
            dst.write(np.zeros_like(data) if zeros else data)
        return p
    return make


def _no_pairs(cands):
    rid = cands.rois.iloc[4]["roi_id"]
    return dataclasses.replace(cands, pairs=cands.pairs[cands.pairs.roi_id != rid])


def _missing_band(cands):
    rid = cands.rois.iloc[4]["roi_id"]
    pairs = cands.pairs.copy()
    items = dict(cands.items)
    for sid in pairs.loc[pairs.roi_id == rid, "s2_id"].unique():
        bad = items[sid].clone()
        bad.id = sid + "-noB08"
        del bad.assets["B08"]
        items[bad.id] = bad
        pairs.loc[(pairs.roi_id == rid) & (pairs.s2_id == sid), "s2_id"] = bad.id
    return dataclasses.replace(cands, pairs=pairs, items=items)


DATA_CASES = {
    # name: (how the candidates are broken, expected stage (prefix), words in the reason)
    "corrupted COG": (lambda c, t: _with_naip_href(c, _corrupt(t)), "naip:read", ""),
    "truncated download": (lambda c, t: _with_naip_href(c, _truncated(t)), "naip:read", ""),
    "missing asset file": (lambda c, t: _with_naip_href(c, _missing(t)), "naip:read", "does-not-exist"),
    "blank NAIP": (lambda c, t: _with_naip_href(c, _rewritten(t, zeros=True)), "blank", "blank NAIP"),
    "wrong CRS": (lambda c, t: _with_naip_href(c, _rewritten(t, crs="EPSG:32610")), "nodata", "no-data"),
    "no items": (lambda c, t: _no_pairs(c), "search", "no candidate"),
    "missing band": (lambda c, t: _missing_band(c), "load", "B08"),
}


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_bad_data_is_a_failure_record_and_nothing_written_is_lost(case, tmp_path, base, cs_cands):
    breaker, stage, words = DATA_CASES[case]
    out = tmp_path / "s.zarr"
    shutil.copytree(base, out)
    before = {n: _roi_digest(out, n) for n in ("ROI_00001", "ROI_00002")}
    build_cross_sensor(breaker(cs_cands, tmp_path), out, config=CFG, run=SYNC, signer=s2n.load.NoSigner())
    store = DatasetStore(out)
    fails = store.failures("cross-sensor").set_index("roi")
    assert fails.loc[TARGET, "stage"].startswith(stage), fails.loc[TARGET].to_dict()
    assert words in fails.loc[TARGET, "reason"]
    assert {n: _roi_digest(out, n) for n in before} == before
    assert store.rois("cross-sensor")[:2] == ["ROI_00001", "ROI_00002"]


def test_all_cloud_and_misaligned_rois_are_recorded(tmp_path, cs_cands):
    build_cross_sensor(cs_cands, tmp_path / "s.zarr", config=CFG, run=SYNC, signer=s2n.load.NoSigner())
    fails = DatasetStore(tmp_path / "s.zarr").failures("cross-sensor").set_index("roi")
    assert fails.loc["ROI_00003", "stage"] == "clouds" and "flagged by SCL" in fails.loc["ROI_00003", "reason"]
    assert fails.loc["ROI_00004", "stage"] == "qa" and "QA1=" in fails.loc["ROI_00004", "reason"]


def test_disk_full_is_a_clear_error_and_a_rerun_completes(tmp_path, base, cs_cands, monkeypatch):
    out = tmp_path / "s.zarr"
    shutil.copytree(base, out)
    before = _roi_digest(out, "ROI_00001")
    real = xr.Dataset.to_zarr

    def full(self, *a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_zarr", full)
    with pytest.raises(s2n.StoreError, match="free disk space"):
        build_cross_sensor(cs_cands, out, config=CFG, run=SYNC, signer=s2n.load.NoSigner())
    monkeypatch.setattr(xr.Dataset, "to_zarr", real)
    assert _roi_digest(out, "ROI_00001") == before
    build_cross_sensor(cs_cands, out, config=CFG, run=SYNC, signer=s2n.load.NoSigner())
    clean = tmp_path / "clean.zarr"
    build_cross_sensor(cs_cands, clean, config=CFG, run=SYNC, signer=s2n.load.NoSigner())
    assert DatasetStore(out).digest() == DatasetStore(clean).digest()


def test_unwritable_foreign_and_v2_outputs(tmp_path, cs_cands):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(s2n.StoreError, match="cannot be created"):
        build_cross_sensor(cs_cands, blocker / "s.zarr", config=CFG, run=SYNC)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(s2n.StoreError, match="not a sen2naip_xr store"):
        build_cross_sensor(cs_cands, foreign, config=CFG, run=SYNC)
    assert (foreign / "notes.txt").read_text() == "mine"
    import zarr

    zarr.open_group(str(tmp_path / "v2.zarr"), mode="w", zarr_format=2)
    with pytest.raises(s2n.StoreError, match="new or empty folder"):
        build_cross_sensor(cs_cands, tmp_path / "v2.zarr", config=CFG, run=SYNC)


@pytest.mark.parametrize("make, words", [
    (lambda: CrossSensorConfig(max_misalignment_px=-1), "max_misalignment_px=-1"),
    (lambda: CrossSensorConfig(max_cloud_fraction=2), "max_cloud_fraction=2"),
    (lambda: SyntheticConfig(keep_fraction=0), "keep_fraction=0"),
    (lambda: SyntheticConfig(methods=("sharpen",)), "sharpen"),
    (lambda: SyntheticConfig(embedder="clip"), "clip_weights="),
    (lambda: RunConfig(scheduler="nowhere"), "scheduler='nowhere'"),
    (lambda: RunConfig(n_workers=0), "n_workers=0"),
])
def test_bad_settings_name_the_argument_and_the_fix(make, words):
    with pytest.raises(s2n.InputError, match="must|use|pass|holds|needs") as err:
        make()
    assert words in str(err.value)


def test_wrong_kind_of_candidates(tmp_path, cs_cands, sy_cands):
    with pytest.raises(s2n.InputError, match="build_cross_sensor"):
        build_synthetic(cs_cands, tmp_path / "s.zarr", run=SYNC)
    with pytest.raises(s2n.InputError, match="search_pairs"):
        build_synthetic(copy.copy(sy_cands.pairs), tmp_path / "s.zarr", run=SYNC)


@pytest.mark.parametrize("argv, words", [
    (["build", "cross-sensor", "--out", "x.zarr", "--bbox", "1,2"], "--bbox"),
    (["build", "cross-sensor", "--out", "x.zarr", "--bbox=-117,33,-118,34", "--datetime", "2020"], "W < E"),
    (["build", "cross-sensor", "--out", "x.zarr", "--catalog", "embedded", "--bbox=-118,33,-117,34"], "--bbox"),
    (["build", "cross-sensor", "--out", "x.zarr"], "--bbox is required"),
    (["build", "synthetic", "--out", "x.zarr", "--catalog", "embedded", "--keep-fraction", "0"], "(0, 1]"),
    (["build", "synthetic", "--out", "x.zarr", "--catalog", "embedded", "--rois", "-3"], ">= 1"),
])
def test_bad_command_lines(argv, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage error
        code = exc.code
    assert code == 2
    assert words in capsys.readouterr().err


def test_inspect_and_export_of_a_non_store(tmp_path, capsys, base):
    assert main(["inspect", str(tmp_path)]) == 2
    assert "not a sen2naip_xr store" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["export", str(base), "--out", str(blocker / "sub")]) == 2
    assert "--out" in capsys.readouterr().err
