"""The store on a real Azure Blob service (Azurite, started by the ``azurite`` fixture): builds, every reader,
export, versions, verify/repair, the CLI, and the torch loader, all through ``az://`` URLs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

import sen2naip_xr as s2n
from sen2naip_xr.cli import main
from sen2naip_xr.pipeline import (
    CrossSensorConfig,
    RunConfig,
    SyntheticConfig,
    build_cross_sensor,
    build_synthetic,
)
from sen2naip_xr.store import DatasetStore

SYNC = RunConfig(scheduler="sync", progress=False)
CS = CrossSensorConfig(max_spectral_angle_deg=6.0)
SY = SyntheticConfig(methods=("identity", "gamma_mvn"), keep_fraction=0.75, device="cpu")


@pytest.fixture(scope="module")
def az_store(azurite, cs_cands, sy_cands, signer_module):
    url = azurite.url("built.zarr")
    a = build_cross_sensor(cs_cands, url, config=CS, run=SYNC, signer=signer_module, tag="v1")
    b = build_synthetic(sy_cands, url, config=SY, run=SYNC, signer=signer_module)
    assert a.store == url and sorted(a.written) == ["ROI_00001", "ROI_00002", "ROI_00005"] and b.written
    return url


@pytest.fixture(scope="module")
def signer_module():
    from sen2naip_xr.load import NoSigner

    return NoSigner()


def test_az_build_equals_local_build_and_two_workers(az_store, azurite, tmp_path, cs_cands, sy_cands, signer):
    local = tmp_path / "local.zarr"
    build_cross_sensor(cs_cands, local, config=CS, run=SYNC, signer=signer)
    build_synthetic(sy_cands, local, config=SY, run=SYNC, signer=signer)
    ref = DatasetStore(local).digest()
    assert DatasetStore(az_store).digest() == ref
    url2 = azurite.url("two-workers.zarr")  # forked sessions pickled to 2 LocalCluster workers, merged, committed
    run2 = RunConfig(n_workers=2, progress=False, commit_every=2)
    r = build_cross_sensor(cs_cands, url2, config=CS, run=run2, signer=signer)
    build_synthetic(sy_cands, url2, config=SY, run=run2, signer=signer)
    assert DatasetStore(url2).digest() == ref
    batches = [h for h in DatasetStore(url2).history() if h["metadata"].get("s2n:event") == "batch"]
    assert len(batches) >= 3  # commit_every=2: several batch commits, each holding whole ROIs
    assert r.snapshot in [h["snapshot"] for h in DatasetStore(url2).history()]


def test_every_reader_takes_the_url(az_store, tmp_path):
    info = s2n.summarize(az_store)
    assert info["store"] == az_store and info["parts"]["cross-sensor"]["written"] == 3
    assert info["parts"]["cross-sensor"]["failed"] == 2
    meta = s2n.metadata_table(az_store)
    assert sorted(meta["roi"]) == ["ROI_00001", "ROI_00002", "ROI_00005"]
    lr = s2n.open_roi(az_store, "cross-sensor", 1, "lr")
    assert lr.rio.crs.to_epsg() == 32611 and lr.lr.shape == (4, 32, 32)
    tree = s2n.open_store(az_store)
    assert "/cross-sensor/ROI_00001/hr" in tree.groups
    assert s2n.cross_sensor_pairs(az_store).sizes["roi"] == 3
    # versions: the tag made by the cross-sensor run has no synthetic ROI yet
    assert s2n.summarize(az_store, tag="v1")["parts"]["synthetic"]["written"] == 0
    runs = [h for h in DatasetStore(az_store).history() if h["metadata"].get("s2n:event") == "run"]
    assert {h["metadata"]["kind"] for h in runs} == {"cross-sensor", "synthetic"}
    assert runs[-1]["metadata"]["config"]["max_spectral_angle_deg"] == 6.0  # the run's config in the commit
    assert "v1" in runs[-1]["tags"]
    # provenance and attributes hold the URL without any key
    assert "AccountKey" not in json.dumps(DatasetStore(az_store).attrs("cross-sensor/ROI_00001"))


def test_export_from_and_to_object_storage(az_store, azurite, tmp_path):
    folders = s2n.export(az_store, tmp_path / "pub", kinds=("cross-sensor",))
    assert len(folders) == 3
    with rasterio.open(tmp_path / "pub" / "cross-sensor" / "ROI_00001" / "LR.tif") as f:
        assert f.count == 4 and f.crs.to_epsg() == 32611
    out = azurite.url("published")
    urls = s2n.export(az_store, out, kinds=("cross-sensor",))
    assert urls[0] == f"{out}/cross-sensor/ROI_00001"
    from azure.storage.blob import BlobServiceClient

    container = out.split("/")[2]
    names = [b.name for b in BlobServiceClient.from_connection_string(azurite.connection_string)
             .get_container_client(container).list_blobs()]
    assert "published/cross-sensor/ROI_00001/LR.tif" in names and len(names) == 9


def test_torch_loader_reads_object_storage_with_two_workers(az_store):
    pytest.importorskip("torch")
    from sen2naip_xr.loaders.torch import SRDataset

    ds = SRDataset(az_store, part="cross-sensor", split=None, patch=32)
    one = [b["hr"] for b in ds.loader(batch_size=1, num_workers=0)]
    two = [b["hr"] for b in ds.loader(batch_size=1, num_workers=2)]
    assert len(one) == 3
    for x, y in zip(one, two, strict=True):
        assert np.array_equal(x.numpy(), y.numpy())
    syn = SRDataset(az_store, part="synthetic", configuration="statistical", split=None)
    assert len(syn) >= 1 and syn[0]["lr"].shape[0] == 4


def test_cli_on_object_storage(azurite, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEN2NAIP_XR_CACHE", str(tmp_path / "cache"))
    url = azurite.url("cli.zarr")
    args = ["build", "cross-sensor", "--catalog", "embedded", "--rois", "3", "--out", url, "--scheduler", "sync",
            "--no-progress", "--tag", "first"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"-> {url}" in out and "./az:" not in out
    assert not list(tmp_path.glob("az*"))  # nothing written beside a URL
    assert main(["inspect", url, "--verify", "--history"]) == 0
    out = capsys.readouterr().out
    assert "verified" in out and "[tag first]" in out
    assert main(args[:-2]) == 0  # rerun: everything already done
    assert "0 ROIs written" in capsys.readouterr().out
    assert main(["build", "cross-sensor", "--catalog", "embedded", "--out", "ftp://x/y", "--scheduler", "sync"]) == 2
    assert "unknown scheme 'ftp'" in capsys.readouterr().err


def test_fit_and_validate_read_a_url(az_store, tmp_path):
    model = tmp_path / "m.json"
    assert main(["fit", az_store, "--out", str(model)]) == 0
    assert main(["validate", az_store, "--out", str(tmp_path / "val"), "--split", "all", "--methods", "identity",
                 "--device", "cpu"]) == 0
    assert (tmp_path / "val" / "validation.csv").exists()
