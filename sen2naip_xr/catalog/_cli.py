"""``sen2naip-xr search``: sample ROIs, search a STAC API, write the candidate pairs table."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from sen2naip_xr.catalog._config import KINDS, PLANETARY_COMPUTER_STAC, PairingConfig, SearchConfig
from sen2naip_xr.errors import InputError


def bbox_arg(text: str) -> tuple[float, float, float, float]:
    from sen2naip_xr.catalog._bbox import check_bbox

    try:
        return check_bbox(text.split(","), arg="--bbox")
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def bbox_argv(argv: list[str]) -> list[str]:
    """``--bbox -73.2,43.9,-73.1,44.0`` -> ``--bbox=-73.2,...``: argparse reads a value starting with ``-``
    after a space as an option, so a west edge west of Greenwich would need the ``=``."""
    out = []
    it = iter(range(len(argv)))
    for i in it:
        if argv[i] == "--bbox" and i + 1 < len(argv) and argv[i + 1][:1] == "-" and argv[i + 1][1:2].isdigit():
            out.append(f"--bbox={argv[i + 1]}")
            next(it, None)
        else:
            out.append(argv[i])
    return out


def register(subparsers) -> None:
    p = subparsers.add_parser("search", help="search a STAC API for S2/NAIP candidate pairs and write them as a table")
    p.add_argument("--catalog", default=PLANETARY_COMPUTER_STAC,
                   help="STAC API URL (default: Planetary Computer), a stac-geoparquet folder / URL (file://, az://...) "
                        "holding one <collection>.parquet per collection (searched locally, no API request), or "
                        "'embedded' for the offline demo catalog (its scenes are written to <out>.catalog/)")
    p.add_argument("--bbox", type=bbox_arg, default=None, help="W,S,E,N in degrees (lon/lat), the region ROIs are drawn in")
    p.add_argument("--datetime", default=None, help="START/END (RFC 3339 or YYYY-MM-DD)")
    p.add_argument("--kind", choices=KINDS, default="cross-sensor")
    p.add_argument("--rois", type=int, default=None, help="number of ROIs to draw (hard-core process, 5 km apart; "
                                                          "default 100, embedded: all)")
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
    from sen2naip_xr.catalog._offline import named_catalogs

    if args.catalog in named_catalogs():  # a named catalog, e.g. embedded
        from sen2naip_xr.pipeline._cli import named_candidates

        cands = named_candidates(args, args.kind)[0]
    else:
        if args.bbox is None:
            raise InputError("--bbox is required with a STAC API catalog; pass --bbox W,S,E,N (degrees) or "
                             "--catalog embedded")
        if args.datetime is None:
            raise InputError("--datetime is required with a STAC API catalog; pass e.g. --datetime 2019-01-01/2022-12-31")
        cfg = SearchConfig.from_args(args, catalog_url=args.catalog)
        if not args.no_progress:  # off a terminal, progress comes as log lines of this logger
            logging.getLogger("sen2naip_xr.catalog").setLevel(logging.INFO)
            logging.basicConfig(format="%(message)s")
        rois = sample_rois(args.rois or 100, seed=args.seed, region=args.bbox, kind=args.kind)
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
