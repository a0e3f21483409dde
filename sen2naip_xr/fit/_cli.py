"""``sen2naip-xr fit STORE --out model.json``: fit the degradation model from cross-sensor pairs."""

from __future__ import annotations

import argparse
from pathlib import Path


def fit_store(store, out, *, split: str | None = "train", figures: str | Path | None = None):
    """Fit on the cross-sensor ROIs of ``split``; save the model JSON to ``out`` and the Fig. 4/6 PNGs."""
    from sen2naip_xr.figures import gamma_density_figure, sigma_sweep_figure
    from sen2naip_xr.fit import fit_model
    from sen2naip_xr.store import cross_sensor_pairs

    pairs = cross_sensor_pairs(store, split=split)
    s2 = pairs.s2.rename(y_lr="y", x_lr="x")
    res = fit_model(pairs.naip, s2, source=f"fitted on {store} (split={split}, {pairs.sizes['roi']} ROIs)")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    res.model.save(out)
    fig_dir = Path(figures) if figures else Path(out).parent
    fig_dir.mkdir(parents=True, exist_ok=True)
    gamma_density_figure(res, fig_dir / "fig4_gamma_density.png")
    sigma_sweep_figure(res, fig_dir / "fig6_sigma_sweep.png")
    return res


def _run(args: argparse.Namespace) -> int:
    res = fit_store(args.store, args.out, split=None if args.split == "all" else args.split, figures=args.figures)
    print(res.summary().to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"wrote {args.out} (gamma MVN, sigma per band, noise matrix) and the Fig. 4 / Fig. 6 PNGs")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit", help="fit gamma, blur sigma and noise from the cross-sensor pairs of a store",
                       description="Optimal gamma per pair and band (MVN + KS per band), blur sigma per band by "
                                   "an MAE sweep, and a reflectance-to-noise matrix from the S2 images; writes a "
                                   "model JSON that `build`, `validate` and degrade(model=...) accept.")
    p.add_argument("store", help="a store with a cross-sensor part")
    p.add_argument("--out", default="model.json", help="model JSON to write (default: model.json)")
    p.add_argument("--split", choices=["train", "test", "all"], default="train")
    p.add_argument("--figures", default=None, help="folder for the PNG figures (default: beside --out)")
    p.set_defaults(func=_run)
