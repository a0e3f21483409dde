"""Search at scale: grouped queries, bounded concurrency, retries, stac-geoparquet, progress (issue 12)."""

from __future__ import annotations

import logging
import random
import threading
import time

import numpy as np
import pandas as pd
import pytest
import shapely

import sen2naip_xr as s2n
from sen2naip_xr.catalog import GeoParquetCatalog, SearchConfig
from sen2naip_xr.catalog._plan import merged_windows, plan_tasks, window_filter

ROI_REGION = (-72.95, 44.55, -72.55, 44.75)  # inside the dense catalog of conftest.py

DATES = "2010-01-01/2023-12-31"


def dense_cfg(**kw) -> SearchConfig:
    kw.setdefault("sign", False)
    return SearchConfig(naip_collection="naip-dense", s2_collection="sentinel-2-l2a-dense", **kw)


def dense_rois(n=40, kind="cross-sensor", seed=1):
    return s2n.sample_rois(n, seed=seed, region=ROI_REGION,
                           config=s2n.RoiConfig(kind=kind, min_distance_m=2000 if kind == "cross-sensor" else 3000))


def assert_same(a: s2n.Candidates, b: s2n.Candidates) -> None:
    """Same pairs, items (ids, order, content) and failures."""
    pd.testing.assert_frame_equal(a.pairs, b.pairs)
    assert list(a.items) == list(b.items)
    for k in a.items:
        assert a.items[k].to_dict() == b.items[k].to_dict()
    pd.testing.assert_frame_equal(a.failures.reset_index(drop=True), b.failures.reset_index(drop=True))


# ------------------------------------------------------------------------------------------------
# 1. fewer requests, same candidates
@pytest.mark.network
@pytest.mark.parametrize("kind", ["cross-sensor", "synthetic"])
def test_grouped_gives_per_roi_candidates_with_fewer_requests(dense, proxy, kind):
    rois = dense_rois(40 if kind == "cross-sensor" else 20, kind)
    got = {}
    for strategy, conc, deg in (("per-roi", 1, 0.5), ("grouped", 8, 0.5), ("grouped", 8, 0.1)):
        cfg = dense_cfg(strategy=strategy, concurrency=conc, group_deg=deg)
        proxy.reset()
        c = s2n.search_pairs(rois, kind=kind, datetime=DATES, client=s2n.open_catalog(proxy.url, config=cfg),
                             config=cfg, progress=False)
        assert c.stats.requests == proxy.count("/search")  # pages counted = requests the API saw
        got[(strategy, deg)] = c
    ref = got[("per-roi", 0.5)]
    assert len(ref.pairs) > 10 and ref.failures.empty
    if kind == "cross-sensor":
        assert ref.pairs["roi_id"].nunique() > 20 and len(ref.pairs.groupby("roi_id")["naip_id"].nunique().pipe(lambda s: s[s > 1])) > 0
    else:
        assert set(ref.pairs["role"]) == {"early", "late"}
    for key in (("grouped", 0.5), ("grouped", 0.1)):
        assert_same(ref, got[key])
    n = len(rois)
    per_roi, grouped, small_groups = (got[k].stats.requests / n for k in (("per-roi", 0.5), ("grouped", 0.5), ("grouped", 0.1)))
    if kind == "cross-sensor":
        assert per_roi >= 3  # 1 NAIP + one S2 query per NAIP date (3 flight years here)
        assert grouped <= 0.25 and small_groups <= 1.0 and grouped < small_groups
    else:
        assert per_roi == 1
        assert grouped < 0.25 and small_groups <= 1.0
    assert got[("grouped", 0.5)].stats.tasks == 1  # the whole set is one 0.5 degree group


