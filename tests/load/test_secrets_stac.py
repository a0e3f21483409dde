"""No signature reaches a recorded string: reads signed by the loopback token service (``PC_SDK_SAS_URL``)
fail on purpose, and the failure table, the exceptions, the logs of odc-stac and GDAL (in this process,
in Dask worker processes, in a separate build process) and the command line hold no ``sig=`` value."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np
import pytest

import sen2naip_xr as s2n
from sen2naip_xr.errors import AssetReadError
from sen2naip_xr.load import read_asset

pytestmark = pytest.mark.network

REPO = Path(__file__).resolve().parents[2]
R2 = "cs-32611-494000-3649000"
N2 = "m_3211700_n2_11_100_20220515.tif"  # R2's NAIP
B04 = "B04_10m.tif"  # every capture's red band
#: a ``sig=`` whose value is not ``REDACTED`` (the token service issues ``sig=tok<N>``)
LEAK = re.compile(r"sig=(?!REDACTED)[^&;\s\"'<>(){}\[\],\\]")


@pytest.fixture(scope="module")
def cands(stac_stack):
    import s2n_stac_stack as m

    return s2n.search_pairs(m.scenario_rois(), datetime="2010-01-01/2023-12-31",
                            client=s2n.open_catalog(stac_stack.url), progress=False)


@pytest.fixture()
def fresh_tokens(assets):
    """After the test: tokens revoked and the SDK's cache emptied, so later reads use new signed URLs
    (GDAL caches what it read per URL, garbage included)."""
    yield assets
    from planetary_computer import sas

    assets.revoke_tokens()
    sas.TOKEN_CACHE.clear()


def _signed_reads(assets) -> list[str]:
    return [q for p, q in assets.stats.queries if p.startswith("/blob/") and "sig=tok" in q]


def test_failure_table_and_logs_hold_no_signature(stac_stack, fresh_tokens, cands, caplog):
    assets = fresh_tokens
    assets.fail(N2, "garbage", times=1000)  # GDAL: "'/vsicurl/...&sig=...' not recognized ..."
    assets.fail(B04, "garbage", times=1000)  # odc-stac logs "Failed to load <signed url>"
    rows = cands.pairs[cands.pairs["roi_id"] == R2]
    cfg = stac_stack.load_config()
    naip = s2n.load_naip(rows, items=cands.items, config=cfg).compute()
    s2 = s2n.load_s2(rows, items=cands.items, config=cfg).compute()
    assert _signed_reads(assets)  # the reads were signed by the token service
    fails = s2n.load_failures(naip, s2)
    assert sorted(fails["stage"]) == ["naip:read", "s2:read"]
    reasons = " ".join(fails["reason"])
    assert reasons.count("sig=REDACTED") >= 2  # the raw GDAL messages quote the signed URLs ...
    assert not LEAK.search(reasons)  # ... never their signatures
    assert not LEAK.search(" ".join(str(v) for v in naip.coords["load_error"].values))
    logged = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("Failed to load http") for m in logged)
    assert not any(LEAK.search(m) for m in logged) and not LEAK.search(caplog.text)


def test_read_errors_carry_no_signature(stac_stack, fresh_tokens, cands):
    from odc.geo.geobox import GeoBox

    from sen2naip_xr.load import OdcReader, PlanetaryComputerSigner, RetryPolicy

    assets = fresh_tokens
    assets.fail(N2, "garbage", times=1000)
    # as searched: the href may carry a search-time token; the signer replaces it
    href = next(a.href for it in cands.items.values() for a in it.assets.values() if N2 in a.href)
    cfg = stac_stack.load_config()
    gbox = GeoBox.from_bbox((494000, 3647790, 495210, 3649000), "EPSG:32611", resolution=2.5)
    with pytest.raises(AssetReadError) as info:
        read_asset(href, signer=PlanetaryComputerSigner(retries=0), reader=OdcReader(), rewrite=cfg.rewrite,
                   retry=RetryPolicy(max_attempts=2, backoff_s=0.01, max_backoff_s=0.01, sign_retries=0),
                   band=0, geobox=gbox, resampling="average", use_overviews=True, dtype="float32", fill=np.nan)
    exc = info.value
    assert _signed_reads(assets)
    printed = "".join(traceback.format_exception(exc))
    assert "sig=REDACTED" in str(exc) and "sig=REDACTED" in printed
    for text in (str(exc), repr(exc), exc.reason, exc.href, printed):
        assert not LEAK.search(text), text
    assert exc.__cause__ is None and exc.__suppress_context__  # the raw error is not printed with it


def test_token_refusal_403_records_no_signature(stac_stack, fresh_tokens, cands, caplog):
    assets = fresh_tokens
    assets.fail(B04, "403", times=1000)  # storage refuses the signed URL, again and again
    rows = cands.pairs[cands.pairs["roi_id"] == R2]
    before = assets.stats.token_requests
    s2 = s2n.load_s2(rows, items=cands.items, config=stac_stack.load_config()).compute()
    fails = s2n.load_failures(s2)
    assert fails["stage"].tolist() == ["s2:read"] and "403" in fails.loc[0, "reason"]
    assert assets.stats.token_requests >= before  # 403 re-signs (fresh token) before retrying
    assert not LEAK.search(fails.loc[0, "reason"]) and not LEAK.search(caplog.text)
    assert any("Failed to load http" in r.getMessage() and "sig=REDACTED" in r.getMessage() for r in caplog.records)


def test_dask_worker_processes_log_no_signature(stac_stack, fresh_tokens, cands, capfd):
    """Worker processes import the package when they unpickle a load task: their odc-stac/GDAL log
    lines (to the worker's stderr) are redacted too."""
    from distributed import Client, LocalCluster

    assets = fresh_tokens
    assets.fail(B04, "garbage", times=1000)
    rows = cands.pairs[cands.pairs["roi_id"] == R2]
    lazy = s2n.load_s2(rows, items=cands.items, config=stac_stack.load_config())
    capfd.readouterr()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc, Client(lc):
        s2 = lazy.compute()
    err = capfd.readouterr().err
    assert s2n.load_failures(s2)["stage"].tolist() == ["s2:read"]
    assert "Failed to load http" in err and "sig=REDACTED" in err  # the workers did log the failure ...
    assert not LEAK.search(err)  # ... redacted


def _stack_env(stac_stack) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests" / "stac")]),
            "PC_SDK_SAS_URL": stac_stack.assets.sas_url, "S2N_TEST_STAC": stac_stack.url,
            "S2N_TEST_ASSETS": stac_stack.assets.url}


