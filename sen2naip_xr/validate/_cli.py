"""``sen2naip-xr validate STORE``: the paper's Table 2 for a store's cross-sensor test split."""

from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    from sen2naip_xr.validate import markdown_table, validate_store

    table = validate_store(args.store, args.out, methods=args.methods, percentiles=args.percentiles,
                           split=None if args.split == "all" else args.split, model=args.model, seed=args.seed,
                           noise=args.noise, device=args.device)
    print(markdown_table(table))
    print(f"wrote {args.out}/validation.md, validation.csv and fig9_comparison.png")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="Table-2 metrics of every harmonizer on the cross-sensor test split",
                       description="Degrade the raw NAIP of each cross-sensor ROI with every method and "
                                   "percentile and compare with its Sentinel-2 image (Pearson, SAD, PBIAS, MAE, "
                                   "RMSE, per image then averaged). Writes Markdown, CSV and a PNG.")
    p.add_argument("store", help="a store written by `sen2naip-xr build cross-sensor` (or the demo)")
    p.add_argument("--out", default="validation", help="output folder (default: validation)")
    p.add_argument("--methods", nargs="+", default=["identity", "gamma_lognormal", "gamma_mvn", "unet", "vae"])
    p.add_argument("--percentiles", nargs="+", type=float, default=[10, 25, 50, 75, 90])
    p.add_argument("--split", choices=["test", "train", "all"], default="test")
    p.add_argument("--model", default=None, help="a fitted model JSON (sen2naip-xr fit); default: published")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise", choices=["real", "gaussian", "none"], default="real")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_run)
