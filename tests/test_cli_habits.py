"""Command-line and notebook habits: --bbox with a negative west edge, swapped lat/lon, search on the
embedded catalog, short reprs, progress lines in logs, the CLI not importing the demo."""

from __future__ import annotations

import io
import subprocess
import sys

import pandas as pd
import pytest

import sen2naip_xr as s2n
from sen2naip_xr._progress import LineProgress, progress
from sen2naip_xr.catalog._cli import bbox_argv
from sen2naip_xr.cli import build_parser, main
from sen2naip_xr.pipeline import BuildResult


def test_bbox_with_a_leading_negative_number_as_a_separate_argument():
    argv = ["search", "--bbox", "-73.2,43.9,-73.1,44.0", "--datetime", "2020-01-01/2020-12-31", "--out", "p.csv"]
    assert bbox_argv(argv)[1] == "--bbox=-73.2,43.9,-73.1,44.0"
    args = build_parser().parse_args(bbox_argv(argv))
    assert args.bbox == (-73.2, 43.9, -73.1, 44.0)
    args = build_parser().parse_args(bbox_argv(["build", "cross-sensor", "--bbox", "-117.3,32.7,-116.8,33.2",
                                                "--out", "ds.zarr"]))
    assert args.bbox == (-117.3, 32.7, -116.8, 33.2)


def test_swapped_lat_lon_names_the_likely_swap(capsys):
    with pytest.raises(SystemExit):
        main(["search", "--bbox", "43.9,-73.2,44.0,-73.1", "--datetime", "2020", "--out", "p.csv"])
    err = capsys.readouterr().err
    assert "swapped" in err and "-73.2,43.9,-73.1,44" in err
    with pytest.raises(s2n.InputError, match="swapped.*-73.2,43.9,-73.1,44"):
        s2n.sample_rois(5, region=(43.9, -73.2, 44.0, -73.1))
    with pytest.raises(s2n.InputError, match=r"longitudes must lie in \[-180, 180\].*swapped.*-120,33,-119,34"):
        s2n.sample_rois(5, region=(33, -120, 34, -119))  # S=-120: out of range, the swap is valid
    with pytest.raises(s2n.InputError, match="W < E and S < N"):
        s2n.sample_rois(5, region=(-117, 33, -118, 34))


def test_search_on_the_embedded_catalog(tmp_path, capsys):
    out = tmp_path / "pairs.csv"
    assert main(["search", "--catalog", "embedded", "--rois", "2", "--out", str(out), "--no-progress"]) == 0
    table = pd.read_csv(out)
    assert len(table) >= 2 and set(table["roi_id"]) and "s2_id" in table
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.csv"]  # the scenes live in the cache (issue 8)
    text = capsys.readouterr().out
    assert "scenes in" in text and "a cache" in text


def test_cli_and_catalog_do_not_import_the_demo():
    code = ("import sys, sen2naip_xr.pipeline._cli, sen2naip_xr.catalog._cli, sen2naip_xr.catalog; "
            "bad = sorted(m for m in sys.modules if m.startswith('sen2naip_xr.demo')); assert not bad, bad")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "embedded" in s2n.catalog.named_catalogs()


def test_unknown_named_catalog_is_a_clear_error(tmp_path):
    with pytest.raises(s2n.InputError, match=r"catalog='nope' is neither a STAC API URL nor a named catalog"):
        s2n.catalog.open_named_catalog("nope", tmp_path)


def test_candidates_and_build_result_reprs_are_short():
    rois = s2n.rois_from_points([-117.0], [33.0])
    pairs = pd.DataFrame({"roi_id": ["r"] * 50, "dt_days": [0.0] * 50, "eo:cloud_cover": [1.0] * 50})
    cands = s2n.Candidates(kind="cross-sensor", rois=rois, pairs=pairs)
    text = repr(cands)
    assert text.startswith("<Candidates cross-sensor: 50 candidate pairs") and "\n" not in text
    html = cands._repr_html_()
    assert "first 5 of 50 rows" in html and html.count("<tr") <= 7
    res = BuildResult(store="ds.zarr", kind="synthetic", written=[f"ROI_{i:05d}" for i in range(40)], seconds=2.0)
    assert repr(res).startswith("<BuildResult synthetic: 40 ROIs written") and len(repr(res)) < 200
    assert "... (40)" in res._repr_html_()


def test_progress_is_plain_lines_when_not_on_a_terminal():
    log = io.StringIO()
    bar = progress(total=3, desc="build", file=log, every=0.0)
    assert isinstance(bar, LineProgress)
    for _ in range(3):
        bar.update()
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and lines[-1].startswith("build: 3/3 (100%)")
    quiet = io.StringIO()
    list(progress(range(3), desc="x", file=quiet, enabled=False))
    assert quiet.getvalue() == ""