@pytest.mark.network
def test_s2_query_of_a_group_filters_on_its_date_windows(dense, proxy):
    """One S2 query per group whatever the number of NAIP dates; a catalog without CQL2 filters
    gets one query per merged window instead (still per group)."""
    rois = dense_rois(40)
    cfg = dense_cfg(group_deg=0.5)
    proxy.reset()
    c = s2n.search_pairs(rois, datetime=DATES, client=s2n.open_catalog(proxy.url, config=cfg), config=cfg,
                         progress=False)
    posts = [h for h in proxy.log if h.path == "/search"]
    assert c.stats.queries == 2 and len(posts) == c.stats.requests

    class NoFilter:  # a STAC API without the filter extension (delegates, but hides conforms_to)
        def __init__(self, inner):
            self.inner = inner
            self.calls = []

        def search(self, **kw):
            assert kw["filter"] is None or kw["filter"]["op"] == "<="
            self.calls.append(kw["datetime"])
            return self.inner.search(**kw)

    nf = NoFilter(s2n.open_catalog(proxy.url, config=cfg))
    c2 = s2n.search_pairs(rois, datetime=DATES, client=nf, config=cfg, progress=False)
    assert_same(c, c2)
    assert len(nf.calls) > 2  # one NAIP query + one S2 query per merged window (3 flight seasons)


def test_merged_windows_and_filter():
    days = pd.Series(pd.to_datetime(["2020-06-20", "2020-06-21", "2020-06-25", "2018-07-01"], utc=True))
    assert merged_windows(days, 1.0) == [
        ("2018-06-30T00:00:00Z", "2018-07-02T23:59:59Z"),
        ("2020-06-19T00:00:00Z", "2020-06-22T23:59:59Z"),
        ("2020-06-24T00:00:00Z", "2020-06-26T23:59:59Z"),
    ]
    assert merged_windows(days, 2.0)[1:] == [("2020-06-18T00:00:00Z", "2020-06-27T23:59:59Z")]  # touching: merged
    f = window_filter(merged_windows(days, 1.0))
    assert f["op"] == "or" and len(f["args"]) == 3 and f["args"][0]["op"] == "t_intersects"
    assert window_filter([("a", "b")])["op"] == "t_intersects"


def test_plan_groups_by_cell_and_caps_group_size():
    rois = dense_rois(40)
    one = plan_tasks(rois, SearchConfig(group_deg=0.5))
    assert [t.tolist() for t in one] == [list(range(40))]
    capped = plan_tasks(rois, SearchConfig(group_deg=0.5, max_group_rois=7))
    assert all(len(t) <= 7 for t in capped) and sorted(np.concatenate(capped).tolist()) == list(range(40))
    assert [int(t.min()) for t in capped] == sorted(int(t.min()) for t in capped)  # fixed order
    cells = plan_tasks(rois, SearchConfig(group_deg=0.1))
    for t in cells:  # every group lies in one 0.1 degree cell
        assert len({(int(np.floor(x / 0.1)), int(np.floor(y / 0.1))) for x, y in rois.iloc[t][["lon", "lat"]].to_numpy()}) == 1
    assert [t.tolist() for t in plan_tasks(rois, SearchConfig(strategy="per-roi"))] == [[i] for i in range(40)]


# ------------------------------------------------------------------------------------------------
# 2. concurrency: same candidates whatever the completion order; failures per ROI
class Shuffling:
    """Delegates to a real client after a random delay; fails NAIP queries touching ``bad_naip`` and
    S2 queries touching ``bad_s2`` (deterministic failures, random completion order)."""

    def __init__(self, inner, seed, bad_naip, bad_s2):
        self.inner, self.bad_naip, self.bad_s2 = inner, bad_naip, bad_s2
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0

    def search(self, **kw):
        with self.lock:
            delay = self.rng.uniform(0, 0.04)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(delay)
            geom = shapely.geometry.shape(kw["intersects"])
            coll = kw["collections"][0]
            if "naip" in coll and geom.intersects(self.bad_naip):
                raise ConnectionError("HTTP 503 for the NAIP query")
            if "sentinel" in coll and geom.intersects(self.bad_s2):
                raise ConnectionError("HTTP 502 for the S2 query")
            return self.inner.search(**kw)
        finally:
            with self.lock:
                self.in_flight -= 1

    def conforms_to(self, c):
        return self.inner.conforms_to(c)


