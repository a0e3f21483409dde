"""The store on its own: whole-ROI commits, failure records, metadata helpers, export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

import sen2naip_xr as s2n
from sen2naip_xr.store import DatasetStore, clean_href, export, roi_name, split_of
from sen2naip_xr.store._metadata import roi_metadata
from tests.conftest import small_roi_groups

ROI = {"roi_id": "cs-32611-500000-3650000", "epsg": 32611, "x_min": 500000.0, "y_max": 3650000.0, "size": 32,
       "res": 2.5}


@pytest.fixture()
def store(tmp_path):
    st = DatasetStore(tmp_path / "s.zarr")
    st.init({"title": "test"})
    return st


def test_write_roi_is_whole_georeferenced_and_readable(store):
    meta = roi_metadata(ROI, name=roi_name(0), qa={"QA_1": 0.25, "QA_2": float("nan")})
    store.write_roi("cross-sensor", "ROI_00001", small_roi_groups(), meta)
    assert store.is_complete("cross-sensor", "ROI_00001") and store.rois("cross-sensor") == ["ROI_00001"]
    attrs = store.attrs("cross-sensor/ROI_00001")
    assert attrs["QA_1"] == 0.25 and attrs["QA_2"] is None and attrs["proj:epsg"] == 32611
    assert attrs["proj:transform"] == [2.5, 0.0, 500000.0, 0.0, -2.5, 3650000.0]
    lr = s2n.open_roi(store.path, "cross-sensor", 1, "lr")
    assert lr.rio.crs.to_epsg() == 32611 and lr.rio.transform().c == 500000.0 and lr.lr.shape == (4, 8, 8)
    tree = s2n.open_store(store.path)
    assert tree.attrs["title"] == "test" and "/cross-sensor/ROI_00001/hr" in tree.groups
    # every array carries a crc32c checksum
    arr = store.group("cross-sensor/ROI_00001/lr")["lr"]
    assert "Crc32cCodec" in [type(c).__name__ for c in arr.metadata.codecs]


@pytest.mark.parametrize(("epsg", "x_min", "y_max", "res"), [(32611, 500000.0, 3650000.0, 2.5),
                                                          (5070, -123456.25, 1987654.5, 10.0), (4326, -120.5, 40.25, 1e-3)])
def test_georeferenced_is_what_rioxarray_writes(epsg, x_min, y_max, res):
    """The grid mapping is made once per EPSG code (rioxarray's write_crs costs ~30 ms per call): the
    result must stay exactly what write_crs + write_transform give."""
    import xarray as xr

    from sen2naip_xr.store import georeferenced

    data = np.random.default_rng(0).random((4, 6, 5), dtype=np.float32)
    ds = georeferenced(data, name="hr", x_min=x_min, y_max=y_max, res=res, epsg=epsg, attrs={"units": "1"})
    ref = xr.DataArray(data, dims=("band", "y", "x"), name="hr", attrs={"units": "1"},
                       coords={"band": ds.band.values.tolist(), "y": ds.y.values, "x": ds.x.values})
    ref = ref.rio.write_crs(f"EPSG:{epsg}").rio.write_transform(
        __import__("affine").Affine(res, 0.0, x_min, 0.0, -res, y_max)).to_dataset().rio.write_crs(f"EPSG:{epsg}")
    xr.testing.assert_identical(ds, ref)
    assert ds.hr.encoding == ref.hr.encoding == {"grid_mapping": "spatial_ref"}
    assert ds.rio.crs == ref.rio.crs and ds.rio.transform() == ref.rio.transform()
    assert ds.rio.transform().c == x_min and ds.y.values[0] == y_max - res / 2


def test_an_uncommitted_write_is_invisible(store):
    """A task killed after writing into its fork, before the driver merged it: nothing is visible."""
    w = store.writer("cross-sensor", config={})
    sink = w.sink()
    sink.write_roi("cross-sensor", "ROI_00001", small_roi_groups(), roi_metadata(ROI, name="ROI_00001"))
    store.refresh()
    assert store.rois("cross-sensor") == [] and store.done("cross-sensor") == set()
    assert not store.has_group("cross-sensor/ROI_00001")
    w.collect(sink)  # merged but not committed: still invisible
    assert DatasetStore(store.path).rois("cross-sensor") == []
    w.commit()
    assert DatasetStore(store.path).rois("cross-sensor") == ["ROI_00001"]


def test_failures_table_and_retry(store):
    store.record_failure("cross-sensor", "ROI_00002", "cs-1", "clouds", "80% cloud")
    store.record_failure("synthetic", "ROI_00001", "sy-1", "blank", "blank window")
    t = store.failures()
    assert t[["kind", "roi", "stage"]].values.tolist() == [["cross-sensor", "ROI_00002", "clouds"],
                                                           ["synthetic", "ROI_00001", "blank"]]
    assert store.done("cross-sensor") == {"ROI_00002"}
    store.remove_rois("cross-sensor", ["ROI_00002"], message="forget")
    assert store.done("cross-sensor") == set() and len(store.failures()) == 1


SPLIT_IDS = [f"cs-32611-{i}-3650000" for i in range(4000)]
#: The split of the first ids, pinned: a change would silently move ROIs between train and test.
PINNED_SPLITS = ["test"] + ["train"] * 11


def _splits_in_a_fresh_process(hashseed: str) -> list[str]:
    """split_of over SPLIT_IDS in a new interpreter with its own PYTHONHASHSEED (str hashes differ)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import sen2naip_xr

    code = ("import json; from sen2naip_xr.store import split_of; "
            f"print(json.dumps([split_of(i) for i in {SPLIT_IDS!r}]))")
    env = {**os.environ, "PYTHONHASHSEED": hashseed,
           "PYTHONPATH": str(Path(sen2naip_xr.__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_split_is_the_same_80_20_in_every_process():
    """A split from per-process ``hash()`` would differ between these two interpreters."""
    a, b = _splits_in_a_fresh_process("1"), _splits_in_a_fresh_process("2")
    assert a == b == [split_of(i) for i in SPLIT_IDS]
    assert 0.78 < a.count("train") / len(a) < 0.82
    assert a[:12] == PINNED_SPLITS


def test_clean_href_drops_sas_tokens_only():
    signed = "https://naipeuwest.blob.core.windows.net/naip/a.tif?st=2024&se=2024&sp=rl&sv=2021&sr=c&sig=abc%3D"
    assert clean_href(signed) == "https://naipeuwest.blob.core.windows.net/naip/a.tif"
    assert clean_href("https://x/a.tif?version=2&sig=1") == "https://x/a.tif?version=2"
    assert clean_href("/data/a.tif") == "/data/a.tif"


def test_export_writes_the_published_layout(store, tmp_path):
    store.write_roi("cross-sensor", "ROI_00001", small_roi_groups(), roi_metadata(ROI, name="ROI_00001"))
    folders = export(store.path, tmp_path / "pub")
    d = tmp_path / "pub" / "cross-sensor" / "ROI_00001"
    assert folders == [str(d)] and sorted(p.name for p in d.iterdir()) == ["HR.tif", "LR.tif", "metadata.json"]
    with rasterio.open(d / "LR.tif") as f:
        assert f.dtypes[0] == "uint16" and f.crs.to_epsg() == 32611 and f.transform.a == 10.0 and f.count == 4
        np.testing.assert_array_equal(f.read(), np.round(small_roi_groups()["lr"].lr.values * 10000).astype(np.uint16))
    meta = json.loads((d / "metadata.json").read_text())
    assert meta["roi_id"] == ROI["roi_id"] and len(meta["histograms"]) == 4 and "s2n:complete" not in meta


def test_init_refuses_what_it_must_not_overwrite(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(s2n.StoreError, match="not a sen2naip_xr store"):
        DatasetStore(tmp_path / "busy").init()
    arr = tmp_path / "array.zarr"
    arr.mkdir()
    (arr / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "array"}))
    with pytest.raises(s2n.StoreError, match="plain Zarr folder"):
        DatasetStore(arr).init()
    with pytest.raises(s2n.StoreError, match="not a sen2naip_xr store"):
        s2n.summarize(tmp_path / "busy")


def test_locations_are_urls_and_unknown_schemes_are_errors(tmp_path):
    from sen2naip_xr.store._location import parse_location

    assert parse_location(tmp_path / "a.zarr").path == tmp_path / "a.zarr"
    assert parse_location(f"file://{tmp_path}/a.zarr").path == tmp_path / "a.zarr"
    loc = parse_location("abfs://data@myacct.dfs.core.windows.net/s2n/ds.zarr")
    assert (loc.scheme, loc.bucket, loc.prefix, loc.options["account_name"]) == ("az", "data", "s2n/ds.zarr", "myacct")
    assert parse_location("s3://b/p/").url == "s3://b/p" and parse_location("gs://b/x").scheme == "gs"
    for bad, match in (("ftp://x/y", "unknown scheme 'ftp'"), ("az:///nocontainer", "names no container"),
                       ("az://c/p?sig=abc", "query string"), ("s3://u:pw@b/p", "credentials")):
        with pytest.raises(s2n.StoreError, match=match) as exc:
            parse_location(bad)
        assert "abc" not in str(exc.value) and "pw@" not in str(exc.value)
    with pytest.raises(s2n.StoreError, match="not known for s3"):
        parse_location("s3://b/p", {"account_key": "x"})
    # the store records the URL, never the credentials
    st = DatasetStore("memory://urls", storage_options={})
    assert repr(st) == "DatasetStore('memory://urls')"


def test_memory_store_is_one_code_path_in_process():
    st = DatasetStore("memory://unit-test-store")
    st.init({"title": "mem"})
    st.write_roi("cross-sensor", "ROI_00001", small_roi_groups(), roi_metadata(ROI, name="ROI_00001"))
    assert s2n.summarize("memory://unit-test-store")["parts"]["cross-sensor"]["written"] == 1
    assert s2n.open_roi("memory://unit-test-store", "cross-sensor", 1, "hr").hr.shape == (4, 32, 32)


def test_history_tags_and_versions(store):
    store.write_roi("cross-sensor", "ROI_00001", small_roi_groups(), roi_metadata(ROI, name="ROI_00001"))
    sid = store.create_tag("v1")
    store.record_failure("cross-sensor", "ROI_00002", "cs-2", "clouds", "cloudy")
    assert s2n.summarize(store.path)["parts"]["cross-sensor"]["failed"] == 1
    assert s2n.summarize(store.path, tag="v1")["parts"]["cross-sensor"]["failed"] == 0
    assert s2n.summarize(store.path, snapshot=sid)["parts"]["cross-sensor"]["written"] == 1
    hist = store.history()
    assert [h["snapshot"] for h in hist if "v1" in h["tags"]] == [sid] and len(hist) >= 4
    with pytest.raises(s2n.StoreError, match="immutable"):
        store.create_tag("v1")
    with pytest.raises(s2n.StoreError, match="no version"):
        s2n.open_store(store.path, tag="nope")


def _chunk_files(path):
    return sorted(p for p in (path / "chunks").iterdir() if p.is_file())


def test_a_flipped_byte_is_found_by_verify_and_reads_say_the_fix(store):
    store.write_roi("cross-sensor", "ROI_00001", small_roi_groups(), roi_metadata(ROI, name="ROI_00001"))
    before = set(_chunk_files(store.path))
    store.write_roi("cross-sensor", "ROI_00002", small_roi_groups(seed=2), roi_metadata({**ROI, "roi_id": "cs-2"},
                                                                               name="ROI_00002"))
    assert store.verify().empty
    new = sorted(set(_chunk_files(store.path)) - before, key=lambda p: p.stat().st_size)
    big = new[-1]  # the HR array of ROI_00002
    data = bytearray(big.read_bytes())
    data[len(data) // 2] ^= 0xFF
    big.write_bytes(bytes(data))
    bad = DatasetStore(store.path).verify()
    assert bad["roi"].tolist() == ["ROI_00002"] and "checksum" in bad["problem"].iloc[0].lower()
    with pytest.raises(s2n.StoreError, match=r"ROI_00002.*--verify.*--repair"):
        s2n.open_roi(store.path, "cross-sensor", "ROI_00002")
    assert s2n.open_roi(store.path, "cross-sensor", "ROI_00001", "lr").lr.shape == (4, 8, 8)
    # a deleted chunk object: found too
    new[0].unlink()
    assert "ROI_00002" in DatasetStore(store.path).verify()["roi"].tolist()


def test_damaged_metadata_is_a_store_error_with_the_fix(store, capsys):
    from sen2naip_xr.cli import main

    store.write_roi("cross-sensor", "ROI_00001", small_roi_groups(), roi_metadata(ROI, name="ROI_00001"))
    store.record_failure("cross-sensor", "ROI_00002", "cs-2", "clouds", "cloudy")
    newest = max((store.path / "snapshots").iterdir(), key=lambda p: p.stat().st_mtime)
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a truncated metadata object
    with pytest.raises(s2n.StoreError, match=r"cannot be read.*--verify.*--repair"):
        s2n.summarize(store.path)
    assert main(["inspect", str(store.path)]) == 2
    err = capsys.readouterr().err
    assert "cannot be read" in err and "Traceback" not in err
