"""Only public APIs of other packages in the package; only public APIs of ours in the examples and README."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUR_PRIVATE = re.compile(r"\bsen2naip_xr(\.[a-z][a-z0-9_]*)*\._[a-z]")


def _modules(text: str) -> list[str]:
    """The modules a file imports (``from X import`` and ``import X``)."""
    return [m.group(1) for m in re.finditer(r"^\s*(?:from|import)\s+([A-Za-z_][\w.]*)", text, re.M)]


def test_the_package_imports_no_private_module_of_another_package():
    bad = []
    for path in (ROOT / "sen2naip_xr").rglob("*.py"):
        for mod in _modules(path.read_text()):
            parts = mod.split(".")
            if parts[0] not in ("sen2naip_xr", "__future__") and any(p.startswith("_") for p in parts):
                bad.append(f"{path.relative_to(ROOT)}: {mod}")
    assert not bad, bad
    text = (ROOT / "sen2naip_xr" / "load" / "_reader.py").read_text()
    assert "odc.loader._" not in text and "LocalContext" not in text and "pick_overview(" in text


def _readme_code() -> str:
    """The code blocks of the README (what a reader copies), not its prose about the internals."""
    return "\n".join(re.findall(r"^```\w*\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M))


def test_examples_and_readme_use_only_our_public_api():
    bad = []
    sources = {p.name: p.read_text() for p in (ROOT / "examples").glob("*.py")}
    sources["README.md (code blocks)"] = _readme_code()
    assert "import sen2naip_xr as s2n" in sources["README.md (code blocks)"]
    for name, text in sources.items():
        for n, line in enumerate(text.splitlines(), 1):
            if OUR_PRIVATE.search(line):
                bad.append(f"{name}:{n}: {line.strip()}")
    assert not bad, bad


def test_install_paths_are_documented_and_the_tools_the_readme_names_are_in_extras():
    import tomllib

    readme = (ROOT / "README.md").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert 'pip install "sen2naip-xr[torch]"' in readme
    weights = re.search(r'pip install --no-deps "opensr-degradation==([\d.]+)"', readme)
    assert weights and f'"opensr-degradation=={weights.group(1)}"' in (ROOT / "Makefile").read_text()
    assert "CUDA" in readme and "download.pytorch.org/whl/cu" in readme and "torch.cuda.is_available()" in readme
    for tool in ("jupytext",):  # command-line tools the README and examples tell readers to run
        assert tool in readme
        assert any(dep.startswith(tool) for deps in extras.values() for dep in deps), tool
    assert 'pip install "sen2naip-xr[notebook]"' in readme and "notebook" in extras
