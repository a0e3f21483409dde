"""Layers follow the data (issue 10, point 3): an import-graph test over the package's source.

The stages, in the order data passes through them, and the rank each may import from (its own or lower):

====  =====================================================================================
rank  units (a unit is a sub-package, or a top-level module)
====  =====================================================================================
0     base: ``errors``, ``config``, ``weights``, ``scenes`` and the shared private modules
      (``_const``, ``_rng``, ``_safe``, ``_validate``, ``_lift``, ``_provenance``, ``_torchfile``,
      ``_progress``)
1     ``catalog``  (STAC search, pairing, ROI sampling)
2     ``load``     (cubes on ROI grids)
3     ``ops``      (kernels and their xarray/Dask lifts)
4     ``harmonize``
5     ``degrade``
6     ``store``    (the on-disk format the pipeline writes: it imports no stage after ``load``)
7     ``pipeline``
8     ``fit``, ``validate``, ``train``, ``loaders``, ``figures`` (read a store, or draw)
9     ``cli``, every ``<package>._cli`` module (the CLI of its package, which may import its package's
      private modules), ``accessor``, ``demo``, the package root
====  =====================================================================================

The one departure from the data order catalog -> ... -> pipeline -> store: the store ranks below the
pipeline, because the pipeline writes through the store's API (so it imports it), and the store needs
nothing of the pipeline.

Rules, checked on every ``import`` / ``from ... import`` (function-level imports included):

1. **No upward import**: a module imports only units of its own rank or lower.
2. **No private module of another unit**: ``sen2naip_xr.<unit>._x`` is imported only from inside ``<unit>``
   (the ``_cli`` modules, together the command-line layer, may import each other).
3. **No private name of another module**: ``from <module> import _name`` (a name, not a submodule) and
   ``<module alias>._name`` are errors, even inside one package (``synthetic`` importing
   ``cross_sensor._record_early``), except the base's shared private modules (``from sen2naip_xr import
   _rng``).

Exception, for every rule: the package root's dunders (``from sen2naip_xr import __version__``), which the
root defines from the distribution's metadata before anything else runs.

``TEMPORARY`` lists known violations that other open issues remove; the lead empties it when they merge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sen2naip_xr

PACKAGE = Path(sen2naip_xr.__file__).parent
ROOT = "sen2naip_xr"

BASE_PRIVATE = {"_const", "_rng", "_safe", "_validate", "_lift", "_provenance", "_torchfile", "_progress"}
RANK = {
    **dict.fromkeys(BASE_PRIVATE | {"errors", "config", "weights", "scenes"}, 0),
    "catalog": 1, "load": 2, "ops": 3, "harmonize": 4, "degrade": 5, "store": 6, "pipeline": 7,
    **dict.fromkeys(("fit", "validate", "train", "loaders", "figures"), 8),
    **dict.fromkeys(("cli", "accessor", "demo", "<root>"), 9),
}

#: Known violations owned by other open issues, as (importer module, imported module, name or "").
#: Each entry names the helper removing it; the lead empties this list at merge time.
TEMPORARY: dict[tuple[str, str, str], str] = {}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str:
    """The layer unit of a module: its sub-package or top-level module; ``_cli`` modules are ``cli``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "<root>"
    if parts[-1] == "_cli":
        return "cli"
    return parts[1]


def package_of(module: str) -> str:
    """The sub-package (or top-level module) a module belongs to, for the private-module rule."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def _is_package_path(module: str, package: Path) -> bool:
    rel = Path(*module.split(".")[1:])
    return (package / rel).is_dir() or (package / rel).with_suffix(".py").is_file()


def imports(path: Path, package: Path = PACKAGE) -> list[tuple[str, str, str, int]]:
    """(importer, imported module, imported name or "", line) of every sen2naip_xr import in ``path``,
    plus private attributes read off an imported sen2naip_xr module alias (as name)."""
    me = module_name(path, package)
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    out: list[tuple[str, str, str, int]] = []
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == ROOT:
                    out.append((me, a.name, "", node.lineno))
                    if a.asname:
                        aliases[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = me.split(".") if is_pkg else me.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != ROOT:
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                if _is_package_path(sub, package):  # a submodule: record the module itself
                    out.append((me, sub, "", node.lineno))
                    aliases[a.asname or a.name] = sub
                else:
                    out.append((me, target, a.name, node.lineno))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            out.append((me, aliases[node.value.id], node.attr, node.lineno))
    return out


def violations(package: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        for me, target, name, line in imports(path, package):
            src, dst = unit_of(me), unit_of(target)
            where = f"{path.relative_to(package.parent)}:{line}: {me} imports {target}" + (f".{name}" if name else "")
            if (me, target, name) in TEMPORARY:
                continue
            if src not in RANK or dst not in RANK:
                found.append(f"{where}: unit {src if src not in RANK else dst!r} has no layer; add it to RANK")
                continue
            dunder_of_root = target == ROOT and name.startswith("__")  # sen2naip_xr.__version__
            if RANK[dst] > RANK[src] and not dunder_of_root:
                found.append(f"{where}: upward import ({src} rank {RANK[src]} -> {dst} rank {RANK[dst]})")
            private_parts = [p for p in target.split(".")[2:] if p.startswith("_") and not p.startswith("__")]
            if target.split(".")[1:2] and target.split(".")[1] in BASE_PRIVATE:
                private_parts = []
            if src == dst == "cli":  # the command line is one layer: its modules may share their helpers
                private_parts = []
            if private_parts and package_of(target) != package_of(me):
                found.append(f"{where}: private module of {package_of(target)!r}; import its public seam")
            if name.startswith("_") and not name.startswith("__") and not (target == ROOT and name in BASE_PRIVATE):
                found.append(f"{where}: private name {name!r} of another module; make it public or move it")
    return found


def test_imports_follow_the_layers():
    found = violations()
    assert not found, "imports against the layers:\n" + "\n".join(found)


def test_temporary_exceptions_are_still_needed():
    """An entry of TEMPORARY whose import is gone must be deleted (the list only shrinks)."""
    seen = {(me, t, n) for p in PACKAGE.rglob("*.py") for me, t, n, _ in imports(p)}
    stale = sorted(set(TEMPORARY) - seen)
    assert not stale, f"delete these from TEMPORARY, their imports are gone: {stale}"


@pytest.mark.parametrize(("module", "source", "expected"), [
    ("ops/bad.py", "from sen2naip_xr.harmonize import harmonize\n", "upward import (ops rank 3 -> harmonize rank 4)"),
    ("load/bad.py", "def f():\n    from sen2naip_xr.ops import provenance\n", "upward import"),
    ("fit/bad.py", "from sen2naip_xr.pipeline._qa import phase_shift\n", "private module of 'pipeline'"),
    ("pipeline/bad.py", "from sen2naip_xr.config import _ALIASES\n", "private name '_ALIASES'"),
    ("fit/bad.py", "from sen2naip_xr.ops import kernels as k\nk._distribution\n", "private name '_distribution'"),
    ("newthing.py", "from sen2naip_xr import errors\n", "has no layer"),
])
def test_the_checker_catches_planted_violations(tmp_path, module, source, expected):
    """The checker itself can fail: a copy of the package with one bad import is reported."""
    import shutil

    pkg = tmp_path / ROOT
    shutil.copytree(PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / module).write_text(source)
    found = [v for v in violations(pkg) if v.split(":")[0].endswith(module)]
    assert any(expected in v for v in found), found
