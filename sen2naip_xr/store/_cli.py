"""``sen2naip-xr inspect`` and ``sen2naip-xr export``."""

from __future__ import annotations

import argparse

from sen2naip_xr._safe import dumps_strict, redact


def _storage_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the store's location (e.g. account_name=NAME); credentials are better "
                        "given by the storage client's environment variables (see README: cloud storage)")


def register(subparsers) -> None:
    p = subparsers.add_parser("inspect", help="summarize a dataset store (counts, failures, splits, QA, history)",
                              description="Summarize a dataset store (a folder or a URL: az://, s3://, gs://): ROIs "
                                          "written and failed (by stage), the train/test split, median QA, "
                                          "harmonizers. --verify reads every chunk; --history lists the versions.")
    p.add_argument("store", help="the store written by `sen2naip-xr build` (folder or URL)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--failures", action="store_true", help="also list every failure (ROI, stage, reason)")
    p.add_argument("--verify", action="store_true",
                   help="read every chunk of every ROI (checksums) and list corrupt or incomplete ROIs (exit 1 if any)")
    p.add_argument("--history", action="store_true", help="list the store's versions (commits, their runs, tags)")
    p.add_argument("--tag", default=None, help="inspect the version tagged TAG")
    p.add_argument("--snapshot", default=None, help="inspect the version with this snapshot id")
    _storage_option(p)
    p.set_defaults(func=_inspect)
    e = subparsers.add_parser("export", help="write the published layout: per ROI LR.tif, HR.tif, metadata.json",
                              description="Export a store to the published SEN2NAIP layout (GeoTIFF + metadata.json), "
                                          "readable without icechunk; to a folder or a URL.")
    e.add_argument("store", help="the store (folder or URL)")
    e.add_argument("--out", required=True, help="output folder or URL (az://, s3://, gs://)")
    e.add_argument("--kind", choices=["cross-sensor", "synthetic"], action="append",
                   help="part(s) to export (default: both)")
    e.add_argument("--tag", default=None, help="export the version tagged TAG")
    _storage_option(e)
    e.set_defaults(func=_export)


def _inspect(args: argparse.Namespace) -> int:
    from sen2naip_xr.store._location import parse_storage_options
    from sen2naip_xr.store._open import existing_store, summarize

    opts = parse_storage_options(args.storage_option)
    store = existing_store(args.store, opts, tag=args.tag, snapshot=args.snapshot)
    info = summarize(store, tag=args.tag, snapshot=args.snapshot)
    if args.failures:
        info["failures"] = store.failures().to_dict(orient="records")
    if args.history:
        info["history"] = store.history()
    if args.verify:
        info["damaged"] = store.verify().to_dict(orient="records")
    rc = 1 if info.get("damaged") else 0
    if args.json:
        print(redact(dumps_strict(info, indent=1, sort_keys=True)))
        return rc
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
    for f in info.get("failures", []):
        print(f"  failed {f['kind']}/{f['roi']} ({f['roi_id']}) at {f['stage']}: {redact(f['reason'])[:160]}")
    for h in info.get("history", []):
        tags = f" [tag {', '.join(h['tags'])}]" if h["tags"] else ""
        print(f"  {h['snapshot']} {h['written_at'][:19]}  {h['message']}{tags}")
    if args.verify:
        if info["damaged"]:
            print(f"  {len(info['damaged'])} damaged ROI(s); rewrite them with the same build command plus --repair:")
            for d in info["damaged"]:
                print(f"    {d['kind']}/{d['roi']}: {redact(d['problem'])}")
        else:
            print("  verified: every chunk of every finished ROI reads back and matches its checksum")
    return rc


def _export(args: argparse.Namespace) -> int:
    from sen2naip_xr.store._export import export
    from sen2naip_xr.store._location import parse_storage_options

    kinds = tuple(args.kind) if args.kind else ("cross-sensor", "synthetic")
    folders = export(args.store, args.out, kinds=kinds, storage_options=parse_storage_options(args.storage_option),
                     tag=args.tag)
    print(f"exported {len(folders)} ROIs to {args.out}")
    return 0
