"""The one exception tree of sen2naip_xr.

Every error the package raises on purpose derives from :class:`Sen2NaipError`. Messages name the
argument, the bad value and the fix, so a user can act on them without reading the source.
"""

from __future__ import annotations

__all__ = [
    "Sen2NaipError",
    "InputError",
    "WeightsError",
    "MissingDependencyError",
    "CatalogError",
    "LoadError",
    "StoreError",
]


class Sen2NaipError(Exception):
    """Root of every error raised by sen2naip_xr."""


class InputError(Sen2NaipError, ValueError):
    """A data argument (an image, a parameter value) is not what the operation accepts."""


class WeightsError(Sen2NaipError, FileNotFoundError):
    """Harmonizer weights are missing, unreadable or do not match their published checksum."""


class MissingDependencyError(Sen2NaipError, ImportError):
    """An optional dependency (e.g. torch) is needed for this operation but not installed."""


class CatalogError(Sen2NaipError):
    """A STAC search or pairing step could not be carried out."""


class LoadError(Sen2NaipError):
    """Pixels could not be read for an ROI (after retries)."""


class StoreError(Sen2NaipError):
    """A Zarr store could not be written or read as the dataset layout requires."""


# --- catalog and load (issue 3) ---
class SigningError(LoadError):
    """The token service could not sign an asset href (stage ``sign``)."""


class AssetReadError(LoadError):
    """An asset could not be read after its retries; ``stage`` and ``reason`` say where and why."""

    def __init__(self, message: str, *, stage: str = "read", reason: str = "", href: str = "") -> None:
        super().__init__(message)
        self.stage = stage
        self.reason = reason or message
        self.href = href
