"""``sen2naip-xr build cross-sensor|synthetic``: search, then build (or resume) a dataset store."""

from __future__ import annotations

import argparse
from pathlib import Path

from sen2naip_xr.catalog import PairingConfig, SearchConfig
from sen2naip_xr.catalog._cli import bbox_arg  # one parser for --bbox in search and build
from sen2naip_xr.errors import InputError
from sen2naip_xr.pipeline._config import CrossSensorConfig, RunConfig, SyntheticConfig

_EPILOG = """examples:
  sen2naip-xr build cross-sensor --catalog embedded --out ds.zarr            # offline, the demo scenes
  sen2naip-xr build cross-sensor --bbox=-117.3,32.7,-116.8,33.2 --rois 50 \\
      --datetime 2020-01-01/2022-12-31 --out ds.zarr                         # Planetary Computer
  sen2naip-xr build synthetic --bbox=-117.3,32.7,-116.8,33.2 --rois 20 --datetime 2010-01-01/2023-12-31 \\
      --methods identity gamma_mvn vae --keep-fraction 0.5 --scheduler tcp://10.0.0.5:8786 --out ds.zarr
  sen2naip-xr build cross-sensor --catalog embedded --out az://datasets/s2n.zarr --tag v1   # Azure Blob
      (credentials: AZURE_STORAGE_ACCOUNT_NAME + AZURE_STORAGE_ACCOUNT_KEY, or AZURE_STORAGE_CONNECTION_STRING)
rerun the same command to resume: finished ROIs are skipped; add --repair to rewrite damaged ROIs
(sen2naip-xr inspect STORE --verify lists them)."""


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return v


