"""``sen2naip-xr inspect`` and ``sen2naip-xr export``."""

from __future__ import annotations

import argparse
from pathlib import Path

from sen2naip_xr._safe import dumps_strict, redact


def register(subparsers) -> None:
    p = subparsers.add_parser("inspect", help="summarize a dataset store (counts, failures, splits, QA)",
                              description="Summarize a dataset store: ROIs written and failed (by stage), the "
                                          "train/test split, median QA, harmonizers. --json for machines.")
    p.add_argument("store", type=Path, help="the Zarr store folder written by `sen2naip-xr build`")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--failures", action="store_true", help="also list every failure (ROI, stage, reason)")
    p.set_defaults(func=_inspect)
    e = subparsers.add_parser("export", help="write the published layout: per ROI LR.tif, HR.tif, metadata.json",
                              description="Export a store to the published SEN2NAIP layout (GeoTIFF + metadata.json).")
    e.add_argument("store", type=Path, help="the Zarr store folder")
    e.add_argument("--out", type=Path, required=True, help="output folder")
    e.add_argument("--kind", choices=["cross-sensor", "synthetic"], action="append",
                   help="part(s) to export (default: both)")
    e.set_defaults(func=_export)


def _inspect(args: argparse.Namespace) -> int:
    from sen2naip_xr.store._layout import DatasetStore
    from sen2naip_xr.store._open import summarize

    info = summarize(args.store)
    if args.failures:
        info["failures"] = DatasetStore(args.store).failures().to_dict(orient="records")
    if args.json:
        print(redact(dumps_strict(info, indent=1, sort_keys=True)))
        return 0
    print(f"store {info['store']} (sen2naip_xr {info['version']}){'; has demo_truth' if info['demo_truth'] else ''}")
    for kind, part in info["parts"].items():
        line = f"  {kind:<13} {part['written']:>5} written  {part['failed']:>5} failed"
        if part["failures_by_stage"]:
            line += "  (" + ", ".join(f"{k}: {v}" for k, v in part["failures_by_stage"].items()) + ")"
        print(line)
        if part["split"]:
            print("                split " + ", ".join(f"{k} {v}" for k, v in part["split"].items()))
        if "QA_1_median_px" in part:
            print(f"                median QA1 {part['QA_1_median_px']:.3f} px, QA2 {part['QA_2_median_deg']:.3f} deg")
        if part.get("harmonizers"):
            print("                harmonizers " + ", ".join(part["harmonizers"]))
        if part["in_progress"]:
            print(f"                {len(part['in_progress'])} writes in progress or left by a killed run")
    for f in info.get("failures", []):
        print(f"  failed {f['kind']}/{f['roi']} ({f['roi_id']}) at {f['stage']}: {redact(f['reason'])[:160]}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from sen2naip_xr.store._export import export

    kinds = tuple(args.kind) if args.kind else ("cross-sensor", "synthetic")
    folders = export(args.store, args.out, kinds=kinds)
    print(f"exported {len(folders)} ROIs to {args.out}")
    return 0
