"""Benchmark the degradation operators and the full model, beside the reference in the same run.

    python benchmarks/degradation.py [--reference-python .refvenv/bin/python] [--sizes 484 1100] [--quick]

Per operator: Mpx/s (HR pixels H*W, 4 bands each, per second) on 4x484x484 and 4x1100x1100 NAIP-like 8-bit
scenes, numpy-backed, CPU. Full degradation: identity, gamma_mvn p50, U-Net, VAE, each blurred, downsampled
and with real noise, per image, beside the reference's ``pipe.forward`` with the same four methods and real
noise (models preloaded), timed in the same run by ``benchmarks/_reference_runner.py`` in the reference's
venv. Prints a table and writes ``benchmarks/results/degradation.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr
from _machine import cpu_and_memory  # benchmarks/ is on sys.path when a script runs

import sen2naip_xr as s2n

HERE = Path(__file__).resolve().parent


def timeit(func, *, min_runs: int = 3, max_seconds: float = 6.0) -> float:
    """Median seconds of ``func()`` after one warm-up; at least ``min_runs`` runs, more while cheap."""
    func()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or (time.perf_counter() - start < max_seconds and len(times) < 25):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine() -> str:
    gpu = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
        threads = torch.get_num_threads()
    except ImportError:
        threads = 0
    return f"{cpu_and_memory()}, {gpu}, torch threads {threads}"


def operator_rows(size: int, quick: bool) -> list[dict]:
    from skimage.exposure import match_histograms

    naip = s2n.example_image(size, seed=size)
    x = naip.values
    lr = s2n.blur_downsample(naip)
    unet_template = s2n.harmonize(naip, "unet", device="cpu")  # warm the model
    template10 = lr.values ** 2  # a 10 m template (what the U-Net at 10 m gives the matcher)
    cont = (x + np.random.default_rng(0).normal(0, 0.003, x.shape)).astype(np.float32)  # not 8-bit
    cont_da = xr.DataArray(cont, dims=("band", "y", "x"))
    del unet_template
    mpx = size * size / 1e6
    cases = [
        ("blur_downsample (sen2naip, fused)", lambda: s2n.blur_downsample(naip)),
        ("blur_downsample (raw, antialias)", lambda: s2n.blur_downsample(naip, mode="raw")),
        ("add_noise real (on LR)", lambda: s2n.add_noise(lr, "real")),
        ("add_noise gaussian (on LR)", lambda: s2n.add_noise(lr, "gaussian")),
        ("blank_mask 19x19", lambda: s2n.blank_mask(naip)),
        ("histogram_match 8-bit -> 10 m template", lambda: s2n.histogram_match(naip, template10)),
        ("  skimage match_histograms, same", lambda: match_histograms(x, template10, channel_axis=0)),
        ("histogram_match continuous -> same size", lambda: s2n.histogram_match(cont_da, naip)),
        ("  skimage match_histograms, same", lambda: match_histograms(cont, x, channel_axis=0)),
        ("harmonize identity", lambda: s2n.harmonize(naip, "identity")),
        ("harmonize gamma_mvn p50", lambda: s2n.harmonize(naip, "gamma_mvn")),
        ("harmonize unet at=lr (10 m)", lambda: s2n.harmonize(naip, "unet", device="cpu")),
        ("harmonize unet at=hr (2.5 m)", lambda: s2n.harmonize(naip, "unet", at="hr", device="cpu")),
        ("harmonize vae at=lr", lambda: s2n.harmonize(naip, "vae")),
        ("harmonize vae at=hr", lambda: s2n.harmonize(naip, "vae", at="hr")),
    ]
    if quick:
        cases = [c for c in cases if "at=hr" not in c[0]]
    rows = []
    for name, func in cases:
        sec = timeit(func, min_runs=2 if quick else 3, max_seconds=2 if quick else 6)
        rows.append({"size": size, "operator": name, "seconds": sec, "mpx_per_s": mpx / sec})
        print(f"  {size:>5} {name:<42} {sec * 1e3:9.2f} ms {mpx / sec:9.1f} Mpx/s", flush=True)
    return rows


FULL_METHODS = ["identity", "gamma_mvn", "unet", "vae"]


def full_degradation(size: int) -> dict:
    naip = s2n.example_image(size, seed=size)
    sec = timeit(lambda: s2n.degrade(naip, FULL_METHODS, noise="real", seed=0, device="cpu"), min_runs=5)
    lr_only = timeit(lambda: s2n.degrade(naip, FULL_METHODS, noise="real", seed=0, device="cpu", include_hr=False),
                     min_runs=5)
    return {"size": size, "seconds": sec, "seconds_lr_only": lr_only, "images_per_s": 1 / sec}


def dask_batch(size: int, rois: int) -> dict:
    """Full degradation of a batch of ROIs as a Dask graph (threads), one ROI per chunk."""
    import dask

    cube = xr.concat([s2n.example_image(size, seed=s) for s in range(rois)], dim="roi").chunk({"roi": 1})
    ds = s2n.degrade(cube, FULL_METHODS, noise="real", seed=0, device="cpu")
    with dask.config.set(scheduler="threads"):
        sec = timeit(lambda: ds["lr/lr"].compute(), min_runs=2, max_seconds=1)
    return {"size": size, "rois": rois, "seconds": sec, "images_per_s": rois / sec}


def reference(python: str, sizes: list[int], repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "images.npz"
        np.savez(path, **{f"s{n}": s2n.example_image(n, seed=n).values for n in sizes})
        res = subprocess.run([python, str(HERE / "_reference_runner.py"), str(path), str(repeat)],
                             capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference-python", default=None,
                    help="python of the reference venv (make refenv: .refvenv/bin/python); omitted: no reference")
    ap.add_argument("--sizes", type=int, nargs="+", default=[484, 1100])
    ap.add_argument("--reference-repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer cases and runs (CI smoke)")
    ap.add_argument("--out", default=str(HERE / "results" / "degradation.json"))
    args = ap.parse_args(argv)

    info = {"machine": machine(), "python": sys.version.split()[0], "numpy": np.__version__,
            "sen2naip_xr": s2n.__version__}
    print(f"machine: {info['machine']}")
    print("operators (numpy-backed, CPU):")
    ops = [row for n in args.sizes for row in operator_rows(n, args.quick)]
    print("full degradation (identity, gamma_mvn p50, unet, vae; blur, downsample, real noise):")
    full = []
    for n in args.sizes:
        full.append(full_degradation(n))
        print(f"  {n:>5} ours: {full[-1]['seconds']:.3f} s/image (HR + LR), {full[-1]['seconds_lr_only']:.3f} s "
              "(LR only, include_hr=False)", flush=True)
    ref = None
    if args.reference_python:
        print("reference pipe.forward (same methods, real noise, models preloaded) ...", flush=True)
        ref = reference(args.reference_python, args.sizes, 1 if args.quick else args.reference_repeat)
        for row in full:
            r = ref[f"s{row['size']}"]["seconds"]
            row["reference_seconds"] = r
            row["speedup"] = r / row["seconds"]
            row["speedup_lr_only"] = r / row["seconds_lr_only"]
            print(f"  {row['size']:>5} reference: {r:.2f} s/image -> ours is {row['speedup']:.1f}x faster "
                  f"({row['speedup_lr_only']:.1f}x with include_hr=False)")
    batch = None if args.quick else dask_batch(min(args.sizes), 8)
    if batch:
        print(f"dask batch, {batch['rois']} ROIs of {batch['size']} px (threads): {batch['images_per_s']:.2f} images/s")
    speedups = {}
    for size in args.sizes:
        by = {r["operator"]: r for r in ops if r["size"] == size}
        keys = list(by)
        for i, k in enumerate(keys):
            if k.startswith("histogram_match") and i + 1 < len(keys) and "skimage" in keys[i + 1]:
                speedups[f"{k} @ {size}"] = by[keys[i + 1]]["seconds"] / by[k]["seconds"]
    for k, v in speedups.items():
        print(f"  speed-up vs skimage, {k}: {v:.1f}x")
    result = {"info": info, "operators": ops, "full": full, "reference": ref, "dask_batch": batch,
              "histogram_match_speedup_vs_skimage": speedups}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