def register(subparsers) -> None:
    p = subparsers.add_parser("build", help="build (or resume) a cross-sensor or synthetic dataset store",
                              description="Search a STAC API, then build the dataset as a Zarr store on Dask.",
                              epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind in ("cross-sensor", "synthetic"):
        q = sub.add_parser(kind, help=f"the {kind} part", epilog=_EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        q.add_argument("--out", required=True,
                       help="the store (created, or resumed): a folder, or a URL az://container/prefix, s3://bucket/"
                            "prefix, gs://bucket/prefix")
        q.add_argument("--storage-option", action="append", default=[], metavar="KEY=VALUE",
                       help="an option of the --out location (e.g. account_name=NAME); credentials are better "
                            "given by the storage client's environment variables")
        q.add_argument("--tag", default=None, help="tag the version this run ends with (e.g. v1)")
        q.add_argument("--catalog", default="https://planetarycomputer.microsoft.com/api/stac/v1",
                       help="STAC API URL, or 'embedded' for the offline demo catalog (default: Planetary Computer)")
        q.add_argument("--bbox", type=bbox_arg, help="W,S,E,N in degrees where ROIs are drawn (write --bbox=-117.2,...)")
        q.add_argument("--rois", type=_positive_int, default=None, help="number of ROIs (default: 10; embedded: all)")
        q.add_argument("--datetime", default=None, help="START/END search interval (RFC 3339 or YYYY-MM-DD)")
        q.add_argument("--seed", type=int, default=0, help="ROI sampling and noise seed (default: 0)")
        # every other flag is generated from the config dataclasses: defaults and help live in their fields
        RunConfig.add_arguments(q.add_argument_group("run"), flags={"n_workers": "--workers"})
        SearchConfig.add_arguments(q.add_argument_group("search"), only=("max_cloud_cover",))
        if kind == "cross-sensor":
            PairingConfig.add_arguments(q.add_argument_group("pairing"), only=("max_days",))
            CrossSensorConfig.add_arguments(q.add_argument_group("cross-sensor"), flags={
                "max_misalignment_px": "--max-qa1", "max_spectral_angle_deg": "--max-qa2"})
        else:
            PairingConfig.add_arguments(q.add_argument_group("pairing"), only=("min_naip_year",))
            SyntheticConfig.add_arguments(q.add_argument_group("synthetic"), exclude=("seed",))
        q.set_defaults(func=run)


def _candidates(args: argparse.Namespace, kind: str):
    from sen2naip_xr.catalog import named_catalogs, sample_rois, search_pairs

    if args.catalog in named_catalogs():  # a named catalog, e.g. embedded
        return named_candidates(args, kind)
    if args.bbox is None:
        raise InputError("--bbox is required with a STAC API catalog; pass --bbox=W,S,E,N (degrees) or --catalog embedded")
    if args.datetime is None:
        raise InputError("--datetime is required with a STAC API catalog; pass e.g. --datetime 2020-01-01/2022-12-31")
    cfg = SearchConfig.from_args(args, catalog_url=args.catalog)
    rois = sample_rois(args.rois or 10, seed=args.seed, region=args.bbox, kind=kind)
    pairing = PairingConfig.from_args(args)
    cands = search_pairs(rois, kind=kind, datetime=args.datetime, config=cfg, pairing=pairing,
                         progress=getattr(args, "progress", True))
    return cands, None, {}


def _demo_catalog_dir(kind: str, n: int, seed: int) -> Path:
    """The embedded catalog's scenes live in a cache folder keyed by their parameters, not beside --out
    (which may be a URL): written once, under a file lock, so concurrent builds never write it together."""
    import fcntl
    import os

    base = Path(os.environ.get("SEN2NAIP_XR_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or
                                                            Path.home() / ".cache") / "sen2naip_xr")
    folder = base / f"demo-catalog-{kind}-{n}-{seed}"
    try:
        base.mkdir(parents=True, exist_ok=True)
        lock = open(base / f".{folder.name}.lock", "a+")  # noqa: SIM115 - held until this process ends
    except OSError as exc:
        raise InputError(f"the demo catalog cache {str(base)!r} cannot be created ({exc.strerror}); set "
                         "SEN2NAIP_XR_CACHE to a writable folder") from exc
    fcntl.flock(lock, fcntl.LOCK_EX)  # released when the build below has written (or reused) the scenes
    _LOCKS.append(lock)
    return folder


_LOCKS: list = []


def named_candidates(args: argparse.Namespace, kind: str):
    """Candidates from a named catalog (``--catalog embedded``): its scenes are written once into the cache
    folder (:func:`_demo_catalog_dir`, under a file lock, never beside ``--out``) and read unsigned."""
    from sen2naip_xr.catalog import open_named_catalog, search_pairs
    from sen2naip_xr.load import NoSigner

    if args.bbox is not None:
        raise InputError(f"--bbox does not apply to --catalog {args.catalog} (its ROIs are fixed); drop --bbox")
    folder = _demo_catalog_dir(f"{args.catalog}-{kind}", args.rois or 0, args.seed)
    try:
        cat = open_named_catalog(args.catalog, folder, kind=kind, n=args.rois, seed=args.seed)
    finally:
        _release_locks()
    print(f"--catalog {args.catalog}: scenes in {folder} (a cache, reused by later runs; SEN2NAIP_XR_CACHE moves it)")
    progress = getattr(args, "progress", not getattr(args, "no_progress", False))  # build: --no-progress of RunConfig
    cands = search_pairs(cat.rois(kind), kind=kind, datetime=cat.datetime, client=cat.client, progress=progress)
    return cands, NoSigner(), cat.root_attrs(kind)


def _release_locks() -> None:
    """The demo scenes are written: other builds may read them now."""
    for lock in _LOCKS:
        lock.close()
    _LOCKS.clear()


def run(args: argparse.Namespace) -> int:
    from sen2naip_xr.pipeline.cross_sensor import build_cross_sensor
    from sen2naip_xr.pipeline.synthetic import build_synthetic

    kind = args.kind
    from sen2naip_xr.store import parse_location, parse_storage_options

    options = parse_storage_options(args.storage_option)
    parse_location(args.out, options)  # an unknown scheme fails here, before any search
    rcfg = RunConfig.from_args(args)
    cfg = CrossSensorConfig.from_args(args) if kind == "cross-sensor" else SyntheticConfig.from_args(args)
    cands, signer, attrs = _candidates(args, kind)
    print(cands.summary())
    build = build_cross_sensor if kind == "cross-sensor" else build_synthetic
    result = build(cands, args.out, config=cfg, run=rcfg, signer=signer, root_attrs=attrs,  # type: ignore[arg-type]
                   storage_options=options, tag=args.tag)
    print(result.summary())
    return 0
