"""Search, paging, tidy tables and pairing against the local STAC API (PC layout)."""

import pandas as pd
import pytest

import sen2naip_xr as s2n
from sen2naip_xr.catalog import SearchConfig

pytestmark = pytest.mark.network


def _client(url, pages=None):
    def count(req):
        if pages is not None and "/search" in req.url:
            pages.append(req.url)
        return req

    return s2n.open_catalog(url, request_modifier=count)


def test_search_bbox_cloud_filter_and_paging(stac_stack):
    pages = []
    client = _client(stac_stack.url, pages)
    cfg = SearchConfig(page_size=2)
    items = s2n.search_items(client, "sentinel-2-l2a", bbox=(-117.2, 32.9, -117.0, 33.0), config=cfg)
    assert sorted(i.properties["eo:cloud_cover"] for i in items) == [1.0, 5.0, 12.5, 40.0]
    assert len(pages) == 2  # 4 items at 2 per page: the client followed one next link
    low = s2n.search_items(client, "sentinel-2-l2a", bbox=(-117.2, 32.9, -117.0, 33.0), max_cloud_cover=5.0)
    assert sorted(i.properties["eo:cloud_cover"] for i in low) == [1.0, 5.0]
    capped = s2n.search_items(client, "naip", datetime="2010-01-01/2023-12-31", config=SearchConfig(page_size=2, max_items=3))
    assert len(capped) == 3


def test_item_tables_use_pc_names(stac_stack):
    client = _client(stac_stack.url)
    s2 = s2n.items_table(s2n.search_items(client, "sentinel-2-l2a", datetime="2022-05-15/2022-05-15"))
    assert list(s2.columns) == list(s2n.catalog.S2_COLUMNS)
    row = s2.iloc[0]
    assert row["s2:processing_baseline"] == "04.00" and row["eo:cloud_cover"] == 5.0
    assert row["s2:mean_solar_azimuth"] == 131.0 and row["epsg"] == 32611
    naip = s2n.items_table(s2n.search_items(client, "naip", datetime="2022-05-15/2022-05-15"))
    assert sorted(naip["gsd"]) == [1.0, 1.0]  # 1.0000000000000049 rounded
    assert naip["naip:year"].dtype == "int64" and set(naip["naip:year"]) == {2022}
    assert set(naip["naip:state"]) == {"ca"}


def test_cross_sensor_pairs(stac_stack):
    import s2n_stac_stack as m

    rois = m.scenario_rois()
    c = s2n.search_pairs(rois, datetime="2010-01-01/2023-12-31", client=_client(stac_stack.url), progress=False)
    got = c.pairs[["roi_id", "naip_id", "s2_id", "dt_days", "s2:processing_baseline"]]
    expect = pd.DataFrame([
        ("cs-32611-491000-3646000", "n3", "_d", 1.0, "02.13"),
        ("cs-32611-491000-3649000", "n1", "_a", 0.0, "04.00"),
        ("cs-32611-491000-3649000", "n1", "_b", 1.0, "04.00"),
        ("cs-32611-494000-3649000", "n2", "_a", 0.0, "04.00"),
        ("cs-32611-494000-3649000", "n2", "_b", 1.0, "04.00"),
    ], columns=got.columns)
    assert got["roi_id"].tolist() == expect["roi_id"].tolist()
    assert [f"_{n}_" in a for a, n in zip(got["naip_id"], expect["naip_id"], strict=True)] == [True] * 5
    assert [s.endswith(e) for s, e in zip(got["s2_id"], expect["s2_id"], strict=True)] == [True] * 5
    assert got["dt_days"].tolist() == expect["dt_days"].tolist()
    assert got["s2:processing_baseline"].tolist() == expect["s2:processing_baseline"].tolist()
    assert "cs-32611-494000-3646000" not in set(c.pairs["roi_id"])  # R4: no NAIP
    assert set(c.items) == set(c.pairs["naip_id"]) | set(c.pairs["s2_id"])
    assert "5 candidate pairs for 3 of 4 ROIs" in c.summary()
    # capture c (dt 3 days) is never paired; with max_days=3 it is
    wide = s2n.search_pairs(rois.iloc[:1], datetime="2022-01-01/2022-12-31", client=_client(stac_stack.url),
                            pairing=s2n.PairingConfig(max_days=3), progress=False)
    assert sorted(wide.pairs["dt_days"]) == [0.0, 1.0, 3.0]


def test_synthetic_early_late(stac_stack):
    import s2n_stac_stack as m

    c = s2n.search_pairs(m.scenario_rois("synthetic"), kind="synthetic", client=_client(stac_stack.url), progress=False)
    assert c.pairs["role"].tolist() == ["early", "late"]
    assert c.pairs["naip:year"].tolist() == [2012, 2018]  # 2010 excluded (< 2011)


def test_empty_result_is_an_outcome(stac_stack):
    rois = s2n.rois_from_points([-100.0], [40.0])  # nothing there
    c = s2n.search_pairs(rois, datetime="2020-01-01/2020-12-31", client=_client(stac_stack.url), progress=False)
    assert c.pairs.empty and "roi_id" in c.pairs.columns and "s2_id" in c.pairs.columns
    assert "no candidates" in c.summary()
    cubes = s2n.load_pairs(c)
    assert cubes.naip.sizes["roi"] == 0 and cubes.s2.sizes["roi"] == 0


def test_search_failure_is_recorded_not_raised():
    rois = s2n.rois_from_points([-117.0], [33.0])
    class Broken:
        def search(self, **kw):
            raise ConnectionError("HTTP 503 from the API")

    c = s2n.search_pairs(rois, client=Broken(), progress=False)
    assert c.failures[["roi_id", "stage"]].values.tolist() == [[rois.loc[0, "roi_id"], "search-naip"]]
    assert "HTTP 503" in c.failures.loc[0, "reason"] and c.pairs.empty


@pytest.mark.parametrize("ext", ["parquet", "csv"])
def test_cli_search_writes_table(stac_stack, tmp_path, capsys, ext):
    from sen2naip_xr.cli import main

    out = tmp_path / f"pairs.{ext}"
    rc = main(["search", "--catalog", stac_stack.url, "--bbox=-117.11,32.96,-117.03,32.99",
               "--datetime", "2022-01-01/2022-12-31", "--rois", "2", "--seed", "0", "--out", str(out), "--no-progress"])
    assert rc == 0
    table = pd.read_parquet(out) if ext == "parquet" else pd.read_csv(out)
    printed = capsys.readouterr().out
    assert f"wrote {len(table)} rows" in printed and "cross-sensor:" in printed
    assert {"roi_id", "naip_id", "s2_id", "dt_days"} <= set(table.columns)
    assert main(["search", "--bbox", "1,2,3,4", "--datetime", "x", "--out", str(tmp_path / "a.txt")]) == 2
