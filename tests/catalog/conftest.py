"""Fixtures of the search-at-scale tests: a dense catalog in the test stack, a latency/fault proxy."""

from __future__ import annotations

import pytest

#: The dense test region (northern Vermont) and its collections, beside the scenario's ones.
DENSE_REGION = (-73.0, 44.5, -72.5, 44.8)


@pytest.fixture(scope="module")
def dense(stac_stack):
    """(layout, NAIP item dicts, S2 item dicts) of a dense catalog loaded into the test stack for one
    module, then deleted (other tests see the stack's own collections only)."""
    import s2n_dense as dn

    d = dn.Dense(region=DENSE_REGION, years=(2016, 2018, 2020), naip_collection="naip-dense",
                 s2_collection="sentinel-2-l2a-dense")
    naip, s2 = dn.load(stac_stack, d)
    yield d, naip, s2
    dn.unload(stac_stack, d)


@pytest.fixture()
def proxy(stac_stack):
    """The stack's API behind a proxy adding a random 0-30 ms per request (so answers arrive out of order)."""
    import s2n_latency_proxy as lp

    px = lp.LatencyProxy(stac_stack.url, latency_s=0.0, jitter_s=0.03, seed=7)
    yield px
    px.stop()
