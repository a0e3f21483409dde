"""Counter-based random numbers: the value at a position depends only on (key, position).

A Dask block, a numpy call or a different chunking of the same array all draw the same number for the
same element, because the stream is a pure function of the element's global flat index: the i-th output
of SplitMix64 seeded with ``key`` is ``mix(key + (i + 1) * GOLDEN)``, computed directly for every i.
Keys are derived from a user seed and a purpose label (e.g. the harmonization method) with
:func:`derive_key`, so streams for different purposes never coincide.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def derive_key(seed: int, *labels: object) -> int:
    """A 64-bit stream key from a seed and any labels (stable across processes and platforms)."""
    text = repr((int(seed),) + tuple(str(x) for x in labels)).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def _mix(z: np.ndarray) -> np.ndarray:
    z ^= z >> np.uint64(30)
    z *= _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return z


def _counters(shape: Sequence[int], offset: Sequence[int] | None, global_shape: Sequence[int] | None) -> np.ndarray:
    """Global C-order flat index of every element of a block of ``global_shape`` starting at ``offset``."""
    shape = tuple(int(s) for s in shape)
    gshape = tuple(int(s) for s in (global_shape or shape))
    off = tuple(int(o) for o in (offset or (0,) * len(shape)))
    if len(gshape) != len(shape) or len(off) != len(shape):
        raise ValueError("shape, offset and global_shape must have the same length")
    idx = np.zeros((1,) * len(shape), dtype=np.uint64)
    stride = 1
    for axis in range(len(shape) - 1, -1, -1):
        ax = np.arange(off[axis], off[axis] + shape[axis], dtype=np.uint64) * np.uint64(stride)
        idx = idx + ax.reshape((-1,) + (1,) * (len(shape) - axis - 1))
        stride *= gshape[axis]
    return np.broadcast_to(idx, shape)


def bits(key: int, shape: Sequence[int], *, offset=None, global_shape=None) -> np.ndarray:
    """Uniformly distributed uint64 words for every element of a block."""
    with np.errstate(over="ignore"):
        z = (_counters(shape, offset, global_shape) + np.uint64(1)) * _GOLDEN + np.uint64(key & (2**64 - 1))
        return _mix(z)


def uniform(key: int, shape: Sequence[int], *, offset=None, global_shape=None) -> np.ndarray:
    """Float64 uniforms in [0, 1) (53 random bits)."""
    return (bits(key, shape, offset=offset, global_shape=global_shape) >> np.uint64(11)) * (1.0 / 2**53)


def normal(key: int, shape: Sequence[int], *, offset=None, global_shape=None) -> np.ndarray:
    """Standard normal float64 draws (Box-Muller on two independent counter streams)."""
    k2 = derive_key(key, "box-muller")
    u1 = 1.0 - uniform(key, shape, offset=offset, global_shape=global_shape)  # (0, 1]
    u2 = uniform(k2, shape, offset=offset, global_shape=global_shape)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