_BUILD = """
import os, sys
import s2n_stac_stack as m
import sen2naip_xr as s2n
from sen2naip_xr.load import LoadConfig, RetryPolicy
from sen2naip_xr.pipeline import CrossSensorConfig, RunConfig, build_cross_sensor

cands = s2n.search_pairs(m.scenario_rois(), datetime="2010-01-01/2023-12-31",
                         client=s2n.open_catalog(os.environ["S2N_TEST_STAC"]), progress=False)
rewrite = tuple((f"https://{a}.blob.core.windows.net/", f"{os.environ['S2N_TEST_ASSETS']}/blob/{a}/")
                for a in (m.NAIP_ACCOUNT, m.S2_ACCOUNT))
load = LoadConfig(href_rewrite=rewrite, retry=RetryPolicy(max_attempts=2, backoff_s=0.05, max_backoff_s=0.1, sign_retries=0),
                  gdal_env={"GDAL_HTTP_TIMEOUT": "2", "GDAL_HTTP_MAX_RETRY": "0", "VSI_CACHE": "FALSE",
                            "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"})
cfg = CrossSensorConfig(max_misalignment_px=100, max_spectral_angle_deg=180, max_cloud_fraction=0.001,
                        max_nodata_fraction=0.001)
res = build_cross_sensor(cands, sys.argv[1], config=cfg, run=RunConfig(n_workers=int(sys.argv[2]), progress=False), load=load)
print(res.summary())
"""


def test_build_process_and_cli_show_no_signature(stac_stack, fresh_tokens, tmp_path):
    """A build in its own process (its stderr as a job log would hold it), then ``sen2naip-xr inspect``:
    the failure records in the store and everything printed are free of signatures."""
    assets = fresh_tokens
    assets.fail(N2, "garbage", times=1000)  # R2 fails at naip:read with GDAL's message quoting the URL
    assets.fail(B04, "garbage", times=1000)  # every S2 read fails too: odc-stac logs the signed URLs
    out = tmp_path / "s.zarr"
    env = _stack_env(stac_stack)
    build = subprocess.run([sys.executable, "-c", _BUILD, str(out), "1"], capture_output=True, text=True, env=env,
                           cwd=tmp_path, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    assert _signed_reads(assets)
    printed = build.stdout + build.stderr
    assert "Failed to load http" in printed and "sig=REDACTED" in printed
    assert not LEAK.search(printed), [line for line in printed.splitlines() if LEAK.search(line)][:3]
    # what the store holds, byte for byte
    for f in out.rglob("*"):
        if f.is_file():
            assert not LEAK.search(f.read_bytes().decode("latin-1")), f
    cli = subprocess.run([sys.executable, "-m", "sen2naip_xr.cli", "inspect", str(out), "--json", "--failures"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert cli.returncode == 0, cli.stderr
    info = json.loads(cli.stdout)
    reasons = " ".join(f["reason"] for f in info["failures"])
    assert "sig=REDACTED" in reasons and not LEAK.search(cli.stdout + cli.stderr)


def test_cli_error_with_a_signed_catalog_url(tmp_path):
    """The command line's own error message quotes the catalog URL (and the HTTP client's text): redacted."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api/stac/v1?st=1&se=2&sp=rl&sig=Zq9SECRET"
    r = subprocess.run([sys.executable, "-m", "sen2naip_xr.cli", "search", "--catalog", url, "--bbox=-117.1,32.9,-117.0,33.0",
                        "--rois", "1", "--datetime", "2020-01-01/2020-02-01", "--out", str(tmp_path / "c.csv")],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 2
    assert "could not be opened" in r.stderr and "sig=REDACTED" in r.stderr and "Zq9SECRET" not in r.stderr
