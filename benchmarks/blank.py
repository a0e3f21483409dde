"""Blank check micro-benchmark (issue 11): Mpx/s of ``blank_mask`` / ``is_blank`` on 4 x 1100 x 1100.

    python benchmarks/blank.py [--size 1100] [--window 19]

Times, in one run, the package's kernel (neighbour differences + a sliding OR per axis, O(1) per pixel),
the definition it replaced (scipy 19x19 ``maximum_filter`` / ``minimum_filter`` per band, max == min), and
the dask path (4 chunks, halos), on a NAIP-like 8-bit scene with a constant patch and on one with a NaN;
checks that all give the same mask. Mpx/s = image pixels (H x W, 4 bands each) per second, median after a
warm-up. Writes ``benchmarks/results/blank.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import xarray as xr
from _machine import cpu_and_memory  # benchmarks/ is on sys.path when a script runs
from scipy import ndimage

import sen2naip_xr as s2n
from sen2naip_xr.ops import _numpy


def scipy_definition(image: np.ndarray, window: int) -> np.ndarray:
    """The former kernel: per band max == min over the window (scipy filters), or any NaN in it."""
    size = (1,) * (image.ndim - 2) + (window, window)
    nan = np.isnan(image)
    data = np.where(nan, np.float32(0), image)
    hi = ndimage.maximum_filter(data, size=size, mode="reflect")
    lo = ndimage.minimum_filter(data, size=size, mode="reflect")
    blank = np.all(hi == lo, axis=-3)
    if nan.any():
        blank |= ndimage.maximum_filter(nan.any(axis=-3), size=size[:-3] + size[-2:], mode="reflect")
    return blank


def timeit(func, runs: int = 7) -> float:
    func()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=1100)
    ap.add_argument("--window", type=int, default=19)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "blank.json"))
    args = ap.parse_args()
    n, win = args.size, args.window
    mpx = n * n / 1e6
    scene = np.asarray(s2n.example_image(n, seed=1).values, np.float32)
    scene[:, n // 4:n // 4 + 60, n // 3:n // 3 + 80] = 0.0  # a nodata fill block
    with_nan = scene.copy()
    with_nan[2, n // 2, n // 2] = np.nan
    rows = []
    for label, img in (("constant patch", scene), ("NaN", with_nan)):
        want = scipy_definition(img, win)
        got = _numpy.blank_mask(img, win)
        lazy = s2n.blank_mask(xr.DataArray(img, dims=("band", "y", "x")).chunk({"y": n // 2, "x": n // 2}), win)
        same = bool(np.array_equal(got, want) and np.array_equal(lazy.values, want))
        t_new = timeit(lambda img=img: _numpy.blank_mask(img, win))
        t_old = timeit(lambda img=img: scipy_definition(img, win), runs=3)
        t_dask = timeit(lambda lazy=lazy: lazy.compute(scheduler="sync"), runs=3)
        t_is = timeit(lambda img=img: s2n.is_blank(xr.DataArray(img, dims=("band", "y", "x")), win).values)
        rows.append({"input": label, "kernel_ms": round(1e3 * t_new, 2), "kernel_mpx_s": round(mpx / t_new, 1),
                     "is_blank_ms": round(1e3 * t_is, 2), "dask_4_chunks_ms": round(1e3 * t_dask, 2),
                     "scipy_definition_ms": round(1e3 * t_old, 1), "scipy_mpx_s": round(mpx / t_old, 1),
                     "speedup": round(t_old / t_new, 1), "same_mask": same})
    res = {"machine": cpu_and_memory(), "size": n, "window": win, "rows": rows}
    print(f"blank check, 4 x {n} x {n}, window {win}, {res['machine']}")
    print(f"{'input':<16}{'kernel ms':>10}{'Mpx/s':>8}{'is_blank ms':>12}{'dask ms':>9}{'scipy ms':>10}"
          f"{'Mpx/s':>7}{'speed-up':>9}{'same':>6}")
    for r in rows:
        print(f"{r['input']:<16}{r['kernel_ms']:>10}{r['kernel_mpx_s']:>8}{r['is_blank_ms']:>12}"
              f"{r['dask_4_chunks_ms']:>9}{r['scipy_definition_ms']:>10}{r['scipy_mpx_s']:>7}{r['speedup']:>9}"
              f"{str(r['same_mask']):>6}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
