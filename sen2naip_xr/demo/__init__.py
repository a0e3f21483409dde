"""``sen2naip-xr demo``: the offline main job on embedded data (``make demo``).

1. The degradation figure: the embedded procedural NAIP scene degraded with every harmonization method
   (``degradation.zarr``, ``degradation.png``).
2. The dataset: both builders end to end on the embedded demo catalog (:func:`embedded_catalog`:
   procedural NAIP COGs, Sentinel-2 made from them by a known degradation, STAC items in Planetary
   Computer's layout) on a LocalCluster: ``sen2naip.zarr`` with ``demo_truth`` in its root attributes,
   ``preview.png`` (NAIP, NAIP_h, S2-like per harmonizer, S2) and a summary table.
3. The model: the degradation fitted back from the cross-sensor pairs (``model.json``, Fig. 4 and Fig. 6
   PNGs, fitted against ``demo_truth``) and the Table-2 validation of the published and the fitted model
   (``validation-*/``), printed (:mod:`sen2naip_xr.demo._model`).

Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from sen2naip_xr.config import METHODS
from sen2naip_xr.demo._catalog import DemoCatalog, DemoTruth, build_demo_catalog
from sen2naip_xr.errors import InputError, StoreError
from sen2naip_xr.figures import dataset_preview

__all__ = ["embedded_catalog", "DemoCatalog", "DemoTruth", "run_demo", "run_dataset_demo"]


def embedded_catalog(folder: str | Path, *, kind: str | None = None, n: int | None = None, seed: int = 0,
                     n_cross_sensor: int = 6, n_synthetic: int = 5, cross_sensor_size: int = 484,
                     synthetic_size: int = 1100, truth: DemoTruth | None = None) -> DemoCatalog:
    """The embedded demo catalog: procedural NAIP scenes and Sentinel-2 scenes made from them by a known
    degradation, written as COGs with STAC items under ``folder`` (reused when already there with the same
    parameters; about 3 MB per cross-sensor ROI and up to 20 MB per synthetic ROI at the default sizes), served by an
    in-process STAC API.

    Returns a :class:`DemoCatalog`: ``client`` (pass as ``client=`` to :func:`sen2naip_xr.search_pairs`),
    ``rois(kind)``, ``datetime``, ``truth`` (the known degradation) and ``root`` (the folder). ``kind`` and
    ``n`` (as the command line's ``--catalog embedded --rois n`` passes them) write only that part, ``n`` ROIs.
    Also reachable as the named catalog ``"embedded"``
    (:func:`sen2naip_xr.catalog.open_named_catalog`).

    Example::

        from sen2naip_xr.demo import embedded_catalog
        cat = embedded_catalog("demo-scenes")
        cands = s2n.search_pairs(cat.rois("cross-sensor"), datetime=cat.datetime, client=cat.client)
    """
    if kind is not None:
        if kind not in ("cross-sensor", "synthetic"):
            raise InputError(f"kind={kind!r} must be 'cross-sensor' or 'synthetic'")
        count = n or (6 if kind == "cross-sensor" else 5)
        n_cross_sensor, n_synthetic = (count, 0) if kind == "cross-sensor" else (0, count)
    return build_demo_catalog(folder, n_cross_sensor=n_cross_sensor, n_synthetic=n_synthetic,
                              cross_sensor_size=cross_sensor_size, synthetic_size=synthetic_size, seed=seed,
                              truth=truth)


def run_demo(out: str | Path, *, size: int = 1100, seed: int = 0, percentiles=(10, 50, 90),
             noise: str = "real", device: str = "auto") -> dict:
    """Degrade the embedded scene with every method; write ``degradation.zarr`` and ``degradation.png``.

    ``degradation.zarr`` is :func:`~sen2naip_xr.degrade`'s tree (nodes ``hr`` and ``lr``, each with its own
    ``spatial_ref``) plus a node ``naip`` with the input scene; ``xr.open_datatree(path, engine="zarr")``
    opens it with its defaults, CRS included."""
    import xarray as xr

    from sen2naip_xr.degrade import degrade
    from sen2naip_xr.figures import degradation_figure
    from sen2naip_xr.scenes import example_image

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"--out {str(out)!r} cannot be created ({exc.strerror}); pass a writable folder") from exc
    t0 = time.perf_counter()
    naip = example_image(size, seed, chunks={"y": 220, "x": 220})
    ds = degrade(naip, list(METHODS), percentiles=percentiles, noise=noise, seed=seed, device=device)  # type: ignore[arg-type]
    store = out / "degradation.zarr"
    grid = ds["hr"].ds.drop_vars("harmonizer").coords  # the input's grid, as documented in the hr node
    ds["naip"] = xr.DataTree(xr.Dataset({"naip": (naip.dims, naip.data, {
        "long_name": "input NAIP-like reflectance (2.5 m), the scene that was degraded", "units": "1",
        "grid_mapping": "spatial_ref"})}, coords=grid))
    with _progress(), warnings.catch_warnings():
        # consolidated metadata is what lets xr.open_zarr/open_datatree open it without a warning; zarr notes
        # that format 3 does not specify it yet (xarray and zarr-python read it)
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part", category=UserWarning)
        ds.to_zarr(store, mode="w", zarr_format=3, consolidated=True)

    written = xr.open_datatree(store, engine="zarr").load()
    png = degradation_figure(written["naip/naip"], written["lr"].ds, out / "degradation.png",
                             title=f"sen2naip_xr demo: procedural NAIP scene {size}x{size}, seed {seed}, noise={noise}")
    seconds = time.perf_counter() - t0
    lr = written["lr/lr"]
    print(f"{'method':<22}{'mean R':>8}{'mean G':>8}{'mean B':>8}{'mean NIR':>9}")
    for m in lr.harmonizer.values:
        means = lr.sel(harmonizer=m).mean(("y", "x")).values
        print(f"{str(m):<22}" + "".join(f"{v:>8.4f}" for v in means[:3]) + f"{means[3]:>9.4f}")
    print(f"wrote {store} and {png} in {seconds:.1f} s")
    return {"store": store, "png": png, "seconds": seconds, "methods": list(map(str, lr.harmonizer.values)),
            "lr_mean": np.asarray(lr.mean(("y", "x")).values)}


def _progress():
    """A dask progress bar on a terminal; nothing in logs (the printed table says when it is done)."""
    import contextlib

    from dask.diagnostics import ProgressBar

    return ProgressBar(minimum=1.0) if sys.stdout.isatty() else contextlib.nullcontext()


def run_dataset_demo(out: str | Path, *, cross_sensor_size: int = 484, synthetic_size: int = 1100,
                     n_cross_sensor: int = 6, n_synthetic: int = 5, seed: int = 0, noise: str = "real",
                     device: str = "auto", methods=("identity", "gamma_mvn", "unet", "vae"),
                     scheduler: str | None = None, workers: int = 2, progress: bool = True) -> dict:
    """Both builders on the embedded demo catalog -> ``sen2naip.zarr``, ``preview.png``, a printed summary."""
    from sen2naip_xr.catalog import search_pairs
    from sen2naip_xr.load import NoSigner
    from sen2naip_xr.pipeline import (
        CrossSensorConfig,
        RunConfig,
        SyntheticConfig,
        build_cross_sensor,
        build_synthetic,
    )
    from sen2naip_xr.store import DatasetStore, metadata_table

    out = Path(out)
    t0 = time.perf_counter()
    cat = build_demo_catalog(out / "catalog", n_cross_sensor=n_cross_sensor, n_synthetic=n_synthetic,
                             cross_sensor_size=cross_sensor_size, synthetic_size=synthetic_size, seed=seed)
    cs = search_pairs(cat.cross_sensor_rois, datetime=cat.datetime, client=cat.client, progress=False)
    sy = search_pairs(cat.synthetic_rois, kind="synthetic", datetime=cat.datetime, client=cat.client, progress=False)
    store_path = out / "sen2naip.zarr"
    if not cat.reused and store_path.exists():  # new scenes: a store built from other ones would be resumed
        import shutil

        shutil.rmtree(store_path)
    run = RunConfig(scheduler=scheduler, n_workers=workers, progress=progress)
    attrs = {"demo_truth": cat.truth.to_dict()}
    from distributed import Client

    from sen2naip_xr.pipeline import local_cluster

    cluster = client = None
    if scheduler is None:  # one cluster for both parts
        cluster = local_cluster(workers, memory_limit=run.memory_limit)
        client = Client(cluster)
        if progress:
            print(f"dask dashboard: {client.dashboard_link}", file=sys.stderr)
    try:
        r1 = build_cross_sensor(cs, store_path, config=CrossSensorConfig(), run=run, signer=NoSigner(),
                                root_attrs=attrs, client=client)
        r2 = build_synthetic(sy, store_path, config=SyntheticConfig(methods=tuple(methods), noise=noise,  # type: ignore[arg-type]
                                                                   seed=seed, keep_fraction=0.75, device=device),
                             run=run, signer=NoSigner(), root_attrs=attrs, client=client)
    finally:
        if client is not None:
            client.close()
            cluster.close()  # type: ignore[union-attr]
    store = DatasetStore(store_path)
    meta = metadata_table(store_path, "cross-sensor")
    fails = store.failures()
    # summary table
    print(f"\n{'part':<13}{'ROI':<11}{'status':<9}{'QA1 px':>7}{'QA2 deg':>8}  {'shift (dy, dx)':<17}{'truth':<17}")
    for _, m in meta.iterrows():
        dy, dx = cat.truth.shifts[m["roi_id"]]
        print(f"{'cross-sensor':<13}{m['roi']:<11}{'written':<9}{m['QA_1']:>7.3f}{m['QA_2']:>8.3f}  "
              f"({m['shift_dy']:+.2f}, {m['shift_dx']:+.2f})   ({dy:+.2f}, {dx:+.2f})")
    for kind in ("synthetic",):
        for name in store.rois(kind):
            roles = store.roi_groups(kind, name)
            print(f"{kind:<13}{name:<11}{'written':<9}  images kept: {', '.join(roles)}")
    for _, f in fails.iterrows():
        print(f"{f['kind']:<13}{f['roi']:<11}{'failed':<9}  {f['stage']}: {f['reason'][:90]}")
    # preview: the first written cross-sensor ROI
    png = out / "preview.png"
    if len(meta):
        from sen2naip_xr.degrade import degrade
        from sen2naip_xr.load import load_naip

        m = meta.iloc[0]
        row = cs.pairs[(cs.pairs["roi_id"] == m["roi_id"]) & (cs.pairs["s2_id"] == m["s2_id"])]
        naip = load_naip(row, items=cs.items, signer=NoSigner()).compute().isel(roi=0, time=0)
        naip = naip.drop_vars([c for c in naip.coords if c not in ("band",)])  # per-ROI grid coords
        g = store.load_dataset(f"cross-sensor/{m['roi']}/hr")
        s2 = store.load_dataset(f"cross-sensor/{m['roi']}/lr")
        sim = degrade(naip, list(methods), noise=noise, seed=seed, device=device, include_hr=False)  # type: ignore[arg-type]
        panels = [("NAIP (2.5 m)", naip.values), ("NAIP_h (2.5 m)", g.hr.values)]
        sim = sim["lr/lr"]
        panels += [(f"S2-like: {h}", sim.sel(harmonizer=h).values) for h in sim.harmonizer.values]
        panels.append(("Sentinel-2 (10 m)", s2.lr.values))
        dataset_preview(panels, png, title=f"{m['roi']} ({m['roi_id']}): QA1 {m['QA_1']:.2f} px, QA2 {m['QA_2']:.2f} deg")
    seconds = time.perf_counter() - t0
    print(f"{r1.summary()}\n{r2.summary()}\nwrote {store_path}{' and ' + str(png) if len(meta) else ''} "
          f"in {seconds:.1f} s")
    return {"store": store_path, "png": png if len(meta) else None, "seconds": seconds, "truth": cat.truth}


def _cmd(args: argparse.Namespace) -> int:
    if args.size % 4 or args.size < 64:
        raise InputError(f"--size {args.size} must be a multiple of 4 >= 64, e.g. 1100")
    run_demo(args.out, size=args.size, seed=args.seed, noise=args.noise, device=args.device)
    if not args.no_dataset:
        run_dataset_demo(args.out, cross_sensor_size=min(484, args.size), synthetic_size=args.size,
                         n_cross_sensor=args.cross_sensor_rois, n_synthetic=args.synthetic_rois, seed=args.seed,
                         noise=args.noise, device=args.device, scheduler=args.scheduler, workers=args.workers,
                         progress=not args.no_progress)
        from sen2naip_xr.demo._model import run_model_demo

        run_model_demo(args.out, seed=args.seed, noise=args.noise, device=args.device)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the offline demo on embedded data (degradation figure + both datasets)",
                       description="Degrade the embedded NAIP-like scene with every method (Zarr + PNG), then build "
                                   "both datasets from the embedded demo catalog on a LocalCluster (Zarr store with "
                                   "demo_truth, preview PNG, summary table). Nothing is downloaded.")
    p.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    p.add_argument("--size", type=int, default=1100,
                   help="scene and synthetic ROI size in 2.5 m pixels, a multiple of 4 (cross-sensor ROIs: "
                        "min(484, size))")
    p.add_argument("--cross-sensor-rois", type=int, default=6, help="cross-sensor ROIs of the demo catalog")
    p.add_argument("--synthetic-rois", type=int, default=5, help="synthetic ROIs of the demo catalog")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address; 'sync' runs in this process")
    p.add_argument("--workers", type=int, default=2, help="LocalCluster workers (default 2)")
    p.add_argument("--no-dataset", action="store_true", help="only the degradation figure")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--seed", type=int, default=0, help="scene and noise seed")
    p.add_argument("--noise", choices=["real", "gaussian", "none"], default="real")
    p.add_argument("--device", default="auto", help="torch device for the U-Net: auto, cpu, cuda")
    p.set_defaults(func=_cmd)