@pytest.mark.network
@pytest.mark.parametrize("strategy", ["per-roi", "grouped"])
def test_same_candidates_whatever_concurrency_and_order(dense, stac_stack, strategy):
    rois = dense_rois(40)
    g = shapely.from_wkt(rois["geometry"].to_numpy())
    bad_naip, bad_s2 = shapely.centroid(g[3]), shapely.centroid(g[17])
    inner = s2n.open_catalog(stac_stack.url, config=dense_cfg())
    runs = []
    for conc, seed in ((1, 0), (8, 1), (8, 2), (3, 3)):
        cfg = dense_cfg(strategy=strategy, concurrency=conc, group_deg=0.1)
        client = Shuffling(inner, seed, bad_naip, bad_s2)
        runs.append(s2n.search_pairs(rois, datetime=DATES, client=client, config=cfg, progress=False))
        assert client.max_in_flight <= conc
        if conc == 8:
            assert client.max_in_flight > 1  # really concurrent
    for other in runs[1:]:
        assert_same(runs[0], other)
    f = runs[0].failures
    assert f["roi_id"].is_unique and set(f["stage"]) == {"search-naip", "search-s2"}
    assert rois["roi_id"].iloc[3] in set(f.loc[f["stage"] == "search-naip", "roi_id"])
    assert rois["roi_id"].iloc[17] in set(f.loc[f["stage"] == "search-s2", "roi_id"])
    assert f["reason"].str.contains("HTTP 50[23]").all()
    assert not set(f["roi_id"]) & set(runs[0].pairs["roi_id"])  # failed ROIs have no pairs
    order = {r: i for i, r in enumerate(rois["roi_id"])}
    assert f["roi_id"].map(order).is_monotonic_increasing  # ROI order, never completion order
    if strategy == "grouped":  # a failed group is recorded per ROI: every ROI of the group
        task = next(t for t in plan_tasks(rois, dense_cfg(group_deg=0.1)) if 3 in t)
        assert set(rois["roi_id"].iloc[task]) <= set(f["roi_id"])
        assert f["reason"].str.startswith("group of ").all()


# ------------------------------------------------------------------------------------------------
# retries: 429 with Retry-After, 5xx with backoff, then a recorded failure
@pytest.mark.network
def test_retry_after_429_is_honoured(stac_stack, proxy):
    proxy.fail(429, times=1, retry_after="1", contains="/search")
    client = s2n.open_catalog(proxy.url, config=SearchConfig(sign=False, backoff_s=0.01))
    items = s2n.search_items(client, "sentinel-2-l2a", bbox=(-117.2, 32.9, -117.0, 33.0))
    assert len(items) == 4
    hits = [h for h in proxy.log if h.path == "/search"]
    assert [h.status for h in hits] == [429, 200]
    assert hits[1].t - hits[0].t >= 0.95  # waited as told (backoff alone would be ~0.01 s)


@pytest.mark.network
def test_5xx_retried_with_backoff_then_recorded_per_roi(stac_stack, proxy):
    import s2n_stac_stack as m

    proxy.fail(503, times=2, contains="/search")
    proxy.fail(502, times=1, contains="/search")
    client = s2n.open_catalog(proxy.url, config=SearchConfig(sign=False, backoff_s=0.05, max_backoff_s=0.2))
    assert len(s2n.search_items(client, "sentinel-2-l2a", bbox=(-117.2, 32.9, -117.0, 33.0))) == 4
    assert [h.status for h in proxy.log if h.path == "/search"] == [503, 503, 502, 200]
    proxy.reset()
    proxy.fail(500, times=1000, contains="/search")
    cfg = SearchConfig(sign=False, max_retries=2, backoff_s=0.01, max_backoff_s=0.05)
    c = s2n.search_pairs(m.scenario_rois(), datetime=DATES, client=s2n.open_catalog(proxy.url, config=cfg),
                         config=cfg, progress=False)
    assert c.pairs.empty and len(c.failures) == 4 and set(c.failures["stage"]) == {"search-naip"}
    assert c.failures["roi_id"].tolist() == m.scenario_rois()["roi_id"].tolist()
    assert c.failures["reason"].str.contains("500").all()
    assert proxy.count("/search") == 3  # one group, 1 try + 2 retries


# ------------------------------------------------------------------------------------------------
# 3. stac-geoparquet: no API request, same pairs
@pytest.fixture(scope="module")
def parquet_dir(stac_stack, dense, tmp_path_factory):
    import s2n_dense as dn

    d, naip, s2 = dense
    folder = tmp_path_factory.mktemp("stac-geoparquet")
    dn.write_geoparquet(folder, {"naip": stac_stack.naip, "sentinel-2-l2a": stac_stack.s2,
                                 d.naip_collection: naip, d.s2_collection: s2})
    return folder


