"""torch is optional: only the U-Net needs it, imported lazily, with an install hint when missing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import sen2naip_xr as s2n

REPO = Path(__file__).resolve().parents[1]


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (the test's own), from the repository root."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_import_does_not_import_torch():
    out = _python("""
        import sys
        import sen2naip_xr as s2n
        assert "torch" not in sys.modules, "import sen2naip_xr imported torch"
        img = s2n.example_image(size=32)
        img.s2n.degrade(["identity", "gamma_mvn", "vae"], noise="real").compute()  # no network: no torch
        img.s2n.blank_mask()
        print("torch" in sys.modules)
    """)
    assert out.stdout.strip() == "False"


HIDDEN_TORCH = """
    import importlib.abc
    import sys


    class NoTorch(importlib.abc.MetaPathFinder):
        \"\"\"As if torch were not installed. (``sys.modules["torch"] = None`` is not that: scipy then finds a
        "torch" module and probes ``torch.Tensor``.)\"\"\"

        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None


    sys.meta_path.insert(0, NoTorch())
    import numpy as np
    import sen2naip_xr as s2n

    img = s2n.example_image(size=32, seed=1)
    results = {m: s2n.harmonize(img, m).values for m in ("identity", "gamma_lognormal", "gamma_mvn", "vae")}
    lr = s2n.blur_downsample(img)
    results["noise_real"] = s2n.add_noise(lr, "real", seed=2).values
    results["noise_gaussian"] = s2n.add_noise(lr, "gaussian", seed=2).values
    results["degrade"] = s2n.degrade(img.chunk({"y": 16}), ["identity", "gamma_mvn", "vae"], seed=3)["lr/lr"].values
    np.savez(sys.argv[1], **results)

    def fails(call):
        try:
            call()
        except s2n.MissingDependencyError as exc:
            assert isinstance(exc, ImportError)
            return str(exc)
        raise AssertionError("no MissingDependencyError")

    print(fails(lambda: s2n.harmonize(img, "unet", device="cpu")))
    print(fails(lambda: s2n.harmonize(img.chunk({"y": 16}), "unet").compute()))
    print(fails(lambda: s2n.degrade(img, seed=3)))  # the default methods include the U-Net
    assert "torch" not in sys.modules
"""


def test_without_torch(tmp_path):
    pytest.importorskip("torch")  # the comparison below needs the with-torch results of this process
    out = _python(HIDDEN_TORCH, str(tmp_path / "no_torch.npz"))
    messages = out.stdout.strip().splitlines()
    assert len(messages) == 3
    for msg in messages:
        assert "needs torch" in msg and 'pip install "sen2naip-xr[torch]"' in msg, msg
    # without torch the other methods give the same bytes as with it
    img = s2n.example_image(size=32, seed=1)
    lr = s2n.blur_downsample(img)
    with np.load(tmp_path / "no_torch.npz") as got:
        for m in ("identity", "gamma_lognormal", "gamma_mvn", "vae"):
            np.testing.assert_array_equal(got[m], s2n.harmonize(img, m).values)
        np.testing.assert_array_equal(got["noise_real"], s2n.add_noise(lr, "real", seed=2).values)
        np.testing.assert_array_equal(got["noise_gaussian"], s2n.add_noise(lr, "gaussian", seed=2).values)
        np.testing.assert_array_equal(got["degrade"],
                                      s2n.degrade(img, ["identity", "gamma_mvn", "vae"], seed=3)["lr/lr"].values)


#: Test modules that hold both torch and torch-free tests: without torch the former skip, the latter pass.
WITHOUT_TORCH_SUBSET = ["tests/ops/test_blur.py", "tests/ops/test_noise.py", "tests/test_chain.py", "tests/test_degrade.py",
                        "tests/harmonize", "tests/pipeline/test_qa_diversity.py", "tests/test_loaders.py",
                        "tests/test_train.py"]


def test_the_torch_free_tests_pass_where_torch_cannot_be_imported():
    """Run part of this suite in a fresh interpreter where ``import torch`` fails (tests/no_torch's
    sitecustomize): nothing may error at collection, torch tests skip, every other test passes."""
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "no_torch"), str(REPO)])}
    probe = subprocess.run([sys.executable, "-c", "import torch"], cwd=REPO, env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'torch'" in probe.stderr  # torch is hidden
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
                          *WITHOUT_TORCH_SUBSET], cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    tail = run.stdout[-3000:]
    assert run.returncode == 0, tail + run.stderr[-2000:]
    summary = tail.strip().splitlines()[-1]
    assert " passed" in summary and " skipped" in summary and "error" not in summary, summary
