"""Two checkouts side by side: 1-vs-2-worker build pairs of each, alternating, on the same ROIs.

On a shared, noisy machine a ratio measured now and one measured an hour ago do not compare; runs that
alternate do. Each run is a fresh process whose ``sen2naip_xr`` and benchmark helpers
(``benchmarks/build.py``: ``_candidates``, ``_time_build``) come from that checkout, so a change is measured
against the commit before it::

    git worktree add /tmp/base HEAD~1
    .venv/bin/python benchmarks/compare.py /tmp/base . --kind synthetic --pairs 4

Prints every run and the medians; writes ``benchmarks/results/compare.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_ONE = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {bench!r})
import build as B
import icechunk, zarr  # noqa: F401  -- the driver's one-off imports, not the first build's
import sen2naip_xr as s2n

tmp = Path({tmp!r})
cs, sy = B._candidates(tmp / "cat", {counts!r}, {sizes!r})
kind = {kind!r}
cands, cfg = ((sy, s2n.SyntheticConfig(device="cpu", rois_per_task=1)) if kind == "synthetic"
              else (cs, s2n.CrossSensorConfig()))
out = {{"package": s2n.__file__}}
for nw in (1, 2):
    cpu = {{}}
    seconds, _, n = B._time_build(kind, cands, tmp / f"{{nw}}-{{time.time()}}.zarr", nw, cfg, cpu=cpu)
    out[nw] = {{"seconds": round(seconds, 2), "rois": n, "workers_cpu_s": round(cpu["workers_s"], 2)}}
out["speedup_2_vs_1"] = round(out[1]["seconds"] / out[2]["seconds"], 3)
print("RESULT " + json.dumps(out))
"""


def run_pair(checkout: Path, kind: str, tmp: Path, quick: bool) -> dict:
    """One 1-worker and one 2-worker build with ``checkout``'s code, in a fresh process."""
    counts, sizes = ((4, 2), (128, 256)) if quick else ((24, 16), (484, 1100))
    code = _ONE.format(bench=str(checkout / "benchmarks"), tmp=str(tmp), counts=counts, sizes=sizes, kind=kind)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(checkout), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=checkout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"a run with {checkout} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    res = json.loads(lines[-1][len("RESULT "):])
    if Path(res["package"]).resolve().parent.parent != checkout.resolve():
        raise SystemExit(f"the run imported sen2naip_xr from {res['package']}, not from {checkout}: is the "
                         "package installed non-editable, or a .pth file ahead of PYTHONPATH?")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base", type=Path, help="the checkout to compare against (e.g. a git worktree of HEAD~1)")
    ap.add_argument("new", type=Path, help="the checkout with the change (e.g. .)")
    ap.add_argument("--kind", choices=["synthetic", "cross-sensor"], default="synthetic")
    ap.add_argument("--pairs", type=int, default=4, help="runs of each checkout, alternating (default 4)")
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "compare.json")
    args = ap.parse_args()
    for name in ("base", "new"):
        if not (getattr(args, name) / "sen2naip_xr" / "__init__.py").is_file():
            ap.error(f"{name}={str(getattr(args, name))!r} is not a sen2naip_xr checkout (no sen2naip_xr/__init__.py); "
                     "pass the folder of a clone or a `git worktree`")
    tmp = Path(tempfile.mkdtemp(prefix="s2n-compare-"))
    runs: dict[str, list] = {"base": [], "new": []}
    for i in range(args.pairs):
        for name in ("base", "new"):
            r = run_pair(getattr(args, name), args.kind, tmp / name, args.quick)
            runs[name].append(r)
            print(f"  {name} run {i + 1}/{args.pairs}: 1 worker {r['1']['seconds']} s, 2 workers {r['2']['seconds']} s "
                  f"-> {r['speedup_2_vs_1']}x (workers' CPU {r['1']['workers_cpu_s']} / {r['2']['workers_cpu_s']} s)",
                  flush=True)
    med = {name: {"speedup_2_vs_1": float(np.median([r["speedup_2_vs_1"] for r in rs])),
                  "seconds_1": float(np.median([r["1"]["seconds"] for r in rs])),
                  "seconds_2": float(np.median([r["2"]["seconds"] for r in rs]))} for name, rs in runs.items()}
    for name, m in med.items():
        print(f"{name:>5}: median 2 vs 1 workers {m['speedup_2_vs_1']:.2f}x "
              f"(1 worker {m['seconds_1']:.2f} s, 2 workers {m['seconds_2']:.2f} s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"kind": args.kind, "quick": args.quick, "base": str(args.base),
                                    "new": str(args.new), "runs": runs, "medians": med}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
