"""The one place where numpy kernels are lifted onto xarray / Dask.

Four shapes of operation cover every operator:

* :func:`pointwise` -- elementwise (gamma): ``map_blocks`` on any chunking.
* :func:`per_image` -- needs whole images (histogram matching, networks): spatial dims merged into one chunk
  per image, leading dims (roi, time, ...) stay chunked, so a task sees a batch of whole images.
* :func:`downsample` -- the fused blur + downsample: overlap of 8 source pixels where neighbours matter, LR
  chunks = HR chunks / factor.
* :func:`positional` -- random fields: each block learns its global position so its random numbers depend
  on (key, position), never on chunking.

Numpy-backed inputs call the kernel directly; nothing here computes a dask array.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import dask.array as dsa
import numpy as np
import xarray as xr
from dask.base import tokenize

from sen2naip_xr.errors import InputError

SPATIAL = ("y", "x")
CORE = ("band", "y", "x")
_HALO = 8


def is_dask(da: xr.DataArray) -> bool:
    return isinstance(da.data, dsa.Array)


def _name(op: str, *args: Any) -> str:
    return f"s2n-{op}-{tokenize(*args)}"


def _wrap(template: xr.DataArray, data: Any, *, attrs: dict | None = None, drop_spatial: bool = False,
          spatial_coords: dict | None = None, name: str | None = None) -> xr.DataArray:
    coords: dict[str, Any] = {  # Variables, not DataArrays: building one per coordinate is slow
        k: v for k, v in template.coords.variables.items() if not (drop_spatial and set(v.dims) & set(SPATIAL))
    }
    if spatial_coords:
        coords.update(spatial_coords)
    out = xr.DataArray(data, dims=template.dims, coords=coords, attrs=dict(template.attrs), name=name)
    if attrs:
        out.attrs.update(attrs)
    return out


def pointwise(func: Callable[..., np.ndarray], da: xr.DataArray, *, op: str, token: Any, dtype=np.float32,
              attrs: dict | None = None, **kwargs: Any) -> xr.DataArray:
    """Apply an elementwise kernel ``func(block, band_slice=..., **kwargs)`` that may depend on the band.

    The kernel receives ``band_slice``, the global band indices of its block, so per-band parameters
    (e.g. one gamma per band) follow the band chunking.
    """
    band_axis = da.dims.index("band")
    if is_dask(da):
        def block_func(block, block_info=None):
            loc = block_info[0]["array-location"][band_axis]
            return func(block, band_slice=slice(loc[0], loc[1]), **kwargs)

        block_func.__name__ = op
        data = da.data.map_blocks(block_func, dtype=dtype, meta=np.empty((0,) * da.ndim, dtype),
                                  name=_name(op, da.data, token))
    else:
        data = func(np.asarray(da.data), band_slice=slice(0, da.sizes["band"]), **kwargs)
    return _wrap(da, data, attrs=attrs)


def _merge_spatial(arr: dsa.Array, ncore: int) -> dsa.Array:
    chunks = {arr.ndim - i - 1: -1 for i in range(ncore)}
    return arr.rechunk(chunks)


def per_image(func: Callable[..., np.ndarray], da: xr.DataArray, *others: xr.DataArray, op: str, token: Any,
              core: Sequence[str] = CORE, dtype=np.float32, attrs: dict | None = None,
              out_core_sizes: dict[str, int] | None = None, **kwargs: Any) -> xr.DataArray:
    """Apply ``func(image_block, *other_blocks, **kwargs)`` to whole images.

    ``da`` and ``others`` end with the ``core`` dims (others' spatial sizes may differ; their leading dims
    must be a subset of ``da``'s and broadcast). Leading dims stay chunked; each task gets whole images.
    The output has ``da``'s dims, chunked like ``da``.
    """
    core = tuple(core)
    lead = [d for d in da.dims if d not in core]
    renamed = []
    for k, o in enumerate(others):
        extra = [d for d in o.dims if d not in core and d not in lead]
        if extra:
            raise InputError(f"reference has dims {extra} that image {tuple(da.dims)} lacks; drop or select them")
        o = o.rename({d: f"{d}__{k}" for d in core if d in o.dims and d != "band"})
        renamed.append(o)
    in_core = [list(core)] + [[d if d == "band" else f"{d}__{k}" for d in core] for k in range(len(others))]

    def kernel(*blocks):
        return func(*blocks, **kwargs)

    kernel.__name__ = "s2n_" + op.replace("-", "_")  # dask splits gufunc names on "-"
    data_chunks = da.chunks if is_dask(da) else None
    out = xr.apply_ufunc(
        kernel,
        da,
        *renamed,
        input_core_dims=in_core,
        output_core_dims=[list(core)],
        dask="parallelized",
        output_dtypes=[dtype],
        dask_gufunc_kwargs={"allow_rechunk": True, "output_sizes": out_core_sizes or {}},
        keep_attrs="override",
    )
    out = out.transpose(*da.dims)
    if data_chunks is not None:
        out = out.chunk(dict(zip(da.dims, data_chunks, strict=True)))
    out = out.assign_coords({k: v for k, v in da.coords.items() if k not in out.coords})
    if attrs:
        out.attrs.update(attrs)
    return out


def aligned_chunks(chunks: Sequence[int], factor: int, minimum: int = 2 * _HALO) -> tuple[int, ...]:
    """Chunks along one spatial axis with every boundary on a multiple of ``factor`` and none smaller than
    ``minimum`` (the overlap halo must fit in a neighbour); unchanged when they already are."""
    chunks = tuple(int(c) for c in chunks)
    if len(chunks) == 1 or (all(c % factor == 0 for c in chunks[:-1]) and min(chunks) >= minimum):
        return chunks
    total = sum(chunks)
    target = max(minimum, int(round(max(chunks) / factor)) * factor)
    out = [target] * (total // target)
    rest = total - sum(out)
    if rest and rest < minimum and out:
        out[-1] += rest
    elif rest:
        out.append(rest)
    return tuple(out)


def downsample(kernel: Callable[..., np.ndarray], da: xr.DataArray, *, factor: int, op: str, token: Any,
               band_params: Sequence[Any], attrs: dict | None = None, positional: bool = False,
               whole_images: bool = False, **kwargs: Any) -> xr.DataArray:
    """Lift the fused blur + downsample kernel; LR chunks are HR chunks / ``factor``.

    ``kernel(block, params, global_shape=, in_offset=, out_start=, out_shape=, factor=, **kwargs)`` gets the block
    (halo included), its bands' entries of ``band_params`` and where the block sits. With ``positional`` it
    also gets ``lead_offset=`` (the block's start along every axis before y, x) and ``lr_global_shape=`` (the
    full LR shape), to draw position-keyed random numbers on the LR grid (:func:`positional`'s contract).
    With ``whole_images`` every block holds whole images (the kernel reduces over y, x); the LR chunks are
    the same as without it.
    """
    ny, nx = da.sizes["y"], da.sizes["x"]
    oy, ox = ny // factor, nx // factor
    band_axis = da.dims.index("band")
    spatial_coords = {}
    for dim, n_out in (("y", oy), ("x", ox)):
        if dim in da.coords and da.coords[dim].ndim == 1 and da.sizes[dim] >= factor:
            c = np.asarray(da.coords[dim].values)
            if np.issubdtype(c.dtype, np.number):
                blocks = c[: n_out * factor].reshape(n_out, factor)
                spatial_coords[dim] = (dim, blocks.mean(axis=1).astype(c.dtype), dict(da.coords[dim].attrs))
    lr_shape = (*da.shape[:-2], oy, ox)
    if not is_dask(da):
        if positional:
            kwargs = {**kwargs, "lead_offset": (0,) * (da.ndim - 2), "lr_global_shape": lr_shape}
        data = kernel(np.asarray(da.data), band_params, global_shape=(ny, nx), in_offset=(0, 0),
                      out_start=(0, 0), out_shape=(oy, ox), factor=factor, **kwargs)
        out = _wrap(da, data, attrs=attrs, drop_spatial=True, spatial_coords=spatial_coords)
        return out
    arr = da.data
    yax, xax = arr.ndim - 2, arr.ndim - 1
    cy = aligned_chunks(arr.chunks[yax], factor)
    cx = aligned_chunks(arr.chunks[xax], factor)
    if whole_images:
        final_lr = (_lr_chunks(cy, factor, oy), _lr_chunks(cx, factor, ox))
        cy, cx = (ny,), (nx,)
    arr = arr.rechunk({yax: cy, xax: cx})
    lead_starts = [np.concatenate(([0], np.cumsum(c)[:-1])) for c in arr.chunks[:-2]]
    starts_y = np.concatenate(([0], np.cumsum(cy)[:-1]))
    starts_x = np.concatenate(([0], np.cumsum(cx)[:-1]))
    band_starts = np.concatenate(([0], np.cumsum(arr.chunks[band_axis])[:-1]))
    halo = arr if len(cy) == 1 and len(cx) == 1 else dsa.overlap.overlap(
        arr, depth={yax: _HALO if len(cy) > 1 else 0, xax: _HALO if len(cx) > 1 else 0}, boundary="none")
    out_chunks = tuple(arr.chunks[:-2]) + (tuple(c // factor for c in cy), tuple(c // factor for c in cx))
    # the last block keeps floor(n / factor): fix its LR size
    out_chunks = out_chunks[:-2] + (
        out_chunks[-2][:-1] + (oy - sum(out_chunks[-2][:-1]),),
        out_chunks[-1][:-1] + (ox - sum(out_chunks[-1][:-1]),),
    )

    def block_func(block, block_id=None):
        iy, ix, ib = block_id[yax], block_id[xax], block_id[band_axis]
        y0, x0 = int(starts_y[iy]), int(starts_x[ix])
        in_y = max(y0 - _HALO, 0) if len(cy) > 1 else 0
        in_x = max(x0 - _HALO, 0) if len(cx) > 1 else 0
        b0 = int(band_starts[ib])
        params = band_params[b0: b0 + block.shape[band_axis]]
        extra = {}
        if positional:
            extra = {"lead_offset": tuple(int(lead_starts[a][block_id[a]]) for a in range(arr.ndim - 2)),
                     "lr_global_shape": lr_shape}
        return kernel(block, params, global_shape=(ny, nx), in_offset=(in_y, in_x),
                      out_start=(y0 // factor, x0 // factor),
                      out_shape=(out_chunks[-2][iy], out_chunks[-1][ix]), factor=factor, **extra, **kwargs)

    block_func.__name__ = op
    data = halo.map_blocks(block_func, chunks=out_chunks, dtype=np.float32,
                           meta=np.empty((0,) * arr.ndim, np.float32), name=_name(op, arr, token))
    if whole_images:
        data = data.rechunk({yax: final_lr[0], xax: final_lr[1]})
    return _wrap(da, data, attrs=attrs, drop_spatial=True, spatial_coords=spatial_coords)


def _lr_chunks(hr_chunks: Sequence[int], factor: int, n_out: int) -> tuple[int, ...]:
    """LR chunks of aligned HR chunks: each / ``factor``, the last one holding what is left of ``n_out``."""
    out = [c // factor for c in hr_chunks[:-1]]
    return (*out, n_out - sum(out))


def positional(kernel: Callable[..., np.ndarray], da: xr.DataArray, *, op: str, token: Any,
               whole_images: bool = False, attrs: dict | None = None, **kwargs: Any) -> xr.DataArray:
    """Lift ``kernel(block, offset=, global_shape=, **kwargs)``, which draws position-keyed random numbers.

    With ``whole_images`` every block holds whole images (needed when the kernel also reduces over y, x).
    """
    if not is_dask(da):
        data = kernel(np.asarray(da.data), offset=(0,) * da.ndim, global_shape=da.shape, **kwargs)
        return _wrap(da, data, attrs=attrs)
    arr = da.data
    orig_chunks = arr.chunks
    if whole_images:
        arr = _merge_spatial(arr, 2)
    gshape = arr.shape

    def block_func(block, block_info=None):
        offset = tuple(loc[0] for loc in block_info[0]["array-location"])
        return kernel(block, offset=offset, global_shape=gshape, **kwargs)

    block_func.__name__ = op
    data = arr.map_blocks(block_func, dtype=np.float32, meta=np.empty((0,) * arr.ndim, np.float32),
                          name=_name(op, arr, token))
    if whole_images:
        data = data.rechunk(orig_chunks)
    return _wrap(da, data, attrs=attrs)


def reduce_images(func: Callable[..., Any], *das: xr.DataArray, op: str, core: Sequence[str] = CORE,
                  dtype=np.float64) -> xr.DataArray:
    """Apply ``func(*image_blocks)``, which reduces ``(..., *core)`` arrays to ``(...)``, to whole images.

    Leading dims stay chunked; each task gets whole images. The output has the leading dims of ``das[0]``.
    """
    def kernel(*blocks):
        return np.asarray(func(*blocks), dtype=dtype)

    kernel.__name__ = "s2n_" + op.replace("-", "_")
    return xr.apply_ufunc(kernel, *das, input_core_dims=[list(core)] * len(das), output_core_dims=[[]],
                          dask="parallelized", output_dtypes=[dtype], dask_gufunc_kwargs={"allow_rechunk": True})
