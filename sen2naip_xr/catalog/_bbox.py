"""Checks of a (west, south, east, north) bbox in degrees, with the likely fix when lat and lon are swapped."""

from __future__ import annotations

import math

from sen2naip_xr.errors import InputError

__all__ = ["check_bbox"]


def _valid(w: float, s: float, e: float, n: float) -> bool:
    return -180 <= w < e <= 180 and -90 <= s < n <= 90


def _in_conus(w: float, s: float, e: float, n: float) -> bool:
    from shapely.geometry import box

    from sen2naip_xr.catalog._roi import CONUS

    return _valid(w, s, e, n) and CONUS.intersects(box(w, s, e, n))


def check_bbox(bbox, *, arg: str = "region") -> tuple[float, float, float, float]:
    """``bbox`` as four floats (W, S, E, N), or an :class:`InputError` naming the problem and the fix.

    Out-of-range or inverted values raise, and so does a bbox outside the contiguous US (where NAIP is) whose
    lat/lon-swapped reading (S, W, N, E) lies inside it: the message names the likely swap.
    """
    try:
        w, s, e, n = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise InputError(f"{arg}={bbox!r} is not W,S,E,N in degrees, e.g. -117.2,32.8,-116.9,33.1") from None
    if not all(math.isfinite(v) for v in (w, s, e, n)):
        raise InputError(f"{arg}={(w, s, e, n)!r} has non-finite values; pass W,S,E,N in degrees")
    swapped = (s, w, n, e)
    hint = (f"; it looks like latitude and longitude are swapped: W,S,E,N is lon_min,lat_min,lon_max,lat_max, "
            f"i.e. {','.join(f'{v:g}' for v in swapped)}")
    if not _valid(w, s, e, n):
        why = ("longitudes must lie in [-180, 180] and latitudes in [-90, 90], with W < E and S < N")
        raise InputError(f"{arg}={(w, s, e, n)!r} is not a bbox W,S,E,N: {why}"
                         + (hint if _valid(*swapped) else ""))
    if not _in_conus(w, s, e, n) and _in_conus(*swapped):
        raise InputError(f"{arg}={(w, s, e, n)!r} lies outside the contiguous US, where NAIP is" + hint)
    return w, s, e, n
