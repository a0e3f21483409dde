"""GPU benchmark (issue 11): U-Net throughput per batch size and the staged synthetic build's ROIs/s.

    python benchmarks/gpu.py                 # on a CUDA machine: 1100 px ROIs, batches 1-64
    python benchmarks/gpu.py --quick         # small sizes (what runs on a CPU-only machine anyway)

Measures
--------
* U-Net Mpx/s of network input (its 10 m images: 275 x 275 px for an 1100 px ROI, 4 bands) for batch sizes
  1, 2, 4, 8, 16, 32, 64, in fp32 (the pipeline's path, ``run_unet``) and in fp16 with channels_last; fp16
  counts only if the harmonized image (``unet_hm``: NAIP histogram-matched to the prediction) stays within
  1e-3 of fp32's (checked on the same images, the verdict printed). Goal on an H100-class card: >= 250
  Mpx/s.
* end-to-end synthetic ROIs/s of the staged build (``build_synthetic``: read -> networks -> finish) on a
  LocalCluster-like cluster of ``--cpu-workers`` plain workers and one worker declaring ``GPU=1``, and the
  GPU worker's busy fraction: the seconds its network tasks ran (Dask task stream) over the build's wall time.

Without a CUDA device the script runs everything on CPU at small sizes and says so: the numbers then
check that the script works, they are not the goal's. Writes ``benchmarks/results/gpu.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import cpu_and_memory  # benchmarks/ is on sys.path when a script runs

import sen2naip_xr as s2n
from sen2naip_xr.config import HarmonizeConfig


def _sync(torch, device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, torch, device: str, runs: int) -> float:
    fn()  # warm-up (cuDNN autotuning, allocator)
    _sync(torch, device)
    best = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        _sync(torch, device)
        best.append(time.perf_counter() - t0)
    return float(np.median(best))


def bench_unet(device: str, roi_px: int, batches: list[int], runs: int) -> dict:
    """U-Net Mpx/s (10 m input pixels) per batch size, fp32 and fp16 channels_last, and the fp16 check."""
    import torch

    from sen2naip_xr.harmonize import network_finish, network_input, unet_path
    from sen2naip_xr.harmonize._torch import load_unet, reference_pad, run_unet

    cfg = HarmonizeConfig(method="unet", device=device)
    path = unet_path(cfg)
    n_max = max(batches)
    hr = np.stack([s2n.scenes.make_scene(roi_px, i) for i in range(n_max)]).astype(np.float32)
    net_in = network_input(hr, cfg)  # (n, 4, roi/4, roi/4)
    n, _, h, w = net_in.shape
    model32 = load_unet(path, device)
    model16 = torch.jit.load(path, map_location=device).eval()
    try:
        model16 = model16.half().to(memory_format=torch.channels_last)
        half_ok = ""
    except Exception as exc:  # noqa: BLE001 - a TorchScript module that refuses: reported
        half_ok = f"fp16 channels_last unavailable: {exc}"
    ph, pw = reference_pad(h), reference_pad(w)

    def fp16(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode(), torch.jit.optimized_execution(False):
            t = torch.from_numpy(x).to(device).half().contiguous(memory_format=torch.channels_last)
            t = torch.nn.functional.pad(t, (0, pw, 0, ph))
            return model16(t)[:, :, :h, :w].float().cpu().numpy()

    # accuracy: unet_hm of fp16 vs fp32 on the same images
    check = min(4, n)
    pred32 = run_unet(net_in[:check], path=path, device=device, batch_size=check)
    hm32 = network_finish(hr[:check], pred32, cfg)
    fp16_err = None
    if not half_ok:
        try:
            hm16 = network_finish(hr[:check], fp16(net_in[:check]), cfg)
            fp16_err = float(np.nanmax(np.abs(hm16 - hm32)))
        except Exception as exc:  # noqa: BLE001 - e.g. a CPU without half convolutions
            half_ok = f"fp16 failed on {device}: {type(exc).__name__}: {exc}"
    fp16_valid = fp16_err is not None and fp16_err <= 1e-3
    rows = []
    for b in batches:
        x = np.ascontiguousarray(net_in[:b])
        mpx = b * h * w / 1e6
        t32 = _timed(lambda x=x, b=b: run_unet(x, path=path, device=device, batch_size=b), torch, device, runs)
        row = {"batch": b, "fp32_s": round(t32, 4), "fp32_mpx_s": round(mpx / t32, 2),
               "fp32_images_s": round(b / t32, 1)}
        if fp16_err is not None:
            t16 = _timed(lambda x=x: fp16(x), torch, device, runs)
            row.update({"fp16_cl_s": round(t16, 4), "fp16_cl_mpx_s": round(mpx / t16, 2),
                        "fp16_cl_images_s": round(b / t16, 1)})
        rows.append(row)
    del model32
    return {"device": device, "roi_px": roi_px, "net_input_px": [h, w], "rows": rows,
            "fp16_unet_hm_max_abs_diff": fp16_err, "fp16_within_1e-3": fp16_valid, "fp16_note": half_ok or None}


def bench_end_to_end(tmp: Path, *, n_rois: int, roi_px: int, cpu_workers: int, net_batch: int | None,
                     device: str) -> dict:
    """Staged synthetic build on cpu_workers plain workers + one GPU worker: ROIs/s, GPU worker busy fraction."""
    from distributed import Client, Nanny, Scheduler, SpecCluster, get_task_stream

    from sen2naip_xr.demo._catalog import build_demo_catalog
    from sen2naip_xr.load import NoSigner

    cat = build_demo_catalog(tmp / "cat", n_cross_sensor=0, n_synthetic=n_rois, synthetic_size=roi_px)
    cands = s2n.search_pairs(cat.synthetic_rois, kind="synthetic", datetime=cat.datetime, client=cat.client,
                             progress=False)
    opts = {"nthreads": 1, "memory_limit": "8GiB"}
    workers = {f"cpu-{i}": {"cls": Nanny, "options": opts} for i in range(cpu_workers)}
    workers["gpu"] = {"cls": Nanny, "options": {**opts, "resources": {"GPU": 1}}}
    cfg = s2n.SyntheticConfig(device=device, net_batch_size=net_batch)
    with SpecCluster(workers=workers, scheduler={"cls": Scheduler, "options": {"dashboard_address": ":0"}},
                     silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        client.wait_for_workers(cpu_workers + 1)

        def warm(dask_worker=None) -> None:  # imports and model loads, once per worker: not timed
            import xarray as xr

            img = xr.DataArray(s2n.scenes.make_scene(64, 0), dims=("band", "y", "x"))
            s2n.histogram_match(img, img)
            if dask_worker is not None and dask_worker.state.total_resources.get("GPU"):
                s2n.harmonize(img, "unet", device=device)

        client.run(warm)
        gpu_addr = next(a for a, w in client.scheduler_info()["workers"].items() if w.get("resources", {}).get("GPU"))
        with get_task_stream(client) as ts:
            t0 = time.perf_counter()
            res = s2n.build_synthetic(cands, tmp / "e2e.zarr", config=cfg, run=s2n.RunConfig(progress=False),
                                      signer=NoSigner(), client=client)
            wall = time.perf_counter() - t0
        busy = 0.0
        n_net = 0
        for t in ts.data:
            if t["worker"] != gpu_addr:
                continue
            n_net += str(t["key"]).startswith("synthetic-net-")
            busy += sum(s["stop"] - s["start"] for s in t["startstops"] if s["action"] == "compute")
    n = len(res.written) + len(res.failed)
    images = sum(len(v) for v in cands.pairs.groupby("roi_id").groups.values())
    return {"rois": n, "images": images, "roi_px": roi_px, "cpu_workers": cpu_workers, "seconds": round(wall, 2),
            "rois_per_s": round(n / wall, 3), "gpu_worker_busy_fraction": round(busy / wall, 3),
            "gpu_worker_tasks": n_net, "net_batch_size": net_batch or "default"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (always the case without CUDA)")
    ap.add_argument("--cpu-workers", type=int, default=None, help="plain workers beside the GPU worker")
    ap.add_argument("--rois", type=int, default=None, help="ROIs of the end-to-end build")
    ap.add_argument("--net-batch-size", type=int, default=None)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "gpu.json"))
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        raise SystemExit("benchmarks/gpu.py needs torch (pip install 'sen2naip-xr[torch]')") from None
    cuda = torch.cuda.is_available()
    small = args.quick or not cuda
    device = "cuda" if cuda else "cpu"
    if cuda:
        name = torch.cuda.get_device_name(0)
        mem = torch.cuda.get_device_properties(0).total_memory / 2**30
        print(f"device: {name}, {mem:.0f} GiB; {cpu_and_memory()}")
    else:
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
        print(f"NO CUDA DEVICE: running on CPU ({cpu_and_memory()}) at small sizes; these numbers check the "
              "script, they are not the GPU goals")
    res: dict = {"machine": cpu_and_memory(), "cuda": torch.cuda.get_device_name(0) if cuda else None,
                 "small": small, "torch": torch.__version__, "version": s2n.__version__}
    roi_px = 256 if small else 1100
    batches = [1, 2, 4] if small else [1, 2, 4, 8, 16, 32, 64]
    res["unet"] = u = bench_unet(device, roi_px, batches, runs=2 if small else 5)
    print(f"U-Net on {device}, {roi_px} px ROIs -> {u['net_input_px'][0]} px 10 m inputs")
    print(f"{'batch':>6}{'fp32 Mpx/s':>12}{'img/s':>8}{'fp16 CL Mpx/s':>15}{'img/s':>8}")
    for r in u["rows"]:
        print(f"{r['batch']:>6}{r['fp32_mpx_s']:>12}{r['fp32_images_s']:>8}{r.get('fp16_cl_mpx_s', '-'):>15}"
              f"{r.get('fp16_cl_images_s', '-'):>8}")
    verdict = ("within 1e-3: usable" if u["fp16_within_1e-3"] else "NOT within 1e-3: not usable") \
        if u["fp16_unet_hm_max_abs_diff"] is not None else u["fp16_note"]
    print(f"fp16 channels_last: unet_hm max |fp16 - fp32| = {u['fp16_unet_hm_max_abs_diff']} ({verdict})")
    best = max(r["fp32_mpx_s"] for r in u["rows"])
    print(f"best fp32 U-Net: {best} Mpx/s (goal on an H100-class card: >= 250)")
    tmp = Path(tempfile.mkdtemp(prefix="s2n-gpu-bench-"))
    try:
        cpu_workers = args.cpu_workers or (1 if small else max(1, (os.cpu_count() or 2) - 2))
        n_rois = args.rois or (4 if small else 64)
        res["end_to_end"] = e = bench_end_to_end(tmp, n_rois=n_rois, roi_px=roi_px, cpu_workers=cpu_workers,
                                                 net_batch=args.net_batch_size, device=device)
        print(f"staged synthetic build: {e['rois']} ROIs ({e['images']} images) of {roi_px} px on {cpu_workers} "
              f"CPU workers + 1 GPU worker: {e['seconds']} s, {e['rois_per_s']} ROIs/s; GPU worker busy "
              f"{e['gpu_worker_busy_fraction']:.0%} of the build ({e['gpu_worker_tasks']} network tasks)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
