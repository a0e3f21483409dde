"""``sen2naip-xr search``: sample ROIs, search a STAC API, write the candidate pairs table."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from sen2naip_xr.catalog._config import KINDS, PLANETARY_COMPUTER_STAC, PairingConfig, SearchConfig
from sen2naip_xr.errors import InputError


def _bbox(text: str) -> tuple[float, float, float, float]:
    try:
        w, s, e, n = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--bbox {text!r} is not W,S,E,N in degrees, e.g. -117.2,32.8,-116.9,33.1") from None
    if not (w < e and s < n):
        raise argparse.ArgumentTypeError(f"--bbox {text!r} needs W < E and S < N")
    return w, s, e, n


def register(subparsers) -> None:
    p = subparsers.add_parser("search", help="search a STAC API for S2/NAIP candidate pairs and write them as a table")
    p.add_argument("--catalog", default=PLANETARY_COMPUTER_STAC,
                   help="STAC API URL (default: Planetary Computer), or a stac-geoparquet folder / URL (file://, az://...) "
                        "holding one <collection>.parquet per collection (searched locally, no API request)")
    p.add_argument("--bbox", type=_bbox, required=True, help="W,S,E,N in degrees, the region ROIs are drawn in (write --bbox=-117.2,32.8,... when W is negative)")
    p.add_argument("--datetime", required=True, help="START/END (RFC 3339 or YYYY-MM-DD)")
    p.add_argument("--kind", choices=KINDS, default="cross-sensor")
    p.add_argument("--rois", type=int, default=100, help="number of ROIs to draw (hard-core process, 5 km apart)")
    p.add_argument("--seed", type=int, default=0)
    # flags generated from the configs: defaults and help live in the dataclass fields
    PairingConfig.add_arguments(p.add_argument_group("pairing"))
    SearchConfig.add_arguments(p.add_argument_group("search"), only=("max_cloud_cover", "page_size", "max_items", "strategy", "concurrency"))
    p.add_argument("--out", type=Path, required=True, help="output table: .parquet or .csv")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sen2naip_xr.catalog._pairing import search_pairs
    from sen2naip_xr.catalog._roi import sample_rois

    suffix = args.out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise InputError(f"--out {str(args.out)!r} must end in .parquet or .csv")
    cfg = SearchConfig.from_args(args, catalog_url=args.catalog)
    if not args.no_progress:  # off a terminal, progress comes as log lines of this logger
        logging.getLogger("sen2naip_xr.catalog").setLevel(logging.INFO)
        logging.basicConfig(format="%(message)s")
    rois = sample_rois(args.rois, seed=args.seed, region=args.bbox, kind=args.kind)
    cands = search_pairs(rois, kind=args.kind, datetime=args.datetime, config=cfg,
                         pairing=PairingConfig.from_args(args), progress=not args.no_progress)
    table = cands.pairs.copy()
    for c in table.columns:
        if str(table[c].dtype).startswith("datetime64"):
            table[c] = table[c].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if suffix == ".csv" else table[c]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        table.to_parquet(args.out, index=False)
    else:
        table.to_csv(args.out, index=False)
    print(cands.summary())
    if len(cands.failures):
        for _, f in cands.failures.iterrows():
            print(f"  failed {f['roi_id']} at {f['stage']}: {f['reason'][:200]}")
    print(f"wrote {len(table)} rows to {args.out}")
    return 0
