"""Pipeline: the dataset builders as tasks over ROIs on Dask distributed, resumable.

Example (Planetary Computer, a LocalCluster)::

    import sen2naip_xr as s2n
    rois = s2n.sample_rois(50, seed=0)
    cands = s2n.search_pairs(rois, datetime="2019-01-01/2022-12-31")
    print(s2n.build_cross_sensor(cands, "sen2naip.zarr").summary())   # rerun to resume

    sy = s2n.search_pairs(s2n.sample_rois(50, seed=1, kind="synthetic"), kind="synthetic",
                          datetime="2010-01-01/2023-12-31")
    s2n.build_synthetic(sy, "sen2naip.zarr", config=s2n.SyntheticConfig(keep_fraction=0.5))

Both parts on one cluster (the LocalCluster a build would start, kept for several builds)::

    from distributed import Client
    from sen2naip_xr.pipeline import local_cluster

    with local_cluster(4) as cluster, Client(cluster) as client:
        s2n.build_cross_sensor(cands, "sen2naip.zarr", client=client)
        s2n.build_synthetic(sy, "sen2naip.zarr", client=client)
"""

from sen2naip_xr.pipeline._config import CrossSensorConfig, RunConfig, SyntheticConfig
from sen2naip_xr.pipeline._diversity import ClipEmbedder, ThumbnailEmbedder, make_embedder, select_diverse
from sen2naip_xr.pipeline._qa import misalignment, phase_shift, spectral_angle
from sen2naip_xr.pipeline._runner import Runner, local_cluster
from sen2naip_xr.pipeline.cross_sensor import BuildResult, build_cross_sensor
from sen2naip_xr.pipeline.synthetic import build_synthetic

__all__ = [
    "BuildResult",
    "ClipEmbedder",
    "CrossSensorConfig",
    "RunConfig",
    "Runner",
    "SyntheticConfig",
    "ThumbnailEmbedder",
    "build_cross_sensor",
    "build_synthetic",
    "local_cluster",
    "make_embedder",
    "misalignment",
    "phase_shift",
    "select_diverse",
    "spectral_angle",
]
