"""Strict JSON wherever the store records metadata (NaN/inf -> null, strings untouched), and no secrets in
failure records or provenance."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sen2naip_xr.store import DatasetStore, export, roi_name
from sen2naip_xr.store._metadata import provenance_record, roi_metadata
from tests.conftest import small_roi_groups

ROI = {"roi_id": "cs-32611-500000-3650000", "epsg": 32611, "x_min": 500000.0, "y_max": 3650000.0, "size": 32,
       "res": 2.5}
SIGNED = "https://naipeuwest.blob.core.windows.net/naip/a.tif?st=1&se=2&sp=rl&sv=2021&sr=c&sig=Zq9SECRET%3D"
# text that the old ``.replace("NaN", "null")`` corrupted
NOTE = "NaN means no data; Infinity is not a value; NaNs stay NaN"


def _strict(text: str):
    """``json.loads`` that fails on NaN/Infinity (which Python's parser accepts by default)."""
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c!r}"))


def _node_json(st: DatasetStore, path: str) -> str:
    """The ``zarr.json`` document of a node as the store serves it to Zarr readers."""
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    return sync(st.session().store.get(f"{path}/zarr.json", prototype=default_buffer_prototype())).to_bytes().decode()


@pytest.fixture()
def written(tmp_path):
    st = DatasetStore(tmp_path / "s.zarr")
    st.init({"title": "test"})
    meta = roi_metadata(ROI, name=roi_name(0), qa={"QA_1": 0.25, "QA_2": float("nan")})
    meta.update({"note": NOTE, "s2_sun_zenith": np.float32("inf"), "dt_days": np.float64("-inf"),
                 "angles": np.array([1.5, np.nan]), "provenance": provenance_record({"max_days": float("nan")}, [SIGNED])})
    st.write_roi("cross-sensor", "ROI_00001", small_roi_groups(), meta)
    return st


def test_roi_attributes_are_strict_json_with_strings_untouched(written):
    raw = _node_json(written, "cross-sensor/ROI_00001")
    attrs = _strict(raw)["attributes"]
    assert attrs["note"] == NOTE  # not "null means no data ..."
    assert attrs["QA_2"] is None and attrs["s2_sun_zenith"] is None and attrs["dt_days"] is None
    assert attrs["angles"] == [1.5, None] and attrs["QA_1"] == 0.25
    prov = _strict(attrs["provenance"])
    assert prov["config"] == {"max_days": None}
    assert prov["hrefs"] == ["https://naipeuwest.blob.core.windows.net/naip/a.tif"]
    assert "Zq9SECRET" not in raw


def test_exported_metadata_json_is_strict(written, tmp_path):
    export(written.path, tmp_path / "pub")
    text = (tmp_path / "pub" / "cross-sensor" / "ROI_00001" / "metadata.json").read_text()
    assert "NaN" in text and "Infinity" in text  # inside the note, as text
    meta = _strict(text)
    assert meta["note"] == NOTE and meta["QA_2"] is None and meta["s2_sun_zenith"] is None
    assert len(meta["histograms"]) == 4


def test_failure_records_hold_no_signature(tmp_path):
    st = DatasetStore(tmp_path / "s.zarr")
    st.init({"title": "test"})
    st.record_failure("cross-sensor", "ROI_00002", "cs-1", "naip:read",
                      f"3 attempts: '/vsicurl/{SIGNED}' not recognized as being in a supported file format.")
    raw = _node_json(st, "cross-sensor/_failures/ROI_00002") + json.dumps(st.index("cross-sensor"))
    assert "Zq9SECRET" not in raw and "sig=REDACTED" in raw
    assert "sig=REDACTED" in st.failures().loc[0, "reason"]


def test_provenance_record_redacts_its_config():
    prov = _strict(provenance_record({"catalog": "https://stac.example/api?token=Zq9SECRET",
                                      "storage_options": {"account_key": "Zq9SECRET", "account_name": "acc"},
                                      "ratio": float("inf")}, [SIGNED, SIGNED + "&x=1"]))
    assert prov["config"] == {"catalog": "https://stac.example/api?token=REDACTED",
                              "storage_options": {"account_key": "REDACTED", "account_name": "acc"}, "ratio": None}
    assert prov["hrefs"] == ["https://naipeuwest.blob.core.windows.net/naip/a.tif",
                             "https://naipeuwest.blob.core.windows.net/naip/a.tif?x=1"]


def test_operator_provenance_is_strict_json():
    from sen2naip_xr.ops import provenance

    text = next(iter(provenance("add_noise", sd=float("nan"), label="NaN").values()))
    assert _strict(text)["sd"] is None and _strict(text)["label"] == "NaN"