def _api(stac_stack, rois, kind, cfg):
    return s2n.search_pairs(rois, kind=kind, datetime=DATES, client=s2n.open_catalog(stac_stack.url, config=cfg),
                            config=cfg, progress=False)


@pytest.mark.network
@pytest.mark.parametrize("case", ["scenario-cs", "scenario-sy", "dense-cs", "dense-sy"])
def test_geoparquet_gives_the_api_pairs(stac_stack, parquet_dir, case):
    import s2n_stac_stack as m

    kind = "cross-sensor" if case.endswith("cs") else "synthetic"
    if case.startswith("scenario"):
        rois, cfg = m.scenario_rois(kind), SearchConfig(sign=False)
    else:
        rois, cfg = dense_rois(40 if kind == "cross-sensor" else 20, kind), dense_cfg()
    api = _api(stac_stack, rois, kind, cfg)
    assert len(api.pairs)
    for loc in (str(parquet_dir), parquet_dir.as_uri()):
        local = s2n.search_pairs(rois, kind=kind, datetime=DATES, catalog=loc, config=cfg, progress=False)
        assert isinstance(s2n.open_catalog(loc), GeoParquetCatalog)
        assert local.stats.requests == 0
        pd.testing.assert_frame_equal(api.pairs, local.pairs)
        assert list(api.items) == list(local.items)
        for k, it in api.items.items():  # same assets and properties (datetime text aside)
            a, b = it.to_dict(), local.items[k].to_dict()
            assert {n: x["href"] for n, x in a["assets"].items()} == {n: x["href"] for n, x in b["assets"].items()}
            pa_, pb = dict(a["properties"]), dict(b["properties"])
            assert pd.Timestamp(pa_.pop("datetime")) == pd.Timestamp(pb.pop("datetime"))
            assert pa_ == pb


@pytest.mark.network
def test_geoparquet_in_an_object_store(stac_stack, parquet_dir):
    """An obstore store (in memory here: Azurite is not started by these tests) holding
    <collection>.parquet files; the folder form of a collection (several files) too."""
    import obstore
    import obstore.store
    import pyarrow.parquet as pq
    import s2n_stac_stack as m

    store = obstore.store.MemoryStore()
    store.put("naip.parquet", (parquet_dir / "naip.parquet").read_bytes())
    t = pq.read_table(parquet_dir / "sentinel-2-l2a.parquet")
    for i in range(2):  # sentinel-2-l2a.parquet/part-i.parquet: a partitioned collection
        import io

        buf = io.BytesIO()
        pq.write_table(t.slice(i * 2, 2), buf)
        obstore.put(store, f"sentinel-2-l2a.parquet/part-{i}.parquet", buf.getvalue())
    rois = m.scenario_rois()
    api = _api(stac_stack, rois, "cross-sensor", SearchConfig(sign=False))
    local = s2n.search_pairs(rois, datetime=DATES, client=s2n.open_catalog(store), progress=False)
    pd.testing.assert_frame_equal(api.pairs, local.pairs)
    assert local.stats.requests == 0


@pytest.mark.network
def test_geoparquet_hrefs_are_signed_at_read_time(stac_stack, assets, parquet_dir):
    import s2n_stac_stack as m

    c = s2n.search_pairs(m.scenario_rois(), datetime=DATES, catalog=str(parquet_dir), progress=False)
    hrefs = [a.href for it in c.items.values() for a in it.assets.values()]
    assert hrefs and not any("sig=" in h for h in hrefs)  # left as published
    assert assets.stats.token_requests == 0
    naip = s2n.load_naip(c, config=stac_stack.load_config()).compute()
    r1 = "cs-32611-491000-3649000"
    np.testing.assert_allclose(naip.sel(roi=r1).isel(time=0).values, m.expected_naip("n1", *m.CS_ROIS["R1"]),
                               rtol=0, atol=1e-4)
    assert assets.stats.token_requests > 0 and assets.stats.rejected == 0  # signed when read


