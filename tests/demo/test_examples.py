"""The offline examples run end to end (CI runs them on small data)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

OFFLINE = {
    "build_dataset_offline.py": (["--small", "--scheduler", "sync"], "exported"),
    "accessor_notebook.py": ([], "RMSE against the real S2"),
    "cluster_job.py": (["--small"], "ROIs written"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(OFFLINE))
def test_offline_example_runs(name, tmp_path):
    extra, words = OFFLINE[name]
    out = tmp_path / ("job.zarr" if name == "cluster_job.py" else "out")
    res = subprocess.run([sys.executable, str(EXAMPLES / name), "--out", str(out), *extra],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert words in res.stdout
