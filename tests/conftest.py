"""Shared fixtures: the ../shared folder (golden outputs of the reference), small images, laziness guard."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()
REFERENCE = SHARED / "reference"


def pytest_report_header(config):
    return f"shared folder: {SHARED} ({'present' if SHARED.is_dir() else 'MISSING'})"


@pytest.fixture(scope="session")
def shared() -> Path:
    assert SHARED.is_dir(), f"the shared folder {SHARED} is missing (CI provides it beside the clone)"
    return SHARED


@pytest.fixture(scope="session", params=["s256", "s484"])
def golden(request, shared) -> dict[str, np.ndarray]:
    """Golden arrays of the reference implementation for one input size (see shared/reference/README.md)."""
    with np.load(REFERENCE / f"golden_{request.param}.npz") as f:
        data = {k: f[k] for k in f.files}
    data["name"] = request.param
    return data


@pytest.fixture(scope="session")
def meta(shared) -> dict:
    return json.loads((REFERENCE / "meta.json").read_text())


@pytest.fixture(scope="session")
def noise_stats(shared) -> dict[str, np.ndarray]:
    with np.load(REFERENCE / "noise_stats.npz") as f:
        return {k: f[k] for k in f.files}


def as_da(arr: np.ndarray) -> xr.DataArray:
    lead = [f"dim_{i}" for i in range(arr.ndim - 3)]
    return xr.DataArray(arr, dims=lead + ["band", "y", "x"])


class CountingScheduler:
    """A dask scheduler that counts calls and refuses to compute more than ``max_computes`` times."""

    def __init__(self, max_computes: int = 0) -> None:
        self.total_computes = 0
        self.max_computes = max_computes

    def __call__(self, dsk, keys, **kwargs):
        self.total_computes += 1
        if self.total_computes > self.max_computes:
            raise RuntimeError(f"too many dask computations: {self.total_computes} > {self.max_computes}")
        return dask.get(dsk, keys, **kwargs)


@contextlib.contextmanager
def raise_if_dask_computes(max_computes: int = 0):
    scheduler = CountingScheduler(max_computes)
    with dask.config.set(scheduler=scheduler):
        yield scheduler


@pytest.fixture
def no_compute():
    return raise_if_dask_computes


# --- the local STAC API (PostgreSQL/pgstac/stac-fastapi + fault-injecting asset server) ----------------
# The helper lives in tests/stac/s2n_stac_stack.py and is imported as ``s2n_stac_stack``; the stack starts
# once per test process and stops at exit. A stack that cannot start makes the tests error, never skip.
sys.path.insert(0, str(Path(__file__).resolve().parent / "stac"))


@pytest.fixture(scope="session")
def stac_stack():
    import s2n_stac_stack

    return s2n_stac_stack.get_stack()


@pytest.fixture()
def assets(stac_stack):
    """The asset server with faults and counters reset, tokens valid for an hour."""
    stac_stack.assets.clear()
    stac_stack.assets.token_ttl_s = 3600.0
    from planetary_computer import sas

    sas.TOKEN_CACHE.clear()
    yield stac_stack.assets
    stac_stack.assets.clear()


def pytest_runtest_setup(item):
    """Tests marked ``torch`` (the U-Net, torch references) skip where torch cannot be imported."""
    if item.get_closest_marker("torch") is not None:
        pytest.importorskip("torch", reason="the [torch] extra is not installed")
