"""Planetary Computer quick start: sample ROIs, find S2/NAIP pairs, load them lazily, screen clouds.

    python examples/planetary_computer_quickstart.py --rois 5 --out pc-quickstart
    python examples/planetary_computer_quickstart.py --catalog http://127.0.0.1:8081 --bbox=-117.2,32.8,-116.9,33.1

The steps are the package's catalog and load stages:

1. ``sample_rois``: cross-sensor ROIs (484 px x 2.5 m) drawn by a hard-core process in ``--bbox``;
2. ``search_pairs``: NAIP captures over each ROI, then Sentinel-2 L2A within ``--max-days`` of each;
3. ``load_pairs``: lazy NAIP (2.5 m), Sentinel-2 (10 m) and SCL cubes, one Dask task per ROI; hrefs
   are signed when a task runs, NAIP is read from the COG overview nearest to 2.5 m;
4. ``screen_clouds``: True where a pair's SCL has no cloud, shadow or no-data pixel;
5. the clear pairs are computed and written to Zarr; failed reads are listed, not raised.

It needs the network (Planetary Computer by default; ``--catalog`` takes any STAC API with the
``naip`` and ``sentinel-2-l2a`` collections in Planetary Computer's layout). Importing it, and
``--help``, work offline.
"""

from __future__ import annotations

import argparse
from pathlib import Path

PLANETARY_COMPUTER_STAC = "https://planetarycomputer.microsoft.com/api/stac/v1"


def _bbox(text: str) -> tuple[float, float, float, float]:
    try:
        w, s, e, n = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not W,S,E,N in degrees") from None
    return w, s, e, n


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", default=PLANETARY_COMPUTER_STAC, help="STAC API URL (default: Planetary Computer)")
    ap.add_argument("--bbox", type=_bbox, default=(-117.2, 32.8, -116.9, 33.1),
                    help="W,S,E,N in degrees where ROIs are drawn; write --bbox=-117.2,... (a negative W "
                         "would otherwise be read as an option). Default: near San Diego")
    ap.add_argument("--datetime", default="2020-01-01/2022-12-31", help="NAIP search interval (RFC 3339)")
    ap.add_argument("--rois", type=int, default=5, help="number of ROIs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-days", type=float, default=1.0, help="max |S2 date - NAIP date| in days")
    ap.add_argument("--max-cloud-cover", type=float, default=50.0, help="S2 scene eo:cloud_cover bound (percent)")
    ap.add_argument("--no-sign", action="store_true",
                    help="do not sign hrefs (a catalog whose assets are public or local)")
    ap.add_argument("--native", action="store_true", help="read NAIP at full resolution, not from overviews")
    ap.add_argument("--out", type=Path, default=Path("pc-quickstart"), help="output folder (pairs.zarr, pairs.csv)")
    return ap.parse_args(argv)


def _for_zarr(da, name: str):
    """A computed cube as a Dataset Zarr can store: failure records dropped, object coords as str."""
    da = da.drop_vars("load_error", errors="ignore")
    return da.assign_coords({c: da[c].astype(str) for c in da.coords if da[c].dtype == object}).to_dataset(name=name)


def quickstart(
    *,
    catalog: str = PLANETARY_COMPUTER_STAC,
    bbox: tuple[float, float, float, float] = (-117.2, 32.8, -116.9, 33.1),
    datetime: str = "2020-01-01/2022-12-31",
    n_rois: int = 5,
    seed: int = 0,
    max_days: float = 1.0,
    max_cloud_cover: float = 50.0,
    sign: bool = True,
    use_overviews: bool = True,
    out: Path = Path("pc-quickstart"),
    rois=None,
    load_config=None,
) -> int:
    """The quick start as a function (``rois`` and ``load_config`` override the sampled ROIs and
    ``LoadConfig(use_overviews=...)``, e.g. to run it against a local test catalog)."""
    import dask

    import sen2naip_xr as s2n
    from sen2naip_xr.load import NoSigner

    # 1-2. ROIs and candidate pairs (hrefs signed by the search are re-signed when read)
    if rois is None:
        rois = s2n.sample_rois(n_rois, seed=seed, region=bbox, kind="cross-sensor")
    cfg = s2n.SearchConfig(catalog_url=catalog, max_cloud_cover=max_cloud_cover, sign=sign)
    cands = s2n.search_pairs(rois, datetime=datetime, config=cfg, pairing=s2n.PairingConfig(max_days=max_days),
                             progress=False)
    print(cands.summary())
    if cands.pairs.empty:
        return 1
    out.mkdir(parents=True, exist_ok=True)
    cands.pairs.to_csv(out / "pairs.csv", index=False)

    # 3. lazy cubes, one Dask task per ROI: nothing is read yet
    cubes = s2n.load_pairs(cands, config=load_config or s2n.LoadConfig(use_overviews=use_overviews),
                           signer=None if sign else NoSigner())
    print(f"NAIP {dict(cubes.naip.sizes)}, S2 {dict(cubes.s2.sizes)}; {cubes.naip.data.npartitions} tasks per cube")

    # 4. cloud screening reads only the SCL layer
    clear = s2n.screen_clouds(cubes.scl).compute()
    print(f"clear pairs: {int(clear.sum())} of {int((cubes.naip['item_id'] != '').sum())}")

    # 5. read NAIP, S2 and SCL in one pass; failed reads are records (their pixels NaN), not exceptions
    naip, s2, scl = dask.compute(cubes.naip, cubes.s2, cubes.scl)
    failures = s2n.load_failures(naip, s2, scl)
    if len(failures):
        print(f"{len(failures)} failed reads:\n{failures.to_string(index=False)}")
    store = out / "pairs.zarr"
    clear = clear.drop_vars("load_error", errors="ignore")
    _for_zarr(naip, "naip").assign(clear=clear).to_zarr(store, group="naip", mode="w", zarr_format=2)
    _for_zarr(s2, "s2").assign(scl=scl.drop_vars("load_error"), clear=clear).to_zarr(
        store, group="s2", mode="a", zarr_format=2)
    print(f"wrote {store} (groups naip, s2; variable 'clear' marks the cloud-free pairs) and {out / 'pairs.csv'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    return quickstart(catalog=a.catalog, bbox=a.bbox, datetime=a.datetime, n_rois=a.rois, seed=a.seed,
                      max_days=a.max_days, max_cloud_cover=a.max_cloud_cover, sign=not a.no_sign,
                      use_overviews=not a.native, out=a.out)


if __name__ == "__main__":
    raise SystemExit(main())
