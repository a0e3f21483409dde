"""Build both SEN2NAIP datasets offline, inspect the store, export the published layout.

    python examples/build_dataset_offline.py --out offline-dataset            # 484 / 1100 px ROIs
    python examples/build_dataset_offline.py --out /tmp/small --small          # 128 / 256 px (seconds; CI)

Uses the embedded demo catalog (procedural NAIP COGs, Sentinel-2 made from them by a known degradation,
STAC items in Planetary Computer's layout) through the same search -> load -> build code as a real STAC
API. Run it twice: the second run skips every finished ROI.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import sen2naip_xr as s2n
from sen2naip_xr.demo import embedded_catalog
from sen2naip_xr.load import NoSigner


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("offline-dataset"))
    ap.add_argument("--small", action="store_true", help="small ROIs and no U-Net: runs in seconds")
    ap.add_argument("--scheduler", default=None, help="Dask scheduler address; default a LocalCluster; 'sync'")
    args = ap.parse_args(argv)

    cs_size, sy_size = (128, 256) if args.small else (484, 1100)
    cat = embedded_catalog(args.out / "catalog", n_cross_sensor=5, n_synthetic=3,
                             cross_sensor_size=cs_size, synthetic_size=sy_size)
    # 1. search: the embedded catalog answers like a STAC API (client=...)
    cs = s2n.search_pairs(cat.cross_sensor_rois, datetime=cat.datetime, client=cat.client, progress=False)
    sy = s2n.search_pairs(cat.synthetic_rois, kind="synthetic", datetime=cat.datetime, client=cat.client,
                          progress=False)
    print(cs.summary())
    # 2. build: one task per ROI on Dask; small ROIs make the spectral angle noisier, hence the wider gate
    store = args.out / "dataset.zarr"
    run = s2n.RunConfig(scheduler=args.scheduler, progress=False)
    qa = s2n.CrossSensorConfig(max_spectral_angle_deg=6.0 if args.small else 2.0)
    methods = ("identity", "gamma_mvn", "vae") if args.small else ("identity", "gamma_mvn", "unet", "vae")
    print(s2n.build_cross_sensor(cs, store, config=qa, run=run, signer=NoSigner(),
                                 root_attrs={"demo_truth": cat.truth.to_dict()}).summary())
    print(s2n.build_synthetic(sy, store, config=s2n.SyntheticConfig(methods=methods, keep_fraction=0.75, device="cpu"),
                              run=run, signer=NoSigner()).summary())
    # 3. read it back: the whole tree, the metadata table, one ROI
    tree = s2n.open_store(store)
    print(tree.groups[:6])
    table = s2n.metadata_table(store, "cross-sensor")
    print(table[["roi", "roi_id", "split", "s2_id", "QA_1", "QA_2"]].to_string(index=False))
    first = s2n.open_roi(store, "cross-sensor", table["roi"].iloc[0])
    print(first["lr"].lr.shape, first["hr"].hr.shape, first["lr"].rio.crs)
    # 4. the published layout: per ROI LR.tif, HR.tif, metadata.json
    folders = s2n.export(store, args.out / "export")
    print(f"exported {len(folders)} ROIs to {args.out / 'export'}")


if __name__ == "__main__":
    main()
