"""Benchmark the search stage at scale: requests per ROI and wall time, per-ROI vs grouped vs stac-geoparquet.

    python benchmarks/search.py [--rois 100 1000] [--latency 0.15] [--kinds cross-sensor synthetic] [--quick]

Fixture: the test STAC stack (``tests/stac/s2n_stac_stack.py``: PostgreSQL + pgstac + stac-fastapi-pgstac on
loopback, what Planetary Computer runs) loaded with a dense catalog generated from Planetary Computer's item
templates (``tests/stac/s2n_dense.py``, ``../shared/stac/pc``): over 2 x 2 degrees of Vermont, NAIP
quarter-quad footprints (3.75', overlapping by ~300 m) for 4 flight years whose flight dates vary across the
region, and 1-degree Sentinel-2 tiles with an acquisition every 2 days around each flight season. The API is
reached through a loopback proxy that adds ``--latency`` seconds to every round trip (``s2n_latency_proxy``)
and counts the requests. ROIs: ``sample_rois(N, seed=0)`` in the region with 4 km spacing (the first 100 of
the 1,000 are the 100-ROI set).

For each kind and N, in the same run: ``per-roi`` one query at a time (the search before issue 12: one NAIP
query per ROI, one S2 query per NAIP date), ``per-roi`` with 8 queries in flight, ``grouped`` (the default:
0.5-degree groups, one paged NAIP query and one paged S2 query per group, 8 in flight), and ``geoparquet``
(the same items written as stac-geoparquet, searched locally: no request). Every strategy's pairs are
checked equal to the sequential per-ROI pairs.

Prints a table and writes ``benchmarks/results/search.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

import sen2naip_xr as s2n
from sen2naip_xr.catalog import SearchConfig

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "stac"))
import s2n_dense as dense  # noqa: E402
import s2n_latency_proxy as latency_proxy  # noqa: E402
import s2n_stac_stack as stack  # noqa: E402
from _machine import cpu_and_memory  # noqa: E402

REGION = (-73.3, 43.8, -71.3, 45.8)  # the catalog
ROI_REGION = (-73.2, 43.9, -71.4, 45.7)  # where ROIs are drawn (inside, so every ROI can be covered)
DATES = "2010-01-01/2023-12-31"


def run_one(rois, kind, strategy, concurrency, *, client_url, proxy, catalog=None):
    cfg = SearchConfig(strategy=strategy, concurrency=concurrency, sign=False)
    proxy.reset()
    t0 = time.perf_counter()
    if catalog is None:
        c = s2n.search_pairs(rois, kind=kind, datetime=DATES, client=s2n.open_catalog(client_url, config=cfg),
                             config=cfg, progress=False)
    else:
        c = s2n.search_pairs(rois, kind=kind, datetime=DATES, catalog=catalog, config=cfg, progress=False)
    wall = time.perf_counter() - t0
    errors = sum(1 for h in proxy.log if h.status >= 400)
    return c, {"requests": proxy.count("/"), "seconds": wall, "http_errors": errors}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rois", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--kinds", nargs="+", default=["cross-sensor", "synthetic"])
    ap.add_argument("--latency", type=float, default=0.15, help="seconds added to every round trip")
    ap.add_argument("--no-per-roi-concurrent", action="store_true", help="skip the per-roi x8 rows")
    ap.add_argument("--quick", action="store_true", help="20 and 60 ROIs, cross-sensor only")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "search.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.rois, args.kinds = [20, 60], ["cross-sensor"]
    machine = cpu_and_memory()
    print(f"machine: {machine} (shared with other jobs: noisy)")
    t0 = time.perf_counter()
    st = stack.get_stack()
    layout = dense.Dense(region=REGION)
    naip, s2 = dense.load(st, layout)
    print(f"stack + dense catalog: {len(naip)} NAIP and {len(s2)} Sentinel-2 items in {time.perf_counter() - t0:.0f} s")
    pq_dir = Path(tempfile.mkdtemp(prefix="s2n-bench-search-"))
    dense.write_geoparquet(pq_dir, {"naip": st.naip + naip, "sentinel-2-l2a": st.s2 + s2})
    px = latency_proxy.LatencyProxy(st.url, latency_s=args.latency)
    rows = []
    try:
        for kind in args.kinds:
            cfg_roi = s2n.RoiConfig(kind=kind, min_distance_m=4000)
            all_rois = s2n.sample_rois(max(args.rois), seed=0, region=ROI_REGION, config=cfg_roi)
            for n in sorted(args.rois):
                rois = all_rois.iloc[:n].reset_index(drop=True)
                runs = [("per-roi", 1, None)]
                if not args.no_per_roi_concurrent:
                    runs.append(("per-roi", 8, None))
                runs += [("grouped", 8, None), ("geoparquet", 8, str(pq_dir))]
                ref = None
                for strategy, conc, catalog in runs:
                    strat = "grouped" if strategy == "geoparquet" else strategy
                    c, m = run_one(rois, kind, strat, conc, client_url=px.url, proxy=px, catalog=catalog)
                    if ref is None:
                        ref = c
                        same = True
                    else:
                        try:
                            pd.testing.assert_frame_equal(ref.pairs, c.pairs)
                            same = list(ref.items) == list(c.items)
                        except AssertionError:
                            same = False
                    row = {"kind": kind, "rois": n, "strategy": strategy, "concurrency": conc,
                           "requests": m["requests"], "requests_per_roi": m["requests"] / n,
                           "seconds": m["seconds"], "pairs": len(c.pairs), "failures": len(c.failures),
                           "same_pairs_as_sequential": same, "tasks": c.stats.tasks,
                           "http_errors_retried": m["http_errors"]}
                    rows.append(row)
                    print(f"{kind:13s} {n:5d} {strategy:10s} x{conc}: {m['requests']:5d} requests "
                          f"({row['requests_per_roi']:.2f}/ROI) {m['seconds']:8.1f} s, {len(c.pairs)} pairs, "
                          f"same={same}, {m['http_errors']} HTTP errors retried", flush=True)
    finally:
        px.stop()
    table = pd.DataFrame(rows)
    base = table[(table["strategy"] == "per-roi") & (table["concurrency"] == 1)].set_index(["kind", "rois"])["seconds"]
    table["speedup_vs_sequential"] = [base[(r.kind, r.rois)] / r.seconds for r in table.itertuples()]
    print()
    print(table[["kind", "rois", "strategy", "concurrency", "requests", "requests_per_roi", "seconds",
                 "speedup_vs_sequential", "pairs", "same_pairs_as_sequential"]].to_string(index=False,
                                                                                          float_format="%.2f"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": machine, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "sen2naip_xr": s2n.__version__,
        "latency_s": args.latency, "catalog": {"naip_items": len(naip), "s2_items": len(s2), "region": REGION},
        "rows": table.to_dict("records"),
    }, indent=2, default=float))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
