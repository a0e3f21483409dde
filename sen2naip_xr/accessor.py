"""The ``.s2n`` accessor: each method is the free function of the same name with the DataArray as its image.

The methods are generated from the free functions, so the accessor cannot drift from them: each has the
function's signature without its first parameter (``help(da.s2n.degrade)`` lists every option), its
docstring, and a body that delegates in one line.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import xarray as xr

import sen2naip_xr.degrade as _degrade
import sen2naip_xr.harmonize as _harmonize
import sen2naip_xr.ops as _ops

#: The free functions the accessor offers, in the order ``dir()`` lists them.
FUNCTIONS: tuple[Callable[..., Any], ...] = (
    _ops.histogram_match, _ops.blank_mask, _ops.is_blank, _ops.blur_downsample, _ops.add_noise,
    _harmonize.harmonize, _degrade.degrade,
)


def delegate(func: Callable[..., Any]) -> Callable[..., Any]:
    """An accessor method calling ``func(self._obj, ...)``, with ``func``'s signature minus its first
    parameter, and its docstring.

    Parameters
    ----------
    func
        A free function whose first parameter is the image (a DataArray).

    Returns
    -------
    callable
        The method, for the accessor class's namespace.
    """
    sig = inspect.signature(func)
    first, *rest = sig.parameters.values()

    @functools.wraps(func)
    def method(self: S2NAccessor, *args: Any, **kwargs: Any) -> Any:
        return func(self._obj, *args, **kwargs)

    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    method.__signature__ = sig.replace(parameters=[self_param, *rest])  # type: ignore[attr-defined]
    del method.__wrapped__  # inspect.signature must read __signature__, not the function's own
    method.__qualname__ = f"S2NAccessor.{func.__name__}"
    method.__doc__ = (f"``da.s2n.{func.__name__}(...)`` is ``sen2naip_xr.{func.__name__}(da, ...)``, with ``da`` "
                      f"as ``{first.name}``.\n\n" + inspect.cleandoc(func.__doc__ or ""))
    return method


@xr.register_dataarray_accessor("s2n")
class S2NAccessor:
    """``image.s2n.<operator>(...)`` == ``sen2naip_xr.<operator>(image, ...)``. Does no IO and no compute."""

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    locals().update({f.__name__: delegate(f) for f in FUNCTIONS})
