"""Procedural NAIP-like scenes: the embedded, offline example data of the demo, examples and benchmarks.

A scene is drawn from ``numpy.random.default_rng(seed)`` only: agricultural parcels (bare soil, crops with
bright NIR, dry grass), a river or pond (dark, NIR near zero), straight roads, buildings with bright roofs
and shadows, and multi-scale texture; quantised to 8 bits like real NAIP (DN/255).
"""

from __future__ import annotations

import numpy as np
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr
from scipy import ndimage

from sen2naip_xr._const import BANDS, HR_RES
from sen2naip_xr.errors import InputError

#                 R     G     B     NIR
_COVER = {
    "soil": (0.45, 0.40, 0.34, 0.48),
    "crop": (0.16, 0.24, 0.17, 0.62),
    "grass": (0.36, 0.35, 0.27, 0.42),
    "forest": (0.10, 0.15, 0.11, 0.48),
    "water": (0.08, 0.12, 0.14, 0.04),
    "road": (0.52, 0.52, 0.50, 0.44),
    "roof": (0.70, 0.66, 0.62, 0.58),
    "shadow": (0.05, 0.06, 0.08, 0.07),
}


def _field(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Smooth zero-mean unit-sd random field with correlation length ``scale`` pixels (made at low res)."""
    step = max(1, int(scale // 4))
    small = (shape[0] // step + 2, shape[1] // step + 2)
    f = ndimage.gaussian_filter(rng.standard_normal(small), scale / step, mode="wrap")
    f = ndimage.zoom(f, step, order=1)[: shape[0], : shape[1]]
    return (f - f.mean()) / (f.std() + 1e-12)


def make_scene(size: int = 1100, seed: int = 0) -> np.ndarray:
    """A ``(4, size, size)`` float32 NAIP-like reflectance array with values k/255."""
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise InputError(f"size={size!r} must be a positive integer (pixels per side), e.g. 1100")
    rng = np.random.default_rng(seed)
    shape = (size, size)
    img = np.empty((4, size, size), np.float32)
    # parcels: a jittered grid of rectangles, one cover class and brightness offset each
    n = max(2, size // 180)
    ys = np.sort(np.concatenate(([0, size], rng.integers(size // 10, size - size // 10, n))))
    xs = np.sort(np.concatenate(([0, size], rng.integers(size // 10, size - size // 10, n))))
    covers = ["soil", "crop", "grass", "forest", "crop"]
    for i in range(len(ys) - 1):
        for j in range(len(xs) - 1):
            c = np.array(_COVER[covers[rng.integers(len(covers))]], np.float32)
            c = c + rng.normal(0, 0.03, 4).astype(np.float32)
            img[:, ys[i]:ys[i + 1], xs[j]:xs[j + 1]] = c[:, None, None]
    vigour = _field(rng, shape, size / 20)
    img[3] += 0.06 * vigour
    img[:3] -= 0.015 * vigour
    # river / pond
    water = _field(rng, shape, size / 8) < -1.2
    img[:, water] = np.array(_COVER["water"], np.float32)[:, None]
    # roads
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(3):
        ang, off = rng.uniform(0, np.pi), rng.uniform(-0.3, 0.3) * size
        dist = np.abs((xx - size / 2) * np.sin(ang) - (yy - size / 2) * np.cos(ang) - off)
        road = dist < rng.uniform(2, 4)
        img[:, road] = np.array(_COVER["road"], np.float32)[:, None]
    # buildings: bright roofs with a shadow to the south-east (clipped to fit scenes under 22 pixels)
    for _ in range(max(4, size // 60) if size > 5 else 0):
        h, w = np.minimum(rng.integers(6, 18, 2), size - 5)
        y0, x0 = rng.integers(0, size - h - 4), rng.integers(0, size - w - 4)
        img[:, y0 + 3:y0 + h + 3, x0 + 3:x0 + w + 3] = np.array(_COVER["shadow"], np.float32)[:, None, None]
        roof = np.array(_COVER["roof"], np.float32) + rng.normal(0, 0.05, 4).astype(np.float32)
        img[:, y0:y0 + h, x0:x0 + w] = roof[:, None, None]
    # texture at two scales
    t1, t2 = _field(rng, shape, 3.0), rng.standard_normal(shape)
    img += (0.02 * t1 + 0.008 * t2).astype(np.float32)[None] * np.where(water, 0.2, 1.0)[None]
    return (np.round(np.clip(img, 0, 1) * 255) / 255).astype(np.float32)


def example_image(size: int = 1100, seed: int = 0, *, epsg: int = 32611,
                  origin: tuple[float, float] = (500_000.0, 3_650_000.0), chunks: dict | None = None) -> xr.DataArray:
    """The embedded example: a NAIP-like scene as a georeferenced DataArray (band, y, x) at 2.5 m.

    Coordinates are pixel centres in UTM (``epsg``), upper-left corner at ``origin``; the CRS is written
    with rioxarray. ``chunks`` makes it dask-backed.

    Parameters
    ----------
    size
        Side in pixels (1100: a synthetic ROI; 484: a cross-sensor one).
    seed
        Seed of the scene.
    epsg, origin
        CRS and upper-left corner (metres) of the grid.
    chunks
        Dask chunks, e.g. ``{"y": 256, "x": 256}``; None gives numpy data.

    Returns
    -------
    xarray.DataArray
        float32 ``(band, y, x)`` reflectance in [0, 1], bands R, G, B, NIR, 8-bit levels like NAIP.
    """
    data = make_scene(size, seed)
    x = origin[0] + HR_RES * (np.arange(size) + 0.5)
    y = origin[1] - HR_RES * (np.arange(size) + 0.5)
    da = xr.DataArray(data, dims=("band", "y", "x"), coords={"band": list(BANDS), "y": y, "x": x},
                      name="naip", attrs={"long_name": "NAIP-like reflectance (procedural example)",
                                          "scene_seed": seed})
    da = da.rio.write_crs(f"EPSG:{epsg}")
    return da.chunk(chunks) if chunks else da
