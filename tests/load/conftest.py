"""The local STAC stack (PostgreSQL/pgstac/stac-fastapi + fault-injecting asset server) as a fixture.

The helper lives in tests/stac/s2n_stac_stack.py; the stack starts once per test process and
stops at exit. A stack that cannot start makes the tests error, never skip.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stac"))

import s2n_stac_stack  # noqa: E402


@pytest.fixture(scope="session")
def stac_stack() -> "s2n_stac_stack.Stack":
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
