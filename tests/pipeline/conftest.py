"""A small embedded demo catalog (ROIs of 128 / 256 px) shared by the pipeline and store tests."""

from __future__ import annotations

import pytest

import sen2naip_xr as s2n
from sen2naip_xr.demo._catalog import build_demo_catalog
from sen2naip_xr.load import NoSigner


@pytest.fixture(scope="session")
def demo_catalog(tmp_path_factory):
    return build_demo_catalog(tmp_path_factory.mktemp("democat"), n_cross_sensor=5, n_synthetic=3,
                              cross_sensor_size=128, synthetic_size=256)


@pytest.fixture(scope="session")
def cs_cands(demo_catalog):
    return s2n.search_pairs(demo_catalog.cross_sensor_rois, datetime=demo_catalog.datetime,
                            client=demo_catalog.client, progress=False)


@pytest.fixture(scope="session")
def sy_cands(demo_catalog):
    return s2n.search_pairs(demo_catalog.synthetic_rois, kind="synthetic", datetime=demo_catalog.datetime,
                            client=demo_catalog.client, progress=False)


@pytest.fixture()
def signer():
    return NoSigner()