@pytest.mark.network
def test_cli_search_with_a_geoparquet_catalog(parquet_dir, tmp_path, capsys):
    from sen2naip_xr.cli import main

    tables = []
    for extra in ([], ["--strategy", "per-roi", "--concurrency", "2"]):
        out = tmp_path / f"pairs{len(extra)}.parquet"
        rc = main(["search", "--catalog", str(parquet_dir), "--bbox=-117.11,32.96,-117.03,32.99",
                   "--datetime", "2022-01-01/2022-12-31", "--rois", "2", "--seed", "0", "--out", str(out),
                   "--no-progress", *extra])
        assert rc == 0
        printed = capsys.readouterr().out
        tables.append(pd.read_parquet(out))
        assert "0 requests" in printed and f"wrote {len(tables[-1])} rows" in printed
        assert ("search: per-roi" if extra else "search: grouped") in printed
    assert tables[0].equals(tables[1])
    assert main(["search", "--catalog", str(parquet_dir), "--bbox=1,2,3,4", "--datetime", "x", "--concurrency", "0",
                 "--out", str(tmp_path / "a.parquet")]) == 2  # InputError: concurrency=0


def test_geoparquet_errors_name_the_problem(tmp_path):
    with pytest.raises(s2n.InputError, match="not a folder of stac-geoparquet"):
        GeoParquetCatalog(tmp_path / "missing")
    cat = GeoParquetCatalog(tmp_path)
    with pytest.raises(s2n.CatalogError, match="collection='naip' has no naip.parquet"):
        cat.search(collections=["naip"])
    rois = s2n.rois_from_points([-117.0], [33.0])
    c = s2n.search_pairs(rois, catalog=str(tmp_path), progress=False)
    assert c.failures["reason"].str.contains("naip.parquet").all()  # recorded, not raised
    from sen2naip_xr.catalog._geoparquet import cql2_to_arrow

    with pytest.raises(s2n.CatalogError, match="s_within"):
        cql2_to_arrow({"op": "s_within", "args": []}, {"datetime"})
    with pytest.raises(s2n.CatalogError, match="not a column"):
        cql2_to_arrow({"op": "<=", "args": [{"property": "eo:cloud_cover"}, 5]}, {"datetime"})


# ------------------------------------------------------------------------------------------------
# 5. progress
@pytest.mark.network
def test_progress_reports_requests_pairs_failures_and_eta(dense, stac_stack, caplog):
    rois = dense_rois(40)
    g = shapely.from_wkt(rois["geometry"].to_numpy())
    client = Shuffling(s2n.open_catalog(stac_stack.url, config=dense_cfg()), 0, shapely.centroid(g[3]),
                       shapely.Point(0, 0))
    with caplog.at_level(logging.INFO, logger="sen2naip_xr.catalog"):
        c = s2n.search_pairs(rois, datetime=DATES, client=client, config=dense_cfg(group_deg=0.1), progress=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "sen2naip_xr.catalog"]
    last = lines[-1]
    assert "40/40 ROIs" in last and f"{c.stats.requests} requests" in last
    assert f"{len(c.pairs)} pairs" in last and f"{len(c.failures)} failed ROIs" in last and "ETA" in last
    assert len(c.failures) > 0


def test_progress_bar_on_a_terminal(monkeypatch, capsys):
    from sen2naip_xr.catalog import _plan

    monkeypatch.setattr(_plan, "_interactive", lambda: True)
    p = _plan.Progress(3, "search test", enabled=True)
    p.update(_plan.TaskResult(0, np.array([0, 1]), requests=5, pairs=4, failures=[(1, "search-s2", "x")]))
    p.close()
    err = capsys.readouterr().err
    assert "search test" in err and "requests=5" in err and "pairs=4" in err and "failed=1" in err


# ------------------------------------------------------------------------------------------------
def test_search_config_rejects_bad_values():
    for kw, word in (({"strategy": "fast"}, "strategy='fast'"), ({"concurrency": 0}, "concurrency=0"),
                     ({"group_deg": 0}, "group_deg=0"), ({"max_group_rois": 0}, "max_group_rois=0"),
                     ({"max_retries": -1}, "max_retries=-1"), ({"timeout_s": 0}, "timeout_s=0"),
                     ({"backoff_s": -1.0}, "backoff_s=-1.0")):
        with pytest.raises(s2n.InputError, match=word.replace("(", r"\(")):
            SearchConfig(**kw)
    with pytest.raises(s2n.InputError, match="either client= or catalog="):
        s2n.search_pairs(dense_rois(2), client=object(), catalog="x", progress=False)
