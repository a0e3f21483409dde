"""The command line end to end (build on a LocalCluster, inspect --json, export) and the runner's routing."""

from __future__ import annotations

import json

from sen2naip_xr.cli import main
from sen2naip_xr.pipeline import RunConfig, Runner


def test_build_inspect_export_from_the_command_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEN2NAIP_XR_CACHE", str(tmp_path / "cache"))  # the embedded catalog's scenes
    out = tmp_path / "ds.zarr"
    argv = ["build", "cross-sensor", "--catalog", "embedded", "--rois", "3", "--out", str(out)]
    assert main(argv) == 0
    cap = capsys.readouterr()
    assert "dask dashboard: http" in cap.err
    # not a terminal: progress as plain lines (no tqdm "\r" redraws in logs)
    assert "cross-sensor: 3/3 (100%)" in cap.err and "\r" not in cap.err
    assert "ROIs written" in cap.out
    assert main(["inspect", str(out), "--json", "--failures"]) == 0
    info = json.loads(capsys.readouterr().out)
    part = info["parts"]["cross-sensor"]
    assert info["demo_truth"] and part["written"] + part["failed"] == 3
    assert main(argv) == 0  # a rerun: everything already done
    assert "0 ROIs written, 0 failed, 3 already done" in capsys.readouterr().out
    assert main(["export", str(out), "--out", str(tmp_path / "pub")]) == 0
    written = sorted(p.name for p in (tmp_path / "pub" / "cross-sensor").iterdir())
    assert len(written) == part["written"]
    assert main(["inspect", str(out)]) == 0
    assert "median QA1" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.catalog"))  # the scenes live in the cache, not beside --out
    assert list((tmp_path / "cache").glob("demo-catalog-embedded-cross-sensor-3-0/items.json"))


class _FakeClient:
    def __init__(self, resources):
        self._workers = {f"tcp://w{i}": {"resources": r, "nthreads": 1} for i, r in enumerate(resources)}

    def scheduler_info(self):
        return {"workers": self._workers}


def test_network_tasks_go_to_gpu_workers_when_there_are_any():
    assert Runner(RunConfig(), client=_FakeClient([{}, {"GPU": 1}])).gpu_resources() == {"GPU": 1}
    assert Runner(RunConfig(), client=_FakeClient([{}, {}])).gpu_resources() is None
    assert Runner(RunConfig(scheduler="sync")).gpu_resources() is None
