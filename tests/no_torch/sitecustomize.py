"""Put this folder first on PYTHONPATH to run Python as if torch were not installed.

``sys.modules["torch"] = None`` is not the same: scipy then finds a "torch" module and probes
``torch.Tensor``. A meta-path finder that refuses every ``torch`` module is what a machine without torch
looks like to the code under test. Used by ``tests/test_optional_torch.py``.
"""

import importlib.abc
import sys


class NoTorch(importlib.abc.MetaPathFinder):
    """Refuse ``torch`` and its sub-modules (and torchvision), as if they were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoTorch())
