"""``sen2naip-xr build cross-sensor|synthetic``: search, then build (or resume) a dataset store."""

from __future__ import annotations

import argparse
from pathlib import Path

from sen2naip_xr.catalog._cli import _bbox  # one parser for --bbox in search and build
from sen2naip_xr.errors import InputError

_EPILOG = """examples:
  sen2naip-xr build cross-sensor --catalog embedded --out ds.zarr            # offline, the demo scenes
  sen2naip-xr build cross-sensor --bbox=-117.3,32.7,-116.8,33.2 --rois 50 \\
      --datetime 2020-01-01/2022-12-31 --out ds.zarr                         # Planetary Computer
  sen2naip-xr build synthetic --bbox=-117.3,32.7,-116.8,33.2 --rois 20 --datetime 2010-01-01/2023-12-31 \\
      --methods identity gamma_mvn vae --keep-fraction 0.5 --scheduler tcp://10.0.0.5:8786 --out ds.zarr
rerun the same command to resume: finished ROIs are skipped."""


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return v


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must lie in (0, 1]")
    return v


def register(subparsers) -> None:
    p = subparsers.add_parser("build", help="build (or resume) a cross-sensor or synthetic dataset store",
                              description="Search a STAC API, then build the dataset as a Zarr store on Dask.",
                              epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind in ("cross-sensor", "synthetic"):
        q = sub.add_parser(kind, help=f"the {kind} part", epilog=_EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        q.add_argument("--out", type=Path, required=True, help="the Zarr store folder (created, or resumed)")
        q.add_argument("--catalog", default="https://planetarycomputer.microsoft.com/api/stac/v1",
                       help="STAC API URL, or 'embedded' for the offline demo catalog (default: Planetary Computer)")
        q.add_argument("--bbox", type=_bbox, help="W,S,E,N in degrees where ROIs are drawn (write --bbox=-117.2,...)")
        q.add_argument("--rois", type=_positive_int, default=None, help="number of ROIs (default: 10; embedded: all)")
        q.add_argument("--datetime", default=None, help="START/END search interval (RFC 3339 or YYYY-MM-DD)")
        q.add_argument("--seed", type=int, default=0, help="ROI sampling and noise seed")
        q.add_argument("--scheduler", default=None,
                       help="Dask scheduler address (default: a LocalCluster); 'sync' runs in this process")
        q.add_argument("--workers", type=_positive_int, default=2, help="LocalCluster workers (default 2)")
        q.add_argument("--memory-limit", default="4GiB", help="LocalCluster memory per worker (default 4GiB)")
        q.add_argument("--retry-failed", action="store_true", help="try again ROIs an earlier run recorded as failed")
        q.add_argument("--no-progress", action="store_true", help="no progress bar")
        q.add_argument("--max-cloud-cover", type=float, default=100.0, help="S2 eo:cloud_cover bound for the search (%%)")
        if kind == "cross-sensor":
            q.add_argument("--max-days", type=float, default=1.0, help="max |S2 date - NAIP date| in days (default 1)")
            q.add_argument("--max-qa1", type=float, default=1.0, help="drop pairs misaligned by more (S2 px, default 1)")
            q.add_argument("--max-qa2", type=float, default=2.0, help="drop pairs with a larger spectral angle (deg, default 2)")
            q.add_argument("--model", default=None, help="fitted model JSON (sen2naip-xr fit): its sigmas for QA")
        else:
            q.add_argument("--methods", nargs="+", default=["identity", "gamma_mvn", "unet", "vae"],
                           help="harmonizers (default: identity gamma_mvn unet vae)")
            q.add_argument("--percentiles", nargs="+", type=float, default=[50.0], help="gamma percentiles")
            q.add_argument("--noise", choices=["real", "gaussian", "none"], default="real")
            q.add_argument("--keep-fraction", type=_fraction, default=1.0,
                           help="diversity filter: clusters = ceil(fraction x images), one image kept per cluster")
            q.add_argument("--embedder", choices=["thumbnail", "clip"], default="thumbnail")
            q.add_argument("--clip-weights", default=None, help="open-clip checkpoint file (--embedder clip)")
            q.add_argument("--store-lr", action="store_true", help="also store the LR arrays of every harmonizer")
            q.add_argument("--rois-per-task", type=_positive_int, default=4, help="ROIs per harmonizer task")
            q.add_argument("--device", default="auto", help="torch device of the U-Net: auto, cpu, cuda")
            q.add_argument("--model", default=None,
                           help="fitted model JSON (sen2naip-xr fit) in place of the published gamma/sigma/noise")
        q.set_defaults(func=run)


def _candidates(args: argparse.Namespace, kind: str):
    from sen2naip_xr.catalog import PairingConfig, SearchConfig, sample_rois, search_pairs

    if "://" not in args.catalog and not args.catalog.startswith("/"):  # a named catalog, e.g. embedded
        cands, signer, attrs = _named_candidates(args, kind)
        return cands, signer, attrs
    if args.bbox is None:
        raise InputError("--bbox is required with a STAC API catalog; pass --bbox=W,S,E,N (degrees) or --catalog embedded")
    if args.datetime is None:
        raise InputError("--datetime is required with a STAC API catalog; pass e.g. --datetime 2020-01-01/2022-12-31")
    cfg = SearchConfig(catalog_url=args.catalog, max_cloud_cover=args.max_cloud_cover)
    rois = sample_rois(args.rois or 10, seed=args.seed, region=args.bbox, kind=kind)
    pairing = PairingConfig(max_days=getattr(args, "max_days", 1.0))
    cands = search_pairs(rois, kind=kind, datetime=args.datetime, config=cfg, pairing=pairing,
                         progress=not args.no_progress)
    return cands, None, {}


def catalog_folder(out: Path) -> Path:
    """Where ``--catalog embedded`` writes its scenes for ``--out out``: ``<out>.catalog`` beside it."""
    return out.parent / f"{out.name}.catalog"


def _named_candidates(args: argparse.Namespace, kind: str):
    """Candidates from a named catalog (``--catalog embedded``): its scenes are written to
    ``<out>.catalog/`` beside the output (reused by reruns; delete it when done) and read unsigned."""
    from sen2naip_xr.catalog import open_named_catalog, search_pairs
    from sen2naip_xr.load import NoSigner

    if args.bbox is not None:
        raise InputError(f"--bbox does not apply to --catalog {args.catalog} (its ROIs are fixed); drop --bbox")
    folder = catalog_folder(args.out)
    cat = open_named_catalog(args.catalog, folder, kind=kind, n=args.rois, seed=args.seed)
    print(f"--catalog {args.catalog}: scenes in {folder} (reused by reruns; delete the folder when done)")
    cands = search_pairs(cat.rois(kind), kind=kind, datetime=cat.datetime, client=cat.client,
                         progress=not args.no_progress)
    return cands, NoSigner(), cat.root_attrs(kind)


def run(args: argparse.Namespace) -> int:
    from sen2naip_xr.pipeline._config import CrossSensorConfig, RunConfig, SyntheticConfig
    from sen2naip_xr.pipeline.cross_sensor import build_cross_sensor
    from sen2naip_xr.pipeline.synthetic import build_synthetic

    kind = args.kind
    rcfg = RunConfig(scheduler=args.scheduler, n_workers=args.workers, memory_limit=args.memory_limit,
                     progress=not args.no_progress, retry_failed=args.retry_failed)
    cfg: CrossSensorConfig | SyntheticConfig
    if kind == "cross-sensor":
        cfg = CrossSensorConfig(max_misalignment_px=args.max_qa1, max_spectral_angle_deg=args.max_qa2, model=args.model)
    else:
        cfg = SyntheticConfig(methods=tuple(args.methods), percentiles=tuple(args.percentiles), noise=args.noise,
                              seed=args.seed, store_lr=args.store_lr, keep_fraction=args.keep_fraction,
                              embedder=args.embedder, clip_weights=args.clip_weights,
                              rois_per_task=args.rois_per_task, device=args.device, model=args.model)
    cands, signer, attrs = _candidates(args, kind)
    print(cands.summary())
    build = build_cross_sensor if kind == "cross-sensor" else build_synthetic
    result = build(cands, args.out, config=cfg, run=rcfg, signer=signer, root_attrs=attrs)  # type: ignore[arg-type]
    print(result.summary())
    return 0
