"""A dataset build as a cluster job: any Dask scheduler, GPU workers for the network harmonizers.

    # on a cluster: start a scheduler and workers, GPU workers with a GPU resource
    dask scheduler --port 8786 &
    dask worker tcp://scheduler:8786 --nthreads 1 --nworkers 8 --memory-limit 8GiB &
    dask worker tcp://scheduler:8786 --nthreads 1 --resources "GPU=1" &
    python examples/cluster_job.py --scheduler tcp://scheduler:8786 --catalog \
        https://planetarycomputer.microsoft.com/api/stac/v1 --rois 1000 --out az://datasets/sen2naip.zarr
    # (the store on object storage: workers share no disk; credentials from AZURE_STORAGE_* variables)

    # offline, on a local cluster started here: one plain worker, one that offers GPU=1 (CI)
    python examples/cluster_job.py --out /tmp/job.zarr --small

The synthetic build runs in stages: reads (each capture once), then the networks in their own tasks,
batched across ROIs (``SyntheticConfig.net_batch_size``, default from the GPU's memory), on the workers
that offer a ``GPU`` resource (the U-Net loaded once per worker), while reading, matching, blur, noise and
writing run on the other workers. Rerun the same command after any failure: finished ROIs are skipped,
and the result is the same bytes.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import sen2naip_xr as s2n


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scheduler", default=None, help="scheduler address; default: a local cluster with a GPU worker")
    ap.add_argument("--catalog", default="embedded", help="STAC API URL or 'embedded'")
    ap.add_argument("--bbox", default="-117.3,32.7,-116.8,33.2", help="W,S,E,N (STAC API only)")
    ap.add_argument("--datetime", default="2010-01-01/2023-12-31")
    ap.add_argument("--rois", type=int, default=20)
    ap.add_argument("--rois-per-task", type=int, default=4)
    ap.add_argument("--out", default="cluster-job.zarr", help="the store: a folder or a URL (az://, s3://, gs://)")
    ap.add_argument("--small", action="store_true", help="embedded catalog with 256 px ROIs, no U-Net")
    args = ap.parse_args(argv)

    from distributed import Client, Nanny, Scheduler, SpecCluster

    if args.scheduler:
        client = Client(args.scheduler)
    else:  # one plain worker and one announcing a GPU (on a machine without CUDA, torch runs on the CPU)
        workers = {"cpu": {"cls": Nanny, "options": {"nthreads": 1}},
                   "gpu": {"cls": Nanny, "options": {"nthreads": 1, "resources": {"GPU": 1}}}}
        cluster = SpecCluster(workers=workers, scheduler={"cls": Scheduler, "options": {"dashboard_address": ":0"}},
                              silence_logs=logging.ERROR)
        client = Client(cluster)
    print(f"dashboard: {client.dashboard_link}; workers: {len(client.scheduler_info()['workers'])}")

    signer, attrs = None, {}
    if args.catalog == "embedded":
        import tempfile

        from sen2naip_xr.demo import embedded_catalog
        from sen2naip_xr.load import NoSigner

        cat = embedded_catalog(Path(tempfile.gettempdir()) / "s2n-cluster-job-catalog", n_cross_sensor=0,
                                 n_synthetic=min(args.rois, 4), synthetic_size=256 if args.small else 1100)
        sy = s2n.search_pairs(cat.synthetic_rois, kind="synthetic", datetime=cat.datetime, client=cat.client,
                              progress=False)
        signer = NoSigner()
    else:
        bbox = tuple(float(v) for v in args.bbox.split(","))
        rois = s2n.sample_rois(args.rois, seed=0, region=bbox, kind="synthetic")
        sy = s2n.search_pairs(rois, kind="synthetic", datetime=args.datetime,
                              config=s2n.SearchConfig(catalog_url=args.catalog))
    methods = ("identity", "gamma_mvn", "vae") if args.small else ("identity", "gamma_mvn", "unet", "vae")
    cfg = s2n.SyntheticConfig(methods=methods, rois_per_task=args.rois_per_task, keep_fraction=0.75)
    res = s2n.build_synthetic(sy, args.out, config=cfg, run=s2n.RunConfig(progress=False), signer=signer,
                              root_attrs=attrs, client=client)
    print(res.summary())
    print(s2n.summarize(args.out)["parts"]["synthetic"])
    client.close()


if __name__ == "__main__":
    main()
